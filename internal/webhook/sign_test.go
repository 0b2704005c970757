package webhook_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/webhook"
)

func TestVerify_Cases(t *testing.T) {
	const secret = "whsec_test_secret_1234"
	body := []byte(`{"id":"evt_1","type":"release.published"}`)
	at := time.Unix(1_790_000_000, 0)
	good := webhook.Sign(secret, at, body)
	cases := []struct {
		name   string
		secret string
		header string
		body   []byte
		now    time.Time
		want   error // nil: valid
	}{
		{"valid", secret, good, body, at, nil},
		{"valid at the window's edge", secret, good, body, at.Add(5 * time.Minute), nil},
		{"valid with a second, rotated signature", secret, "t=1790000000,v1=" + strings.Repeat("0", 64) + "," + strings.TrimPrefix(good, "t=1790000000,"), body, at, nil},
		{"unknown scheme ignored", secret, good + ",v9=zz", body, at, nil},
		{"stale", secret, good, body, at.Add(5*time.Minute + time.Second), webhook.ErrStale},
		{"from the future", secret, good, body, at.Add(-6 * time.Minute), webhook.ErrStale},
		{"body changed", secret, good, []byte(`{"id":"evt_2"}`), at, webhook.ErrNoMatch},
		{"wrong secret", "whsec_other_secret_00", good, body, at, webhook.ErrNoMatch},
		{"timestamp changed", secret, strings.Replace(good, "t=1790000000", "t=1790000001", 1), body, at, webhook.ErrNoMatch},
		{"no v1", secret, "t=1790000000", body, at, webhook.ErrBadHeader},
		{"no t", secret, strings.TrimPrefix(good, "t=1790000000,"), body, at, webhook.ErrBadHeader},
		{"two t", secret, "t=1,t=2,v1=00", body, at, webhook.ErrBadHeader},
		{"t not a number", secret, "t=soon,v1=00", body, at, webhook.ErrBadHeader},
		{"garbage", secret, "hello", body, at, webhook.ErrBadHeader},
		{"huge", secret, strings.Repeat("v1=00,", 1000), body, at, webhook.ErrBadHeader},
		{"empty", secret, "", body, at, webhook.ErrBadHeader},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := webhook.Verify(tc.secret, tc.header, tc.body, tc.now, 0)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("Verify = %v, want %v", err, tc.want)
			}
		})
	}
	if err := webhook.Verify("", good, body, at, 0); err == nil {
		t.Errorf("Verify with an empty secret = nil, want an error")
	}
}

func TestSign_Format(t *testing.T) {
	// Known answer: HMAC-SHA256("k", "1.x"), as `printf '1.x' | openssl dgst -sha256 -hmac k` prints.
	got := webhook.Sign("k", time.Unix(1, 0), []byte("x"))
	want := "t=1,v1=976cb87e4f568d1c0f03f32859e90af8597cf00b978ba37c229c97d3a15b8449"
	if got != want {
		t.Errorf("Sign = %q, want %q", got, want)
	}
}

func TestBackoff_Grows(t *testing.T) {
	base, max := time.Second, time.Minute
	cases := []struct {
		n      int
		jitter float64
		want   time.Duration
	}{
		{1, 0, 500 * time.Millisecond},
		{1, 1, time.Second},
		{2, 1, 2 * time.Second},
		{4, 1, 8 * time.Second},
		{4, 0.5, 6 * time.Second},
		{7, 1, time.Minute}, // 64s capped
		{7, 0, 30 * time.Second},
		{100, 1, time.Minute}, // no overflow
		{0, 1, time.Second},
	}
	for _, tc := range cases {
		if got := webhook.Backoff(tc.n, base, max, tc.jitter); got != tc.want {
			t.Errorf("Backoff(%d, jitter %v) = %s, want %s", tc.n, tc.jitter, got, tc.want)
		}
	}
}
