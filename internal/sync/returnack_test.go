package sync_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/bundle"
	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/fleet"
	"github.com/outpost/outpost/internal/mirror/state"
	"github.com/outpost/outpost/internal/returnfile"
	"github.com/outpost/outpost/internal/sync"
	"github.com/outpost/outpost/internal/sync/synctest"
	"github.com/outpost/outpost/internal/tuf"
	"github.com/outpost/outpost/internal/tuf/tuftest"
)

func TestSyncer_ImportAck(t *testing.T) {
	ctx := context.Background()
	mid := catalog.NewID(catalog.PrefixMirror)
	v := synctest.NewTUFVendor(t)
	rogue := tuftest.Signer(t, 200)
	st, c := openMirror(t)
	s := sync.New(nil, st, c, sync.Config{TUF: &sync.TUFTrust{TenantID: v.TenantID, Root: v.TUF.RootData}, MirrorID: mid})
	fs, err := st.FleetStore()
	if err != nil {
		t.Fatal(err)
	}
	agg, err := fleet.NewAggregator(ctx, fs, fleet.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var evs []fleet.Event
	for i := range 5 {
		evs = append(evs, fleet.Event{Type: fleet.TypeCheck, ClientID: fmt.Sprintf("client-%04d", i), Time: time.Now().UTC()})
	}
	if _, _, err := agg.Ingest(ctx, evs); err != nil {
		t.Fatal(err)
	}
	meta, err := fs.Meta(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// bundleWith publishes a new version and bundles it, with ack, for
	// the version the mirror holds.
	seq := int64(0)
	bundleWith := func(t *testing.T, ack []byte) []byte {
		t.Helper()
		seq++
		v.Publish(v.Manifest(seq, []synctest.Art{{ID: "art_a", Data: []byte(fmt.Sprint("version ", seq))}}))
		if ack == nil {
			return v.Bundle(t, r0(t, st))
		}
		return v.BundleAck(t, r0(t, st), ack)
	}
	if _, err := s.Import(ctx, bytes.NewReader(bundleWith(t, nil)), false); err != nil {
		t.Fatal(err)
	}
	hash, ok, err := st.AuditHashAt(1)
	if err != nil || !ok {
		t.Fatalf("AuditHashAt(1) = %q, %v, %v", hash, ok, err)
	}
	good := returnfile.Ack{TenantID: v.TenantID, MirrorID: mid, AuditHead: returnfile.AuditHead{Seq: 1, Hash: hash},
		Fleet: []returnfile.FleetCursor{{StoreID: "another-store", Through: 5}, {StoreID: meta.StoreID, Through: 3}}}
	sign := func(t *testing.T, a returnfile.Ack, by tuf.Signer) []byte {
		t.Helper()
		env, err := returnfile.SignAckBy(ctx, a, []returnfile.Signer{by})
		if err != nil {
			t.Fatal(err)
		}
		return env
	}
	acked := func(t *testing.T) [2]int64 {
		t.Helper()
		h, err := st.AuditAck()
		if err != nil {
			t.Fatal(err)
		}
		m, err := fs.Meta(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return [2]int64{h.Seq, int64(m.Acked)}
	}

	other := good
	other.MirrorID = catalog.NewID(catalog.PrefixMirror)
	otherTenant := good
	otherTenant.TenantID = catalog.NewID(catalog.PrefixTenant)
	forged := []struct {
		name string
		env  []byte
		want string
	}{
		{"signed by an untrusted key", sign(t, good, rogue), "trusted signatures"},
		{"for another mirror", sign(t, other, v.TUF.TS), "for mirror"},
		{"for another tenant", sign(t, otherTenant, v.TUF.TS), "for tenant"},
		{"another envelope passed as an acknowledgement", []byte(`{"payloadType":"application/vnd.outpost.snapshot+json","payload":"e30=","signatures":[]}`), "payload type"},
		{"an edited payload", bytes.Replace(sign(t, good, v.TUF.TS), []byte(`"payload":"`), []byte(`"payload":"AAAA`), 1), "acknowledgement refused"},
	}
	for _, tc := range forged {
		t.Run("refused: "+tc.name, func(t *testing.T) {
			held := r0(t, st)
			_, err := s.Import(ctx, bytes.NewReader(bundleWith(t, tc.env)), false)
			if !errors.Is(err, bundle.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Import error = %v, want an invalid bundle naming %q", err, tc.want)
			}
			if got := acked(t); got != [2]int64{0, 0} {
				t.Errorf("acknowledged = %v after a refused bundle, want none", got)
			}
			if got := r0(t, st); got != held {
				t.Errorf("held sequence = %d after a refused bundle, want %d", got, held)
			}
		})
	}
	t.Run("dry run records nothing", func(t *testing.T) {
		rep, err := s.Import(ctx, bytes.NewReader(bundleWith(t, sign(t, good, v.TUF.TS))), true)
		if err != nil || rep.Acknowledged != nil {
			t.Fatalf("dry run = %+v, %v", rep, err)
		}
		if got := acked(t); got != [2]int64{0, 0} {
			t.Errorf("acknowledged = %v after a dry run, want none", got)
		}
	})
	t.Run("a genuine acknowledgement is recorded", func(t *testing.T) {
		rep, err := s.Import(ctx, bytes.NewReader(bundleWith(t, sign(t, good, v.TUF.TS))), false)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Acknowledged == nil || rep.Acknowledged.AuditSeq != 1 || rep.Acknowledged.FleetThrough != 3 {
			t.Fatalf("Acknowledged = %+v, want audit 1, fleet 3", rep.Acknowledged)
		}
		if got, want := acked(t), [2]int64{1, 3}; got != want {
			t.Errorf("acknowledged = %v, want %v", got, want)
		}
		// The audit retention counts it too (air-gapped mirror.db bounded).
		ast, err := st.AuditState(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ast.Acked != 1 {
			t.Errorf("retention's acknowledged head = %d, want 1", ast.Acked)
		}
	})
	t.Run("an older acknowledgement moves nothing back", func(t *testing.T) {
		old := good
		old.AuditHead, old.Fleet = returnfile.AuditHead{}, []returnfile.FleetCursor{{StoreID: meta.StoreID, Through: 1}}
		if _, err := s.Import(ctx, bytes.NewReader(bundleWith(t, sign(t, old, v.TUF.TS))), false); err != nil {
			t.Fatal(err)
		}
		if got, want := acked(t), [2]int64{1, 3}; got != want {
			t.Errorf("acknowledged = %v, want %v", got, want)
		}
	})
	t.Run("a head that is not this mirror's chain is not recorded", func(t *testing.T) {
		alien := good
		alien.AuditHead = returnfile.AuditHead{Seq: 2, Hash: strings.Repeat("ab", 32)}
		alien.Fleet = []returnfile.FleetCursor{{StoreID: meta.StoreID, Through: 99}}
		rep, err := s.Import(ctx, bytes.NewReader(bundleWith(t, sign(t, alien, v.TUF.TS))), false)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Acknowledged == nil || len(rep.Acknowledged.Ignored) != 2 {
			t.Fatalf("Acknowledged = %+v, want both parts ignored", rep.Acknowledged)
		}
		if got, want := acked(t), [2]int64{1, 3}; got != want {
			t.Errorf("acknowledged = %v, want %v", got, want)
		}
	})
}

// r0 is the held snapshot's sequence.
func r0(t *testing.T, st *state.State) int64 {
	t.Helper()
	h, err := st.Current()
	if err != nil {
		t.Fatal(err)
	}
	if h == nil {
		return 0
	}
	return h.Sequence
}

func TestTUFImport_Ack(t *testing.T) {
	ctx := context.Background()
	r := newTUFRig(t, false)
	r.s = r.syncer(nil)
	mid := catalog.NewID(catalog.PrefixMirror)
	if err := r.st.SetMirrorID(mid); err != nil {
		t.Fatal(err)
	}
	if _, err := r.s.Import(ctx, bytes.NewReader(tufBundle(t, r.v, 0)), false); err != nil {
		t.Fatalf("full import: %v", err)
	}
	seq1 := snapV(r.v)
	hash, ok, err := r.st.AuditHashAt(1)
	if err != nil || !ok {
		t.Fatalf("AuditHashAt(1) = %q, %v, %v", hash, ok, err)
	}
	ack := returnfile.Ack{TenantID: r.v.TenantID, MirrorID: mid, AuditHead: returnfile.AuditHead{Seq: 1, Hash: hash}}
	sign := func(t *testing.T, by tuf.Signer) []byte {
		t.Helper()
		env, err := returnfile.SignAckBy(ctx, ack, []returnfile.Signer{by})
		if err != nil {
			t.Fatal(err)
		}
		return env
	}
	r.release(t, 1)
	t.Run("signed by a key that is not the timestamp role's is refused", func(t *testing.T) {
		_, err := r.s.Import(ctx, bytes.NewReader(tufBundleAck(t, r.v, seq1, sign(t, r.v.Snap))), false)
		if !errors.Is(err, bundle.ErrInvalid) || !strings.Contains(err.Error(), "trusted signatures") {
			t.Fatalf("Import error = %v, want the acknowledgement refused", err)
		}
		if got := r0(t, r.st); got != seq1 {
			t.Errorf("held %d after a refused bundle, want %d", got, seq1)
		}
		if h, _ := r.st.AuditAck(); h.Seq != 0 {
			t.Errorf("audit acknowledgement %d after a refused bundle, want 0", h.Seq)
		}
	})
	t.Run("signed by the timestamp key is recorded", func(t *testing.T) {
		rep, err := r.s.Import(ctx, bytes.NewReader(tufBundleAck(t, r.v, seq1, sign(t, r.v.TS))), false)
		if err != nil {
			t.Fatal(err)
		}
		if !rep.Changed || rep.Acknowledged == nil || rep.Acknowledged.AuditSeq != 1 {
			t.Fatalf("report = %+v, want a new version and the audit head acknowledged", rep)
		}
		if h, _ := r.st.AuditAck(); h.Seq != 1 {
			t.Errorf("audit acknowledgement = %d, want 1", h.Seq)
		}
	})
}
