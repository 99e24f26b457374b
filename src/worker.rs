//! The dispatcher's background worker: with `shared_preload_libraries =
//! 'pg_dialer'` and `pg_dialer.dispatcher = on`, a worker connected to
//! `pg_dialer.dispatcher_database` places due calls itself, pass after pass,
//! by the same code as `dispatch_due_calls()` (src/dispatch.rs).
//!
//! It sleeps on its latch when nothing is due. A transaction that queues a
//! call or records a result (which frees a slot of its provider) sets that
//! latch when it commits (`wake_on_commit`, an XactCallback registered in
//! `_PG_init`), so the worker claims within milliseconds; otherwise it looks
//! again every second (calls scheduled for later become due).
//!
//! Off (the default) it waits for a reload without a database connection.
//! A reload that turns it off or names another database ends it; the
//! postmaster starts it again after `RESTART`, as it does after an error.

use crate::routing::ClaimedCall;
use pgrx::bgworkers::{
    BackgroundWorker, BackgroundWorkerBuilder, BgWorkerStartTime, SignalWakeFlags,
};
use pgrx::prelude::*;
use pgrx::{pg_shmem_init, PgAtomic};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, Ordering};
use std::time::{Duration, Instant};

/// How long the postmaster waits before starting the worker again.
const RESTART: Duration = Duration::from_secs(1);
/// The longest sleep when nothing is due.
const NAPTIME: Duration = Duration::from_secs(1);
/// How often the worker checks that pg_dialer is installed at its version.
const CHECK_EVERY: Duration = Duration::from_secs(5);
/// How often the worker takes back stale calls (`rescue_stale_calls()`).
const RESCUE_EVERY: Duration = Duration::from_secs(10);

/// The worker's PGPROC number plus one (0: no worker connected).
static WORKER_PROC: PgAtomic<AtomicI32> = unsafe { PgAtomic::new(c"pg_dialer_worker_proc") };
static WORKER_PID: PgAtomic<AtomicI32> = unsafe { PgAtomic::new(c"pg_dialer_worker_pid") };
/// When the worker connected and when it last began a loop (TimestampTz).
static WORKER_STARTED: PgAtomic<AtomicI64> = unsafe { PgAtomic::new(c"pg_dialer_worker_started") };
static WORKER_LOOP: PgAtomic<AtomicI64> = unsafe { PgAtomic::new(c"pg_dialer_worker_loop") };

/// Whether this process loaded the library through shared_preload_libraries
/// (inherited from the postmaster): only then is the shared memory there.
static PRELOADED: AtomicBool = AtomicBool::new(false);
/// Whether this backend's transaction should wake the worker at commit.
static WAKE: AtomicBool = AtomicBool::new(false);

/// From `_PG_init`: when preloaded, the shared state, the commit hook and the
/// worker's registration.
// pg_shmem_init! names the features of every PostgreSQL major pgrx knows
#[allow(unexpected_cfgs)]
pub fn init() {
    // SAFETY: a flag PostgreSQL sets while it loads preloaded libraries.
    if !unsafe { pg_sys::process_shared_preload_libraries_in_progress } {
        return;
    }
    pg_shmem_init!(WORKER_PROC);
    pg_shmem_init!(WORKER_PID);
    pg_shmem_init!(WORKER_STARTED);
    pg_shmem_init!(WORKER_LOOP);
    PRELOADED.store(true, Ordering::Relaxed);
    // SAFETY: registered once, in the postmaster; every backend inherits it.
    unsafe { pg_sys::RegisterXactCallback(Some(on_xact_end), std::ptr::null_mut()) };
    BackgroundWorkerBuilder::new("pg_dialer dispatcher")
        .set_type("pg_dialer dispatcher")
        .set_library("pg_dialer")
        .set_function("pg_dialer_dispatcher_main")
        .enable_spi_access()
        .set_start_time(BgWorkerStartTime::RecoveryFinished)
        .set_restart_time(Some(RESTART))
        .load();
}

/// Asks for the worker to be woken when this transaction commits (a call
/// was queued or a slot freed). Costs a flag; nothing without the worker.
pub fn wake_on_commit() {
    if PRELOADED.load(Ordering::Relaxed) {
        WAKE.store(true, Ordering::Relaxed);
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn on_xact_end(
    event: pg_sys::XactEvent::Type,
    _arg: *mut std::ffi::c_void,
) {
    let ended = event == pg_sys::XactEvent::XACT_EVENT_COMMIT
        || event == pg_sys::XactEvent::XACT_EVENT_ABORT
        || event == pg_sys::XactEvent::XACT_EVENT_PARALLEL_COMMIT
        || event == pg_sys::XactEvent::XACT_EVENT_PARALLEL_ABORT;
    if !ended || !WAKE.swap(false, Ordering::Relaxed) {
        return;
    }
    if event != pg_sys::XactEvent::XACT_EVENT_COMMIT {
        return;
    }
    let proc = WORKER_PROC.get().load(Ordering::Acquire);
    if proc > 0 {
        // SAFETY: the PGPROC array lives as long as the server; a latch set
        // on a process that is no longer the worker only wakes it once.
        unsafe {
            let procs = (*pg_sys::ProcGlobal).allProcs;
            pg_sys::SetLatch(&raw mut (*procs.add(proc as usize - 1)).procLatch);
        }
    }
}

/// The worker as `dispatcher_worker()` shows it: its pid, when it connected
/// and when it last began a loop, if one runs.
pub fn state() -> Option<(i32, i64, i64)> {
    if !PRELOADED.load(Ordering::Relaxed) {
        return None;
    }
    let pid = WORKER_PID.get().load(Ordering::Acquire);
    (pid != 0).then(|| {
        (
            pid,
            WORKER_STARTED.get().load(Ordering::Acquire),
            WORKER_LOOP.get().load(Ordering::Acquire),
        )
    })
}

/// Whether the library was preloaded (the worker can run).
pub fn preloaded() -> bool {
    PRELOADED.load(Ordering::Relaxed)
}

/// Reads the configuration again after a SIGHUP; whether there was one.
fn reload() -> bool {
    if !BackgroundWorker::sighup_received() {
        return false;
    }
    // SAFETY: as every process does on SIGHUP, outside a transaction.
    unsafe {
        pg_sys::ConfigReloadPending = 0;
        pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP);
    }
    true
}

/// Ends the worker; the postmaster starts it again after `RESTART` (not
/// when the server shuts down).
fn restart(why: &str) -> ! {
    log!("pg_dialer dispatcher: stopping: {why}");
    forget();
    // SAFETY: ends this process, as an error would.
    unsafe { pg_sys::proc_exit(1) }
}

#[pg_guard]
unsafe extern "C-unwind" fn on_exit(_code: i32, _arg: pg_sys::Datum) {
    forget();
}

fn forget() {
    WORKER_PROC.get().store(0, Ordering::Release);
    WORKER_PID.get().store(0, Ordering::Release);
}

#[pg_guard]
#[no_mangle]
pub extern "C-unwind" fn pg_dialer_dispatcher_main(_arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    // Off: wait for a reload that turns it on, connected to nothing.
    while !crate::settings::dispatcher_enabled() {
        if !BackgroundWorker::wait_latch(None) {
            restart("shutting down");
        }
        reload();
    }
    let database = crate::settings::dispatcher_database();
    BackgroundWorker::connect_worker_to_spi(Some(&database), None);
    // SAFETY: this process's PGPROC, in the array of all of them.
    let proc = unsafe { pg_sys::MyProc.offset_from((*pg_sys::ProcGlobal).allProcs) };
    // SAFETY: plain reads of this process's state.
    let (pid, now) = unsafe { (pg_sys::MyProcPid, pg_sys::GetCurrentTimestamp()) };
    // SAFETY: registers a callback that only clears this worker's state.
    unsafe { pg_sys::before_shmem_exit(Some(on_exit), pg_sys::Datum::from(0)) };
    WORKER_STARTED.get().store(now, Ordering::Release);
    WORKER_PID.get().store(pid, Ordering::Release);
    WORKER_PROC
        .get()
        .store(i32::try_from(proc + 1).unwrap_or(0), Ordering::Release);
    log!("pg_dialer dispatcher: started in database \"{database}\"");
    BackgroundWorker::transaction(|| {
        // the claim's rule; a DBA's default elsewhere does not apply here
        Spi::run("SET default_transaction_isolation = 'read committed'")?;
        // It runs as the bootstrap superuser: no name it uses may resolve to
        // an object of a schema others can create in.
        Spi::run("SET search_path = pg_catalog, pg_temp")
    })
    .unwrap_or_else(|err| restart(&err.to_string()));
    let mut waiting_for: Option<String> = None;
    let mut rescued = Instant::now();
    let mut checked: Option<Instant> = None;
    // Claimed calls not sent yet, and the run whose requests are out.
    let mut pending: Vec<ClaimedCall> = Vec::new();
    let mut flying: Option<(crate::dispatch::Prepared, pg_dialer_core::sender::InFlight)> = None;
    // The postmaster, whose death the latch reports only while it sleeps.
    let postmaster = std::os::unix::process::parent_id();
    loop {
        if std::os::unix::process::parent_id() != postmaster {
            // SAFETY: ends this orphaned process at once, as PostgreSQL's
            // processes do when the postmaster is gone.
            unsafe { pg_sys::proc_exit(1) }
        }
        let stop = if BackgroundWorker::sigterm_received() {
            Some("shutting down")
        } else if reload() && !crate::settings::dispatcher_enabled() {
            Some("pg_dialer.dispatcher is off")
        } else if crate::settings::dispatcher_database() != database {
            Some("pg_dialer.dispatcher_database changed")
        } else {
            None
        };
        if let Some(why) = stop {
            // the run that is out is recorded; the claimed calls not sent
            // certainly did not leave: back now
            if let Some((prepared, out)) = flying.take() {
                land(prepared, out);
            }
            let unsent = std::mem::take(&mut pending);
            let n = BackgroundWorker::transaction(move || crate::dispatch::put_back_unsent(unsent));
            restart(&format!("{why} ({n} claimed call(s) put back unsent)"));
        }
        // SAFETY: reads the clock.
        WORKER_LOOP
            .get()
            .store(unsafe { pg_sys::GetCurrentTimestamp() }, Ordering::Release);
        if pending.is_empty()
            && flying.is_none()
            && checked.is_none_or(|at| at.elapsed() >= CHECK_EVERY)
        {
            match BackgroundWorker::transaction(installed) {
                Ok(()) => {
                    checked = Some(Instant::now());
                    if waiting_for.take().is_some() {
                        log!("pg_dialer dispatcher: pg_dialer is installed, dispatching");
                    }
                }
                Err(why) => {
                    checked = None;
                    if waiting_for.as_deref() != Some(why.as_str()) {
                        log!("pg_dialer dispatcher: waiting: {why}");
                        waiting_for = Some(why);
                    }
                    sleep(Duration::from_secs(10));
                    continue;
                }
            }
        }
        // Not while calls of its own are claimed or out: its session holds
        // their marks, which its own rescue would not see.
        if rescued.elapsed() >= RESCUE_EVERY && pending.is_empty() && flying.is_none() {
            rescued = Instant::now();
            let n = BackgroundWorker::transaction(crate::calls::rescue_count);
            if n > 0 {
                log!("pg_dialer dispatcher: {n} stale call(s) taken back");
            }
        }
        if pending.is_empty() {
            pending = BackgroundWorker::transaction(|| {
                crate::dispatch::claim_calls(crate::dispatch::MAX_PASS)
            });
        }
        // Two runs of half of dispatch_in_flight at most are out at once:
        // the next run is claimed, prepared and sent while the last one's
        // requests are out, then the last one's answers are recorded.
        let next = (!pending.is_empty()).then(|| {
            let run = crate::settings::dispatch_limits()
                .in_flight
                .div_ceil(2)
                .max(1);
            let rest = pending.split_off(run.min(pending.len()));
            let batch = std::mem::replace(&mut pending, rest);
            let mut prepared =
                BackgroundWorker::transaction(move || crate::dispatch::prepare_run(batch));
            let requests = crate::dispatch::requests(&mut prepared);
            let limits = crate::settings::dispatch_limits();
            (prepared, pg_dialer_core::sender::start(requests, limits))
        });
        if let Some((prepared, out)) = flying.take() {
            land(prepared, out);
        }
        flying = next;
        if flying.is_none() {
            sleep(NAPTIME);
        }
    }
}

/// Waits for a run's answers and records them, with interrupts held off
/// (a cancel would lose the answers of requests that are out; the wait ends
/// within pg_dialer.dispatch_timeout).
fn land(prepared: crate::dispatch::Prepared, out: pg_dialer_core::sender::InFlight) {
    // SAFETY: HOLD_INTERRUPTS() / RESUME_INTERRUPTS(), as PostgreSQL's own
    // code brackets work that must not be cut short.
    unsafe { pg_sys::InterruptHoldoffCount += 1 };
    let answers = out.wait(&mut || {});
    BackgroundWorker::transaction(move || crate::dispatch::finish_run(prepared, answers));
    // SAFETY: see above.
    unsafe { pg_sys::InterruptHoldoffCount -= 1 };
}

/// Sleeps until woken, a signal, or `at_most`; ends the worker on SIGTERM.
fn sleep(at_most: Duration) {
    if !BackgroundWorker::wait_latch(Some(at_most)) {
        restart("shutting down");
    }
}

/// Whether pg_dialer is installed in this database at this library's
/// version (else why not).
fn installed() -> Result<(), String> {
    let version = Spi::get_one::<String>(
        "SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'pg_dialer'",
    )
    .map_err(|err| err.to_string())?;
    match version {
        None => Err("pg_dialer is not installed in this database".into()),
        Some(v) if v != env!("CARGO_PKG_VERSION") => Err(format!(
            "pg_dialer {v} is installed; this library is {}: ALTER EXTENSION pg_dialer UPDATE",
            env!("CARGO_PKG_VERSION")
        )),
        Some(_) => Ok(()),
    }
}
