// Package sitepagetest provides an in-memory sitepage.Backend: a mirror
// status that an import changes, and imports that hash the streamed bundle
// (never keeping it) and refuse one whose content starts with "BAD".
package sitepagetest

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/outpost/outpost/internal/sitepage"
)

// Fake is a sitepage.Backend.
type Fake struct {
	mu         sync.Mutex
	Now        func() time.Time
	AdminToken string
	S          sitepage.Status
	staged     map[string]*sitepage.ImportReport
	Imported   []string // sha256 of committed bundles
	hashes     map[string]string
	n          int
}

// New returns a fake mirror holding version 41, synced 3 hours ago.
func New(now func() time.Time, adminToken string) *Fake {
	t := now().UTC()
	last := t.Add(-3 * time.Hour)
	return &Fake{Now: now, AdminToken: adminToken, staged: map[string]*sitepage.ImportReport{}, hashes: map[string]string{},
		S: sitepage.Status{
			MirrorID: "mir_06h2pnffrr4dqnfdnp01mrhvjr", TenantID: "ten_06h2pnffrr4dqnfdnp01mrhvjq", Name: "acme-lab (air-gapped)",
			Snapshot: &sitepage.Snapshot{ID: "snp_06h2pnffrr4dqnfdnp01mrhvjs", Version: 41, Hash: "9f2c4e0d7a1b3c5e8f90a1b2c3d4e5f60718293a4b5c6d7e8f901a2b3c4d5e6f",
				ExpiresAt: t.Add(20 * time.Hour), VerifiedAt: last, Channels: []string{"stable", "beta"}, Artifacts: 6},
			LastSync:    &sitepage.SyncResult{At: t.Add(-40 * time.Minute), Source: "inbox", OK: false, Error: "bundle acme-40.tar: sequence 40 is older than the held 41 (rollback refused)"},
			LastSuccess: last,
			Cache:       sitepage.Cache{Blobs: 6, Bytes: 734 << 20, CapacityBytes: 20 << 30},
			Seats:       []sitepage.Seats{{EntitlementID: "ent_06h2pnffrr4dqnfdnp01mrhvjt", Product: "Acme App", InUse: 7, Max: 10}},
			Events: []sitepage.Event{
				{At: t.Add(-40 * time.Minute), Kind: "import", OK: false, Detail: "acme-40.tar refused: rollback"},
				{At: last, Kind: "import", OK: true, Detail: "acme-41.tar: v41, 2 new artifacts (210.0 MiB)"},
				{At: t.Add(-26 * time.Hour), Kind: "verify", OK: true, Detail: "6 artifacts re-hashed, none corrupt"},
			},
		}}
}

func (f *Fake) Status(ctx context.Context) (*sitepage.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.S
	return &s, nil
}

func (f *Fake) AuthorizeAdmin(ctx context.Context, token string) error {
	if subtle.ConstantTimeCompare([]byte(token), []byte(f.AdminToken)) != 1 {
		return errors.New("bad token")
	}
	return nil
}

func (f *Fake) DryRunImport(ctx context.Context, name string, r io.Reader) (*sitepage.ImportReport, string, error) {
	br := bufio.NewReader(r)
	head, _ := br.Peek(3)
	h := sha256.New()
	n, err := io.Copy(h, br)
	if err != nil {
		return nil, "", fmt.Errorf("read bundle: %w", err)
	}
	if string(head) == "BAD" {
		return nil, "", errors.New("bundle: signature does not verify with the pinned keys")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	id := fmt.Sprintf("stg_%d", f.n)
	from := int64(0)
	if f.S.Snapshot != nil {
		from = f.S.Snapshot.Version
	}
	rep := &sitepage.ImportReport{FileName: name, TenantID: f.S.TenantID, FromVersion: from, ToVersion: from + 1, ExpiresAt: f.Now().Add(7 * 24 * time.Hour),
		Releases: 3, Artifacts: 7, NewArtifacts: 1, Bytes: n, Revoked: []string{"Acme App 1.1.0"}}
	f.staged[id] = rep
	f.hashes[id] = hex.EncodeToString(h.Sum(nil))
	return rep, id, nil
}

func (f *Fake) CommitImport(ctx context.Context, id string) (*sitepage.ImportReport, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	rep, ok := f.staged[id]
	if !ok {
		return nil, errors.New("no such staged import")
	}
	delete(f.staged, id)
	now := f.Now().UTC()
	snap := *f.S.Snapshot
	snap.Version, snap.ExpiresAt, snap.VerifiedAt, snap.Artifacts = rep.ToVersion, rep.ExpiresAt, now, rep.Artifacts
	f.S.Snapshot = &snap
	f.S.LastSync = &sitepage.SyncResult{At: now, Source: "upload", OK: true, Changed: true, Version: rep.ToVersion, Downloaded: rep.NewArtifacts, Bytes: rep.Bytes}
	f.S.LastSuccess = now
	f.S.Events = append([]sitepage.Event{{At: now, Kind: "import", OK: true, Detail: fmt.Sprintf("%s: v%d", rep.FileName, rep.ToVersion)}}, f.S.Events...)
	f.Imported = append(f.Imported, f.hashes[id])
	c := *rep
	return &c, nil
}

func (f *Fake) DiscardImport(ctx context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.staged, id)
	return nil
}

// Committed returns the hashes of committed bundles.
func (f *Fake) Committed() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.Imported...)
}

var _ sitepage.Backend = (*Fake)(nil)

// Staged returns the number of staged imports (dry runs neither committed
// nor discarded).
func (f *Fake) Staged() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.staged)
}
