//! Pure logic of pg_dialer. Nothing in this crate touches PostgreSQL, so all of
//! it is tested with a plain `cargo test -p pg_dialer_core`.

pub mod billing;
pub mod claims;
pub mod error;
pub mod json;
pub mod params;
pub mod phone;
pub mod providers;
pub mod results;
pub mod retry;
pub mod routing;
pub mod secrets;
pub mod sender;
pub mod window;
