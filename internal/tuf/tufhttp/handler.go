// Package tufhttp serves one tenant's TUF repository over HTTP in the
// layout an unmodified TUF client expects (docs/metadata.md, "Serving"):
//
//	<prefix>metadata/<v>.root.json, <prefix>metadata/timestamp.json,
//	<prefix>metadata/<v>.<role>.json          consistent snapshots
//	<prefix>targets/<dir>/<sha256>.<name>      documents and artifacts
//
// The bytes come from a Repo: the mirror backs it with its verified state
// and its artifact cache, tests with the builder's output in memory
// (MemRepo), a published directory with DirRepo. Targets are streamed
// with http.ServeContent (Range, conditional requests, sendfile when the
// Repo returns an *os.File); metadata is gzip-compressed for clients that
// accept it. Every name is checked before the Repo sees it: anything the
// layout does not produce is a 404.
package tufhttp

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/tuf"
	"github.com/outpost/outpost/internal/wire"
)

// Repo is one tenant's published repository, read by name.
type Repo interface {
	// Metadata returns the metadata file name: "timestamp.json" or
	// "<version>.<role>.json" (root versions included). An unknown name
	// gives an error wrapping tuf.ErrNotFound.
	Metadata(ctx context.Context, name string) ([]byte, error)
	// Target opens the bytes of the target path (as the signed metadata
	// lists it: "<dir>/<name>") whose sha256 is sum (64 lowercase hex).
	// Return an *os.File where there is one: the response is then sent
	// with sendfile. An unknown target gives an error wrapping
	// tuf.ErrNotFound.
	Target(ctx context.Context, path, sum string) (io.ReadSeekCloser, error)
}

// Options configure a Handler.
type Options struct {
	// Prefix is the URL path the repository is mounted at; default "/tuf/".
	Prefix string
	// MaxMetadata caps a metadata file served; default 32 MiB (the
	// client's cap on a targets role). A larger one is a 500, never sent.
	MaxMetadata int64
	// MaxTarget caps a target served; 0 for no cap.
	MaxTarget int64
	// GzipMin is the smallest metadata file sent gzip-compressed to a
	// client that accepts it; default 512 bytes.
	GzipMin int
	// GzipCache bounds the bytes of compressed metadata kept for reuse
	// (metadata files are immutable but for timestamp.json); default
	// 16 MiB, negative to keep none.
	GzipCache int
	// OnError, if set, is told of every failure that is not the client's
	// (a Repo error other than not found, oversized metadata).
	OnError func(r *http.Request, err error)
}

func (o Options) withDefaults() Options {
	if o.Prefix == "" {
		o.Prefix = "/tuf/"
	}
	if !strings.HasSuffix(o.Prefix, "/") {
		o.Prefix += "/"
	}
	if o.MaxMetadata <= 0 {
		o.MaxMetadata = 32 << 20
	}
	if o.GzipMin <= 0 {
		o.GzipMin = 512
	}
	if o.GzipCache == 0 {
		o.GzipCache = 16 << 20
	}
	return o
}

// maxPath caps the request path below the prefix (the layout's names are
// at most 512 bytes, tuf.CheckPath).
const maxPath = 512

// Handler serves a Repo. It is safe for concurrent use.
type Handler struct {
	repo Repo
	o    Options

	mu     sync.Mutex
	gz     map[[sha256.Size]byte][]byte
	gzSize int
}

// New returns a Handler serving repo.
func New(repo Repo, o Options) *Handler {
	return &Handler{repo: repo, o: o.withDefaults(), gz: map[[sha256.Size]byte][]byte{}}
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		wire.NoRoute(w, r)
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, h.o.Prefix)
	if !ok || len(rest) > maxPath || tuf.CheckPath(rest) != nil {
		notFound(w, r)
		return
	}
	if name, ok := strings.CutPrefix(rest, tuf.MetadataDir+"/"); ok {
		if !metadataName(name) {
			notFound(w, r)
			return
		}
		h.serveMetadata(w, r, name)
		return
	}
	if tp, ok := strings.CutPrefix(rest, tuf.TargetsDir+"/"); ok {
		path, sum, ok := targetName(tp)
		if !ok {
			notFound(w, r)
			return
		}
		h.serveTarget(w, r, path, sum)
		return
	}
	notFound(w, r)
}

// metadataName says whether name is "timestamp.json" or
// "<version>.<role>.json" with a positive version without leading zeros.
func metadataName(name string) bool {
	if strings.Contains(name, "/") {
		return false
	}
	if name == "timestamp.json" {
		return true
	}
	v, role, ok := strings.Cut(name, ".")
	if !ok || v == "" || v[0] == '0' || len(v) > 19 {
		return false
	}
	for _, c := range v {
		if c < '0' || c > '9' {
			return false
		}
	}
	role, ok = strings.CutSuffix(role, ".json")
	return ok && role != "" && role[0] != '.' && role != "timestamp"
}

// targetName splits "<dir>/<sha256>.<name>" into the target path
// "<dir>/<name>" and the sha256.
func targetName(p string) (path, sum string, ok bool) {
	dir, base := "", p
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		dir, base = p[:i+1], p[i+1:]
	}
	sum, name, ok := strings.Cut(base, ".")
	if !ok || name == "" || len(sum) != 2*sha256.Size {
		return "", "", false
	}
	for _, c := range sum {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return "", "", false
		}
	}
	return dir + name, sum, true
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, tuf.ErrNotFound) {
		notFound(w, r)
		return
	}
	if h.o.OnError != nil {
		h.o.OnError(r, err)
	}
	// Told to OnError; the answer withholds the details.
	wire.WriteError(w, r, nil, err)
}

// notFound answers a file the repository does not hold, or a name that
// is none of its layout, in the wire shape of both daemons.
func notFound(w http.ResponseWriter, r *http.Request) {
	wire.WriteError(w, r, nil, catalog.Errorf(catalog.ENOTFOUND, "no TUF file %s", r.URL.Path))
}

func (h *Handler) serveMetadata(w http.ResponseWriter, r *http.Request, name string) {
	data, err := h.repo.Metadata(r.Context(), name)
	if err != nil {
		h.fail(w, r, fmt.Errorf("metadata %s: %w", name, err))
		return
	}
	if int64(len(data)) > h.o.MaxMetadata {
		h.fail(w, r, fmt.Errorf("metadata %s: %d bytes, at most %d: %w", name, len(data), h.o.MaxMetadata, tuf.ErrTooLarge))
		return
	}
	sum := sha256.Sum256(data)
	hd := w.Header()
	hd.Set("Content-Type", "application/json")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Vary", "Accept-Encoding")
	if name == "timestamp.json" {
		hd.Set("Cache-Control", "no-cache")
	} else {
		hd.Set("Cache-Control", "public, max-age=31536000, immutable")
	}
	etag := hex.EncodeToString(sum[:16])
	if len(data) >= h.o.GzipMin && acceptsGzip(r.Header.Get("Accept-Encoding")) {
		gz, err := h.gzip(sum, data)
		if err != nil {
			h.fail(w, r, fmt.Errorf("metadata %s: %w", name, err))
			return
		}
		hd.Set("Content-Encoding", "gzip")
		hd.Set("ETag", `"`+etag+`-gz"`)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(gz))
		return
	}
	hd.Set("ETag", `"`+etag+`"`)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
}

// gzip returns data compressed, from the cache when it is there.
func (h *Handler) gzip(sum [sha256.Size]byte, data []byte) ([]byte, error) {
	h.mu.Lock()
	gz, ok := h.gz[sum]
	h.mu.Unlock()
	if ok {
		return gz, nil
	}
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(data); err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	gz = buf.Bytes()
	if h.o.GzipCache > 0 && len(gz) <= h.o.GzipCache {
		h.mu.Lock()
		if h.gzSize+len(gz) > h.o.GzipCache {
			clear(h.gz) // bounded, and simple: the hot files come back at once
			h.gzSize = 0
		}
		if _, ok := h.gz[sum]; !ok {
			h.gz[sum] = gz
			h.gzSize += len(gz)
		}
		h.mu.Unlock()
	}
	return gz, nil
}

// acceptsGzip says whether an Accept-Encoding header accepts gzip
// (explicitly, with a non-zero q).
func acceptsGzip(header string) bool {
	for part := range strings.SplitSeq(header, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			continue
		}
		for p := range strings.SplitSeq(params, ";") {
			k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
			if strings.EqualFold(strings.TrimSpace(k), "q") {
				if q, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil && q <= 0 {
					return false
				}
			}
		}
		return true
	}
	return false
}

func (h *Handler) serveTarget(w http.ResponseWriter, r *http.Request, path, sum string) {
	f, err := h.repo.Target(r.Context(), path, sum)
	if err != nil {
		h.fail(w, r, fmt.Errorf("target %s: %w", path, err))
		return
	}
	defer f.Close()
	if h.o.MaxTarget > 0 {
		n, err := f.Seek(0, io.SeekEnd)
		if err == nil && n > h.o.MaxTarget {
			err = fmt.Errorf("%d bytes, at most %d: %w", n, h.o.MaxTarget, tuf.ErrTooLarge)
		}
		if err == nil {
			_, err = f.Seek(0, io.SeekStart)
		}
		if err != nil {
			h.fail(w, r, fmt.Errorf("target %s: %w", path, err))
			return
		}
	}
	hd := w.Header()
	hd.Set("Content-Type", "application/octet-stream")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Cache-Control", "public, max-age=31536000, immutable")
	hd.Set("ETag", `"`+sum+`"`)
	http.ServeContent(w, r, "", time.Time{}, f)
}
