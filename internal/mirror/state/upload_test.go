package state

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/license"
)

// TestReadAuditExportFrom_Uploads drives the control plane's streaming
// verification with exports of a real ledger: an upload after the
// accepted head carries only the new events; one of another mirror, or
// one that does not extend the accepted head, is refused.
func TestReadAuditExportFrom_Uploads(t *testing.T) {
	l, _ := exportFixture(t) // 4 events
	ctx := context.Background()
	export := func(after int64) []byte {
		var buf bytes.Buffer
		if err := l.ExportAuditAfter(ctx, &buf, after); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	var all []*catalog.AuditEvent
	collect := func(ev *catalog.AuditEvent) error { all = append(all, ev); return nil }
	x, err := license.ReadAuditExportFrom(bytes.NewReader(export(0)), l.PublicKey(), l.MirrorID(), catalog.AuditHead{}, 1<<20, collect)
	if err != nil || x.Count != 4 || len(all) != 4 {
		t.Fatalf("whole chain: %v, %d events emitted", err, len(all))
	}
	at2 := catalog.AuditHead{Seq: 2, Hash: all[1].Hash}
	cases := []struct {
		name     string
		body     []byte
		mirrorID string
		from     catalog.AuditHead
		emitted  int
		fork     bool
		fails    bool
	}{
		{name: "after the accepted head", body: export(2), mirrorID: l.MirrorID(), from: at2, emitted: 2},
		{name: "whole chain, old mirror", body: export(0), mirrorID: l.MirrorID(), from: at2, emitted: 2},
		{name: "nothing new", body: export(4), mirrorID: l.MirrorID(), from: catalog.AuditHead{Seq: 4, Hash: all[3].Hash}},
		{name: "another mirror's export", body: export(2), mirrorID: catalog.NewID(catalog.PrefixMirror), from: at2, fails: true},
		{name: "does not extend the accepted head", body: export(2), mirrorID: l.MirrorID(), from: catalog.AuditHead{Seq: 2, Hash: all[0].Hash}, fork: true},
		{name: "whole chain differing at the head", body: export(0), mirrorID: l.MirrorID(), from: catalog.AuditHead{Seq: 2, Hash: all[0].Hash}, fork: true},
		{name: "shorter than the accepted head", body: export(4), mirrorID: l.MirrorID(), from: catalog.AuditHead{Seq: 9, Hash: all[3].Hash}, fork: true},
		{name: "gap", body: export(3), mirrorID: l.MirrorID(), from: at2, fails: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := 0
			_, err := license.ReadAuditExportFrom(bytes.NewReader(tc.body), l.PublicKey(), tc.mirrorID, tc.from, 1<<20, func(*catalog.AuditEvent) error { n++; return nil })
			var fork *license.AuditForkError
			switch {
			case tc.fork && !errors.As(err, &fork):
				t.Fatalf("err = %v, want a fork", err)
			case tc.fails && (err == nil || errors.As(err, &fork)):
				t.Fatalf("err = %v, want a refusal that is not a fork", err)
			case !tc.fork && !tc.fails && err != nil:
				t.Fatalf("err = %v", err)
			case !tc.fork && !tc.fails && n != tc.emitted:
				t.Fatalf("emitted %d events, want %d", n, tc.emitted)
			}
		})
	}
}
