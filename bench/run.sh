#!/usr/bin/env bash
# Side-by-side HTTP benchmarks: Cyclone against nginx, hyper, may_minihttp
# and Tornado, in one run, on this machine.
#
#   bench/run.sh [--repeat N] [--seconds S] [--idle N] [--out FILE] [--no-ws] [--no-tls] [--no-client]
#
# Installs what it needs (wrk, nginx, strace, perf through apt; Tornado
# through pip into bench/.venv), builds Cyclone and the peers
# (bench/peers, their own crate), then for each server in turn, pinned to
# CPU 0 with wrk (1 thread, 64 connections) on CPU 1:
#   - keep-alive GET: requests/s, p50/p99, requests per server CPU-second
#     (the server's own CPU time from /proc: wrk saturates its core near
#     160 k req/s here, so this is the fair figure);
#   - 16-deep pipelined GET: requests/s and per server CPU-second;
#   - system calls per request under both loads (perf's
#     raw_syscalls:sys_enter), and under keep-alive with strace -c as a
#     cross-check;
#   - RSS per idle keep-alive connection (N connections, default 5000, each
#     having had one answer);
# each load repeated N times (default 3), the median reported. Cyclone is
# measured on each poller backend (io_uring where the kernel allows it),
# as the HTTP layer alone
# (examples/hello.rs) beside the whole web layer, and, for multi-core
# scaling, with --threads 2 and --processes 2 (unpinned). A reference row,
# "io_uring floor" (bench/peers/src/bin/uring_floor.rs), shows what the
# kernel alone costs per request under io_uring: a loop that does no HTTP
# work, the bound for any server on this machine. Writes a Markdown report and
# an SVG chart (default docs/benchmarks.md and docs/benchmarks.svg). Then,
# unless --no-ws, the WebSocket benchmarks (bench/ws.sh, same --repeat and
# --seconds) into ws-benchmarks.md beside the report, unless --no-tls,
# the HTTPS ones against nginx (bench/tls.sh) into tls-benchmarks.md, and
# unless --no-client, the HTTP client ones (bench/httpclient.sh: Cyclone's
# HttpClient against hyper's, reqwest's and Tornado's clients, fetching
# from nginx with 64 requests in flight, per client CPU-second) into
# httpclient-benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
repeat=3; seconds=5; idle=5000; out=docs/benchmarks.md; ws=1; tls=1; client=1
while [ $# -gt 0 ]; do
  case "$1" in
    --repeat) repeat="$2"; shift 2 ;;
    --seconds) seconds="$2"; shift 2 ;;
    --idle) idle="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --no-ws) ws=0; shift ;;
    --no-tls) tls=0; shift ;;
    --no-client) client=0; shift ;;
    *) echo "usage: $0 [--repeat N] [--seconds S] [--idle N] [--out FILE] [--no-ws] [--no-tls] [--no-client]" >&2; exit 2 ;;
  esac
done
svg="${out%.md}.svg"

port=18200
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; [ -f "$tmp/nginx.pid" ] && kill "$(cat "$tmp/nginx.pid")" 2>/dev/null; rm -rf "$tmp"' EXIT
. bench/lib.sh

# ---- what the run needs ----------------------------------------------------
if ! need wrk || ! need nginx || ! need perf || ! need strace || ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
  install_tools wrk nginx-light strace linux-perf python3-venv
fi
venv=bench/.venv
if ! "$venv/bin/python" -c 'import tornado' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q tornado
fi
cargo build --release --quiet --bin cyclone --example hello
cargo build --release --quiet --manifest-path bench/peers/Cargo.toml
peers=bench/peers/target/release
# Idle connections need descriptors on both ends.
hard=$(ulimit -Hn); [ "$hard" = unlimited ] && hard=1048576
want=$(( idle * 2 + 1000 ))
# The soft limit only: bench/ws.sh, run last, raises it further.
ulimit -Sn "$(( want < hard ? want : hard ))"
if [ "$(ulimit -n)" -lt "$want" ]; then
  echo "bench/run.sh: the open-file limit ($(ulimit -n)) is below what --idle $idle needs ($want)" >&2
  exit 1
fi

nginx_conf "$tmp/nginx.conf" "$port" "$idle"

# The servers, in report order: name|command (PORT is replaced)|path.
servers=(
  "cyclone|target/release/cyclone serve --port PORT --log-level warn|/hello"
  "cyclone (access log on)|target/release/cyclone serve --port PORT|/hello"
  "cyclone (uring)|target/release/cyclone serve --port PORT --log-level warn --poller uring|/hello"
  "cyclone (poll)|target/release/cyclone serve --port PORT --log-level warn --poller poll|/hello"
  "cyclone (select)|target/release/cyclone serve --port PORT --log-level warn --poller select|/hello"
  "cyclone (http1 only)|target/release/examples/hello PORT|/hello"
  "cyclone (http1, uring)|env CYCLONE_POLLER=uring target/release/examples/hello PORT|/hello"
  "nginx|nginx -c $tmp/nginx.conf|/hello"
  "hyper|$peers/hyper_hello PORT|/hello"
  "hyper (pipeline_flush)|$peers/hyper_hello PORT --pipeline-flush|/hello"
  "may_minihttp|$peers/may_hello PORT|/hello"
  "tornado|$venv/bin/python bench/peers/tornado_hello.py PORT|/hello"
  "io_uring floor|$peers/uring_floor PORT|/hello"
)

pid=""; url=""
start() { # CMD PATH [taskset CPUS] -> sets pid (the process doing the work), url; fails if it never answers
  local cmd="${1//PORT/$port}" cpus="${3:-0}"
  url="http://127.0.0.1:$port$2"
  # shellcheck disable=SC2086
  taskset -c "$cpus" $cmd > "$tmp/server.out" 2>&1 &
  pid=$!
  if ! wait_up "$url"; then
    echo "$cmd did not answer: $(tail -c 300 "$tmp/server.out")" >&2
    return 1
  fi
  if [[ "$cmd" == nginx* ]]; then pid=$(nginx_worker); fi
}
stop() {
  if [ -f "$tmp/nginx.pid" ]; then kill "$(cat "$tmp/nginx.pid")" 2>/dev/null || true; rm -f "$tmp/nginx.pid"; fi
  kill $(jobs -p) 2>/dev/null || true
  wait 2>/dev/null || true
  sleep 0.3
}
# load MODE [wrk cpu], perf_syscalls MODE: the shared measures (lib.sh)
# on the server started last.
load() { wrk_load "$url" "$pid" "$1" "$seconds" "${2:-1}"; }
syscalls() { perf_syscalls "$url" "$pid" "$1"; }

# strace_syscalls -> system calls per keep-alive request under strace -c
strace_syscalls() {
  strace -c -f -p "$pid" -o "$tmp/strace" 2>/dev/null & local s=$!
  sleep 0.5
  local reqs
  reqs=$(taskset -c 1 wrk -t1 -c64 -d2s "$url" | awk '/requests in/{print $1}')
  kill -INT "$s" 2>/dev/null || true; wait "$s" 2>/dev/null || true
  local calls
  calls=$(awk '$NF=="total"{print $4}' "$tmp/strace" 2>/dev/null)
  awk -v c="$calls" -v r="$reqs" 'BEGIN{ if (c ~ /^[0-9]+$/ && r > 0) printf "%.2f", c/r; else print "n/a" }'
}

declare -A R
for entry in "${servers[@]}"; do
  IFS='|' read -r name cmd path <<< "$entry"
  echo "== $name" >&2
  if ! start "$cmd" "$path"; then
    # Say so in the report rather than stop the run: the io_uring floor
    # needs a kernel (6.1+) and sandbox that allow io_uring.
    for k in ka_rps p50 p99 ka_cpu ka_usr ka_sys pl_rps pl_cpu pl_usr pl_sys sc_ka sc_pl strace rss; do R[$name,$k]="n/a"; done
    stop
    continue
  fi
  ka=(); pl=()
  for _ in $(seq "$repeat"); do
    ka+=("$(load keepalive)")
    pl+=("$(load pipelined)")
  done
  col() { local i=$1; shift; printf '%s\n' "$@" | awk -v i="$i" '{print $i}' | median; }
  R[$name,ka_rps]=$(col 1 "${ka[@]}"); R[$name,p50]=$(col 2 "${ka[@]}"); R[$name,p99]=$(col 3 "${ka[@]}")
  R[$name,ka_cpu]=$(col 4 "${ka[@]}"); R[$name,ka_usr]=$(col 5 "${ka[@]}"); R[$name,ka_sys]=$(col 6 "${ka[@]}")
  R[$name,pl_rps]=$(col 1 "${pl[@]}"); R[$name,pl_cpu]=$(col 4 "${pl[@]}")
  R[$name,pl_usr]=$(col 5 "${pl[@]}"); R[$name,pl_sys]=$(col 6 "${pl[@]}")
  R[$name,sc_ka]=$(syscalls keepalive)
  R[$name,sc_pl]=$(syscalls pipelined)
  R[$name,strace]=$(strace_syscalls)
  stop
  if [ "$name" = "cyclone (select)" ]; then
    R[$name,rss]="n/a (FD_SETSIZE)"
  elif start "$cmd" "$path"; then
    R[$name,rss]=$(rss_per_idle "$port" "$pid" "$idle" "$path")
    stop
  else
    R[$name,rss]="n/a"
    stop
  fi
done

# Multi-core: wrk on CPU 1, the server free to use both CPUs.
declare -A M
for mode in "1 loop|target/release/cyclone serve --port PORT --log-level warn" \
            "--threads 2|target/release/cyclone serve --port PORT --log-level warn --threads 2" \
            "--processes 2|target/release/cyclone serve --port PORT --log-level warn --processes 2"; do
  IFS='|' read -r label cmd <<< "$mode"
  echo "== cyclone $label (multi-core)" >&2
  start "$cmd" /hello 0-1
  rs=()
  for _ in $(seq "$repeat"); do rs+=("$(load keepalive 1)"); done
  M[$label,ka]=$(printf '%s\n' "${rs[@]}" | awk '{print $1}' | median)
  rs=()
  for _ in $(seq "$repeat"); do rs+=("$(load pipelined 1)"); done
  M[$label,pl]=$(printf '%s\n' "${rs[@]}" | awk '{print $1}' | median)
  stop
done

# ---- the report --------------------------------------------------------------
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a ~ /^[0-9.]+$/ && b > 0) printf "%.2fx", a/b; else print "n/a" }'; }
ngx_ka=${R[nginx,ka_cpu]}; ngx_pl=${R[nginx,pl_cpu]}
# Sections written by other scripts (bench/scaling.sh, bench/lb.sh) after
# the marker are kept as they are.
marker='<!-- below: written by bench/scaling.sh and bench/lb.sh, kept by bench/run.sh -->'
kept=""
[ -f "$out" ] && kept=$(awk -v m="$marker" 'found || $0 == m {found = 1; print}' "$out")
{
  echo "# Benchmarks: Cyclone, nginx, hyper, may_minihttp, Tornado"
  echo
  echo "- date: $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "- machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores, kernel $(uname -r)"
  echo "- versions: nginx $(nginx -v 2>&1 | cut -d/ -f2), wrk $(wrk -v 2>&1 | head -1 | awk '{print $2}'), Tornado $("$venv/bin/python" -c 'import tornado; print(tornado.version)'), $(rustc --version | cut -d' ' -f1-2); hyper, tokio, may_minihttp: bench/peers/Cargo.lock"
  echo "- command: \`bench/run.sh --repeat $repeat --seconds $seconds --idle $idle\`"
  echo "- method: each server alone, pinned to CPU 0; wrk -t1 -c64 on CPU 1; medians of $repeat runs of ${seconds} s. Cyclone serves its demo site's \`GET /hello\` through the whole web layer (routing, ETag, access-log checks; \`--log-level warn\`), and \"cyclone (http1 only)\" is the HTTP layer alone (\`examples/hello.rs\`, the peers' level); nginx \`return 200\` with access_log off; hyper 1.x on tokio current_thread; may_minihttp with 1 worker; Tornado 1 process; \"io_uring floor\" is not a server but a reference (\`bench/peers/src/bin/uring_floor.rs\`): an io_uring loop that answers each \`\\r\\n\\r\\n\` with a fixed response and does no other work, so its CPU time per request is about what the kernel alone costs under io_uring. Requests per CPU-second: requests / the server process's CPU time (/proc); the same time split into user and kernel microseconds per request. Syscalls: perf raw_syscalls:sys_enter on the server over a whole 3 s wrk run, divided by the requests wrk completed; strace: \`strace -c -f\` under keep-alive load. RSS: VmRSS growth over $idle idle keep-alive connections that each had one answer."
  echo
  echo "| server | keep-alive req/s | p50 ms | p99 ms | keep-alive req per CPU-s | vs nginx | keep-alive µs user / kernel per req | pipelined req/s | pipelined req per CPU-s | vs nginx | pipelined µs user / kernel per req | syscalls/req keep-alive | syscalls/req pipelined | strace syscalls/req | RSS KiB per idle conn |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  for entry in "${servers[@]}"; do
    IFS='|' read -r name _ _ <<< "$entry"
    echo "| $name | ${R[$name,ka_rps]} | ${R[$name,p50]} | ${R[$name,p99]} | ${R[$name,ka_cpu]} | $(ratio "${R[$name,ka_cpu]}" "$ngx_ka") | ${R[$name,ka_usr]} / ${R[$name,ka_sys]} | ${R[$name,pl_rps]} | ${R[$name,pl_cpu]} | $(ratio "${R[$name,pl_cpu]}" "$ngx_pl") | ${R[$name,pl_usr]} / ${R[$name,pl_sys]} | ${R[$name,sc_ka]} | ${R[$name,sc_pl]} | ${R[$name,strace]} | ${R[$name,rss]} |"
  done
  echo
  echo "Ratios against the request path's targets (from this run; per server CPU-second):"
  echo
  h='cyclone (http1 only)'
  a='cyclone (access log on)'
  u='cyclone (uring)'
  echo "- pipelined x16: the HTTP layer $(ratio "${R[$h,pl_cpu]}" "${R[may_minihttp,pl_cpu]}") may_minihttp (target 1.0x); the web layer $(ratio "${R[cyclone,pl_cpu]}" "${R[$h,pl_cpu]}") the HTTP layer (target 0.85x). User-space µs per request: HTTP layer ${R[$h,pl_usr]}, web layer ${R[cyclone,pl_usr]}, may_minihttp ${R[may_minihttp,pl_usr]}; kernel: ${R[$h,pl_sys]}, ${R[cyclone,pl_sys]}, ${R[may_minihttp,pl_sys]}"
  echo "- keep-alive: the HTTP layer $(ratio "${R[$h,ka_cpu]}" "$ngx_ka") nginx, the web layer $(ratio "${R[cyclone,ka_cpu]}" "$ngx_ka") nginx (target 1.0x); p99 ${R[$h,p99]} ms (HTTP layer), ${R[cyclone,p99]} ms (web layer) vs nginx ${R[nginx,p99]} ms; Tornado $(ratio "${R[cyclone,ka_cpu]}" "${R[tornado,ka_cpu]}")"
  echo "- the access log's price: \`cyclone serve\` as a user starts it (access lines to stdout, here a file) against \`--log-level warn\`: keep-alive $(ratio "${R[$a,ka_cpu]}" "${R[cyclone,ka_cpu]}"), pipelined $(ratio "${R[$a,pl_cpu]}" "${R[cyclone,pl_cpu]}") (target 0.95x)"
  echo "- RSS per idle keep-alive connection: ${R[cyclone,rss]} KiB (web layer), ${R[$h,rss]} KiB (HTTP layer); nginx ${R[nginx,rss]} KiB (target 0.5)"
  echo "- syscalls per request: ${R[cyclone,sc_ka]} keep-alive, ${R[cyclone,sc_pl]} pipelined; on io_uring (\`--poller uring\`: writes sent by the loop with its next wait) ${R[$u,sc_ka]} and ${R[$u,sc_pl]}, keep-alive per CPU-s $(ratio "${R[$u,ka_cpu]}" "${R[cyclone,ka_cpu]}") epoll's, pipelined $(ratio "${R[$u,pl_cpu]}" "${R[cyclone,pl_cpu]}")"
  echo
  echo "## Multi-core (wrk -t1 -c64 on CPU 1, the server on CPUs 0-1)"
  echo
  echo "Two cores, one of them wrk's: the second loop or process shares CPU 1 with the load generator, so this shows the direction of scaling, not its size."
  echo
  echo "| cyclone | keep-alive req/s | pipelined req/s |"
  echo "|---|---:|---:|"
  for label in "1 loop" "--threads 2" "--processes 2"; do
    echo "| $label | ${M[$label,ka]} | ${M[$label,pl]} |"
  done
  echo
  echo "![requests per server CPU-second]($(basename "$svg"))"
  [ -z "$kept" ] || printf '\n%s\n' "$kept"
} > "$out"

# ---- the chart: requests per CPU-second, one panel per load ----------------
{
  n=${#servers[@]}
  maxk=1; maxp=1
  for entry in "${servers[@]}"; do
    IFS='|' read -r name _ _ <<< "$entry"
    v=${R[$name,ka_cpu]}; [[ "$v" =~ ^[0-9]+$ ]] && [ "$v" -gt "$maxk" ] && maxk=$v
    v=${R[$name,pl_cpu]}; [[ "$v" =~ ^[0-9]+$ ]] && [ "$v" -gt "$maxp" ] && maxp=$v
  done
  w=900; rowh=24; h=$(( n * rowh + 70 )); bar=230
  echo "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"$w\" height=\"$h\" font-family=\"sans-serif\" font-size=\"12\">"
  echo "<rect width=\"$w\" height=\"$h\" fill=\"white\"/>"
  echo "<text x=\"10\" y=\"18\" font-weight=\"bold\">Requests per server CPU-second ($(date -u +%Y-%m-%d), bench/run.sh)</text>"
  echo "<text x=\"170\" y=\"40\">keep-alive (64 connections)</text><text x=\"540\" y=\"40\">pipelined, 16 per write</text>"
  i=0
  for entry in "${servers[@]}"; do
    IFS='|' read -r name _ _ <<< "$entry"
    y=$(( 50 + i * rowh ))
    ka=${R[$name,ka_cpu]}; pl=${R[$name,pl_cpu]}
    [[ "$ka" =~ ^[0-9]+$ ]] || ka=0; [[ "$pl" =~ ^[0-9]+$ ]] || pl=0
    kw=$(( ka * bar / maxk )); pw=$(( pl * bar / maxp ))
    echo "<text x=\"10\" y=\"$(( y + 13 ))\">$name</text>"
    echo "<rect x=\"170\" y=\"$y\" width=\"$kw\" height=\"16\" fill=\"#3b6fb6\"/><text x=\"$(( 175 + kw ))\" y=\"$(( y + 13 ))\">$ka</text>"
    echo "<rect x=\"540\" y=\"$y\" width=\"$pw\" height=\"16\" fill=\"#e08a2c\"/><text x=\"$(( 545 + pw ))\" y=\"$(( y + 13 ))\">$pl</text>"
    i=$(( i + 1 ))
  done
  echo "</svg>"
} > "$svg"
cat "$out"

# The WebSocket side (its own --idle: 10,000 connections, the issue's
# figure, not the HTTP run's).
if [ "$ws" = 1 ]; then
  bench/ws.sh --repeat "$repeat" --seconds "$seconds" --out "$(dirname "$out")/ws-benchmarks.md"
fi
# HTTPS against nginx (5,000 idle TLS connections, the issue's figure).
if [ "$tls" = 1 ]; then
  bench/tls.sh --repeat "$repeat" --seconds "$seconds" --out "$(dirname "$out")/tls-benchmarks.md"
fi
# HTTP clients against nginx, per client CPU-second.
if [ "$client" = 1 ]; then
  bench/httpclient.sh --repeat "$repeat" --seconds "$seconds" --out "$(dirname "$out")/httpclient-benchmarks.md"
fi
