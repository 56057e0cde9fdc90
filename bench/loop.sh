#!/usr/bin/env bash
# Loop benchmarks: Cyclone's IOLoop vs tokio current_thread, in one run.
#
#   bench/loop.sh [--repeat N] [--backends "epoll poll select"]
#
# Builds bench/loop (tokio lives only there), runs every case pinned to one
# CPU (the benchmarks are single-threaded: both ping-pong ends share one
# loop), N times interleaved, and prints medians and ratios. Then counts
# system calls per ping-pong round trip with perf's syscall tracepoint
# (strace -c if perf cannot), installing perf/strace if missing.
set -euo pipefail
cd "$(dirname "$0")/loop"
repeat=5
backends="epoll"
while [ $# -gt 0 ]; do
  case "$1" in
    --repeat) repeat="$2"; shift 2 ;;
    --backends) backends="$2"; shift 2 ;;
    *) echo "usage: $0 [--repeat N] [--backends \"epoll poll select\"]" >&2; exit 2 ;;
  esac
done

need() { command -v "$1" >/dev/null 2>&1; }
if ! need perf || ! need strace; then
  if need apt-get; then
    apt-get update -qq >/dev/null
    apt-get install -y -qq linux-perf strace >/dev/null || true
  fi
fi

cargo build --release --quiet
bin=target/release/cyclone-loop-bench
cpu=0

echo "# Cyclone loop benchmarks"
echo
echo "- date: $(date -u +%Y-%m-%dT%H:%MZ)"
echo "- cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') ($(nproc) cores), kernel $(uname -r)"
echo "- command: bench/loop.sh --repeat $repeat --backends \"$backends\" (pinned with taskset -c $cpu)"
echo
for b in $backends; do
  CYCLONE_POLLER=$b taskset -c $cpu "$bin" all --repeat "$repeat"
  echo
done

echo "## System calls per ping-pong round trip (200,000 round trips)"
echo
echo "| implementation | syscalls | per round trip |"
echo "|---|---:|---:|"
for c in "cyclone handlers" "cyclone Async<T>" "tokio UnixStream"; do
  n=""
  if need perf; then
    n=$(taskset -c $cpu perf stat -x, -e raw_syscalls:sys_enter "$bin" one "$c" 2>&1 >/dev/null \
        | awk -F, '/raw_syscalls/{print $1}' | grep -E '^[0-9]+$' || true)
  fi
  if [ -z "$n" ] && need strace; then
    n=$(strace -f -c -o /dev/stdout taskset -c $cpu "$bin" one "$c" 2>/dev/null | awk '/total/{print $(NF-2)}' | tail -1)
  fi
  [ -n "$n" ] || { echo "| $c | n/a | n/a |"; continue; }
  echo "| $c | $n | $(awk -v n="$n" 'BEGIN{printf "%.2f", n/200000}') |"
done
