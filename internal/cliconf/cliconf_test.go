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

// s3conf embeds the shared S3 section beside a daemon's own key, as both
// daemons' configs do.
type s3conf struct {
	DataDir string `mapstructure:"data_dir"`
	Blob    struct {
		S3 struct {
			cliconf.S3   `mapstructure:",squash"`
			CreateBucket bool `mapstructure:"create_bucket"`
		} `mapstructure:"s3"`
	} `mapstructure:"blob"`
}

func s3defaults(v *viper.Viper) {
	v.SetDefault("data_dir", "d")
	cliconf.S3Defaults(v, "blob.s3")
	v.SetDefault("blob.s3.create_bucket", false)
}

// TestS3_Embedded: the shared keys and the daemon's own decode from the
// file and the environment into the embedding struct; a typo in the
// section is still an unknown key.
func TestS3_Embedded(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(file, []byte("blob:\n  s3:\n    endpoint: 127.0.0.1:9000\n    bucket: b\n    use_ssl: true\n    create_bucket: true\n"), 0o600)
	t.Setenv("OUTPOST_BLOB_S3_SECRET_KEY", "from-env")
	var got s3conf
	if err := cliconf.Load(command("--config", file), s3defaults, &got); err != nil {
		t.Fatal(err)
	}
	s := got.Blob.S3
	want := cliconf.S3{Endpoint: "127.0.0.1:9000", Bucket: "b", UseSSL: true, SecretKey: "from-env", Region: "us-east-1"}
	if s.S3 != want || !s.CreateBucket {
		t.Fatalf("got %+v (create_bucket %v), want %+v and create_bucket", s.S3, s.CreateBucket, want)
	}
	if c := s.Client(); c.Endpoint != want.Endpoint || c.Bucket != "b" || c.SecretKey != "from-env" || !c.UseSSL || c.Region != "us-east-1" {
		t.Errorf("Client() = %+v", c)
	}
	os.WriteFile(file, []byte("blob:\n  s3:\n    buckte: b\n"), 0o600)
	if err := cliconf.Load(command("--config", file), s3defaults, &s3conf{}); err == nil || !strings.Contains(err.Error(), "buckte") {
		t.Fatalf("typo in the section: %v, want it named", err)
	}
}
