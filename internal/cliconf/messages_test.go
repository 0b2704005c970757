package cliconf_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outpost/outpost/internal/cliconf"
)

func TestLoad_MessagesNameTheCauseAndTheFix(t *testing.T) {
	cases := []struct {
		name string
		yaml string
		want []string
	}{
		{"typo in a key", "evrey: 5s\n", []string{`unknown key "evrey"`, `did you mean "every"?`}},
		{"typo in a nested key", "nested:\n  nmae: x\n", []string{`unknown key "nested.nmae"`, `did you mean "nested.name"?`}},
		{"unknown key far from any", "zzzzzzzzzz: 1\n", []string{`unknown key "zzzzzzzzzz"`, "configs/"}},
		{"bad duration", "every: 5x\n", []string{`every: "5x" is not a duration`, "e.g. 90s, 15m, 24h"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "c.yaml")
			os.WriteFile(file, []byte(c.yaml), 0o600)
			var got conf
			err := cliconf.Load(command("--config", file), defaults, &got)
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			msg := err.Error()
			for _, w := range append(c.want, file) {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not say %q", msg, w)
				}
			}
			for _, internal := range []string{"main.Config", "cliconf_test.conf", "mapstructure", "decoding failed"} {
				if strings.Contains(msg, internal) {
					t.Errorf("error %q shows Go internals (%q)", msg, internal)
				}
			}
		})
	}
}
