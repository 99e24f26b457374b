#!/usr/bin/env bash
# A throwaway PostgreSQL cluster run by the postgres OS user (initdb refuses
# root), reachable over the unix socket in /tmp with trust authentication.
#
#   scripts/cluster.sh start NAME PORT   # new empty cluster in /tmp/pg_dialer-NAME
#   scripts/cluster.sh stop NAME
set -euo pipefail

PG_BIN=/usr/lib/postgresql/15/bin
cmd=${1:?start or stop}
name=${2:?cluster name}
dir=/tmp/pg_dialer-$name

as_postgres() { runuser -u postgres -- "$@"; }

case "$cmd" in
start)
    port=${3:?port}
    if [ -f "$dir/postmaster.pid" ]; then as_postgres "$PG_BIN/pg_ctl" -D "$dir" -m immediate stop >/dev/null 2>&1 || true; fi
    rm -rf "$dir"
    install -d -o postgres -g postgres "$dir"
    as_postgres "$PG_BIN/initdb" -D "$dir" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >/dev/null
    cat >>"$dir/postgresql.conf" <<CONF
port = $port
listen_addresses = ''
unix_socket_directories = '/tmp'
shared_preload_libraries = 'pg_cron'
cron.database_name = 'postgres'
cron.host = '/tmp'
fsync = off
timezone = 'UTC'
CONF
    as_postgres "$PG_BIN/pg_ctl" -D "$dir" -l "$dir/server.log" -w start >/dev/null
    ;;
stop)
    if [ -f "$dir/postmaster.pid" ]; then as_postgres "$PG_BIN/pg_ctl" -D "$dir" -m fast -w stop >/dev/null; fi
    ;;
*)
    echo "usage: $0 start NAME PORT | stop NAME" >&2
    exit 2
    ;;
esac
