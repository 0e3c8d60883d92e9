"""sigd under load with and without a shadow policy, side by side in one run.

Run it with `make bench-shadow`, inside a private PID namespace, after
`make test` (which builds the strict example and leaves the looping and
trapping shadows of tests/rollout.rs in target/<triple>/tmp/rollout-shadow/).

For each shadow (none; the strict example, which disagrees with every
request here; one that loops until its deadline; one that traps), alternating
round by round, wrk at 16 connections signals processes that ignore the
signal; prints requests/s and p50/p99, and p99 as a share of the run without
a shadow (the target: at most 1.1x).
"""

import glob
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (the benchmark's servers, targets and wrk)

TARGET_DIR = os.path.join(run.ROOT, "target")


def one(pattern):
    found = sorted(glob.glob(os.path.join(TARGET_DIR, pattern)), key=os.path.getmtime)
    if not found:
        sys.exit(f"no {pattern} under target/: run `make test` first")
    return found[-1]


def main():
    shadows = [
        ("none", []),
        ("strict", ["--shadow-policy", one("*/release/build/sigd-test-guests-*/out/sigd_policy_strict.component.wasm")]),
        ("loop", ["--shadow-policy", one("*/tmp/rollout-shadow/loop.wasm")]),
        ("trap", ["--shadow-policy", one("*/tmp/rollout-shadow/trap.wasm")]),
    ]
    pids = [target.pid for target in run.stubborn_targets()]
    connections = 16
    results = {name: [] for name, _ in shadows}
    for round_ in range(run.ROUNDS):
        order = shadows if round_ % 2 == 0 else list(reversed(shadows))
        for name, args in order:
            server = run.Server(f"shadow-{name}", run.SIGD, ["serve", "--no-cache"] + args)
            server.wait_first_200(pids[0])
            results[name].append(run.wrk(server, pids, connections))
            server.stop()
            print(f"  shadow {name:6} round {round_ + 1}: {results[name][-1]}", flush=True)
    median = {
        name: {key: statistics.median(r[key] for r in runs) for key in ("rps", "p50", "p99")}
        for name, runs in results.items()
    }
    plain = median["none"]
    print(f"\nc={connections}, {run.ROUNDS} rounds of {run.SECONDS} s, medians:")
    print("| shadow | requests/s | p50 ms | p99 ms | p99 vs none |")
    print("|---|---|---|---|---|")
    for name, m in median.items():
        print(f"| {name} | {m['rps']:.0f} | {m['p50']:.2f} | {m['p99']:.2f} | {m['p99'] / plain['p99']:.2f}x |")
    failed = sum(r["failed"] for runs in results.values() for r in runs)
    if failed:
        sys.exit(f"{failed} answers were not 2xx")


if __name__ == "__main__":
    main()
