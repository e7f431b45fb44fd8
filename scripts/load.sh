#!/usr/bin/env bash
# A first load check of the running server on loopback: start-to-ready time,
# resident memory idle and under load, and throughput of refresh and /me.
# Needs wrk (apt-get install wrk). Bounded: a few seconds per endpoint.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=$PWD/target/release/portcullis
work=$(mktemp -d)
port=${PORT:-18099}
cd "$work"
export PORTCULLIS_LOG=warn PORTCULLIS_LISTEN=127.0.0.1:$port
# Rotation off lets one refresh token be replayed; policy never gives tokens at step 1.
export PORTCULLIS_REFRESH_ROTATION=false PORTCULLIS_LOGIN_VERIFICATION=never
"$bin" user create --email load@example.com --password "correct horse battery" >/dev/null

start=$(date +%s%N)
"$bin" serve >server.log 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$work"' EXIT
until curl -sf "http://127.0.0.1:$port/readyz" >/dev/null; do sleep 0.002; done
echo "start to ready: $(( ($(date +%s%N) - start) / 1000000 )) ms"
echo "idle RSS: $(awk '/VmRSS/ {print $2, $3}' /proc/$pid/status)"

tokens=$(curl -s "http://127.0.0.1:$port/v1/auth/login" -H 'Content-Type: application/json' \
    -d '{"email_or_username":"load@example.com","password":"correct horse battery"}')
field() { python3 -c "import sys, json; print(json.load(sys.stdin)['$1'])" <<<"$tokens"; }
cat >refresh.lua <<LUA
wrk.method = "POST"
wrk.body = '{"refresh_token":"$(field refresh_token)"}'
wrk.headers["Content-Type"] = "application/json"
LUA
echo "--- POST /v1/auth/refresh (SQLite)"
wrk -t1 -c32 -d8s -s refresh.lua "http://127.0.0.1:$port/v1/auth/refresh" | grep -E 'Latency|Requests/sec|Non-2xx'
echo "--- GET /v1/auth/me (JWT + session lookup)"
wrk -t1 -c32 -d8s -H "Authorization: Bearer $(field access_token)" "http://127.0.0.1:$port/v1/auth/me" | grep -E 'Latency|Requests/sec|Non-2xx'
echo "RSS after load: $(awk '/VmRSS/ {print $2, $3}' /proc/$pid/status)"
