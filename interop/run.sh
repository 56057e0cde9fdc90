#!/usr/bin/env bash
# Cyclone's WebSocket against independent implementations (interop/README.md):
#   python  Python `websockets` and hand-built raw frames -> cyclone /ws/echo
#   node    npm `ws` client -> cyclone /ws/echo
#   client  Cyclone's examples/ws_client -> npm `ws` and Python `websockets`
#           echo servers
#   browser headless Chromium (playwright-core), two tabs on cyclone /chat
# Installs the peers (interop/setup.sh), builds Cyclone, starts
# `cyclone serve` on a free port of 127.0.0.1, runs every check with a time
# limit, and exits 1 naming each check that failed. Servers it started are
# stopped on any exit.
set -euo pipefail
cd "$(dirname "$0")/.."

interop/setup.sh
cargo build --release --bin cyclone --example ws_client
cyclone=target/release/cyclone
ws_client=target/release/examples/ws_client

tmp=$(mktemp -d)
pids=()
# stop PID -> SIGTERM, then SIGKILL if it is still there after 5 s (cyclone
# lets requests in flight finish for up to 10 s; nothing here waits for that).
stop() {
  kill "$1" 2>/dev/null || return 0
  local _
  for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
cleanup() {
  local p
  for p in "${pids[@]}"; do stop "$p"; done
  rm -rf "$tmp"
}
trap cleanup EXIT
# A signal ends the script through `exit`, so the EXIT trap still stops the servers.
trap 'exit 130' INT TERM

# shellcheck source=interop/lib.sh
. interop/lib.sh

# free_port -> a port of 127.0.0.1 that nothing listens on now (the kernel's
# pick for port 0). Another process could take it before cyclone binds; then
# cyclone exits with "Address already in use", which the start-up check shows.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# --- cyclone serve -----------------------------------------------------------
port=$(free_port)
"$cyclone" serve --port "$port" --address 127.0.0.1 > "$tmp/cyclone.log" 2>&1 &
cyclone_pid=$!
pids+=("$cyclone_pid")
# Wait until it answers HTTP: 200 tries of 50 ms, 10 s at most.
up=""
for _ in $(seq 200); do
  if ! kill -0 "$cyclone_pid" 2>/dev/null; then break; fi
  if curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/"; then up=1; break; fi
  sleep 0.05
done
if [ -z "$up" ]; then
  cat "$tmp/cyclone.log"
  say "FAIL: cyclone serve --port $port did not answer within 10 s (its output is above)"
  exit 1
fi
say "cyclone serve is up on 127.0.0.1:$port"

# --- the echo servers that examples/ws_client talks to ---------------------
# start_peer NAME LOG VAR COMMAND... -> starts an echo server that prints
# `listening PORT` once ready, and sets VAR to that port (10 s at most).
# Not run in $(...): the server's pid must reach `pids` in this shell.
start_peer() {
  local name=$1 log=$2 var=$3 p="" _
  shift 3
  "$@" > "$log" 2>&1 &
  pids+=("$!")
  for _ in $(seq 200); do
    p=$(awk '/^listening /{print $2}' "$log")
    [ -n "$p" ] && break
    sleep 0.05
  done
  if [ -z "$p" ]; then
    cat "$log"
    say "FAIL: the $name echo server did not start within 10 s (its output is above)"
    exit 1
  fi
  printf -v "$var" '%s' "$p"
}
node_port="" python_port=""
node_log=$tmp/node_echo.log
start_peer "node ws" "$node_log" node_port node interop/node_echo_server.mjs --path /ws/echo
say "node ws echo server is up on 127.0.0.1:$node_port"
python_log=$tmp/python_echo.log
start_peer "python websockets" "$python_log" python_port \
  interop/.venv/bin/python interop/python_echo_server.py
say "python websockets echo server is up on 127.0.0.1:$python_port"

# --- checks ------------------------------------------------------------------

# Each limit is several times what the check takes here (seconds: python
# ~4, node ~1, ws_client ~1, browser ~3), to bound a hang, not to time.
check "python websockets + raw frames -> cyclone /ws/echo" \
  timeout -k 5 180 interop/.venv/bin/python interop/python_client.py "ws://127.0.0.1:$port/ws/echo"
check "node ws -> cyclone /ws/echo" \
  timeout -k 5 120 node interop/node_client.mjs "ws://127.0.0.1:$port/ws/echo"

# The lines examples/ws_client sends: ~100 of them, ASCII and unicode (two-,
# three- and four-byte UTF-8) and one of 100 KiB (many reads long, and a
# 64-bit frame length). No empty line: whether an empty line is a message
# is the client's choice, not what this checks.
python3 - "$tmp/lines.txt" <<'PY'
import sys
lines = [f"line {i}: the quick brown fox jumps over the lazy dog" for i in range(90)]
lines += ["héllo wörld", "☃ snow", "日本語のテキスト", "🎉🚀 emoji", "𝄞 clef", "Ελληνικά", "mixed ascii и кириллица"]
lines.insert(45, "x" * (100 * 1024))
lines += ["  leading and trailing spaces  ", "tab\there", "last line"]
with open(sys.argv[1], "w", encoding="utf-8") as f:
    f.write("".join(line + "\n" for line in lines))
PY

# ws_client_echo LOG PORT [--compress] -> examples/ws_client sends every
# line to the echo server on PORT and must print each reply, in order,
# equal to the input; the server's LOG must show permessage-deflate
# negotiated exactly when --compress was given.
ws_client_echo() {
  local log=$1 port=$2 before out="$tmp/client.out" err="$tmp/client.err" want got
  shift 2
  before=$(grep -c '^connection ' "$log" || true)
  if ! timeout -k 5 60 "$ws_client" "ws://127.0.0.1:$port/ws/echo" "$@" \
      < "$tmp/lines.txt" > "$out" 2> "$err"; then
    cat "$err"
    echo "ws_client failed (its stderr is above)"
    return 1
  fi
  if ! cmp -s "$tmp/lines.txt" "$out"; then
    echo "ws_client printed $(wc -l < "$out") lines ($(wc -c < "$out") bytes) for $(wc -l < "$tmp/lines.txt") sent ($(wc -c < "$tmp/lines.txt") bytes)"
    # The first differing line, cut to 200 characters (one line is 100 KiB).
    diff <(cut -c1-200 "$tmp/lines.txt") <(cut -c1-200 "$out") | head -10 || true
    cat "$err"
    return 1
  fi
  # The connection line the server logged for this run.
  got=$(grep '^connection ' "$log" | tail -n +"$((before + 1))")
  want="extensions=none"
  [ "${1:-}" = --compress ] && want="extensions=permessage-deflate"
  if [ "$(wc -l <<< "$got")" != 1 ] || [[ "$got" != *"$want"* ]]; then
    echo "the server logged [$got], expected one connection with $want"
    return 1
  fi
  echo "$(wc -l < "$out") lines echoed unchanged; server: $got"
}
check "cyclone ws_client -> node ws echo" ws_client_echo "$node_log" "$node_port"
check "cyclone ws_client --compress -> node ws echo (permessage-deflate)" \
  ws_client_echo "$node_log" "$node_port" --compress
check "cyclone ws_client -> python websockets echo" ws_client_echo "$python_log" "$python_port"
check "cyclone ws_client --compress -> python websockets echo (permessage-deflate, 12-bit windows)" \
  ws_client_echo "$python_log" "$python_port" --compress

check "chromium: two tabs on cyclone /chat" \
  timeout -k 5 120 node interop/chat_browser.mjs "http://127.0.0.1:$port/chat"

# The server must have lived through all of the above (a panic on a bad
# frame would fail only some checks, and read as the client's fault).
if kill -0 "$cyclone_pid" 2>/dev/null; then
  passed=$((passed + 1))
  say "PASS cyclone serve still running after the checks"
else
  failed+=("cyclone serve still running after the checks")
  say "FAIL cyclone serve exited during the checks; its output:"
  cat "$tmp/cyclone.log"
fi

summary
