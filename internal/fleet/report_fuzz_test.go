package fleet_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"testing"

	"github.com/outpost/outpost/internal/fleet"
)

// FuzzReportReader feeds arbitrary files to the verifying reader: it must
// never panic, and a file it accepts must carry a trailer whose count
// matches what it returned.
func FuzzReportReader(f *testing.F) {
	seed := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	pub := seed.Public().(ed25519.PublicKey)
	a, err := fleet.NewAggregator(context.Background(), fleet.NewMemStore(), fleet.Options{})
	if err != nil {
		f.Fatal(err)
	}
	_, _, _ = a.Ingest(context.Background(), []fleet.Event{ev(fleet.TypeInstallFailed, relA, "E1"), ev(fleet.TypeCheck, "", "")})
	var buf bytes.Buffer
	if _, err := a.ExportReport(context.Background(), &buf, fleet.ExportIdentity{MirrorID: mirA, Key: seed}, now); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte("{\"format\":\"outpost-fleet-report-v1\",\"store_id\":\"x\"}\n{\"trailer\":{}}\n"))
	f.Fuzz(func(t *testing.T, file []byte) {
		sum, err := fleet.VerifyReport(bytes.NewReader(file), pub, fleet.ReadOptions{MaxLine: 4096})
		if err != nil {
			return
		}
		if sum.Aggregates+sum.Events != sum.Trailer.Count {
			t.Fatalf("accepted a file with %d records and a trailer count of %d", sum.Aggregates+sum.Events, sum.Trailer.Count)
		}
	})
}
