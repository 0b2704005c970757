package cliconf_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/viper"

	"github.com/outpost/outpost/internal/cliconf"
)

type conf struct {
	DataDir string        `mapstructure:"data_dir"`
	Listen  string        `mapstructure:"listen"`
	Every   time.Duration `mapstructure:"every"`
	Nested  struct {
		Name string `mapstructure:"name"`
	} `mapstructure:"nested"`
}

func defaults(v *viper.Viper) {
	v.SetDefault("data_dir", "default-dir")
	v.SetDefault("listen", "127.0.0.1:1")
	v.SetDefault("every", time.Minute)
	v.SetDefault("nested.name", "default-name")
}

func command(args ...string) *cobra.Command {
	cmd := &cobra.Command{Use: "x", RunE: func(*cobra.Command, []string) error { return nil }}
	cmd.Flags().String("config", "", "")
	cmd.Flags().String("data-dir", "flag-default", "")
	cmd.Flags().String("listen", "", "")
	cmd.SetArgs(args)
	cmd.Execute()
	return cmd
}

func TestLoad_Precedence(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(file, []byte("data_dir: file-dir\nevery: 5s\nnested:\n  name: file-name\n"), 0o600)
	cases := []struct {
		name string
		args []string
		env  map[string]string
		want conf
	}{
		{"defaults", nil, nil, conf{DataDir: "default-dir", Listen: "127.0.0.1:1", Every: time.Minute}},
		{"file over defaults", []string{"--config", file}, nil, conf{DataDir: "file-dir", Listen: "127.0.0.1:1", Every: 5 * time.Second}},
		{"env over file", []string{"--config", file}, map[string]string{"OUTPOST_DATA_DIR": "env-dir", "OUTPOST_NESTED_NAME": "env-name"}, conf{DataDir: "env-dir", Listen: "127.0.0.1:1", Every: 5 * time.Second}},
		{"flag over env", []string{"--config", file, "--data-dir", "flag-dir"}, map[string]string{"OUTPOST_DATA_DIR": "env-dir"}, conf{DataDir: "flag-dir", Listen: "127.0.0.1:1", Every: 5 * time.Second}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			var got conf
			if err := cliconf.Load(command(c.args...), defaults, &got); err != nil {
				t.Fatal(err)
			}
			if got.DataDir != c.want.DataDir || got.Listen != c.want.Listen || got.Every != c.want.Every {
				t.Fatalf("got %+v, want %+v", got, c.want)
			}
			if v := c.env["OUTPOST_NESTED_NAME"]; v != "" && got.Nested.Name != v {
				t.Fatalf("nested key from env: got %q, want %q", got.Nested.Name, v)
			}
		})
	}
}

func TestLoad_UnknownKey(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(file, []byte("data_dir: x\ndata_dri: typo\n"), 0o600)
	var got conf
	err := cliconf.Load(command("--config", file), defaults, &got)
	if err == nil || !strings.Contains(err.Error(), "data_dri") {
		t.Fatalf("got %v, want an error naming data_dri", err)
	}
}
