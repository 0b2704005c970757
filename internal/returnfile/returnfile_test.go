package returnfile

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

func key(t *testing.T) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

const (
	auditPart = `{"event_id":"evt_1","seq":1}` + "\n" + `{"mirror_id":"mir_x","head_hash":"h","count":1,"sig":"AA=="}` + "\n"
	fleetPart = `{"format":"outpost-fleet-report-v1"}` + "\n" + `{"event":{"seq":1}}` + "\n" + `{"trailer":{"count":1}}` + "\n"
)

func write(t *testing.T, priv ed25519.PrivateKey, mirrorID, audit, fleet string) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, Header{MirrorID: mirrorID, TenantID: "ten_x", CreatedAt: time.Unix(1e9, 0)}, priv)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []struct {
		part Part
		body string
	}{{PartAudit, audit}, {PartFleet, fleet}} {
		pw, err := w.Part(p.part)
		if err != nil {
			t.Fatal(err)
		}
		// Odd chunk sizes: lines split across writes must still wrap whole.
		for b := []byte(p.body); len(b) > 0; {
			n := min(7, len(b))
			if _, err := pw.Write(b[:n]); err != nil {
				t.Fatal(err)
			}
			b = b[n:]
		}
	}
	if _, err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestSplit_RoundTrip(t *testing.T) {
	pub, priv := key(t)
	file := write(t, priv, "mir_x", auditPart, fleetPart)
	var a, f bytes.Buffer
	s, err := Split(bytes.NewReader(file), pub, Options{MirrorID: "mir_x"}, &a, &f)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := a.String(), auditPart; got != want {
		t.Errorf("audit part = %q, want %q", got, want)
	}
	if got, want := f.String(), fleetPart; got != want {
		t.Errorf("fleet part = %q, want %q", got, want)
	}
	if got, want := [2]int64{s.AuditLines, s.FleetLines}, [2]int64{2, 3}; got != want {
		t.Errorf("lines = %v, want %v", got, want)
	}
	h, err := PeekHeader(bytes.NewReader(file))
	if err != nil || h.MirrorID != "mir_x" {
		t.Errorf("PeekHeader = %+v, %v", h, err)
	}
	if !IsReturnFile(bytes.SplitN(file, []byte("\n"), 2)[0]) {
		t.Error("IsReturnFile(header) = false")
	}
}

func TestSplit_Refusals(t *testing.T) {
	pub, priv := key(t)
	otherPub, otherPriv := key(t)
	good := write(t, priv, "mir_x", auditPart, fleetPart)
	lines := strings.SplitAfter(string(good), "\n")
	join := func(ls ...string) []byte { return []byte(strings.Join(ls, "")) }
	n := len(lines) - 1 // the last element is "" after the final newline
	cases := []struct {
		name string
		file []byte
		pub  ed25519.PublicKey
		opts Options
		want string
	}{
		{"empty", nil, pub, Options{}, "empty file"},
		{"another key", good, otherPub, Options{}, "signature does not verify"},
		{"signed by another key", write(t, otherPriv, "mir_x", auditPart, fleetPart), pub, Options{}, "signature does not verify"},
		{"another mirror pinned", good, pub, Options{MirrorID: "mir_y"}, `mirror "mir_x"'s, not "mir_y"`},
		{"edited audit line", []byte(strings.Replace(string(good), `evt_1`, `evt_2`, 1)), pub, Options{}, "lines edited, added or removed"},
		{"edited fleet line", []byte(strings.Replace(string(good), `"seq":1}}`, `"seq":2}}`, 1)), pub, Options{}, "lines edited, added or removed"},
		{"removed line", join(append(append([]string{}, lines[:2]...), lines[3:]...)...), pub, Options{}, "lines edited, added or removed"},
		{"added line", join(append(append(append([]string{}, lines[:2]...), lines[1]), lines[2:]...)...), pub, Options{}, "lines edited, added or removed"},
		{"truncated at a line", join(lines[:n-1]...), pub, Options{}, "no trailer"},
		{"truncated mid-line", good[:len(good)-5], pub, Options{}, "truncated (no newline)"},
		{"data after the trailer", append(append([]byte{}, good...), lines[1]...), pub, Options{}, "data after the trailer"},
		{"audit after fleet", join(lines[0], lines[3], lines[1], lines[2], lines[4], lines[5], lines[6]), pub, Options{}, "audit line after the fleet part"},
		{"unknown line", join(lines[0], `{"other":{}}`+"\n", lines[n-1]), pub, Options{}, "want an audit, fleet or trailer line"},
		{"malformed wrapper", join(lines[0], `{"audit":{"x":1}`+"\n", lines[n-1]), pub, Options{}, "malformed audit line"},
		{"wrong format", []byte(`{"format":"outpost-fleet-report-v1","mirror_id":"mir_x","created_at":"2026-01-01T00:00:00Z"}` + "\n"), pub, Options{}, "format"},
		{"unknown header key", []byte(`{"format":"outpost-return-v1","mirror_id":"mir_x","x":1,"created_at":"2026-01-01T00:00:00Z"}` + "\n"), pub, Options{}, "unknown field"},
		{"over the byte cap", good, pub, Options{MaxBytes: 100}, "larger than 100 bytes"},
		{"long line", append([]byte(lines[0]), bytes.Repeat([]byte("x"), MaxLine+10)...), pub, Options{}, "longer than"},
		{"a part missing", write(t, priv, "mir_x", "", fleetPart), pub, Options{}, "a part is missing"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Split(bytes.NewReader(tc.file), tc.pub, tc.opts, io.Discard, io.Discard)
			if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Split() error = %v, want ErrRefused containing %q", err, tc.want)
			}
		})
	}
}

func TestWriter_Order(t *testing.T) {
	_, priv := key(t)
	w, err := NewWriter(io.Discard, Header{MirrorID: "mir_x"}, priv)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Part(PartFleet); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Part(PartAudit); err == nil {
		t.Error("Part(audit) after fleet: got nil error")
	}
	w2, _ := NewWriter(io.Discard, Header{MirrorID: "mir_x"}, priv)
	if _, err := w2.Close(); err == nil {
		t.Error("Close without parts: got nil error")
	}
	w3, _ := NewWriter(io.Discard, Header{MirrorID: "mir_x"}, priv)
	pw, _ := w3.Part(PartAudit)
	_, _ = pw.Write([]byte(`{"no newline":1}`))
	if _, err := w3.Part(PartFleet); err == nil {
		t.Error("Part after an unfinished line: got nil error")
	}
}
