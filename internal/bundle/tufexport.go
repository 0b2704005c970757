package bundle

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/outpost/outpost/internal/tuf"
)

// TUFExport is what ExportTUF reads.
type TUFExport struct {
	TenantID string
	// Since is the snapshot version the receiver holds (0: none); it
	// is recorded in the manifest. Held must be built for it.
	Since int64
	// Repo reads the tenant's published repository by path.
	Repo tuf.Fetcher
	// Held is the receiver's trusted state as the exporter reconstructs
	// it (tuf.NewReceiverStore): ExportTUF runs the TUF client workflow
	// from it against Repo and carries exactly the files the workflow
	// fetched, so the receiver's own run of the workflow finds each of
	// them in the bundle. Writes go to Held.
	Held tuf.Store
	// Select picks, from the artifact targets the workflow found added
	// or changed, those the bundle carries, and checks that each can be
	// opened (it runs before the first byte is written). repo is the
	// verified repository the receiver will hold. It may return, instead
	// of an artifact, a signed delta to it as a pseudo-target
	// (tuf.DeltaTarget path, the delta's length and sha256) when the
	// receiver holds the delta's base. Nil carries no artifact.
	Select func(ctx context.Context, added []tuf.Target, repo *tuf.Repository) ([]tuf.Target, error)
	// Open opens a selected artifact's bytes (exactly its signed length).
	Open   func(ctx context.Context, t tuf.Target) (io.ReadCloser, error)
	Now    func() time.Time
	Limits tuf.Limits
	// TempDir holds the repository files between the workflow and the
	// write ("" is the system default).
	TempDir string
	// Ack, when set, is the vendor's signed acknowledgement of the
	// receiving mirror's return files, carried right after the manifest.
	Ack []byte
}

// recorder spools every file the workflow fetches to a temporary file,
// so the bundle carries the very bytes that verified (the timestamp
// can be re-signed meanwhile).
type recorder struct {
	src   tuf.Fetcher
	spool *os.File
	off   int64
	files []spooled
}

type spooled struct {
	path     string
	off, len int64
}

func (r *recorder) Fetch(ctx context.Context, path string, maxBytes int64) (io.ReadCloser, error) {
	rc, err := r.src.Fetch(ctx, path, maxBytes)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxBytes+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > maxBytes {
		return nil, fmt.Errorf("%s: more than %d bytes: %w", path, maxBytes, tuf.ErrTooLarge)
	}
	if _, err := r.spool.Write(b); err != nil {
		return nil, fmt.Errorf("spool %s: %w", path, err)
	}
	r.files = append(r.files, spooled{path: path, off: r.off, len: int64(len(b))})
	r.off += int64(len(b))
	return io.NopCloser(bytesReader(b)), nil
}

// ExportTUF writes a TUF bundle of o.TenantID to w: the repository files
// the receiver lacks, then the selected artifacts. Every check that can
// fail (the workflow verifying what it carries, Select) runs before the
// first byte is written; memory stays flat (files are spooled to disk,
// artifacts stream one at a time).
func ExportTUF(ctx context.Context, w io.Writer, o TUFExport) (*TUFManifest, error) {
	spool, err := os.CreateTemp(o.TempDir, "tuf-bundle-*.spool")
	if err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	defer os.Remove(spool.Name())
	defer spool.Close()
	rec := &recorder{src: o.Repo, spool: spool}
	c := tuf.NewClient(o.TenantID, rec, o.Held, tuf.ClientOptions{Limits: o.Limits, Now: o.Now})
	ch, err := c.Update(ctx)
	if err != nil {
		return nil, fmt.Errorf("bundle: the repository does not verify from the receiver's state: %w", err)
	}
	var arts []tuf.Target
	if o.Select != nil && len(ch.Targets) > 0 {
		if arts, err = o.Select(ctx, ch.Targets, c.Repository()); err != nil {
			return nil, err
		}
	}
	if len(rec.files) == 0 {
		return nil, errors.New("bundle: the workflow fetched nothing")
	}
	m := TUFManifest{
		TenantID: o.TenantID, Since: o.Since, RootVersion: ch.RootVersion, TimestampVersion: ch.TimestampVersion,
		SnapshotVersion: ch.SnapshotVersion, Files: len(rec.files), Artifacts: len(arts), Ack: o.Ack != nil,
	}
	for _, t := range arts {
		if _, _, _, ok := tuf.ParseDeltaTarget(t.Path); ok {
			m.Deltas++
		}
	}
	tw, err := NewTUFWriter(w, m)
	if err != nil {
		return nil, err
	}
	if o.Ack != nil {
		if err := tw.WriteAck(o.Ack); err != nil {
			return nil, err
		}
	}
	for _, f := range rec.files {
		b := make([]byte, f.len)
		if _, err := spool.ReadAt(b, f.off); err != nil {
			return nil, fmt.Errorf("bundle: read spool: %w", err)
		}
		if err := tw.WriteFile(f.path, b); err != nil {
			return nil, err
		}
	}
	for _, t := range arts {
		rc, err := o.Open(ctx, t)
		if err != nil {
			return nil, fmt.Errorf("bundle: artifact %s: %w", t.Path, err)
		}
		err = tw.WriteArtifact(tuf.TargetPath(t.Path, t.SHA256), t.Length, rc)
		rc.Close()
		if err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	m.Format = FormatTUF
	return &m, nil
}
