//! What is installed: `dialer.version()`, for bug reports and troubleshooting.

use pgrx::prelude::*;

#[pg_schema]
mod dialer {
    use crate::errors::spi;
    use pgrx::prelude::*;

    /// The installed extension version (of its SQL objects), the version and
    /// commit of the loaded library, its pgrx version and the server's.
    /// `extension_version` differs from `library_version` between installing
    /// a new build and running `ALTER EXTENSION pg_dialer UPDATE`.
    #[pg_extern(stable)]
    #[allow(clippy::type_complexity)]
    fn version() -> TableIterator<
        'static,
        (
            name!(extension_version, Option<String>),
            name!(library_version, String),
            name!(commit, String),
            name!(pgrx_version, String),
            name!(postgres_version, Option<String>),
            name!(postgres_major, i32),
        ),
    > {
        let extension_version = spi(Spi::get_one::<String>(
            "SELECT extversion::text FROM pg_catalog.pg_extension WHERE extname = 'pg_dialer'",
        ));
        let postgres_version = spi(Spi::get_one::<String>(
            "SELECT pg_catalog.current_setting('server_version')",
        ));
        TableIterator::once((
            extension_version,
            env!("CARGO_PKG_VERSION").to_owned(),
            env!("PG_DIALER_COMMIT").to_owned(),
            env!("PG_DIALER_PGRX_VERSION").to_owned(),
            postgres_version,
            i32::try_from(pgrx::pg_sys::PG_VERSION_NUM / 10_000).unwrap_or(0),
        ))
    }
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

    #[pg_test]
    fn version_names_the_build() {
        let row = Spi::get_three::<String, String, i32>(
            "SELECT library_version, pgrx_version, postgres_major FROM dialer.version()",
        )
        .unwrap();
        assert_eq!(row.0.as_deref(), Some(env!("CARGO_PKG_VERSION")));
        assert_eq!(row.1.as_deref(), Some("0.18.1"));
        let major =
            Spi::get_one::<i32>("SELECT current_setting('server_version_num')::int / 10000")
                .unwrap();
        assert_eq!(row.2, major);
    }
}
