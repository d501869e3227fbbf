#!/usr/bin/env bash
# Base backups of the local PostgreSQL server, and restoring one into a server of its own.
#
#   backup.sh create [DIR]
#       pg_basebackup of the whole server (every database, the WAL needed to make it consistent
#       streamed into it) into DIR (default .services/backups/<UTC time>), and DIR/manifest:
#       when, the server's port, and the ids of the key-encrypting keys that wrap the `mingus`
#       databases' data keys. The key file itself is never put in a backup: keep it apart.
#   backup.sh restore DIR --key-file FILE [--port PORT] [--data DATA_DIR] [--database NAME]
#       Refuses at once, changing nothing, unless FILE is the key-encrypting key the manifest
#       names. Then unpacks the backup into DATA_DIR (default: a new folder under
#       /var/lib/mingus-services/restores, or .services/restores when not root), starts a server
#       on PORT (default 5434) and checks database NAME (default: every database of the
#       manifest): `mingusctl keys check` (every data key opens) and `mingusctl audit verify`
#       (needs MINGUS_AUDIT_SIGNING_KEY_PATH's .pub). On any failure the new server is stopped and
#       its folder deleted. Prints the MINGUS_DATABASE_URL of each restored database.
#   backup.sh stop DATA_DIR
#       Stops a restored server.
#
# MINGUS_LOCAL_PG_PORT names the server to back up (5433); MINGUSCTL the mingusctl to run
# (default: the release build, else the debug build).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
services="${MINGUS_SERVICES_DIR:-$root/.services}"
[[ "$services" == /* ]] || services="$PWD/$services"
pg_port="${MINGUS_LOCAL_PG_PORT:-5433}"
pg_bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"

say() { echo "backup: $*" >&2; }
die() { say "error: $*"; exit 1; }

as_pg() {
  if [ "$(id -u)" -eq 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

# A server started from here must not keep the caller's descriptors open (a test runner waits
# for their end): close every descriptor above 2 in the subshell that starts it.
close_inherited_fds() {
  local fd
  for fd in /proc/$BASHPID/fd/*; do
    fd="${fd##*/}"
    [ "$fd" -gt 2 ] 2>/dev/null && eval "exec $fd>&-" 2>/dev/null
  done
  return 0
}

mingusctl() {
  local bin="${MINGUSCTL:-}"
  if [ -z "$bin" ]; then
    for candidate in "$root/.build/release/mingusctl" "$root/.build/debug/mingusctl"; do
      [ -x "$candidate" ] && { bin="$candidate"; break; }
    done
  fi
  [ -n "$bin" ] || die "no mingusctl built (swift build first, or set MINGUSCTL)"
  "$bin" "$@"
}

# The id mingusctl gives a key-encrypting key: the first 16 hex digits of SHA-256 over its 32 bytes.
kek_id() {
  base64 -d <"$1" 2>/dev/null | sha256sum | cut -c1-16
}

create() {
  [ -n "$pg_bin" ] || die "PostgreSQL binaries not found under /usr/lib/postgresql"
  local dir="${1:-$services/backups/$(date -u +%Y%m%dT%H%M%SZ)}"
  [ -e "$dir" ] && die "$dir already exists"
  mkdir -p "$(dirname "$dir")"
  "$pg_bin/pg_basebackup" -h 127.0.0.1 -p "$pg_port" -U mingus -D "$dir" -Ft -z -Xstream --checkpoint=fast \
    --label "mingus $(date -u +%FT%TZ)"
  local databases keks db
  databases="$("$pg_bin/psql" -h 127.0.0.1 -p "$pg_port" -U mingus -d postgres -Atc \
    "SELECT datname FROM pg_database WHERE datname NOT IN ('postgres', 'template0', 'template1') ORDER BY 1")"
  {
    echo "created $(date -u +%FT%TZ)"
    echo "port $pg_port"
    for db in $databases; do
      keks="$("$pg_bin/psql" -h 127.0.0.1 -p "$pg_port" -U mingus -d "$db" -Atc \
        "SELECT string_agg(DISTINCT kek_id, ' ') FROM mingus_data_keys" 2>/dev/null || true)"
      [ -n "$keks" ] && echo "database $db kek $keks"
    done
  } >"$dir/manifest"
  say "base backup in $dir ($(du -sh "$dir" | cut -f1)); the key-encrypting key is not in it"
  echo "$dir"
}

restore() {
  local dir="" key="" port=5434 data="" only=""
  dir="${1:?usage: backup.sh restore DIR --key-file FILE}"
  shift
  while [ $# -gt 0 ]; do
    case "$1" in
      --key-file) key="$2"; shift 2 ;;
      --port) port="$2"; shift 2 ;;
      --data) data="$2"; shift 2 ;;
      --database) only="$2"; shift 2 ;;
      *) die "unknown option $1" ;;
    esac
  done
  [ -f "$dir/manifest" ] && [ -f "$dir/base.tar.gz" ] || die "$dir is not a backup made by backup.sh create (no manifest or base.tar.gz)"
  [ -n "$key" ] || die "restore needs --key-file: the key-encrypting key the backup's data keys are wrapped with"
  [ -r "$key" ] || die "cannot read the key file $key"
  local id databases
  id="$(kek_id "$key")"
  databases="$(awk '$1 == "database" { print $2 }' "$dir/manifest")"
  [ -n "$only" ] && databases="$only"
  [ -n "$databases" ] || die "the backup holds no database with data keys"
  for db in $databases; do
    grep -q "^database $db kek .*\b$id\b" "$dir/manifest" \
      || die "the key file $key (key-encrypting key $id) is not the one the data keys of $db are wrapped with ($(awk -v d="$db" '$1 == "database" && $2 == d { $1 = $2 = $3 = ""; print }' "$dir/manifest" | xargs)); nothing was restored"
  done
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && die "port $port is taken (--port)"

  if [ -z "$data" ]; then
    if [ "$(id -u)" -eq 0 ]; then
      install -d -m 755 /var/lib/mingus-services /var/lib/mingus-services/restores
      data="/var/lib/mingus-services/restores/$(basename "$dir")-$port"
    else
      data="$services/restores/$(basename "$dir")-$port"
    fi
  fi
  [ -e "$data" ] && die "$data already exists"
  mkdir -p "$data/pg_wal"
  chmod 700 "$data"
  tar -xzf "$dir/base.tar.gz" -C "$data"
  tar -xzf "$dir/pg_wal.tar.gz" -C "$data/pg_wal"
  rm -f "$data/postmaster.pid"
  [ "$(id -u)" -eq 0 ] && chown -R postgres: "$data"
  cleanup() { as_pg "$pg_bin/pg_ctl" -D "$data" -m immediate -w stop >/dev/null 2>&1 || true; rm -rf "$data"; }
  if ! (close_inherited_fds && as_pg "$pg_bin/pg_ctl" -D "$data" -l "$data/server.log" -o "-p $port -c listen_addresses=127.0.0.1" -w -t 120 start >/dev/null </dev/null); then
    tail -n 20 "$data/server.log" >&2 || true
    cleanup
    die "the restored server did not start; nothing was kept"
  fi
  local url
  for db in $databases; do
    url="postgresql://mingus@127.0.0.1:$port/$db"
    if ! MINGUS_DATABASE_URL="$url" MINGUS_FINANCIAL_KEY_PATH="$key" mingusctl keys check >&2; then
      cleanup
      die "the data keys of $db do not open with $key; nothing was kept"
    fi
    if ! MINGUS_DATABASE_URL="$url" mingusctl audit verify >&2; then
      cleanup
      die "the audit trail of $db does not verify; nothing was kept"
    fi
  done
  say "restored into $data, serving on 127.0.0.1:$port (backup.sh stop $data stops it)"
  for db in $databases; do echo "postgresql://mingus@127.0.0.1:$port/$db"; done
}

case "${1:-}" in
  create) shift; create "$@" ;;
  restore) shift; restore "$@" ;;
  stop)
    data="${2:?usage: backup.sh stop DATA_DIR}"
    as_pg "$pg_bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null
    say "stopped the server in $data" ;;
  *) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
