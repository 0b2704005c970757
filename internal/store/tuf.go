package store

import "context"

// TUFFile is one published file of a TUF repository: its path under the
// repository's base ("metadata/…" or "targets/…") and its bytes.
type TUFFile struct {
	Name string
	Data []byte
}

// TUFFiles persists the TUF repositories the control plane publishes.
// Files live in scopes (a tenant id, or a shared scope for the products'
// metadata); a scope also holds named sets, each listing the names of
// the files that are current for one part (a tenant's top-level roles and
// documents, one product's roles), so a restart restores the builder
// without re-signing. The kv store implements it; it is a separate
// interface so that a Store without it still compiles.
type TUFFiles interface {
	// PutTUFFiles writes files into scope and replaces the sets given, in
	// one transaction: a build is published whole or not at all.
	PutTUFFiles(ctx context.Context, scope string, files []TUFFile, sets map[string][]string) error
	// TUFFile returns one file of scope, or catalog ENOTFOUND.
	TUFFile(ctx context.Context, scope, name string) ([]byte, error)
	// TUFSet returns the files a set of scope names, in the set's order
	// (nil when the set is absent).
	TUFSet(ctx context.Context, scope, set string) ([]TUFFile, error)
}

// Pruner deletes what retention no longer keeps (docs/metadata.md,
// "Retention"), each call one bounded transaction. The kv store
// implements it.
type Pruner interface {
	// PruneSnapshots deletes at most limit of the tenant's snapshots
	// older than both its keep newest and the oldest snapshot pinned
	// names; the newest is never deleted. It returns how many it deleted.
	PruneSnapshots(ctx context.Context, tenantID string, keep int, pinned []string, limit int) (int, error)
	// TUFNames lists at most limit names of scope's files starting with
	// prefix, in order, after the name after ("": from the first).
	TUFNames(ctx context.Context, scope, prefix, after string, limit int) ([]string, error)
	// DeleteTUFFiles deletes files of scope in one transaction, except
	// those a set of the scope names (current); it returns how many it
	// deleted.
	DeleteTUFFiles(ctx context.Context, scope string, names []string) (int, error)
}
