package cliconf

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"
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

// Execute runs root and returns the process's exit status: 0, 1 for a
// failure, 2 for a usage error (a bad flag included). The error goes to
// stderr on one line behind the program's name.
func Execute(root *cobra.Command, stderr io.Writer) int {
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return UsageError{err} })
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
