#!/usr/bin/env bash
# Issue 14: client events into the mirror over HTTP (POST /v1/events, the
# whole handler: strict decoding, validation, one fsynced bbolt commit per
# batch into the aggregator and its 100,000-event window) from 8
# concurrent clients in batches of 500. Targets: ≥ 10,000 events/s and
# the mirror's peak RSS (VmHWM) ≤ 64 MiB.
# Raw lines: events <events> <batch> <events_per_s> <peak_rss_kib>
# Usage: bench/events.sh [EVENTS]   (default 300000)
source "$(dirname "$0")/lib.sh"
EVENTS=${1:-${BENCH_EVENTS:-300000}}
BATCH=${BENCH_EVENTS_BATCH:-500}
ensure_bin

port=$(free_port)
"$BENCHTOOL" tufroot -tenant ten_06h2q4zfdaq8ygbcaf8qvvagvw -out "$TMP/root.json"
cat >"$TMP/mirror.yaml" <<-EOF2
	data_dir: "$TMP/mirror"
	listen: "127.0.0.1:$port"
	tenant_id: "ten_06h2q4zfdaq8ygbcaf8qvvagvw"
	root_file: "$TMP/root.json"
	source: none
	gc_interval: 0s
	log_level: warn
	rate_limit:
	  events:
	    rate: 0
EOF2
mkdir -p "$TMP/mirror"
"$BIN/mirror" serve --config "$TMP/mirror.yaml" 2>"$TMP/mirror.log" &
mpid=$!
PIDS+=($mpid)
wait_http "http://127.0.0.1:$port/healthz" 60
cmd="bench/events.sh $EVENTS: benchtool events -batch $BATCH -clients 8 → mirror serve; VmHWM"
"$BENCHTOOL" events -url "http://127.0.0.1:$port" -events "$EVENTS" -batch "$BATCH" -clients 8 >"$TMP/out" ||
	die "event load failed: $(cat "$TMP/out"; tail -5 "$TMP/mirror.log")"
eps=$(awk '/^events_per_s/ {print $2}' "$TMP/out")
n=$(awk '/^events_accepted/ {print $2}' "$TMP/out")
[ "$n" -ge "$EVENTS" ] || die "only $n of $EVENTS events accepted"
hwm=$(hwm_kib $mpid)
echo "events $n $BATCH $eps $hwm"
mib=$(fmt1 "$(calc "$hwm / 1024")")
row "Mirror event ingest over HTTP (POST /v1/events, batches of $BATCH, 8 clients, bbolt fsync)" \
	"$(fmt1 "$eps") events/s" "—" "—" "≥ 10,000/s" "$(judge "$eps" '>=' 10000)" "$cmd"
row "Mirror peak RSS during that ingest ($n events)" "$mib MiB" "—" "—" "≤ 64 MiB" "$(judge "$mib" '<=' 64)" "$cmd"
