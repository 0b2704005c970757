package controlplane

import (
	"crypto/ed25519"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/outpost/outpost/internal/blob"
	"github.com/outpost/outpost/internal/delta"
	"github.com/outpost/outpost/internal/deltajob"
	"github.com/outpost/outpost/internal/fleet/kvsink"
	"github.com/outpost/outpost/internal/snapshot"
	"github.com/outpost/outpost/internal/store"
	"github.com/outpost/outpost/internal/webhook"
)

// Artifact delivery modes.
const (
	DeliveryProxy    = "proxy"    // stream bytes through the control plane
	DeliveryRedirect = "redirect" // send the client to a presigned URL where the blob store can presign
)

// Config tunes the service; zero values take the defaults.
type Config struct {
	MaxArtifactBytes int64         // artifact uploads (default 64 GiB)
	SnapshotTTL      time.Duration // snapshot expires_at - created_at (default 30 days)
	ArtifactDelivery string        // DeliveryProxy (default) or DeliveryRedirect
	PresignTTL       time.Duration // default 15 minutes
	ExternalTimeout  time.Duration // EXTERNAL artifact verification (default 1 hour)
	// AllowPrivateURLs lets EXTERNAL artifact URLs point at loopback and
	// private addresses (off by default: see externalClient).
	AllowPrivateURLs bool
	// AllowPrivateWebhooks lets webhook endpoints be plain http:// and on
	// loopback and private addresses (tests, a lab; off by default).
	AllowPrivateWebhooks bool
	// DeltaPrevious: a new release artifact gets deltas from the artifacts
	// of this many earlier releases (docs/deltas.md); 0 means the default
	// 3, a negative value turns delta builds off.
	DeltaPrevious int
	// DeltaMaxShare: a delta larger than this share of its artifact is
	// not offered (default delta.DefaultMaxShare, 0.60).
	DeltaMaxShare float64
	// DeltaLease is how long a claimed delta build holds its job before
	// another worker may take it over (renewed while building; default
	// 10 minutes).
	DeltaLease time.Duration
	// DeltaTempDir holds the temp files of a build (default os.TempDir()).
	DeltaTempDir string
	// MaxExpensive caps the expensive operations running at once
	// (snapshot builds, tenant view assembly, bundle planning): beyond
	// it an API request is answered 503 with Retry-After (default
	// max(2, GOMAXPROCS)). Concurrent requests for the same work share
	// one run and take one slot.
	MaxExpensive int
	// RetryAfter is what a busy answer tells the client to wait
	// (default DefaultRetryAfter).
	RetryAfter time.Duration
	// Retention of old snapshots and TUF metadata (retention.go).
	Retention Retention
	// MirrorStaleAfter is how long a registered mirror may go without a
	// sync report or a fleet report before housekeeping records
	// mirror.stale (CheckStaleMirrors; default 24h, negative: off).
	MirrorStaleAfter time.Duration
}

func (c *Config) defaults() {
	if c.MaxArtifactBytes <= 0 {
		c.MaxArtifactBytes = 64 << 30
	}
	if c.SnapshotTTL <= 0 {
		c.SnapshotTTL = 30 * 24 * time.Hour
	}
	if c.ArtifactDelivery == "" {
		c.ArtifactDelivery = DeliveryProxy
	}
	if c.PresignTTL <= 0 {
		c.PresignTTL = 15 * time.Minute
	}
	if c.ExternalTimeout <= 0 {
		c.ExternalTimeout = time.Hour
	}
	switch {
	case c.DeltaPrevious == 0:
		c.DeltaPrevious = 3
	case c.DeltaPrevious < 0:
		c.DeltaPrevious = 0
	}
	if c.DeltaMaxShare <= 0 {
		c.DeltaMaxShare = delta.DefaultMaxShare
	}
	if c.DeltaLease <= 0 {
		c.DeltaLease = 10 * time.Minute
	}
	if c.MaxExpensive <= 0 {
		c.MaxExpensive = defaultMaxExpensive()
	}
	if c.RetryAfter <= 0 {
		c.RetryAfter = DefaultRetryAfter
	}
	c.Retention.defaults()
	if c.MirrorStaleAfter == 0 {
		c.MirrorStaleAfter = DefaultMirrorStaleAfter
	}
}

// PublicKey is a vendor signing key as GET /v1/keys shows it.
type PublicKey struct {
	KeyID     string            `json:"key_id"`
	PublicKey ed25519.PublicKey `json:"public_key"` // base64 in JSON
	Status    string            `json:"status"`
	CreatedAt time.Time         `json:"created_at"`
}

// Keyring gives the active signers and every public key.
type Keyring interface {
	Signers() []snapshot.Signer
	PublicKeys() []PublicKey
}

// Options are the parts an App works with.
type Options struct {
	Store   store.Store
	Blobs   blob.Store
	Keys    Keyring
	Secrets *Sealer // seals mirror credentials and remembered answers
	Log     *slog.Logger
	Config  Config
	Now     func() time.Time // default time.Now
	// HTTPClient fetches EXTERNAL artifacts (verification, bundles);
	// default: one that refuses non-public addresses unless
	// Config.AllowPrivateURLs.
	HTTPClient *http.Client
}

// App is the control plane's application layer over a store, a blob store
// and a keyring: the local implementation of Service, and the
// housekeeping the daemon runs.
type App struct {
	store   store.Store
	blobs   blob.Store
	keys    Keyring
	secrets *Sealer
	log     *slog.Logger
	cfg     Config
	clock   func() time.Time
	http    *http.Client
	engines engineCache
	touched sync.Map        // token id -> time.Time of this instance's last TouchToken
	signers sync.Map        // tenant id -> *signedBy of its latest snapshot (leaseSigner)
	tuf     *tufState       // nil until EnableTUF
	fleet   *kvsink.Sink    // nil when the store is not on store/kv
	hooks   webhook.Store   // the webhook outbox; nil when the store is not on store/kv
	deltas  *deltajob.Queue // the delta build queue; nil when the store is not on store/kv
	// deltaWake nudges RunDeltaWorker when builds were queued.
	deltaWake chan struct{}

	gate   *gate              // caps expensive operations (herd.go)
	flight singleflight.Group // coalesces view assembly and envelope loads
	builds buildQueue         // coalesces snapshot builds per tenant
	bg     sync.WaitGroup     // follow-up builds running for callers that left
	count  counters
}

var _ Service = (*App)(nil)

// New returns an App over o's parts.
func New(o Options) *App {
	o.Config.defaults()
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.HTTPClient == nil {
		o.HTTPClient = externalClient(o.Config.ExternalTimeout, o.Config.AllowPrivateURLs)
	}
	return &App{
		store: o.Store, blobs: o.Blobs, keys: o.Keys, secrets: o.Secrets, log: o.Log, cfg: o.Config, clock: o.Now, http: o.HTTPClient,
		fleet: fleetSinkOf(o.Store), hooks: installWebhooks(o.Store, o.Secrets),
		deltas: deltaQueueOf(o.Store), deltaWake: make(chan struct{}, 1),
		gate: newGate(o.Config.MaxExpensive),
	}
}

// Config is the App's configuration with defaults applied.
func (a *App) Config() Config { return a.cfg }

func (a *App) now() time.Time { return a.clock().UTC() }

// Now is the service's clock, in UTC.
func (a *App) Now() time.Time { return a.now() }
