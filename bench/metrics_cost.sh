#!/usr/bin/env bash
# The price of `--metrics`: the same `cyclone serve` with and without it,
# alternating, R repetitions of S seconds each, keep-alive and 16-deep
# pipelined GET /hello; server on CPU 0, wrk -t1 -c64 on CPU 1 (lib.sh's
# wrk_load). Prints a line per run ("off|on MODE req/s p50 p99
# req/CPU-s ...") and the medians of requests per server CPU-second.
#
#   bench/metrics_cost.sh [REPEAT] [SECONDS]     (default 3 5)
set -euo pipefail
cd "$(dirname "$0")/.."
repeat=${1:-3} seconds=${2:-5}
tmp=$(mktemp -d)
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2> /dev/null || true; wait "$pid" 2> /dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
. bench/lib.sh
need wrk || install_tools wrk
cargo build --release --quiet --bin cyclone
port=18400 mport=18401
for _ in $(seq "$repeat"); do
  for variant in off on; do
    args=()
    [ $variant = on ] && args=(--metrics "127.0.0.1:$mport")
    taskset -c 0 target/release/cyclone serve --port "$port" --access-log off --log-level warn "${args[@]}" > /dev/null 2>&1 &
    pid=$!
    wait_up "http://127.0.0.1:$port/hello"
    for mode in keepalive pipelined; do
      echo "$variant $mode $(wrk_load "http://127.0.0.1:$port/hello" "$pid" "$mode" "$seconds")" | tee -a "$tmp/runs"
    done
    kill "$pid"; wait "$pid" 2> /dev/null || true; pid=""
  done
done
for mode in keepalive pipelined; do
  off=$(awk -v m="$mode" '$1 == "off" && $2 == m {print $6}' "$tmp/runs" | median)
  on=$(awk -v m="$mode" '$1 == "on" && $2 == m {print $6}' "$tmp/runs" | median)
  echo "metrics $mode: off $off, on $on requests per server CPU-second ($(awk -v a="$on" -v b="$off" 'BEGIN{printf "%.3f", a / b}')x)"
done
