#!/usr/bin/env bash
# HTTPS benchmarks: Cyclone against nginx, side by side in one run, with
# the same certificate (ECDSA P-256), TLS 1.3, one nginx worker against
# Cyclone's one loop, each pinned to CPU 0 with its load on CPU 1:
#   (a) keep-alive HTTPS requests per server CPU-second, and p99 (wrk);
#   (b) full handshakes per server CPU-second (openssl s_time -new);
#   (c) resumed handshakes per server CPU-second (openssl s_time -reuse,
#       a session ticket each time);
#   (d) a 1 MiB static file over TLS: MiB per server CPU-second (wrk);
#   (e) RSS per idle TLS connection (bench/peers' idle_conns over TLS: N
#       connections, one request each, then idle).
# Both servers are held to TLS_AES_128_GCM_SHA256 (Cyclone with
# --tls-ciphers, nginx with ssl_conf_command Ciphersuites) and X25519 (the
# client's first group).
#
#   bench/tls.sh [--repeat N] [--seconds S] [--idle N] [--out FILE]
#
# Writes a Markdown report (default docs/tls-benchmarks.md). Installs wrk,
# nginx and openssl from Debian when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

repeat=3; seconds=5; idle=5000; out=docs/tls-benchmarks.md
while [ $# -gt 0 ]; do
  case "$1" in
    --repeat) repeat="$2"; shift 2 ;;
    --seconds) seconds="$2"; shift 2 ;;
    --idle) idle="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    *) echo "usage: $0 [--repeat N] [--seconds S] [--idle N] [--out FILE]" >&2; exit 2 ;;
  esac
done

tmp=$(mktemp -d)
# shellcheck source=bench/lib.sh
. bench/lib.sh
pid=""
cleanup() {
  # shellcheck disable=SC2046 # job ids are numbers
  kill $(jobs -p) 2> /dev/null || true
  [ -f "$tmp/nginx.pid" ] && kill "$(cat "$tmp/nginx.pid")" 2> /dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

if ! need wrk || ! need nginx || ! need openssl; then
  install_tools wrk nginx-light openssl
fi
cargo build --release --quiet --bin cyclone
cargo build --release --quiet --manifest-path bench/peers/Cargo.toml --bin idle_conns
ulimit -Sn "$(( idle + 1000 > 20000 ? idle + 1000 : 20000 ))" 2> /dev/null || true

# The certificate both servers present: ECDSA P-256, for localhost and
# 127.0.0.1, valid two days.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
  -addext "basicConstraints=critical,CA:FALSE" \
  -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2> /dev/null
mkdir -p "$tmp/www"
head -c $((1 << 20)) /dev/urandom > "$tmp/www/big.bin"

# nginx: one worker, TLS 1.2 and 1.3, tickets on, `return 200` for
# /hello, files from $tmp/www (sendfile does not apply to TLS without
# kTLS).
nginx_tls_conf() { # FILE PORT
  cat > "$1" << CONF
worker_processes 1;
worker_rlimit_nofile $(( idle + 1000 ));
daemon off;
pid $tmp/nginx.pid;
error_log $tmp/error.log;
events { worker_connections $(( idle + 1000 )); }
http {
  access_log off;
  keepalive_requests 1000000000;
  keepalive_timeout 300s;
  client_body_temp_path $tmp;
  server {
    listen 127.0.0.1:$2 ssl;
    ssl_certificate $tmp/cert.pem;
    ssl_certificate_key $tmp/key.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_tickets on;
    ssl_conf_command Ciphersuites TLS_AES_128_GCM_SHA256;
    location = /hello { default_type text/plain; return 200 "Hello, World!"; }
    location / { root $tmp/www; }
  }
}
CONF
}

port=18600
# start NAME -> starts NAME's server on a new port; sets pid (the process
# doing the work) and port.
start() {
  port=$(( port + 1 ))
  case "$1" in
    cyclone) taskset -c 0 target/release/cyclone serve --port "$port" --address 127.0.0.1 \
               --log-level warn --tls-cert "$tmp/cert.pem" --tls-key "$tmp/key.pem" \
               --tls-ciphers TLS_AES_128_GCM_SHA256 > "$tmp/server.log" 2>&1 & pid=$! ;;
    cyclone-files) taskset -c 0 target/release/cyclone serve --port "$port" --address 127.0.0.1 \
               --log-level warn --root "$tmp/www" --tls-cert "$tmp/cert.pem" --tls-key "$tmp/key.pem" \
               --tls-ciphers TLS_AES_128_GCM_SHA256 > "$tmp/server.log" 2>&1 & pid=$! ;;
    nginx) nginx_tls_conf "$tmp/nginx.conf" "$port"
           taskset -c 0 nginx -c "$tmp/nginx.conf" > "$tmp/server.log" 2>&1 & ;;
  esac
  local _
  for _ in $(seq 200); do
    curl -s -o /dev/null --cacert "$tmp/cert.pem" "https://localhost:$port/big.bin" --resolve "localhost:$port:127.0.0.1" && break
    sleep 0.05
  done
  [ "$1" = nginx ] && pid=$(nginx_worker)
  [ -n "$pid" ] || { cat "$tmp/server.log"; echo "bench/tls.sh: $1 did not start" >&2; exit 1; }
}
stop() {
  if [ -f "$tmp/nginx.pid" ]; then kill "$(cat "$tmp/nginx.pid")" 2> /dev/null || true; rm -f "$tmp/nginx.pid"; fi
  # shellcheck disable=SC2046
  kill $(jobs -p) 2> /dev/null || true
  wait 2> /dev/null || true
  pid=""
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# handshakes MODE -> "count per_cpu_s": openssl s_time on CPU 1 for the
# run's seconds, full (-new) or resumed (-reuse) handshakes, each with a
# GET /hello (so that TLS 1.3 tickets arrive); per server CPU-second.
handshakes() {
  local c0 c1 o n
  c0=$(cpu_ticks "$pid")
  o=$(taskset -c 1 timeout $(( seconds + 30 )) openssl s_time -connect "127.0.0.1:$port" \
        "-$1" -time "$seconds" -www /hello -CAfile "$tmp/cert.pem" 2>&1 || true)
  c1=$(cpu_ticks "$pid")
  n=$(awk '/connections in [0-9.]+ real seconds/{print $1}' <<< "$o" | tail -1)
  awk -v n="${n:-0}" -v c="$((c1 - c0))" -v hz="$hz" 'BEGIN{ if (c > 0 && n > 0) printf "%d %.0f", n, n/(c/hz); else print "0 n/a" }'
}

# big_file -> "MiB/s MiB_per_cpu_s": wrk -c8 fetching the 1 MiB file.
big_file() {
  local c0 c1 o reqs
  c0=$(cpu_ticks "$pid")
  o=$(taskset -c 1 wrk -t1 -c8 -d"${seconds}s" "https://127.0.0.1:$port/big.bin")
  c1=$(cpu_ticks "$pid")
  reqs=$(awk '/requests in/{print $1}' <<< "$o")
  awk -v r="$reqs" -v s="$seconds" -v c="$((c1 - c0))" -v hz="$hz" 'BEGIN{ if (c > 0) printf "%.0f %.0f", r/s, r/(c/hz); else print "n/a n/a" }'
}

declare -A L R
for r in $(seq "$repeat"); do
  for name in cyclone nginx; do
    echo "== $name, pass $r of $repeat" >&2
    start "$name"
    L[$name,ka]+="$(wrk_load "https://127.0.0.1:$port/hello" "$pid" keepalive "$seconds")"$'\n'
    L[$name,full]+="$(handshakes new)"$'\n'
    L[$name,resumed]+="$(handshakes reuse)"$'\n'
    if [ "$name" = cyclone ]; then stop; start cyclone-files; fi
    L[$name,big]+="$(big_file)"$'\n'
    stop
  done
done
for name in cyclone nginx; do
  col() { awk -v k="$2" '{print $k}' <<< "${L[$name,$1]}" | grep -E '^[0-9.]+$' | median; }
  R[$name,rps]=$(col ka 1); R[$name,p99]=$(col ka 3); R[$name,ka_cpu]=$(col ka 4)
  R[$name,full]=$(col full 2); R[$name,resumed]=$(col resumed 2)
  R[$name,big_rate]=$(col big 1); R[$name,big_cpu]=$(col big 2)
  echo "== $name, $idle idle TLS connections" >&2
  start "$name"
  R[$name,rss]=$(rss_per_idle "$port" "$pid" "$idle" /hello "$tmp/cert.pem")
  stop
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a+0 > 0 && b+0 > 0) printf "%.2fx", a/b; else print "n/a" }'; }
{
  echo "# HTTPS benchmarks: Cyclone and nginx"
  echo
  echo "- date: $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "- machine: $(awk -F': ' '/model name/{print $2; exit}' /proc/cpuinfo), $(nproc) cores, kernel $(uname -r)"
  echo "- versions: nginx $(nginx -v 2>&1 | cut -d/ -f2), $(openssl version | cut -d' ' -f1-2), wrk $(wrk -v 2>&1 | head -1 | awk '{print $2}'), $(rustc --version | cut -d' ' -f1-2); Cyclone on rustls $(awk '/^name = "rustls"$/{getline; print $3}' Cargo.lock | tr -d '"') with aws-lc-rs"
  echo "- command: \`bench/tls.sh --repeat $repeat --seconds $seconds --idle $idle\`"
  echo "- method: each server alone, pinned to CPU 0, its load on CPU 1; medians of $repeat runs of $seconds s, made in passes over both servers. Same ECDSA P-256 certificate; TLS 1.3 with TLS_AES_128_GCM_SHA256 and X25519 on both. Cyclone: \`cyclone serve --tls-cert --tls-key\` (its demo site's \`/hello\` through the web layer; \`--root\` for the file); nginx: one worker, \`return 200\` for /hello, the file from \`root\`, session tickets on. Per server CPU-second: the work done over the server process's CPU time (/proc). Handshakes: \`openssl s_time -new\` (full) and \`-reuse\` (resumed with a ticket), each connection with a GET /hello. RSS: VmRSS growth over $idle idle TLS connections that each had one answer (bench/peers' idle_conns over TLS)."
  echo
  echo "| server | keep-alive req/s | p99 ms | keep-alive req per CPU-s | full handshakes per CPU-s | resumed handshakes per CPU-s | 1 MiB file: req/s | 1 MiB files per CPU-s | RSS KiB per idle TLS conn |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
  for name in cyclone nginx; do
    echo "| $name | ${R[$name,rps]} | ${R[$name,p99]} | ${R[$name,ka_cpu]} | ${R[$name,full]} | ${R[$name,resumed]} | ${R[$name,big_rate]} | ${R[$name,big_cpu]} | ${R[$name,rss]} |"
  done
  echo
  echo "## Cyclone against the targets (this run)"
  echo
  echo "- keep-alive HTTPS per CPU-s: $(ratio "${R[cyclone,ka_cpu]}" "${R[nginx,ka_cpu]}") nginx (target >= 1.0x); p99 ${R[cyclone,p99]} ms vs ${R[nginx,p99]} ms"
  echo "- full handshakes per CPU-s: $(ratio "${R[cyclone,full]}" "${R[nginx,full]}") nginx (target >= 1.0x); resumed: $(ratio "${R[cyclone,resumed]}" "${R[nginx,resumed]}")"
  echo "- 1 MiB file over TLS per CPU-s: $(ratio "${R[cyclone,big_cpu]}" "${R[nginx,big_cpu]}") nginx (no kTLS on either: this kernel has no tls module)"
  echo "- RSS per idle TLS connection: ${R[cyclone,rss]} KiB vs nginx ${R[nginx,rss]} KiB (target <= nginx)"
} > "$out"
cat "$out"
