package tuf

import (
	"strings"
	"time"
)

// Resign returns a copy of s whose top-level roles (targets, snapshot,
// timestamp) the next Refresh or BuildTenant re-signs with new versions:
// after a root rotation replaced one of their keys.
func (s *State) Resign() *State {
	c := *s
	c.targets.expires, c.snapshot.expires, c.timestamp.expires = time.Time{}, time.Time{}, time.Time{}
	return &c
}

// TimestampExpires is when the state's timestamp expires.
func (s *State) TimestampExpires() time.Time { return s.timestamp.expires }

// ProductOfBin returns the product whose hashed bin role is.
func (ps *ProductSet) ProductOfBin(role string) (string, bool) {
	prefix, _, ok := strings.Cut(role[min(len(role), 2):], "-")
	if !ok || !strings.HasPrefix(role, "b-") {
		return "", false
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	pid, ok := ps.prefixes["b-"+prefix]
	return pid, ok
}
