#!/usr/bin/env bash
# HTTP client benchmarks: Cyclone's HttpClient against hyper's pooled
# client, reqwest and Tornado's SimpleAsyncHTTPClient, in one run, on this
# machine, all fetching from the same nginx.
#
#   bench/httpclient.sh [--repeat N] [--seconds S] [--quick] [--out FILE]
#
# Installs what it needs (nginx and curl through apt; Tornado through pip
# into bench/.venv), builds Cyclone's load generator (examples/fetch_load.rs)
# and the peers' (bench/peers: client_hyper, client_reqwest;
# tornado_client.py beside them), then runs each client pinned to CPU 1
# against one nginx worker pinned to CPU 0 (`return 200 "Hello, World!"`,
# keep-alive without limits): 64 requests in flight (64 tasks sharing one
# client), a warm-up round of one request per task, then S seconds
# (default 5) measured, N times (default 3) in N passes over the clients.
# Reported per client, as the median of the runs:
#   - requests/s and requests per client CPU-second (the client process's
#     own user + system time over the measured window, from getrusage): the
#     latter is the figure that compares clients, as requests/s also
#     depend on how fast nginx answers on its one core;
#   - connections opened per 10,000 requests, counted by nginx (the
#     `accepts` of its stub_status, read before and after each run, so the
#     warm-up's connections are in it; the clients' own count beside it
#     where they keep one);
#   - errors (all runs together).
# --quick is one run of 2 s, a smoke test. Prints a Markdown report, and
# writes it to FILE too with --out.
set -euo pipefail
cd "$(dirname "$0")/.."
repeat=3; seconds=5; out=""
usage="usage: $0 [--repeat N] [--seconds S] [--quick] [--out FILE]"
while [ $# -gt 0 ]; do
  case "$1" in
    --repeat) repeat="$2"; shift 2 ;;
    --seconds) seconds="$2"; shift 2 ;;
    --quick) repeat=1; seconds=2; shift ;;
    --out) out="$2"; shift 2 ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
done
# The requests in flight: the figure the comparison is made at.
concurrency=64

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
tmp=$(mktemp -d)
# shellcheck source=bench/lib.sh
. bench/lib.sh
cleanup() {
  # nginx by its pid file first (its master is also the job below: once
  # it exits, the file is gone).
  if [ -f "$tmp/nginx.pid" ]; then kill "$(cat "$tmp/nginx.pid" 2>/dev/null)" 2>/dev/null || true; fi
  # shellcheck disable=SC2046 # job ids are numbers, one word each
  kill $(jobs -p) 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# ---- what the run needs ----------------------------------------------------
if ! need nginx || ! need curl || ! need taskset || ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
  install_tools nginx-light curl util-linux python3-venv
fi
# The connection count comes from stub_status: Debian builds it into
# nginx-light and nginx alike, but say so plainly if this one lacks it.
if ! nginx -V 2>&1 | grep -q -- --with-http_stub_status_module; then
  echo "bench/httpclient.sh: this nginx has no stub_status module (nginx -V); install Debian's nginx" >&2
  exit 1
fi
venv=bench/.venv
if ! "$venv/bin/python" -c 'import tornado' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q tornado
fi
cargo build --release --quiet --example fetch_load
cargo build --release --quiet --manifest-path bench/peers/Cargo.toml --bin client_hyper --bin client_reqwest
peers=bench/peers/target/release

# ---- nginx -------------------------------------------------------------------
# lib.sh's nginx (one worker, keep-alive without limits: no client is
# ever made to reconnect by the server) with its connection counters at
# /nginx_status; room for Tornado's one connection per request while the
# closed ones drain (4,096 in all).
port=18700
nginx_conf "$tmp/nginx.conf" "$port" 3096 "location = /nginx_status { stub_status; }"
taskset -c 0 nginx -c "$tmp/nginx.conf" > "$tmp/nginx.out" 2>&1 &
url="http://127.0.0.1:$port/"
if ! wait_up "$url"; then
  echo "bench/httpclient.sh: nginx did not answer: $(tail -c 300 "$tmp/nginx.out") $(tail -c 300 "$tmp/error.log" 2>/dev/null)" >&2
  exit 1
fi

# accepts -> the connections nginx has accepted so far, this read's own
# included (stub_status: "server accepts handled requests" then the
# three numbers).
accepts() {
  curl -sf "http://127.0.0.1:$port/nginx_status" | awk 'prev ~ /accepts/ {print $1; exit} {prev = $0}'
}

# ---- the clients ---------------------------------------------------------------
# In report order: name|command; each takes URL CONCURRENCY SECONDS and
# prints one line "requests=N seconds=S cpu_seconds=C
# connections_opened=K|- errors=E".
clients=(
  "cyclone|target/release/examples/fetch_load"
  "hyper|$peers/client_hyper"
  "reqwest|$peers/client_reqwest"
  "tornado|$venv/bin/python bench/peers/tornado_client.py"
)

# run_client CMD -> "rps per_cpu_s conns_per_10k errors nginx_conns
# client_conns cpu_busy_percent" for one run, or "" if the client failed
# or printed no line.
run_client() {
  local a0 a1 line
  a0=$(accepts)
  # Bound: the warm-up and the run, with a minute to spare.
  # shellcheck disable=SC2086 # the command is words on purpose
  line=$(taskset -c 1 timeout $(( ${seconds%.*} + 60 )) $1 "$url" "$concurrency" "$seconds" 2> "$tmp/client.err" | tail -1) ||
    { echo "$1: $(tail -c 300 "$tmp/client.err")" >&2; echo ""; return; }
  a1=$(accepts)
  # The after-read's own connection is not the client's; n/a if either
  # read failed.
  awk -v line="$line" -v a0="$a0" -v a1="$a1" 'BEGIN{
    n = split(line, kv, " ")
    for (i = 1; i <= n; i++) { split(kv[i], p, "="); v[p[1]] = p[2] }
    r = v["requests"]; s = v["seconds"]; c = v["cpu_seconds"]
    if (!(r > 0 && s > 0 && c > 0)) exit
    if (a0 ~ /^[0-9]+$/ && a1 ~ /^[0-9]+$/) { conns = a1 - a0 - 1; per10k = sprintf("%.1f", conns * 10000 / r) }
    else { conns = "n/a"; per10k = "n/a" }
    printf "%.0f %.0f %s %d %s %s %.0f", r/s, r/c, per10k, v["errors"], conns, v["connections_opened"], c/s*100
  }'
}

declare -A L R
for r in $(seq "$repeat"); do
  for entry in "${clients[@]}"; do
    IFS='|' read -r name cmd <<< "$entry"
    echo "== $name, pass $r of $repeat" >&2
    res=$(run_client "$cmd")
    [ -n "$res" ] || echo "$name: no result line" >&2
    L[$name]+="$res"$'\n'
  done
done
for entry in "${clients[@]}"; do
  IFS='|' read -r name _ <<< "$entry"
  # Numbers only: a failed run's line is empty, and a client that keeps
  # no connection count says "-".
  col() { awk -v k="$1" '$k ~ /^[0-9.]+$/ {print $k}' <<< "${L[$name]}" | median; }
  R[$name,rps]=$(col 1); R[$name,cpu]=$(col 2); R[$name,per10k]=$(col 3)
  R[$name,nginx_conns]=$(col 5); R[$name,client_conns]=$(col 6); R[$name,busy]=$(col 7)
  [ "${R[$name,client_conns]}" = n/a ] && R[$name,client_conns]="-"
  R[$name,errors]=$(awk 'NF {e += $4; n++} END{ if (n) print e; else print "n/a" }' <<< "${L[$name]}")
done

# ---- the report ------------------------------------------------------------------
# ratio A B DECIMALS -> A/B as "1.23x", n/a without both figures
ratio() { awk -v a="$1" -v b="$2" -v d="$3" 'BEGIN{ if (a ~ /^[0-9.]+$/ && b ~ /^[0-9.]+$/ && b > 0) printf "%.*fx", d, a/b; else print "n/a" }'; }
lock_version() { awk -v n="$1" '$0 == "name = \"" n "\"" {getline; gsub(/"/, "", $3); print $3; exit}' bench/peers/Cargo.lock; }
{
  echo "# HTTP client benchmarks: Cyclone, hyper, reqwest, Tornado"
  echo
  echo "- date: $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "- machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores, kernel $(uname -r); load average before the run: $load_before"
  echo "- versions: nginx $(nginx -v 2>&1 | cut -d/ -f2), Tornado $("$venv/bin/python" -c 'import tornado; print(tornado.version)') on $("$venv/bin/python" -V), hyper $(lock_version hyper), hyper-util $(lock_version hyper-util), reqwest $(lock_version reqwest), tokio $(lock_version tokio) (bench/peers/Cargo.lock), $(rustc --version | cut -d' ' -f1-2)"
  echo "- command: \`bench/httpclient.sh --repeat $repeat --seconds $seconds\`"
  echo "- method: each client alone, pinned to CPU 1, against one nginx worker pinned to CPU 0 (\`return 200 \"Hello, World!\"\`, access log off, keep-alive without limits); $concurrency tasks sharing one client, each GETting the URL and reading the whole body in a loop, so $concurrency requests in flight; a warm-up round of one request per task, then $seconds s measured; the median of $repeat run(s) each, made in passes over the clients. Cyclone: \`examples/fetch_load.rs\` (HttpClient, max_clients and max_connections_per_host $concurrency); hyper: \`hyper_util::client::legacy::Client\` with HttpConnector (nodelay) on tokio current_thread; reqwest: \`Client::builder().pool_max_idle_per_host($concurrency)\` on tokio current_thread, no default features; Tornado: \`SimpleAsyncHTTPClient(force_instance=True, max_clients=$concurrency)\`, which has no keep-alive (it sends \`Connection: close\`). Per client CPU-second: requests over the client process's user + system time in the measured window (getrusage); \"client CPU busy\" is that time over the window: under 100%, the client waited on nginx or was kept off its core by another process (a build running beside the benchmark shows here), and its requests/s understate it. Connections: nginx's stub_status \`accepts\` before and after each run (the warm-up's included), per 10,000 requests measured; \"client\" is the client's own count where it keeps one."
  echo
  echo "| client | req/s | client CPU busy % | req per client CPU-s | vs hyper | vs Tornado | connections per 10,000 req | connections per run (nginx / client) | errors |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
  for entry in "${clients[@]}"; do
    IFS='|' read -r name _ <<< "$entry"
    echo "| $name | ${R[$name,rps]} | ${R[$name,busy]} | ${R[$name,cpu]} | $(ratio "${R[$name,cpu]}" "${R[hyper,cpu]}" 2) | $(ratio "${R[$name,cpu]}" "${R[tornado,cpu]}" 1) | ${R[$name,per10k]} | ${R[$name,nginx_conns]} / ${R[$name,client_conns]} | ${R[$name,errors]} |"
  done
  echo
  echo "cyclone vs hyper per client CPU-s: $(ratio "${R[cyclone,cpu]}" "${R[hyper,cpu]}" 2) (target >= 1.2x); vs Tornado: $(ratio "${R[cyclone,cpu]}" "${R[tornado,cpu]}" 1) (target >= 20x); connections per 10,000 requests: ${R[cyclone,per10k]} (target <= 64)"
} > "$tmp/report.md"
cat "$tmp/report.md"
if [ -n "$out" ]; then cp "$tmp/report.md" "$out"; fi
