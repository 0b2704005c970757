#!/usr/bin/env bash
# Issue 4: mirror sync throughput from an S3 server (versitygw on
# loopback) against a plain parallel download of the same objects to disk
# with the same concurrency and no hashing or fsync (benchtool s3get,
# minio-go), in interleaved rounds; best of each kept. Target ≥ 0.9×. Also
# the mirror's peak RSS while syncing (< 64 MiB).
#
# The bucket holds the layout of configs/mirror.yaml's source: s3 —
# artifacts/<sha256> and a snapshot signed by benchtool s3fill.
# BENCH_SYNC_SIZES (MiB list, default 1,64,128x16: 2.06 GiB),
# BENCH_SYNC_CONCURRENCY (default 4). With BENCH_KEEP_MIRROR=DIR the last
# synced mirror (DIR/data, DIR/artifacts.txt) is kept for bench/serve.sh.
# Raw lines: sync_raw <round> <bytes> <seconds>
#            sync_mirror <round> <bytes> <seconds> <peak_rss_kib>
source "$(dirname "$0")/lib.sh"
SIZES=${BENCH_SYNC_SIZES:-1,64,128x16}
CONC=${BENCH_SYNC_CONCURRENCY:-4}
ROUNDS=${BENCH_SYNC_ROUNDS:-$ROUNDS}
ensure_bin

start_vgw "$TMP/s3"
log "filling bucket with $SIZES MiB"
"$BENCHTOOL" s3fill -endpoint "$S3_ADDR" -access "$S3_ACCESS" -secret "$S3_SECRET" -bucket mirror -sizes "$SIZES" -root "$TMP/root.json" >"$TMP/fill"
tenant=$(awk '/^tenant_id/ {print $2}' "$TMP/fill")
total=$(awk '/^artifact/ {s += $4} END {printf "%.0f", s}' "$TMP/fill")

mirror_config() { # DATADIR
	cat <<-EOF
		data_dir: "$1"
		tenant_id: "$tenant"
		root_file: "$TMP/root.json"
		source: s3
		s3:
		  endpoint: "$S3_ADDR"
		  access_key: "$S3_ACCESS"
		  secret_key: "$S3_SECRET"
		  bucket: mirror
		concurrency: $CONC
		log_level: warn
	EOF
}

raw_round() { # ROUND [-fsync]
	rm -rf "$TMP/raw" && mkdir -p "$TMP/raw"
	"$BENCHTOOL" s3get -endpoint "$S3_ADDR" -access "$S3_ACCESS" -secret "$S3_SECRET" -bucket mirror \
		-prefix targets/ -concurrency "$CONC" -dir "$TMP/raw" ${2:-} >"$TMP/raw.out"
	local bytes secs
	bytes=$(awk '/^bytes/ {print $2}' "$TMP/raw.out")
	secs=$(awk '/^seconds/ {print $2}' "$TMP/raw.out")
	# targets/ holds the artifacts and the tenant's signed documents (the
	# lease keys: under a KiB each), which the mirror fetches too.
	[ "$bytes" -ge "$total" ] && [ "$bytes" -le $((total + 65536)) ] ||
		die "plain download got $bytes bytes, want the artifacts' $total and at most 64 KiB of documents"
	if [ "${2:-}" = -fsync ]; then
		echo "sync_raw_fsync $1 $bytes $secs"
		best_durable=$(max "$best_durable" "$(calc "$bytes / 1048576 / $secs")")
	else
		echo "sync_raw $1 $bytes $secs"
		best_raw=$(max "$best_raw" "$(calc "$bytes / 1048576 / $secs")")
	fi
	rm -rf "$TMP/raw"
}

mirror_round() { # ROUND
	rm -rf "$TMP/mirror" && mkdir -p "$TMP/mirror"
	mirror_config "$TMP/mirror/data" >"$TMP/mirror/mirror.yaml"
	"$BENCHTOOL" peakrss -o "$TMP/mirror/rss" -- "$BIN/mirror" sync --once --config "$TMP/mirror/mirror.yaml" --output json >"$TMP/mirror/sync.json" ||
		die "mirror sync failed"
	local bytes secs rss
	bytes=$(jq -r .bytes "$TMP/mirror/sync.json")
	secs=$(awk '/^wall_seconds/ {print $2}' "$TMP/mirror/rss")
	rss=$(awk '/^peakrss_kib/ {print $2}' "$TMP/mirror/rss")
	# The sync's bytes count the signed metadata and documents too.
	[ "$bytes" -ge "$total" ] && [ "$bytes" -le $((total + 1048576)) ] ||
		die "mirror synced $bytes bytes, want the artifacts' $total and at most 1 MiB of metadata: $(cat "$TMP/mirror/sync.json")"
	echo "sync_mirror $1 $bytes $secs $rss"
	best_mirror=$(max "$best_mirror" "$(calc "$bytes / 1048576 / $secs")")
	peak=$(max "$peak" "$rss")
}

best_raw=0 best_durable=0 best_mirror=0 peak=0
for r in $(seq 1 "$ROUNDS"); do
	raw_round "$r" -fsync
	# Alternate who goes first; the mirror goes last so its data is kept.
	if [ $((r % 2)) = 1 ] && [ "$r" != "$ROUNDS" ]; then
		mirror_round "$r"
		raw_round "$r"
	else
		raw_round "$r"
		mirror_round "$r"
	fi
done

ratio=$(ratio "$best_mirror" "$best_raw")
gib=$(fmt2 "$(calc "$total / 1073741824")")
n=$(grep -c '^artifact' "$TMP/fill")
row "Mirror sync from S3 (versitygw), $n artifacts, $gib GiB, concurrency $CONC; hash + fsync" \
	"$(fmt1 "$best_mirror") MiB/s" "plain parallel download (minio-go, no hash/fsync): $(fmt1 "$best_raw") MiB/s" \
	"${ratio}×" "≥ 0.9×" "$(judge "$ratio" '>=' 0.9)" \
	"bench/sync.sh: mirror sync --once (source: s3) vs benchtool s3get -concurrency $CONC"
# The plain download above only fills the page cache. This reference also
# fsyncs each file, as the mirror must: the disk's durable write rate bounds
# both.
row "Mirror sync from S3, same run, against a durable reference" \
	"$(fmt1 "$best_mirror") MiB/s" "plain parallel download + fsync (no hash): $(fmt1 "$best_durable") MiB/s" \
	"$(ratio "$best_mirror" "$best_durable")×" "recorded, no target" "—" \
	"bench/sync.sh: benchtool s3get -fsync -concurrency $CONC"
mib=$(fmt1 "$(calc "$peak / 1024")")
row "Mirror peak RSS while syncing $gib GiB" "$mib MiB" "—" "—" "< 64 MiB" "$(judge "$mib" '<' 64)" \
	"bench/sync.sh: ru_maxrss of mirror sync --once"

if [ -n "${BENCH_KEEP_MIRROR:-}" ]; then
	mkdir -p "$BENCH_KEEP_MIRROR"
	mv "$TMP/mirror/data" "$BENCH_KEEP_MIRROR/data"
	grep '^artifact' "$TMP/fill" >"$BENCH_KEEP_MIRROR/artifacts.txt"
	cp "$TMP/root.json" "$BENCH_KEEP_MIRROR/root.json"
	awk '/^tenant_id/' "$TMP/fill" >"$BENCH_KEEP_MIRROR/trust.txt"
fi
