# Sourced by the scripts: where PostgreSQL of major $PG_MAJOR (15 or 17) lives.
# 15 is Debian's; 17 is the build scripts/setup.sh unpacks into /opt.
PG_MAJOR=${PG_MAJOR:-15}
case "$PG_MAJOR" in
15) PG_BIN=/usr/lib/postgresql/15/bin ;;
17) PG_BIN=/opt/pg_dialer/postgresql-17/bin ;;
*)
    echo "PG_MAJOR must be 15 or 17, not $PG_MAJOR" >&2
    exit 2
    ;;
esac
PG_CONFIG=$PG_BIN/pg_config
export PG_MAJOR PG_BIN PG_CONFIG
