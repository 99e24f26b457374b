#!/usr/bin/env bash
# Lock protocols as deterministic interleavings of several connections:
# tests/isolation/specs/*.spec with PostgreSQL's pg_isolation_regress (from
# pgxs), each output compared with tests/isolation/expected/. Needs
# PGHOST/PGPORT/PGUSER of a running cluster with pg_dialer installed, and
# PG_CONFIG (scripts/pg.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${ISOLATION_OUT:-$(mktemp -d /tmp/pg_dialer-isolation.XXXXXX)}
trap 'rm -rf "$out"' EXIT
pgxs=$(dirname "$("$PG_CONFIG" --pgxs)")/..
specs=$(cd tests/isolation/specs && ls -- *.spec | sed 's/\.spec$//')
# shellcheck disable=SC2086
if "$pgxs/test/isolation/pg_isolation_regress" \
    --inputdir=tests/isolation --outputdir="$out" --bindir="$("$PG_CONFIG" --bindir)" \
    --host="$PGHOST" --port="$PGPORT" --user="$PGUSER" --dbname=pg_dialer_isolation \
    --load-extension=uuid-ossp --load-extension=pg_dialer $specs; then
    exit 0
fi
cat "$out/regression.diffs" 2>/dev/null
exit 1
