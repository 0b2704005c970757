package controlplaned_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/fetcher"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"

	"github.com/outpost/outpost/internal/blob/disk"
	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/controlplaned"
	"github.com/outpost/outpost/internal/keyring"
	"github.com/outpost/outpost/internal/store/bolt"
	"github.com/outpost/outpost/internal/tuf"
	"github.com/outpost/outpost/internal/tufkeys"
)

// clockSkew moves the control planes' clock forward (freshness tests).
var clockSkew atomic.Int64

// tufCP is a real control plane (ControlPlane on 127.0.0.1) with TUF
// publishing on, over a data dir that survives restarts.
type tufCP struct {
	dir  string
	db   *bolt.DB
	app  *controlplane.App
	cp   *controlplaned.ControlPlane
	op   context.Context
	stop func()
}

func startTUF(t *testing.T, dir string, tune ...func(*controlplane.Config)) *tufCP {
	t.Helper()
	db, err := bolt.Open(filepath.Join(dir, "cp.db"), bolt.Options{NoWarm: true})
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := disk.New(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	keys := filepath.Join(dir, "keys")
	dek := bytes.Repeat([]byte{7}, 32)
	sealer, err := controlplane.NewSealer(dek)
	if err != nil {
		t.Fatal(err)
	}
	var cfg controlplane.Config
	for _, f := range tune {
		f(&cfg)
	}
	app := controlplane.New(controlplane.Options{Store: db, Blobs: blobs, Keys: controlplaned.DirKeyring(keys), Secrets: sealer, Config: cfg, Now: func() time.Time {
		return time.Now().Add(time.Duration(clockSkew.Load()))
	}})
	if err := controlplaned.EnableTUF(app, keys); err != nil {
		t.Fatal(err)
	}
	if !app.TUFEnabled() {
		t.Fatal("TUF publishing is off after root init")
	}
	cp, err := controlplaned.New(app, db, controlplaned.Config{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- cp.Run(ctx) }()
	var once sync.Once
	e := &tufCP{dir: dir, db: db, app: app, cp: cp, op: controlplane.AsOperator(context.Background(), catalog.Actor{Type: catalog.ActorUser, ID: "test"})}
	e.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-ran; err != nil {
				t.Errorf("Run: %v", err)
			}
			if err := cp.Close(context.Background()); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
	t.Cleanup(e.stop)
	return e
}

// newTUFDir makes a data dir with a snapshot key and a TUF root of t of n
// keys (offline in <dir>/offline when offline is set).
func newTUFDir(t *testing.T, threshold, n int, offline bool) (dir string, rootKeys []string) {
	t.Helper()
	dir = t.TempDir()
	keys := filepath.Join(dir, "keys")
	if _, err := keyring.Generate(keys); err != nil {
		t.Fatal(err)
	}
	out := ""
	if offline {
		out = filepath.Join(dir, "offline")
	}
	files, err := controlplaned.TUFDir(keys).Init(threshold, n, out)
	if err != nil {
		t.Fatal(err)
	}
	return dir, files
}

type seeded struct {
	tenant, product string
	tenantToken     string
	mirrorCred      string
}

func (e *tufCP) must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func (e *tufCP) seedTenant(t *testing.T, name, productID string) seeded {
	t.Helper()
	ten, err := e.app.CreateTenant(e.op, controlplane.TenantInput{Name: name})
	e.must(t, err)
	_, err = e.app.CreateEntitlement(e.op, ten.TenantID, controlplane.EntitlementInput{ProductID: productID, Policy: json.RawMessage(`{"max_seats":1}`)})
	e.must(t, err)
	mir, err := e.app.CreateMirror(e.op, ten.TenantID, controlplane.MirrorInput{AllowedChannels: []string{"stable"}})
	e.must(t, err)
	tok, err := e.app.CreateToken(e.op, controlplane.TokenInput{Role: catalog.RoleTenant, TenantID: ten.TenantID})
	e.must(t, err)
	_, err = e.app.BuildSnapshot(e.op, ten.TenantID)
	e.must(t, err)
	return seeded{tenant: ten.TenantID, product: productID, tenantToken: tok.Secret, mirrorCred: mir.Credential}
}

// release publishes version with an artifact of body and returns its
// TUF target path.
func (e *tufCP) release(t *testing.T, productID, version string, body []byte) string {
	t.Helper()
	sum := sha256.Sum256(body)
	art, err := e.app.UploadArtifact(e.op, bytes.NewReader(body), controlplane.UploadInput{SHA256: hex.EncodeToString(sum[:]), SizeBytes: int64(len(body)), Length: int64(len(body))})
	e.must(t, err)
	rel, err := e.app.CreateRelease(e.op, productID, controlplane.ReleaseInput{Channel: "stable", Version: version})
	e.must(t, err)
	ra, err := e.app.AttachArtifact(e.op, rel.ReleaseID, controlplane.AttachInput{ArtifactID: art.ArtifactID, Platform: "linux", Arch: "x64", InstallerType: "tar.gz"})
	e.must(t, err)
	return tuf.ArtifactTarget(productID, ra.ReleaseArtifactID)
}

// go-tuf's fetcher may change http.DefaultClient: the test's requests
// use their own.
var (
	plainTransport = &http.Transport{}
	plainClient    = &http.Client{Transport: plainTransport}
)

// counting is the go-tuf fetcher's transport: it authenticates and
// records what each successful request fetched.
type counting struct {
	token string
	mu    sync.Mutex
	got   map[string]int64 // file name -> bytes (after transport gzip)
}

func (c *counting) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+c.token)
	res, err := plainTransport.RoundTrip(r)
	if err != nil || res.StatusCode != http.StatusOK {
		return res, err
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.got[r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]] += int64(len(body))
	c.mu.Unlock()
	res.Body = io.NopCloser(bytes.NewReader(body))
	return res, nil
}

func (c *counting) reset() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	got := c.got
	c.got = map[string]int64{}
	return got
}

// goTUF is the unmodified go-tuf v2 updater, keeping its trusted
// metadata in a directory across refreshes.
type goTUF struct {
	base, work string
	root       []byte
	rt         *counting
}

func (g *goTUF) refresh(t *testing.T) (*updater.Updater, error) {
	t.Helper()
	cfg, err := config.New(g.base+"/metadata", g.root)
	if err != nil {
		t.Fatal(err)
	}
	cfg.RemoteTargetsURL = g.base + "/targets"
	cfg.LocalMetadataDir = filepath.Join(g.work, "metadata")
	cfg.LocalTargetsDir = filepath.Join(g.work, "targets")
	f := fetcher.NewDefaultFetcher().NewFetcherWithRoundTripper(g.rt)
	f.SetRetry(time.Millisecond, 1)
	cfg.Fetcher = f
	u, err := updater.New(cfg)
	if err != nil {
		return nil, err
	}
	return u, u.Refresh()
}

func (g *goTUF) download(t *testing.T, u *updater.Updater, target string) []byte {
	t.Helper()
	info, err := u.GetTargetInfo(target)
	if err != nil {
		t.Fatalf("target %s: %v", target, err)
	}
	_, data, err := u.DownloadTarget(info, filepath.Join(g.work, "dl-"+strings.ReplaceAll(target, "/", "_")), "")
	if err != nil {
		t.Fatalf("download %s: %v", target, err)
	}
	return data
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// TestControlPlane_TUFRepository runs the unmodified go-tuf v2 updater,
// initialised with the tenant's root.json, against a real control plane:
// first sync and an artifact download, a new release (only the changed
// product role, snapshot and timestamp are fetched), two root rotations
// (one replacing the timestamp key), tenant isolation, and a restart that
// re-signs nothing.
func TestControlPlane_TUFRepository(t *testing.T) {
	dir, _ := newTUFDir(t, 1, 1, false)
	e := startTUF(t, dir)
	prod, err := e.app.CreateProduct(e.op, controlplane.ProductInput{Name: "app", Distribution: catalog.DistributionOpen})
	e.must(t, err)
	body1 := randBytes(100 << 10)
	target1 := e.release(t, prod.ProductID, "1.0.0", body1)
	a := e.seedTenant(t, "a", prod.ProductID)
	b := e.seedTenant(t, "b", prod.ProductID)

	root, err := e.app.TUFRoot(e.op, a.tenant)
	e.must(t, err)
	base := "http://" + e.cp.Addr()
	g := &goTUF{base: base + "/v1/tenants/" + a.tenant + "/tuf", work: t.TempDir(), root: root, rt: &counting{token: a.tenantToken, got: map[string]int64{}}}

	t.Run("first sync and download", func(t *testing.T) {
		u, err := g.refresh(t)
		if err != nil {
			t.Fatal(err)
		}
		if got := g.download(t, u, target1); !bytes.Equal(got, body1) {
			t.Fatal("downloaded artifact differs")
		}
		first := g.rt.reset()
		var total int64
		for _, n := range first {
			total += n
		}
		t.Logf("first sync: %d files, %d bytes (artifact included)", len(first), total)
	})

	body2 := randBytes(50 << 10)
	var target2 string
	t.Run("a new release fetches only what changed", func(t *testing.T) {
		target2 = e.release(t, prod.ProductID, "1.1.0", body2)
		_, err := e.app.BuildSnapshot(e.op, a.tenant)
		e.must(t, err)
		u, err := g.refresh(t)
		if err != nil {
			t.Fatal(err)
		}
		// go-tuf fetches delegated roles when a target is looked up.
		if _, err := u.GetTargetInfo(target2); err != nil {
			t.Fatal(err)
		}
		got := g.rt.reset()
		var fetched []string
		var total int64
		for name, n := range got {
			fetched = append(fetched, name)
			total += n
		}
		slices.Sort(fetched)
		v, err := e.app.TUFVersions(e.op, a.tenant)
		e.must(t, err)
		want := []string{"timestamp.json", itoa(v.Snapshot) + ".snapshot.json"}
		var role string
		for _, n := range fetched {
			if strings.Contains(n, ".p-"+prod.ProductID+".json") {
				role = n
			}
		}
		if role == "" {
			t.Fatalf("fetched %v: no product role", fetched)
		}
		want = append(want, role)
		slices.Sort(want)
		if !slices.Equal(fetched, want) {
			t.Fatalf("fetched %v, want %v", fetched, want)
		}
		t.Logf("one new release: %d bytes of metadata (%v)", total, got)
		if got := g.download(t, u, target2); !bytes.Equal(got, body2) {
			t.Fatal("downloaded artifact differs")
		}
		g.rt.reset()
	})

	t.Run("two root rotations, one replacing the timestamp key", func(t *testing.T) {
		keys := controlplaned.TUFDir(filepath.Join(dir, "keys"))
		e.must(t, keys.Replace(tufkeys.Timestamp))
		if n, err := e.app.RotateRoots(e.op); err != nil || n != 2 {
			t.Fatalf("rotate: %d, %v", n, err)
		}
		if n, err := e.app.RotateRoots(e.op); err != nil || n != 2 {
			t.Fatalf("rotate again: %d, %v", n, err)
		}
		u, err := g.refresh(t)
		if err != nil {
			t.Fatal(err)
		}
		if got := u.GetTrustedMetadataSet().Root.Signed.Version; got != 3 {
			t.Fatalf("updater trusts root v%d, want 3", got)
		}
		if got := g.download(t, u, target1); !bytes.Equal(got, body1) {
			t.Fatal("downloaded artifact differs after rotation")
		}
	})

	t.Run("tenant isolation", func(t *testing.T) {
		get := func(path, token string) int {
			req, _ := http.NewRequest("GET", base+path, nil)
			req.Header.Set("Authorization", "Bearer "+token)
			res, err := plainClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			t.Logf("%s: %d %.200s", path, res.StatusCode, b)
			return res.StatusCode
		}
		for _, c := range []struct {
			name, path, token string
			want              int
		}{
			{"own tenant token", "/v1/tenants/" + a.tenant + "/tuf/metadata/timestamp.json", a.tenantToken, 200},
			{"another tenant's token", "/v1/tenants/" + a.tenant + "/tuf/metadata/timestamp.json", b.tenantToken, 404},
			{"another tenant's root", "/v1/tenants/" + a.tenant + "/tuf/metadata/1.root.json", b.tenantToken, 404},
			{"mirror of the tenant", "/v1/mirror/tuf/metadata/timestamp.json", a.mirrorCred, 200},
			{"mirror artifact", "/v1/mirror/tuf/targets/" + prod.ProductID + "/" + hexSum(body1) + "." + strings.TrimPrefix(target1, prod.ProductID+"/"), a.mirrorCred, 200},
			{"artifact under a wrong hash", "/v1/mirror/tuf/targets/" + prod.ProductID + "/" + hexSum(body2) + "." + strings.TrimPrefix(target1, prod.ProductID+"/"), a.mirrorCred, 404},
			{"mirror on the tenant route", "/v1/tenants/" + a.tenant + "/tuf/metadata/timestamp.json", a.mirrorCred, 403},
			{"traversal", "/v1/mirror/tuf/metadata/../../keys", a.mirrorCred, 404},
		} {
			t.Run(c.name, func(t *testing.T) {
				if got := get(c.path, c.token); got != c.want {
					t.Fatalf("status %d, want %d", got, c.want)
				}
			})
		}
		// The mirror sees its own tenant's timestamp, not another's.
		ga := fetchBody(t, base+"/v1/mirror/tuf/metadata/timestamp.json", a.mirrorCred)
		gb := fetchBody(t, base+"/v1/mirror/tuf/metadata/timestamp.json", b.mirrorCred)
		if !bytes.Contains(ga, []byte(a.tenant)) || !bytes.Contains(gb, []byte(b.tenant)) {
			t.Fatal("a mirror was served another tenant's timestamp")
		}
	})

	t.Run("freshness refresh ships the timestamp alone", func(t *testing.T) {
		defer clockSkew.Store(0)
		e.must(t, e.app.SetTUFTimestampTTL(e.op, a.tenant, 2*time.Hour))
		before, err := e.app.TUFVersions(e.op, a.tenant)
		e.must(t, err)
		for _, c := range []struct {
			skew time.Duration
			want int // tenant a's refreshes (b keeps the 24h default)
		}{
			{0, 0},                             // the 24h timestamp is fresh
			{23 * time.Hour, 1},                // 1h of 24h left: a (2h lifetime) is re-signed
			{23*time.Hour + 30*time.Minute, 0}, // 1h30 of a's 2h left
			{24*time.Hour + 30*time.Minute, 1}, // 30m of a's 2h left; b was re-signed at +23h
		} {
			clockSkew.Store(int64(c.skew))
			n, err := e.app.RefreshTUF(e.op)
			e.must(t, err)
			// Tenant b's 24h timestamp needs a refresh from 12h on: once.
			if wantB := 0; c.skew == 23*time.Hour {
				wantB = 1
				if n != c.want+wantB {
					t.Fatalf("at +%v: %d refreshed, want %d", c.skew, n, c.want+wantB)
				}
				continue
			}
			if n != c.want {
				t.Fatalf("at +%v: %d refreshed, want %d", c.skew, n, c.want)
			}
		}
		after, err := e.app.TUFVersions(e.op, a.tenant)
		e.must(t, err)
		if after.Timestamp != before.Timestamp+2 || after.Snapshot != before.Snapshot || after.Targets != before.Targets {
			t.Fatalf("versions %+v after %+v: want the timestamp alone re-signed, twice", after, before)
		}
		g.rt.reset()
		if _, err := g.refresh(t); err != nil {
			t.Fatal(err)
		}
		got := withoutRoots(g.rt.reset())
		if n := got["timestamp.json"]; n == 0 || n > 4096 || len(got) != 1 {
			t.Fatalf("refresh fetched %v, want the timestamp alone, at most 4 KiB", got)
		}
		t.Logf("freshness-only refresh: %d bytes", got["timestamp.json"])
	})

	t.Run("restart re-signs nothing", func(t *testing.T) {
		before, err := e.app.TUFVersions(e.op, a.tenant)
		e.must(t, err)
		e.stop()
		e = startTUF(t, dir)
		_, err = e.app.BuildSnapshot(e.op, a.tenant)
		e.must(t, err)
		after, err := e.app.TUFVersions(e.op, a.tenant)
		e.must(t, err)
		if *after != *before {
			t.Fatalf("versions after restart and a build with no change: %+v, want %+v", after, before)
		}
		if n, err := e.app.RefreshTUF(e.op); err != nil || n != 0 {
			t.Fatalf("refresh of fresh timestamps: %d, %v", n, err)
		}
		g.base = "http://" + e.cp.Addr() + "/v1/tenants/" + a.tenant + "/tuf"
		g.rt.reset()
		if _, err := g.refresh(t); err != nil {
			t.Fatal(err)
		}
		got := withoutRoots(g.rt.reset())
		if _, ok := got["timestamp.json"]; !ok || len(got) != 1 {
			t.Fatalf("refresh after restart fetched %v, want the timestamp alone", got)
		}
	})
}

// withoutRoots drops the root files from what go-tuf fetched: it starts
// from the root it is configured with, so each refresh walks the root
// chain again.
func withoutRoots(got map[string]int64) map[string]int64 {
	for name := range got {
		if strings.HasSuffix(name, ".root.json") {
			delete(got, name)
		}
	}
	return got
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func hexSum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func fetchBody(t *testing.T, url, token string) []byte {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := plainClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRootCeremony_Threshold runs the offline-root ceremony with 2-of-3
// root keys: no root is published without one, one signature is refused,
// two are accepted, and a rotation asks for a ceremony.
func TestRootCeremony_Threshold(t *testing.T) {
	dir, rootKeys := newTUFDir(t, 2, 3, true)
	if len(rootKeys) != 3 {
		t.Fatalf("root keys %v, want 3 files", rootKeys)
	}
	e := startTUF(t, dir)
	prod, err := e.app.CreateProduct(e.op, controlplane.ProductInput{Name: "app", Distribution: catalog.DistributionOpen})
	e.must(t, err)
	e.release(t, prod.ProductID, "1.0.0", randBytes(1024))
	a := e.seedTenant(t, "a", prod.ProductID)
	if _, err := e.app.TUFRoot(e.op, a.tenant); catalog.ErrorCode(err) != catalog.ENOTFOUND {
		t.Fatalf("root with offline keys before a ceremony: %v, want not_found", err)
	}
	signer := func(path string) tuf.Signer {
		k, err := keyring.LoadFile(path)
		e.must(t, err)
		s, err := tufkeys.Signer(k)
		e.must(t, err)
		return s
	}
	// The file travels as JSON between the machines.
	roundTrip := func(c *controlplane.RootCeremony) *controlplane.RootCeremony {
		b, err := json.Marshal(c)
		e.must(t, err)
		var out controlplane.RootCeremony
		e.must(t, json.Unmarshal(b, &out))
		return &out
	}
	var g *goTUF
	c, err := e.app.ExportRoots(e.op)
	e.must(t, err)
	c = roundTrip(c)
	e.must(t, controlplane.SignRoots(context.Background(), c, signer(rootKeys[0])))
	c = roundTrip(c)
	t.Run("one signature is refused", func(t *testing.T) {
		if n, err := e.app.ImportRoots(e.op, c); catalog.ErrorCode(err) != catalog.EINVALID || n != 0 {
			t.Fatalf("import: %d, %v, want invalid", n, err)
		}
		if _, err := e.app.TUFRoot(e.op, a.tenant); catalog.ErrorCode(err) != catalog.ENOTFOUND {
			t.Fatalf("a refused import published a root: %v", err)
		}
	})
	t.Run("two signatures are accepted", func(t *testing.T) {
		e.must(t, controlplane.SignRoots(context.Background(), c, signer(rootKeys[2])))
		if n, err := e.app.ImportRoots(e.op, roundTrip(c)); err != nil || n != 1 {
			t.Fatalf("import: %d, %v", n, err)
		}
		root, err := e.app.TUFRoot(e.op, a.tenant)
		e.must(t, err)
		g = &goTUF{base: "http://" + e.cp.Addr() + "/v1/tenants/" + a.tenant + "/tuf", work: t.TempDir(), root: root, rt: &counting{token: a.tenantToken, got: map[string]int64{}}}
		if _, err := g.refresh(t); err != nil {
			t.Fatalf("go-tuf refresh: %v", err)
		}
	})
	t.Run("a replaced online key signs only once the root lists it", func(t *testing.T) {
		if g == nil {
			t.Skip("no root")
		}
		keys := controlplaned.TUFDir(filepath.Join(dir, "keys"))
		old, err := keys.Signers(tufkeys.Timestamp)
		e.must(t, err)
		e.must(t, keys.Replace(tufkeys.Timestamp))
		fresh, err := keys.Signers(tufkeys.Timestamp)
		e.must(t, err)
		signedBy := func() string {
			var ts struct {
				Signatures []struct {
					KeyID string `json:"keyid"`
				} `json:"signatures"`
			}
			b := fetchBody(t, g.base+"/metadata/timestamp.json", a.tenantToken)
			e.must(t, json.Unmarshal(b, &ts))
			if len(ts.Signatures) != 1 {
				t.Fatalf("timestamp signatures %+v", ts.Signatures)
			}
			return ts.Signatures[0].KeyID
		}
		// A new release before the ceremony: still the old key, which
		// the clients' root lists.
		e.release(t, prod.ProductID, "1.1.0", randBytes(512))
		_, err = e.app.BuildSnapshot(e.op, a.tenant)
		e.must(t, err)
		if got := signedBy(); got != old[0].KeyID() {
			t.Fatalf("timestamp signed by %s before the ceremony, want the old key %s", got, old[0].KeyID())
		}
		if _, err := g.refresh(t); err != nil {
			t.Fatalf("refresh before the ceremony: %v", err)
		}
		next, err := e.app.ExportRoots(e.op)
		e.must(t, err)
		next = roundTrip(next)
		e.must(t, controlplane.SignRoots(context.Background(), next, signer(rootKeys[1])))
		e.must(t, controlplane.SignRoots(context.Background(), next, signer(rootKeys[2])))
		if n, err := e.app.ImportRoots(e.op, roundTrip(next)); err != nil || n != 1 {
			t.Fatalf("import: %d, %v", n, err)
		}
		if got := signedBy(); got != fresh[0].KeyID() {
			t.Fatalf("timestamp signed by %s after the ceremony, want the new key %s", got, fresh[0].KeyID())
		}
		u, err := g.refresh(t)
		if err != nil {
			t.Fatalf("refresh after the ceremony: %v", err)
		}
		if v := u.GetTrustedMetadataSet().Root.Signed.Version; v != 2 {
			t.Fatalf("updater trusts root v%d, want 2", v)
		}
	})
	t.Run("rotation asks for a ceremony", func(t *testing.T) {
		if _, err := e.app.RotateRoots(e.op); !errors.Is(err, controlplane.ErrOfflineRoot) {
			t.Fatalf("rotate: %v, want ErrOfflineRoot", err)
		}
	})
	t.Run("a replayed root is refused", func(t *testing.T) {
		if _, err := e.app.ImportRoots(e.op, roundTrip(c)); catalog.ErrorCode(err) != catalog.EINVALID {
			t.Fatalf("import of the same root again: %v, want invalid", err)
		}
	})
}

// TestRootRekey_OnlineToOffline takes a quickstart's 1-of-1 online root
// offline (2 of 3): the transition root carries the old online key's
// signature (the previous threshold) and two new ones; the updater
// follows; the old key is dropped; later rotations need a ceremony.
func TestRootRekey_OnlineToOffline(t *testing.T) {
	dir, _ := newTUFDir(t, 1, 1, false)
	e := startTUF(t, dir)
	prod, err := e.app.CreateProduct(e.op, controlplane.ProductInput{Name: "app", Distribution: catalog.DistributionOpen})
	e.must(t, err)
	e.release(t, prod.ProductID, "1.0.0", randBytes(512))
	a := e.seedTenant(t, "a", prod.ProductID)
	root, err := e.app.TUFRoot(e.op, a.tenant)
	e.must(t, err)
	g := &goTUF{base: "http://" + e.cp.Addr() + "/v1/tenants/" + a.tenant + "/tuf", work: t.TempDir(), root: root, rt: &counting{token: a.tenantToken, got: map[string]int64{}}}
	if _, err := g.refresh(t); err != nil {
		t.Fatal(err)
	}

	keys := controlplaned.TUFDir(filepath.Join(dir, "keys"))
	files, err := keys.Rekey(2, 3, filepath.Join(t.TempDir(), "offline"))
	e.must(t, err)
	if _, err := e.app.RotateRoots(e.op); !errors.Is(err, controlplane.ErrOfflineRoot) {
		t.Fatalf("rotate after rekey: %v, want ErrOfflineRoot", err)
	}
	c, err := e.app.ExportRoots(e.op)
	e.must(t, err)
	for _, f := range files[:2] {
		k, err := keyring.LoadFile(f)
		e.must(t, err)
		s, err := tufkeys.Signer(k)
		e.must(t, err)
		e.must(t, controlplane.SignRoots(context.Background(), c, s))
	}
	if n, err := e.app.ImportRoots(e.op, c); err != nil || n != 1 {
		t.Fatalf("import: %d, %v", n, err)
	}
	if n, err := keys.DropStaleRootKeys(); err != nil || n != 1 {
		t.Fatalf("dropped %d stale root keys, %v, want 1", n, err)
	}
	u, err := g.refresh(t)
	if err != nil {
		t.Fatalf("refresh after the rekey: %v", err)
	}
	if v := u.GetTrustedMetadataSet().Root.Signed.Version; v != 2 {
		t.Fatalf("updater trusts root v%d, want 2", v)
	}
	if _, err := e.app.RotateRoots(e.op); !errors.Is(err, controlplane.ErrOfflineRoot) {
		t.Fatalf("rotate with the root offline: %v, want ErrOfflineRoot", err)
	}
}

// TestControlPlane_UpdateCheckFromTUF: with TUF publishing on, the
// control plane's online update check answers from the tenant's published
// repository (as a mirror holding that version does: the snapshot it
// names is tuf-<snapshot version>), follows each new version, and after a
// restart assembles the same view from the stored files.
func TestControlPlane_UpdateCheckFromTUF(t *testing.T) {
	dir, _ := newTUFDir(t, 1, 1, false)
	e := startTUF(t, dir)
	prod, err := e.app.CreateProduct(e.op, controlplane.ProductInput{Name: "app", Distribution: catalog.DistributionOpen})
	e.must(t, err)
	e.release(t, prod.ProductID, "1.0.0", randBytes(1<<10))
	a := e.seedTenant(t, "a", prod.ProductID)
	check := func(t *testing.T) (snapshotID, version string) {
		t.Helper()
		url := "http://" + e.cp.Addr() + "/v1/updates/check?product=" + prod.ProductID + "&channel=stable&platform=linux&arch=x64&version=0.9.0"
		var d struct {
			Release *struct {
				Version string `json:"version"`
			} `json:"release"`
			Snapshot *struct {
				SnapshotID string `json:"snapshot_id"`
			} `json:"snapshot"`
		}
		if err := json.Unmarshal(fetchBody(t, url, a.tenantToken), &d); err != nil || d.Release == nil || d.Snapshot == nil {
			t.Fatalf("update check: %v %+v", err, d)
		}
		return d.Snapshot.SnapshotID, d.Release.Version
	}
	want := func(t *testing.T) string {
		t.Helper()
		v, err := e.app.TUFVersions(e.op, a.tenant)
		e.must(t, err)
		return "tuf-" + itoa(v.Snapshot)
	}
	cases := []struct {
		name    string
		step    func(t *testing.T)
		version string
	}{
		{"after the first build", func(t *testing.T) {}, "1.0.0"},
		{"a new version is followed", func(t *testing.T) {
			e.release(t, prod.ProductID, "1.1.0", randBytes(1<<10))
			_, err := e.app.BuildSnapshot(e.op, a.tenant)
			e.must(t, err)
		}, "1.1.0"},
		{"after a restart, from the stored files", func(t *testing.T) {
			e.stop()
			e = startTUF(t, dir)
		}, "1.1.0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.step(t)
			gotID, gotVersion := check(t)
			if wantID := want(t); gotID != wantID || gotVersion != tc.version {
				t.Errorf("got snapshot %s offering %s, want %s offering %s", gotID, gotVersion, wantID, tc.version)
			}
		})
	}
}
