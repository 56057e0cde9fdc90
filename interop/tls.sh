#!/usr/bin/env bash
# Cyclone's HTTPS against TLS implementations it shares no code with:
#   curl (OpenSSL)        --cacert, no CA (refused), plain http:// (400)
#   openssl s_client      TLS 1.3 and 1.2 (1.1 refused), ALPN, SNI,
#                         verification, resumption (-sess_out/-sess_in)
#   Python's ssl module   a GET, ending with the server's close_notify
# Installs curl and openssl from Debian when missing, builds Cyclone,
# starts `cyclone serve --tls-self-signed` on a free port of 127.0.0.1,
# runs every check with a time limit, and ends with
# `interop: N passed, N failed` (counted by .ci/run); exit 1 if any failed.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=interop/lib.sh
. interop/lib.sh

if ! command -v curl > /dev/null || ! command -v openssl > /dev/null; then
  say "installing Debian's curl and openssl"
  timeout 300 apt-get update -qq
  DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq curl openssl > /dev/null
fi
cargo build --release --bin cyclone
cyclone=target/release/cyclone

tmp=$(mktemp -d)
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2> /dev/null || true; wait "$pid" 2> /dev/null || true; fi
  rm -rf "$tmp" "${cert_dir:-/nonexistent}"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$cyclone" serve --tls-self-signed --port "$port" --address 127.0.0.1 --log-level warn > "$tmp/cyclone.log" 2>&1 &
pid=$!
# The first line names the certificate; the second says it listens. 10 s
# at most.
cert=""
for _ in $(seq 200); do
  grep -q 'listening on https://' "$tmp/cyclone.log" && break
  kill -0 "$pid" 2> /dev/null || break
  sleep 0.05
done
cert=$(sed -n 's/.* written to \([^:]*\): trust it.*/\1/p' "$tmp/cyclone.log")
if [ -z "$cert" ] || ! grep -q 'listening on https://' "$tmp/cyclone.log"; then
  cat "$tmp/cyclone.log"
  say "FAIL: cyclone serve --tls-self-signed did not start within 10 s (its output is above)"
  exit 1
fi
cert_dir=$(dirname "$cert")
say "cyclone serve --tls-self-signed is up on 127.0.0.1:$port, certificate $cert"


# expect WHAT TEXT PATTERN -> TEXT must match the extended regex PATTERN.
expect() {
  if grep -Eq "$3" <<< "$2"; then echo "ok $1"; else echo "FAIL $1: no /$3/ in:"; echo "$2" | head -20; return 1; fi
}

url="https://localhost:$port/hello"
curl_trusting() {
  local out
  out=$(timeout 20 curl -sS --cacert "$cert" --resolve "localhost:$port:127.0.0.1" \
    -w ' %{http_code} %{http_version}' "$url")
  expect "curl --cacert: 200 over HTTP/1.1" "$out" '^Hello, World! 200 1\.1$'
}
curl_untrusting() {
  local rc=0
  timeout 20 curl -sS --resolve "localhost:$port:127.0.0.1" -o /dev/null "$url" 2> "$tmp/curl.err" || rc=$?
  # 60: the peer's certificate cannot be authenticated.
  expect "curl without the CA refuses it (exit 60)" "$rc $(cat "$tmp/curl.err")" '^60 .*self-signed'
}
curl_plain() {
  local out
  out=$(timeout 20 curl -sS -w ' %{http_code}' "http://127.0.0.1:$port/hello" | tr -d '\n')
  expect "plain http:// to the TLS port: a plain-text 400" "$out" 'https:// URL\. 400$'
}
check "curl --cacert -> cyclone https" curl_trusting
check "curl without the CA -> refused" curl_untrusting
check "curl http:// -> 400 in plain text" curl_plain

request=$'GET /hello HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'
# s_client ARGS... -> the session's printout, after one request.
s_client() {
  printf '%s' "$request" | timeout 20 openssl s_client -connect "127.0.0.1:$port" \
    -CAfile "$cert" -ign_eof "$@" 2>&1 || true
}
openssl_13() {
  local out
  out=$(s_client -servername localhost -alpn http/1.1 -verify_return_error)
  expect "TLS 1.3" "$out" '^New, TLSv1\.3' &&
    expect "ALPN http/1.1" "$out" '^ALPN protocol: http/1\.1' &&
    expect "verified" "$out" 'Verify return code: 0 \(ok\)' &&
    expect "served" "$out" '^Hello, World!'
}
openssl_12() {
  local out
  out=$(s_client -tls1_2 -servername localhost)
  expect "TLS 1.2" "$out" '^New, TLSv1\.2' && expect "served" "$out" '^Hello, World!'
}
openssl_11() {
  local out
  out=$(s_client -tls1_1)
  if grep -q '^New, TLSv1' <<< "$out"; then echo "FAIL TLS 1.1 was accepted"; return 1; fi
  expect "TLS 1.1 refused with an alert" "$out" 'alert (protocol version|handshake failure)'
}
openssl_alpn_h2() {
  local out
  out=$(s_client -servername localhost -alpn h2)
  expect "a client offering only h2 is refused" "$out" 'alert no application protocol'
}
openssl_resume() {
  local first second
  first=$(s_client -servername localhost -sess_out "$tmp/session.pem")
  second=$(s_client -servername localhost -sess_in "$tmp/session.pem")
  expect "first session is new" "$first" '^New, TLSv1\.3' &&
    expect "second session is resumed" "$second" '^Reused, TLSv1\.3'
}
check "openssl s_client: TLS 1.3, ALPN, SNI, verification" openssl_13
check "openssl s_client -tls1_2" openssl_12
check "openssl s_client -tls1_1 -> refused" openssl_11
check "openssl s_client -alpn h2 -> refused" openssl_alpn_h2
check "openssl s_client -sess_out / -sess_in -> resumed" openssl_resume

python_ssl() {
  timeout 30 python3 - "$port" "$cert" << 'PY'
import socket, ssl, sys
port, cafile = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=cafile)
with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
    # suppress_ragged_eofs=False: an EOF without close_notify raises.
    with ctx.wrap_socket(raw, server_hostname="localhost", suppress_ragged_eofs=False) as s:
        s.sendall(b"GET /hello HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(4096):
            data += chunk
        print("ok", s.version(), s.cipher()[0])
assert data.startswith(b"HTTP/1.1 200 OK\r\n") and data.endswith(b"Hello, World!"), data
print("ok a 200, then close_notify before the EOF")
PY
}
check "python ssl -> cyclone https, ending with close_notify" python_ssl

if kill -0 "$pid" 2> /dev/null; then
  passed=$((passed + 1))
  say "PASS cyclone serve still running after the TLS checks"
else
  failed+=("cyclone serve still running after the TLS checks")
  cat "$tmp/cyclone.log"
fi
summary
