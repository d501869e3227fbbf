#!/usr/bin/env bash
# Local RabbitMQ and PostgreSQL for development and tests: Debian packages, plain processes,
# data under the project's ignored `.services/` folder, loopback only, non-default ports.
#
#   services.sh up                 install what is missing, start both, wait until they accept connections
#   services.sh down               stop both (data is kept)
#   services.sh status             print what runs
#   services.sh restart NAME       restart rabbitmq or postgres (fault tests use this)
#   services.sh stop NAME / start NAME
#   services.sh reset              stop both and delete their data
#   services.sh rabbitmqctl ARGS   run rabbitmqctl against the local node (e.g. add_vhost NAME)
#
# As root, PostgreSQL runs as the `postgres` user. When that user cannot enter the checkout
# (a folder only root can enter, such as /root/... or a `mktemp -d` folder), its data lives in
# /var/lib/mingus-services/<hash of the .services path>/postgres and .services/postgres is a
# symlink to it; `reset` deletes that folder too.
#
# Ports: MINGUS_LOCAL_AMQP_PORT (5673), MINGUS_LOCAL_AMQP_DIST_PORT (25673),
# MINGUS_LOCAL_EPMD_PORT (4370), MINGUS_LOCAL_PG_PORT (5433).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
data="${MINGUS_SERVICES_DIR:-$root/.services}"
[[ "$data" == /* ]] || data="$PWD/$data"
amqp_port="${MINGUS_LOCAL_AMQP_PORT:-5673}"
dist_port="${MINGUS_LOCAL_AMQP_DIST_PORT:-25673}"
epmd_port="${MINGUS_LOCAL_EPMD_PORT:-4370}"
pg_port="${MINGUS_LOCAL_PG_PORT:-5433}"
# Every test suite runs its own cluster (a gateway and workers, each with a pool) in parallel
# with the others: 200 connections were not enough once there were a dozen domains.
pg_max_connections=500
pg_outside="/var/lib/mingus-services"
pg_bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"

say() { echo "services: $*" >&2; }
die() { say "error: $*"; exit 1; }

# A server started from here must not keep the caller's pipes open (a test runner waits for
# their end): close every descriptor above 2 in the subshell that starts it.
close_inherited_fds() {
  local fd
  for fd in /proc/$BASHPID/fd/*; do
    fd="${fd##*/}"
    [ "$fd" -gt 2 ] 2>/dev/null && eval "exec $fd>&-" 2>/dev/null
  done
  return 0
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() { # port name seconds
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    port_open "$1" && return 0
    sleep 0.1
  done
  return 1
}

install_missing() {
  # chromium: the dashboard's browser test drives it headless.
  local wanted=(rabbitmq-server librabbitmq-dev postgresql libpq-dev libssl-dev zlib1g-dev pkg-config chromium)
  local missing=() p
  for p in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  # Keep the packages' own system services from starting: this script runs its own instances.
  local policy=/usr/sbin/policy-rc.d added_policy=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null && $sudo chmod +x "$policy" && added_policy=1
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [ -n "$added_policy" ] && $sudo rm -f "$policy"
  pg_bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
}

# ---------------------------------------------------------------- RabbitMQ

rabbit_env() {
  export HOME="$data/rabbitmq" # holds the Erlang cookie
  export RABBITMQ_NODENAME="mingus@localhost"
  export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
  export RABBITMQ_NODE_PORT="$amqp_port"
  export RABBITMQ_DIST_PORT="$dist_port"
  export ERL_EPMD_PORT="$epmd_port"
  export ERL_EPMD_ADDRESS=127.0.0.1
  export RABBITMQ_MNESIA_BASE="$data/rabbitmq/mnesia"
  export RABBITMQ_LOG_BASE="$data/rabbitmq/log"
  export RABBITMQ_CONFIG_FILE="$data/rabbitmq/rabbitmq.conf"
  export RABBITMQ_ENABLED_PLUGINS_FILE="$data/rabbitmq/enabled_plugins"
  export RABBITMQ_PID_FILE="$data/rabbitmq/rabbitmq.pid"
  export RABBITMQ_CONF_ENV_FILE="$data/rabbitmq/rabbitmq-env.conf"
  export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
}

rabbit_pid() {
  local f="$data/rabbitmq/rabbitmq.pid"
  [ -s "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null && cat "$f"
}

start_rabbitmq() {
  mkdir -p "$data/rabbitmq/mnesia" "$data/rabbitmq/log"
  rabbit_env
  if rabbit_pid >/dev/null; then say "rabbitmq already running on 127.0.0.1:$amqp_port"; return 0; fi
  port_open "$amqp_port" && die "port $amqp_port is taken by another process (set MINGUS_LOCAL_AMQP_PORT)"
  cat >"$RABBITMQ_CONFIG_FILE" <<CONF
listeners.tcp.1 = 127.0.0.1:$amqp_port
loopback_users.guest = true
log.console = false
log.file.level = info
CONF
  echo "[]." >"$RABBITMQ_ENABLED_PLUGINS_FILE"
  : >"$RABBITMQ_CONF_ENV_FILE"
  (umask 077 && [ -s "$HOME/.erlang.cookie" ] || head -c 20 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$HOME/.erlang.cookie")
  chmod 400 "$HOME/.erlang.cookie"
  (close_inherited_fds && exec setsid /usr/lib/rabbitmq/bin/rabbitmq-server >"$data/rabbitmq/log/stdout.log" 2>&1 </dev/null) &
  echo $! >"$RABBITMQ_PID_FILE"
  if ! wait_port "$amqp_port" rabbitmq 90; then
    tail -n 30 "$data/rabbitmq/log/stdout.log" >&2 || true
    die "rabbitmq did not accept connections on 127.0.0.1:$amqp_port within 90 s"
  fi
  say "rabbitmq accepting connections on 127.0.0.1:$amqp_port"
}

stop_rabbitmq() {
  rabbit_env
  local pid
  pid="$(rabbit_pid)" || { say "rabbitmq not running"; return 0; }
  /usr/lib/rabbitmq/bin/rabbitmqctl -q stop >/dev/null 2>&1 || kill -TERM "$pid" 2>/dev/null || true
  local i
  for ((i = 0; i < 300; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  rm -f "$data/rabbitmq/rabbitmq.pid"
  say "rabbitmq stopped"
}

# ---------------------------------------------------------------- PostgreSQL

as_pg() { # run a PostgreSQL binary as the owner of the data folder
  # From /, which postgres can enter even when it cannot enter the caller's folder.
  if [ "$(id -u)" -eq 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

pg_dir() { # the data folder; .services/postgres may be a symlink (see place_postgres)
  if [ -L "$data/postgres" ]; then readlink -m "$data/postgres"; else echo "$data/postgres"; fi
}

# Makes the data folder on first start. The `postgres` user must be able to enter every folder
# above it; when it cannot enter .services (a checkout under a folder only root can enter), the
# data goes to a folder of its own under $pg_outside, named by a hash of this checkout's
# .services path, and .services/postgres links to it. Opening the user's folders to others
# (chmod o+x, ACLs) instead would undo the privacy they chose.
place_postgres() {
  # An empty folder here is left by a first start that failed (before this placement existed).
  [ -L "$data/postgres" ] || rmdir "$data/postgres" 2>/dev/null || true
  if [ ! -e "$data/postgres" ] && [ ! -L "$data/postgres" ] && [ "$(id -u)" -eq 0 ] \
    && ! runuser -u postgres -- test -x "$data"; then
    local outside
    outside="$pg_outside/$(cd "$data" && pwd -P | sha256sum | cut -c1-12)"
    install -d -m 755 "$pg_outside" "$outside"
    echo "$data" >"$outside/checkout" # which checkout it belongs to
    ln -s "$outside/postgres" "$data/postgres"
    say "postgres cannot enter $data; its data is in $outside/postgres"
  fi
  local dir
  dir="$(pg_dir)"
  [ -d "$dir" ] && return 0
  mkdir -p "$dir"
  [ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
  chmod 700 "$dir"
}

start_postgres() {
  [ -n "$pg_bin" ] || die "PostgreSQL binaries not found under /usr/lib/postgresql"
  mkdir -p "$data"
  place_postgres
  local dir
  dir="$(pg_dir)"
  as_pg test -x "$dir" || die "the postgres user cannot enter $dir; run 'Deploy/local/services.sh reset' (deletes the data) and try again"
  if [ ! -s "$dir/PG_VERSION" ]; then
    as_pg "$pg_bin/initdb" -D "$dir" -U mingus --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
    cat >>"$dir/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
# The port is given at each start (pg_ctl -o -p), so MINGUS_LOCAL_PG_PORT can move it later.
unix_socket_directories = ''
# max_connections is given at each start too (pg_max_connections below).
max_connections = 500
logging_collector = off
CONF
  fi
  if as_pg "$pg_bin/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
    say "postgres already running on 127.0.0.1:$pg_port"
  else
    port_open "$pg_port" && die "port $pg_port is taken by another process (set MINGUS_LOCAL_PG_PORT)"
    (close_inherited_fds && as_pg "$pg_bin/pg_ctl" -D "$dir" -l "$dir/server.log" -o "-p $pg_port -c max_connections=$pg_max_connections" -w -t 60 start >/dev/null </dev/null) \
      || { tail -n 30 "$dir/server.log" >&2; die "postgres did not start"; }
  fi
  local exists
  exists="$("$pg_bin/psql" -h 127.0.0.1 -p "$pg_port" -U mingus -d postgres -Atc "SELECT 1 FROM pg_database WHERE datname = 'mingus'")"
  [ "$exists" = 1 ] || "$pg_bin/createdb" -h 127.0.0.1 -p "$pg_port" -U mingus mingus
  say "postgres accepting connections on 127.0.0.1:$pg_port"
}

stop_postgres() {
  local dir
  dir="$(pg_dir)"
  if [ -s "$dir/PG_VERSION" ] && as_pg "$pg_bin/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
    as_pg "$pg_bin/pg_ctl" -D "$dir" -m fast -w stop >/dev/null
    say "postgres stopped"
  else
    say "postgres not running"
  fi
}

# ---------------------------------------------------------------- commands

service_cmd() { # start|stop NAME
  case "$2" in
    rabbitmq) "$1_rabbitmq" ;;
    postgres) "$1_postgres" ;;
    *) die "unknown service '$2' (rabbitmq or postgres)" ;;
  esac
}

case "${1:-}" in
  up)
    install_missing
    start_postgres
    start_rabbitmq
    ;;
  down)
    stop_rabbitmq
    stop_postgres
    # epmd on the private port only served the local node.
    ERL_EPMD_PORT="$epmd_port" epmd -kill >/dev/null 2>&1 || true
    ;;
  start | stop) service_cmd "$1" "${2:?name: rabbitmq or postgres}" ;;
  restart)
    service_cmd stop "${2:?name: rabbitmq or postgres}"
    service_cmd start "$2"
    ;;
  status)
    if rabbit_pid >/dev/null; then echo "rabbitmq: running, pid $(rabbit_pid), 127.0.0.1:$amqp_port"; else echo "rabbitmq: stopped"; fi
    if [ -n "$pg_bin" ] && [ -s "$(pg_dir)/PG_VERSION" ] && as_pg "$pg_bin/pg_ctl" -D "$(pg_dir)" status >/dev/null 2>&1; then
      echo "postgres: running, 127.0.0.1:$pg_port"
    else
      echo "postgres: stopped"
    fi
    ;;
  rabbitmqctl)
    shift
    rabbit_env
    rabbit_pid >/dev/null || die "rabbitmq is not running (services.sh up)"
    exec /usr/lib/rabbitmq/bin/rabbitmqctl "$@"
    ;;
  reset)
    stop_rabbitmq
    stop_postgres
    outside="$(dirname "$(pg_dir)")"
    if [ -L "$data/postgres" ] && [[ "$outside" == "$pg_outside"/?* ]]; then
      rm -rf "$outside"
      say "removed $outside"
    fi
    rm -rf "$data"
    say "removed $data"
    ;;
  *)
    sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
