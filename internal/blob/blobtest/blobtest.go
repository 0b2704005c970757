// Package blobtest is the suite every blob.Store implementation must pass:
// run it from the implementation's tests with a constructor that returns
// a fresh, empty store.
package blobtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"runtime"
	"runtime/metrics"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/blob"
)

// LargeSize is the size of the object that spans several S3 parts.
const LargeSize = 24 << 20

// Run runs the suite. newStore must return an empty store.
func Run(t *testing.T, newStore func(t *testing.T) blob.Store) {
	t.Run("Roundtrip", func(t *testing.T) { testRoundtrip(t, newStore(t)) })
	t.Run("DeclaredMatch", func(t *testing.T) { testDeclaredMatch(t, newStore(t)) })
	t.Run("Mismatch", func(t *testing.T) { testMismatch(t, newStore(t)) })
	t.Run("MaxSize", func(t *testing.T) { testMaxSize(t, newStore(t)) })
	t.Run("BadExpect", func(t *testing.T) { testBadExpect(t, newStore(t)) })
	t.Run("Cancel", func(t *testing.T) { testCancel(t, newStore(t)) })
	t.Run("ReadError", func(t *testing.T) { testReadError(t, newStore(t)) })
	t.Run("Overwrite", func(t *testing.T) { testOverwrite(t, newStore(t)) })
	t.Run("SeekRange", func(t *testing.T) { testSeekRange(t, newStore(t)) })
	t.Run("Delete", func(t *testing.T) { testDelete(t, newStore(t)) })
	t.Run("NotFound", func(t *testing.T) { testNotFound(t, newStore(t)) })
	t.Run("InvalidKey", func(t *testing.T) { testInvalidKey(t, newStore(t)) })
	t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, newStore(t)) })
	t.Run("Presign", func(t *testing.T) { testPresign(t, newStore(t)) })
	t.Run("Large", func(t *testing.T) { testLarge(t, newStore(t)) })
	t.Run("List", func(t *testing.T) { testList(t, newStore(t)) })
}

func testList(t *testing.T, s blob.Store) {
	ctx := context.Background()
	for i, k := range []string{"a/2", "a/1", "ab", "b/1"} {
		put(t, s, k, data(10+i, uint64(i)))
	}
	var got []string
	sizes := map[string]int64{}
	err := s.List(ctx, "a/", func(i blob.Info) error {
		got = append(got, i.Key)
		sizes[i.Key] = i.Size
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(got)
	if strings.Join(got, " ") != "a/1 a/2" || sizes["a/1"] != 11 || sizes["a/2"] != 10 {
		t.Fatalf("List(a/) = %v %v, want a/1 (11 bytes) and a/2 (10 bytes)", got, sizes)
	}
	stop := errors.New("stop")
	n := 0
	if err := s.List(ctx, "", func(blob.Info) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Fatalf("List stops at fn's error: got %v after %d calls", err, n)
	}
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func data(n int, seed uint64) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)}).Read(b)
	return b
}

func put(t *testing.T, s blob.Store, key string, b []byte) blob.Info {
	t.Helper()
	info, err := s.Put(context.Background(), key, bytes.NewReader(b), blob.Expect{})
	if err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
	return info
}

func read(t *testing.T, s blob.Store, key string) []byte {
	t.Helper()
	o, info, err := s.Open(context.Background(), key)
	if err != nil {
		t.Fatalf("Open(%q): %v", key, err)
	}
	defer o.Close()
	b, err := io.ReadAll(o)
	if err != nil {
		t.Fatalf("read %q: %v", key, err)
	}
	if int64(len(b)) != info.Size {
		t.Fatalf("Open(%q) info.Size = %d, read %d bytes", key, info.Size, len(b))
	}
	return b
}

func wantAbsent(t *testing.T, s blob.Store, key string) {
	t.Helper()
	if _, err := s.Stat(context.Background(), key); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("Stat(%q) after failed Put: err = %v, want ErrNotFound (nothing left behind)", key, err)
	}
}

func testRoundtrip(t *testing.T, s blob.Store) {
	ctx := context.Background()
	for _, n := range []int{0, 1, 4096, 65536 + 7, 300 << 10} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			key := fmt.Sprintf("rt/n%d/obj.bin", n)
			b := data(n, uint64(n))
			info := put(t, s, key, b)
			if info.Size != int64(n) || info.SHA256 != sum(b) || info.Key != key {
				t.Fatalf("Put info = %+v, want key %s size %d sha256 %s", info, key, n, sum(b))
			}
			if got := read(t, s, key); !bytes.Equal(got, b) {
				t.Fatalf("read back %d bytes, differ from the %d put", len(got), n)
			}
			st, err := s.Stat(ctx, key)
			if err != nil {
				t.Fatalf("Stat: %v", err)
			}
			if st.Size != int64(n) || st.ModTime.IsZero() || (st.SHA256 != "" && st.SHA256 != sum(b)) {
				t.Fatalf("Stat = %+v, want size %d, a mod time, sha256 empty or %s", st, n, sum(b))
			}
		})
	}
}

func testDeclaredMatch(t *testing.T, s blob.Store) {
	ctx := context.Background()
	b := data(10000, 1)
	info, err := s.Put(ctx, "declared", bytes.NewReader(b), blob.Expect{SHA256: sum(b), Size: int64(len(b)), MaxSize: int64(len(b))})
	if err != nil {
		t.Fatalf("Put with matching Expect: %v", err)
	}
	if info.SHA256 != sum(b) || info.Size != int64(len(b)) {
		t.Fatalf("info = %+v", info)
	}
	st, err := s.Stat(ctx, "declared")
	if err != nil {
		t.Fatal(err)
	}
	if st.SHA256 != "" && st.SHA256 != sum(b) {
		t.Fatalf("Stat sha256 = %s, want %s or empty", st.SHA256, sum(b))
	}
}

func testMismatch(t *testing.T, s blob.Store) {
	b := data(5000, 2)
	other := sum([]byte("other"))
	cases := []struct {
		name string
		body []byte
		e    blob.Expect
	}{
		{"sha256", b, blob.Expect{SHA256: other}},
		{"sha256 with size", b, blob.Expect{SHA256: other, Size: int64(len(b))}},
		{"shorter than size", b, blob.Expect{Size: int64(len(b)) + 1}},
		{"longer than size", b, blob.Expect{Size: int64(len(b)) - 1}},
		{"longer than size with sha", b, blob.Expect{Size: 10, SHA256: sum(b[:10])}},
		{"empty body", nil, blob.Expect{Size: 1}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			key := fmt.Sprintf("mismatch/%d", i)
			_, err := s.Put(context.Background(), key, bytes.NewReader(c.body), c.e)
			if !errors.Is(err, blob.ErrMismatch) {
				t.Fatalf("Put err = %v, want ErrMismatch", err)
			}
			wantAbsent(t, s, key)
		})
	}
}

// counter counts the bytes pulled from r.
type counter struct {
	r io.Reader
	n atomic.Int64
}

func (c *counter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// endless yields bytes forever.
type endless struct{}

func (endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	return len(p), nil
}

func testMaxSize(t *testing.T, s blob.Store) {
	cases := []struct {
		name string
		max  int64
		size int64
	}{
		{"small", 1000, 0},
		{"one byte", 1, 0},
		{"above a part", 6<<20 + 3, 0},
		{"declared size over max", 1000, 2000},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			key := fmt.Sprintf("max/%d", i)
			r := &counter{r: endless{}}
			_, err := s.Put(context.Background(), key, r, blob.Expect{MaxSize: c.max, Size: c.size})
			if !errors.Is(err, blob.ErrTooLarge) {
				t.Fatalf("Put err = %v, want ErrTooLarge", err)
			}
			if got := r.n.Load(); got > c.max+1 {
				t.Fatalf("pulled %d bytes, want at most max+1 = %d", got, c.max+1)
			}
			wantAbsent(t, s, key)
		})
	}
	t.Run("exactly max", func(t *testing.T) {
		b := data(1000, 3)
		info, err := s.Put(context.Background(), "max/exact", bytes.NewReader(b), blob.Expect{MaxSize: 1000})
		if err != nil || info.Size != 1000 {
			t.Fatalf("Put of exactly MaxSize: info %+v, err %v; want size 1000, nil", info, err)
		}
	})
}

func testBadExpect(t *testing.T, s blob.Store) {
	cases := []struct {
		name string
		e    blob.Expect
	}{
		{"uppercase sha", blob.Expect{SHA256: strings.ToUpper(sum(nil))}},
		{"short sha", blob.Expect{SHA256: "abc"}},
		{"negative max", blob.Expect{MaxSize: -1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := &counter{r: strings.NewReader("hello")}
			_, err := s.Put(context.Background(), "bad-expect", r, c.e)
			if err == nil || errors.Is(err, blob.ErrMismatch) {
				t.Fatalf("Put err = %v, want a validation error", err)
			}
			if r.n.Load() != 0 {
				t.Fatalf("pulled %d bytes before rejecting Expect, want 0", r.n.Load())
			}
			wantAbsent(t, s, "bad-expect")
		})
	}
}

// cancelAfter cancels its context once n bytes have passed, then keeps
// supplying bytes.
type cancelAfter struct {
	n      int64
	cancel context.CancelFunc
	seen   int64
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	if len(p) > 32<<10 {
		p = p[:32<<10]
	}
	n, _ := endless{}.Read(p)
	c.seen += int64(n)
	if c.seen >= c.n {
		c.cancel()
	}
	return n, nil
}

func testCancel(t *testing.T, s blob.Store) {
	for _, after := range []int64{100 << 10, 7 << 20} {
		t.Run(fmt.Sprint(after), func(t *testing.T) {
			key := fmt.Sprintf("cancel/%d", after)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			r := &cancelAfter{n: after, cancel: cancel}
			_, err := s.Put(ctx, key, r, blob.Expect{})
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Put err = %v, want context.Canceled", err)
			}
			if r.seen > after+(1<<20) {
				t.Fatalf("read %d bytes after cancel at %d", r.seen, after)
			}
			wantAbsent(t, s, key)
		})
	}
}

var errBroken = errors.New("broken reader")

type failAfter struct {
	r io.Reader
	n int64
}

func (f *failAfter) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errBroken
	}
	if int64(len(p)) > f.n {
		p = p[:f.n]
	}
	n, err := f.r.Read(p)
	f.n -= int64(n)
	return n, err
}

func testReadError(t *testing.T, s blob.Store) {
	for _, after := range []int64{0, 5000, 6 << 20} {
		t.Run(fmt.Sprint(after), func(t *testing.T) {
			key := fmt.Sprintf("readerr/%d", after)
			_, err := s.Put(context.Background(), key, &failAfter{r: endless{}, n: after}, blob.Expect{})
			if !errors.Is(err, errBroken) {
				t.Fatalf("Put err = %v, want the reader's error", err)
			}
			wantAbsent(t, s, key)
		})
	}
}

func testOverwrite(t *testing.T, s blob.Store) {
	ctx := context.Background()
	a, b := data(3000, 4), data(2000, 5)
	put(t, s, "ow/key", a)
	put(t, s, "ow/key", b)
	if got := read(t, s, "ow/key"); !bytes.Equal(got, b) {
		t.Fatalf("after overwrite read %d bytes, want the second object (%d bytes)", len(got), len(b))
	}
	// A failed Put leaves the existing object alone.
	_, err := s.Put(ctx, "ow/key", bytes.NewReader(a), blob.Expect{SHA256: sum(b)})
	if !errors.Is(err, blob.ErrMismatch) {
		t.Fatalf("mismatching overwrite err = %v, want ErrMismatch", err)
	}
	_, err = s.Put(ctx, "ow/key", &failAfter{r: bytes.NewReader(a), n: 100}, blob.Expect{})
	if !errors.Is(err, errBroken) {
		t.Fatalf("broken overwrite err = %v, want errBroken", err)
	}
	if got := read(t, s, "ow/key"); !bytes.Equal(got, b) {
		t.Fatal("a failed overwrite changed the existing object")
	}
}

func testSeekRange(t *testing.T, s blob.Store) {
	b := data(200<<10, 6)
	put(t, s, "seek", b)
	o, info, err := s.Open(context.Background(), "seek")
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if info.Size != int64(len(b)) {
		t.Fatalf("Open size = %d, want %d", info.Size, len(b))
	}
	cases := []struct {
		name   string
		off    int64
		whence int
		want   int64
		n      int
	}{
		{"start", 1000, io.SeekStart, 1000, 500},
		{"current", 4, io.SeekCurrent, 1504, 100},
		{"end", -700, io.SeekEnd, int64(len(b)) - 700, 700},
		{"back to zero", 0, io.SeekStart, 0, 10},
	}
	for _, c := range cases {
		pos, err := o.Seek(c.off, c.whence)
		if err != nil || pos != c.want {
			t.Fatalf("%s: Seek = %d, %v; want %d", c.name, pos, err, c.want)
		}
		got := make([]byte, c.n)
		if _, err := io.ReadFull(o, got); err != nil {
			t.Fatalf("%s: read: %v", c.name, err)
		}
		if !bytes.Equal(got, b[c.want:c.want+int64(c.n)]) {
			t.Fatalf("%s: bytes at %d differ", c.name, c.want)
		}
	}
	// Reading at the end gives EOF.
	if _, err := o.Seek(0, io.SeekEnd); err != nil {
		t.Fatal(err)
	}
	if n, err := o.Read(make([]byte, 10)); n != 0 || err != io.EOF {
		t.Fatalf("read at end = %d, %v; want 0, EOF", n, err)
	}
}

func testDelete(t *testing.T, s blob.Store) {
	ctx := context.Background()
	put(t, s, "del/a", []byte("a"))
	put(t, s, "del/b", []byte("b"))
	if err := s.Delete(ctx, "del/a"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := s.Stat(ctx, "del/a"); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("Stat after Delete: %v, want ErrNotFound", err)
	}
	if _, _, err := s.Open(ctx, "del/a"); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("Open after Delete: %v, want ErrNotFound", err)
	}
	if got := read(t, s, "del/b"); string(got) != "b" {
		t.Fatalf("sibling after Delete = %q, want %q", got, "b")
	}
	if err := s.Delete(ctx, "del/a"); err != nil {
		t.Fatalf("second Delete: %v, want nil (idempotent)", err)
	}
	if err := s.Delete(ctx, "never/was"); err != nil {
		t.Fatalf("Delete of a missing key: %v, want nil", err)
	}
}

func testNotFound(t *testing.T, s blob.Store) {
	ctx := context.Background()
	put(t, s, "nf/file", []byte("x"))
	for _, key := range []string{"missing", "nf/missing", "nf", "nf/file/below"} {
		t.Run(key, func(t *testing.T) {
			if _, err := s.Stat(ctx, key); !errors.Is(err, blob.ErrNotFound) {
				t.Fatalf("Stat(%q) = %v, want ErrNotFound", key, err)
			}
			o, _, err := s.Open(ctx, key)
			if !errors.Is(err, blob.ErrNotFound) {
				if o != nil {
					o.Close()
				}
				t.Fatalf("Open(%q) = %v, want ErrNotFound", key, err)
			}
		})
	}
}

func testInvalidKey(t *testing.T, s blob.Store) {
	ctx := context.Background()
	keys := []string{"", "/abs", "a//b", "trailing/", "../up", "a/../b", "a/./b", ".hidden", "a/.tmp/x",
		"sp ace", "back\\slash", "nul\x00", "ünï", "q?x", "pct%2f", strings.Repeat("k", blob.MaxSegmentLen+1),
		strings.Repeat("k/", blob.MaxKeyLen/2) + "k"}
	for _, key := range keys {
		t.Run(fmt.Sprintf("%q", key), func(t *testing.T) {
			r := &counter{r: strings.NewReader("data")}
			if _, err := s.Put(ctx, key, r, blob.Expect{}); !errors.Is(err, blob.ErrInvalidKey) {
				t.Fatalf("Put(%q) = %v, want ErrInvalidKey", key, err)
			}
			if r.n.Load() != 0 {
				t.Fatalf("Put(%q) read %d bytes before rejecting the key", key, r.n.Load())
			}
			if _, _, err := s.Open(ctx, key); !errors.Is(err, blob.ErrInvalidKey) {
				t.Fatalf("Open(%q) = %v, want ErrInvalidKey", key, err)
			}
			if _, err := s.Stat(ctx, key); !errors.Is(err, blob.ErrInvalidKey) {
				t.Fatalf("Stat(%q) = %v, want ErrInvalidKey", key, err)
			}
			if err := s.Delete(ctx, key); !errors.Is(err, blob.ErrInvalidKey) {
				t.Fatalf("Delete(%q) = %v, want ErrInvalidKey", key, err)
			}
		})
	}
	long := strings.Repeat("k", blob.MaxSegmentLen-1) + "/" + strings.Repeat("k", blob.MaxSegmentLen) + "/k"
	if len(long) != blob.MaxKeyLen {
		t.Fatalf("test key is %d bytes, want %d", len(long), blob.MaxKeyLen)
	}
	put(t, s, long, []byte("ok"))
	if got := read(t, s, long); string(got) != "ok" {
		t.Fatalf("max-length key read %q", got)
	}
}

func testConcurrent(t *testing.T, s blob.Store) {
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 8 {
		wg.Go(func() {
			b := data(50<<10, uint64(100+i))
			key := fmt.Sprintf("conc/%d", i%4) // pairs race on one key
			if _, err := s.Put(context.Background(), key, bytes.NewReader(b), blob.Expect{SHA256: sum(b)}); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent Put: %v", err)
	}
	for i := range 4 {
		got := read(t, s, fmt.Sprintf("conc/%d", i))
		a, b := data(50<<10, uint64(100+i)), data(50<<10, uint64(104+i))
		if !bytes.Equal(got, a) && !bytes.Equal(got, b) {
			t.Fatalf("conc/%d holds neither racing object: a torn write", i)
		}
	}
}

func testPresign(t *testing.T, s blob.Store) {
	ctx := context.Background()
	b := data(4000, 7)
	put(t, s, "presign/obj", b)
	u, err := s.PresignGet(ctx, "presign/obj", time.Minute)
	if errors.Is(err, blob.ErrNotSupported) {
		return
	}
	if err != nil {
		t.Fatalf("PresignGet: %v", err)
	}
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(got, b) {
		t.Fatalf("GET presigned URL: %d, %d bytes; want 200 and the object", resp.StatusCode, len(got))
	}
	if _, err := s.PresignGet(ctx, "../x", time.Minute); !errors.Is(err, blob.ErrInvalidKey) {
		t.Fatalf("PresignGet(bad key) = %v, want ErrInvalidKey", err)
	}
}

// stream is a deterministic reader of n pseudo-random bytes that is never
// held in memory.
func stream(n int64, seed byte) io.Reader {
	return io.LimitReader(rand.NewChaCha8([32]byte{seed}), n)
}

func streamSum(t *testing.T, n int64, seed byte) string {
	t.Helper()
	h := sha256.New()
	if _, err := io.Copy(h, stream(n, seed)); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func testLarge(t *testing.T, s blob.Store) {
	ctx := context.Background()
	want := streamSum(t, LargeSize, 9)
	info, err := s.Put(ctx, "large/obj", stream(LargeSize, 9), blob.Expect{SHA256: want, Size: LargeSize})
	if err != nil {
		t.Fatalf("Put %d bytes: %v", LargeSize, err)
	}
	if info.Size != LargeSize || info.SHA256 != want {
		t.Fatalf("info = %+v, want size %d sha256 %s", info, LargeSize, want)
	}
	// Unknown size takes the same path.
	if _, err := s.Put(ctx, "large/unsized", stream(LargeSize, 9), blob.Expect{}); err != nil {
		t.Fatalf("unsized Put: %v", err)
	}
	for _, key := range []string{"large/obj", "large/unsized"} {
		o, oi, err := s.Open(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		n, err := io.Copy(h, o)
		o.Close()
		if err != nil || n != LargeSize || oi.Size != LargeSize || hex.EncodeToString(h.Sum(nil)) != want {
			t.Fatalf("%s read back: %d bytes (info %d), err %v, sha256 %x; want %d, %s", key, n, oi.Size, err, h.Sum(nil), LargeSize, want)
		}
	}
	// A mismatch found only at the end of a multi-part upload leaves nothing.
	_, err = s.Put(ctx, "large/bad", stream(LargeSize, 9), blob.Expect{SHA256: sum(nil)})
	if !errors.Is(err, blob.ErrMismatch) {
		t.Fatalf("large mismatch err = %v, want ErrMismatch", err)
	}
	wantAbsent(t, s, "large/bad")
}

// BenchSize is the object size for BenchmarkPut: $OUTPOST_BENCH_BLOB_SIZE
// bytes (suffixes K, M, G for KiB, MiB, GiB), 8 MiB by default.
func BenchSize(b *testing.B) int64 {
	b.Helper()
	v := os.Getenv("OUTPOST_BENCH_BLOB_SIZE")
	if v == "" {
		return 8 << 20
	}
	mult := int64(1)
	switch {
	case strings.HasSuffix(v, "K"):
		mult, v = 1<<10, strings.TrimSuffix(v, "K")
	case strings.HasSuffix(v, "M"):
		mult, v = 1<<20, strings.TrimSuffix(v, "M")
	case strings.HasSuffix(v, "G"):
		mult, v = 1<<30, strings.TrimSuffix(v, "G")
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		b.Fatalf("OUTPOST_BENCH_BLOB_SIZE=%q: want a positive size like 64M", os.Getenv("OUTPOST_BENCH_BLOB_SIZE"))
	}
	return n * mult
}

// BenchmarkPut measures streaming Puts of BenchSize bytes with a declared
// sha256 and size. Run with -benchmem: B/op shows memory per Put does not
// grow with the object.
func BenchmarkPut(b *testing.B, s blob.Store) {
	size := BenchSize(b)
	h := sha256.New()
	if _, err := io.Copy(h, stream(size, 1)); err != nil {
		b.Fatal(err)
	}
	want := hex.EncodeToString(h.Sum(nil))
	ctx := context.Background()
	runtime.GC()
	base := heapBytes()
	peak := atomic.Uint64{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			if h := heapBytes(); h > peak.Load() {
				peak.Store(h)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	})
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		key := fmt.Sprintf("bench/%d", i%4)
		if _, err := s.Put(ctx, key, stream(size, 1), blob.Expect{SHA256: want, Size: size}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	close(stop)
	wg.Wait()
	// Peak live heap above the baseline while Puts ran: flat in the size.
	grow := float64(0)
	if p := peak.Load(); p > base {
		grow = float64(p - base)
	}
	b.ReportMetric(grow/(1<<20), "peak-heap-MiB")
}

// heapBytes is the heap held by objects, live or not yet swept, read
// without stopping the world.
func heapBytes() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}
