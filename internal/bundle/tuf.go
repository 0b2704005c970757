package bundle

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// The TUF bundle (trust: tuf). The container is the same tar with the
// same reader checks; its first entry is TUFManifestName, a JSON
// TUFManifest naming the format. Then come Files entries of the tenant's
// repository in its consistent-snapshot layout (metadata/<v>.root.json,
// metadata/timestamp.json, metadata/<v>.<role>.json, targets/<dir>/<sha256>.<name>
// documents), then the artifacts, each under its target path
// (targets/<product>/<sha256>.<release_artifact>). A mirror reads the
// first part into a directory and runs the TUF workflow over it before
// it takes any artifact.

// TUFManifestName is the first entry of a TUF bundle.
const TUFManifestName = "tuf-bundle.json"

// FormatTUF is the Format of a TUF bundle's manifest.
const FormatTUF = "tuf"

// MaxTUFManifest caps the manifest entry.
const MaxTUFManifest = 64 << 10

// ErrWrongFormat is returned when a bundle is of the other format than
// the mirror's trust mode reads (wrapped in ErrInvalid).
var ErrWrongFormat = errors.New("wrong bundle format")

// TUFManifest is the first entry of a TUF bundle. It is not signed: the
// mirror trusts only what the repository files inside verify to; the
// manifest tells it how to read them and lets an operator see what a
// bundle holds.
type TUFManifest struct {
	Format   string `json:"format"` // FormatTUF
	TenantID string `json:"tenant_id"`
	// Since is the snapshot version the bundle is relative to (the
	// receiving mirror's sequence): 0 for a full bundle.
	Since            int64 `json:"since"`
	RootVersion      int64 `json:"root_version"`
	TimestampVersion int64 `json:"timestamp_version"`
	SnapshotVersion  int64 `json:"snapshot_version"`
	// Files is how many repository files (metadata and documents)
	// follow the manifest; Artifacts how many artifact entries follow
	// them.
	Files     int `json:"files"`
	Artifacts int `json:"artifacts"`
	// Ack says the entry right after the manifest is AckName, the
	// vendor's signed acknowledgement of the mirror's return files
	// (bundles exported for one mirror).
	Ack bool `json:"ack,omitempty"`
	// Deltas is how many of the artifact entries are signed deltas
	// (targets/<product>/<sha256>.delta-<from_sha256>-<to_sha256>, tuf.DeltaTarget)
	// carried instead of their target artifact, for a receiver that
	// holds the base.
	Deltas int `json:"deltas,omitempty"`
}

// TUFWriter writes a TUF bundle: the manifest, exactly Files files,
// then exactly Artifacts artifacts.
type TUFWriter struct {
	tw        *tar.Writer
	man       TUFManifest
	files     int
	artifacts int
	seen      map[string]bool
}

// NewTUFWriter starts a TUF bundle on w with its manifest.
func NewTUFWriter(w io.Writer, m TUFManifest) (*TUFWriter, error) {
	m.Format = FormatTUF
	if m.Files < 1 || m.Artifacts < 0 {
		return nil, fmt.Errorf("bundle: manifest counts %d files, %d artifacts", m.Files, m.Artifacts)
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("bundle: encode manifest: %w", err)
	}
	tw := &TUFWriter{tw: tar.NewWriter(w), man: m, seen: map[string]bool{}}
	if err := tw.write(TUFManifestName, int64(len(b)), strings.NewReader(string(b))); err != nil {
		return nil, err
	}
	return tw, nil
}

// WriteAck writes the acknowledgement the manifest announces (Ack), right
// after the manifest.
func (w *TUFWriter) WriteAck(env []byte) error {
	switch {
	case !w.man.Ack:
		return errors.New("bundle: the manifest announces no acknowledgement")
	case w.seen[AckName] || w.files > 0:
		return errors.New("bundle: the acknowledgement goes once, right after the manifest")
	case len(env) > MaxAckEntry:
		return fmt.Errorf("bundle: acknowledgement of %d bytes is over the %d byte cap", len(env), MaxAckEntry)
	}
	return w.write(AckName, int64(len(env)), bytes.NewReader(env))
}

func (w *TUFWriter) write(name string, size int64, r io.Reader) error {
	if w.seen[name] {
		return fmt.Errorf("bundle: %s written twice", name)
	}
	w.seen[name] = true
	hdr := &tar.Header{Name: name, Size: size, Mode: 0o644, Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0).UTC(), Format: tar.FormatPAX}
	if err := w.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("bundle: write header %s: %w", name, err)
	}
	n, err := io.Copy(w.tw, io.LimitReader(r, size))
	if err != nil {
		return fmt.Errorf("bundle: write %s: %w", name, err)
	}
	if n != size {
		return fmt.Errorf("bundle: %s: got %d of %d bytes", name, n, size)
	}
	return nil
}

// WriteFile writes one repository file (metadata or document) by its
// path in the repository ("metadata/2.root.json").
func (w *TUFWriter) WriteFile(path string, data []byte) error {
	if w.man.Ack && !w.seen[AckName] {
		return errors.New("bundle: the acknowledgement the manifest announces comes first")
	}
	if w.files >= w.man.Files {
		return fmt.Errorf("bundle: more than the %d files the manifest counts", w.man.Files)
	}
	if err := checkRepoPath(path); err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	w.files++
	return w.write(path, int64(len(data)), bytes.NewReader(data))
}

// WriteArtifact streams one artifact of exactly size bytes under its
// target path ("targets/<product>/<sha256>.<release_artifact>").
func (w *TUFWriter) WriteArtifact(path string, size int64, r io.Reader) error {
	if w.files != w.man.Files {
		return fmt.Errorf("bundle: artifact before the %d files the manifest counts", w.man.Files)
	}
	if w.artifacts >= w.man.Artifacts {
		return fmt.Errorf("bundle: more than the %d artifacts the manifest counts", w.man.Artifacts)
	}
	if err := checkRepoPath(path); err != nil || !strings.HasPrefix(path, "targets/") {
		return fmt.Errorf("bundle: artifact path %q", path)
	}
	w.artifacts++
	return w.write(path, size, r)
}

// Close checks the counts and writes the end-of-archive marker. It does
// not close the underlying writer.
func (w *TUFWriter) Close() error {
	if w.files != w.man.Files || w.artifacts != w.man.Artifacts {
		return fmt.Errorf("bundle: wrote %d files and %d artifacts, the manifest counts %d and %d", w.files, w.artifacts, w.man.Files, w.man.Artifacts)
	}
	return w.tw.Close()
}

// checkRepoPath accepts metadata/… and targets/… paths of plain
// [A-Za-z0-9._-] segments (the names the TUF layout uses).
func checkRepoPath(p string) error {
	if len(p) > 512 || !(strings.HasPrefix(p, "metadata/") || strings.HasPrefix(p, "targets/")) {
		return fmt.Errorf("path %q is not under metadata/ or targets/", p)
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("path %q: bad segment %q", p, seg)
		}
		for _, c := range seg {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
				return fmt.Errorf("path %q: character %q", p, c)
			}
		}
	}
	return nil
}

// TUFManifest reads the first entry, which must be a TUF bundle's
// manifest. A schema 1 bundle is refused with ErrWrongFormat.
func (r *Reader) TUFManifest() (*TUFManifest, error) {
	if r.started {
		return nil, errors.New("bundle: manifest already read")
	}
	r.started = true
	hdr, err := r.next()
	if err == io.EOF {
		return nil, invalid("empty bundle")
	}
	if err != nil {
		return nil, err
	}
	if hdr.Name == EnvelopeName {
		return nil, fmt.Errorf("%w: %w: this is a schema 1 (DSSE) bundle, which is no longer supported; export a TUF bundle (controlplane bundle export)", ErrInvalid, ErrWrongFormat)
	}
	if hdr.Name != TUFManifestName {
		return nil, invalid("first entry is %q, want %q", hdr.Name, TUFManifestName)
	}
	if hdr.Size > MaxTUFManifest {
		return nil, invalid("%s is %d bytes, over the %d byte cap", TUFManifestName, hdr.Size, MaxTUFManifest)
	}
	b, err := io.ReadAll(r.Body())
	if err != nil {
		return nil, invalid("read %s: %v", TUFManifestName, err)
	}
	var m TUFManifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, invalid("%s: %v", TUFManifestName, err)
	}
	switch {
	case m.Format != FormatTUF:
		return nil, invalid("%s: format %q, want %q", TUFManifestName, m.Format, FormatTUF)
	case m.Files < 1 || m.Files > MaxTUFFiles:
		return nil, invalid("%s: %d files, want 1 to %d", TUFManifestName, m.Files, MaxTUFFiles)
	case m.Artifacts < 0:
		return nil, invalid("%s: %d artifacts", TUFManifestName, m.Artifacts)
	}
	r.man = &m
	if m.Ack {
		hdr, err := r.next()
		if err == io.EOF {
			return nil, invalid("the manifest announces %s, the bundle ends", AckName)
		}
		if err != nil {
			return nil, err
		}
		if hdr.Name != AckName {
			return nil, invalid("second entry is %q, the manifest announces %s", hdr.Name, AckName)
		}
		if hdr.Size > MaxAckEntry {
			return nil, invalid("%s is %d bytes, over the %d byte cap", AckName, hdr.Size, MaxAckEntry)
		}
		if r.ack, err = io.ReadAll(r.Body()); err != nil {
			return nil, invalid("read %s: %v", AckName, err)
		}
	}
	return &m, nil
}

// MaxTUFFiles caps the repository files a TUF bundle may hold.
const MaxTUFFiles = 1 << 20

// FileEntry is one entry of a TUF bundle: a repository file or an
// artifact, named by its repository path. Read its bytes from
// Reader.Body before calling NextFile again.
type FileEntry struct {
	Path     string
	Size     int64
	Artifact bool // past the manifest's Files count
}

// NextFile returns the next entry of a TUF bundle, or io.EOF after the
// last one. It refuses more entries than the manifest counts, fewer
// (at the end), and a name outside metadata/ and targets/.
func (r *Reader) NextFile() (FileEntry, error) {
	if r.man == nil {
		return FileEntry{}, errors.New("bundle: read the TUF manifest first")
	}
	if r.done {
		return FileEntry{}, io.EOF
	}
	hdr, err := r.next()
	if err == io.EOF {
		r.done = true
		if r.count != r.man.Files+r.man.Artifacts {
			return FileEntry{}, invalid("%d entries, the manifest counts %d files and %d artifacts", r.count, r.man.Files, r.man.Artifacts)
		}
		return FileEntry{}, io.EOF
	}
	if err != nil {
		return FileEntry{}, err
	}
	if err := checkRepoPath(hdr.Name); err != nil {
		return FileEntry{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	r.count++
	if r.count > r.man.Files+r.man.Artifacts {
		return FileEntry{}, invalid("more entries than the manifest counts (%d files, %d artifacts)", r.man.Files, r.man.Artifacts)
	}
	art := r.count > r.man.Files
	if art && !strings.HasPrefix(hdr.Name, "targets/") {
		return FileEntry{}, invalid("artifact entry %q is not under targets/", hdr.Name)
	}
	return FileEntry{Path: hdr.Name, Size: hdr.Size, Artifact: art}, nil
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
