#!/usr/bin/env bash
# `cyclone serve --metrics` read by Prometheus's own OpenMetrics parser
# (Python prometheus_client, pinned in interop/requirements.txt), with two
# forked workers: interop/metrics_check.py. Sets up interop/.venv if it
# lacks the parser, builds Cyclone, starts the server on free ports of
# 127.0.0.1, and ends with `interop: N passed, N failed` (counted by
# .ci/run); exit 1 if any failed.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=interop/lib.sh
. interop/lib.sh

if ! interop/.venv/bin/python -c 'import prometheus_client' 2> /dev/null; then
  interop/setup.sh
fi
cargo build --release --bin cyclone
cyclone=target/release/cyclone

tmp=$(mktemp -d)
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2> /dev/null || true; wait "$pid" 2> /dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=$(free_port)
mport=$(free_port)
"$cyclone" serve --port "$port" --address 127.0.0.1 --metrics "127.0.0.1:$mport" --processes 2 \
  --access-log off --log-level warn > "$tmp/cyclone.log" 2>&1 &
pid=$!
for _ in $(seq 200); do
  curl -s -o /dev/null "http://127.0.0.1:$mport/metrics" && break
  sleep 0.05
done
timeout -k 5 120 interop/.venv/bin/python interop/metrics_check.py \
  "http://127.0.0.1:$mport/metrics" "http://127.0.0.1:$port/hello" 2
