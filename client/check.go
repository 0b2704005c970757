package client

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Actions a decision can carry.
const (
	ActionNone     = "NONE"
	ActionNotify   = "NOTIFY"
	ActionDownload = "DOWNLOAD"
	ActionInstall  = "INSTALL"
)

// Query is an update check: which product and channel the client runs,
// on which platform and arch, at which version.
type Query struct {
	Product       string
	Channel       string
	Platform      string
	Arch          string
	Version       string
	ClientID      string // optional; places the client in rollouts
	InstallerType string // optional
	// InstalledSHA256 is optional: the sha256 of the artifact installed
	// now (InstalledFile computes it), so the answer can offer a delta.
	InstalledSHA256 string
}

func (q Query) validate() error {
	for _, f := range []struct{ name, v string }{
		{"product", q.Product}, {"channel", q.Channel}, {"platform", q.Platform},
		{"arch", q.Arch}, {"version", q.Version},
	} {
		if f.v == "" {
			return fmt.Errorf("%w: query: %s is required", ErrConfig, f.name)
		}
	}
	for _, f := range []struct{ name, v string }{
		{"product", q.Product}, {"channel", q.Channel}, {"platform", q.Platform},
		{"arch", q.Arch}, {"version", q.Version}, {"client_id", q.ClientID}, {"installer_type", q.InstallerType},
	} {
		if len(f.v) > 256 {
			return fmt.Errorf("%w: query: %s longer than 256 bytes", ErrConfig, f.name)
		}
	}
	if q.InstalledSHA256 != "" && (len(q.InstalledSHA256) != 64 || !isHex(q.InstalledSHA256)) {
		return fmt.Errorf("%w: query: installed_sha256 is not 64 hex characters", ErrConfig)
	}
	return nil
}

// Reasons a Decision gives when no update is offered (docs/conditions.md).
const (
	ReasonNoEntitlement = "no current entitlement"
	ReasonPolicyNone    = "updates disabled by policy"
	ReasonUpToDate      = "no newer release"
	// ReasonNotInRollout: a newer release is rolling out to a share of
	// clients that leaves this one out (or the check sent no client id).
	ReasonNotInRollout = "newer release not rolled out to this client"
)

// Decision is the server's answer to an update check.
type Decision struct {
	UpdateAvailable bool      `json:"update_available"`
	Action          string    `json:"action"`
	Reason          string    `json:"reason,omitempty"`
	Release         *Release  `json:"release,omitempty"`
	Artifact        *Artifact `json:"artifact,omitempty"`
	// Delta is offered when the query named the installed artifact's
	// sha256 and a signed delta from it exists (DownloadFrom uses it).
	Delta    *DeltaOffer  `json:"delta,omitempty"`
	Snapshot *SnapshotRef `json:"snapshot,omitempty"`

	query       *Query // the check that got this answer (TUF binding)
	productName string // from the verified snapshot, set by Download
}

// ProductName is the product's name as the signed metadata gives it, once
// Download has verified the decision against it ("" before).
func (d *Decision) ProductName() string { return d.productName }

// Release is the offered release.
type Release struct {
	ReleaseID   string    `json:"release_id"`
	ProductID   string    `json:"product_id"`
	Channel     string    `json:"channel"`
	Version     string    `json:"version"`
	PublishedAt time.Time `json:"published_at"`
}

// Artifact is the offered release's artifact for the client's platform.
// URL is relative to the server, or absolute.
type Artifact struct {
	ArtifactID    string `json:"artifact_id"`
	SHA256        string `json:"sha256"`
	SizeBytes     int64  `json:"size_bytes"`
	URL           string `json:"url"`
	InstallerType string `json:"installer_type"`
	RequiresAdmin bool   `json:"requires_admin"`
	// Target is the artifact's TUF target path ("<product_id>/<release_artifact_id>").
	Target string `json:"target,omitempty"`
}

// DeltaOffer is a delta that rebuilds the offered artifact from the
// installed one. URL is relative to the server, or absolute.
type DeltaOffer struct {
	DeltaID    string `json:"delta_id"`
	FromSHA256 string `json:"from_sha256"`
	ToSHA256   string `json:"to_sha256"`
	SHA256     string `json:"sha256"`
	SizeBytes  int64  `json:"size_bytes"`
	URL        string `json:"url"`
}

// SnapshotRef names the signed snapshot the decision was made from.
type SnapshotRef struct {
	SnapshotID string `json:"snapshot_id"`
	Sequence   int64  `json:"sequence"`
}

// Check asks the server whether an update is available. A decision is
// only advice until Download has verified it against the signed snapshot.
func (c *Client) Check(ctx context.Context, q Query) (*Decision, error) {
	if err := q.validate(); err != nil {
		return nil, err
	}
	v := url.Values{}
	v.Set("product", q.Product)
	v.Set("channel", q.Channel)
	v.Set("platform", q.Platform)
	v.Set("arch", q.Arch)
	v.Set("version", q.Version)
	if q.ClientID != "" {
		v.Set("client_id", q.ClientID)
	}
	if q.InstallerType != "" {
		v.Set("installer_type", q.InstallerType)
	}
	if q.InstalledSHA256 != "" {
		v.Set("installed_sha256", strings.ToLower(q.InstalledSHA256))
	}
	var d Decision
	if err := c.doJSON(ctx, "GET", "/v1/updates/check?"+v.Encode(), nil, &d, 200); err != nil {
		return nil, fmt.Errorf("check %s: %w", q.Product, err)
	}
	if err := d.validate(); err != nil {
		return nil, fmt.Errorf("check %s: %w", q.Product, err)
	}
	d.query = &q
	return &d, nil
}

// validate checks that a decision has the shape the API promises.
func (d *Decision) validate() error {
	switch d.Action {
	case ActionNone, ActionNotify, ActionDownload, ActionInstall:
	default:
		return fmt.Errorf("%w: decision: action %q is not NONE, NOTIFY, DOWNLOAD or INSTALL", ErrProtocol, clean(d.Action, 32))
	}
	d.Reason = clean(d.Reason, 512)
	if !d.UpdateAvailable {
		return nil
	}
	switch {
	case d.Release == nil || d.Release.ReleaseID == "" || d.Release.Version == "":
		return fmt.Errorf("%w: decision: update available without a release", ErrProtocol)
	case d.Artifact == nil || d.Artifact.ArtifactID == "":
		return fmt.Errorf("%w: decision: update available without an artifact", ErrProtocol)
	case d.Snapshot == nil || d.Snapshot.SnapshotID == "":
		return fmt.Errorf("%w: decision: update available without a snapshot", ErrProtocol)
	case len(d.Artifact.SHA256) != 64 || !isHex(d.Artifact.SHA256):
		return fmt.Errorf("%w: decision: artifact.sha256 is not 64 hex characters", ErrProtocol)
	case d.Artifact.SizeBytes < 0:
		return fmt.Errorf("%w: decision: artifact.size_bytes is negative", ErrProtocol)
	case d.Artifact.URL == "":
		return fmt.Errorf("%w: decision: artifact.url is empty", ErrProtocol)
	}
	return nil
}
