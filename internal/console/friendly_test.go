package console

import (
	"fmt"
	"strings"
	"testing"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/wire"
)

// TestFriendly_StatusIsTheAPIs: an error page answers the status the API
// answers for the same error (the one table in internal/wire), with a
// sentence for people that never shows an internal error's details.
func TestFriendly_StatusIsTheAPIs(t *testing.T) {
	codes := []string{catalog.ENOTFOUND, catalog.ECONFLICT, catalog.EINVALID, catalog.EUNAUTHORIZED, catalog.EFORBIDDEN,
		catalog.ETOOLARGE, catalog.EUNAVAILABLE, catalog.ERATELIMITED, catalog.ENOSPACE}
	for _, code := range codes {
		t.Run(code, func(t *testing.T) {
			status, msg := friendly(fmt.Errorf("op: %w", catalog.Errorf(code, "the reason")))
			if want := wire.StatusOf(code); status != want {
				t.Errorf("status = %d, want %d", status, want)
			}
			if msg == "" {
				t.Error("no sentence")
			}
		})
	}
	t.Run("internal", func(t *testing.T) {
		status, msg := friendly(fmt.Errorf("open /secret/db: disk on fire"))
		if status != 500 || strings.Contains(msg, "secret") || !strings.Contains(msg, "log") {
			t.Errorf("got %d %q, want 500 and a sentence without the details", status, msg)
		}
	})
}
