#!/usr/bin/env bash
# Issue 18: what the database's own relational rules (PostgreSQL schema
# migration 6: foreign keys, unique keys and append-only triggers on
# releases, artifacts, leases, policies, blocked versions, rollouts,
# snapshots and mirrors) cost the hot write paths. The postgres store's
# benchmarks run from two test binaries built from this tree, one with
# migration 6 and one without it (`go test -overlay` deletes the files),
# in turn, BENCH_RELATIONAL_ROUNDS (5) rounds of BENCH_RELATIONAL_N (4000)
# operations a case: online leases (32 clients, none active) and catalog
# writes (16 writers). The rows give the median rates and the median of
# the per-round ratios with/without. PostgreSQL: OUTPOST_TEST_POSTGRES_URL,
# else scripts/postgres.sh starts one on loopback.
# Raw lines: relational <with|without> <case> <per_s>
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
N=${BENCH_RELATIONAL_N:-4000}
R=${BENCH_RELATIONAL_ROUNDS:-5}
use_postgres
# Without: migration 6 and those after it deleted (the runner wants them
# numbered without a gap; 7, the read-only views, and 8, the seat limit,
# cost these writes nothing).
dir=$ROOT/internal/store/postgres/migrations
[ -f "$dir/0006_catalog_constraints.sql" ] || die "no migration 6 in $dir"
{
	printf '{"Replace":{'
	sep=
	for f in "$dir"/*.sql; do
		n=$(basename "$f")
		[ "$((10#${n%%_*}))" -ge 6 ] || continue
		printf '%s"%s":""' "$sep" "$f"
		sep=,
	done
	printf '}}\n'
} >"$TMP/without.json"
go test -c -o "$TMP/with.test" ./internal/store/postgres
go test -c -overlay "$TMP/without.json" -o "$TMP/without.test" ./internal/store/postgres
# The binary without the migration must really lack it: its test of the
# rules fails.
if "$TMP/without.test" -test.run 'TestCatalog_DatabaseEnforces$' >"$TMP/check" 2>&1; then
	die "the build without migration 6 still enforces its rules"
fi
run() { # VARIANT
	local v=$1 line
	"$TMP/$v.test" -test.run '^$' -test.bench 'AcquireLease/active=0$|CatalogWrites/instances=1/writers=16$' \
		-test.benchtime "${N}x" >"$TMP/out" 2>&1 || die "$v: $(tail -20 "$TMP/out")"
	line=$(grep '^BenchmarkAcquireLease/' "$TMP/out") || die "$v: no lease figure: $(tail -20 "$TMP/out")"
	echo "relational $v leases $(field leases/s "$line")"
	field leases/s "$line" >>"$TMP/$v.leases"
	line=$(grep '^BenchmarkCatalogWrites/' "$TMP/out") || die "$v: no catalog figure: $(tail -20 "$TMP/out")"
	echo "relational $v catalog $(field writes/s "$line")"
	field writes/s "$line" >>"$TMP/$v.catalog"
}
for _ in $(seq "$R"); do
	run with
	run without
done
med() { median $(cat "$TMP/$1.$2"); }
rmed() { median $(paste -d' ' "$TMP/with.$1" "$TMP/without.$1" | awk '{ printf "%.4f\n", $1 / $2 }'); }
cmd="bench/relational.sh (median of $R rounds, $N operations a case)"
row "Online leases, PostgreSQL, 32 clients, with the database's relational rules (migration 6)" \
	"$(fmt1 "$(med with leases)") leases/s" "same build without migration 6: $(fmt1 "$(med without leases)")/s" "$(trunc "$(rmed leases)")" "recorded, no target" info "$cmd"
row "Catalog writes, PostgreSQL, 16 writers, with the database's relational rules (migration 6)" \
	"$(fmt1 "$(med with catalog)") writes/s" "same build without migration 6: $(fmt1 "$(med without catalog)")/s" "$(trunc "$(rmed catalog)")" "recorded, no target" info "$cmd"
