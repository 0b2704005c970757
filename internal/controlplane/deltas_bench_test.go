package controlplane_test

import (
	"bytes"
	"context"
	"math/rand/v2"
	"testing"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/controlplane"
)

// BenchmarkDeltaJob runs the control plane's delta job on a 32 MiB
// artifact whose next version changes 1% of its 4 KiB blocks and inserts
// 64 KiB in the middle: blob store → temp files → build → blob store.
// It reports the delta's share of the artifact and the job's rate.
//
//	go test -run '^$' -bench DeltaJob -benchtime 1x ./internal/controlplane
func BenchmarkDeltaJob(b *testing.B) {
	const size = 32 << 20
	rng := rand.New(rand.NewPCG(1, 2))
	v1 := make([]byte, size)
	for i := range v1 {
		v1[i] = byte(rng.Uint32())
	}
	v2 := bytes.Clone(v1)
	for blk := 0; blk < size/4096; blk++ {
		if rng.IntN(100) == 0 {
			for j := 0; j < 64; j++ {
				v2[blk*4096+rng.IntN(4096)] = byte(rng.Uint32())
			}
		}
	}
	ins := make([]byte, 64<<10)
	for i := range ins {
		ins[i] = byte(rng.Uint32())
	}
	v2 = append(v2[:size/2:size/2], append(ins, v2[size/2:]...)...)
	var share float64
	for b.Loop() {
		b.StopTimer()
		s := openDeltaSite(b, b.TempDir(), controlplane.Config{})
		prod, err := s.app.CreateProduct(s.op, controlplane.ProductInput{Name: "app", Distribution: catalog.DistributionOpen})
		if err != nil {
			b.Fatal(err)
		}
		s.release(b, prod.ProductID, "1.0.0", v1)
		rel, _ := s.release(b, prod.ProductID, "1.1.0", v2)
		b.StartTimer()
		if ran, err := s.app.RunDeltaJob(context.Background()); !ran || err != nil {
			b.Fatalf("RunDeltaJob: %v %v", ran, err)
		}
		b.StopTimer()
		jobs, _ := s.app.ReleaseDeltas(s.op, rel.ReleaseID)
		share = jobs[0].Share
		s.db.Close()
		b.StartTimer()
	}
	b.SetBytes(int64(len(v2)))
	b.ReportMetric(100*share, "delta-%")
}
