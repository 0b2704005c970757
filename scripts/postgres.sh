#!/usr/bin/env bash
# postgres.sh: make sure a PostgreSQL server runs on loopback for the
# postgres store's tests, and print its URL (alone on stdout; progress goes
# to stderr). Idempotent: when the server already answers it only prints.
# On a fresh Debian machine, as root, it installs Debian's postgresql
# package, starts the cluster and sets the postgres role's password.
#
#   export OUTPOST_TEST_POSTGRES_URL="$(scripts/postgres.sh)"
#
# PGPASS_OUTPOST overrides the password (default "postgres").
set -euo pipefail

password="${PGPASS_OUTPOST:-postgres}"
log() { echo "postgres.sh: $*" >&2; }
die() { log "$*"; exit 1; }

as_postgres() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- "$@"
	else
		sudo -n -u postgres "$@"
	fi
}

# The client (psql, pg_lsclusters) can be there without the server.
if ! command -v pg_lsclusters >/dev/null 2>&1 || ! compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null; then
	[ "$(id -u)" -eq 0 ] || die "PostgreSQL is not installed; run as root to install it (apt-get install postgresql)"
	log "installing postgresql (apt-get)"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >&2
	apt-get install -y -qq postgresql >&2
fi

# The first cluster, creating one if the package made none.
read -r ver name port status _ < <(pg_lsclusters -h | head -n1) || true
if [ -z "${ver:-}" ]; then
	ver="$(ls /usr/lib/postgresql/*/bin/postgres | sed -E 's#/usr/lib/postgresql/([^/]+)/.*#\1#' | sort -V | tail -n1)"
	[ -n "$ver" ] || die "no PostgreSQL version under /usr/lib/postgresql"
	log "creating cluster $ver main"
	pg_createcluster "$ver" main >&2
	read -r ver name port status _ < <(pg_lsclusters -h | head -n1)
fi

if [ "$status" != "online" ]; then
	log "starting cluster $ver/$name on port $port"
	pg_ctlcluster "$ver" "$name" start >&2 || die "pg_ctlcluster $ver $name start failed"
fi

for _ in $(seq 1 100); do
	pg_isready -q -h 127.0.0.1 -p "$port" && break
	sleep 0.1
done
pg_isready -q -h 127.0.0.1 -p "$port" || die "server on 127.0.0.1:$port does not answer"

url="postgres://postgres:${password}@127.0.0.1:${port}/postgres?sslmode=disable"
if ! PGPASSWORD="$password" psql -q -w -h 127.0.0.1 -p "$port" -U postgres -d postgres -c 'SELECT 1' >/dev/null 2>&1; then
	log "setting the postgres role's password"
	as_postgres psql -q -p "$port" -c "ALTER USER postgres PASSWORD '${password//\'/\'\'}'" >&2 ||
		die "cannot set the postgres password (run as root)"
	PGPASSWORD="$password" psql -q -w -h 127.0.0.1 -p "$port" -U postgres -d postgres -c 'SELECT 1' >/dev/null ||
		die "cannot log in as postgres on 127.0.0.1:$port"
fi
echo "$url"
