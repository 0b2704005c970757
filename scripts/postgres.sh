#!/usr/bin/env bash
# postgres.sh: make sure a PostgreSQL server of Outpost's own runs on
# loopback for the postgres store's tests, and print its URL (alone on
# stdout; progress goes to stderr). Idempotent: when the server already
# answers it only prints.
#
# It never touches a system cluster: it creates its own cluster in
# OUTPOST_PG_DIR (default /tmp/outpost-pg-<uid>) listening on 127.0.0.1,
# port OUTPOST_PG_PORT (default 55432), with a password of its own kept in
# that directory. On a fresh Debian machine, as root, it installs Debian's
# postgresql package first (the package's own cluster is left alone).
#
#   export OUTPOST_TEST_POSTGRES_URL="$(scripts/postgres.sh)"
#   scripts/postgres.sh stop     # stop the cluster
set -euo pipefail

dir="${OUTPOST_PG_DIR:-/tmp/outpost-pg-$(id -u)}"
port="${OUTPOST_PG_PORT:-55432}"
log() { echo "postgres.sh: $*" >&2; }
die() { log "$*"; exit 1; }

if ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
	[ "$(id -u)" -eq 0 ] || die "PostgreSQL is not installed; install it (apt-get install postgresql) or run this as root"
	log "installing postgresql (apt-get)"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >&2
	apt-get install -y -qq postgresql >&2
fi
bindir="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)"

# PostgreSQL refuses to run as root: root runs it as the package's user.
as_owner() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

if [ "${1:-}" = "stop" ]; then
	[ -f "$dir/data/PG_VERSION" ] && as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >&2 || true
	exit 0
fi

if [ ! -f "$dir/data/PG_VERSION" ]; then
	log "creating a cluster in $dir (port $port)"
	rm -rf "$dir"
	mkdir -p "$dir"
	head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$dir/password"
	[ "$(id -u)" -eq 0 ] && chown -R postgres: "$dir"
	chmod 700 "$dir"
	as_owner "$bindir/initdb" -D "$dir/data" -U outpost --pwfile="$dir/password" \
		--auth-local=scram-sha-256 --auth-host=scram-sha-256 -E UTF8 --no-instructions >&2
	cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
max_connections = 200
fsync = on
CONF
fi
password="$(cat "$dir/password")"
url="postgres://outpost:${password}@127.0.0.1:${port}/postgres?sslmode=disable"

if ! "$bindir/pg_isready" -q -h 127.0.0.1 -p "$port"; then
	log "starting the cluster in $dir on 127.0.0.1:$port"
	as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >&2 ||
		die "pg_ctl start failed; see $dir/server.log (is port $port taken? set OUTPOST_PG_PORT)"
fi
PGPASSWORD="$password" "$bindir/psql" -q -w -h 127.0.0.1 -p "$port" -U outpost -d postgres -c 'SELECT 1' >/dev/null ||
	die "cannot log in on 127.0.0.1:$port as outpost (another server on that port? set OUTPOST_PG_PORT)"
echo "$url"
