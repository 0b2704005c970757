package httpapi

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"strconv"
	"sync"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/wire"
)

// keyedMutex serialises requests that share an idempotency key, so two
// concurrent retries do not both create.
type keyedMutex struct {
	mu    sync.Mutex
	locks map[string]*keyLock
}

type keyLock struct {
	sync.Mutex
	refs int
}

func (k *keyedMutex) lock(key string) func() {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = map[string]*keyLock{}
	}
	l := k.locks[key]
	if l == nil {
		l = &keyLock{}
		k.locks[key] = l
	}
	l.refs++
	k.mu.Unlock()
	l.Lock()
	return func() {
		l.Unlock()
		k.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
}

// recorder captures a JSON response so it can be replayed.
type recorder struct {
	http.ResponseWriter
	status    int
	buf       bytes.Buffer
	truncated bool // the answer outgrew maxReplayBody: not remembered
}

// maxReplayBody caps a remembered answer.
const maxReplayBody = 1 << 20

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	if r.buf.Len()+len(b) <= maxReplayBody {
		r.buf.Write(b)
	} else {
		r.truncated = true
	}
	return r.ResponseWriter.Write(b)
}

// idempotent runs a POST at most once per (principal, Idempotency-Key): a
// retry with the same key and request gets the first answer and creates
// nothing; the same key with a different request is a conflict.
func (s *Server) idempotent(w http.ResponseWriter, r *http.Request, p *controlplane.Principal, rt route) {
	key := r.Header.Get(wire.HeaderIdempotencyKey)
	if len(key) > 200 {
		wire.WriteError(w, r, s.Log, catalog.Invalid(wire.HeaderIdempotencyKey, "must be at most 200 characters"))
		return
	}
	h := sha256.New()
	io.WriteString(h, r.Method+" "+r.URL.RequestURI()+"\n")
	if rt.raw {
		// Artifact uploads are too large to buffer; identify them by
		// their declared length and checksum instead.
		io.WriteString(h, r.Header.Get("Content-Length")+"\n"+r.Header.Get("Content-Type"))
	} else {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			wire.WriteError(w, r, s.Log, err)
			return
		}
		h.Write(body)
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	reqHash := hex.EncodeToString(h.Sum(nil))
	scoped := p.TokenID + ":" + key

	defer s.idem.lock(scoped)()
	rec, err := s.App.Remembered(r.Context(), scoped)
	switch {
	case err == nil:
		if rec.RequestHash != reqHash {
			wire.WriteError(w, r, s.Log, catalog.Errorf(catalog.ECONFLICT, "Idempotency-Key %q was used for a different request", key))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set(wire.HeaderIdempotentReplay, "true")
		w.Header().Set("Content-Length", strconv.Itoa(len(rec.Body)))
		w.WriteHeader(rec.Status)
		w.Write(rec.Body)
		return
	case catalog.ErrorCode(err) != catalog.ENOTFOUND:
		wire.WriteError(w, r, s.Log, err)
		return
	}
	rw := &recorder{ResponseWriter: w}
	if err := rt.handler(rw, r); err != nil {
		wire.WriteError(rw, r, s.Log, err)
	}
	// Server errors are not remembered: the client may retry them. Nor
	// is an answer too long to replay whole.
	if rw.status >= 500 || rw.status == 0 || rw.truncated {
		return
	}
	if err := s.App.Remember(r.Context(), scoped, controlplane.Remembered{RequestHash: reqHash, Status: rw.status, Body: rw.buf.Bytes()}); err != nil {
		s.Log.Error("store idempotency record", "err", err)
	}
}
