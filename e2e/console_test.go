package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/outpost/outpost/internal/console/consoletest"
	"github.com/outpost/outpost/internal/mirror"
)

// headless starts headless Chromium (consoletest.Browser) for the
// end-to-end console test.
func headless(t *testing.T) context.Context {
	t.Helper()
	return consoletest.Browser(t, 120*time.Second)
}

// jsExceptions fails the test on any uncaught JavaScript exception.
func jsExceptions(t *testing.T, ctx context.Context) {
	var mu sync.Mutex
	var errs []string
	jctx, stop := context.WithCancel(ctx)
	msgs := chromedp.Console(jctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range msgs {
			if err != nil {
				return
			}
			if m.IsException() {
				mu.Lock()
				errs = append(errs, m.String())
				mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		stop()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, e := range errs {
			t.Errorf("JavaScript exception: %s", e)
		}
	})
}

func step(t *testing.T, ctx context.Context, name string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		body, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
		t.Fatalf("%s: %v\nat %s:\n%.2000s", name, err, loc, body)
	}
}

func text(t *testing.T, ctx context.Context, css string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(css)))
	if err != nil {
		t.Fatalf("text of %s: %v", css, err)
	}
	return strings.TrimSpace(s)
}

// shot saves a full-page screenshot as docs/console/<name>.png when
// OUTPOST_UPDATE_SCREENSHOTS=1 (ordinary runs leave the tree alone).
func shot(name string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		if os.Getenv("OUTPOST_UPDATE_SCREENSHOTS") != "1" {
			return nil
		}
		png, err := chromedp.FullScreenshot(100)(ctx, tg)
		if err != nil {
			return err
		}
		dir := filepath.Join("..", "docs", "console")
		tmp := filepath.Join(dir, "."+name+".png.tmp")
		if err := os.WriteFile(tmp, png, 0o644); err != nil {
			return err
		}
		return os.Rename(tmp, filepath.Join(dir, name+".png"))
	})
}

// eventually polls cond (reloading the page before each look) until it
// holds or 30 s pass.
func eventually(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			body, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
			t.Fatalf("%s: not within 30s; page:\n%.2000s", what, body)
		}
		time.Sleep(250 * time.Millisecond)
		step(t, ctx, "reload", chromedp.Reload())
	}
}

// TestE2E_ConsoleAndStatusPage drives the real daemons through Chromium:
// the vendor signs in to the console and publishes, rolls out and revokes
// a release that a mirror syncs and stops offering; then a site admin
// imports a bundle on an air-gapped mirror's status page.
func TestE2E_ConsoleAndStatusPage(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: real daemons and a browser")
	}
	ctx := headless(t)
	jsExceptions(t, ctx)
	tl := buildTools(t)
	cp := newControlPlane(t, tl, nil)
	cp.serve()
	console := cp.url + "/console/"

	file := filepath.Join(t.TempDir(), "initech-agent-1.0.0.tar.gz")
	if err := os.WriteFile(file, []byte(strings.Repeat("initech agent 1.0.0\n", 50000)), 0o600); err != nil {
		t.Fatal(err)
	}

	step(t, ctx, "sign in with the admin token",
		chromedp.Navigate(console+"tenants"),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SendKeys(chromedp.ID("token"), cp.admin),
		chromedp.Submit(chromedp.ID("token")),
		chromedp.WaitVisible(chromedp.ID("tenant-name")),
	)
	step(t, ctx, "create a tenant",
		chromedp.SendKeys(chromedp.ID("tenant-name"), "Initech"),
		chromedp.Submit(chromedp.ID("tenant-name")),
		chromedp.WaitVisible(`//div[contains(@class, "flash-ok")][contains(., "Initech")]`),
	)
	var tenants struct {
		Items []struct {
			TenantID string `json:"tenant_id"`
			Name     string `json:"name"`
		} `json:"items"`
	}
	cp.api("GET", "/v1/tenants", cp.admin, nil, &tenants, http.StatusOK)
	if len(tenants.Items) != 1 || tenants.Items[0].Name != "Initech" {
		t.Fatalf("tenants after the console created one: %+v", tenants.Items)
	}
	tenant := tenants.Items[0].TenantID

	step(t, ctx, "create a product",
		chromedp.Navigate(console+"products"),
		chromedp.WaitVisible(chromedp.ID("product-name")),
		chromedp.SendKeys(chromedp.ID("product-name"), "Initech Agent"),
		chromedp.SetValue(chromedp.ID("product-dist"), "open"),
		chromedp.Submit(chromedp.ID("product-name")),
		chromedp.WaitVisible(chromedp.ID("publish-form")),
	)
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	product := loc[strings.LastIndex(loc, "/")+1:]
	if !strings.HasPrefix(product, "prd_") {
		t.Fatalf("the product page is at %s, want /console/products/prd_…", loc)
	}

	step(t, ctx, "publish a release with a file",
		chromedp.SetValue(chromedp.ID("rel-version"), "1.0.0"),
		chromedp.SetUploadFiles(chromedp.ID("file"), []string{file}),
		chromedp.Click(chromedp.CSS("#publish-form button[type=submit]")),
		chromedp.WaitVisible(`//div[contains(@class, "flash-ok")][contains(., "Published 1.0.0")]`),
	)
	var releases struct {
		Items []struct {
			ReleaseID string `json:"release_id"`
		} `json:"items"`
	}
	cp.api("GET", "/v1/products/"+product+"/releases", cp.admin, nil, &releases, http.StatusOK)
	if len(releases.Items) != 1 {
		t.Fatalf("releases after publishing: %+v", releases.Items)
	}
	release := releases.Items[0].ReleaseID
	artifact := releaseArtifact(t, cp, release)
	var art struct {
		SHA256 string `json:"sha256"`
		Size   int64  `json:"size_bytes"`
	}
	cp.api("GET", "/v1/artifacts/"+artifact, cp.admin, nil, &art, http.StatusOK)
	if art.SHA256 != fileSHA256(t, file) {
		t.Fatalf("the stored artifact's sha256 is %s, want the file's", art.SHA256)
	}

	step(t, ctx, "start a rollout",
		chromedp.WaitVisible(chromedp.ID("ro-pct")),
		chromedp.SetValue(chromedp.ID("ro-pct"), "100"),
		chromedp.Submit(chromedp.ID("ro-pct")),
		chromedp.WaitVisible(chromedp.ID("rollout-percentage")),
	)
	if got := text(t, ctx, "#rollout-percentage"); got != "100%" {
		t.Errorf("rollout percentage = %q, want 100%%", got)
	}

	// The vendor builds the tenant's snapshot; a mirror registered for
	// the tenant syncs it over HTTP.
	_, seq1 := cp.snapshot(tenant)
	root := cp.rootFile(tenant)
	m := newMirror(t, tl, "site", mirrorConfig{tenant: tenant, root: root, source: "none"})
	mirrorID, cred := cp.registerMirror(tenant, "initech-dc1", m.publicKey)
	freshness := fmt.Sprintf(`tr[data-mirror="%s"] .freshness`, mirrorID)
	version := fmt.Sprintf(`tr[data-mirror="%s"] td.num`, mirrorID)
	step(t, ctx, "the mirrors page before the first sync",
		chromedp.Navigate(console+"mirrors"),
		chromedp.WaitVisible(chromedp.CSS(freshness)),
	)
	if got := text(t, ctx, freshness); got != "never" {
		t.Errorf("before the first sync: freshness = %q, want never", got)
	}
	m.configure(mirrorConfig{tenant: tenant, root: root, source: "controlplane", vendorURL: cp.url, credential: cred})
	m.serve()
	m.waitSequence(seq1)
	eventually(t, ctx, "the mirror's sync shows on the mirrors page", func() bool {
		return text(t, ctx, freshness) == "fresh" && strings.HasPrefix(text(t, ctx, version), fmt.Sprintf("v%d", seq1))
	})
	step(t, ctx, "screenshot", shot("live-mirrors"))
	if _, code := tl.check(t, m.url, updateQuery{product: product, version: "0.9.0", clientID: "device-1"}); code != 10 {
		t.Fatalf("update check on the mirror before the revocation: exit %d, want 10 (update available)", code)
	}
	if code, _ := get(t, m.url+"/v1/artifacts/"+artifact); code != http.StatusOK {
		t.Fatalf("the mirror serves the artifact with %d, want 200", code)
	}

	step(t, ctx, "revoke with a confirmation",
		chromedp.Navigate(console+"products/"+product),
		chromedp.WaitVisible(chromedp.ID("releases")),
		chromedp.Click(chromedp.CSS(`#releases a.danger-outline`)),
		chromedp.WaitVisible(chromedp.ID("revoke-impact")),
	)
	impact := text(t, ctx, "#revoke-impact")
	for _, want := range []string{"Initech", "initech-dc1", "1 rollout"} {
		if !strings.Contains(impact, want) {
			t.Errorf("the confirmation does not name %q: %s", want, impact)
		}
	}
	step(t, ctx, "confirm",
		shot("live-revoke"),
		chromedp.Click(chromedp.ID("confirm-revoke")),
		chromedp.WaitVisible(`//div[contains(@class, "flash-ok")][contains(., "Revoked")]`),
	)
	_, seq2 := cp.snapshot(tenant)
	m.waitSequence(seq2)
	if _, code := tl.check(t, m.url, updateQuery{product: product, version: "0.9.0", clientID: "device-1"}); code != 0 {
		t.Errorf("update check on the mirror after the revocation: exit %d, want 0 (no update)", code)
	}
	if code, _ := get(t, m.url+"/v1/artifacts/"+artifact); code != http.StatusNotFound {
		t.Errorf("the mirror serves the revoked release's artifact with %d, want 404", code)
	}
	eventually(t, ctx, "the mirrors page shows the new version", func() bool {
		step(t, ctx, "mirrors", chromedp.Navigate(console+"mirrors"), chromedp.WaitVisible(chromedp.CSS(freshness)))
		return strings.HasPrefix(text(t, ctx, version), fmt.Sprintf("v%d", seq2))
	})

	step(t, ctx, "sign out",
		chromedp.Click(chromedp.CSS(`button.link`)),
		chromedp.WaitVisible(chromedp.ID("signed-out")),
		chromedp.Navigate(console+"mirrors"),
		chromedp.WaitVisible(chromedp.ID("token")), // back at sign-in
	)

	// An air-gapped mirror of the same tenant: a site admin carries a
	// bundle across and imports it on the mirror's status page.
	file2 := filepath.Join(t.TempDir(), "initech-agent-2.0.0.tar.gz")
	if err := os.WriteFile(file2, []byte(strings.Repeat("initech agent 2.0.0\n", 40000)), 0o600); err != nil {
		t.Fatal(err)
	}
	cp.release(product, "2.0.0", file2)
	_, seq3 := cp.snapshot(tenant)
	bundle := cp.exportBundle(tenant, 0)
	b := make([]byte, 24)
	rand.Read(b)
	adminToken := "opm_" + hex.EncodeToString(b)
	site := newMirror(t, tl, "air-gapped", mirrorConfig{tenant: tenant, root: root, source: "none", adminHashes: []string{mirror.HashAdminToken(adminToken)}})
	site.serve()
	step(t, ctx, "the status page of a mirror that never synced",
		chromedp.Navigate(site.url+"/"),
		chromedp.WaitVisible(chromedp.ID("import-form")),
	)
	if got := text(t, ctx, "#freshness"); got != "never" {
		t.Errorf("status page before the import: freshness %q, want never", got)
	}
	step(t, ctx, "drop the bundle on the page and upload it with the admin token",
		chromedp.SendKeys(chromedp.ID("admin-token"), adminToken),
		consoletest.DropFiles("[data-dropzone]", []string{bundle}),
		chromedp.WaitVisible(`//p[@data-file-name][contains(., ".tar")]`),
		chromedp.Click(chromedp.CSS("#import-form button[type=submit]")),
		chromedp.WaitVisible(chromedp.ID("import-result")),
		shot("live-site-dry-run"),
	)
	if got, want := text(t, ctx, "#import-versions"), fmt.Sprintf("v0 → v%d", seq3); got != want {
		t.Errorf("dry run: versions %q, want %q", got, want)
	}
	if st := site.status(); st.Snapshot != nil {
		t.Fatalf("the dry run committed: the mirror holds %d", st.Snapshot.Sequence)
	}
	step(t, ctx, "commit",
		chromedp.Click(chromedp.ID("commit-import")),
		chromedp.WaitVisible(`//h1[contains(., "Bundle imported")]`),
		chromedp.Navigate(site.url+"/"),
		chromedp.WaitVisible(chromedp.ID("metadata-version")),
		shot("live-site-status"),
	)
	if got, want := text(t, ctx, "#metadata-version"), fmt.Sprintf("v%d", seq3); got != want {
		t.Errorf("status page after the import: metadata version %q, want %q", got, want)
	}
	if got := text(t, ctx, "#freshness"); got != "fresh" {
		t.Errorf("status page after the import: freshness %q, want fresh", got)
	}
	site.waitSequence(seq3)
	if _, code := tl.check(t, site.url, updateQuery{product: product, version: "1.0.0", clientID: "device-2"}); code != 10 {
		t.Errorf("update check on the air-gapped mirror after the import: exit %d, want 10 (2.0.0 available)", code)
	}
}
