package license

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/snapshot"
)

func TestIssue_RoundTrip(t *testing.T) {
	c := vendorClaims()
	tok := mustIssue(t, c, vendorKey)
	if !strings.HasPrefix(tok, TokenPrefix) || strings.Count(tok, ".") != 2 {
		t.Fatalf("token %q is not olt1.<payload>.<sig>", tok)
	}
	got, sig, err := Parse(tok)
	if err != nil {
		t.Fatal(err)
	}
	c.KeyID = KeyID(pub(vendorKey))
	if !reflect.DeepEqual(*got, c) {
		t.Errorf("claims: got %+v, want %+v", *got, c)
	}
	if !ed25519.Verify(pub(vendorKey), sig.Message, sig.Sig) {
		t.Error("signature of the parsed token does not verify")
	}
	if want := tok[:strings.LastIndex(tok, ".")]; string(sig.Message) != want {
		t.Errorf("signed message: got %q, want %q", sig.Message, want)
	}
	if h := TokenHash(tok); len(h) != 64 || h == TokenHash(tok+"x") {
		t.Errorf("TokenHash: got %q", h)
	}
}

func TestIssue_RejectsBadClaims(t *testing.T) {
	cases := []struct {
		name string
		edit func(*Claims)
	}{
		{"bad lease id", func(c *Claims) { c.LeaseID = "x" }},
		{"bad subject type", func(c *Claims) { c.SubjectType = "robot" }},
		{"empty subject", func(c *Claims) { c.SubjectID = "" }},
		{"exp before iat", func(c *Claims) { c.ExpiresAt = c.IssuedAt }},
		{"negative grace", func(c *Claims) { c.Grace = -1 }},
		{"bad issuer", func(c *Claims) { c.Issuer = "mirror:nope" }},
		{"kid of another key", func(c *Claims) { c.KeyID = KeyID(pub(rogueKey)) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := vendorClaims()
			tc.edit(&c)
			if tok, err := Issue(c, vendorKey); err == nil {
				t.Fatalf("Issue: got token %q, want an error", tok)
			}
		})
	}
}

// resign replaces a token's payload with edit(payload) signed by k under
// kid (which need not be k's).
func resign(t *testing.T, tok string, k ed25519.PrivateKey, edit func(*Claims)) string {
	t.Helper()
	c, _, err := Parse(tok)
	if err != nil {
		t.Fatal(err)
	}
	edit(c)
	b, _ := json.Marshal(c)
	signed := TokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	return signed + "." + base64.RawURLEncoding.EncodeToString(ed25519.Sign(k, []byte(signed)))
}

func TestVerify_VendorTokens(t *testing.T) {
	v, err := NewVerifier(vendorKeys(), tenantA)
	if err != nil {
		t.Fatal(err)
	}
	good := mustIssue(t, vendorClaims(), vendorKey)
	payload := strings.Split(good, ".")[1]
	sigPart := strings.Split(good, ".")[2]

	// Altered: the payload says tenant B, signature of the original.
	c := vendorClaims()
	c.KeyID = KeyID(pub(vendorKey))
	c.Features = []string{"pro", "enterprise"}
	altered, _ := json.Marshal(c)
	alteredTok := TokenPrefix + base64.RawURLEncoding.EncodeToString(altered) + "." + sigPart

	sigBytes, _ := base64.RawURLEncoding.DecodeString(sigPart)
	sigBytes[0] ^= 1
	flipped := TokenPrefix + payload + "." + base64.RawURLEncoding.EncodeToString(sigBytes)

	cases := []struct {
		name  string
		token string
		now   time.Time
		want  error
	}{
		{"valid", good, t0.Add(time.Minute), nil},
		{"valid in grace", good, t0.Add(time.Hour + 599*time.Second), nil},
		{"expired at exp+grace", good, t0.Add(time.Hour + 600*time.Second), ErrExpired},
		{"long expired", good, t0.Add(48 * time.Hour), ErrExpired},
		{"issued in the future", good, t0.Add(-time.Hour), ErrNotYetValid},
		{"altered payload", alteredTok, t0, ErrForged},
		{"flipped signature bit", flipped, t0, ErrForged},
		{"forged with rogue key claiming vendor kid", resign(t, good, rogueKey, func(c *Claims) {}), t0, ErrForged},
		{"signed by an untrusted key", mustIssue(t, vendorClaims(), rogueKey), t0, ErrUntrustedKey},
		{"wrong tenant", mustIssue(t, func() Claims { c := vendorClaims(); c.TenantID = tenantB; return c }(), vendorKey), t0, ErrWrongTenant},
		{"mirror token without snapshot", mustIssue(t, mirrorClaims(), mirror1Key), t0, ErrNoSnapshot},
		{"empty", "", t0, ErrMalformed},
		{"other version", "olt2." + payload + "." + sigPart, t0, ErrMalformed},
		{"padded base64", good + "=", t0, ErrMalformed},
		{"extra part", good + ".x", t0, ErrMalformed},
		{"short signature", TokenPrefix + payload + ".AAAA", t0, ErrMalformed},
		{"too large", TokenPrefix + strings.Repeat("A", MaxTokenSize), t0, ErrTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Verify(tc.token, v, tc.now)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if got.SubjectID != "host-1" || got.TenantID != tenantA {
					t.Errorf("claims: got %+v", got)
				}
				return
			}
			if !errors.Is(err, tc.want) || !errors.Is(err, ErrRejected) {
				t.Fatalf("Verify: got %v, want %v", err, tc.want)
			}
			if got != nil {
				t.Errorf("claims returned with an error: %+v", got)
			}
		})
	}
}

func TestVerify_MirrorTokens(t *testing.T) {
	m := testManifest(t)
	v, err := NewVerifierFromManifest(vendorKeys(), tenantA, m)
	if err != nil {
		t.Fatal(err)
	}
	edit := func(f func(*Claims)) Claims { c := mirrorClaims(); f(&c); return c }
	cases := []struct {
		name  string
		token string
		want  error
	}{
		{"mirror1 key", mustIssue(t, mirrorClaims(), mirror1Key), nil},
		{"mirror2 key", mustIssue(t, edit(func(c *Claims) { c.Issuer = "mirror:" + mirror2 }), mirror2Key), nil},
		{"key no snapshot lists", mustIssue(t, mirrorClaims(), rogueKey), ErrUnknownMirrorKey},
		{"mirror1 key claiming mirror2", mustIssue(t, edit(func(c *Claims) { c.Issuer = "mirror:" + mirror2 }), mirror1Key), ErrUnknownMirrorKey},
		{"mirror2 key claiming mirror1", mustIssue(t, mirrorClaims(), mirror2Key), ErrUnknownMirrorKey},
		{"forged under mirror1 kid", resign(t, mustIssue(t, mirrorClaims(), mirror1Key), rogueKey, func(*Claims) {}), ErrForged},
		{"mirror token as vendor", mustIssue(t, vendorClaims(), mirror1Key), ErrUntrustedKey},
		{"wrong tenant", mustIssue(t, edit(func(c *Claims) { c.TenantID = tenantB }), mirror1Key), ErrWrongTenant},
		{"entitlement not in snapshot", mustIssue(t, edit(func(c *Claims) { c.EntitlementID = "ent_0000000000000000000000000z" }), mirror1Key), ErrNotEntitled},
		{"other product", mustIssue(t, edit(func(c *Claims) { c.ProductID = product2 }), mirror1Key), ErrNotEntitled},
		{"feature not granted", mustIssue(t, edit(func(c *Claims) { c.Features = []string{"enterprise"} }), mirror1Key), ErrNotEntitled},
		{"longer than lease_ttl", mustIssue(t, edit(func(c *Claims) { c.ExpiresAt = c.IssuedAt + 3601 }), mirror1Key), ErrNotEntitled},
		{"more grace than offline_grace", mustIssue(t, edit(func(c *Claims) { c.Grace = 7201 }), mirror1Key), ErrNotEntitled},
		{"mirror without seats", mustIssue(t, edit(func(c *Claims) { c.EntitlementID = entNone; c.ProductID = product2; c.Features = []string{} }), mirror1Key), ErrNotEntitled},
		{"issued before the entitlement starts", mustIssue(t, edit(func(c *Claims) {
			c.EntitlementID = entLater
			c.Features = []string{}
			c.ExpiresAt = c.IssuedAt + 60
		}), mirror1Key), ErrNotEntitled},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Verify(tc.token, v, t0.Add(time.Minute))
			if tc.want == nil && err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("Verify: got %v, want %v", err, tc.want)
			}
		})
	}
	t.Run("suspended tenant", func(t *testing.T) {
		m := testManifest(t)
		m.Tenant.Status = "suspended"
		v, err := NewVerifierFromManifest(vendorKeys(), tenantA, m)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Verify(mustIssue(t, mirrorClaims(), mirror1Key), v, t0); !errors.Is(err, ErrNotEntitled) {
			t.Fatalf("got %v, want ErrNotEntitled", err)
		}
	})
}

func TestNewVerifier_RejectsBadConfig(t *testing.T) {
	cases := []struct {
		name   string
		keys   map[string]ed25519.PublicKey
		tenant string
	}{
		{"no keys", nil, tenantA},
		{"kid mismatch", map[string]ed25519.PublicKey{KeyID(pub(rogueKey)): pub(vendorKey)}, tenantA},
		{"short key", map[string]ed25519.PublicKey{"ab": ed25519.PublicKey{1, 2}}, tenantA},
		{"bad tenant", vendorKeys(), "acme"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewVerifier(tc.keys, tc.tenant); err == nil {
				t.Fatal("got nil error")
			}
		})
	}
	if _, err := NewVerifierFromManifest(vendorKeys(), tenantB, testManifest(t)); err == nil {
		t.Error("manifest of another tenant: got nil error")
	}
}

func FuzzParse(f *testing.F) {
	f.Add(mustIssue(f, vendorClaims(), vendorKey))
	f.Add(mustIssue(f, mirrorClaims(), mirror1Key))
	f.Add("olt1..")
	f.Add("olt1.e30.AAAA")
	f.Add("olt1.eyJsaWQiOjF9." + strings.Repeat("A", 86))
	v, err := NewVerifier(vendorKeys(), tenantA)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		c, sig, err := Parse(tok)
		if err != nil {
			if !errors.Is(err, ErrRejected) {
				t.Fatalf("Parse error %v does not wrap ErrRejected", err)
			}
			if c != nil {
				t.Fatal("claims with an error")
			}
			return
		}
		if err := c.validate(); err != nil {
			t.Fatalf("parsed claims do not validate: %v", err)
		}
		if !strings.HasPrefix(tok, string(sig.Message)+".") || len(sig.Sig) != ed25519.SignatureSize {
			t.Fatalf("signature parts do not match the token")
		}
		// Whatever parses must still be refused unless really signed.
		if _, err := Verify(tok, v, t0); err == nil && c.KeyID != KeyID(pub(vendorKey)) {
			t.Fatalf("verified a token not signed by the vendor: %+v", c)
		}
	})
}

// TestNewTUFVerifier_WithoutVendorKeys: a manifest verified through TUF
// carries the chain to the mirror keys; without vendor keys a mirror
// token verifies and a vendor token is refused as untrusted; another
// tenant's manifest and a bad tenant id are refused.
func TestNewTUFVerifier_WithoutVendorKeys(t *testing.T) {
	v, err := NewTUFVerifier(nil, tenantA, testManifest(t))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		token string
		want  error
	}{
		{"mirror token", mustIssue(t, mirrorClaims(), mirror1Key), nil},
		{"key no manifest lists", mustIssue(t, mirrorClaims(), rogueKey), ErrUnknownMirrorKey},
		{"vendor token, no vendor keys", mustIssue(t, vendorClaims(), vendorKey), ErrUntrustedKey},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Verify(tc.token, v, t0.Add(time.Minute))
			if tc.want == nil && err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("Verify: got %v, want %v", err, tc.want)
			}
		})
	}
	t.Run("with vendor keys, a vendor token too", func(t *testing.T) {
		v, err := NewTUFVerifier(vendorKeys(), tenantA, testManifest(t))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Verify(mustIssue(t, vendorClaims(), vendorKey), v, t0.Add(time.Minute)); err != nil {
			t.Fatalf("Verify: %v", err)
		}
	})
	t.Run("refusals", func(t *testing.T) {
		if _, err := NewTUFVerifier(nil, tenantB, testManifest(t)); err == nil {
			t.Error("manifest of another tenant: got nil error")
		}
		if _, err := NewTUFVerifier(nil, "acme", testManifest(t)); err == nil {
			t.Error("bad tenant id: got nil error")
		}
		if _, err := NewTUFVerifier(nil, tenantA, nil); err == nil {
			t.Error("nil manifest: got nil error")
		}
	})
}

// TestNewTUFVerifier_LeaseKeys: the lease keys the verified metadata
// names (docs/lease_keys.json) verify vendor tokens with no key pinned; a
// key it does not name, or an entry whose id does not match its key, is
// refused as untrusted.
func TestNewTUFVerifier_LeaseKeys(t *testing.T) {
	named := snapshot.LeaseKey{KeyID: KeyID(pub(vendorKey)), PublicKey: base64.StdEncoding.EncodeToString(pub(vendorKey))}
	cases := []struct {
		name string
		keys []snapshot.LeaseKey
		want error
	}{
		{"named", []snapshot.LeaseKey{named}, nil},
		{"not named", nil, ErrUntrustedKey},
		{"an id that is not its key's", []snapshot.LeaseKey{{KeyID: KeyID(pub(rogueKey)), PublicKey: named.PublicKey}}, ErrUntrustedKey},
		{"not base64", []snapshot.LeaseKey{{KeyID: named.KeyID, PublicKey: "!!"}}, ErrUntrustedKey},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := testManifest(t)
			m.LeaseKeys = tc.keys
			v, err := NewTUFVerifier(nil, tenantA, m)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Verify(mustIssue(t, vendorClaims(), vendorKey), v, t0.Add(time.Minute))
			if tc.want == nil && err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("Verify: got %v, want %v", err, tc.want)
			}
		})
	}
}
