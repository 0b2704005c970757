package update

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/snapshot"
)

var now = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

// fixture builds small manifests by hand for rule tests.
type fixture struct {
	m *snapshot.Manifest
	n int
}

func newFixture() *fixture {
	return &fixture{m: &snapshot.Manifest{Schema: 1, SnapshotID: "snp_1", TenantID: "ten_1", Sequence: 7}}
}

func (f *fixture) product(id, dist string) *fixture {
	f.m.Products = append(f.m.Products, snapshot.Product{ProductID: id, Name: id, Distribution: dist})
	return f
}

// release adds a release with one artifact per "platform/arch/installer".
func (f *fixture) release(id, product, channel, ver, status string, arts ...string) *fixture {
	r := snapshot.Release{ReleaseID: id, ProductID: product, Channel: channel, Version: ver, Status: status,
		PublishedAt: now.Add(-time.Duration(len(f.m.Releases)) * time.Hour)}
	for _, a := range arts {
		f.n++
		parts := splitN3(a)
		aid := id + "-art-" + a
		sum := sha256.Sum256([]byte(aid))
		f.m.Artifacts = append(f.m.Artifacts, snapshot.Artifact{ArtifactID: aid, SHA256: hex.EncodeToString(sum[:]), SizeBytes: int64(100 + f.n), SourceType: "MANAGED"})
		r.Artifacts = append(r.Artifacts, snapshot.ReleaseArtifact{ReleaseArtifactID: aid + "-rla", ArtifactID: aid, Platform: parts[0], Arch: parts[1], InstallerType: parts[2], RequiresAdmin: parts[0] == "windows"})
	}
	f.m.Releases = append(f.m.Releases, r)
	return f
}

func splitN3(s string) [3]string {
	var out [3]string
	k := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '/' && k < 2 {
			k++
			continue
		}
		out[k] += string(s[i])
	}
	return out
}

func (f *fixture) policy(id, product, channel, action string, priority int, cond string) *fixture {
	f.m.Policies = append(f.m.Policies, snapshot.Policy{PolicyID: id, ProductID: product, Channel: channel, Action: action, Priority: priority, Conditions: []byte(cond), Version: 1})
	return f
}

func (f *fixture) blocked(product, ver string) *fixture {
	f.m.BlockedVersions = append(f.m.BlockedVersions, snapshot.BlockedVersion{BlocklistID: "blk_" + ver, ProductID: product, BlockedVersion: ver})
	return f
}

func (f *fixture) rollout(id, release string, pct float64, status string) *fixture {
	f.m.Rollouts = append(f.m.Rollouts, snapshot.Rollout{RolloutID: id, ReleaseID: release, Percentage: pct, Status: status})
	return f
}

func (f *fixture) entitlement(product string, start time.Time, end *time.Time) *fixture {
	f.m.Entitlements = append(f.m.Entitlements, snapshot.Entitlement{EntitlementID: "ent_" + product, ProductID: product, StartsAt: start, EndsAt: end})
	return f
}

func (f *fixture) engine(t testing.TB) *Engine {
	t.Helper()
	e, err := New(f.m)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return e
}

// clientIn and clientOut find client ids inside and outside a rollout.
func clientIn(rollout string, pct float64) string  { return findClient(rollout, pct, true) }
func clientOut(rollout string, pct float64) string { return findClient(rollout, pct, false) }

func findClient(rollout string, pct float64, in bool) string {
	for i := 0; ; i++ {
		id := "client-" + itoa(i)
		if (Bucket(rollout, id) < threshold(pct)) == in {
			return id
		}
	}
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}
