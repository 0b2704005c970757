package blob

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"syscall"
	"testing"

	"github.com/outpost/outpost/internal/catalog"
)

func TestNoSpace_Classifies(t *testing.T) {
	cases := []struct {
		name     string
		err      error
		wantCode string
		wantMsg  string
	}{
		{"enospc", fmt.Errorf("put k: %w", &fs.PathError{Op: "write", Path: "/b/.tmp/put-1", Err: syscall.ENOSPC}),
			catalog.ENOSPACE, "the blob store is out of space (the device is full): free space on /b or grow it; nothing was stored"},
		{"edquot", fmt.Errorf("put k: %w", syscall.EDQUOT),
			catalog.ENOSPACE, "the blob store is out of space (the disk quota is exceeded): free space on /b or grow it; nothing was stored"},
		{"other", fmt.Errorf("put k: %w", syscall.EIO), catalog.EINTERNAL, "internal error"},
		{"nil", nil, "", "internal error"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := NoSpace("/b", c.err)
			if code := catalog.ErrorCode(got); code != c.wantCode {
				t.Errorf("code = %q, want %q", code, c.wantCode)
			}
			if c.err == nil {
				if got != nil {
					t.Errorf("NoSpace(nil) = %v, want nil", got)
				}
				return
			}
			if msg := catalog.ErrorMessage(got); msg != c.wantMsg {
				t.Errorf("message = %q, want %q", msg, c.wantMsg)
			}
			if !errors.Is(got, errors.Unwrap(c.err)) && !errors.Is(got, c.err) {
				t.Errorf("NoSpace(%v) lost the cause", c.err)
			}
			if !strings.Contains(got.Error(), c.err.Error()) {
				t.Errorf("Error() = %q, want it to hold the cause %q (for the log)", got.Error(), c.err.Error())
			}
		})
	}
}
