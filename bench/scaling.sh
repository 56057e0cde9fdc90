#!/usr/bin/env bash
# Multi-core scaling of `cyclone serve`: one loop, then --threads N and
# --processes N for N = 2.., each pinned to CPUs 0..N-1, with wrk pinned
# to the CPUs left (at least one), keep-alive and 16-deep pipelined GET
# /hello.
#
#   bench/scaling.sh [--max N] [--seconds S] [--repeat R]
#
# Reports, per configuration: requests/s (median of R runs), requests per
# server CPU-second (the server's user+system time over the run, every
# thread and worker process summed: the fair figure when wrk shares a
# CPU), and the scaling efficiency against one loop (requests/s over N
# times one loop's). --max defaults to the CPUs there are minus one for
# wrk, but at least 2: on a 2-CPU machine the second worker then shares
# CPU 1 with wrk, which the table says; only requests per CPU-second are
# comparable there. On a larger machine give wrk enough CPUs to stay
# ahead of the server (about one per 150 k keep-alive requests/s, as
# measured here), e.g. on 16 CPUs: bench/scaling.sh --max 8 (wrk gets
# CPUs 8-15, 8 threads).
set -euo pipefail
cd "$(dirname "$0")/.."
cpus=$(nproc)
max=$(( cpus > 2 ? cpus - 1 : 2 )); seconds=5; repeat=3
while [ $# -gt 0 ]; do
  case "$1" in
    --max) max="$2"; shift 2 ;;
    --seconds) seconds="$2"; shift 2 ;;
    --repeat) repeat="$2"; shift 2 ;;
    *) echo "usage: $0 [--max N] [--seconds S] [--repeat R]" >&2; exit 2 ;;
  esac
done
tmp=$(mktemp -d)
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2> /dev/null || true; wait "$pid" 2> /dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
. bench/lib.sh
need wrk || install_tools wrk
cargo build --release --quiet --bin cyclone
port=18300

# server_ticks PID -> user+system clock ticks of PID, its threads and its
# child processes (forked workers).
server_ticks() {
  local p t=0
  for p in "$1" $(pgrep -P "$1" || true); do
    t=$(( t + $(awk '{print $14 + $15}' "/proc/$p/stat" 2> /dev/null || echo 0) ))
  done
  echo "$t"
}

# run LABEL N ARGS... -> a table row: the server with ARGS on CPUs 0..N-1.
run() {
  local label=$1 n=$2; shift 2
  local server_cpus="0-$(( n - 1 ))" wrk_cpus wrk_threads
  if [ "$n" -lt "$cpus" ]; then
    wrk_cpus="$n-$(( cpus - 1 ))"; wrk_threads=$(( cpus - n ))
  else
    wrk_cpus=$(( cpus - 1 )); wrk_threads=1 # shared with the server
  fi
  taskset -c "$server_cpus" target/release/cyclone serve --port "$port" --access-log off --log-level warn "$@" > "$tmp/out" 2>&1 &
  pid=$!
  wait_up "http://127.0.0.1:$port/hello"
  local mode line rps=() cps=() t0 t1 o reqs
  for mode in keepalive pipelined; do
    rps=(); cps=()
    for _ in $(seq "$repeat"); do
      local args=(-t"$wrk_threads" -c$(( 64 * wrk_threads )) -d"${seconds}s")
      [ "$mode" = pipelined ] && args+=(-s bench/http/pipeline.lua)
      t0=$(server_ticks "$pid")
      o=$(taskset -c "$wrk_cpus" wrk "${args[@]}" "http://127.0.0.1:$port/hello")
      t1=$(server_ticks "$pid")
      reqs=$(awk '/requests in/{print $1}' <<< "$o")
      rps+=("$(awk '/Requests\/sec/{printf "%.0f", $2}' <<< "$o")")
      cps+=("$(awk -v r="$reqs" -v t=$(( t1 - t0 )) -v hz="$hz" 'BEGIN{ if (t > 0) printf "%.0f", r / (t / hz); else print 0 }')")
    done
    line+=" $(printf '%s\n' "${rps[@]}" | median) $(printf '%s\n' "${cps[@]}" | median)"
  done
  kill "$pid"; wait "$pid" 2> /dev/null || true; pid=""
  echo "$label $n $server_cpus $wrk_cpus $wrk_threads$line"
}

rows=("$(run "1 loop" 1)")
for n in $(seq 2 "$max"); do
  rows+=("$(run "--threads $n" "$n" --threads "$n")")
  rows+=("$(run "--processes $n" "$n" --processes "$n")")
done

echo "## Scaling: \`bench/scaling.sh --max $max --seconds $seconds --repeat $repeat\`"
echo
echo "- $(date -u +%Y-%m-%dT%H:%MZ); $(lscpu | awk -F: '/Model name/{gsub(/^ +/, "", $2); print $2; exit}') ($cpus CPUs); cyclone $(git rev-parse --short HEAD 2> /dev/null || echo '?')"
echo "- medians of $repeat runs of ${seconds} s; wrk -c64 per wrk thread; req/CPU-s: requests per second of server CPU time (all its threads and processes)"
echo
echo "| server | server CPUs | wrk CPUs (threads) | keep-alive req/s | req/CPU-s | efficiency | pipelined req/s | req/CPU-s | efficiency |"
echo "|---|---|---|---:|---:|---:|---:|---:|---:|"
# eff RPS BASE N -> RPS / (N x BASE)
eff() { awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN{ if (b > 0) printf "%.2f", a / (n * b); else print "n/a" }'; }
base_k="" base_p=""
for r in "${rows[@]}"; do
  # The label may hold a space: the 8 figures are counted from the end.
  read -ra f <<< "$r"
  k=${#f[@]}
  label="${f[*]:0:k-8}"
  n=${f[k-8]} scpus=${f[k-7]} wcpus=${f[k-6]} wth=${f[k-5]}
  krps=${f[k-4]} kcps=${f[k-3]} prps=${f[k-2]} pcps=${f[k-1]}
  [ -n "$base_k" ] || { base_k=$krps; base_p=$prps; }
  shared=""
  [ "$n" -ge "$cpus" ] && shared=" (shared with the server)"
  echo "| $label | $scpus | $wcpus ($wth)$shared | $krps | $kcps | $(eff "$krps" "$base_k" "$n") | $prps | $pcps | $(eff "$prps" "$base_p" "$n") |"
done
