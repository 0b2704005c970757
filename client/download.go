package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/outpost/outpost/internal/fetch"
	"github.com/outpost/outpost/internal/tuf"
)

// Download fetches the artifact a decision offers into dest and reports
// success only when it is what the vendor signed. In order it:
//
//  1. refreshes the trusted TUF metadata in the state directory from the
//     server's /tuf/ (WithTUF, required: rollback and freeze refused
//     across runs);
//  2. binds the decision with tuf.CheckAnswer to the query of Check
//     (product, channel, platform, arch, installer type), to the installed
//     version (strictly newer) and to the release's status in the current
//     metadata; a refusal is an *AnswerError naming the field;
//  3. streams the signed target's bytes (its path under /tuf/targets/)
//     into dest+".part" with the one resumable, verified download
//     (internal/fetch): resuming with Range from what is already there
//     (re-hashing that prefix), restarting when the server ignores Range,
//     checking the Content-Range total, reading at most one byte past the
//     signed length, retrying transport failures;
//  4. compares length and sha256, then fsyncs and renames into dest.
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
	if err := c.requireTUF(); err != nil {
		return fmt.Errorf("download: %w", err)
	}
	a := *d.Artifact
	// The answer bound to the query and the current metadata first; then
	// the signed target's bytes, at its signed length and sha256.
	t, repo, err := c.checkTUFRepo(ctx, d)
	if err != nil {
		return fmt.Errorf("download %s: %w", d.Artifact.ArtifactID, err)
	}
	d.productName = repo.ProductName(d.Release.ProductID)
	a.SHA256, a.SizeBytes = t.SHA256, t.Length
	ref := "/tuf/" + tuf.TargetPath(t.Path, t.SHA256)
	u, err := c.resolve(ref)
	if err != nil {
		return fmt.Errorf("download %s: %w: %w", d.Artifact.ArtifactID, ErrProtocol, err)
	}
	part := dest + ".part"
	open := fetch.HTTP(c.send,
		func(ctx context.Context) (*http.Request, error) { return c.newRequest(ctx, "GET", u, nil) },
		func(resp *http.Response) error {
			switch resp.StatusCode {
			case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
				return fmt.Errorf("%w: %w", ErrNetwork, responseError(resp))
			}
			return responseError(resp)
		})
	want := fetch.Want{SHA256: strings.ToLower(a.SHA256), Size: a.SizeBytes}
	for attempt := 0; ; attempt++ {
		_, err = fetch.Resume(ctx, part, want, open, progress)
		if err == nil {
			break
		}
		err = downloadError(err)
		if !errors.Is(err, ErrNetwork) || attempt >= c.retries {
			return fmt.Errorf("download %s: %w", a.ArtifactID, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("download %s: %w", a.ArtifactID, ctx.Err())
		case <-time.After(c.backoff * time.Duration(attempt+1)):
		}
	}
	if err := fetch.Commit(part, dest); err != nil {
		return fmt.Errorf("download %s: %w", a.ArtifactID, err)
	}
	return nil
}

// downloadError maps the errors of the one download (internal/fetch) to
// the client's: wrong content is ErrVerification (the partial file is
// gone), an interrupted or short transfer ErrNetwork (it is kept for a
// retry), an answer for another range ErrProtocol.
func downloadError(err error) error {
	switch {
	case fetch.Verification(err):
		return fmt.Errorf("%w: %w", ErrVerification, err)
	case errors.Is(err, fetch.ErrShort), errors.Is(err, fetch.ErrInterrupted), errors.Is(err, fetch.ErrRangeNotSatisfiable):
		return fmt.Errorf("%w: %w", ErrNetwork, err)
	case errors.Is(err, fetch.ErrRange):
		return fmt.Errorf("%w: %w", ErrProtocol, err)
	}
	return err
}
