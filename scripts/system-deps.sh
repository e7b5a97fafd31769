#!/usr/bin/env bash
# Ensures the system programs the test suite runs for real are installed (Debian 12):
#
# - PostgreSQL server binaries (initdb, pg_ctl, postgres) in /usr/lib/postgresql/*/bin: the store tests
#   start a throwaway server of their own (tests/support/postgres.py), never the system cluster.
# - Chromium (/usr/bin/chromium) plus a basic font for the headless browser tests.
# - Redis (redis-server).
# - with --bench (make bench): also wrk, the HTTP load generator of benchmarks/gateway_overhead.py.
#
# Idempotent and quiet: when everything is present it exits at once without calling apt-get.
# Anything missing is installed with apt-get (needs root); it prints what it installs.
set -euo pipefail
shopt -s nullglob

export DEBIAN_FRONTEND=noninteractive

have_postgres() {
  local dir
  for dir in /usr/lib/postgresql/*/bin; do
    if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ] && [ -x "$dir/postgres" ]; then
      return 0
    fi
  done
  return 1
}

have_chromium() {
  [ -x /usr/bin/chromium ]
}

have_redis() {
  command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ]
}

BENCH=0
have_wrk() {
  [ "$BENCH" -eq 0 ] || command -v wrk >/dev/null 2>&1
}

missing_packages() {
  local packages=()
  have_postgres || packages+=(postgresql)
  have_chromium || packages+=(chromium fonts-liberation)
  have_redis || packages+=(redis-server)
  have_wrk || packages+=(wrk)
  echo "${packages[@]}"
}

install_packages() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "system-deps: missing system packages: $*" >&2
    echo "system-deps: run as root, or install them yourself:" >&2
    echo "    sudo apt-get update && sudo apt-get install -y --no-install-recommends $*" >&2
    exit 1
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "system-deps: apt-get not found; install these packages by hand: $*" >&2
    exit 1
  fi
  echo "system-deps: installing $*"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends -o Dpkg::Use-Pty=0 "$@" >/dev/null
}

verify() {
  local ok=1
  have_postgres || { echo "system-deps: PostgreSQL binaries still missing in /usr/lib/postgresql/*/bin" >&2; ok=0; }
  have_chromium || { echo "system-deps: /usr/bin/chromium still missing" >&2; ok=0; }
  have_redis || { echo "system-deps: redis-server still missing" >&2; ok=0; }
  have_wrk || { echo "system-deps: wrk still missing" >&2; ok=0; }
  [ "$ok" -eq 1 ]
}

main() {
  [ "${1:-}" = "--bench" ] && BENCH=1
  local packages
  read -r -a packages <<<"$(missing_packages)"
  if [ "${#packages[@]}" -eq 0 ]; then
    exit 0
  fi
  install_packages "${packages[@]}"
  verify
  echo "system-deps: installed ${packages[*]}"
}

main "$@"
