#!/usr/bin/env bash
# The load benchmark (SPEC §8): builds the server and the yardsticks, installs
# wrk if missing, makes sure PostgreSQL is up, then runs bench/run.py.
#   bench/run.sh [--smoke] [--seconds N] [--store sqlite|postgres] [--path TEXT] [--postgres-tcp]
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v wrk >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start
    for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
fi
profile=--release
for arg in "$@"; do [ "$arg" = --smoke ] && profile=; done
cargo build $profile --quiet -p portcullis -p portcullis-bench --bins
exec python3 bench/run.py "$@"
