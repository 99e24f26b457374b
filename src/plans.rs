//! SPI plans kept for the session on the hot paths: a query is parsed and
//! planned on its first call in a backend, not on every call. PostgreSQL
//! replans a kept plan by itself when the objects it uses change.
//!
//! Kept plans run read-write (`prepare_mut`), so that every query takes a
//! fresh snapshot at READ COMMITTED: a quota count after `dialer.lock_user()`
//! must see what the previous holder of the lock committed.

use pgrx::datum::DatumWithOid;
use pgrx::spi::{OwnedPreparedStatement, SpiClient, SpiError, SpiHeapTupleData, SpiTupleTable};
use pgrx::PgOid;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

thread_local! {
    static PLANS: RefCell<HashMap<&'static str, Rc<OwnedPreparedStatement>>> = RefCell::new(HashMap::new());
}

/// Runs `sql` with a plan kept for the session. Parameter types are those of
/// `args` on the first call.
pub fn query<'conn>(
    client: &SpiClient<'conn>,
    sql: &'static str,
    args: &[DatumWithOid<'_>],
) -> Result<SpiTupleTable<'conn>, SpiError> {
    let kept = PLANS.with(|plans| plans.borrow().get(sql).cloned());
    let plan = match kept {
        Some(plan) => plan,
        None => {
            let types: Vec<PgOid> = args.iter().map(|a| PgOid::from(a.oid())).collect();
            let plan = Rc::new(client.prepare_mut(sql, &types)?.keep());
            PLANS.with(|plans| plans.borrow_mut().insert(sql, Rc::clone(&plan)));
            plan
        }
    };
    client.select(&*plan, None, args)
}

/// The first row of `query`, read by `read`; `None` when there is no row.
pub fn first<'conn, T>(
    client: &SpiClient<'conn>,
    sql: &'static str,
    args: &[DatumWithOid<'_>],
    read: impl FnOnce(&SpiHeapTupleData<'conn>) -> Result<T, SpiError>,
) -> Result<Option<T>, SpiError> {
    query(client, sql, args)?
        .next()
        .as_ref()
        .map(read)
        .transpose()
}
