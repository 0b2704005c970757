package tuf

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/trustedmetadata"
)

// maxBitLength caps succinct hashed bins at 65,536 per role (the builder
// uses at most 16 bits).
const maxBitLength = 16

// Client errors; each wraps what go-tuf reported when there is more.
var (
	ErrNotInitialised = errors.New("no trusted root: initialise the client with the tenant's root")
	ErrWrongTenant    = errors.New("metadata is for another tenant")
	ErrExpired        = errors.New("metadata has expired")
	ErrTooLarge       = errors.New("file exceeds its size cap")
	ErrOutsideRole    = errors.New("target outside the paths delegated to its role")
	ErrTargetMismatch = errors.New("target bytes do not match their signed length and hash")
)

// Limits cap every file the client fetches (endless-data attack). A
// file whose length is signed (snapshot in timestamp, documents in
// targets) is capped at that length.
type Limits struct {
	Root             int64 // default 512 KiB
	Timestamp        int64 // default 16 KiB
	Snapshot         int64 // used when the timestamp gives no length; default 32 MiB
	Targets          int64 // per targets role; default 32 MiB
	Document         int64 // per document, on top of its signed length; default 64 MiB
	MaxRootRotations int   // root versions walked in one update; default 256
}

func (l Limits) withDefaults() Limits {
	def := func(v *int64, d int64) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.Root, 512<<10)
	def(&l.Timestamp, 16<<10)
	def(&l.Snapshot, 32<<20)
	def(&l.Targets, 32<<20)
	def(&l.Document, 64<<20)
	if l.MaxRootRotations <= 0 {
		l.MaxRootRotations = 256
	}
	return l
}

// ClientOptions configure a Client.
type ClientOptions struct {
	Limits Limits
	Now    func() time.Time // default time.Now
}

// Client runs the TUF client workflow for one tenant: root chain walk,
// timestamp, snapshot, the targets roles whose version changed, then the
// documents whose hash changed. It keeps verified metadata in a Store
// (verify first, then persist; the timestamp last), so rollback and
// freeze are refused across restarts. Not safe for concurrent use.
type Client struct {
	tenantID string
	fetch    Fetcher
	store    Store
	limits   Limits
	now      func() time.Time
	repo     *Repository // last verified state; nil until loaded
}

// Repository is a verified state of a tenant's repository.
type Repository struct {
	TenantID  string
	Root      *Root
	Timestamp *metadata.Metadata[metadata.TimestampType]
	Snapshot  *metadata.Metadata[metadata.SnapshotType]
	// Roles are the reachable targets roles by name, "targets" included.
	// A hashed bin's targets are held compactly (about half go-tuf's
	// form): its Signed.Targets is empty. Read artifact targets with
	// Target, CheckAnswer or Manifest.
	Roles map[string]*Targets
	Docs  map[string][]byte // documents by target path

	compact                     map[string]compactRole // bins' targets
	timestampData, snapshotData []byte
}

// Target is an artifact target as the client reports it.
type Target struct {
	Path   string
	Length int64
	SHA256 string
	Custom Custom
}

// Changes is what an Update changed, so that a caller fetches only the
// new artifacts.
type Changes struct {
	RootVersion      int64 // current versions
	TimestampVersion int64
	SnapshotVersion  int64
	RootRotations    int      // root versions walked
	Roles            []string // targets roles fetched
	Documents        []string // documents fetched
	Targets          []Target // artifact targets added or changed
	Removed          []string // artifact target paths gone
	BytesFetched     int64
}

// Changed says whether anything beyond the timestamp changed.
func (c *Changes) Changed() bool {
	return c.RootRotations > 0 || len(c.Roles) > 0 || len(c.Documents) > 0
}

// Init stores the tenant's initial trusted root (obtained out of band)
// after checking that it is signed by its own threshold and names
// tenantID. It refuses to replace a root already held.
func Init(ctx context.Context, s Store, tenantID string, root []byte) error {
	if _, err := s.Get(ctx, storeRoot); err == nil {
		return errors.New("init: the store already holds a trusted root")
	} else if !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("init: %w", err)
	}
	tm, err := trustedmetadata.New(root)
	if err != nil {
		return fmt.Errorf("init: root: %w", err)
	}
	if got := tenantOf(tm.Root.Signed.UnrecognizedFields); got != tenantID {
		return fmt.Errorf("init: root is for tenant %q, want %q: %w", got, tenantID, ErrWrongTenant)
	}
	return s.Put(ctx, storeRoot, root)
}

// Store names.
const (
	storeRoot      = "metadata/root.json"
	storeTimestamp = "metadata/timestamp.json"
	storeSnapshot  = "metadata/snapshot.json"
)

func storeRole(role string) string { return "metadata/" + role + ".json" }
func storeDoc(path string) string  { return "targets/" + path }

// NewClient returns a client of tenantID's repository read through f,
// keeping its trust in s (initialised with Init).
func NewClient(tenantID string, f Fetcher, s Store, o ClientOptions) *Client {
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Client{tenantID: tenantID, fetch: f, store: s, limits: o.Limits.withDefaults(), now: o.Now}
}

// Repository returns the last verified state (nil before the first
// successful Update or Load).
func (c *Client) Repository() *Repository { return c.repo }

// Restore sets the verified state back to r, a state this client
// returned earlier (nil: none, the store is read again), after the
// caller discarded what a later Update wrote to a staging Store (a
// bundle import refused after its metadata verified, or a dry run).
func (c *Client) Restore(r *Repository) { c.repo = r }

// get fetches path, refusing more than max bytes.
func (c *Client) get(ctx context.Context, path string, max int64, ch *Changes) ([]byte, error) {
	rc, err := c.fetch.Fetch(ctx, path, max)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", path, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, max+1))
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", path, err)
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("fetch %s: more than %d bytes: %w", path, max, ErrTooLarge)
	}
	ch.BytesFetched += int64(len(data))
	return data, nil
}

// local is the state the client starts an update from.
type local struct {
	root          []byte
	timestampData []byte
	snapshotData  []byte
	roles         map[string]*Targets
	compact       map[string]compactRole
	docs          map[string][]byte
}

// loadLocal returns the in-memory state or reads it from the store. The
// store holds only verified metadata, so roles and documents are parsed,
// not verified again; timestamp and snapshot go through the trusted
// state machine as usual.
func (c *Client) loadLocal(ctx context.Context) (*local, error) {
	root, err := c.store.Get(ctx, storeRoot)
	if errors.Is(err, ErrNotFound) {
		return nil, ErrNotInitialised
	}
	if err != nil {
		return nil, err
	}
	l := &local{root: root, roles: map[string]*Targets{}, compact: map[string]compactRole{}, docs: map[string][]byte{}}
	if r := c.repo; r != nil {
		l.timestampData, l.snapshotData, l.roles, l.compact, l.docs = r.timestampData, r.snapshotData, r.Roles, r.compact, r.Docs
		return l, nil
	}
	if l.timestampData, err = c.optional(ctx, storeTimestamp); err != nil {
		return nil, err
	}
	if l.snapshotData, err = c.optional(ctx, storeSnapshot); err != nil {
		return nil, err
	}
	if l.snapshotData == nil {
		return l, nil
	}
	snap, err := metadata.Snapshot().FromBytes(l.snapshotData)
	if err != nil {
		return l, nil // unreadable: fetched again
	}
	for name := range snap.Signed.Meta {
		role, err := parseMetaName(name)
		if err != nil || checkName(storeRole(role)) != nil {
			continue
		}
		data, err := c.optional(ctx, storeRole(role))
		if err != nil {
			return nil, err
		}
		if data == nil {
			continue
		}
		var t *Targets
		if fr, ok := fastParse(data); ok {
			t = fr.t
		} else if t, err = metadata.Targets().FromBytes(data); err != nil {
			t = nil
		}
		if t != nil {
			l.roles[role] = t
			if isBinName(role) {
				if cr, ok := compactTargets(t); ok {
					l.compact[role], t.Signed.Targets = cr, nil
					continue
				}
			}
			for path, tf := range t.Signed.Targets {
				if tf.Custom == nil && checkName(storeDoc(path)) == nil {
					doc, err := c.optional(ctx, storeDoc(path))
					if err != nil {
						return nil, err
					}
					if doc != nil {
						l.docs[path] = doc
					}
				}
			}
		}
	}
	return l, nil
}

func (c *Client) optional(ctx context.Context, name string) ([]byte, error) {
	b, err := c.store.Get(ctx, name)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	return b, err
}

// Update runs the client workflow once and returns what changed. On any
// error nothing of this run is trusted, and nothing is persisted except
// what was verified before the error: root versions (as TUF prescribes)
// and targets roles, which count only at the version a stored snapshot
// names. The previous Repository stays in place.
func (c *Client) Update(ctx context.Context) (*Changes, error) {
	now := c.now().UTC()
	ch := &Changes{}
	l, err := c.loadLocal(ctx)
	if err != nil {
		return nil, fmt.Errorf("update: %w", err)
	}
	tm, err := trustedmetadata.New(l.root)
	if err != nil {
		return nil, fmt.Errorf("update: trusted root: %w", err)
	}
	tm.RefTime = now
	if err := c.checkTenant("root", tm.Root.Signed.UnrecognizedFields); err != nil {
		return nil, err
	}
	oldRoot := tm.Root

	// 1. Root chain: every next version, each signed by the previous
	// threshold and its own.
	for range c.limits.MaxRootRotations {
		v := tm.Root.Signed.Version + 1
		data, err := c.get(ctx, MetadataPath(metadata.ROOT, v), c.limits.Root, ch)
		if errors.Is(err, ErrNotFound) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("update: %w", err)
		}
		if _, err := tm.UpdateRoot(data); err != nil {
			return nil, fmt.Errorf("update: root v%d: %w", v, err)
		}
		if err := c.checkTenant("root", tm.Root.Signed.UnrecognizedFields); err != nil {
			return nil, err
		}
		if err := c.store.Put(ctx, storeRoot, data); err != nil {
			return nil, fmt.Errorf("update: %w", err)
		}
		ch.RootRotations++
	}
	if tm.Root.Signed.IsExpired(now) {
		return nil, fmt.Errorf("update: root v%d expired at %s: %w", tm.Root.Signed.Version, tm.Root.Signed.Expires, ErrExpired)
	}
	// Fast-forward recovery: a role whose keys the root changed loses its
	// local copy, so versions signed by a removed key stop counting.
	rotated := func(role string) bool {
		a, b := oldRoot.Signed.Roles[role], tm.Root.Signed.Roles[role]
		return a == nil || b == nil || a.Threshold != b.Threshold || !slices.Equal(a.KeyIDs, b.KeyIDs)
	}

	// 2. Timestamp.
	if l.timestampData != nil && !rotated(metadata.TIMESTAMP) {
		if _, err := tm.UpdateTimestamp(l.timestampData); err != nil && !errors.Is(err, &metadata.ErrRepository{}) {
			return nil, fmt.Errorf("update: local timestamp: %w", err)
		}
	}
	tsData, err := c.get(ctx, MetadataPath(metadata.TIMESTAMP, 0), c.limits.Timestamp, ch)
	if err != nil {
		return nil, fmt.Errorf("update: %w", err)
	}
	tsNew := true
	if _, err := tm.UpdateTimestamp(tsData); errors.Is(err, &metadata.ErrEqualVersionNumber{}) {
		tsNew, tsData = false, l.timestampData
	} else if err != nil && !errors.Is(err, &metadata.ErrExpiredMetadata{}) {
		return nil, fmt.Errorf("update: timestamp: %w", err)
	}
	if err := c.checkTenant("timestamp", tm.Timestamp.Signed.UnrecognizedFields); err != nil {
		return nil, err
	}
	if tm.Timestamp.Signed.IsExpired(now) {
		return nil, fmt.Errorf("update: timestamp v%d expired at %s: %w", tm.Timestamp.Signed.Version, tm.Timestamp.Signed.Expires, ErrExpired)
	}
	// A clock behind the signing makes every expiry check meaningless
	// (metadata expired in real time would verify): refuse, naming it.
	if err := checkTimestampClock(tm.Timestamp, now); err != nil {
		return nil, fmt.Errorf("update: %w", err)
	}
	snapMeta := tm.Timestamp.Signed.Meta["snapshot.json"]
	if snapMeta == nil {
		return nil, errors.New("update: timestamp lists no snapshot")
	}

	// 3. Snapshot: the local one when it is the version the timestamp
	// names, else fetched (the local one still guards against rollback).
	snapData := l.snapshotData
	snapFetched := false
	final := false
	if snapData != nil && !rotated(metadata.SNAPSHOT) {
		_, err := tm.UpdateSnapshot(snapData, true)
		final = err == nil
		if err != nil && !errors.Is(err, &metadata.ErrRepository{}) {
			return nil, fmt.Errorf("update: local snapshot: %w", err)
		}
	}
	if !final {
		max := c.limits.Snapshot
		if snapMeta.Length > 0 {
			max = snapMeta.Length
		}
		snapData, err = c.get(ctx, MetadataPath(metadata.SNAPSHOT, snapMeta.Version), max, ch)
		if err != nil {
			return nil, fmt.Errorf("update: %w", err)
		}
		if _, err := tm.UpdateSnapshot(snapData, false); err != nil {
			if errors.Is(err, &metadata.ErrExpiredMetadata{}) {
				err = fmt.Errorf("%w: %w", ErrExpired, err)
			}
			return nil, fmt.Errorf("update: snapshot v%d: %w", snapMeta.Version, err)
		}
		snapFetched = true
	}
	if err := c.checkTenant("snapshot", tm.Snapshot.Signed.UnrecognizedFields); err != nil {
		return nil, err
	}

	// 4. Targets roles, walking the delegations: a role is fetched only
	// when the snapshot names a version other than the one held.
	fetched := map[string]bool{}
	roles := map[string]*Targets{}
	compact := map[string]compactRole{}
	if err := c.walk(ctx, tm, l, metadata.TARGETS, metadata.ROOT, rotated(metadata.TARGETS), fetched, roles, compact, now, ch); err != nil {
		return nil, err
	}
	if err := c.checkTenant("targets", roles[metadata.TARGETS].Signed.UnrecognizedFields); err != nil {
		return nil, err
	}

	// 5. Documents whose hash changed.
	docs := map[string][]byte{}
	var docFetched []string
	// Documents are listed by the top-level targets (the tenant's) and
	// the product roles; bins hold artifacts only, and a document-like
	// target (no custom field) there is ignored.
	docRoles := []string{metadata.TARGETS}
	if d := roles[metadata.TARGETS].Signed.Delegations; d != nil {
		for _, r := range d.Roles {
			docRoles = append(docRoles, r.Name)
		}
	}
	for _, role := range docRoles {
		for _, path := range slices.Sorted(maps.Keys(roles[role].Signed.Targets)) {
			tf := roles[role].Signed.Targets[path]
			if tf.Custom != nil {
				continue
			}
			sum := hex.EncodeToString(tf.Hashes["sha256"])
			if old, ok := l.docs[path]; ok && tf.VerifyLengthHashes(old) == nil {
				docs[path] = old
				continue
			}
			if err := checkName(storeDoc(path)); err != nil {
				return nil, fmt.Errorf("update: document: %w", err)
			}
			if tf.Length > c.limits.Document {
				return nil, fmt.Errorf("update: document %s: %d bytes: %w", path, tf.Length, ErrTooLarge)
			}
			data, err := c.get(ctx, TargetPath(path, sum), tf.Length, ch)
			if err != nil {
				return nil, fmt.Errorf("update: %w", err)
			}
			if err := tf.VerifyLengthHashes(data); err != nil {
				return nil, fmt.Errorf("update: document %s: %w", path, err)
			}
			docs[path] = data
			docFetched = append(docFetched, path)
		}
	}

	// Everything verified: persist (the roles already are), the
	// timestamp last.
	for _, path := range docFetched {
		if err := c.store.Put(ctx, storeDoc(path), docs[path]); err != nil {
			return nil, fmt.Errorf("update: %w", err)
		}
	}
	if snapFetched {
		if err := c.store.Put(ctx, storeSnapshot, snapData); err != nil {
			return nil, fmt.Errorf("update: %w", err)
		}
	}
	if tsNew {
		if err := c.store.Put(ctx, storeTimestamp, tsData); err != nil {
			return nil, fmt.Errorf("update: %w", err)
		}
	}

	old := c.repo
	c.repo = &Repository{
		TenantID: c.tenantID, Root: tm.Root, Timestamp: tm.Timestamp, Snapshot: tm.Snapshot,
		Roles: roles, Docs: docs, compact: compact, timestampData: tsData, snapshotData: snapData,
	}
	ch.RootVersion, ch.TimestampVersion, ch.SnapshotVersion = tm.Root.Signed.Version, tm.Timestamp.Signed.Version, tm.Snapshot.Signed.Version
	ch.Roles = slices.Sorted(maps.Keys(fetched))
	ch.Documents = docFetched
	oldRoles, oldCompact := l.roles, l.compact
	if old != nil {
		oldRoles, oldCompact = old.Roles, old.compact
	}
	diffTargets(oldRoles, oldCompact, roles, compact, fetched, ch)
	return ch, nil
}

// walk loads role (delegated by parent) and, recursively, the roles it
// delegates to.
func (c *Client) walk(ctx context.Context, tm *trustedmetadata.TrustedMetadata, l *local, role, parent string, discard bool, fetched map[string]bool, roles map[string]*Targets, compact map[string]compactRole, now time.Time, ch *Changes) error {
	if _, seen := roles[role]; seen {
		return fmt.Errorf("update: role %s delegated twice", role)
	}
	if err := checkName(storeRole(role)); err != nil {
		return fmt.Errorf("update: role: %w", err)
	}
	mf := tm.Snapshot.Signed.Meta[role+".json"]
	if mf == nil {
		return fmt.Errorf("update: snapshot does not list role %s", role)
	}
	held := l.roles[role]
	use := held != nil && !discard && held.Signed.Version == mf.Version
	// A role is a hashed bin when its delegator delegates by succinct
	// roles: its targets are then kept compact.
	isBin := false
	if parent != metadata.ROOT {
		d := tm.Targets[parent].Signed.Delegations
		isBin = d != nil && d.SuccinctRoles != nil
	}
	if _, compacted := l.compact[role]; use && compacted && !isBin {
		use = false // held compact, no longer a bin: fetched again
	}
	if use && parent != metadata.ROOT {
		if _, changed := fetched[parent]; changed && !sameDelegation(l.roles[parent], tm.Targets[parent], role) {
			// The delegator changed the role's keys: the held role must
			// still verify under it (a compact bin cannot be verified
			// again: it is fetched).
			_, compacted := l.compact[role]
			use = !compacted && tm.Targets[parent].VerifyDelegate(role, held) == nil
		}
	}
	if use {
		if held.Signed.IsExpired(now) {
			return fmt.Errorf("update: role %s v%d expired at %s: %w", role, held.Signed.Version, held.Signed.Expires, ErrExpired)
		}
		tm.Targets[role] = held
	} else {
		max := c.limits.Targets
		if mf.Length > 0 {
			max = mf.Length
		}
		data, err := c.get(ctx, MetadataPath(role, mf.Version), max, ch)
		if err != nil {
			return fmt.Errorf("update: %w", err)
		}
		var t *Targets
		var cr compactRole // a bin parsed straight into compact form
		if parent != metadata.ROOT {
			var fr fastRole
			var ok bool
			if isBin {
				fr, cr, ok = fastParseCompact(data)
			} else {
				fr, ok = fastParse(data)
			}
			if ok {
				handled, err := verifyFast(fr, tm.Targets[parent], role, mf.Version, now)
				if handled && err == nil {
					err = mf.VerifyLengthHashes(data)
				}
				if handled {
					if err != nil {
						if errors.Is(err, &metadata.ErrExpiredMetadata{}) {
							err = fmt.Errorf("%w: %w", ErrExpired, err)
						}
						return fmt.Errorf("update: role %s v%d: %w", role, mf.Version, err)
					}
					t = fr.t
					tm.Targets[role] = t
				} else {
					cr = nil
				}
			}
		}
		if t == nil {
			t, err = tm.UpdateDelegatedTargets(data, role, parent)
		}
		if err != nil {
			if errors.Is(err, &metadata.ErrExpiredMetadata{}) {
				err = fmt.Errorf("%w: %w", ErrExpired, err)
			}
			return fmt.Errorf("update: role %s v%d: %w", role, mf.Version, err)
		}
		if parent != metadata.ROOT {
			paths := maps.Keys(t.Signed.Targets)
			if cr != nil {
				paths = maps.Keys(cr)
			}
			if err := checkPaths(tm.Targets[parent], role, paths); err != nil {
				return err
			}
		}
		// A verified role is persisted at once (its bytes need not stay
		// in memory): the store's roles count only at the version the
		// stored snapshot names, so a newer one stored ahead of its
		// snapshot is harmless if this update fails later.
		if err := c.store.Put(ctx, storeRole(role), data); err != nil {
			return fmt.Errorf("update: %w", err)
		}
		fetched[role] = true
		if cr != nil {
			compact[role] = cr
		}
	}
	t := tm.Targets[role]
	roles[role] = t
	if _, done := compact[role]; isBin && !done {
		if cr, ok := l.compact[role]; ok && use {
			compact[role] = cr
		} else if _, ok := fetched[role]; ok {
			if cr, ok := compactTargets(t); ok {
				compact[role], t.Signed.Targets = cr, nil
			}
		}
	}
	if d := t.Signed.Delegations; d != nil {
		if d.SuccinctRoles != nil {
			// Refuse a bin count that would exhaust memory before the
			// snapshot is even consulted (a compromised product key).
			if bl := d.SuccinctRoles.BitLength; bl < 1 || bl > maxBitLength {
				return fmt.Errorf("update: role %s: %d-bit hashed bins, at most %d: %w", role, bl, maxBitLength, ErrTooLarge)
			}
			for _, name := range d.SuccinctRoles.GetRoles() {
				if err := c.walk(ctx, tm, l, name, role, discard, fetched, roles, compact, now, ch); err != nil {
					return err
				}
			}
		}
		for _, r := range d.Roles {
			if err := c.walk(ctx, tm, l, r.Name, role, discard, fetched, roles, compact, now, ch); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkPaths refuses a delegated role listing a target its delegator did
// not delegate to it.
func checkPaths(parent *Targets, role string, paths iter.Seq[string]) error {
	d := parent.Signed.Delegations
	for path := range paths {
		ok := false
		if d.SuccinctRoles != nil {
			rs := d.SuccinctRoles.GetRolesForTarget(path)
			ok = len(rs) == 1 && rs[0].Name == role
		} else {
			for _, r := range d.Roles {
				if r.Name == role {
					ok, _ = r.IsDelegatedPath(path)
					break
				}
			}
		}
		if !ok {
			return fmt.Errorf("update: role %s: target %s: %w", role, path, ErrOutsideRole)
		}
	}
	return nil
}

// checkTenant refuses metadata naming another tenant.
func (c *Client) checkTenant(role string, fields map[string]any) error {
	if got := tenantOf(fields); got != c.tenantID {
		return fmt.Errorf("update: %s is for tenant %q, want %q: %w", role, got, c.tenantID, ErrWrongTenant)
	}
	return nil
}

// diffTargets reports the artifact targets of fetched roles (and of
// roles no longer reachable) that were added, changed or removed. On a
// first load every target is new: nothing is kept per target but the
// reported Target, whose repeated custom strings are shared.
func diffTargets(oldRoles map[string]*Targets, oldCompact map[string]compactRole, newRoles map[string]*Targets, newCompact map[string]compactRole, fetched map[string]bool, ch *Changes) {
	before := map[string]heldTarget{}
	affected := func(role string) bool {
		_, f := fetched[role]
		_, still := newRoles[role]
		return f || !still
	}
	for role := range oldRoles {
		if affected(role) {
			_ = eachArtifact(oldRoles, oldCompact, role, func(e heldTarget) error { before[e.path] = e; return nil })
		}
	}
	n := 0
	for role := range fetched {
		_ = eachArtifact(newRoles, newCompact, role, func(heldTarget) error { n++; return nil })
	}
	ch.Targets = make([]Target, 0, n)
	in := interner{}
	stayed := map[string]bool{}
	for role := range fetched {
		_ = eachArtifact(newRoles, newCompact, role, func(e heldTarget) error {
			if o, ok := before[e.path]; ok {
				stayed[e.path] = true
				if o == e {
					return nil
				}
			}
			t := Target{Path: e.path, Length: e.length, SHA256: hex.EncodeToString(e.sum[:])}
			_ = json.Unmarshal([]byte(e.custom), &t.Custom)
			in.custom(&t.Custom)
			ch.Targets = append(ch.Targets, t)
			return nil
		})
	}
	slices.SortFunc(ch.Targets, func(a, b Target) int { return strings.Compare(a.Path, b.Path) })
	for _, p := range slices.Sorted(maps.Keys(before)) {
		if !stayed[p] {
			ch.Removed = append(ch.Removed, p)
		}
	}
}

// sameDelegation says whether two versions of a delegator delegate role
// with the same keys, threshold and paths.
func sameDelegation(a, b *Targets, role string) bool {
	if a == nil || b == nil || a.Signed.Delegations == nil || b.Signed.Delegations == nil {
		return false
	}
	da, db := a.Signed.Delegations, b.Signed.Delegations
	var ka, kb []string
	switch {
	case da.SuccinctRoles != nil && db.SuccinctRoles != nil:
		sa, sb := da.SuccinctRoles, db.SuccinctRoles
		if sa.Threshold != sb.Threshold || sa.BitLength != sb.BitLength || sa.NamePrefix != sb.NamePrefix || !slices.Equal(sa.KeyIDs, sb.KeyIDs) {
			return false
		}
		ka, kb = sa.KeyIDs, sb.KeyIDs
	case da.SuccinctRoles == nil && db.SuccinctRoles == nil:
		ra, rb := findRole(da, role), findRole(db, role)
		if ra == nil || rb == nil || ra.Threshold != rb.Threshold || ra.Terminating != rb.Terminating ||
			!slices.Equal(ra.KeyIDs, rb.KeyIDs) || !slices.Equal(ra.Paths, rb.Paths) || !slices.Equal(ra.PathHashPrefixes, rb.PathHashPrefixes) {
			return false
		}
		ka, kb = ra.KeyIDs, rb.KeyIDs
	default:
		return false
	}
	for i := range ka {
		x, y := da.Keys[ka[i]], db.Keys[kb[i]]
		if x == nil || y == nil || x.Type != y.Type || x.Scheme != y.Scheme || x.Value.PublicKey != y.Value.PublicKey {
			return false
		}
	}
	return true
}

func findRole(d *metadata.Delegations, name string) *metadata.DelegatedRole {
	for i := range d.Roles {
		if d.Roles[i].Name == name {
			return &d.Roles[i]
		}
	}
	return nil
}

// VerifyArtifact streams r (an artifact's bytes) through sha256, reading
// at most t.Length+1 bytes, and refuses bytes of another length or hash.
// It copies what it reads to w (nil to discard).
func VerifyArtifact(w io.Writer, r io.Reader, t Target) error {
	if w == nil {
		w = io.Discard
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(w, h), io.LimitReader(r, t.Length+1))
	if err != nil {
		return fmt.Errorf("verify %s: %w", t.Path, err)
	}
	if n != t.Length {
		if n > t.Length {
			return fmt.Errorf("verify %s: more than %d bytes: %w", t.Path, t.Length, ErrTooLarge)
		}
		return fmt.Errorf("verify %s: %d bytes, want %d: %w", t.Path, n, t.Length, ErrTargetMismatch)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != t.SHA256 {
		return fmt.Errorf("verify %s: sha256 %s, want %s: %w", t.Path, got, t.SHA256, ErrTargetMismatch)
	}
	return nil
}

// Target returns the artifact target at path as the verified repository
// lists it (found through the delegations, as a TUF client would).
func (r *Repository) Target(path string) (Target, error) {
	pid, _, ok := strings.Cut(path, "/")
	if !ok {
		return Target{}, fmt.Errorf("target %s: %w", path, ErrNotFound)
	}
	role := ProductRole(pid)
	pr := r.Roles[role]
	if pr == nil {
		return Target{}, fmt.Errorf("target %s: %w", path, ErrNotFound)
	}
	e, ok := artifact(r.Roles, r.compact, role, path)
	if !ok && pr.Signed.Delegations != nil && pr.Signed.Delegations.SuccinctRoles != nil {
		if rs := pr.Signed.Delegations.SuccinctRoles.GetRolesForTarget(path); len(rs) == 1 {
			e, ok = artifact(r.Roles, r.compact, rs[0].Name, path)
		}
	}
	if !ok {
		return Target{}, fmt.Errorf("target %s: %w", path, ErrNotFound)
	}
	t := Target{Path: path, Length: e.length, SHA256: hex.EncodeToString(e.sum[:])}
	if err := json.Unmarshal([]byte(e.custom), &t.Custom); err != nil {
		return Target{}, fmt.Errorf("target %s: custom: %w", path, err)
	}
	return t, nil
}

// Load rebuilds the verified repository from the store alone (a mirror
// restarting with no source at hand): the same workflow as Update with
// the store as the source, so the stored timestamp, snapshot and roles
// are verified again and an expired timestamp is refused (ErrExpired).
func (c *Client) Load(ctx context.Context) (*Repository, error) {
	saved := c.fetch
	c.fetch = storeFetcher{c.store}
	defer func() { c.fetch = saved }()
	if _, err := c.Update(ctx); err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	return c.repo, nil
}

// storeFetcher serves a client's own store as a repository.
type storeFetcher struct{ s Store }

func (f storeFetcher) Fetch(ctx context.Context, path string, _ int64) (io.ReadCloser, error) {
	var name string
	switch {
	case path == MetadataPath(metadata.TIMESTAMP, 0):
		name = storeTimestamp
	case strings.HasPrefix(path, MetadataDir+"/"):
		role, ok := roleOfPath(path)
		if !ok || role == metadata.ROOT {
			return nil, fmt.Errorf("%s: %w", path, ErrNotFound)
		}
		name = storeRole(role)
		if role == metadata.SNAPSHOT {
			name = storeSnapshot
		}
	case strings.HasPrefix(path, TargetsDir+"/"):
		dir, base := "", strings.TrimPrefix(path, TargetsDir+"/")
		if i := strings.LastIndexByte(base, '/'); i >= 0 {
			dir, base = base[:i+1], base[i+1:]
		}
		_, base, _ = strings.Cut(base, ".") // drop "<sha256>."
		name = storeDoc(dir + base)
	default:
		return nil, fmt.Errorf("%s: %w", path, ErrNotFound)
	}
	b, err := f.s.Get(ctx, name)
	if err != nil {
		return nil, err
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}
