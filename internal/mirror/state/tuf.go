package state

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"go.etcd.io/bbolt"

	"github.com/outpost/outpost/internal/snapshot"
	"github.com/outpost/outpost/internal/tuf"
)

// TUF mode. The mirror's trusted TUF metadata lives in mirror.db in two
// buckets:
//
//	tuf_trusted: the tuf.Store of the mirror's tuf.Client (store names:
//	             "metadata/root.json", "metadata/<role>.json",
//	             "targets/<path>"), written only with verified bytes,
//	             the timestamp last;
//	tuf_files:   the same bytes under their published names
//	             ("metadata/<v>.<role>.json", every root version,
//	             "targets/<dir>/<sha256>.<name>" for documents), which
//	             the mirror serves to its own clients at /tuf/.
//
// The served timestamp is separate (meta "tuf_timestamp"): it moves only
// in a Commit (new snapshot version, every needed artifact cached) or in
// ServeTUFTimestamp (same snapshot version, a fresher timestamp). Until
// then the mirror's clients keep seeing the previous repository version,
// whose versioned files are still held.
var (
	bktTUFTrusted   = []byte("tuf_trusted")
	bktTUFFiles     = []byte("tuf_files")
	keyTUFTimestamp = []byte("tuf_timestamp")
)

// FormatTUF marks a held record committed by the TUF workflow.
const FormatTUF = "tuf"

// TUFStore is the mirror's tuf.Store on mirror.db.
type TUFStore struct{ s *State }

// TUFStore returns the store of the mirror's trusted TUF metadata.
func (s *State) TUFStore() *TUFStore { return &TUFStore{s: s} }

// Get implements tuf.Store.
func (t *TUFStore) Get(_ context.Context, name string) ([]byte, error) {
	var out []byte
	err := t.s.db.View(func(tx *bbolt.Tx) error {
		if v := tx.Bucket(bktTUFTrusted).Get([]byte(name)); v != nil {
			out = append([]byte(nil), v...)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("tuf store %s: %w", name, err)
	}
	if out == nil {
		return nil, fmt.Errorf("%s: %w", name, tuf.ErrNotFound)
	}
	return out, nil
}

// Put implements tuf.Store: the bytes (verified by the client) are kept
// under name and, for metadata other than the timestamp and for
// documents, under their published name too, in one transaction.
func (t *TUFStore) Put(_ context.Context, name string, data []byte) error {
	published, err := publishedName(name, data)
	if err != nil {
		return fmt.Errorf("tuf store %s: %w", name, err)
	}
	err = t.s.db.Update(func(tx *bbolt.Tx) error {
		if err := tx.Bucket(bktTUFTrusted).Put([]byte(name), data); err != nil {
			return err
		}
		if published == "" {
			return nil
		}
		return tx.Bucket(bktTUFFiles).Put([]byte(published), data)
	})
	if err != nil {
		return fmt.Errorf("tuf store %s: %w", name, err)
	}
	return nil
}

// TUFFile is one file for PutAll.
type TUFFile struct {
	Name string
	Data []byte
}

// PutAll is Put for several files (verified by the client) in one
// transaction, in order: all are stored or none, and one sync to disk
// is paid instead of one a file.
func (t *TUFStore) PutAll(_ context.Context, files []TUFFile) error {
	published := make([]string, len(files))
	for i, f := range files {
		var err error
		if published[i], err = publishedName(f.Name, f.Data); err != nil {
			return fmt.Errorf("tuf store %s: %w", f.Name, err)
		}
	}
	err := t.s.db.Update(func(tx *bbolt.Tx) error {
		trusted, pub := tx.Bucket(bktTUFTrusted), tx.Bucket(bktTUFFiles)
		for i, f := range files {
			if err := trusted.Put([]byte(f.Name), f.Data); err != nil {
				return err
			}
			if published[i] == "" {
				continue
			}
			if err := pub.Put([]byte(published[i]), f.Data); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("tuf store: %w", err)
	}
	return nil
}

// publishedName is where a store file is published: "" for the
// timestamp (served from the commit).
func publishedName(name string, data []byte) (string, error) {
	switch {
	case name == "metadata/timestamp.json":
		return "", nil
	case strings.HasPrefix(name, "metadata/"):
		role, ok := strings.CutSuffix(strings.TrimPrefix(name, "metadata/"), ".json")
		if !ok || role == "" || strings.Contains(role, "/") {
			return "", errors.New("not a metadata name")
		}
		var v struct {
			Signed struct {
				Version int64 `json:"version"`
			} `json:"signed"`
		}
		if err := json.Unmarshal(data, &v); err != nil {
			return "", fmt.Errorf("read version: %w", err)
		}
		if v.Signed.Version < 1 {
			return "", fmt.Errorf("version %d", v.Signed.Version)
		}
		return "metadata/" + strconv.FormatInt(v.Signed.Version, 10) + "." + role + ".json", nil
	case strings.HasPrefix(name, "targets/"):
		sum := sha256.Sum256(data)
		return tuf.TargetPath(strings.TrimPrefix(name, "targets/"), hex.EncodeToString(sum[:])), nil
	}
	return "", errors.New("unknown store name")
}

// TUFMetadata returns a published metadata file the mirror serves:
// "timestamp.json" (the committed one) or "<v>.<role>.json". It wraps
// tuf.ErrNotFound when there is none.
func (s *State) TUFMetadata(name string) ([]byte, error) {
	var out []byte
	err := s.db.View(func(tx *bbolt.Tx) error {
		var v []byte
		if name == "timestamp.json" {
			v = tx.Bucket(bktMeta).Get(keyTUFTimestamp)
		} else {
			v = tx.Bucket(bktTUFFiles).Get([]byte("metadata/" + name))
		}
		if v != nil {
			out = append([]byte(nil), v...)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("tuf metadata %s: %w", name, err)
	}
	if out == nil {
		return nil, fmt.Errorf("metadata %s: %w", name, tuf.ErrNotFound)
	}
	return out, nil
}

// TUFDocument returns a document the mirror serves by its published
// path ("targets/<dir>/<sha256>.<name>"), wrapping tuf.ErrNotFound.
func (s *State) TUFDocument(published string) ([]byte, error) {
	var out []byte
	err := s.db.View(func(tx *bbolt.Tx) error {
		if v := tx.Bucket(bktTUFFiles).Get([]byte(published)); v != nil {
			out = append([]byte(nil), v...)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("tuf document %s: %w", published, err)
	}
	if out == nil {
		return nil, fmt.Errorf("document %s: %w", published, tuf.ErrNotFound)
	}
	return out, nil
}

// ServedTUFTimestamp returns the timestamp the mirror serves (nil when
// no TUF repository version was committed).
func (s *State) ServedTUFTimestamp() ([]byte, error) {
	b, err := s.TUFMetadata("timestamp.json")
	if errors.Is(err, tuf.ErrNotFound) {
		return nil, nil
	}
	return b, err
}

// ServeTUFTimestamp serves a fresher timestamp for the repository version
// already committed (a freshness-only refresh: same snapshot version, so
// no artifact is needed). It refuses when the held record is not the TUF
// version seq.
func (s *State) ServeTUFTimestamp(seq int64, timestamp []byte) error {
	err := s.db.Update(func(tx *bbolt.Tx) error {
		meta := tx.Bucket(bktMeta)
		cur := meta.Get(keyCurrent)
		if cur == nil || !bytes.Equal(cur, seqKey(seq)) {
			return fmt.Errorf("snapshot %d is not the held one", seq)
		}
		return meta.Put(keyTUFTimestamp, timestamp)
	})
	if err != nil {
		return fmt.Errorf("serve timestamp: %w", err)
	}
	return nil
}

// TUFEnvelope wraps an assembled manifest as the held record of a TUF
// commit used to (unsigned: the TUF metadata is what was verified).
// Commits now store a TUFRefType reference instead; a mirror.db written
// before still holds these, and they are still read.
func TUFEnvelope(m *snapshot.Manifest) ([]byte, error) {
	p, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	env, err := json.Marshal(snapshot.Envelope{PayloadType: "application/vnd.outpost.tuf-manifest+json", Payload: p})
	if err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	return env, nil
}

// CurrentRecord returns the held record without loading its envelope or
// manifest (nil when none): the cheap check of an idle sync.
func (s *State) CurrentRecord() (*Record, error) {
	var rec *Record
	err := s.db.View(func(tx *bbolt.Tx) error {
		cur := tx.Bucket(bktMeta).Get(keyCurrent)
		if cur == nil {
			return nil
		}
		raw := tx.Bucket(bktSnapshots).Get(cur)
		if raw == nil {
			return fmt.Errorf("snapshot %d: %w", binary.BigEndian.Uint64(cur), ErrNotFound)
		}
		rec = &Record{}
		return json.Unmarshal(raw, rec)
	})
	if err != nil {
		return nil, fmt.Errorf("read current record: %w", err)
	}
	return rec, nil
}

// TUFRefType is the payload type of a TUF version's held envelope: a
// reference to the version (its tenant and verified timestamp), not its
// content. The metadata itself is in the TUF buckets under its published
// names, so a commit writes a few hundred bytes whatever the catalog's
// size, and the manifest is assembled again from those files when it is
// not in memory (tuf.AssemblePublished).
const TUFRefType = "application/vnd.outpost.tuf-ref+json"

// tufRef is the payload of a TUFRefType envelope.
type tufRef struct {
	TenantID  string `json:"tenant_id"`
	Timestamp []byte `json:"timestamp"`
}

func encodeTUFRef(tenantID string, timestamp []byte) ([]byte, error) {
	p, err := json.Marshal(tufRef{TenantID: tenantID, Timestamp: timestamp})
	if err != nil {
		return nil, fmt.Errorf("encode tuf reference: %w", err)
	}
	env, err := json.Marshal(snapshot.Envelope{PayloadType: TUFRefType, Payload: p})
	if err != nil {
		return nil, fmt.Errorf("encode tuf reference: %w", err)
	}
	return env, nil
}

// decodeTUFRef reads a TUFRefType envelope (ok false for any other).
func decodeTUFRef(env []byte) (tufRef, bool) {
	// A reference is small; a schema 1 or an older TUF manifest envelope
	// is not decoded twice.
	if len(env) > 64<<10 || !bytes.Contains(env, []byte(TUFRefType)) {
		return tufRef{}, false
	}
	var e snapshot.Envelope
	if err := json.Unmarshal(env, &e); err != nil || e.PayloadType != TUFRefType {
		return tufRef{}, false
	}
	var ref tufRef
	if err := json.Unmarshal(e.Payload, &ref); err != nil || ref.TenantID == "" || len(ref.Timestamp) == 0 {
		return tufRef{}, false
	}
	return ref, true
}

// assemble assembles the manifest of the version ref names from the
// published files in mirror.db (verified before they were stored),
// reusing the unchanged products of the last version it assembled.
func (t *tufMem) assemble(tx *bbolt.Tx, ref tufRef) (*snapshot.Manifest, error) {
	t.asmMu.Lock()
	defer t.asmMu.Unlock()
	files := tx.Bucket(bktTUFFiles)
	read := func(_ context.Context, path string) ([]byte, error) {
		v := files.Get([]byte(path))
		if v == nil {
			return nil, fmt.Errorf("%s: %w", path, tuf.ErrNotFound)
		}
		return append([]byte(nil), v...), nil
	}
	return tuf.AssemblePublished(context.Background(), ref.TenantID, read, ref.Timestamp, &t.asm)
}

// tufMem holds the manifests of the TUF versions this process committed
// or read back, by sequence, so the server, GC and status do not decode
// or assemble them again (at most the retention window's worth; they
// share the parts of the products that did not change between them).
// The manifests are shared: read-only.
type tufMem struct {
	mu sync.Mutex
	m  map[int64]heldManifest
	// asm assembles the versions read back (after a restart), one at a
	// time.
	asmMu sync.Mutex
	asm   tuf.Assembler
}

type heldManifest struct {
	hash string
	m    *snapshot.Manifest
}

func (t *tufMem) get(seq int64, hash string) *snapshot.Manifest {
	t.mu.Lock()
	defer t.mu.Unlock()
	if h, ok := t.m[seq]; ok && h.hash == hash {
		return h.m
	}
	return nil
}

// put keeps m for seq, dropping the oldest beyond max.
func (t *tufMem) put(seq int64, hash string, m *snapshot.Manifest, max int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = map[int64]heldManifest{}
	}
	t.m[seq] = heldManifest{hash: hash, m: m}
	for len(t.m) > max {
		oldest := seq
		for k := range t.m {
			oldest = min(oldest, k)
		}
		delete(t.m, oldest)
	}
}
