package main

import (
	"io"
	"testing"

	"github.com/spf13/cobra"

	"github.com/outpost/outpost/internal/testenv"
)

// TestHelp_FlagUsagesRead: no flag's usage has a backquoted word, which
// pflag would print as the flag's value name (`--public-key mirror init`).
func TestHelp_FlagUsagesRead(t *testing.T) {
	testenv.CheckFlagUsages(t, newRoot(io.Discard, io.Discard))
}

// TestHelp_Completion: the binary prints shell completion scripts.
func TestHelp_Completion(t *testing.T) {
	testenv.CheckCompletion(t, "mirror", func(out io.Writer) *cobra.Command { return newRoot(out, io.Discard) })
}
