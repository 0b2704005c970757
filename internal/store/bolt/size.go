package bolt

import "go.etcd.io/bbolt"

// Size is how much of the file the data uses.
type Size struct {
	File  int64 // the file's size: bbolt never shrinks it
	Free  int64 // pages free for reuse (free and pending)
	InUse int64 // File − Free: the pages the data occupies now
}

// Size measures the file: what retention keeps bounded is InUse, since
// the file keeps its high-water mark and later writes reuse its free
// pages (`bbolt compact` gives the space back to the filesystem).
func (db *DB) Size() (Size, error) {
	var s Size
	err := db.bdb.View(func(tx *bbolt.Tx) error {
		s.File = tx.Size()
		return nil
	})
	st := db.bdb.Stats()
	s.Free = int64(st.FreePageN+st.PendingPageN) * int64(db.bdb.Info().PageSize)
	s.InUse = s.File - s.Free
	return s, err
}
