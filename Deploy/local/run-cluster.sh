#!/usr/bin/env bash
# Runs every long-running Mingus executable found in the given bin folder, in the foreground,
# each line of output prefixed with the process name. Ctrl-C (or SIGTERM) stops them all: each
# gets SIGTERM and drains; the script waits for every one to exit.
#
#   run-cluster.sh BIN_DIR                 the gateway and one worker of each kind (make run)
#   run-cluster.sh BIN_DIR NAME...         these executables, a name given twice runs twice
#                                          (make scale KIND=payments N=4)
set -uo pipefail
bin="${1:?usage: run-cluster.sh BIN_DIR [EXECUTABLE...]}"
shift
processes=(mingus-gateway mingus-payments-worker mingus-breach-worker mingus-alerts-worker
  mingus-retention-worker mingus-logs-worker mingus-privacy-worker mingus-security-worker)
if [ $# -gt 0 ]; then
  processes=("$@")
  for name in "${processes[@]}"; do
    [ -x "$bin/$name" ] || { echo "run-cluster: no $bin/$name" >&2; exit 2; }
  done
fi

# Merchant webhooks are signed with a Standard Webhooks secret; a local one is made on first run.
if [ -z "${MINGUS_WEBHOOK_SECRET:-}" ]; then
  export MINGUS_WEBHOOK_SECRET_FILE="${MINGUS_WEBHOOK_SECRET_FILE:-.services/keys/webhook.secret}"
  if [ ! -f "$MINGUS_WEBHOOK_SECRET_FILE" ]; then
    mkdir -p "$(dirname "$MINGUS_WEBHOOK_SECRET_FILE")"
    (umask 077 && printf 'whsec_%s\n' "$(head -c 32 /dev/urandom | base64 -w0)" > "$MINGUS_WEBHOOK_SECRET_FILE")
  fi
fi

pids=()
names=()
for name in "${processes[@]}"; do
  [ -x "$bin/$name" ] || continue
  label="$name"
  count=$(printf '%s\n' "${names[@]}" | grep -c "^$name\(#\|$\)" || true)
  [ "$count" -gt 0 ] && label="$name#$((count + 1))"
  # The subshell ends when the process does; sed prefixes every line.
  ( exec "$bin/$name" 2>&1 ) > >(sed -u "s/^/[$label] /") &
  pids+=($!)
  names+=("$label")
done

if [ ${#pids[@]} -eq 0 ]; then
  echo "run-cluster: no long-running executables are built yet; the services and migrations are ready." >&2
  "$bin/mingusctl" status
  exit 0
fi
echo "run-cluster: running ${names[*]} (Ctrl-C stops them all)" >&2

stop() {
  trap - INT TERM
  echo "run-cluster: stopping ${names[*]}" >&2
  kill -TERM "${pids[@]}" 2>/dev/null
}
trap stop INT TERM

status=0
for i in "${!pids[@]}"; do
  wait "${pids[$i]}"
  code=$?
  # A process that exits on its own while the others run takes the cluster down with it.
  if [ $code -ne 0 ] && [ $code -ne 143 ] && [ $code -ne 130 ]; then
    echo "run-cluster: ${names[$i]} exited with $code" >&2
    status=$code
  fi
done
exit $status
