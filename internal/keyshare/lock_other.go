//go:build !unix

package keyshare

// Lock is a no-op where flock(2) is missing: key commands and a serving
// instance's pulls are not kept apart there.
func Lock(keysDir string, wait bool) (unlock func(), err error) { return func() {}, nil }
