//! The SQLite event store: the durable, append-only log of every story event, and the global feed
//! read from it.
//!
//! One writer thread owns the only write connection. Commands hand it their events over a channel;
//! it drains whatever is queued (up to [`MAX_BATCH`](crate::feed::MAX_BATCH) appends), writes them
//! in one transaction with a savepoint per append, and commits once — group commit, so concurrent
//! reporters share one fsync. The loop is `crate::commit`'s, which the PostgreSQL store runs too;
//! this store gives it the batch's write (`Writer`), and runs it on the writer thread.
//! Because one connection writes, in commit order, `position` (an explicit
//! `INTEGER PRIMARY KEY AUTOINCREMENT`, which `VACUUM` never renumbers) is global, commit-ordered
//! and gap-free: an append that fails is rolled back to its savepoint, which also rolls back the
//! `AUTOINCREMENT` counter. Readers use a pool of read-only connections; in WAL mode they never
//! block the writer.
//!
//! Conflicts are decided here, not by catching an SQLite error code: an append must continue its
//! story's sequence exactly, or it is refused with [`StoreError::Conflict`].
//!
//! Its tables: `events` (`position INTEGER PRIMARY KEY AUTOINCREMENT`,
//! `UNIQUE(aggregate_type, aggregate_id, sequence)`), `snapshots`, `story_slugs`, the index of
//! developments `story_developments` (`crate::developments`; the rows an append changes are
//! decoded on the caller's task, not the writer's, and written in the append's savepoint),
//! `tokens`, and the desk's `staff_passwords`, `desk_sessions` and `desk_drafts`; the schema is
//! brought up to date by `rusqlite_migration` on open. The writer never checkpoints the WAL: a
//! thread with its own connection runs a `PASSIVE` checkpoint every 500 ms, so no append waits
//! behind one. Every reader connection counts its work (`crate::db::ReadWork`). An import
//! (`crate::transfer::load`) writes through `Import`, in one transaction on a connection of its
//! own.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use cqrs_es::persist::{SerializedEvent, SerializedSnapshot};
use newsroom_domain::{DevelopmentChange, DevelopmentId, Facts};

use crate::chain::VerifyRow;
use crate::commit::{Append, WriteBatch, Written};
use crate::db::{configure, Synchronous};
use crate::feed::{FeedEvent, Position, SnapshotUpdate, StoreError};
use crate::migrate::Renumbering;
use crate::transfer::{load, Batches, ExportedEvent, ImportIo, TransferError, TransferSummary};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use rusqlite_migration::{Migrations, M};
use serde_json::Value;
use tokio::sync::{mpsc, watch};

/// The log's SQLite files (`migrations/sqlite`), in the order of their names, which are those of
/// `migrations/postgres` (`crate::migrate`).
const FILES: [&str; 7] = [
    include_str!("../migrations/sqlite/0001_event_log.sql"),
    include_str!("../migrations/sqlite/0002_story_developments.sql"),
    include_str!("../migrations/sqlite/0003_story_heads.sql"),
    include_str!("../migrations/sqlite/0004_embargoes.sql"),
    include_str!("../migrations/sqlite/0005_desk_sign_in.sql"),
    include_str!("../migrations/sqlite/0006_undo_windows.sql"),
    include_str!("../migrations/sqlite/0007_desk_drafts.sql"),
];

/// The earlier numbering had no `story_heads` and signed in to the desk before the embargoes:
/// a database at its 3 holds today's first three files (and the sign-in tables, which today's
/// fifth creates only if missing), at 4 today's first five.
const RENUMBERING: Renumbering<'static> = Renumbering {
    files: &FILES,
    applied: &[0, 1, 2, 3, 5, 6, 7],
};

fn migrations() -> Migrations<'static> {
    let mut steps: Vec<M<'static>> = FILES.iter().map(|sql| M::up(sql)).collect();
    // The index of developments (`developments.rs`), filled from the events already logged.
    steps[1] = M::up_with_hook(FILES[1], |tx: &rusqlite::Transaction| {
        let filled = crate::developments::fill_sqlite(tx)
            .map_err(|e| rusqlite_migration::HookError::Hook(e.to_string()))?;
        tracing::info!(developments = filled, "indexed the logged developments");
        Ok(())
    });
    Migrations::new(steps)
}

/// Options of the SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    pub synchronous: Synchronous,
    pub readers: u32,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            synchronous: Synchronous::Full,
            readers: 8,
        }
    }
}

/// The SQLite event store. Cheap to clone.
#[derive(Clone)]
pub struct SqliteStore {
    writer: mpsc::Sender<Append>,
    readers: r2d2::Pool<SqliteConnectionManager>,
    head: watch::Receiver<Position>,
    path: PathBuf,
    read_work: crate::db::ReadWork,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .field("head", &*self.head.borrow())
            .finish()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the store at `path`, brings its schema up to date and starts
    /// the writer thread.
    pub fn open(path: &Path, options: SqliteOptions) -> Result<Self, StoreError> {
        // The file and its directory are the owner's alone (`private`).
        crate::private::prepare_database_file(path)
            .map_err(|(path, source)| StoreError::DataDir { path, source })?;
        let mut conn = Connection::open(path)?;
        configure(&conn, options.synchronous)?;
        crate::migrate::migrate(&mut conn, &migrations(), Some(&RENUMBERING))?;
        let head: Position =
            conn.query_row("SELECT COALESCE(MAX(position), 0) FROM events", [], |r| {
                r.get(0)
            })?;

        let synchronous = options.synchronous;
        let read_work = crate::db::ReadWork::default();
        let counter = read_work.clone();
        let manager = SqliteConnectionManager::file(path)
            .with_flags(OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)
            .with_init(move |c| {
                counter.count_on(c);
                configure(c, synchronous)
            });
        let readers = r2d2::Pool::builder()
            .max_size(options.readers.max(1))
            .min_idle(Some(1))
            .build(manager)?;

        // The writer never checkpoints the WAL itself: the commit that crossed the WAL's size
        // threshold used to copy pages into the database file and fsync it while every append
        // queued behind it waited. `checkpoint_in_background` does it on its own connection.
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        let checkpointer = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        configure(&checkpointer, synchronous)?;

        let (head_tx, head_rx) = watch::channel(head);
        let (tx, rx) = crate::commit::queue();
        let thread_error = |source| StoreError::DataDir {
            path: path.to_owned(),
            source,
        };
        std::thread::Builder::new()
            .name("newsroom-sqlite-writer".into())
            .spawn(move || {
                futures_executor::block_on(crate::commit::run(Writer { conn }, rx, head_tx));
            })
            .map_err(thread_error)?;
        let alive = tx.downgrade();
        std::thread::Builder::new()
            .name("newsroom-sqlite-checkpoint".into())
            .spawn(move || checkpoint_in_background(&checkpointer, &alive))
            .map_err(thread_error)?;
        Ok(Self {
            writer: tx,
            readers,
            head: head_rx,
            path: path.to_owned(),
            read_work,
        })
    }

    /// The work the reader connections have done (`db::ReadWork`).
    pub fn read_work(&self) -> u64 {
        self.read_work.units()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one story's events (and optionally its new snapshot) atomically, returning the
    /// global position given to each event.
    pub async fn append(
        &self,
        events: Vec<SerializedEvent>,
        snapshot: Option<SnapshotUpdate>,
    ) -> Result<Vec<Position>, StoreError> {
        crate::commit::append(&self.writer, events, snapshot).await
    }

    /// The position of the newest committed event (0 when the log is empty).
    pub fn head(&self) -> Position {
        *self.head.borrow()
    }

    /// A receiver that changes whenever events commit: a wake-up signal for feed readers. The
    /// feed itself is always read from the database.
    pub fn subscribe(&self) -> watch::Receiver<Position> {
        self.head.clone()
    }

    /// Runs `f` on a pooled connection, off the async runtime.
    pub async fn with_conn<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let pool = self.readers.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = pool.get()?;
            f(&mut conn)
        })
        .await
        .map_err(|_| StoreError::WriterGone)?
    }

    /// Runs `f`, a read of a few rows by index, on a pooled connection in this task when one is
    /// free at once: a hand-off to the blocking pool and back costs more than such a read. When
    /// every connection is taken it waits for one off the runtime, as [`Self::with_conn`] does.
    async fn point_read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        match self.readers.try_get() {
            Some(mut conn) => f(&mut conn),
            None => self.with_conn(f).await,
        }
    }

    /// Events after `after`, in position order, at most `limit`.
    pub async fn read_feed(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<FeedEvent>, StoreError> {
        self.with_conn(move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "{SELECT_FEED} WHERE position > ?1 ORDER BY position LIMIT ?2"
            ))?;
            let rows = stmt.query_map(params![after, limit as i64], feed_row)?;
            collect_feed(rows)
        })
        .await
    }

    /// As [`Self::read_feed`], for `newsroom verify`: a row that does not decode is handed back
    /// as [`VerifyRow::Unreadable`] instead of failing the page.
    pub async fn read_feed_rows(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<VerifyRow>, StoreError> {
        self.with_conn(move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "{SELECT_FEED} WHERE position > ?1 ORDER BY position LIMIT ?2"
            ))?;
            let rows = stmt.query_map(params![after, limit as i64], verify_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
    }

    /// SQLite's own check of the file (`PRAGMA integrity_check`): every page, index and
    /// constraint. Empty when the file is sound; otherwise what SQLite found, one per line.
    pub async fn integrity_check(&self) -> Result<Vec<String>, StoreError> {
        self.with_conn(|conn| {
            let check = || -> rusqlite::Result<Vec<String>> {
                let mut stmt = conn.prepare("PRAGMA integrity_check")?;
                let found = stmt
                    .query_map([], |r| r.get::<_, String>(0))?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(found)
            };
            match check() {
                Ok(found) if found == ["ok"] => Ok(Vec::new()),
                Ok(found) => Ok(found),
                // A page damaged badly enough stops the check itself: that is its finding.
                Err(rusqlite::Error::SqliteFailure(e, message))
                    if matches!(
                        e.code,
                        rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase
                    ) =>
                {
                    Ok(vec![format!(
                        "the check stopped: {}",
                        message.unwrap_or_else(|| e.to_string())
                    )])
                }
                Err(e) => Err(e.into()),
            }
        })
        .await
    }

    /// One story's whole history, in sequence order.
    pub async fn story_events(&self, story_id: String) -> Result<Vec<FeedEvent>, StoreError> {
        self.events_after(newsroom_domain::AGGREGATE_TYPE, &story_id, 0, None)
            .await
    }

    /// The global position of a story's event, by its sequence.
    pub async fn position_of(
        &self,
        story_id: String,
        sequence: usize,
    ) -> Result<Option<Position>, StoreError> {
        self.with_conn(move |conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT position FROM events
                     WHERE aggregate_type = ?1 AND aggregate_id = ?2 AND sequence = ?3",
                )?
                .query_row(
                    params![newsroom_domain::AGGREGATE_TYPE, story_id, sequence as i64],
                    |r| r.get(0),
                )
                .optional()?)
        })
        .await
    }

    /// What the index of developments holds of `developments` of a story.
    pub async fn developments(
        &self,
        story_id: String,
        developments: Vec<DevelopmentId>,
    ) -> Result<Facts, StoreError> {
        self.point_read(move |conn| {
            crate::developments::lookup_sqlite(conn, &story_id, &developments)
        })
        .await
    }

    /// The id of the story holding `slug`.
    pub async fn story_by_slug(&self, slug: String) -> Result<Option<String>, StoreError> {
        self.with_conn(move |conn| {
            Ok(conn
                .prepare_cached("SELECT story_id FROM story_slugs WHERE slug = ?1")?
                .query_row([slug], |r| r.get(0))
                .optional()?)
        })
        .await
    }

    /// One event of a story, by its sequence.
    pub async fn event_at(
        &self,
        aggregate_id: &str,
        sequence: usize,
    ) -> Result<Option<FeedEvent>, StoreError> {
        let aggregate_id = aggregate_id.to_owned();
        self.with_conn(move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "{SELECT_FEED} WHERE aggregate_type = ?1 AND aggregate_id = ?2 AND sequence = ?3"
            ))?;
            let rows = stmt.query_map(
                params![
                    newsroom_domain::AGGREGATE_TYPE,
                    aggregate_id,
                    sequence as i64
                ],
                feed_row,
            )?;
            Ok(collect_feed(rows)?.into_iter().next())
        })
        .await
    }

    /// A story's events after `after_sequence`, in sequence order (at most `limit`).
    pub async fn events_after(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        after_sequence: usize,
        limit: Option<usize>,
    ) -> Result<Vec<FeedEvent>, StoreError> {
        let (aggregate_type, aggregate_id) = (aggregate_type.to_owned(), aggregate_id.to_owned());
        self.with_conn(move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "{SELECT_FEED} WHERE aggregate_type = ?1 AND aggregate_id = ?2 AND sequence > ?3
                 ORDER BY sequence LIMIT ?4"
            ))?;
            let limit = limit.map_or(-1, |l| l.min(i64::MAX as usize) as i64);
            let rows = stmt.query_map(
                params![aggregate_type, aggregate_id, after_sequence as i64, limit],
                feed_row,
            )?;
            collect_feed(rows)
        })
        .await
    }

    /// A story's snapshot, if one was stored.
    pub async fn snapshot(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<Option<SerializedSnapshot>, StoreError> {
        let (aggregate_type, id) = (aggregate_type.to_owned(), aggregate_id.to_owned());
        let row = self
            .with_conn(move |conn| {
                Ok(conn
                    .prepare_cached(
                        "SELECT last_sequence, snapshot_version, payload FROM snapshots
                         WHERE aggregate_type = ?1 AND aggregate_id = ?2",
                    )?
                    .query_row(params![aggregate_type, id], |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, String>(2)?,
                        ))
                    })
                    .optional()?)
            })
            .await?;
        match row {
            None => Ok(None),
            Some((last_sequence, version, payload)) => Ok(Some(SerializedSnapshot {
                aggregate_id: aggregate_id.to_owned(),
                aggregate: serde_json::from_str(&payload)?,
                current_sequence: last_sequence as usize,
                current_snapshot: version as usize,
            })),
        }
    }

    /// Loads an export into the log (`crate::transfer::load`), in one transaction on a
    /// connection of its own, off the async runtime.
    pub(crate) async fn import(&self, batches: Batches) -> Result<TransferSummary, TransferError> {
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = Connection::open(&path)?;
            configure(&conn, Synchronous::Full)?;
            // IMMEDIATE: the write lock is taken before the emptiness check, so no append can
            // slip in between.
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let summary = futures_executor::block_on(load(&mut Import(&tx), batches))?;
            tx.commit()?;
            Ok(summary)
        })
        .await
        .map_err(|_| TransferError::Interrupted)?
    }
}

const SELECT_FEED: &str = "SELECT position, aggregate_type, aggregate_id, sequence, event_type,
    event_version, payload, metadata, recorded_at FROM events";

type RawFeedRow = (
    Position,
    String,
    String,
    i64,
    String,
    String,
    String,
    String,
    String,
);

fn feed_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawFeedRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
    ))
}

fn collect_feed(
    rows: impl Iterator<Item = rusqlite::Result<RawFeedRow>>,
) -> Result<Vec<FeedEvent>, StoreError> {
    rows.map(|row| decode_feed_row(row?)).collect()
}

fn decode_feed_row(row: RawFeedRow) -> Result<FeedEvent, StoreError> {
    let (
        position,
        aggregate_type,
        story_id,
        sequence,
        event_type,
        event_version,
        payload,
        metadata,
        recorded_at,
    ) = row;
    Ok(FeedEvent {
        position,
        aggregate_type,
        story_id,
        sequence,
        event_type,
        event_version,
        payload: serde_json::from_str(&payload)?,
        metadata: serde_json::from_str(&metadata)?,
        recorded_at: DateTime::parse_from_rfc3339(&recorded_at)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default(),
    })
}

/// A row as `verify` reads it: decoded, or — its JSON broken, a column of the wrong type — what
/// can be read of it (position, story, sequence, and its chain hash if the metadata decodes).
fn verify_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<VerifyRow> {
    let position: Position = r.get(0)?;
    let unreadable = |problem: String, hash: Option<String>| VerifyRow::Unreadable {
        position,
        story_id: r.get(2).unwrap_or_default(),
        sequence: r.get(3).unwrap_or_default(),
        hash,
        problem,
    };
    let raw = match feed_row(r) {
        Ok(raw) => raw,
        Err(e) => return Ok(unreadable(e.to_string(), None)),
    };
    let metadata = raw.7.clone();
    Ok(match decode_feed_row(raw) {
        Ok(event) => VerifyRow::Event(event),
        Err(e) => {
            let hash = serde_json::from_str::<serde_json::Value>(&metadata)
                .ok()
                .and_then(|m| crate::chain::stored_hash(&m).map(str::to_owned));
            unreadable(e.to_string(), hash)
        }
    })
}

/// How often the log's WAL is checkpointed, off the writer thread.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// Checkpoints the log's WAL every [`CHECKPOINT_EVERY`] on `conn` until the store's last handle
/// is gone. `PASSIVE` never waits for, nor blocks, the writer or the readers: what a reader still
/// needs stays in the WAL for the next round. Durability does not depend on it — at
/// `synchronous = FULL` a commit is on disk once its WAL frames are synced; a checkpoint only
/// moves pages into the database file and keeps the WAL from growing.
fn checkpoint_in_background(conn: &Connection, alive: &mpsc::WeakSender<Append>) {
    loop {
        std::thread::sleep(CHECKPOINT_EVERY);
        if alive.upgrade().is_none() {
            return;
        }
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "background WAL checkpoint of the log failed");
        }
    }
}

/// The single writer: owns the write connection; its thread runs the group commit
/// (`crate::commit::run`).
struct Writer {
    conn: Connection,
}

impl WriteBatch for Writer {
    /// Writes every append of a batch in one transaction, each in a savepoint of its own, on
    /// the writer's thread: nothing in it waits but for SQLite.
    async fn write_batch(&mut self, batch: &[Append]) -> Vec<Written> {
        let mut tx = match self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
        {
            Ok(tx) => tx,
            Err(e) => return batch.iter().map(|_| Err(clone_db_error(&e))).collect(),
        };
        let mut results = Vec::with_capacity(batch.len());
        for append in batch {
            let result = (|| {
                let sp = tx.savepoint()?;
                let positions = write_append(&sp, append)?;
                sp.commit()?;
                Ok(positions)
            })();
            results.push(result);
        }
        if let Err(e) = tx.commit() {
            tracing::error!(error = %e, "event store commit failed");
            return results
                .into_iter()
                .map(|r| r.and(Err(clone_db_error(&e))))
                .collect();
        }
        results
    }
}

fn clone_db_error(e: &rusqlite::Error) -> StoreError {
    match e {
        rusqlite::Error::SqliteFailure(code, msg) => {
            StoreError::Database(rusqlite::Error::SqliteFailure(*code, msg.clone()))
        }
        other => StoreError::Database(rusqlite::Error::ToSqlConversionFailure(
            other.to_string().into(),
        )),
    }
}

fn now_rfc3339() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn write_append(conn: &Connection, append: &Append) -> Result<Vec<Position>, StoreError> {
    let first = &append.events[0];
    let current: i64 = conn
        .prepare_cached(
            "SELECT COALESCE(MAX(sequence), 0) FROM events
             WHERE aggregate_type = ?1 AND aggregate_id = ?2",
        )?
        .query_row(params![first.aggregate_type, first.aggregate_id], |r| {
            r.get(0)
        })?;
    let contiguous = append.events.iter().enumerate().all(|(i, e)| {
        e.aggregate_id == first.aggregate_id
            && e.aggregate_type == first.aggregate_type
            && e.sequence as i64 == current + 1 + i as i64
    });
    if !contiguous {
        return Err(StoreError::Conflict);
    }
    let mut insert = conn.prepare_cached(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version,
                             payload, metadata, recorded_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    let mut positions = Vec::with_capacity(append.events.len());
    for event in &append.events {
        let recorded_at = event
            .metadata
            .get("recorded_at")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(now_rfc3339);
        insert.execute(params![
            event.aggregate_type,
            event.aggregate_id,
            event.sequence as i64,
            event.event_type,
            event.event_version,
            serde_json::to_string(&event.payload)?,
            serde_json::to_string(&event.metadata)?,
            recorded_at,
        ])?;
        positions.push(conn.last_insert_rowid());
        if event.event_type == "StoryOpened" {
            claim_slug(conn, event)?;
        }
    }
    for change in &append.developments {
        crate::developments::apply_sqlite(conn, &first.aggregate_id, change)?;
    }
    if let Some(snapshot) = &append.snapshot {
        write_snapshot(
            conn,
            &first.aggregate_type,
            append.events.last().map_or(0, |e| e.sequence),
            snapshot,
        )?;
    }
    Ok(positions)
}

fn claim_slug(conn: &Connection, event: &SerializedEvent) -> Result<(), StoreError> {
    let Some(slug) = event
        .payload
        .get("StoryOpened")
        .and_then(|p| p.get("slug"))
        .and_then(Value::as_str)
    else {
        return Ok(());
    };
    let inserted = conn
        .prepare_cached(
            "INSERT INTO story_slugs (slug, story_id) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
        )?
        .execute(params![slug, event.aggregate_id])?;
    if inserted == 0 {
        return Err(StoreError::SlugTaken(slug.to_owned()));
    }
    Ok(())
}

/// An import's writes, in its transaction (`crate::transfer::load`).
struct Import<'c>(&'c Connection);

impl ImportIo for Import<'_> {
    async fn events(&mut self) -> Result<i64, StoreError> {
        Ok(self
            .0
            .query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))?)
    }

    async fn insert(&mut self, event: &ExportedEvent) -> Result<(), StoreError> {
        self.0
            .prepare_cached(
                "INSERT INTO events (position, aggregate_type, aggregate_id, sequence, event_type,
                                     event_version, payload, metadata, recorded_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                event.position,
                event.aggregate_type,
                event.aggregate_id,
                event.sequence,
                event.event_type,
                event.event_version,
                serde_json::to_string(&event.payload)?,
                serde_json::to_string(&event.metadata)?,
                event.recorded_at_text(),
            ])?;
        Ok(())
    }

    async fn claim_slug(&mut self, event: &SerializedEvent) -> Result<(), StoreError> {
        claim_slug(self.0, event)
    }

    async fn apply(
        &mut self,
        story_id: &str,
        change: &DevelopmentChange,
    ) -> Result<(), StoreError> {
        Ok(crate::developments::apply_sqlite(self.0, story_id, change)?)
    }

    async fn finish(&mut self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Stores a story's snapshot unless a newer one is already there. Snapshots are derived from
/// the events, whose sequence check is the concurrency control; a snapshot never conflicts (an
/// unreadable old snapshot, replaced after a full replay, must not block the story).
fn write_snapshot(
    conn: &Connection,
    aggregate_type: &str,
    last_sequence: usize,
    snapshot: &SnapshotUpdate,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO snapshots (aggregate_type, aggregate_id, last_sequence, snapshot_version, payload)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (aggregate_type, aggregate_id) DO UPDATE SET
            last_sequence = excluded.last_sequence,
            snapshot_version = excluded.snapshot_version,
            payload = excluded.payload
         WHERE excluded.last_sequence > snapshots.last_sequence",
    )?
    .execute(params![
        aggregate_type,
        snapshot.aggregate_id,
        last_sequence as i64,
        snapshot.version as i64,
        snapshot.payload
    ])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every migration applies, in order, to an empty database, and the schema it leaves is
    /// the one the store writes to.
    #[test]
    fn the_migrations_apply_to_an_empty_database() {
        migrations()
            .validate()
            .expect("the SQLite migrations apply");
        let mut conn = Connection::open_in_memory().unwrap();
        migrations().to_latest(&mut conn).unwrap();
        let tables: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        for table in [
            "events",
            "snapshots",
            "story_developments",
            "tokens",
            "desk_drafts",
        ] {
            assert!(tables.iter().any(|t| t == table), "{table} in {tables:?}");
        }
    }

    #[test]
    fn the_files_have_namesakes_and_apply_in_the_order_of_their_names() {
        crate::migrate::check_files(std::path::Path::new(env!("CARGO_MANIFEST_DIR")), &FILES)
            .unwrap();
    }

    /// A database made by any prefix of the earlier numbering (today's files but `story_heads`,
    /// the desk's sign-in before the embargoes) opens onto today's schema and numbering.
    #[test]
    fn a_database_of_the_earlier_numbering_opens_onto_today_s_schema() {
        let earlier = [FILES[0], FILES[1], FILES[4], FILES[3], FILES[5], FILES[6]];
        crate::migrate::check_renumbering(&earlier, &migrations(), &RENUMBERING).unwrap();
    }
}
