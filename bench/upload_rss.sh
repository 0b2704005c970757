#!/usr/bin/env bash
# Peak RSS of the control plane while it receives a large artifact through
# POST /v1/artifacts (streamed, hashed on the way), on the disk and the S3
# (versitygw) blob back ends. Prints one line per back end:
#   upload_rss <backend> <size_mib> <peak_rss_kib> <seconds>
# Usage: bench/upload_rss.sh [SIZE_MIB]   (default 1024)
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MIB=${1:-1024}
BIN=./bin
[ -x $BIN/controlplane ] || go build -o $BIN/ ./cmd/controlplane
VGW=${OUTPOST_VERSITYGW:-./tools/bin/versitygw}
tmp=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$tmp"' EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

run_one() { # backend
	local backend=$1 dir=$tmp/$1 addr=127.0.0.1:$(port)
	mkdir -p "$dir"
	local token
	token=$($BIN/controlplane init --data-dir "$dir")
	$BIN/controlplane serve --data-dir "$dir" --listen "$addr" 2>"$dir/log" &
	local pid=$!
	pids+=($pid)
	for _ in $(seq 1 100); do curl -fs "http://$addr/readyz" >/dev/null && break; sleep 0.1; done
	local start end
	start=$(date +%s.%N)
	head -c $((SIZE_MIB << 20)) /dev/zero | curl -fsS -X POST -T - -H "Authorization: Bearer $token" \
		-H 'Content-Type: application/octet-stream' "http://$addr/v1/artifacts?size_bytes=$((SIZE_MIB << 20))" >"$dir/answer"
	end=$(date +%s.%N)
	grep -q VERIFIED "$dir/answer" || { echo "upload failed: $(cat "$dir/answer")" >&2; exit 1; }
	local hwm
	hwm=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
	kill -TERM $pid; wait $pid || true
	echo "upload_rss $backend $SIZE_MIB $hwm $(awk -v a="$start" -v b="$end" 'BEGIN{printf "%.2f", b-a}')"
}

run_one disk

if [ -x "$VGW" ]; then
	s3addr=127.0.0.1:$(port)
	mkdir -p "$tmp/s3data"
	"$VGW" --port "$s3addr" --access benchkey --secret benchsecret posix "$tmp/s3data" >"$tmp/vgw.log" 2>&1 &
	pids+=($!)
	for _ in $(seq 1 100); do curl -s "http://$s3addr" >/dev/null && break; sleep 0.1; done
	export OUTPOST_BLOB_BACKEND=s3 OUTPOST_BLOB_S3_ENDPOINT=$s3addr OUTPOST_BLOB_S3_ACCESS_KEY=benchkey \
		OUTPOST_BLOB_S3_SECRET_KEY=benchsecret OUTPOST_BLOB_S3_BUCKET=bench OUTPOST_BLOB_S3_CREATE_BUCKET=true
	run_one s3
else
	echo "upload_rss s3 skipped: $VGW not built (make tools)" >&2
fi
