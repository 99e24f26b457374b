//! pg_dialer: the PostgreSQL side of an AI outbound voice-calling service.
//!
//! The data model lives in `sql/`, loaded in the order declared below; the
//! Rust modules are thin glue over the pure logic of `pg_dialer_core`.

use pgrx::prelude::*;

mod adopt;
mod batch;
mod billing;
mod calls;
mod campaigns;
mod checks;
mod credentials;
mod dispatch;
mod errors;
mod guards;
mod identity;
mod locks;
mod numbers;
mod plans;
mod queue;
mod results;
mod rollover;
mod routing;
mod schema;
mod settings;
mod settlement;
mod usage;
mod version;
mod window;
mod worker;

::pgrx::pg_module_magic!(name, version);

// Roles and, on plain PostgreSQL, a stand-in for Supabase's `auth` schema.
// Runs first: everything else refers to them.
extension_sql_file!("../sql/bootstrap.sql", name = "bootstrap", bootstrap);

// The schema baseline, the adoption log, and who may run their functions.
extension_sql_file!(
    "../sql/schema.sql",
    name = "schema",
    requires = [
        "bootstrap",
        identity::dialer::is_admin,
        schema::dialer::schema_listing,
        schema::dialer::schema_drift,
        schema::dialer::record_schema_baseline,
        schema::dialer::schema_update_begin,
        schema::dialer::schema_update_end,
        adopt::dialer::adopt_prepare,
        adopt::dialer::adopt_tables,
        version::dialer::version
    ]
);

// Hand-built tables of the same names are moved aside (or refused).
extension_sql!(
    "SELECT dialer.adopt_prepare();",
    name = "adopt_prepare",
    requires = ["schema"]
);

// The eleven tables of the spec with their constraints and indexes.
extension_sql_file!(
    "../sql/tables.sql",
    name = "tables",
    requires = ["adopt_prepare"]
);

// Hand-built tables replace the new ones, made to match them.
extension_sql!(
    "SELECT dialer.adopt_tables();",
    name = "adopt_tables",
    requires = ["tables"]
);

// Timestamps, guards, row level security, grants and pg_dump registration.
extension_sql_file!(
    "../sql/security.sql",
    name = "security",
    requires = [
        "adopt_tables",
        guards::dialer::protect_columns,
        identity::dialer::uid,
        identity::dialer::is_admin,
        identity::dialer::is_privileged
    ]
);

// The call pipeline: validation triggers, enqueue, cancel, worker functions.
extension_sql_file!(
    "../sql/queue.sql",
    name = "queue",
    requires = [
        "security",
        queue::dialer::check_queued_call,
        queue::dialer::validate_template,
        numbers::dialer::validate_user_phone_number,
        queue::dialer::cancel_queued_call,
        queue::dialer::enqueue,
        queue::dialer::needs_check,
        calls::dialer::place_call,
        calls::dialer::fail_call,
        calls::rescue_stale_calls,
        routing::pick_number,
        routing::claim_due_calls
    ]
);

// Results and billing: record_call_result, usage, rollover, pg_cron jobs.
extension_sql_file!(
    "../sql/billing.sql",
    name = "billing",
    requires = [
        "queue",
        results::dialer::record_result,
        billing::dialer::subscription_period,
        billing::dialer::plan_remaining,
        usage::compute_remaining_usage,
        rollover::rollover_billing_periods
    ]
);

// Campaigns and calling windows.
extension_sql_file!(
    "../sql/campaigns.sql",
    name = "campaigns",
    requires = [
        "billing",
        window::dialer::validate_call_window,
        campaigns::dialer::campaign_action,
        campaigns::dialer::validate_campaign,
        campaigns::dialer::billed_minutes,
        batch::dialer::enqueue_batch
    ]
);

// The dispatcher: its state per provider and dispatch_due_calls().
extension_sql_file!(
    "../sql/dispatch.sql",
    name = "dispatch",
    requires = [
        "campaigns",
        dispatch::dialer::dispatch_claim,
        dispatch::dialer::dispatch_send,
        dispatch::dispatcher_status,
        dispatch::dispatcher_worker,
        credentials::dialer::seal_credentials,
        credentials::dialer::seal_stored_credentials,
        credentials::rotate_credentials_key
    ]
);

// Last: who may execute the helpers in schema dialer, and the listing of
// what was installed, for dialer.schema_drift().
extension_sql_file!("../sql/finalize.sql", name = "finalize", finalize);

#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    // With RUST_BACKTRACE (or RUST_LIB_BACKTRACE) in the server's environment,
    // pgrx appends a Rust backtrace to the DETAIL of every error that passes a
    // Rust frame, and PostgREST hands DETAIL to clients. Rust reads these
    // variables once, at the first backtrace; removing them here, when the
    // library loads and before any backtrace, turns backtraces off in this
    // backend. A PostgreSQL backend runs one thread, so changing its
    // environment is safe.
    std::env::remove_var("RUST_BACKTRACE");
    std::env::remove_var("RUST_LIB_BACKTRACE");
    settings::init();
    worker::init();
}

#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        // calls are placed at any hour in the tests (see scripts/test.sh)
        vec![r#"pg_dialer.default_call_window = '{"always": true}'"#]
    }
}
