package client

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// KeyID is the key id of an ed25519 public key: hex sha256 of its 32 raw
// bytes (the DSSE keyid in Outpost's envelopes).
func KeyID(pub ed25519.PublicKey) string {
	s := sha256.Sum256(pub)
	return hex.EncodeToString(s[:])
}

// ParseKey parses one vendor public key written as hex or base64 (standard,
// raw or URL alphabet) of its 32 raw bytes, or as KEYID=KEY, in which case
// the key id must be the key's. It returns the key id and the key.
func ParseKey(s string) (string, ed25519.PublicKey, error) {
	s = strings.TrimSpace(s)
	want := ""
	if i := strings.IndexByte(s, '='); i == 64 && isHex(s[:i]) {
		want, s = strings.ToLower(s[:i]), strings.TrimSpace(s[i+1:])
	}
	raw, err := decodeKeyBytes(s)
	if err != nil {
		return "", nil, err
	}
	pub := ed25519.PublicKey(raw)
	id := KeyID(pub)
	if want != "" && want != id {
		return "", nil, fmt.Errorf("key id %s does not match the key (its id is %s)", want, id)
	}
	return id, pub, nil
}

func decodeKeyBytes(s string) ([]byte, error) {
	if s == "" {
		return nil, fmt.Errorf("empty key")
	}
	if len(s) == 2*ed25519.PublicKeySize && isHex(s) {
		b, _ := hex.DecodeString(s)
		return b, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) != ed25519.PublicKeySize {
				return nil, fmt.Errorf("key is %d bytes, want %d", len(b), ed25519.PublicKeySize)
			}
			return b, nil
		}
	}
	return nil, fmt.Errorf("key is neither hex nor base64 of %d bytes", ed25519.PublicKeySize)
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return s != ""
}

// ParseKeys parses key specs as ParseKey does; a spec that names an
// existing file is read as either the control plane's GET /v1/keys answer
// ({"items":[{"key_id","public_key","status"}]}, revoked keys skipped) or
// one key per line (blank lines and # comments ignored).
func ParseKeys(specs []string) (map[string]ed25519.PublicKey, error) {
	keys := make(map[string]ed25519.PublicKey)
	for _, spec := range specs {
		spec = strings.TrimSpace(spec)
		if spec == "" {
			continue
		}
		if fi, err := os.Stat(spec); err == nil && fi.Mode().IsRegular() {
			if err := readKeyFile(spec, keys); err != nil {
				return nil, err
			}
			continue
		}
		id, pub, err := ParseKey(spec)
		if err != nil {
			return nil, keySpecError(spec, err)
		}
		keys[id] = pub
	}
	return keys, nil
}

func readKeyFile(path string, keys map[string]ed25519.PublicKey) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("trusted key file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, 1<<20+1))
	if err != nil {
		return fmt.Errorf("trusted key file %s: %w", path, err)
	}
	if len(data) > 1<<20 {
		return fmt.Errorf("trusted key file %s: larger than 1 MiB", path)
	}
	if t := bytes.TrimSpace(data); len(t) > 0 && t[0] == '{' {
		var doc struct {
			Items []struct {
				KeyID     string `json:"key_id"`
				PublicKey string `json:"public_key"`
				Status    string `json:"status"`
			} `json:"items"`
		}
		if err := json.Unmarshal(t, &doc); err != nil {
			return fmt.Errorf("trusted key file %s: %w", path, err)
		}
		for i, it := range doc.Items {
			if strings.EqualFold(it.Status, "revoked") {
				continue
			}
			spec := it.PublicKey
			if it.KeyID != "" {
				spec = it.KeyID + "=" + spec
			}
			id, pub, err := ParseKey(spec)
			if err != nil {
				return fmt.Errorf("trusted key file %s: items[%d]: %w", path, i, err)
			}
			keys[id] = pub
		}
		return nil
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		id, pub, err := ParseKey(line)
		if err != nil {
			return fmt.Errorf("trusted key file %s:%d: %w", path, n, err)
		}
		keys[id] = pub
	}
	return sc.Err()
}

func short(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// keySpecError explains a spec that is neither a key nor a readable file:
// one that looks like a path is reported as a missing (or unreadable)
// file, not as a badly encoded key.
func keySpecError(spec string, err error) error {
	_, statErr := os.Stat(spec)
	// Keys never hold a dot, a backslash or a tilde; a '/' may be base64.
	looksLikePath := strings.ContainsAny(spec, `.\~`) || strings.Contains(spec, "/") && !base64ish(spec)
	switch {
	case statErr == nil:
		return fmt.Errorf("trusted key %q: not a regular file, and not a key (hex or base64 of %d bytes)", short(spec), ed25519.PublicKeySize)
	case looksLikePath && errors.Is(statErr, os.ErrNotExist):
		return fmt.Errorf("trusted key file %s does not exist (check the path; or pass the key itself, hex or base64 of %d bytes, e.g. from GET /v1/keys)", spec, ed25519.PublicKeySize)
	case looksLikePath && !errors.Is(statErr, os.ErrNotExist):
		return fmt.Errorf("trusted key file %s: %w", spec, statErr)
	}
	return fmt.Errorf("trusted key %q: %w (nor is it an existing file)", short(spec), err)
}

// base64ish reports whether s could be base64 of an ed25519 key.
func base64ish(s string) bool {
	if len(s) < 40 || len(s) > 48 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/' || c == '=' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
