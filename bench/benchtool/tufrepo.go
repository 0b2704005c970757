package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/outpost/outpost/internal/bundle"
	"github.com/outpost/outpost/internal/snapshot"
	"github.com/outpost/outpost/internal/tuf"
	"github.com/outpost/outpost/internal/tuf/tufhttp"
)

// tufRepo is one tenant's TUF repository in memory, as the control plane
// publishes it: a 1-of-1 root and one key per online role, derived from
// fixed seeds (the benchmarks need no secret).
type tufRepo struct {
	tenantID string
	root     []byte // 1.root.json: what the mirror is initialised with
	repo     *tufhttp.MemRepo
}

// seedSigner is a deterministic ed25519 signer.
func seedSigner(seed byte) (tuf.Signer, error) {
	var s [ed25519.SeedSize]byte
	s[0], s[1] = seed, 0xbe
	return tuf.NewEd25519Signer(ed25519.NewKeyFromSeed(s[:]))
}

// tufRoot writes the first root.json of a tenant (-tenant) to -out, with
// buildTUF's keys: what a mirror that only serves (bench/events.sh) is
// initialised with.
func tufRoot(args []string) error {
	fs := flag.NewFlagSet("tufroot", flag.ContinueOnError)
	tenant := fs.String("tenant", "", "tenant id")
	out := fs.String("out", "", "root.json to write")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *tenant == "" || *out == "" {
		return errors.New("-tenant and -out are required")
	}
	root, _, err := newRoot(context.Background(), *tenant, time.Now())
	if err != nil {
		return err
	}
	return os.WriteFile(*out, root, 0o644)
}

// newRoot signs a tenant's first root with buildTUF's keys and returns
// it with the online signers: targets, snapshot, timestamp, products.
func newRoot(ctx context.Context, tenantID string, now time.Time) ([]byte, [4]tuf.Signer, error) {
	var online [4]tuf.Signer
	var signers [5]tuf.Signer // root, then the online ones
	keys := make([][]*metadata.Key, len(signers))
	for i := range signers {
		s, err := seedSigner(byte(i + 1))
		if err != nil {
			return nil, online, err
		}
		k, err := tuf.PublicKey(s.Public())
		if err != nil {
			return nil, online, err
		}
		signers[i], keys[i] = s, []*metadata.Key{k}
	}
	r, err := tuf.NewRoot(tuf.RootSpec{
		TenantID: tenantID, Version: 1, Expires: now.Add(365 * 24 * time.Hour),
		Root: tuf.RoleKeys{Keys: keys[0], Threshold: 1}, Targets: tuf.RoleKeys{Keys: keys[1], Threshold: 1},
		Snapshot: tuf.RoleKeys{Keys: keys[2], Threshold: 1}, Timestamp: tuf.RoleKeys{Keys: keys[3], Threshold: 1},
	})
	if err != nil {
		return nil, online, err
	}
	root, err := tuf.SignRoot(ctx, r, signers[0])
	if err != nil {
		return nil, online, err
	}
	copy(online[:], signers[1:])
	return root, online, nil
}

// buildTUF signs m as the first version of its tenant's repository.
// Artifact bytes are not in it (publishArtifacts).
func buildTUF(ctx context.Context, m *snapshot.Manifest, now time.Time) (*tufRepo, error) {
	root, signers, err := newRoot(ctx, m.TenantID, now)
	if err != nil {
		return nil, err
	}
	ps, err := tuf.NewProductSet(tuf.ProductOptions{}, signers[3])
	if err != nil {
		return nil, err
	}
	b := &tuf.Builder{TenantID: m.TenantID, Products: ps, Keys: tuf.TenantKeys{
		Targets: []tuf.Signer{signers[0]}, Snapshot: []tuf.Signer{signers[1]}, Timestamp: []tuf.Signer{signers[2]},
	}}
	_, files, err := b.Build(ctx, nil, m, now)
	if err != nil {
		return nil, fmt.Errorf("build tuf: %w", err)
	}
	repo := tufhttp.NewMemRepo()
	repo.Set(tuf.MetadataPath(metadata.ROOT, 1), root)
	repo.Publish(files)
	return &tufRepo{tenantID: m.TenantID, root: root, repo: repo}, nil
}

// artifactTargets is the consistent target path of every release
// artifact of m, with its sha256.
func artifactTargets(m *snapshot.Manifest) map[string]string {
	sums := make(map[string]string, len(m.Artifacts))
	for _, a := range m.Artifacts {
		sums[a.ArtifactID] = a.SHA256
	}
	out := map[string]string{}
	for _, r := range m.Releases {
		for _, ra := range r.Artifacts {
			sum := sums[ra.ArtifactID]
			out[tuf.TargetPath(tuf.ArtifactTarget(r.ProductID, ra.ReleaseArtifactID), sum)] = sum
		}
	}
	return out
}

// memFetcher reads a MemRepo by repository path.
type memFetcher struct{ repo *tufhttp.MemRepo }

func (f memFetcher) Fetch(_ context.Context, path string, maxBytes int64) (io.ReadCloser, error) {
	b := f.repo.Get(path)
	if b == nil {
		return nil, fmt.Errorf("%s: %w", path, tuf.ErrNotFound)
	}
	if int64(len(b)) > maxBytes {
		return nil, fmt.Errorf("%s: %w", path, tuf.ErrTooLarge)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// writeBundle writes a full TUF bundle of the repository to path: every
// file a mirror holding nothing fetches, and each distinct artifact once
// (open gives its bytes by sha256). It returns the bundle's size.
func (r *tufRepo) writeBundle(ctx context.Context, path string, open func(sha string) io.Reader) (int64, error) {
	read := func(_ context.Context, p string) ([]byte, error) {
		if b := r.repo.Get(p); b != nil {
			return b, nil
		}
		return nil, fmt.Errorf("%s: %w", p, tuf.ErrNotFound)
	}
	held, err := tuf.NewReceiverStore(ctx, read, 0)
	if err != nil {
		return 0, err
	}
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	_, err = bundle.ExportTUF(ctx, bw, bundle.TUFExport{
		TenantID: r.tenantID, Repo: memFetcher{r.repo}, Held: held,
		Select: func(_ context.Context, ts []tuf.Target, _ *tuf.Repository) ([]tuf.Target, error) {
			var out []tuf.Target
			seen := map[string]bool{}
			for _, t := range ts {
				if !seen[t.SHA256] && t.Custom.Status == "ACTIVE" {
					seen[t.SHA256] = true
					out = append(out, t)
				}
			}
			return out, nil
		},
		Open: func(_ context.Context, t tuf.Target) (io.ReadCloser, error) { return io.NopCloser(open(t.SHA256)), nil },
		Now:  time.Now,
	})
	if err == nil {
		err = bw.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("write bundle %s: %w", path, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}
