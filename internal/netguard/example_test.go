package netguard_test

import (
	"time"

	"github.com/outpost/outpost/internal/netguard"
)

// The control plane's EXTERNAL artifact client: in server.go,
// s.HTTPClient = netguard.Client(s.Config.ExternalTimeout, s.Config.AllowPrivateURLs)
// replaces externalClient and its hand list.
func Example() {
	c := netguard.Client(30*time.Minute, false)
	resp, err := c.Get("http://169.254.169.254/latest/meta-data/")
	if err == nil {
		resp.Body.Close()
	}
	// err wraps netguard.ErrNotPublic: the connection was never made.
}
