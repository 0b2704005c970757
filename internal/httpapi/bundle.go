package httpapi

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"

	"github.com/outpost/outpost/internal/blob"
	"github.com/outpost/outpost/internal/bundle"
	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/store"
)

// BundleOptions selects what an offline bundle carries.
type BundleOptions struct {
	TenantID string
	Since    int64  // leave out artifacts snapshot Since already referenced (0: none)
	MirrorID string // only the artifacts of this mirror's allowed_channels ("" for all)
}

// BundlePlan is a checked bundle export: the snapshot and the artifacts
// to carry. Planning does every check that can fail on bad input, so an
// HTTP handler can answer an error before the first byte.
type BundlePlan struct {
	Snapshot  *catalog.Snapshot
	Artifacts []string // artifact ids, one per distinct sha256
}

// PlanBundle selects the tenant's latest snapshot and every artifact of its
// ACTIVE releases (in the mirror's channels) that snapshot o.Since lacked.
func PlanBundle(ctx context.Context, st store.Store, o BundleOptions) (*BundlePlan, error) {
	snap, err := st.LatestSnapshot(ctx, o.TenantID)
	if err != nil {
		return nil, err
	}
	m, err := decodeEnvelope(snap.Envelope)
	if err != nil {
		return nil, fmt.Errorf("decode snapshot %d: %w", snap.Sequence, err)
	}
	var channels []string
	if o.MirrorID != "" {
		mir, err := st.Mirror(ctx, o.MirrorID)
		if err != nil {
			return nil, err
		}
		if mir.TenantID != o.TenantID {
			return nil, catalog.NotFound("mirror", o.MirrorID)
		}
		channels = mir.AllowedChannels
	}
	skip := map[string]bool{}
	if o.Since > 0 {
		if o.Since >= snap.Sequence {
			return nil, catalog.Invalid("since", "snapshot %d is not older than the latest (%d)", o.Since, snap.Sequence)
		}
		old, err := st.SnapshotBySequence(ctx, o.TenantID, o.Since)
		if err != nil {
			return nil, err
		}
		om, err := decodeEnvelope(old.Envelope)
		if err != nil {
			return nil, fmt.Errorf("decode snapshot %d: %w", o.Since, err)
		}
		for _, a := range om.Artifacts {
			skip[a.SHA256] = true
		}
	}
	want := map[string]bool{}
	for _, rel := range m.Releases {
		if rel.Status != catalog.ReleaseActive || (channels != nil && !slices.Contains(channels, rel.Channel)) {
			continue
		}
		for _, ra := range rel.Artifacts {
			want[ra.ArtifactID] = true
		}
	}
	p := &BundlePlan{Snapshot: snap}
	for _, a := range m.Artifacts {
		if want[a.ArtifactID] && !skip[a.SHA256] {
			skip[a.SHA256] = true // once per content
			p.Artifacts = append(p.Artifacts, a.ArtifactID)
		}
	}
	return p, nil
}

// Write streams the bundle: the envelope first, then the artifacts, one at
// a time from the blob store (memory stays flat).
func (p *BundlePlan) Write(ctx context.Context, st store.Store, blobs blob.Store, hc *http.Client, w io.Writer) error {
	if hc == nil {
		hc = http.DefaultClient
	}
	bw := bundle.NewWriter(w)
	if err := bw.WriteSnapshot(p.Snapshot.Envelope); err != nil {
		return err
	}
	for _, id := range p.Artifacts {
		if err := writeBundleArtifact(ctx, st, blobs, hc, bw, id); err != nil {
			return fmt.Errorf("artifact %s: %w", id, err)
		}
	}
	return bw.Close()
}

// ExportBundle plans and writes a bundle.
func ExportBundle(ctx context.Context, st store.Store, blobs blob.Store, hc *http.Client, w io.Writer, o BundleOptions) (*catalog.Snapshot, int, error) {
	p, err := PlanBundle(ctx, st, o)
	if err != nil {
		return nil, 0, err
	}
	return p.Snapshot, len(p.Artifacts), p.Write(ctx, st, blobs, hc, w)
}

func writeBundleArtifact(ctx context.Context, st store.Store, blobs blob.Store, hc *http.Client, bw *bundle.Writer, id string) error {
	a, err := st.Artifact(ctx, id)
	if err != nil {
		return err
	}
	var rc io.ReadCloser
	if a.SourceType == catalog.SourceExternal {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.ExternalURL, nil)
		if err != nil {
			return err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return fmt.Errorf("external url answered %s", resp.Status)
		}
		rc = resp.Body
	} else {
		obj, _, err := blobs.Open(ctx, a.StoragePath)
		if err != nil {
			return err
		}
		rc = obj
	}
	defer rc.Close()
	return bw.WriteArtifact(a.SHA256, a.SizeBytes, rc)
}

// exportBundle streams a bundle over HTTP:
// GET /v1/tenants/{id}/bundle?since=&mirror_id=
func (s *Server) exportBundle(w http.ResponseWriter, r *http.Request, p *Principal) error {
	t, err := s.tenantFor(r, p)
	if err != nil {
		return err
	}
	o := BundleOptions{TenantID: t.TenantID, MirrorID: r.URL.Query().Get("mirror_id")}
	if v := r.URL.Query().Get("since"); v != "" {
		if o.Since, err = strconv.ParseInt(v, 10, 64); err != nil || o.Since < 0 {
			return catalog.Invalid("since", "must be a non-negative integer")
		}
	}
	if o.MirrorID != "" && !catalog.ValidID(catalog.PrefixMirror, o.MirrorID) {
		return catalog.NotFound("mirror", o.MirrorID)
	}
	// Errors found while planning keep their status; after the first byte
	// a failure can only cut the stream (the mirror rejects a truncated
	// tar).
	plan, err := PlanBundle(r.Context(), s.Store, o)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/x-tar")
	if err := plan.Write(r.Context(), s.Store, s.Blobs, s.HTTPClient, w); err != nil {
		s.Log.Error("bundle export failed mid-stream", "tenant", t.TenantID, "err", err)
		panic(http.ErrAbortHandler)
	}
	return nil
}
