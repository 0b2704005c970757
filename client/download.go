package client

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Download fetches the artifact a decision offers into dest and reports
// success only when it is what the vendor signed. In order it:
//
//  1. fetches the snapshot the decision names and verifies it against the
//     pinned keys, threshold and tenant;
//  2. checks that the decision's release is ACTIVE in that manifest and its
//     artifact id, sha256 and size are exactly the signed ones;
//  3. streams the bytes into dest+".part", resuming with Range from what is
//     already there (re-hashing that prefix), reading at most one byte past
//     the signed size, retrying transport failures;
//  4. compares size and sha256, then fsyncs and renames into dest.
//
// A verification failure (errors.Is(err, ErrVerification)) leaves nothing
// at dest and removes the partial file; a transport failure keeps it so a
// later call resumes. progress, when not nil, is called with the bytes
// held so far and the total.
func (c *Client) Download(ctx context.Context, d *Decision, dest string, progress func(done, total int64)) error {
	if d == nil || !d.UpdateAvailable {
		return fmt.Errorf("%w: download: the decision offers no update", ErrConfig)
	}
	if err := d.validate(); err != nil {
		return fmt.Errorf("download: %w", err)
	}
	if dest == "" {
		return fmt.Errorf("%w: download: destination path is empty", ErrConfig)
	}
	m, err := c.VerifiedSnapshot(ctx, d.Snapshot.SnapshotID)
	if err != nil {
		return fmt.Errorf("download %s: %w", d.Artifact.ArtifactID, err)
	}
	if err := matchManifest(d, m); err != nil {
		return fmt.Errorf("download %s: %w", d.Artifact.ArtifactID, err)
	}
	u, err := c.resolve(d.Artifact.URL)
	if err != nil {
		return fmt.Errorf("download %s: %w: %w", d.Artifact.ArtifactID, ErrProtocol, err)
	}
	a := d.Artifact
	part := dest + ".part"
	var sum string
	for attempt := 0; ; attempt++ {
		sum, err = c.fetchPart(ctx, u.String(), part, a.SizeBytes, progress)
		if err == nil {
			break
		}
		if errors.Is(err, ErrVerification) {
			os.Remove(part)
		}
		if !errors.Is(err, ErrNetwork) || attempt >= c.retries {
			return fmt.Errorf("download %s: %w", a.ArtifactID, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("download %s: %w", a.ArtifactID, ctx.Err())
		case <-time.After(c.backoff * time.Duration(attempt+1)):
		}
	}
	if !strings.EqualFold(sum, a.SHA256) {
		os.Remove(part)
		return fmt.Errorf("download %s: %w: sha256 %s, signed %s", a.ArtifactID, ErrVerification, sum, strings.ToLower(a.SHA256))
	}
	if err := os.Rename(part, dest); err != nil {
		return fmt.Errorf("download %s: %w", a.ArtifactID, err)
	}
	if err := syncDir(filepath.Dir(dest)); err != nil {
		return fmt.Errorf("download %s: %w", a.ArtifactID, err)
	}
	return nil
}

// fetchPart brings part up to size bytes and returns its sha256. Transport
// failures wrap ErrNetwork and leave the file for resume; more bytes than
// size wrap ErrVerification.
func (c *Client) fetchPart(ctx context.Context, rawURL, part string, size int64, progress func(int64, int64)) (string, error) {
	f, err := os.OpenFile(part, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return "", fmt.Errorf("open partial file: %w", err)
	}
	defer f.Close()
	have, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return "", fmt.Errorf("partial file: %w", err)
	}
	h := sha256.New()
	if have > size {
		have = 0
	}
	if have > 0 {
		// Re-hash what an earlier attempt wrote: the final hash must cover
		// every byte that ends up at dest.
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return "", fmt.Errorf("partial file: %w", err)
		}
		n, err := io.Copy(h, io.LimitReader(f, have))
		if err != nil || n != have {
			return "", fmt.Errorf("rehash partial file: read %d of %d bytes: %v", n, have, err)
		}
	}
	if err := restartAt(f, have); err != nil {
		return "", err
	}
	if progress != nil {
		progress(have, size)
	}
	if have == size {
		return finish(f, h)
	}

	u, _ := c.resolve(rawURL)
	req, err := c.newRequest(ctx, "GET", u, nil)
	if err != nil {
		return "", err
	}
	if have > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(have, 10)+"-")
	}
	resp, err := c.send(req)
	if err != nil {
		return "", err
	}
	defer drainClose(resp.Body)
	switch resp.StatusCode {
	case http.StatusOK:
		if have > 0 { // the server ignored Range: start over
			have = 0
			h.Reset()
			if err := restartAt(f, 0); err != nil {
				return "", err
			}
		}
	case http.StatusPartialContent:
		start, total, err := parseContentRange(resp.Header.Get("Content-Range"))
		if err != nil {
			return "", fmt.Errorf("%w: %w", ErrProtocol, err)
		}
		if start != have {
			return "", fmt.Errorf("%w: asked for bytes from %d, got from %d", ErrProtocol, have, start)
		}
		if total >= 0 && total != size {
			return "", fmt.Errorf("%w: server says the artifact is %d bytes, signed %d", ErrVerification, total, size)
		}
	case http.StatusRequestedRangeNotSatisfiable:
		// Our prefix is not a prefix of theirs: start over next attempt.
		if err := restartAt(f, 0); err != nil {
			return "", err
		}
		return "", fmt.Errorf("%w: range from %d not satisfiable", ErrNetwork, have)
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return "", fmt.Errorf("%w: %w", ErrNetwork, responseError(resp))
	default:
		return "", responseError(resp)
	}
	remaining := size - have
	if resp.ContentLength > remaining {
		return "", fmt.Errorf("%w: server sends %d bytes, only %d remain of the signed %d", ErrVerification, resp.ContentLength, remaining, size)
	}
	// One byte more than the signed size is enough to know it is wrong.
	body := io.LimitReader(resp.Body, remaining+1)
	buf := make([]byte, 256<<10)
	done := have
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			if done+int64(n) > size {
				return "", fmt.Errorf("%w: more than the signed %d bytes", ErrVerification, size)
			}
			if _, err := f.Write(buf[:n]); err != nil {
				return "", fmt.Errorf("write partial file: %w", err)
			}
			h.Write(buf[:n])
			done += int64(n)
			if progress != nil {
				progress(done, size)
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			if ctx.Err() != nil {
				return "", ctx.Err()
			}
			return "", fmt.Errorf("%w: read after %d of %d bytes: %w", ErrNetwork, done, size, rerr)
		}
	}
	if done < size {
		return "", fmt.Errorf("%w: connection closed after %d of %d bytes", ErrNetwork, done, size)
	}
	return finish(f, h)
}

func restartAt(f *os.File, off int64) error {
	if err := f.Truncate(off); err != nil {
		return fmt.Errorf("truncate partial file: %w", err)
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return fmt.Errorf("seek partial file: %w", err)
	}
	return nil
}

func finish(f *os.File, h hash.Hash) (string, error) {
	if err := f.Sync(); err != nil {
		return "", fmt.Errorf("fsync partial file: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// parseContentRange parses "bytes START-END/TOTAL" (TOTAL may be *, -1).
func parseContentRange(s string) (start, total int64, err error) {
	rest, ok := strings.CutPrefix(s, "bytes ")
	if !ok {
		return 0, 0, fmt.Errorf("content-range %q: not bytes", short(s))
	}
	rng, tot, ok := strings.Cut(rest, "/")
	if !ok {
		return 0, 0, fmt.Errorf("content-range %q: no total", short(s))
	}
	a, b, ok := strings.Cut(rng, "-")
	if !ok {
		return 0, 0, fmt.Errorf("content-range %q: no range", short(s))
	}
	start, err1 := strconv.ParseInt(a, 10, 64)
	end, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || start < 0 || end < start {
		return 0, 0, fmt.Errorf("content-range %q: bad range", short(s))
	}
	total = -1
	if tot != "*" {
		if total, err = strconv.ParseInt(tot, 10, 64); err != nil || total <= end {
			return 0, 0, fmt.Errorf("content-range %q: bad total", short(s))
		}
	}
	return start, total, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync dir: %w", err)
	}
	return nil
}
