package console_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/outpost/outpost/internal/console"
	"github.com/outpost/outpost/internal/console/consoletest"
	"github.com/outpost/outpost/internal/sitepage"
	"github.com/outpost/outpost/internal/sitepage/sitepagetest"
)

// browser starts headless Chromium with a throwaway profile.
func browser(t *testing.T) context.Context {
	t.Helper()
	return consoletest.Browser(t, 90*time.Second)
}

// shots saves full-page screenshots to docs/console/ when
// OUTPOST_UPDATE_SCREENSHOTS=1, so that ordinary runs leave the tree alone.
type shots struct {
	t   *testing.T
	dir string
}

func newShots(t *testing.T) *shots {
	if os.Getenv("OUTPOST_UPDATE_SCREENSHOTS") != "1" {
		return &shots{t: t}
	}
	dir := filepath.Join("..", "..", "docs", "console")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return &shots{t: t, dir: dir}
}

func (s *shots) take(name string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		if s.dir == "" {
			return nil
		}
		png, err := chromedp.FullScreenshot(100)(ctx, tg)
		if err != nil {
			return err
		}
		tmp := filepath.Join(s.dir, "."+name+".png.tmp")
		if err := os.WriteFile(tmp, png, 0o644); err != nil {
			return err
		}
		return os.Rename(tmp, filepath.Join(s.dir, name+".png"))
	})
}

func textOf(ctx context.Context, t *testing.T, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

func run(t *testing.T, ctx context.Context, step string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		url, _ := chromedp.Run(ctx, chromedp.Location())
		body, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
		t.Fatalf("%s: %v\nat %s:\n%.2000s", step, err, url, body)
	}
}

func TestBrowser_ConsoleAndSitePage(t *testing.T) {
	ctx := browser(t)
	sh := newShots(t)

	// Collect uncaught JavaScript exceptions of every page.
	var jsMu sync.Mutex
	var jsErrors []string
	jsCtx, stopJS := context.WithCancel(ctx)
	msgs := chromedp.Console(jsCtx)
	jsDone := make(chan struct{})
	go func() {
		defer close(jsDone)
		for m, err := range msgs {
			if err != nil {
				return
			}
			if m.IsException() {
				jsMu.Lock()
				jsErrors = append(jsErrors, m.String())
				jsMu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		stopJS()
		<-jsDone
		jsMu.Lock()
		defer jsMu.Unlock()
		for _, e := range jsErrors {
			t.Errorf("JavaScript exception: %s", e)
		}
	})

	f := consoletest.New(time.Now)
	seed := consoletest.Seed(f)
	cs, err := console.New(console.Options{Backend: f})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/console/", cs)
	srv := httptest.NewServer(mux) // 127.0.0.1
	t.Cleanup(srv.Close)

	artifact := filepath.Join(t.TempDir(), "initech-agent-3.0.0.tar.gz")
	if err := os.WriteFile(artifact, make([]byte, 3<<20), 0o600); err != nil {
		t.Fatal(err)
	}

	run(t, ctx, "sign in",
		chromedp.Navigate(srv.URL+"/console/tenants"),
		chromedp.WaitVisible(chromedp.ID("token")),
		sh.take("signin"),
		chromedp.SendKeys(chromedp.ID("token"), seed.AdminToken),
		chromedp.Submit(chromedp.ID("token")),
		chromedp.WaitVisible(chromedp.ID("tenant-name")), // back at ?next=/console/tenants
	)
	run(t, ctx, "create a tenant",
		chromedp.SendKeys(chromedp.ID("tenant-name"), "Initech"),
		chromedp.Submit(chromedp.ID("tenant-name")),
		chromedp.WaitVisible(chromedp.CSS(".flash-ok")),
	)
	if got := textOf(ctx, t, ".flash-ok"); !strings.Contains(got, "Created tenant Initech") {
		t.Fatalf("flash = %q", got)
	}
	run(t, ctx, "overview", chromedp.Navigate(srv.URL+"/console/"), chromedp.WaitVisible(chromedp.CSS(".tiles")), sh.take("overview"))
	run(t, ctx, "tenants", chromedp.Navigate(srv.URL+"/console/tenants"), chromedp.WaitVisible(chromedp.CSS("table")), sh.take("tenants"))

	run(t, ctx, "create a product",
		chromedp.Navigate(srv.URL+"/console/products"),
		chromedp.WaitVisible(chromedp.ID("product-name")),
		chromedp.SendKeys(chromedp.ID("product-name"), "Initech Agent"),
		chromedp.SetValue(chromedp.ID("product-dist"), "open"),
		chromedp.Submit(chromedp.ID("product-name")),
		chromedp.WaitVisible(chromedp.ID("publish-form")),
	)
	run(t, ctx, "publish a release with a file",
		chromedp.SetValue(chromedp.ID("rel-version"), "3.0.0"),
		chromedp.SetUploadFiles(chromedp.ID("file"), []string{artifact}),
		chromedp.Click(chromedp.CSS("#publish-form button[type=submit]")),
		chromedp.WaitVisible(`//div[contains(@class, "flash-ok")][contains(., "Published")]`),
	)
	progress, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS("html"), "data-upload-progress"))
	if err != nil || progress.Value != "100" {
		t.Errorf("upload progress reached %q (%v), want 100", progress.Value, err)
	}
	if got := textOf(ctx, t, ".flash-ok"); !strings.Contains(got, "Published 3.0.0") {
		t.Fatalf("flash = %q", got)
	}
	f.Lock()
	var up consoletest.Upload
	for _, u := range f.Uploads {
		up = u
	}
	f.Unlock()
	if up.Size != 3<<20 || up.Name != "initech-agent-3.0.0.tar.gz" {
		t.Errorf("backend received %+v, want 3 MiB named initech-agent-3.0.0.tar.gz", up)
	}

	run(t, ctx, "start a rollout",
		chromedp.WaitVisible(chromedp.ID("ro-pct")),
		chromedp.SetValue(chromedp.ID("ro-pct"), "25"),
		chromedp.SetValue(chromedp.ID("ro-gate"), "5"),
		chromedp.SetValue(chromedp.ID("ro-schedule"), "25 for 24h, 100"),
		chromedp.Submit(chromedp.ID("ro-pct")),
		chromedp.WaitVisible(chromedp.ID("rollout-percentage")),
	)
	if got := textOf(ctx, t, "#rollout-percentage"); got != "25%" {
		t.Errorf("rollout percentage = %q, want 25%%", got)
	}
	if got := textOf(ctx, t, "ol.schedule"); !strings.Contains(got, "→ 25%") || !strings.Contains(got, "→ 100%") {
		t.Errorf("rollout schedule = %q, want the steps 25%% and 100%%", got)
	}
	run(t, ctx, "a rollout with fleet reports",
		chromedp.Navigate(srv.URL+"/console/rollouts/"+seed.Rollout.RolloutID),
		chromedp.WaitVisible(chromedp.CSS("svg#adoption")),
		sh.take("rollout"),
	)

	run(t, ctx, "revoke with a confirmation",
		chromedp.Navigate(srv.URL+"/console/products"),
		chromedp.Click(`//a[text()="Initech Agent"]`),
		chromedp.WaitVisible(chromedp.ID("releases")),
		sh.take("product"),
		chromedp.Click(chromedp.CSS(`#releases a.danger-outline`)),
		chromedp.WaitVisible(chromedp.ID("revoke-impact")),
	)
	impact := textOf(ctx, t, "#revoke-impact")
	for _, want := range []string{"3 tenants", "Acme Corp", "Globex", "Initech", "acme-dc1", "1 rollout in progress"} {
		if !strings.Contains(impact, want) {
			t.Errorf("the confirmation does not name %q: %s", want, impact)
		}
	}
	run(t, ctx, "confirm",
		sh.take("revoke"),
		chromedp.Click(chromedp.ID("confirm-revoke")),
		chromedp.WaitVisible(`//div[contains(@class, "flash-ok")][contains(., "Revoked")]`),
	)
	if got := textOf(ctx, t, "#releases .release-status"); got != "revoked" {
		t.Errorf("release status = %q, want revoked", got)
	}

	stale := func() string {
		return textOf(ctx, t, fmt.Sprintf(`tr[data-mirror="%s"] .freshness`, mirrorID(f, "acme-lab (air-gapped)")))
	}
	run(t, ctx, "mirrors", chromedp.Navigate(srv.URL+"/console/mirrors"), chromedp.WaitVisible(chromedp.CSS("table.mirrors")))
	if got := stale(); got != "stale" {
		t.Errorf("before the sync: freshness = %q, want stale", got)
	}
	f.SetMirrorSynced(mirrorID(f, "acme-lab (air-gapped)"), time.Now(), 42, time.Now().Add(7*24*time.Hour))
	run(t, ctx, "mirrors after a sync", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("table.mirrors")), sh.take("mirrors"))
	if got := stale(); got != "fresh" {
		t.Errorf("after the sync: freshness = %q, want fresh", got)
	}
	// The page's script turns the badge stale when its time comes, without
	// a reload: move that time into the past and watch.
	dc1 := mirrorID(f, "acme-dc1")
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](fmt.Sprintf(
		`document.querySelector('tr[data-mirror="%s"] [data-freshness]').setAttribute("data-fresh-until", new Date(Date.now() - 1000).toISOString()); true`, dc1))); err != nil {
		t.Fatal(err)
	}
	run(t, ctx, "freshness turns stale live", chromedp.WaitVisible(fmt.Sprintf(`//tr[@data-mirror="%s"]//span[@data-freshness][contains(@class, "badge-stale")][text()="stale"]`, dc1)))
	run(t, ctx, "entitlements", chromedp.Navigate(srv.URL+"/console/entitlements"), chromedp.WaitVisible(chromedp.CSS("svg#seat-usage")), sh.take("entitlements"))
	run(t, ctx, "policies", chromedp.Navigate(srv.URL+"/console/tenants/"+seed.Acme.TenantID+"/policies"), chromedp.WaitVisible(chromedp.CSS("details")),
		chromedp.Click(chromedp.CSS("details summary")), sh.take("policies"))
	run(t, ctx, "tenant overview", chromedp.Navigate(srv.URL+"/console/tenants/"+seed.Acme.TenantID), chromedp.WaitVisible(chromedp.CSS("table.mirrors")), sh.take("tenant"))
	run(t, ctx, "tokens", chromedp.Navigate(srv.URL+"/console/tokens"), chromedp.WaitVisible(chromedp.ID("tok-name")), sh.take("tokens"))
	run(t, ctx, "audit", chromedp.Navigate(srv.URL+"/console/audit"), chromedp.WaitVisible(chromedp.ID("chain-status")), sh.take("audit"))
	run(t, ctx, "webhooks", chromedp.Navigate(srv.URL+"/console/webhooks"), chromedp.WaitVisible(chromedp.ID("webhook-subscriptions")), sh.take("webhooks"))
	run(t, ctx, "redeliver a webhook",
		chromedp.Click(chromedp.CSS(`form[action$="/webhooks/deliveries/whd_2/redeliver"] button`)),
		chromedp.WaitVisible(chromedp.CSS(".flash-ok")))
	if got := textOf(ctx, t, ".flash-ok"); !strings.Contains(got, "whd_2") {
		t.Errorf("flash after redeliver = %q, want it to name the delivery", got)
	}

	// Without JavaScript every page still reads and the plain form posts
	// work: publish a release with the browser's own multipart upload.
	if _, err := chromedp.Call(ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
		t.Fatal(err)
	}
	run(t, ctx, "no JavaScript: a rollout's charts",
		chromedp.Navigate(srv.URL+"/console/rollouts/"+seed.Rollout.RolloutID),
		chromedp.WaitVisible(chromedp.CSS("svg#failures")),
	)
	// Every page reads: its heading and its content are in the HTML.
	for path, content := range map[string]string{
		"":             ".tiles",
		"tenants":      "table",
		"products":     "table",
		"rollouts":     "table",
		"mirrors":      "table.mirrors",
		"entitlements": "svg#seat-usage",
		"tokens":       "table",
		"audit":        "#chain-status",
		"webhooks":     "#webhook-subscriptions",
		"tenants/" + seed.Acme.TenantID + "/policies":     "details",
		"tenants/" + seed.Acme.TenantID + "/entitlements": "table",
	} {
		run(t, ctx, "no JavaScript: /console/"+path,
			chromedp.Navigate(srv.URL+"/console/"+path),
			chromedp.WaitVisible(chromedp.CSS("main h1")),
			chromedp.WaitVisible(chromedp.CSS(content)),
		)
	}
	run(t, ctx, "no JavaScript: publish",
		chromedp.Navigate(srv.URL+"/console/products/"+seed.App.ProductID),
		chromedp.WaitVisible(chromedp.ID("publish-form")),
		chromedp.SetValue(chromedp.ID("rel-version"), "1.2.0"),
		chromedp.SetUploadFiles(chromedp.ID("file"), []string{artifact}),
		chromedp.Click(chromedp.CSS("#publish-form button[type=submit]")),
		chromedp.WaitVisible(`//div[contains(@class, "flash-ok")][contains(., "Published 1.2.0")]`),
	)
	if p, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS("html"), "data-upload-progress")); err != nil || p.Exists {
		t.Errorf("the no-JavaScript publish ran the script (progress %q, %v)", p.Value, err)
	}
	if _, err := chromedp.Call(ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: false}); err != nil {
		t.Fatal(err)
	}
	run(t, ctx, "scripts back on", chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("publish-form")))

	run(t, ctx, "keyboard: the first tab stop is the skip link",
		chromedp.KeyEvent("\t"),
	)
	focused, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.activeElement.className`))
	if err != nil {
		t.Fatal(err)
	}
	if focused != "skip" {
		t.Errorf("first focus = %q, want the skip link", focused)
	}

	run(t, ctx, "sign out",
		chromedp.Click(chromedp.CSS(`button.link`)),
		chromedp.WaitVisible(chromedp.ID("signed-out")),
		chromedp.Navigate(srv.URL+"/console/tokens"),
		chromedp.WaitVisible(chromedp.ID("token")), // back at sign-in
	)
	if n := cs.Sessions(); n != 0 {
		t.Errorf("%d sessions after sign-out", n)
	}

	// With the keyboard alone: Tab to the token field, type, Enter.
	run(t, ctx, "sign-in page", chromedp.Navigate(srv.URL+"/console/signin"), chromedp.WaitVisible(chromedp.ID("token")))
	for tabs := 0; ; tabs++ {
		id, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.activeElement.id`))
		if err != nil {
			t.Fatal(err)
		}
		if id == "token" {
			break
		}
		if tabs == 5 {
			t.Fatalf("the token field is not among the first 5 tab stops (focus on %q)", id)
		}
		run(t, ctx, "tab", chromedp.KeyEvent("\t"))
	}
	run(t, ctx, "sign in as a tenant with the keyboard",
		chromedp.KeyEvent(seed.TenantToken),
		chromedp.KeyEvent("\r"),
		chromedp.WaitVisible(chromedp.CSS("table.mirrors")),
		sh.take("tenant-view"),
	)
	if nav := textOf(ctx, t, "header nav"); strings.Contains(nav, "Tokens") || strings.Contains(nav, "Products") {
		t.Errorf("a tenant session shows admin navigation: %q", nav)
	}
	if body := textOf(ctx, t, "main"); strings.Contains(body, "Globex") || strings.Contains(body, "globex-hq") {
		t.Errorf("a tenant session shows another tenant: %q", body)
	}
	run(t, ctx, "a tenant cannot open an admin page", chromedp.Navigate(srv.URL+"/console/tokens"), chromedp.WaitVisible(chromedp.ID("error-message")))
	if got := textOf(ctx, t, "main h1"); !strings.HasPrefix(got, "403") {
		t.Errorf("tokens page for a tenant: %q, want 403", got)
	}
	run(t, ctx, "sign out the tenant", chromedp.Click(chromedp.CSS(`button.link`)), chromedp.WaitVisible(chromedp.ID("signed-out")))

	// The mirror's status page: upload a bundle, read the dry run, commit.
	mf := sitepagetest.New(time.Now, "mat_site_admin")
	sp, err := sitepage.New(sitepage.Options{Backend: mf})
	if err != nil {
		t.Fatal(err)
	}
	msrv := httptest.NewServer(sp)
	t.Cleanup(msrv.Close)
	bundle := filepath.Join(t.TempDir(), "acme-42.tar")
	if err := os.WriteFile(bundle, make([]byte, 2<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	run(t, ctx, "site status page",
		chromedp.Navigate(msrv.URL+"/"),
		chromedp.WaitVisible(chromedp.ID("import-form")),
		sh.take("site-status"),
	)
	if got := textOf(ctx, t, "#freshness"); got != "stale" {
		t.Errorf("site freshness before import = %q, want stale", got)
	}
	run(t, ctx, "drop a bundle on the page",
		chromedp.SendKeys(chromedp.ID("admin-token"), "mat_site_admin"),
		consoletest.DropFiles("[data-dropzone]", []string{bundle}),
	)
	// The drop put the file in the form's file input and named it.
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.getElementById("bundle").files.length`)); err != nil || n != 1 {
		t.Fatalf("after the drop the file input holds %d files (%v), want 1", n, err)
	}
	if got := textOf(ctx, t, "[data-file-name]"); got != "acme-42.tar (2097152 bytes)" {
		t.Errorf("the drop zone says %q, want the dropped file's name and size", got)
	}
	run(t, ctx, "upload the dropped bundle",
		chromedp.Click(chromedp.CSS("#import-form button[type=submit]")),
		chromedp.WaitVisible(chromedp.ID("import-result")),
		sh.take("site-dry-run"),
	)
	if p, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS("html"), "data-upload-progress")); err != nil || p.Value != "100" {
		t.Errorf("bundle upload progress reached %q (%v), want 100", p.Value, err)
	}
	if got := textOf(ctx, t, "#import-versions"); got != "v41 → v42" {
		t.Errorf("dry run versions = %q", got)
	}
	if len(mf.Committed()) != 0 {
		t.Fatal("the dry run committed")
	}
	run(t, ctx, "commit",
		chromedp.Click(chromedp.ID("commit-import")),
		chromedp.WaitVisible(`//h1[contains(., "Bundle imported")]`),
		chromedp.Navigate(msrv.URL+"/"),
		chromedp.WaitVisible(chromedp.ID("metadata-version")),
	)
	if got := textOf(ctx, t, "#metadata-version"); got != "v42" {
		t.Errorf("metadata version after import = %q, want v42", got)
	}
	if got := textOf(ctx, t, "#freshness"); got != "fresh" {
		t.Errorf("site freshness after import = %q, want fresh", got)
	}
	if len(mf.Committed()) != 1 {
		t.Errorf("committed %d bundles, want 1", len(mf.Committed()))
	}

	// Without JavaScript the status page reads and its form posts as it
	// is: the browser's own multipart upload, answered by the dry run.
	if _, err := chromedp.Call(ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
		t.Fatal(err)
	}
	run(t, ctx, "no JavaScript: the status page and an upload",
		chromedp.Navigate(msrv.URL+"/"),
		chromedp.WaitVisible(chromedp.ID("metadata-version")),
		chromedp.SendKeys(chromedp.ID("admin-token"), "mat_site_admin"),
		chromedp.SetUploadFiles(chromedp.ID("bundle"), []string{bundle}),
		chromedp.Click(chromedp.CSS("#import-form button[type=submit]")),
		chromedp.WaitVisible(chromedp.ID("import-result")),
	)
	if p, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS("html"), "data-upload-progress")); err != nil || p.Exists {
		t.Errorf("the no-JavaScript upload ran the script (progress %q, %v)", p.Value, err)
	}
	if len(mf.Committed()) != 1 {
		t.Errorf("the no-JavaScript dry run committed: %d bundles committed, want still 1", len(mf.Committed()))
	}
}

func mirrorID(f *consoletest.Fake, name string) string {
	f.Lock()
	defer f.Unlock()
	for _, m := range f.MirrorList {
		if m.Mirror.Name == name {
			return m.Mirror.MirrorID
		}
	}
	return ""
}
