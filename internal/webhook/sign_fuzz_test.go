package webhook_test

import (
	"strings"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/webhook"
)

// FuzzVerify: any header and body must not panic Verify, and only the
// header Sign made for that body verifies.
func FuzzVerify(f *testing.F) {
	at := time.Unix(1_790_000_000, 0)
	f.Add(webhook.Sign("whsec_fuzz_secret_00", at, []byte("{}")), []byte("{}"))
	f.Add("t=1,v1=zz,v1=", []byte("x"))
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		genuine := webhook.Sign("whsec_fuzz_secret_00", at, body)
		if err := webhook.Verify("whsec_fuzz_secret_00", header, body, at, time.Minute); err == nil {
			// Whatever else it carries, an accepted header holds the MAC.
			_, mac, _ := strings.Cut(genuine, ",v1=")
			if !strings.Contains(header, "v1="+mac) {
				t.Fatalf("accepted %q for body %q without its MAC", header, body)
			}
		}
		if err := webhook.Verify("whsec_fuzz_secret_00", genuine, body, at, time.Minute); err != nil {
			t.Fatalf("Sign's own header does not verify for body %q: %v", body, err)
		}
	})
}
