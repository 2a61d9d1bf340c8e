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
//! The import's one transaction is `BEGIN IMMEDIATE` on SQLite and holds the append lock on
//! PostgreSQL. The binary writes an export file owner-only (`crate::private`).

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, Write};

use chrono::{DateTime, SecondsFormat, Utc};
use cqrs_es::persist::SerializedEvent;
use rusqlite::{params, TransactionBehavior};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::chain;
use crate::feed::{FeedEvent, Position, StoreError};
use crate::log::EventLog;
use crate::pg::PgStore;
use crate::sqlite::SqliteStore;

/// Events read from the log per query while exporting, and written per batch while importing.
const PAGE: usize = 1_000;

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
    fn recorded_at_text(&self) -> String {
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

/// Writes the whole log, up to its head when the export begins, to `out` as JSON Lines.
pub async fn export(
    log: &EventLog,
    out: &mut impl Write,
) -> Result<TransferSummary, TransferError> {
    let head = log.current_head().await?;
    let mut summary = TransferSummary::default();
    let mut stories = HashSet::new();
    let mut after = 0;
    while after < head {
        let page = log.read_feed(after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.position;
        for event in page.into_iter().filter(|e| e.position <= head) {
            summary.events += 1;
            summary.head = event.position;
            stories.insert((event.aggregate_type.clone(), event.story_id.clone()));
            serde_json::to_writer(&mut *out, &ExportedEvent::from(event))
                .map_err(std::io::Error::from)?;
            out.write_all(b"\n")?;
        }
    }
    out.flush()?;
    summary.stories = stories.len();
    Ok(summary)
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

/// Loads an export into `log`, which must hold no events, in one transaction.
pub async fn import(
    log: &EventLog,
    input: impl BufRead + Send + 'static,
) -> Result<TransferSummary, TransferError> {
    match log {
        EventLog::Sqlite(store) => import_sqlite(store, input).await,
        EventLog::Postgres(store) => import_postgres(store, input).await,
    }
}

async fn import_sqlite(
    store: &SqliteStore,
    mut input: impl BufRead + Send + 'static,
) -> Result<TransferSummary, TransferError> {
    let path = store.path().to_owned();
    tokio::task::spawn_blocking(move || {
        let mut conn = rusqlite::Connection::open(&path)?;
        crate::sqlite::configure(&conn, crate::db::Synchronous::Full)?;
        // IMMEDIATE: the write lock is taken before the emptiness check, so no append can slip
        // in between.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let events: i64 = tx.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))?;
        if events > 0 {
            return Err(TransferError::NotEmpty { events });
        }
        let mut checker = Checker::default();
        {
            let mut insert = tx.prepare(
                "INSERT INTO events (position, aggregate_type, aggregate_id, sequence, event_type,
                                     event_version, payload, metadata, recorded_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?;
            while let Some(event) = checker.next(&mut input) {
                let event = event?;
                insert.execute(params![
                    event.position,
                    event.aggregate_type,
                    event.aggregate_id,
                    event.sequence,
                    event.event_type,
                    event.event_version,
                    serde_json::to_string(&event.payload).map_err(StoreError::from)?,
                    serde_json::to_string(&event.metadata).map_err(StoreError::from)?,
                    event.recorded_at_text(),
                ])?;
                let serialized = event.to_serialized();
                if event.event_type == "StoryOpened" {
                    crate::sqlite::claim_slug(&tx, &serialized)?;
                }
                if let Some(change) = crate::developments::change_of(&serialized)? {
                    crate::developments::apply_sqlite(&tx, &event.aggregate_id, &change)?;
                }
            }
        }
        tx.commit()?;
        Ok(checker.summary())
    })
    .await
    .map_err(|_| TransferError::Interrupted)?
}

async fn import_postgres(
    store: &PgStore,
    mut input: impl BufRead + Send + 'static,
) -> Result<TransferSummary, TransferError> {
    // The file is read and checked on a blocking thread; batches come over a channel.
    let (tx_batches, mut batches) = mpsc::channel::<Result<Vec<ExportedEvent>, TransferError>>(4);
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

    let mut tx = store.pool().begin().await?;
    // The append lock: no process appends while the import runs, and the emptiness check holds.
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(crate::pg::APPEND_LOCK)
        .execute(&mut *tx)
        .await?;
    let events: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events")
        .fetch_one(&mut *tx)
        .await?;
    if events > 0 {
        return Err(TransferError::NotEmpty { events });
    }
    while let Some(batch) = batches.recv().await {
        for event in batch? {
            sqlx::query(
                "INSERT INTO events (position, aggregate_type, aggregate_id, sequence, event_type,
                    event_version, payload, metadata, recorded_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(event.position)
            .bind(&event.aggregate_type)
            .bind(&event.aggregate_id)
            .bind(event.sequence)
            .bind(&event.event_type)
            .bind(&event.event_version)
            .bind(&event.payload)
            .bind(&event.metadata)
            .bind(event.recorded_at)
            .execute(&mut *tx)
            .await?;
            let serialized = event.to_serialized();
            if event.event_type == "StoryOpened" {
                crate::pg::claim_slug(&mut tx, &serialized).await?;
            }
            if let Some(change) = crate::developments::change_of(&serialized)? {
                crate::developments::apply_pg(&mut tx, &event.aggregate_id, &change).await?;
            }
        }
    }
    // Each story's head, as appends keep it.
    sqlx::query(
        "INSERT INTO story_heads (aggregate_type, aggregate_id, sequence)
         SELECT aggregate_type, aggregate_id, MAX(sequence) FROM events
         GROUP BY aggregate_type, aggregate_id",
    )
    .execute(&mut *tx)
    .await?;
    let summary = reader
        .await
        .map_err(|_| TransferError::Interrupted)?
        .ok_or(TransferError::Interrupted)?;
    tx.commit().await?;
    Ok(summary)
}
