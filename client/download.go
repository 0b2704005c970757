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
//  1. fetches the snapshot the decision names and verifies it against the
//     pinned keys, threshold and tenant;
//  2. checks that the decision's release is ACTIVE in that manifest and its
//     artifact id, sha256 and size are exactly the signed ones;
//  3. streams the bytes into dest+".part" with the one resumable, verified
//     download (internal/fetch): resuming with Range from what is already
//     there (re-hashing that prefix), restarting when the server ignores
//     Range, checking the Content-Range total, reading at most one byte past
//     the signed size, retrying transport failures;
//  4. compares size and sha256, then fsyncs and renames into dest.
//
// With WithTUF, steps 1 and 2 are instead: refresh the trusted metadata
// in the state directory from the server's /tuf/ (rollback and freeze
// refused across runs), then tuf.CheckAnswer binds the decision to the
// query of Check (product, channel, platform, arch, installer type), to
// the installed version (strictly newer) and to the release's status in
// the current metadata; a refusal is an *AnswerError naming the field.
// The bytes then come from the signed target's path under /tuf/targets/
// and must match its signed length and sha256.
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
	a := *d.Artifact
	ref := a.URL
	if c.tuf != nil {
		// TUF: the answer bound to the query and the current metadata
		// first; then the signed target's bytes, at its signed length
		// and sha256.
		t, repo, err := c.checkTUFRepo(ctx, d)
		if err != nil {
			return fmt.Errorf("download %s: %w", d.Artifact.ArtifactID, err)
		}
		d.productName = repo.ProductName(d.Release.ProductID)
		a.SHA256, a.SizeBytes = t.SHA256, t.Length
		ref = "/tuf/" + tuf.TargetPath(t.Path, t.SHA256)
	} else {
		m, err := c.VerifiedSnapshot(ctx, d.Snapshot.SnapshotID)
		if err != nil {
			return fmt.Errorf("download %s: %w", d.Artifact.ArtifactID, err)
		}
		if err := matchManifest(d, m); err != nil {
			return fmt.Errorf("download %s: %w", d.Artifact.ArtifactID, err)
		}
		for _, p := range m.Products {
			if p.ProductID == d.Release.ProductID {
				d.productName = p.Name
			}
		}
	}
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
