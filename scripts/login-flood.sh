#!/usr/bin/env bash
# A login flood whose clients hang up, against the release build on loopback
# (SPEC §6 and §8): each client sends a login, waits 15 ms and closes. Prints
# resident memory idle, at its peak (VmHWM) and a while after, twice, and the most
# threads and the most runnable threads of each name (sampled every 5 ms): hashes
# run on "argon2-N" threads, or before bounded hashing on tokio's blocking
# threads, named like its two async workers ("tokio-rt-worker").
# Usage: bash scripts/login-flood.sh [LOGINS] [CLIENTS AT ONCE]   (defaults 4000, 200)
# BIN=path measures another build instead of this tree's release build.
set -euo pipefail
cd "$(dirname "$0")/.."
logins=${1:-4000}
clients=${2:-200}
if [ -z "${BIN:-}" ]; then
    cargo build --release --quiet
    BIN=$PWD/target/release/portcullis
fi
bin=$BIN
work=$(mktemp -d)
port=${PORT:-18098}
cd "$work"
export PORTCULLIS_LOG=error PORTCULLIS_LISTEN=127.0.0.1:$port
# The flood is of one login name: lift its budgets, or they answer 429 before any hashing.
export PORTCULLIS_LOGIN_ACCOUNT_BUDGET=1000000/1m PORTCULLIS_LOGIN_IP_BUDGET=1000000/1m
"$bin" user create --email flood@example.com --password "correct horse battery" >/dev/null
"$bin" serve >server.log 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$work"' EXIT
until curl -sf "http://127.0.0.1:$port/readyz" >/dev/null; do sleep 0.01; done
sleep 1
echo "hash concurrency: ${PORTCULLIS_HASH_CONCURRENCY:-$(nproc)}, queue: ${PORTCULLIS_HASH_QUEUE:-64}"
echo "idle RSS: $(awk '/VmRSS/ {print $2, $3}' /proc/$pid/status)"
for round in 1 2; do
echo "--- flood $round"
python3 - "$pid" "$port" "$logins" "$clients" <<'PY'
import asyncio, glob, sys, time

pid, port, logins, clients = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
body = b'{"email_or_username":"flood@example.com","password":"not the password"}'
request = (b"POST /v1/auth/login HTTP/1.1\r\nHost: flood\r\nContent-Type: application/json\r\n"
           b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
peak = {"threads": 0}
runnable = {}

def sample():
    threads = []
    for stat in glob.glob(f"/proc/{pid}/task/*/stat"):
        try:
            with open(stat) as f:
                name, rest = f.read().split(" (", 1)[1].rsplit(")", 1)
                threads.append((name, rest.split()[0]))
        except OSError:
            pass
    peak["threads"] = max(peak["threads"], len(threads))
    for name in {name for name, _ in threads}:
        count = sum(1 for n, state in threads if n == name and state == "R")
        runnable[name] = max(runnable.get(name, 0), count)

async def sampler(done):
    while not done.is_set():
        sample()
        await asyncio.sleep(0.005)

async def client(queue):
    while True:
        try:
            queue.get_nowait()
        except asyncio.QueueEmpty:
            return
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request)
            await writer.drain()
            await asyncio.sleep(0.015)
            writer.close()
        except OSError:
            pass

async def main():
    queue = asyncio.Queue()
    for i in range(logins):
        queue.put_nowait(i)
    done = asyncio.Event()
    watch = asyncio.create_task(sampler(done))
    started = time.monotonic()
    await asyncio.gather(*(client(queue) for _ in range(clients)))
    print(f"{logins} logins sent in {time.monotonic() - started:.1f} s")
    # The server may still be hashing what it accepted: keep sampling a while.
    await asyncio.sleep(5)
    done.set()
    await watch
    print(f"most threads: {peak['threads']}; most runnable at once, by thread name: {runnable}")

asyncio.run(main())
PY
echo "peak RSS so far (VmHWM): $(awk '/VmHWM/ {print $2, $3}' /proc/$pid/status)"
echo "RSS 5 s after the flood: $(awk '/VmRSS/ {print $2, $3}' /proc/$pid/status)"
sleep 10
echo "RSS 15 s after the flood: $(awk '/VmRSS/ {print $2, $3}' /proc/$pid/status)"
done
