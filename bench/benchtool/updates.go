package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/outpost/outpost/internal/update/updatetest"
)

// tinyContent is every artifact's bytes in the update-check tenant: the
// mirror commits a snapshot only with all its artifacts cached, and
// 300,000 distinct blobs would make the setup, not the check, the
// benchmark. The cache is content-addressed, so one blob serves all.
const tinyContent = "x"

// updates writes a TUF bundle of issue 5's tenant (50 products x 1,000
// releases x 6 artifacts, 20 policies, rollouts, blocked versions), its
// first version signed with fixed keys (buildTUF), the tenant's root.json
// (what the mirror is initialised with) and a file of wrk request paths
// (updatetest.Queries). It prints the tenant, the root file, the
// bundle's size and one query that offers an update.
func updates(args []string) error {
	fs := flag.NewFlagSet("updates", flag.ContinueOnError)
	out := fs.String("bundle", "", "bundle file to write")
	rootOut := fs.String("root", "", "the tenant's root.json to write")
	paths := fs.String("paths", "", "also write this many-query path file (one path a line)")
	n := fs.Int("n", 1000, "queries in the path file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || *rootOut == "" {
		return errors.New("-bundle and -root are required")
	}
	opts := updatetest.Default
	opts.Now = time.Now().UTC().Truncate(time.Second)
	m := updatetest.Manifest(opts)
	sum := sha256.Sum256([]byte(tinyContent))
	sha := hex.EncodeToString(sum[:])
	for i := range m.Artifacts {
		m.Artifacts[i].SHA256, m.Artifacts[i].SizeBytes = sha, int64(len(tinyContent))
	}
	ctx := context.Background()
	r, err := buildTUF(ctx, m, opts.Now)
	if err != nil {
		return err
	}
	if err := os.WriteFile(*rootOut, r.root, 0o644); err != nil {
		return err
	}
	size, err := r.writeBundle(ctx, *out, func(string) io.Reader { return strings.NewReader(tinyContent) })
	if err != nil {
		return err
	}
	if *paths != "" {
		if err := writePaths(*paths, updatetest.Queries(opts, *n, 1)); err != nil {
			return err
		}
	}
	// Product 0 is open; 1.0.0 on stable linux/x64 has newer releases.
	q := "product=" + updatetest.ID("prd", 0) + "&channel=stable&platform=linux&arch=x64&version=1.0.0&client_id=client-42"
	fmt.Printf("tenant_id %s\nroot_file %s\nbundle_bytes %d\nreleases %d\nartifacts %d\nquery %s\n",
		m.TenantID, *rootOut, size, len(m.Releases), len(m.Artifacts), q)
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
