package controlplane

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/snapshot"
	"github.com/outpost/outpost/internal/store"
	"github.com/outpost/outpost/internal/tuf"
	"github.com/outpost/outpost/internal/tufkeys"
)

// TUF publishing (docs/metadata.md, "The control plane"): every snapshot
// build also builds the tenant's TUF repository from the same input and
// persists the changed files in the store (store.TUFFiles), so a restart
// restores the builder and re-signs nothing.

// Scopes and sets of the published files in store.TUFFiles.
const (
	tufShared       = "~products" // product roles, bins and documents: shared by the tenants
	tufCurrent      = "current"   // a tenant's timestamp, snapshot, targets and documents
	tufRootSet      = "root"      // a tenant's newest root
	tufSettings     = "settings/timestamp_ttl"
	tufProductSetPf = "p/" // + product id: a product's current files
)

// TUFKeys are the vendor's TUF keys (tufkeys.Dir).
type TUFKeys interface {
	Spec() (*tufkeys.RootSpec, error)
	Signers(role string) ([]tuf.Signer, error)    // active keys
	AllSigners(role string) ([]tuf.Signer, error) // retired ones too
	RootSigners() ([]tuf.Signer, error)
}

// TUFOptions turn TUF publishing on.
type TUFOptions struct {
	Keys TUFKeys
	// TimestampTTL is the default timestamp lifetime (default 24h); a
	// tenant's own (SetTUFTimestampTTL) wins.
	TimestampTTL time.Duration
	// RootTTL is the lifetime of a new root (default 365 days).
	RootTTL time.Duration
}

// ErrNoTUF is returned when TUF publishing is not enabled.
var ErrNoTUF = catalog.Errorf(catalog.EUNAVAILABLE, "TUF publishing is not enabled: run `controlplane root init`")

type tufState struct {
	o     TUFOptions
	files store.TUFFiles

	mu       sync.Mutex // one build at a time; guards the fields below
	products *tuf.ProductSet
	prodKeys string
	tenants  map[string]*tuf.State
	resign   map[string]bool
	views    map[string]*tufView // tenant -> what it may be served
}

// tufView is what a tenant's current repository lets it fetch.
type tufView struct {
	snapVersion int64
	roles       map[string]int64     // role -> version in the current snapshot
	products    map[string]bool      // product ids of the tenant's view
	artifacts   map[string]tufArtRef // release artifact id -> artifact
	deltas      map[string]tufArtRef // delta target name ("delta-<from>-<to>") -> delta id (artifactID) and sha256
}

type tufArtRef struct {
	productID, artifactID, sha256 string
}

// EnableTUF turns on TUF publishing over the App's store, which must
// implement store.TUFFiles.
func (a *App) EnableTUF(o TUFOptions) error {
	files, ok := a.store.(store.TUFFiles)
	if !ok {
		return errors.New("enable tuf: the store cannot keep TUF files")
	}
	if o.Keys == nil {
		return errors.New("enable tuf: no keys")
	}
	if o.TimestampTTL <= 0 {
		o.TimestampTTL = 24 * time.Hour
	}
	if o.RootTTL <= 0 {
		o.RootTTL = 365 * 24 * time.Hour
	}
	a.tuf = &tufState{o: o, files: files, tenants: map[string]*tuf.State{}, resign: map[string]bool{}, views: map[string]*tufView{}}
	return nil
}

// TUFEnabled reports whether TUF publishing is on.
func (a *App) TUFEnabled() bool { return a.tuf != nil }

// tenantKeys returns the online keys of a tenant's top-level roles: the
// keys its newest root lists (a replaced key signs on until the root that
// drops it is published, so clients never see a key they cannot trust),
// or the active keys before the tenant has a root.
func (t *tufState) tenantKeys(ctx context.Context, tenantID string) (tuf.TenantKeys, error) {
	var k tuf.TenantKeys
	root, err := t.latestRoot(ctx, tenantID)
	if err != nil {
		return k, err
	}
	for _, x := range []struct {
		role string
		dst  *[]tuf.Signer
	}{{tufkeys.Targets, &k.Targets}, {tufkeys.Snapshot, &k.Snapshot}, {tufkeys.Timestamp, &k.Timestamp}} {
		if root == nil {
			if *x.dst, err = t.o.Keys.Signers(x.role); err != nil {
				return k, err
			}
			continue
		}
		all, err := t.o.Keys.AllSigners(x.role)
		if err != nil {
			return k, err
		}
		listed := root.Signed.Roles[x.role].KeyIDs
		for _, s := range all {
			if slices.Contains(listed, s.KeyID()) {
				*x.dst = append(*x.dst, s)
			}
		}
		if len(*x.dst) < root.Signed.Roles[x.role].Threshold {
			return k, fmt.Errorf("tenant %s: the %s keys its root lists are not in the key directory", tenantID, x.role)
		}
	}
	return k, nil
}

// productSet returns the shared product set, signed by the current
// product keys (a replaced key re-signs each product at its next update).
func (t *tufState) productSet() (*tuf.ProductSet, error) {
	signers, err := t.o.Keys.Signers(tufkeys.Product)
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(signers))
	for _, s := range signers {
		ids = append(ids, s.KeyID())
	}
	slices.Sort(ids)
	set := strings.Join(ids, ",")
	switch {
	case t.products == nil:
		if t.products, err = tuf.NewProductSet(tuf.ProductOptions{}, signers...); err != nil {
			return nil, err
		}
	case t.prodKeys != set:
		if err := t.products.SetSigners(signers...); err != nil {
			return nil, err
		}
	}
	t.prodKeys = set
	return t.products, nil
}

func toStore(files []tuf.File) []store.TUFFile {
	out := make([]store.TUFFile, len(files))
	for i, f := range files {
		out[i] = store.TUFFile{Name: f.Path, Data: f.Data}
	}
	return out
}

func names(files []tuf.File) []string {
	out := make([]string, len(files))
	for i, f := range files {
		out[i] = f.Path
	}
	return out
}

// state returns the tenant's builder state: in memory, else restored
// from the store, else nil (first build).
//
// The copy in memory is checked against the stored timestamp first:
// another instance over the same store may have published since, and
// building or serving from an older state would sign versions the other
// already used, or refuse the files a mirror asks for.
func (t *tufState) state(ctx context.Context, tenantID string) (*tuf.State, error) {
	if st := t.tenants[tenantID]; st != nil {
		_, _, held := st.Versions()
		if v, err := t.storedTimestampVersion(ctx, tenantID); err != nil || v == held {
			return st, err
		}
		delete(t.tenants, tenantID)
		delete(t.views, tenantID)
	}
	files, err := t.files.TUFSet(ctx, tenantID, tufCurrent)
	if err != nil || files == nil {
		return nil, err
	}
	var ts, sn, tg []byte
	docs := map[string][]byte{}
	for _, f := range files {
		switch {
		case f.Name == tuf.MetadataPath(metadata.TIMESTAMP, 0):
			ts = f.Data
		case strings.HasSuffix(f.Name, "."+metadata.SNAPSHOT+".json"):
			sn = f.Data
		case strings.HasSuffix(f.Name, "."+metadata.TARGETS+".json"):
			tg = f.Data
		default:
			// targets/<dir>/<sha256>.<name> -> <dir>/<name>
			rest := strings.TrimPrefix(f.Name, tuf.TargetsDir+"/")
			i := strings.LastIndexByte(rest, '/')
			base := rest[i+1:]
			_, name, ok := strings.Cut(base, ".")
			if i < 0 || !ok {
				return nil, fmt.Errorf("restore tuf state of %s: file %s", tenantID, f.Name)
			}
			docs[rest[:i+1]+name] = f.Data
		}
	}
	st, err := tuf.RestoreState(tenantID, ts, sn, tg, docs)
	if err != nil {
		return nil, err
	}
	t.tenants[tenantID] = st
	return st, nil
}

// storedTimestampVersion is the version of the tenant's timestamp in the
// store (0: none).
func (t *tufState) storedTimestampVersion(ctx context.Context, tenantID string) (int64, error) {
	b, err := t.file(ctx, tenantID, tuf.MetadataPath(metadata.TIMESTAMP, 0))
	if errors.Is(err, tuf.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	md, err := metadata.Timestamp().FromBytes(b)
	if err != nil {
		return 0, fmt.Errorf("tenant %s timestamp: %w", tenantID, err)
	}
	return md.Signed.Version, nil
}

// restoreProduct loads a product's published files into the set, unless
// the set already holds the product role's stored version (another
// instance over the same store may have published a newer one).
func (t *tufState) restoreProduct(ctx context.Context, ps *tuf.ProductSet, productID string) error {
	files, err := t.files.TUFSet(ctx, tufShared, tufProductSetPf+productID)
	if err != nil || files == nil {
		return err
	}
	if held := ps.Roles(productID); held != nil {
		role := tuf.ProductRole(productID)
		for _, f := range files {
			if strings.HasSuffix(f.Name, "."+role+".json") && f.Name == tuf.MetadataPath(role, held[0].Version) {
				return nil // the stored version is the one held
			}
		}
	}
	tf := make([]tuf.File, len(files))
	for i, f := range files {
		tf[i] = tuf.File{Path: f.Name, Data: f.Data}
	}
	return ps.Restore(productID, tf)
}

// timestampTTL is the tenant's timestamp lifetime.
func (t *tufState) timestampTTL(ctx context.Context, tenantID string) (time.Duration, error) {
	b, err := t.files.TUFFile(ctx, tenantID, tufSettings)
	if catalog.ErrorCode(err) == catalog.ENOTFOUND {
		return t.o.TimestampTTL, nil
	}
	if err != nil {
		return 0, err
	}
	return time.ParseDuration(string(b))
}

// SetTUFTimestampTTL sets a tenant's timestamp lifetime: short for an
// online site, longer than the bundle cadence for an air-gapped one. The
// next build or refresh uses it.
func (a *App) SetTUFTimestampTTL(ctx context.Context, tenantID string, ttl time.Duration) error {
	if a.tuf == nil {
		return ErrNoTUF
	}
	if _, err := a.Tenant(ctx, tenantID); err != nil {
		return err
	}
	if ttl < time.Minute || ttl > 365*24*time.Hour {
		return catalog.Invalid("timestamp_ttl", "must be between 1m and 8760h")
	}
	return a.tuf.files.PutTUFFiles(ctx, tenantID, []store.TUFFile{{Name: tufSettings, Data: []byte(ttl.String())}}, nil)
}

// publishTUF builds the tenant's repository from its view m and persists
// what changed: the products' files first (shared scope), then the
// tenant's, each in one transaction.
func (a *App) publishTUF(ctx context.Context, m *snapshot.Manifest) error {
	t := a.tuf
	if t == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.publish(ctx, m, a.now())
}

func (t *tufState) publish(ctx context.Context, m *snapshot.Manifest, now time.Time) error {
	tenantID := m.TenantID
	keys, err := t.tenantKeys(ctx, tenantID)
	if err != nil {
		return err
	}
	ps, err := t.productSet()
	if err != nil {
		return err
	}
	for _, p := range m.Products {
		if err := t.restoreProduct(ctx, ps, p.ProductID); err != nil {
			return err
		}
	}
	prev, err := t.state(ctx, tenantID)
	if err != nil {
		return err
	}
	if prev != nil && t.resign[tenantID] {
		prev = prev.Resign()
	}
	ttl, err := t.timestampTTL(ctx, tenantID)
	if err != nil {
		return err
	}
	b := &tuf.Builder{TenantID: tenantID, Products: ps, Keys: keys, Options: tuf.TenantOptions{TimestampTTL: ttl}}
	st, files, err := b.Build(ctx, prev, m, now)
	if err != nil {
		return err
	}
	if err := t.persist(ctx, tenantID, ps, st, files); err != nil {
		return err
	}
	delete(t.resign, tenantID)
	t.views[tenantID] = viewOf(m)
	return t.ensureRoot(ctx, tenantID, now)
}

// persist writes a build's changed files: products' to the shared scope
// with the current set of every product touched, then the tenant's with
// its current set.
func (t *tufState) persist(ctx context.Context, tenantID string, ps *tuf.ProductSet, st *tuf.State, files []tuf.File) error {
	var shared, own []tuf.File
	touched := map[string]bool{}
	for _, f := range files {
		if pid, ok := productOfFile(ps, f.Path); ok {
			shared = append(shared, f)
			touched[pid] = true
		} else {
			own = append(own, f)
		}
	}
	if len(shared) > 0 {
		sets := map[string][]string{}
		for pid := range touched {
			sets[tufProductSetPf+pid] = names(ps.Files(pid))
		}
		if err := t.files.PutTUFFiles(ctx, tufShared, toStore(shared), sets); err != nil {
			return fmt.Errorf("publish tuf products: %w", err)
		}
	}
	if err := t.files.PutTUFFiles(ctx, tenantID, toStore(own), map[string][]string{tufCurrent: names(st.Files())}); err != nil {
		return fmt.Errorf("publish tuf %s: %w", tenantID, err)
	}
	t.tenants[tenantID] = st
	return nil
}

// productOfFile returns the product a published file belongs to, if it
// is a product's (role, bin or document) rather than the tenant's.
func productOfFile(ps *tuf.ProductSet, path string) (string, bool) {
	if rest, ok := strings.CutPrefix(path, tuf.TargetsDir+"/"); ok {
		dir, _, _ := strings.Cut(rest, "/")
		if dir == "docs" {
			return "", false
		}
		return dir, true
	}
	role := roleOfName(strings.TrimPrefix(path, tuf.MetadataDir+"/"))
	if pid, ok := strings.CutPrefix(role, "p-"); ok {
		return pid, true
	}
	if strings.HasPrefix(role, "b-") {
		return ps.ProductOfBin(role)
	}
	return "", false
}

// roleOfName returns the role of "<v>.<role>.json" ("" if malformed).
func roleOfName(name string) string {
	_, rest, ok := strings.Cut(name, ".")
	if !ok {
		return ""
	}
	role, _ := strings.CutSuffix(rest, ".json")
	return role
}

// publishedRead reads the files of a tenant's published repository by
// repository path, each from its scope (tufScopeOf).
func (t *tufState) publishedRead(tenantID string) tuf.ReadFunc {
	return func(ctx context.Context, path string) ([]byte, error) {
		return t.file(ctx, tufScopeOf(tenantID, path), path)
	}
}

// publishedManifest assembles the tenant's current published repository
// (what its mirrors verify and serve) into the manifest the update
// engine reads: the answers of the control plane and of a mirror holding
// that version are then the same bytes. It also returns the timestamp's
// version (a refresh changes the manifest's expiry).
func (t *tufState) publishedManifest(ctx context.Context, tenantID string) (*snapshot.Manifest, int64, error) {
	ts, err := t.file(ctx, tenantID, tuf.MetadataPath(metadata.TIMESTAMP, 0))
	if err != nil {
		return nil, 0, err
	}
	md, err := metadata.Timestamp().FromBytes(ts)
	if err != nil {
		return nil, 0, fmt.Errorf("tenant %s timestamp: %w", tenantID, err)
	}
	m, err := tuf.AssemblePublished(ctx, tenantID, t.publishedRead(tenantID), ts, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("tenant %s: %w", tenantID, err)
	}
	return m, md.Signed.Version, nil
}

// viewOf indexes what the tenant's view lets it fetch.
func viewOf(m *snapshot.Manifest) *tufView {
	v := &tufView{products: map[string]bool{}, artifacts: map[string]tufArtRef{}, deltas: map[string]tufArtRef{}}
	sums := make(map[string]string, len(m.Artifacts))
	for _, art := range m.Artifacts {
		sums[art.ArtifactID] = art.SHA256
	}
	for _, d := range m.Deltas {
		_, name, _ := strings.Cut(tuf.DeltaTarget("p", d.FromSHA256, d.ToSHA256), "/")
		v.deltas[name] = tufArtRef{artifactID: d.DeltaID, sha256: d.SHA256}
	}
	for _, p := range m.Products {
		v.products[p.ProductID] = true
	}
	for _, r := range m.Releases {
		for _, ra := range r.Artifacts {
			v.artifacts[ra.ReleaseArtifactID] = tufArtRef{productID: r.ProductID, artifactID: ra.ArtifactID, sha256: sums[ra.ArtifactID]}
		}
	}
	return v
}

// rootSpec is the spec of a tenant's root with the current keys.
func (t *tufState) rootSpec(tenantID string, now time.Time) (tuf.RootSpec, error) {
	spec := tuf.RootSpec{TenantID: tenantID, Version: 1, Expires: now.Add(t.o.RootTTL)}
	rs, err := t.o.Keys.Spec()
	if err != nil {
		return spec, err
	}
	spec.Root.Threshold = rs.Threshold
	for _, pub := range rs.Keys {
		k, err := tuf.PublicKey(pub)
		if err != nil {
			return spec, err
		}
		spec.Root.Keys = append(spec.Root.Keys, k)
	}
	for _, x := range []struct {
		role string
		rk   *tuf.RoleKeys
	}{{tufkeys.Targets, &spec.Targets}, {tufkeys.Snapshot, &spec.Snapshot}, {tufkeys.Timestamp, &spec.Timestamp}} {
		signers, err := t.o.Keys.Signers(x.role)
		if err != nil {
			return spec, err
		}
		for _, s := range signers {
			k, err := tuf.PublicKey(s.Public())
			if err != nil {
				return spec, err
			}
			x.rk.Keys = append(x.rk.Keys, k)
		}
		x.rk.Threshold = len(signers)
	}
	return spec, nil
}

// latestRoot returns the tenant's newest root, or nil.
func (t *tufState) latestRoot(ctx context.Context, tenantID string) (*tuf.Root, error) {
	files, err := t.files.TUFSet(ctx, tenantID, tufRootSet)
	if err != nil || len(files) == 0 {
		return nil, err
	}
	r, err := metadata.Root().FromBytes(files[0].Data)
	if err != nil {
		return nil, fmt.Errorf("tenant %s root: %w", tenantID, err)
	}
	return r, nil
}

// nextRoot is the tenant's next root, unsigned: version 1, or the
// successor of its newest root, with the current keys.
func (t *tufState) nextRoot(ctx context.Context, tenantID string, now time.Time) (prev, next *tuf.Root, err error) {
	spec, err := t.rootSpec(tenantID, now)
	if err != nil {
		return nil, nil, err
	}
	if prev, err = t.latestRoot(ctx, tenantID); err != nil {
		return nil, nil, err
	}
	if prev == nil {
		next, err = tuf.NewRoot(spec)
	} else {
		next, err = tuf.NextRoot(prev, spec)
	}
	return prev, next, err
}

// signOnline signs root with the root keys held online, if there are
// enough of them; false when the root is offline.
func (t *tufState) signOnline(ctx context.Context, prev, next *tuf.Root) ([]byte, bool, error) {
	signers, err := t.o.Keys.RootSigners()
	if err != nil {
		return nil, false, err
	}
	if len(signers) == 0 {
		return nil, false, nil
	}
	data, err := tuf.SignRoot(ctx, next, signers...)
	if err != nil {
		return nil, false, err
	}
	if err := tuf.CheckRoot(prev, next); err != nil {
		return nil, false, nil // not enough keys online: a ceremony it is
	}
	return data, true, nil
}

// putRoot stores a checked root as the tenant's newest.
func (t *tufState) putRoot(ctx context.Context, tenantID string, r *tuf.Root, data []byte) error {
	name := tuf.MetadataPath(metadata.ROOT, r.Signed.Version)
	return t.files.PutTUFFiles(ctx, tenantID, []store.TUFFile{{Name: name, Data: data}}, map[string][]string{tufRootSet: {name}})
}

// ensureRoot gives a tenant its first root when the root keys are
// online; otherwise the repository waits for a ceremony.
func (t *tufState) ensureRoot(ctx context.Context, tenantID string, now time.Time) error {
	prev, err := t.latestRoot(ctx, tenantID)
	if err != nil || prev != nil {
		return err
	}
	_, next, err := t.nextRoot(ctx, tenantID, now)
	if err != nil {
		return err
	}
	data, ok, err := t.signOnline(ctx, nil, next)
	if err != nil || !ok {
		return err
	}
	return t.putRoot(ctx, tenantID, next, data)
}

// TUFRoot returns a tenant's newest root.json: what a client or a mirror
// is initialised with.
func (a *App) TUFRoot(ctx context.Context, tenantID string) ([]byte, error) {
	// The tenant first: another tenant's or a malformed id is not_found
	// whether or not this control plane publishes TUF.
	if _, err := a.Tenant(ctx, tenantID); err != nil {
		return nil, err
	}
	if a.tuf == nil {
		return nil, ErrNoTUF
	}
	files, err := a.tuf.files.TUFSet(ctx, tenantID, tufRootSet)
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, catalog.Errorf(catalog.ENOTFOUND, "tenant %s has no root yet: sign one (controlplane root export/sign/import)", tenantID)
	}
	return files[0].Data, nil
}

// TUFVersions are the versions of a tenant's top-level roles.
type TUFVersions struct {
	Root, Targets, Snapshot, Timestamp int64
}

// TUFVersions returns the versions a tenant's repository is at.
func (a *App) TUFVersions(ctx context.Context, tenantID string) (*TUFVersions, error) {
	if a.tuf == nil {
		return nil, ErrNoTUF
	}
	t := a.tuf
	t.mu.Lock()
	defer t.mu.Unlock()
	v := &TUFVersions{}
	r, err := t.latestRoot(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	if r != nil {
		v.Root = r.Signed.Version
	}
	st, err := t.state(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	v.Targets, v.Snapshot, v.Timestamp = st.Versions()
	return v, nil
}

// RefreshTUF re-signs the timestamp of every tenant whose timestamp has
// less than half its lifetime left (a few hundred bytes each). It
// returns how many it refreshed.
func (a *App) RefreshTUF(ctx context.Context) (int, error) {
	t := a.tuf
	if t == nil {
		return 0, nil
	}
	n := 0
	err := a.eachActiveTenant(ctx, func(tenantID string) error {
		t.mu.Lock()
		defer t.mu.Unlock()
		st, err := t.state(ctx, tenantID)
		if err != nil || st == nil {
			return err
		}
		ttl, err := t.timestampTTL(ctx, tenantID)
		if err != nil {
			return err
		}
		now := a.now()
		if st.TimestampExpires().Sub(now) > ttl/2 && !t.resign[tenantID] {
			return nil
		}
		if err := t.refresh(ctx, tenantID, st, ttl, now); err != nil {
			return err
		}
		n++
		return nil
	})
	return n, err
}

func (t *tufState) refresh(ctx context.Context, tenantID string, st *tuf.State, ttl time.Duration, now time.Time) error {
	keys, err := t.tenantKeys(ctx, tenantID)
	if err != nil {
		return err
	}
	ps, err := t.productSet()
	if err != nil {
		return err
	}
	if t.resign[tenantID] {
		st = st.Resign()
	}
	b := &tuf.Builder{TenantID: tenantID, Products: ps, Keys: keys, Options: tuf.TenantOptions{TimestampTTL: ttl}}
	next, files, err := b.Refresh(ctx, st, now)
	if err != nil {
		return err
	}
	if err := t.persist(ctx, tenantID, ps, next, files); err != nil {
		return err
	}
	delete(t.resign, tenantID)
	return nil
}

func (a *App) eachActiveTenant(ctx context.Context, fn func(tenantID string) error) error {
	p := store.Page{Limit: store.MaxLimit}
	for {
		tenants, next, err := a.store.Tenants(ctx, p)
		if err != nil {
			return err
		}
		for _, t := range tenants {
			if t.Status != catalog.TenantActive {
				continue
			}
			if err := fn(t.TenantID); err != nil {
				return fmt.Errorf("tenant %s: %w", t.TenantID, err)
			}
		}
		if next == "" {
			return nil
		}
		p.Cursor = next
	}
}

// TUFRepo returns the tenant's published repository for serving
// (tufhttp.Repo): an admin, the tenant's own token, or a mirror of the
// tenant may read it; anyone else gets not found.
func (a *App) TUFRepo(ctx context.Context, tenantID string) (*TUFRepo, error) {
	p := principal(ctx)
	ok := p.CanSeeTenant(tenantID) || (p.Role == RoleMirror && p.TenantID == tenantID)
	if !ok || a.tuf == nil {
		return nil, catalog.NotFound("tenant", tenantID)
	}
	return &TUFRepo{a: a, tenantID: tenantID}, nil
}

// TUFRepo is one tenant's published repository, read from the store
// (metadata) and the blob store (artifacts).
type TUFRepo struct {
	a        *App
	tenantID string
}

// TenantID is the tenant the repository is of.
func (r *TUFRepo) TenantID() string { return r.tenantID }

func notFound(what string) error { return fmt.Errorf("%s: %w", what, tuf.ErrNotFound) }

// file reads a published file; the store's not found is tuf.ErrNotFound.
func (t *tufState) file(ctx context.Context, scope, name string) ([]byte, error) {
	b, err := t.files.TUFFile(ctx, scope, name)
	if catalog.ErrorCode(err) == catalog.ENOTFOUND {
		return nil, notFound(name)
	}
	return b, err
}

// Metadata returns a metadata file: the tenant's own roles, or a
// product role or bin at the version the tenant's current snapshot
// lists (nothing of a product it does not see).
func (r *TUFRepo) Metadata(ctx context.Context, name string) ([]byte, error) {
	t := r.a.tuf
	role := roleOfName(name)
	switch {
	case name == metadata.TIMESTAMP+".json", role == metadata.ROOT, role == metadata.SNAPSHOT, role == metadata.TARGETS:
		return t.file(ctx, r.tenantID, tuf.MetadataDir+"/"+name)
	}
	v, err := r.view(ctx)
	if err != nil {
		return nil, err
	}
	version, _ := strconv.ParseInt(strings.SplitN(name, ".", 2)[0], 10, 64)
	if version == 0 || v.roles[role] != version {
		return nil, notFound(name)
	}
	return t.file(ctx, tufShared, tuf.MetadataDir+"/"+name)
}

// Target opens a document or an artifact of the tenant's view; artifact
// bytes stream from the blob store.
func (r *TUFRepo) Target(ctx context.Context, path, sum string) (io.ReadSeekCloser, error) {
	t := r.a.tuf
	dir, name, ok := strings.Cut(path, "/")
	if !ok || strings.Contains(name, "/") {
		return nil, notFound(path)
	}
	if dir == "docs" {
		b, err := t.file(ctx, r.tenantID, tuf.TargetPath(path, sum))
		if err != nil {
			return nil, err
		}
		return nopSeekCloser{strings.NewReader(string(b))}, nil
	}
	v, err := r.view(ctx)
	if err != nil {
		return nil, err
	}
	if !v.products[dir] {
		return nil, notFound(path)
	}
	if path == tuf.ProductDoc(dir) {
		b, err := t.file(ctx, tufShared, tuf.TargetPath(path, sum))
		if err != nil {
			return nil, err
		}
		return nopSeekCloser{strings.NewReader(string(b))}, nil
	}
	if tuf.IsDeltaTarget(path) {
		ref, ok := v.deltas[name]
		if !ok || ref.sha256 != sum || r.a.deltas == nil {
			return nil, notFound(path)
		}
		j, err := r.a.deltas.Job(ctx, ref.artifactID)
		if err != nil || j.SHA256 != sum {
			return nil, notFound(path)
		}
		obj, _, err := r.a.blobs.Open(ctx, j.BlobKey)
		if err != nil {
			return nil, notFound(path)
		}
		return obj, nil
	}
	ref, ok := v.artifacts[name]
	if !ok || ref.productID != dir || ref.sha256 != sum {
		return nil, notFound(path)
	}
	obj, _, err := r.a.blobs.Open(ctx, artifactPrefix+ref.artifactID)
	if err != nil {
		return nil, notFound(path) // EXTERNAL artifacts have no bytes here
	}
	return obj, nil
}

type nopSeekCloser struct{ *strings.Reader }

func (nopSeekCloser) Close() error { return nil }

// view returns what the tenant may fetch now: the roles of its current
// snapshot and the products and artifacts of its latest view.
func (r *TUFRepo) view(ctx context.Context) (*tufView, error) {
	t := r.a.tuf
	t.mu.Lock()
	defer t.mu.Unlock()
	st, err := t.state(ctx, r.tenantID)
	if err != nil {
		return nil, err
	}
	if st == nil {
		return nil, notFound("repository")
	}
	_, snapV, _ := st.Versions()
	v := t.views[r.tenantID]
	if v == nil {
		// After a restart: from the published repository itself.
		m, _, err := t.publishedManifest(ctx, r.tenantID)
		if err != nil {
			return nil, err
		}
		v = viewOf(m)
		t.views[r.tenantID] = v
	}
	if v.snapVersion != snapV {
		b, err := t.files.TUFFile(ctx, r.tenantID, tuf.MetadataPath(metadata.SNAPSHOT, snapV))
		if err != nil {
			return nil, err
		}
		sn, err := metadata.Snapshot().FromBytes(b)
		if err != nil {
			return nil, fmt.Errorf("tenant %s snapshot: %w", r.tenantID, err)
		}
		v.roles = make(map[string]int64, len(sn.Signed.Meta))
		for n, mf := range sn.Signed.Meta {
			v.roles[strings.TrimSuffix(n, ".json")] = mf.Version
		}
		v.snapVersion = snapV
	}
	cp := *v
	return &cp, nil
}
