#!/usr/bin/env bash
# Issue 18: catalog writes (a new release with its audit event) on the
# control plane's store, with 1 and 16 concurrent writers, on bbolt (fsync
# on) and on PostgreSQL, and on PostgreSQL from two instances with 16
# writers each. An "instance" is a store of its own (its own connection
# pool, group commit and locks) opened on the same schema; the second
# instance is a process of its own (the test binary run again), as a
# second control plane is, and, recorded beside it, a second store in the
# benchmark process (one Go runtime for both). Targets (PostgreSQL): 16
# writers ≥ 3× one writer; two instances ≥ 1.6× one, on loopback and with
# the database 1 ms away (a Toxiproxy link in the benchmark process
# delays its replies, as a database on another host would). PostgreSQL: OUTPOST_TEST_POSTGRES_URL, else
# scripts/postgres.sh starts one on loopback. Rounds: BENCH_CATALOG_ROUNDS
# (5; every case once a round, in turn): the rows give the median rates
# and the median of the per-round ratios. Writes per case: BENCH_CATALOG_N
# (4000).
# Raw lines: catalog_writes <store> <case> <per_s>
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
N=${BENCH_CATALOG_N:-4000}
CROUNDS=${BENCH_CATALOG_ROUNDS:-5}
use_postgres
# run PKG: one round of the package's cases, in turn; the rates of case
# NAME land in $TMP/PKG.NAME, one a round.
run() {
	local pkg=$1 line name v
	go test -run '^$' -bench CatalogWrites -benchtime "${N}x" "./internal/store/$pkg" >"$TMP/out" 2>&1 ||
		die "catalog write benchmarks ($pkg): $(tail -20 "$TMP/out")"
	while read -r line; do
		name=$(awk '{print $1}' <<<"$line")
		name=${name#BenchmarkCatalogWrites/}
		name=${name%-*}
		v=$(field writes/s "$line")
		[ -n "$v" ] || continue
		echo "catalog_writes $pkg $name $v"
		echo "$v" >>"$TMP/$pkg.${name//\//_}"
		c=$(field host-cpu-% "$line")
		[ -z "$c" ] || echo "$c" >>"$TMP/$pkg.${name//\//_}.cpu"
	done < <(grep '^BenchmarkCatalogWrites/' "$TMP/out")
}
for _ in $(seq "$CROUNDS"); do
	run bolt
	run postgres
done
# med PKG CASE: the median rate; rmed PKG A B: the median of the per-round
# ratios A/B (a loaded machine moves them less than the rates).
med() { median $(cat "$TMP/$1.$2"); }
rmed() { median $(paste -d' ' "$TMP/$1.$2" "$TMP/$1.$3" | awk '{ printf "%.4f\n", $1 / $2 }'); }
for f in bolt.writers=1 bolt.writers=16 postgres.instances=1_writers=1 postgres.instances=1_writers=16 postgres.instances=2_writers=16 \
	postgres.procs=2_writers=16 postgres.rtt=1ms_instances=1_writers=16 postgres.rtt=1ms_procs=2_writers=16; do
	[ -s "$TMP/$f" ] || die "missing results for $f: $(cat "$TMP/out")"
done
b1=$(med bolt writers=1) b16=$(med bolt writers=16)
p1=$(med postgres instances=1_writers=1) p16=$(med postgres instances=1_writers=16)
p2=$(med postgres procs=2_writers=16) p2in=$(med postgres instances=2_writers=16)
rb=$(rmed bolt writers=16 writers=1)
rp=$(rmed postgres instances=1_writers=16 instances=1_writers=1)
ri=$(rmed postgres procs=2_writers=16 instances=1_writers=16)
rin=$(rmed postgres instances=2_writers=16 instances=1_writers=16)
d1=$(med postgres rtt=1ms_instances=1_writers=16) d2=$(med postgres rtt=1ms_procs=2_writers=16)
rd=$(rmed postgres rtt=1ms_procs=2_writers=16 rtt=1ms_instances=1_writers=16)
cmd="go test -run '^\$' -bench CatalogWrites -benchtime ${N}x"
row "Catalog writes (new release + audit event), control plane store (bbolt, fsync), 16 writers" \
	"$(fmt1 "$b16") writes/s" "same store, 1 writer: $(fmt1 "$b1")/s" "$(trunc "$rb")" "recorded, no target" info "$cmd ./internal/store/bolt (median of $CROUNDS rounds)"
r=$(trunc "$rp")
row "Catalog writes (new release + audit event), control plane store (PostgreSQL), 16 writers" \
	"$(fmt1 "$p16") writes/s" "same store, 1 writer: $(fmt1 "$p1")/s" "$r" "≥ 3×" "$(judge "$r" '>=' 3)" "$cmd ./internal/store/postgres (median of $CROUNDS rounds)"
# The host's CPU one instance keeps busy (PostgreSQL included) bounds what
# a second can add on this machine: 100 / that share, with no cost of
# sharing at all.
cpu1=$(median $(cat "$TMP/postgres.instances=1_writers=16.cpu" 2>/dev/null || echo 0))
ceil=$(awk -v c="$cpu1" 'BEGIN { if (c > 0) printf "%.2f", 100 / c; else print "?" }')
r=$(trunc "$ri")
row "Catalog writes, PostgreSQL, two instances (two processes) on one database, 16 writers each" \
	"$(fmt1 "$p2") writes/s" "one instance, 16 writers: $(fmt1 "$p16")/s at $(fmt1 "$cpu1")% of the host's CPU (ceiling $ceil×)" "$r" "≥ 1.6×" "$(judge "$r" '>=' 1.6)" "$cmd ./internal/store/postgres (median of $CROUNDS rounds)"
row "Catalog writes, PostgreSQL, two instances in one process (one Go runtime) on one database, 16 writers each" \
	"$(fmt1 "$p2in") writes/s" "one instance, 16 writers: $(fmt1 "$p16")/s" "$(trunc "$rin")" "recorded, no target" info "$cmd ./internal/store/postgres (median of $CROUNDS rounds)"
r=$(trunc "$rd")
row "Catalog writes, PostgreSQL 1 ms away (Toxiproxy), two instances (two processes) on one database, 16 writers each" \
	"$(fmt1 "$d2") writes/s" "one instance, 16 writers: $(fmt1 "$d1")/s" "$r" "≥ 1.6×" "$(judge "$r" '>=' 1.6)" "$cmd ./internal/store/postgres (median of $CROUNDS rounds)"
