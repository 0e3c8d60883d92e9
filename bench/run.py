"""sigd against its native baseline, measured side by side in one run.

Run it with `make bench` (which builds both binaries and installs wrk and
matplotlib), inside a private PID namespace so the signals can only reach
the benchmark's own target processes.

Measures, for `sigd serve` (the wasm policy) and `sigd-baseline` (the same
host code with the policy's logic linked natively):
  - throughput and p50/p99 latency under wrk at 1, 16 and 256 connections,
    alternating the two servers round by round, every request a real
    kill(2) of a live process that ignores the signal;
  - time from exec to the first 200, idle RSS, RSS with 1,000 keep-alive
    connections, binary size;
  - the policy call alone (benches/policy_cost.rs): native vs wasm.
Writes bench/latest.md (the tables) and bench/latency.png (the plot), and
prints the ratios against the targets.
"""

import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")
SIGD = os.path.join(ROOT, "target/release/sigd")
BASELINE = os.path.join(ROOT, "target/release/sigd-baseline")
LOGS = os.path.join(ROOT, "target/bench-logs")
CONNECTIONS = [1, 16, 256]
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "5"))
TARGETS = 8


def stubborn_targets():
    """Processes that ignore SIGUSR1: every request really signals one."""
    targets = [
        subprocess.Popen(["sh", "-c", "trap '' USR1; exec sleep 3600"]) for _ in range(TARGETS)
    ]
    for target in targets:
        while True:
            with open(f"/proc/{target.pid}/status") as status:
                text = status.read()
            ignored = int(re.search(r"SigIgn:\s*([0-9a-f]+)", text).group(1), 16)
            if text.startswith("Name:\tsleep") and ignored & (1 << 9):
                break
            time.sleep(0.005)
    return targets


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A running sigd or sigd-baseline on a loopback port."""

    def __init__(self, name, binary, args):
        self.name = name
        self.port = free_port()
        address = f"127.0.0.1:{self.port}"
        command = [binary] + args + ["--listen", address]
        env = dict(os.environ, RUST_LOG="warn")
        os.makedirs(LOGS, exist_ok=True)
        self.log = os.path.join(LOGS, f"{name}-{self.port}.log")
        self.started = time.perf_counter()
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(command, env=env, stderr=log)

    def url(self, path=""):
        return f"http://127.0.0.1:{self.port}{path}"

    def request(self, method, path, body=b""):
        """One request on a fresh connection: (status, body)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            head = (
                f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
                "Content-Type: application/json\r\nConnection: close\r\n\r\n"
            )
            s.sendall(head.encode() + body)
            reply = b""
            while chunk := s.recv(65536):
                reply += chunk
        status = int(reply.split(b" ", 2)[1])
        return status, reply.split(b"\r\n\r\n", 1)[1]

    def wait_first_200(self, pid):
        """Seconds from exec to the first 200 for a signal request."""
        body = b'{"signal": 10}'
        while True:
            try:
                status, _ = self.request("POST", f"/api/v1/processes/{pid}/signal", body)
                if status == 200:
                    return time.perf_counter() - self.started
            except (ConnectionRefusedError, ConnectionResetError):
                pass
            time.sleep(0.0002)

    def rss_kib(self):
        with open(f"/proc/{self.process.pid}/status") as status:
            return int(re.search(r"VmRSS:\s*(\d+)", status.read()).group(1))

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=15)


def servers():
    return [
        ("baseline", BASELINE, []),
        ("sigd", SIGD, ["serve", "--no-cache"]),
    ]


def wrk(server, pids, connections):
    """Throughput (req/s) and latency percentiles (ms) of one wrk run."""
    script = os.path.join(BENCH, "signal.lua")
    env = dict(os.environ, SIGD_BENCH_PIDS=",".join(map(str, pids)))
    output = subprocess.run(
        ["wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{SECONDS}s",
         "--latency", "-s", script, server.url()],
        env=env, capture_output=True, text=True, check=True,
    ).stdout
    failed = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", output)
    failed = int(failed.group(1)) if failed else 0
    if failed:
        with open(server.log) as log:
            why = [line.strip() for line in log if " WARN " in line or " ERROR " in line]
        print(f"  {server.name}: {failed} non-2xx answers; its log says:", *why[-5:], sep="\n    ")
    rps = float(re.search(r"Requests/sec:\s*([\d.]+)", output).group(1))
    percentiles = {}
    for pct, value, unit in re.findall(r"\s(50|75|90|99)%\s+([\d.]+)(us|ms|s)\b", output):
        scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
        percentiles[int(pct)] = float(value) * scale
    total = int(re.search(r"(\d+) requests in", output).group(1))
    return {"rps": rps, "p50": percentiles[50], "p99": percentiles[99], "failed": failed, "total": total}


def load(pids):
    """Each server at each connection count, alternating, ROUNDS times."""
    results = {name: {c: [] for c in CONNECTIONS} for name, _, _ in servers()}
    for connections in CONNECTIONS:
        for round_ in range(ROUNDS):
            order = servers() if round_ % 2 == 0 else list(reversed(servers()))
            for name, binary, args in order:
                server = Server(name, binary, args)
                server.wait_first_200(pids[0])
                results[name][connections].append(wrk(server, pids, connections))
                server.stop()
                print(f"  {name:8} c={connections:<3} round {round_ + 1}: "
                      f"{results[name][connections][-1]}", flush=True)
    summary = {}
    for name in results:
        summary[name] = {}
        for connections, runs in results[name].items():
            summary[name][connections] = {
                key: statistics.median(run[key] for run in runs) for key in ("rps", "p50", "p99")
            }
            for key in ("failed", "total"):
                summary[name][connections][key] = sum(run[key] for run in runs)
    return summary


def startup_and_memory(pids):
    """Exec to first 200 (median of 10), idle RSS, RSS with 1,000 keep-alive
    connections, binary size."""
    figures = {}
    for name, binary, args in servers():
        starts = []
        for _ in range(10):
            server = Server(name, binary, args)
            starts.append(server.wait_first_200(pids[0]))
            server.stop()
        server = Server(name, binary, args)
        server.wait_first_200(pids[0])
        time.sleep(0.5)
        idle = server.rss_kib()
        sockets = []
        request = (f"POST /api/v1/processes/{pids[0]}/signal HTTP/1.1\r\nHost: x\r\n"
                   "Content-Type: application/json\r\n"
                   'Content-Length: 14\r\n\r\n{"signal": 10}').encode()
        for _ in range(1000):
            s = socket.create_connection(("127.0.0.1", server.port))
            s.sendall(request)
            sockets.append(s)
        for s in sockets:
            assert s.recv(4096).startswith(b"HTTP/1.1 200")
        busy = server.rss_kib()
        for s in sockets:
            s.close()
        server.stop()
        figures[name] = {
            "start_ms": statistics.median(starts) * 1000,
            "idle_rss_mib": idle / 1024,
            "rss_1000_mib": busy / 1024,
            "binary_mib": os.path.getsize(binary) / (1 << 20),
        }
    return figures


def policy_cost():
    """Median ns per policy call, from the divan bench (native, reused, fresh)."""
    triple = subprocess.run(["rustc", "-vV"], capture_output=True, text=True).stdout
    triple = re.search(r"host: (\S+)", triple).group(1)
    # crt-static for the host triple, as `make build` builds the shipped binary.
    flags = "CARGO_TARGET_" + re.sub(r"[-.]", "_", triple).upper() + "_RUSTFLAGS"
    env = dict(os.environ, **{flags: "-C target-feature=+crt-static"})
    output = subprocess.run(
        ["cargo", "bench", "-q", "--locked", "--target", triple, "-p", "sigd-bench",
         "--bench", "policy_cost", "--", "--sample-count", "20000"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True,
    ).stdout
    costs = {}
    for name in ("native", "wasm_reused", "wasm_fresh"):
        line = next(l for l in output.splitlines() if name in l)
        median = line.split("│")[2].strip()
        value, unit = median.split()
        costs[name] = float(value) * {"ns": 1, "µs": 1000, "ms": 1e6}[unit]
    return costs


def plot(summary):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (latency, throughput) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, style in (("baseline", "o--"), ("sigd", "s-")):
        xs = CONNECTIONS
        latency.plot(xs, [summary[name][c]["p50"] for c in xs], style, label=f"{name} p50")
        latency.plot(xs, [summary[name][c]["p99"] for c in xs], style, alpha=0.5, label=f"{name} p99")
        throughput.plot(xs, [summary[name][c]["rps"] for c in xs], style, label=name)
    for axis, title, unit in ((latency, "Latency", "ms"), (throughput, "Throughput", "requests/s")):
        axis.set_xscale("log", base=2)
        axis.set_xticks(CONNECTIONS, [str(c) for c in CONNECTIONS])
        axis.set_xlabel("connections")
        axis.set_ylabel(unit)
        axis.set_title(f"{title}: sigd (wasm policy) vs native baseline")
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize=8)
    latency.set_yscale("log")
    figure.tight_layout()
    figure.savefig(os.path.join(BENCH, "latency.png"), dpi=110)


def main():
    for binary in (SIGD, BASELINE):
        if not os.path.exists(binary):
            raise SystemExit(f"{binary} is missing: run `make build` first")
    if os.getpid() != 1:
        raise SystemExit("run inside a private PID namespace (make bench does)")
    targets = stubborn_targets()
    pids = [t.pid for t in targets]
    print("policy call alone (cargo bench --bench policy_cost)...", flush=True)
    costs = policy_cost()
    print(f"  {costs}")
    print("start-up and memory...", flush=True)
    figures = startup_and_memory(pids)
    print(f"  {figures}")
    print(f"load: wrk, {ROUNDS} rounds of {SECONDS} s per server and connection count...", flush=True)
    summary = load(pids)
    plot(summary)
    for target in targets:
        target.kill()

    lines = [
        "| connections | server | requests/s | p50 ms | p99 ms | non-2xx | throughput vs baseline | p99 vs baseline |",
        "|---|---|---|---|---|---|---|---|",
    ]
    checks = []
    for c in CONNECTIONS:
        base, sigd = summary["baseline"][c], summary["sigd"][c]
        ratio = sigd["rps"] / base["rps"]
        p99 = sigd["p99"] / base["p99"]
        checks.append((f"throughput at {c} connections >= 90% of baseline", ratio >= 0.9, f"{ratio:.0%}"))
        checks.append((f"p99 at {c} connections <= 1.2x baseline", p99 <= 1.2, f"{p99:.2f}x"))
        checks.append((f"no failed request at {c} connections", sigd["failed"] == 0,
                       f"{sigd['failed']} of {sigd['total']}"))
        for name, run, vs in (("baseline", base, "| | |"), ("sigd", sigd, f"| {ratio:.0%} | {p99:.2f}x |")):
            lines.append(f"| {c} | {name} | {run['rps']:.0f} | {run['p50']:.3f} | {run['p99']:.3f} "
                         f"| {run['failed']} of {run['total']} {vs}")
    added = (costs["wasm_reused"] - costs["native"]) / 1000
    checks.append(("policy call <= 2 us added over native (p50)", added <= 2.0, f"{added:.2f} us"))
    s, b = figures["sigd"], figures["baseline"]
    checks.append(("exec to first 200 <= 20 ms", s["start_ms"] <= 20, f"{s['start_ms']:.1f} ms"))
    checks.append(("idle RSS <= 16 MiB", s["idle_rss_mib"] <= 16, f"{s['idle_rss_mib']:.1f} MiB"))
    checks.append(("RSS with 1,000 keep-alive connections <= 64 MiB", s["rss_1000_mib"] <= 64,
                   f"{s['rss_1000_mib']:.1f} MiB"))
    lines += [
        "",
        "| measure | sigd | baseline |",
        "|---|---|---|",
        f"| policy call, median | {costs['wasm_reused']:.0f} ns reused, {costs['wasm_fresh']:.0f} ns fresh | {costs['native']:.0f} ns |",
        f"| exec to first 200, median of 10 | {s['start_ms']:.1f} ms | {b['start_ms']:.1f} ms |",
        f"| idle RSS | {s['idle_rss_mib']:.1f} MiB | {b['idle_rss_mib']:.1f} MiB |",
        f"| RSS with 1,000 keep-alive connections | {s['rss_1000_mib']:.1f} MiB | {b['rss_1000_mib']:.1f} MiB |",
        f"| binary size (static, stripped) | {s['binary_mib']:.1f} MiB | {b['binary_mib']:.1f} MiB |",
        "",
        "| target | holds | measured |",
        "|---|---|---|",
    ] + [f"| {name} | {'yes' if ok else 'NO'} | {value} |" for name, ok, value in checks]
    table = "\n".join(lines) + "\n"
    with open(os.path.join(BENCH, "latest.md"), "w") as out:
        out.write(table)
    with open(os.path.join(BENCH, "latest.json"), "w") as out:
        json.dump({"load": summary, "figures": figures, "policy_cost_ns": costs}, out, indent=1)
    print()
    print(table)


if __name__ == "__main__":
    sys.exit(main())
