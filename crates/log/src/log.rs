//! The event log, whichever database holds it: SQLite (embedded, one process) or PostgreSQL
//! (several command processes). Every part of newsroom that reads or writes the log goes
//! through [`EventLog`]; both stores keep the same promises (gap-free, commit-ordered positions;
//! conflicts decided by sequence; slugs unique; snapshots never conflicting).
//!
//! A process chooses by its database URL (`NEWSROOM_DATABASE_URL`, read by the binary's
//! configuration): `postgres://…` is a [`PgStore`](crate::PgStore), a `sqlite://` file (the
//! default) the embedded [`SqliteStore`](crate::SqliteStore).
//! [`EventLog`] also implements cqrs-es's `PersistedEventRepository`, upcasting every event it
//! hands to cqrs-es (`newsroom_domain::upcast`), so `PersistedEventStore` loads aggregates through
//! it.

use std::collections::HashSet;
use std::io::{BufRead, Write};

use cqrs_es::persist::{
    PersistedEventRepository, PersistenceError, ReplayStream, SerializedEvent, SerializedSnapshot,
};
use cqrs_es::Aggregate;
use newsroom_domain::{DevelopmentId, Facts};
use rusqlite::TransactionBehavior;
use serde_json::Value;
use tokio::runtime::Handle;
use tokio::sync::watch;

use crate::feed::{FeedEvent, Position, SnapshotUpdate, StoreError};
use crate::pg::PgStore;
use crate::sql::{PgSql, Sql, SqliteSql};
use crate::sqlite::SqliteStore;
use crate::transfer::{self, Batches, ExportedEvent, TransferError, TransferSummary};

/// The event log. Cheap to clone.
#[derive(Clone, Debug)]
pub enum EventLog {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

impl From<SqliteStore> for EventLog {
    fn from(s: SqliteStore) -> Self {
        EventLog::Sqlite(s)
    }
}

impl From<PgStore> for EventLog {
    fn from(s: PgStore) -> Self {
        EventLog::Postgres(s)
    }
}

macro_rules! each {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            EventLog::Sqlite($s) => $e,
            EventLog::Postgres($s) => $e,
        }
    };
}

impl EventLog {
    /// Appends one story's events (and maybe its snapshot) atomically; returns their positions.
    pub async fn append(
        &self,
        events: Vec<SerializedEvent>,
        snapshot: Option<SnapshotUpdate>,
    ) -> Result<Vec<Position>, StoreError> {
        each!(self, s => s.append(events, snapshot).await)
    }

    /// Events after `after`, in position order, at most `limit`.
    pub async fn read_feed(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<FeedEvent>, StoreError> {
        each!(self, s => s.read_feed(after, limit).await)
    }

    /// As [`Self::read_feed`], each row decoded or, if it does not decode, named by position
    /// (`newsroom verify`).
    pub async fn read_feed_rows(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<crate::chain::VerifyRow>, StoreError> {
        each!(self, s => s.read_feed_rows(after, limit).await)
    }

    /// The work reads have done on the log (`db::ReadWork`); `None` on PostgreSQL.
    pub fn read_work(&self) -> Option<u64> {
        match self {
            EventLog::Sqlite(s) => Some(s.read_work()),
            EventLog::Postgres(_) => None,
        }
    }

    /// The database's own check of its storage: `Some` of what it found (empty: sound) on
    /// SQLite (`PRAGMA integrity_check`); `None` on PostgreSQL, which has no such check in core
    /// (its pages carry checksums when the cluster was initialised with them).
    pub async fn integrity_check(&self) -> Result<Option<Vec<String>>, StoreError> {
        match self {
            EventLog::Sqlite(s) => s.integrity_check().await.map(Some),
            EventLog::Postgres(_) => Ok(None),
        }
    }

    /// One story's whole history, in sequence order.
    pub async fn story_events(&self, story_id: String) -> Result<Vec<FeedEvent>, StoreError> {
        each!(self, s => s.story_events(story_id).await)
    }

    /// A story's events after its `sequence`, in sequence order, at most `limit`.
    pub async fn story_events_after(
        &self,
        story_id: String,
        sequence: usize,
        limit: Option<usize>,
    ) -> Result<Vec<FeedEvent>, StoreError> {
        each!(self, s => s.events_after(newsroom_domain::AGGREGATE_TYPE, &story_id, sequence, limit).await)
    }

    /// Who recorded a story's event (its metadata's `author_id`: the token's id), if it exists.
    pub async fn author_of(
        &self,
        story_id: &str,
        sequence: usize,
    ) -> Result<Option<String>, StoreError> {
        let event = each!(self, s => s.event_at(story_id, sequence).await)?;
        Ok(event.and_then(|e| e.metadata["author_id"].as_str().map(str::to_owned)))
    }

    pub async fn position_of(
        &self,
        story_id: String,
        sequence: usize,
    ) -> Result<Option<Position>, StoreError> {
        each!(self, s => s.position_of(story_id, sequence).await)
    }

    pub async fn story_by_slug(&self, slug: String) -> Result<Option<String>, StoreError> {
        each!(self, s => s.story_by_slug(slug).await)
    }

    /// What the log's index of developments holds of `developments` of a story
    /// (`developments.rs`): one row per development, whatever the story's length.
    pub async fn developments(
        &self,
        story_id: &str,
        developments: Vec<DevelopmentId>,
    ) -> Result<Facts, StoreError> {
        if developments.is_empty() {
            return Ok(Facts::default());
        }
        match self {
            EventLog::Sqlite(s) => s.developments(story_id.to_owned(), developments).await,
            EventLog::Postgres(s) => s.developments(story_id, &developments).await,
        }
    }

    /// The soonest embargoes that hold a development back, at most `limit`
    /// (`developments::embargoes_sqlite`): what the embargo scheduler lifts.
    pub async fn embargoes(
        &self,
        limit: u32,
    ) -> Result<Vec<crate::developments::Embargo>, StoreError> {
        match self {
            EventLog::Sqlite(s) => {
                s.with_conn(move |conn| crate::developments::embargoes_sqlite(conn, limit))
                    .await
            }
            EventLog::Postgres(s) => {
                crate::developments::embargoes_pg(&mut *s.acquire().await?, limit).await
            }
        }
    }

    /// The newest position this process knows of (what it wrote, or read).
    pub fn head(&self) -> Position {
        each!(self, s => s.head())
    }

    /// The newest position in the log, whoever wrote it.
    pub async fn current_head(&self) -> Result<Position, StoreError> {
        match self {
            EventLog::Sqlite(s) => Ok(s.head()),
            EventLog::Postgres(s) => s.current_head().await,
        }
    }

    /// Changes when this process commits events: a wake-up signal only. Readers still read the
    /// feed, and poll for what other processes commit.
    pub fn subscribe(&self) -> watch::Receiver<Position> {
        each!(self, s => s.subscribe())
    }

    /// The chain hash of a story's event (see `chain.rs`), if it exists and carries one.
    pub async fn hash_of(
        &self,
        story_id: &str,
        sequence: usize,
    ) -> Result<Option<String>, StoreError> {
        let events = self
            .serialized(
                newsroom_domain::AGGREGATE_TYPE,
                story_id,
                sequence.saturating_sub(1),
            )
            .await?;
        Ok(events
            .first()
            .filter(|e| e.sequence == sequence)
            .and_then(|e| crate::chain::stored_hash(&e.metadata).map(str::to_owned)))
    }

    /// Runs `f` on a connection to the log's database, for state kept beside the log (tokens,
    /// desk sessions and drafts): its statements are written once, in the dialect of
    /// [`crate::sql`], whichever database holds the log.
    pub async fn with_sql<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Sql) -> Result<T, StoreError> + Send + 'static,
    {
        self.run_sql(None, f).await
    }

    /// Like [`Self::with_sql`], in one transaction, committed if `f` succeeds. SQLite takes its
    /// write lock at once (`BEGIN IMMEDIATE`); PostgreSQL first takes the advisory lock `lock`,
    /// if one is given, so that such transactions of every process take turns.
    pub async fn transaction_sql<T, F>(&self, lock: Option<i64>, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Sql) -> Result<T, StoreError> + Send + 'static,
    {
        self.run_sql(Some(lock), f).await
    }

    /// `transaction`: `None` for none, else the advisory lock (if any) it takes on PostgreSQL.
    async fn run_sql<T, F>(&self, transaction: Option<Option<i64>>, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Sql) -> Result<T, StoreError> + Send + 'static,
    {
        match self {
            EventLog::Sqlite(s) => {
                s.with_conn(move |conn| {
                    if transaction.is_none() {
                        return f(&SqliteSql(conn));
                    }
                    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                    let out = f(&SqliteSql(&tx))?;
                    tx.commit()?;
                    Ok(out)
                })
                .await
            }
            EventLog::Postgres(s) => {
                // Through the store's own `acquire`, which fails fast while the database is
                // known to be unreachable.
                let mut conn = s.acquire().await?;
                let rt = Handle::current();
                tokio::task::spawn_blocking(move || {
                    let Some(lock) = transaction else {
                        return f(&PgSql::new(&mut conn, rt));
                    };
                    let mut tx = rt.block_on(sqlx::Connection::begin(&mut *conn))?;
                    let out = {
                        let sql = PgSql::new(&mut tx, rt.clone());
                        if let Some(key) = lock {
                            (&sql as &dyn Sql)
                                .execute("SELECT pg_advisory_xact_lock(?1)", crate::args![key])?;
                        }
                        f(&sql)?
                    };
                    rt.block_on(tx.commit())?;
                    Ok(out)
                })
                .await
                .map_err(|_| StoreError::WriterGone)?
            }
        }
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        match self {
            EventLog::Sqlite(s) => s
                .with_conn(|c| Ok(c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?))
                .await
                .map(|_| ()),
            EventLog::Postgres(s) => s.ping().await,
        }
    }

    /// Writes the whole log, up to its head when the export begins, to `out` as JSON Lines
    /// ([`crate::transfer`]).
    pub async fn export(&self, out: &mut impl Write) -> Result<TransferSummary, TransferError> {
        let head = self.current_head().await?;
        let mut summary = TransferSummary::default();
        let mut stories = HashSet::new();
        let mut after = 0;
        while after < head {
            let page = self.read_feed(after, transfer::PAGE).await?;
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

    /// Loads an export into the log, which must hold no events, in one transaction
    /// ([`crate::transfer`]).
    pub async fn import(
        &self,
        input: impl BufRead + Send + 'static,
    ) -> Result<TransferSummary, TransferError> {
        let batches = Batches::read(input);
        each!(self, s => s.import(batches).await)
    }

    async fn serialized(
        &self,
        aggregate_type: &'static str,
        aggregate_id: &str,
        after_sequence: usize,
    ) -> Result<Vec<SerializedEvent>, StoreError> {
        let events = match self {
            EventLog::Sqlite(s) => {
                s.events_after(aggregate_type, aggregate_id, after_sequence, None)
                    .await?
            }
            EventLog::Postgres(s) => {
                s.events_after(aggregate_type, aggregate_id, after_sequence, None)
                    .await?
            }
        };
        // Loading an aggregate reads every event in its current shape.
        Ok(events
            .iter()
            .map(|e| newsroom_domain::upcast::upcast(e.to_serialized()))
            .collect())
    }
}

/// cqrs-es loads (and can commit) aggregates through the log like through any repository.
impl PersistedEventRepository for EventLog {
    async fn get_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        Ok(self.serialized(A::TYPE, aggregate_id, 0).await?)
    }

    async fn get_last_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
        last_sequence: usize,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        Ok(self
            .serialized(A::TYPE, aggregate_id, last_sequence)
            .await?)
    }

    async fn get_snapshot<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        let stored = match self {
            EventLog::Sqlite(s) => s.snapshot(A::TYPE, aggregate_id).await?,
            EventLog::Postgres(s) => s.snapshot(A::TYPE, aggregate_id).await?,
        };
        // Snapshots are read in the current shape; one of a shape this code does not know is
        // ignored, and the story is loaded from its events.
        Ok(stored.and_then(|snapshot| {
            let aggregate = newsroom_domain::upcast::read_snapshot(snapshot.aggregate)?;
            Some(SerializedSnapshot {
                aggregate,
                ..snapshot
            })
        }))
    }

    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        let snapshot = snapshot_update
            .map(|(aggregate_id, payload, version)| {
                // cqrs-es hands the aggregate as it serialises; stored in the current shape.
                let payload = serde_json::json!({
                    "shape": newsroom_domain::upcast::SNAPSHOT_SHAPE,
                    "story": payload,
                });
                serde_json::to_string(&payload).map(|payload| SnapshotUpdate {
                    aggregate_id,
                    payload,
                    version,
                })
            })
            .transpose()?;
        self.append(events.to_vec(), snapshot).await?;
        Ok(())
    }

    async fn stream_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<ReplayStream, PersistenceError> {
        let events = self.serialized(A::TYPE, aggregate_id, 0).await?;
        Ok(replay(events).await)
    }

    async fn stream_all_events<A: Aggregate>(&self) -> Result<ReplayStream, PersistenceError> {
        // Commit order, which for one aggregate is also its sequence order.
        let mut events = Vec::new();
        let mut after = 0;
        loop {
            let page = self.read_feed(after, 10_000).await?;
            let Some(last) = page.last() else { break };
            after = last.position;
            events.extend(
                page.iter()
                    .filter(|e| e.aggregate_type == A::TYPE)
                    .map(|e| newsroom_domain::upcast::upcast(e.to_serialized())),
            );
        }
        Ok(replay(events).await)
    }
}

async fn replay(events: Vec<SerializedEvent>) -> ReplayStream {
    let (mut feed, stream) = ReplayStream::new(events.len().max(1));
    for event in events {
        // The queue holds them all, so this never waits.
        let _ = feed.push(Ok(event)).await;
    }
    stream
}
