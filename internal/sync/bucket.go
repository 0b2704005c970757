package sync

import (
	"github.com/outpost/outpost/internal/blob"
)

// BucketSource reads a customer-side bucket (S3/MinIO through
// internal/blob/s3, or any blob.Store) holding a copy of the tenant's TUF
// repository under a prefix:
//
//	<prefix>metadata/…   root, timestamp, snapshot and targets metadata
//	<prefix>targets/…    documents and artifacts by consistent path
type BucketSource struct {
	store  blob.Store
	prefix string
}

// NewBucket is a source over store, the repository under prefix.
func NewBucket(store blob.Store, prefix string) *BucketSource {
	return &BucketSource{store: store, prefix: prefix}
}

// Name implements Source.
func (b *BucketSource) Name() string { return "bucket " + b.prefix }
