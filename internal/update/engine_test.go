package update

import (
	"strings"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/catalog"
)

// want is the part of a decision a rule test looks at.
type want struct {
	code      string // error code, "" for none
	available bool
	version   string
	action    string
	reason    string
	installer string
	policy    string
}

func got(d Decision, err error) want {
	if err != nil {
		return want{code: catalog.ErrorCode(err)}
	}
	w := want{available: d.UpdateAvailable, action: d.Action, reason: d.Reason, policy: d.PolicyID}
	if d.Release != nil {
		w.version = d.Release.Version
		w.installer = d.ReleaseArtifact.InstallerType
	}
	return w
}

func offer(ver, action, installer string) want {
	return want{available: true, version: ver, action: action, installer: installer}
}

func none(reason string) want { return want{action: catalog.ActionNone, reason: reason} }

func q(product, channel, platform, arch, ver string) Query {
	return Query{Product: product, Channel: channel, Platform: platform, Arch: arch, Version: ver}
}

func (x Query) with(f func(*Query)) Query { f(&x); return x }

func TestCheck_Candidates(t *testing.T) {
	f := newFixture().product("prd_a", "open").
		release("a1", "prd_a", "stable", "1.0.0", "ACTIVE", "windows/x64/msi").
		release("a2", "prd_a", "stable", "1.1.0", "ACTIVE", "windows/x64/msix", "windows/x64/msi", "linux/x64/tar.gz").
		release("a3", "prd_a", "stable", "1.2.0", "REVOKED", "windows/x64/msi").
		release("a4", "prd_a", "stable", "1.3.0", "ACTIVE", "windows/x64/msi").
		release("a5", "prd_a", "stable", "1.4.0-rc.1", "ACTIVE", "windows/x64/msi").
		release("a6", "prd_a", "stable", "v1.5.0", "ACTIVE", "windows/x64/msi").
		release("a7", "prd_a", "stable", "1.6.0+build.5", "ACTIVE", "windows/x64/msi").
		release("a8", "prd_a", "stable", "1.7.0", "ACTIVE", "plan9/x64/zip").
		release("b1", "prd_a", "beta", "2.0.0-beta.2", "ACTIVE", "windows/x64/msi").
		release("b2", "prd_a", "beta", "2.0.0-beta.10", "ACTIVE", "windows/x64/msi").
		release("b3", "prd_a", "beta", "1.9.0", "ACTIVE", "windows/x64/msi").
		release("o1", "prd_a", "old", "9.0.0", "REVOKED", "windows/x64/msi").
		blocked("prd_a", "1.3.0").
		blocked("prd_a", "v1.6.0")
	e := f.engine(t)
	base := q("prd_a", "stable", "windows", "x64", "1.0.0")
	tests := []struct {
		name  string
		query Query
		want  want
	}{
		{"skips revoked, blocked, pre-release on stable and invalid versions", base, offer("1.1.0", "NOTIFY", "msi")},
		{"installer type picks that artifact", base.with(func(q *Query) { q.InstallerType = "msix" }), offer("1.1.0", "NOTIFY", "msix")},
		{"installer type nobody ships", base.with(func(q *Query) { q.InstallerType = "zip" }), none(ReasonUpToDate)},
		{"other platform", base.with(func(q *Query) { q.Platform = "linux" }), offer("1.1.0", "NOTIFY", "tar.gz")},
		{"platform without artifacts", base.with(func(q *Query) { q.Platform = "macos" }), none(ReasonUpToDate)},
		{"up to date", base.with(func(q *Query) { q.Version = "1.1.0" }), none(ReasonUpToDate)},
		{"build metadata is ignored", base.with(func(q *Query) { q.Version = "1.1.0+local" }), none(ReasonUpToDate)},
		{"newer than everything", base.with(func(q *Query) { q.Version = "10.0.0" }), none(ReasonUpToDate)},
		{"pre-release client on stable gets the final", base.with(func(q *Query) { q.Version = "1.1.0-rc.1" }), offer("1.1.0", "NOTIFY", "msi")},
		{"beta offers pre-releases, numeric identifiers compare as numbers", base.with(func(q *Query) { q.Channel = "beta" }), offer("2.0.0-beta.10", "NOTIFY", "msi")},
		{"beta up to date", base.with(func(q *Query) { q.Channel = "beta"; q.Version = "2.0.0-beta.10" }), none(ReasonUpToDate)},
		{"channel with only revoked releases exists", base.with(func(q *Query) { q.Channel = "old" }), none(ReasonUpToDate)},
		{"unknown channel", base.with(func(q *Query) { q.Channel = "nightly" }), want{code: catalog.ENOTFOUND}},
		{"unknown product", base.with(func(q *Query) { q.Product = "prd_x" }), want{code: catalog.ENOTFOUND}},
		{"invalid platform", base.with(func(q *Query) { q.Platform = "plan9" }), want{code: catalog.EINVALID}},
		{"invalid version", base.with(func(q *Query) { q.Version = "1.0" }), want{code: catalog.EINVALID}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := got(e.Check(&tc.query, now))
			if g != tc.want {
				t.Errorf("got %+v, want %+v", g, tc.want)
			}
		})
	}
}

func TestCheck_Rollouts(t *testing.T) {
	build := func(t *testing.T, rollouts ...[3]string) *Engine {
		f := newFixture().product("prd_r", "open")
		for i, v := range []string{"1.0.0", "1.1.0", "1.2.0", "1.3.0"} {
			f.release("r"+itoa(i+1), "prd_r", "stable", v, "ACTIVE", "windows/x64/msi")
		}
		for i, r := range rollouts {
			pct := map[string]float64{"0": 0, "10": 10, "50": 50, "100": 100}[r[1]]
			f.rollout("rol_"+itoa(i), r[0], pct, r[2])
		}
		return f.engine(t)
	}
	base := q("prd_r", "stable", "windows", "x64", "1.0.0")
	client := func(id string) Query { return base.with(func(q *Query) { q.ClientID = id }) }
	in50, out50 := clientIn("rol_0", 50), clientOut("rol_0", 50)
	tests := []struct {
		name     string
		rollouts [][3]string
		query    Query
		want     string // offered version, "" for none
	}{
		{"active, client inside", [][3]string{{"r4", "50", "active"}}, client(in50), "1.3.0"},
		{"active, client outside gets N-1", [][3]string{{"r4", "50", "active"}}, client(out50), "1.2.0"},
		{"active, no client id is in no rollout", [][3]string{{"r4", "100", "active"}}, base, "1.2.0"},
		{"paused, client inside", [][3]string{{"r4", "50", "paused"}}, client(in50), "1.3.0"},
		{"paused, client outside", [][3]string{{"r4", "50", "paused"}}, client(out50), "1.2.0"},
		{"active 0%", [][3]string{{"r4", "0", "active"}}, client(in50), "1.2.0"},
		{"active 100%", [][3]string{{"r4", "100", "active"}}, client(out50), "1.3.0"},
		{"killed is never offered", [][3]string{{"r4", "100", "killed"}}, client(in50), "1.2.0"},
		{"completed is offered to all", [][3]string{{"r4", "0", "completed"}}, base, "1.3.0"},
		{"killed wins over another active rollout", [][3]string{{"r4", "100", "active"}, {"r4", "100", "killed"}}, client(in50), "1.2.0"},
		{"outside two rollouts falls back two releases", [][3]string{{"r4", "0", "active"}, {"r3", "0", "active"}}, client(in50), "1.1.0"},
		{"rollout on an older release does not gate the newest", [][3]string{{"r3", "0", "active"}}, client(out50), "1.3.0"},
		{"dangling rollout is ignored", [][3]string{{"r9", "0", "killed"}}, base, "1.3.0"},
		{"client already on the rolled-out release", [][3]string{{"r4", "50", "active"}}, client(out50).with(func(q *Query) { q.Version = "1.3.0" }), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := build(t, tc.rollouts...)
			d, err := e.Check(&tc.query, now)
			if err != nil {
				t.Fatal(err)
			}
			g := ""
			if d.UpdateAvailable {
				g = d.Release.Version
			}
			if g != tc.want {
				t.Errorf("got %q, want %q (decision %+v)", g, tc.want, d)
			}
		})
	}
}

func TestCheck_Policies(t *testing.T) {
	type pol struct {
		id, channel, action string
		priority            int
		cond                string
	}
	build := func(t *testing.T, pols []pol) *Engine {
		f := newFixture().product("prd_p", "open")
		for i, v := range []string{"1.0.0", "1.5.0", "2.0.0", "2.1.0", "3.0.0"} {
			f.release("p"+itoa(i), "prd_p", "stable", v, "ACTIVE", "windows/x64/msi", "linux/arm64/deb")
		}
		f.release("p9", "prd_p", "beta", "3.1.0", "ACTIVE", "windows/x64/msi")
		f.rollout("rol_k", "p4", 100, "killed")
		for _, p := range pols {
			ch := p.channel
			if ch == "" {
				ch = "stable"
			}
			f.policy(p.id, "prd_p", ch, p.action, p.priority, p.cond)
		}
		return f.engine(t)
	}
	win := q("prd_p", "stable", "windows", "x64", "1.0.0")
	lin := q("prd_p", "stable", "linux", "arm64", "1.0.0")
	withClient := func(x Query, id string) Query { return x.with(func(q *Query) { q.ClientID = id }) }
	withVer := func(x Query, v string) Query { return x.with(func(q *Query) { q.Version = v }) }
	p := func(v, action, policy string) want {
		return want{available: true, version: v, action: action, installer: "msi", policy: policy}
	}
	tests := []struct {
		name  string
		pols  []pol
		query Query
		want  want
	}{
		{"no policy: NOTIFY", nil, win, p("2.1.0", "NOTIFY", "")},
		{"empty conditions match", []pol{{"pol_a", "", "INSTALL", 0, `{}`}}, win, p("2.1.0", "INSTALL", "pol_a")},
		{"null conditions match", []pol{{"pol_a", "", "DOWNLOAD", 0, `null`}}, win, p("2.1.0", "DOWNLOAD", "pol_a")},
		{"higher priority first", []pol{{"pol_a", "", "DOWNLOAD", 1, `{}`}, {"pol_b", "", "INSTALL", 2, `{}`}}, win, p("2.1.0", "INSTALL", "pol_b")},
		{"equal priority: lower policy_id first", []pol{{"pol_b", "", "DOWNLOAD", 5, `{}`}, {"pol_a", "", "INSTALL", 5, `{}`}}, win, p("2.1.0", "INSTALL", "pol_a")},
		{"non-matching platform falls through", []pol{{"pol_a", "", "INSTALL", 10, `{"platforms":["linux"]}`}, {"pol_b", "", "DOWNLOAD", 0, `{}`}}, win, p("2.1.0", "DOWNLOAD", "pol_b")},
		{"matching platform and arch", []pol{{"pol_a", "", "INSTALL", 10, `{"platforms":["linux"],"arches":["arm64"]}`}}, lin, want{available: true, version: "2.1.0", action: "INSTALL", installer: "deb", policy: "pol_a"}},
		{"no match at all: NOTIFY", []pol{{"pol_a", "", "INSTALL", 10, `{"platforms":["macos"]}`}}, win, p("2.1.0", "NOTIFY", "")},
		{"NONE: no update", []pol{{"pol_a", "", "NONE", 0, `{}`}}, win, want{action: "NONE", reason: ReasonPolicyNone, policy: "pol_a"}},
		{"NONE for listed client", []pol{{"pol_a", "", "NONE", 10, `{"client_ids":["c1"]}`}, {"pol_b", "", "INSTALL", 0, `{}`}}, withClient(win, "c1"), want{action: "NONE", reason: ReasonPolicyNone, policy: "pol_a"}},
		{"NONE skips unlisted client", []pol{{"pol_a", "", "NONE", 10, `{"client_ids":["c1"]}`}, {"pol_b", "", "INSTALL", 0, `{}`}}, withClient(win, "c2"), p("2.1.0", "INSTALL", "pol_b")},
		{"client_ids never match a client without id", []pol{{"pol_a", "", "NONE", 10, `{"client_ids":["c1"]}`}}, win, p("2.1.0", "NOTIFY", "")},
		{"client id prefix", []pol{{"pol_a", "", "NONE", 10, `{"client_id_prefixes":["lab-"]}`}}, withClient(win, "lab-7"), want{action: "NONE", reason: ReasonPolicyNone, policy: "pol_a"}},
		{"max_version pin", []pol{{"pol_a", "", "DOWNLOAD", 0, `{"max_version":"2.0.0"}`}}, win, p("2.0.0", "DOWNLOAD", "pol_a")},
		{"max_version pin below the client", []pol{{"pol_a", "", "DOWNLOAD", 0, `{"max_version":"1.5.0"}`}}, withVer(win, "2.0.0"), want{action: "NONE", reason: ReasonUpToDate, policy: "pol_a"}},
		{"version_prefix major", []pol{{"pol_a", "", "INSTALL", 0, `{"version_prefix":"1"}`}}, win, p("1.5.0", "INSTALL", "pol_a")},
		{"version_prefix major.minor", []pol{{"pol_a", "", "INSTALL", 0, `{"version_prefix":"2.0"}`}}, win, p("2.0.0", "INSTALL", "pol_a")},
		{"version_prefix of an older line", []pol{{"pol_a", "", "INSTALL", 0, `{"version_prefix":"1"}`}}, withVer(win, "2.0.0"), want{action: "NONE", reason: ReasonUpToDate, policy: "pol_a"}},
		{"min_version floor", []pol{{"pol_a", "", "INSTALL", 0, `{"min_version":"2.1.0","max_version":"2.1.0"}`}}, win, p("2.1.0", "INSTALL", "pol_a")},
		{"min_version floor above all candidates", []pol{{"pol_a", "", "INSTALL", 0, `{"min_version":"2.5.0"}`}}, win, want{action: "NONE", reason: ReasonUpToDate, policy: "pol_a"}},
		{"client version range matches", []pol{{"pol_a", "", "INSTALL", 10, `{"client_version_max":"1.9.9"}`}}, win, p("2.1.0", "INSTALL", "pol_a")},
		{"client version range excludes", []pol{{"pol_a", "", "INSTALL", 10, `{"client_version_min":"2.0.0"}`}}, win, p("2.1.0", "NOTIFY", "")},
		{"installer_types needs the query's installer type", []pol{{"pol_a", "", "INSTALL", 10, `{"installer_types":["msi"]}`}}, win, p("2.1.0", "NOTIFY", "")},
		{"installer_types matches", []pol{{"pol_a", "", "INSTALL", 10, `{"installer_types":["msi"]}`}}, win.with(func(q *Query) { q.InstallerType = "msi" }), p("2.1.0", "INSTALL", "pol_a")},
		{"another channel's policy does not apply", []pol{{"pol_a", "beta", "NONE", 10, `{}`}}, win, p("2.1.0", "NOTIFY", "")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := build(t, tc.pols)
			g := got(e.Check(&tc.query, now))
			if g != tc.want {
				t.Errorf("got %+v, want %+v", g, tc.want)
			}
		})
	}
}

func TestCheck_Entitlements(t *testing.T) {
	ptr := func(t time.Time) *time.Time { return &t }
	type ent struct {
		start time.Time
		end   *time.Time
	}
	tests := []struct {
		name string
		dist string
		ents []ent
		want bool
	}{
		{"licensed without entitlement", "licensed", nil, false},
		{"default distribution is licensed", "", nil, false},
		{"open needs none", "open", nil, true},
		{"current open-ended", "licensed", []ent{{now.Add(-time.Hour), nil}}, true},
		{"ends now: ended", "licensed", []ent{{now.Add(-time.Hour), ptr(now)}}, false},
		{"ends just after now", "licensed", []ent{{now.Add(-time.Hour), ptr(now.Add(time.Nanosecond))}}, true},
		{"starts now", "licensed", []ent{{now, nil}}, true},
		{"starts later", "licensed", []ent{{now.Add(time.Second), nil}}, false},
		{"ended one and current one", "licensed", []ent{{now.Add(-48 * time.Hour), ptr(now.Add(-24 * time.Hour))}, {now.Add(-24 * time.Hour), nil}}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture().product("prd_l", tc.dist).
				release("l1", "prd_l", "stable", "1.0.0", "ACTIVE", "linux/x64/deb").
				release("l2", "prd_l", "stable", "1.1.0", "ACTIVE", "linux/x64/deb")
			for _, en := range tc.ents {
				f.entitlement("prd_l", en.start, en.end)
			}
			// Another product's entitlement never counts.
			f.product("prd_other", "licensed").entitlement("prd_other", now.Add(-time.Hour), nil)
			e := f.engine(t)
			query := q("prd_l", "stable", "linux", "x64", "1.0.0")
			d, err := e.Check(&query, now)
			if err != nil {
				t.Fatal(err)
			}
			if d.UpdateAvailable != tc.want {
				t.Fatalf("update_available = %v, want %v (%+v)", d.UpdateAvailable, tc.want, d)
			}
			if !tc.want && d.Reason != ReasonNoEntitlement {
				t.Errorf("reason = %q, want %q", d.Reason, ReasonNoEntitlement)
			}
		})
	}
}

func TestNew_Errors(t *testing.T) {
	tests := []struct {
		name  string
		build func(*fixture)
		want  string
	}{
		{"duplicate product", func(f *fixture) { f.product("prd_a", "open") }, `product "prd_a": duplicate id`},
		{"duplicate release", func(f *fixture) { f.release("a1", "prd_a", "stable", "1.0.1", "ACTIVE") }, `release "a1": duplicate id`},
		{"bad action", func(f *fixture) { f.policy("pol_1", "prd_a", "stable", "REBOOT", 0, `{}`) }, `policy "pol_1": action: "REBOOT" is not one of`},
		{"bad conditions name the key", func(f *fixture) { f.policy("pol_1", "prd_a", "stable", "NONE", 0, `{"platforms":"linux"}`) }, `conditions.platforms: must be an array of strings`},
		{"unknown rollout status", func(f *fixture) { f.rollout("rol_1", "a1", 5, "frozen") }, `rollout "rol_1": unknown status "frozen"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture().product("prd_a", "open").release("a1", "prd_a", "stable", "1.0.0", "ACTIVE", "linux/x64/deb")
			tc.build(f)
			_, err := New(f.m)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestCheck_TieBreakAndDeterminism(t *testing.T) {
	// Same precedence (build metadata differs): the greater release_id wins,
	// whatever the manifest order.
	for _, order := range [][2]string{{"t1", "t2"}, {"t2", "t1"}} {
		f := newFixture().product("prd_t", "open").
			release("t0", "prd_t", "stable", "1.0.0", "ACTIVE", "linux/x64/deb").
			release(order[0], "prd_t", "stable", "1.1.0+"+order[0], "ACTIVE", "linux/x64/deb").
			release(order[1], "prd_t", "stable", "1.1.0+"+order[1], "ACTIVE", "linux/x64/deb")
		e := f.engine(t)
		query := q("prd_t", "stable", "linux", "x64", "1.0.0")
		d, err := e.Check(&query, now)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := d.Release.ReleaseID, "t2"; got != want {
			t.Errorf("order %v: got %s, want %s", order, got, want)
		}
	}
}
