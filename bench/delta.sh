#!/usr/bin/env bash
# Issue 13: delta updates. For each pair (base → target) it measures our
# delta (internal/delta through bench/deltatool: size ÷ full size, build
# and apply time, peak RSS of each) and, in the same run, the references
# Debian's `zstd --patch-from --long` and `bsdiff`:
#   mirror     two builds of this project's cmd/mirror, a one-line change
#   versitygw  two consecutive published versions from the Go module proxy
#   image      a synthetic disk image: 1% of its 4 KiB blocks rewritten in
#              place and 1 MiB inserted at the middle
# Goals: mirror ≤ 10% and image ≤ 3% of the full size; ours ≤ 1.25× the
# best reference on every pair; apply ≥ 200 MiB/s; image build and apply
# peak RSS ≤ 256 MiB.
# Raw lines: delta <pair> <tool> <bytes> <full_bytes> <build_s> <build_rss_kib> <apply_s> <apply_rss_kib>
# With the image pair it also measures the air-gap bundle (deltatool
# bundle): a control plane publishes the base, then the target as a new
# release; `bundle export --since` (the real App.ExportBundle) carries the
# delta; goal ≤ 5% of the full size; the same export with --no-deltas is
# the reference, and a mirror imports both bundles (raw lines: airgap …).
#
# Knobs: BENCH_DELTA_PAIRS (mirror versitygw image), BENCH_DELTA_IMAGE_MIB
# (1024), BENCH_DELTA_VGW ("v1.7.0 v1.8.0"), BENCH_DELTA_ZSTD_LEVEL (19;
# the image pair uses 3 unless BENCH_DELTA_IMAGE_ZSTD_LEVEL says
# otherwise), BENCH_DELTA_BSDIFF_MAX_MIB (256: bsdiff needs ~17× the base
# in RAM, so larger pairs are not given to it), BENCH_DELTA_GOMEMLIMIT
# (192MiB, for our build and apply), BENCH_DELTA_AIRGAP (1; 0 skips the
# air-gap bundle).
source "$(dirname "$0")/lib.sh"
PAIRS=${BENCH_DELTA_PAIRS:-mirror versitygw image}
IMAGE_MIB=${BENCH_DELTA_IMAGE_MIB:-1024}
read -r VGW_OLD VGW_NEW <<<"${BENCH_DELTA_VGW:-v1.7.0 v1.8.0}"
ZLEVEL=${BENCH_DELTA_ZSTD_LEVEL:-19}
IMAGE_ZLEVEL=${BENCH_DELTA_IMAGE_ZSTD_LEVEL:-3}
BSDIFF_MAX_MIB=${BENCH_DELTA_BSDIFF_MAX_MIB:-256}
# Our build and apply run with a soft heap limit, as a daemon running them
# should (GOMEMLIMIT): the Go collector then keeps RSS near the live heap.
MEMLIMIT=${BENCH_DELTA_GOMEMLIMIT:-192MiB}

install_deps() {
	local pkgs=()
	command -v zstd >/dev/null || pkgs+=(zstd)
	command -v bsdiff >/dev/null || pkgs+=(bsdiff)
	[ -x /usr/bin/time ] || pkgs+=(time)
	[ ${#pkgs[@]} -gt 0 ] || return 0
	local sudo=
	[ "$(id -u)" = 0 ] || sudo=sudo
	log "installing ${pkgs[*]}"
	$sudo apt-get update -qq >&2
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${pkgs[@]}" >&2
}
install_deps
log "building deltatool and benchtool"
(cd "$ROOT" && go build -o "$BIN/" ./bench/deltatool ./bench/benchtool) >&2
DT=$BIN/deltatool

# measure OUT CMD…: runs CMD, records "peakrss_kib" and "wall_seconds"
# (GNU time: the kernel's ru_maxrss of the child) in OUT.
measure() {
	local out=$1
	shift
	/usr/bin/time -f 'peakrss_kib %M\nwall_seconds %e\ncpu_seconds %U %S' -o "$out" "$@"
}
field() { awk -v k="$2" '$1 == k {print (k == "cpu_seconds" ? $2 + $3 : $2)}' "$1"; }
size() { stat -c %s "$1"; }
mib() { fmt1 "$(calc "$1 / 1048576")"; }
# human BYTES: KiB below 1 MiB, else MiB.
human() { if [ "$1" -lt 1048576 ]; then echo "$(fmt1 "$(calc "$1 / 1024")") KiB"; else echo "$(mib "$1") MiB"; fi; }
# pct A B: A/B in percent, three decimals below 1%.
pct() { awk -v a="$1" -v b="$2" 'BEGIN { p = a * 100 / b; printf (p < 1 ? "%.3f" : "%.2f"), p }'; }

# pair NAME BASE TARGET ZLEVEL: every tool on one pair, then its rows.
pair() {
	local name=$1 base=$2 target=$3 zl=$4 dir=$TMP/$1
	mkdir -p "$dir"
	local full bmib
	full=$(size "$target")
	bmib=$(($(size "$base") >> 20))
	log "$name: $(mib "$(size "$base")") MiB → $(mib "$full") MiB"

	# Ours.
	measure "$dir/ours.build" env GOMEMLIMIT="$MEMLIMIT" "$DT" build -base "$base" -target "$target" -o "$dir/ours.delta" >"$dir/ours.out"
	measure "$dir/ours.apply" env GOMEMLIMIT="$MEMLIMIT" "$DT" apply -base "$base" -delta "$dir/ours.delta" -o "$dir/ours.rebuilt" >>"$dir/ours.out"
	cmp -s "$dir/ours.rebuilt" "$target" || die "$name: our rebuilt file differs from the target"
	rm -f "$dir/ours.rebuilt"
	# Like for like with zstd -d: no base hashing, no temp file + fsync.
	measure "$dir/ours.plain" env GOMEMLIMIT="$MEMLIMIT" "$DT" apply -trust-base -no-sync -base "$base" -delta "$dir/ours.delta" -o "$dir/ours.rebuilt" >"$dir/ours.plain.out"
	cmp -s "$dir/ours.rebuilt" "$target" || die "$name: our rebuilt file differs from the target"
	rm -f "$dir/ours.rebuilt"
	local o_bytes o_bs o_brss o_as o_arss
	o_bytes=$(size "$dir/ours.delta")
	o_bs=$(field "$dir/ours.build" wall_seconds) o_brss=$(field "$dir/ours.build" peakrss_kib)
	o_as=$(field "$dir/ours.out" apply_seconds) o_arss=$(field "$dir/ours.apply" peakrss_kib)
	local o_ps o_pcpu
	o_ps=$(field "$dir/ours.plain.out" apply_seconds)
	o_pcpu=$(field "$dir/ours.plain" cpu_seconds)
	echo "delta $name ours $o_bytes $full $o_bs $o_brss $o_as $o_arss"
	echo "delta_apply_plain $name ours $o_ps $o_pcpu"
	rm -f "$dir/ours.delta"

	# zstd --patch-from, long mode (the window must reach the whole base).
	local zs_bytes zs_bs zs_brss zs_as zs_arss
	measure "$dir/zstd.build" zstd -q -f -T1 "-$zl" --long=31 --patch-from="$base" "$target" -o "$dir/zstd.delta" 2>/dev/null
	measure "$dir/zstd.apply" zstd -q -f -d --long=31 --patch-from="$base" "$dir/zstd.delta" -o "$dir/zstd.rebuilt"
	cmp -s "$dir/zstd.rebuilt" "$target" || die "$name: zstd's rebuilt file differs from the target"
	rm -f "$dir/zstd.rebuilt"
	zs_bytes=$(size "$dir/zstd.delta")
	zs_bs=$(field "$dir/zstd.build" wall_seconds) zs_brss=$(field "$dir/zstd.build" peakrss_kib)
	zs_as=$(field "$dir/zstd.apply" wall_seconds) zs_arss=$(field "$dir/zstd.apply" peakrss_kib)
	local zs_acpu
	zs_acpu=$(field "$dir/zstd.apply" cpu_seconds)
	echo "delta $name zstd-$zl $zs_bytes $full $zs_bs $zs_brss $zs_as $zs_arss"
	rm -f "$dir/zstd.delta"

	# bsdiff (suffix sorting: ~17× the base in memory), small pairs only.
	local bs_bytes=
	if [ "$bmib" -le "$BSDIFF_MAX_MIB" ]; then
		local bs_bs bs_brss bs_as bs_arss
		measure "$dir/bsdiff.build" bsdiff "$base" "$target" "$dir/bsdiff.delta"
		measure "$dir/bsdiff.apply" bspatch "$base" "$dir/bsdiff.rebuilt" "$dir/bsdiff.delta"
		cmp -s "$dir/bsdiff.rebuilt" "$target" || die "$name: bspatch's rebuilt file differs from the target"
		rm -f "$dir/bsdiff.rebuilt"
		bs_bytes=$(size "$dir/bsdiff.delta")
		bs_bs=$(field "$dir/bsdiff.build" wall_seconds) bs_brss=$(field "$dir/bsdiff.build" peakrss_kib)
		bs_as=$(field "$dir/bsdiff.apply" wall_seconds) bs_arss=$(field "$dir/bsdiff.apply" peakrss_kib)
		echo "delta $name bsdiff $bs_bytes $full $bs_bs $bs_brss $bs_as $bs_arss"
		rm -f "$dir/bsdiff.delta"
	else
		log "$name: bsdiff skipped (base ${bmib} MiB > ${BSDIFF_MAX_MIB} MiB: it would need ~$((bmib * 17 / 1024)) GiB)"
	fi

	# Rows. The best reference is the smaller delta.
	local best=$zs_bytes bestname="zstd -$zl --long --patch-from"
	if [ -n "$bs_bytes" ] && [ "$bs_bytes" -lt "$best" ]; then best=$bs_bytes bestname=bsdiff; fi
	local share zshare bshare="" r goal
	share=$(pct "$o_bytes" "$full")
	zshare=$(pct "$zs_bytes" "$full")
	[ -n "$bs_bytes" ] && bshare="; bsdiff $(pct "$bs_bytes" "$full")% ($(human "$bs_bytes"))"
	[ -z "$bs_bytes" ] && bshare="; bsdiff not run (needs ~17× the base in RAM)"
	r=$(ratio "$o_bytes" "$best")
	case $name in
	mirror) goal=10 ;;
	image) goal=3 ;;
	*) goal= ;;
	esac
	local what="Delta size ÷ full, $name ($(mib "$full") MiB)"
	if [ -n "$goal" ]; then
		row "$what" "$share% ($(human "$o_bytes"))" "zstd -$zl: $zshare% ($(human "$zs_bytes"))$bshare" \
			"$r" "≤ $goal% and ≤ 1.25× best ref" \
			"$([ "$(judge "$share" '<=' "$goal")" = PASS ] && judge "$r" '<=' 1.25 || echo FAIL)" "bench/delta.sh: deltatool build"
	else
		row "$what" "$share% ($(human "$o_bytes"))" "zstd -$zl: $zshare% ($(human "$zs_bytes"))$bshare" \
			"$r" "≤ 1.25× best ref ($bestname)" "$(judge "$r" '<=' 1.25)" "bench/delta.sh: deltatool build"
	fi
	local rate zrate prate cpurate
	rate=$(calc "$full / 1048576 / $o_as")
	prate=$(calc "$full / 1048576 / $(max "$o_ps" 0.001)")
	cpurate=$(calc "$full / 1048576 / $(max "$o_pcpu" 0.001)")
	zrate=$(calc "$full / 1048576 / $(max "$zs_as" 0.001)")
	row "Delta apply, $name: rebuild + verify sha256 (with base check + fsync; per CPU second)" \
		"$(fmt1 "$prate") MiB/s ($(fmt1 "$rate") MiB/s; $(fmt1 "$cpurate") MiB/s)" \
		"zstd -d --patch-from: $(fmt1 "$zrate") MiB/s ($(fmt1 "$(calc "$full / 1048576 / $(max "$zs_acpu" 0.001)")") MiB/s per CPU s)" \
		"$(ratio "$prate" "$zrate")" "≥ 200 MiB/s" "$(judge "$prate" '>=' 200)" "bench/delta.sh: deltatool apply [-trust-base -no-sync]"
	local rss_target="recorded, no target" rss_result=info
	if [ "$name" = image ]; then rss_target="≤ 256 MiB"; fi
	local brss arss
	brss=$(fmt1 "$(calc "$o_brss / 1024")") arss=$(fmt1 "$(calc "$o_arss / 1024")")
	if [ "$name" = image ]; then
		rss_result=$([ "$(judge "$brss" '<=' 256)" = PASS ] && judge "$arss" '<=' 256 || echo FAIL)
	fi
	row "Delta peak RSS, $name: build / apply (build time)" "$brss / $arss MiB (${o_bs} s)" \
		"zstd: $(fmt1 "$(calc "$zs_brss / 1024")") / $(fmt1 "$(calc "$zs_arss / 1024")") MiB (${zs_bs} s)" "—" \
		"$rss_target" "$rss_result" "bench/delta.sh: GNU time %M, GOMEMLIMIT=$MEMLIMIT"
}

# airgap BASE TARGET: the air-gap bundle row.
airgap() {
	local dir=$TMP/airgap out=$TMP/airgap.out
	log "air-gap bundle: a control plane with both releases, export --since, import"
	measure "$TMP/airgap.time" env GOMEMLIMIT="$MEMLIMIT" "$DT" bundle -base "$1" -target "$2" -dir "$dir" >"$out" ||
		die "deltatool bundle failed"
	rm -rf "$dir"
	sed 's/^bundle_/airgap /' "$out"
	echo "airgap peakrss_kib $(field "$TMP/airgap.time" peakrss_kib)"
	local full since whole saved
	full=$(field "$out" bundle_artifact_bytes) since=$(field "$out" bundle_since_bytes) whole=$(field "$out" bundle_nodeltas_bytes)
	saved=$(field "$out" bundle_saved_percent)
	local share
	share=$(pct "$since" "$full")
	row "Air-gap bundle, one new release of the image ($(mib "$full") MiB) whose base the mirror holds: bundle ÷ full artifact" \
		"$share% ($(human "$since"); deltas saved $saved%)" "--no-deltas: $(pct "$whole" "$full")% ($(human "$whole"))" \
		"$(ratio "$since" "$whole")" "≤ 5%" "$(judge "$share" '<=' 5)" \
		"bench/delta.sh: deltatool bundle (App.ExportBundle --since, then a mirror imports it)"
}

for p in $PAIRS; do
	case $p in
	mirror)
		# Two builds of cmd/mirror from a copy of the tree, one string changed.
		src=$TMP/src
		mkdir -p "$src"
		(cd "$ROOT" && git archive HEAD) | tar -x -C "$src"
		log "mirror: building two versions"
		(cd "$src" && go build -trimpath -o "$TMP/mirror.old" ./cmd/mirror) >&2
		grep -q 'name the first broken link' "$src/cmd/mirror/audit.go" || die "mirror: the string to change is gone"
		sed -i 's/name the first broken link/name the first broken one/' "$src/cmd/mirror/audit.go"
		(cd "$src" && go build -trimpath -o "$TMP/mirror.new" ./cmd/mirror) >&2
		rm -rf "$src"
		pair mirror "$TMP/mirror.old" "$TMP/mirror.new" "$ZLEVEL"
		rm -f "$TMP/mirror.old" "$TMP/mirror.new"
		;;
	versitygw)
		log "versitygw: installing $VGW_OLD and $VGW_NEW from the module proxy"
		for v in "$VGW_OLD" "$VGW_NEW"; do
			GOBIN=$TMP/vgw-$v go install "github.com/versity/versitygw/cmd/versitygw@$v" >&2
		done
		pair versitygw "$TMP/vgw-$VGW_OLD/versitygw" "$TMP/vgw-$VGW_NEW/versitygw" "$ZLEVEL"
		rm -rf "$TMP/vgw-$VGW_OLD" "$TMP/vgw-$VGW_NEW"
		;;
	image)
		log "image: writing a ${IMAGE_MIB} MiB pair"
		"$DT" image -mib "$IMAGE_MIB" -base "$TMP/image.old" -target "$TMP/image.new" | sed 's/^/delta /'
		pair image "$TMP/image.old" "$TMP/image.new" "$IMAGE_ZLEVEL"
		[ "${BENCH_DELTA_AIRGAP:-1}" = 0 ] || airgap "$TMP/image.old" "$TMP/image.new"
		rm -f "$TMP/image.old" "$TMP/image.new"
		;;
	*) die "unknown pair $p" ;;
	esac
done
