package mirror

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

func TestAdminSocket_OwnerOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), AdminSocketName)
	ln, err := listenAdmin(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	t.Run("mode 0600", func(t *testing.T) {
		fi, err := os.Lstat(path)
		if err != nil || fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
			t.Fatalf("got %v (%v), want a socket with mode 0600", fi.Mode(), err)
		}
	})
	t.Run("another user's connection is closed unanswered", func(t *testing.T) {
		if runtime.GOOS != "linux" {
			t.Skip("needs SO_PEERCRED")
		}
		p := filepath.Join(t.TempDir(), AdminSocketName)
		ln, err := listenAdmin(p)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		// As if the daemon ran as someone else, and root were not let in.
		ol := ln.(*ownerListener)
		ol.uid, ol.root = os.Getuid()+1, false
		go func() {
			if c, err := ln.Accept(); err == nil {
				c.Close()
			}
		}()
		c, err := net.Dial("unix", p)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Errorf("read: %v, want EOF (closed by the daemon)", err)
		}
	})
	t.Run("the owner's connection is accepted", func(t *testing.T) {
		accepted := make(chan net.Conn, 1)
		go func() {
			if c, err := ln.Accept(); err == nil {
				accepted <- c
			}
		}()
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		select {
		case c := <-accepted:
			c.Close()
		case <-time.After(10 * time.Second):
			t.Fatal("the owner's connection was not accepted")
		}
	})
	t.Run("a file that is not a socket is left alone", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "admin.sock")
		os.WriteFile(p, []byte("data"), 0o600)
		if _, err := listenAdmin(p); err == nil {
			t.Fatal("listenAdmin replaced a regular file")
		}
		if b, _ := os.ReadFile(p); string(b) != "data" {
			t.Errorf("the file was changed: %q", b)
		}
	})
	t.Run("too long a path says so", func(t *testing.T) {
		long := filepath.Join(t.TempDir(), string(bytesOf('a', 120)), AdminSocketName)
		if _, err := listenAdmin(long); err == nil {
			t.Fatal("a 120-byte socket path was accepted")
		}
	})
}

func bytesOf(b byte, n int) []byte {
	out := make([]byte, n)
	for i := range out {
		out[i] = b
	}
	return out
}
