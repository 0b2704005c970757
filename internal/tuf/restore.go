package tuf

import (
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// The builder's state lives in memory; these rebuild it from the files
// it published (e.g. when the control plane restarts), so the next
// build again ships only what changed.

// parseTargets parses a targets role the builder published.
func parseTargets(data []byte) (*Targets, error) {
	if fr, ok := fastParse(data); ok {
		return fr.t, nil
	}
	t, err := metadata.Targets().FromBytes(data)
	if err != nil {
		return nil, fmt.Errorf("parse targets: %w", err)
	}
	return t, nil
}

// entriesOf returns a role's targets as the builder compares them.
func entriesOf(t *Targets) []entry {
	out := make([]entry, 0, len(t.Signed.Targets))
	for p, tf := range t.Signed.Targets {
		e := entry{path: p, length: tf.Length, sha256: hex.EncodeToString(tf.Hashes["sha256"])}
		if tf.Custom != nil {
			e.custom = string(*tf.Custom)
		}
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b entry) int { return strings.Compare(a.path, b.path) })
	return out
}

// Restore loads a product's current metadata from its published files,
// as ProductSet.Files returned them: the product role, its bins (any
// order) and its document.
func (ps *ProductSet) Restore(productID string, files []File) error {
	name := ProductRole(productID)
	st := &productState{id: productID}
	var doc []byte
	bins := map[string]File{}
	for _, f := range files {
		if strings.HasPrefix(f.Path, TargetsDir+"/") {
			doc = f.Data
			continue
		}
		role, ok := roleOfPath(f.Path)
		if !ok {
			return fmt.Errorf("restore product %s: file %s", productID, f.Path)
		}
		if role == name {
			t, err := parseTargets(f.Data)
			if err != nil {
				return fmt.Errorf("restore product %s: %w", productID, err)
			}
			st.role = roleState{name: name, version: t.Signed.Version, expires: t.Signed.Expires, entries: entriesOf(t), data: f.Data}
			var ids []string
			for _, s := range t.Signatures {
				ids = append(ids, s.KeyID)
			}
			slices.Sort(ids)
			st.signedBy = strings.Join(ids, ",")
			if d := t.Signed.Delegations; d != nil && d.SuccinctRoles != nil {
				st.bitLength = d.SuccinctRoles.BitLength
			}
		} else {
			bins[role] = f
		}
	}
	if st.role.version == 0 || doc == nil {
		return fmt.Errorf("restore product %s: product role or document missing", productID)
	}
	st.doc = newDoc(ProductDoc(productID), doc)
	if !slices.Contains(st.role.entries, st.doc.entry()) {
		return fmt.Errorf("restore product %s: the document is not the one the role lists", productID)
	}
	if st.bitLength > 0 {
		st.bins = make([]roleState, 1<<st.bitLength)
		for i := range st.bins {
			bn := binName(BinPrefix(productID), st.bitLength, i)
			f, ok := bins[bn]
			if !ok {
				return fmt.Errorf("restore product %s: bin %s missing", productID, bn)
			}
			t, err := parseTargets(f.Data)
			if err != nil {
				return fmt.Errorf("restore product %s: %w", productID, err)
			}
			st.bins[i] = roleState{name: bn, version: t.Signed.Version, expires: t.Signed.Expires, entries: entriesOf(t), data: f.Data}
		}
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.products[productID] = st
	ps.prefixes[BinPrefix(productID)] = productID
	return nil
}

// roleOfPath returns the role of "metadata/<version>.<role>.json".
func roleOfPath(path string) (string, bool) {
	rest, ok := strings.CutPrefix(path, MetadataDir+"/")
	if !ok {
		return "", false
	}
	_, rest, ok = strings.Cut(rest, ".")
	if !ok {
		return "", false
	}
	return strings.CutSuffix(rest, ".json")
}

// RestoreState rebuilds a tenant's builder state from its published
// timestamp, snapshot, top-level targets and documents (by target path).
func RestoreState(tenantID string, timestamp, snap, targets []byte, docs map[string][]byte) (*State, error) {
	ts, err := metadata.Timestamp().FromBytes(timestamp)
	if err != nil {
		return nil, fmt.Errorf("restore state: timestamp: %w", err)
	}
	sn, err := metadata.Snapshot().FromBytes(snap)
	if err != nil {
		return nil, fmt.Errorf("restore state: snapshot: %w", err)
	}
	tg, err := metadata.Targets().FromBytes(targets)
	if err != nil {
		return nil, fmt.Errorf("restore state: targets: %w", err)
	}
	for role, fields := range map[string]map[string]any{"timestamp": ts.Signed.UnrecognizedFields, "snapshot": sn.Signed.UnrecognizedFields, "targets": tg.Signed.UnrecognizedFields} {
		if got := tenantOf(fields); got != tenantID {
			return nil, fmt.Errorf("restore state: %s is for tenant %q: %w", role, got, ErrWrongTenant)
		}
	}
	st := &State{
		TenantID:  tenantID,
		targets:   roleState{name: metadata.TARGETS, version: tg.Signed.Version, expires: tg.Signed.Expires, entries: entriesOf(tg), data: targets},
		snapshot:  roleState{name: metadata.SNAPSHOT, version: sn.Signed.Version, expires: sn.Signed.Expires, data: snap},
		timestamp: roleState{name: metadata.TIMESTAMP, version: ts.Signed.Version, expires: ts.Signed.Expires, data: timestamp},
		snapMeta:  map[string]int64{},
		docs:      map[string]docState{},
	}
	for name, mf := range sn.Signed.Meta {
		role, err := parseMetaName(name)
		if err != nil {
			return nil, fmt.Errorf("restore state: %w", err)
		}
		st.snapMeta[role] = mf.Version
	}
	for _, path := range slices.Sorted(maps.Keys(tg.Signed.Targets)) {
		data, ok := docs[path]
		if !ok {
			return nil, fmt.Errorf("restore state: document %s missing", path)
		}
		d := newDoc(path, data)
		if tg.Signed.Targets[path].VerifyLengthHashes(data) != nil {
			return nil, fmt.Errorf("restore state: document %s does not match its target", path)
		}
		st.docs[path] = d
	}
	if d := tg.Signed.Delegations; d != nil {
		for _, r := range d.Roles {
			pid, ok := strings.CutPrefix(r.Name, productRolePrefix)
			if !ok {
				return nil, fmt.Errorf("restore state: delegated role %s", r.Name)
			}
			st.visible = append(st.visible, pid)
			ids := slices.Clone(r.KeyIDs)
			slices.Sort(ids)
			st.prodKeys = strings.Join(ids, ",")
		}
	}
	slices.Sort(st.visible)
	return st, nil
}
