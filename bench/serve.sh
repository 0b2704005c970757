#!/usr/bin/env bash
# Issue 4: artifact downloads from the real `mirror serve` against nginx
# serving the same blob files from the mirror's cache directory (sendfile
# on), with wrk on loopback: a 1 MiB and a 64 MiB artifact and a 64 KiB
# Range request, in interleaved pairs (BENCH_PAIR_ROUNDS, median of the
# per-pair ratios kept). Target ≥ 0.95× (Range: ≥ 0.8×, issue 18). Then
# the mirror's peak RSS after serving every cached artifact (≥ 2 GiB) once
# plus all the wrk traffic (< 64 MiB).
#
# MIRROR=DIR reuses a mirror synced by bench/sync.sh (BENCH_KEEP_MIRROR);
# without it this script runs bench/sync.sh first.
# Raw lines: serve <case> <server> <round> <requests_per_s> <server_cpu_us_per_request>
#            serve_ratio <case> <ratio per round>… median <median>
#            serve_rss <peak_rss_kib> <bytes_served>
source "$(dirname "$0")/lib.sh"
ensure_bin
CONNS=${BENCH_SERVE_CONNECTIONS:-16}
# Whole 64 MiB downloads: fewer connections, or a 10 s run completes too
# few requests for a stable rate.
CONNS_LARGE=${BENCH_SERVE_CONNECTIONS_LARGE:-4}

M=${MIRROR:-}
if [ -z "$M" ]; then
	log "no MIRROR given: syncing one with bench/sync.sh"
	M=$TMP/synced
	BENCH_KEEP_MIRROR=$M BENCH_SYNC_ROUNDS=1 "$ROOT/bench/sync.sh" >/dev/null
fi
[ -s "$M/artifacts.txt" ] || die "$M/artifacts.txt missing: not a mirror kept by bench/sync.sh"
tenant=$(awk '/^tenant_id/ {print $2}' "$M/trust.txt")

port=$(free_port)
cat >"$TMP/serve.yaml" <<-EOF
	data_dir: "$M/data"
	listen: "127.0.0.1:$port"
	tenant_id: "$tenant"
	root_file: "$M/root.json"
	source: none
	gc_interval: 0s
	log_level: warn
EOF
"$BIN/mirror" serve --config "$TMP/serve.yaml" 2>"$TMP/mirror.log" &
mpid=$!
PIDS+=($mpid)
wait_http "http://127.0.0.1:$port/readyz"
mirror_url="http://127.0.0.1:$port/v1/artifacts"

nport=$(free_port)
start_nginx "$M/data/blobs" "$nport"
nginx_url="http://127.0.0.1:$nport"

# Every cached artifact once through the mirror (the "2 GiB served").
served=0
while read -r _ id sha size; do
	got=$(curl -fsS -o /dev/null -w '%{size_download}' "$mirror_url/$id") || die "GET $id failed"
	[ "$got" = "$size" ] || die "GET $id: $got bytes, want $size"
	served=$((served + size))
done <"$M/artifacts.txt"

# pick SIZE: "id sha" of the first artifact of exactly SIZE bytes.
pick() { awk -v s="$1" '$4 == s {print $2, $3; exit}' "$M/artifacts.txt"; }
read -r id1 sha1 < <(pick $((1 << 20)))
read -r id64 sha64 < <(pick $((64 << 20)))
[ -n "${id1:-}" ] && [ -n "${id64:-}" ] || die "the mirror lacks a 1 MiB and a 64 MiB artifact (BENCH_SYNC_SIZES)"
blobpath() { echo "/sha256/${1:0:2}/$1"; }

# Both servers must answer alike before they are compared.
for u in "$mirror_url/$id64" "$nginx_url$(blobpath "$sha64")"; do
	code=$(curl -s -o /dev/null -w '%{http_code} %{size_download}' -H 'Range: bytes=0-65535' "$u")
	[ "$code" = "206 65536" ] || die "Range on $u answered '$code', want '206 65536'"
	code=$(curl -s -o /dev/null -w '%{http_code} %{size_download}' "$u")
	[ "$code" = "200 $((64 << 20))" ] || die "GET $u answered '$code'"
done

cases=("1MiB" "64MiB" "range64KiB")
declare -A URL_M URL_N HDR SIZE RPS RAT CONN CPU
URL_M[1MiB]=$mirror_url/$id1 URL_N[1MiB]=$nginx_url$(blobpath "$sha1") SIZE[1MiB]=$((1 << 20))
URL_M[64MiB]=$mirror_url/$id64 URL_N[64MiB]=$nginx_url$(blobpath "$sha64") SIZE[64MiB]=$((64 << 20))
URL_M[range64KiB]=$mirror_url/$id64 URL_N[range64KiB]=$nginx_url$(blobpath "$sha64") SIZE[range64KiB]=65536
HDR[range64KiB]="Range: bytes=0-65535"
for c in "${cases[@]}"; do RPS[$c.mirror]="" RPS[$c.nginx]="" CPU[$c.mirror]="" CPU[$c.nginx]="" RAT[$c]="" CONN[$c]=$CONNS; done
CONN[64MiB]=$CONNS_LARGE

# Each round runs every case's pair back to back (which server goes
# first alternates); a row keeps the median rates and the median of the
# per-round ratios.
for r in $(seq 1 "$PAIR_ROUNDS"); do
	for c in "${cases[@]}"; do
		order="mirror nginx"
		[ $((r % 2)) = 0 ] && order="nginx mirror"
		declare -A got=()
		for srv in $order; do
			if [ $srv = mirror ]; then u=${URL_M[$c]}; else u=${URL_N[$c]}; fi
			args=(-t2 -c"${CONN[$c]}" -d"${DURATION}s" --timeout 60s)
			[ -n "${HDR[$c]:-}" ] && args+=(-H "${HDR[$c]}")
			log "round $r: $c on $srv"
			srvpid=$mpid
			[ $srv = nginx ] && srvpid=$NGINX_PID
			t0=$(cpu_ticks "$srvpid")
			wrk_run "$TMP/wrk.$c.$srv.$r" "${args[@]}" "$u"
			t1=$(cpu_ticks "$srvpid")
			[ "$(wrk_non2xx "$TMP/wrk.$c.$srv.$r")" = 0 ] || die "$srv answered non-2xx: $(cat "$TMP/wrk.$c.$srv.$r")"
			rps=$(wrk_rps "$TMP/wrk.$c.$srv.$r")
			us=$(us_per_req $((t1 - t0)) "$(wrk_requests "$TMP/wrk.$c.$srv.$r")")
			echo "serve $c $srv $r $rps $us"
			got[$srv]=$rps
			RPS[$c.$srv]+=" $rps" CPU[$c.$srv]+=" $us"
			if [ $srv = mirror ]; then
				n=$(awk '/requests in/ {print $1}' "$TMP/wrk.$c.$srv.$r")
				served=$(awk -v a="$served" -v n="$n" -v s="${SIZE[$c]}" 'BEGIN { printf "%.0f", a + n * s }')
			fi
		done
		RAT[$c]+=" $(calc "${got[mirror]} / ${got[nginx]}")"
	done
done

for c in "${cases[@]}"; do
	# shellcheck disable=SC2086 # word lists
	m=$(median ${RPS[$c.mirror]}) n=$(median ${RPS[$c.nginx]}) rt=$(median ${RAT[$c]})
	echo "serve_ratio $c$(printf ' %s' ${RAT[$c]}) median $rt"
	ratio=$(ratio "$rt" 1)
	mibs() { fmt1 "$(calc "$1 * ${SIZE[$c]} / 1048576")"; }
	what="Mirror artifact download, ${c/range64KiB/Range 64 KiB of the 64 MiB artifact}"
	[ "$c" = range64KiB ] || what="Mirror artifact download, ${c/MiB/ MiB} file"
	target=0.95
	[ "$c" = range64KiB ] && target=0.8
	# shellcheck disable=SC2086
	row "$what (wrk -t2 -c${CONN[$c]})" "$(fmt1 "$m") req/s ($(mibs "$m") MiB/s), $(median ${CPU[$c.mirror]}) µs CPU/request" \
		"nginx, sendfile, same file: $(fmt1 "$n") req/s ($(mibs "$n") MiB/s), $(median ${CPU[$c.nginx]}) µs CPU/request" "${ratio}×" "≥ ${target}×" \
		"$(judge "$ratio" '>=' $target)" "wrk -t2 -c${CONN[$c]} -d${DURATION}s --timeout 60s ${HDR[$c]:+-H '${HDR[$c]}' }URL, median of $PAIR_ROUNDS interleaved pairs (bench/serve.sh)"
done

rss=$(hwm_kib $mpid)
echo "serve_rss $rss $served"
mib=$(fmt1 "$(calc "$rss / 1024")")
cached=$(awk '{s += $4} END {printf "%.2f", s / 1073741824}' "$M/artifacts.txt")
row "Mirror peak RSS serving ($cached GiB cached, $(fmt1 "$(calc "$served / 1073741824")") GiB served)" "$mib MiB" "—" "—" \
	"< 64 MiB" "$(judge "$mib" '<' 64)" "bench/serve.sh: VmHWM of mirror serve"
