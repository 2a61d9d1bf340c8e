//! What every part of the log speaks: the global feed's rows ([`FeedEvent`]) and positions, the
//! errors of the stores, and a story's new snapshot on its way to the writer.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use cqrs_es::persist::{PersistenceError, SerializedEvent};
use serde::Serialize;
use serde_json::Value;

/// Most appends written by one transaction.
pub const MAX_BATCH: usize = 512;

/// A position in the global feed: 1 for the first event ever stored, no gaps.
pub type Position = i64;

/// Errors of the event store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Someone else appended to the story first.
    #[error("the story was changed concurrently")]
    Conflict,
    /// Another story already holds this slug.
    #[error("the slug `{0}` is taken")]
    SlugTaken(String),
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
    #[error("database pool error: {0}")]
    Pool(#[from] r2d2::Error),
    #[error("schema migration failed: {0}")]
    Migration(#[from] rusqlite_migration::Error),
    #[error("stored data is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the event store's writer has stopped")]
    WriterGone,
    /// Stored data that this code cannot read (an event of an unknown type or version).
    #[error("the log holds what this code cannot read: {0}")]
    Unreadable(String),
    #[error("PostgreSQL error: {0}")]
    Postgres(#[from] sqlx::Error),
    #[error("PostgreSQL schema migration failed: {0}")]
    PgMigration(#[from] sqlx::migrate::MigrateError),
    #[error("the event store is unavailable: {0}")]
    Unavailable(String),
    /// The database went away while the append was being committed, and could not be asked
    /// afterwards whether the commit was recorded: it may have been, or not.
    #[error("the event store went away while committing; the append may have been recorded: {0}")]
    InDoubt(String),
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl StoreError {
    /// Whether retrying later may succeed: the database is busy, unreachable (PostgreSQL down,
    /// restarting, the connection cut) or the writer is restarting. The HTTP edge answers 503.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Database(e)
            | StoreError::Migration(rusqlite_migration::Error::RusqliteError { err: e, .. }) => {
                matches!(
                    e.sqlite_error_code(),
                    Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
                )
            }
            StoreError::Pool(_)
            | StoreError::WriterGone
            | StoreError::Unavailable(_)
            | StoreError::InDoubt(_) => true,
            StoreError::Postgres(e) => crate::feed::is_unreachable(e),
            _ => false,
        }
    }
}

impl From<StoreError> for PersistenceError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Conflict => PersistenceError::OptimisticLockError,
            StoreError::Json(e) => PersistenceError::DeserializationError(Box::new(e)),
            e if e.is_unavailable() => PersistenceError::ConnectionError(Box::new(e)),
            e => PersistenceError::UnknownError(Box::new(e)),
        }
    }
}

/// One stored event as the feed delivers it.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct FeedEvent {
    /// Global, commit-ordered, gap-free position.
    pub position: Position,
    pub aggregate_type: String,
    /// The story's id.
    pub story_id: String,
    /// The event's place in its story, from 1.
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: Value,
    /// Who recorded it (`author_id`, `author_name`, `author_role`) and when (`recorded_at`).
    pub metadata: Value,
    pub recorded_at: DateTime<Utc>,
}

impl FeedEvent {
    pub fn to_serialized(&self) -> SerializedEvent {
        SerializedEvent::new(
            self.story_id.clone(),
            self.sequence as usize,
            self.aggregate_type.clone(),
            self.event_type.clone(),
            self.event_version.clone(),
            self.payload.clone(),
            self.metadata.clone(),
        )
    }
}

/// A story's new snapshot, serialised by the caller (not on the writer thread, which every
/// commit waits for).
#[derive(Debug, Clone)]
pub struct SnapshotUpdate {
    pub aggregate_id: String,
    pub payload: String,
    pub version: usize,
}

/// Whether an error means the database cannot be reached (down, restarting, the connection cut,
/// no connection to be had), as opposed to an error of the statement: retrying later may succeed.
pub fn is_unreachable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // 08: connection exception; 57P01-57P03: the server shutting down, crashed or
            // starting up; 53300: too many connections.
            code.starts_with("08") || code.starts_with("57P") || code == "53300"
        }),
        _ => false,
    }
}
