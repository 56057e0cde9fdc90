#!/usr/bin/env bash
# The access log's price, quickly: `cyclone serve` as a user starts it
# (access lines on, to stdout, which is a file here) against
# `--log-level warn`, keep-alive and 16-deep pipelined, in requests per
# server CPU-second. Any build of the binary can be measured (an older one
# for an A/B).
#
#   bench/access_log.sh [CYCLONE_BINARY] [--repeat N] [--seconds S]
#
# The server on CPU 0 (its access-log writer thread too), wrk -t1 -c64 on
# CPU 1; each figure the median of N runs (default 3) of S seconds
# (default 4), the two forms alternating. bench/run.sh measures the same
# in its full table ("cyclone (access log on)").
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/release/cyclone; repeat=3; seconds=4
while [ $# -gt 0 ]; do
  case "$1" in
    --repeat) repeat="$2"; shift 2 ;;
    --seconds) seconds="$2"; shift 2 ;;
    -*) echo "usage: $0 [CYCLONE_BINARY] [--repeat N] [--seconds S]" >&2; exit 2 ;;
    *) bin="$1"; shift ;;
  esac
done
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
# shellcheck source=bench/lib.sh
. bench/lib.sh
need wrk || install_tools wrk
[ "$bin" != target/release/cyclone ] || cargo build --release --quiet --bin cyclone
port=18887

# run ARGS MODE -> requests per server CPU-second
run() {
  # shellcheck disable=SC2086
  taskset -c 0 "$bin" serve --port "$port" $1 > "$tmp/out" 2>&1 &
  local pid=$!
  wait_up "http://127.0.0.1:$port/hello"
  local u0 s0 u1 s1 out reqs
  read -r u0 s0 < <(awk '{print $14, $15}' "/proc/$pid/stat")
  if [ "$2" = pipelined ]; then
    out=$(taskset -c 1 wrk -t1 -c64 -d"${seconds}s" -s bench/http/pipeline.lua "http://127.0.0.1:$port/hello" -- 16)
  else
    out=$(taskset -c 1 wrk -t1 -c64 -d"${seconds}s" "http://127.0.0.1:$port/hello")
  fi
  read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$pid/stat")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  reqs=$(awk '/requests in/ {print $1}' <<< "$out")
  awk -v r="$reqs" -v t=$(( u1 - u0 + s1 - s0 )) -v hz="$hz" 'BEGIN {printf "%.0f\n", r / (t / hz)}'
}

echo "| mode | access log on (req per CPU-s) | --log-level warn | on / off |"
echo "|---|---:|---:|---:|"
for mode in keep-alive pipelined; do
  on=(); off=()
  for _ in $(seq "$repeat"); do
    on+=("$(run "" "$mode")")
    off+=("$(run "--log-level warn" "$mode")")
  done
  a=$(printf '%s\n' "${on[@]}" | median); b=$(printf '%s\n' "${off[@]}" | median)
  echo "| $mode | $a | $b | $(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.2fx", a / b}') |"
done
