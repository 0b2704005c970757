package tuf

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/snapshot/snapshottest"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// TestFastCanonical_MatchesGoTUF checks that every bin, snapshot and
// timestamp written directly carries, as its signed part, exactly the
// canonical JSON go-tuf recomputes from the parsed file.
func TestFastCanonical_MatchesGoTUF(t *testing.T) {
	f := newFixture(t, snapshottest.TenantID, ProductOptions{PerBin: 4})
	m := view(2, 30, 2)
	m.Releases[3].Metadata = json.RawMessage(`{"notes":"plain"}`)
	m.Releases[4].RevokedAt = &snapshottest.Now
	m.Releases[4].Status = "REVOKED"
	files := f.build(m)
	checked := 0
	for _, x := range files {
		if !strings.HasPrefix(x.Path, "metadata/") {
			continue
		}
		var env struct {
			Signed json.RawMessage `json:"signed"`
		}
		if err := json.Unmarshal(x.Data, &env); err != nil {
			t.Fatal(err)
		}
		var got []byte
		var err error
		switch {
		case strings.HasSuffix(x.Path, "timestamp.json"):
			var md *metadata.Metadata[metadata.TimestampType]
			if md, err = metadata.Timestamp().FromBytes(x.Data); err == nil {
				got, err = canonical(md)
			}
		case strings.HasSuffix(x.Path, ".snapshot.json"):
			var md *metadata.Metadata[metadata.SnapshotType]
			if md, err = metadata.Snapshot().FromBytes(x.Data); err == nil {
				got, err = canonical(md)
			}
		case strings.Contains(x.Path, ".b-"): // a bin
			var md *metadata.Metadata[metadata.TargetsType]
			if md, err = metadata.Targets().FromBytes(x.Data); err == nil {
				got, err = canonical(md)
			}
		default:
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", x.Path, err)
		}
		if string(got) != string(env.Signed) {
			t.Fatalf("%s: signed part is not canonical:\ngot  %.300s\nwant %.300s", x.Path, env.Signed, got)
		}
		checked++
	}
	if checked < 10 {
		t.Fatalf("checked %d files", checked)
	}
}

// TestVerifyFast_Refuses checks the fast targets verification against
// the refusals of go-tuf's UpdateDelegatedTargets.
func TestVerifyFast_Refuses(t *testing.T) {
	f := newFixture(t, snapshottest.TenantID, ProductOptions{PerBin: 4})
	m := view(1, 30, 1)
	files := f.build(m)
	pid := m.Products[0].ProductID
	var parent *Targets
	var binPath string
	for _, x := range files {
		if x.Path == MetadataPath(ProductRole(pid), 1) {
			var err error
			if parent, err = metadata.Targets().FromBytes(x.Data); err != nil {
				t.Fatal(err)
			}
		} else if strings.Contains(x.Path, ".b-") && binPath == "" {
			binPath = x.Path
		}
	}
	role := strings.TrimSuffix(strings.TrimPrefix(binPath, "metadata/1."), ".json")
	genuine := f.repo.get(binPath)
	if _, ok := fastParse(genuine); !ok {
		t.Fatalf("fastParse refused a generated bin %s", binPath)
	}
	otherKey := testSigner(t, 77)
	for _, tc := range []struct {
		name    string
		data    []byte
		role    string
		version int64
		now     time.Time
		want    error
	}{
		{"genuine", genuine, role, 1, f.now, nil},
		{"wrong version", genuine, role, 2, f.now, &metadata.ErrBadVersionNumber{}},
		{"expired", genuine, role, 1, f.now.Add(400 * 24 * time.Hour), &metadata.ErrExpiredMetadata{}},
		{"not delegated", genuine, BinPrefix("prd_other") + "-00", 1, f.now, &metadata.ErrValue{}},
		{"signed by another key", resign(t, f, binPath, func(*metadata.Metadata[metadata.TargetsType]) {}, otherKey), role, 1, f.now, &metadata.ErrUnsignedMetadata{}},
		{"bad signature", []byte(strings.Replace(string(genuine), `"sig":"`, `"sig":"00`, 1)), role, 1, f.now, &metadata.ErrUnsignedMetadata{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, ok := fastParse(tc.data)
			if !ok {
				t.Fatal("fastParse refused")
			}
			handled, err := verifyFast(r, parent, tc.role, tc.version, tc.now)
			if !handled {
				t.Fatal("not handled")
			}
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}
