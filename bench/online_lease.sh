#!/usr/bin/env bash
# Issue 18: online lease issuance on the control plane's store, 32
# concurrent clients, with 0 and with 100,000 active leases on the same
# entitlement, on bbolt (fsync on) and on PostgreSQL, beside the raw
# engine from the same run: bbolt put+fsync, one transaction per put, and
# a single-row INSERT (pgbench-like), each with 32 clients. Targets:
# ≥ 2,000 leases/s, and the rate at 100,000 active ≥ 0.8× the rate at 0.
# PostgreSQL: OUTPOST_TEST_POSTGRES_URL, else scripts/postgres.sh starts
# one on loopback. Rounds: BENCH_LEASE_ROUNDS (2; best kept).
# Raw lines: online_lease <store> <case> <per_s>
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
N=${BENCH_LEASE_N:-3000}
LROUNDS=${BENCH_LEASE_ROUNDS:-2}
use_postgres
declare -A best
# one PKG: one round of the package's lease benchmarks, keeping the best
# rate of each.
one() {
	local pkg=$1 line name v
	go test -run '^$' -bench 'AcquireLease|KeyedLeases|LeaseChurn|RawPutFsync|RawInsert' -benchtime "${N}x" "./internal/store/$pkg" >"$TMP/out" 2>&1 ||
		die "store lease benchmarks ($pkg): $(tail -20 "$TMP/out")"
	while read -r line; do
		name=$(awk '{print $1}' <<<"$line")
		name=${name#Benchmark}
		name=${name%-*}
		v=$(field leases/s "$line")
		[ -n "$v" ] || v=$(field puts/s "$line")
		[ -n "$v" ] || v=$(field inserts/s "$line")
		[ -n "$v" ] || continue
		if [ -z "${best[$pkg/$name]:-}" ] || awk -v a="$v" -v b="${best[$pkg/$name]}" 'BEGIN { exit !(a > b) }'; then
			best[$pkg/$name]=$v
		fi
	done < <(grep '^Benchmark' "$TMP/out")
}
for _ in $(seq "$LROUNDS"); do
	one bolt
	one postgres
done
for k in "${!best[@]}"; do echo "online_lease ${k%%/*} ${k#*/} ${best[$k]}"; done
report() { # PKG LABEL REFNAME REFLABEL CMD
	local pkg=$1 label=$2 ref=${best[$1/$3]:-} reflabel=$4 cmd=$5
	local z=${best[$pkg/AcquireLease/active=0]:-} h=${best[$pkg/AcquireLease/active=100000]:-}
	[ -n "$z" ] && [ -n "$h" ] && [ -n "$ref" ] || die "missing results for $pkg: $(cat "$TMP/out")"
	row "Online lease issuance, control plane store ($label), 32 clients, 0 active leases" \
		"$(fmt1 "$z") leases/s" "$reflabel: $(fmt1 "$ref")/s" "$(ratio "$z" "$ref")" "≥ 2,000/s" "$(judge "$z" '>=' 2000)" "$cmd"
	local r res
	r=$(ratio "$h" "$z")
	res=$(judge "$h" '>=' 2000)
	[ "$(judge "$r" '>=' 0.8)" = PASS ] || res=FAIL
	row "Online lease issuance, control plane store ($label), 32 clients, 100,000 active leases" \
		"$(fmt1 "$h") leases/s" "same store, 0 active: $(fmt1 "$z")/s" "$r" "≥ 2,000/s and ≥ 0.8×" "$res" "$cmd"
}
report bolt "bbolt, fsync" RawPutFsync "raw bbolt put+fsync, 32 clients" \
	"go test -run '^\$' -bench 'AcquireLease|RawPutFsync' -benchtime ${N}x ./internal/store/bolt"
report postgres "PostgreSQL" RawInsert "single-row INSERT, 32 clients" \
	"go test -run '^\$' -bench 'AcquireLease|RawInsert' -benchtime ${N}x ./internal/store/postgres"
# recorded TITLE RATE REFLABEL REF PKG BENCH: a leases/s row beside a
# reference from the same run, with no target.
recorded() {
	row "$1" "$(fmt1 "$2") leases/s" "$3: $(fmt1 "$4")/s" "$(ratio "$2" "$4")" "recorded, no target" info \
		"go test -run '^\$' -bench $6 -benchtime ${N}x ./internal/store/$5"
}
# Leases with an Idempotency-Key (three write transactions a request, as
# the HTTP API runs them), one entitlement: on one instance, and on two
# in one process, where every batch of either touches its counter.
k1=${best[postgres/KeyedLeases/instances=1]:-} k2=${best[postgres/KeyedLeases/instances=2]:-} z=${best[postgres/AcquireLease/active=0]:-}
[ -n "$k1" ] && [ -n "$k2" ] || die "missing keyed lease results: $(cat "$TMP/out")"
recorded "Online lease issuance with an Idempotency-Key (reserve, lease, answer), PostgreSQL, 32 clients" \
	"$k1" "same store, no key" "$z" postgres KeyedLeases
recorded "Online lease issuance with an Idempotency-Key, PostgreSQL, two instances in one process, one entitlement, 32 clients" \
	"$k2" "one instance" "$k1" postgres KeyedLeases
# Leases issued and released at once (each writes the entitlement's
# lease counter), one entitlement: on bbolt, on one PostgreSQL instance,
# and on two in one process, whose batches then take turns on the
# counter (a hot key: the advisory locks, kv.go).
c0=${best[bolt/LeaseChurn]:-} c1=${best[postgres/LeaseChurn/instances=1]:-} c2=${best[postgres/LeaseChurn/instances=2]:-}
[ -n "$c0" ] && [ -n "$c1" ] && [ -n "$c2" ] || die "missing lease churn results: $(cat "$TMP/out")"
recorded "Lease churn (issue, then release), control plane store (bbolt, fsync), one entitlement, 32 clients" \
	"$c0" "same store, issue only" "${best[bolt/AcquireLease/active=0]}" bolt LeaseChurn
recorded "Lease churn (issue, then release), PostgreSQL, one entitlement, 32 clients" \
	"$c1" "same store, issue only" "$z" postgres LeaseChurn
recorded "Lease churn, PostgreSQL, two instances in one process, one entitlement, 32 clients" \
	"$c2" "one instance" "$c1" postgres LeaseChurn
# The same 1 ms away: a batch's round trips (BEGIN with its read-ahead,
# the second read-ahead of what the first found, the writes with COMMIT)
# set the pace.
cr=${best[postgres/LeaseChurn/rtt=1ms/instances=1]:-}
[ -n "$cr" ] || die "missing delayed lease churn result: $(cat "$TMP/out")"
recorded "Lease churn, PostgreSQL 1 ms away (Toxiproxy), one instance, one entitlement, 32 clients" \
	"$cr" "on loopback" "$c1" postgres LeaseChurn
