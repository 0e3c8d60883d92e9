"""sigd against its native baseline and the bare limit, side by side in one run.

Run it with `make bench` (which builds the three binaries and installs wrk,
strace and matplotlib), inside a private PID namespace so the signals can
only reach the benchmark's own target processes.

Measures, for `sigd serve` (the wasm policy), `sigd-baseline` (the same host
code with the policy's logic linked natively), each at the default log
level (info) and at warn, and `sigd-bare` (a bare hyper server that makes
only the syscalls a signal needs; the limit the others are shares of; and
`sigd-bare --poll`, which polls the target's pidfd instead of reading its
`stat`, as sigd does since WIT 0.3.2: the limit for sigd's own syscalls):
  - throughput, p50/p99 latency and server CPU per request under wrk at 1,
    16 and 256 connections, the servers alternating round by round, every
    request a real pidfd_send_signal to a live process that ignores it;
  - syscalls per request (strace -f on the server while one keep-alive
    connection sends SYSCALL_REQUESTS requests, the policy's epoch ticker
    thread aside);
  - time from exec to the first 200, idle RSS, RSS with 1,000 keep-alive
    connections, binary size (also of the slim build, `make build-slim`);
  - the policy call alone (benches/policy_cost.rs): native vs wasm, what
    the async fiber costs a call, and what the boundary alone costs (a
    policy making the same host calls with no logic).
Writes bench/latest.md (the tables) and bench/latency.png (the plot), and
prints the ratios against the targets.
"""

import collections
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
SLIM = os.path.join(ROOT, "target/release/sigd-slim")
BASELINE = os.path.join(ROOT, "target/release/sigd-baseline")
BARE = os.path.join(ROOT, "target/release/sigd-bare")
LOGS = os.path.join(ROOT, "target/bench-logs")
CONNECTIONS = [1, 16, 256]
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "3"))
TARGETS = 8
SYSCALL_REQUESTS = 500
# Syscalls that wait (for work, a lock or a timer) rather than do a request's work.
WAITS = {"epoll_wait", "epoll_pwait", "futex", "clock_nanosleep", "nanosleep", "sched_yield"}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# What the targets and wrk run under: nothing (as root, as `make bench`
# runs), or `bench/ab.py`'s `AS`, another user.
RUN_AS = []


def stubborn_targets():
    """Processes that ignore SIGUSR1: every request really signals one."""
    targets = [
        subprocess.Popen(RUN_AS + ["sh", "-c", "trap '' USR1; exec sleep 3600"])
        for _ in range(TARGETS)
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
    """A running sigd, sigd-baseline or sigd-bare on a loopback port."""

    def __init__(self, name, binary, args, level="warn"):
        self.name = name
        self.port = free_port()
        address = f"127.0.0.1:{self.port}"
        command = [binary] + args + ["--listen", address]
        env = dict(os.environ, RUST_LOG=level)
        os.makedirs(LOGS, exist_ok=True)
        self.log = os.path.join(LOGS, f"{name}-{self.port}.log")
        self.keep_log = False
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
            if self.process.poll() is not None:
                raise SystemExit(f"{self.name} exited ({self.process.returncode}) before it served; "
                                 f"its log: {self.log}")
            try:
                status, _ = self.request("POST", f"/api/v1/processes/{pid}/signal", body)
                if status == 200:
                    return time.perf_counter() - self.started
            except (ConnectionRefusedError, ConnectionResetError):
                pass
            time.sleep(0.0002)

    def cpu_ticks(self):
        """User and system time the server has used, in clock ticks."""
        with open(f"/proc/{self.process.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])

    def rss_kib(self):
        with open(f"/proc/{self.process.pid}/status") as status:
            return int(re.search(r"VmRSS:\s*(\d+)", status.read()).group(1))

    def stop(self):
        """End the server; its log is kept only if it did not exit cleanly
        or some answer was not a 2xx (`keep_log`).

        At `info` every signal request logs an audit line of about 1 KiB:
        a run's logs came to tens of GiB over a few `make bench` runs,
        until the disk was full."""
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=15)
        clean = self.process.returncode in (0, -signal.SIGTERM)
        if clean and not self.keep_log and self.log.startswith(LOGS + os.sep):
            os.remove(self.log)


def servers():
    """(name, binary, arguments, log level) of each server measured."""
    sigd = ["serve", "--no-cache"]
    return [
        ("bare", BARE, [], "warn"),
        ("bare-poll", BARE, ["--poll"], "warn"),
        ("baseline", BASELINE, [], "info"),
        ("baseline", BASELINE, [], "warn"),
        ("sigd", SIGD, sigd, "info"),
        ("sigd", SIGD, sigd, "warn"),
    ]


def key(name, level):
    """How results name a server at a log level (the bare servers log nothing)."""
    return name if name.startswith("bare") else f"{name} {level}"


def wrk(server, pids, connections):
    """Throughput (req/s), latency percentiles (ms) and server CPU per request
    (µs) of one wrk run."""
    script = os.path.join(BENCH, "signal.lua")
    env = dict(os.environ, SIGD_BENCH_PIDS=",".join(map(str, pids)))
    cpu_before = server.cpu_ticks()
    output = subprocess.run(
        RUN_AS + ["wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{SECONDS}s",
         "--latency", "-s", script, server.url()],
        env=env, capture_output=True, text=True, check=True,
    ).stdout
    failed = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", output)
    failed = int(failed.group(1)) if failed else 0
    if failed:
        server.keep_log = True
        with open(server.log) as log:
            why = [line.strip() for line in log if " WARN " in line or " ERROR " in line]
        print(f"  {server.name}: {failed} non-2xx answers; its log says:", *why[-5:], sep="\n    ")
    rps = float(re.search(r"Requests/sec:\s*([\d.]+)", output).group(1))
    percentiles = {}
    for pct, value, unit in re.findall(r"\s(50|75|90|99)%\s+([\d.]+)(us|ms|s)\b", output):
        scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
        percentiles[int(pct)] = float(value) * scale
    total = int(re.search(r"(\d+) requests in", output).group(1))
    cpu_us = (server.cpu_ticks() - cpu_before) / CLOCK_TICKS * 1e6 / max(total, 1)
    return {"rps": rps, "p50": percentiles[50], "p99": percentiles[99], "cpu_us": cpu_us,
            "failed": failed, "total": total}


def load(pids):
    """Each server at each connection count, in turn, ROUNDS times; each round
    starts one server later than the one before."""
    configs = servers()
    results = {key(name, level): {c: [] for c in CONNECTIONS} for name, _, _, level in configs}
    for connections in CONNECTIONS:
        for round_ in range(ROUNDS):
            shift = round_ % len(configs)
            for name, binary, args, level in configs[shift:] + configs[:shift]:
                server = Server(name, binary, args, level)
                server.wait_first_200(pids[0])
                run = wrk(server, pids, connections)
                server.stop()
                results[key(name, level)][connections].append(run)
                print(f"  {key(name, level):13} c={connections:<3} round {round_ + 1}: {run}", flush=True)
    summary = {}
    for name in results:
        summary[name] = {}
        for connections, runs in results[name].items():
            summary[name][connections] = {
                figure: statistics.median(run[figure] for run in runs)
                for figure in ("rps", "p50", "p99", "cpu_us")
            }
            for figure in ("failed", "total"):
                summary[name][connections][figure] = sum(run[figure] for run in runs)
    return summary


def syscalls(pids):
    """Syscalls per request of each server: strace -f on it while one
    keep-alive connection sends SYSCALL_REQUESTS signal requests, one at a
    time. The calls of sigd's epoch ticker thread (its timer) are left out;
    `waits` counts those of the rest that wait rather than work."""
    figures = {}
    request = (f"POST /api/v1/processes/{pids[0]}/signal HTTP/1.1\r\nHost: x\r\n"
               "Content-Type: application/json\r\n"
               'Content-Length: 14\r\n\r\n{"signal": 10}').encode()
    trace = os.path.join(LOGS, "strace.txt")
    for name, binary, args, level in servers():
        server = Server(name, binary, args, level)
        server.wait_first_200(pids[0])
        with socket.create_connection(("127.0.0.1", server.port)) as connection:
            answers = connection.makefile("rb")

            def one():
                connection.sendall(request)
                status = answers.readline()
                length = 0
                while (line := answers.readline()) != b"\r\n":
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                answers.read(length)
                assert status.startswith(b"HTTP/1.1 200"), status

            for _ in range(50):
                one()
            strace = subprocess.Popen(["strace", "-f", "-qq", "-o", trace, "-p", str(server.process.pid)],
                                      stderr=subprocess.DEVNULL)
            time.sleep(0.5)  # attached to every thread by then
            for _ in range(SYSCALL_REQUESTS):
                one()
            time.sleep(0.1)
        tasks = f"/proc/{server.process.pid}/task"
        threads = {}
        for tid in os.listdir(tasks):
            with open(f"{tasks}/{tid}/comm") as comm:
                threads[int(tid)] = comm.read().strip()
        strace.send_signal(signal.SIGINT)
        strace.wait()
        server.stop()
        counts = collections.Counter()
        with open(trace) as lines:
            for line in lines:
                # "TID call(...", or "TID <... call resumed>" for the end of one counted already.
                call = re.match(r"(\d+)\s+(\w+)\(", line)
                if call and threads.get(int(call.group(1))) != "sigd-epoch":
                    counts[call.group(2)] += 1
        per_request = {call: n / SYSCALL_REQUESTS for call, n in counts.most_common()}
        figures[key(name, level)] = {
            "total": sum(per_request.values()),
            "waits": sum(n for call, n in per_request.items() if call in WAITS),
            "calls": per_request,
        }
        print(f"  {key(name, level):13} {figures[key(name, level)]['total']:.1f} per request: "
              + ", ".join(f"{call} {n:.2f}" for call, n in per_request.items()), flush=True)
    return figures


def startup_and_memory(pids):
    """Exec to first 200 (median of 10), idle RSS, RSS with 1,000 keep-alive
    connections, binary size; of each server, and of the slim build of sigd
    (`make build-slim`: no compiler, the built-in policy) beside the full one."""
    figures = {}
    slim = ("sigd-slim", SLIM, ["serve", "--no-cache"], "warn")
    for name, binary, args, level in servers() + [slim]:
        if level != "warn" or name == "bare-poll":  # bare-poll: the bare binary
            continue
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


# How far the floor policy goes (benches/policy_cost.rs): no host call;
# open-alive and drop; open-alive, signal and drop (the default policy's).
FLOOR_REACH = ("answer", "open", "signal")


def policy_cost():
    """Median ns per policy call, from the divan bench, by path: native, reused,
    fresh, the fiber's empty calls (`fiber/<call>`), the floor's cases
    (`floor/<native|wasm_reused>/<reach>`) and its call making no host call
    through wasmtime's bindings alone (`bindings/<async|sync>_answer`)."""
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
    floor = [f"floor/{how}/{reach}" for how in ("native", "wasm_reused") for reach in FLOOR_REACH]
    fiber = [f"fiber/{call}" for call in ("sync_call", "async_call", "block_on_alone")]
    bindings = [f"bindings/{call}" for call in ("async_answer", "sync_answer")]
    names = ["native", "wasm_reused", "wasm_fresh"] + fiber + floor + bindings
    lines = output.splitlines()
    for name in names:
        # A path's rows, each a level further in (a level indents by three
        # characters, "│  " or spaces), whatever order divan sorts them in:
        # "fiber/async_call" is "─ async_call" (the name whole: sync_call is
        # in async_call) one level in, after "─ fiber" at the top.
        at = 0
        for depth, part in enumerate(name.split("/")):
            row = re.compile(rf"^(?:[│ ]  ){{{depth}}}[├╰]─ {part}\b")
            at += next(i for i, l in enumerate(lines[at:]) if row.search(l))
        # Columns: the name and fastest, slowest, median, ... (the tree's
        # own "│" taken off the front of a nested name first).
        median = re.sub(r"^[│├╰─\s]+", "", lines[at]).split("│")[2].strip()
        value, unit = median.split()
        costs[name] = float(value) * {"ns": 1, "µs": 1000, "ms": 1e6}[unit]
    return costs


def plot(summary):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (latency, throughput) = plt.subplots(1, 2, figsize=(11, 4.2))
    styles = {"bare": "^:", "bare-poll": "v:", "baseline info": "o--", "baseline warn": "o-.", "sigd info": "s-",
              "sigd warn": "s-."}
    for name, style in styles.items():
        xs = CONNECTIONS
        latency.plot(xs, [summary[name][c]["p50"] for c in xs], style, label=f"{name} p50")
        latency.plot(xs, [summary[name][c]["p99"] for c in xs], style, alpha=0.5, label=f"{name} p99")
        throughput.plot(xs, [summary[name][c]["rps"] for c in xs], style, label=name)
    for axis, title, unit in ((latency, "Latency", "ms"), (throughput, "Throughput", "requests/s")):
        axis.set_xscale("log", base=2)
        axis.set_xticks(CONNECTIONS, [str(c) for c in CONNECTIONS])
        axis.set_xlabel("connections")
        axis.set_ylabel(unit)
        axis.set_title(f"{title}: sigd, native baseline, bare server")
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize=7)
    latency.set_yscale("log")
    figure.tight_layout()
    figure.savefig(os.path.join(BENCH, "latency.png"), dpi=110)


def main():
    for binary in (SIGD, SLIM, BASELINE, BARE):
        if not os.path.exists(binary):
            raise SystemExit(f"{binary} is missing: run `make build build-slim baseline` first")
    if os.getpid() != 1:
        raise SystemExit("run inside a private PID namespace (make bench does)")
    os.makedirs(LOGS, exist_ok=True)
    targets = stubborn_targets()
    pids = [t.pid for t in targets]
    print("policy call alone (cargo bench --bench policy_cost)...", flush=True)
    costs = policy_cost()
    print(f"  {costs}")
    print("start-up and memory...", flush=True)
    figures = startup_and_memory(pids)
    print(f"  {figures}")
    print(f"syscalls: strace -f, {SYSCALL_REQUESTS} requests on one keep-alive connection...", flush=True)
    calls = syscalls(pids)
    print(f"load: wrk, {ROUNDS} rounds of {SECONDS} s per server and connection count...", flush=True)
    summary = load(pids)
    plot(summary)
    for target in targets:
        target.kill()

    lines = [
        "| connections | server | log level | requests/s | share of bare | p50 ms | p99 ms | p99 vs bare "
        "| server CPU µs/request | non-2xx |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    checks = []
    for c in CONNECTIONS:
        bare = summary["bare"][c]
        for name in ("bare", "bare-poll", "baseline info", "baseline warn", "sigd info", "sigd warn"):
            run = summary[name][c]
            server, _, level = name.partition(" ")
            share = run["rps"] / bare["rps"]
            p99 = run["p99"] / bare["p99"]
            lines.append(f"| {c} | {server} | {level or '-'} | {run['rps']:.0f} | {share:.0%} "
                         f"| {run['p50']:.3f} | {run['p99']:.3f} | {p99:.2f}x | {run['cpu_us']:.0f} "
                         f"| {run['failed']} of {run['total']} |")
        sigd, base, warn = summary["sigd info"][c], summary["baseline info"][c], summary["sigd warn"][c]
        if c != 1:
            share = sigd["rps"] / bare["rps"]
            checks.append((f"sigd (info) >= 75% of bare at c={c}", share >= 0.75, f"{share:.0%}"))
            share = base["rps"] / bare["rps"]
            checks.append((f"baseline (info) >= 85% of bare at c={c}", share >= 0.85, f"{share:.0%}"))
            p99 = sigd["p99"] / bare["p99"]
            checks.append((f"sigd (info) p99 <= 1.5x bare at c={c}", p99 <= 1.5, f"{p99:.2f}x"))
            for server, run in (("sigd", sigd), ("baseline", base)):
                share = run["rps"] / summary["bare-poll"][c]["rps"]
                checks.append((f"{server} (info) share of bare --poll at c={c} (no target set: "
                               "the yardstick making sigd's own syscalls)", None, f"{share:.0%}"))
        share = sigd["rps"] / base["rps"]
        checks.append((f"sigd >= 95% of baseline (info) at c={c}", share >= 0.95, f"{share:.0%}"))
        share = sigd["rps"] / warn["rps"]
        checks.append((f"sigd at info >= 95% of warn at c={c}", share >= 0.95, f"{share:.0%}"))
    failed = sum(run["failed"] for runs in summary.values() for run in runs.values())
    total = sum(run["total"] for runs in summary.values() for run in runs.values())
    checks.append(("no failed request, any server", failed == 0, f"{failed} of {total}"))
    work = calls["sigd info"]["total"] - calls["sigd info"]["waits"]
    checks.append(("sigd (info) <= 20 syscalls per request, waits aside", work <= 20, f"{work:.1f}"))
    added = (costs["wasm_reused"] - costs["native"]) / 1000
    # The boundary alone: a policy making the same host calls with no logic
    # (and stopping short of them: no host call; open and drop).
    boundaries = {reach: costs[f"floor/wasm_reused/{reach}"] - costs[f"floor/native/{reach}"]
                  for reach in FLOOR_REACH}
    boundary = boundaries["signal"] / 1000
    # wasmtime's own call: the floor's answer through its bindings alone,
    # less the block_on it runs in (as the native floor's does).
    wasmtime_call = costs["bindings/async_answer"] - costs["fiber/block_on_alone"]
    checks.append(("policy call <= 1 us added over native (p50)", added <= 1.0,
                   f"{added:.2f} us, of it the boundary alone {boundary:.2f} us, a call making no host call "
        f"{boundaries['answer'] / 1000:.2f} us (wasmtime's own call {wasmtime_call / 1000:.2f} us)"))
    # The async call runs inside a block_on, which the sync one needs not.
    fiber = costs["fiber/async_call"] - costs["fiber/block_on_alone"] - costs["fiber/sync_call"]
    s, b, r, m = figures["sigd"], figures["baseline"], figures["bare"], figures["sigd-slim"]
    checks.append(("exec to first 200 <= 20 ms", s["start_ms"] <= 20, f"{s['start_ms']:.1f} ms"))
    checks.append(("idle RSS <= 16 MiB", s["idle_rss_mib"] <= 16, f"{s['idle_rss_mib']:.1f} MiB"))
    checks.append(("RSS with 1,000 keep-alive connections <= 64 MiB", s["rss_1000_mib"] <= 64,
                   f"{s['rss_1000_mib']:.1f} MiB"))
    checks.append(("slim build: binary <= 10 MiB", m["binary_mib"] <= 10, f"{m['binary_mib']:.1f} MiB"))
    checks.append(("slim build: idle RSS <= 7 MiB", m["idle_rss_mib"] <= 7, f"{m['idle_rss_mib']:.1f} MiB"))
    checks.append(("slim build: exec to first 200 <= 5 ms", m["start_ms"] <= 5, f"{m['start_ms']:.1f} ms"))
    lines += [
        "",
        "| server | log level | syscalls per request | of them waits | the most frequent |",
        "|---|---|---|---|---|",
    ]
    for name, figure in calls.items():
        server, _, level = name.partition(" ")
        top = ", ".join(f"{call} {n:.2f}" for call, n in list(figure["calls"].items())[:6])
        lines.append(f"| {server} | {level or '-'} | {figure['total']:.1f} | {figure['waits']:.1f} | {top} |")
    lines += [
        "",
        "| measure | sigd | sigd, slim build | baseline | bare |",
        "|---|---|---|---|---|",
        f"| policy call, median | {costs['wasm_reused']:.0f} ns reused, {costs['wasm_fresh']:.0f} ns fresh "
        f"| | {costs['native']:.0f} ns | |",
        f"| of it, the async fiber (an empty call: {costs['fiber/async_call']:.0f} ns async in a "
        f"{costs['fiber/block_on_alone']:.0f} ns block_on, {costs['fiber/sync_call']:.0f} ns sync) "
        f"| {fiber:.0f} ns | | | |",
        f"| the boundary alone: a policy making the same host calls with no logic "
        f"(tests/guests/floor), as a component over linked natively "
        f"({costs['floor/wasm_reused/signal']:.0f} ns over {costs['floor/native/signal']:.0f} ns) "
        f"| {boundaries['signal']:.0f} ns | | | |",
        f"| of it, a call making no host call | {boundaries['answer']:.0f} ns | | | |",
        f"| beside it, wasmtime's own call (the same through its bindings alone, no sigd runtime: "
        f"{costs['bindings/async_answer']:.0f} ns in a block_on; {costs['bindings/sync_answer']:.0f} ns "
        f"called sync) | {wasmtime_call:.0f} ns | | | |",
        f"| of it, open-alive and the handle's drop | {boundaries['open'] - boundaries['answer']:.0f} ns | | | |",
        f"| of it, signal and its list of pids | {boundaries['signal'] - boundaries['open']:.0f} ns | | | |",
        f"| exec to first 200, median of 10 | {s['start_ms']:.1f} ms | {m['start_ms']:.1f} ms "
        f"| {b['start_ms']:.1f} ms | {r['start_ms']:.1f} ms |",
        f"| idle RSS | {s['idle_rss_mib']:.1f} MiB | {m['idle_rss_mib']:.1f} MiB | {b['idle_rss_mib']:.1f} MiB "
        f"| {r['idle_rss_mib']:.1f} MiB |",
        f"| RSS with 1,000 keep-alive connections | {s['rss_1000_mib']:.1f} MiB | {m['rss_1000_mib']:.1f} MiB "
        f"| {b['rss_1000_mib']:.1f} MiB | {r['rss_1000_mib']:.1f} MiB |",
        f"| binary size (static, stripped) | {s['binary_mib']:.1f} MiB | {m['binary_mib']:.1f} MiB "
        f"| {b['binary_mib']:.1f} MiB | {r['binary_mib']:.1f} MiB |",
        "",
        "| target | holds | measured |",
        "|---|---|---|",
    ] + [f"| {name} | {'-' if ok is None else 'yes' if ok else 'NO'} | {value} |"
         for name, ok, value in checks]
    table = "\n".join(lines) + "\n"
    with open(os.path.join(BENCH, "latest.md"), "w") as out:
        out.write(table)
    with open(os.path.join(BENCH, "latest.json"), "w") as out:
        json.dump({"load": summary, "syscalls": calls, "figures": figures, "policy_cost_ns": costs},
                  out, indent=1)
    print()
    print(table)


if __name__ == "__main__":
    sys.exit(main())
