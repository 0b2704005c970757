package httpapi

import (
	"context"
	"io"
	"net/http"

	"github.com/outpost/outpost/internal/catalog"
)

// Backuper is a store that can write a consistent copy of itself while
// serving (bbolt: a read transaction's WriteTo).
type Backuper interface {
	Backup(ctx context.Context, w io.Writer) (int64, error)
}

// backup streams a consistent copy of the catalog: GET /v1/admin/backup.
func (s *Server) backup(w http.ResponseWriter, r *http.Request, p *Principal) error {
	b, ok := s.Store.(Backuper)
	if !ok {
		return catalog.Errorf(catalog.EUNAVAILABLE, "this store cannot make online backups")
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	if _, err := b.Backup(r.Context(), w); err != nil {
		s.Log.Error("backup failed mid-stream", "err", err)
		panic(http.ErrAbortHandler)
	}
	return nil
}
