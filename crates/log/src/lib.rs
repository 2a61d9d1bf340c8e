//! The event log of newsroom: every event of every story, in commit order, with a global,
//! gap-free `position`, in SQLite (embedded mode) or PostgreSQL (scale-out).
//!
//! [`EventLog`] ([`log`]) is the one handle the rest of newsroom holds: the command side
//! appends through it (cqrs-es's `PersistedEventRepository`), and the projection and the
//! notifier read the global feed from it ([`EventLog::read_feed`] after their own checkpoint,
//! woken by [`EventLog::subscribe`]). Behind it are the two stores, [`sqlite`] and [`pg`], which
//! speak the types of [`feed`] ([`FeedEvent`], [`Position`], [`StoreError`]) and run one group
//! commit (`commit`), each writing the batch its own way. Beside the events
//! the log keeps the index of developments ([`developments`]), the hash chain ([`chain`],
//! checked by [`verify`]), and the tokens' and desk sessions' tables; [`transfer`] exports and
//! imports it; [`relay`] and [`consumer`] carry it over NATS JetStream in scale-out mode.
//! [`db`] is a SQLite file for state kept beside the log (the views, the notifier's queue),
//! [`sql`] the one-dialect statement layer used on cold paths of both backends, and [`private`]
//! keeps every data file its owner's alone.
//!
//! **Architecture invariant:** the log is append-only. Nothing here updates or deletes an event;
//! a correction is a new event.

pub mod chain;
mod commit;
pub mod consumer;
pub mod db;
pub mod developments;
pub mod feed;
pub mod log;
pub mod migrate;
pub mod pg;
pub mod private;
pub mod relay;
pub mod sql;
pub mod sqlite;
pub mod transfer;
pub mod verify;

pub use db::{DbError, SqliteDb, Synchronous};
pub use feed::{FeedEvent, Position, SnapshotUpdate, StoreError};
pub use log::EventLog;
pub use pg::PgStore;
pub use sqlite::{SqliteOptions, SqliteStore};
