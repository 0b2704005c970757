//go:build unix

package keyshare

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// Lock takes the keys directory's lock (a .lock file beside the keys,
// flock(2)): a key command holds it from the pull before it to the push
// after it, so a serving instance's pull cannot remove a key the command
// has just made. With wait false a held lock is ErrBusy. The lock goes
// with the process, whatever way it ends.
func Lock(keysDir string, wait bool) (unlock func(), err error) {
	if err := os.MkdirAll(keysDir, 0o700); err != nil {
		return nil, fmt.Errorf("lock keys: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(keysDir, ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock keys: %w", err)
	}
	how := syscall.LOCK_EX
	if !wait {
		how |= syscall.LOCK_NB
	}
	for {
		err = syscall.Flock(int(f.Fd()), how)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, ErrBusy
		}
		return nil, fmt.Errorf("lock keys: %w", err)
	}
	return func() { f.Close() }, nil
}
