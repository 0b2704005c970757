package update

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/wire"
)

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// maxPooledBuf keeps unusually large answers out of the pool.
const maxPooledBuf = 64 << 10

// Shared header values; net/http only reads them.
var (
	headerJSON    = []string{"application/json"}
	headerNoStore = []string{"no-store"}
)

// Handle answers GET /v1/updates/check from e at time now: it parses the
// raw query, checks, and writes the response document, or an error in the
// wire convention (internal/wire): 400 (bad query), 404 (unknown product
// or channel; or a method other than GET and HEAD: no route), or 503 (e
// is nil: no snapshot yet). Both daemons mount
// it, so their answers are byte-identical for the same snapshot.
func Handle(w http.ResponseWriter, r *http.Request, e *Engine, now time.Time) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		wire.NoRoute(w, r)
		return
	}
	if e == nil {
		wire.WriteError(w, r, nil, catalog.Errorf(catalog.EUNAVAILABLE, "no snapshot loaded yet"))
		return
	}
	var q Query
	if err := parseRaw(r.URL.RawQuery, &q); err != nil {
		wire.WriteError(w, r, nil, err)
		return
	}
	p, err := q.prepare()
	if err != nil {
		wire.WriteError(w, r, nil, err)
		return
	}
	d, err := e.check(&p, now)
	if err != nil {
		wire.WriteError(w, r, nil, err)
		return
	}
	if a := e.rendered.get(&d); a != nil {
		h := w.Header()
		h["Content-Type"] = headerJSON
		h["Cache-Control"] = headerNoStore
		h["Content-Length"] = a.length
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			_, _ = w.Write(a.body)
		}
		return
	}
	bp := bufPool.Get().(*[]byte)
	b := d.AppendJSON((*bp)[:0])
	b = append(b, '\n')
	write(w, r, http.StatusOK, b)
	if cap(b) <= maxPooledBuf {
		*bp = b
		bufPool.Put(bp)
	}
}

func write(w http.ResponseWriter, r *http.Request, code int, body []byte) {
	h := w.Header()
	h["Content-Type"] = headerJSON
	h["Cache-Control"] = headerNoStore
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(code)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// Rendered returns what Handle answers the update check with raw query
// raw at time now, without net/http: the whole answer document (newline
// included) when Handle would answer 200 from a rendered document, or the
// error Handle would answer (wire.WriteError) for a query that does not
// parse or a decision not reached. Both nil when neither: the answer is
// rendered per request, and the caller goes through Handle. The bytes are
// shared: read only.
func (e *Engine) Rendered(raw string, now time.Time) ([]byte, error) {
	var q Query
	if err := parseRaw(raw, &q); err != nil {
		return nil, err
	}
	p, err := q.prepare()
	if err != nil {
		return nil, err
	}
	d, err := e.check(&p, now)
	if err != nil {
		return nil, err
	}
	if a := e.rendered.get(&d); a != nil {
		return a.body, nil
	}
	return nil, nil
}

// Handler is the update check over e (Handle at Now), with the rendered
// answers reachable without net/http (Rendered) for a server that parses
// requests itself.
type Handler struct {
	Engine *Engine
	Now    func() time.Time
}

// ServeHTTP implements http.Handler.
func (h Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	Handle(w, r, h.Engine, h.Now())
}

// Rendered is Engine.Rendered at Now.
func (h Handler) Rendered(raw string) ([]byte, error) {
	return h.Engine.Rendered(raw, h.Now())
}
