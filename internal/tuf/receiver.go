package tuf

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// ReadFunc reads a published file by its repository path
// ("metadata/<v>.<role>.json", "targets/<dir>/<sha256>.<name>"),
// wrapping ErrNotFound when there is none.
type ReadFunc func(ctx context.Context, path string) ([]byte, error)

// ReceiverStore is a Store holding what a receiver of a repository trusts
// when it holds snapshot version since, reconstructed from the publisher's
// own files: the first root, the snapshot, the roles at the versions that
// snapshot lists and the documents they list. A Client running from it
// against the current repository fetches what such a receiver lacks: an
// exporter records that to build an incremental bundle. Since 0 is a
// receiver holding only the first root (a full bundle). Writes stay in
// memory; the published files are never changed.
type ReceiverStore struct {
	read  ReadFunc
	since int64
	mem   *MemStore

	mu    sync.Mutex
	snap  *metadata.Metadata[metadata.SnapshotType]
	roles map[string]*metadata.Metadata[metadata.TargetsType]
}

// NewReceiverStore returns the store of a receiver holding snapshot
// version since (0: none). It fails when the publisher has no such
// snapshot.
func NewReceiverStore(ctx context.Context, read ReadFunc, since int64) (*ReceiverStore, error) {
	s := &ReceiverStore{read: read, since: since, mem: NewMemStore(), roles: map[string]*metadata.Metadata[metadata.TargetsType]{}}
	if since < 0 {
		return nil, fmt.Errorf("receiver: snapshot version %d", since)
	}
	if since == 0 {
		return s, nil
	}
	b, err := read(ctx, MetadataPath(metadata.SNAPSHOT, since))
	if err != nil {
		return nil, fmt.Errorf("receiver: snapshot v%d: %w", since, err)
	}
	if s.snap, err = metadata.Snapshot().FromBytes(b); err != nil {
		return nil, fmt.Errorf("receiver: snapshot v%d: %w", since, err)
	}
	return s, nil
}

// Get implements Store.
func (s *ReceiverStore) Get(ctx context.Context, name string) ([]byte, error) {
	if b, err := s.mem.Get(ctx, name); err == nil {
		return b, nil
	}
	notFound := fmt.Errorf("%s: %w", name, ErrNotFound)
	switch {
	case name == storeRoot:
		return s.read(ctx, MetadataPath(metadata.ROOT, 1))
	case s.snap == nil || name == storeTimestamp:
		return nil, notFound
	case name == storeSnapshot:
		return s.read(ctx, MetadataPath(metadata.SNAPSHOT, s.since))
	case strings.HasPrefix(name, MetadataDir+"/"):
		role := strings.TrimSuffix(strings.TrimPrefix(name, MetadataDir+"/"), ".json")
		mf := s.snap.Signed.Meta[role+".json"]
		if mf == nil {
			return nil, notFound
		}
		return s.read(ctx, MetadataPath(role, mf.Version))
	case strings.HasPrefix(name, TargetsDir+"/"):
		path := strings.TrimPrefix(name, TargetsDir+"/")
		role := metadata.TARGETS
		if dir, _, ok := strings.Cut(path, "/"); ok && dir != DocsDir {
			role = ProductRole(dir)
		}
		t, err := s.role(ctx, role)
		if err != nil || t == nil {
			return nil, notFound
		}
		tf := t.Signed.Targets[path]
		if tf == nil || tf.Custom != nil {
			return nil, notFound
		}
		return s.read(ctx, TargetPath(path, hex.EncodeToString(tf.Hashes["sha256"])))
	}
	return nil, notFound
}

// role returns a role at the version the receiver's snapshot lists (nil
// when it lists none).
func (s *ReceiverStore) role(ctx context.Context, role string) (*metadata.Metadata[metadata.TargetsType], error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.roles[role]; ok {
		return t, nil
	}
	mf := s.snap.Signed.Meta[role+".json"]
	if mf == nil {
		s.roles[role] = nil
		return nil, nil
	}
	b, err := s.read(ctx, MetadataPath(role, mf.Version))
	if errors.Is(err, ErrNotFound) {
		s.roles[role] = nil
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	t, err := metadata.Targets().FromBytes(b)
	if err != nil {
		return nil, fmt.Errorf("receiver: role %s: %w", role, err)
	}
	s.roles[role] = t
	return t, nil
}

// Put implements Store: in memory only.
func (s *ReceiverStore) Put(ctx context.Context, name string, data []byte) error {
	return s.mem.Put(ctx, name, data)
}
