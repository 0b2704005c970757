// Package blob defines where artifact bytes live: a local directory
// (blob/disk, the default) or an S3-compatible bucket (blob/s3). Every
// implementation streams: memory stays flat whatever the object size.
// blobtest holds the suite every implementation must pass.
package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"syscall"
	"time"

	"github.com/outpost/outpost/internal/catalog"
)

// ErrNotFound is returned for a key that does not exist.
var ErrNotFound = errors.New("blob not found")

// ErrMismatch is returned by Put when the bytes do not match Expect; no
// object is left behind.
var ErrMismatch = errors.New("blob does not match the declared sha256 or size")

// ErrTooLarge is returned by Put when the bytes exceed Expect.MaxSize.
var ErrTooLarge = errors.New("blob exceeds the size limit")

// ErrNotSupported is returned by PresignGet on stores that cannot presign.
var ErrNotSupported = errors.New("not supported by this blob store")

// NoSpace returns err unchanged unless it says the device or quota is full
// (ENOSPC, EDQUOT). Then it returns an insufficient_storage domain error
// naming where, the cause and the fix, which still wraps err (so the log
// and errors.Is see the system error).
func NoSpace(where string, err error) error {
	if err == nil || !(errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)) {
		return err
	}
	cause := "the device is full"
	if errors.Is(err, syscall.EDQUOT) {
		cause = "the disk quota is exceeded"
	}
	de := catalog.Errorf(catalog.ENOSPACE,
		"the blob store is out of space (%s): free space on %s or grow it; nothing was stored", cause, where)
	return fmt.Errorf("%w: %w", de, err)
}

// Expect constrains a Put. Zero values mean "not declared".
type Expect struct {
	SHA256  string // lowercase hex
	Size    int64  // exact size; -1 or 0 when unknown
	MaxSize int64  // hard cap, 0 for none
}

// Info describes a stored object.
type Info struct {
	Key     string
	Size    int64
	SHA256  string // as computed by Put; "" from Stat where unknown
	ModTime time.Time
}

// Object is an open object: seekable so HTTP Range requests work.
type Object interface {
	io.ReadSeekCloser
}

// Store is a flat namespace of immutable objects. Keys are checked by
// ValidateKey; a bad key fails with ErrInvalidKey.
type Store interface {
	// Put streams r into key, computing sha256 and size as the bytes pass.
	// If they do not match e, or anything fails, nothing is left at key.
	// An existing key is replaced only once the new bytes are complete.
	Put(ctx context.Context, key string, r io.Reader, e Expect) (Info, error)
	// Open returns the object for reading and its size.
	Open(ctx context.Context, key string) (Object, Info, error)
	Stat(ctx context.Context, key string) (Info, error)
	// Delete removes key; deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// List calls fn for every complete object whose key starts with
	// prefix (objects still being written are not listed).
	List(ctx context.Context, prefix string, fn func(Info) error) error
	// PresignGet returns a URL that reads key without credentials for ttl,
	// or ErrNotSupported.
	PresignGet(ctx context.Context, key string, ttl time.Duration) (string, error)
}
