#!/usr/bin/env bash
# ci-deps.sh: install the system packages and npm modules the tests use,
# when missing (root installs with apt-get; others are told what to run).
# Idempotent and quiet when everything is there.
set -euo pipefail
cd "$(dirname "$0")/.."
log() { echo "ci-deps.sh: $*" >&2; }

need=()
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
[ -x /usr/bin/chromium ] || need+=(chromium)
# The mirror's client interop test runs curl and aria2c.
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v aria2c >/dev/null 2>&1 || need+=(aria2)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		log "missing: ${need[*]}; install them (apt-get install ${need[*]}); the tests that need them fail under CI=true and are skipped otherwise"
		[ "${CI:-}" = "true" ] && exit 1
		exit 0
	fi
	log "installing ${need[*]} (apt-get)"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# The TUF interop test runs the unmodified tuf-js client.
if [ ! -d interop/tufjs/node_modules/tuf-js ] && command -v npm >/dev/null 2>&1; then
	log "installing tuf-js (npm ci)"
	(cd interop/tufjs && npm ci --no-audit --no-fund --loglevel=error)
fi
