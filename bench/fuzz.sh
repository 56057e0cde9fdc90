#!/usr/bin/env bash
# Every fuzz target for DURATION seconds each (default 600), on the
# stable toolchain through fuzz/run.sh (libFuzzer with LLVM's coverage
# pass; each target checks a property, not only "no panic": see
# fuzz/fuzz_targets/ and cyclone::fuzzing), from the checked-in seeds.
#
#   bench/fuzz.sh [DURATION] [TARGET...]
#
# Prints one line per target: executions, seconds, and whether it found
# anything (a finding's input is in fuzz/artifacts/TARGET/; once fixed,
# keep it in fuzz/regressions/TARGET/ and `cargo test --test fuzz_seeds`
# replays it on every run). Exits 1 if any target found something.
# .ci/run runs it for 30 s per target.
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-600}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^cyclone-fuzz$')
fi
# libFuzzer's C++ runtime needs a C++ compiler.
command -v c++ >/dev/null 2>&1 || { apt-get update -qq >/dev/null; apt-get install -y -qq g++ >/dev/null; }
log=$(mktemp)
trap 'rm -f "$log"' EXIT
failed=0
for t in "${targets[@]}"; do
  if fuzz/run.sh "$t" "$duration" > "$log" 2>&1; then
    runs=$(sed -n 's/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\1 executions in \2 s/p' "$log" | tail -1)
    echo "fuzz: $t: ${runs:-? executions}, nothing found"
  else
    failed=1
    echo "fuzz: $t: FOUND something (input in fuzz/artifacts/$t/):"
    grep -E 'panicked|ERROR|SUMMARY' "$log" | head -5
  fi
done
exit "$failed"
