//! Export and import of the whole event log as JSON Lines, to move it between stores (SQLite ↔
//! PostgreSQL) or keep a store-independent copy.
//!
//! An export is one line per event, in position order: position, aggregate type and id,
//! sequence, event type and version, payload and metadata (with its chain `hash`) exactly as
//! stored — not upcast, so the chain still verifies — and the time it was recorded. It stops at
//! the head the log had when the export began: positions are commit-ordered and gap-free, so
//! that is a consistent prefix even while newsroom keeps writing.
//!
//! An import goes into an empty log only, in one transaction: it keeps every position,
//! sequence and metadata, so the hash chains, the views' and the notifier's checkpoints all mean
//! what they meant. It refuses the whole file — writing nothing — if any line is not an
//! exported event, positions are not 1, 2, 3, …, a story's sequence does not continue, or an
//! event does not carry the chain hash its content gives it (a file edited after export).
//! Tokens and snapshots are not part of an export: tokens are credentials of one installation,
//! and snapshots are rebuilt from the events. What the log derives from its events in the same
//! transaction — slugs, the index of developments, on PostgreSQL each story's head — the import
//! derives in its transaction too.
//!
//! The import is written once, for both stores: the file is read and checked on a blocking
//! thread (`Checker`) and handed over a thousand events at a time to `load`, which checks the
//! log is empty and writes each event, the slug it claims and the change it makes to the index
//! of developments, through a store's `ImportIo` (its statements, in its transaction). Each
//! store opens that one transaction and commits it (the entry points are
//! `EventLog::export` and `EventLog::import`) (`SqliteStore::import`: `BEGIN IMMEDIATE` on
//! a connection of its own, off the runtime; `PgStore::import`: holding the append lock). A line
//! that fails the check ends the reading, and the transaction is dropped uncommitted. The
//! binary writes an export file owner-only (`crate::private`).

use std::collections::HashMap;
use std::io::BufRead;

use chrono::{DateTime, SecondsFormat, Utc};
use cqrs_es::persist::SerializedEvent;
use newsroom_domain::DevelopmentChange;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::chain;
use crate::feed::{FeedEvent, Position, StoreError};

/// Events read from the log per query while exporting, and written per batch while importing.
pub(crate) const PAGE: usize = 1_000;

/// One line of an export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportedEvent {
    pub position: Position,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    pub payload: Value,
    /// Author, `recorded_at` and the chain `hash`.
    pub metadata: Value,
    pub recorded_at: DateTime<Utc>,
}

impl From<FeedEvent> for ExportedEvent {
    fn from(e: FeedEvent) -> Self {
        Self {
            position: e.position,
            aggregate_type: e.aggregate_type,
            aggregate_id: e.story_id,
            sequence: e.sequence,
            event_type: e.event_type,
            event_version: e.event_version,
            payload: e.payload,
            metadata: e.metadata,
            recorded_at: e.recorded_at,
        }
    }
}

impl ExportedEvent {
    fn to_serialized(&self) -> SerializedEvent {
        SerializedEvent::new(
            self.aggregate_id.clone(),
            self.sequence as usize,
            self.aggregate_type.clone(),
            self.event_type.clone(),
            self.event_version.clone(),
            self.payload.clone(),
            self.metadata.clone(),
        )
    }

    /// The `recorded_at` text the SQLite store keeps: the metadata's, as appends write it.
    pub(crate) fn recorded_at_text(&self) -> String {
        self.metadata
            .get("recorded_at")
            .and_then(Value::as_str)
            .filter(|t| DateTime::parse_from_rfc3339(t).is_ok())
            .map(str::to_owned)
            .unwrap_or_else(|| {
                self.recorded_at
                    .to_rfc3339_opts(SecondsFormat::Micros, true)
            })
    }
}

/// Why an export or import failed.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error("reading or writing the export failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("line {line} is not an exported event: {source}")]
    Line {
        line: u64,
        source: serde_json::Error,
    },
    #[error("line {line}: {problem}")]
    Invalid { line: u64, problem: String },
    #[error("the event log already holds {events} events: import only into an empty store")]
    NotEmpty { events: i64 },
    #[error("the import stopped before it finished")]
    Interrupted,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for TransferError {
    fn from(e: rusqlite::Error) -> Self {
        TransferError::Store(e.into())
    }
}

impl From<sqlx::Error> for TransferError {
    fn from(e: sqlx::Error) -> Self {
        TransferError::Store(e.into())
    }
}

/// What an export or import did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TransferSummary {
    pub events: u64,
    pub stories: usize,
    /// The position of the last event (0 for an empty log).
    pub head: Position,
}

/// Checks an export line by line: positions 1, 2, 3, …; each story's sequence continuing; each
/// event carrying the chain hash its content and its predecessor give it.
#[derive(Debug, Default)]
struct Checker {
    line: u64,
    position: Position,
    /// Per (aggregate type, id): the last sequence and its hash.
    stories: HashMap<(String, String), (i64, String)>,
}

impl Checker {
    fn check_line(&mut self, text: &str) -> Result<ExportedEvent, TransferError> {
        let line = self.line;
        let invalid = |problem: String| TransferError::Invalid { line, problem };
        let event: ExportedEvent =
            serde_json::from_str(text).map_err(|source| TransferError::Line { line, source })?;
        if event.position != self.position + 1 {
            return Err(invalid(format!(
                "position {} where {} was expected: positions start at 1 and have no gaps",
                event.position,
                self.position + 1
            )));
        }
        let key = (event.aggregate_type.clone(), event.aggregate_id.clone());
        let (last_sequence, previous_hash) = self.stories.get(&key).cloned().unwrap_or_default();
        if event.sequence != last_sequence + 1 {
            return Err(invalid(format!(
                "story {} has sequence {} after {last_sequence}",
                event.aggregate_id, event.sequence
            )));
        }
        let expected = chain::event_hash(
            &previous_hash,
            &event.aggregate_id,
            event.sequence as usize,
            &event.event_type,
            &event.event_version,
            &event.payload,
            &event.metadata,
        );
        match chain::stored_hash(&event.metadata) {
            Some(stored) if stored == expected => {}
            Some(_) => {
                return Err(invalid(format!(
                    "event {} of story {} does not match its hash: changed after it was written",
                    event.sequence, event.aggregate_id
                )))
            }
            None => {
                return Err(invalid(format!(
                    "event {} of story {} carries no hash",
                    event.sequence, event.aggregate_id
                )))
            }
        }
        self.position = event.position;
        self.stories.insert(key, (event.sequence, expected));
        Ok(event)
    }

    /// The next event of `input`, checked; `None` at the end. Blank lines are skipped.
    fn next(&mut self, input: &mut impl BufRead) -> Option<Result<ExportedEvent, TransferError>> {
        let mut text = String::new();
        loop {
            text.clear();
            self.line += 1;
            match input.read_line(&mut text) {
                Ok(0) => return None,
                Ok(_) if text.trim().is_empty() => continue,
                Ok(_) => return Some(self.check_line(&text)),
                Err(e) => return Some(Err(e.into())),
            }
        }
    }

    fn summary(&self) -> TransferSummary {
        TransferSummary {
            events: self.position as u64,
            stories: self.stories.len(),
            head: self.position,
        }
    }
}

/// An export being read and checked on a blocking thread ([`Checker`]), handed over [`PAGE`]
/// events at a time; a line that fails the check ends it.
pub(crate) struct Batches {
    batches: mpsc::Receiver<Result<Vec<ExportedEvent>, TransferError>>,
    /// What was read: `None` if the reading stopped before the end.
    reader: tokio::task::JoinHandle<Option<TransferSummary>>,
}

impl Batches {
    pub(crate) fn read(mut input: impl BufRead + Send + 'static) -> Self {
        let (tx_batches, batches) = mpsc::channel(4);
        let reader = tokio::task::spawn_blocking(move || {
            let mut checker = Checker::default();
            let mut batch = Vec::with_capacity(PAGE);
            while let Some(event) = checker.next(&mut input) {
                match event {
                    Ok(event) => batch.push(event),
                    Err(e) => {
                        let _ = tx_batches.blocking_send(Err(e));
                        return None;
                    }
                }
                if batch.len() == PAGE
                    && tx_batches
                        .blocking_send(Ok(std::mem::take(&mut batch)))
                        .is_err()
                {
                    return None;
                }
            }
            if !batch.is_empty() && tx_batches.blocking_send(Ok(batch)).is_err() {
                return None;
            }
            Some(checker.summary())
        });
        Self { batches, reader }
    }
}

/// What an import writes, in a store's one transaction that holds its write lock.
pub(crate) trait ImportIo {
    /// How many events the log holds.
    async fn events(&mut self) -> Result<i64, StoreError>;
    /// Inserts an event as exported: its position, sequence and metadata kept.
    async fn insert(&mut self, event: &ExportedEvent) -> Result<(), StoreError>;
    /// Claims the slug a `StoryOpened` names for its story, as an append does.
    async fn claim_slug(&mut self, event: &SerializedEvent) -> Result<(), StoreError>;
    /// Applies one change to the index of developments.
    async fn apply(&mut self, story_id: &str, change: &DevelopmentChange)
        -> Result<(), StoreError>;
    /// Once every event is in: what else the store keeps of its events (PostgreSQL: each
    /// story's head).
    async fn finish(&mut self) -> Result<(), StoreError>;
}

/// The import, written once: into an empty log only, every event of `batches` with what the
/// log derives from it. The caller commits if it succeeds; on any error it has written nothing
/// that will be kept.
pub(crate) async fn load(
    io: &mut impl ImportIo,
    mut batches: Batches,
) -> Result<TransferSummary, TransferError> {
    let events = io.events().await?;
    if events > 0 {
        return Err(TransferError::NotEmpty { events });
    }
    while let Some(batch) = batches.batches.recv().await {
        for event in batch? {
            io.insert(&event).await?;
            let serialized = event.to_serialized();
            if event.event_type == "StoryOpened" {
                io.claim_slug(&serialized).await?;
            }
            if let Some(change) = crate::developments::change_of(&serialized)? {
                io.apply(&event.aggregate_id, &change).await?;
            }
        }
    }
    io.finish().await?;
    batches
        .reader
        .await
        .map_err(|_| TransferError::Interrupted)?
        .ok_or(TransferError::Interrupted)
}
