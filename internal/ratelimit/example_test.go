package ratelimit_test

import (
	"log/slog"
	"net/http"

	"github.com/outpost/outpost/internal/ratelimit"
)

// Lease routes limited per client token (keyed by its id once the auth
// middleware has resolved it), or per remote IP without one.
func Example() {
	lim, err := ratelimit.New(ratelimit.Config{Rate: 5, Burst: 20})
	if err != nil {
		return
	}
	tokenID := func(r *http.Request) string {
		if id := r.Header.Get("X-Example-Token-Id"); id != "" { // the daemon reads its auth context here
			return "tok:" + id
		}
		return "" // falls back to the remote IP
	}
	leases := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	mux := http.NewServeMux()
	mux.Handle("PUT /v1/leases/{subject}", lim.Middleware(tokenID, slog.Default())(leases))
}
