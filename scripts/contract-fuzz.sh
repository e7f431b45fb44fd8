#!/usr/bin/env bash
# Contract fuzzing: schemathesis sends generated requests, valid and invalid,
# to every operation of /openapi.json and fails on any 5xx, any status code the
# document does not state, and any body that does not match its documented schema.
#
#   scripts/contract-fuzz.sh [MAX_EXAMPLES]     (default 100 per operation)
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
MAX_EXAMPLES=${1:-100}

installed=$(python3 -c 'import importlib.metadata as m; print(m.version("schemathesis"))' 2>/dev/null || true)
if [ "$installed" != "$SCHEMATHESIS_VERSION" ]; then
    python3 -m pip install --quiet "schemathesis==$SCHEMATHESIS_VERSION"
fi
cargo build --quiet -p portcullis --bin portcullis
bin=$PWD/target/debug/portcullis

work=$(mktemp -d)
server=
cleanup() {
    if [ -n "$server" ]; then
        kill "$server" 2>/dev/null || true
        wait "$server" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

export PORTCULLIS_DATABASE_URL="sqlite://$work/fuzz.db" \
    PORTCULLIS_MAIL_TRANSPORT=file \
    PORTCULLIS_MAIL_DIR="$work/mail" \
    PORTCULLIS_LOG=warn,portcullis::server=info \
    NO_COLOR=1
# The bearer endpoints are fuzzed with a live token too: an account made with
# the CLI, logged in with no emailed code. (Its key file lands in $work.)
email=fuzz@example.com password='fuzzing the contract'
(cd "$work" && "$bin" user create --email "$email" --password "$password" >/dev/null)
# ...and with an API key of the same account, whose scopes reach every keyed operation.
api_key=$(cd "$work" && "$bin" --json apikey create --user "$email" --name fuzz \
    --scope sessions --scope dev_login |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["key"])')
# Port 0: the server picks a free port and logs it.
(
    cd "$work"
    PORTCULLIS_LISTEN=127.0.0.1:0 PORTCULLIS_LOGIN_VERIFICATION=never PORTCULLIS_DEV_LOGIN=true \
        exec "$bin" serve
) >"$work/server.log" 2>&1 &
server=$!

address=
for _ in $(seq 1 100); do
    address=$(sed -n 's/.*portcullis listening address=\([0-9.:]*\).*/\1/p' "$work/server.log")
    [ -n "$address" ] && curl -fsS "http://$address/readyz" >/dev/null 2>&1 && break
    kill -0 "$server" 2>/dev/null || break
    sleep 0.1
done
if ! curl -fsS "http://$address/readyz" >/dev/null 2>&1; then
    cat "$work/server.log"
    echo "contract-fuzz: the server did not start" >&2
    exit 1
fi
token=$(curl -fsS "http://$address/v1/auth/login" -H 'Content-Type: application/json' \
    -d "{\"email\": \"$email\", \"password\": \"$password\"}" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')

# Appends schemathesis's report to $work/schemathesis.log; extra arguments go to
# it. Run in $work, where it keeps its cache of past failures.
fuzz() {
    (cd "$work" && python3 -m schemathesis.cli run "http://$address/openapi.json" \
        --checks not_a_server_error,status_code_conformance,response_schema_conformance \
        --max-examples "$MAX_EXAMPLES" \
        --workers 1 \
        --request-timeout 10 \
        --no-color \
        "$@" >>"$work/schemathesis.log" 2>&1)
}

started=$SECONDS
# Anonymous, then with the token (the logouts would end its session mid-run),
# then with the API key. The full report only on failure: on success the
# closing summary of the CI run stays cargo test's.
if ! fuzz || ! fuzz --header "Authorization: Bearer $token" --exclude-path-regex '/logout' ||
    ! fuzz --header "X-API-Key: $api_key"; then
    cat "$work/schemathesis.log"
    echo "--- server log ---"
    cat "$work/server.log"
    echo "contract-fuzz: FAILED (schemathesis $SCHEMATHESIS_VERSION)" >&2
    exit 1
fi
echo "contract-fuzz: no failures, $MAX_EXAMPLES examples per operation, $((SECONDS - started)) s (schemathesis $SCHEMATHESIS_VERSION)"
