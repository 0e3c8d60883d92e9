"""What a group- or tree-scope signal costs on a machine with many
processes, for builds taking turns (a scope walks the whole process table):

    unshare --pid --fork --mount-proc python3 bench/scopes.py \\
        old:/tmp/sigd-old new:target/release/sigd

Each argument is NAME:BINARY, a `sigd serve --no-cache` at `warn`. P idle
processes (default 200) share the PID namespace with a target that leads a
process group of its own and ignores SIGUSR1; each round, each server in
turn is sent N (2000) requests `{"signal": 10, "scope": SCOPE}` (`group`)
over one keep-alive connection, after 100 to warm up. Prints the
milliseconds a request, each round, and the medians. R rounds (3).
"""

import os
import socket
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402

PROCESSES = int(os.environ.get("P", "200"))
REQUESTS = int(os.environ.get("N", "2000"))
ROUNDS = int(os.environ.get("R", "3"))
SCOPE = os.environ.get("SCOPE", "group")


def requests(port, pid, n):
    """Send `n` signal requests over one connection; each must answer 200."""
    body = f'{{"signal": 10, "scope": "{SCOPE}"}}'.encode()
    head = (f"POST /api/v1/processes/{pid}/signal HTTP/1.1\r\nHost: x\r\n"
            f"Content-Length: {len(body)}\r\nContent-Type: application/json\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", port)) as s:
        buffered = b""
        for _ in range(n):
            s.sendall(head + body)
            while b"\r\n\r\n" not in buffered:
                buffered += s.recv(65536)
            answer, buffered = buffered.split(b"\r\n\r\n", 1)
            length = next(int(line.split(b":")[1]) for line in answer.split(b"\r\n")
                          if line.lower().startswith(b"content-length:"))
            while len(buffered) < length:
                buffered += s.recv(65536)
            buffered = buffered[length:]
            if not answer.startswith(b"HTTP/1.1 200"):
                raise SystemExit(f"not 200: {answer.decode(errors='replace')}")


def main():
    servers = [spec.split(":", 1) for spec in sys.argv[1:]]
    if not servers or any(len(s) != 2 for s in servers):
        sys.exit(__doc__)
    if os.getpid() != 1:
        sys.exit("scopes.py: run it in a private PID namespace (unshare --pid --fork --mount-proc)")
    idle = [subprocess.Popen(["sleep", "3600"]) for _ in range(PROCESSES)]
    target = subprocess.Popen(["sh", "-c", "trap '' USR1; exec sleep 3600"], process_group=0)
    time.sleep(0.3)
    took = {name: [] for name, _ in servers}
    try:
        for round in range(ROUNDS):
            for name, binary in servers[round % len(servers):] + servers[:round % len(servers)]:
                server = run.Server(name, binary, ["serve", "--no-cache"], "warn")
                server.wait_first_200(target.pid)
                requests(server.port, target.pid, 100)
                started = time.perf_counter()
                requests(server.port, target.pid, REQUESTS)
                ms = (time.perf_counter() - started) / REQUESTS * 1e3
                took[name].append(ms)
                print(f"round {round + 1} {name}: {ms:.3f} ms a request", flush=True)
                server.stop()
    finally:
        for process in idle + [target]:
            process.kill()
    print(f"{PROCESSES} other processes, scope {SCOPE}, median ms a request:")
    for name, runs in took.items():
        print(f"  {name}: {statistics.median(runs):.3f}")


if __name__ == "__main__":
    main()
