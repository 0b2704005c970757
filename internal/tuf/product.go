package tuf

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/outpost/outpost/internal/snapshot"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// File is one file of a published repository: its path under the
// repository's base ("metadata/…" or "targets/…") and its bytes.
type File struct {
	Path string
	Data []byte
}

// Targets metadata type alias for readers of this package's API.
type Targets = metadata.Metadata[metadata.TargetsType]

// ProductOptions tune the shared product roles.
type ProductOptions struct {
	// TTL is the validity of product and bin metadata (default 365 days);
	// a role is re-signed with a new version once less than TTL/4 is left.
	TTL time.Duration
	// PerBin is the number of artifact targets a hashed bin aims at
	// (default 128: with 100,000 releases the one-release change is
	// smallest there, bin and snapshot together). A product with at most 2*PerBin targets has no bins;
	// a larger one has 2^k bins with k = ceil(log2(targets/PerBin)), and is
	// re-binned (every bin re-shipped once) only when the average exceeds
	// 4*PerBin.
	PerBin int
}

func (o ProductOptions) withDefaults() ProductOptions {
	if o.TTL <= 0 {
		o.TTL = 365 * 24 * time.Hour
	}
	if o.PerBin <= 0 {
		o.PerBin = 128
	}
	return o
}

// ProductSet holds the signed metadata of every product, shared by all
// tenants that may see the product: a product's role and bins are
// identical for every tenant, signed once by the product keys and
// referenced by each tenant's snapshot. It is safe for concurrent use.
type ProductSet struct {
	signers []Signer
	keys    map[string]*metadata.Key
	opts    ProductOptions

	mu       sync.Mutex
	products map[string]*productState
	prefixes map[string]string // bin prefix -> product id
}

// productState is the current signed metadata of one product.
type productState struct {
	id        string
	signedBy  string // the key set that signed its roles (signerSet)
	bitLength int    // 0: no bins
	role      roleState
	bins      []roleState
	doc       docState
}

// roleState is one signed targets role: its version, expiry, the entries
// it lists (sorted by path) and its published bytes.
type roleState struct {
	name    string
	version int64
	expires time.Time
	entries []entry
	data    []byte
}

// entry is one target as compared between builds.
type entry struct {
	path   string
	length int64
	sha256 string // hex
	custom string // JSON, "" for documents
}

// docState is a signed document's bytes and identity.
type docState struct {
	path   string
	sha256 string
	data   []byte
}

// RoleVersion is a targets role and its current version.
type RoleVersion struct {
	Role    string
	Version int64
}

// NewProductSet returns an empty set whose roles are signed by signers
// (every one signs; the threshold delegated is len(signers)).
func NewProductSet(o ProductOptions, signers ...Signer) (*ProductSet, error) {
	if len(signers) == 0 {
		return nil, errors.New("product set: no signer")
	}
	keys := map[string]*metadata.Key{}
	for _, s := range signers {
		k, err := keyOf(s)
		if err != nil {
			return nil, fmt.Errorf("product set: %w", err)
		}
		keys[s.KeyID()] = k
	}
	return &ProductSet{signers: signers, keys: keys, opts: o.withDefaults(), products: map[string]*productState{}, prefixes: map[string]string{}}, nil
}

// productDoc is the document of a product: its record and the releases
// that have no artifact (they cannot be targets).
type productDoc struct {
	Product  snapshot.Product   `json:"product"`
	Releases []snapshot.Release `json:"releases"`
	// Deltas between the product's artifacts (docs/deltas.md), by id;
	// absent when there are none, so a document without deltas is what
	// it was before they existed (and readers that predate them ignore
	// the member).
	Deltas []snapshot.Delta `json:"deltas,omitempty"`
}

// Update brings a product's metadata up to date with its releases (as
// snapshot.Build lists them: the product's ACTIVE and REVOKED releases
// with their verified artifacts) and returns only the files that changed:
// the product document, the bins whose targets changed and the product
// role when its own content changed, each with a new version. artifacts
// resolves artifact ids. The same input twice returns no file.
func (ps *ProductSet) Update(ctx context.Context, p snapshot.Product, releases []snapshot.Release, artifacts map[string]*snapshot.Artifact, now time.Time) ([]File, error) {
	return ps.UpdateWithDeltas(ctx, p, releases, artifacts, nil, now)
}

// UpdateWithDeltas is Update with the signed deltas between the product's
// artifacts, listed in the product document (Repository.Manifest returns
// them as the manifest's deltas).
func (ps *ProductSet) UpdateWithDeltas(ctx context.Context, p snapshot.Product, releases []snapshot.Release, artifacts map[string]*snapshot.Artifact, deltas []snapshot.Delta, now time.Time) ([]File, error) {
	now = now.UTC().Truncate(time.Second)
	// Targets and the product document, outside the lock.
	entries := make([]entry, 0, len(releases))
	doc := productDoc{Product: p, Releases: []snapshot.Release{}}
	if len(deltas) > 0 {
		doc.Deltas = slices.Clone(deltas)
		slices.SortFunc(doc.Deltas, func(a, b snapshot.Delta) int { return cmp.Compare(a.DeltaID, b.DeltaID) })
	}
	for i := range releases {
		r := &releases[i]
		if r.ProductID != p.ProductID {
			return nil, fmt.Errorf("update product %s: release %s is of product %s", p.ProductID, r.ReleaseID, r.ProductID)
		}
		if len(r.Artifacts) == 0 {
			doc.Releases = append(doc.Releases, *r)
			continue
		}
		for _, ra := range r.Artifacts {
			a := artifacts[ra.ArtifactID]
			if a == nil {
				return nil, fmt.Errorf("update product %s: release %s: artifact %s: %w", p.ProductID, r.ReleaseID, ra.ArtifactID, snapshot.ErrDangling)
			}
			e, err := artifactEntry(r, &ra, a)
			if err != nil {
				return nil, fmt.Errorf("update product %s: %w", p.ProductID, err)
			}
			entries = append(entries, e)
		}
	}
	slices.SortFunc(entries, func(a, b entry) int { return cmp.Compare(a.path, b.path) })
	for i := 1; i < len(entries); i++ {
		if entries[i].path == entries[i-1].path {
			return nil, fmt.Errorf("update product %s: target %s: %w", p.ProductID, entries[i].path, snapshot.ErrDuplicateID)
		}
	}
	docData, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("update product %s: %w", p.ProductID, err)
	}
	// Each delta is also a target of the product role (DeltaTarget), so
	// that an unmodified TUF client can fetch it.
	deltaEntries := make([]entry, 0, len(doc.Deltas))
	for _, dl := range doc.Deltas {
		c, err := json.Marshal(DeltaCustom{Delta: dl.DeltaID, From: dl.FromSHA256, FromArtifact: dl.FromArtifactID, To: dl.ToSHA256, ToArtifact: dl.ToArtifactID})
		if err != nil {
			return nil, fmt.Errorf("update product %s: %w", p.ProductID, err)
		}
		if !isHex64(dl.SHA256) || !isHex64(dl.FromSHA256) || !isHex64(dl.ToSHA256) || dl.SizeBytes <= 0 {
			return nil, fmt.Errorf("update product %s: delta %s: malformed hash or size", p.ProductID, dl.DeltaID)
		}
		deltaEntries = append(deltaEntries, entry{path: DeltaTarget(p.ProductID, dl.FromSHA256, dl.ToSHA256), length: dl.SizeBytes, sha256: dl.SHA256, custom: string(c)})
	}
	slices.SortFunc(deltaEntries, func(a, b entry) int { return cmp.Compare(a.path, b.path) })
	for i := 1; i < len(deltaEntries); i++ {
		if deltaEntries[i].path == deltaEntries[i-1].path {
			return nil, fmt.Errorf("update product %s: two deltas from %s to %s", p.ProductID, doc.Deltas[i].FromSHA256, doc.Deltas[i].ToSHA256)
		}
	}
	d := newDoc(ProductDoc(p.ProductID), docData)

	ps.mu.Lock()
	defer ps.mu.Unlock()
	if other, ok := ps.prefixes[BinPrefix(p.ProductID)]; ok && other != p.ProductID {
		return nil, fmt.Errorf("update product %s: bin prefix %s collides with product %s", p.ProductID, BinPrefix(p.ProductID), other)
	}
	ps.prefixes[BinPrefix(p.ProductID)] = p.ProductID
	st := ps.products[p.ProductID]
	if st == nil {
		st = &productState{id: p.ProductID, role: roleState{name: ProductRole(p.ProductID)}}
	}
	next := *st
	next.bins = slices.Clone(st.bins)
	var files []File
	if d.sha256 != st.doc.sha256 {
		next.doc = d
		files = append(files, File{Path: TargetPath(d.path, d.sha256), Data: d.data})
	}

	// Bins: keep the bit length unless the product outgrew it.
	bl := st.bitLength
	if st.role.version == 0 || (bl == 0 && len(entries) > 2*ps.opts.PerBin) || (bl > 0 && len(entries) > 4*ps.opts.PerBin<<bl) {
		bl = binBits(len(entries), ps.opts.PerBin)
	}
	// New product keys: every role of the product is re-signed.
	rekey := st.role.version > 0 && st.signedBy != ps.signerSet()
	roleChanged := bl != st.bitLength || d.sha256 != st.doc.sha256 || rekey
	var own []entry // the product role's own targets
	own = append(own, d.entry())
	own = append(own, deltaEntries...)
	if bl == 0 {
		own = append(own, entries...)
		next.bins = nil
	} else {
		n := 1 << bl
		groups := make([][]entry, n)
		for _, e := range entries {
			b := binOf(e.path, bl)
			groups[b] = append(groups[b], e)
		}
		if bl != st.bitLength {
			// Re-binned: new bins start above every old bin's version, so
			// that a name reused at the same width never goes backwards in
			// a tenant's snapshot.
			var base int64
			for _, b := range st.bins {
				base = max(base, b.version)
			}
			next.bins = make([]roleState, n)
			for i := range next.bins {
				next.bins[i] = roleState{name: binName(BinPrefix(p.ProductID), bl, i), version: base}
			}
		}
		for i := range n {
			b := &next.bins[i]
			if !rekey && bl == st.bitLength && b.version > 0 && slices.Equal(b.entries, groups[i]) && !ps.expiring(b.expires, now) {
				continue
			}
			nb := roleState{name: b.name, version: b.version + 1, expires: now.Add(ps.opts.TTL), entries: groups[i]}
			if canon, ok := fastBin(nb.version, nb.expires, nb.entries); ok {
				if nb.data, err = envelope(ctx, canon, ps.signers); err != nil {
					return nil, fmt.Errorf("update product %s: %w", p.ProductID, err)
				}
				*b = nb
				files = append(files, File{Path: MetadataPath(nb.name, nb.version), Data: nb.data})
				continue
			}
			t := metadata.Targets(nb.expires)
			t.Signed.Version = nb.version
			for _, e := range nb.entries {
				tf, err := e.targetFile()
				if err != nil {
					return nil, err
				}
				t.Signed.Targets[e.path] = tf
			}
			if err := sign(ctx, t, ps.signers...); err != nil {
				return nil, fmt.Errorf("update product %s: %w", p.ProductID, err)
			}
			if nb.data, err = encode(t); err != nil {
				return nil, err
			}
			*b = nb
			files = append(files, File{Path: MetadataPath(nb.name, nb.version), Data: nb.data})
		}
	}
	// Sorted by path, as Restore reads them back (delta targets sort
	// before the document).
	slices.SortFunc(own, func(a, b entry) int { return cmp.Compare(a.path, b.path) })
	if roleChanged || st.role.version == 0 || !slices.Equal(st.role.entries, own) || ps.expiring(st.role.expires, now) {
		nr := roleState{name: st.role.name, version: st.role.version + 1, expires: now.Add(ps.opts.TTL), entries: own}
		t := metadata.Targets(nr.expires)
		t.Signed.Version = nr.version
		for _, e := range own {
			tf, err := e.targetFile()
			if err != nil {
				return nil, err
			}
			t.Signed.Targets[e.path] = tf
		}
		if bl > 0 {
			t.Signed.Delegations = &metadata.Delegations{
				Keys: ps.keys,
				SuccinctRoles: &metadata.SuccinctRoles{
					KeyIDs: keyIDs(ps.signers), Threshold: len(ps.signers), BitLength: bl, NamePrefix: BinPrefix(p.ProductID),
				},
			}
		}
		if err := sign(ctx, t, ps.signers...); err != nil {
			return nil, fmt.Errorf("update product %s: %w", p.ProductID, err)
		}
		if nr.data, err = encode(t); err != nil {
			return nil, err
		}
		next.role = nr
		files = append(files, File{Path: MetadataPath(nr.name, nr.version), Data: nr.data})
	}
	next.bitLength = bl
	next.signedBy = ps.signerSet()
	ps.products[p.ProductID] = &next
	return files, nil
}

// SetSigners replaces the product keys (rotation after a compromise or
// on schedule). The next Update of each product re-signs all its roles,
// and the next BuildTenant delegates to the new keys.
func (ps *ProductSet) SetSigners(signers ...Signer) error {
	if len(signers) == 0 {
		return errors.New("product set: no signer")
	}
	keys := map[string]*metadata.Key{}
	for _, s := range signers {
		k, err := keyOf(s)
		if err != nil {
			return fmt.Errorf("product set: %w", err)
		}
		keys[s.KeyID()] = k
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.signers, ps.keys = signers, keys
	return nil
}

// signerSet names the current product keys.
func (ps *ProductSet) signerSet() string {
	ids := keyIDs(ps.signers)
	slices.Sort(ids)
	return strings.Join(ids, ",")
}

// delegation returns the keys, key ids and threshold tenants delegate
// product roles with.
func (ps *ProductSet) delegation() (map[string]*metadata.Key, []string, int, string) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return ps.keys, keyIDs(ps.signers), len(ps.signers), ps.signerSet()
}

// expiring says whether a role expiring at exp must be re-signed now.
func (ps *ProductSet) expiring(exp, now time.Time) bool { return exp.Before(now.Add(ps.opts.TTL / 4)) }

// Roles returns a product's role and bins with their versions, the
// product role first; nil when the set does not hold the product.
func (ps *ProductSet) Roles(productID string) []RoleVersion {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	st := ps.products[productID]
	if st == nil {
		return nil
	}
	out := make([]RoleVersion, 0, 1+len(st.bins))
	out = append(out, RoleVersion{st.role.name, st.role.version})
	for _, b := range st.bins {
		out = append(out, RoleVersion{b.name, b.version})
	}
	return out
}

// Files returns every current file of a product (for a full publish).
func (ps *ProductSet) Files(productID string) []File {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	st := ps.products[productID]
	if st == nil {
		return nil
	}
	out := []File{{Path: TargetPath(st.doc.path, st.doc.sha256), Data: st.doc.data}, {Path: MetadataPath(st.role.name, st.role.version), Data: st.role.data}}
	for _, b := range st.bins {
		out = append(out, File{Path: MetadataPath(b.name, b.version), Data: b.data})
	}
	return out
}

// binBits returns the bit length for n targets at perBin per bin.
func binBits(n, perBin int) int {
	if n <= 2*perBin {
		return 0
	}
	bl := bits.Len(uint((n - 1) / perBin))
	return min(max(bl, 1), 16)
}

// binOf is the bin of a target path under succinct hashed bins of bit
// length bl (TUF TAP 15: the leftmost bl bits of sha256(path)).
func binOf(path string, bl int) int {
	h := sha256.Sum256([]byte(path))
	return int(binary.BigEndian.Uint32(h[:4]) >> (32 - bl))
}

// binName is the name of bin i of 2^bl bins under prefix.
func binName(prefix string, bl, i int) string {
	w := len(fmt.Sprintf("%x", (1<<bl)-1))
	return fmt.Sprintf("%s-%0*x", prefix, w, i)
}

// artifactEntry is the target of one release artifact.
func artifactEntry(r *snapshot.Release, ra *snapshot.ReleaseArtifact, a *snapshot.Artifact) (entry, error) {
	c := Custom{
		Release: r.ReleaseID, Product: r.ProductID, Channel: r.Channel, Version: r.Version,
		Platform: ra.Platform, Arch: ra.Arch, InstallerType: ra.InstallerType, Status: r.Status,
		Artifact: ra.ArtifactID, ReleaseArtifact: ra.ReleaseArtifactID, SourceType: a.SourceType,
		RequiresAdmin: ra.RequiresAdmin, PublishedAt: r.PublishedAt, RevokedAt: r.RevokedAt,
	}
	if len(r.Metadata) > 0 && string(r.Metadata) != "{}" && string(r.Metadata) != "null" {
		c.ReleaseMetadata = string(r.Metadata)
	}
	b, err := json.Marshal(c)
	if err != nil {
		return entry{}, fmt.Errorf("release %s: %w", r.ReleaseID, err)
	}
	if len(a.SHA256) != 64 {
		return entry{}, fmt.Errorf("artifact %s: sha256 %q is not 64 hex digits", a.ArtifactID, a.SHA256)
	}
	if _, err := hex.DecodeString(a.SHA256); err != nil {
		return entry{}, fmt.Errorf("artifact %s: sha256: %w", a.ArtifactID, err)
	}
	return entry{path: ArtifactTarget(r.ProductID, ra.ReleaseArtifactID), length: a.SizeBytes, sha256: a.SHA256, custom: string(b)}, nil
}

// targetFile is the TUF form of e.
func (e entry) targetFile() (*metadata.TargetFiles, error) {
	h, err := hex.DecodeString(e.sha256)
	if err != nil {
		return nil, fmt.Errorf("target %s: %w", e.path, err)
	}
	tf := &metadata.TargetFiles{Length: e.length, Hashes: metadata.Hashes{"sha256": h}, Path: e.path}
	if e.custom != "" {
		raw := json.RawMessage(e.custom)
		tf.Custom = &raw
	}
	return tf, nil
}

// newDoc identifies a document.
func newDoc(path string, data []byte) docState {
	h := sha256.Sum256(data)
	return docState{path: path, sha256: hex.EncodeToString(h[:]), data: data}
}

// entry is the target of a document.
func (d docState) entry() entry {
	return entry{path: d.path, length: int64(len(d.data)), sha256: d.sha256}
}
