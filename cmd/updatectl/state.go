package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/outpost/outpost/internal/fsutil"
)

// leaseState is updatectl's state file: the holder secret of each lease it
// took, by server, entitlement, subject type and subject. It is written
// atomically with mode 0600; the secrets in it are what renewing and
// releasing those leases need.
type leaseState struct {
	Leases map[string]heldLease `json:"leases"`
}

// heldLease is one lease updatectl holds.
type heldLease struct {
	LeaseID      string `json:"lease_id"`
	HolderSecret string `json:"holder_secret"`
}

func leaseKey(server, entitlementID, subjectType, subjectID string) string {
	return server + " " + entitlementID + " " + subjectType + " " + subjectID
}

// defaultStateFile is $XDG_STATE_HOME/outpost/updatectl.json (or
// ~/.local/state/outpost/updatectl.json).
func defaultStateFile() string {
	dir := os.Getenv("XDG_STATE_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "updatectl-state.json"
		}
		dir = filepath.Join(home, ".local", "state")
	}
	return filepath.Join(dir, "outpost", "updatectl.json")
}

func readLeaseState(path string) (*leaseState, error) {
	st := &leaseState{Leases: map[string]heldLease{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state file: %w", err)
	}
	if err := json.Unmarshal(b, st); err != nil {
		return nil, fmt.Errorf("state file %s: %w", path, err)
	}
	if st.Leases == nil {
		st.Leases = map[string]heldLease{}
	}
	return st, nil
}

func (st *leaseState) write(path string) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("write state file: %w", err)
	}
	if err := fsutil.WriteFile(path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("write state file: %w", err)
	}
	return nil
}
