//go:build !linux

package mirror

// sendfileAt is false where the fast path is not written: Listener
// leaves its listener as it is.
const sendfileAt = false

func (c *sendConn) sendmsgStep(uintptr) bool  { return true }
func (c *sendConn) sendfileStep(uintptr) bool { return true }
