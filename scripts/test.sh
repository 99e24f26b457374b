#!/usr/bin/env bash
# The whole test suite of pg_dialer, from a fresh Debian machine (as root):
#   1. lint: cargo fmt --check and clippy with warnings as errors
#   2. pure Rust unit tests (pg_dialer_core), no database
#   3. #[pg_test] tests inside PostgreSQL (cargo pgrx test)
#   4. SQL tests with pgTAP on a fresh cluster: spec conformance, RLS as anon,
#      two users, an admin and service_role, timestamps, the plain install
#   5. pg_dump / pg_restore round trip, concurrency with pgbench connections,
#      the jobs run by a real pg_cron
#   6. install on a Supabase-like database, in a cluster of its own
set -uo pipefail
export PATH="$HOME/.cargo/bin:$PATH"
cd "$(dirname "$0")/.."
scripts/setup.sh || exit 1

export PGUSER=postgres PGHOST=/tmp
PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
log_dir=$(mktemp -d /tmp/pg_dialer-test.XXXXXX)
passed=0
failed=0
failures=()

step() { # name, command...
    local name=$1
    shift
    echo "=== $name"
    if "$@"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        failures+=("$name")
        echo "=== FAILED: $name"
    fi
}

lint() {
    cargo fmt --all -- --check &&
        cargo clippy --workspace --all-targets --no-default-features --features "pg15 pg_test" -- -D warnings
}

pgrx_tests() {
    local data=/tmp/pg_dialer-pgrx
    install -d -o postgres -g postgres "$data"
    cargo pgrx test pg15 --runas postgres --pgdata "$data"
}

sql_tests() {
    local conformance="$log_dir/conformance.sql"
    python3 tests/conformance/spec_to_pgtap.py docs/schema.md >"$conformance" || return 1
    createdb pg_dialer_test &&
        psql -X -q -v ON_ERROR_STOP=1 -d pg_dialer_test \
            -c 'CREATE EXTENSION pg_dialer CASCADE' -c 'CREATE EXTENSION pgtap' 2>/dev/null &&
        pg_prove -d pg_dialer_test "$conformance" tests/sql/*.sql
}

install_extension() {
    cargo pgrx install --pg-config "$PG_CONFIG" >"$log_dir/install.log" 2>&1 ||
        { cat "$log_dir/install.log"; return 1; }
}

step "lint (cargo fmt, cargo clippy)" lint
step "pure Rust unit tests" cargo test -p pg_dialer_core
step "pgrx tests inside PostgreSQL" pgrx_tests
step "build and install the extension" install_extension
if [ "$failed" -eq 0 ] || [ -f /usr/share/postgresql/15/extension/pg_dialer.control ]; then
    export PGPORT=28815
    step "start a test cluster" scripts/cluster.sh start test 28815
    step "SQL tests (pgTAP)" sql_tests
    step "pg_dump and pg_restore" prove tests/dump_restore.sh
    step "concurrency with real connections (pgbench)" prove tests/concurrency.sh
    step "pg_cron runs the billing and rescue jobs" prove tests/pg_cron.sh
    scripts/cluster.sh stop test
    export PGPORT=28816
    step "start a Supabase-like cluster" scripts/cluster.sh start supabase 28816
    step "install on a Supabase-like database" prove tests/supabase_like.sh
    scripts/cluster.sh stop supabase
fi

echo
for f in "${failures[@]}"; do echo "failed: $f"; done
echo "test suites: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
