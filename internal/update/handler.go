package update

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/outpost/outpost/internal/catalog"
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
// raw query, checks, and writes the response document, or an error
// document with 400 (bad query), 404 (unknown product or channel), 405 or
// 503 (e is nil: no snapshot yet). Both daemons mount it, so their answers
// are byte-identical for the same snapshot.
func Handle(w http.ResponseWriter, r *http.Request, e *Engine, now time.Time) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, r, http.StatusMethodNotAllowed, catalog.Errorf(catalog.EINVALID, "method %s not allowed", r.Method))
		return
	}
	if e == nil {
		writeError(w, r, http.StatusServiceUnavailable, catalog.Errorf(catalog.EUNAVAILABLE, "no snapshot loaded yet"))
		return
	}
	var q Query
	if err := parseRaw(r.URL.RawQuery, &q); err != nil {
		writeError(w, r, status(err), err)
		return
	}
	p, err := q.prepare()
	if err != nil {
		writeError(w, r, status(err), err)
		return
	}
	d, err := e.check(&p, now)
	if err != nil {
		writeError(w, r, status(err), err)
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

// status maps an error's code to an HTTP status.
func status(err error) int {
	switch catalog.ErrorCode(err) {
	case catalog.EINVALID:
		return http.StatusBadRequest
	case catalog.ENOTFOUND:
		return http.StatusNotFound
	case catalog.EUNAVAILABLE:
		return http.StatusServiceUnavailable
	case catalog.ETOOLARGE:
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusInternalServerError
}

func writeError(w http.ResponseWriter, r *http.Request, code int, err error) {
	b := AppendError(make([]byte, 0, 256), err)
	write(w, r, code, append(b, '\n'))
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
