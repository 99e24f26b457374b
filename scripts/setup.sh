#!/usr/bin/env bash
# Installs what building and testing pg_dialer needs on a Debian machine, and
# skips whatever is there already: Debian packages (PostgreSQL 15 with server
# headers, clang, pg_cron, pgTAP and pg_prove), cargo-pgrx 0.18.1, and
# `cargo pgrx init` against the system pg_config. Run as root.
set -euo pipefail
export PATH="$HOME/.cargo/bin:$PATH"

PGRX_VERSION=0.18.1
PG_MAJOR=15
PG_CONFIG=/usr/lib/postgresql/$PG_MAJOR/bin/pg_config
PACKAGES=(
    build-essential clang libclang-dev pkg-config sudo python3
    "postgresql-$PG_MAJOR" "postgresql-server-dev-$PG_MAJOR" "postgresql-client-$PG_MAJOR"
    "postgresql-$PG_MAJOR-cron" "postgresql-$PG_MAJOR-pgtap" libtap-parser-sourcehandler-pgtap-perl
)

missing=()
for pkg in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! cargo pgrx --version 2>/dev/null | grep -q "$PGRX_VERSION"; then
    echo "setup: installing cargo-pgrx $PGRX_VERSION (takes a few minutes)"
    cargo install cargo-pgrx --version "$PGRX_VERSION" --locked
fi

if ! grep -q "pg$PG_MAJOR = \"$PG_CONFIG\"" "${PGRX_HOME:-$HOME/.pgrx}/config.toml" 2>/dev/null; then
    cargo pgrx init --pg$PG_MAJOR="$PG_CONFIG"
fi
