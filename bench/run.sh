#!/usr/bin/env bash
# `make bench`: installs what the benchmarks need (nginx, wrk, jq from
# Debian's packages), builds the binaries, runs every benchmark script in
# one go and rewrites docs/BENCHMARKS.md as one table. Everything runs on
# loopback; each script cleans up its processes and temp dirs.
#
# Knobs (environment): BENCH_DURATION (wrk seconds, 10), BENCH_ROUNDS
# (interleaved rounds, best kept, 2), BENCH_PAIR_ROUNDS (ours-beside-nginx
# pairs of serve.sh and updates.sh, median kept, 5), BENCH_UPLOAD_MIB (1024),
# BENCH_SYNC_SIZES (MiB, 1,64,128x16), BENCH_ONLY (space-separated subset
# of: upload_rss snapshot sync serve updates lease online_lease
# catalog_writes relational retention events herd tufsync mirror_cpu delta), BENCH_EVENTS (events sent by events.sh, 300000), BENCH_DELTA_PAIRS
# (delta.sh's pairs, "mirror image" here; add versitygw for pair (b)),
# BENCH_RETENTION_RELEASES (retention.sh's tenant, 10000 here; 100000 for
# the issue's), BENCH_DELTA_IMAGE_MIB (the synthetic image, 256 here to keep the run
# short; 1024 for the issue's 1 GiB image), BENCH_DELTA_BSDIFF_MAX_MIB (64
# here: bsdiff is left out of the image pair), BENCH_OUT (the document,
# docs/BENCHMARKS.md).
source "$(dirname "$0")/lib.sh"
OUT=${BENCH_OUT:-$ROOT/docs/BENCHMARKS.md}
ONLY=${BENCH_ONLY:-upload_rss snapshot sync serve updates lease online_lease catalog_writes relational retention events herd tufsync mirror_cpu delta}

install_deps() {
	local pkgs=()
	command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || pkgs+=(nginx-light)
	command -v wrk >/dev/null || pkgs+=(wrk)
	command -v jq >/dev/null || pkgs+=(jq)
	command -v curl >/dev/null || pkgs+=(curl)
	[ ${#pkgs[@]} -gt 0 ] || return 0
	local sudo=
	[ "$(id -u)" = 0 ] || sudo=sudo
	log "installing ${pkgs[*]}"
	$sudo apt-get update -qq >&2
	# nginx-light is gone from newer Debian releases: fall back to nginx.
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${pkgs[@]}" >&2 ||
		DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${pkgs[@]/nginx-light/nginx}" >&2
	# The package may start a system nginx on port 80; ours use their own.
}

install_deps
export PATH=$PATH:/usr/sbin
log "building binaries and versitygw"
(cd "$ROOT" && go build -o "$BIN/" ./cmd/... ./bench/benchtool) >&2
[ -x "$VGW" ] || make -C "$ROOT" tools >&2

started=$(date -u '+%Y-%m-%d %H:%M UTC')
load0=$(cut -d' ' -f1-3 /proc/loadavg)
t0=$(date +%s)
: >"$TMP/all"
failed=()
run() { # NAME SCRIPT [env…]
	local name=$1 script=$2
	shift 2
	case " $ONLY " in *" $name "*) ;; *) return 0 ;; esac
	log "=== $name"
	local s=$SECONDS
	if env "$@" "$ROOT/bench/$script" 2> >(tee "$TMP/$name.err" >&2) | tee -a "$TMP/all"; then
		echo "bench_seconds $name $((SECONDS - s))" >>"$TMP/all"
	else
		failed+=("$name")
		row "$name: the script failed (see Notes)" "—" "—" "—" "—" "FAIL" "bench/$script" >>"$TMP/all"
		{
			echo "- \`bench/$script\` failed; the end of its log:"
			echo
			echo '```'
			tail -15 "$TMP/$name.err"
			echo '```'
		} >>"$TMP/notes"
	fi
}

run upload_rss upload_rss.sh
run snapshot snapshot.sh
run sync sync.sh BENCH_KEEP_MIRROR="$TMP/mirror"
if [ -d "$TMP/mirror/data" ]; then
	run serve serve.sh MIRROR="$TMP/mirror"
else
	run serve serve.sh
fi
rm -rf "$TMP/mirror"
run updates updates.sh
run lease lease.sh
run online_lease online_lease.sh
run catalog_writes catalog_writes.sh
run relational relational.sh
run retention retention.sh
run events events.sh
run herd herd.sh
run tufsync tufsync.sh
run mirror_cpu mirror_cpu.sh
run delta delta.sh BENCH_DELTA_PAIRS="${BENCH_DELTA_PAIRS:-mirror image}" BENCH_DELTA_IMAGE_MIB="${BENCH_DELTA_IMAGE_MIB:-256}" \
	BENCH_DELTA_BSDIFF_MAX_MIB="${BENCH_DELTA_BSDIFF_MAX_MIB:-64}"

elapsed=$(($(date +%s) - t0))
load1=$(cut -d' ' -f1-3 /proc/loadavg)
cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
mem=$(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
nginxv=$( (nginx -v 2>&1 || true) | sed 's/^nginx version: //')
wrkv=$( (wrk -v 2>&1 || true) | head -1 | awk '{print $1, $2}')

cell() { sed 's/|/\\|/g'; }
{
	echo "# Benchmarks"
	echo
	echo "Written by \`make bench\` (bench/run.sh) — do not edit by hand; re-run it."
	echo
	echo "- Date: $started; the whole run took ${elapsed}s."
	echo "- Machine: $(nproc) CPUs ($cpu), $mem RAM, Linux $(uname -r), $(go version | awk '{print $3}'), ${nginxv:-nginx ?}, ${wrkv:-wrk ?}."
	echo "- Load average at start: $load0; at end: $load1. Figures taken while other work"
	echo "  ran on the machine are noisy; the ratios compare runs made in the same minutes."
	echo
	echo "Ratio is ours ÷ the reference measured in the same run (higher is better for"
	echo "rates; for sizes and the verify row, lower is better). Rates are the best of"
	echo "${ROUNDS} interleaved rounds of ${DURATION} s (wrk) per server, except the artifact"
	echo "download and update check rows: there each of ${PAIR_ROUNDS} rounds runs ours and nginx"
	echo "back to back, and the row gives the median rates and the median of the per-round ratios."
	echo
	echo "| What | Ours | Reference (same run) | Ratio | Target | Result | Command |"
	echo "| --- | --- | --- | --- | --- | --- | --- |"
	grep $'^row\t' "$TMP/all" | while IFS=$'\t' read -r _ what ours ref ratio target result cmd; do
		[ "$result" = info ] && result="—" && target="recorded, no target"
		[ "$result" = FAIL ] && result="**FAIL**"
		printf '| %s | %s | %s | %s | %s | %s | `%s` |\n' "$(cell <<<"$what")" "$(cell <<<"$ours")" \
			"$(cell <<<"$ref")" "$ratio" "$target" "$result" "$(cell <<<"$cmd")"
	done
	echo
	echo "## How to run"
	echo
	echo '```sh'
	echo 'make bench                       # everything, rewrites this file'
	echo 'BENCH_ONLY="serve updates" BENCH_DURATION=5 bench/run.sh   # a subset, shorter wrk runs'
	echo 'bench/upload_rss.sh 1024         # any script alone prints its rows'
	echo 'BENCH_ONLY=delta BENCH_DELTA_IMAGE_MIB=1024 bench/run.sh   # delta rows with the 1 GiB image'
	echo '```'
	echo
	echo "Scripts: \`bench/upload_rss.sh\` (control plane upload RSS, disk and S3),"
	echo "\`bench/snapshot.sh\` (100k-release snapshot build/verify, store gather),"
	echo "\`bench/sync.sh\` (mirror sync from versitygw vs a plain parallel download),"
	echo "\`bench/serve.sh\` (mirror artifact serving vs nginx, serving RSS),"
	echo "\`bench/updates.sh\` (update check vs nginx static JSON, engine micro-benchmarks),"
	echo "\`bench/lease.sh\` (durable lease issuance on the mirror), \`bench/online_lease.sh\`"
	echo "(online lease issuance on the control plane store, bbolt and PostgreSQL, 0 vs 100k"
	echo "active, beside raw bbolt put+fsync and a single-row INSERT; on PostgreSQL, requests with an Idempotency-Key on one and two instances),"
	echo "\`bench/catalog_writes.sh\` (catalog writes on the control plane store: 1 vs 16 writers on bbolt and PostgreSQL,"
	echo "two instances on one database (two processes, and two stores in one process), on loopback and 1 ms away through Toxiproxy),"
	echo "\`bench/relational.sh\` (online leases and catalog writes on PostgreSQL with the database's relational rules, migration 6, beside the same build without them),"
	echo "\`bench/retention.sh\` (control plane database size after 20 builds vs one, bbolt and PostgreSQL),"
	echo "\`bench/mirror_cpu.sh\` (CPU of the mirror's /v1/status and of an idle sync at 100k releases),"
	echo "\`bench/events.sh\` (client event ingest"
	echo "over HTTP on the mirror, its peak RSS), \`bench/herd.sh\` (first update checks after a build on the control plane: time and peak RSS, 1 vs 16 at once), \`bench/tufsync.sh\` (the mirror's TUF sync of a"
	echo "100,000-release tenant: one release, the first sync's peak RSS, the bytes on the wire for one release and for a refresh, and a build for 1,000 tenants), \`bench/delta.sh\` (delta size, apply rate and"
	echo "peak RSS on pairs (a) two builds of cmd/mirror and (c) the synthetic image, beside"
	echo "\`zstd --patch-from\` and \`bsdiff\`; the air-gap bundle through the real export)."
	echo "\`bench/benchtool\` and \`bench/deltatool\` hold their Go helpers (peak RSS of a child,"
	echo "S3 fill and plain download, the signed tenant bundle; delta build/apply, the image pair,"
	echo "the air-gap bundle)."
	echo
	echo "## Notes"
	echo
	if grep -q $'\tFAIL\t' "$TMP/all"; then
		echo "Missed targets in this run:"
		echo
		grep $'^row\t' "$TMP/all" | awk -F'\t' '$7 == "FAIL" {printf "- %s: %s (target %s)\n", $2, $3, $6}'
		echo
	else
		echo "Every target was met in this run."
		echo
	fi
	[ -s "$TMP/notes" ] && cat "$TMP/notes" && echo
	echo "## Raw output"
	echo
	echo '```'
	grep -v $'^row\t' "$TMP/all" || true
	echo '```'
} >"$TMP/BENCHMARKS.md"
mkdir -p "$(dirname "$OUT")"
cp "$TMP/BENCHMARKS.md" "$OUT.tmp" && mv "$OUT.tmp" "$OUT"
log "wrote $OUT in ${elapsed}s${failed:+; failed: ${failed[*]}}"
# A script that broke (not a missed target) fails `make bench`.
[ ${#failed[@]} -eq 0 ]
