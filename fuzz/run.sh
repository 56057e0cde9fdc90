#!/usr/bin/env bash
# Runs a fuzz target on the stable toolchain, without cargo-fuzz:
#
#   fuzz/run.sh TARGET [SECONDS]     (default 60 s)
#   fuzz/run.sh ws_frame_decoder 300
#
# The targets are libFuzzer targets (libfuzzer-sys, as cargo-fuzz builds
# them). cargo-fuzz adds nightly-only sanitizer flags; the coverage
# instrumentation libFuzzer needs is available on stable through LLVM's
# sanitizer-coverage pass, which is all this script turns on. Rust's own
# checks (bounds, overflow with debug assertions) stand in for
# AddressSanitizer: the code under test has no unsafe of its own.
# Crashes are written to fuzz/artifacts/TARGET/, the corpus grows in
# fuzz/corpus/TARGET/ (both ignored by git); the run starts from the
# checked-in fuzz/seeds/TARGET/ and fuzz/regressions/TARGET/ (a finding,
# once fixed, is kept there: `cargo test --test fuzz_seeds` replays both
# on every test run).
set -euo pipefail
cd "$(dirname "$0")"
target="${1:?usage: fuzz/run.sh TARGET [SECONDS]}"
seconds="${2:-60}"
export RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module \
  -Cllvm-args=-sanitizer-coverage-level=4 \
  -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
  -Cllvm-args=-sanitizer-coverage-pc-table \
  -Cllvm-args=-sanitizer-coverage-trace-compares \
  -Cdebug-assertions -Coverflow-checks"
# An explicit --target keeps RUSTFLAGS off build scripts, which must not
# be instrumented (they link without libFuzzer's runtime).
triple=$(rustc -vV | sed -n 's/^host: //p')
cargo build --release --quiet --target "$triple" --bin "$target"
mkdir -p "corpus/$target" "artifacts/$target"
# The checked-in seeds (and the inputs of past findings) start the run;
# what it finds new goes to corpus/ only.
dirs=("corpus/$target")
for d in "seeds/$target" "regressions/$target"; do [ -d "$d" ] && dirs+=("$d"); done
exec "target/$triple/release/$target" -max_total_time="$seconds" \
  -artifact_prefix="artifacts/$target/" "${dirs[@]}"
