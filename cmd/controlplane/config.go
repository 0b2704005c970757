package main

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/viper"

	"github.com/outpost/outpost/internal/blob/s3"
	"github.com/outpost/outpost/internal/cliconf"
	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/controlplaned"
	"github.com/outpost/outpost/internal/tlsconf"
)

// Config is the control plane's configuration (configs/controlplane.yaml
// documents every key).
type Config struct {
	DataDir           string        `mapstructure:"data_dir"`
	Store             string        `mapstructure:"store"`
	PostgresURL       string        `mapstructure:"postgres_url"`
	Listen            string        `mapstructure:"listen"`
	LogLevel          string        `mapstructure:"log_level"`
	LogFormat         string        `mapstructure:"log_format"`
	KeysDir           string        `mapstructure:"keys_dir"`
	DataKeyFile       string        `mapstructure:"data_encryption_key_file"`
	KEKFile           string        `mapstructure:"key_encryption_key_file"`
	PreviousKEKFile   string        `mapstructure:"previous_key_encryption_key_file"`
	KeySyncInterval   time.Duration `mapstructure:"key_sync_interval"`
	MaxBodyBytes      int64         `mapstructure:"max_body_bytes"`
	MaxArtifactBytes  int64         `mapstructure:"max_artifact_bytes"`
	SnapshotTTL       time.Duration `mapstructure:"snapshot_ttl"`
	RefreshInterval   time.Duration `mapstructure:"snapshot_refresh_interval"`
	RefreshBefore     time.Duration `mapstructure:"snapshot_refresh_before"`
	IdempotencyTTL    time.Duration `mapstructure:"idempotency_ttl"`
	ShutdownTimeout   time.Duration `mapstructure:"shutdown_timeout"`
	ArtifactDelivery  string        `mapstructure:"artifact_delivery"`
	AllowPrivateURLs  bool          `mapstructure:"allow_private_external_urls"`
	PresignTTL        time.Duration `mapstructure:"presign_ttl"`
	ReadHeaderTimeout time.Duration `mapstructure:"read_header_timeout"`
	ReadTimeout       time.Duration `mapstructure:"read_timeout"`
	WriteTimeout      time.Duration `mapstructure:"write_timeout"`
	StreamIdle        time.Duration `mapstructure:"stream_idle_timeout"`
	LeaseRateLimit    float64       `mapstructure:"lease_rate_limit"`
	LeaseRateBurst    int           `mapstructure:"lease_rate_burst"`
	TLSCertFile       string        `mapstructure:"tls_cert_file"`
	TLSKeyFile        string        `mapstructure:"tls_key_file"`
	MirrorClientCA    string        `mapstructure:"mirror_client_ca_file"`
	// Webhooks: allow_private_webhooks lets endpoints be plain http:// on
	// loopback and private addresses (tests, a lab).
	AllowPrivateWebhooks bool          `mapstructure:"allow_private_webhooks"`
	WebhookRetryBase     time.Duration `mapstructure:"webhook_retry_base"`
	WebhookRetryMax      time.Duration `mapstructure:"webhook_retry_max"`
	// MirrorStaleAfter: a mirror silent this long gets mirror.stale.
	MirrorStaleAfter time.Duration `mapstructure:"mirror_stale_after"`
	Blob             BlobConfig    `mapstructure:"blob"`
	// Expensive work: max_expensive_operations (0: max(2, GOMAXPROCS))
	// and the Retry-After of a busy answer.
	MaxExpensive   int           `mapstructure:"max_expensive_operations"`
	BusyRetryAfter time.Duration `mapstructure:"busy_retry_after"`
	// Retention of old snapshots and TUF metadata versions.
	RetentionKeep         int           `mapstructure:"retention_keep"`
	RetentionMirrorMaxAge time.Duration `mapstructure:"retention_mirror_max_age"`
	Deltas                DeltaConfig   `mapstructure:"deltas"`
}

// DeltaConfig tunes the delta builds (docs/deltas.md).
type DeltaConfig struct {
	Previous int     `mapstructure:"previous"`  // earlier releases per new artifact; 0 turns builds off
	MaxShare float64 `mapstructure:"max_share"` // a delta over this share of its artifact is not offered
	TempDir  string  `mapstructure:"temp_dir"`  // build scratch ("" = the system temp dir)
}

type BlobConfig struct {
	Backend string   `mapstructure:"backend"`
	Dir     string   `mapstructure:"dir"`
	S3      S3Config `mapstructure:"s3"`
}

// S3Config is blob.s3: the shared bucket keys and create_bucket.
type S3Config struct {
	cliconf.S3   `mapstructure:",squash"`
	CreateBucket bool `mapstructure:"create_bucket"`
}

func setDefaults(v *viper.Viper) {
	cliconf.DaemonDefaults(v, "./data/controlplane", "127.0.0.1:8440")
	v.SetDefault("store", "bolt")
	v.SetDefault("postgres_url", "")
	v.SetDefault("keys_dir", "")
	v.SetDefault("data_encryption_key_file", "")
	v.SetDefault("key_encryption_key_file", "")
	v.SetDefault("previous_key_encryption_key_file", "")
	v.SetDefault("key_sync_interval", 30*time.Second)
	v.SetDefault("max_body_bytes", 1<<20)
	v.SetDefault("max_expensive_operations", 0)
	v.SetDefault("busy_retry_after", 2*time.Second)
	v.SetDefault("retention_keep", 10)
	v.SetDefault("retention_mirror_max_age", 30*24*time.Hour)
	v.SetDefault("max_artifact_bytes", int64(64)<<30)
	v.SetDefault("snapshot_ttl", 30*24*time.Hour)
	v.SetDefault("snapshot_refresh_interval", time.Hour)
	v.SetDefault("snapshot_refresh_before", 15*24*time.Hour)
	v.SetDefault("idempotency_ttl", 24*time.Hour)
	v.SetDefault("shutdown_timeout", 30*time.Second)
	v.SetDefault("artifact_delivery", "proxy")
	v.SetDefault("allow_private_external_urls", false)
	v.SetDefault("allow_private_webhooks", false)
	v.SetDefault("mirror_stale_after", controlplane.DefaultMirrorStaleAfter)
	v.SetDefault("webhook_retry_base", 10*time.Second)
	v.SetDefault("webhook_retry_max", time.Hour)
	v.SetDefault("presign_ttl", 15*time.Minute)
	v.SetDefault("read_header_timeout", 10*time.Second)
	v.SetDefault("read_timeout", 30*time.Second)
	v.SetDefault("write_timeout", time.Minute)
	v.SetDefault("stream_idle_timeout", time.Minute)
	v.SetDefault("lease_rate_limit", 5.0)
	v.SetDefault("lease_rate_burst", 20)
	v.SetDefault("tls_cert_file", "")
	v.SetDefault("tls_key_file", "")
	v.SetDefault("mirror_client_ca_file", "")
	v.SetDefault("deltas.previous", 3)
	v.SetDefault("deltas.max_share", 0.60)
	v.SetDefault("deltas.temp_dir", "")
	v.SetDefault("blob.backend", "disk")
	v.SetDefault("blob.dir", "")
	cliconf.S3Defaults(v, "blob.s3")
	v.SetDefault("blob.s3.create_bucket", false)
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
	if c.KeysDir == "" {
		c.KeysDir = filepath.Join(c.DataDir, "keys")
	}
	if c.DataKeyFile == "" {
		c.DataKeyFile = filepath.Join(c.DataDir, "data-encryption.key")
	}
	if c.Blob.Dir == "" {
		c.Blob.Dir = filepath.Join(c.DataDir, "blobs")
	}
	switch c.Store {
	case "bolt":
	case "postgres":
		if c.PostgresURL == "" {
			return errors.New("postgres_url is required with store: postgres")
		}
	default:
		return fmt.Errorf("store %q is not one of bolt, postgres", c.Store)
	}
	if c.KEKFile != "" && c.Store != "postgres" {
		return errors.New("key_encryption_key_file shares keys between instances on one database: it needs store: postgres")
	}
	if c.PreviousKEKFile != "" && c.KEKFile == "" {
		return errors.New("previous_key_encryption_key_file is for a key-encryption key rotation: it needs key_encryption_key_file")
	}
	if c.KeySyncInterval < time.Second {
		return fmt.Errorf("key_sync_interval %s: must be at least 1s (e.g. 30s)", c.KeySyncInterval)
	}
	switch c.Blob.Backend {
	case "disk":
	case "s3":
		if c.Blob.S3.Endpoint == "" || c.Blob.S3.Bucket == "" {
			return errors.New("blob.s3.endpoint and blob.s3.bucket are required with blob.backend: s3")
		}
	default:
		return fmt.Errorf("blob.backend %q is not one of disk, s3", c.Blob.Backend)
	}
	switch c.ArtifactDelivery {
	case "proxy", "redirect":
	default:
		return fmt.Errorf("artifact_delivery %q is not one of proxy, redirect", c.ArtifactDelivery)
	}
	if c.SnapshotTTL < time.Hour {
		return errors.New("snapshot_ttl must be at least 1h")
	}
	if c.MaxExpensive < 0 || c.MaxExpensive > 1024 {
		return errors.New("max_expensive_operations must be between 0 (automatic) and 1024")
	}
	if c.BusyRetryAfter < time.Second || c.BusyRetryAfter > time.Hour {
		return errors.New("busy_retry_after must be between 1s and 1h")
	}
	if c.RetentionKeep < 0 || c.RetentionMirrorMaxAge < 0 {
		return errors.New("retention_keep and retention_mirror_max_age must not be negative")
	}
	if c.IdempotencyTTL < time.Minute {
		return errors.New("idempotency_ttl must be at least 1m")
	}
	if c.RefreshInterval < 0 || c.RefreshBefore < 0 || c.RefreshBefore >= c.SnapshotTTL {
		return errors.New("snapshot_refresh_interval must be >= 0 and snapshot_refresh_before between 0 and snapshot_ttl")
	}
	if c.ReadTimeout < time.Second || c.WriteTimeout < time.Second || c.StreamIdle < time.Second {
		return errors.New("read_timeout, write_timeout and stream_idle_timeout must be at least 1s")
	}
	if c.LeaseRateBurst < 1 && c.LeaseRateLimit > 0 {
		return errors.New("lease_rate_burst must be at least 1")
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		return errors.New("tls_cert_file and tls_key_file must be set together")
	}
	if c.MirrorClientCA != "" && c.TLSCertFile == "" {
		return errors.New("mirror_client_ca_file needs tls_cert_file and tls_key_file")
	}
	if c.Deltas.Previous < 0 || c.Deltas.Previous > 20 {
		return errors.New("deltas.previous must be between 0 (off) and 20")
	}
	if c.Deltas.MaxShare <= 0 || c.Deltas.MaxShare > 1 {
		return errors.New("deltas.max_share must be above 0 and at most 1")
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		return fmt.Errorf("log_format %q is not one of text, json", c.LogFormat)
	}
	return nil
}

func (c *Config) dbPath() string { return filepath.Join(c.DataDir, "controlplane.db") }

// daemon is the config as controlplaned takes it.
func (c *Config) daemon(log *slog.Logger) controlplaned.Config {
	s := c.Blob.S3
	return controlplaned.Config{
		Store: c.Store, DBPath: c.dbPath(), PostgresURL: c.PostgresURL,
		BlobBackend: c.Blob.Backend, BlobDir: c.Blob.Dir,
		S3:      s3Config(s),
		KeysDir: c.KeysDir, DataKeyFile: c.DataKeyFile, KeyEncryptionKeyFile: c.KEKFile, PreviousKeyEncryptionKeyFile: c.PreviousKEKFile, KeySyncInterval: c.KeySyncInterval,
		Service: controlplane.Config{
			MaxArtifactBytes: c.MaxArtifactBytes, SnapshotTTL: c.SnapshotTTL, ArtifactDelivery: c.ArtifactDelivery,
			PresignTTL: c.PresignTTL, AllowPrivateURLs: c.AllowPrivateURLs, AllowPrivateWebhooks: c.AllowPrivateWebhooks,
			DeltaPrevious: deltaPrevious(c.Deltas.Previous), DeltaMaxShare: c.Deltas.MaxShare, DeltaTempDir: c.Deltas.TempDir,
			MaxExpensive: c.MaxExpensive, RetryAfter: c.BusyRetryAfter,
			Retention:        controlplane.Retention{Keep: c.RetentionKeep, MirrorMaxAge: c.RetentionMirrorMaxAge, Disabled: c.RetentionKeep == 0},
			MirrorStaleAfter: c.MirrorStaleAfter,
		},
		Webhooks: controlplaned.WebhookConfig{BaseDelay: c.WebhookRetryBase, MaxDelay: c.WebhookRetryMax},
		Listen:   c.Listen, MaxBodyBytes: c.MaxBodyBytes, ReadHeaderTimeout: c.ReadHeaderTimeout, ShutdownTimeout: c.ShutdownTimeout,
		RefreshInterval: c.RefreshInterval, RefreshBefore: c.RefreshBefore, IdempotencyTTL: c.IdempotencyTTL,
		ReadTimeout: c.ReadTimeout, WriteTimeout: c.WriteTimeout, StreamIdle: c.StreamIdle,
		LeaseRate: leaseRate(c.LeaseRateLimit), LeaseBurst: c.LeaseRateBurst,
		TLS:                tlsconf.Config{CertFile: c.TLSCertFile, KeyFile: c.TLSKeyFile},
		MirrorClientCAFile: c.MirrorClientCA,
		Log:                log,
	}
}

// deltaPrevious maps deltas.previous (0: off) to controlplane.Config's
// convention (0: the default, negative: off).
func deltaPrevious(n int) int {
	if n == 0 {
		return -1
	}
	return n
}

// leaseRate maps lease_rate_limit (0: no limit) to controlplaned's
// LeaseRate (< 0: no limit).
func leaseRate(v float64) float64 {
	if v <= 0 {
		return -1
	}
	return v
}

// s3Config is blob.s3 as the blob store takes it.
func s3Config(s S3Config) s3.Config {
	c := s.Client()
	c.Prefix, c.CreateBucket = s.Prefix, s.CreateBucket
	return c
}
