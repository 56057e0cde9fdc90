#!/usr/bin/env bash
# Side-by-side WebSocket benchmarks: Cyclone against fastwebsockets,
# tokio-tungstenite and Tornado, in one run, on this machine.
#
#   bench/ws.sh [--repeat N] [--seconds S] [--idle N] [--out FILE]
#
# Installs what it needs (Tornado through pip into bench/.venv), builds
# Cyclone and bench/peers (the peers and wsload, our load generator: no
# standard tool keeps one message in flight per WebSocket), then measures
# each server pinned to CPU 0, with wsload on CPU 1:
#   (a) echo of 20-byte binary messages over 100 connections and
#   (b) echo of 16 KiB binary messages over 500 connections: messages/s,
#       p50/p99 latency, and messages per server CPU-second (the server's
#       own utime+stime from /proc/PID/stat over the measured window);
#   - RSS per idle WebSocket connection: N connections (default 10,000)
#     opened and held on a fresh server, its VmRSS growth divided by N;
# and for Cyclone (Tornado beside it as a reference):
#   (c) echo of 1 KiB text messages with permessage-deflate offered by
#       wsload and without: server CPU per message, on over off;
#   (d) one 100-byte text message sent to /ws/chat and broadcast to N
#       connections: time until all have it, server CPU (schedstat) to
#       deliver it.
# Each echo load is repeated N times (default 3), in N passes over all
# the servers, and its median reported; the broadcast is the median of 5
# rounds. A reference row for (a) and (b), "floor (raw epoll echo)"
# (bench/peers/src/bin/ws_floor.rs), shows what the kernel alone costs per
# echo: an epoll loop that unmasks and sends back each frame and does no
# other WebSocket work, the bound for any server on this machine. Writes a
# Markdown report (default docs/ws-benchmarks.md). A server that does not
# come up is reported as n/a, not a failed run.
set -euo pipefail
cd "$(dirname "$0")/.."
repeat=3; seconds=5; idle=10000; out=docs/ws-benchmarks.md
while [ $# -gt 0 ]; do
  case "$1" in
    --repeat) repeat="$2"; shift 2 ;;
    --seconds) seconds="$2"; shift 2 ;;
    --idle) idle="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    *) echo "usage: $0 [--repeat N] [--seconds S] [--idle N] [--out FILE]" >&2; exit 2 ;;
  esac
done

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
# shellcheck source=bench/lib.sh
. bench/lib.sh

# ---- what the run needs ----------------------------------------------------
if ! need taskset || ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
  install_tools util-linux python3-venv
fi
venv=bench/.venv
if ! "$venv/bin/python" -c 'import tornado' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q tornado
fi
cargo build --release --quiet --bin cyclone
cargo build --release --quiet --manifest-path bench/peers/Cargo.toml \
  --bin wsload --bin ws_fastwebsockets --bin ws_tungstenite --bin ws_floor
peers=bench/peers/target/release
wsload=$peers/wsload
# Each side of N idle connections holds N descriptors in its own process;
# 20,000 leaves room for 10,000 and the listening and loaded sockets. Only
# the soft limit: bench/run.sh calls this script after its own raise.
want=$(( idle + 1000 < 20000 ? 20000 : idle + 1000 ))
hard=$(ulimit -Hn); [ "$hard" = unlimited ] && hard=$want
ulimit -Sn "$(( want < hard ? want : hard ))"
if [ "$(ulimit -n)" -lt "$(( idle + 1000 ))" ]; then
  echo "bench/ws.sh: the open-file limit ($(ulimit -n)) is below what --idle $idle needs ($(( idle + 1000 )))" >&2
  exit 1
fi

# The servers, in report order: name|command (PORT is replaced). Each
# echoes on /ws/echo; Cyclone and Tornado broadcast on /ws/chat and accept
# permessage-deflate when wsload offers it (it offers only for (c)). The
# floor, not a server, echoes on any path and is run on (a) and (b) only.
floor="floor (raw epoll echo)"
servers=(
  "cyclone|target/release/cyclone serve --port PORT --address 127.0.0.1 --log-level warn"
  "fastwebsockets|$peers/ws_fastwebsockets PORT"
  "tungstenite|$peers/ws_tungstenite PORT"
  "tornado|$venv/bin/python bench/peers/tornado_ws.py PORT --deflate"
  "$floor|$peers/ws_floor PORT"
)

# A new port for each start: the previous server's connections linger in
# TIME_WAIT, and 10,000 of them on one port pair would crowd the next run.
port=18400
pid=""
start() { # CMD -> sets pid, port; fails if no echo comes back in 10 s
  port=$(( port + 1 ))
  local cmd="${1//PORT/$port}" _
  # shellcheck disable=SC2086 # the command is words on purpose
  taskset -c 0 $cmd > "$tmp/server.out" 2>&1 &
  pid=$!
  # 100 tries 0.1 s apart; each check gives up after a few seconds itself.
  for _ in $(seq 100); do
    timeout 5 "$wsload" --port "$port" --check 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "$cmd did not echo: $(tail -c 300 "$tmp/server.out")" >&2
  return 1
}
stop() {
  # shellcheck disable=SC2046 # job ids are numbers, one word each
  kill $(jobs -p) 2>/dev/null || true
  wait 2>/dev/null || true
}

# echo_load ARGS... -> wsload's line for one echo run on the server
# started last (1 s warm-up, then the measured window), "" if it failed.
echo_load() {
  # Bound: connection set-up and the run, with a minute to spare.
  taskset -c 1 timeout $(( seconds + 60 )) "$wsload" --port "$port" --server-pid "$pid" \
    --seconds "$seconds" --warmup 1 "$@" 2> "$tmp/wsload.err" ||
    { echo "wsload $*: $(tail -c 300 "$tmp/wsload.err")" >&2; echo ""; }
}

# rss_per_ws_conn -> KiB of VmRSS growth per idle WebSocket connection on
# the server started last: wsload --idle opens $idle and says "ready".
rss_per_ws_conn() {
  local before after ready="" w
  before=$(awk '/^VmRSS/{print $2}' "/proc/$pid/status")
  # Bounded in time: run inside $(...), it is not one of the jobs the
  # EXIT trap kills, and it would hold $idle connections open forever.
  taskset -c 1 timeout 300 "$wsload" --port "$port" --idle "$idle" > "$tmp/idle.out" 2> "$tmp/idle.err" &
  w=$!
  # Tornado takes about a millisecond a handshake: 2 minutes is ample.
  for _ in $(seq 1200); do
    ready=$(cat "$tmp/idle.out")
    [ "$ready" = ready ] && break
    kill -0 "$w" 2>/dev/null || break
    sleep 0.1
  done
  if [ "$ready" != ready ]; then
    echo "wsload --idle $idle: $(tail -c 300 "$tmp/idle.err")" >&2
    kill "$w" 2>/dev/null || true
    echo "n/a"; return
  fi
  sleep 0.5 # let the server finish its side of the last handshakes
  after=$(awk '/^VmRSS/{print $2}' "/proc/$pid/status")
  kill "$w" 2>/dev/null || true
  wait "$w" 2>/dev/null || true
  awk -v a="$before" -v b="$after" -v n="$idle" 'BEGIN{ printf "%.2f", (b-a)/n }'
}

# The echo loads, one pass over all servers per repeat: on a machine
# shared with other work, a burst of it then falls on every server's
# figures alike rather than on one server's block of runs. L holds each
# (server, load)'s wsload lines, one per repeat.
declare -A L R
loads=(small large deflate_off deflate_on)
declare -A load_args=(
  [small]="--conns 100 --size 20"                      # (a)
  [large]="--conns 500 --size 16384"                   # (b)
  [deflate_off]="--conns 100 --size 1024 --text"       # (c), without
  [deflate_on]="--conns 100 --size 1024 --deflate"     # (c), with (text)
)
# (c) and (d) only where the server has permessage-deflate and /ws/chat.
extras() { [ "$1" = cyclone ] || [ "$1" = tornado ]; }
for r in $(seq "$repeat"); do
  for entry in "${servers[@]}"; do
    IFS='|' read -r name cmd <<< "$entry"
    echo "== $name, echo loads, pass $r of $repeat" >&2
    if ! start "$cmd"; then stop; continue; fi
    for load in "${loads[@]}"; do
      [[ "$load" != deflate_* ]] || extras "$name" || continue
      read -ra args <<< "${load_args[$load]}"
      L[$name,$load]+="$(echo_load "${args[@]}")"$'\n'
    done
    stop
  done
done

# vals KEY LINES -> KEY's value from each of wsload's key=value lines.
vals() { awk -v k="$1" '{ for (i = 1; i <= NF; i++) if (index($i, k "=") == 1) print substr($i, length(k) + 2) }' <<< "$2"; }
# med KEY LINES -> the median of KEY's numeric values (n/a if none).
med() { vals "$1" "$2" | awk '$1 ~ /^[0-9.]+$/' | median; }
for entry in "${servers[@]}"; do
  IFS='|' read -r name _ <<< "$entry"
  for load in "${loads[@]}"; do
    lines=${L[$name,$load]:-}
    R[$name,$load,rps]=$(med msgs_per_s "$lines")
    R[$name,$load,p50]=$(med p50_ms "$lines")
    R[$name,$load,p99]=$(med p99_ms "$lines")
    R[$name,$load,cpu]=$(med msgs_per_server_cpu_s "$lines")
    R[$name,$load,load_pct]=$(med wsload_cpu_pct "$lines")
    # How busy the server was: its CPU seconds over the window's.
    R[$name,$load,srv_pct]=$(awk '{ c = ""; s = ""; for (i = 1; i <= NF; i++) { split($i, a, "="); if (a[1] == "server_cpu_s") c = a[2]; if (a[1] == "seconds") s = a[2] } if (s > 0 && c ~ /^[0-9.]+$/) printf "%.0f\n", c / s * 100 }' <<< "$lines" | median)
  done
done

# Memory and broadcast, once per server, each on a fresh server: what
# earlier loads allocated is not growth the idle connections cause.
for entry in "${servers[@]}"; do
  IFS='|' read -r name cmd <<< "$entry"
  for f in rss bc_ms bc_cpu bc_per_cpu; do R[$name,$f]="n/a"; done
  [ "$name" != "$floor" ] || continue
  echo "== $name, $idle idle connections" >&2
  if start "$cmd"; then R[$name,rss]=$(rss_per_ws_conn); fi
  stop
  extras "$name" || continue
  echo "== $name, broadcast to $idle connections" >&2
  if start "$cmd"; then
    # Rounds are the broadcast's repeats (each a single message).
    line=$(taskset -c 1 timeout 300 "$wsload" --port "$port" --server-pid "$pid" \
      --broadcast "$idle" --path /ws/chat --rounds 5 2> "$tmp/wsload.err") ||
      { echo "wsload --broadcast: $(tail -c 300 "$tmp/wsload.err")" >&2; line=""; }
    R[$name,bc_ms]=$(med broadcast_ms "$line")
    R[$name,bc_cpu]=$(med server_cpu_ms "$line")
    R[$name,bc_per_cpu]=$(med deliveries_per_server_cpu_s "$line")
  fi
  stop
done

# ---- the report --------------------------------------------------------------
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a ~ /^[0-9.]+$/ && b ~ /^[0-9.]+$/ && b > 0) printf "%.2fx", a/b; else print "n/a" }'; }
# verdict VALUE OP TARGET -> "met" / "not met" / "n/a" (VALUE may end in x)
verdict() { awk -v v="${1%x}" -v op="$2" -v t="$3" 'BEGIN{ if (v !~ /^[0-9.]+$/) print "n/a"; else if ((op == ">=" && v >= t) || (op == "<=" && v <= t)) print "met"; else print "not met" }'; }
lock_version() { awk -v n="$1" '$0 == "name = \"" n "\"" { getline; gsub(/version = |"/, ""); print; exit }' bench/peers/Cargo.lock; }
c=cyclone
{
  echo "# WebSocket benchmarks: Cyclone, fastwebsockets, tokio-tungstenite, Tornado"
  echo
  echo "- date: $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "- machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores, kernel $(uname -r)"
  echo "- versions: fastwebsockets $(lock_version fastwebsockets), tokio-tungstenite $(lock_version tokio-tungstenite), tokio $(lock_version tokio), Tornado $("$venv/bin/python" -c 'import tornado; print(tornado.version)'), $(rustc --version | cut -d' ' -f1-2)"
  echo "- command: \`bench/ws.sh --repeat $repeat --seconds $seconds --idle $idle\`"
  echo "- load average (1, 5, 15 min) before the run: $load_before; after it: $(cut -d' ' -f1-3 /proc/loadavg). Before the run, anything above 0 is other work; during it the run itself keeps about 2 tasks busy. Other work shared the CPUs where the server CPU % column is well below 100 with wsload's also below 100: the messages/s and latency columns suffer first, the per-CPU-second figures much less."
  echo "- method: each server alone, pinned to CPU 0 (\`taskset\`); the load, bench/peers' \`wsload\` (one thread, edge-triggered epoll, raw frames, a fresh mask key per frame), pinned to CPU 1, talking to 127.0.0.1. Each connection keeps exactly one message in flight: send, wait for the echo, compare it byte for byte, send again. 1 s warm-up, then ${seconds} s measured; the median of $repeat runs, made in $repeat passes over all the servers (each pass starts each server afresh), so that other work on the machine weighs on every server alike. Messages per server CPU-second: echoes completed in the window / the server's utime+stime over the window (/proc/PID/stat), the figure that does not depend on how fast the load generator is. \"server CPU\" and \"wsload CPU\" say how busy each side was (a server near 100% is the bottleneck). \"$floor\" is not a server but a reference (\`bench/peers/src/bin/ws_floor.rs\`): a single-threaded edge-triggered epoll loop that answers the upgrade, then echoes each frame it reads (unmasked in place, all of a read's replies in one send) with no limits, validation or fragmentation handling, so its CPU time per message is about what the kernel alone costs for an echo, a bound no server here can pass. Cyclone: \`cyclone serve\`'s demo site, \`/ws/echo\` and \`/ws/chat\`; fastwebsockets (hyper 1 upgrade, FragmentCollector, auto-pong and auto-close) and tokio-tungstenite (default configuration) on tokio current_thread; Tornado one process."
  echo
  for load in "${loads[@]}"; do
    case "$load" in
      small) echo "## (a) Echo, 20-byte binary messages, 100 connections" ;;
      large) echo "## (b) Echo, 16 KiB binary messages, 500 connections" ;;
      *) continue ;; # (c), below
    esac
    echo
    echo "| server | messages/s | p50 ms | p99 ms | messages per server CPU-s | Cyclone / this (per CPU-s) | server CPU % | wsload CPU % |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|"
    for entry in "${servers[@]}"; do
      IFS='|' read -r name _ <<< "$entry"
      echo "| $name | ${R[$name,$load,rps]} | ${R[$name,$load,p50]} | ${R[$name,$load,p99]} | ${R[$name,$load,cpu]} | $(ratio "${R[$c,$load,cpu]}" "${R[$name,$load,cpu]}") | ${R[$name,$load,srv_pct]} | ${R[$name,$load,load_pct]} |"
    done
    echo
    if [ "$load" = small ]; then
      # wsload's ceiling: its messages/s scaled to 100% of its CPU, from
      # the row where it was busiest.
      best=""
      for entry in "${servers[@]}"; do
        IFS='|' read -r name _ <<< "$entry"
        best+="${R[$name,small,rps]} ${R[$name,small,load_pct]} $name"$'\n'
      done
      # The name is the rest of the line: the floor's has spaces.
      awk '$1 ~ /^[0-9.]+$/ && $2 > m { m = $2; r = $1; n = $0; sub(/^[^ ]+ [^ ]+ /, "", n) } END { if (m > 0) printf "wsload itself: busiest against %s, %d%% of its CPU for %d messages/s, so about %d messages/s at 100%%. Like the servers it spends nearly all its time in the kernel (the loopback send carries the receiving side'"'"'s TCP work too), so it costs about what the fastest servers cost per message: against them, messages/s are limited by both sides at once, and messages per server CPU-second is the figure to compare.\n\n", n, m, r, r * 100 / m }' <<< "$best"
    fi
  done
  echo "## Memory: RSS per idle WebSocket connection ($idle connections)"
  echo
  echo "Each connection opened and its handshake completed, then left idle; the server's VmRSS growth divided by $idle, on a freshly started server."
  echo
  echo "| server | KiB per connection |"
  echo "|---|---:|"
  for entry in "${servers[@]}"; do
    IFS='|' read -r name _ <<< "$entry"
    [ "$name" != "$floor" ] || continue
    echo "| $name | ${R[$name,rss]} |"
  done
  echo
  echo "## (c) permessage-deflate: echo of 1 KiB text messages, 100 connections"
  echo
  echo "The same load with and without wsload offering permessage-deflate (RFC 7692, no parameters). Each message is 1 KiB of words and numbers, compressed by wsload at zlib level 1: a fresh text each time where the server keeps context (a repeated one would cost its compressor nothing), and where the server asks for client_no_context_takeover (Cyclone's demo, DeflateConfig::stateless), one of 64 texts compressed once, so that wsload's own compressing does not limit the load (each message is compressed on its own either way, so the server's work is the same). The server inflates each message and compresses its echo with its own settings. fastwebsockets and tokio-tungstenite have no permessage-deflate; Tornado is shown for reference."
  echo
  echo "| server | messages per server CPU-s, off | messages per server CPU-s, on | server CPU per message, on / off | messages/s off / on | wsload CPU % on |"
  echo "|---|---:|---:|---:|---:|---:|"
  for name in cyclone tornado; do
    echo "| $name | ${R[$name,deflate_off,cpu]} | ${R[$name,deflate_on,cpu]} | $(ratio "${R[$name,deflate_off,cpu]}" "${R[$name,deflate_on,cpu]}") | ${R[$name,deflate_off,rps]} / ${R[$name,deflate_on,rps]} | ${R[$name,deflate_on,load_pct]} |"
  done
  echo
  echo "## (d) Broadcast: one 100-byte text message to $idle connections"
  echo
  echo "$idle connections on \`/ws/chat\`, then one more sends a 100-byte text; the time from its send until the last of the $idle has read it, and the server's CPU time over that (the sum of its threads' /proc/PID/task/*/schedstat, precise to the nanosecond where stat's 10 ms ticks are not). Median of 5 rounds. wsload reads the $idle sockets on the other CPU while the server writes them, so the time is bounded below by wsload's reading; the CPU time is the server's alone."
  echo
  echo "| server | time to the last receiver, ms | server CPU, ms | deliveries per server CPU-s |"
  echo "|---|---:|---:|---:|"
  for name in cyclone tornado; do
    echo "| $name | ${R[$name,bc_ms]} | ${R[$name,bc_cpu]} | ${R[$name,bc_per_cpu]} |"
  done
  echo
  echo "## Cyclone against the targets (this run)"
  echo
  r=$(ratio "${R[$c,small,cpu]}" "${R[fastwebsockets,small,cpu]}")
  echo "- 20 B echo, messages per server CPU-s: $r fastwebsockets (target >= 1.2x: $(verdict "$r" '>=' 1.2)), $(ratio "${R[$c,small,cpu]}" "${R[tungstenite,small,cpu]}") tungstenite"
  r=$(ratio "${R[$c,large,cpu]}" "${R[fastwebsockets,large,cpu]}")
  echo "- 16 KiB echo, messages per server CPU-s: $r fastwebsockets (target >= 1.0x: $(verdict "$r" '>=' 1.0)), $(ratio "${R[$c,large,cpu]}" "${R[tungstenite,large,cpu]}") tungstenite"
  r=$(ratio "${R[$c,small,cpu]}" "${R[tornado,small,cpu]}"); r2=$(ratio "${R[$c,large,cpu]}" "${R[tornado,large,cpu]}")
  echo "- against Tornado, messages per server CPU-s: $r at 20 B, $r2 at 16 KiB (target >= 20x: $(verdict "$r" '>=' 20), $(verdict "$r2" '>=' 20))"
  echo "- p99 latency: ${R[$c,small,p99]} ms at 20 B (fastwebsockets ${R[fastwebsockets,small,p99]}), ${R[$c,large,p99]} ms at 16 KiB (fastwebsockets ${R[fastwebsockets,large,p99]})"
  echo "- RSS per idle WebSocket connection: ${R[$c,rss]} KiB (target <= 1.5: $(verdict "${R[$c,rss]}" '<=' 1.5))"
  r=$(ratio "${R[$c,deflate_off,cpu]}" "${R[$c,deflate_on,cpu]}")
  echo "- permessage-deflate, server CPU per 1 KiB text message on / off: $r (target <= 2x: $(verdict "$r" '<=' 2))"
  echo "- broadcast of 100 bytes to $idle connections: ${R[$c,bc_ms]} ms, ${R[$c,bc_cpu]} ms of server CPU ($(ratio "${R[tornado,bc_cpu]}" "${R[$c,bc_cpu]}") less than Tornado's)"
} > "$out"
cat "$out"
