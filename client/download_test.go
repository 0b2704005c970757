package client

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/tuf"
	"github.com/outpost/outpost/internal/tuf/tufhttp"
	"github.com/outpost/outpost/internal/tuf/tuftest"
)

func newTestClient(t *testing.T, s *server, v *vendor, extra ...Option) *Client {
	t.Helper()
	c, err := New(s.srv.URL, append(v.options(t), extra...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func check(t *testing.T, c *Client, v *vendor) *Decision {
	t.Helper()
	d, err := c.Check(context.Background(), Query{Product: v.m.Products[0].ProductID, Channel: "stable", Platform: "linux", Arch: "x64", Version: "1.0.0"})
	if err != nil {
		t.Fatalf("check: %v", err)
	}
	return d
}

func assertNothingAt(t *testing.T, dest string) {
	t.Helper()
	for _, p := range []string{dest, dest + ".part"} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s exists after a failed verification (stat err %v)", filepath.Base(p), err)
		}
	}
}

func TestDownload_Verified(t *testing.T) {
	v := newVendor(t, 300<<10)
	s := newServer(t, v)
	c := newTestClient(t, s, v)
	dest := filepath.Join(t.TempDir(), "app.zip")
	var last, total int64
	err := c.Download(context.Background(), check(t, c, v), dest, func(d, tot int64) { last, total = d, tot })
	if err != nil {
		t.Fatalf("download: %v", err)
	}
	got, _ := os.ReadFile(dest)
	if !bytes.Equal(got, v.payload) {
		t.Errorf("dest holds %d bytes, not the payload of %d", len(got), len(v.payload))
	}
	if _, err := os.Stat(dest + ".part"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf(".part left behind: %v", err)
	}
	if last != int64(len(v.payload)) || total != int64(len(v.payload)) {
		t.Errorf("progress got %d/%d, want %d/%d", last, total, len(v.payload), len(v.payload))
	}
}

func TestDownload_ResumesAfterDroppedConnection(t *testing.T) {
	const size = 500 << 10
	t.Run("within one call", func(t *testing.T) {
		v := newVendor(t, size)
		s := newServer(t, v)
		s.set(func(s *server) { s.dropAfter = 200 << 10 })
		c := newTestClient(t, s, v, WithRetries(2, time.Millisecond))
		dest := filepath.Join(t.TempDir(), "app.zip")
		if err := c.Download(context.Background(), check(t, c, v), dest, nil); err != nil {
			t.Fatalf("download: %v", err)
		}
		got, _ := os.ReadFile(dest)
		if !bytes.Equal(got, v.payload) {
			t.Fatalf("dest differs from payload")
		}
		want := []string{"", "bytes=" + strconv.Itoa(200<<10) + "-"}
		if len(s.ranges) != 2 || s.ranges[0] != want[0] || s.ranges[1] != want[1] {
			t.Errorf("Range headers got %q, want %q", s.ranges, want)
		}
	})
	t.Run("across calls", func(t *testing.T) {
		v := newVendor(t, size)
		s := newServer(t, v)
		s.set(func(s *server) { s.dropAfter = 123457 })
		c := newTestClient(t, s, v) // no retries
		dest := filepath.Join(t.TempDir(), "app.zip")
		d := check(t, c, v)
		err := c.Download(context.Background(), d, dest, nil)
		if !errors.Is(err, ErrNetwork) {
			t.Fatalf("first download: got %v, want ErrNetwork", err)
		}
		fi, err := os.Stat(dest + ".part")
		if err != nil || fi.Size() != 123457 {
			t.Fatalf(".part after drop: %v size %d, want 123457", err, fi.Size())
		}
		if _, err := os.Stat(dest); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("dest exists after a dropped download")
		}
		if err := c.Download(context.Background(), d, dest, nil); err != nil {
			t.Fatalf("second download: %v", err)
		}
		got, _ := os.ReadFile(dest)
		if !bytes.Equal(got, v.payload) {
			t.Fatalf("dest differs from payload")
		}
		if last := s.ranges[len(s.ranges)-1]; last != "bytes=123457-" {
			t.Errorf("resume Range got %q, want bytes=123457-", last)
		}
	})
	t.Run("corrupt prefix is caught", func(t *testing.T) {
		v := newVendor(t, size)
		s := newServer(t, v)
		c := newTestClient(t, s, v)
		dest := filepath.Join(t.TempDir(), "app.zip")
		bad := bytes.Repeat([]byte{0xAA}, 1000) // not the payload's first bytes
		os.WriteFile(dest+".part", bad, 0o644)
		err := c.Download(context.Background(), check(t, c, v), dest, nil)
		if !errors.Is(err, ErrVerification) {
			t.Fatalf("got %v, want ErrVerification", err)
		}
		assertNothingAt(t, dest)
	})
	t.Run("oversized part starts over", func(t *testing.T) {
		v := newVendor(t, 1000)
		s := newServer(t, v)
		c := newTestClient(t, s, v)
		dest := filepath.Join(t.TempDir(), "app.zip")
		os.WriteFile(dest+".part", make([]byte, 5000), 0o644)
		if err := c.Download(context.Background(), check(t, c, v), dest, nil); err != nil {
			t.Fatalf("download: %v", err)
		}
		got, _ := os.ReadFile(dest)
		if !bytes.Equal(got, v.payload) {
			t.Fatalf("dest differs from payload")
		}
	})
}

func TestDownload_LyingMirror(t *testing.T) {
	const size = 64 << 10
	cases := []struct {
		name  string
		lie   func(t *testing.T, v *vendor, s *server)
		cause error // a more specific error, when there is one
	}{
		{"bytes altered", func(t *testing.T, v *vendor, s *server) {
			b := bytes.Clone(v.payload)
			b[size/2] ^= 1
			s.body = b
		}, nil},
		{"decision sha256 altered together with bytes", func(t *testing.T, v *vendor, s *server) {
			b := bytes.Clone(v.payload)
			copy(b, "MALWARE")
			s.body = b
			s.decision.Artifact.SHA256 = hex.EncodeToString(sha256Sum(b))
		}, nil},
		{"decision size and sha256 altered with longer bytes", func(t *testing.T, v *vendor, s *server) {
			b := append(bytes.Clone(v.payload), "trojan"...)
			s.body = b
			s.decision.Artifact.SHA256 = hex.EncodeToString(sha256Sum(b))
			s.decision.Artifact.SizeBytes = int64(len(b))
		}, nil},
		{"decision names another artifact id", func(t *testing.T, v *vendor, s *server) {
			s.decision.Artifact.ArtifactID = catalog.NewID(catalog.PrefixArtifact)
		}, nil},
		{"decision version altered", func(t *testing.T, v *vendor, s *server) {
			s.decision.Release.Version = "9.9.9"
		}, nil},
		{"decision names another product's target", func(t *testing.T, v *vendor, s *server) {
			s.decision.Artifact.Target = tuf.ArtifactTarget(catalog.NewID(catalog.PrefixProduct), v.m.Releases[0].Artifacts[0].ReleaseArtifactID)
		}, nil},
		{"metadata signed by untrusted keys", func(t *testing.T, v *vendor, s *server) {
			other := tuftest.NewVendor(t, v.tenantID, 100)
			other.Build(v.clone(t))
			s.repo = tufhttp.New(other.Repo, tufhttp.Options{Prefix: "/tuf/"})
		}, nil},
		{"timestamp altered under the vendor signature", func(t *testing.T, v *vendor, s *server) {
			honest := s.repo
			s.repo = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/tuf/metadata/timestamp.json" {
					honest.ServeHTTP(w, r)
					return
				}
				b := v.tv.Repo.Get("metadata/timestamp.json")
				w.Write(bytes.Replace(b, []byte(`"version":`), []byte(`"version":1`), 1))
			})
		}, nil},
		{"metadata of another tenant", func(t *testing.T, v *vendor, s *server) {
			other := tuftest.NewVendor(t, catalog.NewID(catalog.PrefixTenant), 0)
			m := v.clone(t)
			m.TenantID, m.Tenant.TenantID = other.TenantID, other.TenantID
			other.Build(m)
			s.repo = tufhttp.New(other.Repo, tufhttp.Options{Prefix: "/tuf/"})
		}, nil},
		{"release revoked in the current metadata", func(t *testing.T, v *vendor, s *server) {
			m := v.clone(t)
			at := time.Now().UTC().Truncate(time.Second)
			m.Releases[0].Status, m.Releases[0].RevokedAt = "REVOKED", &at
			v.publish(t, m)
		}, nil},
		{"expired metadata", func(t *testing.T, v *vendor, s *server) {
			v.tv.Now = time.Now().Add(-48 * time.Hour).UTC().Truncate(time.Second)
			v.tv.Refresh()
		}, nil},
		{"oversized timestamp", func(t *testing.T, v *vendor, s *server) {
			honest := s.repo
			s.repo = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/tuf/metadata/timestamp.json" {
					honest.ServeHTTP(w, r)
					return
				}
				w.Write(append(bytes.Repeat([]byte(" "), 2<<20), v.tv.Repo.Get("metadata/timestamp.json")...))
			})
		}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := newVendor(t, size)
			s := newServer(t, v)
			s.set(func(s *server) {
				d := v.decision()
				s.decision = d
				tc.lie(t, v, s)
			})
			c := newTestClient(t, s, v)
			dest := filepath.Join(t.TempDir(), "app.zip")
			err := c.Download(context.Background(), check(t, c, v), dest, nil)
			if !errors.Is(err, ErrVerification) {
				t.Fatalf("got %v, want ErrVerification", err)
			}
			if tc.cause != nil && !errors.Is(err, tc.cause) {
				t.Errorf("got %v, want it to wrap %v", err, tc.cause)
			}
			assertNothingAt(t, dest)
		})
	}
}

func TestDownload_StopsOneByteOver(t *testing.T) {
	t.Run("endless stream", func(t *testing.T) {
		v := newVendor(t, 10_000)
		s := newServer(t, v)
		s.set(func(s *server) { s.endless = true })
		c := newTestClient(t, s, v)
		dest := filepath.Join(t.TempDir(), "app.zip")
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		err := c.Download(ctx, check(t, c, v), dest, nil)
		if !errors.Is(err, ErrVerification) {
			t.Fatalf("got %v, want ErrVerification", err)
		}
		assertNothingAt(t, dest)
	})
	t.Run("one byte over", func(t *testing.T) {
		v := newVendor(t, 10_000)
		s := newServer(t, v)
		// A server that sends the payload plus one byte without announcing
		// a length: the client must read size+1 bytes and stop.
		s.set(func(s *server) { s.body, s.chunked = append(bytes.Clone(v.payload), 0), true })
		c := newTestClient(t, s, v)
		dest := filepath.Join(t.TempDir(), "app.zip")
		var max int64
		err := c.Download(context.Background(), check(t, c, v), dest, func(d, _ int64) { max = d })
		if !errors.Is(err, ErrVerification) {
			t.Fatalf("got %v, want ErrVerification", err)
		}
		if max > 10_000 {
			t.Errorf("progress reached %d, past the signed 10000", max)
		}
		assertNothingAt(t, dest)
	})
	t.Run("announced length over", func(t *testing.T) {
		v := newVendor(t, 10_000)
		s := newServer(t, v)
		s.set(func(s *server) { s.body = append(bytes.Clone(v.payload), 0) })
		c := newTestClient(t, s, v)
		dest := filepath.Join(t.TempDir(), "app.zip")
		err := c.Download(context.Background(), check(t, c, v), dest, nil)
		if !errors.Is(err, ErrVerification) {
			t.Fatalf("got %v, want ErrVerification", err)
		}
		assertNothingAt(t, dest)
	})
}

// TestDownload_TokenStaysOnServer: the bytes come from the server's
// /tuf/targets/, never from a URL the answer names elsewhere, so the
// token reaches no other host.
func TestDownload_TokenStaysOnServer(t *testing.T) {
	v := newVendor(t, 1000)
	s := newServer(t, v)
	var auth []string
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth = append(auth, r.Header.Get("Authorization"))
		w.Write(v.payload)
	}))
	defer other.Close()
	s.set(func(s *server) { s.decision.Artifact.URL = other.URL + "/external/app.zip" })
	c := newTestClient(t, s, v, WithToken("secret"))
	dest := filepath.Join(t.TempDir(), "app.zip")
	if err := c.Download(context.Background(), check(t, c, v), dest, nil); err != nil {
		t.Fatalf("download: %v", err)
	}
	if len(auth) != 0 {
		t.Errorf("external host got %d requests (Authorization %q), want none", len(auth), auth)
	}
	if s.auth[0] != "Bearer secret" {
		t.Errorf("own server got Authorization %q, want the bearer token", s.auth[0])
	}
}

func TestDownload_NeedsTrust(t *testing.T) {
	v := newVendor(t, 100)
	s := newServer(t, v)
	cases := []struct {
		name string
		opts []Option
	}{
		{"nothing", nil},
		{"vendor keys but no TUF root", []Option{WithTrustedKeys(v.keys()), WithTenant(v.tenantID)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(s.srv.URL, tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			dest := filepath.Join(t.TempDir(), "app.zip")
			err = c.Download(context.Background(), check(t, c, v), dest, nil)
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("got %v, want ErrConfig", err)
			}
			assertNothingAt(t, dest)
		})
	}
}
