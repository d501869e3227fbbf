#!/usr/bin/env bash
# A PostgreSQL primary with a synchronous streaming replica on this machine (loopback only),
# beside the server of services.sh, for trying and testing a database failover.
#
#   pg-failover.sh up        the primary on MINGUS_LOCAL_PG_FAILOVER_PORT (5440) and its replica on
#                            the next port, replicating synchronously (a commit waits for the
#                            replica), both started fresh
#   pg-failover.sh promote   the primary crashes (immediate stop) and the replica is promoted
#   pg-failover.sh url       MINGUS_DATABASE_URL's server part for both: libpq takes the one that
#                            answers read-write (append the database name)
#   pg-failover.sh down      stop both and delete their data
#
# Their data lives under /var/lib/mingus-services/pg-failover-<hash> when run as root (the
# postgres user must enter it), else under $MINGUS_SERVICES_DIR/pg-failover.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
services="${MINGUS_SERVICES_DIR:-$root/.services}"
[[ "$services" == /* ]] || services="$PWD/$services"
primary_port="${MINGUS_LOCAL_PG_FAILOVER_PORT:-5440}"
replica_port=$((primary_port + 1))
pg_bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
if [ "$(id -u)" -eq 0 ]; then
  data="/var/lib/mingus-services/pg-failover-$(echo "$services" | sha256sum | cut -c1-12)"
else
  data="$services/pg-failover"
fi

say() { echo "pg-failover: $*" >&2; }
die() { say "error: $*"; exit 1; }

as_pg() {
  if [ "$(id -u)" -eq 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

close_inherited_fds() {
  local fd
  for fd in /proc/$BASHPID/fd/*; do
    fd="${fd##*/}"
    [ "$fd" -gt 2 ] 2>/dev/null && eval "exec $fd>&-" 2>/dev/null
  done
  return 0
}

start() { # DIR PORT
  (close_inherited_fds && as_pg "$pg_bin/pg_ctl" -D "$1" -l "$1/server.log" -o "-p $2" -w -t 60 start >/dev/null </dev/null) \
    || { tail -n 20 "$1/server.log" >&2; die "the server in $1 did not start"; }
}

stop_all() {
  local dir
  for dir in "$data/primary" "$data/replica"; do
    [ -s "$dir/PG_VERSION" ] && as_pg "$pg_bin/pg_ctl" -D "$dir" -m immediate -w stop >/dev/null 2>&1 || true
  done
  rm -rf "$data"
}

up() {
  [ -n "$pg_bin" ] || die "PostgreSQL is not installed: run Deploy/local/services.sh up first"
  stop_all
  install -d -m 755 "$data"
  [ "$(id -u)" -eq 0 ] && chown postgres: "$data"
  as_pg mkdir -m 700 "$data/primary"
  as_pg "$pg_bin/initdb" -D "$data/primary" -U mingus --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
  as_pg tee -a "$data/primary/postgresql.conf" >/dev/null <<CONF
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
max_connections = 200
# A commit returns once the replica has it: a promoted replica has every committed job.
synchronous_standby_names = 'replica'
synchronous_commit = on
CONF
  start "$data/primary" "$primary_port"
  as_pg "$pg_bin/pg_basebackup" -h 127.0.0.1 -p "$primary_port" -U mingus -D "$data/replica" -R -X stream --checkpoint=fast
  # Once promoted it has no standby of its own: it must not wait for one.
  as_pg tee -a "$data/replica/postgresql.auto.conf" >/dev/null <<CONF
cluster_name = 'replica'
synchronous_standby_names = ''
CONF
  start "$data/replica" "$replica_port"
  local i
  for ((i = 0; i < 300; i++)); do
    [ "$("$pg_bin/psql" -h 127.0.0.1 -p "$primary_port" -U mingus -d postgres -Atc \
      "SELECT sync_state FROM pg_stat_replication WHERE application_name = 'replica'")" = sync ] && break
    sleep 0.1
  done
  [ "$i" -lt 300 ] || die "the replica did not become synchronous"
  say "primary on 127.0.0.1:$primary_port, synchronous replica on 127.0.0.1:$replica_port"
}

case "${1:-}" in
  up) up ;;
  promote)
    as_pg "$pg_bin/pg_ctl" -D "$data/primary" -m immediate -w stop >/dev/null
    as_pg "$pg_bin/pg_ctl" -D "$data/replica" -w promote >/dev/null
    say "primary stopped (immediate); the replica on 127.0.0.1:$replica_port is the primary now" ;;
  url) echo "postgresql://mingus@127.0.0.1:$primary_port,127.0.0.1:$replica_port" ;;
  down) stop_all; say "stopped, data deleted" ;;
  *) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
