//! The write side of newsroom: the command service, the SQLite event store with its global feed,
//! the HTTP command API and token auth.
//!
//! **Architecture invariant:** nothing here renders reader views or sends alerts. What other
//! parts of newsroom learn of the log, they learn from the global feed ([`SqliteStore::read_feed`]
//! and its wake-up signal [`SqliteStore::subscribe`]), never from in-process callbacks.

pub mod app;
pub mod auth;
pub mod chain;
pub mod consumer;
pub mod db;
pub mod developments;
pub mod embargo;
pub mod http;
pub mod log;
pub mod pg;
pub mod private;
pub mod relay;
pub mod serve;
pub mod service;
pub mod sql;
pub mod store;
pub mod telemetry;
pub mod transfer;

pub use app::{Application, Settings, StartupError};
pub use auth::{IssuedToken, PasswordError, Principal, Tokens};
pub use db::{DbError, SqliteDb};
pub use log::EventLog;
pub use pg::PgStore;
pub use service::{CommandError, CommandService, Outcome, Seen, ServiceOptions};
pub use store::{
    FeedEvent, Position, SnapshotUpdate, SqliteOptions, SqliteStore, StoreError, Synchronous,
};
