#!/usr/bin/env bash
# Issue 6: durable lease issuance on the mirror (fsynced before the
# answer, seat limits enforced) at 32 concurrent clients, on a real bbolt
# file: the ledger alone and the whole HTTP handler. Target ≥ 2,000/s.
# Raw lines: lease <benchmark> <leases_per_s> <ns_per_op>
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
cmd="go test -run '^\$' -bench Acquire -benchtime 3000x ./internal/mirror/state ./internal/mirror"
go test -run '^$' -bench Acquire -benchtime 3000x ./internal/mirror/state ./internal/mirror >"$TMP/out" 2>&1 ||
	die "lease benchmarks: $(tail -20 "$TMP/out")"
n=0
while read -r line; do
	name=$(awk '{print $1}' <<<"$line")
	name=${name#Benchmark}
	name=${name%-*}
	lps=$(field leases/s "$line")
	[ -n "$lps" ] || continue
	n=$((n + 1))
	echo "lease $name $lps $(field ns/op "$line")"
	case $name in
	LedgerAcquire) what="Mirror lease issuance, ledger (bbolt, fsync), 32 clients" ;;
	HandlerAcquire) what="Mirror lease issuance over HTTP (PUT /v1/leases/{subject}), 32 clients" ;;
	*) what="Lease issuance: $name" ;;
	esac
	row "$what" "$(fmt1 "$lps") leases/s" "—" "—" "≥ 2,000/s" "$(judge "$lps" '>=' 2000)" "$cmd"
done < <(grep '^Benchmark' "$TMP/out")
[ $n -gt 0 ] || die "no lease benchmark results: $(cat "$TMP/out")"
