//go:build !linux

package mirror

// sendfileAt is false where the fast path is not written: Listener
// leaves its listener as it is.
const sendfileAt = false
