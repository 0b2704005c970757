#!/usr/bin/env bash
# Issue 18: catalog writes (a new release with its audit event) on the
# control plane's store, with 1 and 16 concurrent writers, on bbolt (fsync
# on) and on PostgreSQL, and on PostgreSQL from two instances with 16
# writers each. An "instance" is a store of its own (its own connection
# pool, group commit and locks) opened on the same schema in the benchmark
# process. Targets (PostgreSQL): 16 writers ≥ 3× one writer; two instances
# ≥ 1.6× one. PostgreSQL: OUTPOST_TEST_POSTGRES_URL, else
# scripts/postgres.sh starts one on loopback. Rounds: BENCH_CATALOG_ROUNDS
# (2; best kept), writes per case: BENCH_CATALOG_N (2000).
# Raw lines: catalog_writes <store> <case> <per_s>
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
N=${BENCH_CATALOG_N:-2000}
CROUNDS=${BENCH_CATALOG_ROUNDS:-2}
if [ -z "${OUTPOST_TEST_POSTGRES_URL:-}" ]; then
	OUTPOST_TEST_POSTGRES_URL=$("$ROOT/scripts/postgres.sh") || die "no PostgreSQL: set OUTPOST_TEST_POSTGRES_URL"
fi
export OUTPOST_TEST_POSTGRES_URL
field() { awk -v u="$1" '{ for (i = 2; i <= NF; i++) if ($i == u) { print $(i-1); exit } }' <<<"$2"; }
declare -A best
# one PKG: one round of the package's catalog write benchmarks, keeping
# the best rate of each case.
one() {
	local pkg=$1 line name v
	go test -run '^$' -bench CatalogWrites -benchtime "${N}x" "./internal/store/$pkg" >"$TMP/out" 2>&1 ||
		die "catalog write benchmarks ($pkg): $(tail -20 "$TMP/out")"
	while read -r line; do
		name=$(awk '{print $1}' <<<"$line")
		name=${name#BenchmarkCatalogWrites/}
		name=${name%-*}
		v=$(field writes/s "$line")
		[ -n "$v" ] || continue
		if [ -z "${best[$pkg/$name]:-}" ] || awk -v a="$v" -v b="${best[$pkg/$name]}" 'BEGIN { exit !(a > b) }'; then
			best[$pkg/$name]=$v
		fi
	done < <(grep '^BenchmarkCatalogWrites/' "$TMP/out")
}
for _ in $(seq "$CROUNDS"); do
	one bolt
	one postgres
done
for k in "${!best[@]}"; do echo "catalog_writes ${k%%/*} ${k#*/} ${best[$k]}"; done
b1=${best[bolt/writers=1]:-} b16=${best[bolt/writers=16]:-}
p1=${best[postgres/instances=1/writers=1]:-} p16=${best[postgres/instances=1/writers=16]:-} p2=${best[postgres/instances=2/writers=16]:-}
[ -n "$b1" ] && [ -n "$b16" ] && [ -n "$p1" ] && [ -n "$p16" ] && [ -n "$p2" ] || die "missing results: $(cat "$TMP/out")"
cmd="go test -run '^\$' -bench CatalogWrites -benchtime ${N}x"
row "Catalog writes (new release + audit event), control plane store (bbolt, fsync), 16 writers" \
	"$(fmt1 "$b16") writes/s" "same store, 1 writer: $(fmt1 "$b1")/s" "$(ratio "$b16" "$b1")" "recorded, no target" info "$cmd ./internal/store/bolt"
r=$(ratio "$p16" "$p1")
row "Catalog writes (new release + audit event), control plane store (PostgreSQL), 16 writers" \
	"$(fmt1 "$p16") writes/s" "same store, 1 writer: $(fmt1 "$p1")/s" "$r" "≥ 3×" "$(judge "$r" '>=' 3)" "$cmd ./internal/store/postgres"
r=$(ratio "$p2" "$p16")
row "Catalog writes, PostgreSQL, two instances on one database (two stores in one process), 16 writers each" \
	"$(fmt1 "$p2") writes/s" "one instance, 16 writers: $(fmt1 "$p16")/s" "$r" "≥ 1.6×" "$(judge "$r" '>=' 1.6)" "$cmd ./internal/store/postgres"
