#!/usr/bin/env bash
# Checks the running gateway against its contract, Contracts/openapi.yaml, with Schemathesis:
# every check (server errors, status codes, content types, headers, response schemas, negative
# data rejection, positive data acceptance, ...) on generated valid and invalid requests.
#
#   Deploy/local/contract-check.sh [BIN_DIR [SCHEMATHESIS_OPTION...]]
#
# BIN_DIR holds mingus-gateway and mingusctl (default: `swift build --show-bin-path`); options
# after it go to `schemathesis run` (e.g. --include-operation-id createAlert --phases stateful).
#
# It needs the local services (services.sh up) and the Python tools (python-tools.sh), and works
# in a sandbox of its own that it removes on exit, whatever the outcome:
# - a scratch PostgreSQL database, migrated, with a fresh key-encrypting key file (in a temporary
#   folder) and data keys, and an admin API key;
# - a scratch RabbitMQ virtual host. The gateway declares its topology there on connecting, so
#   the jobs that accepted requests publish (the summary line counts them) pile up in that vhost's
#   queues and go with it. Publishing to the shared `/` vhost instead would feed them to the
#   workers of tests running at the same time, and purging its queues afterwards would drop those
#   tests' jobs. No worker runs: a 202 only needs the broker's confirm.
# - the gateway on a free port, stopped with SIGTERM at the end (it must exit 0).
#
# The run is bounded and reproducible: a fixed seed (MINGUS_CONTRACT_SEED), at most
# MINGUS_CONTRACT_MAX_EXAMPLES (default 400) generated cases per operation and phase (about six
# minutes for the 90 operations on two cores), and a hard limit of MINGUS_CONTRACT_TIME_LIMIT
# seconds (900).
# What Schemathesis checks, and the few exceptions the contract cannot express, are in
# Deploy/local/schemathesis.toml. The whole output is kept in .build/test-logs/, a JUnit report
# in .build/contract-check/. Exits non-zero on any failure or error. Like services.sh, it finds
# the services' folder in MINGUS_SERVICES_DIR (default .services/).
set -euo pipefail
cd "$(dirname "$0")/../.."
root="$PWD"

bin="${1:-}"
[ $# -gt 0 ] && shift
[ -n "$bin" ] || bin="$(${SWIFT:-swift} build --show-bin-path)"
max_examples="${MINGUS_CONTRACT_MAX_EXAMPLES:-400}"
time_limit="${MINGUS_CONTRACT_TIME_LIMIT:-900}"
seed="${MINGUS_CONTRACT_SEED:-20260223}"
pg_port="${MINGUS_LOCAL_PG_PORT:-5433}"
amqp_port="${MINGUS_LOCAL_AMQP_PORT:-5673}"
pg_bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
[ -x "$pg_bin/createdb" ] || pg_bin=/usr/bin
services="${MINGUS_SERVICES_DIR:-.services}"
[[ "$services" == /* ]] || services="$root/$services"
schemathesis="$services/python/bin/schemathesis"
started=$SECONDS

say() { echo "contract-check: $*" >&2; }
die() { say "error: $*"; exit 1; }

[ -x "$bin/mingus-gateway" ] && [ -x "$bin/mingusctl" ] || die "no mingus-gateway or mingusctl in $bin (swift build first)"
[ -x "$schemathesis" ] || die "no $schemathesis (Deploy/local/python-tools.sh installs it)"

name="mingus_contract_$(date +%s)_$$"
work="$(mktemp -d "${TMPDIR:-/tmp}/mingus-contract.XXXXXX")"
mkdir -p .build/test-logs .build/contract-check
log=".build/test-logs/$(date -u +%Y%m%dT%H%M%SZ)-contract-check-$$.log"
gateway_pid=""
database_created=""
vhost_created=""
jobs_left=""
outcome=""
summary=""

cleanup() {
  local status=$? gateway_status=0
  set +e
  if [ -n "$gateway_pid" ] && kill -0 "$gateway_pid" 2>/dev/null; then
    kill -TERM "$gateway_pid"
    local i
    for ((i = 0; i < 300; i++)); do kill -0 "$gateway_pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$gateway_pid" 2>/dev/null && { say "the gateway did not stop in 30 s; killing it"; kill -KILL "$gateway_pid"; }
    wait "$gateway_pid" 2>/dev/null
    gateway_status=$?
    if [ "$gateway_status" -ne 0 ] && [ "$status" -eq 0 ]; then
      outcome="FAILED (the gateway exited with status $gateway_status when stopped)"
      status=1
    fi
  fi
  [ -n "$database_created" ] && "$pg_bin/dropdb" -h 127.0.0.1 -p "$pg_port" -U mingus --force --if-exists "$name"
  if [ -n "$vhost_created" ]; then
    jobs_left="$(Deploy/local/services.sh rabbitmqctl -q list_queues -p "$name" messages 2>/dev/null | awk '$1 ~ /^[0-9]+$/ { n += $1 } END { print n + 0 }')"
    Deploy/local/services.sh rabbitmqctl -q delete_vhost "$name" >/dev/null
  fi
  if [ -n "$outcome" ]; then
    say "$outcome in $((SECONDS - started)) s: $summary; $jobs_left jobs published to the scratch vhost, deleted with it (whole output: $log)"
  fi
  if [ "$status" -ne 0 ] && [ -s "$work/gateway.log" ]; then
    cp "$work/gateway.log" "${log%.log}-gateway.log"
    say "gateway log: ${log%.log}-gateway.log"
  fi
  rm -rf "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- sandbox

"$pg_bin/createdb" -h 127.0.0.1 -p "$pg_port" -U mingus "$name"
database_created=1
Deploy/local/services.sh rabbitmqctl -q add_vhost "$name" >/dev/null
vhost_created=1
Deploy/local/services.sh rabbitmqctl -q set_permissions -p "$name" guest '.*' '.*' '.*' >/dev/null

export MINGUS_DATABASE_URL="postgresql://mingus@127.0.0.1:$pg_port/$name"
export MINGUS_AMQP_URL="amqp://guest:guest@127.0.0.1:$amqp_port/$name"
export MINGUS_FINANCIAL_KEY_PATH="$work/financial.key"
export MINGUS_LOG_LEVEL=info
"$bin/mingusctl" migrate >/dev/null
"$bin/mingusctl" keys init >/dev/null
key="$("$bin/mingusctl" apikey create --name schemathesis --role admin | tail -n 1)"

# ---------------------------------------------------------------- gateway

MINGUS_HTTP_PORT=0 "$bin/mingus-gateway" >"$work/gateway.log" 2>&1 &
gateway_pid=$!
port=""
for ((i = 0; i < 300; i++)); do
  port="$(grep -m1 'gateway listening' "$work/gateway.log" | grep -oE '"mingus\.http\.port" *: *"[0-9]+"' | grep -oE '[0-9]+"$' | tr -d '"' || true)"
  [ -n "$port" ] && break
  kill -0 "$gateway_pid" 2>/dev/null || die "the gateway exited: $(tail -n 20 "$work/gateway.log")"
  sleep 0.1
done
[ -n "$port" ] || die "the gateway did not log its port in 30 s"
base="http://127.0.0.1:$port"
for ((i = 0; i < 600; i++)); do
  curl -fsS -o /dev/null "$base/readyz" 2>/dev/null && break
  sleep 0.1
done
curl -fsS -o /dev/null "$base/readyz" || die "the gateway is not ready after 60 s: $(curl -sS "$base/readyz" || true)"

# ---------------------------------------------------------------- schemathesis

# Hypothesis keeps its example database and Unicode tables in the temporary folder, not the tree.
export HYPOTHESIS_STORAGE_DIRECTORY="$work/hypothesis"
say "schemathesis against $base (seed $seed, at most $max_examples cases per operation)"
set +e
timeout --signal=INT --kill-after=30 "$time_limit" \
  "$schemathesis" --config-file Deploy/local/schemathesis.toml run Contracts/openapi.yaml \
  --url "$base" \
  --header "Authorization: Bearer $key" \
  --mode all \
  --max-examples "$max_examples" \
  --seed "$seed" \
  --generation-database none \
  --request-timeout 10 \
  --workers 2 \
  --no-color \
  --report junit --report-junit-path .build/contract-check/junit.xml \
  "$@" \
  2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e

summary="$(grep -A1 '^Test cases:' "$log" | tail -n 1 | sed 's/^ *//')"
if [ "$status" -eq 0 ]; then outcome="passed"; else outcome="FAILED (schemathesis exit $status)"; fi
exit "$status"   # the summary line comes from cleanup, once the gateway has stopped
