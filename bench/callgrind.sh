#!/usr/bin/env bash
# User-space instructions per request, counted by callgrind (deterministic,
# unlike timings on this shared machine): the profile behind the request
# path's optimisations.
#
#   bench/callgrind.sh [--depth N] [--path P] [--top N] [--keep FILE] [--bare] [--serve-args "ARGS"]
#
# Builds `cyclone` (release, with debug info), runs `cyclone serve` under
# callgrind, warms up with 20 batches from 8 connections, zeroes the
# counters, sends 100 batches of N pipelined GET P (default 16, /hello)
# on each connection, and prints instructions per request and the top
# functions (inclusive). --keep saves the raw profile for
# callgrind_annotate (say, --tree=caller to see who calls memcpy).
# --bare profiles the HTTP layer alone (examples/hello.rs) instead;
# --serve-args replaces `cyclone serve`'s `--log-level warn` (say,
# "--access-log off" to see what the default logging costs).
# Installs valgrind through apt if missing.
set -euo pipefail
depth=16; path=/hello; top=30; keep=""; bare=0; serve_args="--log-level warn"
while [ $# -gt 0 ]; do
  case "$1" in
    --depth) depth="$2"; shift 2 ;;
    --path) path="$2"; shift 2 ;;
    --top) top="$2"; shift 2 ;;
    --keep) keep=$(realpath -m "$2"); shift 2 ;;
    --bare) bare=1; shift ;;
    --serve-args) serve_args="$2"; shift 2 ;;
    *) echo "usage: $0 [--depth N] [--path P] [--top N] [--keep FILE] [--bare] [--serve-args \"ARGS\"]" >&2; exit 2 ;;
  esac
done
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null 2>&1 || { apt-get update -qq >/dev/null; apt-get install -y -qq valgrind >/dev/null; }
CARGO_PROFILE_RELEASE_DEBUG=true cargo build --release --quiet --bin cyclone --example hello
port=18950
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
read -ra extra <<< "$serve_args"
server=(target/release/cyclone serve "${extra[@]}" --port "$port")
[ "$bare" = 0 ] || server=(target/release/examples/hello "$port")
valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.%p" "${server[@]}" >/dev/null 2>&1 &
vg=$!
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port$path" && break; sleep 0.2; done
client() { python3 bench/callgrind_client.py "$port" "$1" "$depth" "$path"; }
client 20
callgrind_control -z "$vg" >/dev/null 2>&1
client 100
callgrind_control -d "$vg" >/dev/null 2>&1
kill "$vg"; wait "$vg" 2>/dev/null || true # TERM: SIGINT is ignored in a background job
dump=$(ls "$tmp"/cg.*.1)
[ -z "$keep" ] || cp "$dump" "$keep"
total=$(callgrind_annotate "$dump" | awk '/PROGRAM TOTALS/{gsub(",","",$1); print $1}')
echo "user-space instructions per request: $(awk -v t="$total" -v n=$((100 * depth * 8)) 'BEGIN{printf "%.0f", t/n}') ($((100 * depth * 8)) requests, $depth per write, GET $path)"
callgrind_annotate --inclusive=yes "$dump" | grep -E '^ *[0-9,]+ \(' | sed 's/([ 0-9.]*%)//' |
  awk -v n=$((100 * depth * 8)) '{gsub(",","",$1); printf "%7.0f  %s\n", $1/n, $2}' | sed -n "2,${top}p"
