package update

import (
	"crypto/sha256"
	"encoding/binary"
)

// referenceBucket is the rollout bucket formula of docs/conditions.md
// written the obvious way.
func referenceBucket(rollout, client string) uint64 {
	sum := sha256.Sum256([]byte(rollout + ":" + client))
	return binary.BigEndian.Uint64(sum[0:8]) % 10000
}
