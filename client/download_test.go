package client

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/snapshot"
)

func newTestClient(t *testing.T, s *server, v *vendor, extra ...Option) *Client {
	t.Helper()
	c, err := New(s.srv.URL, append(v.options(), extra...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func check(t *testing.T, c *Client) *Decision {
	t.Helper()
	d, err := c.Check(context.Background(), Query{Product: "app", Channel: "stable", Platform: "linux", Arch: "x64", Version: "1.0.0"})
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
	err := c.Download(context.Background(), check(t, c), dest, func(d, tot int64) { last, total = d, tot })
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
		if err := c.Download(context.Background(), check(t, c), dest, nil); err != nil {
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
		d := check(t, c)
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
		err := c.Download(context.Background(), check(t, c), dest, nil)
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
		if err := c.Download(context.Background(), check(t, c), dest, nil); err != nil {
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
		{"decision sequence altered", func(t *testing.T, v *vendor, s *server) {
			s.decision.Snapshot.Sequence = 99
		}, nil},
		{"snapshot signed by an untrusted key", func(t *testing.T, v *vendor, s *server) {
			_, evil := newKey(t)
			s.envelope = v.sign(t, v.m, evil)
		}, snapshot.ErrUntrustedKey},
		{"snapshot payload altered under the vendor signature", func(t *testing.T, v *vendor, s *server) {
			var env snapshot.Envelope
			if err := json.Unmarshal(v.env, &env); err != nil {
				t.Fatal(err)
			}
			env.Payload = bytes.Replace(env.Payload, []byte(v.m.Artifacts[0].SHA256), []byte(hex.EncodeToString(sha256Sum([]byte("x")))), 1)
			s.envelope, _ = json.Marshal(env)
			s.body = []byte("x")
		}, snapshot.ErrSignature},
		{"snapshot of another tenant", func(t *testing.T, v *vendor, s *server) {
			m := v.clone(t)
			other := catalog.NewID(catalog.PrefixTenant)
			m.TenantID, m.Tenant.TenantID = other, other
			s.envelope = v.sign(t, m, v.key)
		}, snapshot.ErrTenant},
		{"release revoked in the manifest", func(t *testing.T, v *vendor, s *server) {
			m := v.clone(t)
			at := time.Now().UTC().Truncate(time.Second)
			m.Releases[0].Status, m.Releases[0].RevokedAt = "REVOKED", &at
			s.envelope = v.sign(t, m, v.key)
		}, nil},
		{"expired snapshot", func(t *testing.T, v *vendor, s *server) {
			m := v.clone(t)
			m.CreatedAt = time.Now().Add(-48 * time.Hour).UTC().Truncate(time.Second)
			m.ExpiresAt = time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
			s.envelope = v.sign(t, m, v.key)
		}, snapshot.ErrExpired},
		{"another snapshot than the one named", func(t *testing.T, v *vendor, s *server) {
			m := v.clone(t)
			m.SnapshotID = catalog.NewID(catalog.PrefixSnapshot)
			s.envelope = v.sign(t, m, v.key)
		}, nil},
		{"oversized envelope", func(t *testing.T, v *vendor, s *server) {
			s.envelope = append(bytes.Repeat([]byte(" "), 2<<20), v.env...)
		}, snapshot.ErrTooLarge},
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
			c := newTestClient(t, s, v, WithMaxSnapshotSize(1<<20))
			dest := filepath.Join(t.TempDir(), "app.zip")
			err := c.Download(context.Background(), check(t, c), dest, nil)
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
		err := c.Download(ctx, check(t, c), dest, nil)
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
		mux := http.NewServeMux()
		mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
			w.(http.Flusher).Flush() // chunked, no Content-Length
			w.Write(append(bytes.Clone(v.payload), 0))
		})
		other := httptest.NewServer(mux)
		defer other.Close()
		s.set(func(s *server) { s.decision.Artifact.URL = other.URL + "/blob" })
		c := newTestClient(t, s, v)
		dest := filepath.Join(t.TempDir(), "app.zip")
		var max int64
		err := c.Download(context.Background(), check(t, c), dest, func(d, _ int64) { max = d })
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
		err := c.Download(context.Background(), check(t, c), dest, nil)
		if !errors.Is(err, ErrVerification) {
			t.Fatalf("got %v, want ErrVerification", err)
		}
		assertNothingAt(t, dest)
	})
}

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
	if err := c.Download(context.Background(), check(t, c), dest, nil); err != nil {
		t.Fatalf("download: %v", err)
	}
	if len(auth) != 1 || auth[0] != "" {
		t.Errorf("external host got Authorization %q, want none", auth)
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
		{"no keys", []Option{WithTenant(v.tenantID)}},
		{"no tenant", []Option{WithTrustedKeys(v.keys())}},
		{"threshold above keys", []Option{WithTrustedKeys(v.keys()), WithTenant(v.tenantID), WithThreshold(2)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(s.srv.URL, tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			dest := filepath.Join(t.TempDir(), "app.zip")
			err = c.Download(context.Background(), check(t, c), dest, nil)
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("got %v, want ErrConfig", err)
			}
			assertNothingAt(t, dest)
		})
	}
}

func TestMatchManifest_Pure(t *testing.T) {
	v := newVendor(t, 10)
	honest := v.decision()
	if err := matchManifest(&honest, v.m); err != nil {
		t.Fatalf("honest decision: %v", err)
	}
	cases := map[string]func(d *Decision){
		"sha256":         func(d *Decision) { d.Artifact.SHA256 = hex.EncodeToString(sha256Sum(nil)) },
		"size":           func(d *Decision) { d.Artifact.SizeBytes++ },
		"requires_admin": func(d *Decision) { d.Artifact.RequiresAdmin = true },
		"installer_type": func(d *Decision) { d.Artifact.InstallerType = "msi" },
		"channel":        func(d *Decision) { d.Release.Channel = "beta" },
		"product":        func(d *Decision) { d.Release.ProductID = catalog.NewID(catalog.PrefixProduct) },
		"release id":     func(d *Decision) { d.Release.ReleaseID = catalog.NewID(catalog.PrefixRelease) },
		"snapshot id":    func(d *Decision) { d.Snapshot.SnapshotID = catalog.NewID(catalog.PrefixSnapshot) },
	}
	for name, lie := range cases {
		t.Run(name, func(t *testing.T) {
			d := v.decision()
			lie(&d)
			if err := matchManifest(&d, v.m); !errors.Is(err, ErrVerification) {
				t.Errorf("got %v, want ErrVerification", err)
			}
		})
	}
}
