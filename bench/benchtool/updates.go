package main

import (
	"bufio"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/outpost/outpost/internal/bundle"
	"github.com/outpost/outpost/internal/snapshot"
	"github.com/outpost/outpost/internal/snapshot/snapshottest"
	"github.com/outpost/outpost/internal/update/updatetest"
)

// tinyContent is every artifact's bytes in the update-check tenant: the
// mirror commits a snapshot only with all its artifacts cached, and
// 300,000 distinct blobs would make the setup, not the check, the
// benchmark. The cache is content-addressed, so one blob serves all.
const tinyContent = "x"

// updates writes an offline bundle of issue 5's tenant (50 products x
// 1,000 releases x 6 artifacts, 20 policies, rollouts, blocked versions),
// signed with snapshottest.Signer(1), and a file of wrk request paths
// (updatetest.Queries). It prints the tenant, the trusted key, the
// envelope size and one query that offers an update.
func updates(args []string) error {
	fs := flag.NewFlagSet("updates", flag.ContinueOnError)
	out := fs.String("bundle", "", "bundle file to write")
	paths := fs.String("paths", "", "also write this many-query path file (one path a line)")
	n := fs.Int("n", 1000, "queries in the path file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" {
		return errors.New("-bundle is required")
	}
	opts := updatetest.Default
	opts.Now = time.Now().UTC().Truncate(time.Second)
	m := updatetest.Manifest(opts)
	sum := sha256.Sum256([]byte(tinyContent))
	sha := hex.EncodeToString(sum[:])
	for i := range m.Artifacts {
		m.Artifacts[i].SHA256, m.Artifacts[i].SizeBytes = sha, int64(len(tinyContent))
	}
	signer := snapshottest.Signer(1)
	env, err := snapshot.Sign(m, []snapshot.Signer{signer})
	if err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	if err := writeBundle(*out, env, sha); err != nil {
		return err
	}
	if *paths != "" {
		if err := writePaths(*paths, updatetest.Queries(opts, *n, 1)); err != nil {
			return err
		}
	}
	// Product 0 is open; 1.0.0 on stable linux/x64 has newer releases.
	q := "product=" + updatetest.ID("prd", 0) + "&channel=stable&platform=linux&arch=x64&version=1.0.0&client_id=client-42"
	fmt.Printf("tenant_id %s\ntrusted_key %s\nenvelope_bytes %d\nreleases %d\nartifacts %d\nquery %s\n",
		m.TenantID, base64.StdEncoding.EncodeToString(signer.Key.Public().(ed25519.PublicKey)), len(env),
		len(m.Releases), len(m.Artifacts), q)
	return nil
}

func writeBundle(path string, env []byte, sha string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(f)
	w := bundle.NewWriter(bw)
	err = w.WriteSnapshot(env)
	if err == nil {
		err = w.WriteArtifact(sha, int64(len(tinyContent)), strings.NewReader(tinyContent))
	}
	if err == nil {
		err = w.Close()
	}
	if err == nil {
		err = bw.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write bundle %s: %w", path, err)
	}
	return nil
}

func writePaths(path string, queries []string) error {
	var b strings.Builder
	for _, q := range queries {
		b.WriteString("/v1/updates/check?" + q + "\n")
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("write paths: %w", err)
	}
	return nil
}
