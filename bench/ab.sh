#!/usr/bin/env bash
# A/B: two builds of Cyclone measured in one run, so that a refactoring or
# an optimisation is judged against its own base on the same machine
# state rather than against figures from another day.
#
#   bench/ab.sh BASE_REV [--repeat N] [--seconds S]
#
# Builds BASE_REV (any git revision) in a worktree under bench/.ab and the
# working tree as it is, then measures both, alternating base and head
# each repetition, for four servers: the demo site's GET /hello through
# the web layer (`cyclone serve --log-level warn`) and the HTTP layer alone
# (examples/hello), each on epoll and on io_uring (where the kernel allows
# it). Server on CPU 0, wrk -t1 -c64 on CPU 1; keep-alive and 16-deep
# pipelined requests per server CPU-second (lib.sh's wrk_load), medians of
# N, and head/base ratios. Installs wrk through apt if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: $0 BASE_REV [--repeat N] [--seconds S]" >&2; exit 2; }
base_rev=$1; shift
repeat=5; seconds=5
while [ $# -gt 0 ]; do
  case "$1" in
    --repeat) repeat="$2"; shift 2 ;;
    --seconds) seconds="$2"; shift 2 ;;
    *) echo "usage: $0 BASE_REV [--repeat N] [--seconds S]" >&2; exit 2 ;;
  esac
done
port=18400
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
. bench/lib.sh
need wrk || install_tools wrk

base_dir=${AB_BASE_DIR:-bench/.ab/base} # a worktree of its own (its target/ is kept between runs)
base_sha=$(git rev-parse --verify "$base_rev^{commit}")
if [ ! -d "$base_dir" ]; then
  git worktree add --detach "$base_dir" "$base_sha" >/dev/null
else
  git -C "$base_dir" checkout --quiet --detach "$base_sha"
fi
(cd "$base_dir" && cargo build --release --quiet --bin cyclone --example hello)
cargo build --release --quiet --bin cyclone --example hello

# name|command (BIN is the build's target/release, PORT the port)
servers=(
  "web layer (epoll)|BIN/cyclone serve --port PORT --log-level warn --poller epoll"
  "web layer (uring)|BIN/cyclone serve --port PORT --log-level warn --poller uring"
  "http1 only (epoll)|env CYCLONE_POLLER=epoll BIN/examples/hello PORT"
  "http1 only (uring)|env CYCLONE_POLLER=uring BIN/examples/hello PORT"
)
declare -A BIN=([base]="$base_dir/target/release" [head]=target/release)

pid=""
start() { # build command -> sets pid; fails if the server never answers
  local cmd="${2//BIN/${BIN[$1]}}"
  cmd="${cmd//PORT/$port}"
  # shellcheck disable=SC2086
  taskset -c 0 $cmd > "$tmp/out" 2>&1 &
  pid=$!
  wait_up "http://127.0.0.1:$port/hello" || { kill "$pid" 2>/dev/null; wait 2>/dev/null; return 1; }
}
stop() { kill "$pid" 2>/dev/null || true; wait 2>/dev/null || true; sleep 0.3; }

declare -A R
for entry in "${servers[@]}"; do
  IFS='|' read -r name cmd <<< "$entry"
  echo "== $name" >&2
  for _ in $(seq "$repeat"); do
    for build in base head; do
      if ! start "$build" "$cmd"; then R[$name,$build,skip]=1; continue; fi
      R[$name,$build,ka]+="$(wrk_load "http://127.0.0.1:$port/hello" "$pid" keepalive "$seconds" | awk '{print $4}') "
      R[$name,$build,pl]+="$(wrk_load "http://127.0.0.1:$port/hello" "$pid" pipelined "$seconds" | awk '{print $4}') "
      stop
    done
  done
done

med() { printf '%s\n' $1 | median; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a ~ /^[0-9.]+$/ && b > 0) printf "%.3f", a/b; else print "n/a" }'; }
echo "# A/B: $(git rev-parse --short "$base_sha") (base) vs the working tree (head)"
echo
echo "- date: $(date -u +%Y-%m-%dT%H:%MZ); $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores, kernel $(uname -r)"
echo "- command: \`bench/ab.sh $base_rev --repeat $repeat --seconds $seconds\`; server on CPU 0, wrk -t1 -c64 on CPU 1, base and head alternating; requests per server CPU-second, median of $repeat runs of $seconds s (all runs listed)"
echo
echo "| server | load | base | head | head/base | base runs | head runs |"
echo "|---|---|---:|---:|---:|---|---|"
for entry in "${servers[@]}"; do
  IFS='|' read -r name _ <<< "$entry"
  if [ -n "${R[$name,base,skip]:-}${R[$name,head,skip]:-}" ]; then
    echo "| $name | | n/a | n/a | n/a | | |"
    continue
  fi
  for load in ka pl; do
    b=$(med "${R[$name,base,$load]}"); h=$(med "${R[$name,head,$load]}")
    label=$([ $load = ka ] && echo keep-alive || echo "pipelined x16")
    echo "| $name | $label | $b | $h | $(ratio "$h" "$b") | ${R[$name,base,$load]% } | ${R[$name,head,$load]% } |"
  done
done
