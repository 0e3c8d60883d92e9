"""A/B comparison of servers in one run, taking turns: what a change is
measured with before it is kept (these machines are too noisy for runs on
different minutes to compare).

    unshare --pid --fork --mount-proc bench/.venv/bin/python bench/ab.py \
        old:/tmp/sigd-old:"serve --no-cache":info \
        new:target/release/sigd:"serve --no-cache":info

Each argument is NAME:BINARY:ARGS:LOG_LEVEL[:null] (`null`: stderr to
/dev/null rather than a file). Each round runs every server once, `wrk -cC`
for S seconds against the stubborn targets of `run.py`, the order rotated
round by round; then the medians: requests/s (and as a share of the first
server's), server CPU per request, p99. Environment: C (connections, 16),
S (seconds, 4), R (rounds, 3), AS (a uid: the targets and wrk run as that
user, a caller without a token, whom sigd holds to kill(2)'s rule for its
uid; unset, both run as root).
"""

import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402

run.SECONDS = int(os.environ.get("S", "4"))
CONNECTIONS = int(os.environ.get("C", "16"))
ROUNDS = int(os.environ.get("R", "3"))
if os.environ.get("AS"):
    uid = int(os.environ["AS"])
    run.RUN_AS = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]


class Server(run.Server):
    """A server of `run.py`, its stderr to a file of the run's or to /dev/null."""

    def __init__(self, name, binary, args, level, null):
        self.name = name
        self.port = run.free_port()
        command = [binary] + args + ["--listen", f"127.0.0.1:{self.port}"]
        env = dict(os.environ, RUST_LOG=level)
        os.makedirs(run.LOGS, exist_ok=True)
        self.log = "/dev/null" if null else os.path.join(run.LOGS, f"ab-{name}-{self.port}.log")
        self.keep_log = False
        self.started = time.perf_counter()
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(command, env=env, stderr=log)


def main():
    configs = []
    for spec in sys.argv[1:]:
        parts = spec.split(":")
        if len(parts) < 4:
            sys.exit(f"ab.py: {spec!r} is not NAME:BINARY:ARGS:LOG_LEVEL[:null]")
        name, binary, args, level = parts[:4]
        configs.append((name, binary, args.split(), level, parts[4:] == ["null"]))
    if not configs:
        sys.exit(__doc__)
    targets = run.stubborn_targets()
    pids = [target.pid for target in targets]
    results = {config[0]: [] for config in configs}
    try:
        for round_ in range(ROUNDS):
            shift = round_ % len(configs)
            for name, binary, args, level, null in configs[shift:] + configs[:shift]:
                server = Server(name, binary, args, level, null)
                server.wait_first_200(pids[0])
                figures = run.wrk(server, pids, CONNECTIONS)
                server.stop()
                results[name].append(figures)
                print(f"{name:12} {figures['rps']:8.0f} rps  p99 {figures['p99']:.2f} ms  "
                      f"cpu {figures['cpu_us']:.1f} us", flush=True)
    finally:
        for target in targets:
            target.kill()
    first = statistics.median(f["rps"] for f in results[configs[0][0]])
    for name, runs in results.items():
        rps = statistics.median(f["rps"] for f in runs)
        cpu = statistics.median(f["cpu_us"] for f in runs)
        p99 = statistics.median(f["p99"] for f in runs)
        print(f"== {name:12} {rps:8.0f} rps {rps / first:5.0%}  cpu {cpu:.1f} us  p99 {p99:.2f} ms")


if __name__ == "__main__":
    main()
