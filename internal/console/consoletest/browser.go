package consoletest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
)

// Chromium finds a Chromium binary: $OUTPOST_CHROMIUM, then the usual
// names on $PATH ("" when there is none).
func Chromium() string {
	if p := os.Getenv("OUTPOST_CHROMIUM"); p != "" {
		return p
	}
	for _, n := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	return ""
}

// Browser starts headless Chromium with a throwaway profile and returns
// a context for it that ends after timeout. Without a binary the test is
// skipped, unless CI is set: then it fails.
func Browser(t testing.TB, timeout time.Duration) context.Context {
	t.Helper()
	bin := Chromium()
	if bin == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("no Chromium binary found (install Debian's chromium package or set OUTPOST_CHROMIUM); CI is set, so this is a failure")
		}
		t.Skip("no Chromium binary found: install Debian's chromium package (apt-get install chromium) or set OUTPOST_CHROMIUM to run the browser test")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelC := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelC(); cancelA() })
	// The first Do starts the browser; it lives as long as bctx, so the
	// time limit goes on a context derived after it.
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	ctx, cancelT := context.WithTimeout(bctx, timeout)
	t.Cleanup(cancelT)
	return ctx
}

// DropFiles drags files from outside the page onto the element sel
// matches (CSS), as a person dragging them from a file manager: the
// browser's own dragenter, dragover and drop events at the element's
// centre, carrying the files (Input.dispatchDragEvent).
func DropFiles(sel string, files []string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		if err := chromedp.Do(ctx, chromedp.ScrollIntoView(chromedp.CSS(sel))); err != nil {
			return fmt.Errorf("scroll to %s: %w", sel, err)
		}
		box, err := chromedp.Evaluate[[]float64](fmt.Sprintf(`(function() {
			var r = document.querySelector(%q).getBoundingClientRect();
			return [r.left + r.width / 2, r.top + r.height / 2];
		})()`, sel))(ctx, tg)
		if err != nil || len(box) != 2 {
			return fmt.Errorf("centre of %s: %v", sel, err)
		}
		data := &input.DragData{Items: []*input.DragDataItem{}, Files: files, DragOperationsMask: 1} // copy
		for _, typ := range []input.DispatchDragEventType{input.DispatchDragEventTypeDragEnter, input.DispatchDragEventTypeDragOver, input.DispatchDragEventTypeDrop} {
			if _, err := cdp.Call(ctx, tg, input.DispatchDragEvent, input.DispatchDragEventParams{Type: typ, X: box[0], Y: box[1], Data: data}); err != nil {
				return fmt.Errorf("%s on %s: %w", typ, sel, err)
			}
		}
		return nil
	})
}
