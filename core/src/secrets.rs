//! Provider credentials encrypted at rest (`call_service_providers.
//! api_credentials`): authenticated encryption (ChaCha20-Poly1305, from
//! `ring`) under a 256-bit key that is not in the database, bound to the
//! provider's row id, so that a sealed value copied onto another provider's
//! row does not open.
//!
//! A sealed value is JSON, so that the column keeps its type:
//!
//! ```json
//! {"pg_dialer_sealed": 1, "key_id": "3f1c0e9a5b7d2c44",
//!  "nonce": "<24 hex digits>", "data": "<hex: ciphertext and tag>"}
//! ```
//!
//! `key_id` (the first 8 bytes of the key's SHA-256) tells which key sealed
//! it: a server with another key says so instead of failing obscurely, and a
//! key rotation finds what it has not re-sealed yet. Nonces are random (the
//! caller draws them from PostgreSQL's strong source): credentials are
//! written rarely, far below the 2^32 sealings a random 96-bit nonce allows
//! per key.

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use serde_json::{json, Value};
use std::fmt;

/// The marker of a sealed value and its format's version.
pub const SEALED: &str = "pg_dialer_sealed";

/// A key: 32 bytes, written in its file as 64 hex digits.
pub struct MasterKey {
    key: LessSafeKey,
    id: String,
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // never the key itself
        write!(f, "MasterKey({})", self.id)
    }
}

/// Why a sealed value did not open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenError {
    /// Sealed under another key (its id).
    OtherKey(String),
    /// Not a sealed value of this format, or changed since it was sealed
    /// (or sealed for another provider).
    Damaged(String),
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::OtherKey(id) => write!(
                f,
                "the credentials were sealed under key {id}, which this server does not have"
            ),
            OpenError::Damaged(why) => write!(f, "the sealed credentials do not open: {why}"),
        }
    }
}

impl MasterKey {
    /// A key from its file's text: 64 hex digits, surrounding whitespace
    /// allowed. The error never shows the text.
    pub fn parse(text: &str) -> Result<MasterKey, String> {
        let text = text.trim();
        if text.len() != 64 {
            return Err(format!(
                "a key is 64 hex digits (32 bytes); this one has {} characters",
                text.chars().count()
            ));
        }
        let bytes =
            hex::decode(text).map_err(|_| "a key is 64 hex digits (0-9, a-f)".to_string())?;
        Self::from_bytes(&bytes)
    }

    /// A key from its 32 bytes (a new key: drawn from a strong source).
    pub fn from_bytes(bytes: &[u8]) -> Result<MasterKey, String> {
        if bytes.iter().all(|b| *b == 0) {
            return Err("a key of zeros is no key".into());
        }
        let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
        let unbound = UnboundKey::new(&CHACHA20_POLY1305, bytes)
            .map_err(|_| "a key is 32 bytes".to_string())?;
        Ok(MasterKey {
            key: LessSafeKey::new(unbound),
            id: hex::encode(&digest.as_ref()[..8]),
        })
    }

    /// The key's id: the first 8 bytes of its SHA-256, in hex.
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// Whether a stored value is sealed (else it is plain JSON an admin wrote).
pub fn is_sealed(value: &Value) -> bool {
    value.get(SEALED).is_some()
}

/// The id of the key a sealed value names.
pub fn sealed_key_id(value: &Value) -> Option<&str> {
    value
        .get("key_id")
        .and_then(Value::as_str)
        .filter(|_| is_sealed(value))
}

/// `plain` sealed under `key` for the provider `owner` (its row id), with
/// `nonce` (12 random bytes, never used twice with one key).
pub fn seal(key: &MasterKey, owner: &str, plain: &Value, nonce: [u8; NONCE_LEN]) -> Value {
    let mut data = plain.to_string().into_bytes();
    key.key
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(owner.as_bytes()),
            &mut data,
        )
        .expect("ChaCha20-Poly1305 seals any input under 256 GB");
    json!({
        SEALED: 1,
        "key_id": key.id,
        "nonce": hex::encode(nonce),
        "data": hex::encode(data),
    })
}

/// The plain JSON of a value `seal` made for `owner` under `key`.
pub fn open(key: &MasterKey, owner: &str, sealed: &Value) -> Result<Value, OpenError> {
    let damaged = |why: &str| OpenError::Damaged(why.to_string());
    if sealed.get(SEALED) != Some(&json!(1)) {
        return Err(damaged("not a sealed value of format 1"));
    }
    match sealed_key_id(sealed) {
        Some(id) if id == key.id => {}
        Some(id) => return Err(OpenError::OtherKey(id.chars().take(16).collect())),
        None => return Err(damaged("no key_id")),
    }
    let field = |name: &str| {
        sealed
            .get(name)
            .and_then(Value::as_str)
            .and_then(|text| hex::decode(text).ok())
            .ok_or_else(|| damaged(&format!("{name} is not hex")))
    };
    let nonce: [u8; NONCE_LEN] = field("nonce")?
        .try_into()
        .map_err(|_| damaged("the nonce is not 12 bytes"))?;
    let mut data = field("data")?;
    let plain = key
        .key
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(owner.as_bytes()),
            &mut data,
        )
        .map_err(|_| damaged("changed since it was sealed, or sealed for another provider"))?;
    serde_json::from_slice(plain).map_err(|_| damaged("not JSON inside"))
}

/// A key's line in its file: `bytes` (drawn from a strong source) as 64
/// hex digits.
pub fn key_line(bytes: &[u8; 32]) -> String {
    hex::encode(bytes)
}

/// The keys of a key file (or Vault secret): one per line, 64 hex digits;
/// blank lines and lines starting with `#` are skipped. The first seals,
/// each opens what it sealed (the others are earlier keys, kept for a
/// rotation). An error names the line, never its text.
pub fn parse_keys(text: &str) -> Result<Vec<MasterKey>, String> {
    let mut keys = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        keys.push(MasterKey::parse(line).map_err(|why| format!("line {}: {why}", n + 1))?);
    }
    if keys.is_empty() {
        return Err("it holds no key".into());
    }
    Ok(keys)
}

/// `sealed` opened with whichever of `keys` sealed it.
pub fn open_any(keys: &[MasterKey], owner: &str, sealed: &Value) -> Result<Value, OpenError> {
    let id = sealed_key_id(sealed).unwrap_or_default();
    match keys.iter().find(|key| key.id == id) {
        Some(key) => open(key, owner, sealed),
        None => open(&keys[0], owner, sealed),
    }
}

#[cfg(test)]
#[path = "secrets/tests.rs"]
mod tests;
