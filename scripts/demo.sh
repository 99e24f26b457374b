#!/usr/bin/env bash
# The main job, from a fresh Debian machine (as root): install what is missing,
# build and install pg_dialer into PostgreSQL 15 (PG_MAJOR=17 for 17), start a local
# cluster as the postgres OS user, create the extension, load the demo data,
# show it from the DBA's, a customer's and anon's side, and run the whole call
# flow: enqueue, claim, place, provider results, history and remaining usage;
# then the dispatcher's background worker places calls itself with a local
# stand-in for VAPI, Retell and Bland (tests/mock_provider.py), which sends
# each call's result back in its provider's webhook format.
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
PRELOAD=pg_dialer scripts/cluster.sh start demo "$PORT"
createdb "$DB"
psql -X -q -v ON_ERROR_STOP=1 -d "$DB" -c 'CREATE EXTENSION pg_dialer CASCADE;'
psql -X -q -v ON_ERROR_STOP=1 -d "$DB" -f demo/data.sql
echo
psql -X -q -v ON_ERROR_STOP=1 -d "$DB" -f demo/show.sql 2>&1
echo
psql -X -q -v ON_ERROR_STOP=1 -d "$DB" -f demo/flow.sql 2>&1
echo

# The dispatcher: a provider stand-in on 127.0.0.1 (answers in 20 ms; calls
# last 2 s, then their results come back through record_call_result()).
python3 tests/mock_provider.py --answer-ms 20 --call-ms 2000 \
    --provider VAPI:vapi:vapi_sk_demo_not_a_real_key:10 --provider Retell:retell:key_retell_demo:5 \
    --provider Bland:bland:org_bland_demo:3 --psql "psql -X -q -d $DB" >/tmp/pg_dialer-demo-mock.port 2>/tmp/pg_dialer-demo-mock.log &
mock=$!
trap 'kill $mock 2>/dev/null || true' EXIT
for _ in $(seq 50); do [ -s /tmp/pg_dialer-demo-mock.port ] && break; sleep 0.1; done
mock_url="http://127.0.0.1:$(head -1 /tmp/pg_dialer-demo-mock.port)"
for api in vapi retell bland; do
    psql -X -q -d "$DB" -c "ALTER DATABASE $DB SET pg_dialer.${api}_base_url = '$mock_url/$api'"
done
psql -X -q -v ON_ERROR_STOP=1 -d "$DB" -f demo/dispatch_setup.sql 2>&1
echo "== The DBA turns the background worker on (postgresql.conf: shared_preload_libraries = 'pg_dialer')"
psql -X -q -d "$DB" -c "ALTER SYSTEM SET pg_dialer.dispatcher_database = '$DB'" \
    -c "ALTER SYSTEM SET pg_dialer.dispatcher = on" -c "SELECT pg_reload_conf()" >/dev/null
for _ in $(seq 100); do
    [ "$(psql -X -q -At -d "$DB" -c "SELECT count(*) FROM call_queue WHERE recipient_number IN
        ('+14155550150', '+14155550151', '+12135550152', '+442079460153') AND status IN ('queued', 'in-progress')")" = 0 ] && break
    sleep 0.2
done
psql -X -q -v ON_ERROR_STOP=1 -d "$DB" -v requests="$(curl -s "$mock_url/_requests")" -f demo/dispatch_report.sql 2>&1
grep 'pg_dialer dispatcher' /tmp/pg_dialer-demo/server.log | sed 's/^/   log: /'
echo
echo "The demo database keeps running. Connect with:  psql -h /tmp -p $PORT -U postgres $DB"
echo "Stop it with:  PG_MAJOR=$PG_MAJOR scripts/cluster.sh stop demo"
