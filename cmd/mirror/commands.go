package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/outpost/outpost/internal/blob/s3"
	"github.com/outpost/outpost/internal/cache"
	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/clock"
	"github.com/outpost/outpost/internal/daemon"
	"github.com/outpost/outpost/internal/fleet"
	"github.com/outpost/outpost/internal/fsutil"
	"github.com/outpost/outpost/internal/mirror"
	"github.com/outpost/outpost/internal/mirror/state"
	"github.com/outpost/outpost/internal/progress"
	"github.com/outpost/outpost/internal/snapshot"
	"github.com/outpost/outpost/internal/sync"
	"github.com/outpost/outpost/internal/tlsconf"
	"github.com/outpost/outpost/internal/tuf"
	"github.com/outpost/outpost/internal/update"
)

// app is an opened data dir for a one-shot command: the locked state,
// the cache and a syncer.
type app struct {
	cfg    *Config
	st     *state.State
	cache  *cache.Cache
	syncer *sync.Syncer
	src    sync.Source
	leases *mirror.Leases
}

func openApp(ctx context.Context, cmd *cobra.Command, withSource bool) (*app, error) {
	cfg, err := loadConfig(cmd)
	if err != nil {
		return nil, err
	}
	if err := cfg.initialised(); err != nil {
		return nil, err
	}
	tufTrust, err := cfg.tufTrust()
	if err != nil {
		return nil, err
	}
	st, err := state.Open(cfg.dbPath(), cfg.RetainSnapshots)
	if err != nil {
		return nil, err
	}
	c, err := cache.Open(cfg.DataDir)
	if err != nil {
		st.Close()
		return nil, err
	}
	log := newLogger(cfg, cmd.ErrOrStderr())
	a := &app{cfg: cfg, st: st, cache: c, leases: mirror.NewLeases(st, cfg.MirrorID, cfg.TenantID, cfg.mirrorKey)}
	if withSource {
		if a.src, err = newSource(ctx, cfg, false); err != nil {
			st.Close()
			return nil, err
		}
	}
	a.syncer = sync.New(a.src, st, c, sync.Config{
		TUF: tufTrust, Channels: cfg.Channels, Concurrency: cfg.Concurrency, MaxElapsed: cfg.RetryMaxElapsed, AuditRetention: cfg.AuditRetention,
		Logger: log, MirrorID: cfg.MirrorID, AuditExport: a.leases.ExportAudit,
		AuditExportAfter: a.leases.ExportAuditAfter, Now: clock.Now,
	})
	return a, nil
}

func (a *app) Close() error { return a.st.Close() }

// withApp opens the data dir for a one-shot command (with its sync source
// when withSource) and runs fn until it returns or the first SIGINT or
// SIGTERM (daemon.SignalContext: a second one exits at once).
func withApp(cmd *cobra.Command, withSource bool, fn func(ctx context.Context, a *app) error) error {
	ctx, stop := daemon.SignalContext(context.Background(), "mirror", cmd.ErrOrStderr())
	defer stop()
	a, err := openApp(ctx, cmd, withSource)
	if err != nil {
		return err
	}
	defer a.Close()
	return fn(ctx, a)
}

// newSource builds the configured sync source. With lazy, nothing is
// contacted here (an S3 bucket is not checked): `mirror serve` must start
// and serve what it holds while its source is away, and the sync loop
// reports and retries; a one-shot command checks at once.
func newSource(ctx context.Context, cfg *Config, lazy bool) (sync.Source, error) {
	// Checked here, not at load: status, verify and gc need no source.
	hc, err := cfg.syncClient()
	if err != nil {
		return nil, err
	}
	switch cfg.Source {
	case "controlplane":
		if cfg.VendorURL == "" || cfg.Credential == "" {
			return nil, errors.New("config: vendor_url and credential are required with source: controlplane")
		}
		return sync.NewControlPlane(cfg.VendorURL, cfg.Credential, hc)
	case "upstream":
		if cfg.UpstreamURL == "" {
			return nil, errors.New("config: upstream_url is required with source: upstream")
		}
		return sync.NewUpstream(cfg.UpstreamURL, cfg.UpstreamToken, hc)
	case "s3":
		if cfg.S3.Endpoint == "" || cfg.S3.Bucket == "" {
			return nil, errors.New("config: s3.endpoint and s3.bucket are required with source: s3")
		}
		sc := cfg.S3.Client()
		sc.SkipCheck = lazy
		store, err := s3.New(ctx, sc)
		if err != nil {
			return nil, fmt.Errorf("s3 source: %w", err)
		}
		return sync.NewBucket(store, cfg.S3.Prefix), nil
	}
	return nil, nil
}

func initCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create the data dir, the mirror's ed25519 key and a config file",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f := cmd.Flags()
			dataDir, _ := f.GetString("data-dir")
			path, _ := f.GetString("config")
			if path == "" {
				path = filepath.Join(dataDir, "mirror.yaml")
			}
			force, _ := f.GetBool("force")
			tenant, _ := f.GetString("tenant-id")
			mirrorID, _ := f.GetString("mirror-id")
			rootFile, _ := f.GetString("root-file")
			listen, _ := f.GetString("listen")
			switch {
			case tenant == "":
				return errors.New("init: --tenant-id is required")
			case rootFile == "":
				return errors.New("init: --root-file is required: the tenant's root.json, from the vendor (controlplane root show TENANT > root.json)")
			}
			source, err := initSource(f)
			if err != nil {
				return fmt.Errorf("init: %w", err)
			}
			if mirrorID != "" && !catalog.ValidID(catalog.PrefixMirror, mirrorID) {
				return fmt.Errorf("init: --mirror-id %q is not a mirror id (mir_…)", mirrorID)
			}
			root, err := readRoot(cmd.Context(), rootFile, tenant)
			if err != nil {
				return fmt.Errorf("init: --root-file: %w", err)
			}
			if _, err := os.Stat(path); err == nil && !force {
				return fmt.Errorf("init: %s exists (use --force to overwrite)", path)
			}
			if err := os.MkdirAll(dataDir, 0o700); err != nil {
				return fmt.Errorf("init: %w", err)
			}
			abs, _ := filepath.Abs(dataDir)
			// A schema 1 state cannot take TUF: it is moved aside (with
			// --force), the key and the blob cache stay.
			moved, err := setAsideSchema1(filepath.Join(abs, "mirror.db"), force)
			if err != nil {
				return fmt.Errorf("init: %w", err)
			}
			if err := writeFileAtomic(filepath.Join(abs, "root.json"), root, 0o600); err != nil {
				return fmt.Errorf("init: copy the root: %w", err)
			}
			keyFile := filepath.Join(dataDir, "mirror.key")
			pub, err := ensureKey(keyFile)
			if err != nil {
				return err
			}
			q := yamlString
			var b strings.Builder
			fmt.Fprintf(&b, "# Written by `mirror init`; configs/mirror.yaml documents every key.\n")
			fmt.Fprintf(&b, "data_dir: %s\nlisten: %s\nkey_file: %s\n", q(abs), q(listen), q(filepath.Join(abs, "mirror.key")))
			if mirrorID != "" {
				fmt.Fprintf(&b, "mirror_id: %s\n", q(mirrorID))
			}
			fmt.Fprintf(&b, "tenant_id: %s\n", q(tenant))
			// The copy in the data dir: the config stays valid if the file
			// given moves. Read once, to initialise mirror.db.
			fmt.Fprintf(&b, "trust: tuf\nroot_file: %s\n", q(filepath.Join(abs, "root.json")))
			b.WriteString(source)
			if err := writeFileAtomic(path, []byte(b.String()), 0o600); err != nil {
				return fmt.Errorf("init: write config: %w", err)
			}
			res := map[string]string{"config": path, "data_dir": abs, "key_file": keyFile, "public_key": base64.StdEncoding.EncodeToString(pub),
				"trust": "tuf", "root_file": filepath.Join(abs, "root.json")}
			if moved != "" {
				res["schema1_state"] = moved
			}
			return output(cmd, res, func(w io.Writer) {
				fmt.Fprintf(w, "config:     %s\nkey:        %s\npublic key: %s\ntrust:      %s\n", path, keyFile, res["public_key"], res["trust"])
				if moved != "" {
					fmt.Fprintf(w, "the schema 1 state was moved to %s (its lease ledger and audit chain; the next sync starts the TUF state)\n", moved)
				}
			})
		},
	}
	f := cmd.Flags()
	f.String("vendor-url", "", "control plane base URL")
	f.String("credential", "", "the mirror credential shown when the mirror was registered")
	f.String("tenant-id", "", "tenant this mirror serves")
	f.String("mirror-id", "", "this mirror's id (mir_…) as registered with the control plane; needed for leases on a mirror fed only by bundles")
	f.String("root-file", "", "the tenant's root.json from the vendor (controlplane root show TENANT): trust: tuf, copied into the data dir")
	f.Bool("force", false, "overwrite an existing config")
	f.String("source", "", "where the mirror syncs from: controlplane (the default with --vendor-url), s3, upstream or none (bundles only; the default otherwise)")
	f.String("upstream-url", "", "with --source upstream: the upstream mirror's base URL")
	f.String("upstream-token-file", "", "with --source upstream: a file holding a client token of the upstream mirror")
	f.String("s3-endpoint", "", "with --source s3: the S3 endpoint (host:port)")
	f.String("s3-bucket", "", "with --source s3: the bucket the vendor publishes the tenant's repository to")
	f.String("s3-prefix", "", "with --source s3: the key prefix of the repository in the bucket")
	f.String("s3-region", "us-east-1", "with --source s3: the bucket's region")
	f.Bool("s3-use-ssl", false, "with --source s3: talk HTTPS to the endpoint")
	f.String("s3-access-key", "", "with --source s3: the access key id")
	f.String("s3-secret-key-file", "", "with --source s3: a file holding the secret key (kept out of the command line)")
	return cmd
}

// yamlString quotes s for the config init writes (a JSON string is a
// YAML double-quoted scalar).
func yamlString(s string) string { b, _ := json.Marshal(s); return string(b) }

// initSource is the source part of the config `mirror init` writes, from
// its flags. Secrets are read from files, not flags: a command line is
// visible to every user of the machine.
func initSource(f *pflag.FlagSet) (string, error) {
	get := func(name string) string { v, _ := f.GetString(name); return v }
	q := yamlString
	secret := func(flag string) (string, error) {
		path := get(flag)
		if path == "" {
			return "", nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("--%s: %w", flag, err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	source := get("source")
	if source == "" {
		source = "none"
		if get("vendor-url") != "" {
			source = "controlplane"
		}
	}
	// A flag of another source is a mistake, not something to ignore.
	owned := map[string][]string{
		"controlplane": {"vendor-url", "credential"},
		"upstream":     {"upstream-url", "upstream-token-file"},
		"s3":           {"s3-endpoint", "s3-bucket", "s3-prefix", "s3-region", "s3-use-ssl", "s3-access-key", "s3-secret-key-file"},
	}
	if _, ok := owned[source]; !ok && source != "none" {
		return "", fmt.Errorf("--source %q: want controlplane, s3, upstream or none", source)
	}
	for src, flags := range owned {
		for _, name := range flags {
			if src != source && f.Changed(name) {
				return "", fmt.Errorf("--%s is for --source %s, not %s", name, src, source)
			}
		}
	}
	switch source {
	case "controlplane":
		// The credential may come later: the mirror's key (made here)
		// is what registering it needs, and registering yields the
		// credential (init again with --force --credential).
		if get("vendor-url") == "" {
			return "", errors.New("--source controlplane needs --vendor-url (and --credential, once the mirror is registered)")
		}
		return fmt.Sprintf("source: controlplane\nvendor_url: %s\ncredential: %s\n", q(get("vendor-url")), q(get("credential"))), nil
	case "upstream":
		if get("upstream-url") == "" {
			return "", errors.New("--source upstream needs --upstream-url")
		}
		tok, err := secret("upstream-token-file")
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("source: upstream\nupstream_url: %s\nupstream_token: %s\n", q(get("upstream-url")), q(tok)), nil
	case "s3":
		if get("s3-endpoint") == "" || get("s3-bucket") == "" {
			return "", errors.New("--source s3 needs --s3-endpoint and --s3-bucket")
		}
		key, err := secret("s3-secret-key-file")
		if err != nil {
			return "", err
		}
		ssl, _ := f.GetBool("s3-use-ssl")
		return fmt.Sprintf("source: s3\ns3:\n  endpoint: %s\n  bucket: %s\n  prefix: %s\n  region: %s\n  use_ssl: %t\n  access_key: %s\n  secret_key: %s\n",
			q(get("s3-endpoint")), q(get("s3-bucket")), q(get("s3-prefix")), q(get("s3-region")), ssl, q(get("s3-access-key")), q(key)), nil
	}
	return "source: none\n", nil
}

// maxRootFile caps a root.json read by init (the sync's cap too).
const maxRootFile = 512 << 10

// readRoot reads a tenant's root.json and checks it as the mirror's sync
// will: signed by its own threshold and naming tenant.
func readRoot(ctx context.Context, path, tenant string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxRootFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxRootFile {
		return nil, fmt.Errorf("%s: more than %d bytes: not a root.json", path, maxRootFile)
	}
	if err := tuf.Init(ctx, tuf.NewMemStore(), tenant, b); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return b, nil
}

// setAsideSchema1 moves a mirror.db that holds a schema 1 snapshot to
// mirror.db.schema1-<time> (only with force) and returns where; a state
// with no snapshot or a TUF one stays. Opening it fails while a daemon
// holds it.
func setAsideSchema1(db string, force bool) (string, error) {
	if _, err := os.Stat(db); errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	st, err := state.Open(db, 1)
	if err != nil {
		return "", fmt.Errorf("open %s (stop the mirror first): %w", db, err)
	}
	rec, err := st.CurrentRecord()
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("read %s: %w", db, err)
	}
	if rec == nil || rec.Format == state.FormatTUF {
		return "", nil
	}
	if !force {
		return "", fmt.Errorf("%s holds schema 1 snapshot %d: add --force to move it aside and start the TUF state", db, rec.Sequence)
	}
	to := db + ".schema1-" + time.Now().UTC().Format("20060102T150405Z")
	if err := os.Rename(db, to); err != nil {
		return "", err
	}
	return to, nil
}

// ensureKey creates the mirror's ed25519 key (0600) unless it exists.
func ensureKey(path string) (ed25519.PublicKey, error) {
	if k, err := loadKey(path); err == nil {
		return k.Public().(ed25519.PublicKey), nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(path, []byte(base64.StdEncoding.EncodeToString(priv.Seed())+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("write key: %w", err)
	}
	return pub, nil
}

// loadKey reads the mirror's key (base64 of the 32-byte seed).
func loadKey(path string) (ed25519.PrivateKey, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	seed, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(raw)))
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("key %s: not base64 of a 32-byte ed25519 seed", path)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// writeFileAtomic creates path's directory if needed and replaces the file
// atomically.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return fsutil.WriteFile(path, data, mode)
}

func serveCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "serve",
		Short: "Run the sync loop and serve clients over HTTP",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := daemon.SignalContext(context.Background(), "mirror", cmd.ErrOrStderr())
			defer stop()
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			tufTrust, err := cfg.tufTrust()
			if err != nil {
				return err
			}
			log := newLogger(cfg, cmd.ErrOrStderr())
			// The mirror's own key signs offline licence leases; a broken
			// key file fails now, a missing one answers 503.
			if _, err := loadKey(cfg.KeyFile); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
			// The daemon starts whatever its source's state: it serves
			// what it holds, and the sync loop reports and retries.
			src, err := newSource(ctx, cfg, true)
			if err != nil {
				return err
			}
			m, err := mirror.Open(ctx, mirror.Config{
				DBPath: cfg.dbPath(), Retain: cfg.RetainSnapshots, DataDir: cfg.DataDir, Listen: cfg.Listen,
				TLS: cfg.TLS, Source: src, SyncInterval: cfg.SyncInterval, AdminSocket: cfg.AdminSocket,
				Sync:     sync.Config{TUF: tufTrust, Channels: cfg.Channels, Concurrency: cfg.Concurrency, MaxElapsed: cfg.RetryMaxElapsed, AuditRetention: cfg.AuditRetention},
				InboxDir: cfg.InboxDir, InboxInterval: cfg.InboxInterval, GCInterval: cfg.GCInterval,
				ShutdownTimeout: cfg.ShutdownTimeout, ServeExpired: cfg.ServeExpired, ClientTokens: cfg.ClientTokens,
				RateLimits: cfg.RateLimit, BodyTimeout: cfg.BodyTimeout, WriteTimeout: cfg.WriteTimeout, StreamIdleTimeout: cfg.StreamIdleTimeout,
				Events:           fleet.Options{Window: cfg.Events.Window, MaxAggregates: cfg.Events.MaxAggregates},
				EventBatch:       fleet.BatchLimits{MaxBytes: cfg.Events.MaxBatchBytes, MaxEvents: cfg.Events.MaxBatchEvents},
				AdminTokenHashes: cfg.AdminTokenHashes,
				Updates:          updateHandler, MirrorID: cfg.MirrorID, TenantID: cfg.TenantID, Key: cfg.mirrorKey,
				Logger: log, Now: clock.Now,
			})
			if err != nil {
				return err
			}
			runErr := m.Run(ctx)
			// Run returned: every part is joined. Close closes the state.
			cctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
			defer cancel()
			if err := m.Close(cctx); err != nil && runErr == nil {
				runErr = err
			}
			return runErr
		},
	}
}

// updateHandler builds the update-check endpoint for a held snapshot.
func updateHandler(m *snapshot.Manifest) (http.Handler, error) {
	e, err := update.New(m)
	if err != nil {
		return nil, err
	}
	return update.Handler{Engine: e, Now: clock.Now}, nil
}

func syncCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sync",
		Short: "Sync once from the configured source and exit (through the running daemon when `serve` runs)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if d, ctx, done, err := runningDaemon(cmd); err != nil || d != nil {
				if err != nil {
					return err
				}
				defer done()
				res, err := d.Sync(ctx)
				if err != nil {
					return err
				}
				return printSync(cmd, res)
			}
			return withApp(cmd, true, func(ctx context.Context, a *app) error {
				if a.src == nil {
					return mirror.ErrNoSource
				}
				meter := progress.New(cmd.ErrOrStderr(), "sync download", 0, progress.Options{})
				a.syncer.SetProgress(meter)
				res, err := a.syncer.Once(ctx)
				meter.Finish()
				if err != nil {
					return fmt.Errorf("sync: %w%s", err, unreachableHint(err, a.cfg))
				}
				return printSync(cmd, res)
			})
		},
	}
	cmd.Flags().Bool("once", true, "sync once and exit: always so, kept for scripts ('mirror serve' is the loop)")
	return cmd
}

func printSync(cmd *cobra.Command, res state.SyncResult) error {
	return output(cmd, res, func(w io.Writer) {
		if res.Changed {
			fmt.Fprintf(w, "committed snapshot %s (sequence %d): %d artifacts, %d bytes downloaded\n", res.SnapshotID, res.Sequence, res.Downloaded, res.Bytes)
		} else {
			fmt.Fprintf(w, "up to date at sequence %d\n", res.Sequence)
		}
	})
}

// runningDaemon returns a client of the `mirror serve` that runs on the
// command's data dir (its admin socket answers), with the command's
// context and its release; nil when none runs, and the command opens the
// data dir itself.
func runningDaemon(cmd *cobra.Command) (*mirror.AdminClient, context.Context, func(), error) {
	cfg, err := loadConfig(cmd)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := cfg.initialised(); err != nil {
		return nil, nil, nil, err
	}
	if cfg.AdminSocket == "" {
		return nil, nil, nil, nil
	}
	ctx, stop := daemon.SignalContext(context.Background(), "mirror", cmd.ErrOrStderr())
	d, ok := mirror.DialAdmin(ctx, cfg.AdminSocket)
	if !ok {
		stop()
		return nil, nil, nil, nil
	}
	return d, ctx, stop, nil
}

func importCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "import BUNDLE",
		Short: "Import an offline bundle (use - for stdin; through the running daemon when `serve` runs)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dry, _ := cmd.Flags().GetBool("dry-run")
			open := func() (io.Reader, func(), error) {
				if args[0] == "-" {
					return cmd.InOrStdin(), func() {}, nil
				}
				f, err := os.Open(args[0])
				if err != nil {
					return nil, nil, fmt.Errorf("import: %w", err)
				}
				return f, func() { f.Close() }, nil
			}
			// metered opens the bundle behind a progress meter.
			metered := func() (io.Reader, *progress.Meter, func(), error) {
				r, closeR, err := open()
				if err != nil {
					return nil, nil, nil, err
				}
				size := int64(-1)
				if f, ok := r.(*os.File); ok {
					if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
						size = fi.Size()
					}
				}
				meter := progress.New(cmd.ErrOrStderr(), "import", size, progress.Options{})
				return meter.Reader(r), meter, closeR, nil
			}
			if d, ctx, done, err := runningDaemon(cmd); err != nil || d != nil {
				if err != nil {
					return err
				}
				defer done()
				r, meter, closeR, err := metered()
				if err != nil {
					return err
				}
				defer closeR()
				rep, err := d.Import(ctx, r, dry)
				meter.Finish()
				if err != nil {
					return fmt.Errorf("import %s: %w", args[0], err)
				}
				return printImport(cmd, rep, dry)
			}
			return withApp(cmd, false, func(ctx context.Context, a *app) error {
				r, meter, closeR, err := metered()
				if err != nil {
					return err
				}
				defer closeR()
				rep, err := a.syncer.Import(ctx, r, dry)
				meter.Finish()
				if err != nil {
					return fmt.Errorf("import %s: %w", args[0], err)
				}
				return printImport(cmd, rep, dry)
			})
		},
	}
	cmd.Flags().Bool("dry-run", false, "verify and report what would change; write nothing")
	return cmd
}

func printImport(cmd *cobra.Command, rep sync.ImportReport, dry bool) error {
	return output(cmd, rep, func(w io.Writer) {
		verb := "imported"
		if dry {
			verb = "would import"
		}
		switch {
		case rep.Changed:
			fmt.Fprintf(w, "%s snapshot %s (sequence %d, held %d): %d artifacts from the bundle (%d bytes), %d already cached, %d skipped\n",
				verb, rep.SnapshotID, rep.Sequence, rep.HeldSequence, rep.Imported, rep.Bytes, rep.Cached, rep.Skipped)
			if rep.Rebuilt > 0 {
				fmt.Fprintf(w, "%d of them rebuilt from a delta and a base the mirror holds, each verified against its signed sha256\n", rep.Rebuilt)
			}
		case rep.Refreshed:
			fmt.Fprintf(w, "snapshot %d is already held: its fresher timestamp (expires %s) is served\n", rep.Sequence, rep.ExpiresAt.Format(time.RFC3339))
		default:
			fmt.Fprintf(w, "snapshot %d is already held: nothing to commit\n", rep.Sequence)
		}
		if a := rep.Acknowledged; a != nil {
			fmt.Fprintf(w, "the vendor acknowledges audit events through %d and client events through %d: the next `mirror report export` starts after them\n", a.AuditSeq, a.FleetThrough)
			for _, why := range a.Ignored {
				fmt.Fprintf(w, "warning: acknowledgement not recorded: %s\n", why)
			}
		}
	})
}

func statusCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the held snapshot, last sync and cache state",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := context.Background()
			server, _ := cmd.Flags().GetString("server")
			var st mirror.Status
			if server != "" {
				token, _ := cmd.Flags().GetString("token")
				caFile, _ := cmd.Flags().GetString("ca-file")
				if err := remoteStatus(ctx, server, token, caFile, &st); err != nil {
					return err
				}
			} else if d, dctx, done, err := runningDaemon(cmd); err != nil || d != nil {
				if err != nil {
					return err
				}
				defer done()
				if st, err = d.Status(dctx); err != nil {
					return fmt.Errorf("status: %w", err)
				}
			} else {
				cfg, err := loadConfig(cmd)
				if err != nil {
					return err
				}
				s, err := state.Open(cfg.dbPath(), cfg.RetainSnapshots)
				if err != nil {
					return err
				}
				defer s.Close()
				c, err := cache.Open(cfg.DataDir)
				if err != nil {
					return err
				}
				if st, err = mirror.LocalStatus(ctx, s, c, clock.Now()); err != nil {
					return err
				}
			}
			return output(cmd, st, func(w io.Writer) {
				if st.Snapshot == nil {
					fmt.Fprintln(w, "snapshot:  none held")
				} else {
					exp := ""
					if st.Snapshot.Expired {
						exp = " (EXPIRED)"
					}
					fmt.Fprintf(w, "snapshot:  %s sequence %d, expires %s%s\n", st.Snapshot.SnapshotID, st.Snapshot.Sequence, st.Snapshot.ExpiresAt.Format(time.RFC3339), exp)
				}
				if st.LastSync != nil {
					res := "ok"
					if !st.LastSync.OK {
						res = "error: " + st.LastSync.Error
					}
					fmt.Fprintf(w, "last sync: %s from %s: %s\n", st.LastSync.At.Format(time.RFC3339), st.LastSync.Source, res)
				}
				fmt.Fprintf(w, "cache:     %d blobs, %d bytes, %d missing, %d quarantined\n", st.Cache.Blobs, st.Cache.Bytes, st.Cache.Missing, st.Cache.Quarantined)
				if e := st.Events; e != nil {
					fmt.Fprintf(w, "events:    %d received (%d acknowledged by the vendor):", e.LastSeq, e.Acked)
					for _, t := range fleet.Types {
						fmt.Fprintf(w, " %s %d", t, e.Totals[string(t)])
					}
					fmt.Fprintln(w)
				}
			})
		},
	}
	cmd.Flags().String("server", "", "ask a running mirror at this URL instead of reading the data dir")
	cmd.Flags().String("token", "", "client token for --server")
	cmd.Flags().String("ca-file", "", "PEM CA certificate(s) an https --server must chain to (only they are trusted)")
	return cmd
}

func remoteStatus(ctx context.Context, server, token, caFile string, st *mirror.Status) error {
	hc := http.DefaultClient
	if caFile != "" {
		tc, err := tlsconf.NewClient(tlsconf.ClientConfig{CAFile: caFile}, nil)
		if err != nil {
			return fmt.Errorf("status: %w", err)
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = tc
		hc = &http.Client{Transport: tr}
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(server, "/")+"/v1/status", nil)
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("status: cannot reach the mirror at %s (--server): %w; is `mirror serve` running there? check --server, or drop it to read the data dir", server, errors.Unwrap(err))
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusUnauthorized && token == "":
		return fmt.Errorf("status: %s answered %s: the mirror requires a client token; pass one with --token (a client_tokens entry of its mirror.yaml)", server, resp.Status)
	case resp.StatusCode == http.StatusUnauthorized:
		return fmt.Errorf("status: %s answered %s: the mirror refused the token; pass one of its client_tokens with --token", server, resp.Status)
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("status: %s answered %s", server, resp.Status)
	}
	return json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(st)
}

func verifyCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "verify",
		Short: "Re-hash every cached blob; quarantine and report corrupt ones (through the running daemon when `serve` runs)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if d, ctx, done, err := runningDaemon(cmd); err != nil || d != nil {
				if err != nil {
					return err
				}
				defer done()
				out, err := d.Verify(ctx)
				if err != nil {
					return err
				}
				cfg, err := loadConfig(cmd)
				if err != nil {
					return err
				}
				return printVerify(cmd, out, cfg.Source)
			}
			return withApp(cmd, false, func(ctx context.Context, a *app) error {
				out, err := mirror.VerifyCache(ctx, a.st, a.cache, a.syncer)
				if err != nil {
					return err
				}
				return printVerify(cmd, out, a.cfg.Source)
			})
		},
	}
}

// printVerify prints the report; corrupt or missing blobs fail the
// command.
func printVerify(cmd *cobra.Command, out mirror.VerifyResult, source string) error {
	if err := output(cmd, out, func(w io.Writer) {
		fmt.Fprintf(w, "checked %d blobs (%d bytes): %d corrupt (quarantined), %d missing from the held snapshot\n", out.Checked, out.Bytes, len(out.Quarantined), out.Missing)
		for _, sha := range out.Quarantined {
			fmt.Fprintf(w, "corrupt: %s\n", sha)
		}
	}); err != nil {
		return err
	}
	if len(out.Quarantined) > 0 || out.Missing > 0 {
		return fmt.Errorf("verify: %d corrupt, %d missing; %s", len(out.Quarantined), out.Missing, refetchHint(source))
	}
	return nil
}

func gcCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "gc",
		Short: "Remove blobs no retained snapshot references (through the running daemon when `serve` runs)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if d, ctx, done, err := runningDaemon(cmd); err != nil || d != nil {
				if err != nil {
					return err
				}
				defer done()
				rep, err := d.GC(ctx)
				if err != nil {
					return err
				}
				return printGC(cmd, rep)
			}
			ctx := context.Background()
			a, err := openApp(ctx, cmd, false)
			if err != nil {
				return err
			}
			defer a.Close()
			rep, err := a.syncer.GC(ctx)
			if err != nil {
				return err
			}
			return printGC(cmd, rep)
		},
	}
}

func printGC(cmd *cobra.Command, rep cache.GCReport) error {
	return output(cmd, rep, func(w io.Writer) {
		fmt.Fprintf(w, "removed %d blobs (%d bytes), kept %d\n", rep.Removed, rep.Bytes, rep.Kept)
	})
}

// refetchHint says how a mirror gets missing or corrupt blobs back: a
// sync from its source, or, air-gapped (source: none), a bundle.
func refetchHint(source string) string {
	if source == "" || source == "none" {
		return "this mirror has no sync source (source: none): ask the vendor for a full bundle (`controlplane bundle export --tenant …`) and import it (`mirror import BUNDLE`, or drop it into the inbox)"
	}
	return "run `mirror sync` to fetch them again"
}

// unreachableHint names the config keys behind a source that could not be
// reached ("" for other errors).
func unreachableHint(err error, cfg *Config) string {
	var op *net.OpError
	if !errors.As(err, &op) {
		return ""
	}
	key := map[string]string{"controlplane": "vendor_url", "upstream": "upstream_url", "s3": "s3.endpoint"}[cfg.Source]
	return fmt.Sprintf("; the %s source could not be reached (retried for retry_max_elapsed, %s): check %s in mirror.yaml (or OUTPOST_%s), and that it is up",
		cfg.Source, cfg.RetryMaxElapsed, key, strings.ToUpper(strings.ReplaceAll(key, ".", "_")))
}
