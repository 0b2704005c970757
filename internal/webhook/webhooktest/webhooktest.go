// Package webhooktest is a webhook receiver for tests: an HTTPS server on
// 127.0.0.1 that verifies every delivery's signature, records the event
// ids it accepted, and can be told to fail or to block.
package webhooktest

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/webhook"
)

// Receiver is a test endpoint.
type Receiver struct {
	Server *httptest.Server
	secret string

	mu       sync.Mutex
	failNext int            // answer 500 to this many more requests
	block    chan struct{}  // when set, requests wait for it to close
	Entered  chan string    // receives the event id of each request as it arrives (buffered)
	got      map[string]int // event id → accepted deliveries
	requests int
	badSigs  int
	inflight int
	peak     int
}

// NewReceiver starts a TLS receiver that verifies with secret.
func NewReceiver(t testing.TB, secret string) *Receiver {
	r := &Receiver{secret: secret, got: map[string]int{}, Entered: make(chan string, 10_000)}
	r.Server = httptest.NewTLSServer(http.HandlerFunc(r.serve))
	t.Cleanup(func() {
		r.Release()
		r.Server.Close()
	})
	return r
}

// TLSConfig trusts the receiver's certificate.
func (r *Receiver) TLSConfig() *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(r.Server.Certificate())
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}

// URL is the endpoint.
func (r *Receiver) URL() string { return r.Server.URL + "/hook" }

// FailNext makes the next n requests answer 500.
func (r *Receiver) FailNext(n int) {
	r.mu.Lock()
	r.failNext = n
	r.mu.Unlock()
}

// Block makes requests wait until Release.
func (r *Receiver) Block() {
	r.mu.Lock()
	r.block = make(chan struct{})
	r.mu.Unlock()
}

// Release lets blocked requests go (they are answered 503: the sender
// will have gone away anyway).
func (r *Receiver) Release() {
	r.mu.Lock()
	if r.block != nil {
		close(r.block)
		r.block = nil
	}
	r.mu.Unlock()
}

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	if err != nil {
		http.Error(w, "read", http.StatusBadRequest)
		return
	}
	id := req.Header.Get(webhook.EventIDHeader)
	select {
	case r.Entered <- id:
	default:
	}
	r.mu.Lock()
	r.requests++
	r.inflight++
	r.peak = max(r.peak, r.inflight)
	defer func() {
		r.mu.Lock()
		r.inflight--
		r.mu.Unlock()
	}()
	block := r.block
	fail := r.failNext > 0
	if fail {
		r.failNext--
	}
	r.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-req.Context().Done():
		}
		http.Error(w, "released", http.StatusServiceUnavailable)
		return
	}
	if fail {
		http.Error(w, "failing on purpose", http.StatusInternalServerError)
		return
	}
	if err := webhook.Verify(r.secret, req.Header.Get(webhook.SignatureHeader), body, time.Now(), webhook.DefaultWindow); err != nil {
		r.mu.Lock()
		r.badSigs++
		r.mu.Unlock()
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	var ev webhook.Event
	if err := json.Unmarshal(body, &ev); err != nil || ev.ID != id {
		http.Error(w, "body does not match Outpost-Event-Id", http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	r.got[ev.ID]++
	r.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// Got returns accepted deliveries per event id.
func (r *Receiver) Got() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int, len(r.got))
	for k, v := range r.got {
		out[k] = v
	}
	return out
}

// Counts returns the number of requests and of bad signatures.
func (r *Receiver) Counts() (requests, badSigs int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests, r.badSigs
}

// Peak is the most requests that were in flight at once.
func (r *Receiver) Peak() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.peak
}

// SetSecret changes the secret deliveries are verified with: for a
// subscription whose secret is made by the sender after the receiver's
// URL is known. Set it before the first delivery.
func (r *Receiver) SetSecret(secret string) {
	r.mu.Lock()
	r.secret = secret
	r.mu.Unlock()
}
