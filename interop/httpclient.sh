#!/usr/bin/env bash
# Cyclone's HTTP client (through `cyclone fetch`) against nginx, a server
# it shares no code with: keep-alive reuse (nginx's own $connection and
# $connection_requests in its access log), gzip decoded and not, chunked
# bodies, HEAD, redirects (`return 30x`: POST to GET or kept, relative
# Location, a loop stopped at the limit); and through tinyproxy, a proxy
# it shares no code with: `http://` forwarded, `https://` in a CONNECT
# tunnel (to `cyclone serve --tls-self-signed`), Basic credentials.
# Installs Debian's nginx and tinyproxy when missing, builds Cyclone,
# starts them on free ports of 127.0.0.1, runs every check with a time
# limit, and ends with `interop: N passed, N failed` (counted by
# .ci/run); exit 1 if any failed.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=interop/lib.sh
. interop/lib.sh

if ! command -v nginx > /dev/null || ! command -v tinyproxy > /dev/null; then
  say "installing Debian's nginx and tinyproxy"
  timeout 300 apt-get update -qq
  DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq nginx-light tinyproxy > /dev/null 2>&1 ||
    DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq nginx tinyproxy > /dev/null
fi
cargo build --release --bin cyclone
cyclone=$PWD/target/release/cyclone

tmp=$(mktemp -d)
chmod 755 "$tmp"
tls_pid=""
cleanup() {
  if [ -f "$tmp/nginx.pid" ]; then kill "$(cat "$tmp/nginx.pid")" 2> /dev/null || true; fi
  if [ -f "$tmp/tinyproxy.pid" ]; then kill "$(cat "$tmp/tinyproxy.pid")" 2> /dev/null || true; fi
  if [ -n "$tls_pid" ]; then kill "$tls_pid" 2> /dev/null || true; wait "$tls_pid" 2> /dev/null || true; fi
  rm -rf "$tmp" "${cert_dir:-/nonexistent}"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=$(free_port)
# A text long enough for gzip (nginx compresses from gzip_min_length).
mkdir -p "$tmp/www/dir"
for i in $(seq 200); do echo "line $i of a text that compresses well"; done > "$tmp/www/text.txt"
chmod -R a+rX "$tmp/www"
cat > "$tmp/nginx.conf" << CONF
worker_processes 1;
daemon on;
pid $tmp/nginx.pid;
error_log $tmp/error.log;
events { worker_connections 64; }
http {
  log_format conn '\$connection \$connection_requests \$request_method \$uri';
  access_log $tmp/access.log conn;
  client_body_temp_path $tmp;
  keepalive_timeout 30s;
  default_type text/plain;
  # Location as written (relative): the client resolves it (RFC 3986).
  absolute_redirect off;
  server {
    listen 127.0.0.1:$port;
    root $tmp/www;
    location = /hello { return 200 "Hello from nginx"; }
    location = /method { return 200 "\$request_method"; }
    location = /r302 { return 302 /method; }
    location = /r303 { return 303 /method; }
    location = /r307 { return 307 /method; }
    location = /r308 { return 308 /method; }
    location = /dir/relative { return 302 ../hello; }
    location = /loop { return 302 /loop; }
    location = /gz/text.txt {
      alias $tmp/www/text.txt;
      gzip on; gzip_min_length 1; gzip_types text/plain;
    }
  }
}
CONF
nginx -c "$tmp/nginx.conf"
for _ in $(seq 100); do
  [ -s "$tmp/nginx.pid" ] && (echo > "/dev/tcp/127.0.0.1/$port") 2> /dev/null && break
  sleep 0.05
done
base="http://127.0.0.1:$port"
say "nginx $(nginx -v 2>&1 | cut -d/ -f2) is up on 127.0.0.1:$port"

# An HTTPS origin for the tunnel: `cyclone serve --tls-self-signed`, which
# names its certificate on its first line.
tls_port=$(free_port)
"$cyclone" serve --tls-self-signed --port "$tls_port" --log-level warn > "$tmp/tls.log" 2>&1 &
tls_pid=$!
for _ in $(seq 200); do
  grep -q 'listening on https://' "$tmp/tls.log" && break
  sleep 0.05
done
cert=$(sed -n 's/.* written to \([^:]*\): trust it.*/\1/p' "$tmp/tls.log")
cert_dir=$(dirname "${cert:-/nonexistent/x}")
# tinyproxy: Basic credentials required; CONNECT allowed to the TLS port.
proxy_port=$(free_port)
cat > "$tmp/tinyproxy.conf" << CONF
Port $proxy_port
Listen 127.0.0.1
Timeout 30
MaxClients 16
Allow 127.0.0.1
BasicAuth user secret
ConnectPort $tls_port
PidFile "$tmp/tinyproxy.pid"
LogFile "$tmp/tinyproxy.log"
LogLevel Connect
CONF
tinyproxy -c "$tmp/tinyproxy.conf"
for _ in $(seq 100); do
  (echo > "/dev/tcp/127.0.0.1/$proxy_port") 2> /dev/null && break
  sleep 0.05
done
proxy="http://user:secret@127.0.0.1:$proxy_port"
say "tinyproxy $(tinyproxy -v 2>&1 | awk '{print $2}') on 127.0.0.1:$proxy_port; cyclone https on 127.0.0.1:$tls_port"

# expect WHAT TEXT PATTERN -> TEXT must match the extended regex PATTERN.
expect() {
  if grep -Eq "$3" <<< "$2"; then echo "ok $1"; else echo "FAIL $1: no /$3/ in:"; echo "$2" | head -20; return 1; fi
}
fetch() { timeout 20 "$cyclone" fetch "$@"; }

keep_alive() {
  : > "$tmp/access.log"
  local out
  out=$(fetch "$base/hello" "$base/hello" "$base/hello")
  expect "three bodies in order" "$out" '^(Hello from nginx){3}$' || return 1
  # nginx writes its log line after each response; wait for the third.
  for _ in $(seq 100); do [ "$(wc -l < "$tmp/access.log")" -ge 3 ] && break; sleep 0.05; done
  local log
  log=$(cat "$tmp/access.log")
  expect "one connection carried the three requests (nginx's \$connection)" \
    "$(awk '{print $1}' <<< "$log" | sort -u | wc -l) $(awk '{print $2}' <<< "$log" | tr '\n' ' ')" '^1 1 2 3 $'
}
gzip_decoded() {
  local out
  out=$(fetch -i "$base/gz/text.txt" | tr -d '\r')
  expect "the gzip coding is consumed" "$out" '^x-consumed-content-encoding: gzip$' || return 1
  expect "no Content-Encoding left" "$(grep -ci '^content-encoding' <<< "$out" || true)" '^0$' || return 1
  diff <(fetch "$base/gz/text.txt") "$tmp/www/text.txt" && echo "ok the decoded body is the file"
}
gzip_raw_chunked() {
  local head
  head=$(fetch -i --no-decompress -H 'Accept-Encoding: gzip' "$base/gz/text.txt" | tr -d '\r' | sed '/^$/q')
  expect "nginx sent gzip" "$head" '^content-encoding: gzip$' || return 1
  expect "nginx sent it chunked" "$head" '^transfer-encoding: chunked$' || return 1
  diff <(fetch --no-decompress -H 'Accept-Encoding: gzip' "$base/gz/text.txt" | gunzip) "$tmp/www/text.txt" &&
    echo "ok the chunked gzip body, unchunked, gunzips to the file"
}
head_request() {
  local out
  out=$(fetch -i -X HEAD "$base/text.txt" | tr -d '\r')
  expect "HEAD: the length of the file" "$out" "^content-length: $(wc -c < "$tmp/www/text.txt")$" || return 1
  expect "HEAD: no body after the blank line" "$(sed '1,/^$/d' <<< "$out" | wc -c)" '^0$'
}
redirects() {
  expect "302 turns POST into GET" "$(fetch -d x "$base/r302")" '^GET$' || return 1
  expect "303 turns POST into GET" "$(fetch -d x "$base/r303")" '^GET$' || return 1
  expect "307 keeps POST" "$(fetch -d x "$base/r307")" '^POST$' || return 1
  expect "308 keeps POST" "$(fetch -d x "$base/r308")" '^POST$' || return 1
  expect "a relative Location (../hello from /dir/relative)" "$(fetch "$base/dir/relative")" '^Hello from nginx$' || return 1
  expect "--max-redirects 0 prints the 302" "$(fetch -i --max-redirects 0 "$base/r302" | head -1)" '^HTTP/1.1 302' || return 1
  local rc=0
  fetch "$base/loop" > /dev/null 2> "$tmp/loop.err" || rc=$?
  expect "a redirect loop stops at the limit (exit 47)" "$rc $(cat "$tmp/loop.err")" '^47 .*too many redirects'
}

forward_proxy() {
  expect "http:// through tinyproxy, with credentials" \
    "$(fetch --proxy "$proxy" "$base/hello")" '^Hello from nginx$' || return 1
  # tinyproxy refuses with 401 where RFC 9110 §15.5.8 says 407.
  expect "wrong credentials: tinyproxy's refusal is the response" \
    "$(fetch -i --proxy "http://user:wrong@127.0.0.1:$proxy_port" "$base/hello" | head -1)" '^HTTP/1\.[01] 40[17]'
}
connect_tunnel() {
  expect "https:// in tinyproxy's CONNECT tunnel" \
    "$(fetch --proxy "$proxy" --cacert "$cert" "https://localhost:$tls_port/hello")" '^Hello, World!$' || return 1
  local rc=0
  fetch --proxy "http://user:wrong@127.0.0.1:$proxy_port" --cacert "$cert" "https://localhost:$tls_port/hello" \
    > /dev/null 2> "$tmp/tunnel.err" || rc=$?
  expect "a refused tunnel: exit 56 naming the proxy's status" "$rc $(cat "$tmp/tunnel.err")" '^56 .*refused the tunnel: 40[17]'
}

check "keep-alive: cyclone fetch x3 -> nginx, one connection" keep_alive
check "gzip from nginx, decoded" gzip_decoded
check "gzip from nginx, raw and chunked" gzip_raw_chunked
check "HEAD to nginx" head_request
check "nginx return 30x" redirects
check "tinyproxy forwarding http://" forward_proxy
check "tinyproxy CONNECT to https://" connect_tunnel
summary
