package license

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/outpost/outpost/internal/audit"
	"github.com/outpost/outpost/internal/catalog"
)

// auditSigContext starts the bytes an export trailer's signature covers,
// so the mirror key's signature cannot be replayed as anything else.
const auditSigContext = "outpost-audit-v1\n"

// MaxAuditLine caps one line of an audit export.
const MaxAuditLine = 1 << 20

// ErrAuditExport wraps every reason an audit export is refused; a broken
// chain is also an *audit.BrokenLinkError naming the first bad event.
var ErrAuditExport = errors.New("audit export refused")

// AuditTrailer is the last line of an export: the chain's head and length,
// signed with the mirror key.
type AuditTrailer struct {
	MirrorID string `json:"mirror_id"`
	HeadHash string `json:"head_hash"`
	Count    int64  `json:"count"`
	Sig      []byte `json:"sig"` // base64 ed25519 over AuditSignedBytes
}

// AuditSignedBytes is what a trailer's signature covers:
// "outpost-audit-v1\n" + mirror_id + "\n" + head_hash + "\n" + count.
func AuditSignedBytes(mirrorID, headHash string, count int64) []byte {
	return []byte(auditSigContext + mirrorID + "\n" + headHash + "\n" + strconv.FormatInt(count, 10))
}

// AuditExport is a verified export.
type AuditExport struct {
	MirrorID string
	HeadHash string
	Count    int64
	Events   []*catalog.AuditEvent
}

// VerifyAuditExport reads an export (at most maxBytes), walks the chain,
// checks the trailer against the chain's head and count and its signature
// with mirrorPub, and returns the events. The control plane calls it
// before ingesting anything.
func VerifyAuditExport(r io.Reader, mirrorPub ed25519.PublicKey, maxBytes int64) ([]*catalog.AuditEvent, error) {
	x, err := ReadAuditExport(r, mirrorPub, maxBytes)
	if err != nil {
		return nil, err
	}
	return x.Events, nil
}

// ReadAuditExport is VerifyAuditExport returning the trailer too, so the
// caller can check MirrorID against the mirror it authenticated.
func ReadAuditExport(r io.Reader, mirrorPub ed25519.PublicKey, maxBytes int64) (*AuditExport, error) {
	if len(mirrorPub) != ed25519.PublicKeySize {
		return nil, errors.New("verify audit export: mirror key is not an ed25519 public key")
	}
	if maxBytes <= 0 {
		return nil, errors.New("verify audit export: maxBytes must be positive")
	}
	lr := &io.LimitedReader{R: r, N: maxBytes + 1}
	sc := bufio.NewScanner(lr)
	sc.Buffer(make([]byte, 0, 64<<10), MaxAuditLine)
	var (
		v       audit.Verifier
		events  []*catalog.AuditEvent
		trailer *AuditTrailer
		line    int
	)
	fail := func(format string, args ...any) error {
		if lr.N <= 0 {
			// The cap cut the last line short: that is the reason.
			return fmt.Errorf("%w: larger than %d bytes", ErrAuditExport, maxBytes)
		}
		return fmt.Errorf("%w: line %d: %s", ErrAuditExport, line, fmt.Sprintf(format, args...))
	}
	for sc.Scan() {
		line++
		raw := sc.Bytes()
		if trailer != nil {
			return nil, fail("data after the trailer")
		}
		var probe map[string]json.RawMessage
		if err := json.Unmarshal(raw, &probe); err != nil {
			return nil, fail("not a JSON object")
		}
		if _, ok := probe["sig"]; ok {
			var tr AuditTrailer
			if err := catalog.DecodeStrict(bytes.NewReader(raw), &tr); err != nil {
				return nil, fail("trailer: %v", err)
			}
			trailer = &tr
			continue
		}
		var ev catalog.AuditEvent
		if err := catalog.DecodeStrict(bytes.NewReader(raw), &ev); err != nil {
			return nil, fail("event: %v", err)
		}
		if err := v.Next(&ev); err != nil {
			if lr.N <= 0 {
				return nil, fail("")
			}
			return nil, fmt.Errorf("%w: %w", ErrAuditExport, err)
		}
		events = append(events, &ev)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fail("line longer than %d bytes", MaxAuditLine)
		}
		return nil, fmt.Errorf("verify audit export: read: %w", err)
	}
	if lr.N <= 0 {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrAuditExport, maxBytes)
	}
	if trailer == nil {
		return nil, fmt.Errorf("%w: no signed trailer (truncated?)", ErrAuditExport)
	}
	head := ""
	if h := v.Head(); h != nil {
		head = h.Hash
	}
	switch {
	case !catalog.ValidID(catalog.PrefixMirror, trailer.MirrorID):
		return nil, fmt.Errorf("%w: trailer: mirror_id %q is not a mirror id", ErrAuditExport, trailer.MirrorID)
	case !ed25519.Verify(mirrorPub, AuditSignedBytes(trailer.MirrorID, trailer.HeadHash, trailer.Count), trailer.Sig):
		return nil, fmt.Errorf("%w: trailer signature does not verify with the mirror's key", ErrAuditExport)
	case trailer.Count != v.Count():
		return nil, fmt.Errorf("%w: trailer counts %d events, the export has %d (truncated?)", ErrAuditExport, trailer.Count, v.Count())
	case trailer.HeadHash != head:
		return nil, fmt.Errorf("%w: trailer head_hash does not match the chain's last event", ErrAuditExport)
	}
	for _, ev := range events {
		if ev.ActorType != catalog.ActorMirror || ev.ActorID != trailer.MirrorID {
			return nil, fmt.Errorf("%w: event %d (%s) is not by mirror %s", ErrAuditExport, ev.Seq, ev.EventID, trailer.MirrorID)
		}
	}
	return &AuditExport{MirrorID: trailer.MirrorID, HeadHash: head, Count: v.Count(), Events: events}, nil
}

// AuditForkError says an authentic export (its chain and signature
// verify) does not extend the head the control plane accepted: the
// mirror's chain forked (a cloned or restored data directory).
type AuditForkError struct {
	Accepted  catalog.AuditHead // what the control plane holds
	Presented catalog.AuditHead // where the mirror's chain stands instead
	Reason    string
}

func (e *AuditForkError) Error() string {
	return fmt.Sprintf("audit chain forked: %s (accepted head seq %d, mirror presents seq %d)", e.Reason, e.Accepted.Seq, e.Presented.Seq)
}

// ReadAuditExportFrom verifies an export that must extend from, the head
// accepted so far, as a stream: memory stays bounded by one line
// (MaxAuditLine), whatever the export's size. The export may start right
// after from (seq from.Seq+1, prev_hash from.Hash), or at any earlier
// sequence, the chain's start included (then the event at from.Seq must
// have hash from.Hash, and the events up to it are verified and skipped;
// an export written after an older acknowledgement starts there). emit gets every event
// after from, in order, as its link verifies; nothing is authentic until
// ReadAuditExportFrom returns nil (the trailer's signature is checked
// last), so emit must only stage them. mirrorID is the authenticated
// mirror: the trailer and every event must be its. A chain that verifies
// and is signed but does not extend from is an *AuditForkError (wrapping
// ErrAuditExport); emit is not called again once a fork is seen.
func ReadAuditExportFrom(r io.Reader, mirrorPub ed25519.PublicKey, mirrorID string, from catalog.AuditHead, maxBytes int64, emit func(*catalog.AuditEvent) error) (*AuditExport, error) {
	if len(mirrorPub) != ed25519.PublicKeySize {
		return nil, errors.New("verify audit export: mirror key is not an ed25519 public key")
	}
	if maxBytes <= 0 {
		return nil, errors.New("verify audit export: maxBytes must be positive")
	}
	lr := &io.LimitedReader{R: r, N: maxBytes + 1}
	sc := bufio.NewScanner(lr)
	sc.Buffer(make([]byte, 0, 64<<10), MaxAuditLine)
	var (
		v       *audit.Verifier
		trailer *AuditTrailer
		line    int
		fork    *AuditForkError
	)
	fail := func(format string, args ...any) error {
		if lr.N <= 0 {
			// The cap cut the last line short: that is the reason.
			return fmt.Errorf("%w: larger than %d bytes", ErrAuditExport, maxBytes)
		}
		return fmt.Errorf("%w: line %d: %s", ErrAuditExport, line, fmt.Sprintf(format, args...))
	}
	for sc.Scan() {
		line++
		raw := sc.Bytes()
		if trailer != nil {
			return nil, fail("data after the trailer")
		}
		if bytes.Contains(raw, []byte(`"sig"`)) {
			var tr AuditTrailer
			if err := catalog.DecodeStrict(bytes.NewReader(raw), &tr); err == nil {
				trailer = &tr
				continue
			}
		}
		var ev catalog.AuditEvent
		if err := catalog.DecodeStrict(bytes.NewReader(raw), &ev); err != nil {
			return nil, fail("event: %v", err)
		}
		if ev.ActorType != catalog.ActorMirror || ev.ActorID != mirrorID {
			return nil, fail("event %d (%s) is not by mirror %s", ev.Seq, ev.EventID, mirrorID)
		}
		if v == nil {
			switch {
			case ev.Seq == 1:
				v = &audit.Verifier{}
			case ev.Seq == from.Seq+1:
				v = audit.ResumeAt(from)
				if ev.PrevHash != from.Hash {
					fork = &AuditForkError{Accepted: from, Presented: catalog.AuditHead{Seq: from.Seq, Hash: ev.PrevHash},
						Reason: "the first event does not follow the accepted head"}
					v = audit.ResumeAt(catalog.AuditHead{Seq: from.Seq, Hash: ev.PrevHash})
				}
			case ev.Seq > 1 && ev.Seq <= from.Seq:
				// An export that started after an older acknowledgement
				// (a return file imported again, or late): its first
				// link is signed with the rest, and the event at the
				// accepted sequence must still have the accepted hash.
				v = audit.ResumeAt(catalog.AuditHead{Seq: ev.Seq - 1, Hash: ev.PrevHash})
			default:
				return nil, fail("the export starts at seq %d: want 1 to %d (at most right after the accepted head)", ev.Seq, from.Seq+1)
			}
		}
		if err := v.Next(&ev); err != nil {
			if lr.N <= 0 {
				return nil, fail("")
			}
			return nil, fmt.Errorf("%w: %w", ErrAuditExport, err)
		}
		if ev.Seq == from.Seq && ev.Hash != from.Hash && fork == nil {
			fork = &AuditForkError{Accepted: from, Presented: catalog.AuditHead{Seq: ev.Seq, Hash: ev.Hash},
				Reason: "the mirror's event at the accepted sequence has another hash"}
		}
		if ev.Seq > from.Seq && fork == nil {
			if err := emit(&ev); err != nil {
				return nil, err
			}
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fail("line longer than %d bytes", MaxAuditLine)
		}
		return nil, fmt.Errorf("verify audit export: read: %w", err)
	}
	if lr.N <= 0 {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrAuditExport, maxBytes)
	}
	if trailer == nil {
		return nil, fmt.Errorf("%w: no signed trailer (truncated?)", ErrAuditExport)
	}
	count, head := from.Seq, from.Hash
	if v != nil {
		count, head = v.Count(), ""
		if h := v.Head(); h != nil {
			head = h.Hash
		}
	}
	switch {
	case trailer.MirrorID != mirrorID:
		return nil, fmt.Errorf("%w: the export is mirror %q's, not the authenticated mirror %s's", ErrAuditExport, trailer.MirrorID, mirrorID)
	case !ed25519.Verify(mirrorPub, AuditSignedBytes(trailer.MirrorID, trailer.HeadHash, trailer.Count), trailer.Sig):
		return nil, fmt.Errorf("%w: trailer signature does not verify with the mirror's key", ErrAuditExport)
	case v == nil && trailer.Count < from.Seq, v != nil && trailer.Count == count && count < from.Seq:
		// Authentic, and shorter than what was accepted: a data dir
		// restored from an older copy, or a clone.
		fork = &AuditForkError{Accepted: from, Presented: catalog.AuditHead{Seq: trailer.Count, Hash: trailer.HeadHash},
			Reason: "the mirror's chain is shorter than the accepted head"}
	case v == nil && trailer.Count == from.Seq && trailer.HeadHash != from.Hash:
		fork = &AuditForkError{Accepted: from, Presented: catalog.AuditHead{Seq: trailer.Count, Hash: trailer.HeadHash},
			Reason: "the mirror's head at the accepted sequence has another hash"}
	case trailer.Count != count:
		return nil, fmt.Errorf("%w: trailer counts %d events, the export reaches %d (truncated?)", ErrAuditExport, trailer.Count, count)
	case trailer.HeadHash != head:
		return nil, fmt.Errorf("%w: trailer head_hash does not match the chain's last event", ErrAuditExport)
	}
	if fork != nil {
		return nil, fmt.Errorf("%w: %w", ErrAuditExport, fork)
	}
	return &AuditExport{MirrorID: trailer.MirrorID, HeadHash: head, Count: count}, nil
}
