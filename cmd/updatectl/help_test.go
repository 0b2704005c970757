package main

import (
	"io"
	"strings"
	"testing"

	"github.com/outpost/outpost/internal/testenv"
)

// TestHelp_FlagUsagesRead: no flag's usage has a backquoted word, which
// pflag would print as the flag's value name (`--public-key mirror init`).
func TestHelp_FlagUsagesRead(t *testing.T) {
	testenv.CheckFlagUsages(t, newRoot(strings.NewReader(""), io.Discard, io.Discard))
}
