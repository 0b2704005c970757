package cliconf

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"

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
