// Package mirror is the mirror daemon: Mirror (Open, Run, Close) owns the
// state (internal/mirror/state), the blob cache, the HTTP Server that
// serves the held snapshot, its artifacts, update checks and offline
// leases (LeaseHandler), the syncer and the inbox watcher, and runs them
// as the parts of one daemon.Group that Close joins before the state is
// closed. Syncing lives in internal/sync; this package never fetches.
// docs/architecture.md ("The mirror side") walks through a sync and a client request.
package mirror
