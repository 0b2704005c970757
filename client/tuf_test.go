package client

import (
	"context"
	"errors"
	"testing"
)

func TestWithTUF_Options(t *testing.T) {
	tests := []struct {
		name           string
		tenant, dir    string
		wantErr        bool
		wantConfigured bool
	}{
		{"configured", "ten_1", t.TempDir(), false, true},
		{"no tenant", "", t.TempDir(), true, false},
		{"no state dir", "ten_1", "", true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New("http://127.0.0.1:1", WithTUF(tc.tenant, []byte("{}"), tc.dir))
			if got := err != nil; got != tc.wantErr {
				t.Fatalf("error %v, want error %v", err, tc.wantErr)
			}
			if err == nil && (c.tuf != nil) != tc.wantConfigured {
				t.Errorf("tuf configured %v, want %v", c.tuf != nil, tc.wantConfigured)
			}
		})
	}
	t.Run("refresh without WithTUF", func(t *testing.T) {
		c, err := New("http://127.0.0.1:1")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.RefreshTUF(context.Background()); !errors.Is(err, ErrConfig) {
			t.Errorf("got %v, want ErrConfig", err)
		}
	})
	t.Run("download of a decision not from Check", func(t *testing.T) {
		c, err := New("http://127.0.0.1:1", WithTUF("ten_1", []byte("{}"), t.TempDir()))
		if err != nil {
			t.Fatal(err)
		}
		d := &Decision{UpdateAvailable: true, Action: ActionDownload,
			Release:  &Release{ReleaseID: "rel_1", Version: "1.0.0"},
			Artifact: &Artifact{ArtifactID: "art_1", SHA256: "0000000000000000000000000000000000000000000000000000000000000000", URL: "/x"},
			Snapshot: &SnapshotRef{SnapshotID: "tuf-1"}}
		if err := c.Download(context.Background(), d, t.TempDir()+"/out", nil); !errors.Is(err, ErrConfig) {
			t.Errorf("got %v, want ErrConfig", err)
		}
	})
}
