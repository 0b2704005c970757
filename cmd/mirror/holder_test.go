package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/outpost/outpost/internal/mirror"
)

// adminHead is the running mirror's audit chain head, read through its
// admin socket.
func adminHead(t *testing.T, dataDir string) string {
	t.Helper()
	d, ok := mirror.DialAdmin(context.Background(), filepath.Join(dataDir, mirror.AdminSocketName))
	if !ok {
		t.Fatal("the running mirror's admin socket does not answer")
	}
	h, err := d.AuditHead(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return h.Hash
}

// TestMirror_LeaseHolderBinding mounts the seat hijack against the real
// mirror: anyone who reaches it tries to renew (and so receive a signed
// token for) or release alice's lease without her holder secret, or take
// her seat as another subject. Every attempt is 403 or 409 and changes
// nothing (the audit chain head stays); alice renews with her secret; the
// site operator frees her seat with `mirror lease release` while the
// daemon serves, and only then does the seat go to someone else.
func TestMirror_LeaseHolderBinding(t *testing.T) {
	bin := buildOnce(t)
	cp := startControlPlane(t)
	lm := newLeasingMirror(t, bin, cp, 1, 1)
	d := startDaemon(t, bin, lm.config)
	waitReady(t, d.base)
	body := func(eid string) *strings.Reader {
		return strings.NewReader(fmt.Sprintf(`{"entitlement_id":%q,"subject_type":"machine"}`, eid))
	}
	status, b := call(t, "PUT", d.base+"/v1/leases/alice", "", body(lm.ent))
	if status != http.StatusOK {
		t.Fatalf("alice's first PUT = %d %s", status, b)
	}
	var alice mirror.LeaseResponse
	if err := json.Unmarshal(b, &alice); err != nil || alice.HolderSecret == "" {
		t.Fatalf("alice's lease %s carries no holder secret (%v)", b, err)
	}
	head := adminHead(t, lm.dir)

	for _, tc := range []struct{ name, secret string }{
		{"no secret", ""},
		{"a made-up secret", "olh_" + strings.Repeat("A", 43)},
		{"a malformed secret", "guess"},
		{"another lease's secret shape", alice.HolderSecret[:len(alice.HolderSecret)-1] + "x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if st, b := call(t, "PUT", d.base+"/v1/leases/alice", "", body(lm.ent), tc.secret); st != http.StatusForbidden {
				t.Errorf("renewing alice's lease = %d %s, want 403", st, b)
			} else if strings.Contains(string(b), `"token"`) {
				t.Errorf("a refused renewal carries a token: %s", b)
			}
			if st, b := call(t, "DELETE", d.base+"/v1/leases/alice?entitlement_id="+lm.ent, "", nil, tc.secret); st != http.StatusForbidden {
				t.Errorf("releasing alice's lease = %d %s, want 403", st, b)
			}
			if got := adminHead(t, lm.dir); got != head {
				t.Fatal("a refused request changed the mirror's audit chain")
			}
		})
	}
	t.Run("another subject cannot take the seat", func(t *testing.T) {
		if st, b := call(t, "PUT", d.base+"/v1/leases/mallory", "", body(lm.ent)); st != http.StatusConflict {
			t.Errorf("mallory's PUT with the seat taken = %d %s, want 409", st, b)
		}
		if got := adminHead(t, lm.dir); got != head {
			t.Fatal("a refused acquire changed the mirror's audit chain")
		}
	})
	t.Run("alice renews with her secret", func(t *testing.T) {
		st, b := call(t, "PUT", d.base+"/v1/leases/alice", "", body(lm.ent), alice.HolderSecret)
		var got mirror.LeaseResponse
		if st != http.StatusOK || json.Unmarshal(b, &got) != nil || got.LeaseID != alice.LeaseID || got.HolderSecret != "" {
			t.Fatalf("renewal = %d %s, want 200, the same lease and no new secret", st, b)
		}
	})
	t.Run("the operator force-releases while the daemon serves", func(t *testing.T) {
		_, errs, code := mirrorCmd(t, bin, "lease", "release", "nobody", "--entitlement", lm.ent, "--config", lm.config)
		if code == 0 || !strings.Contains(errs, "no active lease") {
			t.Errorf("releasing a subject without a lease: exit %d, stderr %q; want a failure naming it", code, errs)
		}
		out, errs, code := mirrorCmd(t, bin, "lease", "release", "alice", "--entitlement", lm.ent, "--config", lm.config)
		if code != 0 || !strings.Contains(out, "released the lease of alice") {
			t.Fatalf("lease release: exit %d, %q %q", code, out, errs)
		}
		if got := adminHead(t, lm.dir); got == head {
			t.Error("the forced release is not in the audit chain")
		}
		st, b := call(t, "PUT", d.base+"/v1/leases/mallory", "", body(lm.ent))
		if st != http.StatusOK {
			t.Fatalf("the freed seat: PUT mallory = %d %s, want 200", st, b)
		}
		if st, b := call(t, "PUT", d.base+"/v1/leases/alice", "", body(lm.ent), alice.HolderSecret); st != http.StatusConflict {
			t.Errorf("alice's old secret after the forced release, seat taken = %d %s, want 409", st, b)
		}
	})
	t.Run("the operator force-releases with the daemon stopped", func(t *testing.T) {
		d.cmd.Process.Signal(syscall.SIGTERM)
		d.cmd.Wait()
		out, errs, code := mirrorCmd(t, bin, "lease", "release", "mallory", "--entitlement", lm.ent, "--subject-type", "machine", "--config", lm.config, "--output", "json")
		var got mirror.ForceRelease
		if code != 0 || json.Unmarshal([]byte(out), &got) != nil || got.SubjectID != "mallory" {
			t.Fatalf("lease release: exit %d, %q %q", code, out, errs)
		}
		d := startDaemon(t, bin, lm.config)
		waitReady(t, d.base)
		if st, b := call(t, "PUT", d.base+"/v1/leases/bob", "", body(lm.ent)); st != http.StatusOK {
			t.Fatalf("the seat freed offline: PUT bob = %d %s, want 200", st, b)
		}
	})
}
