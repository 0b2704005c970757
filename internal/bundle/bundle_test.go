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

func TestBundle_RoundTrip(t *testing.T) {
	env := []byte(`{"payloadType":"x"}`)
	arts := map[string][]byte{strings.Repeat("a", 64): []byte("one"), strings.Repeat("b", 64): bytes.Repeat([]byte{0}, 3000)}
	var buf bytes.Buffer
	w := bundle.NewWriter(&buf)
	if err := w.WriteArtifact(strings.Repeat("a", 64), 3, strings.NewReader("one")); err == nil {
		t.Error("artifact before snapshot: want an error")
	}
	if err := w.WriteSnapshot(env); err != nil {
		t.Fatal(err)
	}
	for _, sha := range []string{strings.Repeat("a", 64), strings.Repeat("b", 64)} {
		if err := w.WriteArtifact(sha, int64(len(arts[sha])), bytes.NewReader(arts[sha])); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.WriteArtifact(strings.Repeat("a", 64), 3, strings.NewReader("one")); err == nil {
		t.Error("duplicate artifact: want an error")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	whole := buf.Bytes()

	r := bundle.NewReader(bytes.NewReader(whole), 0)
	got, err := r.Envelope()
	if err != nil || !bytes.Equal(got, env) {
		t.Fatalf("Envelope = %q, %v", got, err)
	}
	n := 0
	for {
		e, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r.Body())
		if !bytes.Equal(b, arts[e.SHA256]) || int64(len(b)) != e.Size {
			t.Errorf("entry %s: got %d bytes", e.SHA256, len(b))
		}
		n++
	}
	if n != 2 {
		t.Errorf("entries = %d, want 2", n)
	}

	t.Run("truncated at the end marker", func(t *testing.T) {
		r := bundle.NewReader(bytes.NewReader(whole[:len(whole)-1024]), 0)
		r.Envelope()
		var err error
		for err == nil {
			_, err = r.Next()
			io.Copy(io.Discard, r.Body())
		}
		if !errors.Is(err, bundle.ErrInvalid) {
			t.Errorf("err = %v, want ErrInvalid", err)
		}
	})
	t.Run("envelope over the cap", func(t *testing.T) {
		r := bundle.NewReader(bytes.NewReader(whole), 5)
		if _, err := r.Envelope(); !errors.Is(err, bundle.ErrInvalid) {
			t.Errorf("err = %v, want ErrInvalid", err)
		}
	})
}

func TestBundle_Ack(t *testing.T) {
	sha := strings.Repeat("a", 64)
	ack := []byte(`{"payloadType":"ack"}`)
	write := func(t *testing.T, withAck bool) []byte {
		t.Helper()
		var buf bytes.Buffer
		w := bundle.NewWriter(&buf)
		if err := w.WriteSnapshot([]byte(`{}`)); err != nil {
			t.Fatal(err)
		}
		if withAck {
			if err := w.WriteAck(ack); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.WriteArtifact(sha, 3, strings.NewReader("one")); err != nil {
			t.Fatal(err)
		}
		if err := w.WriteAck(ack); err == nil {
			t.Error("acknowledgement after an artifact: want an error")
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	for _, tc := range []struct {
		name    string
		withAck bool
		want    []byte
	}{{"with", true, ack}, {"without", false, nil}} {
		t.Run(tc.name, func(t *testing.T) {
			r := bundle.NewReader(bytes.NewReader(write(t, tc.withAck)), 0)
			if _, err := r.Envelope(); err != nil {
				t.Fatal(err)
			}
			e, err := r.Next()
			if err != nil || e.SHA256 != sha {
				t.Fatalf("Next = %+v, %v; want the artifact", e, err)
			}
			if got := r.Ack(); !bytes.Equal(got, tc.want) {
				t.Errorf("Ack() = %q, want %q", got, tc.want)
			}
			if _, err := r.Next(); err != io.EOF {
				t.Errorf("Next after the last = %v, want io.EOF", err)
			}
		})
	}
}

// TestBundle_Deltas: a delta entry ("deltas/<sha256>") reads back as a
// delta, beside an artifact of the same sha256; a malformed delta name
// is refused.
func TestBundle_Deltas(t *testing.T) {
	sha := strings.Repeat("c", 64)
	var buf bytes.Buffer
	w := bundle.NewWriter(&buf)
	if err := w.WriteSnapshot([]byte("{}")); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteDelta(sha, 5, strings.NewReader("delta")); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteDelta(sha, 5, strings.NewReader("delta")); err == nil {
		t.Error("duplicate delta: want an error")
	}
	if err := w.WriteArtifact(sha, 4, strings.NewReader("full")); err != nil {
		t.Fatalf("an artifact named like a delta: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r := bundle.NewReader(&buf, 0)
	if _, err := r.Envelope(); err != nil {
		t.Fatal(err)
	}
	var got []bundle.Entry
	for {
		e, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, r.Body())
		got = append(got, e)
	}
	want := []bundle.Entry{{SHA256: sha, Size: 5, Delta: true}, {SHA256: sha, Size: 4}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("entries %+v, want %+v", got, want)
	}

	for _, name := range []string{"deltas/" + strings.Repeat("c", 63), "deltas/x", "delta/" + sha} {
		t.Run(name, func(t *testing.T) {
			r := bundle.NewReader(bytes.NewReader(tarOf(t, name)), 0)
			if _, err := r.Envelope(); err != nil {
				t.Fatal(err)
			}
			if _, err := r.Next(); !errors.Is(err, bundle.ErrInvalid) {
				t.Errorf("err = %v, want ErrInvalid", err)
			}
		})
	}
}

// tarOf is a bundle with the envelope and one entry named name.
func tarOf(t *testing.T, name string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range []string{bundle.EnvelopeName, name} {
		if err := tw.WriteHeader(&tar.Header{Name: n, Size: 2, Mode: 0o644, Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte("{}"))
	}
	tw.Close()
	return buf.Bytes()
}
