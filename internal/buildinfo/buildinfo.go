// Package buildinfo says which build of Outpost is running, for every
// binary's --version.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Set by `make build` (-ldflags -X) where the toolchain stamps no VCS
// information.
var (
	buildCommit string
	buildDate   string
)

// Version describes the running binary from its build information:
// module version, VCS commit and time, Go version.
func Version() string {
	v, commit, when, goVersion := "(devel)", "unknown", "unknown", runtime.Version()
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
			case "vcs.time":
				when = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					commit += "+dirty"
				}
			}
		}
	}
	if buildCommit != "" {
		commit = buildCommit
	}
	if buildDate != "" {
		when = buildDate
	}
	return fmt.Sprintf("%s (commit %s, built %s, %s)", v, commit, when, goVersion)
}
