package sync

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/outpost/outpost/internal/bundle"
	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/fetch"
	"github.com/outpost/outpost/internal/fsutil"
	"github.com/outpost/outpost/internal/mirror/state"
	"github.com/outpost/outpost/internal/returnfile"
	"github.com/outpost/outpost/internal/tuf"
)

// stagedStore is the mirror's tuf.Store (mirror.db) as its tuf.Client
// sees it. An import stages: writes are kept in memory in the order the
// client made them (reads see them first), and reach mirror.db only
// through flush, once the bundle's artifacts verified too; discard drops
// them. A refused bundle (or a dry run) therefore changes nothing. A
// network sync batches: the same, but the staged files are also written
// out whenever they pass a size (batch), so a sync's files take a few
// transactions, not one each, and a first sync never holds the catalog
// twice. Otherwise it writes through.
type stagedStore struct {
	base    tuf.Store
	staging bool
	// log is what was staged, in order; index names each file's latest
	// entry (reads see it first). One copy of the bytes: a large bundle's
	// repository is held once, not twice.
	log   []stagedPut
	index map[string]int
	// limit, when not 0, writes the staged files out once they pass
	// limit bytes (batch); size is what is staged.
	limit, size int64
}

type stagedPut struct {
	name string
	data []byte
}

// batchBytes is when a network sync's staged files are written out.
const batchBytes = 8 << 20

// Get implements tuf.Store. The bytes are shared: read only.
func (s *stagedStore) Get(ctx context.Context, name string) ([]byte, error) {
	if s.staging {
		if i, ok := s.index[name]; ok {
			return s.log[i].data, nil
		}
	}
	return s.base.Get(ctx, name)
}

func (s *stagedStore) Put(ctx context.Context, name string, data []byte) error {
	if !s.staging {
		return s.base.Put(ctx, name, data)
	}
	s.index[name] = len(s.log)
	s.log = append(s.log, stagedPut{name, append([]byte(nil), data...)})
	s.size += int64(len(data))
	if s.limit > 0 && s.size >= s.limit {
		log := s.log
		s.log, s.index, s.size = nil, map[string]int{}, 0
		return s.write(ctx, log)
	}
	return nil
}

// stage starts keeping writes in memory.
func (s *stagedStore) stage() {
	s.staging, s.log, s.index, s.limit, s.size = true, nil, map[string]int{}, 0, 0
}

// batch starts keeping writes in memory, written out past limit bytes
// and by flush.
func (s *stagedStore) batch(limit int64) {
	s.stage()
	s.limit = limit
}

// discard drops the staged writes and writes through again.
func (s *stagedStore) discard() { s.staging, s.log, s.index, s.limit, s.size = false, nil, nil, 0, 0 }

// flush writes every staged file to mirror.db in the client's order
// (each root version, documents, roles, snapshot, the timestamp last),
// in one transaction (a crash leaves all of them or none, so the old
// timestamp in charge), then writes through again.
func (s *stagedStore) flush(ctx context.Context) error {
	log := s.log
	s.discard()
	return s.write(ctx, log)
}

// write stores files in order, in one transaction when the base is
// mirror.db.
func (s *stagedStore) write(ctx context.Context, log []stagedPut) error {
	if len(log) == 0 {
		return nil
	}
	if all, ok := s.base.(*state.TUFStore); ok {
		files := make([]state.TUFFile, len(log))
		for i, p := range log {
			files[i] = state.TUFFile{Name: p.name, Data: p.data}
		}
		return all.PutAll(ctx, files)
	}
	for _, p := range log {
		if err := s.base.Put(ctx, p.name, p.data); err != nil {
			return err
		}
	}
	return nil
}

// bundleSource is the unpacked bundle as the TUF client's source.
type bundleSource struct{ f tuf.FSFetcher }

func (b bundleSource) Name() string { return "bundle" }

func (b bundleSource) Fetch(ctx context.Context, path string, maxBytes int64) (io.ReadCloser, error) {
	rc, err := b.f.Fetch(ctx, path, maxBytes)
	if err != nil && !errors.Is(err, tuf.ErrNotFound) && !errors.Is(err, tuf.ErrTooLarge) {
		return nil, &PermanentError{Err: err} // a file system error: not retried
	}
	return rc, err
}

func (b bundleSource) TUFTarget(context.Context, string, int64) (*fetch.Body, error) {
	return nil, permanent("a bundle's artifacts are read from the bundle")
}

// importTUF is an import in TUF mode, through the same workflow as a
// network sync: the bundle's repository files are unpacked (each capped)
// into a directory under the cache's temp dir, tuf.Client runs over it
// (tuf.FSFetcher), then the artifacts are taken from the bundle, each
// checked against its signed length and sha256 on its way into the cache,
// and only then are the verified files written to mirror.db and the new
// version committed. A stale bundle is refused as a rollback by the
// workflow itself; any refused file leaves the mirror as it was.
func (s *Syncer) importTUF(ctx context.Context, r io.Reader, rep *ImportReport) error {
	var ack *returnfile.Ack
	if err := s.importTUFBundle(ctx, r, rep, &ack); err != nil {
		return err
	}
	if ack != nil && !rep.DryRun {
		var err error
		if rep.Acknowledged, err = s.recordAck(ctx, ack); err != nil {
			return fmt.Errorf("record the bundle's acknowledgement: %w", err)
		}
	}
	return nil
}

// importTUFBundle is importTUF up to the commit; *ack is set to the
// bundle's acknowledgement once it verified with the timestamp keys of
// the root the workflow trusts (a forged one refuses the bundle).
func (s *Syncer) importTUFBundle(ctx context.Context, r io.Reader, rep *ImportReport, ack **returnfile.Ack) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	rec, err := s.st.CurrentRecord()
	if err != nil {
		return err
	}
	if rec != nil && rec.Format != state.FormatTUF {
		return errors.New("import: the mirror holds a schema 1 snapshot: re-initialise its state (mirror init) before importing TUF bundles")
	}
	if rec != nil {
		rep.HeldSequence = rec.Sequence
	}
	br := bundle.NewReader(r)
	man, err := br.TUFManifest()
	if err != nil {
		return err
	}
	if man.TenantID != s.cfg.TUF.TenantID {
		return fmt.Errorf("%w: the bundle is for tenant %q, this mirror serves %q", bundle.ErrInvalid, man.TenantID, s.cfg.TUF.TenantID)
	}
	dir, err := os.MkdirTemp(s.cache.TempDir(), "bundle-*")
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	defer os.RemoveAll(dir)
	first, err := s.unpackTUF(br, dir)
	if err != nil {
		return err
	}

	// Stage: the mirror's own TUF client (its verified state kept in
	// memory between syncs) runs the workflow over the unpacked files,
	// writing nowhere until the commit.
	if s.tufStore == nil {
		s.tufStore = &stagedStore{base: s.st.TUFStore()}
	}
	staged := s.tufStore
	staged.stage()
	c, err := s.tufClient(ctx, bundleSource{tuf.FSFetcher{FS: os.DirFS(dir)}})
	if err != nil {
		staged.discard()
		return fmt.Errorf("import: %w", err)
	}
	before := c.Repository()
	committed := false
	defer func() {
		if committed {
			return
		}
		// Refused or a dry run: drop what was staged, and the client's
		// verified state with it.
		staged.discard()
		if before == nil {
			s.tufc, s.tufFetch = nil, nil
		} else {
			c.Restore(before)
		}
	}()
	if _, err := c.Update(ctx); err != nil {
		var bad *metadata.ErrBadVersionNumber
		if errors.As(err, &bad) {
			return fmt.Errorf("bundle refused as a rollback (older than the metadata the mirror holds): %w", err)
		}
		// The manifest is unsigned: it only names the likely cause of a
		// refusal (an old bundle whose keys were rotated out since).
		if rec != nil && man.SnapshotVersion < rec.Sequence {
			return fmt.Errorf("bundle refused as a rollback: it says snapshot v%d, older than the held v%d: %w", man.SnapshotVersion, rec.Sequence, err)
		}
		return fmt.Errorf("bundle: %w", err)
	}
	repo := c.Repository()
	if env := br.Ack(); env != nil {
		keys, threshold, err := timestampKeys(repo.Root)
		if err != nil {
			return fmt.Errorf("%w: %s: %w", bundle.ErrInvalid, bundle.AckName, err)
		}
		if *ack, err = s.verifyAckWith(env, keys, threshold, s.cfg.TUF.TenantID); err != nil {
			return fmt.Errorf("%w: %s: %w", bundle.ErrInvalid, bundle.AckName, err)
		}
	}
	seq := repo.Snapshot.Signed.Version
	rep.SnapshotID, rep.Sequence = tuf.VersionID(seq), seq
	rep.ExpiresAt = repo.Timestamp.Signed.Expires
	if rec != nil && seq < rec.Sequence {
		return fmt.Errorf("bundle refused as a rollback: snapshot v%d is older than the held v%d", seq, rec.Sequence)
	}
	trusted, err := staged.Get(ctx, storeTimestamp)
	if err != nil {
		return err
	}
	allowed, known, err := s.st.AllowedChannels()
	if err != nil {
		return err
	}
	ch := state.EffectiveChannels(allowed, known, s.cfg.Channels)

	if rec != nil && rec.Sequence == seq {
		// The version held: at most a fresher timestamp.
		if err := s.skipArtifacts(br, first, rep); err != nil {
			return err
		}
		rep.Refreshed = len(staged.log) > 0
		if rep.DryRun || !rep.Refreshed {
			return nil
		}
		committed = true
		if err := staged.flush(ctx); err != nil {
			s.tufc, s.tufFetch = nil, nil // reload what mirror.db holds
			return err
		}
		s.tufTS = trusted
		if served, err := s.st.ServedTUFTimestamp(); err != nil {
			return err
		} else if string(served) != string(trusted) {
			if err := s.st.ServeTUFTimestamp(seq, trusted); err != nil {
				return err
			}
			if s.cfg.OnCommit != nil {
				s.cfg.OnCommit()
			}
		}
		return nil
	}

	m, err := s.tufAsm.Manifest(repo)
	if err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	held, err := s.heldTUF(rec)
	if err != nil {
		return err
	}
	offered := map[string]bool{}
	for _, rl := range m.Releases {
		if rl.Status == catalog.ReleaseActive {
			rep.Releases++
			offered[rl.ReleaseID] = true
		}
	}
	if held != nil && held.Manifest != nil {
		for _, rl := range held.Manifest.Releases {
			if rl.Status == catalog.ReleaseActive && !offered[rl.ReleaseID] {
				rep.Withdrawn = append(rep.Withdrawn, rl.ProductID+"/"+rl.Channel+"/"+rl.Version)
			}
		}
		sort.Strings(rep.Withdrawn)
	}
	sum := sha256.Sum256(trusted)
	var heldRec *state.Held
	if rec != nil {
		heldRec = &state.Held{Record: *rec}
	}
	cand := &candidate{m: m, hash: "tuf-" + hex.EncodeToString(sum[:]), ch: ch, need: state.Needed(m, ch), held: heldRec, tufTS: trusted}
	rep.Needed = len(cand.need)

	// Fill: the artifacts, each against its signed target.
	needed := map[string]bool{}
	for _, a := range cand.need {
		needed[a.SHA256] = true
	}
	taken, err := s.takeTUF(ctx, br, first, repo, importDeltasOf(m), needed, rep)
	if err != nil {
		return err
	}
	if err := s.account(cand.need, taken, rep); err != nil {
		return err
	}
	rep.Changed = true
	if rep.DryRun {
		return nil
	}
	// Commit: the verified files, then the version with its timestamp.
	committed = true
	if err := staged.flush(ctx); err != nil {
		rep.Changed = false
		s.tufc, s.tufFetch = nil, nil // reload what mirror.db holds
		return err
	}
	s.tufTS = trusted
	if err := s.commit(cand, EventSnapshotImported, "bundle", rep.Imported, rep.Bytes); err != nil {
		rep.Changed = false
		return err
	}
	s.tufHeld = &state.Held{Record: state.Record{SnapshotID: m.SnapshotID, Sequence: m.Sequence, Hash: cand.hash,
		ExpiresAt: m.ExpiresAt, Channels: ch, Format: state.FormatTUF}, Manifest: m}
	s.tufPaths, s.tufPathsOf = nil, m
	s.tufRepaired = s.cfg.Now()
	return nil
}

// unpackTUF writes the bundle's repository files into dir, each capped,
// and returns the first artifact entry (nil when there is none).
func (s *Syncer) unpackTUF(br *bundle.Reader, dir string) (*bundle.FileEntry, error) {
	lim := s.cfg.TUF.Limits
	capOf := func(path string) int64 {
		switch {
		case strings.HasPrefix(path, "metadata/") && strings.HasSuffix(path, ".root.json"):
			return or(lim.Root, 512<<10)
		case path == storeTimestamp:
			return or(lim.Timestamp, 16<<10)
		case strings.HasPrefix(path, "metadata/"):
			return max(or(lim.Snapshot, 32<<20), or(lim.Targets, 32<<20))
		default:
			return or(lim.Document, 64<<20)
		}
	}
	for {
		e, err := br.NextFile()
		if err == io.EOF {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		if e.Artifact {
			return &e, nil
		}
		if err := tuf.CheckPath(e.Path); err != nil {
			return nil, fmt.Errorf("%w: %w", bundle.ErrInvalid, err)
		}
		if c := capOf(e.Path); e.Size > c {
			return nil, fmt.Errorf("%w: %s is %d bytes, over its %d byte cap: %w", bundle.ErrInvalid, e.Path, e.Size, c, tuf.ErrTooLarge)
		}
		p := filepath.Join(dir, filepath.FromSlash(e.Path))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return nil, fmt.Errorf("import: %w", err)
		}
		if err := fsutil.WriteFrom(p, 0o600, func(w io.Writer) error {
			_, err := io.Copy(w, br.Body())
			return err
		}); err != nil {
			return nil, fmt.Errorf("import: unpack %s: %w", e.Path, err)
		}
	}
}

func or(v, d int64) int64 {
	if v > 0 {
		return v
	}
	return d
}

// artifactTarget maps a bundle entry name to the signed target it
// claims to be ("targets/<product>/<sha256>.<release_artifact>").
func artifactTarget(repo *tuf.Repository, entry string) (tuf.Target, error) {
	rest, ok := strings.CutPrefix(entry, "targets/")
	pid, name, ok2 := strings.Cut(rest, "/")
	sum, ra, ok3 := strings.Cut(name, ".")
	if !ok || !ok2 || !ok3 || len(sum) != 64 {
		return tuf.Target{}, fmt.Errorf("%w: %s is not an artifact target path", bundle.ErrInvalid, entry)
	}
	t, err := repo.Target(tuf.ArtifactTarget(pid, ra))
	if err != nil {
		return tuf.Target{}, fmt.Errorf("%w: %s is not a target of snapshot v%d", bundle.ErrInvalid, entry, repo.Snapshot.Signed.Version)
	}
	if t.SHA256 != sum {
		return tuf.Target{}, fmt.Errorf("%w: %s: the signed target's sha256 is %s", bundle.ErrInvalid, entry, t.SHA256)
	}
	return t, nil
}

// takeTUF reads the bundle's artifacts: each must be a signed target of
// the verified repository at its signed length; the needed ones not yet
// cached are ingested (hashed on the way), or with DryRun only verified.
func (s *Syncer) takeTUF(ctx context.Context, br *bundle.Reader, first *bundle.FileEntry, repo *tuf.Repository, deltas importDeltas, needed map[string]bool, rep *ImportReport) (map[string]bool, error) {
	taken := map[string]bool{}
	e := first
	for e != nil {
		d, isDelta, err := bundledDelta(e.Path, deltas)
		if err != nil {
			return nil, err
		}
		var t tuf.Target
		if !isDelta {
			if t, err = artifactTarget(repo, e.Path); err != nil {
				return nil, err
			}
		}
		switch {
		case isDelta:
			if err := s.takeDelta(ctx, br.Body(), e.Path, e.Size, d, deltas, needed, taken, rep); err != nil {
				return nil, err
			}
		case e.Size != t.Length:
			return nil, fmt.Errorf("%w: %s is %d bytes, the signed target says %d", bundle.ErrInvalid, e.Path, e.Size, t.Length)
		case !needed[t.SHA256] || taken[t.SHA256]:
			rep.Skipped++
			if _, err := io.Copy(io.Discard, br.Body()); err != nil {
				return nil, err
			}
		case s.cache.Has(t.SHA256, t.Length):
			if _, err := io.Copy(io.Discard, br.Body()); err != nil {
				return nil, err
			}
		case rep.DryRun:
			if err := tuf.VerifyArtifact(nil, br.Body(), t); err != nil {
				return nil, fmt.Errorf("%w: %w", bundle.ErrInvalid, err)
			}
			taken[t.SHA256] = true
			rep.Imported++
			rep.Bytes += t.Length
		default:
			if err := s.cache.Ingest(ctx, t.SHA256, t.Length, br.Body()); err != nil {
				return nil, fmt.Errorf("%w: %s: %w", bundle.ErrInvalid, e.Path, err)
			}
			taken[t.SHA256] = true
			rep.Imported++
			rep.Bytes += t.Length
		}
		next, err := br.NextFile()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if !next.Artifact {
			return nil, fmt.Errorf("%w: %s after the artifacts", bundle.ErrInvalid, next.Path)
		}
		e = &next
	}
	if first == nil {
		if _, err := br.NextFile(); err != io.EOF {
			return nil, fmt.Errorf("%w: trailing entries", bundle.ErrInvalid)
		}
	}
	return taken, nil
}

// skipArtifacts reads an unchanged version's bundle to its end (the tar
// checked as for any import), taking none of its artifacts.
func (s *Syncer) skipArtifacts(br *bundle.Reader, first *bundle.FileEntry, rep *ImportReport) error {
	e := first
	for e != nil {
		rep.Skipped++
		if _, err := io.Copy(io.Discard, br.Body()); err != nil {
			return err
		}
		next, err := br.NextFile()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		e = &next
	}
	return nil
}
