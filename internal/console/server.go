package console

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/webui"
	"github.com/outpost/outpost/internal/wire"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Options configure the console.
type Options struct {
	Backend Backend
	// Prefix is where the console is mounted; default "/console/". It
	// is also the session cookie's Path.
	Prefix string
	// IdleTimeout ends a session after this long without a request
	// (default 30m); MaxAge ends it regardless (default 12h).
	IdleTimeout time.Duration
	MaxAge      time.Duration
	// MaxSessions bounds the session table (default 10000); the least
	// recently used session is dropped beyond it.
	MaxSessions int
	// MaxUploadBytes bounds an artifact upload (default 8 GiB).
	MaxUploadBytes int64
	// FreshFor is how long after its last sync a mirror is shown as fresh
	// (default 1h).
	FreshFor time.Duration
	// AllowedOrigins are extra origins (scheme://host[:port]) accepted
	// on state-changing requests, for a console behind a proxy.
	AllowedOrigins []string
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger (default slog.Default()).
	Logger *slog.Logger
}

// Server is the console's http.Handler.
type Server struct {
	o        Options
	b        Backend
	sess     *sessions
	mux      *http.ServeMux
	pages    map[string]*template.Template
	prefix   string
	staticFS fs.FS
	patterns []string
}

// New returns the console. Mount it with mux.Handle(opts.Prefix, s).
func New(o Options) (*Server, error) {
	if o.Backend == nil {
		return nil, errors.New("console: a backend is required")
	}
	if o.Prefix == "" {
		o.Prefix = "/console/"
	}
	if !strings.HasPrefix(o.Prefix, "/") || !strings.HasSuffix(o.Prefix, "/") {
		return nil, fmt.Errorf("console: prefix %q must start and end with /", o.Prefix)
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 30 * time.Minute
	}
	if o.MaxAge <= 0 {
		o.MaxAge = 12 * time.Hour
	}
	if o.MaxSessions <= 0 {
		o.MaxSessions = 10000
	}
	if o.MaxUploadBytes <= 0 {
		o.MaxUploadBytes = 8 << 30
	}
	if o.FreshFor <= 0 {
		o.FreshFor = time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	st, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	s := &Server{o: o, b: o.Backend, sess: newSessions(o.IdleTimeout, o.MaxAge, o.MaxSessions), mux: http.NewServeMux(), prefix: o.Prefix, staticFS: webui.Static(st)}
	if err := s.parseTemplates(); err != nil {
		return nil, err
	}
	s.routes()
	return s, nil
}

// Sessions returns the number of live sessions (for metrics and tests).
func (s *Server) Sessions() int { return s.sess.count() }

func (s *Server) parseTemplates() error {
	base, err := template.New("layout.html").Funcs(s.funcs()).ParseFS(templateFS, "templates/layout.html")
	if err != nil {
		return fmt.Errorf("parse layout: %w", err)
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return err
	}
	s.pages = map[string]*template.Template{}
	for _, n := range names {
		if n == "templates/layout.html" {
			continue
		}
		t, err := template.Must(base.Clone()).ParseFS(templateFS, n)
		if err != nil {
			return fmt.Errorf("parse %s: %w", n, err)
		}
		s.pages[strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")] = t
	}
	return nil
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	s.mux.ServeHTTP(w, r)
}

// req is one authenticated request.
type req struct {
	w   http.ResponseWriter
	r   *http.Request
	ctx context.Context
	sid string
	se  *session
	p   Principal
	s   *Server
}

type handlerFunc func(q *req)

const (
	anyRole = iota
	adminOnly
	// anyoneMaySignOut: read-only principals too (the only action they
	// may take).
	anyoneMaySignOut
)

// page wraps a GET handler: a session is required (else a redirect to
// sign-in), admin pages refuse tenant sessions with 403 and
// tenant-scoped pages ({tenant} in the path) refuse other tenants with 404.
func (s *Server) page(scope int, fn handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q, ok := s.authenticate(w, r, false)
		if !ok {
			return
		}
		if !s.allowed(q, scope) {
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		fn(q)
	}
}

// action wraps a state-changing handler: a session is required (else
// 401), the request must be same-origin, the principal writable, and the
// form must carry the session's CSRF token. Multipart actions check the
// token themselves, from the fields before the file, so that the body is
// never parsed (buffered) before it is known to be legitimate.
func (s *Server) action(scope int, multipart bool, fn handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !sameOrigin(r, s.o.AllowedOrigins) {
			s.errorPage(w, r, nil, http.StatusForbidden, "This request came from another site and was refused.")
			return
		}
		q, ok := s.authenticate(w, r, true)
		if !ok {
			return
		}
		if !s.allowed(q, scope) {
			return
		}
		if q.p.ReadOnly() && scope != anyoneMaySignOut {
			s.errorPage(w, r, q, http.StatusForbidden, "Your token is read-only: it may look but not change anything.")
			return
		}
		if !multipart {
			q.r.Body = http.MaxBytesReader(w, q.r.Body, 64<<10)
			if !validCSRF(q.se, q.r.PostFormValue("csrf")) {
				s.errorPage(w, r, q, http.StatusForbidden, "The form has expired or did not come from this console. Reload the page and try again.")
				return
			}
		}
		w.Header().Set("Cache-Control", "no-store")
		fn(q)
	}
}

func (s *Server) allowed(q *req, scope int) bool {
	if t := q.r.PathValue("tenant"); t != "" && !q.p.Admin() && t != q.p.TenantID {
		// 404, not 403: a tenant learns nothing about other tenants.
		s.errorPage(q.w, q.r, q, http.StatusNotFound, "There is no such page.")
		return false
	}
	if scope == adminOnly && !q.p.Admin() {
		s.errorPage(q.w, q.r, q, http.StatusForbidden, "This is for the vendor's administrators.")
		return false
	}
	return true
}

func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, write bool) (*req, bool) {
	now := s.o.Now()
	c, err := r.Cookie(CookieName)
	var se *session
	ok := false
	if err == nil {
		se, ok = s.sess.get(c.Value, now)
	}
	if ok {
		// Re-read the token: a revoked token ends its sessions.
		p, err := s.b.TokenPrincipal(r.Context(), se.principal.TokenID)
		switch code := catalog.ErrorCode(err); {
		case err != nil && code != catalog.EUNAUTHORIZED && code != catalog.EFORBIDDEN && code != catalog.ENOTFOUND:
			// The backend could not answer: keep the session, say so.
			s.o.Logger.Error("console: check token", "err", err)
			s.errorPage(w, r, nil, http.StatusServiceUnavailable, "The control plane cannot check your sign-in right now. Try again shortly.")
			return nil, false
		case err != nil || p != se.principal:
			s.sess.delete(c.Value)
			ok = false
		}
	}
	if !ok {
		if write || r.Method != http.MethodGet && r.Method != http.MethodHead {
			s.clearCookie(w, r)
			http.Error(w, "401 unauthorized: sign in first", http.StatusUnauthorized)
			return nil, false
		}
		s.clearCookie(w, r)
		next := r.URL.Path
		if r.URL.RawQuery != "" {
			next += "?" + r.URL.RawQuery
		}
		http.Redirect(w, r, s.prefix+"signin?next="+urlQueryEscape(next), http.StatusSeeOther)
		return nil, false
	}
	ctx := WithPrincipal(r.Context(), se.principal)
	ctx = catalog.WithActor(ctx, catalog.Actor{Type: catalog.ActorUser, ID: se.principal.TokenID})
	return &req{w: w, r: r.WithContext(ctx), ctx: ctx, sid: c.Value, se: se, p: se.principal, s: s}, true
}

func (s *Server) setCookie(w http.ResponseWriter, r *http.Request, id string) {
	http.SetCookie(w, &http.Cookie{
		Name: CookieName, Value: id, Path: s.prefix,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode,
		MaxAge: int(s.o.MaxAge / time.Second),
	})
}

func (s *Server) clearCookie(w http.ResponseWriter, r *http.Request) {
	if _, err := r.Cookie(CookieName); err != nil {
		return
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: s.prefix, HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode, MaxAge: -1})
}

// view is what every page template gets.
type view struct {
	Title   string
	Section string
	P       Principal
	CSRF    string
	Flash   []flash
	Prefix  string
	Now     time.Time
	Tenant  *catalog.Tenant // the tenant a tenant-scoped page is about
	Data    any
	Status  int
}

func (s *Server) render(q *req, status int, name, title, section string, data any) {
	v := &view{Title: title, Section: section, Prefix: s.prefix, Now: s.o.Now(), Data: data, Status: status}
	v.P = q.p
	v.CSRF = q.se.csrf
	v.Flash = s.sess.takeFlash(q.se)
	if tid := q.r.PathValue("tenant"); tid != "" {
		v.Tenant, _ = s.b.Tenant(q.ctx, tid)
	}
	s.renderView(q.w, status, name, v)
}

func (s *Server) renderView(w http.ResponseWriter, status int, name string, v *view) {
	t, ok := s.pages[name]
	if !ok {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout.html", v); err != nil {
		s.o.Logger.Error("console: render", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// errorPage renders a friendly error; q may be nil (no session).
func (s *Server) errorPage(w http.ResponseWriter, r *http.Request, q *req, status int, msg string) {
	v := &view{Title: http.StatusText(status), Prefix: s.prefix, Now: s.o.Now(), Data: msg, Status: status}
	if q != nil {
		v.P = q.p
		v.CSRF = q.se.csrf
	}
	w.Header().Set("Cache-Control", "no-store")
	s.renderView(w, status, "error", v)
}

// fail renders a backend error as a friendly page.
func (q *req) fail(err error) {
	status, msg := friendly(err)
	if status == http.StatusInternalServerError {
		q.s.o.Logger.Error("console: backend", "path", q.r.URL.Path, "err", err)
	}
	q.s.errorPage(q.w, q.r, q, status, msg)
}

// friendly maps a domain error to the status the API would answer
// (internal/wire: one code → status table) and a sentence for people.
func friendly(err error) (int, string) {
	if errors.Is(err, ErrNotImplemented) {
		return http.StatusNotImplemented, "This feature is not configured on this control plane."
	}
	msg := catalog.ErrorMessage(err)
	if msg != "" {
		msg = strings.ToUpper(msg[:1]) + msg[1:]
		if !strings.HasSuffix(msg, ".") {
			msg += "."
		}
	}
	code := catalog.ErrorCode(err)
	sentence := map[string]string{
		catalog.ENOTFOUND:     "Not found: " + msg,
		catalog.EFORBIDDEN:    "You are not allowed to do that. " + msg,
		catalog.EUNAUTHORIZED: "Your sign-in is no longer valid. Sign in again.",
		catalog.EINVALID:      "That was not accepted: " + msg,
		catalog.ECONFLICT:     "That conflicts with what exists: " + msg,
		catalog.ETOOLARGE:     "Too large: " + msg,
		catalog.EUNAVAILABLE:  "The control plane cannot do that right now: " + msg + " Try again shortly.",
		catalog.ERATELIMITED:  "Too many requests; wait a moment and try again.",
		catalog.ENOSPACE:      msg,
	}[code]
	if sentence == "" {
		sentence = "Something went wrong on the server; the details are in its log."
	}
	return wire.StatusOf(code), sentence
}

// flashErr records a backend error for the next page and reports whether
// there was one.
func (q *req) flashErr(err error) bool {
	if err == nil {
		return false
	}
	_, msg := friendly(err)
	if catalog.ErrorCode(err) == catalog.EINTERNAL && !errors.Is(err, ErrNotImplemented) {
		q.s.o.Logger.Error("console: backend", "path", q.r.URL.Path, "err", err)
	}
	q.s.sess.addFlash(q.se, "error", msg)
	return true
}

func (q *req) flashOK(format string, args ...any) {
	q.s.sess.addFlash(q.se, "ok", fmt.Sprintf(format, args...))
}

func (q *req) redirect(path string) {
	http.Redirect(q.w, q.r, q.s.prefix+strings.TrimPrefix(path, "/"), http.StatusSeeOther)
}
