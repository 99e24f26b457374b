#!/usr/bin/env bash
# pg_dump and pg_restore of a database with pg_dialer and the demo data into an
# empty database: every table's rows, auth.users (which the extension created
# here), every policy and every grant must come back. Prints TAP.
# Needs PGHOST/PGPORT/PGUSER of a running cluster with pg_dialer installed.
set -euo pipefail
cd "$(dirname "$0")/.."

src=pg_dialer_dump_src
dst=pg_dialer_dump_dst
log=$(mktemp -d /tmp/pg_dialer-dump.XXXXXX)
dump=$log/dump
trap 'rm -rf "$log"' EXIT
# shellcheck source=tests/lib.sh
source tests/lib.sh

snapshot_policies() {
    psql_q -At -d "$1" -c "SELECT tablename, policyname, cmd, roles, qual, with_check
                           FROM pg_policies WHERE schemaname = 'public' ORDER BY 1, 2"
}
snapshot_grants() {
    psql_q -At -d "$1" -c "SELECT c.relname, c.relacl, (SELECT array_agg(a.attname || '=' || a.attacl::text ORDER BY a.attnum)
                                                      FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attacl IS NOT NULL)
                           FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r' ORDER BY 1"
}


dropdb --if-exists "$src" >/dev/null; dropdb --if-exists "$dst" >/dev/null
createdb "$src"
psql_q -d "$src" -c 'CREATE EXTENSION pg_dialer CASCADE' -f demo/data.sql 2>/dev/null

remember_columns "$src"
before_rows=$(snapshot_rows "$src")
before_policies=$(snapshot_policies "$src")
before_grants=$(snapshot_grants "$src")

if pg_dump -Fc -d "$src" -f "$dump"; then ok "pg_dump of a database with pg_dialer succeeds"; else not_ok "pg_dump"; fi
createdb "$dst"
if restore_log=$(pg_restore --exit-on-error -d "$dst" "$dump" 2>&1); then
    ok "pg_restore into an empty database succeeds"
else
    not_ok "pg_restore into an empty database succeeds" "$restore_log"
fi

after_rows=$(snapshot_rows "$dst" "$src")
for t in $TABLES; do
    check "$t: every row comes back unchanged" "$(grep "^$t|" <<<"$before_rows")" "$(grep "^$t|" <<<"$after_rows")"
done
check "the demo data fills every table, so every table is checked" "0" "$(awk -F'|' '$2 == 0' <<<"$before_rows" | wc -l)"
check "every policy comes back ($(wc -l <<<"$before_policies") policies)" "$before_policies" "$(snapshot_policies "$dst")"
check "every grant comes back" "$before_grants" "$(snapshot_grants "$dst")"
check "the restored extension is pg_dialer $(psql_q -At -d "$src" -c "SELECT extversion FROM pg_extension WHERE extname = 'pg_dialer'")" \
    "$(psql_q -At -d "$src" -c "SELECT extversion FROM pg_extension WHERE extname = 'pg_dialer'")" \
    "$(psql_q -At -d "$dst" -c "SELECT extversion FROM pg_extension WHERE extname = 'pg_dialer'")"

# The restored database works: a user still sees exactly their own calls.
as_maria="SET ROLE authenticated; SELECT set_config('request.jwt.claims', '{\"sub\":\"0d1e5c2a-7b1f-4c9e-9d2a-5f3b8e6a1c01\"}', false);"
check "row level security works after the restore" \
    "$(psql_q -At -d "$src" -c "$as_maria" -c "SELECT count(*) FROM call_queue" | tail -1)" \
    "$(psql_q -At -d "$dst" -c "$as_maria" -c "SELECT count(*) FROM call_queue" | tail -1)"

dropdb "$src"; dropdb "$dst"
echo "1..$n"
