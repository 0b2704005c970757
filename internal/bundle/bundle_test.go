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

// TestTUFBundle_Ack: the acknowledgement the manifest announces is read
// with the manifest, before any repository file; a bundle without one
// has none; an announced one that is missing refuses the bundle.
func TestTUFBundle_Ack(t *testing.T) {
	ack := []byte(`{"payloadType":"application/vnd.outpost.ack+json"}`)
	write := func(t *testing.T, withAck bool) []byte {
		t.Helper()
		var buf bytes.Buffer
		w, err := bundle.NewTUFWriter(&buf, bundle.TUFManifest{TenantID: "ten_1", Files: 1, Ack: withAck})
		if err != nil {
			t.Fatal(err)
		}
		if withAck {
			if err := w.WriteFile("metadata/timestamp.json", []byte("{}")); err == nil {
				t.Error("a file before the announced acknowledgement was written")
			}
			if err := w.WriteAck(ack); err != nil {
				t.Fatal(err)
			}
		} else if err := w.WriteAck(ack); err == nil {
			t.Error("an acknowledgement the manifest does not announce was written")
		}
		if err := w.WriteFile("metadata/timestamp.json", []byte("{}")); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	for _, withAck := range []bool{true, false} {
		t.Run(map[bool]string{true: "with", false: "without"}[withAck], func(t *testing.T) {
			r := bundle.NewReader(bytes.NewReader(write(t, withAck)))
			if _, err := r.TUFManifest(); err != nil {
				t.Fatal(err)
			}
			if got := r.Ack(); withAck != bytes.Equal(got, ack) || (!withAck && got != nil) {
				t.Errorf("Ack = %q, want it only with the acknowledgement", got)
			}
			f, err := r.NextFile()
			if err != nil || f.Path != "metadata/timestamp.json" {
				t.Fatalf("NextFile = %+v, %v", f, err)
			}
			if _, err := io.ReadAll(r.Body()); err != nil {
				t.Fatal(err)
			}
			if _, err := r.NextFile(); err != io.EOF {
				t.Fatalf("NextFile at the end = %v, want EOF", err)
			}
		})
	}
	t.Run("announced but missing", func(t *testing.T) {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, e := range []struct{ name, body string }{
			{bundle.TUFManifestName, `{"format":"tuf","tenant_id":"ten_1","files":1,"artifacts":0,"ack":true}`},
			{"metadata/timestamp.json", "{}"},
		} {
			tw.WriteHeader(&tar.Header{Name: e.name, Size: int64(len(e.body)), Mode: 0o644, Typeflag: tar.TypeReg})
			tw.Write([]byte(e.body))
		}
		tw.Close()
		_, err := bundle.NewReader(&buf).TUFManifest()
		if !errors.Is(err, bundle.ErrInvalid) || !strings.Contains(err.Error(), bundle.AckName) {
			t.Errorf("got %v, want the missing acknowledgement refused", err)
		}
	})
}
