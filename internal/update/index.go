package update

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/Masterminds/semver/v3"
	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/snapshot"
)

// New indexes a verified manifest. It fails on what would make answers
// ambiguous (duplicate ids, a policy with an invalid action or conditions,
// an unknown rollout status) and ignores dangling references: a release
// artifact without its artifact, a rollout without its release, a policy
// without its product.
//
// Indexing is a handful of allocations whatever the size: the releases,
// their artifacts and the candidate lists each live in one slice, the
// candidates are sorted once and every channel's per platform/arch list is
// a range of that slice. Ids are looked up by binary search over the
// manifest's lists, which snapshots keep sorted by id (others get a sorted
// permutation).
func New(m *snapshot.Manifest) (*Engine, error) {
	e := &Engine{snapshotID: m.SnapshotID, sequence: m.Sequence, products: make(map[string]*productIndex, len(m.Products))}
	if len(m.Deltas) > 0 {
		e.deltas = make(map[deltaKey]*snapshot.Delta, len(m.Deltas))
		for i := range m.Deltas {
			d := &m.Deltas[i]
			k := deltaKey{d.ToSHA256, d.FromSHA256}
			// Two deltas for one pair: the smaller is the best offer.
			if old := e.deltas[k]; old == nil || d.SizeBytes < old.SizeBytes || d.SizeBytes == old.SizeBytes && d.DeltaID < old.DeltaID {
				e.deltas[k] = d
			}
		}
	}
	prods := make(map[string]*productBuild, len(m.Products))
	pidx := make([]productIndex, len(m.Products))
	pbs := make([]productBuild, len(m.Products))
	for i := range m.Products {
		p := &m.Products[i]
		if _, dup := e.products[p.ProductID]; dup {
			return nil, fmt.Errorf("index snapshot: product %q: duplicate id", p.ProductID)
		}
		pidx[i] = productIndex{licensed: p.Distribution != catalog.DistributionOpen, channels: map[string]*channelIndex{}}
		pbs[i].p = &pidx[i]
		e.products[p.ProductID] = &pidx[i]
		prods[p.ProductID] = &pbs[i]
	}
	for i := range m.Entitlements {
		en := &m.Entitlements[i]
		if p := e.products[en.ProductID]; p != nil {
			p.entitlements = append(p.entitlements, window{start: en.StartsAt, end: en.EndsAt})
		}
	}
	artIDs := newIDs(len(m.Artifacts), func(i int) string { return m.Artifacts[i].ArtifactID })
	if artIDs.dup {
		return nil, fmt.Errorf("index snapshot: artifact %q: duplicate id", artIDs.firstDup())
	}
	for _, b := range m.BlockedVersions {
		if pb := prods[b.ProductID]; pb != nil {
			pb.blocked.add(b.BlockedVersion)
		}
	}
	for i := range pbs {
		pbs[i].blocked.seal()
	}
	for i := range m.Rollouts {
		r := &m.Rollouts[i]
		switch r.Status {
		case catalog.RolloutKilled, catalog.RolloutCompleted, catalog.RolloutActive, catalog.RolloutPaused:
		default:
			return nil, fmt.Errorf("index snapshot: rollout %q: unknown status %q", r.RolloutID, r.Status)
		}
	}
	relIDs := newIDs(len(m.Releases), func(i int) string { return m.Releases[i].ReleaseID })
	if relIDs.dup {
		return nil, fmt.Errorf("index snapshot: release %q: duplicate id", relIDs.firstDup())
	}
	gates := releaseGates(m.Rollouts, &relIDs)

	nra := 0
	for i := range m.Releases {
		nra += len(m.Releases[i].Artifacts)
	}
	// Capacities fixed up front: candidates point into entries and arts.
	entries := make([]releaseEntry, 0, len(m.Releases))
	arts := make([]artifactEntry, 0, nra)
	// One record per release and platform/arch, grouped into the
	// candidate lists below.
	recs := make([]candidateRec, 0, nra)
	var chans []*channelIndex
	var (
		pb       *productBuild
		ch       *channelIndex
		lastPID  string
		lastCh   string
		chPB     *productBuild
		gi       int // next entry of gates
		artHint  int
		havePID  bool
		haveChan bool
	)
	for i := range m.Releases {
		r := &m.Releases[i]
		if !havePID || r.ProductID != lastPID {
			pb, lastPID, havePID = prods[r.ProductID], r.ProductID, true
		}
		for gi < len(gates) && gates[gi].rel < i {
			gi++
		}
		if pb == nil {
			continue
		}
		// Every release, offered or not, makes its channel known.
		if !haveChan || chPB != pb || r.Channel != lastCh {
			ch = pb.p.channels[r.Channel]
			if ch == nil {
				ch = &channelIndex{seq: len(chans), byPA: make([][]candidate, numPA)}
				pb.p.channels[r.Channel] = ch
				chans = append(chans, ch)
			}
			chPB, lastCh, haveChan = pb, r.Channel, true
		}
		if r.Status != catalog.ReleaseActive {
			continue
		}
		v, ok := parseVersion(r.Version)
		if !ok {
			continue
		}
		if v.pre != "" && r.Channel == StableChannel {
			continue
		}
		if pb.blocked.has(r.Version, v) {
			continue
		}
		var gate *releaseGate
		if gi < len(gates) && gates[gi].rel == i {
			g := &gates[gi]
			if g.killed {
				continue
			}
			if !g.completed && len(g.gates) > 0 {
				gate = g
			}
		}
		entries = append(entries, releaseEntry{r: r, v: v, gate: gate, metadata: metadataOf(r.Metadata)})
		start := len(arts)
		for j := range r.Artifacts {
			ra := &r.Artifacts[j]
			plat, arch := indexOf(catalog.Platforms, ra.Platform), indexOf(catalog.Arches, ra.Arch)
			if plat < 0 || arch < 0 {
				continue
			}
			k := artIDs.find(ra.ArtifactID, artHint)
			if k < 0 {
				continue
			}
			artHint = k + 1
			arts = append(arts, artifactEntry{ra: ra, a: &m.Artifacts[k], inst: int32(indexOf(catalog.InstallerTypes, ra.InstallerType)), pa: int32(paIndex(plat, arch))})
		}
		own := arts[start:len(arts):len(arts)]
		if len(own) > 1 {
			slices.SortFunc(own, func(x, y artifactEntry) int {
				if x.pa != y.pa {
					return cmpInt(int(x.pa), int(y.pa))
				}
				if c := strings.Compare(x.ra.InstallerType, y.ra.InstallerType); c != 0 {
					return c
				}
				return strings.Compare(x.ra.ReleaseArtifactID, y.ra.ReleaseArtifactID)
			})
		}
		for s := 0; s < len(own); {
			end := s + 1
			for end < len(own) && own[end].pa == own[s].pa {
				end++
			}
			recs = append(recs, candidateRec{group: int32(ch.seq*numPA + int(own[s].pa)), entry: int32(len(entries) - 1), lo: int32(start + s), hi: int32(start + end)})
			s = end
		}
	}

	// Distribute the records by group (stable: manifest order within a
	// group, which is often version order already), then sort each list.
	offs := make([]int32, len(chans)*numPA+1)
	for _, rc := range recs {
		offs[rc.group+1]++
	}
	for g := 1; g < len(offs); g++ {
		offs[g] += offs[g-1]
	}
	cands := make([]candidate, len(recs))
	pos := slices.Clone(offs[:len(offs)-1])
	for _, rc := range recs {
		cands[pos[rc.group]] = candidate{rel: &entries[rc.entry], arts: arts[rc.lo:rc.hi:rc.hi]}
		pos[rc.group]++
	}
	for g := 0; g+1 < len(offs); g++ {
		if lo, hi := offs[g], offs[g+1]; lo < hi {
			list := cands[lo:hi:hi]
			sortCandidates(list)
			chans[g/numPA].byPA[g%numPA] = list
		}
	}

	for i := range m.Policies {
		pol := &m.Policies[i]
		if err := catalog.ValidateEnum("action", pol.Action, catalog.Actions); err != nil {
			return nil, fmt.Errorf("index snapshot: policy %q: %w", pol.PolicyID, err)
		}
		cond, err := ParseConditions(pol.Conditions)
		if err != nil {
			return nil, fmt.Errorf("index snapshot: policy %q: %w", pol.PolicyID, err)
		}
		p := e.products[pol.ProductID]
		if p == nil {
			continue
		}
		if ch := p.channels[pol.Channel]; ch != nil {
			ch.policies = append(ch.policies, policyEntry{id: pol.PolicyID, action: pol.Action, priority: pol.Priority, cond: cond})
		}
	}
	for _, ch := range chans {
		slices.SortFunc(ch.policies, func(x, y policyEntry) int {
			if x.priority != y.priority {
				return cmpInt(y.priority, x.priority)
			}
			return strings.Compare(x.id, y.id)
		})
	}
	return e, nil
}

// candidateRec is a candidate while indexing: its list (channel seq *
// numPA + platform/arch), its release entry and its range of artifacts.
type candidateRec struct {
	group, entry, lo, hi int32
}

// sortCandidates sorts a list newest first: by version descending, then
// release id descending. Lists already in either direction cost one pass.
func sortCandidates(list []candidate) {
	if slices.IsSortedFunc(list, newerFirst) {
		return
	}
	if slices.IsSortedFunc(list, olderFirst) {
		slices.Reverse(list)
		return
	}
	slices.SortFunc(list, newerFirst)
}

func newerFirst(x, y candidate) int { return olderFirst(y, x) }

func olderFirst(x, y candidate) int {
	if c := x.rel.v.compare(y.rel.v); c != 0 {
		return c
	}
	return strings.Compare(x.rel.r.ReleaseID, y.rel.r.ReleaseID)
}

// productBuild is what indexing keeps per product besides its index.
type productBuild struct {
	p       *productIndex
	blocked blockedSet
}

// blockedSet is a product's blocked versions. A release is blocked when
// its version string equals a blocked string, or equals a blocked version
// (loosely parsed: v1.2 is 1.2.0) without build metadata.
type blockedSet struct {
	list []blockedVersion
	// Beyond maxBlockedScan versions, maps replace the scan.
	vers map[version]struct{}
	raws map[string]struct{}
}

type blockedVersion struct {
	raw string
	v   version
	ok  bool // raw parses (loosely)
}

const maxBlockedScan = 8

func (b *blockedSet) add(raw string) {
	bv := blockedVersion{raw: raw}
	if v, err := semver.NewVersion(raw); err == nil {
		bv.v, bv.ok = version{major: v.Major(), minor: v.Minor(), patch: v.Patch(), pre: v.Prerelease()}, true
	}
	b.list = append(b.list, bv)
}

func (b *blockedSet) seal() {
	if len(b.list) <= maxBlockedScan {
		return
	}
	b.vers = make(map[version]struct{}, len(b.list))
	b.raws = make(map[string]struct{}, len(b.list))
	for _, x := range b.list {
		b.raws[x.raw] = struct{}{}
		if x.ok {
			b.vers[x.v] = struct{}{}
		}
	}
}

// has reports whether a release with version string raw, parsed as v, is
// blocked.
func (b *blockedSet) has(raw string, v version) bool {
	if b.vers != nil {
		_, byVer := b.vers[v]
		_, byRaw := b.raws[raw]
		return byVer || byRaw
	}
	for i := range b.list {
		x := &b.list[i]
		if x.raw == raw || x.ok && x.v == v {
			return true
		}
	}
	return false
}

// releaseGate is what the rollouts of one release decide.
type releaseGate struct {
	rel               int // index in the manifest's releases
	killed, completed bool
	gates             []rolloutGate // active and paused ones, in manifest order
}

// releaseGates groups rollouts (statuses already checked) by release,
// sorted by release index; rollouts of unknown releases are dropped.
func releaseGates(rollouts []snapshot.Rollout, rels *ids) []releaseGate {
	if len(rollouts) == 0 {
		return nil
	}
	at := make(map[int]int, len(rollouts)) // release index -> index in out
	var out []releaseGate
	for i := range rollouts {
		r := &rollouts[i]
		k := rels.find(r.ReleaseID, -1)
		if k < 0 {
			continue
		}
		j, ok := at[k]
		if !ok {
			j = len(out)
			at[k] = j
			out = append(out, releaseGate{rel: k})
		}
		g := &out[j]
		switch r.Status {
		case catalog.RolloutKilled:
			g.killed = true
		case catalog.RolloutCompleted:
			g.completed = true
		default:
			g.gates = append(g.gates, rolloutGate{id: r.RolloutID, threshold: threshold(r.Percentage)})
		}
	}
	slices.SortFunc(out, func(x, y releaseGate) int { return cmpInt(x.rel, y.rel) })
	return out
}

// ids finds the items of a manifest list by id with binary search: over the
// list itself when it is sorted by id (snapshots are), else over a sorted
// permutation.
type ids struct {
	n    int
	id   func(int) string
	perm []int32 // nil when the list is sorted
	dup  bool    // an id occurs twice
}

func newIDs(n int, id func(int) string) ids {
	x := ids{n: n, id: id}
	sorted := true
	for i := 1; i < n; i++ {
		if id(i-1) >= id(i) {
			sorted = false
			break
		}
	}
	if sorted {
		return x
	}
	x.perm = make([]int32, n)
	for i := range x.perm {
		x.perm[i] = int32(i)
	}
	slices.SortFunc(x.perm, func(a, b int32) int { return strings.Compare(id(int(a)), id(int(b))) })
	for i := 1; i < n; i++ {
		if id(int(x.perm[i-1])) == id(int(x.perm[i])) {
			x.dup = true
			break
		}
	}
	return x
}

// find returns the index of the item with id key, -1 if there is none.
// hint is a guess (the next item is often the one wanted).
func (x *ids) find(key string, hint int) int {
	if hint >= 0 && hint < x.n && x.id(hint) == key {
		return hint
	}
	lo, hi := 0, x.n
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if x.id(x.at(mid)) < key {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo < x.n && x.id(x.at(lo)) == key {
		return x.at(lo)
	}
	return -1
}

func (x *ids) at(i int) int {
	if x.perm == nil {
		return i
	}
	return int(x.perm[i])
}

// firstDup is the first id, in list order, that an earlier item has too
// (the error path only).
func (x *ids) firstDup() string {
	seen := make(map[string]struct{}, x.n)
	for i := 0; i < x.n; i++ {
		id := x.id(i)
		if _, ok := seen[id]; ok {
			return id
		}
		seen[id] = struct{}{}
	}
	return ""
}

// metadataOf returns a release's metadata as a compact JSON object: raw
// itself when it already is one (the common case: no copy), else
// compactObject's answer.
func metadataOf(raw json.RawMessage) []byte {
	if len(raw) > 0 && raw[0] == '{' && (string(raw) == "{}" || compact(raw) && json.Valid(raw)) {
		return raw[:len(raw):len(raw)]
	}
	return compactObject(raw)
}

// compact reports whether raw has no whitespace outside strings, so that
// json.Compact would return it unchanged if it is valid.
func compact(raw []byte) bool {
	in := false
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case in && c == '\\':
			i++
		case c == '"':
			in = !in
		case !in && (c == ' ' || c == '\t' || c == '\n' || c == '\r'):
			return false
		}
	}
	return true
}
