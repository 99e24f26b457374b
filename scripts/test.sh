#!/usr/bin/env bash
# The whole test suite of pg_dialer, from a fresh Debian machine (as root),
# on PostgreSQL 15 and 17 (PG_MAJORS="15" to run one):
#   - lint: cargo fmt --check, and clippy with warnings as errors for each major
#   - pure Rust unit tests (pg_dialer_core), no database
# and for each major:
#   - #[pg_test] tests inside PostgreSQL (cargo pgrx test)
#   - SQL tests with pgTAP on a fresh cluster: spec conformance, RLS as anon,
#     two users, an admin and service_role, the call pipeline, results and
#     billing, the end-to-end flow
#   - pg_dump / pg_restore round trip; concurrency with pgbench connections;
#     the dispatcher against a local provider mock, in sessions and as a
#     background worker (a cluster of its own, restarted mid-run);
#     lock protocols as deterministic isolation specs (pg_isolation_regress)
#   - adopting a hand-built schema; ALTER EXTENSION UPDATE from the previous
#     release (RELEASES.md), compared with a fresh install
#   - the jobs run by a real pg_cron (15 only: pg_cron is packaged for 15)
#   - install on a Supabase-like database, in a cluster of its own
set -uo pipefail
export PATH="$HOME/.cargo/bin:$PATH"
cd "$(dirname "$0")/.."
scripts/setup.sh || exit 1

PG_MAJORS=${PG_MAJORS:-"15 17"}
export PGUSER=postgres PGHOST=/tmp
log_dir=$(mktemp -d /tmp/pg_dialer-test.XXXXXX)
passed=0
failed=0
failures=()

step() { # name, command...; returns the command's success
    local name=$1
    shift
    echo "=== $name"
    if "$@"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        failures+=("$name")
        echo "=== FAILED: $name"
        return 1
    fi
}

lint() {
    cargo fmt --all -- --check || return 1
    local major
    for major in $PG_MAJORS; do
        cargo clippy --workspace --all-targets --no-default-features --features "pg$major pg_test" -- -D warnings ||
            return 1
    done
}

pgrx_tests() {
    local data=/tmp/pg_dialer-pgrx-$PG_MAJOR
    rm -rf "$data"
    install -d -o postgres -g postgres "$data"
    cargo pgrx test "pg$PG_MAJOR" --runas postgres --pgdata "$data"
}

# The clusters of this run go when it ends, however it ends.
cleanup() {
    local dir name
    for dir in /tmp/pg_dialer-*-"$$"; do
        [ -d "$dir" ] || continue
        name=${dir#/tmp/pg_dialer-}
        PG_MAJOR=$(cut -d- -f2 <<<"$name") scripts/cluster.sh stop "$name" >/dev/null 2>&1
        rm -rf "$dir"
    done
}
trap cleanup EXIT

start_cluster() { # name, lowest port; sets PGPORT
    local port
    port=$(scripts/cluster.sh start "$1" "auto:$2") || return 1
    export PGPORT=$port
    echo "cluster $1 on /tmp:$PGPORT"
    # The suites place calls at any hour of the day: calling windows
    # (08:00-21:00 in the recipient's zone unless set) are tested where the
    # tests set them (tests/sql/campaigns.sql, pg_dialer_core's window.rs).
    psql -X -q -d postgres -c "LOAD 'pg_dialer'" -c "ALTER SYSTEM SET pg_dialer.default_call_window = '{\"always\": true}'" \
        -c "SELECT pg_reload_conf()" >/dev/null
}

install_extension() {
    cargo pgrx install --pg-config "$PG_CONFIG" >"$log_dir/install-$PG_MAJOR.log" 2>&1 ||
        { cat "$log_dir/install-$PG_MAJOR.log"; return 1; }
}

sql_tests() {
    local conformance="$log_dir/conformance.sql"
    python3 tests/conformance/spec_to_pgtap.py docs/schema.md >"$conformance" || return 1
    createdb pg_dialer_test &&
        psql -X -q -v ON_ERROR_STOP=1 -d pg_dialer_test \
            -c 'CREATE EXTENSION pg_dialer CASCADE' -c 'CREATE EXTENSION pgtap' 2>/dev/null &&
        pg_prove -d pg_dialer_test "$conformance" tests/sql/*.sql
}

step "lint (cargo fmt, cargo clippy)" lint
step "pure Rust unit tests" cargo test -p pg_dialer_core

for major in $PG_MAJORS; do
    export PG_MAJOR=$major
    # shellcheck source=scripts/pg.sh
    source scripts/pg.sh
    export PATH="$PG_BIN:$HOME/.cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    step "pg$major: pgrx tests inside PostgreSQL" pgrx_tests
    step "pg$major: build and install the extension" install_extension || continue

    # Clusters of this run: its own names and free ports, so that two suites
    # on one machine do not collide.
    step "pg$major: start a test cluster" start_cluster "test-$major-$$" $((28800 + major))
    step "pg$major: SQL tests (pgTAP)" sql_tests
    step "pg$major: pg_dump and pg_restore" prove tests/dump_restore.sh
    step "pg$major: concurrency with real connections (pgbench)" prove tests/concurrency.sh
    SERVER_LOG=/tmp/pg_dialer-test-$major-$$/server.log \
        step "pg$major: the dispatcher against a local provider mock" prove tests/dispatch.sh
    step "pg$major: the dispatcher's background worker (own cluster, preloaded; restarts)" prove tests/worker.sh
    if [ -f "$("$PG_CONFIG" --pkglibdir)/pg_cron.so" ]; then
        step "pg$major: pg_cron runs the billing and rescue jobs" prove tests/pg_cron.sh
    else
        echo "=== pg$major: no pg_cron for this major; tests/pg_cron.sh runs on 15"
    fi
    step "pg$major: lock protocols as isolation specs (pg_isolation_regress)" tests/isolation.sh
    step "pg$major: no Rust backtrace reaches a client (RUST_BACKTRACE=1)" prove tests/backtrace.sh
    step "pg$major: adopting a hand-built schema" prove tests/adopt.sh
    # Last on this cluster: it installs the previous release for a while.
    step "pg$major: ALTER EXTENSION UPDATE from the previous release" prove tests/upgrade.sh
    scripts/cluster.sh stop "test-$major-$$"

    step "pg$major: start a Supabase-like cluster" start_cluster "supabase-$major-$$" $((28900 + major))
    step "pg$major: install on a Supabase-like database" prove tests/supabase_like.sh
    scripts/cluster.sh stop "supabase-$major-$$"
done

echo
for f in "${failures[@]}"; do echo "failed: $f"; done
echo "suites: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
