// Package s3 stores blobs in an S3-compatible bucket (AWS, MinIO,
// versitygw) with minio-go.
//
// Put verifies before it publishes: an object that fits in one part is
// buffered, checked and sent with one PUT; a larger one goes up as a
// multipart upload that is completed only once the whole stream matched
// Expect, and aborted otherwise. Either way nothing appears at the key
// unless the bytes are right, and memory stays at one part per Put.
package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/outpost/outpost/internal/blob"
)

// DefaultPartSize is the multipart part size, and so the memory one Put
// holds. 8 MiB x 10,000 parts allows 78 GiB objects of unknown size; a
// declared Size or MaxSize above that raises the part size to fit.
const DefaultPartSize = 8 << 20

const (
	minPartSize = 5 << 20 // S3's minimum for all but the last part
	maxParts    = 10000
	// sha256Meta is the user metadata that records a declared sha256
	// (verified before the object became visible).
	sha256Meta = "Sha256"
)

// Config locates the bucket.
type Config struct {
	Endpoint     string // host:port, no scheme
	AccessKey    string
	SecretKey    string
	Bucket       string
	Region       string // "" for us-east-1
	UseSSL       bool
	Prefix       string // prepended to every key, e.g. "artifacts/"
	CreateBucket bool   // create Bucket when missing instead of failing
	PartSize     int64  // 0 for DefaultPartSize; at least 5 MiB
	// SkipCheck makes New not contact the endpoint: an unreachable or
	// missing bucket shows at the first request instead. For a daemon
	// that must start while the bucket is away (the mirror's S3 source).
	SkipCheck bool
}

// Store is a blob.Store over one bucket.
type Store struct {
	core     *minio.Core
	bucket   string
	prefix   string
	partSize int64
}

var _ blob.Store = (*Store)(nil)

// New connects and checks the bucket exists (or creates it when
// cfg.CreateBucket), unless cfg.SkipCheck.
func New(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Endpoint == "" {
		return nil, errors.New("s3 config: endpoint is required")
	}
	if strings.Contains(cfg.Endpoint, "://") {
		return nil, fmt.Errorf("s3 config: endpoint %q must be host:port without a scheme (use use_ssl)", cfg.Endpoint)
	}
	if cfg.Bucket == "" {
		return nil, errors.New("s3 config: bucket is required")
	}
	prefix := strings.Trim(cfg.Prefix, "/")
	if prefix != "" {
		if err := blob.ValidateKey(prefix); err != nil {
			return nil, fmt.Errorf("s3 config: prefix: %w", err)
		}
		prefix += "/"
	}
	part := cfg.PartSize
	if part == 0 {
		part = DefaultPartSize
	}
	if part < minPartSize {
		return nil, fmt.Errorf("s3 config: part_size %d is below the S3 minimum %d", part, minPartSize)
	}
	core, err := minio.NewCore(cfg.Endpoint, &minio.Options{
		Creds:  credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure: cfg.UseSSL,
		Region: cfg.Region,
	})
	if err != nil {
		return nil, fmt.Errorf("s3 client: %w", err)
	}
	st := &Store{core: core, bucket: cfg.Bucket, prefix: prefix, partSize: part}
	if cfg.SkipCheck {
		return st, nil
	}
	ok, err := core.BucketExists(ctx, cfg.Bucket)
	if err != nil {
		return nil, fmt.Errorf("s3 bucket %s: %w", cfg.Bucket, err)
	}
	if !ok {
		if !cfg.CreateBucket {
			return nil, fmt.Errorf("s3 bucket %s does not exist", cfg.Bucket)
		}
		err := core.MakeBucket(ctx, cfg.Bucket, minio.MakeBucketOptions{Region: cfg.Region})
		if err != nil && !isCode(err, "BucketAlreadyOwnedByYou") {
			return nil, fmt.Errorf("s3 create bucket %s: %w", cfg.Bucket, err)
		}
	}
	return st, nil
}

func (s *Store) object(key string) (string, error) {
	if err := blob.ValidateKey(key); err != nil {
		return "", err
	}
	return s.prefix + key, nil
}

// partSizeFor grows the part size when a declared size would need more
// than maxParts parts.
func (s *Store) partSizeFor(e blob.Expect) int64 {
	p := s.partSize
	n := e.Size
	if n <= 0 {
		n = e.MaxSize
	}
	if n > p*maxParts {
		p = (n + maxParts - 1) / maxParts
		p = (p + 1<<20 - 1) &^ (1<<20 - 1) // round up to MiB
	}
	return p
}

// Put implements blob.Store.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, e blob.Expect) (blob.Info, error) {
	obj, err := s.object(key)
	if err != nil {
		return blob.Info{}, err
	}
	m, err := blob.NewMeter(ctx, r, e)
	if err != nil {
		return blob.Info{}, fmt.Errorf("put %s: %w", key, err)
	}
	opts := minio.PutObjectOptions{ContentType: "application/octet-stream"}
	if e.SHA256 != "" {
		opts.UserMetadata = map[string]string{sha256Meta: e.SHA256}
	}
	partSize := s.partSizeFor(e)
	var buf []byte
	if e.Size > 0 {
		// Room for one byte more than declared, so fill sees the excess.
		buf = make([]byte, min(e.Size+1, partSize))
	}
	first := true
	var uploadID string
	var parts []minio.CompletePart
	defer func() {
		if uploadID != "" {
			// The caller's ctx may be the reason we failed.
			actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			_ = s.core.AbortMultipartUpload(actx, s.bucket, obj, uploadID)
			cancel()
		}
	}()
	for {
		var n int
		var rerr error
		buf, n, rerr = fill(m, buf, partSize)
		if rerr != nil {
			return blob.Info{}, fmt.Errorf("put %s: %w", key, rerr)
		}
		eof := int64(n) < partSize
		if first && eof {
			// Everything fits in one part: verify, then one PUT.
			size, sum, err := m.Finish()
			if err != nil {
				return blob.Info{}, fmt.Errorf("put %s: %w", key, err)
			}
			single := opts
			single.DisableMultipart = true
			if _, err := s.core.Client.PutObject(ctx, s.bucket, obj, bytes.NewReader(buf[:n]), int64(n), single); err != nil {
				return blob.Info{}, fmt.Errorf("put %s: %w", key, err)
			}
			return s.info(ctx, key, obj, size, sum)
		}
		if first {
			uploadID, err = s.core.NewMultipartUpload(ctx, s.bucket, obj, opts)
			if err != nil {
				return blob.Info{}, fmt.Errorf("put %s: start multipart: %w", key, err)
			}
			first = false
		}
		if n > 0 || len(parts) == 0 {
			if len(parts) == maxParts {
				return blob.Info{}, fmt.Errorf("put %s: %w: more than %d parts of %d bytes", key, blob.ErrTooLarge, maxParts, partSize)
			}
			num := len(parts) + 1
			p, err := s.core.PutObjectPart(ctx, s.bucket, obj, uploadID, num, bytes.NewReader(buf[:n]), int64(n), minio.PutObjectPartOptions{})
			if err != nil {
				return blob.Info{}, fmt.Errorf("put %s: part %d: %w", key, num, err)
			}
			parts = append(parts, minio.CompletePart{PartNumber: num, ETag: p.ETag})
		}
		if eof {
			break
		}
	}
	size, sum, err := m.Finish()
	if err != nil {
		return blob.Info{}, fmt.Errorf("put %s: %w", key, err)
	}
	if _, err := s.core.CompleteMultipartUpload(ctx, s.bucket, obj, uploadID, parts, minio.PutObjectOptions{}); err != nil {
		return blob.Info{}, fmt.Errorf("put %s: complete multipart: %w", key, err)
	}
	uploadID = ""
	return s.info(ctx, key, obj, size, sum)
}

func (s *Store) info(ctx context.Context, key, obj string, size int64, sum string) (blob.Info, error) {
	info := blob.Info{Key: key, Size: size, SHA256: sum, ModTime: time.Now()}
	if oi, err := s.core.StatObject(ctx, s.bucket, obj, minio.StatObjectOptions{}); err == nil {
		info.ModTime = oi.LastModified
	}
	return info, nil
}

// fill reads from r until buf holds max bytes or r ends, growing buf as
// needed so small objects stay small. A clean end is not an error.
func fill(r io.Reader, buf []byte, max int64) ([]byte, int, error) {
	const initial = 64 << 10
	if buf == nil {
		buf = make([]byte, min(int64(initial), max))
	}
	n := 0
	for int64(n) < max {
		if n == len(buf) {
			nb := make([]byte, min(int64(2*len(buf)), max))
			copy(nb, buf[:n])
			buf = nb
		}
		k, err := r.Read(buf[n:])
		n += k
		if errors.Is(err, io.EOF) {
			return buf, n, nil
		}
		if err != nil {
			return buf, n, err
		}
	}
	return buf, n, nil
}

// Open implements blob.Store. The object is a *minio.Object: Seek turns
// into ranged GETs.
func (s *Store) Open(ctx context.Context, key string) (blob.Object, blob.Info, error) {
	obj, err := s.object(key)
	if err != nil {
		return nil, blob.Info{}, err
	}
	o, err := s.core.Client.GetObject(ctx, s.bucket, obj, minio.GetObjectOptions{})
	if err != nil {
		return nil, blob.Info{}, fmt.Errorf("open %s: %w", key, mapErr(err))
	}
	oi, err := o.Stat()
	if err != nil {
		o.Close()
		return nil, blob.Info{}, fmt.Errorf("open %s: %w", key, mapErr(err))
	}
	return o, infoOf(key, oi), nil
}

// Stat implements blob.Store. SHA256 is set when Put was given a declared
// sha256.
func (s *Store) Stat(ctx context.Context, key string) (blob.Info, error) {
	obj, err := s.object(key)
	if err != nil {
		return blob.Info{}, err
	}
	oi, err := s.core.StatObject(ctx, s.bucket, obj, minio.StatObjectOptions{})
	if err != nil {
		return blob.Info{}, fmt.Errorf("stat %s: %w", key, mapErr(err))
	}
	return infoOf(key, oi), nil
}

func infoOf(key string, oi minio.ObjectInfo) blob.Info {
	return blob.Info{Key: key, Size: oi.Size, SHA256: oi.UserMetadata[sha256Meta], ModTime: oi.LastModified}
}

// Delete implements blob.Store.
func (s *Store) Delete(ctx context.Context, key string) error {
	obj, err := s.object(key)
	if err != nil {
		return err
	}
	if err := s.core.RemoveObject(ctx, s.bucket, obj, minio.RemoveObjectOptions{}); err != nil {
		if errors.Is(mapErr(err), blob.ErrNotFound) {
			return nil
		}
		return fmt.Errorf("delete %s: %w", key, err)
	}
	return nil
}

// PresignGet implements blob.Store. S3 caps ttl at 7 days.
func (s *Store) PresignGet(ctx context.Context, key string, ttl time.Duration) (string, error) {
	obj, err := s.object(key)
	if err != nil {
		return "", err
	}
	if ttl < time.Second || ttl > 7*24*time.Hour {
		return "", fmt.Errorf("presign %s: ttl %s outside 1s..168h", key, ttl)
	}
	u, err := s.core.PresignedGetObject(ctx, s.bucket, obj, ttl, nil)
	if err != nil {
		return "", fmt.Errorf("presign %s: %w", key, err)
	}
	return u.String(), nil
}

// AbortStale aborts multipart uploads under the prefix started more than
// olderThan ago: leftovers of a process that died mid-Put. It returns how
// many it aborted.
func (s *Store) AbortStale(ctx context.Context, olderThan time.Duration) (int, error) {
	cutoff := time.Now().Add(-olderThan)
	n := 0
	for u := range s.core.ListIncompleteUploads(ctx, s.bucket, s.prefix, true) {
		if u.Err != nil {
			return n, fmt.Errorf("list incomplete uploads: %w", u.Err)
		}
		if u.Initiated.After(cutoff) {
			continue
		}
		if err := s.core.AbortMultipartUpload(ctx, s.bucket, u.Key, u.UploadID); err != nil && !isCode(err, "NoSuchUpload") {
			return n, fmt.Errorf("abort upload %s: %w", u.Key, err)
		}
		n++
	}
	return n, nil
}

func isCode(err error, code string) bool {
	return minio.ToErrorResponse(err).Code == code
}

func mapErr(err error) error {
	r := minio.ToErrorResponse(err)
	if r.Code == "NoSuchKey" || (r.StatusCode == http.StatusNotFound && r.Code != "NoSuchBucket") {
		return blob.ErrNotFound
	}
	return err
}

// List implements blob.Store. Multipart uploads in progress are not
// objects yet, so they are not listed.
func (s *Store) List(ctx context.Context, prefix string, fn func(blob.Info) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the listing goroutine if fn fails
	for oi := range s.core.Client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix + prefix, Recursive: true}) {
		if oi.Err != nil {
			return fmt.Errorf("list %s: %w", prefix, mapErr(oi.Err))
		}
		key := strings.TrimPrefix(oi.Key, s.prefix)
		if blob.ValidateKey(key) != nil {
			continue
		}
		if err := fn(blob.Info{Key: key, Size: oi.Size, ModTime: oi.LastModified}); err != nil {
			return err
		}
	}
	return ctx.Err()
}
