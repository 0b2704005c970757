package bolt

import (
	"encoding/json"
	"fmt"

	"go.etcd.io/bbolt"
)

// The layout the fixture loaders write directly (see store/kv).
var (
	bTenants        = []byte("tenants")
	bProducts       = []byte("products")
	bArtifacts      = []byte("artifacts")
	bReleases       = []byte("releases")
	bRelArts        = []byte("release_artifacts")
	iReleasePCV     = []byte("idx_release_pcv")
	iReleaseProduct = []byte("idx_release_product")
	iRelArtRelease  = []byte("idx_relart_release")
)

// key joins parts with NUL bytes.
func key(parts ...string) []byte {
	var b []byte
	for i, p := range parts {
		if i > 0 {
			b = append(b, 0)
		}
		b = append(b, p...)
	}
	return b
}

func putJSON(tx *bbolt.Tx, bucket, k []byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", bucket, err)
	}
	return tx.Bucket(bucket).Put(k, b)
}

func putIdx(tx *bbolt.Tx, bucket, k []byte, v string) error {
	return tx.Bucket(bucket).Put(k, []byte(v))
}
