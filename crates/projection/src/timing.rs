//! Where a rebuild's stages spend their time: counters the rebuild (and the SQLite writer it
//! drives) add to, logged when a rebuild ends.

use std::sync::atomic::{AtomicU64, Ordering};

/// Where a rebuild's stages spent their time (nanoseconds), logged when it ends: which stage
/// waits for which (the fold's and the writer's thread also say how long they were on a CPU and
/// how long they waited for one: on a shared machine most of a stage's time can be the latter).
/// One rebuild at a time per process is what `newsroom projection rebuild` runs; two at once
/// would mix their counts, nothing else.
#[derive(Default)]
pub(crate) struct Timing {
    pub(crate) read: AtomicU64,
    pub(crate) read_blocked: AtomicU64,
    pub(crate) fold_waiting: AtomicU64,
    pub(crate) decode: AtomicU64,
    pub(crate) fold_apply: AtomicU64,
    pub(crate) fold_readback: AtomicU64,
    pub(crate) fold_let_go: AtomicU64,
    pub(crate) fold_blocked: AtomicU64,
    pub(crate) write_waiting: AtomicU64,
    pub(crate) write_rows: AtomicU64,
    pub(crate) write_search: AtomicU64,
    pub(crate) write_readback: AtomicU64,
    pub(crate) swap: AtomicU64,
    pub(crate) search_flushes: AtomicU64,
    pub(crate) fold_cpu: AtomicU64,
    pub(crate) fold_queued: AtomicU64,
    pub(crate) write_cpu: AtomicU64,
    pub(crate) write_queued: AtomicU64,
    pub(crate) readbacks: AtomicU64,
    pub(crate) readback_rows: AtomicU64,
}

impl Timing {
    pub(crate) fn add(counter: &AtomicU64, since: std::time::Instant) {
        counter.fetch_add(since.elapsed().as_nanos() as u64, Ordering::Relaxed);
    }

    pub(crate) fn reset(&self) {
        for c in [
            &self.read,
            &self.read_blocked,
            &self.fold_waiting,
            &self.decode,
            &self.fold_apply,
            &self.fold_readback,
            &self.fold_let_go,
            &self.fold_blocked,
            &self.write_waiting,
            &self.write_rows,
            &self.write_search,
            &self.write_readback,
            &self.swap,
            &self.search_flushes,
            &self.fold_cpu,
            &self.fold_queued,
            &self.write_cpu,
            &self.write_queued,
            &self.readbacks,
            &self.readback_rows,
        ] {
            c.store(0, Ordering::Relaxed);
        }
    }

    pub(crate) fn log(&self) {
        let s = |c: &AtomicU64| c.load(Ordering::Relaxed) as f64 / 1e9;
        let line = format!(
            "read {:.2} (blocked {:.2}); fold waiting {:.2}, decode {:.2}, apply {:.2}, read-back {:.2}, let go {:.2}, blocked {:.2}; writer waiting {:.2}, rows {:.2}, search {:.2} ({} flushes), read-back {:.2}, swap {:.2}",
            s(&self.read), s(&self.read_blocked), s(&self.fold_waiting), s(&self.decode),
            s(&self.fold_apply), s(&self.fold_readback), s(&self.fold_let_go), s(&self.fold_blocked),
            s(&self.write_waiting), s(&self.write_rows), s(&self.write_search),
            self.search_flushes.load(Ordering::Relaxed), s(&self.write_readback), s(&self.swap),
        ) + &format!(
            "; fold cpu {:.2} queued {:.2}; writer cpu {:.2} queued {:.2}; read-backs {} of {} rows",
            s(&self.fold_cpu), s(&self.fold_queued), s(&self.write_cpu), s(&self.write_queued),
            self.readbacks.load(Ordering::Relaxed), self.readback_rows.load(Ordering::Relaxed),
        );
        tracing::info!("rebuild timing (s): {line}");
    }
}

pub(crate) static TIMING: std::sync::LazyLock<Timing> = std::sync::LazyLock::new(Timing::default);

#[doc(hidden)]
pub(crate) fn count_search(since: std::time::Instant, flushes: u64) {
    Timing::add(&TIMING.write_search, since);
    TIMING.search_flushes.fetch_add(flushes, Ordering::Relaxed);
}

/// This thread's time on a CPU and waiting for one, in nanoseconds (`/proc/thread-self/schedstat`).
pub(crate) fn thread_sched() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let mut f = s.split_whitespace().map(|v| v.parse::<u64>().unwrap_or(0));
    (f.next().unwrap_or(0), f.next().unwrap_or(0))
}

pub(crate) fn since_sched(start: (u64, u64), cpu: &AtomicU64, queued: &AtomicU64) {
    let now = thread_sched();
    cpu.store(now.0 - start.0, Ordering::Relaxed);
    queued.store(now.1 - start.1, Ordering::Relaxed);
}
