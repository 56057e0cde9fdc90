# Shared by the interop scripts (sourced): `say`, and `check`, which runs
# one check, counts it in `passed`, and names it in `failed` if it fails.
say() { echo "interop: $*"; }
passed=0
failed=()
# check NAME COMMAND... -> runs COMMAND, counts it, and names it if it fails.
check() {
  local name=$1 rc=0
  shift
  say "--- $name"
  "$@" || rc=$?
  if [ "$rc" = 0 ]; then
    passed=$((passed + 1))
    say "PASS $name"
  else
    # 124: `timeout` ended it.
    [ "$rc" = 124 ] && say "$name ran out of time"
    failed+=("$name")
    say "FAIL $name (exit status $rc)"
  fi
}
# summary -> the failed checks by name, then the line .ci/run counts;
# fails if any check did.
summary() {
  if [ "${#failed[@]}" -gt 0 ]; then
    say "failed checks:"
    printf 'interop:   %s\n' "${failed[@]}"
  fi
  say "${passed} passed, ${#failed[@]} failed"
  [ "${#failed[@]}" = 0 ]
}
