package controlplane

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/tuf"
)

// Root ceremonies (docs/metadata.md, "The control plane"): the next root
// of every active tenant is exported unsigned in one file, signed with
// each root key wherever it is kept (SignRoots needs no control plane),
// and imported once a threshold has signed.

// RootCeremony is the file a ceremony passes around: each tenant's next
// root, as tuf.Export writes it, with the signatures made so far.
type RootCeremony struct {
	Roots map[string]json.RawMessage `json:"roots"` // tenant id -> root
}

// ErrOfflineRoot says the root keys are not on the control plane: a
// rotation needs a ceremony (export, sign, import).
var ErrOfflineRoot = errors.New("the root keys are offline: run `controlplane root export --out unsigned.json`, `controlplane root sign --key FILE` with a threshold of root keys, then `controlplane root import signed.json`")

// ExportRoots returns the next root of every active tenant, unsigned,
// with the current keys: version 1 for a tenant without a root.
func (a *App) ExportRoots(ctx context.Context) (*RootCeremony, error) {
	t := a.tuf
	if t == nil {
		return nil, ErrNoTUF
	}
	c := &RootCeremony{Roots: map[string]json.RawMessage{}}
	err := a.eachActiveTenant(ctx, func(tenantID string) error {
		_, next, err := t.nextRoot(ctx, tenantID, a.now())
		if err != nil {
			return err
		}
		data, err := tuf.Export(next)
		if err != nil {
			return err
		}
		c.Roots[tenantID] = data
		return nil
	})
	return c, err
}

// SignRoots adds signer's signature to every root of c: one key holder's
// step of a ceremony, on any machine.
func SignRoots(ctx context.Context, c *RootCeremony, signer tuf.Signer) error {
	for _, tenantID := range slices.Sorted(maps.Keys(c.Roots)) {
		sig, err := tuf.SignExported(ctx, c.Roots[tenantID], signer)
		if err != nil {
			return fmt.Errorf("sign root of %s: %w", tenantID, err)
		}
		r, _, err := tuf.AddSignatures[metadata.RootType](c.Roots[tenantID], sig)
		if err != nil {
			return fmt.Errorf("sign root of %s: %w", tenantID, err)
		}
		if c.Roots[tenantID], err = tuf.Export(r); err != nil {
			return err
		}
	}
	return nil
}

// ImportRoots checks every root of c (tuf.CheckRoot: a threshold of its
// own root keys and of the previous root's, the next version, the same
// tenant) and, only if all pass, publishes them; each tenant's metadata
// is then re-signed with the keys the new root lists. It returns how
// many roots it published.
func (a *App) ImportRoots(ctx context.Context, c *RootCeremony) (int, error) {
	t := a.tuf
	if t == nil {
		return 0, ErrNoTUF
	}
	type checked struct {
		root *tuf.Root
		data []byte
	}
	online, err := t.o.Keys.RootSigners()
	if err != nil {
		return 0, err
	}
	ok := map[string]checked{}
	for _, tenantID := range slices.Sorted(maps.Keys(c.Roots)) {
		if _, err := a.Tenant(ctx, tenantID); err != nil {
			return 0, err
		}
		// Root keys still held online sign too: after a rekey they are
		// the previous root's threshold.
		var sigs []metadata.Signature
		for _, s := range online {
			sig, err := tuf.SignExported(ctx, c.Roots[tenantID], s)
			if err != nil {
				return 0, catalog.Invalid("roots", "tenant %s: %v", tenantID, err)
			}
			sigs = append(sigs, sig)
		}
		r, data, err := tuf.AddSignatures[metadata.RootType](c.Roots[tenantID], sigs...)
		if err != nil {
			return 0, catalog.Invalid("roots", "tenant %s: %v", tenantID, err)
		}
		prev, err := t.latestRoot(ctx, tenantID)
		if err != nil {
			return 0, err
		}
		if err := tuf.CheckRoot(prev, r); err != nil {
			return 0, catalog.Invalid("roots", "tenant %s: %v", tenantID, err)
		}
		ok[tenantID] = checked{r, data}
	}
	for _, tenantID := range slices.Sorted(maps.Keys(ok)) {
		if err := a.publishRoot(ctx, tenantID, ok[tenantID].root, ok[tenantID].data); err != nil {
			return 0, err
		}
	}
	return len(ok), nil
}

// publishRoot stores a checked root, then rebuilds the tenant from the
// current catalog (a new snapshot): its top-level metadata is re-signed
// with the keys the new root lists, and its products with the current
// product key. Products are shared, so they are only ever updated from a
// fresh view, never from a tenant's older snapshot.
func (a *App) publishRoot(ctx context.Context, tenantID string, r *tuf.Root, data []byte) error {
	t := a.tuf
	t.mu.Lock()
	err := t.putRoot(ctx, tenantID, r, data)
	if err == nil {
		t.resign[tenantID] = true
	}
	t.mu.Unlock()
	if err != nil {
		return err
	}
	if _, err := a.store.LatestSnapshotHead(ctx, tenantID); catalog.ErrorCode(err) == catalog.ENOTFOUND {
		return nil // nothing published yet: the first build signs with the new keys
	} else if err != nil {
		return err
	}
	_, err = a.buildSnapshot(ctx, tenantID)
	return err
}

// RotateRoots publishes the next root of every tenant that has one,
// with the current keys (after tufkeys.Dir.Replace, the new online key),
// signed by the root keys held online. With the root keys offline it
// returns ErrOfflineRoot and changes nothing.
func (a *App) RotateRoots(ctx context.Context) (int, error) {
	t := a.tuf
	if t == nil {
		return 0, ErrNoTUF
	}
	n := 0
	err := a.eachActiveTenant(ctx, func(tenantID string) error {
		prev, next, err := t.nextRoot(ctx, tenantID, a.now())
		if err != nil {
			return err
		}
		data, ok, err := t.signOnline(ctx, prev, next)
		if err != nil {
			return err
		}
		if !ok {
			return ErrOfflineRoot
		}
		if err := a.publishRoot(ctx, tenantID, next, data); err != nil {
			return err
		}
		n++
		return nil
	})
	return n, err
}
