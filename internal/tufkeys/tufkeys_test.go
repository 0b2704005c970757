package tufkeys_test

import (
	"path/filepath"
	"testing"

	"github.com/outpost/outpost/internal/tufkeys"
)

func TestDir_InitReplace(t *testing.T) {
	t.Run("online root", func(t *testing.T) {
		d := tufkeys.Dir(filepath.Join(t.TempDir(), "tuf"))
		if d.Exists() {
			t.Fatal("an empty directory holds a root")
		}
		if _, err := d.Init(1, 1, ""); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Init(1, 1, ""); err == nil {
			t.Fatal("a second init was accepted")
		}
		spec, err := d.Spec()
		if err != nil {
			t.Fatal(err)
		}
		if spec.Threshold != 1 || len(spec.Keys) != 1 {
			t.Fatalf("spec %d of %d, want 1 of 1", spec.Threshold, len(spec.Keys))
		}
		root, err := d.RootSigners()
		if err != nil || len(root) != 1 {
			t.Fatalf("online root signers: %d, %v", len(root), err)
		}
		for _, role := range tufkeys.Roles {
			s, err := d.Signers(role)
			if err != nil || len(s) != 1 {
				t.Fatalf("%s signers: %d, %v", role, len(s), err)
			}
		}
	})
	t.Run("offline root", func(t *testing.T) {
		d := tufkeys.Dir(filepath.Join(t.TempDir(), "tuf"))
		files, err := d.Init(2, 3, filepath.Join(t.TempDir(), "offline"))
		if err != nil {
			t.Fatal(err)
		}
		if len(files) != 3 {
			t.Fatalf("key files %v, want 3", files)
		}
		if root, err := d.RootSigners(); err != nil || len(root) != 0 {
			t.Fatalf("online root signers of an offline root: %d, %v", len(root), err)
		}
	})
	t.Run("replace retires the old key", func(t *testing.T) {
		d := tufkeys.Dir(filepath.Join(t.TempDir(), "tuf"))
		if _, err := d.Init(1, 1, ""); err != nil {
			t.Fatal(err)
		}
		old, _ := d.Signers(tufkeys.Timestamp)
		if err := d.Replace(tufkeys.Timestamp); err != nil {
			t.Fatal(err)
		}
		now, _ := d.Signers(tufkeys.Timestamp)
		all, _ := d.AllSigners(tufkeys.Timestamp)
		if len(now) != 1 || now[0].KeyID() == old[0].KeyID() || len(all) != 2 {
			t.Fatalf("after replace: %d active (same as before: %v), %d in all", len(now), now[0].KeyID() == old[0].KeyID(), len(all))
		}
		for _, bad := range []string{"root", "", "../x"} {
			if err := d.Replace(bad); err == nil {
				t.Errorf("replace %q was accepted", bad)
			}
		}
	})
	t.Run("bad thresholds", func(t *testing.T) {
		for _, c := range [][2]int{{0, 1}, {2, 1}, {1, 0}} {
			d := tufkeys.Dir(filepath.Join(t.TempDir(), "tuf"))
			if _, err := d.Init(c[0], c[1], ""); err == nil {
				t.Errorf("threshold %d of %d was accepted", c[0], c[1])
			}
		}
	})
}
