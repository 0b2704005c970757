package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/outpost/outpost/internal/delta"
	"github.com/outpost/outpost/internal/fsutil"
)

func buildCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("build", flag.ContinueOnError)
	basePath := fs.String("base", "", "base file")
	targetPath := fs.String("target", "", "target file")
	out := fs.String("o", "", "delta file to write")
	seg := fs.Int("segment", 0, "segment size in bytes (0: default)")
	dict := fs.Int("dict", 0, "dictionary limit in bytes (0: default)")
	level := fs.Int("level", 0, "zstd level 1 (fastest) .. 4 (best); 0: default")
	coding := fs.String("coding", "auto", "segment coding: auto, zstd or diff")
	if err := parse(fs, args, "base", "target", "o"); err != nil {
		return err
	}
	base, bsize, err := open(*basePath)
	if err != nil {
		return err
	}
	defer base.Close()
	target, tsize, err := open(*targetPath)
	if err != nil {
		return err
	}
	defer target.Close()
	codings := map[string]delta.Coding{"auto": delta.CodingAuto, "zstd": delta.CodingZstd, "diff": delta.CodingDiff}
	c, ok := codings[*coding]
	if !ok {
		return fmt.Errorf("-coding %q: want auto, zstd or diff", *coding)
	}
	start := time.Now()
	var st delta.Stats
	err = fsutil.WriteFrom(*out, 0o644, func(w io.Writer) error {
		var err error
		st, err = delta.Build(ctx, w, delta.Source{R: base, Size: bsize}, delta.Source{R: target, Size: tsize},
			delta.Options{SegmentSize: *seg, DictMax: *dict, Level: zstd.EncoderLevel(*level), Coding: c})
		return err
	})
	if err != nil {
		return err
	}
	secs := time.Since(start).Seconds()
	fmt.Printf("delta_bytes %d\ntarget_bytes %d\nbase_bytes %d\nsegments %d\ndict_bytes %d\nmatched_bytes %d\nindexed %v\ndiff_segments %d\nbuild_seconds %.3f\n",
		st.Size, tsize, bsize, st.Segments, st.DictBytes, st.MatchedBytes, st.Indexed, st.DiffSegments, secs)
	return nil
}

func applyCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("apply", flag.ContinueOnError)
	basePath := fs.String("base", "", "base file")
	deltaPath := fs.String("delta", "", "delta file")
	out := fs.String("o", "", "rebuilt file to write")
	trust := fs.Bool("trust-base", false, "skip hashing the base (ApplyOptions.BaseVerified)")
	noSync := fs.Bool("no-sync", false, "write the output plainly (no temp file, no fsync), like zstd -d")
	if err := parse(fs, args, "base", "delta", "o"); err != nil {
		return err
	}
	// A bench tool trusts the delta's own header as the expectation; the
	// base is still hashed (unless -trust-base) and the output verified.
	f, err := os.Open(*deltaPath)
	if err != nil {
		return err
	}
	h, err := delta.ReadHeader(f)
	f.Close()
	if err != nil {
		return err
	}
	start := time.Now()
	want := delta.Want{BaseSize: h.BaseSize, BaseSHA256: h.BaseSHA256, Size: h.Size, SHA256: h.SHA256}
	opts := delta.ApplyOptions{BaseVerified: *trust}
	if *noSync {
		err = applyPlain(ctx, *out, *deltaPath, *basePath, want, opts)
	} else {
		err = delta.ApplyFile(ctx, *out, *deltaPath, *basePath, want, opts)
	}
	if err != nil {
		return err
	}
	secs := time.Since(start).Seconds()
	fmt.Printf("target_bytes %d\napply_seconds %.3f\napply_mib_s %.1f\n", h.Size, secs, float64(h.Size)/(1<<20)/secs)
	return nil
}

func applyPlain(ctx context.Context, out, deltaPath, basePath string, want delta.Want, opts delta.ApplyOptions) error {
	df, err := os.Open(deltaPath)
	if err != nil {
		return err
	}
	defer df.Close()
	bf, err := os.Open(basePath)
	if err != nil {
		return err
	}
	defer bf.Close()
	of, err := os.Create(out)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(of, 1<<20)
	if err := delta.Apply(ctx, bw, df, bf, want, opts); err != nil {
		of.Close()
		os.Remove(out)
		return err
	}
	if err := bw.Flush(); err != nil {
		of.Close()
		return err
	}
	return of.Close()
}

func inspectCmd(args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("want one delta file")
	}
	f, err := os.Open(args[0])
	if err != nil {
		return err
	}
	defer f.Close()
	h, segs, err := delta.Inspect(bufio.NewReader(f))
	if err != nil {
		return err
	}
	fmt.Printf("base %s %d\ntarget %s %d\nsegment_max %d\ndict_max %d\nsegments %d\n",
		h.BaseSHA256, h.BaseSize, h.SHA256, h.Size, h.SegmentMax, h.DictMax, len(segs))
	for i, s := range segs {
		fmt.Printf("segment %d size %d ranges %d dict %d frame %d\n", i, s.Size, s.Ranges, s.DictBytes, s.FrameBytes)
	}
	return nil
}

func open(path string) (*os.File, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, fi.Size(), nil
}
