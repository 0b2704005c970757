package main

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/spf13/viper"

	"github.com/outpost/outpost/internal/cliconf"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/mirror"
	"github.com/outpost/outpost/internal/mirror/state"
	"github.com/outpost/outpost/internal/sync"
	"github.com/outpost/outpost/internal/tlsconf"
)

// Config is the mirror's configuration (configs/mirror.yaml documents
// every key).
type Config struct {
	DataDir   string `mapstructure:"data_dir"`
	Listen    string `mapstructure:"listen"`
	LogLevel  string `mapstructure:"log_level"`
	LogFormat string `mapstructure:"log_format"`
	KeyFile   string `mapstructure:"key_file"`
	TenantID  string `mapstructure:"tenant_id"`
	MirrorID  string `mapstructure:"mirror_id"`
	// TrustedKeys and SignatureThreshold are schema 1's, which is no
	// longer supported: they are read only so that a config written for
	// it is refused with the command that re-initialises the mirror
	// (errSchema1) instead of as an unknown key.
	TrustedKeys []string `mapstructure:"trusted_keys"`
	// Trust is "tuf", the only trust (root_file); empty is "tuf" when
	// root_file is given, else an error naming root_file where the trust
	// is needed. "dsse" (schema 1) is refused (errSchema1).
	Trust              string        `mapstructure:"trust"`
	RootFile           string        `mapstructure:"root_file"`
	SignatureThreshold int           `mapstructure:"signature_threshold"`
	Source             string        `mapstructure:"source"`
	VendorURL          string        `mapstructure:"vendor_url"`
	Credential         string        `mapstructure:"credential"`
	UpstreamURL        string        `mapstructure:"upstream_url"`
	UpstreamToken      string        `mapstructure:"upstream_token"`
	S3                 S3Config      `mapstructure:"s3"`
	Channels           []string      `mapstructure:"channels"`
	RetainSnapshots    int           `mapstructure:"retain_snapshots"`
	SyncInterval       time.Duration `mapstructure:"sync_interval"`
	GCInterval         time.Duration `mapstructure:"gc_interval"`
	Concurrency        int           `mapstructure:"concurrency"`
	RetryMaxElapsed    time.Duration `mapstructure:"retry_max_elapsed"`
	AuditRetention     time.Duration `mapstructure:"audit_retention"`
	ServeExpired       bool          `mapstructure:"serve_expired"`
	ClientTokens       []string      `mapstructure:"client_tokens"`
	AdminTokenHashes   []string      `mapstructure:"admin_token_hashes"`
	ShutdownTimeout    time.Duration `mapstructure:"shutdown_timeout"`
	BodyTimeout        time.Duration `mapstructure:"body_timeout"`
	WriteTimeout       time.Duration `mapstructure:"write_timeout"`
	StreamIdleTimeout  time.Duration `mapstructure:"stream_idle_timeout"`
	InboxDir           string        `mapstructure:"inbox_dir"`
	AdminSocket        string        `mapstructure:"admin_socket"`
	InboxInterval      time.Duration `mapstructure:"inbox_interval"`
	// Events bounds the client events kept and the batches accepted.
	Events EventsConfig `mapstructure:"events"`
	// RateLimit limits each client on the lease and event routes.
	RateLimit mirror.RateLimits `mapstructure:"rate_limit"`
	// TLS is the server side: tls_cert_file, tls_key_file (HTTPS when
	// set), tls_client_ca_file, tls_client_auth, tls_reload_interval.
	TLS tlsconf.Config `mapstructure:",squash"`
	// SyncTLS is the sync client's side (control plane, upstream mirror):
	// ca_file, tls_client_cert_file, tls_client_key_file.
	SyncTLS tlsconf.ClientConfig `mapstructure:",squash"`
}

// EventsConfig is the events: section (POST /v1/events).
type EventsConfig struct {
	Window         int   `mapstructure:"window"`
	MaxAggregates  int   `mapstructure:"max_aggregates"`
	MaxBatchBytes  int64 `mapstructure:"max_batch_bytes"`
	MaxBatchEvents int   `mapstructure:"max_batch_events"`
}

// S3Config is the customer-side bucket source.
type S3Config struct {
	cliconf.S3 `mapstructure:",squash"`
}

func setDefaults(v *viper.Viper) {
	cliconf.DaemonDefaults(v, "./data/mirror", "127.0.0.1:8441")
	v.SetDefault("key_file", "")
	v.SetDefault("tenant_id", "")
	v.SetDefault("mirror_id", "")
	v.SetDefault("trusted_keys", []string{})
	v.SetDefault("trust", "")
	v.SetDefault("root_file", "")
	v.SetDefault("signature_threshold", 1)
	v.SetDefault("source", "")
	v.SetDefault("vendor_url", "")
	v.SetDefault("credential", "")
	v.SetDefault("upstream_url", "")
	v.SetDefault("upstream_token", "")
	cliconf.S3Defaults(v, "s3")
	v.SetDefault("channels", []string{})
	v.SetDefault("retain_snapshots", 3)
	v.SetDefault("sync_interval", 5*time.Minute)
	v.SetDefault("gc_interval", time.Hour)
	v.SetDefault("concurrency", 4)
	v.SetDefault("retry_max_elapsed", 5*time.Minute)
	v.SetDefault("audit_retention", state.DefaultAuditRetention)
	v.SetDefault("serve_expired", true)
	v.SetDefault("client_tokens", []string{})
	v.SetDefault("admin_token_hashes", []string{})
	v.SetDefault("shutdown_timeout", 30*time.Second)
	v.SetDefault("body_timeout", 30*time.Second)
	v.SetDefault("write_timeout", mirror.DefaultWriteTimeout)
	v.SetDefault("stream_idle_timeout", mirror.DefaultStreamIdle)
	v.SetDefault("inbox_dir", "")
	v.SetDefault("admin_socket", "")
	v.SetDefault("inbox_interval", 10*time.Second)
	v.SetDefault("events.window", 100_000)
	v.SetDefault("events.max_aggregates", 10_000)
	v.SetDefault("events.max_batch_bytes", int64(1<<20))
	v.SetDefault("events.max_batch_events", 1000)
	v.SetDefault("rate_limit.leases.rate", 5.0)
	v.SetDefault("rate_limit.leases.burst", 50)
	v.SetDefault("rate_limit.events.rate", 20.0)
	v.SetDefault("rate_limit.events.burst", 100)
	v.SetDefault("rate_limit.max_clients", 10000)
	v.SetDefault("tls_cert_file", "")
	v.SetDefault("tls_key_file", "")
	v.SetDefault("tls_client_ca_file", "")
	v.SetDefault("tls_client_auth", "none")
	v.SetDefault("tls_reload_interval", tlsconf.DefaultReloadInterval)
	v.SetDefault("ca_file", "")
	v.SetDefault("tls_client_cert_file", "")
	v.SetDefault("tls_client_key_file", "")
}

// loadConfig applies flags > OUTPOST_ environment > YAML file > defaults.
// An unknown key in the file is an error.
func loadConfig(cmd *cobra.Command) (*Config, error) {
	var c Config
	if err := cliconf.Load(cmd, setDefaults, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// Validate checks the config and fills in paths derived from data_dir.
func (c *Config) Validate() error {
	if c.DataDir == "" {
		return errors.New("data_dir must not be empty")
	}
	if c.KeyFile == "" {
		c.KeyFile = filepath.Join(c.DataDir, "mirror.key")
	}
	if c.InboxDir == "" {
		c.InboxDir = filepath.Join(c.DataDir, "inbox")
	}
	switch c.AdminSocket {
	case "":
		c.AdminSocket = filepath.Join(c.DataDir, mirror.AdminSocketName)
	case "none":
		c.AdminSocket = ""
	}
	if c.Source == "" {
		c.Source = "none"
		if c.VendorURL != "" {
			c.Source = "controlplane"
		}
	}
	switch c.Source {
	case "controlplane", "upstream", "s3", "none":
	default:
		return fmt.Errorf("source %q is not one of controlplane, s3, upstream, none", c.Source)
	}
	switch c.Trust {
	case "":
		// Neither is an error only where the trust is needed
		// (trustMode): init, status and the like run without it.
		switch {
		case c.RootFile != "":
			c.Trust = "tuf" // the default
		case len(c.TrustedKeys) > 0:
			return errSchema1(c)
		}
	case "dsse":
		return errSchema1(c)
	case "tuf":
		if c.RootFile == "" {
			return errors.New("trust: tuf needs root_file (the tenant's root.json from the vendor)")
		}
	default:
		return fmt.Errorf("trust %q is not tuf (the only trust)", c.Trust)
	}
	if c.MirrorID != "" && !catalog.ValidID(catalog.PrefixMirror, c.MirrorID) {
		return fmt.Errorf("mirror_id %q is not a mirror id (mir_…)", c.MirrorID)
	}
	if c.RetainSnapshots < 1 {
		return errors.New("retain_snapshots must be at least 1")
	}
	if c.Concurrency < 1 || c.Concurrency > 64 {
		return errors.New("concurrency must be between 1 and 64")
	}
	if c.SyncInterval < time.Second {
		return errors.New("sync_interval must be at least 1s")
	}
	if c.Events.Window < 1 || c.Events.MaxAggregates < 1 || c.Events.MaxBatchBytes < 1<<10 || c.Events.MaxBatchEvents < 1 {
		return errors.New("events: window, max_aggregates and max_batch_events must be at least 1, max_batch_bytes at least 1024")
	}
	if c.BodyTimeout < time.Second {
		return errors.New("body_timeout must be at least 1s")
	}
	if c.WriteTimeout < time.Second || c.StreamIdleTimeout < time.Second {
		return errors.New("write_timeout and stream_idle_timeout must be at least 1s")
	}
	if err := c.RateLimit.Validate(); err != nil {
		return err
	}
	if err := c.TLS.Validate(); err != nil {
		return err
	}
	if (c.SyncTLS.CertFile == "") != (c.SyncTLS.KeyFile == "") {
		return errors.New("tls_client_cert_file and tls_client_key_file must be set together")
	}
	for _, h := range c.AdminTokenHashes {
		if b, err := hex.DecodeString(h); err != nil || len(b) != sha256.Size {
			return fmt.Errorf("admin_token_hashes: %q is not a hex sha256 (see `mirror admin-token`)", h)
		}
	}
	return nil
}

// errNoTrust is the error of a config that pins nothing: the default
// trust is TUF, so it names root_file.
var errNoTrust = errors.New("config: no trust configured: set root_file to the tenant's root.json (trust: tuf, the default; `mirror init --root-file`)")

// errSchema1 refuses a config written for schema 1 (trust: dsse, or
// trusted_keys and no root_file), naming the command that re-initialises
// the mirror in place with the tenant's root.
func errSchema1(c *Config) error {
	tenant := c.TenantID
	if tenant == "" {
		tenant = "TENANT"
	}
	return fmt.Errorf("config: this mirror is configured for schema 1 (trust: dsse, trusted_keys), which is no longer supported: "+
		"stop it, get the tenant's root.json from the vendor (controlplane root show %s > root.json) and re-initialise it with "+
		"`mirror init --data-dir %s --tenant-id %s --root-file ROOT --force` (add --vendor-url and --credential for source: controlplane; "+
		"docs/metadata.md, \"Moving a schema 1 mirror to TUF\")", tenant, c.DataDir, tenant)
}

// trustMode checks that the config names the mirror's trust: root_file
// (trust: tuf), or errNoTrust.
func (c *Config) trustMode() error {
	switch c.Trust {
	case "tuf":
		return nil
	case "":
		return errNoTrust
	default:
		return fmt.Errorf("config: trust %q: want tuf", c.Trust)
	}
}

// tufTrust reads the mirror's trust: the tenant's root.json from
// root_file.
func (c *Config) tufTrust() (*sync.TUFTrust, error) {
	if err := c.trustMode(); err != nil {
		return nil, err
	}
	if c.TenantID == "" {
		return nil, errors.New("config: tenant_id is required")
	}
	if c.RootFile == "" {
		return nil, errors.New("config: trust: tuf needs root_file (the tenant's root.json from the vendor)")
	}
	root, err := os.ReadFile(c.RootFile)
	if err != nil {
		return nil, fmt.Errorf("config: root_file: %w", err)
	}
	if len(root) > 512<<10 {
		return nil, errors.New("config: root_file: more than 512 KiB")
	}
	return &sync.TUFTrust{TenantID: c.TenantID, Root: root}, nil
}

// syncClient is the HTTP client of the sync sources: nil (the default
// transport) unless ca_file or a client certificate is configured. With
// ca_file only that CA is trusted, for every request the sync makes
// (redirects included).
func (c *Config) syncClient() (*http.Client, error) {
	if c.SyncTLS.CAFile == "" && c.SyncTLS.CertFile == "" {
		return nil, nil
	}
	tc, err := tlsconf.NewClient(c.SyncTLS, nil)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	return &http.Client{Transport: tr}, nil
}

func (c *Config) dbPath() string { return filepath.Join(c.DataDir, "mirror.db") }

// mirrorKey loads the mirror's signing key, saying what to do when it is
// missing.
func (c *Config) mirrorKey() (ed25519.PrivateKey, error) {
	key, err := loadKey(c.KeyFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("mirror key %s is missing: run `mirror init`", c.KeyFile)
	}
	return key, err
}

// initialised says what to do when no `mirror init` prepared the data
// directory: a one-shot command must not quietly create an empty mirror
// there and report nothing held.
func (c *Config) initialised() error {
	if c.TenantID != "" {
		return nil // a config names the mirror's tenant
	}
	_, errKey := os.Stat(c.KeyFile)
	_, errDB := os.Stat(c.dbPath())
	if errors.Is(errKey, fs.ErrNotExist) && errors.Is(errDB, fs.ErrNotExist) {
		return fmt.Errorf("no mirror is initialised in %s (no %s, no config naming a tenant): run `mirror init --data-dir %s …` first, or point --data-dir or --config at an initialised mirror", c.DataDir, filepath.Base(c.KeyFile), c.DataDir)
	}
	return nil
}
