package bolt

import (
	"github.com/outpost/outpost/internal/fleet/history"
	"github.com/outpost/outpost/internal/fleet/kvsink"
	"github.com/outpost/outpost/internal/store/kv"
	"github.com/outpost/outpost/internal/webhook/kvstore"
)

// allBuckets is the catalog's buckets and those of the parts that share its
// file and its transactions: the fleet reports (kvsink), the console's
// time series (history) and the webhook outbox (kvstore).
func allBuckets() [][]byte {
	out := append([][]byte{}, kv.Buckets...)
	out = append(out, kvsink.Buckets...)
	out = append(out, history.Buckets...)
	return append(out, kvstore.Buckets...)
}
