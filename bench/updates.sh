#!/usr/bin/env bash
# Issues 5 and 18: the mirror's GET /v1/updates/check under wrk at 64 and
# at 1,000 connections against nginx serving a static JSON file of the
# same size (the mirror's own answer), in interleaved pairs
# (BENCH_PAIR_ROUNDS; the median of the per-pair ratios kept, the p99 of
# the median run). Target ≥ 0.8× at both. The tenant is updatetest.Default (50 products × 1,000
# releases × 6 artifacts, 20 policies, rollouts, blocked versions), signed
# as a TUF repository and carried to the mirror in a TUF bundle
# (benchtool updates); every
# artifact is the same 1-byte blob so the setup stays small. Also a mixed
# workload (1,000 different queries, ~5% bad) and the engine
# micro-benchmarks (go test -bench . ./internal/update).
# Raw lines: updates <case> <server> <round> <requests_per_s> <p99_ms> <server_cpu_us_per_request>
#            (case fixed: 64 connections, wide: 1,000, mixed: 1,000 queries)
#            updates_ratio <case> <ratio per round>… median <median>
#            updates_engine <benchmark> <ns_per_op> <allocs_per_op>
source "$(dirname "$0")/lib.sh"
ensure_bin
CONNS=${BENCH_UPDATES_CONNECTIONS:-64}
CONNS_WIDE=${BENCH_UPDATES_CONNECTIONS_WIDE:-1000}
raise_nofile $((CONNS_WIDE * 4 + 1024))

log "generating and signing the tenant"
"$BENCHTOOL" updates -bundle "$TMP/tenant.tar" -root "$TMP/root.json" -paths "$TMP/paths.txt" >"$TMP/gen"
tenant=$(awk '/^tenant_id/ {print $2}' "$TMP/gen")
query=$(awk '/^query/ {print $2}' "$TMP/gen")
bundlebytes=$(awk '/^bundle_bytes/ {print $2}' "$TMP/gen")

port=$(free_port)
cat >"$TMP/mirror.yaml" <<-EOF
	data_dir: "$TMP/mirror"
	listen: "127.0.0.1:$port"
	tenant_id: "$tenant"
	root_file: "$TMP/root.json"
	source: none
	gc_interval: 0s
	log_level: warn
EOF
log "importing the TUF bundle ($(fmt1 "$(calc "$bundlebytes / 1048576")") MiB)"
"$BENCHTOOL" peakrss -o "$TMP/import.rss" -- "$BIN/mirror" import --config "$TMP/mirror.yaml" "$TMP/tenant.tar" >&2 ||
	die "mirror import failed"
imp_s=$(awk '/^wall_seconds/ {print $2}' "$TMP/import.rss") imp_kib=$(awk '/^peakrss_kib/ {print $2}' "$TMP/import.rss")
echo "updates_import $imp_s $imp_kib"
row "Mirror import of the update-check tenant's whole TUF bundle ($(fmt1 "$(calc "$bundlebytes / 1048576")") MiB, 300,000 targets)" \
	"$(fmt1 "$imp_s") s, peak RSS $(fmt1 "$(calc "$imp_kib / 1024")") MiB" "—" "—" "recorded" "info" \
	"bench/updates.sh: benchtool peakrss -- mirror import"
rm -f "$TMP/tenant.tar"

"$BIN/mirror" serve --config "$TMP/mirror.yaml" 2>"$TMP/mirror.log" &
mpid=$!
PIDS+=($mpid)
wait_http "http://127.0.0.1:$port/readyz" 120
mirror_url="http://127.0.0.1:$port/v1/updates/check?$query"

mkdir -p "$TMP/www"
curl -fsS "$mirror_url" >"$TMP/www/check.json" || die "update check failed"
jq -e '.update_available == true' "$TMP/www/check.json" >/dev/null ||
	die "the benchmark query offers no update: $(cat "$TMP/www/check.json")"
size=$(stat -c %s "$TMP/www/check.json")
nport=$(free_port)
start_nginx "$TMP/www" "$nport"
nginx_url="http://127.0.0.1:$nport/check.json"
[ "$(curl -fsS "$nginx_url" | wc -c)" = "$size" ] || die "nginx does not serve check.json"

# wrk picks a path per request from PATHS_FILE (the mixed workload).
cat >"$TMP/paths.lua" <<-'EOF'
	local paths = {}
	for line in io.lines(os.getenv("PATHS_FILE")) do paths[#paths + 1] = line end
	local i = math.random(#paths)
	request = function()
		i = i % #paths + 1
		return wrk.format("GET", paths[i])
	end
EOF
export PATHS_FILE=$TMP/paths.txt

# Each round runs the pairs back to back at 64 and at 1,000 connections
# (which server goes first alternates), then the mixed workload; a row
# keeps the median rate, the p99 of the median run and the median of the
# per-round ratios.
declare -A RPS P99S RAT CPU
for k in fixed.mirror fixed.nginx wide.mirror wide.nginx mixed.mirror; do RPS[$k]="" P99S[$k]="" CPU[$k]=""; done
RAT[fixed]="" RAT[wide]="" RAT[mixed]=""
for r in $(seq 1 "$PAIR_ROUNDS"); do
	order="fixed.mirror fixed.nginx wide.mirror wide.nginx mixed.mirror"
	[ $((r % 2)) = 0 ] && order="fixed.nginx fixed.mirror wide.nginx wide.mirror mixed.mirror"
	declare -A got=()
	for k in $order; do
		conns=$CONNS
		case $k in wide.*) conns=$CONNS_WIDE ;; esac
		args=(-t2 -c"$conns" -d"${DURATION}s" --latency --timeout 30s)
		case $k in
		*.mirror) [ "$k" = mixed.mirror ] || args+=("$mirror_url") ;;
		*.nginx) args+=("$nginx_url") ;;
		esac
		[ "$k" = mixed.mirror ] && args+=(-s "$TMP/paths.lua" "http://127.0.0.1:$port")
		log "round $r: $k (-c$conns)"
		srvpid=$mpid
		[ "${k#*.}" = nginx ] && srvpid=$NGINX_PID
		t0=$(cpu_ticks "$srvpid")
		wrk_run "$TMP/wrk.$k.$r" "${args[@]}"
		t1=$(cpu_ticks "$srvpid")
		if [ "$k" != mixed.mirror ] && [ "$(wrk_non2xx "$TMP/wrk.$k.$r")" != 0 ]; then
			die "$k answered non-2xx: $(cat "$TMP/wrk.$k.$r")"
		fi
		rps=$(wrk_rps "$TMP/wrk.$k.$r") p99=$(wrk_p99_ms "$TMP/wrk.$k.$r")
		us=$(us_per_req $((t1 - t0)) "$(wrk_requests "$TMP/wrk.$k.$r")")
		echo "updates ${k/./ } $r $rps $p99 $us"
		got[$k]=$rps
		RPS[$k]+=" $rps" P99S[$k]+=" $rps:$p99" CPU[$k]+=" $us"
	done
	RAT[fixed]+=" $(calc "${got[fixed.mirror]} / ${got[fixed.nginx]}")"
	RAT[wide]+=" $(calc "${got[wide.mirror]} / ${got[wide.nginx]}")"
	RAT[mixed]+=" $(calc "${got[mixed.mirror]} / ${got[fixed.nginx]}")"
done
# p99 of the run whose rate is the median (the lower middle one).
p99_of() { # KEY
	# shellcheck disable=SC2086
	printf '%s\n' ${P99S[$1]} | sort -t: -k1,1g | awk -F: '{ v[NR] = $2 } END { print v[int((NR + 1) / 2)] }'
}
for k in fixed wide mixed; do
	# shellcheck disable=SC2086
	echo "updates_ratio $k$(printf ' %s' ${RAT[$k]}) median $(median ${RAT[$k]})"
done

# shellcheck disable=SC2086 # a word list
med() { median ${RPS[$1]}; }
for c in fixed wide; do
	conns=$CONNS
	[ $c = wide ] && conns=$CONNS_WIDE
	# shellcheck disable=SC2086
	ratio=$(ratio "$(median ${RAT[$c]})" 1)
	what="Mirror update check, 50 products × 1,000 releases × 6 artifacts, one query, $size-byte answer, $conns connections"
	# shellcheck disable=SC2086
	row "$what" "$(fmt1 "$(med $c.mirror)") req/s, p99 $(p99_of $c.mirror) ms, $(median ${CPU[$c.mirror]}) µs CPU/request" \
		"nginx, static $size-byte JSON: $(fmt1 "$(med $c.nginx)") req/s, p99 $(p99_of $c.nginx) ms, $(median ${CPU[$c.nginx]}) µs CPU/request" \
		"${ratio}×" "≥ 0.8×" "$(judge "$ratio" '>=' 0.8)" \
		"wrk -t2 -c$conns -d${DURATION}s --latency URL, median of $PAIR_ROUNDS interleaved pairs (bench/updates.sh)"
done
# shellcheck disable=SC2086
ratio=$(ratio "$(median ${RAT[mixed]})" 1)
row "Mirror update check, same tenant, 1,000 different queries (~5% bad), $CONNS connections" \
	"$(fmt1 "$(med mixed.mirror)") req/s, p99 $(p99_of mixed.mirror) ms" \
	"nginx, static $size-byte JSON: $(fmt1 "$(med fixed.nginx)") req/s" \
	"${ratio}×" "recorded" "info" "wrk -t2 -c$CONNS -d${DURATION}s --latency -s paths.lua URL (bench/updates.sh)"
rss=$(hwm_kib $mpid)
echo "updates_rss $rss"
row "Mirror peak RSS holding the update-check tenant (TUF; a $(fmt1 "$(calc "$bundlebytes / 1048576")") MiB bundle)" \
	"$(fmt1 "$(calc "$rss / 1024")") MiB" "—" "—" "recorded" "info" "bench/updates.sh: VmHWM of mirror serve"

log "engine micro-benchmarks"
cd "$ROOT"
go test -run '^$' -bench . -benchmem ./internal/update >"$TMP/engine.out" 2>&1 || die "engine benchmarks: $(tail -20 "$TMP/engine.out")"
while read -r line; do
	name=$(awk '{print $1}' <<<"$line")
	name=${name#Benchmark}
	name=${name%-*}
	ns=$(field ns/op "$line") allocs=$(field allocs/op "$line") bytes=$(field B/op "$line")
	echo "updates_engine $name $ns $allocs"
	case $name in
	New100k) what="Update engine: index a 100,000-release snapshot (update.New)" fig="$(fmt1 "$(calc "$ns / 1e6")") ms/op, $allocs allocs/op" ;;
	New) what="Update engine: index the tenant's snapshot (update.New)" fig="$(fmt1 "$(calc "$ns / 1e6")") ms/op, $allocs allocs/op" ;;
	Check) what="Update engine: one check + JSON answer (Engine.Check)" fig="$(fmt1 "$ns") ns/op, $allocs allocs/op ($bytes B/op)" ;;
	Handle) what="Update engine: whole handler on a recorder (update.Handle)" fig="$(fmt1 "$ns") ns/op, $allocs allocs/op ($bytes B/op)" ;;
	*) what="Update engine: $name" fig="$ns ns/op, $allocs allocs/op" ;;
	esac
	row "$what" "$fig" "—" "—" "recorded" "info" "go test -run '^\$' -bench . -benchmem ./internal/update"
done < <(grep '^Benchmark' "$TMP/engine.out")
