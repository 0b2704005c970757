package tuf

import (
	"context"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// The roles signed on every change (bins, snapshot, timestamp) are
// written here directly in canonical JSON (OLPC, as go-tuf verifies):
// go-tuf's reflective encoder plus canonicalisation costs milliseconds
// per role, which 1,000 tenants cannot afford. A role whose strings
// would need escaping takes go-tuf's path instead, so the bytes signed
// are always the canonical form go-tuf recomputes (TestFastCanonical).

// safe says whether s is written the same by encoding/json and by
// canonical JSON: no character either of them escapes.
func safe(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' || c >= 0x80 {
			return false
		}
	}
	return utf8.ValidString(s)
}

// cw appends canonical JSON.
type cw struct{ b []byte }

func (w *cw) raw(s string)     { w.b = append(w.b, s...) }
func (w *cw) str(s string)     { w.b = append(append(append(w.b, '"'), s...), '"') }
func (w *cw) int(n int64)      { w.b = strconv.AppendInt(w.b, n, 10) }
func (w *cw) key(k string)     { w.str(k); w.b = append(w.b, ':') }
func (w *cw) time(t time.Time) { w.str(t.UTC().Format(time.RFC3339Nano)) }

// header writes the fields every role has up to (not including) the
// role-specific ones: "_type" and "expires".
func (w *cw) header(typ string, expires time.Time) {
	w.raw(`{"_type":`)
	w.str(typ)
	w.raw(`,"expires":`)
	w.time(expires)
}

// trailer writes "spec_version", "version", the signed time (if not
// zero: SignedAtField sorts before TenantField) and the tenant (if any),
// and closes the object.
func (w *cw) trailer(version int64, signedAt time.Time, tenant string) {
	w.raw(`,"spec_version":`)
	w.str(metadata.SPECIFICATION_VERSION)
	w.raw(`,"version":`)
	w.int(version)
	if !signedAt.IsZero() {
		w.raw(`,"` + SignedAtField + `":`)
		w.str(signedAt.UTC().Format(time.RFC3339))
	}
	if tenant != "" {
		w.raw(`,"` + TenantField + `":`)
		w.str(tenant)
	}
	w.b = append(w.b, '}')
}

// fastSnapshot returns the canonical signed part of a snapshot; ok is
// false when a name needs escaping.
func fastSnapshot(version int64, expires time.Time, tenant string, meta map[string]int64) (canon []byte, ok bool) {
	if !safe(tenant) {
		return nil, false
	}
	names := make([]string, 0, len(meta))
	for role := range meta {
		if !safe(role) {
			return nil, false
		}
		names = append(names, role+".json")
	}
	slices.Sort(names)
	w := &cw{b: make([]byte, 0, 128+40*len(names))}
	w.header(metadata.SNAPSHOT, expires)
	w.raw(`,"meta":{`)
	for i, n := range names {
		if i > 0 {
			w.b = append(w.b, ',')
		}
		w.key(n)
		w.raw(`{"version":`)
		w.int(meta[strings.TrimSuffix(n, ".json")])
		w.b = append(w.b, '}')
	}
	w.b = append(w.b, '}')
	w.trailer(version, time.Time{}, tenant)
	return w.b, true
}

// fastTimestamp returns the canonical signed part of a timestamp signed
// at signedAt (whole seconds).
func fastTimestamp(version int64, expires, signedAt time.Time, tenant string, snapVersion, snapLength int64, snapSHA256 []byte) (canon []byte, ok bool) {
	if !safe(tenant) {
		return nil, false
	}
	w := &cw{b: make([]byte, 0, 320)}
	w.header(metadata.TIMESTAMP, expires)
	w.raw(`,"meta":{"snapshot.json":{"hashes":{"sha256":`)
	w.str(hex.EncodeToString(snapSHA256))
	w.raw(`},"length":`)
	w.int(snapLength)
	w.raw(`,"version":`)
	w.int(snapVersion)
	w.raw(`}}`)
	w.trailer(version, signedAt, tenant)
	return w.b, true
}

// fastBin returns the canonical signed part of a targets role that lists
// entries (sorted by path) and delegates nothing.
func fastBin(version int64, expires time.Time, entries []entry) (canon []byte, ok bool) {
	n := 128
	for _, e := range entries {
		if !safe(e.path) || strings.IndexByte(e.custom, '\\') >= 0 {
			return nil, false
		}
		n += len(e.path) + len(e.custom) + 120
	}
	w := &cw{b: make([]byte, 0, n)}
	w.header(metadata.TARGETS, expires)
	w.raw(`,"spec_version":`)
	w.str(metadata.SPECIFICATION_VERSION)
	w.raw(`,"targets":{`)
	for i, e := range entries {
		if i > 0 {
			w.b = append(w.b, ',')
		}
		w.key(e.path)
		w.b = append(w.b, '{')
		if e.custom != "" {
			w.raw(`"custom":`)
			w.raw(e.custom)
			w.b = append(w.b, ',')
		}
		w.raw(`"hashes":{"sha256":`)
		w.str(e.sha256)
		w.raw(`},"length":`)
		w.int(e.length)
		w.b = append(w.b, '}')
	}
	w.raw(`},"version":`)
	w.int(version)
	w.b = append(w.b, '}')
	return w.b, true
}

// envelope signs canonical signed bytes with every signer and returns
// the published metadata file.
func envelope(ctx context.Context, canon []byte, signers []Signer) ([]byte, error) {
	if len(signers) == 0 {
		return nil, fmt.Errorf("sign: no signer")
	}
	w := &cw{b: make([]byte, 0, len(canon)+64+160*len(signers))}
	w.raw(`{"signatures":[`)
	for i, s := range signers {
		sig, err := s.Sign(ctx, canon)
		if err != nil {
			return nil, fmt.Errorf("sign with %s: %w", s.KeyID(), err)
		}
		if !safe(s.KeyID()) {
			return nil, fmt.Errorf("sign: key id %q", s.KeyID())
		}
		if i > 0 {
			w.b = append(w.b, ',')
		}
		w.raw(`{"keyid":`)
		w.str(s.KeyID())
		w.raw(`,"sig":`)
		w.str(hex.EncodeToString(sig))
		w.b = append(w.b, '}')
	}
	w.raw(`],"signed":`)
	w.b = append(w.b, canon...)
	w.b = append(w.b, '}')
	return w.b, nil
}
