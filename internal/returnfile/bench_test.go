package returnfile_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/audit"
	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/fleet"
	"github.com/outpost/outpost/internal/license"
	"github.com/outpost/outpost/internal/returnfile"
)

// sampler keeps the peak heap in use, sampled every 50,000 lines written
// through it.
type sampler struct {
	w     io.Writer
	lines int
	peak  uint64
}

func (s *sampler) Write(p []byte) (int, error) {
	s.lines += bytes.Count(p, []byte{'\n'})
	if s.lines >= 50_000 {
		s.lines = 0
		s.sample()
	}
	return s.w.Write(p)
}

func (s *sampler) sample() {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s.peak = max(s.peak, ms.HeapInuse)
}

// BenchmarkReturnFile_Stream writes a return file (10,000 audit events,
// then a fleet report of n events) to disk, then splits and verifies it as
// the control plane's import does before ingesting (the envelope, then
// each part through its own reader, streaming), sampling the heap every
// 50,000 lines: peak-heap-MiB is the same for 100k and 1M events.
//
//	go test -run '^$' -bench ReturnFile_Stream -benchtime 1x ./internal/returnfile/
func BenchmarkReturnFile_Stream(b *testing.B) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	const mir = "mir_01jdk0000000000000000000aa"
	now := time.Now().UTC().Truncate(time.Second)
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("events=%d", n), func(b *testing.B) {
			dir := b.TempDir()
			path := filepath.Join(dir, "return.jsonl")
			s := &sampler{w: io.Discard}
			var size int64
			for b.Loop() {
				f, err := os.Create(path)
				if err != nil {
					b.Fatal(err)
				}
				w, err := returnfile.NewWriter(f, returnfile.Header{MirrorID: mir, CreatedAt: now}, priv)
				if err != nil {
					b.Fatal(err)
				}
				pw, _ := w.Part(returnfile.PartAudit)
				aw := &sampler{w: pw}
				enc := json.NewEncoder(aw)
				var prev *catalog.AuditEvent
				const auditN = 10_000
				for i := range auditN {
					ev := &catalog.AuditEvent{EventID: fmt.Sprintf("evt_%026d", i), ActorType: catalog.ActorMirror, ActorID: mir,
						EventType: "lease.issued", Payload: json.RawMessage(`{"subject_id":"host"}`), CreatedAt: now}
					audit.Seal(prev, ev)
					if err := enc.Encode(ev); err != nil {
						b.Fatal(err)
					}
					prev = ev
				}
				tr := license.AuditTrailer{MirrorID: mir, HeadHash: prev.Hash, Count: auditN, Sig: ed25519.Sign(priv, license.AuditSignedBytes(mir, prev.Hash, auditN))}
				if err := enc.Encode(&tr); err != nil {
					b.Fatal(err)
				}
				pw, _ = w.Part(returnfile.PartFleet)
				fw := &sampler{w: pw}
				rw, err := fleet.NewReportWriter(fw, fleet.ReportHeader{MirrorID: mir, StoreID: fleet.NewStoreID(), CreatedAt: now}, priv)
				if err != nil {
					b.Fatal(err)
				}
				r := fleet.Record{ReceivedAt: now, Event: fleet.Event{Type: fleet.TypeInstallFailed, ClientID: "client-0001",
					ReleaseID: "rel_01jdk0000000000000000000aa", FromVersion: "1.0.0", ToVersion: "1.1.0", ErrorCode: "E_DISK_FULL", DurationMS: 1234, Time: now.Add(-time.Minute)}}
				for i := 1; i <= n; i++ {
					r.Seq = uint64(i)
					if err := rw.WriteEvent(&r); err != nil {
						b.Fatal(err)
					}
				}
				if _, err := rw.Close(uint64(n)); err != nil {
					b.Fatal(err)
				}
				if _, err := w.Close(); err != nil {
					b.Fatal(err)
				}
				if err := f.Close(); err != nil {
					b.Fatal(err)
				}
				s.peak = max(s.peak, aw.peak, fw.peak)

				// Import's verification: split into two staged parts, then
				// each part through its own streaming reader.
				in, err := os.Open(path)
				if err != nil {
					b.Fatal(err)
				}
				fi, _ := in.Stat()
				size = fi.Size()
				ap, _ := os.Create(filepath.Join(dir, "audit.part"))
				fp, _ := os.Create(filepath.Join(dir, "fleet.part"))
				as, fs := &sampler{w: ap}, &sampler{w: fp}
				if _, err := returnfile.Split(in, pub, returnfile.Options{MirrorID: mir}, as, fs); err != nil {
					b.Fatal(err)
				}
				in.Close()
				ap.Seek(0, io.SeekStart)
				fp.Seek(0, io.SeekStart)
				if _, err := license.ReadAuditExportFrom(ap, pub, mir, catalog.AuditHead{}, 1<<30, func(*catalog.AuditEvent) error { return nil }); err != nil {
					b.Fatal(err)
				}
				sum, err := fleet.VerifyReport(fp, pub, fleet.ReadOptions{MirrorID: mir})
				if err != nil || sum.Events != int64(n) {
					b.Fatalf("fleet part: %d events, %v", sum.Events, err)
				}
				s.sample()
				ap.Close()
				fp.Close()
				s.peak = max(s.peak, as.peak, fs.peak)
			}
			b.ReportMetric(float64(s.peak)/(1<<20), "peak-heap-MiB")
			b.ReportMetric(float64(size)/(1<<20), "file-MiB")
		})
	}
}
