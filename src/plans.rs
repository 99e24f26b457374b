//! SPI plans kept for the session on the hot paths: a query is parsed and
//! planned on its first call in a backend, not on every call. PostgreSQL
//! replans a kept plan by itself when the objects it uses change.
//!
//! Kept plans run read-write (`prepare_mut`), so that every query takes a
//! fresh snapshot at READ COMMITTED: a quota count after `dialer.lock_user()`
//! must see what the previous holder of the lock committed.

use pgrx::datum::DatumWithOid;
use pgrx::spi::{OwnedPreparedStatement, SpiClient, SpiError, SpiHeapTupleData, SpiTupleTable};
use pgrx::{pg_sys, PgOid};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// A kept plan's key: its query and, for `query_limited`, its LIMIT.
type PlanKey = (&'static str, Option<i64>);

thread_local! {
    static PLANS: RefCell<HashMap<PlanKey, Rc<OwnedPreparedStatement>>> = RefCell::new(HashMap::new());
}

/// Plans kept per query of `query_limited`, one per LIMIT.
const LIMITS_KEPT: usize = 8;

/// Runs `sql` with a plan kept for the session. Parameter types are those of
/// `args` on the first call.
pub fn query<'conn>(
    client: &SpiClient<'conn>,
    sql: &'static str,
    args: &[DatumWithOid<'_>],
) -> Result<SpiTupleTable<'conn>, SpiError> {
    run(client, sql, None, args)
}

/// Runs `sql` with `$LIMIT` replaced by `limit`, with a plan kept per limit
/// (up to `LIMITS_KEPT` limits per query). A LIMIT that is a parameter makes
/// PostgreSQL plan the query again at every call: a generic plan is costed
/// for 10% of the rows, so it always looks worse than a plan made for the
/// value, and planning the claims' queries cost more than running them. A
/// plan for a constant LIMIT is as good as the custom one, and kept.
pub fn query_limited<'conn>(
    client: &SpiClient<'conn>,
    sql: &'static str,
    limit: i64,
    args: &[DatumWithOid<'_>],
) -> Result<SpiTupleTable<'conn>, SpiError> {
    run(client, sql, Some(limit), args)
}

fn run<'conn>(
    client: &SpiClient<'conn>,
    sql: &'static str,
    limit: Option<i64>,
    args: &[DatumWithOid<'_>],
) -> Result<SpiTupleTable<'conn>, SpiError> {
    let key = (sql, limit);
    let kept = PLANS.with(|plans| plans.borrow().get(&key).cloned());
    let plan = match kept {
        Some(plan) => plan,
        None => {
            let text = match limit {
                Some(limit) => sql.replace("$LIMIT", &limit.to_string()),
                None => sql.to_owned(),
            };
            let types: Vec<PgOid> = args.iter().map(|a| PgOid::from(a.oid())).collect();
            let plan = Rc::new(client.prepare_mut(text.as_str(), &types)?.keep());
            PLANS.with(|plans| {
                let mut plans = plans.borrow_mut();
                if limit.is_some() {
                    // at most `LIMITS_KEPT` plans per query: a new limit (a
                    // worker's batch size changed) takes the place of the
                    // smallest
                    let limits: Vec<i64> = plans
                        .keys()
                        .filter(|(q, _)| *q == sql)
                        .filter_map(|(_, l)| *l)
                        .collect();
                    if limits.len() >= LIMITS_KEPT {
                        if let Some(smallest) = limits.into_iter().min() {
                            plans.remove(&(sql, Some(smallest)));
                        }
                    }
                }
                plans.insert(key, Rc::clone(&plan));
            });
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
    first_row(query(client, sql, args)?, read)
}

/// The first row of `query_limited`, read by `read`.
pub fn first_limited<'conn, T>(
    client: &SpiClient<'conn>,
    sql: &'static str,
    limit: i64,
    args: &[DatumWithOid<'_>],
    read: impl FnOnce(&SpiHeapTupleData<'conn>) -> Result<T, SpiError>,
) -> Result<Option<T>, SpiError> {
    first_row(query_limited(client, sql, limit, args)?, read)
}

fn first_row<'conn, T>(
    mut rows: SpiTupleTable<'conn>,
    read: impl FnOnce(&SpiHeapTupleData<'conn>) -> Result<T, SpiError>,
) -> Result<Option<T>, SpiError> {
    rows.next().as_ref().map(read).transpose()
}

/// Runs `f` with PostgreSQL told to use generic plans (`plan_cache_mode`),
/// for a query whose plan does not depend on its parameters' values but
/// whose generic plan PostgreSQL costs above a custom one (an array
/// parameter is estimated at 10 elements, a constant one at its length), so
/// that it would plan the query again at every call. Only for queries whose
/// generic plan was checked (EXPLAIN) to be the custom plan.
pub fn generic<T>(f: impl FnOnce() -> T) -> T {
    struct Restore(i32);
    impl Drop for Restore {
        fn drop(&mut self) {
            // SAFETY: the backend's own setting, put back as it was, also
            // when `f` fails (an error unwinds through this guard)
            unsafe { pg_sys::plan_cache_mode = self.0 }
        }
    }
    // SAFETY: as above; read when a kept plan is chosen (GetCachedPlan)
    let _restore = Restore(unsafe { pg_sys::plan_cache_mode });
    unsafe {
        pg_sys::plan_cache_mode = pg_sys::PlanCacheMode::PLAN_CACHE_MODE_FORCE_GENERIC_PLAN as i32;
    }
    f()
}
