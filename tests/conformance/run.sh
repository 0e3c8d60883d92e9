#!/usr/bin/env bash
# API conformance: Schemathesis against a live sigd, checked against
# openapi.yaml with every check Schemathesis has.
#
# sigd runs in a private PID namespace whose pid 1 is a shell that reaps,
# beside two decoys that exit on any signal they can catch, so the random
# pids Schemathesis sends can reach nothing outside it.
#
# Usage: run.sh SIGD SCHEMATHESIS
set -euo pipefail
sigd=$1
schemathesis=$2
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
work=$(mktemp -d)
# unshare ignores SIGTERM while it waits; SIGKILL ends it, and --kill-child
# takes the namespace with it.
trap 'kill -KILL "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT

token=conformance-token
SIGD_TOKEN=$token unshare --pid --fork --kill-child --mount-proc sh -c '
    python3 "$1" & python3 "$1" &
    "$2" serve --listen 127.0.0.1:0 --no-cache &
    wait' \
    sh "$here/decoy.py" "$sigd" 2>"$work/sigd.log" &
pid=$!

for _ in $(seq 100); do
    grep -q "listening on http://" "$work/sigd.log" && break
    sleep 0.1
done
url=$(sed -n 's/.*listening on \(http:\/\/[0-9.:]*\).*/\1/p' "$work/sigd.log" | head -n 1)
[ -n "$url" ] || { cat "$work/sigd.log"; echo "sigd did not start" >&2; exit 1; }

cd "$work" # Schemathesis and Hypothesis keep their caches in the working directory
"$schemathesis" run "$root/openapi.yaml" --url "$url" \
    --header "Authorization: Bearer $token" \
    --checks all --max-examples 500 --workers 2 \
    --request-timeout 40 --suppress-health-check all \
    --report junit --report-dir "$work/report" || status=$?
if [ "${status:-0}" -ne 0 ]; then
    echo "--- sigd's log (last 50 lines) ---"
    tail -n 50 "$work/sigd.log"
    exit "$status"
fi
