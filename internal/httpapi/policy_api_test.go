package httpapi_test

import (
	"archive/tar"
	"bytes"
	"io"
	"sort"
	"strings"
	"testing"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/controlplane"
)

func TestAPI_PolicyVersions(t *testing.T) {
	h := newHarness(t)
	tenant := h.tenant("a")
	prod := h.product("p", "open")
	pol := h.must(201, h.do("POST", "/v1/tenants/"+tenant+"/policies", h.admin, map[string]any{
		"product_id": prod, "channel": "stable", "action": "NOTIFY", "conditions": map[string]any{"platforms": []string{"linux"}}, "priority": 5}))
	id := pol["policy_id"].(string)
	if pol["version"].(float64) != 1 {
		t.Fatalf("first version %v", pol["version"])
	}
	for i, action := range []string{"DOWNLOAD", "INSTALL"} {
		got := h.must(200, h.do("PUT", "/v1/policies/"+id, h.admin, map[string]any{"action": action, "priority": 5}))
		if got["version"].(float64) != float64(i+2) || got["action"] != action {
			t.Fatalf("after PUT %d: %v", i, got)
		}
	}
	versions := h.must(200, h.do("GET", "/v1/policies/"+id+"/versions", h.admin, nil))["items"].([]any)
	var actions []string
	for _, v := range versions {
		actions = append(actions, v.(map[string]any)["action"].(string))
	}
	if got, want := strings.Join(actions, ","), "NOTIFY,DOWNLOAD,INSTALL"; got != want {
		t.Fatalf("versions %s, want %s", got, want)
	}
	if r := h.do("PUT", "/v1/policies/"+id, h.admin, map[string]any{"action": "NOTIFY", "conditions": map[string]any{"arches": "x64"}}); r.status != 400 || !strings.Contains(r.errMessage(t), "arches") {
		t.Fatalf("ill-typed condition: %d %s", r.status, r.body)
	}
	if n := len(h.must(200, h.do("GET", "/v1/audit-events?event_type=policy.updated", h.admin, nil))["items"].([]any)); n != 2 {
		t.Fatalf("got %d policy.updated events, want 2", n)
	}
}

func TestAPI_RolloutTransitions(t *testing.T) {
	h := newHarness(t)
	prod := h.product("p", "open")
	rel, _ := h.release(prod, "stable", "1.0.0", []byte("x"))
	newRollout := func() string {
		return h.must(201, h.do("POST", "/v1/products/"+prod+"/rollouts", h.admin, map[string]any{"channel": "stable", "release_id": rel, "percentage": 10}))["rollout_id"].(string)
	}
	cases := []struct {
		name  string
		steps []string
		last  int
	}{
		{"active to paused to active", []string{"paused", "active"}, 200},
		{"killed is final", []string{"killed", "active"}, 409},
		{"completed is final", []string{"completed", "paused"}, 409},
		{"unknown status", []string{"sleeping"}, 400},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id := newRollout()
			var r resp
			for _, st := range c.steps {
				r = h.do("PATCH", "/v1/rollouts/"+id, h.admin, map[string]any{"status": st})
			}
			if r.status != c.last {
				t.Fatalf("got %d, want %d: %s", r.status, c.last, r.body)
			}
		})
	}
	t.Run("percentage bounds", func(t *testing.T) {
		id := newRollout()
		if r := h.do("PATCH", "/v1/rollouts/"+id, h.admin, map[string]any{"percentage": -1}); r.status != 400 {
			t.Fatalf("got %d", r.status)
		}
		if got := h.must(200, h.do("PATCH", "/v1/rollouts/"+id, h.admin, map[string]any{"percentage": 55.5})); got["percentage"].(float64) != 55.5 {
			t.Fatalf("got %v", got)
		}
	})
	t.Run("release of another channel", func(t *testing.T) {
		r := h.do("POST", "/v1/products/"+prod+"/rollouts", h.admin, map[string]any{"channel": "beta", "release_id": rel, "percentage": 10})
		if r.status != 400 {
			t.Fatalf("got %d", r.status)
		}
	})
}

func TestAPI_BlockedVersionNextSnapshot(t *testing.T) {
	h := newHarness(t)
	tenant := h.tenant("a")
	tok := h.tenantToken(tenant)
	prod := h.product("p", "open")
	h.release(prod, "stable", "1.0.0", []byte("a"))
	h.release(prod, "stable", "1.1.0", []byte("b"))
	h.snapshot(tenant)
	q := "/v1/updates/check?product=" + prod + "&channel=stable&platform=linux&arch=x64&version=0.9.0"
	version := func() string {
		d := h.must(200, h.do("GET", q, tok, nil))
		return d["release"].(map[string]any)["version"].(string)
	}
	if got := version(); got != "1.1.0" {
		t.Fatalf("got %s", got)
	}
	b := h.must(201, h.do("POST", "/v1/tenants/"+tenant+"/blocked-versions", h.admin, map[string]any{"product_id": prod, "blocked_version": "1.1.0", "reason": "crashes"}))
	if got := version(); got != "1.1.0" {
		t.Fatalf("blocking took effect before the next snapshot: %s", got)
	}
	h.snapshot(tenant)
	if got := version(); got != "1.0.0" {
		t.Fatalf("after blocking 1.1.0: got %s, want 1.0.0", got)
	}
	h.must(204, h.do("DELETE", "/v1/tenants/"+tenant+"/blocked-versions/"+b["blocklist_id"].(string), h.admin, nil))
	h.snapshot(tenant)
	if got := version(); got != "1.1.0" {
		t.Fatalf("after unblocking: got %s", got)
	}
}

func tarNames(t *testing.T, b []byte) []string {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(b))
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
}

func TestAPI_BundleExport(t *testing.T) {
	h := newHarness(t)
	h.enableTUF()
	tenant := h.tenant("a")
	prod := h.product("p", "open")
	one, two, beta := []byte("one"), []byte("two"), []byte("beta")
	h.release(prod, "stable", "1.0.0", one)
	h.snapshot(tenant)
	h.release(prod, "stable", "1.1.0", two)
	h.release(prod, "beta", "2.0.0-rc.1", beta)
	mir, _, _ := h.mirror(tenant, "stable")
	h.snapshot(tenant)

	// export lists a TUF bundle's acknowledgement and artifact targets
	// (as art names them), after checking the manifest comes first.
	export := func(o controlplane.BundleOptions) []string {
		var buf bytes.Buffer
		o.TenantID = tenant
		if _, err := h.app.ExportBundle(h.operator(), o, &buf); err != nil {
			t.Fatal(err)
		}
		names := tarNames(t, buf.Bytes())
		if len(names) == 0 || names[0] != "tuf-bundle.json" {
			t.Fatalf("bundle does not start with the manifest: %v", names)
		}
		var rest []string
		for _, n := range names[1:] {
			switch {
			case n == "ack.dsse.json":
				rest = append(rest, n)
			case strings.HasPrefix(n, "targets/") && !strings.HasSuffix(n, ".json"):
				base := n[strings.LastIndexByte(n, '/')+1:]
				rest = append(rest, "artifacts/"+base[:strings.IndexByte(base, '.')])
			}
		}
		sort.Strings(rest)
		return rest
	}
	art := func(b ...[]byte) []string {
		var out []string
		for _, x := range b {
			out = append(out, "artifacts/"+sha(x))
		}
		sort.Strings(out)
		return out
	}
	cases := []struct {
		name string
		o    controlplane.BundleOptions
		want []string
	}{
		{"full", controlplane.BundleOptions{}, art(one, two, beta)},
		{"since 1", controlplane.BundleOptions{Since: 1}, art(two, beta)},
		// A bundle for one mirror carries the vendor's acknowledgement of
		// its return files too.
		{"mirror channels", controlplane.BundleOptions{MirrorID: mir}, append([]string{"ack.dsse.json"}, art(one, two)...)},
		{"since and mirror", controlplane.BundleOptions{Since: 1, MirrorID: mir}, append([]string{"ack.dsse.json"}, art(two)...)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := export(c.o); strings.Join(got, " ") != strings.Join(c.want, " ") {
				t.Fatalf("got %v, want %v", got, c.want)
			}
		})
	}
	t.Run("schema 1 is refused", func(t *testing.T) {
		var buf bytes.Buffer
		_, err := h.app.ExportBundle(h.operator(), controlplane.BundleOptions{TenantID: tenant, Format: controlplane.BundleDSSE}, &buf)
		if catalog.ErrorCode(err) != catalog.EINVALID || !strings.Contains(err.Error(), "mirror init --root-file") || buf.Len() != 0 {
			t.Fatalf("format dsse: %v, %d bytes written; want invalid naming mirror init --root-file, nothing written", err, buf.Len())
		}
	})
	t.Run("over HTTP", func(t *testing.T) {
		r := h.do("GET", "/v1/tenants/"+tenant+"/bundle?since=1", h.admin, nil)
		if names := tarNames(t, r.body); r.status != 200 || len(names) == 0 || names[0] != "tuf-bundle.json" {
			t.Fatalf("got %d %v", r.status, names)
		}
		if r := h.do("GET", "/v1/tenants/"+tenant+"/bundle?format=dsse", h.admin, nil); r.status != 400 || !strings.Contains(string(r.body), "schema 1") {
			t.Fatalf("format=dsse: got %d %s, want 400 naming schema 1", r.status, r.body)
		}
	})
}
