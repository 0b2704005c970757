// Package updatetest generates large, deterministic snapshot manifests and
// update-check queries for the update engine's tests and benchmarks (and
// the HTTP benchmarks that reuse them).
package updatetest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net/url"
	"time"

	"github.com/outpost/outpost/internal/snapshot"
)

// Options sizes a generated manifest.
type Options struct {
	Products int       // default 50
	Releases int       // per product, default 1000
	Policies int       // spread over the first products' stable channel, default 20
	Now      time.Time // entitlements are current at Now; default 2026-11-28T12:00:00Z
}

// Default is the benchmark size of issue 5: 50 products x 1,000 releases
// x 6 platform/arch artifacts, 20 policies, rollouts and blocked versions.
var Default = Options{Products: 50, Releases: 1000, Policies: 20}

// PlatformArches are the six platform/arch pairs every release ships.
var PlatformArches = [][3]string{
	{"windows", "x64", "msi"}, {"windows", "arm64", "msix"},
	{"linux", "x64", "tar.gz"}, {"linux", "arm64", "deb"},
	{"macos", "x64", "dmg"}, {"macos", "arm64", "pkg"},
}

// ID returns a valid-looking deterministic id: prefix + "_" + 26 digits.
func ID(prefix string, n int) string { return fmt.Sprintf("%s_%026d", prefix, n) }

// ReleaseVersion is the version of a product's j-th release: every tenth
// (j%10 == 9) is a beta pre-release, the others are stable.
func ReleaseVersion(j int) (version, channel string) {
	v := fmt.Sprintf("%d.%d.%d", j/100+1, (j/10)%10, j%10)
	if j%10 == 9 {
		return v + "-beta.1", "beta"
	}
	return v, "stable"
}

// Manifest builds the manifest. Per product: releases j = 0..Releases-1
// (ReleaseVersion), the newest stable one under an active 30% rollout
// (killed for every tenth product), the next under a paused 50% rollout,
// the next completed; two blocked versions and one revoked release below
// those; even products are open, odd ones licensed with a current
// entitlement, except product 1 whose entitlement has ended.
func Manifest(o Options) *snapshot.Manifest {
	if o.Products == 0 {
		o.Products = 50
	}
	if o.Releases == 0 {
		o.Releases = 1000
	}
	if o.Now.IsZero() {
		o.Now = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	}
	m := &snapshot.Manifest{
		Schema: snapshot.Schema, SnapshotID: ID("snp", 1), TenantID: ID("ten", 1), Sequence: 1,
		CreatedAt: o.Now, ExpiresAt: o.Now.Add(30 * 24 * time.Hour),
		Tenant: snapshot.Tenant{TenantID: ID("ten", 1), Name: "bench", Status: "active"},
	}
	m.Releases = make([]snapshot.Release, 0, o.Products*o.Releases)
	m.Artifacts = make([]snapshot.Artifact, 0, o.Products*o.Releases*len(PlatformArches))
	base := o.Now.Add(-time.Duration(o.Releases) * time.Hour)
	for p := range o.Products {
		pid := ID("prd", p)
		dist := "open"
		if p%2 == 1 {
			dist = "licensed"
			ent := snapshot.Entitlement{EntitlementID: ID("ent", p), ProductID: pid, Policy: []byte(`{"max_seats":10}`), StartsAt: o.Now.AddDate(-1, 0, 0)}
			if p == 1 {
				end := o.Now.Add(-time.Hour)
				ent.EndsAt = &end
			}
			m.Entitlements = append(m.Entitlements, ent)
		}
		m.Products = append(m.Products, snapshot.Product{ProductID: pid, Name: fmt.Sprintf("Product %d", p), Distribution: dist, Metadata: []byte(`{}`)})
		for j := range o.Releases {
			n := p*o.Releases + j
			ver, ch := ReleaseVersion(j)
			r := snapshot.Release{
				ReleaseID: ID("rel", n), ProductID: pid, Channel: ch, Version: ver,
				PublishedAt: base.Add(time.Duration(j) * time.Hour), Status: "ACTIVE",
				Metadata: []byte(`{"notes":"release ` + ver + `"}`),
			}
			for k, pa := range PlatformArches {
				an := n*len(PlatformArches) + k
				aid := ID("art", an)
				sum := sha256.Sum256([]byte(aid))
				m.Artifacts = append(m.Artifacts, snapshot.Artifact{ArtifactID: aid, SHA256: hex.EncodeToString(sum[:]), SizeBytes: int64(1<<20 + an), SourceType: "MANAGED"})
				r.Artifacts = append(r.Artifacts, snapshot.ReleaseArtifact{ReleaseArtifactID: ID("rla", an), ArtifactID: aid, Platform: pa[0], Arch: pa[1], InstallerType: pa[2], RequiresAdmin: pa[0] == "windows"})
			}
			m.Releases = append(m.Releases, r)
		}
		// Newest stable releases: j = Releases-2, -3, -4 when Releases%10 == 0.
		stable := newestStable(o.Releases, 4)
		rel := func(j int) string { return ID("rel", p*o.Releases+j) }
		addRollout := func(k, j int, pct float64, status string) {
			if j < 0 {
				return
			}
			m.Rollouts = append(m.Rollouts, snapshot.Rollout{RolloutID: ID("rol", p*10+k), ProductID: pid, Channel: "stable", ReleaseID: rel(j), Percentage: pct, Status: status})
		}
		if p%10 == 0 {
			addRollout(0, stable[0], 30, "killed")
		} else {
			addRollout(0, stable[0], 30, "active")
		}
		addRollout(1, stable[1], 50, "paused")
		addRollout(2, stable[2], 100, "completed")
		if j := stable[3]; j >= 0 {
			r := &m.Releases[p*o.Releases+j]
			r.Status = "REVOKED"
			t := o.Now.Add(-time.Hour)
			r.RevokedAt = &t
		}
		for k, j := range []int{o.Releases - 20, o.Releases - 50} {
			if j >= 0 {
				v, _ := ReleaseVersion(j)
				m.BlockedVersions = append(m.BlockedVersions, snapshot.BlockedVersion{BlocklistID: ID("blk", p*10+k), ProductID: pid, BlockedVersion: v, Reason: "bad build"})
			}
		}
	}
	for k := range o.Policies {
		p := k % o.Products
		pol := snapshot.Policy{PolicyID: ID("pol", k), ProductID: ID("prd", p), Channel: "stable", Version: 1}
		switch k % 4 {
		case 0:
			pol.Action, pol.Priority, pol.Conditions = "INSTALL", 10, []byte(`{"platforms":["windows"]}`)
		case 1:
			pol.Action, pol.Priority, pol.Conditions = "DOWNLOAD", 5, []byte(`{"max_version":"5.0.0"}`)
		case 2:
			pol.Action, pol.Priority, pol.Conditions = "NONE", 20, []byte(`{"client_id_prefixes":["frozen-"]}`)
		case 3:
			pol.Action, pol.Priority, pol.Conditions = "NOTIFY", 1, []byte(`{"arches":["arm64"],"version_prefix":"3.5"}`)
		}
		m.Policies = append(m.Policies, pol)
	}
	return m
}

// newestStable returns the indexes of the n newest stable releases among
// 0..releases-1 (-1 where there are fewer).
func newestStable(releases, n int) []int {
	out := make([]int, 0, n)
	for j := releases - 1; j >= 0 && len(out) < n; j-- {
		if _, ch := ReleaseVersion(j); ch == "stable" {
			out = append(out, j)
		}
	}
	for len(out) < n {
		out = append(out, -1)
	}
	return out
}

// Queries returns n raw query strings for checks against a manifest made
// with o, deterministic for a seed: mostly valid checks (any product,
// stable or beta, the six platform/arch pairs, older versions, client ids
// some of which are frozen by policy), with about 5% bad ones (unknown
// product or channel, bad version, bad platform).
func Queries(o Options, n int, seed uint64) []string {
	if o.Products == 0 {
		o.Products = 50
	}
	if o.Releases == 0 {
		o.Releases = 1000
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	out := make([]string, n)
	for i := range out {
		v := url.Values{}
		v.Set("product", ID("prd", rng.IntN(o.Products)))
		v.Set("channel", "stable")
		if rng.IntN(5) == 0 {
			v.Set("channel", "beta")
		}
		pa := PlatformArches[rng.IntN(len(PlatformArches))]
		v.Set("platform", pa[0])
		v.Set("arch", pa[1])
		if rng.IntN(4) == 0 {
			v.Set("installer_type", pa[2])
		}
		ver, _ := ReleaseVersion(rng.IntN(o.Releases))
		v.Set("version", ver)
		switch rng.IntN(10) {
		case 0:
		case 1:
			v.Set("client_id", fmt.Sprintf("frozen-%d", rng.IntN(1000)))
		default:
			v.Set("client_id", fmt.Sprintf("client-%d", rng.IntN(1_000_000)))
		}
		switch rng.IntN(100) {
		case 0:
			v.Set("product", ID("prd", o.Products+1))
		case 1:
			v.Set("channel", "nightly")
		case 2:
			v.Set("version", "1.2")
		case 3:
			v.Set("platform", "plan9")
		case 4:
			v.Set("client_id", "bad\x01id")
		}
		out[i] = v.Encode()
	}
	return out
}
