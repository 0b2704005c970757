package kv

// Backend is the transactional key/value backend the store runs on, for
// the parts of the control plane that keep their own buckets beside the
// catalog's (fleet reports, the webhook outbox) and must commit with it.
func (db *Store) Backend() Backend { return db.b }
