package controlplaned_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/outpost/outpost/internal/blob/disk"
	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/controlplaned"
	outpostd "github.com/outpost/outpost/internal/daemon"
	"github.com/outpost/outpost/internal/keyring"
	"github.com/outpost/outpost/internal/store"
	"github.com/outpost/outpost/internal/store/bolt"
)

// watched is a store that, when closed, records the goroutines still
// running besides the one closing it: there must be none.
type watched struct {
	store.Store
	leaked error
	closed bool
}

func (w *watched) Close() error {
	w.leaked = goleak.Find()
	w.closed = true
	return w.Store.Close()
}

type fixture struct {
	cp    *controlplaned.ControlPlane
	app   *controlplane.App
	st    *watched
	blobs string
	token string
}

func newFixture(t *testing.T, cfg controlplaned.Config) *fixture {
	t.Helper()
	dir := t.TempDir()
	db, err := bolt.Open(filepath.Join(dir, "cp.db"), bolt.Options{NoWarm: true})
	if err != nil {
		t.Fatal(err)
	}
	st := &watched{Store: db}
	blobDir := filepath.Join(dir, "blobs")
	blobs, err := disk.New(blobDir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keyring.Generate(filepath.Join(dir, "keys")); err != nil {
		t.Fatal(err)
	}
	dek := make([]byte, 32)
	rand.Read(dek)
	sealer, err := controlplane.NewSealer(dek)
	if err != nil {
		t.Fatal(err)
	}
	app := controlplane.New(controlplane.Options{Store: st, Blobs: blobs, Keys: controlplaned.DirKeyring(filepath.Join(dir, "keys")), Secrets: sealer})
	ctx := controlplane.AsOperator(context.Background(), catalog.Actor{Type: catalog.ActorUser, ID: "test"})
	tok, err := app.CreateToken(ctx, controlplane.TokenInput{Role: catalog.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listen = "127.0.0.1:0"
	cp, err := controlplaned.New(app, st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{cp: cp, app: app, st: st, blobs: blobDir, token: tok.Secret}
}

func (f *fixture) waitReady(t *testing.T, hc *http.Client) {
	t.Helper()
	for {
		r, err := hc.Get("http://" + f.cp.Addr() + "/readyz")
		if err == nil {
			r.Body.Close()
			if r.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestControlPlane_StopJoinsEverything stops a serving control plane while
// an upload is in flight and never finishes: Run returns only after the
// request and the housekeeping have returned, and when the store closes
// no goroutine is left.
func TestControlPlane_StopJoinsEverything(t *testing.T) {
	defer goleak.VerifyNone(t)
	f := newFixture(t, controlplaned.Config{ShutdownTimeout: 100 * time.Millisecond})
	hc := &http.Client{Transport: &http.Transport{}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- f.cp.Run(ctx) }()
	f.waitReady(t, hc)

	pr, pw := io.Pipe()
	answered := make(chan error, 1)
	go func() {
		req, _ := http.NewRequest("POST", "http://"+f.cp.Addr()+"/v1/artifacts", pr)
		req.Header.Set("Authorization", "Bearer "+f.token)
		req.Header.Set("Content-Type", "application/octet-stream")
		res, err := hc.Do(req)
		if err == nil {
			res.Body.Close()
			err = errors.New(res.Status)
		}
		answered <- err
	}()
	// 4 MiB cannot sit in socket buffers: once written, the handler is
	// reading the body.
	chunk := bytes.Repeat([]byte("x"), 64<<10)
	for range 64 {
		if _, err := pw.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}

	cancel()
	if err := <-ran; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if f.st.closed {
		t.Fatal("Run closed the store")
	}
	if left := serverGoroutines(); left != "" {
		t.Fatalf("Run returned with server goroutines running:\n%s", left)
	}
	// The client notices the cut connection once it stops waiting for
	// more body to send.
	pw.CloseWithError(errors.New("client gave up"))
	if err := <-answered; err == nil {
		t.Fatal("the cut upload got an answer")
	}
	hc.CloseIdleConnections()
	if err := f.cp.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !f.st.closed {
		t.Fatal("Close did not close the store")
	}
	if f.st.leaked != nil {
		t.Fatalf("goroutines running when the store closed: %v", f.st.leaked)
	}
	entries, _ := os.ReadDir(filepath.Join(f.blobs, "artifacts"))
	if len(entries) != 0 {
		t.Fatalf("the cut upload left %d objects", len(entries))
	}
}

// serverGoroutines returns the stacks of goroutines running a handler, a
// service operation or the housekeeping, at this instant (no retry; the
// net/http goroutine of a connection may still be returning, but nothing
// of ours is on its stack).
func serverGoroutines() string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "internal/httpapi.") || strings.Contains(g, "internal/controlplane.") || strings.Contains(g, "(*ControlPlane).housekeeping") {
			out = append(out, g)
		}
	}
	return strings.Join(out, "\n\n")
}

// TestControlPlane_Close covers Close without Run, twice, and Run after
// Close.
func TestControlPlane_Close(t *testing.T) {
	defer goleak.VerifyNone(t)
	f := newFixture(t, controlplaned.Config{})
	if err := f.cp.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !f.st.closed || f.st.leaked != nil {
		t.Fatalf("closed %v, leaked %v", f.st.closed, f.st.leaked)
	}
	if err := f.cp.Close(context.Background()); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := f.cp.Run(context.Background()); err == nil {
		t.Fatal("Run after Close started")
	}
}

// TestControlPlane_SIGTERMWhileBusy sends the process a real SIGTERM
// (daemon.SignalContext, as `controlplane serve` runs) while a mirror's
// sync is in the middle of an artifact, an admin's long download stalls,
// a mirror audit import is spooling and an upload streams: Run returns
// only once every request and part has returned, the downloads are cut
// at the shutdown deadline rather than completed, nothing is left half
// written (no spool file, no partial object), and when the store closes
// no goroutine is left (goleak; run with -race).
func TestControlPlane_SIGTERMWhileBusy(t *testing.T) {
	defer goleak.VerifyNone(t)
	spool := t.TempDir()
	t.Setenv("TMPDIR", spool) // where imports spool their body
	f := newFixture(t, controlplaned.Config{ShutdownTimeout: 200 * time.Millisecond})
	op := controlplane.AsOperator(context.Background(), catalog.Actor{Type: catalog.ActorUser, ID: "test"})

	// A tenant whose mirror syncs a 32 MiB artifact.
	big := make([]byte, 32<<20)
	rand.Read(big)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	ten, err := f.app.CreateTenant(op, controlplane.TenantInput{Name: "acme"})
	must(err)
	prod, err := f.app.CreateProduct(op, controlplane.ProductInput{Name: "widget", Distribution: catalog.DistributionOpen})
	must(err)
	art, err := f.app.UploadArtifact(op, bytes.NewReader(big), controlplane.UploadInput{SizeBytes: int64(len(big)), Length: int64(len(big))})
	must(err)
	rel, err := f.app.CreateRelease(op, prod.ProductID, controlplane.ReleaseInput{Channel: "stable", Version: "1.0.0"})
	must(err)
	_, err = f.app.AttachArtifact(op, rel.ReleaseID, controlplane.AttachInput{ArtifactID: art.ArtifactID, Platform: "linux", Arch: "x64", InstallerType: "zip"})
	must(err)
	pub, _, _ := ed25519.GenerateKey(nil)
	mir, err := f.app.CreateMirror(op, ten.TenantID, controlplane.MirrorInput{Name: "site", AllowedChannels: []string{"stable"}, PublicKey: base64.StdEncoding.EncodeToString(pub)})
	must(err)
	_, err = f.app.BuildSnapshot(op, ten.TenantID)
	must(err)

	sigCtx, stopSignals := outpostd.SignalContext(context.Background(), "controlplane", io.Discard)
	defer stopSignals()
	hc := &http.Client{Transport: &http.Transport{}}
	ran := make(chan error, 1)
	go func() { ran <- f.cp.Run(sigCtx) }()
	f.waitReady(t, hc)
	base := "http://" + f.cp.Addr()

	// 1 and 2: a mirror's sync and an admin's download, each stalled
	// after its first 4 KiB (32 MiB cannot sit in socket buffers).
	stalled := func(path, token string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", base+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s", path, resp.Status)
		}
		if _, err := io.ReadFull(resp.Body, make([]byte, 4096)); err != nil {
			t.Fatal(err)
		}
		return resp
	}
	sync := stalled("/v1/mirror/artifacts/"+art.ArtifactID, mir.Credential)
	download := stalled("/v1/artifacts/"+art.ArtifactID+"/download", f.token)

	// 3 and 4: a mirror audit import and an artifact upload whose bodies
	// never end; 4 MiB each are written, so their handlers are reading.
	endless := func(path, contentType string) (*io.PipeWriter, chan error) {
		pr, pw := io.Pipe()
		answered := make(chan error, 1)
		go func() {
			req, _ := http.NewRequest("POST", base+path, pr)
			req.Header.Set("Authorization", "Bearer "+f.token)
			req.Header.Set("Content-Type", contentType)
			res, err := hc.Do(req)
			if err == nil {
				res.Body.Close()
				err = errors.New(res.Status)
			}
			answered <- err
		}()
		chunk := bytes.Repeat([]byte("x"), 64<<10)
		for range 64 {
			if _, err := pw.Write(chunk); err != nil {
				t.Fatal(err)
			}
		}
		return pw, answered
	}
	importBody, imported := endless("/v1/mirror-audit", "application/x-ndjson")
	uploadBody, uploaded := endless("/v1/artifacts", "application/octet-stream")

	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-ran:
		if err != nil {
			t.Fatalf("Run after SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after SIGTERM")
	}
	if f.st.closed {
		t.Fatal("Run closed the store")
	}
	if left := serverGoroutines(); left != "" {
		t.Fatalf("Run returned with server goroutines running:\n%s", left)
	}
	stopSignals()

	for name, resp := range map[string]*http.Response{"the mirror's sync": sync, "the admin's download": download} {
		n, err := io.Copy(io.Discard, resp.Body)
		if err == nil || n+4096 >= int64(len(big)) {
			t.Errorf("%s read %d more bytes, err %v: want it cut at the shutdown deadline", name, n, err)
		}
		resp.Body.Close()
	}
	for name, c := range map[string]struct {
		body     *io.PipeWriter
		answered chan error
	}{"import": {importBody, imported}, "upload": {uploadBody, uploaded}} {
		c.body.CloseWithError(errors.New("client gave up"))
		if err := <-c.answered; err == nil {
			t.Errorf("the cut %s got an answer", name)
		}
	}
	hc.CloseIdleConnections()
	if err := f.cp.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !f.st.closed {
		t.Fatal("Close did not close the store")
	}
	if f.st.leaked != nil {
		t.Fatalf("goroutines running when the store closed: %v", f.st.leaked)
	}
	if left, _ := os.ReadDir(spool); len(left) != 0 {
		t.Errorf("the cut import left %d spool files", len(left))
	}
	if objs, _ := os.ReadDir(filepath.Join(f.blobs, "artifacts")); len(objs) != 1 {
		t.Errorf("artifact objects after the stop: %d, want the one uploaded before it", len(objs))
	}
}
