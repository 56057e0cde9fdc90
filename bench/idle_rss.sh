#!/usr/bin/env bash
# RSS per idle keep-alive connection of `cyclone serve`: N connections
# (default 5000) each get one answer and stay open; the server's VmRSS
# growth divided by N. (bench/run.sh measures the same for every peer.)
#
#   bench/idle_rss.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-5000}
cargo build --release --quiet
cargo build --release --quiet --manifest-path bench/peers/Cargo.toml
ulimit -n $(( n * 2 + 1000 ))
port=18960
target/release/cyclone serve --port "$port" --log-level warn >/dev/null 2>&1 &
pid=$!
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/hello" && break; sleep 0.05; done
before=$(awk '/^VmRSS/{print $2}' "/proc/$pid/status")
coproc IDLE { bench/peers/target/release/idle_conns "$port" "$n" /hello; }
read -r -t 60 ready <&"${IDLE[0]}"
[ "$ready" = ready ] || { echo "the idle connections did not open" >&2; exit 1; }
sleep 0.5
after=$(awk '/^VmRSS/{print $2}' "/proc/$pid/status")
awk -v a="$before" -v b="$after" -v n="$n" 'BEGIN{printf "RSS per idle keep-alive connection: %.2f KiB (%d connections)\n", (b-a)/n, n}'
