package kv

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/store"
)

var _ store.Pruner = (*Store)(nil)

// PruneSnapshots deletes the tenant's oldest snapshots (record, envelope
// and index entries) in one transaction of at most limit deletions: every
// snapshot older than both the keep newest and the oldest of pinned (ids
// of snapshots still needed; unknown ids pin nothing). The newest is never
// deleted. It returns how many it deleted; the caller repeats while it
// deletes limit.
func (db *Store) PruneSnapshots(ctx context.Context, tenantID string, keep int, pinned []string, limit int) (int, error) {
	if keep < 1 || limit < 1 {
		return 0, catalog.Invalid("keep", "keep and limit must be at least 1")
	}
	n := 0
	err := db.update(ctx, func(w *wtx) error {
		n = 0
		latest := lastSnapshotID(w.Tx, tenantID)
		if latest == nil {
			return nil
		}
		var head catalog.Snapshot
		if err := mustGet(w.Tx, bSnapshots, "snapshot", string(latest), &head); err != nil {
			return err
		}
		floor := head.Sequence - int64(keep) + 1
		for _, id := range pinned {
			var s catalog.Snapshot
			ok, err := getJSON(w.Tx, bSnapshots, []byte(id), &s)
			if err != nil {
				return err
			}
			if ok && s.TenantID == tenantID && s.Sequence < floor {
				floor = s.Sequence
			}
		}
		pfx := prefix(tenantID)
		type victim struct {
			idxKey []byte
			id     string
			seq    int64
		}
		var victims []victim
		c := w.Bucket(iSnapSeq).Cursor()
		for k, v := c.Seek(pfx); k != nil && bytes.HasPrefix(k, pfx) && len(victims) < limit; k, v = c.Next() {
			rest := k[len(pfx):]
			if len(rest) != 8 {
				return fmt.Errorf("snapshot index key %q is malformed", k)
			}
			seq := int64(binary.BigEndian.Uint64(rest))
			if seq >= floor {
				break
			}
			victims = append(victims, victim{idxKey: bytes.Clone(k), id: string(v), seq: seq})
		}
		if len(victims) == 0 {
			return nil
		}
		for _, x := range victims {
			if err := w.Bucket(bSnapshots).Delete([]byte(x.id)); err != nil {
				return err
			}
			if err := w.Bucket(bEnvelopes).Delete([]byte(x.id)); err != nil {
				return err
			}
			if err := w.Bucket(iSnapSeq).Delete(x.idxKey); err != nil {
				return err
			}
			if err := w.Bucket(iSnapTenant).Delete(key(tenantID, x.id)); err != nil {
				return err
			}
		}
		n = len(victims)
		return w.event(tenantID, "snapshot.pruned", map[string]any{
			"tenant_id": tenantID, "count": n, "from_sequence": victims[0].seq, "to_sequence": victims[n-1].seq,
		})
	})
	return n, err
}

// TUFNames lists the names of scope's files that start with pfx, in
// order, at most limit of them after the name after ("" from the start).
func (db *Store) TUFNames(ctx context.Context, scope, pfx, after string, limit int) ([]string, error) {
	if err := checkTUFKey("scope", scope); err != nil {
		return nil, err
	}
	var out []string
	err := db.view(ctx, func(tx Tx) error {
		sp := prefix(scope)
		start := append(bytes.Clone(sp), pfx...)
		if after != "" {
			start = append(append(bytes.Clone(sp), after...), 0) // the first key past after
		}
		c := tx.Bucket(bTUFFiles).Cursor()
		for k, _ := c.Seek(start); k != nil && bytes.HasPrefix(k, sp) && len(out) < limit; k, _ = c.Next() {
			name := string(k[len(sp):])
			if !strings.HasPrefix(name, pfx) {
				break
			}
			out = append(out, name)
		}
		return nil
	})
	return out, err
}

// DeleteTUFFiles deletes files of scope in one transaction, except those
// a set of the scope names (they are current). It returns how many it
// deleted.
func (db *Store) DeleteTUFFiles(ctx context.Context, scope string, names []string) (int, error) {
	if err := checkTUFKey("scope", scope); err != nil {
		return 0, err
	}
	n := 0
	err := db.update(ctx, func(w *wtx) error {
		n = 0
		current := map[string]bool{}
		sp := prefix(scope)
		c := w.Bucket(bTUFSets).Cursor()
		for k, v := c.Seek(sp); k != nil && bytes.HasPrefix(k, sp); k, v = c.Next() {
			var list []string
			if err := json.Unmarshal(v, &list); err != nil {
				return fmt.Errorf("tuf set %q: %w", k, err)
			}
			for _, n := range list {
				current[n] = true
			}
		}
		b := w.Bucket(bTUFFiles)
		for _, name := range names {
			k := key(scope, name)
			if current[name] || b.Get(k) == nil {
				continue
			}
			if err := b.Delete(k); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}
