package controlplaned_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/audit"
	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/controlplaned"
	"github.com/outpost/outpost/internal/license"
	"github.com/outpost/outpost/internal/store"
)

// mirrorChain is a mirror's audit chain as its ledger keeps it.
type mirrorChain struct {
	mirror, tenant string
	events         []*catalog.AuditEvent
}

func (c *mirrorChain) add(n int) *mirrorChain {
	for range n {
		ev := &catalog.AuditEvent{
			EventID: catalog.NewID(catalog.PrefixEvent), TenantID: c.tenant, ActorType: catalog.ActorMirror, ActorID: c.mirror,
			EventType: "lease.issued", Payload: json.RawMessage(`{"subject_id":"s"}`), CreatedAt: time.Now().UTC(),
		}
		var prev *catalog.AuditEvent
		if len(c.events) > 0 {
			prev = c.events[len(c.events)-1]
		}
		audit.Seal(prev, ev)
		c.events = append(c.events, ev)
	}
	return c
}

// fork is a copy of the chain's first n events (a cloned data dir).
func (c *mirrorChain) fork(n int) *mirrorChain {
	return &mirrorChain{mirror: c.mirror, tenant: c.tenant, events: append([]*catalog.AuditEvent(nil), c.events[:n]...)}
}

// export is what `mirror audit upload` sends: the events after seq after
// and a trailer naming trailerMirror, signed with key.
func (c *mirrorChain) export(t *testing.T, after int64, trailerMirror string, key ed25519.PrivateKey) *bytes.Reader {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	head := ""
	for _, ev := range c.events {
		head = ev.Hash
		if ev.Seq > after {
			if err := enc.Encode(ev); err != nil {
				t.Fatal(err)
			}
		}
	}
	n := int64(len(c.events))
	if err := enc.Encode(license.AuditTrailer{MirrorID: trailerMirror, HeadHash: head, Count: n, Sig: ed25519.Sign(key, license.AuditSignedBytes(trailerMirror, head, n))}); err != nil {
		t.Fatal(err)
	}
	return bytes.NewReader(b.Bytes())
}

// TestMirrorAudit_UploadAttacks mounts the attacks on mirror audit
// uploads against a serving control plane: a mirror uploading another
// mirror's export (signed with its own key), a cloned data directory
// whose chain forks from the accepted head, a restored older copy, and a
// mirror re-uploading what was accepted. Refusals change nothing but the
// fork's own mirror.fork_detected event, which the API shows; uploads
// carry only the events after the acknowledged head.
func TestMirrorAudit_UploadAttacks(t *testing.T) {
	dir := t.TempDir()
	cp := serveInstance(t, boltStore(t, dir), dir, nil, "", controlplaned.Config{})
	ctx := context.Background()
	admin := cp.as(cp.admin)
	tn, err := admin.CreateTenant(ctx, controlplane.TenantInput{Name: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	register := func() (*controlplane.MirrorCreated, ed25519.PrivateKey) {
		t.Helper()
		pub, key, _ := ed25519.GenerateKey(nil)
		m, err := admin.CreateMirror(ctx, tn.TenantID, controlplane.MirrorInput{Name: "site", AllowedChannels: []string{"stable"}, PublicKey: base64.StdEncoding.EncodeToString(pub)})
		if err != nil {
			t.Fatal(err)
		}
		return m, key
	}
	m1, key1 := register()
	m2, _ := register()
	site := cp.as(m1.Credential)
	chain := (&mirrorChain{mirror: m1.MirrorID, tenant: tn.TenantID}).add(5)

	ingested := func() int {
		t.Helper()
		evs, _, err := admin.AuditEvents(ctx, store.AuditFilter{TenantID: tn.TenantID, EventType: "mirror.lease.issued"}, store.Page{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		return len(evs)
	}
	acked := func() catalog.AuditHead {
		t.Helper()
		h, err := site.AuditHead(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return *h
	}
	refused := func(t *testing.T, export *bytes.Reader, code string) {
		t.Helper()
		before, head, n := auditHead(t, admin), acked(), ingested()
		_, err := site.IngestAudit(ctx, export)
		wantCode(t, err, code)
		if got := acked(); got != head {
			t.Errorf("acknowledged head moved from %+v to %+v", head, got)
		}
		if got := ingested(); got != n {
			t.Errorf("ingested events %d -> %d", n, got)
		}
		if code != catalog.ECONFLICT {
			if got := auditHead(t, admin); got != before {
				t.Errorf("the control plane's audit chain moved on a refused upload")
			}
		}
	}

	res, err := site.IngestAudit(ctx, chain.export(t, 0, m1.MirrorID, key1))
	if err != nil {
		t.Fatal(err)
	}
	if res.Ingested != 5 || res.Head.Seq != 5 || acked().Hash != chain.events[4].Hash {
		t.Fatalf("first upload = %+v, head %+v; want 5 events and head 5", res, acked())
	}

	t.Run("re-uploading the accepted chain writes nothing", func(t *testing.T) {
		before := auditHead(t, admin)
		res, err := site.IngestAudit(ctx, chain.export(t, 0, m1.MirrorID, key1))
		if err != nil {
			t.Fatal(err)
		}
		if res.Received != 0 || res.Ingested != 0 {
			t.Errorf("duplicate upload = %+v, want nothing received or ingested", res)
		}
		if got := auditHead(t, admin); got != before {
			t.Errorf("a duplicate upload appended to the audit chain")
		}
	})
	t.Run("an upload after the acknowledged head carries only the new events", func(t *testing.T) {
		chain.add(2)
		export := chain.export(t, acked().Seq, m1.MirrorID, key1)
		res, err := site.IngestAudit(ctx, export)
		if err != nil {
			t.Fatal(err)
		}
		if res.Received != 2 || res.Ingested != 2 || res.Head.Seq != 7 || ingested() != 7 {
			t.Errorf("incremental upload = %+v, %d ingested; want 2 new events, head 7", res, ingested())
		}
	})
	t.Run("another mirror's id in the export", func(t *testing.T) {
		other := &mirrorChain{mirror: m2.MirrorID, tenant: tn.TenantID}
		other.add(9)
		refused(t, other.export(t, 0, m2.MirrorID, key1), catalog.EINVALID)
		chain.add(1)
		refused(t, chain.export(t, 7, m2.MirrorID, key1), catalog.EINVALID)
		chain.events = chain.events[:7]
	})
	t.Run("an export signed by another key", func(t *testing.T) {
		_, stranger, _ := ed25519.GenerateKey(nil)
		refused(t, chain.fork(7).add(1).export(t, 7, m1.MirrorID, stranger), catalog.EINVALID)
	})
	var forks int
	for _, tc := range []struct {
		name   string
		export func() *bytes.Reader
	}{
		{"a clone's chain diverging before the head", func() *bytes.Reader { return chain.fork(4).add(6).export(t, 7, m1.MirrorID, key1) }},
		{"a clone's chain from the start", func() *bytes.Reader { return chain.fork(6).add(3).export(t, 0, m1.MirrorID, key1) }},
		{"a restored older copy", func() *bytes.Reader { return chain.fork(3).export(t, 3, m1.MirrorID, key1) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			refused(t, tc.export(), catalog.ECONFLICT)
			forks++
			evs, _, err := cp.as(cp.admin).AuditEvents(ctx, store.AuditFilter{TenantID: tn.TenantID, EventType: controlplane.EventForkDetected}, store.Page{Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) != forks {
				t.Fatalf("%d %s events through the API, want %d", len(evs), controlplane.EventForkDetected, forks)
			}
			if p := string(evs[len(evs)-1].Payload); !bytes.Contains([]byte(p), []byte(m1.MirrorID)) {
				t.Errorf("fork event payload %s does not name mirror %s", p, m1.MirrorID)
			}
		})
	}
	t.Run("the honest mirror goes on after the refusals", func(t *testing.T) {
		chain.add(1)
		res, err := site.IngestAudit(ctx, chain.export(t, acked().Seq, m1.MirrorID, key1))
		if err != nil {
			t.Fatal(err)
		}
		if res.Ingested != 1 || res.Head.Seq != 8 {
			t.Errorf("upload = %+v, want the one new event and head 8", res)
		}
		if got, want := ingested(), 8; got != want {
			t.Errorf("ingested %d, want %d", got, want)
		}
	})
}
