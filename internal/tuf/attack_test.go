package tuf

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/snapshot"
	"github.com/outpost/outpost/internal/snapshot/snapshottest"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// endless is a reader that never ends.
type endless struct{}

func (endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = ' '
	}
	return len(p), nil
}

// resign rewrites published metadata at path with edit and signs it with
// signers (an attacker holding those keys).
func resign[T metadata.Roles](t *testing.T, f *fixture, path string, edit func(*metadata.Metadata[T]), signers ...Signer) []byte {
	t.Helper()
	m, err := (&metadata.Metadata[T]{}).FromBytes(f.repo.get(path))
	if err != nil {
		t.Fatal(err)
	}
	edit(m)
	m.ClearSignatures()
	if err := sign(context.Background(), m, signers...); err != nil {
		t.Fatal(err)
	}
	b, err := encode(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// binOfFiles returns the first product bin path among files.
func binOfFiles(t *testing.T, files []File) string {
	t.Helper()
	for _, x := range files {
		if strings.Contains(x.Path, ".b-") {
			return x.Path
		}
	}
	t.Fatalf("no bin among %v", paths(files))
	return ""
}

func TestClient_Attacks(t *testing.T) {
	ctx := context.Background()
	// Each case starts from a vendor with a two-product tenant (hashed
	// bins) and a client that synced it once; mount changes the world,
	// then the client updates.
	for _, tc := range []struct {
		name  string
		mount func(t *testing.T, f *fixture, m *snapshot.Manifest, c *Client) *Client
		want  error // nil: the update must succeed
	}{
		{"arbitrary software: document bytes replaced", func(t *testing.T, f *fixture, m *snapshot.Manifest, c *Client) *Client {
			m.Policies[0].Priority = 99
			for _, x := range f.build(m) {
				if strings.HasSuffix(x.Path, ".policies.json") {
					f.repo.set(x.Path, bytes.Replace(x.Data, []byte(`"priority":99`), []byte(`"priority":10`), 1))
				}
			}
			return c
		}, &metadata.ErrLengthOrHashMismatch{}},
		{"arbitrary software: target hash changed in a bin", func(t *testing.T, f *fixture, m *snapshot.Manifest, c *Client) *Client {
			addRelease(m, 0, 1)
			bin := binOfFiles(t, f.build(m))
			f.repo.set(bin, bytes.Replace(f.repo.get(bin), []byte(`"sha256":"`), []byte(`"sha256":"00`), 1))
			return c
		}, &metadata.ErrUnsignedMetadata{}},
		{"arbitrary software: product key lists another product's target", func(t *testing.T, f *fixture, m *snapshot.Manifest, c *Client) *Client {
			addRelease(m, 0, 1)
			bin := binOfFiles(t, f.build(m))
			other := m.Products[1].ProductID
			f.repo.set(bin, resign(t, f, bin, func(x *metadata.Metadata[metadata.TargetsType]) {
				for p, tf := range x.Signed.Targets {
					delete(x.Signed.Targets, p)
					x.Signed.Targets[other+"/ra_evil"] = tf
					break
				}
			}, f.product))
			return f.client(NewMemStore(), f.rootData)
		}, ErrOutsideRole},
		{"endless data: a product role delegating to 2^30 bins", func(t *testing.T, f *fixture, m *snapshot.Manifest, c *Client) *Client {
			m.Products[0].Name = "renamed" // the product role changes
			var role string
			for _, x := range f.build(m) {
				if r, ok := roleOfPath(x.Path); ok && r == ProductRole(m.Products[0].ProductID) {
					role = x.Path
				}
			}
			f.repo.set(role, resign(t, f, role, func(x *metadata.Metadata[metadata.TargetsType]) {
				x.Signed.Delegations.SuccinctRoles.BitLength = 30
			}, f.product))
			return c
		}, ErrTooLarge},
		{"rollback: an older timestamp after a restart", func(t *testing.T, f *fixture, m *snapshot.Manifest, c *Client) *Client {
			old := f.repo.get("metadata/timestamp.json")
			addRelease(m, 0, 1)
			f.build(m)
			if _, err := c.Update(ctx); err != nil {
				t.Fatal(err)
			}
			f.repo.set("metadata/timestamp.json", old)
			return NewClient(f.tenantID, f.repo, c.store, ClientOptions{Now: func() time.Time { return f.now }})
		}, &metadata.ErrBadVersionNumber{}},
		{"indefinite freeze: the timestamp expired", func(t *testing.T, f *fixture, m *snapshot.Manifest, c *Client) *Client {
			f.now = f.now.Add(25 * time.Hour)
			return NewClient(f.tenantID, f.repo, c.store, ClientOptions{Now: func() time.Time { return f.now }})
		}, ErrExpired},
		{"freshness refresh keeps it going", func(t *testing.T, f *fixture, m *snapshot.Manifest, c *Client) *Client {
			f.now = f.now.Add(25 * time.Hour)
			f.refresh()
			return c
		}, nil},
		{"endless data: timestamp", func(t *testing.T, f *fixture, m *snapshot.Manifest, c *Client) *Client {
			f.repo.override["metadata/timestamp.json"] = func() io.ReadCloser { return io.NopCloser(endless{}) }
			return c
		}, ErrTooLarge},
		{"endless data: snapshot longer than the timestamp says", func(t *testing.T, f *fixture, m *snapshot.Manifest, c *Client) *Client {
			addRelease(m, 0, 1)
			for _, x := range f.build(m) {
				if strings.HasSuffix(x.Path, ".snapshot.json") {
					f.repo.override[x.Path] = func() io.ReadCloser { return io.NopCloser(endless{}) }
				}
			}
			return c
		}, ErrTooLarge},
		{"endless data: document", func(t *testing.T, f *fixture, m *snapshot.Manifest, c *Client) *Client {
			m.Policies[0].Priority = 99
			for _, x := range f.build(m) {
				if strings.HasSuffix(x.Path, ".policies.json") {
					f.repo.override[x.Path] = func() io.ReadCloser { return io.NopCloser(endless{}) }
				}
			}
			return c
		}, ErrTooLarge},
		{"mix-and-match: an older bin under the new version", func(t *testing.T, f *fixture, m *snapshot.Manifest, c *Client) *Client {
			addRelease(m, 0, 1)
			bin := binOfFiles(t, f.build(m)) // metadata/<v>.<bin>.json
			v, role, _ := strings.Cut(strings.TrimPrefix(bin, "metadata/"), ".")
			if v != "2" {
				t.Fatalf("bin %s: want version 2", bin)
			}
			f.repo.set(bin, f.repo.get("metadata/1."+role))
			return c
		}, &metadata.ErrBadVersionNumber{}},
		{"mix-and-match: an older snapshot under the new version", func(t *testing.T, f *fixture, m *snapshot.Manifest, c *Client) *Client {
			_, sv, _ := f.state.Versions()
			old := f.repo.get(MetadataPath("snapshot", sv))
			addRelease(m, 0, 1)
			f.build(m)
			_, sv, _ = f.state.Versions()
			f.repo.set(MetadataPath("snapshot", sv), old)
			return c
		}, &metadata.ErrLengthOrHashMismatch{}},
		{"fast-forward recovery: timestamp key rotated out through the root", func(t *testing.T, f *fixture, m *snapshot.Manifest, c *Client) *Client {
			// The compromised key pushes the client to timestamp v1000.
			f.repo.set("metadata/timestamp.json", resign(t, f, "metadata/timestamp.json", func(x *metadata.Metadata[metadata.TimestampType]) {
				x.Signed.Version = 1000
			}, f.ts))
			if _, err := c.Update(ctx); err != nil {
				t.Fatal(err)
			}
			// The vendor rotates it out; the next genuine timestamp is v3.
			newTS := testSigner(t, 42)
			next, err := NextRoot(f.root, f.rootSpec(newTS))
			if err != nil {
				t.Fatal(err)
			}
			f.publishRoot(next, f.root, f.rootKeys[0], f.rootKeys[2])
			f.builder.Keys.Timestamp = []Signer{newTS}
			f.refresh()
			return c
		}, nil},
		{"wrong tenant: another tenant's repository under the same keys", func(t *testing.T, f *fixture, m *snapshot.Manifest, c *Client) *Client {
			spec := f.rootSpec(f.ts)
			spec.TenantID = "ten_other"
			r, err := NewRoot(spec)
			if err != nil {
				t.Fatal(err)
			}
			data, err := SignRoot(ctx, r, f.rootKeys...)
			if err != nil {
				t.Fatal(err)
			}
			s := NewMemStore()
			if err := Init(ctx, s, "ten_other", data); err != nil {
				t.Fatal(err)
			}
			return NewClient("ten_other", f.repo, s, ClientOptions{Now: func() time.Time { return f.now }})
		}, ErrWrongTenant},
		{"wrong tenant: another tenant's root as the next root", func(t *testing.T, f *fixture, m *snapshot.Manifest, c *Client) *Client {
			spec := f.rootSpec(f.ts)
			spec.TenantID, spec.Version = "ten_other", 2
			r, err := NewRoot(spec)
			if err != nil {
				t.Fatal(err)
			}
			data, err := SignRoot(ctx, r, f.rootKeys...)
			if err != nil {
				t.Fatal(err)
			}
			f.repo.set(MetadataPath("root", 2), data)
			return c
		}, ErrWrongTenant},
		{"unsigned bytes: a tampered timestamp copy does not block the next genuine one", func(t *testing.T, f *fixture, m *snapshot.Manifest, c *Client) *Client {
			addRelease(m, 0, 1)
			f.build(m)
			genuine := f.repo.get("metadata/timestamp.json")
			var doc map[string]any
			if err := json.Unmarshal(genuine, &doc); err != nil {
				t.Fatal(err)
			}
			doc["signatures"] = append(doc["signatures"].([]any), map[string]any{"keyid": strings.Repeat("ab", 32), "sig": strings.Repeat("00", 64)})
			tampered, err := json.MarshalIndent(doc, "", "    ")
			if err != nil {
				t.Fatal(err)
			}
			f.repo.set("metadata/timestamp.json", tampered)
			if _, err := c.Update(ctx); err != nil {
				t.Fatalf("tampered copy of a valid timestamp: %v", err)
			}
			addRelease(m, 0, 2)
			f.build(m)
			return c
		}, nil},
		{"unsigned bytes: a tampered snapshot copy is refused and the genuine one then accepted", func(t *testing.T, f *fixture, m *snapshot.Manifest, c *Client) *Client {
			addRelease(m, 0, 1)
			f.build(m)
			_, sv, _ := f.state.Versions()
			p := MetadataPath("snapshot", sv)
			genuine := f.repo.get(p)
			tampered := bytes.Clone(genuine)
			i := bytes.LastIndex(tampered, []byte(`"}]`)) - 1
			tampered[i] ^= 1 // a signature digit: same length, other bytes
			f.repo.set(p, tampered)
			if _, err := c.Update(ctx); !errors.Is(err, &metadata.ErrLengthOrHashMismatch{}) {
				t.Fatalf("tampered snapshot: got %v", err)
			}
			f.repo.set(p, genuine)
			return c
		}, nil},
		{"two root rotations caught up in one go", func(t *testing.T, f *fixture, m *snapshot.Manifest, c *Client) *Client {
			for i, seed := range []byte{50, 51} {
				ts := testSigner(t, seed)
				spec := f.rootSpec(ts)
				if i == 1 {
					// The second rotation also replaces a root key.
					f.rootKeys = []Signer{f.rootKeys[0], f.rootKeys[1], testSigner(t, 60)}
					spec = f.rootSpec(ts)
				}
				next, err := NextRoot(f.root, spec)
				if err != nil {
					t.Fatal(err)
				}
				f.publishRoot(next, f.root, f.rootKeys[0], f.rootKeys[1], f.rootKeys[2])
				f.builder.Keys.Timestamp = []Signer{ts}
			}
			f.refresh()
			return c
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, snapshottest.TenantID, ProductOptions{PerBin: 4})
			m := view(2, 30, 1)
			f.build(m)
			c := f.client(DirStore{Dir: t.TempDir()}, f.rootData)
			if _, err := c.Update(ctx); err != nil {
				t.Fatal(err)
			}
			c = tc.mount(t, f, m, c)
			_, err := c.Update(ctx)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("got %v, want success", err)
				}
				got, err := c.Repository().Manifest()
				if err != nil {
					t.Fatal(err)
				}
				if g, w := len(got.Releases), len(m.Releases); g != w {
					t.Fatalf("releases: got %d, want %d", g, w)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestVerifyArtifact_Mismatch(t *testing.T) {
	data := []byte("installer bytes")
	good := Target{Path: "p/ra", Length: int64(len(data)), SHA256: "3c5b3a8ef4e4c4a0c7a27a0b2e5a05c1b7bd1b9a8b6c6f2f6f0a5f3e2d1c0b0a"}
	for _, tc := range []struct {
		name string
		body []byte
		t    Target
		want error
	}{
		{"other bytes", []byte("evil installer!"), good, ErrTargetMismatch},
		{"shorter", data[:3], good, ErrTargetMismatch},
		{"endless", bytes.Repeat([]byte("x"), 1<<20), good, ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := VerifyArtifact(nil, bytes.NewReader(tc.body), tc.t); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}
