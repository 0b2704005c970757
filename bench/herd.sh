#!/usr/bin/env bash
# Issue 18, item 3: the first update checks after a snapshot build on a
# big tenant (BENCH_HERD_SIZES, default "10k 100k" releases): one alone,
# then 16 at once (after another build). Targets: 16 answered within 2×
# the time of one; the peak RSS they add ≤ 2× what one adds (one view).
# Raw lines: herd <size> <ms_one> <ms_16> <time_ratio> <mib_one> <mib_16> <rss_ratio>
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
sizes=${BENCH_HERD_SIZES:-10k 100k}
for size in $sizes; do
	cmd="go test -run '^\$' -bench 'FirstChecks/$size\$' -benchtime 2x ./internal/controlplane"
	go test -run '^$' -bench "FirstChecks/$size\$" -benchtime 2x -timeout 30m ./internal/controlplane >"$TMP/out" 2>&1 ||
		die "first-check benchmark $size: $(tail -20 "$TMP/out")"
	line=$(grep '^BenchmarkFirstChecks' "$TMP/out" | tail -1)
	[ -n "$line" ] || line=$(grep -A1 '^BenchmarkFirstChecks' "$TMP/out" | tail -1)
	field() { awk -v u="$1" '{ for (i = 2; i <= NF; i++) if ($i == u) { print $(i-1); exit } }' <<<"$line"; }
	one=$(field ms/first-check)
	herd=$(field ms/16-first-checks)
	tr=$(field time-ratio)
	m1=$(field MiB-rss-added-1)
	m16=$(field MiB-rss-added-16)
	rr=$(field rss-ratio)
	[ -n "$one" ] && [ -n "$rr" ] || die "no first-check result for $size: $(cat "$TMP/out")"
	echo "herd $size $one $herd $tr $m1 $m16 $rr"
	row "Control plane, 16 concurrent first update checks after a build, $size releases" \
		"$(fmt1 "$herd") ms" "one first check: $(fmt1 "$one") ms" "$(fmt2 "$tr")×" "≤ 2×" "$(judge "$tr" '<=' 2)" "$cmd"
	row "Control plane, peak RSS those 16 add, $size releases" \
		"$(fmt1 "$m16") MiB" "one first check adds $(fmt1 "$m1") MiB (one view)" "$(fmt2 "$rr")×" "≤ 2×" "$(judge "$rr" '<=' 2)" "$cmd"
done
