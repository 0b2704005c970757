#!/usr/bin/env bash
# Issue 2: peak RSS of the control plane while it receives a large artifact
# through POST /v1/artifacts (streamed, hashed on the way), on the disk and
# the S3 (versitygw) blob back ends. Target: VmHWM < 64 MiB.
# Raw lines: upload_rss <backend> <size_mib> <peak_rss_kib> <seconds>
# Usage: bench/upload_rss.sh [SIZE_MIB]   (default 1024)
source "$(dirname "$0")/lib.sh"
SIZE_MIB=${1:-${BENCH_UPLOAD_MIB:-1024}}
ensure_bin

run_one() { # backend
	local backend=$1 dir=$TMP/$1 addr=127.0.0.1:$(free_port) token pid
	mkdir -p "$dir"
	token=$("$BIN/controlplane" init --data-dir "$dir")
	"$BIN/controlplane" serve --data-dir "$dir" --listen "$addr" 2>"$dir/log" &
	pid=$!
	PIDS+=($pid)
	wait_http "http://$addr/readyz"
	local start end secs hwm
	start=$(date +%s.%N)
	head -c $((SIZE_MIB << 20)) /dev/zero | curl -fsS -X POST -T - -H "Authorization: Bearer $token" \
		-H 'Content-Type: application/octet-stream' "http://$addr/v1/artifacts?size_bytes=$((SIZE_MIB << 20))" >"$dir/answer" ||
		die "upload to $backend failed: $(cat "$dir/answer"; tail -3 "$dir/log")"
	end=$(date +%s.%N)
	grep -q VERIFIED "$dir/answer" || die "upload to $backend not verified: $(cat "$dir/answer")"
	hwm=$(hwm_kib $pid)
	kill -TERM $pid
	wait $pid || true
	secs=$(calc "$end - $start")
	echo "upload_rss $backend $SIZE_MIB $hwm $secs"
	local mib
	mib=$(fmt1 "$(calc "$hwm / 1024")")
	row "Control plane peak RSS, ${SIZE_MIB} MiB upload, $backend blob store" \
		"$mib MiB ($(fmt1 "$(calc "$SIZE_MIB / $secs")") MiB/s)" "—" "—" "< 64 MiB" \
		"$(judge "$mib" '<' 64)" "bench/upload_rss.sh: curl -T - POST /v1/artifacts; VmHWM"
}

run_one disk

start_vgw "$TMP/s3data"
export OUTPOST_BLOB_BACKEND=s3 OUTPOST_BLOB_S3_ENDPOINT=$S3_ADDR OUTPOST_BLOB_S3_ACCESS_KEY=$S3_ACCESS \
	OUTPOST_BLOB_S3_SECRET_KEY=$S3_SECRET OUTPOST_BLOB_S3_BUCKET=bench OUTPOST_BLOB_S3_CREATE_BUCKET=true
run_one s3
