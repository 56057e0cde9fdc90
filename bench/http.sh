#!/usr/bin/env bash
# HTTP: the cyclone demo site (GET /hello through the web layer) vs nginx (1 worker, access log off,
# `return 200`), side by side in one run.
#
#   bench/http.sh [--repeat N] [--seconds S]
#
# Installs wrk, nginx and perf through apt if missing. Both servers run
# at once, pinned to CPU 0, and the repetitions alternate between them;
# wrk (1 thread, 64 connections) runs on CPU 1. Reports, per
# server: keep-alive and 16-deep pipelined requests/s (median of N), p99,
# requests per server CPU-second (wrk saturates its own core near 160 k
# req/s here, so this is the fair figure) and system calls per request
# (perf's syscall tracepoint on the server over a whole wrk run). The
# measures are bench/lib.sh's, shared with bench/run.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
repeat=3; seconds=5
while [ $# -gt 0 ]; do
  case "$1" in
    --repeat) repeat="$2"; shift 2 ;;
    --seconds) seconds="$2"; shift 2 ;;
    *) echo "usage: $0 [--repeat N] [--seconds S]" >&2; exit 2 ;;
  esac
done
port=18080
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; [ -f "$tmp/nginx.pid" ] && kill "$(cat "$tmp/nginx.pid")" 2>/dev/null; rm -rf "$tmp"' EXIT
. bench/lib.sh
if ! need wrk || ! need nginx || ! need perf; then
  install_tools wrk nginx-light linux-perf
fi
cargo build --release --quiet --bin cyclone
# 64 connections of load; the rest is headroom.
nginx_conf "$tmp/nginx.conf" $((port + 1)) 3096

declare -A PORT=([cyclone]=$port [nginx]=$((port + 1))) PID=()
url() { echo "http://127.0.0.1:${PORT[$1]}/hello"; }
start() { # name -> sets PID[name] (the process doing the work)
  case "$1" in
    cyclone) taskset -c 0 target/release/cyclone serve --port "${PORT[cyclone]}" --log-level warn > "$tmp/out" 2>&1 & PID[cyclone]=$! ;;
    nginx) taskset -c 0 nginx -c "$tmp/nginx.conf" > "$tmp/out" 2>&1 & ;;
  esac
  wait_up "$(url "$1")" || { echo "$1 did not answer: $(tail -c 300 "$tmp/out")" >&2; exit 1; }
  if [ "$1" = nginx ]; then PID[nginx]=$(nginx_worker); fi
}
stop_all() {
  kill "$(cat "$tmp/nginx.pid")" "${PID[cyclone]}" 2>/dev/null || true
  wait 2>/dev/null || true
}

# run NAME MODE -> prints "rps p99_ms per_cpu_s" (lib.sh's wrk_load)
run() {
  local rps p99 eff
  read -r rps _ p99 eff _ < <(wrk_load "$(url "$1")" "${PID[$1]}" "$2" "$seconds")
  echo "$rps $p99 $eff"
}

echo "# HTTP benchmark: Cyclone vs nginx"
echo
echo "- date: $(date -u +%Y-%m-%dT%H:%MZ); cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') ($(nproc) cores); kernel $(uname -r); nginx $(nginx -v 2>&1 | cut -d/ -f2); wrk $(wrk -v 2>&1 | head -1 | awk '{print $2}')"
echo "- command: bench/http.sh --repeat $repeat --seconds $seconds (server on CPU 0, wrk -t1 -c64 on CPU 1; repetitions alternate between the servers)"
echo
declare -A R
# Both servers run side by side (the idle one costs nothing) and the
# repetitions alternate between them, so drift in this shared machine's
# speed during the run moves both figures alike.
start cyclone
start nginx
for mode in keepalive pipelined; do
  declare -A rpss=() p99s=() effs=()
  for _ in $(seq "$repeat"); do
    for name in cyclone nginx; do
      read -r rps p99 eff < <(run "$name" "$mode")
      rpss[$name]+="$rps "; p99s[$name]+="$p99 "; effs[$name]+="$eff "
    done
  done
  for name in cyclone nginx; do
    sc=$(perf_syscalls "$(url "$name")" "${PID[$name]}" "$mode")
    R[$name,$mode]="$(printf '%s\n' ${rpss[$name]} | median) $(printf '%s\n' ${p99s[$name]} | median) $(printf '%s\n' ${effs[$name]} | median) $sc"
  done
  unset rpss p99s effs
done
stop_all
echo "| server | mode | req/s (median) | p99 ms | req per server CPU-s | vs nginx (CPU-s) | syscalls/req |"
echo "|---|---|---:|---:|---:|---:|---:|"
for mode in keepalive pipelined; do
  read -r _ _ ngx_eff _ <<< "${R[nginx,$mode]}"
  for name in cyclone nginx; do
    read -r rps p99 eff sc <<< "${R[$name,$mode]}"
    echo "| $name | $mode | $rps | $p99 | $eff | $(awk -v a="$eff" -v b="$ngx_eff" 'BEGIN{printf "%.2fx", a/b}') | $sc |"
  done
done
