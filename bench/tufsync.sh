#!/usr/bin/env bash
# Issue 12: the mirror's TUF sync of a 100,000-release tenant (10 products
# × 10,000 releases; metadata only): one new release (goal ≤ 1 s), and
# the first sync with its peak RSS (goal ≤ 256 MiB), measured in a
# separate process (BenchmarkTUFSync_FirstSyncRSS).
# Raw lines: tufsync one_release <ns_per_op> <bytes_per_op>
#            tufsync first_sync <ms_min> <ms_max> <bytes> <peak_rss_sync_mib> <peak_rss_engine_mib> <restart_ms> <peak_rss_restart_mib>
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

# field NAME LINE: the number before unit NAME on a benchmark line.

log "benchmark TUFSync_OneRelease"
go test -run '^$' -bench '^BenchmarkTUFSync_OneRelease$' -benchtime 3x ./internal/sync >"$TMP/tufsync.one" 2>&1 ||
	die "one-release sync: $(tail -20 "$TMP/tufsync.one")"
line=$(grep '^BenchmarkTUFSync_OneRelease' "$TMP/tufsync.one" | tail -1) || die "no result: $(cat "$TMP/tufsync.one")"
ns=$(field ns/op "$line")
bytes=$(field bytes/op "$line")
echo "tufsync one_release $ns $bytes"
s=$(calc "$ns / 1e9")
row "Mirror TUF sync, one new release in a 100,000-release tenant (metadata only)" \
	"$(fmt2 "$s") s, $bytes B fetched" "—" "—" "≤ 1 s" "$(judge "$s" '<=' 1)" \
	"go test -run '^\$' -bench TUFSync_OneRelease -benchtime 3x ./internal/sync"

log "benchmark TUFSync_FirstSyncRSS"
go test -run '^$' -bench '^BenchmarkTUFSync_FirstSyncRSS$' -benchtime 1x ./internal/sync >"$TMP/tufsync.first" 2>&1 ||
	die "first sync: $(tail -20 "$TMP/tufsync.first")"
line=$(grep '^BenchmarkTUFSync_FirstSyncRSS' "$TMP/tufsync.first" | tail -1) || die "no result: $(cat "$TMP/tufsync.first")"
min=$(field first-sync-min-ms "$line")
max=$(field first-sync-max-ms "$line")
fbytes=$(field bytes "$line")
rss=$(field peak-rss-sync-MiB "$line")
rsse=$(field peak-rss-with-engine-MiB "$line")
rms=$(field restart-max-ms "$line")
rrss=$(field peak-rss-restart-MiB "$line")
echo "tufsync first_sync $min $max $fbytes $rss $rsse $rms $rrss"
row "Mirror TUF first sync of that tenant: time, bytes, peak RSS; then a restart" \
	"$(fmt2 "$(calc "$max / 1000")") s, $fbytes B; peak RSS $(fmt1 "$rss") MiB ($(fmt1 "$rsse") MiB with the update engine built); restart (held version read back, engine built) $(fmt2 "$(calc "$rms / 1000")") s, peak RSS $(fmt1 "$rrss") MiB" \
	"—" "—" "≤ 256 MiB RSS" "$(judge "$rsse" '<=' 256)" \
	"go test -run '^\$' -bench TUFSync_FirstSyncRSS -benchtime 1x ./internal/sync"

# What travels and what a build costs (issue 12's transfer and build
# rows): bytes on the wire through the TUF handler with gzip for one new
# release and for a freshness-only refresh of the same tenant; one new
# release in a 10,000-release product visible to 1,000 tenants.
# Raw lines: tufsync wire <one_release_raw> <one_release_wire> <refresh_raw> <refresh_wire>
#            tufsync shared_1000 <ns_per_op>
log "benchmark Wire_OneRelease"
go test -run '^$' -bench '^BenchmarkWire_OneRelease$' -benchtime 1x ./internal/tuf/tufhttp >"$TMP/tufsync.wire" 2>&1 ||
	die "wire: $(tail -20 "$TMP/tufsync.wire")"
line=$(grep '^BenchmarkWire_OneRelease' "$TMP/tufsync.wire" | tail -1) || die "no result: $(cat "$TMP/tufsync.wire")"
oraw=$(field one-release-raw-B "$line")
owire=$(field one-release-wire-B "$line")
rraw=$(field refresh-raw-B "$line")
rwire=$(field refresh-wire-B "$line")
echo "tufsync wire $oraw $owire $rraw $rwire"
row "TUF metadata and documents to a synced mirror, one new release in a 100,000-release tenant (gzip on the wire)" \
	"$owire B on the wire ($oraw B uncompressed)" "—" "—" "≤ 64 KiB" "$(judge "$owire" '<=' 65536)" \
	"go test -run '^\$' -bench Wire_OneRelease -benchtime 1x ./internal/tuf/tufhttp"
row "TUF freshness-only refresh of that tenant (a new timestamp)" \
	"$rwire B on the wire ($rraw B uncompressed)" "—" "—" "≤ 4 KiB" "$(judge "$rwire" '<=' 4096)" \
	"go test -run '^\$' -bench Wire_OneRelease -benchtime 1x ./internal/tuf/tufhttp"

log "benchmark Build_SharedProduct1000Tenants"
go test -run '^$' -bench '^BenchmarkBuild_SharedProduct1000Tenants$' -benchtime 3x ./internal/tuf >"$TMP/tufsync.shared" 2>&1 ||
	die "shared product: $(tail -20 "$TMP/tufsync.shared")"
line=$(grep '^BenchmarkBuild_SharedProduct1000Tenants' "$TMP/tufsync.shared" | tail -1) || die "no result: $(cat "$TMP/tufsync.shared")"
ns=$(field ns/op "$line")
echo "tufsync shared_1000 $ns"
s=$(calc "$ns / 1e9")
row "TUF build, one new release in a 10,000-release product visible to 1,000 tenants (product re-signed once, 1,000 snapshots and timestamps)" \
	"$(fmt2 "$s") s ($(field B/tenant "$line") B per tenant)" "—" "—" "≤ 1 s" "$(judge "$s" '<=' 1)" \
	"go test -run '^\$' -bench Build_SharedProduct1000Tenants -benchtime 3x ./internal/tuf"
