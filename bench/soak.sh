#!/usr/bin/env bash
# Soak: `cyclone serve` under hours-shaped traffic, checked for leaks.
#
#   bench/soak.sh MINUTES [POLLER...]      (default: every poller this machine has)
#
# For each poller in turn: starts `cyclone serve` (access log off,
# --max-connections 1024, which the connection storms exceed) on
# 127.0.0.1, then for MINUTES runs at once
#   - wrk, 16 keep-alive connections, the whole time (well-behaved load);
#   - bench/soak_clients.py: well-behaved keep-alive and pipelined clients
#     that check every answer, and 8 loops of hostile clients (slowloris
#     heads, stalled bodies, resets mid-request, pipelined floods that
#     never read, oversized heads, garbage, a TLS ClientHello on the plain
#     port, WebSocket clients that never read, storms of 200 connections);
#   - against a second server, `cyclone serve --tls-self-signed` on the
#     same poller: a checking keep-alive client over TLS, and hostile TLS
#     clients in the same loops (handshakes that stall halfway, resets
#     mid-handshake, garbage records, clients silent after the handshake);
# samples both servers' RSS and open descriptors every 5 s into
# docs/soak-POLLER.csv, draws docs/soak-POLLER.svg, and checks, for each
# server:
#   - no well-behaved request failed (wrk's errors and non-2xx, and the
#     checking clients');
#   - RSS flat: its mean over the last sixth of the run (at least a
#     minute) is within 5% of its mean over as long a window right after
#     the warm-up (a fifth of the run). Windows of minutes, not seconds:
#     hostile buffers in flight (a never-reading flood holds up to 256 KiB)
#     swing the RSS of an 8 MiB process by more than 5% from one sample to
#     the next, while a leak grows with the time between the windows;
#   - no descriptor leaked: once the load stops and its connections are
#     gone, the server holds exactly the descriptors it held before.
# Exits 1 if any poller fails. Installs wrk through apt if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
minutes="${1:?usage: bench/soak.sh MINUTES [POLLER...]}"
shift
pollers=("$@")
[ ${#pollers[@]} -gt 0 ] || pollers=(epoll uring)
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
. bench/lib.sh
need wrk || install_tools wrk
cargo build --release --quiet --bin cyclone
secs=$(awk -v m="$minutes" 'BEGIN{printf "%d", m * 60}')
warm=$(( secs / 5 ))
window=$(( secs / 6 > 60 ? secs / 6 : 60 ))
port=18700
ulimit -n 65536 2>/dev/null || true
fds() { ls "/proc/$1/fd" | wc -l; }
rss() { awk '/^VmRSS/{print $2}' "/proc/$1/status"; }
# The descriptors of $1 once the load's connections are gone (back to $2,
# or whatever is left after a minute).
settled_fds() {
  local n; n=$(fds "$1")
  for _ in $(seq 60); do [ "$n" -le "$2" ] && break; sleep 1; n=$(fds "$1"); done
  echo "$n"
}
# Mean RSS (CSV column $1) over the window right after the warm-up and
# over the last one of the load, and their ratio.
rss_trend() {
  awk -F, -v c="$1" -v w="$warm" -v end="$secs" -v win="$window" \
    'NR > 1 && $1 >= w && $1 < w + win {a += $c; na++}
    NR > 1 && $1 >= end - win && $1 < end {b += $c; nb++}
    END { if (na && nb) printf "%.0f %.0f %.4f", a/na, b/nb, (b/nb)/(a/na); else print "0 0 0" }' "$csv"
}
# What was left open, if anything: the evidence for whoever looks into it.
left_open() {
  [ "$2" = "$3" ] && return 0
  echo "soak: $poller: $4 server: descriptors still open after the load:"
  ls -l "/proc/$1/fd" | sed 's/^/  /'
  ss -tanp 2>/dev/null | grep "pid=$1," | sed 's/^/  /' || true
}
verdict=0
for poller in "${pollers[@]}"; do
  port=$((port + 1))
  csv="docs/soak-$poller.csv"
  # A connection limit the storms go beyond (8 loops of up to 200 each).
  tls_port=$((port + 100))
  target/release/cyclone serve --port "$port" --poller "$poller" --max-connections 1024 \
    --access-log off --log-level error > "$tmp/server.out" 2>&1 &
  pid=$!
  target/release/cyclone serve --port "$tls_port" --poller "$poller" --max-connections 1024 \
    --tls-self-signed --access-log off --log-level error > "$tmp/tls-server.out" 2>&1 &
  tls_pid=$!
  if ! wait_up "http://127.0.0.1:$port/hello" || ! wait_up "https://127.0.0.1:$tls_port/hello"; then
    echo "soak: $poller: a server did not start: $(tail -c 300 "$tmp/server.out" "$tmp/tls-server.out")"
    kill "$pid" "$tls_pid" 2>/dev/null || true
    verdict=1; continue
  fi
  fds0=$(fds "$pid"); tls_fds0=$(fds "$tls_pid")
  echo "seconds,rss_kib,fds,tls_rss_kib,tls_fds,good_ok,good_failed,hostile_done" > "$csv"
  wrk -t1 -c16 -d"${secs}s" "http://127.0.0.1:$port/hello" > "$tmp/wrk" 2>&1 &
  wrk_pid=$!
  python3 bench/soak_clients.py "$port" "$secs" "$tmp/status" "$tls_port" > "$tmp/clients.out" 2> "$tmp/clients.err" &
  clients=$!
  t0=$(date +%s)
  while kill -0 "$clients" 2>/dev/null || kill -0 "$wrk_pid" 2>/dev/null; do
    t=$(( $(date +%s) - t0 ))
    ok=0; failed=0; hostile=0
    [ -f "$tmp/status" ] && read -r ok failed hostile _ < "$tmp/status"
    echo "$t,$(rss "$pid"),$(fds "$pid"),$(rss "$tls_pid"),$(fds "$tls_pid"),$ok,$failed,$hostile" >> "$csv"
    sleep 5
  done
  clients_ok=0; wait "$clients" && clients_ok=1
  wait "$wrk_pid" || true
  read -r ok failed hostile tls_ok < "$tmp/status"
  wrk_reqs=$(awk '/requests in/{print $1}' "$tmp/wrk")
  wrk_errors=$(awk '/Socket errors/{gsub(",",""); s=$4+$6+$8+$10} /Non-2xx/{n=$NF} END{print s+n}' "$tmp/wrk")
  # The load is gone: wait for its connections to close on the servers.
  fds1=$(settled_fds "$pid" "$fds0")
  tls_fds1=$(settled_fds "$tls_pid" "$tls_fds0")
  read -r rss_first rss_last rss_ratio <<< "$(rss_trend 2)"
  read -r tls_rss_first tls_rss_last tls_rss_ratio <<< "$(rss_trend 4)"
  left_open "$pid" "$fds0" "$fds1" plain
  left_open "$tls_pid" "$tls_fds0" "$tls_fds1" TLS
  kill "$pid" "$tls_pid"; wait "$pid" "$tls_pid" 2>/dev/null || true
  pass=1
  [ "$failed" = 0 ] && [ "$clients_ok" = 1 ] && [ "${wrk_errors:-1}" = 0 ] || pass=0
  for r in "$rss_ratio" "$tls_rss_ratio"; do
    awk -v r="$r" 'BEGIN{exit !(r > 0 && r <= 1.05)}' || pass=0
  done
  [ "$fds1" = "$fds0" ] && [ "$tls_fds1" = "$tls_fds0" ] || pass=0
  echo "soak: $poller, $minutes min: $([ $pass = 1 ] && echo passed || echo FAILED):" \
    "good requests $((ok + ${wrk_reqs:-0})) (checking clients $ok, $tls_ok of them over TLS; wrk ${wrk_reqs:-?}), failed $((failed + ${wrk_errors:-0}));" \
    "hostile connections $hostile;" \
    "plain server: RSS $rss_first KiB after warm-up, $rss_last KiB at the end (x$rss_ratio, limit 1.05), descriptors $fds0 before, $fds1 after;" \
    "TLS server: RSS $tls_rss_first KiB, $tls_rss_last KiB (x$tls_rss_ratio), descriptors $tls_fds0 before, $tls_fds1 after"
  sed 's/^/soak: /' "$tmp/clients.out"
  [ -s "$tmp/clients.err" ] && head -5 "$tmp/clients.err"
  [ $pass = 1 ] || verdict=1
  python3 - "$csv" "docs/soak-$poller.svg" "$poller" "$minutes" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
W, H, P = 720, 300, 50
t = [int(r["seconds"]) for r in rows] or [0]
series = [("RSS KiB", [int(r["rss_kib"]) for r in rows], "#c33"), ("open fds", [int(r["fds"]) for r in rows], "#36c"),
          ("TLS RSS", [int(r["tls_rss_kib"]) for r in rows], "#e99"), ("TLS fds", [int(r["tls_fds"]) for r in rows], "#9bd")]
out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
       f'<text x="10" y="18" font-weight="bold">bench/soak.sh {sys.argv[4]} ({sys.argv[3]}): RSS and open descriptors, each scaled to its own maximum</text>']
tmax = max(t) or 1
for i, (name, ys, colour) in enumerate(series):
    ymax = max(ys or [1]) or 1
    pts = " ".join(f"{P + (x / tmax) * (W - 2 * P):.1f},{H - P - (y / ymax) * (H - 2 * P):.1f}" for x, y in zip(t, ys))
    out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{pts}"/>')
    out.append(f'<text x="{P + i * 150}" y="{H - 15}" fill="{colour}">{name} (max {ymax})</text>')
out.append(f'<text x="{W - P - 60}" y="36">{tmax} s</text></svg>')
open(sys.argv[2], "w").write("\n".join(out) + "\n")
PY
done
exit "$verdict"
