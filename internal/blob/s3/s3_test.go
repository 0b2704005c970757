package s3_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/outpost/outpost/internal/blob"
	"github.com/outpost/outpost/internal/blob/blobtest"
	"github.com/outpost/outpost/internal/blob/s3"
	"github.com/outpost/outpost/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func newStore(t *testing.T, cfg s3.Config) *s3.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := s3.New(ctx, cfg)
	if err != nil {
		t.Fatalf("s3.New: %v", err)
	}
	return s
}

func TestStore_Suite(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) blob.Store {
		cfg := testenv.S3(t)
		cfg.PartSize = 5 << 20 // several parts for the large object
		return newStore(t, cfg)
	})
}

func TestStore_Prefix(t *testing.T) {
	cfg := testenv.S3(t)
	cfg.Prefix = "/tenant-a/"
	a := newStore(t, cfg)
	cfg.Prefix = "tenant-b"
	cfg.CreateBucket = false
	b := newStore(t, cfg)
	ctx := context.Background()
	if _, err := a.Put(ctx, "obj", strings.NewReader("a"), blob.Expect{}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Stat(ctx, "obj"); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("other prefix Stat = %v, want ErrNotFound", err)
	}
	cfg.Prefix = ""
	root := newStore(t, cfg)
	if info, err := root.Stat(ctx, "tenant-a/obj"); err != nil || info.Size != 1 {
		t.Fatalf("Stat of the prefixed key from the root = %+v, %v; want size 1", info, err)
	}
}

func TestStore_StatSHA256(t *testing.T) {
	s := newStore(t, testenv.S3(t))
	ctx := context.Background()
	const body = "declared"
	info, err := s.Put(ctx, "undeclared", strings.NewReader(body), blob.Expect{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "declared", strings.NewReader(body), blob.Expect{SHA256: info.SHA256}); err != nil {
		t.Fatal(err)
	}
	// Only a declared (and so verified) sha256 is recorded on the object.
	cases := []struct{ key, want string }{{"undeclared", ""}, {"declared", info.SHA256}}
	for _, c := range cases {
		st, err := s.Stat(ctx, c.key)
		if err != nil {
			t.Fatal(err)
		}
		if st.SHA256 != c.want {
			t.Errorf("Stat(%s).SHA256 = %q, want %q", c.key, st.SHA256, c.want)
		}
		o, oi, err := s.Open(ctx, c.key)
		if err != nil {
			t.Fatal(err)
		}
		o.Close()
		if oi.SHA256 != c.want {
			t.Errorf("Open(%s) info SHA256 = %q, want %q", c.key, oi.SHA256, c.want)
		}
	}
}

func TestNew_Errors(t *testing.T) {
	good := testenv.S3(t)
	cases := []struct {
		name string
		mod  func(*s3.Config)
		want string
	}{
		{"no endpoint", func(c *s3.Config) { c.Endpoint = "" }, "endpoint"},
		{"scheme", func(c *s3.Config) { c.Endpoint = "http://" + c.Endpoint }, "endpoint"},
		{"no bucket", func(c *s3.Config) { c.Bucket = "" }, "bucket"},
		{"missing bucket", func(c *s3.Config) { c.CreateBucket = false }, "does not exist"},
		{"bad prefix", func(c *s3.Config) { c.Prefix = "a/../b" }, "prefix"},
		{"small part", func(c *s3.Config) { c.PartSize = 1 << 20 }, "part_size"},
		{"wrong secret", func(c *s3.Config) { c.SecretKey = "nope" }, "bucket"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := good
			c.mod(&cfg)
			_, err := s3.New(context.Background(), cfg)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("New err = %v, want one mentioning %q", err, c.want)
			}
		})
	}
}

func core(t *testing.T, cfg s3.Config) *minio.Core {
	t.Helper()
	c, err := minio.NewCore(cfg.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, "")})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func incomplete(t *testing.T, c *minio.Core, bucket string) int {
	t.Helper()
	n := 0
	for u := range c.ListIncompleteUploads(context.Background(), bucket, "", true) {
		if u.Err != nil {
			t.Fatalf("list uploads: %v", u.Err)
		}
		n++
	}
	return n
}

func TestStore_FailedPutAbortsUpload(t *testing.T) {
	cfg := testenv.S3(t)
	cfg.PartSize = 5 << 20
	s := newStore(t, cfg)
	c := core(t, cfg)
	ctx := context.Background()
	body := strings.NewReader(strings.Repeat("z", 12<<20))
	_, err := s.Put(ctx, "big", body, blob.Expect{SHA256: strings.Repeat("0", 64)})
	if !errors.Is(err, blob.ErrMismatch) {
		t.Fatalf("Put err = %v, want ErrMismatch", err)
	}
	if got := incomplete(t, c, cfg.Bucket); got != 0 {
		t.Fatalf("%d multipart uploads left after a failed Put, want 0", got)
	}
}

func TestStore_AbortStale(t *testing.T) {
	cfg := testenv.S3(t)
	s := newStore(t, cfg)
	c := core(t, cfg)
	ctx := context.Background()
	// A process that died mid-Put leaves an upload behind.
	if _, err := c.NewMultipartUpload(ctx, cfg.Bucket, "crashed", minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name      string
		olderThan time.Duration
		want      int
		left      int
	}{
		{"too recent", time.Hour, 0, 1},
		{"stale", -time.Minute, 1, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n, err := s.AbortStale(ctx, tc.olderThan)
			if err != nil || n != tc.want {
				t.Fatalf("AbortStale = %d, %v; want %d, nil", n, err, tc.want)
			}
			if got := incomplete(t, c, cfg.Bucket); got != tc.left {
				t.Fatalf("%d uploads left, want %d", got, tc.left)
			}
		})
	}
}

func TestNew_SkipCheckDoesNotContactTheEndpoint(t *testing.T) {
	// A port nothing listens on: the check fails, SkipCheck does not check.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cfg := s3.Config{Endpoint: addr, AccessKey: "k", SecretKey: "s", Bucket: "b"}
	t.Run("checked", func(t *testing.T) {
		if _, err := s3.New(ctx, cfg); err == nil {
			t.Fatal("New with the endpoint down = nil error, want one")
		}
	})
	t.Run("skip check", func(t *testing.T) {
		cfg := cfg
		cfg.SkipCheck = true
		s, err := s3.New(ctx, cfg)
		if err != nil {
			t.Fatalf("New with SkipCheck = %v, want nil", err)
		}
		if _, err := s.Stat(ctx, "k"); err == nil || errors.Is(err, blob.ErrNotFound) {
			t.Errorf("Stat with the endpoint down = %v, want a connection error", err)
		}
	})
}
