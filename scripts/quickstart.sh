#!/usr/bin/env bash
# `make run`: a control plane and a mirror on the embedded defaults (bbolt +
# local disk, no S3), a demo product with two releases and a rollout, the
# tenant's signed TUF repository, a mirror synced with trust: tuf, and the
# commands to try. Ctrl-C stops
# both daemons cleanly. State lives in ./data/demo and is rebuilt each run.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${QUICKSTART_BIN:-./bin}         # where the binaries are (TestQuickstart_MakeRun sets it)
CP_ADDR=${CP_ADDR:-127.0.0.1:8440}
MIRROR_ADDR=${MIRROR_ADDR:-127.0.0.1:8441}
DEMO=${QUICKSTART_DIR:-./data/demo} # rebuilt each run
CP_DATA=$DEMO/controlplane
MIRROR_DATA=$DEMO/mirror

# A port taken by another process would make the CLI talk to that process
# (and fail with a confusing answer): check first and say what to do.
port_taken() { # host:port
	(exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null
}
for addr in "$CP_ADDR" "$MIRROR_ADDR"; do
	if port_taken "$addr"; then
		echo "make run: $addr is already in use by another process." >&2
		echo "Stop it, or choose other addresses, e.g.:" >&2
		echo "  CP_ADDR=127.0.0.1:9440 MIRROR_ADDR=127.0.0.1:9441 make run" >&2
		exit 1
	fi
done

[ -x $BIN/controlplane ] && [ -x $BIN/mirror ] && [ -x $BIN/updatectl ] || go build -o $BIN/ ./cmd/...

rm -rf "$DEMO"
mkdir -p "$DEMO"

pids=()
cleanup() {
	trap - INT TERM EXIT
	echo
	echo "stopping..."
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	echo "stopped. State is in $DEMO."
}
trap 'cleanup; exit 0' INT TERM
trap cleanup EXIT

wait_ready() { # url name
	for _ in $(seq 1 100); do
		curl -fsS "$1/readyz" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "$2 did not become ready; see $DEMO/$2.log" >&2
	exit 1
}

echo "== control plane: init and serve on $CP_ADDR"
ADMIN=$($BIN/controlplane init --data-dir "$CP_DATA")
$BIN/controlplane serve --data-dir "$CP_DATA" --listen "$CP_ADDR" >"$DEMO/controlplane.log" 2>&1 &
pids+=($!)
wait_ready "http://$CP_ADDR" controlplane
export OUTPOST_SERVER="http://$CP_ADDR" OUTPOST_TOKEN="$ADMIN"

echo "== publishing a demo product with two releases and a 50% rollout"
TENANT=$($BIN/controlplane tenant create "Demo Customer")
PRODUCT=$($BIN/controlplane product create "Demo App" --distribution open)
head -c 1048576 /dev/urandom >"$DEMO/demo-app-1.0.0.tar.gz"
head -c 2097152 /dev/urandom >"$DEMO/demo-app-1.1.0.tar.gz"
$BIN/controlplane release create --product "$PRODUCT" --channel stable --version 1.0.0 --file "$DEMO/demo-app-1.0.0.tar.gz" --platform linux --arch x64 >/dev/null
REL2=$($BIN/controlplane release create --product "$PRODUCT" --channel stable --version 1.1.0 --file "$DEMO/demo-app-1.1.0.tar.gz" --platform linux --arch x64)
$BIN/controlplane rollout create --product "$PRODUCT" --release "$REL2" --channel stable --percentage 50 >/dev/null
TENANT_TOKEN=$($BIN/controlplane token create --role tenant --tenant "$TENANT")

echo "== signing the tenant's metadata (its TUF repository; the first build makes its root)"
$BIN/controlplane snapshot build --tenant "$TENANT" >/dev/null

echo "== mirror: init with the tenant's root (its own key), register with the control plane"
# The tenant's root.json is what the site trusts: handed over out of band.
ROOT="$DEMO/root.json"
$BIN/controlplane root show "$TENANT" >"$ROOT"
MIRROR_PUB=$($BIN/mirror init --data-dir "$MIRROR_DATA" --listen "$MIRROR_ADDR" --tenant-id "$TENANT" --root-file "$ROOT" --output json | sed -nE 's/.*"public_key": *"([^"]+)".*/\1/p')
CRED=$($BIN/controlplane mirror create --tenant "$TENANT" --name demo-site --channels stable --public-key "$MIRROR_PUB" | sed -nE 's/^credential: +//p')
$BIN/mirror init --data-dir "$MIRROR_DATA" --listen "$MIRROR_ADDR" --tenant-id "$TENANT" --root-file "$ROOT" \
	--vendor-url "http://$CP_ADDR" --credential "$CRED" --force >/dev/null

# The status page's bundle upload needs a mirror admin token; the config
# keeps only its sha256.
MIRROR_ADMIN_OUT=$($BIN/mirror admin-token)
MIRROR_ADMIN=$(printf '%s\n' "$MIRROR_ADMIN_OUT" | sed -nE 's/^token: (.+)$/\1/p')
MIRROR_ADMIN_HASH=$(printf '%s\n' "$MIRROR_ADMIN_OUT" | sed -nE 's/^admin_token_hashes entry: (.+)$/\1/p')
printf 'admin_token_hashes: ["%s"]\n' "$MIRROR_ADMIN_HASH" >>"$MIRROR_DATA/mirror.yaml"

echo "== signing the next version (it lists the mirror's key, for offline leases)"
$BIN/controlplane snapshot build --tenant "$TENANT"

echo "== mirror: sync and serve on $MIRROR_ADDR"
$BIN/mirror serve --config "$MIRROR_DATA/mirror.yaml" >"$DEMO/mirror.log" 2>&1 &
pids+=($!)
wait_ready "http://$MIRROR_ADDR" mirror

cat <<MSG

Outpost is running.
  control plane  http://$CP_ADDR   (log: $DEMO/controlplane.log)
  mirror         http://$MIRROR_ADDR   (log: $DEMO/mirror.log)

In a browser:
  vendor console  http://$CP_ADDR/console/
                  sign in with the admin token: $ADMIN
                  (or as the tenant, who sees only its own pages: $TENANT_TOKEN)
  status page     http://$MIRROR_ADDR/
                  mirror admin token for the bundle upload: $MIRROR_ADMIN
                  (a bundle to try: $BIN/controlplane bundle export --tenant $TENANT --out $DEMO/demo.tar,
                   with the two admin variables below exported)

Try it (another terminal):

  # Is there an update for a client on 1.0.0? (client ids split 50/50 on 1.1.0)
  $BIN/updatectl check --server http://$MIRROR_ADDR --product $PRODUCT --channel stable \\
      --platform linux --arch x64 --version 1.0.0 --client-id laptop-42

  # Download it, verifying the tenant's TUF metadata (from its root), that the
  # answer is the product, channel, platform and a newer version asked for,
  # and the artifact's size and sha256:
  $BIN/updatectl download --server http://$MIRROR_ADDR --tenant $TENANT --tuf-root $ROOT \\
      --product $PRODUCT --channel stable --platform linux --arch x64 --version 0.9.0 --client-id laptop-42 --out $DEMO/

  # The same question to the control plane (online clients use a tenant token):
  curl -s -H 'Authorization: Bearer $TENANT_TOKEN' \\
      'http://$CP_ADDR/v1/updates/check?product=$PRODUCT&channel=stable&platform=linux&arch=x64&version=1.0.0&client_id=laptop-42'

  # The mirror's state, and the signed TUF timestamp it serves (any TUF
  # client can read http://$MIRROR_ADDR/tuf/metadata and /tuf/targets):
  curl -s http://$MIRROR_ADDR/v1/status
  curl -s http://$MIRROR_ADDR/tuf/metadata/timestamp.json; echo

  # Admin commands (these variables are set in this shell only; copy them):
  export OUTPOST_SERVER=http://$CP_ADDR OUTPOST_TOKEN=$ADMIN
  $BIN/controlplane release list --product $PRODUCT

Press Ctrl-C to stop both daemons.
MSG
wait "${pids[0]}"
