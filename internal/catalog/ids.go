package catalog

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/binary"
	"strings"
	"sync"
	"time"
)

// ID prefixes, one per object kind.
const (
	PrefixTenant          = "ten"
	PrefixProduct         = "prd"
	PrefixRelease         = "rel"
	PrefixReleaseArtifact = "rla"
	PrefixArtifact        = "art"
	PrefixPolicy          = "pol"
	PrefixBlocked         = "blk"
	PrefixRollout         = "rol"
	PrefixEntitlement     = "ent"
	PrefixLease           = "lea"
	PrefixSeat            = "sea"
	PrefixSnapshot        = "snp"
	PrefixMirror          = "mir"
	PrefixToken           = "tok"
	PrefixEvent           = "evt"
	PrefixDelta           = "dlt"
)

var idEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)

var (
	idMu   sync.Mutex
	idLast [16]byte
)

// NewID returns prefix + "_" + 26 characters: 48 bits of milliseconds then
// 80 random bits, so ids sort by creation time (cursor pagination relies on
// it) and, within one process, strictly increase.
func NewID(prefix string) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(time.Now().UnixMilli())<<16)
	if _, err := rand.Read(b[6:]); err != nil {
		panic(err)
	}
	idMu.Lock()
	if string(b[:6]) == string(idLast[:6]) || string(b[:]) <= string(idLast[:]) {
		// Same millisecond (or clock went back): keep order by incrementing
		// the last id.
		b = idLast
		for i := 15; i >= 0; i-- {
			b[i]++
			if b[i] != 0 {
				break
			}
		}
	}
	idLast = b
	idMu.Unlock()
	return prefix + "_" + idEncoding.EncodeToString(b[:])
}

// ValidID reports whether id looks like an id of the given prefix.
func ValidID(prefix, id string) bool {
	rest, ok := strings.CutPrefix(id, prefix+"_")
	if !ok || len(rest) != 26 {
		return false
	}
	for _, c := range rest {
		if !strings.ContainsRune("0123456789abcdefghjkmnpqrstvwxyz", c) {
			return false
		}
	}
	return true
}
