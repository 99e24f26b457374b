#!/usr/bin/env bash
# The main job, from a fresh Debian machine (as root): install what is missing,
# build and install pg_dialer into PostgreSQL 15 (PG_MAJOR=17 for 17), start a local
# cluster as the postgres OS user, create the extension, load the demo data,
# show it from the DBA's, a customer's and anon's side, and run the whole call
# flow: enqueue, claim, place, provider results, history and remaining usage.
set -euo pipefail
export PATH="$HOME/.cargo/bin:$PATH"
cd "$(dirname "$0")/.."
scripts/setup.sh
source scripts/pg.sh
export PATH="$PG_BIN:$PATH"

PORT=${PG_DIALER_DEMO_PORT:-28850}
DB=pg_dialer_demo
export PGUSER=postgres PGHOST=/tmp PGPORT=$PORT

echo "== Building and installing pg_dialer"
cargo pgrx install --pg-config "$PG_CONFIG" >/tmp/pg_dialer-demo-install.log 2>&1 ||
    { cat /tmp/pg_dialer-demo-install.log; exit 1; }
echo "== Starting PostgreSQL $PG_MAJOR on /tmp:$PORT (data in /tmp/pg_dialer-demo)"
scripts/cluster.sh start demo "$PORT"
createdb "$DB"
psql -X -q -v ON_ERROR_STOP=1 -d "$DB" -c 'CREATE EXTENSION pg_dialer CASCADE;'
psql -X -q -v ON_ERROR_STOP=1 -d "$DB" -f demo/data.sql
echo
psql -X -q -v ON_ERROR_STOP=1 -d "$DB" -f demo/show.sql 2>&1
echo
psql -X -q -v ON_ERROR_STOP=1 -d "$DB" -f demo/flow.sql 2>&1
echo
echo "The demo database keeps running. Connect with:  psql -h /tmp -p $PORT -U postgres $DB"
echo "Stop it with:  PG_MAJOR=$PG_MAJOR scripts/cluster.sh stop demo"
