package controlplane

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/fleet"
	"github.com/outpost/outpost/internal/returnfile"
)

// importReturn ingests an air-gapped mirror's one return file
// (outpost-return-v1): the envelope is verified with the mirror's
// registered key while its two parts are split into temporary files;
// nothing is ingested unless it verified and the fleet part verifies on
// its own too. Then the audit part goes through IngestAudit's path (chain,
// mirror id, forks) and the fleet part through the fleet import; both are
// idempotent, so importing the same file again adds nothing. Files are
// imported in the order they were written: an older file after a newer
// one presents an audit chain shorter than the accepted head, which is
// what a restored data directory presents too, and is refused as a fork.
func (a *App) importReturn(ctx context.Context, pinned *catalog.Mirror, f *os.File) (*ReportImport, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("import return file: rewind: %w", err)
	}
	hdr, err := returnfile.PeekHeader(f)
	if err != nil {
		return nil, catalog.Errorf(catalog.EINVALID, "%v", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("import return file: rewind: %w", err)
	}
	m := pinned
	if m == nil {
		if !catalog.ValidID(catalog.PrefixMirror, hdr.MirrorID) {
			return nil, catalog.Errorf(catalog.EINVALID, "return file refused: header mirror_id %q is not a mirror id", hdr.MirrorID)
		}
		if m, err = a.store.Mirror(ctx, hdr.MirrorID); err != nil {
			if catalog.ErrorCode(err) == catalog.ENOTFOUND {
				return nil, catalog.Errorf(catalog.EINVALID, "return file refused: mirror %s is not registered", hdr.MirrorID)
			}
			return nil, err
		}
	}
	pub, err := base64.StdEncoding.DecodeString(m.PublicKey)
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return nil, catalog.Errorf(catalog.ECONFLICT, "mirror %s has no registered public key", m.MirrorID)
	}
	auditPart, err := os.CreateTemp("", "outpost-return-audit-*")
	if err != nil {
		return nil, fmt.Errorf("import return file: %w", err)
	}
	defer os.Remove(auditPart.Name())
	defer auditPart.Close()
	fleetPart, err := os.CreateTemp("", "outpost-return-fleet-*")
	if err != nil {
		return nil, fmt.Errorf("import return file: %w", err)
	}
	defer os.Remove(fleetPart.Name())
	defer fleetPart.Close()
	if _, err := returnfile.Split(f, ed25519.PublicKey(pub), returnfile.Options{MirrorID: m.MirrorID, MaxBytes: MaxReportUpload}, auditPart, fleetPart); err != nil {
		if errors.Is(err, returnfile.ErrRefused) {
			return nil, catalog.Errorf(catalog.EINVALID, "%v", err)
		}
		return nil, fmt.Errorf("import return file: %w", err)
	}
	if hdr.TenantID != "" && hdr.TenantID != m.TenantID {
		return nil, catalog.Errorf(catalog.EINVALID, "return file refused: tenant %s is not mirror %s's", hdr.TenantID, m.MirrorID)
	}
	for _, p := range []*os.File{auditPart, fleetPart} {
		if _, err := p.Seek(0, io.SeekStart); err != nil {
			return nil, fmt.Errorf("import return file: rewind: %w", err)
		}
	}
	// The fleet part verifies on its own before the audit part is
	// ingested, so a refused file changes nothing.
	if _, err := fleet.VerifyReport(fleetPart, ed25519.PublicKey(pub), fleet.ReadOptions{MirrorID: m.MirrorID, MaxBytes: MaxReportUpload}); err != nil {
		return nil, catalog.Errorf(catalog.EINVALID, "return file refused: fleet part: %v", err)
	}
	if _, err := fleetPart.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("import return file: rewind: %w", err)
	}
	ai, err := a.ingestAudit(ctx, m, auditPart)
	if err != nil {
		return nil, err
	}
	out, err := a.importFleet(ctx, m, fleetPart)
	if err != nil {
		return nil, err
	}
	out.Audit = ai
	return out, nil
}

// ReturnAck is the vendor's acknowledgement of mirrorID's return files:
// the head of its audit chain accepted and, per fleet store, the events
// acknowledged. A bundle exported for the mirror carries it signed
// (returnAckTUF), so the mirror's next return file starts after it.
func (a *App) ReturnAck(ctx context.Context, tenantID, mirrorID string) (*returnfile.Ack, error) {
	m, err := a.store.Mirror(ctx, mirrorID)
	if err != nil {
		return nil, err
	}
	if m.TenantID != tenantID {
		return nil, catalog.NotFound("mirror", mirrorID)
	}
	ack := &returnfile.Ack{
		Format: returnfile.AckFormat, TenantID: m.TenantID, MirrorID: m.MirrorID,
		AuditHead: returnfile.AuditHead{Seq: m.AuditHead.Seq, Hash: m.AuditHead.Hash},
		Fleet:     []returnfile.FleetCursor{}, CreatedAt: a.now(),
	}
	if a.fleet != nil {
		cursors, err := a.fleet.Cursors(ctx)
		if err != nil {
			return nil, err
		}
		for _, c := range cursors {
			if c.MirrorID == m.MirrorID {
				ack.Fleet = append(ack.Fleet, returnfile.FleetCursor{StoreID: c.StoreID, Through: c.Through})
			}
		}
	}
	return ack, nil
}

// returnAckTUF is ReturnAck signed by the tenant's timestamp role keys
// (online, held by the control plane): the mirror verifies it with the
// timestamp keys and threshold of the root it trusts.
func (a *App) returnAckTUF(ctx context.Context, tenantID, mirrorID string) ([]byte, error) {
	if a.tuf == nil {
		return nil, ErrNoTUF
	}
	ack, err := a.ReturnAck(ctx, tenantID, mirrorID)
	if err != nil {
		return nil, err
	}
	signers, err := a.tuf.o.Keys.Signers(metadata.TIMESTAMP)
	if err != nil {
		return nil, fmt.Errorf("acknowledgement: timestamp keys: %w", err)
	}
	by := make([]returnfile.Signer, len(signers))
	for i, s := range signers {
		by[i] = s
	}
	return returnfile.SignAckBy(ctx, *ack, by)
}
