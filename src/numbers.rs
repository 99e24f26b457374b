//! A user's own caller numbers (`user_phone_numbers`): what is written as
//! `full_number` is a phone number, stored in E.164.

use pgrx::prelude::*;

/// The longest `full_number` read at all: a phone number in any spelling is
/// far shorter; anything longer is refused before it is parsed or indexed.
const MAX_NUMBER_CHARS: usize = 64;

#[pg_schema]
mod dialer {
    use crate::errors::raise;
    use pg_dialer_core::error::DialerError;
    use pg_dialer_core::phone::parse_e164;
    use pgrx::datum::TryFromDatumError;
    use pgrx::prelude::*;
    use pgrx::AllocatedByRust;

    /// Trigger `validate_user_phone_number` on `user_phone_numbers`: the
    /// number is parsed with libphonenumber's rules and stored in E.164; one
    /// that is no valid number is refused (22023, naming it). A superuser's
    /// writes (seeding, `pg_restore`) pass as they are.
    #[pg_trigger]
    fn validate_user_phone_number<'a>(
        trigger: &'a PgTrigger<'a>,
    ) -> Result<Option<PgHeapTuple<'a, AllocatedByRust>>, TryFromDatumError> {
        let mut row = crate::guards::new_row(trigger);
        if crate::identity::caller_is_superuser() {
            return Ok(Some(row));
        }
        verified_by_admin(trigger, &row)?;
        let Some(number) = row.get_by_name::<String>("full_number")? else {
            return Ok(Some(row)); // NOT NULL says the rest
        };
        let chars = number.chars().count();
        if chars > super::MAX_NUMBER_CHARS {
            raise(DialerError::invalid(format!(
                "full_number is {chars} characters long; a phone number has at most {}",
                super::MAX_NUMBER_CHARS
            )));
        }
        match parse_e164("full_number", &number) {
            Ok(parsed) => row.set_by_name("full_number", parsed.e164)?,
            Err(err) => raise(err),
        }
        Ok(Some(row))
    }

    /// A number's `phone_id` (its id at the provider, in the operator's
    /// account) is what makes the dispatcher send it as a caller number:
    /// only an admin or service_role writes it, and once it is set only
    /// they change the number or its provider. A user who could would call
    /// from any number of the operator's account, other tenants' included.
    fn verified_by_admin(
        trigger: &PgTrigger<'_>,
        new: &PgHeapTuple<'_, AllocatedByRust>,
    ) -> Result<(), TryFromDatumError> {
        type Fields = (Option<String>, Option<String>, Option<pgrx::Uuid>);
        fn fields<A: pgrx::WhoAllocated>(
            row: &PgHeapTuple<'_, A>,
        ) -> Result<Fields, TryFromDatumError> {
            Ok((
                row.get_by_name("phone_id")?,
                row.get_by_name("full_number")?,
                row.get_by_name("provider_id")?,
            ))
        }
        let (phone_id, number, provider) = fields(new)?;
        let changed = match trigger.old() {
            None => phone_id.is_some(),
            Some(old) => {
                let (old_phone_id, old_number, old_provider) = fields(&old)?;
                old_phone_id != phone_id
                    || (old_phone_id.is_some()
                        && (old_number != number || old_provider != provider))
            }
        };
        if changed && !crate::identity::caller_is_privileged() {
            raise(DialerError::forbidden(
                "a caller number's phone_id is set by an admin, who verified the number; \
                 a number with one keeps its full_number and provider_id unless an admin changes them",
            ));
        }
        Ok(())
    }
}
