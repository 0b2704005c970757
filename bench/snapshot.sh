#!/usr/bin/env bash
# Issue 3: building the in-memory view of a tenant with 100,000 releases
# (target 1 s; the view the TUF builder signs, bench/tufsync.sh), with the
# peak RSS of the benchmark process; and the bolt store's gather of that
# tenant's input (CreateSnapshot, recorded). The schema 1 sign and
# verify rows went with the DSSE snapshot codec.
# Raw lines: snapshot <benchmark> <ns_per_op> <cpu_ms_per_op> <heap_mb> <peak_rss_kib>
#            store_gather <sub> <ns_per_op> <cpu_ms_per_op> <allocs_per_op>
source "$(dirname "$0")/lib.sh"
ensure_bin
cd "$ROOT"

# field NAME LINE: the number before unit NAME on a benchmark line.

log "compiling internal/snapshot's test binary"
go test -c -o "$TMP/snapshot.test" ./internal/snapshot
declare -A NS CPU HEAP RSS
for b in Build100k; do
	log "benchmark $b"
	(cd internal/snapshot && "$BENCHTOOL" peakrss -o "$TMP/rss.$b" -- "$TMP/snapshot.test" \
		-test.run '^$' -test.bench "^Benchmark$b\$" -test.benchtime 3x -test.benchmem) >"$TMP/out.$b"
	line=$(grep "^Benchmark$b" "$TMP/out.$b" | tail -1) || die "no result for $b: $(cat "$TMP/out.$b")"
	NS[$b]=$(field ns/op "$line")
	CPU[$b]=$(field cpu-ms/op "$line")
	HEAP[$b]=$(field heap-MB "$line")
	RSS[$b]=$(awk '/^peakrss_kib/ {print $2}' "$TMP/rss.$b")
	echo "snapshot $b ${NS[$b]} ${CPU[$b]:-0} ${HEAP[$b]:-0} ${RSS[$b]}"
done

cmd="go test -run '^\$' -bench 100k -benchtime 3x ./internal/snapshot"
secs() { calc "$1 / 1e9"; }
mem() { echo "heap $(fmt1 "${HEAP[$1]:-0}") MB, peak RSS $(fmt1 "$(calc "${RSS[$1]} / 1024")") MiB"; }
s=$(secs "${NS[Build100k]}")
row "Snapshot view build, 100,000 releases" "$(fmt2 "$s") s (cpu $(fmt2 "$(calc "${CPU[Build100k]:-0} / 1000")") s; $(mem Build100k))" \
	"—" "—" "≤ 1 s" "$(judge "$s" '<=' 1)" "$cmd"

log "store gather (bolt CreateSnapshot, 100k releases)"
go test ./internal/store/bolt -run XXX -bench CreateSnapshot -benchtime 3x -benchmem >"$TMP/store.out" 2>&1 ||
	die "store benchmark: $(tail -20 "$TMP/store.out")"
for sub in cold warm; do
	line=$(grep "^BenchmarkCreateSnapshot_100k/$sub" "$TMP/store.out" | tail -1) || die "no store result for $sub"
	ns=$(field ns/op "$line")
	echo "store_gather $sub $ns $(field cpu-ms/op "$line") $(field allocs/op "$line")"
	row "Store gather for a snapshot (bolt), 100,000 releases, $sub catalog" \
		"$(fmt2 "$(secs "$ns")") s ($(field allocs/op "$line") allocs)" "—" "—" "recorded" "info" \
		"go test ./internal/store/bolt -run XXX -bench CreateSnapshot -benchtime 3x"
done
