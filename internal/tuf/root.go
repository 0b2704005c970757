package tuf

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// RoleKeys are the public keys of a role and how many must sign.
type RoleKeys struct {
	Keys      []*metadata.Key
	Threshold int
}

// RootSpec describes a tenant's root: its version, expiry and the keys of
// the four top-level roles. Root keys are typically offline; the others
// are the control plane's online keys.
type RootSpec struct {
	TenantID  string
	Version   int64 // 1 for the first root; previous + 1 for a rotation
	Expires   time.Time
	Root      RoleKeys
	Targets   RoleKeys
	Snapshot  RoleKeys
	Timestamp RoleKeys
}

// Root metadata type alias for readers of this package's API.
type Root = metadata.Metadata[metadata.RootType]

// NewRoot returns the unsigned root of spec (consistent snapshots on,
// tenant bound through TenantField). Sign it in a ceremony: Payload or
// Export, SignPayload with each key, AddSignatures, then CheckRoot.
func NewRoot(spec RootSpec) (*Root, error) {
	if spec.TenantID == "" {
		return nil, errors.New("new root: empty tenant id")
	}
	if spec.Version < 1 {
		return nil, fmt.Errorf("new root: version %d, want >= 1", spec.Version)
	}
	r := metadata.Root(spec.Expires.UTC().Truncate(time.Second))
	r.Signed.Version = spec.Version
	r.Signed.ConsistentSnapshot = true
	r.Signed.UnrecognizedFields = map[string]any{TenantField: spec.TenantID}
	for _, x := range []struct {
		role string
		keys RoleKeys
	}{{metadata.ROOT, spec.Root}, {metadata.TARGETS, spec.Targets}, {metadata.SNAPSHOT, spec.Snapshot}, {metadata.TIMESTAMP, spec.Timestamp}} {
		if len(x.keys.Keys) == 0 {
			return nil, fmt.Errorf("new root: role %s has no keys", x.role)
		}
		if x.keys.Threshold < 1 || x.keys.Threshold > len(x.keys.Keys) {
			return nil, fmt.Errorf("new root: role %s threshold %d of %d keys", x.role, x.keys.Threshold, len(x.keys.Keys))
		}
		for _, k := range x.keys.Keys {
			if err := r.Signed.AddKey(k, x.role); err != nil {
				return nil, fmt.Errorf("new root: role %s: %w", x.role, err)
			}
		}
		r.Signed.Roles[x.role].Threshold = x.keys.Threshold
	}
	return r, nil
}

// NextRoot returns the unsigned successor of prev with spec's keys: the
// version is prev's plus one and the tenant is prev's. It must be signed
// by a threshold of prev's root keys and a threshold of its own.
func NextRoot(prev *Root, spec RootSpec) (*Root, error) {
	spec.TenantID = tenantOf(prev.Signed.UnrecognizedFields)
	spec.Version = prev.Signed.Version + 1
	return NewRoot(spec)
}

// Export serialises metadata of any role for a ceremony: readable JSON
// with the signatures it already has.
func Export[T metadata.Roles](m *metadata.Metadata[T]) ([]byte, error) {
	b, err := m.ToBytes(true)
	if err != nil {
		return nil, fmt.Errorf("export metadata: %w", err)
	}
	return b, nil
}

// SignExported signs exported metadata of any role with s (e.g. an
// offline key opened on another machine) and returns the signature to
// carry back. It signs the canonical form of the signed part, so the
// exported file's formatting does not matter.
func SignExported(ctx context.Context, data []byte, s Signer) (metadata.Signature, error) {
	payload, err := signedPayload(data)
	if err != nil {
		return metadata.Signature{}, err
	}
	sig, err := s.Sign(ctx, payload)
	if err != nil {
		return metadata.Signature{}, fmt.Errorf("sign exported metadata: %w", err)
	}
	return metadata.Signature{KeyID: s.KeyID(), Signature: sig}, nil
}

// signedPayload returns the canonical bytes of any role's signed part.
func signedPayload(data []byte) ([]byte, error) {
	var probe struct {
		Signed struct {
			Type string `json:"_type"`
		} `json:"signed"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("read metadata: %w", err)
	}
	switch probe.Signed.Type {
	case metadata.ROOT:
		return payloadOf[metadata.RootType](data)
	case metadata.TARGETS:
		return payloadOf[metadata.TargetsType](data)
	case metadata.SNAPSHOT:
		return payloadOf[metadata.SnapshotType](data)
	case metadata.TIMESTAMP:
		return payloadOf[metadata.TimestampType](data)
	}
	return nil, fmt.Errorf("read metadata: unknown type %q", probe.Signed.Type)
}

func payloadOf[T metadata.Roles](data []byte) ([]byte, error) {
	m, err := (&metadata.Metadata[T]{}).FromBytes(data)
	if err != nil {
		return nil, fmt.Errorf("read metadata: %w", err)
	}
	return canonical(m)
}

// AddSignatures imports signatures made elsewhere into exported metadata
// and returns it serialised compactly (ready to publish). A signature by
// a key that already signed replaces the earlier one. Whether the
// signatures are valid and enough is CheckRoot's (or the client's) to say.
func AddSignatures[T metadata.Roles](data []byte, sigs ...metadata.Signature) (*metadata.Metadata[T], []byte, error) {
	m, err := (&metadata.Metadata[T]{}).FromBytes(data)
	if err != nil {
		return nil, nil, fmt.Errorf("import signatures: %w", err)
	}
	for _, s := range sigs {
		addSignature(m, s)
	}
	slices.SortFunc(m.Signatures, func(a, b metadata.Signature) int {
		switch {
		case a.KeyID < b.KeyID:
			return -1
		case a.KeyID > b.KeyID:
			return 1
		}
		return 0
	})
	out, err := encode(m)
	if err != nil {
		return nil, nil, err
	}
	return m, out, nil
}

// CheckRoot says whether next may be published: signed by a threshold
// of its own root keys, and, when prev is not nil, by a threshold of
// prev's root keys, with version prev+1 and the same tenant.
func CheckRoot(prev, next *Root) error {
	if err := next.VerifyDelegate(metadata.ROOT, next); err != nil {
		return fmt.Errorf("check root v%d: own threshold: %w", next.Signed.Version, err)
	}
	if prev == nil {
		return nil
	}
	if err := prev.VerifyDelegate(metadata.ROOT, next); err != nil {
		return fmt.Errorf("check root v%d: previous threshold: %w", next.Signed.Version, err)
	}
	if next.Signed.Version != prev.Signed.Version+1 {
		return fmt.Errorf("check root: version %d after %d", next.Signed.Version, prev.Signed.Version)
	}
	if a, b := tenantOf(prev.Signed.UnrecognizedFields), tenantOf(next.Signed.UnrecognizedFields); a != b {
		return fmt.Errorf("check root: tenant %q after %q", b, a)
	}
	return nil
}

// SignRoot signs root with signers in one go (a ceremony where every key
// is at hand, and tests).
func SignRoot(ctx context.Context, r *Root, signers ...Signer) ([]byte, error) {
	if err := sign(ctx, r, signers...); err != nil {
		return nil, err
	}
	return encode(r)
}

// tenantOf reads TenantField from a role's custom fields.
func tenantOf(fields map[string]any) string {
	s, _ := fields[TenantField].(string)
	return s
}

// CheckTopLevel says whether exported-and-signed metadata of a top-level
// role (targets, snapshot or timestamp) carries a threshold of the
// signatures root requires for it: the last step of a ceremony for a
// role whose key is kept offline too.
func CheckTopLevel(root *Root, data []byte) error {
	var probe struct {
		Signed struct {
			Type string `json:"_type"`
		} `json:"signed"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return fmt.Errorf("check role: %w", err)
	}
	var err error
	switch probe.Signed.Type {
	case metadata.TARGETS:
		err = checkWith[metadata.TargetsType](root, metadata.TARGETS, data)
	case metadata.SNAPSHOT:
		err = checkWith[metadata.SnapshotType](root, metadata.SNAPSHOT, data)
	case metadata.TIMESTAMP:
		err = checkWith[metadata.TimestampType](root, metadata.TIMESTAMP, data)
	default:
		return fmt.Errorf("check role: type %q is not targets, snapshot or timestamp", probe.Signed.Type)
	}
	if err != nil {
		return fmt.Errorf("check %s: %w", probe.Signed.Type, err)
	}
	return nil
}

func checkWith[T metadata.Roles](root *Root, role string, data []byte) error {
	m, err := (&metadata.Metadata[T]{}).FromBytes(data)
	if err != nil {
		return err
	}
	return root.VerifyDelegate(role, m)
}
