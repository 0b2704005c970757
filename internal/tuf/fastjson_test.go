package tuf

import (
	"encoding/json"
	"strings"
	"testing"

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
		case strings.Count(x.Path, "-") >= 2: // a bin
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
