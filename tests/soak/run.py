"""`make soak`: the hostile mix against one sigd, at once, for a bounded time.

Run as pid 1 of a private PID namespace (make soak does), with the release
binary as the argument. Hostile clients, all together for SOAK_SECONDS:

- slow headers: connections that send a request's first bytes, then a byte
  a second;
- unfinished bodies: headers announcing 100 bytes, then 5 of them;
- idle keep-alives: one request, then silence;
- long waits: `wait_ms: 30000` on processes that ignore SIGTERM, more of
  them than `--max-waits` lets wait;
- an escalation flood: `escalate` 600 s, far past `--max-escalations`;
- forking trees: a shell forking as fast as it can, SIGKILLed as a tree;
- bad bodies: keys given twice, nesting too deep, not JSON.

Meanwhile a well-behaved client asks `/healthz` and signals a fresh `sleep`
every 50 ms. The report gives its latency, and sigd's descriptors and RSS
before (idle), during (the most seen) and after the clients go. It fails
(exit 1) if a well-behaved request took 1 s or more or was not answered as
it should be, if a tree left a descendant alive, or if descriptors or RSS
do not come back to their idle level.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

SECONDS = float(os.environ.get("SOAK_SECONDS", "60"))
PORT = 19876
LOG = os.environ.get("SOAK_LOG", "/dev/null")  # where sigd's log goes
# What "back to idle" allows RSS: the allocator keeps some of what it held.
RSS_SLACK_KIB = 4 * 1024
FLAGS = [
    "--max-connections", "256",
    "--max-waits", "64",
    "--max-escalations", "512",
    "--header-timeout", "5",
    "--body-timeout", "5",
]
stop = threading.Event()
problems = []
mine = set()  # the pids of the children this script waits for itself
slowest = []  # (seconds, what, when) of each well-behaved request


def spawn(args: list) -> subprocess.Popen:
    child = subprocess.Popen(args)
    mine.add(child.pid)
    return child


def request(raw: bytes, timeout: float = 40.0) -> tuple:
    """Send one raw request on a new connection; (status, body, seconds)."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", PORT), timeout=timeout) as conn:
        conn.sendall(raw)
        reply = b""
        while chunk := conn.recv(65536):
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/1.1 ") else 0
    return status, body, time.monotonic() - started


def post(pid, body: str) -> tuple:
    data = body.encode()
    return request(
        b"POST /api/v1/processes/%s/signal HTTP/1.1\r\nHost: soak\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
        % (str(pid).encode(), len(data)) + data
    )


def get(path: str) -> tuple:
    return request(b"GET %s HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n" % path.encode())


def stubborn() -> subprocess.Popen:
    """A sleep that ignores SIGTERM."""
    return spawn(["sh", "-c", "trap '' TERM; exec sleep 3600"])


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def hold(first: bytes, then, count: int) -> None:
    """Keep `count` connections open that sent `first`, each sent `then`
    (a byte, or nothing) every second; reopen those sigd closes."""
    conns = []
    while not stop.is_set():
        conns = [c for c in conns if c is not None]
        while len(conns) < count and not stop.is_set():
            try:
                conn = socket.create_connection(("127.0.0.1", PORT), timeout=5)
                conn.sendall(first)
                conns.append(conn)
            except OSError:
                time.sleep(0.05)
        time.sleep(1)
        for i, conn in enumerate(conns):
            try:
                if then:
                    conn.sendall(then)
                else:
                    conn.setblocking(False)
                    if conn.recv(1) == b"":
                        raise OSError("closed")
            except BlockingIOError:
                pass
            except OSError:
                conn.close()
                conns[i] = None
    for conn in conns:
        if conn is not None:
            conn.close()


def keep_alive_idle(count: int) -> None:
    """`count` keep-alive connections that asked once and then say nothing."""
    first = b"GET /healthz HTTP/1.1\r\nHost: soak\r\n\r\n"
    hold(first, None, count)


def flood(worker, threads: int) -> None:
    def loop():
        while not stop.is_set():
            try:
                worker()
            except OSError:
                time.sleep(0.01)

    for _ in range(threads):
        threading.Thread(target=loop, daemon=True).start()


def forking_trees(escaped: list) -> None:
    """A shell forking sleeps as fast as it can, SIGKILLed as a tree every
    second; counts descendants left alive."""
    run = 0
    while not stop.is_set():
        marker = str(80_000 + run)
        run += 1
        shell = spawn(["sh", "-c", f"while :; do sleep {marker} & done"])
        time.sleep(0.2)
        status, body, _ = post(shell.pid, '{"signal": 9, "scope": "tree"}')
        if status != 200:
            problems.append(f"tree SIGKILL answered {status}: {body[:200]!r}")
        shell.wait()
        time.sleep(0.5)
        alive = sleeping(marker)
        escaped.extend(alive)
        for pid in alive:
            os.kill(pid, signal.SIGKILL)
        time.sleep(0.3)


def sleeping(marker: str) -> list:
    wanted = f"sleep\0{marker}\0".encode()
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                    if cmdline.read() == wanted:
                        pids.append(int(entry))
            except OSError:
                pass
    return pids


def reap() -> None:
    """As pid 1, reap the orphans that end (the trees' sleeps); children
    spawned here are left to whoever waits for them."""
    while True:
        try:
            ended = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            if ended is not None and ended.si_pid not in mine:
                os.waitpid(ended.si_pid, 0)
                continue
        except ChildProcessError:
            pass
        time.sleep(0.01)


def well_behaved(latencies: list) -> None:
    """Every 50 ms: /healthz, and SIGTERM to a fresh sleep, which must die."""
    while not stop.is_set():
        status, _, took = get("/healthz")
        latencies.append(took)
        slowest.append((took, "healthz", time.monotonic()))
        if status != 200:
            problems.append(f"/healthz answered {status}")
        target = spawn(["sleep", "3600"])
        status, body, took = post(target.pid, '{"signal": 15}')
        latencies.append(took)
        slowest.append((took, "signal", time.monotonic()))
        if status != 200:
            problems.append(f"a well-behaved signal answered {status}: {body[:200]!r}")
        try:
            if target.wait(timeout=5) != -15:
                problems.append(f"target {target.pid} ended {target.returncode}, not by SIGTERM")
        except subprocess.TimeoutExpired:
            problems.append(f"target {target.pid} survived a delivered SIGTERM")
            target.kill()
        time.sleep(0.05)


def percentile(values: list, p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))] if ordered else 0.0


def main() -> int:
    if os.getpid() != 1:
        print("run me as pid 1 of a private PID namespace (make soak does)", file=sys.stderr)
        return 2
    binary = sys.argv[1]
    sigd = subprocess.Popen(
        [binary, "serve", "--listen", f"127.0.0.1:{PORT}", "--no-cache", *FLAGS],
        stderr=open(LOG, "w"),
        env={**os.environ, "RUST_LOG": "warn"},
    )
    mine.add(sigd.pid)
    for _ in range(200):
        try:
            if get("/healthz")[0] == 200:
                break
        except OSError:
            time.sleep(0.05)
    threading.Thread(target=reap, daemon=True).start()
    time.sleep(0.5)
    before = (fds(sigd.pid), rss_kib(sigd.pid))

    targets = [stubborn() for _ in range(8)]
    time.sleep(0.2)
    latencies, escaped, samples = [], [], []
    workers = [
        lambda: hold(b"POST /api/v1/proc", b"e", 100),
        lambda: hold(
            b"POST /api/v1/processes/42/signal HTTP/1.1\r\nHost: soak\r\n"
            b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"sig",
            None,
            60,
        ),
        lambda: keep_alive_idle(60),
        lambda: forking_trees(escaped),
        lambda: well_behaved(latencies),
    ]
    for worker in workers:
        threading.Thread(target=worker, daemon=True).start()
    waits = iter(range(10**9))
    flood(lambda: post(targets[next(waits) % 8].pid, '{"signal": 15, "wait_ms": 30000}'), 80)
    flood(lambda: post(targets[0].pid, '{"signal": 15, "escalate": {"after_ms": 600000}}'), 2)
    bad = ['{"signal": 15, "escalate": {"after_ms": 1, "after_ms": 2}}', "[" * 300, "not json"]
    flood(lambda: [post(42, body) for body in bad], 1)

    started = time.monotonic()
    while time.monotonic() - started < SECONDS:
        time.sleep(2)
        samples.append((fds(sigd.pid), rss_kib(sigd.pid)))
    stop.set()
    # The clients go: end the processes the waits and escalations are for.
    for target in targets:
        target.kill()
    # Slow connections time out, waits and escalations end, and idle policy
    # instances are let go (after 10 s): give it 25 s to come back.
    gone = time.monotonic()
    while True:
        time.sleep(1)
        after = (fds(sigd.pid), rss_kib(sigd.pid))
        back = after[0] <= before[0] + 4 and after[1] <= before[1] + RSS_SLACK_KIB
        if back or time.monotonic() - gone > 25:
            break
    settled = time.monotonic() - gone
    healthy = get("/metrics")[1].decode(errors="replace")
    sigd.send_signal(signal.SIGTERM)
    sigd.wait(timeout=20)

    during = (max(s[0] for s in samples), max(s[1] for s in samples))
    report = {
        "seconds": SECONDS,
        "well_behaved_requests": len(latencies),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 2),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
        "max_ms": round(max(latencies, default=0) * 1000, 2),
        "fds": {"idle": before[0], "during_max": during[0], "after": after[0]},
        "rss_kib": {"idle": before[1], "during_max": during[1], "after": after[1]},
        "back_to_idle_after_s": round(settled, 1),
        "slowest": [
            f"{what} {took * 1000:.0f} ms at {when - started:.1f} s"
            for took, what, when in sorted(slowest, reverse=True)[:3]
        ],
        "tree_descendants_escaped": len(escaped),
        "problems": problems[:20],
        "evicted": [l for l in healthy.splitlines() if l.startswith("sigd_connections_evicted_total")],
        "escalations_refused": [l for l in healthy.splitlines() if l.startswith("sigd_escalations_refused_total")],
    }
    print(json.dumps(report, indent=2))
    failed = []
    if report["max_ms"] >= 1000:
        failed.append("a well-behaved request took 1 s or more")
    if problems:
        failed.append(f"{len(problems)} well-behaved requests went wrong")
    if escaped:
        failed.append("a tree left descendants alive")
    if after[0] > before[0] + 4:
        failed.append("descriptors did not come back to their idle level")
    if after[1] > before[1] + RSS_SLACK_KIB:
        failed.append(f"RSS did not come back within {RSS_SLACK_KIB} KiB of idle")
    for reason in failed:
        print(f"soak FAILED: {reason}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
