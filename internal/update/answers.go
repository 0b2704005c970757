package update

import (
	"strconv"
	"sync"

	"github.com/outpost/outpost/internal/snapshot"
)

// maxAnswers bounds the pre-rendered answers an engine keeps: past it,
// answers are rendered per request (as fast, with a few more bytes
// copied), so clients asking about every artifact cannot grow memory.
const maxAnswers = 4096

// answerKey is everything a response document depends on (AppendJSON):
// the engine's snapshot is fixed, the rest comes from the decision.
type answerKey struct {
	rel    *releaseEntry
	ra     *snapshot.ReleaseArtifact
	a      *snapshot.Artifact
	delta  *snapshot.Delta
	action string
	reason string
	avail  bool
}

// answer is a rendered 200 response: the document with its newline and
// its Content-Length header value.
type answer struct {
	body   []byte
	length []string
}

// answerCache caches rendered documents per decision key, computed once per
// held snapshot (the engine) the first time a decision is reached.
type answerCache struct {
	mu sync.RWMutex
	m  map[answerKey]*answer
}

func (d *Decision) key() answerKey {
	return answerKey{rel: d.rel, ra: d.ReleaseArtifact, a: d.Artifact, delta: d.Delta, action: d.Action, reason: d.Reason, avail: d.UpdateAvailable}
}

// get returns the rendered answer for d, rendering and keeping it the
// first time (while fewer than maxAnswers are kept); nil when the cache
// is full and d was never seen.
func (c *answerCache) get(d *Decision) *answer {
	k := d.key()
	c.mu.RLock()
	a := c.m[k]
	full := len(c.m) >= maxAnswers
	c.mu.RUnlock()
	if a != nil || full {
		return a
	}
	body := d.AppendJSON(nil)
	body = append(body, '\n')
	a = &answer{body: body, length: []string{strconv.Itoa(len(body))}}
	c.mu.Lock()
	if old := c.m[k]; old != nil {
		a = old
	} else if len(c.m) < maxAnswers {
		if c.m == nil {
			c.m = map[answerKey]*answer{}
		}
		c.m[k] = a
	}
	c.mu.Unlock()
	return a
}
