package client

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/outpost/outpost/internal/delta"
	"github.com/outpost/outpost/internal/fetch"
	"github.com/outpost/outpost/internal/snapshot"
)

// InstalledFile returns the sha256 (lowercase hex) of the file at path,
// streaming: the value for Query.InstalledSHA256.
func InstalledFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("installed file: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("installed file: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// DeltaResult says how DownloadFrom got the artifact.
type DeltaResult struct {
	// Used is true when the artifact was rebuilt from the installed file
	// and a delta; false when the full artifact was downloaded.
	Used bool
	// Transferred is the bytes downloaded in this call (the delta's,
	// or the full artifact's).
	Transferred int64
	// Fallback says why a delta offered was not used ("" when none was
	// offered or it was used).
	Fallback string
}

// DownloadFrom is Download for a client that holds the artifact it has
// installed (installed, a file path): when the decision offers a delta
// from that file's sha256 and the signed snapshot lists that exact delta
// (its sha256, size, from and to hashes), it downloads the delta (about
// its own size: progress counts the bytes actually transferred), applies
// it to installed, verifies the rebuilt file against the artifact's
// signed size and sha256 and writes it atomically to dest. On any failure
// of that path — not signed, base mismatch, a corrupted, truncated or
// wrong delta, a rebuild that does not verify, a transfer error — it falls
// back to Download of the full artifact. Nothing unverified is ever left
// at dest. With WithTUF the answer is first bound to the verified TUF
// metadata (as Download does) and the delta must be listed in the verified
// product document.
func (c *Client) DownloadFrom(ctx context.Context, d *Decision, dest, installed string, progress func(done, total int64)) (DeltaResult, error) {
	var res DeltaResult
	if d != nil && d.UpdateAvailable && d.Delta != nil && installed != "" && dest != "" {
		n, err := c.downloadDelta(ctx, d, dest, installed, progress)
		res.Transferred = n
		if err == nil {
			res.Used = true
			return res, nil
		}
		if ctx.Err() != nil {
			return res, err
		}
		res.Fallback = err.Error()
	}
	var last int64
	err := c.Download(ctx, d, dest, func(done, total int64) {
		last = done
		if progress != nil {
			progress(done, total)
		}
	})
	res.Transferred += last
	return res, err
}

// downloadDelta is the delta path of DownloadFrom; it returns the delta
// bytes transferred.
func (c *Client) downloadDelta(ctx context.Context, d *Decision, dest, installed string, progress func(done, total int64)) (int64, error) {
	if err := d.validate(); err != nil {
		return 0, err
	}
	m, err := c.deltaManifest(ctx, d)
	if err != nil {
		return 0, err
	}
	sd, err := signedDelta(d, m)
	if err != nil {
		return 0, err
	}
	fi, err := os.Stat(installed)
	if err != nil {
		return 0, fmt.Errorf("installed file: %w", err)
	}
	var baseSize int64 = -1
	for i := range m.Artifacts {
		if m.Artifacts[i].SHA256 == sd.FromSHA256 {
			baseSize = m.Artifacts[i].SizeBytes
		}
	}
	if fi.Size() != baseSize {
		return 0, fmt.Errorf("%w: installed file is %d bytes, the delta's base %d", ErrVerification, fi.Size(), baseSize)
	}
	// The base must be the delta's before a byte of the delta is fetched.
	if sum, err := InstalledFile(installed); err != nil {
		return 0, err
	} else if sum != sd.FromSHA256 {
		return 0, fmt.Errorf("%w: installed file is not the delta's base", ErrVerification)
	}
	want := delta.Want{BaseSize: baseSize, Size: d.Artifact.SizeBytes}
	if want.BaseSHA256, err = delta.ParseDigest(sd.FromSHA256); err != nil {
		return 0, err
	}
	if want.SHA256, err = delta.ParseDigest(sd.ToSHA256); err != nil {
		return 0, err
	}
	u, err := c.resolve(d.Delta.URL)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", ErrProtocol, err)
	}
	part := dest + ".delta.part"
	defer os.Remove(part)
	open := fetch.HTTP(c.send,
		func(ctx context.Context) (*http.Request, error) { return c.newRequest(ctx, "GET", u, nil) },
		responseError)
	var got int64
	_, err = fetch.Resume(ctx, part, fetch.Want{SHA256: sd.SHA256, Size: sd.SizeBytes}, open, func(done, total int64) {
		got = done
		if progress != nil {
			progress(done, total)
		}
	})
	if err != nil {
		return got, fmt.Errorf("delta %s: %w", sd.DeltaID, downloadError(err))
	}
	// The base was just hashed; the rebuilt file is verified either way.
	if err := delta.ApplyFile(ctx, dest, part, installed, want, delta.ApplyOptions{BaseVerified: true}); err != nil {
		return got, fmt.Errorf("%w: delta %s: %w", ErrVerification, sd.DeltaID, err)
	}
	return got, nil
}

// deltaManifest verifies the decision end to end against the verified
// TUF metadata (WithTUF) and returns the verified manifest whose deltas
// count.
func (c *Client) deltaManifest(ctx context.Context, d *Decision) (*snapshot.Manifest, error) {
	if err := c.requireTUF(); err != nil {
		return nil, err
	}
	t, repo, err := c.checkTUFRepo(ctx, d)
	if err != nil {
		return nil, err
	}
	if t.SHA256 != strings.ToLower(d.Artifact.SHA256) || t.Length != d.Artifact.SizeBytes {
		return nil, fmt.Errorf("%w: the answer's artifact is not the signed target %s", ErrVerification, t.Path)
	}
	m, err := repo.Manifest()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrVerification, err)
	}
	d.productName = repo.ProductName(d.Release.ProductID)
	return m, nil
}

// signedDelta finds the decision's delta in the signed manifest: the same
// id, hashes and size, rebuilding exactly the decision's artifact.
func signedDelta(d *Decision, m *snapshot.Manifest) (*snapshot.Delta, error) {
	for i := range m.Deltas {
		sd := &m.Deltas[i]
		if sd.DeltaID != d.Delta.DeltaID {
			continue
		}
		if sd.SHA256 != strings.ToLower(d.Delta.SHA256) || sd.SizeBytes != d.Delta.SizeBytes ||
			sd.FromSHA256 != strings.ToLower(d.Delta.FromSHA256) || sd.ToSHA256 != strings.ToLower(d.Delta.ToSHA256) {
			return nil, fmt.Errorf("%w: delta %s disagrees with the signed snapshot", ErrVerification, sd.DeltaID)
		}
		if sd.ToSHA256 != strings.ToLower(d.Artifact.SHA256) || sd.ToArtifactID != d.Artifact.ArtifactID {
			return nil, fmt.Errorf("%w: delta %s does not rebuild artifact %s", ErrVerification, sd.DeltaID, d.Artifact.ArtifactID)
		}
		return sd, nil
	}
	return nil, fmt.Errorf("%w: delta %s is not in signed snapshot %s", ErrVerification, d.Delta.DeltaID, m.SnapshotID)
}
