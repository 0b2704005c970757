package snapshot

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unsafe"
)

// maxSignatures bounds the signatures an envelope may carry, so a hostile
// envelope cannot make a verifier do unbounded ed25519 work.
const maxSignatures = 32

// KeyID returns the keyid of an ed25519 public key: hex sha256 of its raw
// 32 bytes.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:])
}

// PAE is DSSE v1's pre-authentication encoding, what signatures cover:
// "DSSEv1" SP len(type) SP type SP len(body) SP body.
func PAE(payloadType string, payload []byte) []byte {
	b := paePrefix(make([]byte, 0, 32+len(payloadType)+len(payload)), payloadType, len(payload))
	return append(b, payload...)
}

func paePrefix(b []byte, payloadType string, n int) []byte {
	b = append(b, "DSSEv1 "...)
	b = strconv.AppendInt(b, int64(len(payloadType)), 10)
	b = append(b, ' ')
	b = append(b, payloadType...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(n), 10)
	return append(b, ' ')
}

// Hash returns the hex sha256 of envelope bytes: a snapshot's identity in
// held state and in the next snapshot's previous.
func Hash(envelope []byte) string {
	sum := sha256.Sum256(envelope)
	return hex.EncodeToString(sum[:])
}

// Sign encodes m and wraps it in a DSSE envelope signed by every signer
// (signatures sorted by keyid). It returns the envelope JSON bytes, which
// are what is stored and served, verbatim.
func Sign(m *Manifest, signers []Signer) ([]byte, error) {
	// Encode behind room for the PAE prefix, so the payload is signed
	// where it lies instead of being copied (it can be ~50 MB).
	reserve := len(paePrefix(nil, PayloadType, math.MaxInt64))
	buf, err := appendManifest(make([]byte, reserve), m)
	if err != nil {
		return nil, fmt.Errorf("sign snapshot: %w", err)
	}
	payload := buf[reserve:]
	pre := paePrefix(nil, PayloadType, len(payload))
	pae := buf[reserve-len(pre):]
	copy(pae, pre)
	return signPAE(pae, payload, signers)
}

// SignPayload wraps already encoded manifest bytes in a signed envelope.
func SignPayload(payload []byte, signers []Signer) ([]byte, error) {
	return signPAE(PAE(PayloadType, payload), payload, signers)
}

func signPAE(pae, payload []byte, signers []Signer) ([]byte, error) {
	if len(signers) == 0 {
		return nil, errors.New("sign snapshot: no signing keys")
	}
	if len(signers) > maxSignatures {
		return nil, fmt.Errorf("sign snapshot: %d signing keys, at most %d", len(signers), maxSignatures)
	}
	sigs := make([]Signature, len(signers))
	for i, s := range signers {
		if len(s.Key) != ed25519.PrivateKeySize {
			return nil, fmt.Errorf("sign snapshot: signer %d: not an ed25519 private key", i)
		}
		id := KeyID(s.Key.Public().(ed25519.PublicKey))
		if s.KeyID != "" && s.KeyID != id {
			return nil, fmt.Errorf("sign snapshot: signer %d: keyid %s does not match its key (%s)", i, s.KeyID, id)
		}
		sigs[i].KeyID = id
	}
	slices.SortFunc(sigs, func(a, b Signature) int { return strings.Compare(a.KeyID, b.KeyID) })
	for i := 1; i < len(sigs); i++ {
		if sigs[i].KeyID == sigs[i-1].KeyID {
			return nil, fmt.Errorf("sign snapshot: key %s given twice", sigs[i].KeyID)
		}
	}
	// Keys sign in parallel: each signature hashes the whole payload twice.
	byID := make(map[string]ed25519.PrivateKey, len(signers))
	for _, s := range signers {
		byID[KeyID(s.Key.Public().(ed25519.PublicKey))] = s.Key
	}
	// The payload's base64 does not depend on the signatures: it is
	// written while they are computed.
	var wg sync.WaitGroup
	for i := range sigs {
		wg.Go(func() { sigs[i].Sig = ed25519.Sign(byID[sigs[i].KeyID], pae) })
	}
	b := encodeEnvelopeHead(PayloadType, payload, len(sigs))
	wg.Wait()
	return encodeEnvelopeTail(b, sigs), nil
}

// encodeEnvelopeHead writes an envelope up to its signatures, with room
// for nSigs of them.
func encodeEnvelopeHead(payloadType string, payload []byte, nSigs int) []byte {
	enc := base64.StdEncoding
	n := 64 + len(payloadType) + enc.EncodedLen(len(payload)) + nSigs*(160)
	b := make([]byte, 0, n)
	b = append(b, `{"payloadType":`...)
	b = appendString(b, payloadType)
	b = append(b, `,"payload":"`...)
	return appendBase64(b, payload)
}

// encodeEnvelopeTail finishes an envelope with its signatures.
func encodeEnvelopeTail(b []byte, sigs []Signature) []byte {
	enc := base64.StdEncoding
	b = append(b, `","signatures":[`...)
	for i, s := range sigs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"keyid":`...)
		b = appendString(b, s.KeyID)
		b = append(b, `,"sig":"`...)
		b = enc.AppendEncode(b, s.Sig)
		b = append(b, `"}`...)
	}
	return append(b, "]}"...)
}

// rawEnvelope is a decoded envelope whose payload is already laid out
// behind its PAE prefix, so signatures are checked without another copy.
type rawEnvelope struct {
	payloadType string
	pae         []byte // PAE(payloadType, payload)
	payload     []byte // pae's tail
	sigs        []Signature
}

var envelopeFields = []string{"payloadType", "payload", "signatures"}

// decodeEnvelope reads an envelope strictly: exactly its three fields,
// standard base64, no trailing data.
func decodeEnvelope(data []byte) (env *rawEnvelope, err error) {
	defer catch(&err)
	if len(data) == 0 {
		return nil, errors.New("envelope is empty")
	}
	// The lexer reads the caller's bytes in place (no 60 MB copy); only
	// clones of its strings outlive this function.
	l := &lexer{s: unsafe.String(&data[0], len(data)), idx: -1, where: "envelope"}
	env = &rawEnvelope{}
	var payload64 string
	var payloadRaw []byte
	var mask uint32
	l.expect('{')
	for first := true; ; {
		k, ok := l.key(&first)
		if !ok {
			break
		}
		switch k {
		case "payloadType":
			l.seen(&mask, 0, k)
			env.payloadType = strings.Clone(l.str())
		case "payload":
			l.seen(&mask, 1, k)
			l.ws()
			start := l.i + 1
			payload64 = l.longStr()
			if l.i-1-start == len(payload64) {
				// No escapes: decode from the caller's bytes, not a copy.
				payloadRaw = data[start : l.i-1]
			} else {
				payloadRaw = []byte(payload64)
			}
		case "signatures":
			l.seen(&mask, 2, k)
			env.sigs = decodeSignatures(l)
		default:
			l.fail("unknown field")
		}
	}
	l.missing(mask, envelopeFields)
	l.end()

	// Lay the payload out behind its PAE prefix.
	if len(payload64)%4 != 0 {
		l.fail("payload: not padded standard base64")
	}
	n := len(payload64) / 4 * 3
	if strings.HasSuffix(payload64, "==") {
		n -= 2
	} else if strings.HasSuffix(payload64, "=") {
		n--
	}
	pre := paePrefix(nil, env.payloadType, n)
	env.pae = make([]byte, len(pre)+n)
	copy(env.pae, pre)
	// Exact length: base64 decoders skip \r and \n, which longStr lets
	// through, so any of them makes the count come out short.
	got, derr := decodeBase64(env.pae[len(pre):], payloadRaw)
	if derr != nil || got != n {
		l.fail("payload: not standard base64")
	}
	env.payload = env.pae[len(pre):]
	return env, nil
}

func decodeSignatures(l *lexer) []Signature {
	var sigs []Signature
	l.expect('[')
	for first := true; l.elem(&first); {
		if len(sigs) == maxSignatures {
			l.fail("more than %d signatures", maxSignatures)
		}
		var s Signature
		var mask uint32
		l.expect('{')
		for first := true; ; {
			k, ok := l.key(&first)
			if !ok {
				break
			}
			switch k {
			case "keyid":
				l.seen(&mask, 0, k)
				s.KeyID = strings.Clone(l.str())
			case "sig":
				l.seen(&mask, 1, k)
				v, err := base64.StdEncoding.Strict().DecodeString(l.str())
				if err != nil {
					l.fail("signatures[%d].sig: not standard base64", len(sigs))
				}
				s.Sig = v
			default:
				l.fail("signatures[%d]: unknown field %q", len(sigs), k)
			}
		}
		l.missing(mask, []string{"keyid", "sig"})
		sigs = append(sigs, s)
	}
	return sigs
}

// decodeBase64 decodes src into dst in two halves at once (there are two
// cores and a 100,000-release payload is ~60 MB).
func decodeBase64(dst, src []byte) (int, error) {
	enc := base64.StdEncoding.Strict()
	if len(src) < 1<<20 {
		return enc.Decode(dst, src)
	}
	half := len(src) / 2 / 4 * 4 // a multiple of 4 characters, no padding
	var n1 int
	var err1 error
	done := make(chan struct{})
	go func() {
		defer close(done)
		n1, err1 = enc.Decode(dst[:half/4*3], src[:half])
	}()
	n2, err2 := enc.Decode(dst[half/4*3:], src[half:])
	<-done
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return n1 + n2, nil
}

// appendBase64 appends the standard base64 of src, in two halves at once
// when it is large.
func appendBase64(b, src []byte) []byte {
	enc := base64.StdEncoding
	off := len(b)
	b = slices.Grow(b, enc.EncodedLen(len(src)))[:off+enc.EncodedLen(len(src))]
	dst := b[off:]
	if len(src) < 1<<20 {
		enc.Encode(dst, src)
		return b
	}
	half := len(src) / 2 / 3 * 3 // a multiple of 3 bytes: no padding mid-way
	var wg sync.WaitGroup
	wg.Go(func() { enc.Encode(dst[:half/3*4], src[:half]) })
	enc.Encode(dst[half/3*4:], src[half:])
	wg.Wait()
	return b
}
