#!/usr/bin/env bash
# Runs `swift test` with the given arguments, keeping the whole output in .build/test-logs/.
# Suites run in parallel and their logs interleave, so when a run fails this ends by
# repeating every recorded issue (with the lines that explain it) where it is easy to find.
set -uo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .build/test-logs
log=".build/test-logs/$(date -u +%Y%m%dT%H%M%SZ)-$$.log"
"${SWIFT:-swift}" test "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
if [ "$status" -ne 0 ]; then
  echo
  echo "==== failures (whole output: $log) ===="
  grep -E -A4 '✘ Test .*(recorded an issue|failed)|error: |Fatal error|fatal error' "$log" \
    | grep -v -E 'info mingus|debug mingus' | head -200
fi
exit "$status"
