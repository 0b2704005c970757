package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/snapshot"
	"github.com/outpost/outpost/internal/snapshot/snapshottest"
	"github.com/outpost/outpost/internal/tuf"
)

type s3Flags struct {
	endpoint, access, secret, bucket string
}

func (f *s3Flags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.endpoint, "endpoint", "", "S3 host:port")
	fs.StringVar(&f.access, "access", "", "access key")
	fs.StringVar(&f.secret, "secret", "", "secret key")
	fs.StringVar(&f.bucket, "bucket", "", "bucket")
}

func (f *s3Flags) client() (*minio.Client, error) {
	if f.endpoint == "" || f.bucket == "" {
		return nil, errors.New("-endpoint and -bucket are required")
	}
	return minio.New(f.endpoint, &minio.Options{Creds: credentials.NewStaticV4(f.access, f.secret, ""), Region: "us-east-1"})
}

// parseSizes reads "1,64,128x16" (MiB, with an optional repeat count).
func parseSizes(s string) ([]int64, error) {
	var out []int64
	for _, part := range strings.Split(s, ",") {
		mib, count, found := strings.Cut(strings.TrimSpace(part), "x")
		n := 1
		if found {
			var err error
			if n, err = strconv.Atoi(count); err != nil || n < 1 || n > 1000 {
				return nil, fmt.Errorf("sizes: bad repeat count in %q", part)
			}
		}
		m, err := strconv.ParseInt(mib, 10, 64)
		if err != nil || m < 1 || m > 16<<10 {
			return nil, fmt.Errorf("sizes: bad MiB in %q", part)
		}
		for range n {
			out = append(out, m<<20)
		}
	}
	return out, nil
}

// content is artifact i's bytes: a deterministic pseudo-random stream,
// generated on the fly so no artifact is ever held in memory.
func content(i int, size int64) io.Reader {
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[:], uint64(i)+1)
	return io.LimitReader(rand.NewChaCha8(seed), size)
}

// s3Fill uploads a tenant's TUF repository (one open product, one stable
// release per artifact; buildTUF) in the layout a mirror with source: s3
// reads: the artifacts under their target paths (targets/…), then the
// metadata. It prints one line per artifact ("artifact <id> <sha256>
// <size>"), the tenant and the root file (-root) the mirror is
// initialised with.
func s3Fill(args []string) error {
	fs := flag.NewFlagSet("s3fill", flag.ContinueOnError)
	var sf s3Flags
	sf.register(fs)
	sizesFlag := fs.String("sizes", "128x8", "artifact sizes in MiB, e.g. 1,64,128x16")
	rootOut := fs.String("root", "", "write the tenant's root.json here")
	if err := fs.Parse(args); err != nil {
		return err
	}
	sizes, err := parseSizes(*sizesFlag)
	if err != nil {
		return err
	}
	c, err := sf.client()
	if err != nil {
		return err
	}
	ctx := context.Background()
	if ok, err := c.BucketExists(ctx, sf.bucket); err != nil {
		return fmt.Errorf("bucket %s: %w", sf.bucket, err)
	} else if !ok {
		if err := c.MakeBucket(ctx, sf.bucket, minio.MakeBucketOptions{Region: "us-east-1"}); err != nil {
			return fmt.Errorf("make bucket %s: %w", sf.bucket, err)
		}
	}
	in := snapshottest.Input(1, len(sizes), 1)
	for i, size := range sizes {
		h := sha256.New()
		if _, err := io.Copy(h, content(i, size)); err != nil {
			return err
		}
		a := in.Artifacts[i]
		a.SHA256, a.SizeBytes = hex.EncodeToString(h.Sum(nil)), size
	}
	now := time.Now().UTC().Truncate(time.Second)
	m := snapshot.Build(in, snapshot.BuildOptions{SnapshotID: snapshottest.ID(catalog.PrefixSnapshot, 1), Now: now, TTL: 24 * time.Hour})
	r, err := buildTUF(ctx, m, now)
	if err != nil {
		return err
	}
	// The artifacts first, under their target paths, then the metadata,
	// the timestamp last: a mirror never sees a timestamp whose files are
	// not there yet.
	index := map[string]int{}
	for i, a := range in.Artifacts {
		index[a.SHA256] = i
	}
	for path, sum := range artifactTargets(m) {
		i := index[sum]
		_, err := c.PutObject(ctx, sf.bucket, path, content(i, sizes[i]), sizes[i],
			minio.PutObjectOptions{ContentType: "application/octet-stream", PartSize: 16 << 20, NumThreads: 1})
		if err != nil {
			return fmt.Errorf("put artifact %d: %w", i, err)
		}
		fmt.Printf("artifact %s %s %d\n", in.Artifacts[i].ArtifactID, sum, sizes[i])
	}
	var metaBytes int64
	paths := r.repo.Paths()
	sort.Slice(paths, func(i, j int) bool {
		return paths[j] == tuf.MetadataPath(metadata.TIMESTAMP, 0) || (paths[i] != tuf.MetadataPath(metadata.TIMESTAMP, 0) && paths[i] < paths[j])
	})
	for _, p := range paths {
		b := r.repo.Get(p)
		if _, err := c.PutObject(ctx, sf.bucket, p, bytes.NewReader(b), int64(len(b)), minio.PutObjectOptions{ContentType: "application/json"}); err != nil {
			return fmt.Errorf("put %s: %w", p, err)
		}
		metaBytes += int64(len(b))
	}
	if *rootOut != "" {
		if err := os.WriteFile(*rootOut, r.root, 0o644); err != nil {
			return err
		}
	}
	fmt.Printf("tenant_id %s\nroot_file %s\nmetadata_bytes %d\n", m.TenantID, *rootOut, metaBytes)
	return nil
}

// s3Get is the reference for the mirror's sync: download every object
// under a prefix with a fixed concurrency straight to files, with no
// hashing and no fsync. It prints bytes, seconds and MiB/s.
func s3Get(args []string) error {
	fs := flag.NewFlagSet("s3get", flag.ContinueOnError)
	var sf s3Flags
	sf.register(fs)
	prefix := fs.String("prefix", "artifacts/", "object key prefix")
	conc := fs.Int("concurrency", 4, "parallel downloads")
	dir := fs.String("dir", "", "destination directory")
	fsync := fs.Bool("fsync", false, "fsync each file before closing it (a durable reference)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" || *conc < 1 {
		return errors.New("-dir and a positive -concurrency are required")
	}
	c, err := sf.client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now()
	var keys []string
	for obj := range c.ListObjects(ctx, sf.bucket, minio.ListObjectsOptions{Prefix: *prefix, Recursive: true}) {
		if obj.Err != nil {
			return fmt.Errorf("list %s: %w", *prefix, obj.Err)
		}
		keys = append(keys, obj.Key)
	}
	var (
		total atomic.Int64
		wg    sync.WaitGroup
		once  sync.Once
		first error
		next  = make(chan string)
	)
	for range *conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for key := range next {
				n, err := getOne(ctx, c, sf.bucket, key, filepath.Join(*dir, path.Base(key)), *fsync)
				total.Add(n)
				if err != nil {
					once.Do(func() { first = err; cancel() })
				}
			}
		}()
	}
	for _, k := range keys {
		next <- k
	}
	close(next)
	wg.Wait()
	if first != nil {
		return first
	}
	secs := time.Since(start).Seconds()
	fmt.Printf("objects %d\nbytes %d\nseconds %.3f\nmib_per_s %.1f\n", len(keys), total.Load(), secs, float64(total.Load())/(1<<20)/secs)
	return nil
}

func getOne(ctx context.Context, c *minio.Client, bucket, key, dst string, fsync bool) (int64, error) {
	obj, err := c.GetObject(ctx, bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return 0, fmt.Errorf("get %s: %w", key, err)
	}
	defer obj.Close()
	f, err := os.Create(dst)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(f, obj)
	if err == nil && fsync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, fmt.Errorf("get %s: %w", key, err)
	}
	return n, nil
}
