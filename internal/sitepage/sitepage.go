// Package sitepage is the mirror's status page for people, served at "/"
// (JSON stays at /v1/status): freshness and expiry countdowns, the last
// sync or import with its error, the metadata version, cache usage, seats
// in use and recent events; and an offline-bundle upload (drag and drop,
// behind the mirror's admin token) that shows the import's dry run before
// a second step commits it. The upload is streamed to the Backend, never
// buffered. Pages are html/template with embedded assets; they read
// without JavaScript.
package sitepage

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/outpost/outpost/internal/webui"
)

// Status is what the page shows.
type Status struct {
	MirrorID string
	TenantID string
	Name     string
	// Snapshot is the metadata held; nil before the first sync.
	Snapshot *Snapshot
	// LastSync is the last sync or import attempt; LastSuccess the time
	// of the last one that succeeded (zero: never).
	LastSync    *SyncResult
	LastSuccess time.Time
	Cache       Cache
	Seats       []Seats
	Events      []Event // newest first
}

// Snapshot describes the held metadata.
type Snapshot struct {
	ID         string
	Version    int64
	Hash       string
	ExpiresAt  time.Time
	VerifiedAt time.Time
	Channels   []string
	Artifacts  int
}

// SyncResult is the outcome of one sync or import.
type SyncResult struct {
	At         time.Time
	Source     string // "http", "bucket", "upstream", "bundle", …
	OK         bool
	Changed    bool
	Version    int64
	Downloaded int
	Bytes      int64
	Error      string
}

// Cache is the artifact cache's usage.
type Cache struct {
	Blobs         int
	Bytes         int64
	CapacityBytes int64 // 0: unbounded
	Missing       int
	Quarantined   int
}

// Seats is one entitlement's seat usage on this mirror.
type Seats struct {
	EntitlementID string
	Product       string
	InUse         int
	Max           int
}

// Event is one line of the mirror's recent history.
type Event struct {
	At     time.Time
	Kind   string // e.g. sync, import, lease, verify
	OK     bool
	Detail string
}

// ImportReport is what an import would do (dry run) or did (commit).
type ImportReport struct {
	FileName     string
	TenantID     string
	FromVersion  int64 // held before
	ToVersion    int64 // in the bundle
	ExpiresAt    time.Time
	Releases     int
	Artifacts    int
	NewArtifacts int   // not yet in the cache
	Bytes        int64 // of new artifacts
	Revoked      []string
	Warnings     []string
	Committed    bool
}

// Backend is what the page needs from the mirror.
type Backend interface {
	Status(ctx context.Context) (*Status, error)
	// AuthorizeAdmin checks a mirror admin token; an error refuses.
	AuthorizeAdmin(ctx context.Context, token string) error
	// DryRunImport reads a bundle from r (streamed; the backend stages
	// it on disk), verifies it and reports what committing would change,
	// without changing what the mirror serves. The staging id names it.
	DryRunImport(ctx context.Context, fileName string, r io.Reader) (*ImportReport, string, error)
	// CommitImport applies a staged import.
	CommitImport(ctx context.Context, stagingID string) (*ImportReport, error)
	// DiscardImport deletes a staged import.
	DiscardImport(ctx context.Context, stagingID string) error
}

// Options configure the page.
type Options struct {
	Backend Backend
	// FreshFor: the mirror is shown fresh this long after a successful
	// sync (default 1h).
	FreshFor time.Duration
	// MaxBundleBytes bounds an upload (default 64 GiB).
	MaxBundleBytes int64
	// StagingTTL is how long a dry run can be committed (default 30m).
	StagingTTL time.Duration
	Now        func() time.Time
	Logger     *slog.Logger
}

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Handler serves "/", "/site/import", "/site/import/commit",
// "/site/import/discard" and "/site/static/". Mount it for those paths;
// every other path answers 404.
type Handler struct {
	o      Options
	mux    *http.ServeMux
	pages  map[string]*template.Template
	mu     sync.Mutex
	staged map[string]staged // by staging id
}

type staged struct {
	nonceHash [32]byte
	expires   time.Time
}

// New returns the handler.
func New(o Options) (*Handler, error) {
	if o.Backend == nil {
		return nil, errors.New("sitepage: a backend is required")
	}
	if o.FreshFor <= 0 {
		o.FreshFor = time.Hour
	}
	if o.MaxBundleBytes <= 0 {
		o.MaxBundleBytes = 64 << 30
	}
	if o.StagingTTL <= 0 {
		o.StagingTTL = 30 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	h := &Handler{o: o, mux: http.NewServeMux(), staged: map[string]staged{}, pages: map[string]*template.Template{}}
	for _, n := range []string{"status", "result", "error"} {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+n+".html")
		if err != nil {
			return nil, fmt.Errorf("sitepage: parse %s: %w", n, err)
		}
		h.pages[n] = t
	}
	st, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	fh := http.FileServerFS(webui.Static(st))
	h.mux.Handle("GET /site/static/", http.StripPrefix("/site/static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		fh.ServeHTTP(w, r)
	})))
	h.mux.HandleFunc("GET /{$}", h.status)
	h.mux.HandleFunc("POST /site/import", h.dryRun)
	h.mux.HandleFunc("POST /site/import/commit", h.commit)
	h.mux.HandleFunc("POST /site/import/discard", h.discard)
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { h.fail(w, http.StatusNotFound, "There is no such page.") })
	return h, nil
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "same-origin")
	h.mux.ServeHTTP(w, r)
}

type view struct {
	Title string
	Now   time.Time
	Data  any
	Code  int
}

func (h *Handler) render(w http.ResponseWriter, status int, page, title string, data any) {
	var buf bytes.Buffer
	if err := h.pages[page].ExecuteTemplate(&buf, "layout.html", &view{Title: title, Now: h.o.Now(), Data: data, Code: status}); err != nil {
		h.o.Logger.Error("sitepage: render", "page", page, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func (h *Handler) fail(w http.ResponseWriter, status int, msg string) {
	h.render(w, status, "error", http.StatusText(status), msg)
}

type statusData struct {
	S          *Status
	Freshness  string    // fresh, stale, expired, never
	FreshUntil time.Time // when fresh turns stale (for the page's script)
	ExpiresAt  time.Time
	Error      string
	MaxBytes   int64
}

func (h *Handler) status(w http.ResponseWriter, r *http.Request) {
	st, err := h.o.Backend.Status(r.Context())
	if err != nil {
		h.o.Logger.Error("sitepage: status", "err", err)
		h.fail(w, http.StatusInternalServerError, "The mirror's state could not be read; see its log.")
		return
	}
	now := h.o.Now()
	d := statusData{S: st, MaxBytes: h.o.MaxBundleBytes}
	if !st.LastSuccess.IsZero() {
		d.FreshUntil = st.LastSuccess.Add(h.o.FreshFor)
	}
	if st.Snapshot != nil {
		d.ExpiresAt = st.Snapshot.ExpiresAt
	}
	switch {
	case st.Snapshot != nil && !st.Snapshot.ExpiresAt.IsZero() && !now.Before(st.Snapshot.ExpiresAt):
		d.Freshness = "expired"
	case st.LastSuccess.IsZero():
		d.Freshness = "never"
	case now.Sub(st.LastSuccess) <= h.o.FreshFor:
		d.Freshness = "fresh"
	default:
		d.Freshness = "stale"
	}
	h.render(w, http.StatusOK, "status", "Mirror status", d)
}

// sameOrigin refuses what a browser marks as cross-site.
func sameOrigin(r *http.Request) bool {
	if sfs := r.Header.Get("Sec-Fetch-Site"); sfs != "" && sfs != "same-origin" && sfs != "none" {
		return false
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	if err != nil {
		return false
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return u.Scheme == scheme && strings.EqualFold(u.Host, r.Host)
}

type resultData struct {
	Report  *ImportReport
	Staging string
	Nonce   string
	Error   string
}

// dryRun reads the multipart form: the "token" field (or an
// Authorization: Bearer header) must come before the "bundle" file, and
// is checked before a byte of the file is read.
func (h *Handler) dryRun(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		h.fail(w, http.StatusForbidden, "This request came from another site and was refused.")
		return
	}
	ct, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || ct != "multipart/form-data" || params["boundary"] == "" {
		h.fail(w, http.StatusBadRequest, "Upload a bundle with the form on the status page.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, h.o.MaxBundleBytes+1<<20)
	mr, err := r.MultipartReader()
	if err != nil {
		h.fail(w, http.StatusBadRequest, "Upload a bundle with the form on the status page.")
		return
	}
	token := ""
	if a := r.Header.Get("Authorization"); strings.HasPrefix(a, "Bearer ") {
		token = strings.TrimPrefix(a, "Bearer ")
	}
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			h.fail(w, http.StatusBadRequest, "Choose a bundle file to upload.")
			return
		}
		if err != nil {
			h.fail(w, http.StatusBadRequest, "The upload was cut short or malformed.")
			return
		}
		switch part.FormName() {
		case "token":
			b, err := io.ReadAll(io.LimitReader(part, 1025))
			if err != nil || len(b) > 1024 {
				h.fail(w, http.StatusBadRequest, "The token field is too long.")
				return
			}
			if token == "" {
				token = strings.TrimSpace(string(b))
			}
		case "bundle":
			if token == "" || h.o.Backend.AuthorizeAdmin(r.Context(), token) != nil {
				h.fail(w, http.StatusUnauthorized, "The mirror admin token was not accepted; nothing was uploaded.")
				return
			}
			rep, staging, err := h.o.Backend.DryRunImport(r.Context(), part.FileName(), io.LimitReader(part, h.o.MaxBundleBytes+1))
			if err != nil {
				var mbe *http.MaxBytesError
				msg := err.Error()
				if errors.As(err, &mbe) {
					msg = "the bundle is larger than this mirror accepts"
				}
				h.render(w, http.StatusUnprocessableEntity, "result", "Import refused", resultData{Error: msg})
				return
			}
			_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
			nonce := newNonce()
			h.mu.Lock()
			expired := h.sweepLocked()
			h.staged[staging] = staged{nonceHash: sha256.Sum256([]byte(nonce)), expires: h.o.Now().Add(h.o.StagingTTL)}
			h.mu.Unlock()
			h.discardAll(r.Context(), expired)
			h.render(w, http.StatusOK, "result", "Dry run", resultData{Report: rep, Staging: staging, Nonce: nonce})
			return
		default:
			_, _ = io.Copy(io.Discard, io.LimitReader(part, 4096))
		}
	}
}

func newNonce() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// sweepLocked forgets expired dry runs and returns their staging ids.
func (h *Handler) sweepLocked() []string {
	now := h.o.Now()
	var out []string
	for id, s := range h.staged {
		if !now.Before(s.expires) {
			delete(h.staged, id)
			out = append(out, id)
		}
	}
	return out
}

// discardAll asks the backend to delete staged imports nobody committed.
func (h *Handler) discardAll(ctx context.Context, ids []string) {
	for _, id := range ids {
		if err := h.o.Backend.DiscardImport(ctx, id); err != nil {
			h.o.Logger.Warn("sitepage: discard expired import", "staging", id, "err", err)
		}
	}
}

// claim checks and consumes the one-time nonce that the dry run handed
// out for a staging id: it authorizes the commit (or discard) without
// sending the admin token again, and only the browser that uploaded
// holds it.
func (h *Handler) claim(ctx context.Context, staging, nonce string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	s, ok := h.staged[staging]
	if !ok {
		return false
	}
	if !h.o.Now().Before(s.expires) {
		delete(h.staged, staging)
		go h.discardAll(context.WithoutCancel(ctx), []string{staging})
		return false
	}
	got := sha256.Sum256([]byte(nonce))
	if subtle.ConstantTimeCompare(got[:], s.nonceHash[:]) != 1 {
		return false
	}
	delete(h.staged, staging)
	return true
}

func (h *Handler) commit(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		h.fail(w, http.StatusForbidden, "This request came from another site and was refused.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	staging := r.PostFormValue("staging")
	if !h.claim(r.Context(), staging, r.PostFormValue("nonce")) {
		h.fail(w, http.StatusForbidden, "This dry run has expired or was already used. Upload the bundle again.")
		return
	}
	rep, err := h.o.Backend.CommitImport(r.Context(), staging)
	if err != nil {
		h.render(w, http.StatusUnprocessableEntity, "result", "Import failed", resultData{Error: err.Error()})
		return
	}
	rep.Committed = true
	h.render(w, http.StatusOK, "result", "Imported", resultData{Report: rep})
}

func (h *Handler) discard(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		h.fail(w, http.StatusForbidden, "This request came from another site and was refused.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	staging := r.PostFormValue("staging")
	if !h.claim(r.Context(), staging, r.PostFormValue("nonce")) {
		h.fail(w, http.StatusForbidden, "This dry run has expired or was already used.")
		return
	}
	if err := h.o.Backend.DiscardImport(r.Context(), staging); err != nil {
		h.o.Logger.Warn("sitepage: discard", "staging", staging, "err", err)
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

var funcs = template.FuncMap{
	"bytes": func(n int64) string {
		const unit = 1024
		if n < unit {
			return fmt.Sprintf("%d B", n)
		}
		div, exp := int64(unit), 0
		for m := n / unit; m >= unit; m /= unit {
			div *= unit
			exp++
		}
		return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
	},
	"ts": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	},
	"day": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
	"rel": func(t, now time.Time) string {
		if t.IsZero() {
			return "never"
		}
		d := t.Sub(now)
		in := d >= 0
		if d < 0 {
			d = -d
		}
		var s string
		switch {
		case d >= 48*time.Hour:
			s = fmt.Sprintf("%dd %dh", d/(24*time.Hour), (d%(24*time.Hour))/time.Hour)
		case d >= time.Hour:
			s = fmt.Sprintf("%dh %dm", d/time.Hour, (d%time.Hour)/time.Minute)
		case d >= time.Minute:
			s = fmt.Sprintf("%dm", d/time.Minute)
		default:
			s = fmt.Sprintf("%ds", d/time.Second)
		}
		if in {
			return "in " + s
		}
		return s + " ago"
	},
	"pctOf": func(a, b int64) int64 {
		if b <= 0 {
			return 0
		}
		return min(100, a*100/b)
	},
	"i64": func(i int) int64 { return int64(i) },
}
