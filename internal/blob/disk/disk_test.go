package disk

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/blob"
	"github.com/outpost/outpost/internal/blob/blobtest"
)

func TestStore_Suite(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) blob.Store {
		s, err := New(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestStore_OpenIsFile(t *testing.T) {
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := s.Put(ctx, "a/b", strings.NewReader("hi"), blob.Expect{}); err != nil {
		t.Fatal(err)
	}
	o, _, err := s.Open(ctx, "a/b")
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if _, ok := o.(*os.File); !ok {
		t.Fatalf("Open returned %T, want *os.File (for sendfile)", o)
	}
	if _, err := s.PresignGet(ctx, "a/b", time.Minute); !errors.Is(err, blob.ErrNotSupported) {
		t.Fatalf("PresignGet = %v, want ErrNotSupported", err)
	}
}

func TestNew_SweepsTemp(t *testing.T) {
	dir := t.TempDir()
	s, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	left := filepath.Join(dir, tmpDir, "put-crashed")
	if err := os.WriteFile(left, []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(context.Background(), "keep", strings.NewReader("k"), blob.Expect{}); err != nil {
		t.Fatal(err)
	}
	if _, err := New(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(left); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("leftover temp file after New: stat err = %v, want not exist", err)
	}
	if _, err := s.Stat(context.Background(), "keep"); err != nil {
		t.Fatalf("object lost by the sweep: %v", err)
	}
}

func TestStore_FailedPutLeavesNoTemp(t *testing.T) {
	dir := t.TempDir()
	s, err := New(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Put(context.Background(), "x", strings.NewReader("abc"), blob.Expect{Size: 4})
	if !errors.Is(err, blob.ErrMismatch) {
		t.Fatalf("err = %v, want ErrMismatch", err)
	}
	ents, err := os.ReadDir(filepath.Join(dir, tmpDir))
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 0 {
		t.Fatalf("temp dir holds %d entries after a failed Put, want 0", len(ents))
	}
}

func TestNew_Errors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{"", file} {
		if _, err := New(dir); err == nil {
			t.Errorf("New(%q) = nil error, want one", dir)
		}
	}
}
