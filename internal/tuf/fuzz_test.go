package tuf

import (
	"bytes"
	"strings"
	"testing"

	"github.com/outpost/outpost/internal/snapshot/snapshottest"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// FuzzFastParse feeds hostile bytes to the fast targets parser: it must
// never panic, and whatever it accepts must be signed canonical JSON that
// go-tuf parses to the same targets.
func FuzzFastParse(f *testing.F) {
	fx := newFixture(f, snapshottest.TenantID, ProductOptions{PerBin: 4})
	for _, x := range fx.build(view(1, 12, 1)) {
		if strings.Contains(x.Path, ".b-") {
			f.Add(x.Data)
		}
	}
	f.Add([]byte(`{"signatures":[],"signed":{"_type":"targets"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, ok := fastParse(data)
		if !ok {
			return
		}
		g, err := metadata.Targets().FromBytes(data)
		if err != nil {
			return // go-tuf is stricter about some envelopes; the fast path then refuses at verification
		}
		canon, err := canonical(g)
		if err != nil {
			return
		}
		if !bytes.Equal(canon, r.canon) {
			t.Fatalf("fast canonical differs from go-tuf's:\nfast  %.200s\ngotuf %.200s", r.canon, canon)
		}
		if len(g.Signed.Targets) != len(r.t.Signed.Targets) {
			t.Fatalf("targets: fast %d, go-tuf %d", len(r.t.Signed.Targets), len(g.Signed.Targets))
		}
		// The compact form holds what go-tuf's does.
		rc, c, ok := fastParseCompact(data)
		if !ok || !bytes.Equal(rc.canon, r.canon) || len(c) != len(g.Signed.Targets) {
			t.Fatalf("fastParseCompact: ok %v, %d targets, want %d", ok, len(c), len(g.Signed.Targets))
		}
		for p, tf := range g.Signed.Targets {
			ct, ok := c[p]
			custom := ""
			if tf.Custom != nil {
				custom = string(*tf.Custom)
			}
			if !ok || ct.length != tf.Length || !bytes.Equal(ct.sum[:], tf.Hashes["sha256"]) || ct.custom != custom {
				t.Fatalf("target %s: compact %+v, go-tuf %d %x %s", p, ct, tf.Length, tf.Hashes["sha256"], custom)
			}
		}
	})
}

func TestIsCanonical(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{`{"a":"x","b":true,"c":null,"d":[1,-2,{}],"e":{"f":0}}`, true},
		{`{}`, true},
		{`{"b":1,"a":2}`, false},
		{`{"a":1,"a":2}`, false},
		{`{"a": 1}`, false},
		{`{"a":1.5}`, false},
		{`{"a":1e3}`, false},
		{`{"a":01}`, false},
		{`{"a":"\u003c"}`, false},
		{`{"a":"x"}x`, false},
		{`{"a":"x"`, false},
		{`[1,]`, false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			if got := isCanonical([]byte(tc.in)); got != tc.want {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}
