//! What newsroom's benches share, so that each bench holds only what it measures: the report's
//! formatting and figures ([`report`]), settings read from the environment ([`settings`]), CPU
//! time and memory read from `/proc` ([`procfs`]), the HTTP calls the load clients make and the
//! webhook receiver they listen with ([`http`]), the bodies of the newsroom API they send
//! ([`api`]), a PostgreSQL database of their own ([`pg`]), and the bench's own executable run
//! again as a helper process ([`process`]). The end-to-end tests (`newsroom-tests`) take the API
//! bodies and the database from here too.
//!
//! For benches and tests only: nothing here is part of newsroom itself, and nothing here knows a
//! crate of the workspace, so every bench can use it.

pub mod api;
pub mod http;
pub mod pg;
pub mod process;
pub mod procfs;
pub mod report;
pub mod settings;

/// The error the benches pass up: anything, sent between tasks.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type Res<T> = Result<T, BoxError>;

/// Runs the future `work` makes to its end on a thread with a runtime of its own, and waits for
/// it: for clean-up in `Drop`, which may run inside a runtime or outside any.
pub fn on_own_thread<F>(work: impl FnOnce() -> F + Send + 'static)
where
    F: std::future::Future<Output = ()>,
{
    let _ = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        rt.block_on(work());
    })
    .join();
}

/// The runtime a bench runs its clients (and, in-process, its app) on: tokio's multi-thread
/// runtime with every driver enabled.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}
