//! Settings a DBA tunes with `ALTER DATABASE ... SET pg_dialer.x = ...` (or per
//! session, or in postgresql.conf).

use pg_dialer_core::error::DialerError;
use pg_dialer_core::json;
use pg_dialer_core::retry::RetryPolicy;
use pg_dialer_core::window::Window;
use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use std::ffi::CString;

pub static MAX_ATTEMPTS: GucSetting<i32> = GucSetting::<i32>::new(3);
pub static RETRY_BASE_DELAY: GucSetting<i32> = GucSetting::<i32>::new(60);
pub static RETRY_MAX_DELAY: GucSetting<i32> = GucSetting::<i32>::new(3600);
pub static STALE_CALL_TIMEOUT: GucSetting<i32> = GucSetting::<i32>::new(900);
pub static ADOPT_EXISTING_TABLES: GucSetting<bool> = GucSetting::<bool>::new(false);
pub static ALLOWED_NUMBER_TYPES: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(None);
pub static DEFAULT_CALL_WINDOW: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(None);
pub static VAPI_BASE_URL: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static RETELL_BASE_URL: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static BLAND_BASE_URL: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
pub static BLAND_WEBHOOK_URL: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(None);
pub static DISPATCH_TIMEOUT: GucSetting<i32> = GucSetting::<i32>::new(10_000);
pub static DISPATCH_IN_FLIGHT: GucSetting<i32> = GucSetting::<i32>::new(16);
pub static CREDENTIALS_KEY: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"pg_dialer.key"));
pub static DISPATCHER: GucSetting<bool> = GucSetting::<bool>::new(false);
pub static DISPATCHER_DATABASE: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"postgres"));

pub fn init() {
    GucRegistry::define_int_guc(
        c"pg_dialer.max_attempts",
        c"Attempts a call gets, the first included, before it ends as failed.",
        c"Retryable failures (no answer, busy, a provider error) queue the call again until this many attempts were made.",
        &MAX_ATTEMPTS,
        1,
        100,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"pg_dialer.retry_base_delay",
        c"Backoff step after a call's first failed attempt.",
        c"The step doubles with every further attempt, up to pg_dialer.retry_max_delay; the delay is half the step plus a random part of the other half.",
        &RETRY_BASE_DELAY,
        0,
        86_400,
        GucContext::Userset,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_int_guc(
        c"pg_dialer.retry_max_delay",
        c"Largest backoff step between two attempts of a call.",
        c"",
        &RETRY_MAX_DELAY,
        0,
        7 * 86_400,
        GucContext::Userset,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_int_guc(
        c"pg_dialer.stale_call_timeout",
        c"How long a call may stay in progress without a result before rescue_stale_calls() takes it back.",
        c"",
        &STALE_CALL_TIMEOUT,
        1,
        7 * 86_400,
        GucContext::Userset,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_string_guc(
        c"pg_dialer.allowed_number_types",
        c"Kinds of numbers that cost the caller extra which every plan may call, comma-separated.",
        c"premium_rate, shared_cost, personal_number, international_network. A plan allows more with features.allowed_number_types.",
        &ALLOWED_NUMBER_TYPES,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"pg_dialer.default_call_window",
        c"The calling window of calls that bring none, belong to no campaign with one and whose user set no default.",
        c"A window as JSON, e.g. {\"hours\": [[\"09:00\", \"20:00\"]]}, or {\"always\": true}. Unset or empty: 08:00-21:00 every day in the recipient's time zone.",
        &DEFAULT_CALL_WINDOW,
        GucContext::Suset,
        GucFlags::default(),
    );
    for (name, short, value) in [
        (
            c"pg_dialer.vapi_base_url",
            c"Where the dispatcher sends VAPI's requests; unset or empty: https://api.vapi.ai.",
            &VAPI_BASE_URL,
        ),
        (
            c"pg_dialer.retell_base_url",
            c"Where the dispatcher sends Retell's requests; unset or empty: https://api.retellai.com.",
            &RETELL_BASE_URL,
        ),
        (
            c"pg_dialer.bland_base_url",
            c"Where the dispatcher sends Bland's requests; unset or empty: https://api.bland.ai.",
            &BLAND_BASE_URL,
        ),
    ] {
        GucRegistry::define_string_guc(
            name,
            short,
            c"Superusers only: the provider's API key goes there.",
            value,
            GucContext::Suset,
            GucFlags::default(),
        );
    }
    GucRegistry::define_string_guc(
        c"pg_dialer.bland_webhook_url",
        c"The URL Bland posts each call's result to (Bland takes it per call); unset: none is sent.",
        c"An endpoint that hands the body to record_call_result(), e.g. a Supabase Edge Function.",
        &BLAND_WEBHOOK_URL,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"pg_dialer.dispatch_timeout",
        c"How long the dispatcher waits for a provider's answer to a create-call request.",
        c"A request without an answer by then fails, retryable (the provider may have the call: see the README).",
        &DISPATCH_TIMEOUT,
        100,
        120_000,
        GucContext::Suset,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_int_guc(
        c"pg_dialer.dispatch_in_flight",
        c"Create-call requests the dispatcher has in flight at once.",
        c"Each provider's concurrency_limit bounds its calls in progress whatever this is.",
        &DISPATCH_IN_FLIGHT,
        1,
        256,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"pg_dialer.credentials_key",
        c"Where the key that seals providers' api_credentials is: a file, or vault:<secret name>.",
        c"A file path is relative to the data directory (default pg_dialer.key); the file, or the Vault secret, is made with a new key when first needed. One key per line (64 hex digits): the first seals.",
        &CREDENTIALS_KEY,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_bool_guc(
        c"pg_dialer.dispatcher",
        c"Whether the background worker places due calls (needs shared_preload_libraries = 'pg_dialer').",
        c"Turned on or off with a reload (pg_reload_conf()); off, the worker waits without a connection.",
        &DISPATCHER,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"pg_dialer.dispatcher_database",
        c"The database whose calls the background worker places.",
        c"A reload that names another database restarts the worker there.",
        &DISPATCHER_DATABASE,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_bool_guc(
        c"pg_dialer.adopt_existing_tables",
        c"Whether CREATE EXTENSION pg_dialer adopts hand-built tables of the same names, keeping their rows.",
        c"Off: CREATE EXTENSION refuses when the tables exist. See \"Adopting a hand-built schema\" in the README.",
        &ADOPT_EXISTING_TABLES,
        GucContext::Suset,
        GucFlags::default(),
    );
}

pub fn retry_policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: u32::try_from(MAX_ATTEMPTS.get()).unwrap_or(1),
        base_delay_secs: f64::from(RETRY_BASE_DELAY.get()),
        max_delay_secs: f64::from(RETRY_MAX_DELAY.get()),
    }
}

/// pg_dialer.allowed_number_types, as a list.
pub fn allowed_number_types() -> Vec<String> {
    ALLOWED_NUMBER_TYPES
        .get()
        .map(|value| {
            value
                .to_string_lossy()
                .split(',')
                .map(|kind| kind.trim().to_owned())
                .filter(|kind| !kind.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

thread_local! {
    /// pg_dialer.default_call_window as last read, and its window.
    static DEFAULT_WINDOW: std::cell::RefCell<Option<(String, Window)>> = const { std::cell::RefCell::new(None) };
}

/// pg_dialer.default_call_window, read (08:00-21:00 every day when unset or
/// empty);
/// a value that is not a window is an error naming the setting.
pub fn default_call_window() -> Result<Window, DialerError> {
    let text = DEFAULT_CALL_WINDOW
        .get()
        .map(|text| text.to_string_lossy().into_owned())
        .unwrap_or_default();
    if text.trim().is_empty() {
        return Ok(Window::default());
    }
    if let Some(window) = DEFAULT_WINDOW.with(|kept| {
        kept.borrow()
            .as_ref()
            .filter(|(kept, _)| *kept == text)
            .map(|(_, window)| window.clone())
    }) {
        return Ok(window);
    }
    let name = "pg_dialer.default_call_window";
    let window = json::parse(name, &text, 16 * 1024).and_then(|v| Window::parse(name, &v))?;
    DEFAULT_WINDOW.with(|kept| *kept.borrow_mut() = Some((text, window.clone())));
    Ok(window)
}

/// A provider's base URL: its setting, else the documented one; no
/// trailing slash.
pub fn base_url(provider: pg_dialer_core::results::Provider) -> String {
    use pg_dialer_core::results::Provider;
    let setting = match provider {
        Provider::Vapi => &VAPI_BASE_URL,
        Provider::Retell => &RETELL_BASE_URL,
        Provider::Bland => &BLAND_BASE_URL,
    };
    text(setting)
        .unwrap_or_else(|| provider.default_base_url().to_string())
        .trim_end_matches('/')
        .to_string()
}

/// pg_dialer.bland_webhook_url, when set.
pub fn bland_webhook_url() -> Option<String> {
    text(&BLAND_WEBHOOK_URL)
}

/// A text setting's value, trimmed; None when unset or empty.
fn text(setting: &GucSetting<Option<CString>>) -> Option<String> {
    setting
        .get()
        .map(|value| value.to_string_lossy().trim().to_string())
        .filter(|value| !value.is_empty())
}

/// How the dispatcher sends: pg_dialer.dispatch_timeout and
/// pg_dialer.dispatch_in_flight.
pub fn dispatch_limits() -> pg_dialer_core::sender::Limits {
    let timeout =
        std::time::Duration::from_millis(u64::try_from(DISPATCH_TIMEOUT.get()).unwrap_or(10_000));
    pg_dialer_core::sender::Limits {
        timeout,
        connect_timeout: timeout.min(std::time::Duration::from_secs(3)),
        in_flight: usize::try_from(DISPATCH_IN_FLIGHT.get()).unwrap_or(16),
    }
}

/// pg_dialer.dispatcher.
pub fn dispatcher_enabled() -> bool {
    DISPATCHER.get()
}

/// pg_dialer.dispatcher_database (postgres when unset or empty).
pub fn dispatcher_database() -> String {
    text(&DISPATCHER_DATABASE).unwrap_or_else(|| "postgres".into())
}

/// pg_dialer.credentials_key (pg_dialer.key when unset or empty).
pub fn credentials_key() -> String {
    text(&CREDENTIALS_KEY).unwrap_or_else(|| "pg_dialer.key".into())
}
