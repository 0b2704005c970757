package sync

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/outpost/outpost/internal/fsutil"
)

// Inbox imports offline bundles dropped into a directory while the mirror
// serves, so an operator at an air-gapped site copies a file instead of
// stopping the daemon. A file is taken once it has kept the same size and
// modification time across two scans (so a copy in progress is left
// alone); names starting with "." or ending in ".part" or ".tmp" are
// ignored. Imported bundles move to done/, refused ones to failed/ with a
// NAME.error file saying why.
type Inbox struct {
	Dir      string
	Syncer   *Syncer
	Interval time.Duration // default 10s
	Logger   *slog.Logger

	seen map[string]fileStamp
}

type fileStamp struct {
	size  int64
	mtime time.Time
}

// Run scans until ctx ends.
func (in *Inbox) Run(ctx context.Context) {
	if in.Interval <= 0 {
		in.Interval = 10 * time.Second
	}
	t := time.NewTicker(in.Interval)
	defer t.Stop()
	for {
		if _, err := in.Scan(ctx); err != nil && ctx.Err() == nil {
			in.log().Error("inbox scan", "dir", in.Dir, "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (in *Inbox) log() *slog.Logger {
	if in.Logger != nil {
		return in.Logger
	}
	return slog.Default()
}

// Scan makes one pass and returns how many bundles it imported.
func (in *Inbox) Scan(ctx context.Context) (int, error) {
	if err := os.MkdirAll(in.Dir, 0o700); err != nil {
		return 0, err
	}
	entries, err := os.ReadDir(in.Dir)
	if err != nil {
		return 0, err
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	if in.seen == nil {
		in.seen = map[string]fileStamp{}
	}
	stamps := map[string]fileStamp{}
	imported := 0
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".part") || strings.HasSuffix(name, ".tmp") {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		st := fileStamp{size: info.Size(), mtime: info.ModTime()}
		stamps[name] = st
		if prev, ok := in.seen[name]; !ok || prev != st {
			continue // new or still growing: look again next scan
		}
		if ctx.Err() != nil {
			return imported, ctx.Err()
		}
		if in.take(ctx, name) {
			imported++
		}
		delete(stamps, name)
	}
	in.seen = stamps
	return imported, nil
}

// take imports one bundle and files it under done/ or failed/.
func (in *Inbox) take(ctx context.Context, name string) bool {
	path := filepath.Join(in.Dir, name)
	f, err := os.Open(path)
	if err != nil {
		in.log().Error("inbox open", "file", name, "err", err)
		return false
	}
	rep, ierr := in.Syncer.Import(ctx, f, false)
	f.Close()
	if ctx.Err() != nil {
		return false // shutting down: try again at the next start
	}
	dest := "done"
	if ierr != nil {
		dest = "failed"
		in.log().Error("inbox bundle refused", "file", name, "err", ierr)
	} else {
		in.log().Info("inbox bundle imported", "file", name, "sequence", rep.Sequence, "changed", rep.Changed, "imported", rep.Imported)
	}
	if err := in.file(name, dest, ierr); err != nil {
		in.log().Error("inbox move", "file", name, "err", err)
	}
	return ierr == nil
}

func (in *Inbox) file(name, dest string, ierr error) error {
	dir := filepath.Join(in.Dir, dest)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	target := filepath.Join(dir, name)
	if _, err := os.Stat(target); err == nil {
		target += "." + time.Now().UTC().Format("20060102T150405.000000000")
	}
	if ierr != nil {
		if err := fsutil.WriteFile(target+".error", []byte(ierr.Error()+"\n"), 0o600); err != nil {
			return err
		}
	}
	if err := os.Rename(filepath.Join(in.Dir, name), target); err != nil {
		return fmt.Errorf("move to %s: %w", dest, err)
	}
	return fsutil.SyncDir(in.Dir)
}
