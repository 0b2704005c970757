package testenv

import (
	"io"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// CheckFlagUsages fails t for every flag of root's command tree whose
// usage has a backquoted word, which pflag would print as the flag's
// value name (`--public-key mirror init`).
func CheckFlagUsages(t *testing.T, root *cobra.Command) {
	t.Helper()
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		c.LocalFlags().VisitAll(func(f *pflag.Flag) {
			if strings.Contains(f.Usage, "`") {
				t.Errorf("%s --%s: usage %q has a backquote", c.CommandPath(), f.Name, f.Usage)
			}
		})
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(root)
}

// CheckCompletion runs `completion SHELL` for every shell cobra knows on a
// root newRoot makes with its stdout, and fails t unless each prints a
// script naming the binary.
func CheckCompletion(t *testing.T, binary string, newRoot func(stdout io.Writer) *cobra.Command) {
	t.Helper()
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		t.Run(shell, func(t *testing.T) {
			var out strings.Builder
			root := newRoot(&out)
			root.SetArgs([]string{"completion", shell})
			if err := root.Execute(); err != nil || !strings.Contains(out.String(), binary) {
				t.Errorf("completion %s: %v, %d bytes", shell, err, out.Len())
			}
		})
	}
}
