#!/usr/bin/env bash
# ALTER EXTENSION pg_dialer UPDATE from the previous release to this build.
#
# Builds and installs the previous release from the commit RELEASES.md records
# for it, creates it with the demo data and the whole call flow (rows in every
# table), installs the current build and updates. Then checks that every row
# is still there; that the database describes exactly as a fresh CREATE
# EXTENSION of the current version (dialer.schema_listing(): tables, columns,
# constraints, indexes, policies, triggers, privileges, functions with their
# full definitions, membership, pg_dump registrations), printing the lines
# that differ; that the drift report is empty; that the SQL test suite passes
# on an updated database; and that pg_dump / pg_restore of the updated
# database loses nothing. Prints TAP.
#
# Needs PGHOST/PGPORT/PGUSER of a running cluster, and PG_MAJOR/PG_CONFIG
# (scripts/pg.sh). The current build is installed again when it ends.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

# The newest release recorded: "| 0.1.0 | <commit> | <date> |".
read -r prev_version prev_commit < <(awk -F'|' '/^\| [0-9]+\.[0-9]+\.[0-9]+ \|/ { v = $2; c = $3 } END { print v, c }' RELEASES.md)
current_version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
log=$(mktemp -d /tmp/pg_dialer-upgrade.XXXXXX)

# shellcheck source=tests/lib.sh
source tests/lib.sh
bail() { echo "Bail out! $1"; exit 1; }

install_current() {
    cargo pgrx install --pg-config "$PG_CONFIG" >"$log/install-current.log" 2>&1 ||
        { cat "$log/install-current.log" >&2; return 1; }
}
# Whatever happens, the current build is installed again, or this says so:
# the suites after this one would otherwise test the previous release.
trap 'install_current || echo "Bail out! the current build could not be installed again"; rm -rf "$log"' EXIT

# The previous release's source, from git (the commit must be in this clone).
src=/tmp/pg_dialer-release-$prev_version
if [ ! -f "$src/Cargo.toml" ]; then
    git cat-file -e "$prev_commit^{commit}" 2>/dev/null ||
        bail "commit $prev_commit of release $prev_version is not in this clone (a shallow clone?)"
    rm -rf "$src" && mkdir -p "$src"
    git archive "$prev_commit" | tar -x -C "$src"
fi
# Its own target directory: sharing ours would overwrite our library file.
if (cd "$src" && CARGO_TARGET_DIR="$root/target/release-$prev_version" \
    cargo pgrx install --pg-config "$PG_CONFIG" >"$log/install-prev.log" 2>&1); then
    ok "release $prev_version builds and installs from commit ${prev_commit:0:12}"
else
    tail -30 "$log/install-prev.log" | sed 's/^/# /'
    bail "release $prev_version does not build"
fi

compare_listings() { # description, db, reference db
    listing "$2" >"$log/$2.listing"
    listing "$3" >"$log/$3.listing"
    if diff -u "$log/$3.listing" "$log/$2.listing" >"$log/diff"; then
        ok "$1 ($(wc -l <"$log/$2.listing") objects and properties)"
    else
        not_ok "$1" "lines only in $3 (-) or only in $2 (+):"
        grep '^[-+][^-+]' "$log/diff" | cut -c1-400 | sed 's/^/#   /'
    fi
}

for db in upgraded upgraded_suite upgraded_supabase fresh fresh_supabase restored; do
    dropdb --if-exists "pg_dialer_$db" >/dev/null 2>&1
done
# A Supabase-like database (tests/supabase/prepare.sql) with the release.
createdb pg_dialer_upgraded_supabase
psql_q -d pg_dialer_upgraded_supabase -f tests/supabase/prepare.sql >/dev/null 2>&1
psql_q -d pg_dialer_upgraded_supabase -c "CREATE EXTENSION pg_dialer VERSION '$prev_version' CASCADE" 2>/dev/null
createdb pg_dialer_upgraded
createdb pg_dialer_upgraded_suite
psql_q -d pg_dialer_upgraded -c "CREATE EXTENSION pg_dialer VERSION '$prev_version' CASCADE" 2>/dev/null
psql_q -d pg_dialer_upgraded_suite -c "CREATE EXTENSION pg_dialer VERSION '$prev_version' CASCADE" 2>/dev/null
# Rows in every table, made by the release's own demo: data, then the flow.
(cd "$src" && psql_q -d pg_dialer_upgraded -f demo/data.sql -f demo/flow.sql >/dev/null 2>&1) ||
    bail "the demo of release $prev_version does not run"
SKIP_COLUMNS=api_credentials remember_columns pg_dialer_upgraded
before_rows=$(snapshot_rows pg_dialer_upgraded)
keys_before=$(plain_keys pg_dialer_upgraded)
providers_before=$(psql_q -At -d pg_dialer_upgraded -c "SELECT count(*) FROM call_service_providers WHERE api_credentials IS NOT NULL")
check "the release's demo leaves rows in every table" "" "$(awk -F'|' '$2 == 0 { print $1 }' <<<"$before_rows")"

install_current || bail "the current build does not install"
for db in pg_dialer_upgraded pg_dialer_upgraded_suite pg_dialer_upgraded_supabase; do
    if out=$(psql_q -d "$db" -c 'ALTER EXTENSION pg_dialer UPDATE' 2>&1); then
        ok "ALTER EXTENSION pg_dialer UPDATE runs on $db"
    else
        not_ok "ALTER EXTENSION pg_dialer UPDATE runs on $db" "$out"
    fi
done
check "the updated extension is version $current_version" "$current_version" \
    "$(psql_q -At -d pg_dialer_upgraded -c "SELECT extversion FROM pg_extension WHERE extname = 'pg_dialer'")"
check "dialer.version() reports the update" "$current_version|$current_version" \
    "$(psql_q -At -d pg_dialer_upgraded -c "SELECT extension_version || '|' || library_version FROM dialer.version()")"

after_rows=$(snapshot_rows pg_dialer_upgraded)
for t in $TABLES; do
    check "$t: every row is still there, unchanged" "$(grep "^$t|" <<<"$before_rows")" "$(grep "^$t|" <<<"$after_rows")"
done
check "the update sealed every provider's credentials: no key left in clear" "$providers_before|$providers_before|0" \
    "$(credentials_state pg_dialer_upgraded "$keys_before")"
check "(the release's demo has credentials with keys to look for)" "1" "$([ -n "$keys_before" ] && [ "$providers_before" -gt 0 ] && echo 1)"

createdb pg_dialer_fresh
psql_q -d pg_dialer_fresh -c 'CREATE EXTENSION pg_dialer CASCADE' 2>/dev/null
compare_listings "the updated database describes exactly as a fresh install" pg_dialer_upgraded pg_dialer_fresh
check "a fresh install recorded its baseline" "t" \
    "$(psql_q -At -d pg_dialer_fresh -c "SELECT count(*) > 500 FROM dialer.schema_baseline WHERE snapshot = 'installed'")"
check "the updated database's baseline equals a fresh install's" \
    "$(psql_q -At -d pg_dialer_fresh -c "SELECT md5(string_agg(b::text, '|' ORDER BY b::text)) FROM dialer.schema_baseline b")" \
    "$(psql_q -At -d pg_dialer_upgraded -c "SELECT md5(string_agg(b::text, '|' ORDER BY b::text)) FROM dialer.schema_baseline b")"
check "the drift report is empty after the update" "0" \
    "$(psql_q -At -d pg_dialer_upgraded -c 'SELECT count(*) FROM dialer.schema_drift()')"
check "the drift report is empty after a fresh install" "0" \
    "$(psql_q -At -d pg_dialer_fresh -c 'SELECT count(*) FROM dialer.schema_drift()')"

# The same on a Supabase-like database, against a fresh install there.
createdb pg_dialer_fresh_supabase
psql_q -d pg_dialer_fresh_supabase -f tests/supabase/prepare.sql >/dev/null 2>&1
psql_q -d pg_dialer_fresh_supabase -c 'CREATE EXTENSION pg_dialer CASCADE' 2>/dev/null
compare_listings "Supabase-like: the updated database describes exactly as a fresh install" \
    pg_dialer_upgraded_supabase pg_dialer_fresh_supabase
check "Supabase-like: the drift report is empty after the update" "0" \
    "$(psql_q -At -d pg_dialer_upgraded_supabase -c 'SELECT count(*) FROM dialer.schema_drift()')"
check "Supabase-like: auth is still Supabase's (no member of pg_dialer in it)" "0" \
    "$(psql_q -At -d pg_dialer_upgraded_supabase -c "SELECT count(*) FROM dialer.schema_listing()
                                                     WHERE kind = 'member' AND object ~ '\mauth\M'")"

# The SQL suite (RLS, pipeline, billing, conformance) on an updated database.
python3 tests/conformance/spec_to_pgtap.py docs/schema.md >"$log/conformance.sql"
psql_q -d pg_dialer_upgraded_suite -c 'CREATE EXTENSION pgtap' 2>/dev/null
if pg_prove -d pg_dialer_upgraded_suite "$log/conformance.sql" tests/sql/*.sql >"$log/suite.log" 2>&1; then
    ok "the SQL test suite passes on an updated database ($(grep -c '\.\. ok' "$log/suite.log") files)"
else
    not_ok "the SQL test suite passes on an updated database" "$(grep -v '\.\. ok' "$log/suite.log" | head -40)"
fi

# pg_dump / pg_restore of the updated database.
pg_dump -Fc -d pg_dialer_upgraded -f "$log/dump"
createdb pg_dialer_restored
if out=$(pg_restore --exit-on-error -d pg_dialer_restored "$log/dump" 2>&1); then
    ok "pg_restore of the updated database succeeds"
else
    not_ok "pg_restore of the updated database succeeds" "$out"
fi
check "pg_restore brings back every row of the updated database" "$after_rows" "$(snapshot_rows pg_dialer_restored pg_dialer_upgraded)"
compare_listings "the restored database describes exactly as the updated one" pg_dialer_restored pg_dialer_upgraded

for db in upgraded upgraded_suite upgraded_supabase fresh fresh_supabase restored; do
    dropdb --if-exists "pg_dialer_$db" >/dev/null 2>&1
done
echo "1..$n"
