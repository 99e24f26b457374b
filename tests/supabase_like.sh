#!/usr/bin/env bash
# Installs pg_dialer into a Supabase-like database (tests/supabase/prepare.sql)
# and checks it with tests/supabase/install.sql and the spec conformance test.
# Needs PGHOST/PGPORT/PGUSER of a running cluster with pg_dialer installed;
# best a fresh one, so the roles are made the way Supabase makes them. Prints TAP.
set -euo pipefail
cd "$(dirname "$0")/.."
db=pg_dialer_supabase
psql_q() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }

dropdb --if-exists "$db" >/dev/null
createdb "$db"
psql_q -d "$db" -f tests/supabase/prepare.sql >/dev/null
psql_q -d "$db" -c 'CREATE EXTENSION pg_dialer CASCADE' 2>/dev/null
{
    psql_q -At -d "$db" -f tests/supabase/install.sql
    python3 tests/conformance/spec_to_pgtap.py docs/schema.md |
        sed "s/tables_are('public', ARRAY\[/tables_are('public', ARRAY['before_install', 'roles_before', /" |
        psql_q -At -d "$db" -f -
} | awk '
    /^ok |^not ok / { n++; sub(/^(not )?ok [0-9]+/, ($1 == "not" ? "not ok " : "ok ") n) ; print; next }
    /^1\.\./ { next }
    { print }
    END { print "1.." n }'
dropdb "$db"
