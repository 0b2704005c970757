// Package state owns the mirror daemon's durable state, one bbolt file
// (mirror.db): the held snapshots and the current pointer, the last sync
// result, the mirror's identity, the offline lease ledger and the mirror's
// hash-chained audit log. Every other package goes through its methods;
// the bbolt handle is never handed out. A snapshot commit and the audit
// event recording it, a lease and its audit event, each commit in one
// transaction.
package state

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"time"

	"go.etcd.io/bbolt"
	bbolterrors "go.etcd.io/bbolt/errors"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/snapshot"
)

// ErrLocked means another process (usually `mirror serve`) has the state
// file open.
var ErrLocked = errors.New("mirror state is locked by another process: is `mirror serve` running? Stop it first (`mirror status --server URL` asks a running mirror; bundles can be copied into its inbox)")

// ErrNotFound is returned for a snapshot the mirror does not retain.
var ErrNotFound = errors.New("not found")

// DefaultRetain is how many snapshots are kept when unconfigured.
const DefaultRetain = 3

var (
	bktSnapshots = []byte("snapshots") // seq -> Record JSON
	bktEnvelopes = []byte("envelopes") // seq -> envelope bytes, verbatim
	bktMeta      = []byte("meta")
	keyCurrent   = []byte("current")
	keyLastSync  = []byte("last_sync")
	keyAllowed   = []byte("allowed_channels")
)

// Record describes one held snapshot.
type Record struct {
	SnapshotID string    `json:"snapshot_id"`
	Sequence   int64     `json:"sequence"`
	Hash       string    `json:"hash"`
	VerifiedAt time.Time `json:"verified_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	// Channels the snapshot was synced for: nil means every channel.
	Channels []string `json:"channels"`
	// Format is FormatTUF for a repository version committed by the TUF
	// workflow (Sequence is then its snapshot version), "" for schema 1.
	Format string `json:"format,omitempty"`
}

// initialMmap is the size bbolt maps mirror.db with from the start. A
// large import writes hundreds of MiB in one transaction; each time the
// file outgrows the map, bbolt remaps and first copies every node the
// transaction touched to the heap (node.dereference): for a 300,000-target
// bundle that was 560 MiB of the import's peak. Mapping 1 GiB up front is
// address space only on Linux; elsewhere (Windows grows the file to the
// map) the default stays.
func initialMmap() int {
	if runtime.GOOS == "linux" {
		return 1 << 30
	}
	return 0
}

// Held is a held snapshot with its envelope and decoded manifest.
type Held struct {
	Record
	Envelope []byte
	Manifest *snapshot.Manifest
	// Timestamp is the TUF timestamp served with this version, read in
	// the same transaction as the record (Current only): a server that
	// answers timestamp.json from it never announces a version newer
	// than the one whose artifacts it serves.
	Timestamp []byte
}

// SyncResult is the outcome of the last sync or import.
type SyncResult struct {
	At         time.Time `json:"at"`
	Source     string    `json:"source"`
	OK         bool      `json:"ok"`
	Changed    bool      `json:"changed"`
	SnapshotID string    `json:"snapshot_id,omitempty"`
	Sequence   int64     `json:"sequence,omitempty"`
	Downloaded int       `json:"downloaded"`
	Bytes      int64     `json:"bytes"`
	// Rebuilt counts the downloaded artifacts rebuilt from a held base
	// and a signed delta (docs/deltas.md) instead of fetched whole.
	Rebuilt int      `json:"rebuilt,omitempty"`
	Missing []string `json:"missing,omitempty"`
	Error   string   `json:"error,omitempty"`
}

// State is the mirror's bbolt file.
type State struct {
	db     *bbolt.DB
	retain int
	// held keeps the manifests of TUF versions in memory (see tufMem).
	held tufMem
}

// Open opens (creating) the state file at path. It fails at once with
// ErrLocked when another process holds it. retain <= 0 means DefaultRetain.
func Open(path string, retain int) (*State, error) {
	if retain <= 0 {
		retain = DefaultRetain
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("open state: %w", err)
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: 200 * time.Millisecond, InitialMmapSize: initialMmap()})
	if errors.Is(err, bbolterrors.ErrTimeout) {
		return nil, ErrLocked
	}
	if err != nil {
		return nil, fmt.Errorf("open state %s: %w", path, err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, b := range [][]byte{bktSnapshots, bktEnvelopes, bktMeta, bktTUFTrusted, bktTUFFiles} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("init state: %w", err)
	}
	return &State{db: db, retain: retain}, nil
}

// Close closes the file.
func (s *State) Close() error { return s.db.Close() }

func seqKey(seq int64) []byte {
	k := make([]byte, 8)
	binary.BigEndian.PutUint64(k, uint64(seq))
	return k
}

// Current returns the held snapshot, or nil when none has been committed.
func (s *State) Current() (*Held, error) {
	var h *Held
	err := s.db.View(func(tx *bbolt.Tx) error {
		cur := tx.Bucket(bktMeta).Get(keyCurrent)
		if cur == nil {
			return nil
		}
		var err error
		if h, err = s.load(tx, cur); err != nil {
			return err
		}
		if ts := tx.Bucket(bktMeta).Get(keyTUFTimestamp); ts != nil {
			h.Timestamp = append([]byte(nil), ts...)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read current snapshot: %w", err)
	}
	return h, nil
}

// load reads a held snapshot. The manifest of a TUF version comes from
// memory when this process committed or read it back; else it is
// assembled again from the published TUF files (sharing the unchanged
// products with the last version read back) and kept.
func (s *State) load(tx *bbolt.Tx, key []byte) (*Held, error) {
	h, err := loadRecord(tx, key)
	if err != nil {
		return nil, err
	}
	if h.Format == FormatTUF {
		if m := s.held.get(h.Sequence, h.Hash); m != nil {
			h.Manifest = m
			return h, nil
		}
		if ref, ok := decodeTUFRef(h.Envelope); ok {
			m, err := s.held.assemble(tx, ref)
			if err != nil {
				return nil, fmt.Errorf("snapshot %d: %w", h.Sequence, err)
			}
			h.Manifest = m
			s.held.put(h.Sequence, h.Hash, m, s.retain)
			return h, nil
		}
	}
	m, err := DecodeManifest(h.Envelope)
	if err != nil {
		return nil, err
	}
	h.Manifest = m
	return h, nil
}

// loadRecord reads the record and the envelope stored at key, without
// the manifest.
func loadRecord(tx *bbolt.Tx, key []byte) (*Held, error) {
	raw := tx.Bucket(bktSnapshots).Get(key)
	env := tx.Bucket(bktEnvelopes).Get(key)
	if raw == nil || env == nil {
		return nil, fmt.Errorf("snapshot %d: %w", binary.BigEndian.Uint64(key), ErrNotFound)
	}
	h := &Held{Envelope: append([]byte(nil), env...)}
	if err := json.Unmarshal(raw, &h.Record); err != nil {
		return nil, fmt.Errorf("decode record: %w", err)
	}
	return h, nil
}

// DecodeManifest reads the manifest out of an envelope WITHOUT verifying
// it: only for envelopes that were verified before they were stored.
func DecodeManifest(env []byte) (*snapshot.Manifest, error) {
	var e snapshot.Envelope
	if err := json.Unmarshal(env, &e); err != nil {
		return nil, fmt.Errorf("decode envelope: %w", err)
	}
	var m snapshot.Manifest
	if err := json.Unmarshal(e.Payload, &m); err != nil {
		return nil, fmt.Errorf("decode manifest: %w", err)
	}
	return &m, nil
}

// Commit is a verified snapshot to hold.
type Commit struct {
	Envelope []byte
	Manifest *snapshot.Manifest
	Hash     string
	Channels []string // nil: every channel
	Now      time.Time
	// Event, when not nil, is appended to the mirror's audit log in the
	// commit's transaction: both commit or neither does.
	Event *catalog.AuditEvent
	// TUFTimestamp, for a TUF commit, is the verified timestamp that
	// becomes the one the mirror serves, in the same transaction (the
	// record's Format is then FormatTUF). Envelope is then left nil: the
	// commit stores a reference to the version (the timestamp, a few
	// hundred bytes; the metadata is already in the TUF buckets) and
	// keeps Manifest in memory, read-only from then on.
	TUFTimestamp []byte
}

// Commit records a verified snapshot and makes it current in one
// transaction (with its audit event), then drops snapshots beyond the
// retention window. The caller must have every artifact the snapshot
// needs in the cache.
func (s *State) Commit(c Commit) error {
	m := c.Manifest
	rec := Record{
		SnapshotID: m.SnapshotID, Sequence: m.Sequence, Hash: c.Hash,
		VerifiedAt: c.Now.UTC(), ExpiresAt: m.ExpiresAt, Channels: c.Channels,
	}
	if c.TUFTimestamp != nil {
		rec.Format = FormatTUF
	}
	raw, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	env := c.Envelope
	if env == nil && c.TUFTimestamp != nil {
		if env, err = encodeTUFRef(m.TenantID, c.TUFTimestamp); err != nil {
			return fmt.Errorf("commit snapshot %d: %w", m.Sequence, err)
		}
	}
	err = s.db.Update(func(tx *bbolt.Tx) error {
		meta := tx.Bucket(bktMeta)
		if cur := meta.Get(keyCurrent); cur != nil && int64(binary.BigEndian.Uint64(cur)) >= m.Sequence {
			// Defence in depth: Verify already refuses rollbacks.
			return fmt.Errorf("sequence %d is not newer than held %d", m.Sequence, binary.BigEndian.Uint64(cur))
		}
		k := seqKey(m.Sequence)
		if err := tx.Bucket(bktSnapshots).Put(k, raw); err != nil {
			return err
		}
		if err := tx.Bucket(bktEnvelopes).Put(k, env); err != nil {
			return err
		}
		if err := meta.Put(keyCurrent, k); err != nil {
			return err
		}
		if c.TUFTimestamp != nil {
			if err := meta.Put(keyTUFTimestamp, c.TUFTimestamp); err != nil {
				return err
			}
		}
		if c.Event != nil {
			if err := appendAudit(tx, c.Event); err != nil {
				return err
			}
		}
		return s.prune(tx)
	})
	if err != nil {
		return fmt.Errorf("commit snapshot %d: %w", m.Sequence, err)
	}
	if c.TUFTimestamp != nil {
		s.held.put(m.Sequence, c.Hash, m, s.retain)
	}
	return nil
}

// SetChannels changes the channels the held snapshot seq is served for
// (the control plane changed the mirror's allowed channels). The caller
// must have every artifact those channels need in the cache.
func (s *State) SetChannels(seq int64, channels []string) error {
	err := s.db.Update(func(tx *bbolt.Tx) error {
		k := seqKey(seq)
		if cur := tx.Bucket(bktMeta).Get(keyCurrent); cur == nil || string(cur) != string(k) {
			return fmt.Errorf("snapshot %d is no longer the held one", seq)
		}
		b := tx.Bucket(bktSnapshots)
		var rec Record
		if err := json.Unmarshal(b.Get(k), &rec); err != nil {
			return fmt.Errorf("decode record: %w", err)
		}
		rec.Channels = channels
		raw, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		return b.Put(k, raw)
	})
	if err != nil {
		return fmt.Errorf("set channels of snapshot %d: %w", seq, err)
	}
	return nil
}

// SameChannels reports whether two channel sets are equal; nil (every
// channel) differs from empty (none).
func SameChannels(a, b []string) bool {
	if (a == nil) != (b == nil) || len(a) != len(b) {
		return false
	}
	a, b = sortedCopy(a), sortedCopy(b)
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// prune keeps the newest s.retain snapshots.
func (s *State) prune(tx *bbolt.Tx) error {
	var keys [][]byte
	c := tx.Bucket(bktSnapshots).Cursor()
	for k, _ := c.Last(); k != nil; k, _ = c.Prev() {
		keys = append(keys, append([]byte(nil), k...))
	}
	for i := s.retain; i < len(keys); i++ {
		if err := tx.Bucket(bktSnapshots).Delete(keys[i]); err != nil {
			return err
		}
		if err := tx.Bucket(bktEnvelopes).Delete(keys[i]); err != nil {
			return err
		}
	}
	return nil
}

// Retained returns the held snapshots, newest first.
func (s *State) Retained() ([]*Held, error) {
	var out []*Held
	err := s.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bktSnapshots).Cursor()
		for k, _ := c.Last(); k != nil; k, _ = c.Prev() {
			h, err := s.load(tx, k)
			if err != nil {
				return err
			}
			out = append(out, h)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read retained snapshots: %w", err)
	}
	return out, nil
}

// BySnapshotID returns a retained snapshot by its id. Only the matching
// one is loaded and decoded.
func (s *State) BySnapshotID(id string) (*Held, error) {
	return s.bySnapshotID(id, true)
}

// EnvelopeBySnapshotID is BySnapshotID without the manifest (Manifest is
// nil): what serving the stored envelope needs, without decoding it on
// every request.
func (s *State) EnvelopeBySnapshotID(id string) (*Held, error) {
	return s.bySnapshotID(id, false)
}

func (s *State) bySnapshotID(id string, manifest bool) (*Held, error) {
	var h *Held
	err := s.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bktSnapshots).Cursor()
		for k, v := c.Last(); k != nil; k, v = c.Prev() {
			var rec struct {
				SnapshotID string `json:"snapshot_id"`
			}
			if err := json.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("decode record: %w", err)
			}
			if rec.SnapshotID == id {
				var err error
				if manifest {
					h, err = s.load(tx, k)
				} else {
					h, err = loadRecord(tx, k)
				}
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read snapshot %q: %w", id, err)
	}
	if h == nil {
		return nil, fmt.Errorf("snapshot %q: %w", id, ErrNotFound)
	}
	return h, nil
}

// SetLastSync records the outcome of a sync or import.
func (s *State) SetLastSync(r SyncResult) error {
	raw, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bktMeta).Put(keyLastSync, raw) })
}

// LastSync returns the last recorded sync result (ok false when none).
func (s *State) LastSync() (r SyncResult, ok bool, err error) {
	err = s.db.View(func(tx *bbolt.Tx) error {
		raw := tx.Bucket(bktMeta).Get(keyLastSync)
		if raw == nil {
			return nil
		}
		ok = true
		return json.Unmarshal(raw, &r)
	})
	return r, ok, err
}

// SetAllowedChannels remembers the channels the control plane allows this
// mirror, so an offline import filters the same way.
func (s *State) SetAllowedChannels(ch []string) error {
	raw, err := json.Marshal(ch)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bktMeta).Put(keyAllowed, raw) })
}

// AllowedChannels returns the remembered allowed channels (ok false when
// the control plane was never asked).
func (s *State) AllowedChannels() (ch []string, ok bool, err error) {
	err = s.db.View(func(tx *bbolt.Tx) error {
		raw := tx.Bucket(bktMeta).Get(keyAllowed)
		if raw == nil {
			return nil
		}
		ok = true
		return json.Unmarshal(raw, &ch)
	})
	return ch, ok, err
}

// EffectiveChannels combines the control plane's allowed channels with the
// optional configured narrowing. nil means every channel.
func EffectiveChannels(allowed []string, allowedKnown bool, configured []string) []string {
	switch {
	case !allowedKnown && len(configured) == 0:
		return nil
	case !allowedKnown:
		return sortedCopy(configured)
	case len(configured) == 0:
		return sortedCopy(allowed)
	}
	in := map[string]bool{}
	for _, c := range allowed {
		in[c] = true
	}
	out := []string{}
	for _, c := range configured {
		if in[c] {
			out = append(out, c)
		}
	}
	return sortedCopy(out)
}

func sortedCopy(s []string) []string {
	out := append([]string{}, s...)
	sort.Strings(out)
	return out
}

// Needed returns the artifacts of ACTIVE releases in channels (nil = all),
// deduplicated by artifact id, in manifest order.
func Needed(m *snapshot.Manifest, channels []string) []snapshot.Artifact {
	var allow map[string]bool
	if channels != nil {
		allow = map[string]bool{}
		for _, c := range channels {
			allow[c] = true
		}
	}
	want := map[string]bool{}
	for _, r := range m.Releases {
		if r.Status != "ACTIVE" || (allow != nil && !allow[r.Channel]) {
			continue
		}
		for _, ra := range r.Artifacts {
			want[ra.ArtifactID] = true
		}
	}
	var out []snapshot.Artifact
	for _, a := range m.Artifacts {
		if want[a.ArtifactID] {
			out = append(out, a)
			delete(want, a.ArtifactID)
		}
	}
	return out
}

// Served is m narrowed to the releases (and rollouts) of channels (nil =
// all), for the update engine: the mirror must not offer a release whose
// artifacts it neither caches nor serves. m itself is not changed.
func Served(m *snapshot.Manifest, channels []string) *snapshot.Manifest {
	if channels == nil {
		return m
	}
	allow := map[string]bool{}
	for _, c := range channels {
		allow[c] = true
	}
	out := *m
	out.Releases = nil
	for _, r := range m.Releases {
		if allow[r.Channel] {
			out.Releases = append(out.Releases, r)
		}
	}
	out.Rollouts = nil
	for _, r := range m.Rollouts {
		if allow[r.Channel] {
			out.Rollouts = append(out.Rollouts, r)
		}
	}
	return &out
}

// Referenced returns the sha256 of every artifact of every snapshot in hs:
// the GC keep set.
func Referenced(hs []*Held) map[string]bool {
	keep := map[string]bool{}
	for _, h := range hs {
		needed := map[string]bool{}
		for _, a := range Needed(h.Manifest, h.Channels) {
			keep[a.SHA256] = true
			needed[a.SHA256] = true
		}
		// The deltas to needed artifacts, which the mirror serves.
		for _, d := range h.Manifest.Deltas {
			if needed[d.ToSHA256] {
				keep[d.SHA256] = true
			}
		}
	}
	return keep
}
