package license

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/audit"
	"github.com/outpost/outpost/internal/catalog"
)

// auditChain is a mirror's audit chain of n events by mirror, as its
// ledger keeps it.
func auditChain(mirror string, n int, salt string) []*catalog.AuditEvent {
	var out []*catalog.AuditEvent
	var prev *catalog.AuditEvent
	for i := range n {
		ev := &catalog.AuditEvent{
			EventID: fmt.Sprintf("evt_%s%022d", salt, i), TenantID: tenantA, ActorType: catalog.ActorMirror, ActorID: mirror,
			EventType: "lease.issued", Payload: json.RawMessage(`{"subject_id":"s"}`), CreatedAt: t0.Add(time.Duration(i) * time.Second),
		}
		audit.Seal(prev, ev)
		out = append(out, ev)
		prev = ev
	}
	return out
}

// writeExport writes the events of chain after seq after, then a trailer
// for the whole chain naming trailerMirror, signed with key.
func writeExport(t testing.TB, chain []*catalog.AuditEvent, after int64, trailerMirror string, key ed25519.PrivateKey) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	head := ""
	for _, ev := range chain {
		head = ev.Hash
		if ev.Seq > after {
			if err := enc.Encode(ev); err != nil {
				t.Fatal(err)
			}
		}
	}
	n := int64(len(chain))
	if err := enc.Encode(AuditTrailer{MirrorID: trailerMirror, HeadHash: head, Count: n, Sig: ed25519.Sign(key, AuditSignedBytes(trailerMirror, head, n))}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func headOf(chain []*catalog.AuditEvent, seq int64) catalog.AuditHead {
	if seq == 0 {
		return catalog.AuditHead{}
	}
	return catalog.AuditHead{Seq: seq, Hash: chain[seq-1].Hash}
}

// TestReadAuditExportFrom_Refusals mounts the attacks on a mirror audit
// upload: another mirror's export, a forged signature, a chain that does
// not extend the accepted head (a clone), a truncated or oversized
// export. A refused export emits nothing after the fork and returns no
// result; an honest one emits exactly the events after the accepted head.
func TestReadAuditExportFrom_Refusals(t *testing.T) {
	key := testKey(41)
	pub := key.Public().(ed25519.PublicKey)
	chain := auditChain(mirror1, 6, "a")
	clone := append(append([]*catalog.AuditEvent(nil), chain[:3]...), auditChain(mirror1, 6, "b")[3:]...)
	// Re-seal the clone's tail after the shared first three events.
	for i := 3; i < len(clone); i++ {
		ev := *clone[i]
		audit.Seal(clone[i-1], &ev)
		clone[i] = &ev
	}
	other := auditChain(mirror2, 6, "a")
	tampered := writeExport(t, chain, 0, mirror1, key)
	tampered = bytes.Replace(tampered, []byte(`"subject_id":"s"`), []byte(`"subject_id":"x"`), 1)

	cases := []struct {
		name      string
		export    []byte
		from      catalog.AuditHead
		max       int64
		wantErr   string // "" for an accepted export
		wantFork  bool
		wantSeqs  []int64 // events emitted (accepted exports)
		wantCount int64
	}{
		{name: "whole chain, nothing accepted yet", export: writeExport(t, chain, 0, mirror1, key), wantSeqs: []int64{1, 2, 3, 4, 5, 6}, wantCount: 6},
		{name: "only the events after the accepted head", export: writeExport(t, chain, 4, mirror1, key), from: headOf(chain, 4), wantSeqs: []int64{5, 6}, wantCount: 6},
		{name: "an export from before the head emits only the new events", export: writeExport(t, chain, 1, mirror1, key), from: headOf(chain, 4), wantSeqs: []int64{5, 6}, wantCount: 6},
		{name: "nothing new: a trailer alone", export: writeExport(t, chain, 6, mirror1, key), from: headOf(chain, 6), wantCount: 6},
		{name: "the trailer names another mirror", export: writeExport(t, chain, 0, mirror2, key), wantErr: "not the authenticated mirror"},
		{name: "the events are another mirror's", export: writeExport(t, other, 0, mirror1, key), wantErr: "is not by mirror"},
		{name: "signed with another key", export: writeExport(t, chain, 0, mirror1, testKey(42)), wantErr: "signature does not verify"},
		{name: "a changed event breaks the chain", export: tampered, wantErr: "audit"},
		{name: "truncated: the trailer is gone", export: bytes.SplitAfterN(writeExport(t, chain, 0, mirror1, key), []byte("\n"), 3)[0], wantErr: "no signed trailer"},
		{name: "truncated: events missing before the trailer", export: append(bytes.SplitAfterN(writeExport(t, chain, 0, mirror1, key), []byte("\n"), 2)[0], writeExport(t, chain, 6, mirror1, key)...), wantErr: "truncated"},
		{name: "over the size cap", export: writeExport(t, chain, 0, mirror1, key), max: 200, wantErr: "larger than 200 bytes"},
		{name: "a gap after the accepted head", export: writeExport(t, chain, 5, mirror1, key), from: headOf(chain, 3), wantErr: "starts at seq 6"},
		{name: "a clone diverging after the head", export: writeExport(t, clone, 3, mirror1, key), from: headOf(chain, 4), wantFork: true},
		{name: "a clone's chain from the start", export: writeExport(t, clone, 0, mirror1, key), from: headOf(chain, 5), wantFork: true},
		{name: "a restored copy, shorter than the head", export: writeExport(t, chain[:3], 3, mirror1, key), from: headOf(chain, 5), wantFork: true},
		{name: "a clone at the accepted length", export: writeExport(t, clone[:4], 4, mirror1, key), from: headOf(chain, 4), wantFork: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			max := tc.max
			if max == 0 {
				max = 1 << 20
			}
			var got []int64
			x, err := ReadAuditExportFrom(bytes.NewReader(tc.export), pub, mirror1, tc.from, max, func(ev *catalog.AuditEvent) error {
				got = append(got, ev.Seq)
				return nil
			})
			var fork *AuditForkError
			switch {
			case tc.wantFork:
				if !errors.As(err, &fork) || !errors.Is(err, ErrAuditExport) {
					t.Fatalf("err = %v, want an *AuditForkError wrapping ErrAuditExport", err)
				}
				if fork.Accepted != tc.from {
					t.Errorf("fork.Accepted = %+v, want %+v", fork.Accepted, tc.from)
				}
				for _, s := range got {
					if s > tc.from.Seq && s <= int64(len(chain)) && clone[s-1].Hash != chain[s-1].Hash {
						t.Errorf("emitted the clone's event %d", s)
					}
				}
				if x != nil {
					t.Errorf("a forked export returned %+v", x)
				}
			case tc.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one saying %q", err, tc.wantErr)
				}
				if !errors.Is(err, ErrAuditExport) {
					t.Errorf("err = %v, want it to wrap ErrAuditExport", err)
				}
				if errors.As(err, &fork) {
					t.Errorf("err = %v is a fork; want a plain refusal", err)
				}
			default:
				if err != nil {
					t.Fatalf("err = %v, want the export accepted", err)
				}
				if fmt.Sprint(got) != fmt.Sprint(tc.wantSeqs) && !(len(got) == 0 && len(tc.wantSeqs) == 0) {
					t.Errorf("emitted seqs %v, want %v", got, tc.wantSeqs)
				}
				if x.Count != tc.wantCount || x.MirrorID != mirror1 || x.HeadHash != chain[len(chain)-1].Hash {
					t.Errorf("result = %+v, want count %d, mirror %s and the chain's head", x, tc.wantCount, mirror1)
				}
			}
		})
	}
}

// exportStream generates an export of n events as a stream, never holding
// more than one event: what a mirror with a long chain uploads.
func exportStream(mirror string, n int, key ed25519.PrivateKey) io.Reader {
	pr, pw := io.Pipe()
	go func() {
		enc := json.NewEncoder(pw)
		var prev *catalog.AuditEvent
		for i := range n {
			ev := &catalog.AuditEvent{
				EventID: fmt.Sprintf("evt_%026d", i), TenantID: tenantA, ActorType: catalog.ActorMirror, ActorID: mirror,
				EventType: "lease.issued", Payload: json.RawMessage(`{"subject_id":"` + strings.Repeat("s", 200) + `"}`), CreatedAt: t0,
			}
			audit.Seal(prev, ev)
			if err := enc.Encode(ev); err != nil {
				pw.CloseWithError(err)
				return
			}
			prev = ev
		}
		c := int64(n)
		pw.CloseWithError(enc.Encode(AuditTrailer{MirrorID: mirror, HeadHash: prev.Hash, Count: c, Sig: ed25519.Sign(key, AuditSignedBytes(mirror, prev.Hash, c))}))
	}()
	return pr
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// TestReadAuditExportFrom_BoundedMemory streams a 40 MiB export through
// the verifier: the heap in use stays a small fraction of the export (a
// verifier that buffered the export, or its events, would hold it all).
func TestReadAuditExportFrom_BoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("streams a 40 MiB export")
	}
	key := testKey(43)
	const events = 70_000 // about 600 bytes a line: 40 MiB
	src := &countingReader{r: exportStream(mirror1, events, key)}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	var peak uint64
	emitted := 0
	x, err := ReadAuditExportFrom(src, key.Public().(ed25519.PublicKey), mirror1, catalog.AuditHead{}, 256<<20, func(ev *catalog.AuditEvent) error {
		emitted++
		if emitted%5000 == 0 {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if x.Count != events || emitted != events {
		t.Fatalf("count %d, emitted %d, want %d", x.Count, emitted, events)
	}
	grew := int64(peak) - int64(base)
	t.Logf("export %d MiB, heap grew at most %d KiB over %d KiB", src.n>>20, grew>>10, base>>10)
	if src.n < 32<<20 {
		t.Fatalf("the export is %d bytes; the test needs one far larger than the bound", src.n)
	}
	if limit := src.n / 4; grew > limit {
		t.Errorf("heap grew %d bytes while verifying a %d byte export: more than a quarter of it, so the export is buffered", grew, src.n)
	}
}

// BenchmarkReadAuditExportFrom verifies a 10,000-event export per
// iteration (bytes/op and allocs show what one upload costs).
func BenchmarkReadAuditExportFrom(b *testing.B) {
	key := testKey(44)
	chain := auditChain(mirror1, 10_000, "c")
	export := writeExport(b, chain, 0, mirror1, key)
	pub := key.Public().(ed25519.PublicKey)
	b.SetBytes(int64(len(export)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ReadAuditExportFrom(bytes.NewReader(export), pub, mirror1, catalog.AuditHead{}, 256<<20, func(*catalog.AuditEvent) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
}
