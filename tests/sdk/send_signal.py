"""Send one signal through Tensorlake's Python SDK, as its users would.

Usage: send_signal.py URL TOKEN PID SIGNAL
Prints `success=True` on success, or the SDK's error type, status and body.
"""

import sys

from tensorlake.sandbox import Sandbox

url, token, pid, signal = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
sandbox = Sandbox(identifier="sbx-sigd-test", proxy_url=url, api_key=token)
try:
    print(f"success={sandbox.send_signal(pid, signal).success}")
except Exception as error:  # the SDK's RemoteAPIError carries status and body
    print(f"{type(error).__name__}: {error}")
