#!/usr/bin/env bash
# Issue 18, item 5: the mirror's hot paths answer from small stored
# summaries, without decoding the held metadata, at 100,000 releases:
# GET /v1/status, and a sync that finds nothing new (a 304 on the
# timestamp). Both are Go benchmarks that report the process's CPU time
# per operation (getrusage, user + system, every thread), not wall time.
# Target: ≤ 10 ms CPU each.
# Raw lines: mirror_cpu <case> <cpu_ms_per_op>
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
status_cmd="go test -run '^\$' -bench Server_Status100k -benchtime 200x ./internal/mirror"
go test -run '^$' -bench 'Server_Status100k$' -benchtime 200x ./internal/mirror >"$TMP/status" 2>&1 ||
	die "status benchmark: $(tail -20 "$TMP/status")"
idle_cmd="go test -run '^\$' -bench TUFSync_Idle -benchtime 200x ./internal/sync"
go test -run '^$' -bench 'TUFSync_Idle$' -benchtime 200x ./internal/sync >"$TMP/idle" 2>&1 ||
	die "idle sync benchmark: $(tail -20 "$TMP/idle")"
status=$(field cpu-ms/op "$(grep '^BenchmarkServer_Status100k' "$TMP/status" | tail -1)")
idle=$(field cpu-ms/op "$(grep '^BenchmarkTUFSync_Idle' "$TMP/idle" | tail -1)")
[ -n "$status" ] && [ -n "$idle" ] || die "no result: $(cat "$TMP/status" "$TMP/idle")"
echo "mirror_cpu status $status"
echo "mirror_cpu idle_sync $idle"
row "Mirror GET /v1/status, 100,000-release tenant (TUF), CPU per request" \
	"$(awk -v v="$status" 'BEGIN { printf "%.3f", v }') ms CPU" "—" "—" "≤ 10 ms" "$(judge "$status" '<=' 10)" "$status_cmd"
row "Mirror sync that finds nothing new (304 on the timestamp), 100,000-release tenant, CPU per sync (serving side included)" \
	"$(awk -v v="$idle" 'BEGIN { printf "%.3f", v }') ms CPU" "—" "—" "≤ 10 ms" "$(judge "$idle" '<=' 10)" "$idle_cmd"
