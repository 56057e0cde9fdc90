#!/usr/bin/env bash
# Installs the independent peers the interop checks run against, from the
# package registries, so that a fresh machine (CI's included) needs nothing
# done by hand. Idempotent: each part is skipped while its stamp matches
# the pinned versions, so a second run costs a few hashes.
#   - interop/.venv: Python with `websockets` (interop/requirements.txt)
#   - interop/node/node_modules: `ws` and `playwright-core`, exactly as
#     interop/node/package-lock.json says (npm ci)
#   - /usr/bin/chromium: Debian's Chromium, for playwright-core to drive
#     (playwright's own browser download cannot reach its host from here)
set -euo pipefail
cd "$(dirname "$0")"

say() { echo "interop setup: $*"; }

# hash FILE... -> one hash over the files, to tell whether an install is
# still the one they describe.
hash() { cat "$@" | sha256sum | cut -d' ' -f1; }

# Python: a venv of its own, so the pinned websockets never meets whatever
# the machine's Python has installed.
want=$(hash requirements.txt)
stamp=.venv/.requirements.sha256
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || ! .venv/bin/python -c 'import websockets' 2>/dev/null; then
  say "creating .venv with $(grep -v '^#' requirements.txt | tr '\n' ' ')"
  rm -rf .venv
  python3 -m venv .venv
  # 300 s: a download from PyPI that takes longer has hung, not slowed.
  timeout 300 .venv/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
  echo "$want" > "$stamp"
else
  say ".venv is up to date"
fi

# Node: npm ci installs the lockfile's exact tree (and refuses a lockfile
# that disagrees with package.json), removing node_modules first; the
# stamp skips it when nothing changed.
want=$(hash node/package.json node/package-lock.json)
stamp=node/node_modules/.lock.sha256
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  say "npm ci in interop/node"
  (cd node && timeout 300 npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" > "$stamp"
else
  say "node_modules is up to date"
fi

# Chromium from Debian: the browser for chat_browser.mjs.
if [ ! -x /usr/bin/chromium ]; then
  say "installing Debian's chromium"
  # The package lists may be missing or stale on a new machine.
  timeout 300 apt-get update -qq
  DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq chromium >/dev/null
else
  say "chromium is installed"
fi
