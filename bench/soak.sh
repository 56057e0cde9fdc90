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
# samples the server's RSS and open descriptors every 5 s into
# docs/soak-POLLER.csv, draws docs/soak-POLLER.svg, and checks:
#   - no well-behaved request failed (wrk's errors and non-2xx, and the
#     checking clients');
#   - RSS flat: its mean over the last minute of load is within 5% of its
#     mean over the first minute after the warm-up (a fifth of the run);
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
port=18700
ulimit -n 65536 2>/dev/null || true
fds() { ls "/proc/$1/fd" | wc -l; }
rss() { awk '/^VmRSS/{print $2}' "/proc/$1/status"; }
verdict=0
for poller in "${pollers[@]}"; do
  port=$((port + 1))
  csv="docs/soak-$poller.csv"
  # A connection limit the storms go beyond (8 loops of up to 200 each).
  target/release/cyclone serve --port "$port" --poller "$poller" --max-connections 1024 \
    --access-log off --log-level error > "$tmp/server.out" 2>&1 &
  pid=$!
  if ! wait_up "http://127.0.0.1:$port/hello"; then
    echo "soak: $poller: the server did not start: $(tail -c 300 "$tmp/server.out")"
    verdict=1; continue
  fi
  fds0=$(fds "$pid")
  echo "seconds,rss_kib,fds,good_ok,good_failed,hostile_done" > "$csv"
  wrk -t1 -c16 -d"${secs}s" "http://127.0.0.1:$port/hello" > "$tmp/wrk" 2>&1 &
  wrk_pid=$!
  python3 bench/soak_clients.py "$port" "$secs" "$tmp/status" 2> "$tmp/clients.err" &
  clients=$!
  t0=$(date +%s)
  while kill -0 "$clients" 2>/dev/null || kill -0 "$wrk_pid" 2>/dev/null; do
    t=$(( $(date +%s) - t0 ))
    ok=0; failed=0; hostile=0
    [ -f "$tmp/status" ] && read -r ok failed hostile < "$tmp/status"
    echo "$t,$(rss "$pid"),$(fds "$pid"),$ok,$failed,$hostile" >> "$csv"
    sleep 5
  done
  clients_ok=0; wait "$clients" && clients_ok=1
  wait "$wrk_pid" || true
  read -r ok failed hostile < "$tmp/status"
  wrk_reqs=$(awk '/requests in/{print $1}' "$tmp/wrk")
  wrk_errors=$(awk '/Socket errors/{gsub(",",""); s=$4+$6+$8+$10} /Non-2xx/{n=$NF} END{print s+n}' "$tmp/wrk")
  # The load is gone: wait for its connections to close on the server.
  fds1=$(fds "$pid")
  for _ in $(seq 60); do [ "$fds1" -le "$fds0" ] && break; sleep 1; fds1=$(fds "$pid"); done
  rss_note=$(awk -F, -v w="$warm" -v end="$secs" 'NR > 1 && $1 >= w && $1 < w + 60 {a += $2; na++}
    NR > 1 && $1 >= end - 60 && $1 < end {b += $2; nb++}
    END { if (na && nb) printf "%.0f %.0f %.4f", a/na, b/nb, (b/nb)/(a/na); else print "0 0 0" }' "$csv")
  read -r rss_first rss_last rss_ratio <<< "$rss_note"
  if [ "$fds1" != "$fds0" ]; then
    # What was left open: the evidence for whoever looks into it.
    echo "soak: $poller: descriptors still open after the load:"
    ls -l "/proc/$pid/fd" | sed 's/^/  /'
    ss -tanp 2>/dev/null | grep "pid=$pid," | sed 's/^/  /' || true
  fi
  kill "$pid"; wait "$pid" 2>/dev/null || true
  pass=1
  [ "$failed" = 0 ] && [ "$clients_ok" = 1 ] && [ "${wrk_errors:-1}" = 0 ] || pass=0
  awk -v r="$rss_ratio" 'BEGIN{exit !(r > 0 && r <= 1.05)}' || pass=0
  [ "$fds1" = "$fds0" ] || pass=0
  echo "soak: $poller, $minutes min: $([ $pass = 1 ] && echo passed || echo FAILED):" \
    "good requests $((ok + ${wrk_reqs:-0})) (checking clients $ok, wrk ${wrk_reqs:-?}), failed $((failed + ${wrk_errors:-0}));" \
    "hostile connections $hostile;" \
    "RSS $rss_first KiB after warm-up, $rss_last KiB at the end (x$rss_ratio, limit 1.05);" \
    "descriptors $fds0 before, $fds1 after"
  [ -s "$tmp/clients.err" ] && head -5 "$tmp/clients.err"
  [ $pass = 1 ] || verdict=1
  python3 - "$csv" "docs/soak-$poller.svg" "$poller" "$minutes" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
W, H, P = 720, 300, 50
t = [int(r["seconds"]) for r in rows] or [0]
series = [("RSS KiB", [int(r["rss_kib"]) for r in rows], "#c33"), ("open fds", [int(r["fds"]) for r in rows], "#36c")]
out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
       f'<text x="10" y="18" font-weight="bold">bench/soak.sh {sys.argv[4]} ({sys.argv[3]}): RSS and open descriptors, each scaled to its own maximum</text>']
tmax = max(t) or 1
for i, (name, ys, colour) in enumerate(series):
    ymax = max(ys or [1]) or 1
    pts = " ".join(f"{P + (x / tmax) * (W - 2 * P):.1f},{H - P - (y / ymax) * (H - 2 * P):.1f}" for x, y in zip(t, ys))
    out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{pts}"/>')
    out.append(f'<text x="{P + i * 220}" y="{H - 15}" fill="{colour}">{name} (max {ymax})</text>')
out.append(f'<text x="{W - P - 60}" y="{H - 15}">{tmax} s</text></svg>')
open(sys.argv[2], "w").write("\n".join(out) + "\n")
PY
done
exit "$verdict"
