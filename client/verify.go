package client

import (
	"fmt"
)

// requireTUF reports what Download, DownloadFrom and the verification of
// a mirror-signed lease need: the tenant's TUF root (WithTUF).
func (c *Client) requireTUF() error {
	if c.tuf == nil {
		return fmt.Errorf("%w: no TUF trust: give the tenant's root.json (WithTUF; updatectl --tuf-root)", ErrConfig)
	}
	return nil
}

// requireVendorKeys reports what the verification of a vendor-signed
// (online) lease needs: the vendor's keys and the tenant.
func (c *Client) requireVendorKeys() error {
	if len(c.vendorKeys) == 0 {
		return fmt.Errorf("%w: no trusted vendor keys (WithTrustedKeys)", ErrConfig)
	}
	if c.tenantID == "" && c.tuf == nil {
		return fmt.Errorf("%w: no tenant pinned (WithTenant)", ErrConfig)
	}
	return nil
}

// validID accepts the id shape of the catalog (prefix_base32) and nothing
// that could escape a URL path segment.
func validID(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
