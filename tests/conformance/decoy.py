"""A decoy process for the API conformance run: any signal it can catch ends
it at once (so a request that waits for its exit returns quickly)."""

import os
import signal
import time

for number in range(1, signal.SIGRTMAX + 1):
    if number in (signal.SIGKILL, signal.SIGSTOP, 32, 33):
        continue
    try:
        signal.signal(number, lambda *_: os._exit(0))
    except (OSError, ValueError):
        pass
while True:
    time.sleep(3600)
