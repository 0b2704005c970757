package bolt

import (
	"github.com/outpost/outpost/internal/deltajob"
	"github.com/outpost/outpost/internal/fleet/history"
	"github.com/outpost/outpost/internal/fleet/kvsink"
	"github.com/outpost/outpost/internal/store/kv"
	"github.com/outpost/outpost/internal/webhook/kvstore"
)

// allBuckets is the catalog's buckets and those of the parts that share its
// file and its transactions: the fleet reports (kvsink), the console's
// time series (history), the webhook outbox (kvstore) and the delta
// build queue (deltajob).
func allBuckets() [][]byte {
	out := append([][]byte{}, kv.Buckets...)
	out = append(out, kvsink.Buckets...)
	out = append(out, history.Buckets...)
	out = append(out, deltajob.Buckets...)
	return append(out, kvstore.Buckets...)
}
