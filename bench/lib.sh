# Shared by the HTTP benchmark scripts (run.sh, http.sh, idle_rss.sh):
# one way to start and wait for a server, load it, count its system calls
# and measure its memory, so that every script's figures mean the same.
# Source it after `cd` to the repository root and after setting `tmp` (a
# scratch directory the caller removes).

need() { command -v "$1" >/dev/null 2>&1; }

# install_tools PKG... -> installs Debian packages when a tool is missing
# (nginx-light where it exists, else nginx).
install_tools() {
  apt-get update -qq >/dev/null
  apt-get install -y -qq "$@" >/dev/null 2>&1 ||
    apt-get install -y -qq "${@/nginx-light/nginx}" >/dev/null
}

# nginx_conf FILE PORT CONNECTIONS [LOCATIONS] -> the peer configuration:
# one worker, access log off, `return 200 "Hello, World!"`, keep-alive
# without limits; LOCATIONS (nginx text) added to the server beside it.
nginx_conf() {
  cat > "$1" <<CONF
worker_processes 1;
worker_rlimit_nofile $(( $3 + 1000 ));
daemon off;
pid $tmp/nginx.pid;
error_log $tmp/error.log;
events { worker_connections $(( $3 + 1000 )); }
http {
  access_log off;
  keepalive_requests 1000000000;
  keepalive_timeout 300s;
  client_body_temp_path $tmp;
  server {
    listen 127.0.0.1:$2;
    location / { default_type text/plain; return 200 "Hello, World!"; }
    ${4:-}
  }
}
CONF
}

# wait_up URL -> succeeds once URL answers (10 s at most).
wait_up() {
  local _
  # -k: a probe, not a check of the certificate (self-signed servers too).
  for _ in $(seq 200); do curl -sk -o /dev/null "$1" && return 0; sleep 0.05; done
  return 1
}

# nginx_worker -> the pid of the nginx worker (the process doing the work).
nginx_worker() { pgrep -P "$(cat "$tmp/nginx.pid")" | head -1; }

hz=$(getconf CLK_TCK)
median() { sort -g | awk '{a[NR]=$1} END{ if (NR) print a[int((NR+1)/2)]; else print "n/a" }'; }
to_ms() { awk '{v=$1; if (v ~ /us$/) {sub(/us/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v*=1000}; printf "%.3f", v}'; }

# wrk_load URL PID MODE SECONDS [WRK_CPU] -> "rps p50 p99 per_cpu_s user_us
# sys_us": wrk -t1 -c64 (16-deep pipelining when MODE is pipelined), and
# the server's CPU time per request split into user and kernel
# microseconds (the kernel's share is a floor no user-space work
# removes). wrk does not time pipelined requests: p50/p99 are n/a then.
wrk_load() {
  local args=(-t1 -c64 -d"$4s" --latency) u0 s0 u1 s1 o
  [ "$3" = pipelined ] && args+=(-s bench/http/pipeline.lua)
  read -r u0 s0 < <(awk '{print $14, $15}' "/proc/$2/stat")
  o=$(taskset -c "${5:-1}" wrk "${args[@]}" "$1")
  read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$2/stat")
  local rps reqs p50 p99
  rps=$(echo "$o" | awk '/Requests\/sec/{printf "%.0f", $2}')
  reqs=$(echo "$o" | awk '/requests in/{print $1}')
  p50=$(echo "$o" | awk '$1=="50%"{print $2}' | to_ms)
  p99=$(echo "$o" | awk '$1=="99%"{print $2}' | to_ms)
  [ "$3" = pipelined ] && { p50="n/a"; p99="n/a"; }
  echo "$rps $p50 $p99 $(awk -v r="$reqs" -v u="$((u1 - u0))" -v s="$((s1 - s0))" -v hz="$hz" 'BEGIN{c=(u+s)/hz; if (c > 0 && r > 0) printf "%.0f %.3f %.3f", r/c, u/hz/r*1e6, s/hz/r*1e6; else print "0 n/a n/a"}')"
}

# perf_syscalls URL PID MODE -> system calls per request: perf counts the
# server's system calls over a whole 3 s wrk run, divided by the requests
# wrk completed (exact, not a rate times a window; the run's 64 connects
# and closes, and the few requests in flight at its end, answered but not
# counted by wrk, are lost in the division: under 0.5%).
perf_syscalls() {
  local args=(-t1 -c64 -d3s) p n reqs
  [ "$3" = pipelined ] && args+=(-s bench/http/pipeline.lua)
  rm -f "$tmp/perf" # never the previous count
  perf stat -x, -e raw_syscalls:sys_enter -p "$2" -o "$tmp/perf" & p=$!
  sleep 0.3
  reqs=$(taskset -c 1 wrk "${args[@]}" "$1" | awk '/requests in/{print $1}')
  kill -INT "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true
  n=$(awk -F, '/raw_syscalls/{print $1}' "$tmp/perf")
  awk -v n="$n" -v r="$reqs" 'BEGIN{ if (n ~ /^[0-9]+$/ && r > 0) printf "%.3f", n/r; else print "n/a" }'
}

# rss_per_idle PORT PID N PATH [CAFILE] -> KiB of server RSS per idle
# keep-alive connection: N connections (bench/peers' idle_conns; over TLS
# trusting CAFILE when given) each get one answer to GET PATH and stay
# open; the server's VmRSS growth divided by N.
rss_per_idle() {
  local before after ready=""
  before=$(awk '/^VmRSS/{print $2}' "/proc/$2/status")
  coproc IDLE { bench/peers/target/release/idle_conns "$1" "$3" "$4" ${5:+"$5"}; }
  read -r -t 60 ready <&"${IDLE[0]}" || true
  if [ "$ready" != ready ]; then echo "n/a"; kill "$IDLE_PID" 2>/dev/null || true; return; fi
  sleep 0.5
  after=$(awk '/^VmRSS/{print $2}' "/proc/$2/status")
  exec {IDLE[1]}>&-
  wait "$IDLE_PID" 2>/dev/null || true
  awk -v a="$before" -v b="$after" -v n="$3" 'BEGIN{ printf "%.2f", (b-a)/n }'
}
