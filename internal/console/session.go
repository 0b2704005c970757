package console

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// CookieName is the session cookie's name.
const CookieName = "outpost_console"

// session is one signed-in browser. Only the sha256 of its id is kept, so
// a memory dump does not yield usable cookies.
type session struct {
	principal Principal
	csrf      string // synchronizer token, sent in every form
	created   time.Time
	lastSeen  time.Time
	flash     []flash
}

type flash struct {
	Kind string // "ok" or "error"
	Text string
}

// sessions is the in-memory session table.
type sessions struct {
	mu       sync.Mutex
	byHash   map[string]*session
	idle     time.Duration
	absolute time.Duration
	max      int
}

func newSessions(idle, absolute time.Duration, max int) *sessions {
	return &sessions{byHash: map[string]*session{}, idle: idle, absolute: absolute, max: max}
}

func randomString(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashID(id string) string {
	h := sha256.Sum256([]byte(id))
	return hex.EncodeToString(h[:])
}

func (s *sessions) expired(se *session, now time.Time) bool {
	return now.Sub(se.lastSeen) >= s.idle || now.Sub(se.created) >= s.absolute
}

// create starts a session and returns its id (the cookie value).
func (s *sessions) create(p Principal, now time.Time) (string, *session) {
	id := randomString(32)
	se := &session{principal: p, csrf: randomString(32), created: now, lastSeen: now}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.byHash) >= s.max {
		s.sweepLocked(now)
	}
	for len(s.byHash) >= s.max { // still full: drop the least recently seen
		var oldest string
		var t time.Time
		for h, o := range s.byHash {
			if oldest == "" || o.lastSeen.Before(t) {
				oldest, t = h, o.lastSeen
			}
		}
		delete(s.byHash, oldest)
	}
	s.byHash[hashID(id)] = se
	return id, se
}

func (s *sessions) sweepLocked(now time.Time) {
	for h, se := range s.byHash {
		if s.expired(se, now) {
			delete(s.byHash, h)
		}
	}
}

// get returns the live session for a cookie value and touches it.
func (s *sessions) get(id string, now time.Time) (*session, bool) {
	if id == "" || len(id) > 128 {
		return nil, false
	}
	h := hashID(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	se, ok := s.byHash[h]
	if !ok {
		return nil, false
	}
	if s.expired(se, now) {
		delete(s.byHash, h)
		return nil, false
	}
	se.lastSeen = now
	return se, true
}

func (s *sessions) delete(id string) {
	s.mu.Lock()
	delete(s.byHash, hashID(id))
	s.mu.Unlock()
}

// deleteToken ends every session of a token (after it is revoked here).
func (s *sessions) deleteToken(tokenID string) {
	s.mu.Lock()
	for h, se := range s.byHash {
		if se.principal.TokenID == tokenID {
			delete(s.byHash, h)
		}
	}
	s.mu.Unlock()
}

func (s *sessions) addFlash(se *session, kind, text string) {
	s.mu.Lock()
	if len(se.flash) < 8 {
		se.flash = append(se.flash, flash{Kind: kind, Text: text})
	}
	s.mu.Unlock()
}

func (s *sessions) takeFlash(se *session) []flash {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := se.flash
	se.flash = nil
	return f
}

func (s *sessions) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.byHash)
}

// validCSRF compares the form's token with the session's in constant time.
func validCSRF(se *session, got string) bool {
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(se.csrf)) == 1
}

// sameOrigin refuses requests a browser marks as cross-site: a
// Sec-Fetch-Site other than same-origin (or none, a user navigation), or
// an Origin that is not this server's (or one of the extra allowed
// origins, for a console behind a proxy that rewrites Host). Requests
// from non-browsers carry neither and rely on the CSRF token alone.
func sameOrigin(r *http.Request, allowed []string) bool {
	if sfs := r.Header.Get("Sec-Fetch-Site"); sfs != "" && sfs != "same-origin" && sfs != "none" {
		return false
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	if origin == "null" {
		return false
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if strings.EqualFold(u.Host, r.Host) && u.Scheme == scheme {
		return true
	}
	for _, a := range allowed {
		if strings.EqualFold(strings.TrimSuffix(a, "/"), origin) {
			return true
		}
	}
	return false
}
