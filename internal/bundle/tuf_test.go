package bundle_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/outpost/outpost/internal/bundle"
)

func TestTUFBundle_RoundTrip(t *testing.T) {
	var buf bytes.Buffer
	w, err := bundle.NewTUFWriter(&buf, bundle.TUFManifest{TenantID: "ten_1", SnapshotVersion: 3, Files: 2, Artifacts: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteArtifact("targets/p/x.ra", 1, strings.NewReader("x")); err == nil {
		t.Error("artifact before the files: want an error")
	}
	for _, p := range []string{"metadata/timestamp.json", "metadata/3.snapshot.json"} {
		if err := w.WriteFile(p, []byte("{}")); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.WriteFile("metadata/4.snapshot.json", []byte("{}")); err == nil {
		t.Error("a file over the count: want an error")
	}
	if err := w.WriteArtifact("targets/p/abc.ra_1", 3, strings.NewReader("abc")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	r := bundle.NewReader(bytes.NewReader(buf.Bytes()))
	m, err := r.TUFManifest()
	if err != nil || m.TenantID != "ten_1" || m.Format != bundle.FormatTUF || m.Files != 2 || m.Artifacts != 1 {
		t.Fatalf("manifest %+v, %v", m, err)
	}
	var got []string
	for {
		e, err := r.NextFile()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r.Body())
		got = append(got, e.Path+"="+string(b)+map[bool]string{true: " (artifact)"}[e.Artifact])
	}
	want := "metadata/timestamp.json={},metadata/3.snapshot.json={},targets/p/abc.ra_1=abc (artifact)"
	if strings.Join(got, ",") != want {
		t.Errorf("got %v, want %s", got, want)
	}
}

func TestTUFBundle_Schema1Refused(t *testing.T) {
	var tufb bytes.Buffer
	w, _ := bundle.NewTUFWriter(&tufb, bundle.TUFManifest{TenantID: "ten_1", Files: 1})
	w.WriteFile("metadata/timestamp.json", []byte("{}"))
	w.Close()
	// A schema 1 bundle: the envelope first.
	var dsse bytes.Buffer
	dw := tar.NewWriter(&dsse)
	dw.WriteHeader(&tar.Header{Name: bundle.EnvelopeName, Size: 2, Mode: 0o644, Typeflag: tar.TypeReg})
	dw.Write([]byte("{}"))
	dw.Close()

	t.Run("tuf bundle", func(t *testing.T) {
		if _, err := bundle.NewReader(bytes.NewReader(tufb.Bytes())).TUFManifest(); err != nil {
			t.Errorf("got %v", err)
		}
	})
	t.Run("schema 1 bundle", func(t *testing.T) {
		_, err := bundle.NewReader(bytes.NewReader(dsse.Bytes())).TUFManifest()
		if !errors.Is(err, bundle.ErrWrongFormat) || !strings.Contains(err.Error(), "schema 1") || !strings.Contains(err.Error(), "controlplane bundle export") {
			t.Errorf("got %v, want ErrWrongFormat naming schema 1 and the export", err)
		}
	})
}

func TestTUFBundle_ReaderRefuses(t *testing.T) {
	build := func(man bundle.TUFManifest, names ...string) []byte {
		var buf bytes.Buffer
		w, err := bundle.NewTUFWriter(&buf, bundle.TUFManifest{TenantID: "ten_1", Files: len(names)})
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			if err := w.WriteFile(n, []byte("{}")); err != nil {
				t.Fatal(err)
			}
		}
		w.Close()
		// Re-declare the counts the reader sees.
		return bytes.Replace(buf.Bytes(), []byte(`"files":`+string(rune('0'+len(names)))), []byte(`"files":`+string(rune('0'+man.Files))), 1)
	}
	cases := []struct {
		name string
		b    []byte
		want string
	}{
		{"fewer entries than counted", build(bundle.TUFManifest{Files: 3}, "metadata/timestamp.json", "metadata/1.root.json"), "the manifest counts"},
		{"more entries than counted", build(bundle.TUFManifest{Files: 1}, "metadata/timestamp.json", "metadata/1.root.json"), "more entries"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := bundle.NewReader(bytes.NewReader(tc.b))
			if _, err := r.TUFManifest(); err != nil {
				t.Fatal(err)
			}
			var err error
			for err == nil {
				_, err = r.NextFile()
			}
			if !errors.Is(err, bundle.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want ErrInvalid naming %q", err, tc.want)
			}
		})
	}
	t.Run("a name outside metadata/ and targets/", func(t *testing.T) {
		var buf bytes.Buffer
		w, _ := bundle.NewTUFWriter(&buf, bundle.TUFManifest{TenantID: "ten_1", Files: 1})
		if err := w.WriteFile("etc/passwd", nil); err == nil {
			t.Error("the writer accepted etc/passwd")
		}
	})
}
