package controlplaned_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/audit"
	"github.com/outpost/outpost/internal/cache"
	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/controlplaned"
	"github.com/outpost/outpost/internal/license"
	"github.com/outpost/outpost/internal/mirror/state"
	"github.com/outpost/outpost/internal/store"
	"github.com/outpost/outpost/internal/sync"
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

// countingTransport counts the request body bytes of audit uploads.
type countingTransport struct {
	n atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodPost && r.URL.Path == "/v1/mirror/audit" && r.Body != nil {
		r.Body = &countingBody{ReadCloser: r.Body, n: &c.n}
	}
	return http.DefaultTransport.RoundTrip(r)
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// TestMirrorAudit_UploadsOnlyAfterTheHead runs a mirror's real syncer and
// ledger against a serving control plane: after the first upload, the
// mirror asks for the acknowledged head and sends only the events after
// it, so an upload's size follows what is new, not the whole ever-growing
// chain (which would reach the size cap and fail forever).
func TestMirrorAudit_UploadsOnlyAfterTheHead(t *testing.T) {
	dir := t.TempDir()
	cp := serveInstance(t, boltStore(t, dir), dir, nil, "", controlplaned.Config{})
	ctx := context.Background()
	admin := cp.as(cp.admin)
	tn, err := admin.CreateTenant(ctx, controlplane.TenantInput{Name: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	pub, key, _ := ed25519.GenerateKey(nil)
	m, err := admin.CreateMirror(ctx, tn.TenantID, controlplane.MirrorInput{Name: "site", AllowedChannels: []string{"stable"}, PublicKey: base64.StdEncoding.EncodeToString(pub)})
	if err != nil {
		t.Fatal(err)
	}
	mdir := t.TempDir()
	st, err := state.Open(filepath.Join(mdir, "mirror.db"), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c, err := cache.Open(mdir)
	if err != nil {
		t.Fatal(err)
	}
	led, err := st.Ledger(m.MirrorID, key, tn.TenantID)
	if err != nil {
		t.Fatal(err)
	}
	appendEvents := func(n int) {
		t.Helper()
		for i := range n {
			if err := st.AppendAudit(ctx, &catalog.AuditEvent{
				EventID: catalog.NewID(catalog.PrefixEvent), TenantID: tn.TenantID, ActorType: catalog.ActorMirror, ActorID: m.MirrorID,
				EventType: "lease.issued", Payload: json.RawMessage(fmt.Sprintf(`{"subject_id":"host-%d"}`, i)), CreatedAt: time.Now().UTC(),
			}); err != nil {
				t.Fatal(err)
			}
		}
	}
	counter := &countingTransport{}
	src, err := sync.NewControlPlane(cp.base, m.Credential, &http.Client{Transport: counter})
	if err != nil {
		t.Fatal(err)
	}
	s := sync.New(src, st, c, sync.Config{AuditExport: led.ExportAudit, AuditExportAfter: led.ExportAuditAfter})
	upload := func() (sync.AuditIngest, int64) {
		t.Helper()
		before := counter.n.Load()
		res, err := s.UploadAudit(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return res, counter.n.Load() - before
	}

	appendEvents(500)
	first, size1 := upload()
	if first.Ingested != 500 {
		t.Fatalf("first upload = %+v, want 500 ingested", first)
	}
	appendEvents(2)
	second, size2 := upload()
	if second.Received != 2 || second.Ingested != 2 {
		t.Errorf("second upload = %+v, want the 2 new events", second)
	}
	if size2*50 > size1 {
		t.Errorf("second upload sent %d bytes for 2 new events, the first %d for 500: the whole chain was sent again", size2, size1)
	}
	third, size3 := upload()
	if third.Received != 0 || third.Ingested != 0 || size3*50 > size1 {
		t.Errorf("upload with nothing new = %+v, %d bytes; want nothing sent but the trailer", third, size3)
	}
	t.Logf("upload sizes: 500 events %d bytes, 2 new events %d bytes, nothing new %d bytes", size1, size2, size3)
}
