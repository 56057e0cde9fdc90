#!/usr/bin/env bash
# Load balancing: three `cyclone serve` instances behind nginx, then behind
# HAProxy (PROXY protocol v2), each in a network namespace of its own with
# its own address, on this one machine; the load comes from a sixth.
#
#   bench/lb.sh [SECONDS]        (default 20: seconds of load per phase)
#   bench/lb.sh --print-configs  (the nginx and HAProxy configurations, then exit)
#
# Topology: a bridge in the namespace cyc-lb-sw joins, over veth pairs,
#   cyc-lb-app1 10.77.0.11   cyc-lb-app2 10.77.0.12   cyc-lb-app3 10.77.0.13
#   cyc-lb-bal  10.77.0.2    (nginx on :8000, HAProxy on :8001, its stats on :8404)
#   cyc-lb-cli  10.77.0.3    (wrk)
# The instances listen on :8080 (plain HTTP, behind nginx) and :8081
# (--proxy-protocol, behind HAProxy's send-proxy-v2). Servers and
# balancers run on CPU 0, wrk (-t1 -c32, keep-alive, GET /hello) on CPU 1.
#
# For each balancer, three phases of SECONDS of load:
#   steady   all three instances up: requests/s and p99;
#   kill     halfway, `kill -9` of app2, down for the rest of the phase:
#            the balancer retries the idempotent requests it had in flight
#            there on another instance, so none fails (restarted after);
#   rolling  halfway, `kill -HUP` of each instance in turn, the next one
#            once the previous restart is complete (the old process has
#            exited and a new one listens in its place; at most 45 s
#            each); the load goes on, in SECONDS-long wrk runs, until the
#            last restart is done: no request fails, no connection is
#            reset, and each new process answers.
# "failed" is wrk's non-2xx answers plus its socket errors (connect, read,
# write, timeout). Upstream errors the balancer saw and retried (nginx's
# error log, HAProxy's retry and redispatch counters) are reported too:
# they are not failures. Each phase is one check; the table goes to stdout
# and to LB_OUT (default: lb.md in a results directory that is kept, with
# the configurations and wrk's outputs), then `lb: N passed, M failed`;
# exit 1 if any failed.
#
# Where network namespaces cannot be created (no CAP_NET_ADMIN, a
# sandbox), it says `lb: skipped: ...` and exits 0; with LB_REQUIRE=1,
# exit 1 instead. Env: CYCLONE (a built binary to use instead of cargo
# build), CYCLONE_ARGS (more `cyclone serve` options, e.g. "--threads 2"),
# LB_DIR (the results directory), LB_OUT (the table's file). Installs
# Debian's nginx, haproxy and wrk if missing. Everything it starts is
# stopped, and the namespaces deleted, on exit; namespaces left by an
# earlier run that was killed are cleaned up first.
set -euo pipefail
cd "$(dirname "$0")/.."

print_configs=0
case "${1:-}" in
  --print-configs) print_configs=1 ;;
  -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
esac
secs=20
[ $print_configs = 1 ] || secs="${1:-20}"
if ! [[ "$secs" =~ ^[0-9]+$ ]] || [ "$secs" -lt 2 ]; then echo "usage: bench/lb.sh [SECONDS (2 or more)] | --print-configs" >&2; exit 2; fi
half=$(( secs / 2 ))

pfx=cyc-lb
net=10.77.0
ns_sw=$pfx-sw ns_bal=$pfx-bal ns_cli=$pfx-cli
apps=("$pfx-app1" "$pfx-app2" "$pfx-app3")
app_ip=("$net.11" "$net.12" "$net.13")
ip_bal=$net.2 ip_cli=$net.3
nginx_port=8000 haproxy_port=8001 stats_port=8404
plain_port=8080 proxy_port=8081
conns=32
killed=1 # app2, in the kill phase
restart_limit=45 # s per instance: the new process has 30 s to report ready, the old one drains for up to 10 s
read -ra extra <<< "${CYCLONE_ARGS:-}"

tmp=$(mktemp -d)
chmod 755 "$tmp" # nginx's workers (nobody) reach its temporary directories
. bench/lib.sh

# --- The configurations (nginx's paths are relative to its -p prefix). ---

nginx_lb_conf() {
  cat > "$1" <<CONF
# nginx in front of three cyclone instances (bench/lb.sh).
worker_processes 1;
daemon off;
pid nginx.pid;
error_log nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path client_body;
  proxy_temp_path proxy;
  keepalive_requests 1000000;
  upstream cyclone {
    # max_fails=0: an instance is never taken out of the rotation, a
    # request that fails there is retried on the next one. With the
    # default (max_fails=1 fail_timeout=10s), the idle connections an
    # instance closes as it restarts (a request sent on one as it closes
    # fails) take it out, and a rolling restart quicker than fail_timeout
    # takes all three out: "no live upstreams", 502 for every request.
    server ${app_ip[0]}:$plain_port max_fails=0;
    server ${app_ip[1]}:$plain_port max_fails=0;
    server ${app_ip[2]}:$plain_port max_fails=0;
    # Idle keep-alive connections to the instances, per worker.
    keepalive $conns;
  }
  server {
    listen $ip_bal:$nginx_port;
    location / {
      proxy_pass http://cyclone;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_connect_timeout 1s;
      proxy_send_timeout 10s;
      proxy_read_timeout 10s;
      # Another instance on a connection error (refused, reset, closed
      # before the answer), a timeout or a 502/503/504; nginx never
      # retries a POST, LOCK or PATCH that was sent (no "non_idempotent").
      proxy_next_upstream error timeout http_502 http_503 http_504;
      proxy_next_upstream_tries 3;
      proxy_next_upstream_timeout 10s;
    }
  }
}
CONF
}

haproxy_cfg() {
  cat > "$1" <<CONF
# HAProxy in front of three cyclone instances started with --proxy-protocol
# (bench/lb.sh).
global
  nbthread 1
  maxconn 4096
  log stdout format raw local0

defaults
  mode http
  log global
  option httplog
  # Only what went wrong is logged: errors, retries, redispatches.
  option dontlog-normal
  option dontlognull
  timeout connect 1s
  timeout client 30s
  timeout server 10s
  timeout http-request 10s
  timeout http-keep-alive 30s
  # Up to 3 retries, each one on another instance (redispatch 1), on a
  # refused or reset connection, an empty or broken answer, a timeout or
  # a 500/502/503/504 (but see disable-l7-retry below).
  retries 3
  option redispatch 1
  retry-on all-retryable-errors
  # A connection that began with a PROXY header carries one client's
  # requests only. "http-reuse safe" (the default) rebalances every request
  # and so opens a new server connection for two requests in three here
  # (15 k req/s instead of 37 k on loopback); "never" keeps each client's
  # connections private to it, and prefer-last-server keeps its requests
  # on them. A failed request is still retried elsewhere.
  http-reuse never
  option prefer-last-server

frontend web
  bind $ip_bal:$haproxy_port
  default_backend cyclone

backend cyclone
  balance roundrobin
  # What is not a GET or HEAD is retried only if it never left (a refused
  # connection), as nginx does: HAProxy itself would replay any method.
  http-request disable-l7-retry unless METH_GET
  option httpchk
  http-check send meth GET uri /hello
  default-server inter 500ms fall 2 rise 2
  server app1 ${app_ip[0]}:$proxy_port send-proxy-v2 check
  server app2 ${app_ip[1]}:$proxy_port send-proxy-v2 check
  server app3 ${app_ip[2]}:$proxy_port send-proxy-v2 check

frontend stats
  bind $ip_bal:$stats_port
  stats enable
  stats uri /stats
CONF
}

if [ $print_configs = 1 ]; then
  nginx_lb_conf "$tmp/nginx.conf"; haproxy_cfg "$tmp/haproxy.cfg"
  echo "# nginx.conf (nginx -p PREFIX -c nginx.conf)"; cat "$tmp/nginx.conf"
  echo; echo "# haproxy.cfg (haproxy -db -f haproxy.cfg)"; cat "$tmp/haproxy.cfg"
  rm -rf "$tmp"; exit 0
fi

# --- Namespaces: clean up, skip where they cannot be made. ---

alive() { [ -e "/proc/$1" ] && [ "$(awk '{print $3}' "/proc/$1/stat" 2> /dev/null)" != Z ]; }
# ns_stop NS... -> every process in these namespaces ended: SIGTERM, then
# SIGKILL for what is left after 3 s.
ns_stop() {
  local ns p left
  for ns in "$@"; do for p in $(ip netns pids "$ns" 2> /dev/null); do kill -TERM "$p" 2> /dev/null || true; done; done
  for _ in $(seq 30); do
    left=""
    for ns in "$@"; do for p in $(ip netns pids "$ns" 2> /dev/null); do alive "$p" && left=1; done; done
    [ -z "$left" ] && return 0
    sleep 0.1
  done
  for ns in "$@"; do for p in $(ip netns pids "$ns" 2> /dev/null); do kill -KILL "$p" 2> /dev/null || true; done; done
  sleep 0.2
}
teardown() {
  local mine
  mine=$(ip netns list 2> /dev/null | awk '{print $1}' | grep "^$pfx-" || true)
  [ -n "$mine" ] || return 0
  # shellcheck disable=SC2086
  ns_stop $mine
  for ns in $mine; do ip netns del "$ns" 2> /dev/null || true; done
}
restarter=""
cleanup() {
  if [ -n "$restarter" ]; then kill "$restarter" 2> /dev/null || true; fi
  teardown
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

skip() {
  echo "lb: skipped: network namespaces cannot be created here ($1)"
  [ "${LB_REQUIRE:-0}" = 1 ] && exit 1
  exit 0
}
if ! need ip; then
  [ "$(id -u)" = 0 ] || skip "no ip command (iproute2), and not root to install it"
  install_tools iproute2
fi
teardown # what an earlier run, killed, left
# The commands that build the topology, one a line.
topology() {
  echo "ip netns add $ns_sw"
  echo "ip -n $ns_sw link add br0 type bridge"
  echo "ip -n $ns_sw link set br0 up"
  local i names=("${apps[@]}" "$ns_bal" "$ns_cli") ips=("${app_ip[@]}" "$ip_bal" "$ip_cli")
  for i in "${!names[@]}"; do
    echo "ip netns add ${names[$i]}"
    echo "ip -n ${names[$i]} link set lo up"
    echo "ip -n $ns_sw link add p-${names[$i]#"$pfx-"} type veth peer name eth0 netns ${names[$i]}"
    echo "ip -n $ns_sw link set p-${names[$i]#"$pfx-"} master br0 up"
    echo "ip -n ${names[$i]} addr add ${ips[$i]}/24 dev eth0"
    echo "ip -n ${names[$i]} link set eth0 up"
  done
}
while read -r c; do
  # shellcheck disable=SC2086
  err=$($c 2>&1) || skip "$c: ${err:-exit status $?}"
done < <(topology)

# --- Tools and binary. ---

missing=()
need nginx || missing+=(nginx-light)
need haproxy || missing+=(haproxy)
need wrk || missing+=(wrk)
need curl || missing+=(curl)
[ ${#missing[@]} = 0 ] || install_tools "${missing[@]}"
if [ -n "${CYCLONE:-}" ]; then
  cyclone=$(realpath "$CYCLONE")
else
  cargo build --release --quiet --bin cyclone
  cyclone=$PWD/target/release/cyclone
fi
res=${LB_DIR:-$(mktemp -d /tmp/cyclone-lb.XXXXXX)}
mkdir -p "$res"
out=${LB_OUT:-$res/lb.md}
wrk_cpu=$(( $(nproc) > 1 ? 1 : 0 ))
# No process of this run outlives it by much, even if its EXIT trap never runs.
budget=$(( 12 * secs + 6 * restart_limit + 300 ))
ulimit -n 65536 2> /dev/null || true

in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
# listener_pid NS PORT [OTHER_THAN] -> the cyclone process listening on
# PORT in NS (the parent-most if several share the socket), other than
# OTHER_THAN; empty if none.
listener_pid() {
  local pids p pp
  pids=$(in_ns "$1" ss -Hltnp "sport = :$2" 2> /dev/null | grep -o '"cyclone",pid=[0-9]*' | grep -o '[0-9]*$' | sort -un | grep -vx "${3:-0}" || true)
  for p in $pids; do
    pp=$(awk '{print $4}' "/proc/$p/stat" 2> /dev/null) || continue
    grep -qx "$pp" <<< "$pids" || { alive "$p" && echo "$p" && return 0; }
  done
}
# probe NS URL [CURL_ARGS] -> succeeds if URL answers 200 from NS.
probe() {
  local ns=$1 url=$2; shift 2
  [ "$(in_ns "$ns" curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$@" "$url")" = 200 ]
}

# answers I -> succeeds if instance I answers directly (within 5 s).
answers() {
  for _ in $(seq 5); do
    probe "$ns_cli" "http://${app_ip[$1]}:$port/hello" "${curl_proxy[@]}" && return 0
    sleep 0.5
  done
  return 1
}

declare -a pid=()
port="" proxy_args=() curl_proxy=()
# start_instance I -> pid[I]: `cyclone serve` in apps[I] on $port, on CPU 0.
start_instance() {
  local ns=${apps[$1]}
  in_ns "$ns" taskset -c 0 timeout -s KILL "$budget" "$cyclone" serve --address 0.0.0.0 --port "$port" \
    --access-log off --log-level warn "${proxy_args[@]}" "${extra[@]}" >> "$tmp/$ns-$port.log" 2>&1 &
  disown
  for _ in $(seq 200); do
    pid[$1]=$(listener_pid "$ns" "$port")
    [ -n "${pid[$1]}" ] && probe "$ns_cli" "http://${app_ip[$1]}:$port/hello" "${curl_proxy[@]}" && return 0
    sleep 0.05
  done
  echo "lb: ${ns#"$pfx-"}: cyclone did not start on :$port: $(tail -c 300 "$tmp/$ns-$port.log")"
  return 1
}

# --- Load and its figures. ---

wrk_args() { echo "-t1 -c$conns -d${1}s --latency $2"; }
# load OUT URL SECONDS -> wrk's output in OUT (from the client namespace).
load() {
  # shellcheck disable=SC2046
  in_ns "$ns_cli" timeout $(( $3 + 30 )) taskset -c "$wrk_cpu" wrk $(wrk_args "$3" "$2") > "$1" 2>&1 || true
}
# figures WRK_OUTPUT... -> "requests seconds rps p99_ms non2xx connect read
# write timeout runs_without_figures" over one or more wrk runs (p99: the
# worst run's).
figures() {
  awk 'function ms(v,  n) { n = v; sub(/[a-z]+$/, "", n)
         if (v ~ /us$/) return n / 1000; if (v ~ /ms$/) return n; if (v ~ /m$/) return n * 60000; return n * 1000 }
       / requests in / { r += $1; d = $4; sub(/,$/, "", d); t += ms(d) / 1000; done++ }
       $1 == "99%" { v = ms($2); if (v > p99) p99 = v }
       /Non-2xx or 3xx/ { n += $NF }
       /Socket errors/ { gsub(",", ""); c += $4; rd += $6; w += $8; to += $10 }
       END { printf "%d %.2f %d %.2f %d %d %d %d %d %d\n", r, t, (t > 0 ? r / t : 0), p99, n, c, rd, w, to, ARGC - 1 - done }' "$@"
}

rows=() passes=0 fails=0 failed_checks=()
# record BALANCER PHASE COMMAND NOTES OK WRK_OUTPUT... -> a row of the
# table and a check, passed if OK=1 and nothing failed.
record() {
  local bal=$1 phase=$2 cmd=$3 notes=$4 ok=$5 reqs rps p99 non c r w to missing failed
  shift 5
  read -r reqs _ rps p99 non c r w to missing < <(figures "$@")
  failed=$(( non + c + r + w + to ))
  if [ "$missing" != 0 ] || [ "$reqs" = 0 ]; then ok=0; notes="wrk gave no figures ($(tail -c 200 "$1" | tr '\n|' '  ')); $notes"; fi
  [ "$failed" = 0 ] || ok=0
  rows+=("| $bal | $phase | $rps | $p99 | $reqs | $failed | $c/$r/$w/$to | $notes | \`$cmd\` |")
  if [ "$ok" = 1 ]; then
    passes=$((passes + 1)); echo "lb: $bal $phase: passed: $reqs requests, $rps req/s, p99 $p99 ms, none failed; $notes"
  else
    fails=$((fails + 1)); failed_checks+=("$bal $phase")
    echo "lb: $bal $phase: FAILED: $reqs requests, $failed failed (non-2xx $non, socket errors connect $c read $r write $w timeout $to); $notes"
  fi
  cp "$@" "$res/" 2> /dev/null || true
}

# What the balancer saw of the instances' errors: counters now, and since then.
bal_counts() {
  case "$bal" in
    nginx) awk '/prematurely closed|reset by peer|Broken pipe/ {r++} /refused/ {c++} /no live upstreams/ {n++} /\[(error|crit|alert)\]/ {e++}
                END {printf "%d %d %d %d\n", r, c, n, e}' "$tmp/nginx-error.log" 2> /dev/null || echo "0 0 0 0" ;;
    haproxy) in_ns "$ns_cli" curl -s --max-time 2 "http://$ip_bal:$stats_port/stats;csv" |
      awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) { h = $i; sub(/^# /, "", h); col[h] = i } }
               $1 == "cyclone" && $2 == "BACKEND" { printf "%d %d %d %d\n", $col["wretr"], $col["wredis"], $col["econ"], $col["eresp"] }' ;;
  esac
}
bal_seen() { # BEFORE AFTER -> words
  local a b
  read -ra a <<< "$1"; read -ra b <<< "$2"
  case "$bal" in
    nginx) echo "nginx error log: $(( b[0] - a[0] )) upstream resets/early closes, $(( b[1] - a[1] )) refused (retried), $(( b[2] - a[2] )) no live upstreams, $(( b[3] - a[3] )) error lines in all" ;;
    haproxy) echo "HAProxy: $(( b[0] - a[0] )) retries, $(( b[1] - a[1] )) redispatches, $(( b[2] - a[2] )) connection errors, $(( b[3] - a[3] )) response errors" ;;
  esac
}
# servers_up -> succeeds once HAProxy's checks see every instance UP (10 s
# at most); nginx has no such state to wait for.
servers_up() {
  [ "$bal" = haproxy ] || return 0
  for _ in $(seq 100); do
    [ "$(in_ns "$ns_cli" curl -s --max-time 2 "http://$ip_bal:$stats_port/stats;csv" |
      awk -F, '$1 == "cyclone" && $2 ~ /^app/ && $18 == "UP" {n++} END {print n + 0}')" = 3 ] && return 0
    sleep 0.1
  done
  return 1
}

# restart_all -> SIGHUP to each instance in turn (after $half s of load),
# each once the previous restart is complete; a line per instance, "ok
# I OLD NEW SECONDS" or "FAIL why", and stops at the first failure.
restart_all() {
  sleep "$half"
  local i old new t0 gone
  for i in 0 1 2; do
    old=${pid[$i]} new="" gone="" t0=$(date +%s.%N)
    kill -HUP "$old" 2> /dev/null || { echo "FAIL ${apps[$i]#"$pfx-"}: its pid $old was not running"; return 1; }
    local deadline=$(( SECONDS + restart_limit ))
    while :; do
      [ -n "$new" ] || new=$(listener_pid "${apps[$i]}" "$port" "$old")
      if ! alive "$old"; then
        [ -n "$new" ] && break
        # Gone: a new process listened before the old one left, or never will.
        if [ -n "$gone" ] && [ "$SECONDS" -ge "$gone" ]; then
          echo "FAIL ${apps[$i]#"$pfx-"}: SIGHUP ended pid $old and no new process listens on :$port"; return 1
        fi
        [ -n "$gone" ] || gone=$(( SECONDS + 2 ))
      fi
      if [ "$SECONDS" -ge "$deadline" ]; then
        echo "FAIL ${apps[$i]#"$pfx-"}: pid $old still running ${restart_limit} s after SIGHUP (new process: ${new:-none})"; return 1
      fi
      sleep 0.05
    done
    echo "ok $i $old $new $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b - a}')"
  done
}

# --- One balancer: start it and its instances, run the three phases. ---

scenario() {
  bal=$1
  local url i before cmd notes ok seg lines
  if [ "$bal" = nginx ]; then
    port=$plain_port proxy_args=() curl_proxy=() url="http://$ip_bal:$nginx_port/hello"
  else
    port=$proxy_port proxy_args=(--proxy-protocol) curl_proxy=(--haproxy-protocol) url="http://$ip_bal:$haproxy_port/hello"
  fi
  for i in 0 1 2; do start_instance "$i" || return 1; done
  if [ "$bal" = nginx ]; then
    nginx_lb_conf "$tmp/nginx.conf"; cp "$tmp/nginx.conf" "$res/"
    in_ns "$ns_bal" taskset -c 0 timeout -s KILL "$budget" nginx -p "$tmp" -e "$tmp/nginx-error.log" -c "$tmp/nginx.conf" > "$tmp/nginx.out" 2>&1 &
  else
    haproxy_cfg "$tmp/haproxy.cfg"; cp "$tmp/haproxy.cfg" "$res/"
    in_ns "$ns_bal" taskset -c 0 timeout -s KILL "$budget" haproxy -db -f "$tmp/haproxy.cfg" > "$tmp/haproxy.log" 2>&1 &
  fi
  disown
  # shellcheck disable=SC2016
  if ! in_ns "$ns_cli" bash -c '. bench/lib.sh; wait_up "$1"' _ "$url" || ! servers_up; then
    echo "lb: $bal did not answer on $url: $(tail -c 400 "$tmp/$bal".{out,log} 2> /dev/null)"; return 1
  fi
  echo "lb: $bal: $url, instances ${pid[*]} (cyclone serve --port $port${proxy_args[*]:+ ${proxy_args[*]}}${extra[*]:+ ${extra[*]}})"
  cmd="ip netns exec $ns_cli taskset -c $wrk_cpu wrk $(wrk_args "$secs" "$url")"

  # steady
  before=$(bal_counts)
  load "$tmp/wrk-$bal-steady.txt" "$url" "$secs"
  record "$bal" steady "$cmd" "$(bal_seen "$before" "$(bal_counts)")" 1 "$tmp/wrk-$bal-steady.txt"

  # kill
  before=$(bal_counts) ok=1 notes=""
  load "$tmp/wrk-$bal-kill.txt" "$url" "$secs" &
  local w=$!
  sleep "$half"
  if alive "${pid[$killed]}"; then
    kill -9 "${pid[$killed]}"
    notes="kill -9 of ${apps[$killed]#"$pfx-"} (pid ${pid[$killed]}) at ${half} s"
  else
    ok=0 notes="${apps[$killed]#"$pfx-"} (pid ${pid[$killed]}) was not running to be killed"
  fi
  wait "$w" || true
  record "$bal" kill "$cmd" "$notes; $(bal_seen "$before" "$(bal_counts)")" "$ok" "$tmp/wrk-$bal-kill.txt"
  start_instance "$killed" || return 1
  servers_up || echo "lb: $bal: its checks do not see ${apps[$killed]#"$pfx-"} up again within 10 s"

  # rolling
  before=$(bal_counts) ok=1 notes="" seg=0
  restart_all > "$tmp/rolling" 2>&1 &
  restarter=$!
  local t_end=$(( SECONDS + half + 3 * restart_limit + secs + 10 ))
  while :; do
    seg=$((seg + 1))
    load "$tmp/wrk-$bal-rolling-$seg.txt" "$url" "$secs"
    alive "$restarter" || break
    [ "$SECONDS" -lt "$t_end" ] || { echo "FAIL: the restarts outlasted the phase's time limit" >> "$tmp/rolling"; kill "$restarter" 2> /dev/null || true; break; }
  done
  wait "$restarter" || ok=0
  restarter=""
  while read -r _ i old new took; do
    pid[i]=$new
    notes+="${apps[$i]#"$pfx-"} $old→$new in $took s; "
    answers "$i" || { ok=0; notes+="the new ${apps[$i]#"$pfx-"} does not answer; "; }
  done < <(grep '^ok ' "$tmp/rolling")
  lines=$(grep -v '^ok ' "$tmp/rolling" | tr '\n' ' ')
  [ -z "$lines" ] || { ok=0; notes+="restart ${lines% }; "; }
  [ "$seg" = 1 ] || cmd="$cmd (×$seg runs back to back, while the restarts went on)"
  record "$bal" rolling "$cmd" "${notes}$(bal_seen "$before" "$(bal_counts)")" "$ok" "$tmp"/wrk-"$bal"-rolling-*.txt
  [ "$bal" = nginx ] && cp "$tmp/nginx-error.log" "$res/" 2> /dev/null
  [ "$bal" = haproxy ] && cp "$tmp/haproxy.log" "$res/" 2> /dev/null
  return 0
}

t_start=$SECONDS
for b in nginx haproxy; do
  if ! scenario "$b"; then
    fails=$((fails + 1)); failed_checks+=("$b: did not start")
  fi
  ns_stop "$ns_bal"; ns_stop "${apps[@]}"
done

{
  echo "# Load balancing: three cyclone instances behind nginx and HAProxy"
  echo
  echo "- date: $(date -u +%Y-%m-%dT%H:%MZ); cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') ($(nproc) cores); kernel $(uname -r); $(nginx -v 2>&1 | sed 's/^nginx version: //'); HAProxy $(haproxy -v | awk 'NR == 1 {print $3}'); wrk $(wrk -v 2>&1 | head -1 | awk '{print $2}'); cyclone $(git rev-parse --short HEAD 2> /dev/null || echo '?')"
  echo "- bench/lb.sh $secs: network namespaces on one machine (app1..3 10.77.0.11-13, balancer 10.77.0.2, client 10.77.0.3), instances and balancer on CPU 0, wrk on CPU $wrk_cpu; $secs s of load per phase; instances: \`cyclone serve --address 0.0.0.0 --access-log off --log-level warn${extra[*]:+ ${extra[*]}}\` (--port 8080 behind nginx; --port 8081 --proxy-protocol behind HAProxy, send-proxy-v2)"
  echo "- failed: wrk's non-2xx answers plus socket errors; p99 in the rolling phase is the worst of its wrk runs"
  echo
  echo "| balancer | phase | req/s | p99 ms | requests | failed | socket errors (connect/read/write/timeout) | notes | command |"
  echo "| --- | --- | ---: | ---: | ---: | ---: | --- | --- | --- |"
  printf '%s\n' "${rows[@]}"
} > "$out"
echo
cat "$out"
echo
echo "lb: results in $res (table: $out; configurations: $res/nginx.conf, $res/haproxy.cfg; wrk outputs; balancer logs); $(( SECONDS - t_start )) s of phases"
[ ${#failed_checks[@]} = 0 ] || printf 'lb: failed: %s\n' "${failed_checks[@]}"
echo "lb: $passes passed, $fails failed"
[ "$fails" = 0 ]
