package fetch_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/outpost/outpost/internal/fetch"
)

func content(n int) ([]byte, fetch.Want) {
	b := make([]byte, n)
	rand.Read(b)
	s := sha256.Sum256(b)
	return b, fetch.Want{SHA256: hex.EncodeToString(s[:]), Size: int64(n)}
}

// endless never stops, counting what was read.
type endless struct{ n int64 }

func (e *endless) Read(p []byte) (int, error) { e.n += int64(len(p)); return len(p), nil }
func (e *endless) Close() error               { return nil }

func from(data []byte) fetch.Opener {
	return func(_ context.Context, off int64) (*fetch.Body, error) {
		return &fetch.Body{ReadCloser: io.NopCloser(bytes.NewReader(data[off:])), Start: off, Total: int64(len(data))}, nil
	}
}

func TestResume_Behaviour(t *testing.T) {
	ctx := context.Background()
	data, want := content(100 << 10)
	cases := []struct {
		name     string
		prefix   []byte // partial file before
		open     fetch.Opener
		wantErr  error
		wantRead int64
		kept     bool // partial file left after a failure
	}{
		{name: "from scratch", open: from(data), wantRead: want.Size},
		{name: "resumes at the partial file's end", prefix: data[:4000], open: from(data), wantRead: want.Size - 4000},
		{name: "complete partial file reads nothing", prefix: data, open: func(context.Context, int64) (*fetch.Body, error) {
			return nil, errors.New("must not be called")
		}},
		{name: "source restarting from zero truncates", prefix: data[:4000], open: func(context.Context, int64) (*fetch.Body, error) {
			return &fetch.Body{ReadCloser: io.NopCloser(bytes.NewReader(data)), Total: -1}, nil
		}, wantRead: want.Size},
		{name: "longer partial file restarts", prefix: append(bytes.Clone(data), 1, 2, 3), open: from(data), wantRead: want.Size},
		{name: "corrupt prefix is caught by the hash", prefix: append([]byte{data[0] ^ 1}, data[1:4000]...), open: from(data), wantErr: fetch.ErrMismatch, wantRead: 100<<10 - 4000},
		{name: "wrong announced total", open: func(_ context.Context, off int64) (*fetch.Body, error) {
			return &fetch.Body{ReadCloser: io.NopCloser(bytes.NewReader(data)), Total: want.Size + 1}, nil
		}, wantErr: fetch.ErrWrongSize},
		{name: "stops one byte over", open: func(context.Context, int64) (*fetch.Body, error) {
			return &fetch.Body{ReadCloser: &endless{}, Total: -1}, nil
		}, wantErr: fetch.ErrTooLarge, wantRead: want.Size + 1},
		{name: "short source keeps the partial file", open: func(context.Context, int64) (*fetch.Body, error) {
			return &fetch.Body{ReadCloser: io.NopCloser(bytes.NewReader(data[:5000])), Total: -1}, nil
		}, wantErr: fetch.ErrShort, wantRead: 5000, kept: true},
		{name: "another range", prefix: data[:4000], open: func(context.Context, int64) (*fetch.Body, error) {
			return &fetch.Body{ReadCloser: io.NopCloser(bytes.NewReader(data[10:])), Start: 10, Total: -1}, nil
		}, wantErr: fetch.ErrRange, kept: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			part, dest := filepath.Join(dir, "x.part"), filepath.Join(dir, "x")
			if tc.prefix != nil {
				if err := os.WriteFile(part, tc.prefix, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			var last int64
			n, err := fetch.Resume(ctx, part, want, tc.open, func(done, total int64) {
				if done > total {
					t.Errorf("progress %d past the total %d", done, total)
				}
				last = done
			})
			if n != tc.wantRead {
				t.Errorf("read %d bytes, want %d", n, tc.wantRead)
			}
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				if _, serr := os.Stat(part); (serr == nil) != tc.kept {
					t.Errorf("partial file kept = %v, want %v", serr == nil, tc.kept)
				}
				if fetch.Verification(err) == tc.kept {
					t.Errorf("Verification(%v) = %v", err, fetch.Verification(err))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if last != want.Size {
				t.Errorf("last progress %d, want %d", last, want.Size)
			}
			if err := fetch.Commit(part, dest); err != nil {
				t.Fatal(err)
			}
			got, _ := os.ReadFile(dest)
			if !bytes.Equal(got, data) {
				t.Error("committed file differs")
			}
		})
	}
}

func TestResume_Cancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, want := content(1000)
	part := filepath.Join(t.TempDir(), "x.part")
	_, err := fetch.Resume(ctx, part, want, func(context.Context, int64) (*fetch.Body, error) {
		return &fetch.Body{ReadCloser: &endless{}, Total: -1}, nil
	}, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// rangeServer serves data honouring Range unless ignoreRange; total, when
// not empty, replaces the Content-Range total.
func rangeServer(t *testing.T, data []byte, mode string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var off int64
		if rng := r.Header.Get("Range"); rng != "" {
			fmt.Sscanf(rng, "bytes=%d-", &off)
		}
		switch {
		case mode == "unsatisfiable" && off > 0:
			w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
		case mode == "ignore-range" || off == 0:
			w.Header().Set("Content-Length", strconv.Itoa(len(data)))
			w.Write(data)
		case mode == "wrong-total":
			w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", off, len(data)-1, len(data)+7))
			w.WriteHeader(http.StatusPartialContent)
			w.Write(data[off:])
		case mode == "gone":
			http.Error(w, "gone", http.StatusGone)
		default:
			w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", off, len(data)-1, len(data)))
			w.WriteHeader(http.StatusPartialContent)
			w.Write(data[off:])
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

var errGone = errors.New("gone")

func TestHTTP_Answers(t *testing.T) {
	data, want := content(64 << 10)
	cases := []struct {
		mode     string
		wantErr  error
		wantRead int64
	}{
		{"range", nil, want.Size - 1000},
		{"ignore-range", nil, want.Size},
		{"wrong-total", fetch.ErrWrongSize, 0},
		{"unsatisfiable", fetch.ErrRangeNotSatisfiable, 0},
		{"gone", errGone, 0},
	}
	for _, tc := range cases {
		t.Run(tc.mode, func(t *testing.T) {
			srv := rangeServer(t, data, tc.mode)
			open := fetch.HTTP(http.DefaultClient.Do, func(ctx context.Context) (*http.Request, error) {
				return http.NewRequestWithContext(ctx, "GET", srv.URL, nil)
			}, func(resp *http.Response) error { return fmt.Errorf("%w: %d", errGone, resp.StatusCode) })
			part := filepath.Join(t.TempDir(), "x.part")
			if err := os.WriteFile(part, data[:1000], 0o644); err != nil {
				t.Fatal(err)
			}
			n, err := fetch.Resume(context.Background(), part, want, open, nil)
			if tc.wantErr == nil && err != nil || !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if n != tc.wantRead {
				t.Errorf("read %d, want %d", n, tc.wantRead)
			}
			if tc.mode == "unsatisfiable" {
				if fi, err := os.Stat(part); err != nil || fi.Size() != 1000 {
					t.Errorf("after 416 the partial file must be kept (err %v)", err)
				}
			}
		})
	}
}

func TestParseContentRange_Cases(t *testing.T) {
	cases := []struct {
		in                string
		wantStart, wantTo int64
		ok                bool
	}{
		{"bytes 10-99/100", 10, 100, true},
		{"bytes 0-0/*", 0, -1, true},
		{"bytes 10-9/100", 0, 0, false},
		{"bytes 10-99/50", 0, 0, false},
		{"items 1-2/3", 0, 0, false},
		{"bytes x-1/2", 0, 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			start, total, err := fetch.ParseContentRange(tc.in)
			if (err == nil) != tc.ok || start != tc.wantStart || total != tc.wantTo {
				t.Errorf("got %d, %d, %v; want %d, %d, ok=%v", start, total, err, tc.wantStart, tc.wantTo, tc.ok)
			}
		})
	}
}
