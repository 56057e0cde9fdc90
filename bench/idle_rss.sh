#!/usr/bin/env bash
# RSS per idle keep-alive connection of `cyclone serve`: N connections
# (default 5000) each get one answer and stay open; the server's VmRSS
# growth divided by N: bench/lib.sh's measure, which bench/run.sh uses
# for every peer.
#
#   bench/idle_rss.sh [N] [POLLER]     (POLLER: epoll, uring, poll, select)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-5000}
poller=${2:-}
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
. bench/lib.sh
cargo build --release --quiet --bin cyclone
cargo build --release --quiet --manifest-path bench/peers/Cargo.toml --bin idle_conns
ulimit -n $(( n * 2 + 1000 ))
port=18960
target/release/cyclone serve --port "$port" --log-level warn ${poller:+--poller "$poller"} >/dev/null 2>&1 &
pid=$!
wait_up "http://127.0.0.1:$port/hello" || { echo "cyclone serve did not answer" >&2; exit 1; }
kib=$(rss_per_idle "$port" "$pid" "$n" /hello)
[ "$kib" != n/a ] || { echo "the idle connections did not open" >&2; exit 1; }
echo "RSS per idle keep-alive connection: $kib KiB ($n connections${poller:+, $poller poller})"
