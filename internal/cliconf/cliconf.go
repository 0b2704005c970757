// Package cliconf loads a daemon's configuration the same way for every
// Outpost command: flags > OUTPOST_* environment > YAML file > defaults,
// and an unknown key in the file is an error.
package cliconf

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/cobra"
	"github.com/spf13/viper"
)

// Flags maps the flags every daemon takes to their config keys.
var Flags = map[string]string{"data-dir": "data_dir", "listen": "listen", "log-level": "log_level"}

// DaemonDefaults sets the defaults of the keys every daemon has: data_dir,
// listen, log_level (info) and log_format (text).
func DaemonDefaults(v *viper.Viper, dataDir, listen string) {
	v.SetDefault("data_dir", dataDir)
	v.SetDefault("listen", listen)
	v.SetDefault("log_level", "info")
	v.SetDefault("log_format", "text")
}

// Load fills out (a struct with mapstructure tags) from cmd's flags, the
// environment (OUTPOST_DATA_DIR, OUTPOST_BLOB_S3_BUCKET: upper case, dots
// become underscores), the file named by --config or OUTPOST_CONFIG, and
// the defaults set by defaults, then calls out's Validate method if it has
// one. Every key must have a default, so that the environment can set it.
func Load(cmd *cobra.Command, defaults func(*viper.Viper), out any) error {
	v := viper.New()
	defaults(v)
	v.SetEnvPrefix("OUTPOST")
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	path, _ := cmd.Flags().GetString("config")
	if path == "" {
		path = os.Getenv("OUTPOST_CONFIG")
	}
	if path == "" {
		path = dataDirConfig(cmd, v)
	}
	if path != "" {
		v.SetConfigFile(path)
		v.SetConfigType("yaml")
		if err := v.ReadInConfig(); err != nil {
			return fmt.Errorf("read config %s: %w", path, err)
		}
		if err := checkKeys(path, defaults); err != nil {
			return err
		}
	}
	for flag, key := range Flags {
		// Only flags given on the command line override; an unset flag's
		// default must not hide the environment or the file.
		if f := cmd.Flags().Lookup(flag); f != nil && f.Changed {
			v.Set(key, f.Value.String())
		}
	}
	where := "config"
	if path != "" {
		where = "config " + path
	}
	if err := checkDurations(v, defaults, where); err != nil {
		return err
	}
	if err := v.UnmarshalExact(out, viper.DecodeHook(mapstructure.ComposeDecodeHookFunc(
		mapstructure.StringToTimeDurationHookFunc(), mapstructure.StringToSliceHookFunc(",")))); err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	if v, ok := out.(interface{ Validate() error }); ok {
		if err := v.Validate(); err != nil {
			return fmt.Errorf("config: %w", err)
		}
	}
	return nil
}

// dataDirConfig is the config file `init` writes into the data directory
// (<data_dir>/<program>.yaml), when it exists: `mirror status --data-dir
// mB` then finds mB's own config without --config.
func dataDirConfig(cmd *cobra.Command, v *viper.Viper) string {
	dir := v.GetString("data_dir")
	if f := cmd.Flags().Lookup("data-dir"); f != nil && f.Changed {
		dir = f.Value.String()
	}
	if dir == "" {
		return ""
	}
	p := filepath.Join(dir, cmd.Root().Name()+".yaml")
	if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
		return p
	}
	return ""
}
