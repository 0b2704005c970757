package delta

import (
	"bufio"
	"context"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"
)

// Bounds documented in the package: live heap of Build and Apply with
// the default options, whatever the file sizes.
const (
	buildHeapBound = 224 << 20
	applyHeapBound = 128 << 20
)

// writePair writes a base of mib MiB (streamed, never in memory) and a
// target with a few changes and an insertion.
func writePair(b *testing.B, dir string, mib int) (base, target string) {
	b.Helper()
	base, target = filepath.Join(dir, "base"), filepath.Join(dir, "target")
	bf, _ := os.Create(base)
	tf, _ := os.Create(target)
	bw, tw := bufio.NewWriter(bf), bufio.NewWriter(tf)
	for i := 0; i < mib; i++ {
		chunk := structured(uint64(i), 1<<20)
		bw.Write(chunk)
		if i%16 == 5 {
			chunk = edit(uint64(i), chunk)
		}
		tw.Write(chunk)
	}
	for _, c := range []struct {
		w *bufio.Writer
		f *os.File
	}{{bw, bf}, {tw, tf}} {
		if err := c.w.Flush(); err != nil {
			b.Fatal(err)
		}
		if err := c.f.Close(); err != nil {
			b.Fatal(err)
		}
	}
	return base, target
}

// peakHeap samples the live heap (as marked by the last GC) every few
// milliseconds while f runs.
func peakHeap(f func()) uint64 {
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	var peak uint64
	var mu sync.Mutex
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(sample)
			mu.Lock()
			peak = max(peak, sample[0].Value.Uint64())
			mu.Unlock()
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	f()
	close(done)
	wg.Wait()
	return peak
}

func openSource(b *testing.B, path string) (Source, *os.File) {
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	fi, _ := f.Stat()
	return Source{R: f, Size: fi.Size()}, f
}

// BenchmarkBuildApply_Memory builds and applies a delta between 96 MiB
// files (indexed mode: the base is larger than DictMax) and reports the
// peak live heap of each; it fails when a documented bound is exceeded.
func BenchmarkBuildApply_Memory(b *testing.B) {
	dir := b.TempDir()
	basePath, targetPath := writePair(b, dir, 96)
	deltaPath := filepath.Join(dir, "delta")
	base, bf := openSource(b, basePath)
	defer bf.Close()
	target, tf := openSource(b, targetPath)
	defer tf.Close()
	for b.Loop() {
		runtime.GC()
		var st Stats
		buildPeak := peakHeap(func() {
			df, err := os.Create(deltaPath)
			if err != nil {
				b.Fatal(err)
			}
			st, err = Build(context.Background(), df, base, target, Options{})
			if err != nil {
				b.Fatal(err)
			}
			df.Close()
		})
		runtime.GC()
		applyPeak := peakHeap(func() {
			df, err := os.Open(deltaPath)
			if err != nil {
				b.Fatal(err)
			}
			defer df.Close()
			want := Want{BaseSize: base.Size, Size: target.Size}
			want.BaseSHA256, _ = hashReaderAt(context.Background(), bf, base.Size)
			want.SHA256, _ = hashReaderAt(context.Background(), tf, target.Size)
			if err := Apply(context.Background(), io.Discard, df, bf, want, ApplyOptions{}); err != nil {
				b.Fatal(err)
			}
		})
		b.ReportMetric(float64(buildPeak)/(1<<20), "build-heap-MiB")
		b.ReportMetric(float64(applyPeak)/(1<<20), "apply-heap-MiB")
		b.ReportMetric(float64(st.Size)/float64(target.Size)*100, "delta-%")
		if buildPeak > buildHeapBound {
			b.Errorf("Build peak heap %d MiB over the bound %d MiB", buildPeak>>20, buildHeapBound>>20)
		}
		if applyPeak > applyHeapBound {
			b.Errorf("Apply peak heap %d MiB over the bound %d MiB", applyPeak>>20, applyHeapBound>>20)
		}
	}
}

// BenchmarkApply measures apply throughput (rebuild + sha256, no disk
// writes) on a 32 MiB target.
func BenchmarkApply(b *testing.B) {
	base := structured(30, 32<<20)
	target := edit(31, base)
	d := build(b, base, target, Options{})
	want := wantFor(base, target)
	b.SetBytes(int64(len(target)))
	for b.Loop() {
		if _, err := apply(base, d, want); err != nil {
			b.Fatal(err)
		}
	}
}
