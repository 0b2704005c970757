package mirror

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	gosync "sync"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/mirror/state"
	"github.com/outpost/outpost/internal/sitepage"
	"github.com/outpost/outpost/internal/snapshot"
	"github.com/outpost/outpost/internal/sync"
)

// HashAdminToken is how mirror.yaml's admin_token_hashes are written:
// the lowercase hex sha256 of the token (`mirror admin-token` prints one).
func HashAdminToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// SitePage is the site status page's backend (sitepage.Backend) over a
// mirror: the status is the one GET /v1/status serves; a bundle upload is
// staged in the data dir, dry-run through the Syncer's import, and
// committed through the same import as the inbox.
type SitePage struct {
	srv     *Server
	syncer  *sync.Syncer
	st      *state.State
	leases  *Leases
	dir     string     // staging directory
	admins  [][32]byte // sha256 of the admin tokens
	now     func() time.Time
	tenant  string
	mu      gosync.Mutex
	events  []sitepage.Event // newest first
	success time.Time        // the last successful sync or import seen
}

var _ sitepage.Backend = (*SitePage)(nil)

// maxEvents bounds the recent events the page lists.
const maxEvents = 20

// newSitePage builds the page's backend. adminHashes are hex sha256s of
// the admin tokens (none: uploads are refused). Bundles left staged by an
// earlier run are removed: their one-time commit values died with it.
func newSitePage(srv *Server, syncer *sync.Syncer, st *state.State, leases *Leases, dataDir, tenantID string, adminHashes []string, now func() time.Time) (*SitePage, error) {
	p := &SitePage{srv: srv, syncer: syncer, st: st, leases: leases, dir: filepath.Join(dataDir, "staging"), now: now, tenant: tenantID}
	for _, h := range adminHashes {
		b, err := hex.DecodeString(strings.TrimSpace(h))
		if err != nil || len(b) != sha256.Size {
			return nil, fmt.Errorf("admin token hash %q is not a hex sha256", h)
		}
		p.admins = append(p.admins, [32]byte(b))
	}
	if err := os.RemoveAll(p.dir); err != nil {
		return nil, fmt.Errorf("clear import staging: %w", err)
	}
	if err := os.MkdirAll(p.dir, 0o700); err != nil {
		return nil, fmt.Errorf("import staging: %w", err)
	}
	if r, ok, err := st.LastSync(); err == nil && ok {
		p.observe(r)
	}
	return p, nil
}

// observe records a sync or import result (the Syncer's OnResult).
func (p *SitePage) observe(r state.SyncResult) {
	ev := sitepage.Event{At: r.At, Kind: "sync", OK: r.OK}
	if r.Source == "bundle" {
		ev.Kind = "import"
	}
	switch {
	case !r.OK:
		ev.Detail = r.Error
	case r.Changed && ev.Kind == "import":
		ev.Detail = fmt.Sprintf("now at version %d (%d artifacts, %d bytes taken from the bundle)", r.Sequence, r.Downloaded, r.Bytes)
	case r.Changed:
		ev.Detail = fmt.Sprintf("now at version %d (%d artifacts, %d bytes downloaded)", r.Sequence, r.Downloaded, r.Bytes)
	default:
		ev.Detail = "up to date"
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if r.OK && r.At.After(p.success) {
		p.success = r.At
	}
	p.events = append([]sitepage.Event{ev}, p.events...)
	if len(p.events) > maxEvents {
		p.events = p.events[:maxEvents]
	}
}

// Status is what GET /v1/status serves, for people: the held snapshot,
// the last sync or import, the cache, the seats leased here and the
// recent syncs and imports.
func (p *SitePage) Status(ctx context.Context) (*sitepage.Status, error) {
	s, err := p.srv.Status(ctx)
	if err != nil {
		return nil, err
	}
	out := &sitepage.Status{TenantID: p.tenant}
	out.MirrorID, _ = p.st.MirrorID()
	if p.leases != nil && p.leases.mirrorID != "" {
		out.MirrorID = p.leases.mirrorID
	}
	if s.Snapshot != nil {
		out.Snapshot = &sitepage.Snapshot{ID: s.Snapshot.SnapshotID, Version: s.Snapshot.Sequence, Hash: s.Snapshot.Hash,
			ExpiresAt: s.Snapshot.ExpiresAt, VerifiedAt: s.Snapshot.VerifiedAt, Channels: s.Snapshot.Channels, Artifacts: s.Snapshot.Artifacts}
	}
	if r := s.LastSync; r != nil {
		out.LastSync = &sitepage.SyncResult{At: r.At, Source: r.Source, OK: r.OK, Changed: r.Changed, Version: r.Sequence,
			Downloaded: r.Downloaded, Bytes: r.Bytes, Error: r.Error}
	}
	out.Cache = sitepage.Cache{Blobs: s.Cache.Blobs, Bytes: s.Cache.Bytes, Missing: s.Cache.Missing, Quarantined: s.Cache.Quarantined}
	if m := p.srv.Manifest(); m != nil {
		out.TenantID, out.Name = m.TenantID, m.Tenant.Name
		out.Seats = p.seats(ctx, m.Entitlements, m.Products, out.MirrorID)
	}
	p.mu.Lock()
	out.LastSuccess = p.success
	out.Events = append([]sitepage.Event(nil), p.events...)
	p.mu.Unlock()
	if out.LastSuccess.IsZero() && out.Snapshot != nil {
		out.LastSuccess = out.Snapshot.VerifiedAt // held from before this run
	}
	return out, nil
}

// AuthorizeAdmin checks token against the configured admin token hashes
// in constant time; with none configured every token is refused.
func (p *SitePage) AuthorizeAdmin(ctx context.Context, token string) error {
	sum := sha256.Sum256([]byte(token))
	match := 0
	for _, h := range p.admins {
		match |= subtle.ConstantTimeCompare(sum[:], h[:])
	}
	if match == 0 || token == "" {
		return catalog.Errorf(catalog.EUNAUTHORIZED, "not a mirror admin token")
	}
	return nil
}

// stagingPath is the file of a staging id, refusing ids that are not
// ours (the id comes back from a form).
func (p *SitePage) stagingPath(id string) (string, error) {
	if len(id) != 32 || strings.Trim(id, "0123456789abcdef") != "" {
		return "", catalog.NotFound("staged import", id)
	}
	return filepath.Join(p.dir, id+".bundle"), nil
}

// DryRunImport streams the upload into a staging file in the data dir,
// then runs the Syncer's import as a dry run over it: verified as an
// import would be, nothing committed.
func (p *SitePage) DryRunImport(ctx context.Context, fileName string, r io.Reader) (*sitepage.ImportReport, string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return nil, "", err
	}
	id := hex.EncodeToString(b)
	path, _ := p.stagingPath(id)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o600)
	if err != nil {
		return nil, "", fmt.Errorf("stage bundle: %w", err)
	}
	keep := false
	defer func() {
		f.Close()
		if !keep {
			os.Remove(path)
		}
	}()
	if _, err := io.Copy(f, r); err != nil {
		return nil, "", fmt.Errorf("stage bundle: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, "", err
	}
	rep, err := p.syncer.Import(ctx, f, true)
	if err != nil {
		return nil, "", fmt.Errorf("the bundle was refused: %w", err)
	}
	keep = true
	return p.report(fileName, rep), id, nil
}

func (p *SitePage) report(fileName string, rep sync.ImportReport) *sitepage.ImportReport {
	out := &sitepage.ImportReport{FileName: fileName, TenantID: p.tenant, FromVersion: rep.HeldSequence, ToVersion: rep.Sequence,
		Artifacts: rep.Needed, NewArtifacts: rep.Imported, Bytes: rep.Bytes, ExpiresAt: rep.ExpiresAt, Releases: rep.Releases, Revoked: rep.Withdrawn}
	if m := p.srv.Manifest(); m != nil && out.TenantID == "" {
		out.TenantID = m.TenantID
	}
	if !rep.Changed {
		out.Warnings = append(out.Warnings, fmt.Sprintf("the mirror already holds version %d: importing changes nothing", rep.HeldSequence))
	}
	if rep.Skipped > 0 {
		out.Warnings = append(out.Warnings, fmt.Sprintf("%d artifacts are for channels this mirror does not serve and are skipped", rep.Skipped))
	}
	return out
}

// CommitImport imports a staged bundle through the same import as the
// inbox (verified again, then committed), and removes it.
func (p *SitePage) CommitImport(ctx context.Context, stagingID string) (*sitepage.ImportReport, error) {
	path, err := p.stagingPath(stagingID)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, catalog.NotFound("staged import", stagingID)
	}
	if err != nil {
		return nil, err
	}
	defer os.Remove(path)
	defer f.Close()
	rep, err := p.syncer.Import(ctx, f, false)
	if err != nil {
		return nil, fmt.Errorf("the import failed: %w", err)
	}
	return p.report("", rep), nil
}

// DiscardImport removes a staged bundle.
func (p *SitePage) DiscardImport(ctx context.Context, stagingID string) error {
	path, err := p.stagingPath(stagingID)
	if err != nil {
		return err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("discard staged import: %w", err)
	}
	return nil
}

// seats is each current entitlement's seats leased here against the seats
// it gives this mirror. Without a lease ledger (no mirror key configured)
// nothing is leased here and no seats are listed.
func (p *SitePage) seats(ctx context.Context, ents []snapshot.Entitlement, products []snapshot.Product, mirrorID string) []sitepage.Seats {
	if p.leases == nil || mirrorID == "" {
		return nil
	}
	led, err := p.leases.Ledger()
	if err != nil {
		return nil
	}
	names := map[string]string{}
	for _, pr := range products {
		names[pr.ProductID] = pr.Name
	}
	now := p.now()
	var out []sitepage.Seats
	for _, e := range ents {
		pol, err := catalog.ParseEntitlementPolicy(e.Policy)
		if err != nil || now.Before(e.StartsAt) || (e.EndsAt != nil && !now.Before(*e.EndsAt)) {
			continue
		}
		n, err := led.ActiveLeases(ctx, e.EntitlementID, now)
		if err != nil {
			continue
		}
		out = append(out, sitepage.Seats{EntitlementID: e.EntitlementID, Product: names[e.ProductID], InUse: n, Max: pol.MirrorSeats[mirrorID]})
	}
	return out
}
