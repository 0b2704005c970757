// Package update is the update decision engine shared by the control plane
// and the mirror (DESIGN.md "Update decision"). It is pure: New indexes a
// verified snapshot manifest once, and Check answers a query from that index
// without I/O, without scanning all releases and without allocating.
// The conditions language and the response document are described in
// docs/conditions.md.
package update

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/snapshot"
)

// StableChannel is the one channel that never offers pre-release versions.
const StableChannel = "stable"

// Reasons given with update_available false.
const (
	ReasonNoEntitlement = "no current entitlement"
	ReasonPolicyNone    = "updates disabled by policy"
	ReasonUpToDate      = "no newer release"
)

var (
	numPlatforms = len(catalog.Platforms)
	numPA        = len(catalog.Platforms) * len(catalog.Arches)
)

// Engine answers update checks from one snapshot. It is immutable and safe
// for concurrent use; build a new one for each snapshot.
type Engine struct {
	snapshotID string
	sequence   int64
	products   map[string]*productIndex
}

type productIndex struct {
	licensed     bool
	entitlements []window
	channels     map[string]*channelIndex
}

type window struct {
	start time.Time
	end   *time.Time
}

type channelIndex struct {
	policies []policyEntry
	// byPA holds, per platform*arches+arch, the candidate releases sorted
	// by version descending.
	byPA [][]candidate
}

type policyEntry struct {
	id       string
	action   string
	priority int
	cond     *Conditions
}

type candidate struct {
	rel  *releaseEntry
	arts []artifactEntry // for this platform/arch, by installer type then id
}

type artifactEntry struct {
	ra   *snapshot.ReleaseArtifact
	a    *snapshot.Artifact
	inst int // index in catalog.InstallerTypes, -1 if unknown
}

type releaseEntry struct {
	r           *snapshot.Release
	v           version
	publishedAt string // RFC 3339, UTC
	metadata    []byte // compact JSON object
	rollouts    []rolloutGate
}

// rolloutGate is an active or paused rollout: clients whose bucket is below
// threshold are in.
type rolloutGate struct {
	id        string
	threshold uint64
}

// New indexes a verified manifest. It fails on what would make answers
// ambiguous (duplicate ids, a policy with an invalid action or conditions,
// an unknown rollout status) and ignores dangling references: a release
// artifact without its artifact, a rollout without its release, a policy
// without its product.
func New(m *snapshot.Manifest) (*Engine, error) {
	e := &Engine{snapshotID: m.SnapshotID, sequence: m.Sequence, products: make(map[string]*productIndex, len(m.Products))}
	for i := range m.Products {
		p := &m.Products[i]
		if _, dup := e.products[p.ProductID]; dup {
			return nil, fmt.Errorf("index snapshot: product %q: duplicate id", p.ProductID)
		}
		e.products[p.ProductID] = &productIndex{
			licensed: p.Distribution != catalog.DistributionOpen,
			channels: map[string]*channelIndex{},
		}
	}
	for i := range m.Entitlements {
		en := &m.Entitlements[i]
		if p := e.products[en.ProductID]; p != nil {
			p.entitlements = append(p.entitlements, window{start: en.StartsAt, end: en.EndsAt})
		}
	}
	artifacts := make(map[string]*snapshot.Artifact, len(m.Artifacts))
	for i := range m.Artifacts {
		a := &m.Artifacts[i]
		if _, dup := artifacts[a.ArtifactID]; dup {
			return nil, fmt.Errorf("index snapshot: artifact %q: duplicate id", a.ArtifactID)
		}
		artifacts[a.ArtifactID] = a
	}
	blocked := map[string]map[string]bool{}
	for _, b := range m.BlockedVersions {
		set := blocked[b.ProductID]
		if set == nil {
			set = map[string]bool{}
			blocked[b.ProductID] = set
		}
		set[b.BlockedVersion] = true
		if v, err := semver.NewVersion(b.BlockedVersion); err == nil {
			set[version{major: v.Major(), minor: v.Minor(), patch: v.Patch(), pre: v.Prerelease()}.key()] = true
		}
	}
	type gate struct {
		killed, completed bool
		gates             []rolloutGate
	}
	gates := map[string]*gate{}
	for _, r := range m.Rollouts {
		g := gates[r.ReleaseID]
		if g == nil {
			g = &gate{}
			gates[r.ReleaseID] = g
		}
		switch r.Status {
		case catalog.RolloutKilled:
			g.killed = true
		case catalog.RolloutCompleted:
			g.completed = true
		case catalog.RolloutActive, catalog.RolloutPaused:
			g.gates = append(g.gates, rolloutGate{id: r.RolloutID, threshold: threshold(r.Percentage)})
		default:
			return nil, fmt.Errorf("index snapshot: rollout %q: unknown status %q", r.RolloutID, r.Status)
		}
	}

	releaseIDs := make(map[string]struct{}, len(m.Releases))
	// Capacity fixed up front: candidates point into entries.
	entries := make([]releaseEntry, 0, len(m.Releases))
	for i := range m.Releases {
		r := &m.Releases[i]
		if _, dup := releaseIDs[r.ReleaseID]; dup {
			return nil, fmt.Errorf("index snapshot: release %q: duplicate id", r.ReleaseID)
		}
		releaseIDs[r.ReleaseID] = struct{}{}
		p := e.products[r.ProductID]
		if p == nil {
			continue
		}
		// Every release, offered or not, makes its channel known.
		ch := p.channels[r.Channel]
		if ch == nil {
			ch = &channelIndex{byPA: make([][]candidate, numPA)}
			p.channels[r.Channel] = ch
		}
		if r.Status != catalog.ReleaseActive {
			continue
		}
		sv, err := semver.StrictNewVersion(r.Version)
		if err != nil {
			continue
		}
		v := version{major: sv.Major(), minor: sv.Minor(), patch: sv.Patch(), pre: sv.Prerelease()}
		if v.pre != "" && r.Channel == StableChannel {
			continue
		}
		if set := blocked[r.ProductID]; set[r.Version] || set[v.key()] {
			continue
		}
		var gs []rolloutGate
		if g := gates[r.ReleaseID]; g != nil {
			if g.killed {
				continue
			}
			if !g.completed {
				gs = g.gates
			}
		}
		entries = append(entries, releaseEntry{
			r: r, v: v, rollouts: gs,
			publishedAt: r.PublishedAt.UTC().Format(time.RFC3339Nano),
			metadata:    compactObject(r.Metadata),
		})
		re := &entries[len(entries)-1]
		arts := make([]artifactEntry, 0, len(r.Artifacts))
		for j := range r.Artifacts {
			ra := &r.Artifacts[j]
			a := artifacts[ra.ArtifactID]
			if a == nil || indexOf(catalog.Platforms, ra.Platform) < 0 || indexOf(catalog.Arches, ra.Arch) < 0 {
				continue
			}
			arts = append(arts, artifactEntry{ra: ra, a: a, inst: indexOf(catalog.InstallerTypes, ra.InstallerType)})
		}
		slices.SortFunc(arts, func(x, y artifactEntry) int {
			if c := strings.Compare(x.ra.Platform, y.ra.Platform); c != 0 {
				return c
			}
			if c := strings.Compare(x.ra.Arch, y.ra.Arch); c != 0 {
				return c
			}
			if c := strings.Compare(x.ra.InstallerType, y.ra.InstallerType); c != 0 {
				return c
			}
			return strings.Compare(x.ra.ReleaseArtifactID, y.ra.ReleaseArtifactID)
		})
		for start := 0; start < len(arts); {
			end := start + 1
			for end < len(arts) && arts[end].ra.Platform == arts[start].ra.Platform && arts[end].ra.Arch == arts[start].ra.Arch {
				end++
			}
			pa := paIndex(indexOf(catalog.Platforms, arts[start].ra.Platform), indexOf(catalog.Arches, arts[start].ra.Arch))
			ch.byPA[pa] = append(ch.byPA[pa], candidate{rel: re, arts: arts[start:end:end]})
			start = end
		}
	}

	for _, p := range e.products {
		for _, ch := range p.channels {
			for _, list := range ch.byPA {
				slices.SortFunc(list, func(x, y candidate) int {
					if c := y.rel.v.compare(x.rel.v); c != 0 {
						return c
					}
					return strings.Compare(y.rel.r.ReleaseID, x.rel.r.ReleaseID)
				})
			}
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
	for _, p := range e.products {
		for _, ch := range p.channels {
			slices.SortFunc(ch.policies, func(x, y policyEntry) int {
				if x.priority != y.priority {
					return cmpInt(y.priority, x.priority)
				}
				return strings.Compare(x.id, y.id)
			})
		}
	}
	return e, nil
}

func cmpInt(a, b int) int {
	if a < b {
		return -1
	}
	if a > b {
		return 1
	}
	return 0
}

func paIndex(plat, arch int) int { return plat*len(catalog.Arches) + arch }

// threshold turns a percentage into the bucket bound: bucket < threshold
// is in. NaN and negatives give 0, more than 100 gives all.
func threshold(pct float64) uint64 {
	if !(pct > 0) {
		return 0
	}
	if pct >= 100 {
		return 10000
	}
	return uint64(math.Round(pct * 100))
}

// Bucket is a client's bucket (0..9999) in a rollout:
// uint64(sha256(rollout_id + ":" + client_id)[0:8]) % 10000, big endian.
func Bucket(rolloutID, clientID string) uint64 {
	var buf [512]byte
	b := buf[:0]
	if n := len(rolloutID) + 1 + len(clientID); n > len(buf) {
		b = make([]byte, 0, n)
	}
	b = append(b, rolloutID...)
	b = append(b, ':')
	b = append(b, clientID...)
	sum := sha256.Sum256(b)
	return binary.BigEndian.Uint64(sum[:8]) % 10000
}

// compactObject returns raw as compact JSON if it is an object, else {}.
func compactObject(raw json.RawMessage) []byte {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return []byte("{}")
	}
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return []byte("{}")
	}
	return b.Bytes()
}

// SnapshotID is the id of the indexed snapshot.
func (e *Engine) SnapshotID() string { return e.snapshotID }

// Sequence is the sequence of the indexed snapshot.
func (e *Engine) Sequence() int64 { return e.sequence }

// Check answers q at time now (entitlements are judged by it). An invalid
// query is an EINVALID error naming the field; an unknown product, or a
// channel in which the product has no release at all, is ENOTFOUND.
// Otherwise the Decision says whether an update is offered and, if not,
// why.
func (e *Engine) Check(q *Query, now time.Time) (Decision, error) {
	p, err := q.prepare()
	if err != nil {
		return Decision{}, err
	}
	return e.check(&p, now)
}

func (e *Engine) check(q *prepared, now time.Time) (Decision, error) {
	d := Decision{Action: catalog.ActionNone, SnapshotID: e.snapshotID, Sequence: e.sequence}
	p := e.products[q.product]
	if p == nil {
		return d, catalog.NotFound("product", q.product)
	}
	ch := p.channels[q.channel]
	if ch == nil {
		return d, catalog.NotFound("channel", q.channel)
	}
	if p.licensed && !p.entitled(now) {
		d.Reason = ReasonNoEntitlement
		return d, nil
	}
	action := catalog.ActionNotify
	var pn *pin
	for i := range ch.policies {
		pol := &ch.policies[i]
		if pol.cond.matches(q) {
			action, d.PolicyID = pol.action, pol.id
			if pol.cond.pin.active() {
				pn = &pol.cond.pin
			}
			break
		}
	}
	if action == catalog.ActionNone {
		d.Reason = ReasonPolicyNone
		return d, nil
	}
	c, art := ch.pick(q, pn)
	if c == nil {
		d.Reason = ReasonUpToDate
		return d, nil
	}
	d.UpdateAvailable = true
	d.Action = action
	d.Release = c.rel.r
	d.ReleaseArtifact = art.ra
	d.Artifact = art.a
	d.rel = c.rel
	return d, nil
}

func (p *productIndex) entitled(now time.Time) bool {
	for _, w := range p.entitlements {
		if !now.Before(w.start) && (w.end == nil || now.Before(*w.end)) {
			return true
		}
	}
	return false
}

// pick returns the newest candidate newer than the client that the pin
// allows, that has an artifact of the wanted installer type and whose
// rollouts (if any) include the client.
func (ch *channelIndex) pick(q *prepared, pn *pin) (*candidate, *artifactEntry) {
	list := ch.byPA[paIndex(q.plat, q.arch)]
	i := 0
	if pn != nil {
		// The list is sorted descending, so what lies above the pin is a
		// prefix of it: skip it by binary search.
		i, _ = slices.BinarySearchFunc(list, pn, func(c candidate, pn *pin) int {
			if pn.above(&c.rel.v) {
				return -1
			}
			return 1
		})
	}
	for ; i < len(list); i++ {
		c := &list[i]
		if c.rel.v.compare(q.ver) <= 0 {
			break
		}
		if pn != nil {
			if pn.below(&c.rel.v) {
				break
			}
			if !pn.allows(&c.rel.v) {
				continue
			}
		}
		art := c.artifact(q.inst)
		if art == nil {
			continue
		}
		if len(c.rel.rollouts) > 0 && !c.rel.includes(q.clientID) {
			continue
		}
		return c, art
	}
	return nil, nil
}

func (c *candidate) artifact(inst int) *artifactEntry {
	if inst < 0 {
		return &c.arts[0]
	}
	for i := range c.arts {
		if c.arts[i].inst == inst {
			return &c.arts[i]
		}
	}
	return nil
}

// includes reports whether a client is inside one of the release's active
// or paused rollouts. No client id is in none.
func (r *releaseEntry) includes(clientID string) bool {
	if clientID == "" {
		return false
	}
	for _, g := range r.rollouts {
		if Bucket(g.id, clientID) < g.threshold {
			return true
		}
	}
	return false
}
