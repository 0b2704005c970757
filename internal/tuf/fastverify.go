package tuf

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// fastRole is a targets role without delegations parsed by fastParse:
// the go-tuf form, the canonical signed bytes and the signatures.
type fastRole struct {
	t     *Targets
	canon []byte
}

// fastParse parses a targets role that lists targets and delegates
// nothing (a bin, or a small product role) when its signed part is
// exactly the canonical JSON fastBin writes for what it holds; ok is
// false otherwise (the caller then uses go-tuf). Signatures are not
// checked here.
func fastParse(data []byte) (r fastRole, ok bool) {
	r, entries, ok := fastParseEntries(data)
	if !ok {
		return r, false
	}
	r.t.Signed.Targets = make(map[string]*metadata.TargetFiles, len(entries))
	for _, e := range entries {
		sum, _ := hex.DecodeString(e.sha256) // checked by fastParseEntries
		tf := &metadata.TargetFiles{Length: e.length, Hashes: metadata.Hashes{"sha256": sum}, Path: e.path}
		if e.custom != "" {
			raw := json.RawMessage(e.custom)
			tf.Custom = &raw
		}
		r.t.Signed.Targets[e.path] = tf
	}
	return r, true
}

// fastParseCompact is fastParse for a hashed bin: the role comes back
// with no targets in go-tuf's form, and its targets in compact form
// (built straight from the bytes: a large tenant's first load never
// holds its bins in go-tuf's form).
func fastParseCompact(data []byte) (r fastRole, c compactRole, ok bool) {
	r, entries, ok := fastParseEntries(data)
	if !ok {
		return r, nil, false
	}
	c = make(compactRole, len(entries))
	for _, e := range entries {
		ct := compactTarget{length: e.length, custom: e.custom}
		if _, err := hex.Decode(ct.sum[:], []byte(e.sha256)); err != nil {
			return r, nil, false
		}
		c[e.path] = ct
	}
	r.t.Signed.Targets = map[string]*metadata.TargetFiles{}
	return r, c, true
}

// fastParseEntries does fastParse's work but for building the targets.
func fastParseEntries(data []byte) (r fastRole, entries []entry, ok bool) {
	var env struct {
		Signatures []struct {
			KeyID string `json:"keyid"`
			Sig   string `json:"sig"`
		} `json:"signatures"`
		Signed json.RawMessage `json:"signed"`
	}
	if json.Unmarshal(data, &env) != nil {
		return r, nil, false
	}
	var s struct {
		Type        string                     `json:"_type"`
		Expires     time.Time                  `json:"expires"`
		Version     int64                      `json:"version"`
		Delegations json.RawMessage            `json:"delegations"`
		Targets     map[string]fastTargetEntry `json:"targets"`
	}
	if json.Unmarshal(env.Signed, &s) != nil || s.Type != metadata.TARGETS || s.Delegations != nil {
		return r, nil, false
	}
	entries = make([]entry, 0, len(s.Targets))
	for p, e := range s.Targets {
		if len(e.Custom) > 0 && !isCanonical(e.Custom) {
			return r, nil, false
		}
		if len(e.Hashes.SHA256) != 2*sha256.Size || strings.ToLower(e.Hashes.SHA256) != e.Hashes.SHA256 {
			return r, nil, false // go-tuf re-encodes hashes in lower case
		}
		if _, err := hex.DecodeString(e.Hashes.SHA256); err != nil {
			return r, nil, false
		}
		entries = append(entries, entry{path: p, length: e.Length, sha256: e.Hashes.SHA256, custom: string(e.Custom)})
	}
	s.Targets = nil
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.path, b.path) })
	canon, ok := fastBin(s.Version, s.Expires, entries)
	if !ok || !bytes.Equal(canon, env.Signed) {
		return r, nil, false
	}
	t := metadata.Targets(s.Expires)
	t.Signed.Version = s.Version
	for _, sg := range env.Signatures {
		sig, err := hex.DecodeString(sg.Sig)
		if err != nil {
			return r, nil, false
		}
		t.Signatures = append(t.Signatures, metadata.Signature{KeyID: sg.KeyID, Signature: sig})
	}
	return fastRole{t: t, canon: canon}, entries, true
}

type fastTargetEntry struct {
	Length int64 `json:"length"`
	Hashes struct {
		SHA256 string `json:"sha256"`
	} `json:"hashes"`
	Custom json.RawMessage `json:"custom"`
}

// delegation returns the key ids, keys and threshold parent delegates
// role with.
func delegation(parent *Targets, role string) (ids []string, keys map[string]*metadata.Key, threshold int, err error) {
	d := parent.Signed.Delegations
	if d == nil {
		return nil, nil, 0, fmt.Errorf("role %s: no delegations", role)
	}
	switch {
	case d.SuccinctRoles != nil && d.SuccinctRoles.IsDelegatedRole(role):
		return d.SuccinctRoles.KeyIDs, d.Keys, d.SuccinctRoles.Threshold, nil
	case d.SuccinctRoles == nil:
		if r := findRole(d, role); r != nil {
			return r.KeyIDs, d.Keys, r.Threshold, nil
		}
	}
	return nil, nil, 0, fmt.Errorf("role %s: not delegated", role)
}

// verifyFast checks r as TrustedMetadata.UpdateDelegatedTargets would:
// signed by a threshold of the keys parent delegates role to (distinct
// ed25519 keys; unique key ids), the version the snapshot names, and
// unexpired at now. handled is false when a key is not ed25519 (go-tuf
// then decides).
func verifyFast(r fastRole, parent *Targets, role string, version int64, now time.Time) (handled bool, err error) {
	ids, keys, threshold, err := delegation(parent, role)
	if err != nil {
		return true, &metadata.ErrValue{Msg: err.Error()}
	}
	if threshold < 1 {
		return true, &metadata.ErrValue{Msg: fmt.Sprintf("role %s: threshold %d", role, threshold)}
	}
	seen := map[string]bool{}
	for _, s := range r.t.Signatures {
		if seen[s.KeyID] {
			return true, &metadata.ErrValue{Msg: fmt.Sprintf("multiple signatures found for key ID %s", s.KeyID)}
		}
		seen[s.KeyID] = true
	}
	valid := map[string]bool{}
	for _, id := range ids {
		k := keys[id]
		if k == nil {
			return true, &metadata.ErrValue{Msg: fmt.Sprintf("key with ID %s not found in %s keyids", id, role)}
		}
		if k.Type != metadata.KeyTypeEd25519 || k.Scheme != metadata.KeySchemeEd25519 {
			return false, nil
		}
		pub, err := hex.DecodeString(k.Value.PublicKey)
		if err != nil || len(pub) != ed25519.PublicKeySize {
			return true, &metadata.ErrValue{Msg: fmt.Sprintf("key %s: bad ed25519 public key", id)}
		}
		for _, s := range r.t.Signatures {
			if s.KeyID == id && ed25519.Verify(pub, r.canon, s.Signature) {
				valid[string(pub)] = true
			}
		}
	}
	if len(valid) < threshold {
		return true, &metadata.ErrUnsignedMetadata{Msg: fmt.Sprintf("Verifying %s failed, not enough signatures, got %d, want %d", role, len(valid), threshold)}
	}
	if r.t.Signed.Version != version {
		return true, &metadata.ErrBadVersionNumber{Msg: fmt.Sprintf("expected %s version %d, got %d", role, version, r.t.Signed.Version)}
	}
	if r.t.Signed.IsExpired(now) {
		return true, &metadata.ErrExpiredMetadata{Msg: fmt.Sprintf("new %s is expired", role)}
	}
	return true, nil
}

// isCanonical says whether b is one JSON value exactly as canonical JSON
// writes it: no whitespace, object keys strictly ascending (so no
// duplicates), strings without escapes, integers only. Anything else
// leaves the fast path, since go-tuf would canonicalise it differently.
func isCanonical(b []byte) bool {
	rest, ok := canonValue(b)
	return ok && len(rest) == 0
}

func canonValue(b []byte) ([]byte, bool) {
	if len(b) == 0 {
		return nil, false
	}
	switch c := b[0]; {
	case c == '{':
		b = b[1:]
		if len(b) > 0 && b[0] == '}' {
			return b[1:], true
		}
		var prev []byte
		for first := true; ; first = false {
			k, rest, ok := canonString(b)
			if !ok || (!first && string(k) <= string(prev)) || len(rest) == 0 || rest[0] != ':' {
				return nil, false
			}
			prev = k
			if b, ok = canonValue(rest[1:]); !ok || len(b) == 0 {
				return nil, false
			}
			if b[0] == '}' {
				return b[1:], true
			}
			if b[0] != ',' {
				return nil, false
			}
			b = b[1:]
		}
	case c == '[':
		b = b[1:]
		if len(b) > 0 && b[0] == ']' {
			return b[1:], true
		}
		for {
			var ok bool
			if b, ok = canonValue(b); !ok || len(b) == 0 {
				return nil, false
			}
			if b[0] == ']' {
				return b[1:], true
			}
			if b[0] != ',' {
				return nil, false
			}
			b = b[1:]
		}
	case c == '"':
		_, rest, ok := canonString(b)
		return rest, ok
	case c == '-' || c >= '0' && c <= '9':
		i := 0
		if b[0] == '-' {
			i++
		}
		start := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == start || (b[start] == '0' && i-start > 1) || i-start > 18 {
			return nil, false
		}
		return b[i:], true
	}
	for _, lit := range []string{"true", "false", "null"} {
		if rest, ok := bytes.CutPrefix(b, []byte(lit)); ok {
			return rest, true
		}
	}
	return nil, false
}

// canonString reads a string without escapes or control characters.
func canonString(b []byte) (s, rest []byte, ok bool) {
	if len(b) == 0 || b[0] != '"' {
		return nil, nil, false
	}
	for i := 1; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			if !utf8.Valid(b[1:i]) {
				return nil, nil, false // go-tuf would read U+FFFD and sign other bytes
			}
			return b[1:i], b[i+1:], true
		case c == '\\' || c < 0x20:
			return nil, nil, false
		}
	}
	return nil, nil, false
}
