#!/usr/bin/env python3
"""Instructions the release server executes per request of the write paths,
counted by callgrind on SQLite, requests sent one at a time with counting on
only while they run. A count is the server's user space (our code, SQLite,
libc), not the kernel's: repeatable to a fraction of a percent for one
binary, where the load benchmark's rates move by a quarter between runs on
a drifting machine. Compare builds with it; it is not a rate.

    cargo build --release -p portcullis -p portcullis-bench --bins
    python3 bench/instructions.py                      # verify, refresh, client login; 300 each
    python3 bench/instructions.py --path refresh --requests 1000
    python3 bench/instructions.py --smoke              # the debug build, 5 each: CI's
"""

import argparse
import re
import tempfile
from pathlib import Path

from run import ROOT, Server, create_clients, create_database, post, run, server_env

PATHS = ["verify", "refresh", "client login"]
WARM_UP = 20  # requests before counting starts: caches, prepared statements, pool


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--path", choices=PATHS, action="append", help="only this path (repeatable)")
    parser.add_argument("--requests", type=int, help="counted per path (default 300, smoke 5)")
    parser.add_argument("--smoke", action="store_true", help="the debug build, 5 requests a path")
    args = parser.parse_args()
    requests = args.requests or (5 if args.smoke else 300)
    bin_dir = ROOT / "target" / ("debug" if args.smoke else "release")
    print(f"instructions per request, {bin_dir / 'portcullis'} on SQLite, {requests} requests one at a time")
    for path in args.path or PATHS:
        with tempfile.TemporaryDirectory(prefix="portcullis-instructions-") as tmp:
            count = instructions(bin_dir, Path(tmp), path, requests)
        print(f"{path}: {count / requests:,.0f}")


def instructions(bin_dir, tmp, path, requests):
    env = {
        **server_env(create_database("sqlite", tmp, over_tcp=False)),
        "PORTCULLIS_MAIL_TRANSPORT": "file",
        "PORTCULLIS_MAIL_DIR": str(tmp / "mail"),
        "PORTCULLIS_LOG": "warn",
    }
    server = Server(bin_dir, tmp, env)
    needed = WARM_UP + requests
    run([bin_dir / "bench-seed", "10", str(needed), str(needed), str(tmp)], env=server.env)
    clients = create_clients(bin_dir, server.env, 4)
    server.stop()

    out = tmp / "callgrind.out"
    server = Server(bin_dir, tmp, env, prefix=["valgrind", "--tool=callgrind", "--instr-atstart=no",
                                              f"--callgrind-out-file={out}"], patience=300)
    keys = [line.split() for line in (tmp / "keys.txt").read_text().splitlines()]
    tokens = (tmp / "refresh.txt").read_text().split()

    def send(n):
        if path == "verify":
            post(server.url + "/v1/auth/verify", {"email_key": keys[n][0], "verification_code": keys[n][1]})
        elif path == "refresh":
            post(server.url + "/v1/auth/refresh", {"refresh_token": tokens[n]})
        else:
            client = clients[n % len(clients)]
            post(server.url + "/v1/clients/auth/login",
                 {"username": client["api_key"], "password": client["api_secret"]})

    for n in range(WARM_UP):
        send(n)
    callgrind_control = ["callgrind_control", "--instr"]
    run([*callgrind_control, "on", server.process.pid])
    for n in range(WARM_UP, needed):
        send(n)
    run([*callgrind_control, "off", server.process.pid])
    server.stop()
    return int(re.search(r"^totals: (\d+)", out.read_text(), re.M)[1])


if __name__ == "__main__":
    main()
