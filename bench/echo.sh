#!/usr/bin/env bash
# TCP echo: Cyclone vs tokio current_thread, side by side in one run.
#
#   bench/echo.sh [--repeat N] [--seconds S] [--idle CONNS]
#
# Each server runs pinned to CPU 0, the load client to CPU 1 (taskset);
# 64 connections, 64-byte messages, S seconds, N runs (median reported).
# Then, on a fresh server, RSS per idle connection: VmRSS before and after
# the client opens CONNS connections (one echo each) and holds them.
set -euo pipefail
cd "$(dirname "$0")/echo"
repeat=3; seconds=5; idle=5000
while [ $# -gt 0 ]; do
  case "$1" in
    --repeat) repeat="$2"; shift 2 ;;
    --seconds) seconds="$2"; shift 2 ;;
    --idle) idle="$2"; shift 2 ;;
    *) echo "usage: $0 [--repeat N] [--seconds S] [--idle CONNS]" >&2; exit 2 ;;
  esac
done
ulimit -n "$(( idle * 2 + 1000 ))" 2>/dev/null || true
cargo build --release --quiet
bin=target/release
port=19000

start_server() { # impl -> sets $pid
  taskset -c 0 "$bin/echo-server" "$1" "$port" > /tmp/echo-server.out &
  pid=$!
  for _ in $(seq 100); do grep -q READY /tmp/echo-server.out 2>/dev/null && return; sleep 0.05; done
  echo "server $1 did not start" >&2; exit 1
}
rss_kib() { awk '/VmRSS/{print $2}' "/proc/$1/status"; }
median() { sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }

echo "# Cyclone TCP echo benchmark"
echo
echo "- date: $(date -u +%Y-%m-%dT%H:%MZ); cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') ($(nproc) cores); kernel $(uname -r)"
echo "- command: bench/echo.sh --repeat $repeat --seconds $seconds --idle $idle (server on CPU 0, client on CPU 1)"
echo
echo "| server | messages/s (median of $repeat) | p50 µs | p99 µs | server CPU s | msgs per server CPU-s | RSS per idle conn (KiB) |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for impl in cyclone tokio; do
  rates=(); p50s=(); p99s=(); effs=(); cpus=()
  for _ in $(seq "$repeat"); do
    start_server "$impl"
    t0=$(awk '{print $14+$15}' "/proc/$pid/stat")
    out=$(taskset -c 1 "$bin/echo-client" load "$port" 64 64 "$seconds")
    t1=$(awk '{print $14+$15}' "/proc/$pid/stat")
    kill "$pid"; wait "$pid" 2>/dev/null || true
    hz=$(getconf CLK_TCK)
    cpu=$(awk -v a="$t0" -v b="$t1" -v hz="$hz" 'BEGIN{printf "%.2f", (b-a)/hz}')
    rate=$(echo "$out" | awk '{print $2}'); msgs=$(echo "$out" | awk '{print $8}')
    rates+=("$rate"); p50s+=("$(echo "$out" | awk '{print $4}')"); p99s+=("$(echo "$out" | awk '{print $6}')")
    cpus+=("$cpu"); effs+=("$(awk -v m="$msgs" -v c="$cpu" 'BEGIN{printf "%.0f", (c>0)?m/c:0}')")
  done
  start_server "$impl"
  before=$(rss_kib "$pid")
  taskset -c 1 "$bin/echo-client" idle "$port" "$idle" 4 > /tmp/echo-idle.out &
  cpid=$!
  for _ in $(seq 400); do grep -q HOLDING /tmp/echo-idle.out 2>/dev/null && break; sleep 0.05; done
  sleep 0.5
  after=$(rss_kib "$pid")
  wait "$cpid" || true
  kill "$pid"; wait "$pid" 2>/dev/null || true
  per=$(awk -v a="$before" -v b="$after" -v n="$idle" 'BEGIN{printf "%.2f", (b-a)/n}')
  echo "| $impl | $(printf '%s\n' "${rates[@]}" | median) | $(printf '%s\n' "${p50s[@]}" | median) | $(printf '%s\n' "${p99s[@]}" | median) | $(printf '%s\n' "${cpus[@]}" | median) | $(printf '%s\n' "${effs[@]}" | median) | $per |"
done
