package client

import (
	"context"
	"crypto/ed25519"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func TestCheck_DecodesDecision(t *testing.T) {
	v := newVendor(t, 100)
	s := newServer(t, v)
	c, err := New(s.srv.URL+"/", WithToken("tok"))
	if err != nil {
		t.Fatal(err)
	}
	q := Query{Product: "prd x", Channel: "stable", Platform: "linux", Arch: "x64", Version: "1.0.0", ClientID: "c1", InstallerType: "zip"}
	d, err := c.Check(context.Background(), q)
	if err != nil {
		t.Fatalf("check: %v", err)
	}
	want := v.decision()
	if !d.UpdateAvailable || d.Action != ActionDownload || d.Release.ReleaseID != want.Release.ReleaseID ||
		d.Artifact.SHA256 != want.Artifact.SHA256 || d.Artifact.SizeBytes != 100 || d.Snapshot.Sequence != 3 ||
		!d.Release.PublishedAt.Equal(want.Release.PublishedAt) {
		t.Errorf("decision got %+v, want %+v", d, want)
	}
	gotQ, _ := url.ParseQuery(s.queries[0])
	for k, w := range map[string]string{"product": "prd x", "channel": "stable", "platform": "linux", "arch": "x64", "version": "1.0.0", "client_id": "c1", "installer_type": "zip"} {
		if gotQ.Get(k) != w {
			t.Errorf("query %s got %q, want %q", k, gotQ.Get(k), w)
		}
	}
	if s.auth[0] != "Bearer tok" {
		t.Errorf("Authorization got %q, want Bearer tok", s.auth[0])
	}
}

func TestCheck_Answers(t *testing.T) {
	q := Query{Product: "p", Channel: "stable", Platform: "linux", Arch: "x64", Version: "1.0.0"}
	cases := []struct {
		name      string
		status    int
		body      string
		wantErr   error
		wantCode  string
		wantUpToD bool
	}{
		{"up to date", 200, `{"update_available":false,"action":"NONE","reason":"no newer release"}`, nil, "", true},
		{"not found", 404, `{"error":{"code":"not_found","message":"product \"p\" not found"}}`, nil, CodeNotFound, false},
		{"unauthorized", 401, `{"error":{"code":"unauthorized","message":"bad token"}}`, nil, CodeUnauthorized, false},
		{"plain 500", 500, "boom", nil, CodeInternal, false},
		{"plain 403", 403, "", nil, CodeForbidden, false},
		{"malformed json", 200, `{"update_available":`, ErrNetwork, "", false},
		{"not json", 200, `<html>`, ErrProtocol, "", false},
		{"unknown action", 200, `{"update_available":false,"action":"REBOOT"}`, ErrProtocol, "", false},
		{"available without artifact", 200, `{"update_available":true,"action":"NOTIFY","release":{"release_id":"r","version":"2"},"snapshot":{"snapshot_id":"s"}}`, ErrProtocol, "", false},
		{"bad sha", 200, `{"update_available":true,"action":"NOTIFY","release":{"release_id":"r","version":"2"},"snapshot":{"snapshot_id":"s"},"artifact":{"artifact_id":"a","sha256":"zz","size_bytes":1,"url":"/x"}}`, ErrProtocol, "", false},
		{"huge body", 200, `{"reason":"` + strings.Repeat("x", 2<<20) + `"}`, ErrProtocol, "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tc.status)
				w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			c, _ := New(srv.URL)
			d, err := c.Check(context.Background(), q)
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("got %v, want %v", err, tc.wantErr)
			}
			if got := ErrorCode(err); got != tc.wantCode {
				t.Fatalf("code got %q, want %q (err %v)", got, tc.wantCode, err)
			}
			if tc.wantCode != "" {
				var e *Error
				if !errors.As(err, &e) || e.Status != tc.status || e.Message == "" {
					t.Errorf("error got %#v, want status %d with a message", e, tc.status)
				}
			}
			if tc.wantUpToD && (d == nil || d.UpdateAvailable || d.Reason != "no newer release") {
				t.Errorf("decision got %+v, want up to date with the reason", d)
			}
		})
	}
}

func TestCheck_NetworkError(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.URL
	srv.Close()
	c, _ := New(addr)
	_, err := c.Check(context.Background(), Query{Product: "p", Channel: "c", Platform: "linux", Arch: "x64", Version: "1"})
	if !errors.Is(err, ErrNetwork) {
		t.Fatalf("got %v, want ErrNetwork", err)
	}
}

func TestNew_RejectsBadInput(t *testing.T) {
	cases := []struct {
		name string
		url  string
		opts []Option
	}{
		{"ftp", "ftp://x", nil},
		{"no host", "http://", nil},
		{"query", "http://x/?a=b", nil},
		{"userinfo", "http://u:p@x", nil},
		{"token newline", "http://x", []Option{WithToken("a\nb")}},
		{"key id mismatch", "http://x", []Option{WithTrustedKeys(map[string]ed25519.PublicKey{"00": make([]byte, 32)})}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.url, tc.opts...); !errors.Is(err, ErrConfig) {
				t.Errorf("got %v, want ErrConfig", err)
			}
		})
	}
}

func TestCheck_ValidatesQuery(t *testing.T) {
	c, _ := New("http://127.0.0.1:1")
	_, err := c.Check(context.Background(), Query{Product: "p"})
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "channel") {
		t.Errorf("got %v, want ErrConfig naming channel", err)
	}
}
