//! Columns a user may not change on their own rows (trigger
//! `protect_columns`, sql/security.sql): keys, ownership, creation time and
//! what the dialing worker and admins manage, named as the trigger's
//! arguments. An admin or a role that bypasses RLS may change them.

use crate::identity::caller_is_privileged;
use pg_dialer_core::error::DialerError;
use pgrx::datum::TryFromDatumError;
use pgrx::prelude::*;
use pgrx::{AllocatedByPostgres, AllocatedByRust};

/// The row a BEFORE INSERT OR UPDATE row trigger was given, to be changed
/// and returned.
pub fn new_row<'a>(trigger: &'a PgTrigger<'a>) -> PgHeapTuple<'a, AllocatedByRust> {
    trigger
        .new()
        .expect("a BEFORE INSERT OR UPDATE row trigger has a new row")
        .into_owned()
}

/// A column's value as stored, whatever its type, not yet read (nor
/// converted by pgrx).
pub struct StoredValue(pub pg_sys::Datum);

impl FromDatum for StoredValue {
    unsafe fn from_polymorphic_datum(
        datum: pg_sys::Datum,
        is_null: bool,
        _: pg_sys::Oid,
    ) -> Option<Self> {
        (!is_null).then_some(StoredValue(datum))
    }
}

impl IntoDatum for StoredValue {
    fn into_datum(self) -> Option<pg_sys::Datum> {
        Some(self.0)
    }
    fn type_oid() -> pg_sys::Oid {
        pg_sys::ANYOID
    }
    fn is_compatible_with(_: pg_sys::Oid) -> bool {
        true
    }
}

// SAFETY: the datum is kept as it is, as pg_sys::Datum's own implementation does
unsafe impl pgrx::datum::UnboxDatum for StoredValue {
    type As<'src> = StoredValue;
    unsafe fn unbox<'src>(datum: pgrx::datum::Datum<'src>) -> Self::As<'src>
    where
        Self: 'src,
    {
        StoredValue(datum.sans_lifetime())
    }
}

#[pg_schema]
mod dialer {
    use super::*;

    /// Trigger `protect_columns(column, ...)`, BEFORE UPDATE: 42501 naming
    /// the first of the columns whose value the update changes, unless the
    /// caller is privileged.
    #[pg_trigger]
    fn protect_columns<'a>(
        trigger: &'a PgTrigger<'a>,
    ) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, TryFromDatumError> {
        let new = trigger
            .new()
            .expect("a BEFORE UPDATE row trigger has a new row");
        if caller_is_privileged() {
            return Ok(Some(new));
        }
        let old = trigger
            .old()
            .expect("a BEFORE UPDATE row trigger has an old row");
        let columns = trigger.extra_args().unwrap_or_default();
        for column in &columns {
            if changed(&old, &new, column)? {
                let table = trigger.table_name().unwrap_or_default();
                crate::errors::raise(
                    DialerError::forbidden(format!(
                        "{table}.{column} can only be changed by an admin"
                    ))
                    .with_hint("Leave this column out of the update."),
                );
            }
        }
        Ok(Some(new))
    }
}

/// Whether `column` holds another value in `new` than in `old`: NULL and
/// a value differ, two values differ when their bytes do (`same`).
fn changed(
    old: &PgHeapTuple<'_, AllocatedByPostgres>,
    new: &PgHeapTuple<'_, AllocatedByPostgres>,
    column: &str,
) -> Result<bool, TryFromDatumError> {
    let Some((_, attribute)) = new.get_attribute_by_name(column) else {
        return Err(TryFromDatumError::NoSuchAttributeName(column.to_owned()));
    };
    let (by_value, length) = (attribute.attbyval, attribute.attlen);
    let before = old.get_by_name::<StoredValue>(column)?;
    let after = new.get_by_name::<StoredValue>(column)?;
    Ok(match (before, after) {
        (None, None) => false,
        // SAFETY: two values of the column's type, as stored
        (Some(StoredValue(a)), Some(StoredValue(b))) => unsafe { !same(a, b, by_value, length) },
        _ => true,
    })
}

/// Whether two values of a type (by value or not, of length `length`: -1
/// for a varlena, -2 for a C string) are the same bytes, as PostgreSQL's
/// datumIsEqual() tells; varlenas are compared detoasted, with full headers.
///
/// # Safety
/// `a` and `b` are values of that type.
unsafe fn same(a: pg_sys::Datum, b: pg_sys::Datum, by_value: bool, length: i16) -> bool {
    if by_value {
        return a == b;
    }
    let bytes =
        |d: pg_sys::Datum, len: usize| std::slice::from_raw_parts(d.cast_mut_ptr::<u8>(), len);
    match length {
        -1 => {
            let a = pg_sys::pg_detoast_datum(a.cast_mut_ptr());
            let b = pg_sys::pg_detoast_datum(b.cast_mut_ptr());
            let size = |v: *mut pg_sys::varlena| pgrx::varlena::varsize_any(v);
            size(a) == size(b)
                && bytes(pg_sys::Datum::from(a), size(a)) == bytes(pg_sys::Datum::from(b), size(b))
        }
        -2 => {
            std::ffi::CStr::from_ptr(a.cast_mut_ptr()) == std::ffi::CStr::from_ptr(b.cast_mut_ptr())
        }
        len => bytes(a, len as usize) == bytes(b, len as usize),
    }
}
