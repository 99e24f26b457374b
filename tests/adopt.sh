#!/usr/bin/env bash
# Adopting a hand-built schema: tests/adopt/handbuilt.sql makes the eleven
# tables the way a team writes them from the design (with rows in every table
# and in auth.users), on plain PostgreSQL (auth made by hand) and on a
# Supabase-like database. CREATE EXTENSION must refuse without the setting,
# adopt with it keeping every row and id, replace the hand-made policies, and
# leave a database on which the conformance, RLS and pipeline tests pass,
# the drift report is empty and pg_dump / pg_restore loses nothing. A variant
# with a missing index and a column of the team's own keeps that column; and
# adopting is refused, changing nothing, where it would lose data or break a
# constraint. Prints TAP.
# Needs PGHOST/PGPORT/PGUSER of a running cluster with pg_dialer installed.
set -euo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp -d /tmp/pg_dialer-adopt.XXXXXX)
trap 'rm -rf "$log"' EXIT
# shellcheck source=tests/lib.sh
source tests/lib.sh

# A database as the team has it: $2 lays out roles and auth first.
handbuilt() { # db, preparation script, [no rows]
    dropdb --if-exists "$1" >/dev/null 2>&1
    createdb "$1"
    psql_q -d "$1" -f "$2" >/dev/null
    # A new session: Supabase's search_path (with extensions) is the database's.
    psql_q -d "$1" -f tests/adopt/handbuilt.sql >/dev/null
    if [ -z "${3:-}" ]; then psql_q -d "$1" -f tests/adopt/rows.sql >/dev/null; fi
}
adopt() { # db
    psql_q -d "$1" -c 'SET pg_dialer.adopt_existing_tables = on' -c 'CREATE EXTENSION pg_dialer CASCADE' 2>&1
}
# A refused adoption changes nothing: no extension, the tables as they were.
check_refused() { # description, db, expected SQLSTATE, message regex
    local out state
    remember_columns "$2"
    state=$(snapshot_rows "$2"; psql_q -At -d "$2" -c "SELECT count(*) FROM pg_policies WHERE schemaname = 'public'")
    out=$(psql_q -d "$2" -v VERBOSITY=verbose -c 'SET pg_dialer.adopt_existing_tables = on' \
        -c 'CREATE EXTENSION pg_dialer CASCADE' 2>&1 || true)
    check_match "$1: refused with SQLSTATE $3" "ERROR:  $3" "$out"
    check_match "$1: the message names it" "$4" "$out"
    check "$1: nothing changed" "0|$state" \
        "$(psql_q -At -d "$2" -c "SELECT count(*) FROM pg_extension WHERE extname = 'pg_dialer'")|$(snapshot_rows "$2"; psql_q -At -d "$2" -c "SELECT count(*) FROM pg_policies WHERE schemaname = 'public'")"
}

python3 tests/conformance/spec_to_pgtap.py docs/schema.md >"$log/conformance.sql"

for variant in plain supabase; do
    if [ $variant = plain ]; then prepare=tests/adopt/auth_by_hand.sql; else prepare=tests/supabase/prepare.sql; fi
    db=pg_dialer_adopt_$variant
    handbuilt "$db" "$prepare"
    SKIP_COLUMNS=api_credentials remember_columns "$db"
    before=$(snapshot_rows "$db")
    keys_before=$(plain_keys "$db")

    out=$(psql_q -d "$db" -c 'CREATE EXTENSION pg_dialer CASCADE' 2>&1 || true)
    check_match "$variant: without pg_dialer.adopt_existing_tables, CREATE EXTENSION refuses and says how" \
        'tables of pg_dialer exist already.*public.subscription_plans.*public.user_call_history' "$out"
    check_match "$variant: ... with the setting in its hint" 'SET pg_dialer.adopt_existing_tables = on' "$out"

    if out=$(adopt "$db"); then ok "$variant: CREATE EXTENSION adopts the hand-built tables"; else not_ok "$variant: adoption" "$out"; fi
    check_match "$variant: it says so" 'pg_dialer adopted 11 hand-built table' "$out"
    after=$(snapshot_rows "$db")
    for t in $TABLES; do
        check "$variant: $t keeps every row and id" "$(grep "^$t|" <<<"$before")" "$(grep "^$t|" <<<"$after")"
    done
    check "$variant: the adopted providers' credentials are sealed, no key left in clear" "1|1|0" \
        "$(credentials_state "$db" "$keys_before")"
    check "$variant: the eleven tables (and the new campaigns) are members of pg_dialer and registered for pg_dump" "12|12" \
        "$(psql_q -At -d "$db" -c "SELECT count(*) FROM pg_depend d JOIN pg_class c ON c.oid = d.objid
                                   WHERE d.deptype = 'e' AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pg_dialer')
                                     AND c.relnamespace = 'public'::regnamespace AND c.relkind = 'r'")|$(psql_q -At -d "$db" -c "SELECT count(*) FROM pg_extension, unnest(extconfig) c
                                   WHERE extname = 'pg_dialer' AND c::regclass::text NOT LIKE '%.%'")"
    check "$variant: every hand-made policy was dropped (and logged), the extension's are in place (34, and 4 of campaigns)" \
        "34|0|38" \
        "$(psql_q -At -d "$db" -c "SELECT count(*) FROM dialer.adoption_log WHERE action = 'dropped policy'")|$(psql_q -At -d "$db" -c "SELECT count(*) FROM pg_policies WHERE schemaname = 'public' AND (qual LIKE '%auth.uid()%' OR qual LIKE '%is_admin()%' AND qual NOT LIKE '%dialer.is_admin%')")|$(psql_q -At -d "$db" -c "SELECT count(*) FROM pg_policies WHERE schemaname = 'public'")"
    check "$variant: the team's own triggers are kept (and logged)" "3|3" \
        "$(psql_q -At -d "$db" -c "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'update_%_updated_at'")|$(psql_q -At -d "$db" -c "SELECT count(*) FROM dialer.adoption_log WHERE action = 'kept trigger'")"
    check "$variant: the drift report is empty after adoption" "0" \
        "$(psql_q -At -d "$db" -c 'SELECT count(*) FROM dialer.schema_drift()')"

    # Described like a fresh install on the same kind of database, but for the
    # team's triggers, which stay, and its auth schema (on plain PostgreSQL the
    # extension takes the team's over; on Supabase it is Supabase's).
    ref=pg_dialer_adopt_reference
    dropdb --if-exists "$ref" >/dev/null 2>&1; createdb "$ref"
    psql_q -d "$ref" -f "$prepare" >/dev/null 2>&1
    psql_q -d "$ref" -c 'CREATE EXTENSION pg_dialer CASCADE' 2>/dev/null
    listing "$ref" >"$log/ref.listing"
    listing "$db" >"$log/adopted.listing"
    check "$variant: both listings are there" "nonempty nonempty" \
        "$([ -s "$log/ref.listing" ] && echo nonempty) $([ -s "$log/adopted.listing" ] && echo nonempty)"
    diff "$log/ref.listing" "$log/adopted.listing" | grep '^[<>]' |
        grep -Ev '^> trigger \| public\.[a-z_]+\.update_[a-z_]+_updated_at \||^. [a-z ]+ \| ([a-z ]+ )?auth[ .]' >"$log/diff" || true
    if [ ! -s "$log/diff" ]; then
        ok "$variant: the adopted database describes exactly as a fresh install, but for the team's triggers and auth"
    else
        not_ok "$variant: the adopted database describes exactly as a fresh install" "$(cut -c1-300 "$log/diff")"
    fi
    dropdb "$ref"

    # The SQL suite on a database adopted the same way, without the team's rows
    # (the suite's expectations count rows of its own). Not plain_install.sql:
    # here auth is the team's, not the extension's stand-in.
    handbuilt "${db}_suite" "$prepare" no-rows
    adopt "${db}_suite" >/dev/null
    # prepare.sql's own two tables, which anon may read, are not pg_dialer's.
    psql_q -d "${db}_suite" -c 'DROP TABLE IF EXISTS before_install, roles_before'
    psql_q -d "${db}_suite" -c 'CREATE EXTENSION IF NOT EXISTS pgtap' 2>/dev/null
    if pg_prove -d "${db}_suite" "$log/conformance.sql" $(ls tests/sql/*.sql | grep -v plain_install) >"$log/suite.log" 2>&1; then
        ok "$variant: conformance, RLS and pipeline tests pass on the adopted database"
    else
        not_ok "$variant: conformance, RLS and pipeline tests pass on the adopted database" "$(grep -v '\.\. ok' "$log/suite.log" | head -40)"
    fi
    dropdb "${db}_suite"

    # pg_dump / pg_restore into an empty database. On Supabase a restore goes
    # through Supabase's own tooling into a project that has its auth schema
    # already, so this runs on plain PostgreSQL.
    if [ $variant = plain ]; then
        pg_dump -Fc -d "$db" -f "$log/dump"
        dropdb --if-exists "${db}_restored" >/dev/null 2>&1; createdb "${db}_restored"
        if out=$(pg_restore --exit-on-error -d "${db}_restored" "$log/dump" 2>&1); then
            ok "$variant: pg_restore of the adopted database succeeds"
        else
            not_ok "$variant: pg_restore of the adopted database succeeds" "$out"
        fi
        check "$variant: pg_restore brings back every row" "$after" "$(snapshot_rows "${db}_restored" "$db")"
        dropdb "${db}_restored"
    fi
    dropdb "$db"
done

# A missing index and a column of the team's own.
db=pg_dialer_adopt_extra
handbuilt "$db" tests/adopt/auth_by_hand.sql
psql_q -d "$db" -c "ALTER TABLE user_profiles ADD COLUMN nickname text" \
    -c "UPDATE user_profiles SET nickname = 'The ' || first_name" -c "DROP INDEX idx_call_queue_status" \
    -c "ALTER TABLE auth.users ADD COLUMN phone text" -c "UPDATE auth.users SET phone = '+14155550100'" \
    -c "DO \$\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'reporting') THEN CREATE ROLE reporting; END IF; END \$\$" \
    -c "GRANT SELECT ON ALL TABLES IN SCHEMA public TO reporting" \
    -c "GRANT SELECT (api_credentials) ON call_service_providers TO reporting"
SKIP_COLUMNS=api_credentials remember_columns "$db"
before=$(snapshot_rows "$db")
if out=$(adopt "$db"); then ok "extra: adopts a schema with a missing index and a column of its own"; else not_ok "extra: adoption" "$out"; fi
check "extra: every row is kept, the team's column and its values included" "$before" "$(snapshot_rows "$db")"
check "extra: the missing index is created" "CREATE INDEX idx_call_queue_status ON public.call_queue USING btree (status)" \
    "$(psql_q -At -d "$db" -c "SELECT pg_get_indexdef('public.idx_call_queue_status'::regclass)")"
check_match "extra: the log names the kept column and the pg_dump caveat" 'nickname.*not recreated by pg_dump' \
    "$(psql_q -At -d "$db" -c "SELECT object || ': ' || detail FROM dialer.adoption_log WHERE action = 'kept column'")"
check_match "extra: ... and the kept column of auth.users" 'auth.users.phone: not part of the stand-in' \
    "$(psql_q -At -d "$db" -c "SELECT object || ': ' || detail FROM dialer.adoption_log WHERE action = 'kept column'")"
check "extra: a role of the team's own loses its grants, the credentials' column included (and it is logged)" \
    "false|false|true" \
    "$(psql_q -At -d "$db" -c "SELECT has_table_privilege('reporting', 'public.user_profiles', 'SELECT')
                                      || '|' || has_column_privilege('reporting', 'public.call_service_providers', 'api_credentials', 'SELECT')
                                      || '|' || EXISTS (SELECT FROM dialer.adoption_log WHERE action = 'revoked privileges' AND object = 'reporting')")"
# The README's restore of a dump with a column of one's own: the schema, the
# column, then the data.
pg_dump -Fc -d "$db" -f "$log/dump"
dropdb --if-exists "${db}_restored" >/dev/null 2>&1; createdb "${db}_restored"
pg_restore --section=pre-data -d "${db}_restored" "$log/dump"
psql_q -d "${db}_restored" -c "ALTER TABLE user_profiles ADD COLUMN nickname text" -c "ALTER TABLE auth.users ADD COLUMN phone text"
if out=$(pg_restore --section=data --section=post-data --exit-on-error -d "${db}_restored" "$log/dump" 2>&1); then
    ok "extra: a dump restores with the README's steps for a column of one's own"
else
    not_ok "extra: a dump restores with the README's steps for a column of one's own" "$out"
fi
check "extra: ... with every row, the team's column included" "$(snapshot_rows "$db")" "$(snapshot_rows "${db}_restored" "$db")"
dropdb "${db}_restored"
dropdb "$db"

# Refusals: adopting would lose data or break a constraint.
db=pg_dialer_adopt_refused
handbuilt "$db" tests/adopt/auth_by_hand.sql
psql_q -d "$db" -c "ALTER TABLE call_queue ALTER COLUMN retry_count TYPE text" \
    -c "UPDATE call_queue SET retry_count = 'three' WHERE retry_count = '0' AND status = 'queued'"
check_refused "a value that does not convert" "$db" 22P02 'public.call_queue: .*retry_count.*three'
psql_q -d "$db" -c "UPDATE call_queue SET retry_count = '0'" \
    -c "ALTER TABLE subscription_plans ALTER COLUMN price TYPE numeric(12, 4)" \
    -c "UPDATE subscription_plans SET price = 19.9950 WHERE name = 'Starter'"
check_refused "a value that would change when converted" "$db" 42804 'public.subscription_plans: column price is numeric\(12,4\).*19.9950'
psql_q -d "$db" -c "UPDATE subscription_plans SET price = 19" \
    -c "ALTER TABLE user_phone_numbers DROP CONSTRAINT user_phone_numbers_user_id_full_number_key" \
    -c "INSERT INTO user_phone_numbers (user_id, provider_id, country_code, area_code, phone_number, full_number)
        SELECT user_id, provider_id, country_code, area_code, phone_number, full_number FROM user_phone_numbers"
check_refused "duplicate rows under a UNIQUE of the spec" "$db" 23505 'public.user_phone_numbers: .*UNIQUE \(user_id, full_number\)'
psql_q -d "$db" -c "DELETE FROM user_phone_numbers WHERE id <> 'f2000000-0000-4000-8000-000000000001'" \
    -c "ALTER TABLE user_phone_numbers ADD UNIQUE (user_id, full_number)" \
    -c "ALTER TABLE call_queue ALTER COLUMN recipient_number DROP NOT NULL" \
    -c "UPDATE call_queue SET recipient_number = NULL WHERE status = 'queued'"
check_refused "NULL in a column the spec makes NOT NULL" "$db" 23502 'public.call_queue: .*recipient_number'
psql_q -d "$db" -c "UPDATE call_queue SET recipient_number = '+14155550143' WHERE recipient_number IS NULL" \
    -c "ALTER TABLE call_queue DROP CONSTRAINT call_queue_status_check" \
    -c "UPDATE call_queue SET status = 'ringing' WHERE status = 'queued'"
check_refused "a row that fails a CHECK of the spec" "$db" 23514 'public.call_queue: .*call_queue_status_check'
psql_q -d "$db" -c "UPDATE call_queue SET status = 'queued' WHERE status = 'ringing'" \
    -c "ALTER TABLE call_queue ADD CONSTRAINT call_queue_status_check
        CHECK (status IN ('queued', 'in-progress', 'completed', 'failed', 'canceled'))"
psql_q -d "$db" -c "ALTER TABLE call_queue DROP CONSTRAINT call_queue_template_id_fkey" \
    -c "UPDATE call_queue SET template_id = '99999999-0000-4000-8000-000000000000' WHERE status = 'queued'"
check_refused "a row whose foreign key points nowhere" "$db" 23503 'public.call_queue: .*call_queue_template_id_fkey'
psql_q -d "$db" -c "UPDATE call_queue SET template_id = 'f4000000-0000-4000-8000-000000000001' WHERE status = 'queued'"
if out=$(adopt "$db"); then ok "once corrected, the same database is adopted"; else not_ok "once corrected, the same database is adopted" "$out"; fi
dropdb "$db"

# Refusals: a table that could not be trusted as the extension's. pg_dialer
# writes these tables with its owner's privileges, and the superuser's jobs
# write them, so code on them that another role owns (and may change) would
# run with those privileges.
psql_q -d postgres -c "DO \$\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'team_owner') THEN
                          CREATE ROLE team_owner; END IF; END \$\$"
handbuilt "$db" tests/adopt/auth_by_hand.sql
psql_q -d "$db" -c "ALTER FUNCTION update_updated_at_column() OWNER TO team_owner"
check_refused "a trigger whose function a role other than a superuser owns" "$db" 55000 \
    'public.subscription_plans: its trigger update_subscription_plans_updated_at on table public.subscription_plans calls public.update_updated_at_column\(\), owned by team_owner, which is not a superuser'
psql_q -d "$db" -c "ALTER FUNCTION update_updated_at_column() OWNER TO CURRENT_USER" \
    -c "CREATE TABLE loot (x text)" \
    -c "CREATE RULE copy_calls AS ON INSERT TO call_queue DO ALSO INSERT INTO loot VALUES (NEW.recipient_number)"
check_refused "a rule" "$db" 55000 'public.call_queue: it has rule copy_calls'
psql_q -d "$db" -c "DROP RULE copy_calls ON call_queue" \
    -c "ALTER TABLE user_call_usage DROP CONSTRAINT user_call_usage_user_id_fkey,
                                    DROP CONSTRAINT user_call_usage_subscription_id_fkey" \
    -c "ALTER TABLE user_call_usage SET UNLOGGED"
check_refused "an unlogged table" "$db" 55000 'public.user_call_usage: it is unlogged'
psql_q -d "$db" -c "ALTER TABLE user_call_usage SET LOGGED" \
    -c "CREATE TABLE call_queue_archive () INHERITS (call_queue)"
check_refused "a table with inheritance" "$db" 55000 'public.call_queue: it inherits from or is inherited by public.call_queue_archive'
psql_q -d "$db" -c "DROP TABLE call_queue_archive" \
    -c "CREATE DOMAIN team_text AS text" -c "ALTER DOMAIN team_text OWNER TO team_owner" \
    -c "ALTER TABLE user_profiles ADD COLUMN motto team_text"
check_refused "a column of a type another role owns" "$db" 55000 'public.user_profiles: its column motto is of type public.team_text, owned by team_owner'
psql_q -d "$db" -c "ALTER TABLE user_profiles DROP COLUMN motto" \
    -c "ALTER TABLE call_queue ALTER COLUMN scheduled_time TYPE timestamp"
check_refused "a timestamp without time zone" "$db" 42804 'public.call_queue: column scheduled_time is timestamp without time zone'
psql_q -d "$db" -c "ALTER TABLE call_queue ALTER COLUMN scheduled_time TYPE timestamptz USING scheduled_time AT TIME ZONE 'UTC'"
if out=$(adopt "$db"); then ok "each corrected, the database is adopted"; else not_ok "each corrected, the database is adopted" "$out"; fi
dropdb "$db"


echo "1..$n"
