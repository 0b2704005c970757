package console

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/svgchart"
)

func urlQueryEscape(s string) string { return url.QueryEscape(s) }

func (s *Server) routes() {
	p := s.prefix
	m := s.mux
	m.Handle("GET "+p+"static/", http.StripPrefix(p+"static/", staticHandler(s.staticFS)))
	m.HandleFunc("GET "+p+"signin", s.signinForm)
	m.HandleFunc("POST "+p+"signin", s.signin)
	s.handle("POST "+p+"signout", s.action(anyoneMaySignOut, false, s.signout))

	s.handle("GET "+p+"{$}", s.page(anyRole, s.home))
	s.handle("GET "+p+"tenants", s.page(adminOnly, s.tenants))
	s.handle("POST "+p+"tenants", s.action(adminOnly, false, s.createTenant))
	s.handle("GET "+p+"tenants/{tenant}", s.page(anyRole, s.tenant))
	s.handle("GET "+p+"tenants/{tenant}/policies", s.page(anyRole, s.policies))
	s.handle("POST "+p+"tenants/{tenant}/blocked", s.action(adminOnly, false, s.block))
	s.handle("POST "+p+"tenants/{tenant}/blocked/{id}/delete", s.action(adminOnly, false, s.unblock))
	s.handle("GET "+p+"tenants/{tenant}/mirrors", s.page(anyRole, s.mirrors))
	s.handle("GET "+p+"tenants/{tenant}/entitlements", s.page(anyRole, s.entitlements))
	s.handle("GET "+p+"tenants/{tenant}/audit", s.page(anyRole, s.audit))
	s.handle("GET "+p+"tenants/{tenant}/webhooks", s.page(anyRole, s.webhooks))

	s.handle("GET "+p+"products", s.page(adminOnly, s.products))
	s.handle("POST "+p+"products", s.action(adminOnly, false, s.createProduct))
	s.handle("GET "+p+"products/{product}", s.page(adminOnly, s.product))
	s.handle("POST "+p+"products/{product}/releases", s.action(adminOnly, true, s.publish))
	s.handle("POST "+p+"products/{product}/rollouts", s.action(adminOnly, false, s.createRollout))
	s.handle("GET "+p+"releases/{release}/revoke", s.page(adminOnly, s.revokeConfirm))
	s.handle("POST "+p+"releases/{release}/revoke", s.action(adminOnly, false, s.revoke))
	s.handle("GET "+p+"rollouts", s.page(adminOnly, s.rollouts))
	s.handle("GET "+p+"rollouts/{rollout}", s.page(adminOnly, s.rollout))
	s.handle("POST "+p+"rollouts/{rollout}", s.action(adminOnly, false, s.updateRollout))
	s.handle("GET "+p+"mirrors", s.page(adminOnly, s.mirrors))
	s.handle("GET "+p+"entitlements", s.page(adminOnly, s.entitlements))
	s.handle("GET "+p+"tokens", s.page(adminOnly, s.tokens))
	s.handle("POST "+p+"tokens", s.action(adminOnly, false, s.createToken))
	s.handle("POST "+p+"tokens/{token}/revoke", s.action(adminOnly, false, s.revokeToken))
	s.handle("GET "+p+"audit", s.page(adminOnly, s.audit))
	s.handle("GET "+p+"webhooks", s.page(adminOnly, s.webhooks))
	s.handle("POST "+p+"webhooks/deliveries/{delivery}/redeliver", s.action(adminOnly, false, s.redeliver))
	m.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
		s.errorPage(w, r, nil, http.StatusNotFound, "There is no such page.")
	})
}

// handle registers a guarded route and remembers its pattern.
func (s *Server) handle(pattern string, h http.HandlerFunc) {
	s.mux.HandleFunc(pattern, h)
	s.patterns = append(s.patterns, strings.Replace(pattern, "{$}", "", 1))
}

// RoutePatterns lists every route that needs a session (method and path
// pattern), for the tests that prove each one is guarded.
func (s *Server) RoutePatterns() []string { return slices.Clone(s.patterns) }

// --- sign-in ---

type signinData struct {
	Next      string
	Error     string
	SignedOut bool
}

func safeNext(prefix, next string) string {
	// Only paths inside the console: no scheme, no host, no "//".
	if !strings.HasPrefix(next, prefix) || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return prefix
	}
	return next
}

func (s *Server) signinForm(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	s.renderView(w, http.StatusOK, "signin", &view{Title: "Sign in", Prefix: s.prefix, Now: s.o.Now(),
		Data: signinData{Next: safeNext(s.prefix, r.URL.Query().Get("next")), SignedOut: r.URL.Query().Get("signedout") == "1"}})
}

func (s *Server) signin(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if !sameOrigin(r, s.o.AllowedOrigins) {
		s.errorPage(w, r, nil, http.StatusForbidden, "This request came from another site and was refused.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	token := strings.TrimSpace(r.PostFormValue("token"))
	next := safeNext(s.prefix, r.PostFormValue("next"))
	again := func(status int, msg string) {
		s.renderView(w, status, "signin", &view{Title: "Sign in", Prefix: s.prefix, Now: s.o.Now(), Data: signinData{Next: next, Error: msg}})
	}
	if token == "" {
		again(http.StatusBadRequest, "Enter an API token.")
		return
	}
	p, err := s.b.Authenticate(r.Context(), token)
	if err != nil || !p.Valid() {
		if err != nil && catalog.ErrorCode(err) == catalog.EFORBIDDEN {
			again(http.StatusForbidden, "This token's tenant is suspended.")
			return
		}
		again(http.StatusUnauthorized, "That token was not accepted.")
		return
	}
	// A fresh id on every sign-in (no fixation); any old session ends.
	if c, err := r.Cookie(CookieName); err == nil {
		s.sess.delete(c.Value)
	}
	id, _ := s.sess.create(p, s.o.Now())
	s.setCookie(w, r, id)
	if next == s.prefix && !p.Admin() {
		next = s.prefix + "tenants/" + p.TenantID
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (s *Server) signout(q *req) {
	s.sess.delete(q.sid)
	http.SetCookie(q.w, &http.Cookie{Name: CookieName, Value: "", Path: s.prefix, HttpOnly: true, Secure: q.r.TLS != nil, SameSite: http.SameSiteStrictMode, MaxAge: -1})
	http.Redirect(q.w, q.r, s.prefix+"signin?signedout=1", http.StatusSeeOther)
}

// --- overview and tenants ---

type homeData struct {
	Tenants  int
	Products int
	Rollouts []*RolloutInfo
	Mirrors  []*mirrorRow
	Chain    *ChainStatus
}

func (s *Server) home(q *req) {
	if !q.p.Admin() {
		q.redirect("tenants/" + q.p.TenantID)
		return
	}
	ts, err := s.b.Tenants(q.ctx)
	if err != nil {
		q.fail(err)
		return
	}
	ps, err := s.b.Products(q.ctx)
	if err != nil {
		q.fail(err)
		return
	}
	d := homeData{Tenants: len(ts), Products: len(ps)}
	for _, p := range ps {
		rs, err := s.b.Rollouts(q.ctx, p.ProductID)
		if err != nil {
			q.fail(err)
			return
		}
		for _, r := range rs {
			if r.Rollout.Status == catalog.RolloutActive || r.Rollout.Status == catalog.RolloutPaused {
				d.Rollouts = append(d.Rollouts, r)
			}
		}
	}
	ms, err := s.b.Mirrors(q.ctx, "")
	if err != nil {
		q.fail(err)
		return
	}
	d.Mirrors = s.mirrorRows(ms, ts)
	if c, err := s.b.VerifyAuditChain(q.ctx); err == nil {
		d.Chain = c
	}
	s.render(q, http.StatusOK, "home", "Overview", "home", d)
}

func (s *Server) tenants(q *req) {
	ts, err := s.b.Tenants(q.ctx)
	if err != nil {
		q.fail(err)
		return
	}
	s.render(q, http.StatusOK, "tenants", "Tenants", "tenants", ts)
}

func (s *Server) createTenant(q *req) {
	name := strings.TrimSpace(q.r.PostFormValue("name"))
	t, err := s.b.CreateTenant(q.ctx, name)
	if q.flashErr(err) {
		q.redirect("tenants")
		return
	}
	q.flashOK("Created tenant %s (%s).", t.Name, t.TenantID)
	q.redirect("tenants")
}

type tenantData struct {
	Entitlements []*EntitlementInfo
	Mirrors      []*mirrorRow
	Policies     []*catalog.Policy
	Blocked      []*catalog.BlockedVersion
}

func (s *Server) tenant(q *req) {
	tid := q.r.PathValue("tenant")
	if _, err := s.b.Tenant(q.ctx, tid); err != nil {
		q.fail(err)
		return
	}
	var d tenantData
	var err error
	if d.Entitlements, err = s.b.Entitlements(q.ctx, tid); err != nil {
		q.fail(err)
		return
	}
	ms, err := s.b.Mirrors(q.ctx, tid)
	if err != nil {
		q.fail(err)
		return
	}
	d.Mirrors = s.mirrorRows(ms, nil)
	if d.Policies, err = s.b.Policies(q.ctx, tid); err != nil {
		q.fail(err)
		return
	}
	if d.Blocked, err = s.b.BlockedVersions(q.ctx, tid); err != nil {
		q.fail(err)
		return
	}
	s.render(q, http.StatusOK, "tenant", "Tenant overview", "tenant", d)
}

// --- policies and blocked versions ---

type policyRow struct {
	Policy   *catalog.Policy
	Versions []*catalog.Policy // newest first
}

type policiesData struct {
	Policies []*policyRow
	Blocked  []*catalog.BlockedVersion
	Products []*catalog.Product
	Names    map[string]string // product id → name, for admins
	CanEdit  bool
}

func (s *Server) policies(q *req) {
	tid := q.r.PathValue("tenant")
	if _, err := s.b.Tenant(q.ctx, tid); err != nil {
		q.fail(err)
		return
	}
	ps, err := s.b.Policies(q.ctx, tid)
	if err != nil {
		q.fail(err)
		return
	}
	d := policiesData{CanEdit: q.p.Admin() && !q.p.ReadOnly()}
	for _, p := range ps {
		vs, err := s.b.PolicyVersions(q.ctx, p.PolicyID)
		if err != nil {
			q.fail(err)
			return
		}
		vs = slices.Clone(vs)
		slices.SortFunc(vs, func(a, b *catalog.Policy) int { return b.Version - a.Version })
		d.Policies = append(d.Policies, &policyRow{Policy: p, Versions: vs})
	}
	if d.Blocked, err = s.b.BlockedVersions(q.ctx, tid); err != nil {
		q.fail(err)
		return
	}
	d.Names = map[string]string{}
	if q.p.Admin() {
		d.Products, _ = s.b.Products(q.ctx)
		for _, p := range d.Products {
			d.Names[p.ProductID] = p.Name
		}
	}
	s.render(q, http.StatusOK, "policies", "Policies and blocked versions", "policies", d)
}

func (s *Server) block(q *req) {
	tid := q.r.PathValue("tenant")
	b := &catalog.BlockedVersion{TenantID: tid, ProductID: strings.TrimSpace(q.r.PostFormValue("product_id")),
		BlockedVersion: strings.TrimSpace(q.r.PostFormValue("version")), Reason: strings.TrimSpace(q.r.PostFormValue("reason"))}
	got, err := s.b.BlockVersion(q.ctx, b)
	if !q.flashErr(err) {
		q.flashOK("Blocked version %s.", got.BlockedVersion)
	}
	q.redirect("tenants/" + tid + "/policies")
}

func (s *Server) unblock(q *req) {
	tid := q.r.PathValue("tenant")
	if !q.flashErr(s.b.UnblockVersion(q.ctx, tid, q.r.PathValue("id"))) {
		q.flashOK("Unblocked.")
	}
	q.redirect("tenants/" + tid + "/policies")
}

// --- products, releases, publishing, revoking ---

func (s *Server) products(q *req) {
	ps, err := s.b.Products(q.ctx)
	if err != nil {
		q.fail(err)
		return
	}
	s.render(q, http.StatusOK, "products", "Products", "products", ps)
}

func (s *Server) createProduct(q *req) {
	p, err := s.b.CreateProduct(q.ctx, strings.TrimSpace(q.r.PostFormValue("name")), q.r.PostFormValue("distribution"))
	if q.flashErr(err) {
		q.redirect("products")
		return
	}
	q.flashOK("Created product %s (%s).", p.Name, p.ProductID)
	q.redirect("products/" + p.ProductID)
}

type productData struct {
	Product  *catalog.Product
	Releases []*catalog.Release
	Rollouts []*RolloutInfo
	Active   []*catalog.Release
}

func (s *Server) product(q *req) {
	id := q.r.PathValue("product")
	p, err := s.b.Product(q.ctx, id)
	if err != nil {
		q.fail(err)
		return
	}
	d := productData{Product: p}
	if d.Releases, err = s.b.Releases(q.ctx, id); err != nil {
		q.fail(err)
		return
	}
	d.Releases = slices.Clone(d.Releases)
	slices.SortStableFunc(d.Releases, func(a, b *catalog.Release) int { return b.PublishedAt.Compare(a.PublishedAt) })
	for _, r := range d.Releases {
		if r.Status == catalog.ReleaseActive {
			d.Active = append(d.Active, r)
		}
	}
	if d.Rollouts, err = s.b.Rollouts(q.ctx, id); err != nil {
		q.fail(err)
		return
	}
	s.render(q, http.StatusOK, "product", p.Name, "products", d)
}

// publish streams a multipart form: the small fields (csrf first) are
// read with a bound, the CSRF token is checked, and only then is the file
// part handed to the backend as a stream.
func (s *Server) publish(q *req) {
	pid := q.r.PathValue("product")
	back := "products/" + pid
	ct, params, err := mime.ParseMediaType(q.r.Header.Get("Content-Type"))
	if err != nil || ct != "multipart/form-data" || params["boundary"] == "" {
		s.errorPage(q.w, q.r, q, http.StatusBadRequest, "Publishing needs a multipart form with a file.")
		return
	}
	q.r.Body = http.MaxBytesReader(q.w, q.r.Body, s.o.MaxUploadBytes+1<<20)
	mr, err := q.r.MultipartReader()
	if err != nil {
		s.errorPage(q.w, q.r, q, http.StatusBadRequest, "Publishing needs a multipart form with a file.")
		return
	}
	fields := map[string]string{}
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			s.errorPage(q.w, q.r, q, http.StatusBadRequest, "The upload was cut short or malformed.")
			return
		}
		name := part.FormName()
		if name != "file" {
			if len(fields) > 32 {
				s.errorPage(q.w, q.r, q, http.StatusBadRequest, "Too many form fields.")
				return
			}
			b, err := io.ReadAll(io.LimitReader(part, 4097))
			if err != nil || len(b) > 4096 {
				s.errorPage(q.w, q.r, q, http.StatusBadRequest, "A form field is too long.")
				return
			}
			fields[name] = string(b)
			continue
		}
		if !validCSRF(q.se, fields["csrf"]) {
			s.errorPage(q.w, q.r, q, http.StatusForbidden, "The form has expired or did not come from this console. Reload the page and try again.")
			return
		}
		size := int64(-1)
		if v := strings.TrimSpace(fields["size_bytes"]); v != "" {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
				size = n
			}
		}
		if size > s.o.MaxUploadBytes {
			s.errorPage(q.w, q.r, q, http.StatusRequestEntityTooLarge, fmt.Sprintf("The file is larger than this console accepts (%s).", bytesText(s.o.MaxUploadBytes)))
			return
		}
		req := PublishRequest{ProductID: pid, Channel: strings.TrimSpace(fields["channel"]), Version: strings.TrimSpace(fields["version"]),
			Platform: strings.TrimSpace(fields["platform"]), Arch: strings.TrimSpace(fields["arch"]), InstallerType: strings.TrimSpace(fields["installer_type"]),
			FileName: part.FileName(), SizeBytes: size}
		// Refuse an incomplete form before the upload, not after it.
		for _, f := range []struct{ name, v string }{{"channel", req.Channel}, {"version", req.Version}, {"platform", req.Platform}, {"arch", req.Arch}, {"installer type", req.InstallerType}} {
			if f.v == "" {
				s.errorPage(q.w, q.r, q, http.StatusBadRequest, "Fill in the "+f.name+" before uploading.")
				return
			}
		}
		rel, err := s.b.PublishRelease(q.ctx, req, io.LimitReader(part, s.o.MaxUploadBytes+1))
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				err = catalog.Errorf(catalog.ETOOLARGE, "the file is larger than %s", bytesText(s.o.MaxUploadBytes))
			}
			q.flashErr(err)
			q.redirect(back)
			return
		}
		// Drain the rest of the form so the client sees a clean answer.
		_, _ = io.Copy(io.Discard, io.LimitReader(q.r.Body, 1<<20))
		q.flashOK("Published %s %s on %s.", rel.Version, rel.ReleaseID, rel.Channel)
		q.redirect(back)
		return
	}
	s.errorPage(q.w, q.r, q, http.StatusBadRequest, "Choose a file to publish.")
}

func (s *Server) revokeConfirm(q *req) {
	imp, err := s.b.RevokePreview(q.ctx, q.r.PathValue("release"))
	if err != nil {
		q.fail(err)
		return
	}
	s.render(q, http.StatusOK, "revoke", "Revoke "+imp.Release.Version, "products", imp)
}

func (s *Server) revoke(q *req) {
	id := q.r.PathValue("release")
	if q.r.PostFormValue("confirm") != id {
		s.errorPage(q.w, q.r, q, http.StatusBadRequest, "Confirm the revocation on the confirmation page.")
		return
	}
	rel, err := s.b.RevokeRelease(q.ctx, id)
	if q.flashErr(err) {
		q.redirect("releases/" + id + "/revoke")
		return
	}
	q.flashOK("Revoked %s (%s). Mirrors stop offering it after their next sync.", rel.Version, rel.ReleaseID)
	q.redirect("products/" + rel.ProductID)
}

// --- rollouts ---

type rolloutsData struct {
	Products []*catalog.Product
	Rollouts []*RolloutInfo
}

func (s *Server) rollouts(q *req) {
	ps, err := s.b.Products(q.ctx)
	if err != nil {
		q.fail(err)
		return
	}
	d := rolloutsData{Products: ps}
	for _, p := range ps {
		rs, err := s.b.Rollouts(q.ctx, p.ProductID)
		if err != nil {
			q.fail(err)
			return
		}
		d.Rollouts = append(d.Rollouts, rs...)
	}
	s.render(q, http.StatusOK, "rollouts", "Rollouts", "rollouts", d)
}

type rolloutData struct {
	Info     *RolloutInfo
	Product  *catalog.Product
	Adoption any
	Failures any
	Next     []string
}

func (s *Server) rollout(q *req) {
	id := q.r.PathValue("rollout")
	info, err := s.b.Rollout(q.ctx, id)
	if err != nil {
		q.fail(err)
		return
	}
	d := rolloutData{Info: info}
	d.Product, _ = s.b.Product(q.ctx, info.Rollout.ProductID)
	series, err := s.b.RolloutSeries(q.ctx, id)
	if err != nil && !errors.Is(err, ErrNotImplemented) {
		q.fail(err)
		return
	}
	if series == nil {
		series = &RolloutSeries{}
	}
	pct := func(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) + "%" }
	d.Adoption = svgchart.Line{ID: "adoption", Title: "Adoption", Desc: "Share of reporting devices running this release over time.", YLabel: "devices", YMax: 100, YFormat: pct,
		Series: []svgchart.Series{{Name: "on release", Points: series.Adoption}}}.SVG()
	d.Failures = svgchart.Line{ID: "failures", Title: "Failure rate", Desc: "Share of installs of this release that failed, over time.", YLabel: "failed", YFormat: pct,
		Series: []svgchart.Series{{Name: "failed installs", Points: series.FailureRate}}}.SVG()
	for _, st := range []string{catalog.RolloutActive, catalog.RolloutPaused, catalog.RolloutCompleted, catalog.RolloutKilled} {
		if catalog.ValidateRolloutTransition(info.Rollout.Status, st) == nil && st != info.Rollout.Status {
			d.Next = append(d.Next, st)
		}
	}
	s.render(q, http.StatusOK, "rollout", "Rollout", "rollouts", d)
}

func (s *Server) createRollout(q *req) {
	pid := q.r.PathValue("product")
	pct, err := strconv.ParseFloat(strings.TrimSpace(q.r.PostFormValue("percentage")), 64)
	if err != nil {
		q.flashErr(catalog.Invalid("percentage", "must be a number from 0 to 100"))
		q.redirect("products/" + pid)
		return
	}
	req := RolloutRequest{ProductID: pid, ReleaseID: q.r.PostFormValue("release_id"), Percentage: pct}
	if req.Gate, err = gateFields(q); q.flashErr(err) {
		q.redirect("products/" + pid)
		return
	}
	if req.Schedule, err = ParseSchedule(q.r.PostFormValue("schedule"), s.o.Now()); q.flashErr(err) {
		q.redirect("products/" + pid)
		return
	}
	r, err := s.b.CreateRollout(q.ctx, req)
	if q.flashErr(err) {
		q.redirect("products/" + pid)
		return
	}
	q.flashOK("Started rollout %s at %s%%.", r.RolloutID, strconv.FormatFloat(r.Percentage, 'f', -1, 64))
	q.redirect("rollouts/" + r.RolloutID)
}

func (s *Server) updateRollout(q *req) {
	id := q.r.PathValue("rollout")
	var u RolloutUpdate
	if v := strings.TrimSpace(q.r.PostFormValue("percentage")); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			q.flashErr(catalog.Invalid("percentage", "must be a number from 0 to 100"))
			q.redirect("rollouts/" + id)
			return
		}
		u.Percentage = &f
	}
	u.Status = q.r.PostFormValue("status")
	var err error
	if u.RemoveSchedule = q.r.PostFormValue("remove_schedule") != ""; !u.RemoveSchedule {
		if u.Schedule, err = ParseSchedule(q.r.PostFormValue("schedule"), s.o.Now()); q.flashErr(err) {
			q.redirect("rollouts/" + id)
			return
		}
	}
	if u.RemoveGate = q.r.PostFormValue("remove_gate") != ""; !u.RemoveGate {
		if u.Gate, err = gateFields(q); q.flashErr(err) {
			q.redirect("rollouts/" + id)
			return
		}
	}
	if _, err := s.b.UpdateRollout(q.ctx, id, u); !q.flashErr(err) {
		q.flashOK("Rollout updated.")
	}
	q.redirect("rollouts/" + id)
}

// gateFields reads the health gate fields of a rollout form: nil when
// the maximum failure rate is left empty.
func gateFields(q *req) (*HealthGate, error) {
	v := strings.TrimSpace(q.r.PostFormValue("gate_max_failure_rate"))
	if v == "" {
		return nil, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 || f > 100 || f != f {
		return nil, catalog.Invalid("health gate", "the maximum failure rate must be a number from 0 to 100")
	}
	minr := 0
	if v := strings.TrimSpace(q.r.PostFormValue("gate_min_reports")); v != "" {
		if minr, err = strconv.Atoi(v); err != nil || minr < 0 {
			return nil, catalog.Invalid("health gate", "the minimum number of reports must be a whole number, 0 or more")
		}
	}
	return &HealthGate{MaxFailureRate: f, MinReports: minr}, nil
}

// --- mirrors ---

type mirrorRow struct {
	Info       *MirrorInfo
	Tenant     string
	Freshness  string    // fresh, stale, expired, never
	FreshUntil time.Time // when a fresh mirror turns stale (for the page's script)
}

func (s *Server) mirrorRows(ms []*MirrorInfo, ts []*catalog.Tenant) []*mirrorRow {
	names := map[string]string{}
	for _, t := range ts {
		names[t.TenantID] = t.Name
	}
	now := s.o.Now()
	var out []*mirrorRow
	for _, m := range ms {
		row := &mirrorRow{Info: m, Tenant: names[m.Mirror.TenantID]}
		if m.Mirror.LastSyncAt != nil {
			row.FreshUntil = m.Mirror.LastSyncAt.Add(s.o.FreshFor)
		}
		switch {
		case !m.ExpiresAt.IsZero() && !now.Before(m.ExpiresAt):
			row.Freshness = "expired"
		case m.Mirror.LastSyncAt == nil:
			row.Freshness = "never"
		case now.Sub(*m.Mirror.LastSyncAt) <= s.o.FreshFor:
			row.Freshness = "fresh"
		default:
			row.Freshness = "stale"
		}
		out = append(out, row)
	}
	return out
}

func (s *Server) mirrors(q *req) {
	tid := q.r.PathValue("tenant")
	var ts []*catalog.Tenant
	if tid == "" {
		var err error
		if ts, err = s.b.Tenants(q.ctx); err != nil {
			q.fail(err)
			return
		}
	}
	ms, err := s.b.Mirrors(q.ctx, tid)
	if err != nil {
		q.fail(err)
		return
	}
	section := "mirrors"
	if tid != "" {
		section = "tenant-mirrors"
	}
	s.render(q, http.StatusOK, "mirrors", "Mirrors", section, s.mirrorRows(ms, ts))
}

// --- entitlements ---

type entitlementRow struct {
	Info   *EntitlementInfo
	Tenant string // the tenant's name, on the all-tenants page
	Chart  any
}

type entitlementsData struct {
	Rows  []*entitlementRow
	Usage any
}

func (s *Server) entitlements(q *req) {
	tid := q.r.PathValue("tenant")
	es, err := s.b.Entitlements(q.ctx, tid)
	if err != nil {
		q.fail(err)
		return
	}
	names := map[string]string{}
	if tid == "" {
		ts, err := s.b.Tenants(q.ctx)
		if err != nil {
			q.fail(err)
			return
		}
		for _, t := range ts {
			names[t.TenantID] = t.Name
		}
	}
	var d entitlementsData
	usage := svgchart.Bars{ID: "seat-usage", Title: "Seats in use", Desc: "For each entitlement, seats held by active leases and seats free.", YLabel: "seats",
		Stack: []string{"leased", "free"}}
	for i, e := range es {
		row := &entitlementRow{Info: e, Tenant: names[e.Entitlement.TenantID]}
		series, err := s.b.EntitlementSeries(q.ctx, e.Entitlement.EntitlementID)
		if err != nil && !errors.Is(err, ErrNotImplemented) {
			q.fail(err)
			return
		}
		if series == nil {
			series = &UsageSeries{}
		}
		name := e.Entitlement.EntitlementID
		if e.Product != nil {
			name = e.Product.Name
		}
		if row.Tenant != "" {
			name = row.Tenant + " · " + name
		}
		row.Chart = svgchart.Line{ID: fmt.Sprintf("usage-%d", i), Title: "Seats and leases: " + name,
			Desc: "Assigned seats and active leases over time; the limit is " + strconv.Itoa(e.MaxSeats) + " seats.", YLabel: "count",
			YMax: float64(max(e.MaxSeats, 1)), Height: 180,
			Series: []svgchart.Series{{Name: "seats assigned", Points: series.Seats}, {Name: "active leases", Points: series.Leases}}}.SVG()
		usage.Bars = append(usage.Bars, svgchart.Bar{Label: name, Values: []float64{float64(e.LeasesActive), float64(max(e.MaxSeats-e.LeasesActive, 0))}})
		d.Rows = append(d.Rows, row)
	}
	if len(es) > 0 {
		d.Usage = usage.SVG()
	}
	section := "entitlements"
	if tid != "" {
		section = "tenant-entitlements"
	}
	s.render(q, http.StatusOK, "entitlements", "Entitlements", section, d)
}

// --- tokens ---

type tokensData struct {
	Tokens []*TokenInfo
	// Unlisted: the backend cannot list tokens (creating still works).
	Unlisted bool
	Tenants  []*catalog.Tenant
	Names    map[string]string // tenant id → name
	Created  *createdToken
}

type createdToken struct {
	Secret string
	Token  *catalog.Token
}

func (s *Server) tokensPage(q *req, created *createdToken) {
	ts, err := s.b.Tokens(q.ctx, "")
	unlisted := errors.Is(err, ErrNotImplemented)
	if err != nil && !unlisted {
		q.fail(err)
		return
	}
	tenants, err := s.b.Tenants(q.ctx)
	if err != nil {
		q.fail(err)
		return
	}
	names := map[string]string{}
	for _, t := range tenants {
		names[t.TenantID] = t.Name
	}
	s.render(q, http.StatusOK, "tokens", "Tokens", "tokens", tokensData{Tokens: ts, Unlisted: unlisted, Tenants: tenants, Names: names, Created: created})
}

func (s *Server) tokens(q *req) { s.tokensPage(q, nil) }

func (s *Server) createToken(q *req) {
	role := q.r.PostFormValue("role")
	tid := ""
	if role == RoleTenant || role == RoleTenantRO {
		tid = q.r.PostFormValue("tenant_id")
	}
	secret, t, err := s.b.CreateToken(q.ctx, role, tid, strings.TrimSpace(q.r.PostFormValue("name")))
	if q.flashErr(err) {
		q.redirect("tokens")
		return
	}
	// Rendered directly (no redirect, no-store): the secret is shown once
	// and kept nowhere.
	s.tokensPage(q, &createdToken{Secret: secret, Token: t})
}

func (s *Server) revokeToken(q *req) {
	id := q.r.PathValue("token")
	if err := s.b.RevokeToken(q.ctx, id); !q.flashErr(err) {
		s.sess.deleteToken(id)
		q.flashOK("Revoked token %s; its sessions are signed out.", id)
	}
	if id == q.p.TokenID {
		http.Redirect(q.w, q.r, s.prefix+"signin", http.StatusSeeOther)
		return
	}
	q.redirect("tokens")
}

// --- audit and webhooks ---

type auditData struct {
	Events []*catalog.AuditEvent
	Chain  *ChainStatus
	Type   string
}

func (s *Server) audit(q *req) {
	tid := q.r.PathValue("tenant")
	typ := strings.TrimSpace(q.r.URL.Query().Get("event_type"))
	if len(typ) > 100 {
		typ = ""
	}
	evs, err := s.b.AuditEvents(q.ctx, AuditQuery{TenantID: tid, EventType: typ, Limit: 200})
	if err != nil {
		q.fail(err)
		return
	}
	d := auditData{Events: evs, Type: typ}
	if q.p.Admin() {
		if d.Chain, err = s.b.VerifyAuditChain(q.ctx); err != nil {
			d.Chain = &ChainStatus{OK: false, Error: "verification failed: " + catalog.ErrorMessage(err)}
		}
	}
	section := "audit"
	if tid != "" {
		section = "tenant-audit"
	}
	s.render(q, http.StatusOK, "audit", "Audit log", section, d)
}

type webhooksData struct {
	Configured    bool
	Subscriptions []*WebhookSubscription
	Deliveries    []*WebhookDelivery
}

func (s *Server) webhooks(q *req) {
	tid := q.r.PathValue("tenant")
	ds, err := s.b.WebhookDeliveries(q.ctx, tid)
	d := webhooksData{Configured: true, Deliveries: ds}
	if errors.Is(err, ErrNotImplemented) {
		d = webhooksData{}
	} else if err != nil {
		q.fail(err)
		return
	}
	if d.Configured && q.p.Admin() {
		subs, err := s.b.WebhookSubscriptions(q.ctx, tid)
		if err != nil && !errors.Is(err, ErrNotImplemented) {
			q.fail(err)
			return
		}
		d.Subscriptions = subs
	}
	section := "webhooks"
	if tid != "" {
		section = "tenant-webhooks"
	}
	s.render(q, http.StatusOK, "webhooks", "Webhook deliveries", section, d)
}

func (s *Server) redeliver(q *req) {
	id := q.r.PathValue("delivery")
	if err := s.b.RedeliverWebhook(q.ctx, id); !q.flashErr(err) {
		q.flashOK("Delivery %s is queued again.", id)
	}
	q.redirect("webhooks")
}
