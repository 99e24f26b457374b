#!/usr/bin/env bash
# A throwaway PostgreSQL cluster run by the postgres OS user (initdb refuses
# root), reachable over the unix socket in /tmp with trust authentication.
# PG_MAJOR (15 or 17, default 15) picks the server; pg_cron is preloaded where
# that major has it (15), and the libraries in $PRELOAD (comma-separated).
#
#   scripts/cluster.sh start NAME PORT       # new empty cluster in /tmp/pg_dialer-NAME
#   scripts/cluster.sh start NAME auto:BASE  # on the first free port from BASE; prints it
#   scripts/cluster.sh stop NAME
set -euo pipefail
source "$(dirname "$0")/pg.sh"
cmd=${1:?start or stop}
name=${2:?cluster name}
dir=/tmp/pg_dialer-$name

# Without RUST_BACKTRACE: with it, pgrx puts a Rust backtrace into the DETAIL
# of errors, which PostgREST would pass on to clients.
as_postgres() { runuser -u postgres -- env -u RUST_BACKTRACE -u RUST_LIB_BACKTRACE "$@"; }

# A port no server on this machine's /tmp socket directory uses, from $1 on.
free_port() {
    local port=$1
    while [ -e "/tmp/.s.PGSQL.$port" ] || [ -e "/tmp/.s.PGSQL.$port.lock" ]; do port=$((port + 1)); done
    echo "$port"
}

case "$cmd" in
start)
    port=${3:?port}
    auto=
    if [[ $port == auto:* ]]; then
        auto=1
        port=$(free_port "${port#auto:}")
    fi
    if [ -f "$dir/postmaster.pid" ]; then as_postgres "$PG_BIN/pg_ctl" -D "$dir" -m immediate stop >/dev/null 2>&1 || true; fi
    rm -rf "$dir"
    install -d -o postgres -g postgres "$dir"
    as_postgres "$PG_BIN/initdb" -D "$dir" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >/dev/null
    cat >>"$dir/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '/tmp'
fsync = off
timezone = 'UTC'
CONF
    preload=${PRELOAD:-}
    if [ -f "$("$PG_CONFIG" --pkglibdir)/pg_cron.so" ]; then
        preload=pg_cron${preload:+,$preload}
        cat >>"$dir/postgresql.conf" <<CONF
cron.database_name = 'postgres'
cron.host = '/tmp'
CONF
    fi
    [ -z "$preload" ] || echo "shared_preload_libraries = '$preload'" >>"$dir/postgresql.conf"
    # Another suite may take the port first: then the next free one.
    for attempt in 1 2 3 4 5 6 7 8 9 10; do
        echo "port = $port" >"$dir/port.conf"
        grep -q "^include 'port.conf'" "$dir/postgresql.conf" || echo "include 'port.conf'" >>"$dir/postgresql.conf"
        chown postgres "$dir/port.conf"
        if as_postgres "$PG_BIN/pg_ctl" -D "$dir" -l "$dir/server.log" -w start >/dev/null; then
            [ -n "$auto" ] && echo "$port"
            exit 0
        fi
        [ -n "$auto" ] && [ "$attempt" -lt 10 ] || { tail -5 "$dir/server.log" >&2; exit 1; }
        port=$(free_port $((port + 1)))
    done
    ;;
stop)
    if [ -f "$dir/postmaster.pid" ]; then as_postgres "$PG_BIN/pg_ctl" -D "$dir" -m fast -w stop >/dev/null; fi
    ;;
*)
    echo "usage: $0 start NAME PORT | stop NAME" >&2
    exit 2
    ;;
esac
