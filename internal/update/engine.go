// Package update is the update decision engine shared by the control plane
// and the mirror (docs/conditions.md is its contract). It is pure: New indexes a
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
	"math"
	"slices"
	"time"

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
	// ReasonNotInRollout: a newer release exists for the client but only
	// inside rollouts that do not include it (or it sent no client_id).
	ReasonNotInRollout = "newer release not rolled out to this client"
)

var numPA = len(catalog.Platforms) * len(catalog.Arches)

// Engine answers update checks from one snapshot. It is immutable and safe
// for concurrent use; build a new one for each snapshot.
type Engine struct {
	snapshotID string
	sequence   int64
	products   map[string]*productIndex
	deltas     map[deltaKey]*snapshot.Delta // by (to, from) artifact sha256
	rendered   answerCache                  // rendered documents per decision
}

type deltaKey struct{ to, from string }

// Delta returns the signed delta that rebuilds the artifact whose sha256
// is to from the one whose sha256 is from, or nil.
func (e *Engine) Delta(to, from string) *snapshot.Delta {
	return e.deltas[deltaKey{to, from}]
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
	seq      int // position among all channels of the snapshot, while indexing
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
	inst int32 // index in catalog.InstallerTypes, -1 if unknown
	pa   int32 // paIndex of its platform and arch
}

type releaseEntry struct {
	r        *snapshot.Release
	v        version
	metadata []byte       // compact JSON object
	gate     *releaseGate // its rollouts when they gate it, else nil
}

// rolloutGate is an active or paused rollout: clients whose bucket is below
// threshold are in.
type rolloutGate struct {
	id        string
	threshold uint64
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
	c, art, gated := ch.pick(q, pn)
	if c == nil {
		d.Reason = ReasonUpToDate
		if gated {
			d.Reason = ReasonNotInRollout
		}
		return d, nil
	}
	d.UpdateAvailable = true
	d.Action = action
	d.Release = c.rel.r
	d.ReleaseArtifact = art.ra
	d.Artifact = art.a
	d.rel = c.rel
	if q.installed != "" {
		d.Delta = e.deltas[deltaKey{art.a.SHA256, q.installed}]
	}
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
// rollouts (if any) include the client. gated reports whether a newer
// candidate was passed over only because its rollouts leave the client
// out.
func (ch *channelIndex) pick(q *prepared, pn *pin) (c *candidate, art *artifactEntry, gated bool) {
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
		if c.rel.gate != nil && !c.rel.includes(q.clientID) {
			gated = true
			continue
		}
		return c, art, gated
	}
	return nil, nil, gated
}

func (c *candidate) artifact(inst int) *artifactEntry {
	if inst < 0 {
		return &c.arts[0]
	}
	for i := range c.arts {
		if int(c.arts[i].inst) == inst {
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
	for _, g := range r.gate.gates {
		if Bucket(g.id, clientID) < g.threshold {
			return true
		}
	}
	return false
}
