//! The caller's identity, read from the JWT claims that PostgREST puts in the
//! `request.jwt.claims` setting of every request.
//!
//! * the current user is the claims' `sub`, a UUID;
//! * an admin is a request whose claims carry `app_metadata.role = "admin"`.
//!   Supabase keeps `app_metadata` out of the user's own reach, unlike
//!   `user_metadata`, which a user may edit and which is therefore ignored.

use crate::error::DialerError;
use std::fmt;
use uuid::Uuid;

/// Who is asking, as far as the claims tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Identity {
    /// The `sub` claim; `None` for anon and for requests without claims.
    pub user_id: Option<Uuid>,
    /// True when `app_metadata.role` is `"admin"`.
    pub is_admin: bool,
}

/// Claims that cannot be trusted to say who is asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimsError {
    /// The setting holds something other than a JSON object.
    NotAnObject(String),
    /// `sub` is present but is not a UUID.
    SubNotUuid(String),
    /// `sub` is the nil UUID, which names no user (pg_dialer keeps it for
    /// the billing rollover's lock).
    SubNil,
}

impl fmt::Display for ClaimsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClaimsError::NotAnObject(raw) => {
                write!(f, "request.jwt.claims is not a JSON object: {raw:?}")
            }
            ClaimsError::SubNotUuid(sub) => {
                write!(f, "request.jwt.claims: sub {sub:?} is not a uuid")
            }
            ClaimsError::SubNil => {
                write!(
                    f,
                    "request.jwt.claims: sub is the nil uuid, which names no user"
                )
            }
        }
    }
}

impl std::error::Error for ClaimsError {}

/// Reads the identity out of the raw `request.jwt.claims` setting.
///
/// An unset or empty setting is an anonymous request, as PostgREST leaves it
/// for `anon` without a token.
pub fn parse_identity(raw: Option<&str>) -> Result<Identity, ClaimsError> {
    let raw = match raw.map(str::trim) {
        None | Some("") => return Ok(Identity::default()),
        Some(raw) => raw,
    };
    let claims: serde_json::Value =
        serde_json::from_str(raw).map_err(|_| ClaimsError::NotAnObject(truncate(raw)))?;
    let claims = claims
        .as_object()
        .ok_or_else(|| ClaimsError::NotAnObject(truncate(raw)))?;

    let user_id = match claims.get("sub") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(sub)) if sub.is_empty() => None,
        Some(serde_json::Value::String(sub)) => {
            let id = Uuid::parse_str(sub).map_err(|_| ClaimsError::SubNotUuid(truncate(sub)))?;
            if id.is_nil() {
                return Err(ClaimsError::SubNil);
            }
            Some(id)
        }
        Some(other) => return Err(ClaimsError::SubNotUuid(truncate(&other.to_string()))),
    };
    let is_admin = claims
        .get("app_metadata")
        .and_then(|meta| meta.get("role"))
        .and_then(serde_json::Value::as_str)
        == Some("admin");

    Ok(Identity { user_id, is_admin })
}

/// Keeps error messages short whatever a client sends.
fn truncate(text: &str) -> String {
    const MAX: usize = 80;
    match text.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_owned(),
    }
}

/// The user a request that may name one acts for: `target`, or the caller
/// when it names none. Callers act for themselves; an admin or service_role
/// (`privileged`) for anyone. `action` says what they do ("queue calls"), for
/// the message. The one definition of acting for another user.
pub fn acting_for(
    me: Option<Uuid>,
    privileged: bool,
    target: Option<Uuid>,
    action: &str,
) -> Result<Uuid, DialerError> {
    let Some(user) = target.or(me) else {
        return Err(DialerError::forbidden(format!("sign in to {action}")));
    };
    if Some(user) != me && !privileged {
        return Err(DialerError::forbidden(format!(
            "only an admin or service_role can {action} for another user, not for {user}"
        ))
        .with_hint("Leave user_id out: it defaults to you."));
    }
    Ok(user)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: &str = "6f1c2a9e-3b7d-4c1e-9a52-0d8e4f7b3a11";

    #[test]
    fn no_claims_is_anonymous() {
        assert_eq!(parse_identity(None), Ok(Identity::default()));
        assert_eq!(parse_identity(Some("")), Ok(Identity::default()));
        assert_eq!(parse_identity(Some("  ")), Ok(Identity::default()));
    }

    #[test]
    fn anon_token_without_sub_is_anonymous() {
        let id = parse_identity(Some(r#"{"role":"anon","iss":"supabase"}"#)).unwrap();
        assert_eq!(id.user_id, None);
        assert!(!id.is_admin);
    }

    #[test]
    fn sub_is_the_user() {
        let raw = format!(r#"{{"sub":"{ALICE}","role":"authenticated"}}"#);
        let id = parse_identity(Some(&raw)).unwrap();
        assert_eq!(id.user_id, Some(Uuid::parse_str(ALICE).unwrap()));
        assert!(!id.is_admin);
    }

    #[test]
    fn admin_comes_from_app_metadata_only() {
        let admin = format!(r#"{{"sub":"{ALICE}","app_metadata":{{"role":"admin"}}}}"#);
        assert!(parse_identity(Some(&admin)).unwrap().is_admin);

        // user_metadata is writable by the user: it must not make an admin.
        let forged = format!(r#"{{"sub":"{ALICE}","user_metadata":{{"role":"admin"}}}}"#);
        assert!(!parse_identity(Some(&forged)).unwrap().is_admin);

        // Neither does the top-level role (that is the database role).
        let top = format!(r#"{{"sub":"{ALICE}","role":"admin"}}"#);
        assert!(!parse_identity(Some(&top)).unwrap().is_admin);

        let other_role = format!(r#"{{"sub":"{ALICE}","app_metadata":{{"role":"staff"}}}}"#);
        assert!(!parse_identity(Some(&other_role)).unwrap().is_admin);

        let not_string = format!(r#"{{"sub":"{ALICE}","app_metadata":{{"role":["admin"]}}}}"#);
        assert!(!parse_identity(Some(&not_string)).unwrap().is_admin);
    }

    #[test]
    fn the_nil_uuid_is_no_user() {
        for sub in [
            "00000000-0000-0000-0000-000000000000",
            "00000000000000000000000000000000",
        ] {
            let raw = format!(r#"{{"sub":"{sub}","role":"authenticated"}}"#);
            assert_eq!(parse_identity(Some(&raw)), Err(ClaimsError::SubNil));
        }
    }

    #[test]
    fn malformed_sub_is_an_error_not_anonymous() {
        assert_eq!(
            parse_identity(Some(r#"{"sub":"not-a-uuid"}"#)),
            Err(ClaimsError::SubNotUuid("not-a-uuid".into()))
        );
        assert!(matches!(
            parse_identity(Some(r#"{"sub":42}"#)),
            Err(ClaimsError::SubNotUuid(_))
        ));
    }

    #[test]
    fn malformed_claims_are_an_error() {
        assert!(matches!(
            parse_identity(Some("{not json")),
            Err(ClaimsError::NotAnObject(_))
        ));
        assert!(matches!(
            parse_identity(Some("[1,2]")),
            Err(ClaimsError::NotAnObject(_))
        ));
    }

    #[test]
    fn long_garbage_is_truncated_in_the_message() {
        let long = "x".repeat(500);
        let err = parse_identity(Some(&long)).unwrap_err();
        assert!(err.to_string().len() < 150, "{err}");
    }

    #[test]
    fn a_caller_acts_for_themselves_and_a_privileged_one_for_anyone() {
        let me = Uuid::parse_str("a11ce000-0000-4000-8000-000000000001").unwrap();
        let bob = Uuid::parse_str("b0b00000-0000-4000-8000-000000000002").unwrap();
        assert_eq!(
            acting_for(Some(me), false, None, "queue calls").unwrap(),
            me
        );
        assert_eq!(
            acting_for(Some(me), false, Some(me), "queue calls").unwrap(),
            me
        );
        assert_eq!(
            acting_for(Some(me), true, Some(bob), "queue calls").unwrap(),
            bob
        );
        assert_eq!(
            acting_for(None, true, Some(bob), "queue calls").unwrap(),
            bob
        );
        let err = acting_for(Some(me), false, Some(bob), "queue calls").unwrap_err();
        assert_eq!(
            err.message,
            "only an admin or service_role can queue calls for another user, not for b0b00000-0000-4000-8000-000000000002"
        );
        assert_eq!(
            err.hint.as_deref(),
            Some("Leave user_id out: it defaults to you.")
        );
        let err = acting_for(None, false, None, "see usage").unwrap_err();
        assert_eq!(err.message, "sign in to see usage");
        assert!(acting_for(None, false, Some(bob), "see usage").is_err());
        // a privileged caller with no user of its own must name one
        assert!(acting_for(None, true, None, "queue calls").is_err());
    }
}
