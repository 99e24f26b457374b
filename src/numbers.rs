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
}
