package sync_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"testing"

	"github.com/outpost/outpost/internal/bundle"
	"github.com/outpost/outpost/internal/snapshot"
	"github.com/outpost/outpost/internal/sync"
	"github.com/outpost/outpost/internal/sync/synctest"
)

type entry struct {
	name string
	data []byte
	typ  byte
}

func rawTar(t *testing.T, entries []entry, end bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		hdr := &tar.Header{Name: e.name, Size: int64(len(e.data)), Mode: 0o644, Typeflag: typ}
		if typ != tar.TypeReg {
			hdr.Size = 0
			hdr.Linkname = "/etc/passwd"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if typ == tar.TypeReg {
			tw.Write(e.data)
		}
	}
	if end {
		tw.Close()
	} else {
		tw.Flush()
	}
	return buf.Bytes()
}

func TestSyncer_Import(t *testing.T) {
	r := newRig(t)
	a := synctest.Art{ID: "art_a", Data: synctest.Random(70 << 10)}
	b := synctest.Art{ID: "art_b", Data: synctest.Random(1000)}
	env1 := r.v.Sign(t, r.v.Manifest(1, []synctest.Art{a}))
	env2 := r.v.Sign(t, r.v.Manifest(2, []synctest.Art{a, b}))
	s := r.syncer(nil)
	ctx := context.Background()

	t.Run("dry run writes nothing", func(t *testing.T) {
		var buf bytes.Buffer
		w := bundle.NewWriter(&buf)
		w.WriteSnapshot(env1)
		w.WriteArtifact(synctest.SHA(a.Data), int64(len(a.Data)), bytes.NewReader(a.Data))
		w.Close()
		rep, err := s.Import(ctx, &buf, true)
		if err != nil || !rep.Changed || rep.Imported != 1 {
			t.Fatalf("dry run = %+v, %v", rep, err)
		}
		if r.heldSeq(t) != 0 || r.cache.Has(synctest.SHA(a.Data), int64(len(a.Data))) {
			t.Error("dry run changed the mirror")
		}
	})
	t.Run("full bundle", func(t *testing.T) {
		var buf bytes.Buffer
		w := bundle.NewWriter(&buf)
		w.WriteSnapshot(env1)
		w.WriteArtifact(synctest.SHA(a.Data), int64(len(a.Data)), bytes.NewReader(a.Data))
		w.Close()
		rep, err := s.Import(ctx, &buf, false)
		if err != nil || !rep.Changed || rep.Imported != 1 || r.heldSeq(t) != 1 {
			t.Fatalf("import = %+v, %v; held %d", rep, err, r.heldSeq(t))
		}
	})
	t.Run("a corrupt gzip bundle is refused", func(t *testing.T) {
		rep, err := s.Import(ctx, bytes.NewReader([]byte{0x1f, 0x8b, 0, 0, 0}), false)
		if err == nil || rep.Changed || r.heldSeq(t) != 1 {
			t.Fatalf("import = %+v, %v; held %d; want a refusal and 1 held", rep, err, r.heldSeq(t))
		}
	})
	t.Run("since bundle relies on the cache (gzipped)", func(t *testing.T) {
		var plain bytes.Buffer
		w := bundle.NewWriter(&plain)
		w.WriteSnapshot(env2)
		w.WriteArtifact(synctest.SHA(b.Data), int64(len(b.Data)), bytes.NewReader(b.Data))
		w.Close()
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.Write(plain.Bytes())
		zw.Close()
		rep, err := s.Import(ctx, &buf, false)
		if err != nil || rep.Imported != 1 || rep.Cached != 1 || r.heldSeq(t) != 2 {
			t.Fatalf("import = %+v, %v; held %d", rep, err, r.heldSeq(t))
		}
	})
}

func TestSyncer_ImportAttacks(t *testing.T) {
	v := synctest.NewVendor(t)
	a := synctest.Art{ID: "art_a", Data: []byte("artifact a bytes")}
	b := synctest.Art{ID: "art_b", Data: []byte("artifact b bytes")}
	stranger := []byte("not in the manifest")
	env := v.Sign(t, v.Manifest(1, []synctest.Art{a, b}))
	envName := bundle.EnvelopeName
	art := func(x synctest.Art) entry { return entry{name: "artifacts/" + synctest.SHA(x.Data), data: x.Data} }
	full := rawTar(t, []entry{{name: envName, data: env}, art(a), art(b)}, true)
	wrong := append([]byte(nil), b.Data...)
	wrong[0] ^= 1

	tests := []struct {
		name   string
		bundle []byte
		want   error
	}{
		{"dot dot", rawTar(t, []entry{{name: envName, data: env}, art(a), {name: "artifacts/../../etc/" + synctest.SHA(b.Data), data: b.Data}}, true), bundle.ErrInvalid},
		{"absolute", rawTar(t, []entry{{name: envName, data: env}, art(a), {name: "/artifacts/" + synctest.SHA(b.Data), data: b.Data}}, true), bundle.ErrInvalid},
		{"duplicate", rawTar(t, []entry{{name: envName, data: env}, art(a), art(a), art(b)}, true), bundle.ErrInvalid},
		{"not in manifest", rawTar(t, []entry{{name: envName, data: env}, art(a), {name: "artifacts/" + synctest.SHA(stranger), data: stranger}, art(b)}, true), bundle.ErrInvalid},
		{"symlink", rawTar(t, []entry{{name: envName, data: env}, art(a), {name: "artifacts/" + synctest.SHA(b.Data), typ: tar.TypeSymlink}}, true), bundle.ErrInvalid},
		{"envelope not first", rawTar(t, []entry{art(a), {name: envName, data: env}, art(b)}, true), bundle.ErrInvalid},
		{"wrong bytes", rawTar(t, []entry{{name: envName, data: env}, art(a), {name: "artifacts/" + synctest.SHA(b.Data), data: wrong}}, true), bundle.ErrInvalid},
		{"truncated mid entry", full[:len(full)-1024-300], bundle.ErrInvalid},
		{"truncated at entry boundary", rawTar(t, []entry{{name: envName, data: env}, art(a), art(b)}, false), bundle.ErrInvalid},
		{"unsigned envelope", rawTar(t, []entry{{name: envName, data: synctest.NewVendor(t).Sign(t, v.Manifest(1, nil))}}, true), snapshot.ErrVerification},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t)
			r.v = v
			s := sync.New(nil, r.st, r.cache, sync.Config{Trust: v.Trust()})
			_, err := s.Import(context.Background(), bytes.NewReader(tt.bundle), false)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Import error = %v, want %v", err, tt.want)
			}
			if got := r.heldSeq(t); got != 0 {
				t.Errorf("held sequence = %d, want 0 (nothing committed)", got)
			}
			if tt.name == "dot dot" || tt.name == "absolute" {
				if r.cache.Has(synctest.SHA(b.Data), int64(len(b.Data))) {
					t.Error("the attacker's entry reached the cache")
				}
			}
		})
	}
	t.Run("the untouched bundle imports", func(t *testing.T) {
		r := newRig(t)
		s := sync.New(nil, r.st, r.cache, sync.Config{Trust: v.Trust()})
		if _, err := s.Import(context.Background(), bytes.NewReader(full), false); err != nil {
			t.Fatalf("Import: %v", err)
		}
		if got := r.heldSeq(t); got != 1 {
			t.Errorf("held sequence = %d, want 1", got)
		}
	})
}

func TestSyncer_ImportReportsTheSnapshot(t *testing.T) {
	r := newRig(t)
	a := synctest.Art{ID: "art_a", Data: synctest.Random(1000)}
	b := synctest.Art{ID: "art_b", Data: synctest.Random(2000)}
	revokedA := a
	revokedA.Revoked = true
	s := r.syncer(nil)
	ctx := context.Background()
	bundleOf := func(m *snapshot.Manifest, arts ...synctest.Art) *bytes.Buffer {
		var buf bytes.Buffer
		w := bundle.NewWriter(&buf)
		w.WriteSnapshot(r.v.Sign(t, m))
		for _, x := range arts {
			w.WriteArtifact(synctest.SHA(x.Data), int64(len(x.Data)), bytes.NewReader(x.Data))
		}
		w.Close()
		return &buf
	}
	if _, err := s.Import(ctx, bundleOf(r.v.Manifest(1, []synctest.Art{a}), a), false); err != nil {
		t.Fatal(err)
	}
	m2 := r.v.Manifest(2, []synctest.Art{revokedA, b})
	rep, err := s.Import(ctx, bundleOf(m2, b), true)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Releases != 1 || !rep.ExpiresAt.Equal(m2.ExpiresAt) || len(rep.Withdrawn) != 1 || rep.Withdrawn[0] != "prd_1/stable/1.0.0" {
		t.Errorf("got releases %d, expires %v, withdrawn %v; want 1, %v, [prd_1/stable/1.0.0]", rep.Releases, rep.ExpiresAt, rep.Withdrawn, m2.ExpiresAt)
	}
}
