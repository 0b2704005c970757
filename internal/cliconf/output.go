package cliconf

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"

	"github.com/outpost/outpost/internal/buildinfo"
)

// ErrOutputFormat is returned by Output for an --output other than text
// or json; commands report it as a usage error.
var ErrOutputFormat = errors.New("--output must be text or json")

// Logger returns the daemon's logger: level debug, info, warn or error
// (info when unparsable), format "json" or text.
func Logger(level, format string, w io.Writer) *slog.Logger {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		lvl = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lvl}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// Output prints v as indented JSON with --output json, or calls text
// otherwise.
func Output(cmd *cobra.Command, v any, text func(w io.Writer)) error {
	format, _ := cmd.Flags().GetString("output")
	switch format {
	case "json":
		enc := json.NewEncoder(cmd.OutOrStdout())
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case "text", "":
		text(cmd.OutOrStdout())
		return nil
	default:
		return ErrOutputFormat
	}
}

// UsageError is a wrong command line: the command exits with
// daemon.ExitUsage (2) instead of 1.
type UsageError struct{ Err error }

func (u UsageError) Error() string { return u.Err.Error() }
func (u UsageError) Unwrap() error { return u.Err }

// Root returns a daemon binary's root command: errors and usage printed
// by Execute alone, output to stdout and stderr, and the flags every
// daemon takes (--config, --data-dir defaulting to dataDir, --log-level,
// --output).
func Root(use, short, dataDir string, stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{Use: use, Short: short, SilenceUsage: true, SilenceErrors: true}
	root.SetOut(stdout)
	root.SetErr(stderr)
	pf := root.PersistentFlags()
	pf.String("config", "", "config file (YAML); env OUTPOST_CONFIG")
	pf.String("data-dir", dataDir, "data directory")
	pf.String("log-level", "info", "log level: debug, info, warn, error")
	pf.StringP("output", "o", "text", "output format: text or json")
	return root
}

// Execute runs root and returns the process's exit status: 0, 1 for a
// failure, 2 for a usage error (a bad flag included). The error goes to
// stderr on one line behind the program's name.
func Execute(root *cobra.Command, stderr io.Writer) int {
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return UsageError{err} })
	if root.Version == "" {
		root.Version = buildinfo.Version()
	}
	strictGroups(root)
	err := root.Execute()
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "%s: %s\n", root.Name(), strings.ReplaceAll(err.Error(), "\n", " "))
	if errors.As(err, new(UsageError)) {
		return 2
	}
	return 1
}

// strictGroups makes every command that only groups others (no Run of its
// own) fail with a usage error naming the subcommands, instead of
// printing help and exiting 0: `token lst` is a mistake, not a request
// for help.
func strictGroups(c *cobra.Command) {
	for _, sub := range c.Commands() {
		strictGroups(sub)
	}
	if !c.HasSubCommands() || c.Run != nil || c.RunE != nil || !c.HasParent() {
		return
	}
	c.Args = cobra.ArbitraryArgs
	c.RunE = func(cmd *cobra.Command, args []string) error {
		var names []string
		for _, s := range cmd.Commands() {
			if s.IsAvailableCommand() {
				names = append(names, s.Name())
			}
		}
		if len(args) == 0 {
			return UsageError{fmt.Errorf("%q needs a subcommand: %s (see %s --help)", cmd.CommandPath(), strings.Join(names, ", "), cmd.CommandPath())}
		}
		msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
		cmd.SuggestionsMinimumDistance = 2
		if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
			msg += fmt.Sprintf("; did you mean %q?", s[0])
		} else {
			msg += "; the subcommands are " + strings.Join(names, ", ")
		}
		return UsageError{errors.New(msg)}
	}
}
