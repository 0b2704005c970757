package controlplane

import (
	"net/http"
	"time"

	"github.com/outpost/outpost/internal/netguard"
)

// externalClient fetches EXTERNAL artifact URLs. Unless allowPrivate, it
// connects only to public addresses by the IANA special-purpose registries
// (internal/netguard), checked on the address actually dialled (after DNS,
// and for every redirect), so an artifact URL cannot be used to probe the
// vendor's own network.
func externalClient(timeout time.Duration, allowPrivate bool) *http.Client {
	return netguard.Client(timeout, allowPrivate)
}
