package state

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"go.etcd.io/bbolt"

	"github.com/outpost/outpost/internal/tuf"
)

// tufPruneBatch bounds one pruning transaction.
const tufPruneBatch = 512

// PruneTUF deletes the published TUF files (tuf_files) no kept
// repository version needs: it keeps every root version, the snapshot
// versions from the served one's retain−1 predecessors upward (newer
// ones too: trusted, waiting for their commit), the role versions those
// snapshots name and the documents those roles name. The trusted state
// (tuf_trusted) and the served timestamp are untouched. Deletions run in
// transactions of at most 512 files. It returns how many it deleted.
func (s *State) PruneTUF() (int, error) {
	served, err := s.servedSnapshotVersion()
	if err != nil || served == 0 {
		return 0, err
	}
	floor := served - int64(s.retain) + 1
	keep := map[string]bool{}
	var drop []string
	err = s.db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bktTUFFiles)
		// Snapshots first: they name the role versions to keep.
		var roles []string
		c := b.Cursor()
		for k, v := c.Seek([]byte("metadata/")); k != nil && strings.HasPrefix(string(k), "metadata/"); k, v = c.Next() {
			ver, role := publishedVersion(string(k))
			if role != "snapshot" || ver < floor {
				continue
			}
			keep[string(k)] = true
			var sn struct {
				Signed struct {
					Meta map[string]struct {
						Version int64 `json:"version"`
					} `json:"meta"`
				} `json:"signed"`
			}
			if err := json.Unmarshal(v, &sn); err != nil {
				return fmt.Errorf("%s: %w", k, err)
			}
			for name, m := range sn.Signed.Meta {
				n := tuf.MetadataPath(strings.TrimSuffix(name, ".json"), m.Version)
				if !keep[n] {
					keep[n] = true
					roles = append(roles, n)
				}
			}
		}
		// Documents: named by the kept top-level targets and product
		// roles (a hashed bin names artifacts only: not parsed).
		for _, n := range roles {
			_, role := publishedVersion(n)
			if role != "targets" && !strings.HasPrefix(role, "p-") {
				continue
			}
			v := b.Get([]byte(n))
			if v == nil {
				continue
			}
			var tg struct {
				Signed struct {
					Targets map[string]struct {
						Hashes map[string]string `json:"hashes"`
					} `json:"targets"`
				} `json:"signed"`
			}
			if err := json.Unmarshal(v, &tg); err != nil {
				return fmt.Errorf("%s: %w", n, err)
			}
			for path, t := range tg.Signed.Targets {
				if sum := t.Hashes["sha256"]; sum != "" {
					keep[tuf.TargetPath(path, sum)] = true
				}
			}
		}
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			name := string(k)
			if keep[name] {
				continue
			}
			if _, role := publishedVersion(name); role == "root" {
				continue // every root: clients walk the chain
			}
			drop = append(drop, name)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("prune tuf files: %w", err)
	}
	n := 0
	for len(drop) > 0 {
		batch := drop[:min(len(drop), tufPruneBatch)]
		err := s.db.Update(func(tx *bbolt.Tx) error {
			b := tx.Bucket(bktTUFFiles)
			for _, name := range batch {
				if err := b.Delete([]byte(name)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return n, fmt.Errorf("prune tuf files: %w", err)
		}
		n += len(batch)
		drop = drop[len(batch):]
	}
	return n, nil
}

// servedSnapshotVersion is the snapshot version the served timestamp
// names (0 when none is served).
func (s *State) servedSnapshotVersion() (int64, error) {
	ts, err := s.ServedTUFTimestamp()
	if err != nil || ts == nil {
		return 0, err
	}
	var t struct {
		Signed struct {
			Meta map[string]struct {
				Version int64 `json:"version"`
			} `json:"meta"`
		} `json:"signed"`
	}
	if err := json.Unmarshal(ts, &t); err != nil {
		return 0, fmt.Errorf("served timestamp: %w", err)
	}
	return t.Signed.Meta["snapshot.json"].Version, nil
}

// publishedVersion parses "metadata/<v>.<role>.json" (0, "" otherwise).
func publishedVersion(name string) (int64, string) {
	rest, ok := strings.CutPrefix(name, "metadata/")
	if !ok {
		return 0, ""
	}
	vs, role, ok := strings.Cut(rest, ".")
	if !ok {
		return 0, ""
	}
	v, err := strconv.ParseInt(vs, 10, 64)
	if err != nil || v <= 0 {
		return 0, ""
	}
	role, ok = strings.CutSuffix(role, ".json")
	if !ok {
		return 0, ""
	}
	return v, role
}
