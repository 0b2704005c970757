package tuf

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/outpost/outpost/internal/snapshot"
)

// AssemblePublished assembles the manifest of the repository version
// that timestamp names, reading the files published for it (read: the
// versioned roles and the documents under their sha256 names). It is for
// a holder reading back files it verified before it stored them (a
// mirror restarting, or answering for a version it still retains): the
// signatures are not checked again, but every file must be the one the
// timestamp pins (snapshot hash and version, each role at the version
// the snapshot lists, each document at its signed sha256). a reuses the
// parts of unchanged products (nil: a fresh assembly).
func AssemblePublished(ctx context.Context, tenantID string, read ReadFunc, timestamp []byte, a *Assembler) (*snapshot.Manifest, error) {
	if a == nil {
		a = new(Assembler)
	}
	r, err := loadPublished(ctx, tenantID, read, timestamp)
	if err != nil {
		return nil, fmt.Errorf("assemble published: %w", err)
	}
	return a.Manifest(r)
}

// loadPublished reads the repository version timestamp names.
func loadPublished(ctx context.Context, tenantID string, read ReadFunc, timestamp []byte) (*Repository, error) {
	ts, err := metadata.Timestamp().FromBytes(timestamp)
	if err != nil {
		return nil, fmt.Errorf("timestamp: %w", err)
	}
	sm := ts.Signed.Meta["snapshot.json"]
	if sm == nil {
		return nil, errors.New("timestamp names no snapshot")
	}
	sb, err := read(ctx, MetadataPath(metadata.SNAPSHOT, sm.Version))
	if err != nil {
		return nil, fmt.Errorf("snapshot v%d: %w", sm.Version, err)
	}
	if want := sm.Hashes["sha256"]; len(want) > 0 {
		if sum := sha256.Sum256(sb); !bytes.Equal(sum[:], want) {
			return nil, fmt.Errorf("snapshot v%d: sha256 is not the one the timestamp pins", sm.Version)
		}
	}
	snap, err := metadata.Snapshot().FromBytes(sb)
	if err != nil {
		return nil, fmt.Errorf("snapshot v%d: %w", sm.Version, err)
	}
	r := &Repository{
		TenantID: tenantID, Timestamp: ts, Snapshot: snap,
		Roles: map[string]*Targets{}, Docs: map[string][]byte{}, compact: map[string]compactRole{},
	}
	role := func(name string) (*Targets, error) {
		mf := snap.Signed.Meta[name+".json"]
		if mf == nil {
			return nil, fmt.Errorf("role %s: not in snapshot v%d", name, snap.Signed.Version)
		}
		b, err := read(ctx, MetadataPath(name, mf.Version))
		if err != nil {
			return nil, fmt.Errorf("role %s v%d: %w", name, mf.Version, err)
		}
		var t *Targets
		if isBinName(name) {
			if fr, c, ok := fastParseCompact(b); ok {
				t = fr.t
				r.compact[name] = c
			}
		}
		if t == nil {
			if t, err = parseTargets(b); err != nil {
				return nil, fmt.Errorf("role %s v%d: %w", name, mf.Version, err)
			}
			if isBinName(name) {
				if c, ok := compactTargets(t); ok {
					r.compact[name], t.Signed.Targets = c, nil
				}
			}
		}
		if t.Signed.Version != mf.Version {
			return nil, fmt.Errorf("role %s: version %d, the snapshot lists %d", name, t.Signed.Version, mf.Version)
		}
		r.Roles[name] = t
		return t, nil
	}
	docs := func(t *Targets, dir string) error {
		for p, tf := range t.Signed.Targets {
			if tf.Custom != nil || !strings.HasPrefix(p, dir) {
				continue
			}
			sum := tf.Hashes["sha256"]
			if len(sum) != sha256.Size {
				return fmt.Errorf("document %s: no sha256", p)
			}
			b, err := read(ctx, TargetPath(p, hex.EncodeToString(sum)))
			if err != nil {
				return fmt.Errorf("document %s: %w", p, err)
			}
			if got := sha256.Sum256(b); !bytes.Equal(got[:], sum) || int64(len(b)) != tf.Length {
				return fmt.Errorf("document %s: not the signed bytes", p)
			}
			r.Docs[p] = b
		}
		return nil
	}
	top, err := role(metadata.TARGETS)
	if err != nil {
		return nil, err
	}
	if err := docs(top, DocsDir+"/"); err != nil {
		return nil, err
	}
	if top.Signed.Delegations == nil {
		return r, nil
	}
	for _, dr := range top.Signed.Delegations.Roles {
		pid, ok := strings.CutPrefix(dr.Name, productRolePrefix)
		if !ok {
			return nil, fmt.Errorf("delegated role %s is not a product role", dr.Name)
		}
		pr, err := role(dr.Name)
		if err != nil {
			return nil, err
		}
		if err := docs(pr, pid+"/"); err != nil {
			return nil, err
		}
		if d := pr.Signed.Delegations; d != nil && d.SuccinctRoles != nil {
			if d.SuccinctRoles.BitLength > 16 {
				return nil, fmt.Errorf("role %s: %d-bit hashed bins", dr.Name, d.SuccinctRoles.BitLength)
			}
			for _, name := range d.SuccinctRoles.GetRoles() {
				if _, err := role(name); err != nil {
					return nil, err
				}
			}
		}
	}
	return r, nil
}
