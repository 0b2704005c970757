package controlplane_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/audit"
	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/fleet"
	"github.com/outpost/outpost/internal/license"
	"github.com/outpost/outpost/internal/returnfile"
	"github.com/outpost/outpost/internal/store"
)

// chain is a mirror's audit chain, as its state keeps it.
type chain struct{ events []*catalog.AuditEvent }

func (c *chain) add(s *site, n int) {
	for range n {
		ev := &catalog.AuditEvent{
			EventID: catalog.NewID(catalog.PrefixEvent), TenantID: s.mirror.TenantID, ActorType: catalog.ActorMirror,
			ActorID: s.mirror.MirrorID, EventType: "lease.issued", Payload: json.RawMessage(`{}`), CreatedAt: time.Now().UTC(),
		}
		var prev *catalog.AuditEvent
		if len(c.events) > 0 {
			prev = c.events[len(c.events)-1]
		}
		audit.Seal(prev, ev)
		c.events = append(c.events, ev)
	}
}

// returnFile is what `mirror report export` writes: the chain after
// auditAfter and the site's fleet report, under one signed trailer.
func (s *site) returnFile(t *testing.T, c *chain, auditAfter int64, key ed25519.PrivateKey) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := returnfile.NewWriter(&b, returnfile.Header{MirrorID: s.mirror.MirrorID, TenantID: s.mirror.TenantID, CreatedAt: time.Now()}, key)
	if err != nil {
		t.Fatal(err)
	}
	pw, err := w.Part(returnfile.PartAudit)
	if err != nil {
		t.Fatal(err)
	}
	enc := json.NewEncoder(pw)
	head := ""
	for _, ev := range c.events {
		head = ev.Hash
		if ev.Seq > auditAfter {
			if err := enc.Encode(ev); err != nil {
				t.Fatal(err)
			}
		}
	}
	n := int64(len(c.events))
	tr := license.AuditTrailer{MirrorID: s.mirror.MirrorID, HeadHash: head, Count: n, Sig: ed25519.Sign(key, license.AuditSignedBytes(s.mirror.MirrorID, head, n))}
	if err := enc.Encode(&tr); err != nil {
		t.Fatal(err)
	}
	pw, err = w.Part(returnfile.PartFleet)
	if err != nil {
		t.Fatal(err)
	}
	id := fleet.ExportIdentity{MirrorID: s.mirror.MirrorID, TenantID: s.mirror.TenantID, Key: key}
	if _, err := s.agg.ExportReport(context.Background(), pw, id, time.Now().UTC()); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestImportReport_ReturnFileCarriesBothParts(t *testing.T) {
	a := newApp(t)
	op := operator()
	ten, err := a.CreateTenant(op, controlplane.TenantInput{Name: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	s := newSite(t, a, op, ten.TenantID)
	rel := catalog.NewID(catalog.PrefixRelease)
	var c chain
	c.add(s, 3)
	s.installs(t, rel, 8, 2, "E_DISK")
	first := s.returnFile(t, &c, 0, s.key)
	mirrorEvents := func(t *testing.T) int {
		t.Helper()
		evs, _, err := a.AuditEvents(op, store.AuditFilter{EventType: "mirror.lease.issued"}, store.Page{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		return len(evs)
	}
	check := func(t *testing.T, res *controlplane.ReportImport, err error, audit, events int, head int64) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		if res.Audit == nil {
			t.Fatalf("got %+v, want an audit part", res)
		}
		got := [3]int64{int64(res.Audit.Ingested), res.EventsAdded, res.Audit.Head.Seq}
		if want := [3]int64{int64(audit), int64(events), head}; got != want {
			t.Fatalf("audit ingested, events added, audit head = %v, want %v", got, want)
		}
	}

	refusals := []struct {
		name string
		file []byte
	}{
		{"an edited audit line", bytes.Replace(first, []byte(`lease.issued`), []byte(`lease.renewed`), 1)},
		{"an edited fleet line", bytes.Replace(first, []byte("E_DISK"), []byte("E_DISC"), 1)},
		{"signed by another key", func() []byte {
			_, other, _ := ed25519.GenerateKey(rand.Reader)
			return s.returnFile(t, &c, 0, other)
		}()},
		{"truncated", first[:len(first)-40]},
	}
	for _, tc := range refusals {
		t.Run("refused: "+tc.name, func(t *testing.T) {
			_, err := a.ImportReport(op, bytes.NewReader(tc.file))
			if got := catalog.ErrorCode(err); got != catalog.EINVALID {
				t.Fatalf("code = %q (%v), want invalid", got, err)
			}
			srcs, err := a.FleetSink().Sources(context.Background(), rel)
			if err != nil || len(srcs) != 0 || mirrorEvents(t) != 0 {
				t.Fatalf("after a refused file: %d sources (%v), %d mirror audit events, want none", len(srcs), err, mirrorEvents(t))
			}
		})
	}
	t.Run("first import ingests both parts", func(t *testing.T) {
		res, err := a.ImportReport(op, bytes.NewReader(first))
		check(t, res, err, 3, 10, 3)
		if got := mirrorEvents(t); got != 3 {
			t.Fatalf("mirror audit events = %d, want 3", got)
		}
	})
	t.Run("the same file again adds nothing", func(t *testing.T) {
		res, err := a.ImportReport(op, bytes.NewReader(first))
		check(t, res, err, 0, 0, 3)
	})
	var second []byte
	t.Run("the next file after the acknowledgement holds only what is new", func(t *testing.T) {
		if err := s.agg.Ack(context.Background(), 10); err != nil {
			t.Fatal(err)
		}
		c.add(s, 2)
		s.installs(t, rel, 1, 1, "E_DISK")
		second = s.returnFile(t, &c, 3, s.key)
		if len(second) >= len(first) {
			t.Errorf("second file %d bytes, want fewer than the first's %d", len(second), len(first))
		}
		res, err := a.ImportReport(op, bytes.NewReader(second))
		check(t, res, err, 2, 2, 5)
	})
	t.Run("the newer file again adds nothing", func(t *testing.T) {
		res, err := a.ImportReport(op, bytes.NewReader(second))
		check(t, res, err, 0, 0, 5)
	})
	t.Run("the older file after the newer is refused as a shorter chain", func(t *testing.T) {
		_, err := a.ImportReport(op, bytes.NewReader(first))
		if got := catalog.ErrorCode(err); got != catalog.ECONFLICT || !strings.Contains(err.Error(), "shorter than the accepted head") {
			t.Fatalf("code = %q (%v), want conflict naming the shorter chain", got, err)
		}
	})
	t.Run("mirror-audit import takes the return file too", func(t *testing.T) {
		res, err := a.ImportMirrorAudit(op, bytes.NewReader(second))
		if err != nil {
			t.Fatal(err)
		}
		if res.Ingested != 0 || res.Head.Seq != 5 {
			t.Fatalf("got %+v, want 0 ingested, head 5", res)
		}
	})
	t.Run("a forked chain is refused and ingests no fleet event", func(t *testing.T) {
		fork := chain{events: append([]*catalog.AuditEvent{}, c.events[:4]...)}
		fork.add(s, 2) // another event 5, then 6
		s.installs(t, rel, 1, 0, "")
		_, err := a.ImportReport(op, bytes.NewReader(s.returnFile(t, &fork, 3, s.key)))
		if got := catalog.ErrorCode(err); got != catalog.ECONFLICT {
			t.Fatalf("code = %q (%v), want conflict", got, err)
		}
		cur, err := a.FleetSink().Cursors(context.Background())
		if err != nil || len(cur) != 1 || cur[0].Through != 12 {
			t.Fatalf("cursors = %+v (%v), want through 12 still", cur, err)
		}
	})
}
