//! The guard's threads: a few long-lived threads with big stacks, on which every parse and walk runs.
//!
//! prost decodes parse trees up to 100 messages deep and needs tens of kilobytes of stack per level in
//! unoptimised builds: `SELECT 1 + 1 + …` with 45 terms overflows a 2 MiB tokio worker (an abort of the whole
//! server, not a panic), and libpg_query sizes its own depth limit to [`GUARD_STACK_BYTES`]. A thread of that
//! size made for each call cost more than the parse of a short query (a clone, an 8 MiB mapping, its page
//! faults and its exit: about 17 system calls), so the threads are made once, on first use, and kept.
//!
//! The caller blocks until its job is done, as it did joining a thread of its own: a parse takes tens of
//! microseconds, and at most as many callers wait at once as there are runtime workers.
//!
//! The server's own runtime threads get the same stack ([`guard_sized`]), and on them the guard runs where it
//! is called: no hand-off to another thread and back, which on an idle machine (a virtual one above all) costs
//! more than the parse.

use std::cell::Cell;
use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, OnceLock};

use super::GuardError;

/// Stack of each guard thread.
pub(super) const GUARD_STACK_BYTES: usize = 8 << 20;

type Job = Box<dyn FnOnce() + Send>;

thread_local! {
    /// Whether this thread was made with [`GUARD_STACK_BYTES`] of stack by [`guard_sized`].
    static GUARD_SIZED: Cell<bool> = const { Cell::new(false) };
}

/// Gives a runtime's threads (workers and blocking pool) the guard's stack, so that the guard runs on them
/// directly. Their stacks are reserved, not used: only the pages a thread touches take memory.
pub fn guard_sized(builder: &mut tokio::runtime::Builder) -> &mut tokio::runtime::Builder {
    builder.thread_stack_size(GUARD_STACK_BYTES).on_thread_start(|| GUARD_SIZED.with(|sized| sized.set(true)))
}

/// Where jobs go; `None` if no guard thread could be started.
static JOBS: OnceLock<Option<Mutex<Sender<Job>>>> = OnceLock::new();

/// Starts the guard threads (one per core, two to eight): they share one queue and live as long as the process.
fn start() -> Option<Mutex<Sender<Job>>> {
    let (sender, receiver) = mpsc::channel::<Job>();
    let receiver = Arc::new(Mutex::new(receiver));
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(2, 8);
    let started = (0..threads)
        .filter(|i| {
            let queue = receiver.clone();
            std::thread::Builder::new()
                .name(format!("sql-guard-{i}"))
                .stack_size(GUARD_STACK_BYTES)
                .spawn(move || serve(&queue))
                .is_ok()
        })
        .count();
    (started > 0).then(|| Mutex::new(sender))
}

/// One guard thread: takes the next job, runs it, until the process ends.
fn serve(queue: &Mutex<Receiver<Job>>) {
    loop {
        // The lock is held only while waiting for a job, never while one runs.
        let job = match queue.lock() {
            Ok(receiver) => receiver.recv(),
            Err(poisoned) => poisoned.into_inner().recv(),
        };
        match job {
            Ok(job) => job(),
            Err(_) => return,
        }
    }
}

/// Runs `work` on a guard thread and waits for its result. A panic inside it (pg_query's, or a bug in the walk)
/// is a refusal, and the thread goes on serving.
pub(super) fn on_guard_thread<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, GuardError> + Send + 'static,
) -> Result<T, GuardError> {
    let failed = |reason: &str| GuardError::Unparseable { reason: reason.to_owned() };
    if GUARD_SIZED.with(Cell::get) {
        return std::panic::catch_unwind(AssertUnwindSafe(work)).unwrap_or_else(|_| Err(failed(PANICKED)));
    }
    let Some(jobs) = JOBS.get_or_init(start) else {
        return Err(failed("the server could not start the SQL check; try again"));
    };
    let (answer, result) = mpsc::sync_channel(1);
    let job: Job = Box::new(move || {
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(work))
            .unwrap_or_else(|_| Err(GuardError::Unparseable { reason: PANICKED.to_owned() }));
        // The caller waits for this; if it is gone there is no one to tell.
        let _ = answer.send(outcome);
    });
    let sent = match jobs.lock() {
        Ok(sender) => sender.send(job),
        Err(poisoned) => poisoned.into_inner().send(job),
    };
    if sent.is_err() {
        return Err(failed("the server could not start the SQL check; try again"));
    }
    result.recv().unwrap_or_else(|_| Err(failed(PANICKED)))
}

const PANICKED: &str = "the SQL check failed on this text; simplify it";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_run_on_big_stack_threads_that_survive_a_panic() {
        let name = on_guard_thread(|| Ok(std::thread::current().name().map(str::to_owned))).unwrap();
        assert!(name.is_some_and(|n| n.starts_with("sql-guard-")));
        let panicked = on_guard_thread::<()>(|| panic!("a bug in the walk"));
        assert!(matches!(panicked, Err(GuardError::Unparseable { ref reason }) if reason == PANICKED), "{panicked:?}");
        // The threads go on serving, and a deep recursion that needs more than a 2 MiB stack fits.
        fn depth(n: usize) -> usize {
            let pad = std::hint::black_box([0u8; 4096]);
            if n == 0 { pad[0] as usize } else { depth(n - 1) + 1 + pad[1] as usize }
        }
        assert_eq!(on_guard_thread(|| Ok(depth(1000))).unwrap(), 1000);
        let many: Vec<_> = (0..64).map(|i| std::thread::spawn(move || on_guard_thread(move || Ok(i * 2)))).collect();
        for (i, t) in many.into_iter().enumerate() {
            assert_eq!(t.join().unwrap().unwrap(), i * 2);
        }
    }

    #[test]
    fn on_a_guard_sized_runtime_the_work_runs_where_it_is_called() {
        let runtime = guard_sized(tokio::runtime::Builder::new_multi_thread().worker_threads(1).thread_name("w"))
            .build()
            .unwrap();
        let (name, deep, panicked) = runtime.block_on(async {
            tokio::spawn(async {
                let name = on_guard_thread(|| Ok(std::thread::current().name().map(str::to_owned))).unwrap();
                fn depth(n: usize) -> usize {
                    let pad = std::hint::black_box([0u8; 4096]);
                    if n == 0 { pad[0] as usize } else { depth(n - 1) + 1 + pad[1] as usize }
                }
                let deep = on_guard_thread(|| Ok(depth(1000))).unwrap();
                (name, deep, on_guard_thread::<()>(|| panic!("a bug in the walk")).is_err())
            })
            .await
            .unwrap()
        });
        assert_eq!((name.as_deref(), deep, panicked), (Some("w"), 1000, true));
    }
}
