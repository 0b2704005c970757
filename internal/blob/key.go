package blob

import (
	"errors"
	"fmt"
	"strings"
)

// MaxKeyLen caps a key's length in bytes.
const MaxKeyLen = 512

// MaxSegmentLen caps one "/"-separated segment: a file name on most
// filesystems (NAME_MAX).
const MaxSegmentLen = 255

// ErrInvalidKey is returned for a key that ValidateKey rejects.
var ErrInvalidKey = errors.New("invalid blob key")

// ValidateKey accepts keys made of "/"-separated segments of
// [A-Za-z0-9._-], at most MaxKeyLen bytes and MaxSegmentLen per segment. No segment may be empty or start
// with "." (so no "..", no hidden files, and stores may keep their own
// dot-prefixed scratch space without colliding with a key).
func ValidateKey(key string) error {
	if key == "" {
		return fmt.Errorf("%w: empty", ErrInvalidKey)
	}
	if len(key) > MaxKeyLen {
		return fmt.Errorf("%w: %d bytes, max %d", ErrInvalidKey, len(key), MaxKeyLen)
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '.' || c == '_' || c == '-' || c == '/'
		if !ok {
			return fmt.Errorf("%w: byte %q at offset %d not in [A-Za-z0-9._/-]", ErrInvalidKey, c, i)
		}
	}
	for seg := range strings.SplitSeq(key, "/") {
		if seg == "" {
			return fmt.Errorf("%w: %q has an empty segment (leading, trailing or double \"/\")", ErrInvalidKey, key)
		}
		if len(seg) > MaxSegmentLen {
			return fmt.Errorf("%w: a segment of %d bytes, max %d", ErrInvalidKey, len(seg), MaxSegmentLen)
		}
		if seg[0] == '.' {
			return fmt.Errorf("%w: %q has a segment starting with \".\"", ErrInvalidKey, key)
		}
	}
	return nil
}
