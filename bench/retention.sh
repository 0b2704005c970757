#!/usr/bin/env bash
# Issue 18, item 4: the control plane's database size under repeated
# builds. A tenant that sees BENCH_RETENTION_RELEASES releases (10,000
# here to keep the run short; 100000 for the issue's tenant, about 10× the
# time) is built 20 times, one new release before each build after the
# first, with retention applied after each build (as housekeeping does),
# on bbolt (pages in use) and PostgreSQL (table, TOAST and indexes after a
# VACUUM), with the default retention_keep (10) and with 2. Target: size
# after 20 builds ≤ 1.5× after one.
# Raw lines: retention <store> <keep> <mib_after_1> <mib_after_20> <ratio> <s_per_build> <mib_envelopes>
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
RELEASES=${BENCH_RETENTION_RELEASES:-10000}
use_postgres
cmd="BENCH_RETENTION_RELEASES=$RELEASES go test -run '^\$' -bench Retention_DatabaseSize -benchtime 1x ./internal/controlplaned"
BENCH_RETENTION_RELEASES=$RELEASES go test -run '^$' -bench Retention_DatabaseSize -benchtime 1x -timeout 60m ./internal/controlplaned >"$TMP/out" 2>&1 ||
	die "retention benchmark: $(tail -20 "$TMP/out")"
label=$(sed ':a;s/\B[0-9]\{3\}\>/,&/;ta' <<<"$RELEASES")
found=0
while read -r line; do
	name=$(awk '{print $1}' <<<"$line")
	name=${name#BenchmarkRetention_DatabaseSize/}
	name=${name%-*}
	st=${name%%/*}
	keep=${name#*/keep=}
	one=$(field MiB-after-1 "$line")
	twenty=$(field MiB-after-20 "$line")
	r=$(field size-ratio "$line")
	spb=$(field s/build "$line")
	env=$(field MiB-envelopes-after-20 "$line")
	[ -n "$r" ] || continue
	found=$((found + 1))
	echo "retention $st $keep $one $twenty $r $spb $env"
	case $st in bolt) what="bbolt, pages in use" ;; *) what="PostgreSQL, table + TOAST + indexes after VACUUM" ;; esac
	deflt=""
	[ "$keep" = 10 ] && deflt=" (the default)"
	row "Control plane database after 20 builds ÷ after 1, $label-release tenant, retention_keep $keep$deflt ($what)" \
		"$(fmt1 "$twenty") MiB (build records kept: $(fmt1 "$env") MiB stored, zstd)" "after 1 build: $(fmt1 "$one") MiB ($(fmt2 "$spb") s/build)" "$(ratio "$twenty" "$one")" "≤ 1.5×" \
		"$(judge "$(ratio "$twenty" "$one")" '<=' 1.5)" "$cmd"
done < <(grep '^BenchmarkRetention_DatabaseSize/' "$TMP/out")
[ "$found" -gt 0 ] || die "no retention result: $(cat "$TMP/out")"
