#!/usr/bin/env bash
# A three-node RabbitMQ cluster on this machine (loopback only), beside the single node of
# services.sh, for trying and testing failover. Quorum queues declared once the three nodes are
# clustered get a member on each.
#
#   rabbitmq-cluster.sh up          start the three nodes and cluster them (idempotent)
#   rabbitmq-cluster.sh down        stop them (data is kept; `reset` deletes it)
#   rabbitmq-cluster.sh reset       stop them and delete their data
#   rabbitmq-cluster.sh stop N      stop node N (1-3) gracefully
#   rabbitmq-cluster.sh kill N      kill node N (SIGKILL: a crash)
#   rabbitmq-cluster.sh start N     start node N again; it rejoins the cluster
#   rabbitmq-cluster.sh url         the MINGUS_AMQP_URL of the three nodes
#   rabbitmq-cluster.sh rabbitmqctl N ARGS   rabbitmqctl against node N
#
# Ports: AMQP MINGUS_LOCAL_AMQP_CLUSTER_PORT (5680, then 5681, 5682), Erlang distribution 20000
# above each, and an epmd of their own on MINGUS_LOCAL_AMQP_CLUSTER_EPMD_PORT (4371). Data under
# $MINGUS_SERVICES_DIR/rabbitmq-cluster (default .services/).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
services="${MINGUS_SERVICES_DIR:-$root/.services}"
[[ "$services" == /* ]] || services="$PWD/$services"
data="$services/rabbitmq-cluster"
base_port="${MINGUS_LOCAL_AMQP_CLUSTER_PORT:-5680}"
epmd_port="${MINGUS_LOCAL_AMQP_CLUSTER_EPMD_PORT:-4371}"
nodes=(1 2 3)

say() { echo "rabbitmq-cluster: $*" >&2; }
die() { say "error: $*"; exit 1; }

close_inherited_fds() {
  local fd
  for fd in /proc/$BASHPID/fd/*; do
    fd="${fd##*/}"
    [ "$fd" -gt 2 ] 2>/dev/null && eval "exec $fd>&-" 2>/dev/null
  done
  return 0
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

amqp_port() { echo $((base_port + $1 - 1)); }
node_name() { echo "mingus$1@localhost"; }

node_env() { # N
  local dir="$data/node$1"
  export HOME="$data" # the cookie every node and rabbitmqctl share
  export RABBITMQ_NODENAME="$(node_name "$1")"
  export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
  export RABBITMQ_NODE_PORT="$(amqp_port "$1")"
  export RABBITMQ_DIST_PORT=$((20000 + $(amqp_port "$1")))
  export ERL_EPMD_PORT="$epmd_port"
  export ERL_EPMD_ADDRESS=127.0.0.1
  export RABBITMQ_MNESIA_BASE="$dir/mnesia"
  export RABBITMQ_LOG_BASE="$dir/log"
  export RABBITMQ_CONFIG_FILE="$dir/rabbitmq.conf"
  export RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins"
  export RABBITMQ_PID_FILE="$dir/rabbitmq.pid"
  export RABBITMQ_CONF_ENV_FILE="$dir/rabbitmq-env.conf"
  export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
}

ctl() { # N ARGS...
  local n="$1"
  shift
  (node_env "$n" && /usr/lib/rabbitmq/bin/rabbitmqctl -n "$(node_name "$n")" "$@")
}

node_pid() { # N
  local f="$data/node$1/rabbitmq.pid" pid
  [ -f "$f" ] || return 1
  pid="$(cat "$f")"
  kill -0 "$pid" 2>/dev/null && echo "$pid"
}

start_node() { # N
  local n="$1" dir="$data/node$1"
  if node_pid "$n" >/dev/null; then return 0; fi
  port_open "$(amqp_port "$n")" && die "port $(amqp_port "$n") is taken (set MINGUS_LOCAL_AMQP_CLUSTER_PORT)"
  mkdir -p "$dir/mnesia" "$dir/log"
  cat >"$dir/rabbitmq.conf" <<CONF
listeners.tcp.1 = 127.0.0.1:$(amqp_port "$n")
loopback_users.guest = true
log.console = false
log.file.level = info
cluster_partition_handling = pause_minority
CONF
  echo "[]." >"$dir/enabled_plugins"
  : >"$dir/rabbitmq-env.conf"
  (node_env "$n" && close_inherited_fds && exec setsid /usr/lib/rabbitmq/bin/rabbitmq-server >"$dir/log/stdout.log" 2>&1 </dev/null) &
  echo $! >"$dir/rabbitmq.pid"
}

wait_node() { # N
  local n="$1" i
  for ((i = 0; i < 1200; i++)); do
    port_open "$(amqp_port "$n")" && return 0
    node_pid "$n" >/dev/null || break
    sleep 0.1
  done
  tail -n 30 "$data/node$n/log/stdout.log" >&2 || true
  die "node $n did not accept connections on 127.0.0.1:$(amqp_port "$n")"
}

stop_node() { # N
  local n="$1" pid i
  pid="$(node_pid "$n")" || return 0
  ctl "$n" -q stop >/dev/null 2>&1 || kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 300; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$data/node$n/rabbitmq.pid"
}

kill_node() { # N
  local n="$1" pid
  pid="$(node_pid "$n")" || return 0
  # The server runs as a process group of its own (setsid): the Erlang VM and its helpers.
  kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  rm -f "$data/node$n/rabbitmq.pid"
}

up() {
  [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || die "RabbitMQ is not installed: run Deploy/local/services.sh up first"
  mkdir -p "$data"
  (umask 077 && [ -s "$data/.erlang.cookie" ] || head -c 20 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$data/.erlang.cookie")
  chmod 400 "$data/.erlang.cookie"
  for n in "${nodes[@]}"; do start_node "$n"; done
  for n in "${nodes[@]}"; do wait_node "$n"; done
  for n in 2 3; do
    if ! ctl "$n" -q cluster_status 2>/dev/null | grep -q "$(node_name 1)"; then
      ctl "$n" -q stop_app
      ctl "$n" -q join_cluster "$(node_name 1)"
      ctl "$n" -q start_app
    fi
  done
  ctl 1 -q await_online_nodes 3 >/dev/null 2>&1 || true
  say "three nodes clustered: $(url)"
}

url() {
  echo "amqp://guest:guest@127.0.0.1:$(amqp_port 1),127.0.0.1:$(amqp_port 2),127.0.0.1:$(amqp_port 3)/"
}

case "${1:-}" in
  up) up ;;
  down)
    for n in "${nodes[@]}"; do stop_node "$n"; done
    ERL_EPMD_PORT="$epmd_port" epmd -kill >/dev/null 2>&1 || true
    say "stopped" ;;
  reset)
    for n in "${nodes[@]}"; do stop_node "$n"; done
    ERL_EPMD_PORT="$epmd_port" epmd -kill >/dev/null 2>&1 || true
    rm -rf "$data"
    say "stopped, data deleted" ;;
  stop) stop_node "${2:?node 1-3}"; say "node $2 stopped" ;;
  kill) kill_node "${2:?node 1-3}"; say "node $2 killed" ;;
  start) start_node "${2:?node 1-3}"; wait_node "$2"; say "node $2 started" ;;
  url) url ;;
  rabbitmqctl) n="${2:?node 1-3}"; shift 2; ctl "$n" "$@" ;;
  *) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
