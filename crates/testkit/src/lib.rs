//! What newsroom's benches and end-to-end tests share.
//!
//! For the benches, so that each bench holds only what it measures: the report's formatting and
//! figures ([`report`]), settings read from the environment ([`settings`]), CPU time and memory
//! read from `/proc` ([`procfs`]), the HTTP calls the load clients make and the webhook receiver
//! they listen with ([`http`]), the bodies of the newsroom API they send ([`api`]), a PostgreSQL
//! database of their own ([`pg`]), and the bench's own executable run again as a helper process
//! ([`process`]). None of these knows a crate of the workspace, so every bench can use them.
//!
//! For the end-to-end tests (`newsroom-tests`, `crates/newsroom/tests`): the services they talk
//! to ([`services`]: the machine's PostgreSQL and NATS, a fresh database per test, a private
//! `nats-server` or PostgreSQL to kill and restart) and real peers of the app ([`receiver`]:
//! webhook receivers; [`smtp_sink`]: an SMTP server speaking to lettre; [`flaky`]: a TCP proxy
//! that refuses connections or loses answers). With the feature `app`, which brings in the
//! workspace's crates: the app itself ([`app`]: `spawn_app`, `TestApp`), the desk driven over
//! HTTP ([`desk`]), commands sent to a `CommandService` in process ([`commands`]) and headless
//! Chromium through chromedriver ([`chrome`]); a test imports [`prelude`].
//!
//! Nothing here is part of newsroom itself.

pub mod api;
pub mod flaky;
pub mod http;
pub mod pg;
pub mod process;
pub mod procfs;
pub mod receiver;
pub mod report;
pub mod services;
pub mod settings;
pub mod smtp_sink;

#[cfg(feature = "app")]
pub mod app;
#[cfg(feature = "app")]
pub mod chrome;
#[cfg(feature = "app")]
pub mod commands;
#[cfg(feature = "app")]
pub mod desk;

/// What an end-to-end test imports: the app, its desk helpers and the services.
#[cfg(feature = "app")]
pub mod prelude {
    pub use crate::app::*;
    pub use crate::desk::*;
    pub use crate::services::*;
}

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
