#!/usr/bin/env bash
# Runs every kvc test (lit + FileCheck suites and the GoogleTest binaries)
# from the build tree made by utils/setup.sh, and ends with one line
# `N passed, M failed`. Extra arguments go to lit (for example -v).
set -uo pipefail
cd "$(dirname "$0")/.."

cmake --build build || exit 1
log=$(mktemp)
/usr/lib/llvm-22/bin/lit -sv "$@" build/test build/test/Unit 2>&1 | tee "$log"
status=${PIPESTATUS[0]}

# lit pads the names when several kinds are listed ("Passed     : 83").
count() { sed -n "s/^ *$1 *: *\([0-9][0-9]*\).*/\1/p" "$log" | head -n 1; }
passed=$(count Passed); passed=${passed:-0}
failed=0
for kind in Failed Unresolved "Timed Out" "Unexpectedly Passed"; do
  n=$(count "$kind"); failed=$((failed + ${n:-0}))
done
unsupported=$(count Unsupported)
rm -f "$log"
[ -n "$unsupported" ] && echo "$unsupported unsupported here (GPU tests: REQUIRES cuda)"
echo "$passed passed, $failed failed"
if [ "$status" -ne 0 ] || [ "$failed" -ne 0 ] || [ "$passed" -eq 0 ]; then
  exit 1
fi
