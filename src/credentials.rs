//! Provider credentials sealed at rest: `call_service_providers.
//! api_credentials` holds what core/src/secrets.rs seals, under a key that
//! is not in the database, named by `pg_dialer.credentials_key`:
//!
//! - a file (the default `pg_dialer.key`, relative to the data directory),
//!   readable only by the server's OS user; created with a new key the first
//!   time one is needed;
//! - or `vault:<name>`: the Supabase Vault secret of that name (created the
//!   same way).
//!
//! Its text lists keys, one per line: the first seals, each opens what it
//! sealed (`rotate_credentials_key()` puts a new one first and seals every
//! row again under it). Admins write plain JSON; trigger `seal_credentials`
//! seals it before it is stored; only the dispatcher opens it, in memory.

use crate::errors::{raise, spi};
use pg_dialer_core::error::DialerError;
use pg_dialer_core::secrets::{self, MasterKey};
use pgrx::prelude::*;
use pgrx::JsonB;
use serde_json::Value;
use std::io::Write;

/// A key that cannot be read, written or made: F0000 (config_file_error),
/// naming the setting's file or secret, never a key.
fn key_error(message: String) -> ! {
    pgrx::ereport!(
        PgLogLevel::ERROR,
        PgSqlErrorCode::ERRCODE_CONFIG_FILE_ERROR,
        message,
        "See pg_dialer.credentials_key in the README (\"Credentials\")."
    );
    unreachable!("ereport(ERROR) does not return")
}

/// Where the keys are: a file path, or a Vault secret's name.
enum Source {
    File(String),
    Vault(String),
}

fn source() -> Source {
    let setting = crate::settings::credentials_key();
    match setting.strip_prefix("vault:") {
        Some(name) => Source::Vault(name.trim().to_string()),
        None => Source::File(setting),
    }
}

fn describe(source: &Source) -> String {
    match source {
        Source::File(path) => format!("key file {path}"),
        Source::Vault(name) => format!("Vault secret {name}"),
    }
}

/// 32 bytes from PostgreSQL's strong random source, as 64 hex digits.
fn new_key_line() -> String {
    let mut bytes = [0u8; 32];
    // SAFETY: fills the buffer it is given.
    if !unsafe { pg_sys::pg_strong_random(bytes.as_mut_ptr().cast(), bytes.len()) } {
        key_error("no strong random bytes for a new key".into());
    }
    secrets::key_line(&bytes)
}

fn nonce() -> [u8; 12] {
    let mut bytes = [0u8; 12];
    // SAFETY: fills the buffer it is given.
    if !unsafe { pg_sys::pg_strong_random(bytes.as_mut_ptr().cast(), bytes.len()) } {
        key_error("no strong random bytes for a nonce".into());
    }
    bytes
}

/// The text of the Vault secret `name`, if there is one.
fn vault_text(name: &str) -> Result<Option<String>, String> {
    crate::identity::as_extension_owner(|| {
        Spi::get_one_with_args::<String>(
            "SELECT (SELECT s.decrypted_secret FROM vault.decrypted_secrets s WHERE s.name = $1)",
            &[name.into()],
        )
    })
    .map_err(|err| format!("Vault secret {name} cannot be read: {err}"))
}

/// The keys' text, as stored; None when there is none yet.
fn read_text(source: &Source) -> Result<Option<String>, String> {
    match source {
        Source::File(path) => match std::fs::read_to_string(path) {
            Ok(text) => Ok(Some(text)),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(format!("key file {path} cannot be read: {err}")),
        },
        Source::Vault(name) => vault_text(name),
    }
}

/// Stores the keys' text: a file is written beside itself and renamed over
/// (mode 0600); a Vault secret is created or updated.
fn write_text(source: &Source, text: &str) -> Result<(), String> {
    match source {
        Source::File(path) => {
            let temporary = write_beside(path, text)
                .map_err(|err| format!("key file {path} cannot be written: {err}"))?;
            let renamed = std::fs::rename(&temporary, path);
            let _ = std::fs::remove_file(&temporary);
            renamed.map_err(|err| format!("key file {path} cannot be replaced: {err}"))?;
            sync_directory(path);
            Ok(())
        }
        Source::Vault(name) => crate::identity::as_extension_owner(|| {
            let id = Spi::get_one_with_args::<pgrx::Uuid>(
                "SELECT (SELECT v.id FROM vault.secrets v WHERE v.name = $1)",
                &[name.as_str().into()],
            )?;
            match id {
                None => Spi::run_with_args(
                    "SELECT vault.create_secret($2, $1)",
                    &[name.as_str().into(), text.into()],
                ),
                Some(id) => Spi::run_with_args(
                    "SELECT vault.update_secret($1, $2)",
                    &[id.into(), text.into()],
                ),
            }
        })
        .map_err(|err| format!("Vault secret {name} cannot be written: {err}")),
    }
}

/// Makes the key file `path` with `text` (mode 0600), unless it exists
/// (then false): written beside it, linked into place (which fails rather
/// than replace a file), and the directory synced.
fn create_file(path: &str, text: &str) -> Result<bool, String> {
    let linked = write_beside(path, text).and_then(|temporary| {
        let linked = std::fs::hard_link(&temporary, path);
        let _ = std::fs::remove_file(&temporary);
        linked
    });
    match linked {
        Ok(()) => {
            sync_directory(path);
            Ok(true)
        }
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(err) => Err(format!("key file {path} cannot be written: {err}")),
    }
}

/// `text` written and synced to a new file beside `path`, mode 0600, named
/// after this process; returns its name.
fn write_beside(path: &str, text: &str) -> std::io::Result<String> {
    use std::os::unix::fs::OpenOptionsExt;
    // SAFETY: reads this process's id.
    let temporary = format!("{path}.{}.new", unsafe { pg_sys::MyProcPid });
    let _ = std::fs::remove_file(&temporary);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temporary)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    Ok(temporary)
}

/// Syncs the directory of `path`, so that a new name in it lasts.
fn sync_directory(path: &str) {
    let dir = std::path::Path::new(path)
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    if let Ok(dir) = std::fs::File::open(dir) {
        let _ = dir.sync_all();
    }
}

/// The keys (the first seals), created when there are none yet and `create`.
fn keys(create: bool) -> Result<Vec<MasterKey>, String> {
    let source = source();
    let text = match read_text(&source)? {
        Some(text) => text,
        None if create => {
            let text = format!(
                "# pg_dialer: keys of call_service_providers.api_credentials; the first seals\n{}\n",
                new_key_line()
            );
            match &source {
                // never over a key another session made meanwhile: that one
                // is read and used
                Source::File(path) => match create_file(path, &text)? {
                    true => text,
                    false => read_text(&source)?.unwrap_or(text),
                },
                Source::Vault(_) => {
                    write_text(&source, &text)?;
                    text
                }
            }
        }
        None => return Err(format!("{} does not exist", describe(&source))),
    };
    secrets::parse_keys(&text).map_err(|why| format!("{}: {why}", describe(&source)))
}

thread_local! {
    /// The keys of a key file as last read, by the setting, the file's
    /// modification time and length: the dispatcher opens credentials at
    /// every run, and reads the file again only when it changed.
    static KEPT: std::cell::RefCell<Option<KeptKeys>> = const { std::cell::RefCell::new(None) };
}

/// A key file's path, modification time and length, and its keys.
type KeptKeys = (
    String,
    std::time::SystemTime,
    u64,
    std::rc::Rc<Vec<MasterKey>>,
);

/// The keys to open with (a key file's kept while it is unchanged).
fn opening_keys() -> Result<std::rc::Rc<Vec<MasterKey>>, String> {
    let Source::File(path) = source() else {
        return keys(false).map(std::rc::Rc::new);
    };
    let stamp = std::fs::metadata(&path)
        .ok()
        .and_then(|m| Some((m.modified().ok()?, m.len())));
    if let Some((modified, len)) = stamp {
        let kept = KEPT.with(|kept| {
            kept.borrow()
                .as_ref()
                .filter(|(p, m, l, _)| *p == path && *m == modified && *l == len)
                .map(|(_, _, _, keys)| keys.clone())
        });
        if let Some(keys) = kept {
            return Ok(keys);
        }
    }
    let keys = std::rc::Rc::new(keys(false)?);
    if let Some((modified, len)) = stamp {
        KEPT.with(|kept| *kept.borrow_mut() = Some((path, modified, len, keys.clone())));
    }
    Ok(keys)
}

/// A provider's credentials as the dispatcher uses them: plain JSON as
/// stored by 0.1.0 or written by a superuser's restore, or opened.
pub fn open(provider: &str, stored: &Value) -> Result<Value, String> {
    if !secrets::is_sealed(stored) {
        return Ok(stored.clone());
    }
    let keys = opening_keys().map_err(|why| format!("the credentials cannot be opened: {why}"))?;
    secrets::open_any(&keys, provider, stored).map_err(|err| err.to_string())
}

/// Providers' ids and stored credentials, by `sql` (locked).
fn stored(
    client: &pgrx::spi::SpiClient<'_>,
    sql: &'static str,
) -> Result<Vec<(pgrx::Uuid, Value)>, pgrx::spi::SpiError> {
    crate::plans::query(client, sql, &[])?
        .map(|r| {
            Ok((
                r.get::<pgrx::Uuid>(1)?.expect("an id"),
                r.get::<JsonB>(2)?.map(|j| j.0).unwrap_or(Value::Null),
            ))
        })
        .collect()
}

fn seal(keys: &[MasterKey], provider: &str, plain: &Value) -> Value {
    secrets::seal(&keys[0], provider, plain, nonce())
}

#[pg_schema]
mod dialer {
    use super::*;

    /// Seals every provider's credentials stored in clear (rows of an
    /// earlier version, or adopted): run by CREATE EXTENSION and the update.
    /// As a superuser, with the table's triggers quiet (no updated_at
    /// changes: the rows are the same to their owners). Returns how many.
    #[pg_extern(volatile, strict, parallel_unsafe, requires = ["tables"])]
    #[search_path(pg_catalog)]
    fn seal_stored_credentials() -> i64 {
        let quiet = crate::identity::caller_is_superuser();
        spi(Spi::connect_mut(|client| {
            let plain = stored(
                client,
                "SELECT p.id, p.api_credentials FROM public.call_service_providers p
                 WHERE p.api_credentials IS NOT NULL AND NOT p.api_credentials ? 'pg_dialer_sealed'
                 FOR UPDATE",
            )?;
            if plain.is_empty() {
                return Ok(0);
            }
            let keys = keys(true).unwrap_or_else(|why| {
                key_error(format!("api_credentials cannot be sealed: {why}"))
            });
            let quiet_before = if quiet {
                let before = crate::plans::first(
                    client,
                    "SELECT pg_catalog.current_setting('session_replication_role')",
                    &[],
                    |r| r.get::<String>(1),
                )?
                .flatten()
                .unwrap_or_else(|| "origin".into());
                crate::plans::query(
                    client,
                    "SELECT pg_catalog.set_config('session_replication_role', 'replica', true)",
                    &[],
                )?;
                Some(before)
            } else {
                None
            };
            let mut count = 0;
            for (id, value) in plain {
                let sealed = JsonB(seal(&keys, &id.to_string(), &value));
                crate::plans::query(
                    client,
                    "UPDATE public.call_service_providers SET api_credentials = $2 WHERE id = $1",
                    &[id.into(), sealed.into()],
                )?;
                count += 1;
            }
            if let Some(before) = quiet_before {
                crate::plans::query(
                    client,
                    "SELECT pg_catalog.set_config('session_replication_role', $1, true)",
                    &[before.into()],
                )?;
            }
            Ok(count)
        }))
    }
    use pgrx::datum::TryFromDatumError;
    use pgrx::AllocatedByRust;

    /// Trigger `seal_credentials` on `call_service_providers`: plain JSON
    /// written to api_credentials is sealed under the current key, bound to
    /// the row's id; a sealed value is kept as it is (a restore, a
    /// rotation), sealed again for the new id when the id changes.
    #[pg_trigger]
    fn seal_credentials<'a>(
        trigger: &'a PgTrigger<'a>,
    ) -> Result<Option<PgHeapTuple<'a, AllocatedByRust>>, TryFromDatumError> {
        let mut row = crate::guards::new_row(trigger);
        let Some(JsonB(value)) = row.get_by_name::<JsonB>("api_credentials")? else {
            return Ok(Some(row));
        };
        let id = row
            .get_by_name::<pgrx::Uuid>("id")?
            .map(|id| id.to_string())
            .unwrap_or_default();
        let plain = if secrets::is_sealed(&value) {
            let old_id = match trigger.old() {
                Some(old) => old
                    .get_by_name::<pgrx::Uuid>("id")?
                    .map(|id| id.to_string()),
                None => None,
            };
            match old_id {
                Some(old_id) if old_id != id => {
                    open(&old_id, &value).unwrap_or_else(|why| raise(DialerError::invalid(why)))
                }
                _ => return Ok(Some(row)),
            }
        } else {
            value
        };
        let keys = keys(true)
            .unwrap_or_else(|why| key_error(format!("api_credentials cannot be sealed: {why}")));
        row.set_by_name("api_credentials", JsonB(seal(&keys, &id, &plain)))?;
        Ok(Some(row))
    }
}

/// Puts a new key first in `pg_dialer.credentials_key` (the earlier ones
/// stay, to open what they sealed) and seals every provider's credentials
/// again under it. Superusers only. Returns the new key's id, how many
/// providers' credentials were sealed again, and how many did not open
/// (sealed for another row or under a key this server lacks: left as they
/// are, each with a WARNING). Once none is left under an earlier key, the
/// earlier keys may be deleted from the file (or secret).
#[pg_extern(volatile, strict, parallel_unsafe, requires = ["campaigns"])]
#[search_path(pg_catalog)]
fn rotate_credentials_key() -> TableIterator<
    'static,
    (
        name!(key_id, String),
        name!(sealed_again, i64),
        name!(not_opened, i64),
    ),
> {
    if !crate::identity::caller_is_superuser() {
        raise(DialerError::forbidden(
            "rotate_credentials_key() is for superusers: it writes the key file",
        ));
    }
    let fail = |why: String| -> ! { key_error(format!("the key was not rotated: {why}")) };
    let old = keys(true).unwrap_or_else(|why| fail(why));
    let source = source();
    let text = read_text(&source)
        .unwrap_or_else(|why| fail(why))
        .unwrap_or_default();
    let line = new_key_line();
    write_text(&source, &format!("{line}\n{text}")).unwrap_or_else(|why| fail(why));
    let new = MasterKey::parse(&line).unwrap_or_else(|why| fail(why));
    let key_id = new.id().to_string();
    let mut all = vec![new];
    all.extend(old);
    let count = spi(Spi::connect_mut(|client| {
        crate::identity::as_extension_owner(|| {
            let rows = stored(
                client,
                "SELECT p.id, p.api_credentials FROM public.call_service_providers p
                 WHERE p.api_credentials IS NOT NULL FOR UPDATE",
            )?;
            let (mut count, mut left) = (0i64, 0i64);
            for (id, stored) in rows {
                let owner = id.to_string();
                let plain = if secrets::is_sealed(&stored) {
                    match secrets::open_any(&all, &owner, &stored) {
                        Ok(plain) => plain,
                        // one damaged row stops no other: left as it is
                        Err(err) => {
                            warning!(
                                "rotate_credentials_key(): provider {owner} left as it is: {err}"
                            );
                            left += 1;
                            continue;
                        }
                    }
                } else {
                    stored
                };
                crate::plans::query(
                    client,
                    "UPDATE public.call_service_providers SET api_credentials = $2 WHERE id = $1",
                    &[id.into(), JsonB(seal(&all, &owner, &plain)).into()],
                )?;
                count += 1;
            }
            Ok((count, left))
        })
    }));
    TableIterator::once((key_id, count.0, count.1))
}
