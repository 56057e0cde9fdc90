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
# (perf's syscall tracepoint on the server during a run).
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
need() { command -v "$1" >/dev/null 2>&1; }
if ! need wrk || ! need nginx || ! need perf; then
  apt-get update -qq >/dev/null
  apt-get install -y -qq wrk nginx-light linux-perf >/dev/null 2>&1 || apt-get install -y -qq wrk nginx linux-perf >/dev/null
fi
cargo build --release --quiet
port=18080
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT

cat > "$tmp/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $tmp/nginx.pid;
error_log $tmp/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000000;
  client_body_temp_path $tmp;
  server {
    listen 127.0.0.1:$((port + 1));
    location / { return 200 "Hello, World!"; }
  }
}
CONF

declare -A PORT=([cyclone]=$port [nginx]=$((port + 1))) PID=()
start() { # name -> sets PID[name] (the process doing the work)
  local p=${PORT[$1]}
  case "$1" in
    cyclone) taskset -c 0 target/release/cyclone serve --port "$p" --log-level warn > "$tmp/out" 2>&1 & PID[cyclone]=$! ;;
    nginx) taskset -c 0 nginx -c "$tmp/nginx.conf" > "$tmp/out" 2>&1 & ;;
  esac
  for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$p/hello" && break; sleep 0.05; done
  if [ "$1" = nginx ]; then
    local master; master=$(cat "$tmp/nginx.pid"); PID[nginx]=$(pgrep -P "$master" | head -1)
  fi
}
stop_all() {
  kill "$(cat "$tmp/nginx.pid")" "${PID[cyclone]}" 2>/dev/null || true
  wait 2>/dev/null || true
}
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
median() { sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
hz=$(getconf CLK_TCK)

# run NAME MODE -> prints "rps p99_ms per_cpu_s"
run() {
  local args=(-t1 -c64 -d"${seconds}s" --latency) pid=${PID[$1]}
  [ "$2" = pipelined ] && args+=(-s bench/http/pipeline.lua)
  local t0 t1 out
  t0=$(cpu_ticks "$pid")
  out=$(taskset -c 1 wrk "${args[@]}" "http://127.0.0.1:${PORT[$1]}/hello")
  t1=$(cpu_ticks "$pid")
  local rps reqs p99
  rps=$(echo "$out" | awk '/Requests\/sec/{print $2}')
  reqs=$(echo "$out" | awk '/requests in/{print $1}')
  p99=$(echo "$out" | awk '$1=="99%"{v=$2; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; print v}')
  # wrk does not time pipelined requests (it prints 0): say so.
  [ "$2" = pipelined ] && p99="n/a"
  echo "$rps $p99 $(awk -v r="$reqs" -v a="$t0" -v b="$t1" -v hz="$hz" 'BEGIN{c=(b-a)/hz; printf "%.0f", (c>0)?r/c:0}')"
}

syscalls_per_request() { # NAME MODE
  local args=(-t1 -c64 -d3s) pid=${PID[$1]}
  [ "$2" = pipelined ] && args+=(-s bench/http/pipeline.lua)
  taskset -c 1 wrk "${args[@]}" "http://127.0.0.1:${PORT[$1]}/hello" > "$tmp/wrk" &
  local w=$!
  sleep 0.5
  local n
  n=$(perf stat -x, -e raw_syscalls:sys_enter -p "$pid" -- sleep 2 2>&1 >/dev/null | awk -F, '/raw_syscalls/{print $1}')
  wait "$w"
  local rps
  rps=$(awk '/Requests\/sec/{print $2}' "$tmp/wrk")
  awk -v n="$n" -v r="$rps" 'BEGIN{ if (n ~ /^[0-9]+$/ && r > 0) printf "%.2f", n/(r*2); else print "n/a" }'
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
    sc=$(syscalls_per_request "$name" "$mode")
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
