package httpapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/store"
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
// nothing; the same key with a different request is a conflict. The key is
// reserved in the store before the request runs, so a second instance, or
// a retry while the first attempt still runs, answers 409 (in progress)
// instead of running it again; the answer then replaces the reservation,
// stored with a context the client cannot cancel.
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

	// From here on the work must not depend on the client staying: once
	// the key is reserved, the request runs and its answer is stored even
	// if the client gives up (it retries with the same key and gets the
	// answer). Bounded, so a request stuck on the database ends.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), detachedTimeout)
	defer cancel()
	attempt := randomAttempt()
	// The request's writes check, in their own transaction, that the
	// reservation is still this attempt's, and mark it committed.
	if rt.raw {
		// A streamed upload still needs its client to send the body.
		r = r.WithContext(store.WithIdempotencyAttempt(r.Context(), scoped, attempt))
	} else {
		r = r.WithContext(store.WithIdempotencyAttempt(ctx, scoped, attempt))
	}

	// Requests in this process wait for each other; other instances
	// see the reservation in the store.
	defer s.idem.lock(scoped)()
	rec, err := s.App.ReserveIdempotencyKey(ctx, scoped, reqHash, attempt, s.idempotencyStale())
	switch {
	case err != nil:
		wire.WriteError(w, r, s.Log, err)
		return
	case rec != nil && rec.RequestHash != reqHash:
		wire.WriteError(w, r, s.Log, catalog.Errorf(catalog.ECONFLICT, "Idempotency-Key %q was used for a different request", key))
		return
	case rec != nil && rec.Committed:
		wire.WriteError(w, r, s.Log, catalog.Errorf(catalog.ECONFLICT,
			"Idempotency-Key %q: an earlier request with this key was carried out, but the server stopped before "+
				"storing its answer; it will not run again: look the result up instead", key))
		return
	case rec != nil && rec.Pending:
		w.Header().Set(wire.HeaderRetryAfter, "1")
		wire.WriteError(w, r, s.Log, catalog.Errorf(catalog.ECONFLICT,
			"Idempotency-Key %q: an earlier request with this key is still in progress; retry shortly for its answer", key))
		return
	case rec != nil:
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set(wire.HeaderIdempotentReplay, "true")
		w.Header().Set("Content-Length", strconv.Itoa(len(rec.Body)))
		w.WriteHeader(rec.Status)
		w.Write(rec.Body)
		return
	}
	rw := &recorder{ResponseWriter: w}
	if err := rt.handler(rw, r); err != nil {
		wire.WriteError(rw, r, s.Log, err)
	}
	// Server errors are not remembered: the client may retry them. Nor
	// is an answer too long to replay whole. The key is freed for them.
	if rw.status >= 500 || rw.status == 0 || rw.truncated {
		s.persist(ctx, "release idempotency key", func(ctx context.Context) error {
			return s.App.ReleaseIdempotencyKey(ctx, scoped, attempt)
		})
		return
	}
	rem := controlplane.Remembered{RequestHash: reqHash, Status: rw.status, Body: rw.buf.Bytes()}
	s.persist(ctx, "store idempotency record", func(ctx context.Context) error {
		return s.App.CompleteIdempotencyKey(ctx, scoped, attempt, rem)
	})
}

// randomAttempt names one attempt of an idempotent request.
func randomAttempt() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// detachedTimeout bounds an idempotent request once its key is reserved.
const detachedTimeout = 2 * time.Minute

// DefaultIdempotencyStale is how long a reservation without an answer
// holds its key (Server.IdempotencyStale): a crashed attempt's key is
// free again after it.
const DefaultIdempotencyStale = 30 * time.Second

func (s *Server) idempotencyStale() time.Duration {
	if s.IdempotencyStale > 0 {
		return s.IdempotencyStale
	}
	return DefaultIdempotencyStale
}

// persist runs a store call that must not be lost (storing the answer,
// freeing the key), trying again for a while when the store fails (a
// database restart): a lost answer would make a retry wait for the
// reservation to go stale, or answer that the request was carried out.
func (s *Server) persist(ctx context.Context, what string, fn func(context.Context) error) {
	for attempt := 1; ; attempt++ {
		err := fn(ctx)
		if err == nil {
			return
		}
		code := catalog.ErrorCode(err)
		if (code != catalog.EINTERNAL && code != catalog.EUNAVAILABLE) || attempt >= completeTries {
			s.Log.Error(what, "attempts", attempt, "err", err)
			return
		}
		t := time.NewTimer(time.Duration(attempt) * 250 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			s.Log.Error(what, "attempts", attempt, "err", err)
			return
		case <-t.C:
		}
	}
}

// completeTries bounds persist's attempts (about 10 s of waits).
const completeTries = 9
