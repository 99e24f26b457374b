# Sourced by the shell tests: TAP output, and what they compare databases by.
# Needs PGHOST/PGPORT/PGUSER; $log, a directory of the test's own.

psql_q() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }

n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); echo "not ok $n - $1"; shift; printf '#   %s\n' "$@"; }
check() { # description, expected, actual
    if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1" "expected: $2" "     got: $3"; fi
}
check_match() { # description, extended regex, actual
    if grep -Eq -- "$2" <<<"$3"; then ok "$1"; else not_ok "$1" "expected to match: $2" "got: $3"; fi
}

# The tables whose rows must survive: the spec's eleven and auth.users.
TABLES="auth.users subscription_plans user_profiles user_subscriptions user_call_usage call_service_providers
        provider_phone_numbers user_phone_numbers voice_options call_templates call_queue user_call_history"

# Remembers each table's columns as they are now in database $1, so that rows
# are compared over these columns later (a column added since then does not
# change the digest).
# $SKIP_COLUMNS (names, space-separated) are left out: api_credentials where
# installing pg_dialer seals them (compared with credentials_state instead).
remember_columns() {
    local t skip
    skip=$(printf "'%s'," ${SKIP_COLUMNS:-} "")
    for t in $TABLES; do
        psql_q -At -d "$1" -c "SELECT '$t|' || string_agg(quote_ident(attname), ', ' ORDER BY attnum)
                               FROM pg_attribute WHERE attrelid = '$t'::regclass AND attnum > 0 AND NOT attisdropped
                                 AND attname NOT IN (${skip%,})"
    done >"$log/$1.columns"
}
# The providers' API keys in clear in database $1, space-separated.
plain_keys() {
    psql_q -At -d "$1" -c "SELECT string_agg(api_credentials::jsonb->>'api_key', ' ') FROM call_service_providers
                           WHERE api_credentials IS NOT NULL AND NOT api_credentials::jsonb ? 'pg_dialer_sealed'"
}
# Of database $1's providers with credentials: how many, how many sealed, and
# how many show any of the keys $2 (space-separated) in clear.
credentials_state() {
    local keys=${2//\'/\'\'}
    psql_q -At -d "$1" -c "SELECT count(*) || '|' || count(*) FILTER (WHERE api_credentials ? 'pg_dialer_sealed')
        || '|' || count(*) FILTER (WHERE EXISTS (SELECT FROM unnest(string_to_array('$keys', ' ')) k
                                                 WHERE k <> '' AND strpos(api_credentials::text, k) > 0))
        FROM call_service_providers WHERE api_credentials IS NOT NULL"
}
# One line per table of database $1: name, rows, a digest of every row over
# the columns remembered for database ${2:-$1}.
snapshot_rows() {
    local t cols
    for t in $TABLES; do
        cols=$(grep "^$t|" "$log/${2:-$1}.columns" | cut -d'|' -f2)
        psql_q -At -d "$1" -c "SELECT '$t', count(*), md5(coalesce(string_agg(r::text, '|' ORDER BY r::text), ''))
                               FROM (SELECT $cols FROM $t) r"
    done
}
# The normalized listing of what pg_dialer installed, one line per object or
# property, definitions on one line.
listing() {
    psql_q -At -d "$1" -c "SELECT kind || ' | ' || object || ' | ' || replace(definition, E'\n', ' ')
                           FROM dialer.schema_listing() ORDER BY kind, object"
}
