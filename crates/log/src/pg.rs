//! The PostgreSQL event store, for running several command processes against one log.
//!
//! Positions must be gap-free and in commit order even when transactions of several processes
//! commit out of order — a reader following "position > last" must never skip an event that
//! commits later with a smaller position. So appends are serialised: every append transaction
//! first takes one transaction-scoped advisory lock, then numbers its events after the current
//! maximum, and releases the lock only by committing. Transactions therefore commit in position
//! order. To keep throughput, each process group-commits: one writer task drains the queued
//! appends into one transaction, a savepoint per append, as the SQLite store does (the loop is
//! `crate::commit`'s, run by both; this store gives it the batch's write, `write_batch`).
//! (`tests/api/postgres.rs` holds it to that with three writers, each with its own pool as
//! separate processes would have, and a follower reading while they write.)
//!
//! What is done under the lock costs the same whatever the length of the story or the log: the
//! batch's first position is the maximum of the primary key (one index descent), and each append
//! checks and advances its story's row in `story_heads` by key (the story's newest sequence)
//! instead of taking the maximum over the story's events, and writes the rows of the index of
//! developments its events change (`developments.rs`).
//!
//! The database may go away (a restart, a failover) while newsroom runs. Nothing here holds on
//! to a connection: the pool reconnects, the writer task answers a failed batch and serves the
//! next one, and while the database is unreachable every query fails at once with an error the
//! HTTP edge answers 503 (`StoreError::is_unavailable`) — one caller at a time probes for the
//! database (waiting at most `ACQUIRE_TIMEOUT`), the others do not queue behind a connect that
//! cannot succeed.
//!
//! Schema: sqlx migrations (`migrations/postgres`), in the `_sqlx_migrations` table the views'
//! (from 1000) and the notifier's (from 2000) migrations share. What does not grow with the batch
//! in round trips either: appends that extend different existing stories (`write_together`) have
//! their heads moved by one compare-and-set statement over arrays, and their events, index rows
//! and snapshots written as arrays (`UNNEST`), in a savepoint; one whose head moved on is refused
//! alone. Appends opening a story (a slug to claim) or sharing a story with another of the batch
//! go one by one, first, each in a savepoint of its own, as does the rest if the statements
//! together fail.
//!
//! Errors that mean the database cannot be reached (`crate::feed::is_unreachable`: I/O, pool
//! timeout, SQLSTATE `08…`, `57P…`, `53300`) are `StoreError::is_unavailable` (a 503 with
//! `Retry-After`); once the database was found unreachable, callers fail at once while one of them
//! probes every 500 ms. A commit whose answer was lost is looked up on a new connection under the
//! append lock; if the database cannot be asked, the append is `StoreError::InDoubt` (a 503
//! `outcome-unknown`: it may have been recorded, whole).
//!
//! An import (`crate::transfer::load`) writes through `Import`, in one transaction holding the
//! append lock, and fills `story_heads` once its events are in.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use cqrs_es::persist::{SerializedEvent, SerializedSnapshot};
use newsroom_domain::{DevelopmentChange, DevelopmentId, Facts};
use serde_json::Value;
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{Acquire, Postgres, Row, Transaction};
use tokio::sync::{mpsc, watch};

use crate::chain::VerifyRow;
use crate::commit::{Append, WriteBatch, Written};
use crate::feed::is_unreachable;
use crate::feed::{FeedEvent, Position, SnapshotUpdate, StoreError};
use crate::transfer::{load, Batches, ExportedEvent, ImportIo, TransferError, TransferSummary};

/// The advisory lock every append takes (an arbitrary constant: "newsroom log").
const APPEND_LOCK: i64 = 0x6e65_7773_726f_6f6d;

/// The log's migrations. The views and the notifier keep their tables in the same database,
/// with migrations of their own recorded in the same `_sqlx_migrations` table (versions 1000 and
/// up), so each migrator ignores the versions it does not know.
fn migrator() -> sqlx::migrate::Migrator {
    let mut migrator = sqlx::migrate!("./migrations/postgres");
    migrator.set_ignore_missing(true);
    migrator
}

/// How long a query waits for a connection, connecting included. Well inside the request
/// timeout, so that a command during an outage is answered 503, not timed out.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

/// While the database is unreachable, how long callers fail at once before one of them tries
/// again.
const PROBE_EVERY: Duration = Duration::from_millis(500);

/// The pool, and whether the database answered last time: when it did not, callers fail fast
/// until the next probe is due, and only one caller probes.
#[derive(Clone)]
struct Db {
    pool: PgPool,
    /// `None` while the database answers; otherwise when the next caller may try it.
    next_probe: Arc<Mutex<Option<Instant>>>,
}

impl Db {
    async fn acquire(&self) -> Result<PoolConnection<Postgres>, StoreError> {
        {
            let mut next = self.next_probe.lock().expect("probe lock poisoned");
            if let Some(at) = *next {
                let now = Instant::now();
                if now < at {
                    return Err(StoreError::Unavailable(
                        "the database is unreachable".to_owned(),
                    ));
                }
                // This caller probes; the others keep failing fast until it knows.
                *next = Some(now + ACQUIRE_TIMEOUT + PROBE_EVERY);
            }
        }
        let result = self.pool.acquire().await;
        let mut next = self.next_probe.lock().expect("probe lock poisoned");
        match result {
            Ok(conn) => {
                if next.take().is_some() {
                    tracing::info!("the database answers again");
                }
                Ok(conn)
            }
            Err(e) => {
                if is_unreachable(&e) {
                    if next.is_none() {
                        tracing::warn!(error = %e, "the database is unreachable");
                    }
                    *next = Some(Instant::now() + PROBE_EVERY);
                }
                Err(e.into())
            }
        }
    }
}

/// The PostgreSQL event store. Cheap to clone.
#[derive(Clone)]
pub struct PgStore {
    db: Db,
    writer: mpsc::Sender<Append>,
    head: watch::Receiver<Position>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("head", &*self.head.borrow())
            .finish_non_exhaustive()
    }
}

const SELECT_FEED: &str = "SELECT position, aggregate_type, aggregate_id, sequence, event_type,
    event_version, payload, metadata, recorded_at FROM events";

fn feed_event(row: &sqlx::postgres::PgRow) -> Result<FeedEvent, sqlx::Error> {
    Ok(FeedEvent {
        position: row.try_get(0)?,
        aggregate_type: row.try_get(1)?,
        story_id: row.try_get(2)?,
        sequence: row.try_get(3)?,
        event_type: row.try_get(4)?,
        event_version: row.try_get(5)?,
        payload: row.try_get(6)?,
        metadata: row.try_get(7)?,
        recorded_at: row.try_get(8)?,
    })
}

impl PgStore {
    /// Connects, brings the schema up to date and starts the writer task.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect(url)
            .await?;
        migrator().run(&pool).await?;
        fill_pending(&pool).await?;
        let head: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(position), 0)::BIGINT FROM events")
            .fetch_one(&pool)
            .await?;
        let (head_tx, head_rx) = watch::channel(head);
        let (tx, rx) = crate::commit::queue();
        let db = Db {
            pool,
            next_probe: Arc::default(),
        };
        tokio::spawn(crate::commit::run(Writer(db.clone()), rx, head_tx));
        Ok(Self {
            db,
            writer: tx,
            head: head_rx,
        })
    }

    pub fn pool(&self) -> &PgPool {
        &self.db.pool
    }

    /// A connection from the pool; fails at once while the database is known to be unreachable.
    pub async fn acquire(&self) -> Result<PoolConnection<Postgres>, StoreError> {
        self.db.acquire().await
    }

    pub async fn append(
        &self,
        events: Vec<SerializedEvent>,
        snapshot: Option<SnapshotUpdate>,
    ) -> Result<Vec<Position>, StoreError> {
        crate::commit::append(&self.writer, events, snapshot).await
    }

    /// The newest position this process has written.
    pub fn head(&self) -> Position {
        *self.head.borrow()
    }

    pub fn subscribe(&self) -> watch::Receiver<Position> {
        self.head.clone()
    }

    /// The newest position in the log, whoever wrote it.
    pub async fn current_head(&self) -> Result<Position, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT COALESCE(MAX(position), 0)::BIGINT FROM events")
                .fetch_one(&mut *self.acquire().await?)
                .await?,
        )
    }

    pub async fn read_feed(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<FeedEvent>, StoreError> {
        let rows = sqlx::query(&format!(
            "{SELECT_FEED} WHERE position > $1 ORDER BY position LIMIT $2"
        ))
        .bind(after)
        .bind(limit as i64)
        .fetch_all(&mut *self.acquire().await?)
        .await?;
        Ok(rows.iter().map(feed_event).collect::<Result<_, _>>()?)
    }

    /// As [`Self::read_feed`], for `newsroom verify`: a row that does not decode is handed back
    /// as [`VerifyRow::Unreadable`] instead of failing the page. (PostgreSQL's `jsonb` refuses
    /// invalid JSON and NUL when a row is written, so this is rarer here than on SQLite.)
    pub async fn read_feed_rows(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<VerifyRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "{SELECT_FEED} WHERE position > $1 ORDER BY position LIMIT $2"
        ))
        .bind(after)
        .bind(limit as i64)
        .fetch_all(&mut *self.acquire().await?)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(match feed_event(row) {
                    Ok(event) => VerifyRow::Event(event),
                    Err(e) => VerifyRow::Unreadable {
                        position: row.try_get(0)?,
                        story_id: row.try_get(2).unwrap_or_default(),
                        sequence: row.try_get(3).unwrap_or_default(),
                        hash: row
                            .try_get::<serde_json::Value, _>(7)
                            .ok()
                            .and_then(|m| crate::chain::stored_hash(&m).map(str::to_owned)),
                        problem: e.to_string(),
                    },
                })
            })
            .collect()
    }

    pub async fn story_events(&self, story_id: String) -> Result<Vec<FeedEvent>, StoreError> {
        self.events_after(newsroom_domain::AGGREGATE_TYPE, &story_id, 0, None)
            .await
    }

    pub async fn events_after(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        after_sequence: usize,
        limit: Option<usize>,
    ) -> Result<Vec<FeedEvent>, StoreError> {
        let rows = sqlx::query(&format!(
            "{SELECT_FEED} WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence > $3
             ORDER BY sequence LIMIT $4"
        ))
        .bind(aggregate_type)
        .bind(aggregate_id)
        .bind(after_sequence as i64)
        .bind(limit.map(|l| l.min(i64::MAX as usize) as i64))
        .fetch_all(&mut *self.acquire().await?)
        .await?;
        Ok(rows.iter().map(feed_event).collect::<Result<_, _>>()?)
    }

    /// One event of a story, by its sequence.
    pub async fn event_at(
        &self,
        aggregate_id: &str,
        sequence: usize,
    ) -> Result<Option<FeedEvent>, StoreError> {
        let row = sqlx::query(&format!(
            "{SELECT_FEED} WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence = $3"
        ))
        .bind(newsroom_domain::AGGREGATE_TYPE)
        .bind(aggregate_id)
        .bind(sequence as i64)
        .fetch_optional(&mut *self.acquire().await?)
        .await?;
        Ok(row.as_ref().map(feed_event).transpose()?)
    }

    pub async fn position_of(
        &self,
        story_id: String,
        sequence: usize,
    ) -> Result<Option<Position>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT position FROM events WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence = $3",
        )
        .bind(newsroom_domain::AGGREGATE_TYPE)
        .bind(story_id)
        .bind(sequence as i64)
        .fetch_optional(&mut *self.acquire().await?)
        .await?)
    }

    /// What the index of developments holds of `developments` of a story.
    pub async fn developments(
        &self,
        story_id: &str,
        developments: &[DevelopmentId],
    ) -> Result<Facts, StoreError> {
        crate::developments::lookup_pg(&mut *self.acquire().await?, story_id, developments).await
    }

    pub async fn story_by_slug(&self, slug: String) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT story_id FROM story_slugs WHERE slug = $1")
                .bind(slug)
                .fetch_optional(&mut *self.acquire().await?)
                .await?,
        )
    }

    pub async fn snapshot(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<Option<SerializedSnapshot>, StoreError> {
        let row = sqlx::query(
            "SELECT last_sequence, snapshot_version, payload FROM snapshots
             WHERE aggregate_type = $1 AND aggregate_id = $2",
        )
        .bind(aggregate_type)
        .bind(aggregate_id)
        .fetch_optional(&mut *self.acquire().await?)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let payload: String = row.try_get(2)?;
        Ok(Some(SerializedSnapshot {
            aggregate_id: aggregate_id.to_owned(),
            aggregate: serde_json::from_str(&payload)?,
            current_sequence: row.try_get::<i64, _>(0)? as usize,
            current_snapshot: row.try_get::<i64, _>(1)? as usize,
        }))
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&mut *self.acquire().await?)
            .await?;
        Ok(())
    }

    /// Loads an export into the log (`crate::transfer::load`), in one transaction holding the
    /// append lock: no process appends while it runs, and the emptiness check holds.
    pub(crate) async fn import(&self, batches: Batches) -> Result<TransferSummary, TransferError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(APPEND_LOCK)
            .execute(&mut *tx)
            .await?;
        let summary = load(&mut Import(&mut tx), batches).await?;
        tx.commit().await?;
        Ok(summary)
    }
}

/// An import's writes, in its transaction (`crate::transfer::load`).
struct Import<'t, 'c>(&'t mut Transaction<'c, Postgres>);

impl ImportIo for Import<'_, '_> {
    async fn events(&mut self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM events")
            .fetch_one(&mut **self.0)
            .await?)
    }

    async fn insert(&mut self, event: &ExportedEvent) -> Result<(), StoreError> {
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
        .execute(&mut **self.0)
        .await?;
        Ok(())
    }

    async fn claim_slug(&mut self, event: &SerializedEvent) -> Result<(), StoreError> {
        claim_slug(self.0, event).await
    }

    async fn apply(
        &mut self,
        story_id: &str,
        change: &DevelopmentChange,
    ) -> Result<(), StoreError> {
        Ok(crate::developments::apply_pg(self.0, story_id, change).await?)
    }

    /// Each story's head, as appends keep it.
    async fn finish(&mut self) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO story_heads (aggregate_type, aggregate_id, sequence)
             SELECT aggregate_type, aggregate_id, MAX(sequence) FROM events
             GROUP BY aggregate_type, aggregate_id",
        )
        .execute(&mut **self.0)
        .await?;
        Ok(())
    }
}

/// The writer task: the group commit (`crate::commit::run`) over the pool.
struct Writer(Db);

impl WriteBatch for Writer {
    async fn write_batch(&mut self, batch: &[Append]) -> Vec<Written> {
        write_batch(&self.0, batch).await
    }
}

/// Writes a batch in one transaction holding the append lock; each append is a savepoint.
async fn write_batch(db: &Db, batch: &[Append]) -> Vec<Written> {
    let failed = |e: &dyn std::fmt::Display| -> Vec<Written> {
        batch
            .iter()
            .map(|_| Err(StoreError::Unavailable(e.to_string())))
            .collect()
    };
    let mut conn = match db.acquire().await {
        Ok(conn) => conn,
        Err(e) => return failed(&e),
    };
    let mut tx = match conn.begin().await {
        Ok(tx) => tx,
        Err(e) => return failed(&e),
    };
    let start: Result<i64, sqlx::Error> = async {
        let waiting = std::time::Instant::now();
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(APPEND_LOCK)
            .execute(&mut *tx)
            .await?;
        // Every command of the batch waited this long for the order lock (a share of its
        // `newsroom_command_seconds`).
        let waited = waiting.elapsed().as_secs_f64();
        for _ in batch {
            metrics::histogram!("newsroom_store_append_lock_wait_seconds").record(waited);
        }
        sqlx::query_scalar("SELECT COALESCE(MAX(position), 0)::BIGINT + 1 FROM events")
            .fetch_one(&mut *tx)
            .await
    }
    .await;
    let mut next = match start {
        Ok(n) => n,
        Err(e) => return failed(&e),
    };
    // Appends that extend a story no other append of the batch touches, opening nothing, go in
    // a few statements for all of them (`write_together`); the rest one by one, first, each in a
    // savepoint of its own.
    let mut per_story: std::collections::HashMap<(&str, &str), usize> =
        std::collections::HashMap::with_capacity(batch.len());
    for append in batch {
        if let Some(e) = append.events.first() {
            *per_story
                .entry((e.aggregate_type.as_str(), e.aggregate_id.as_str()))
                .or_default() += 1;
        }
    }
    let together: Vec<bool> = batch
        .iter()
        .map(|a| {
            a.events.first().is_some_and(|e| {
                per_story[&(e.aggregate_type.as_str(), e.aggregate_id.as_str())] == 1
            }) && extends_a_story(a)
        })
        .collect();
    let mut results: Vec<Option<Written>> = batch.iter().map(|_| None).collect();
    let one_by_one = |i: usize| !together[i] || together.iter().filter(|t| **t).count() < 2;
    for (i, append) in batch.iter().enumerate() {
        if !one_by_one(i) {
            continue;
        }
        let result = write_alone(&mut tx, append, next).await;
        if let Ok(positions) = &result {
            next += positions.len() as i64;
        }
        results[i] = Some(result);
    }
    let rest: Vec<usize> = (0..batch.len()).filter(|i| !one_by_one(*i)).collect();
    if !rest.is_empty() {
        let appends: Vec<&Append> = rest.iter().map(|i| &batch[*i]).collect();
        match write_together(&mut tx, &appends, next).await {
            Ok(written) => {
                for (i, result) in rest.iter().zip(written) {
                    results[*i] = Some(result);
                }
            }
            Err(e) => {
                // Rolled back to before them: each one alone, as any other.
                tracing::warn!(error = %e, "appending a batch together failed; one by one");
                for i in rest {
                    let result = write_alone(&mut tx, &batch[i], next).await;
                    if let Ok(positions) = &result {
                        next += positions.len() as i64;
                    }
                    results[i] = Some(result);
                }
            }
        }
    }
    let results: Vec<Written> = results
        .into_iter()
        .map(|r| r.expect("every append was written or refused"))
        .collect();
    if let Err(e) = tx.commit().await {
        tracing::error!(error = %e, "event store commit failed");
        if !is_unreachable(&e) {
            // The server answered: the transaction was rolled back.
            return failed(&e);
        }
        // The connection went away during the commit, which may have been recorded or not.
        return match recorded(db, batch, &results).await {
            Ok(Some(true)) => results,
            Ok(_) => failed(&e),
            Err(check) => {
                tracing::warn!(error = %check, "cannot tell whether the commit was recorded");
                results
                    .into_iter()
                    .map(|r| r.and_then(|_| Err(StoreError::InDoubt(e.to_string()))))
                    .collect()
            }
        };
    }
    results
}

/// After a commit whose answer was lost: whether the batch was recorded (`None` if it wrote
/// nothing, so there is nothing to be in doubt about). One transaction holds all the batch's
/// appends, so one written event tells for all. The check first takes the append lock, which the
/// transaction in doubt holds until its backend has committed or rolled it back.
async fn recorded(
    db: &Db,
    batch: &[Append],
    results: &[Written],
) -> Result<Option<bool>, StoreError> {
    let Some((event, position)) = batch.iter().zip(results).find_map(|(append, result)| {
        let positions = result.as_ref().ok()?;
        Some((append.events.first()?, *positions.first()?))
    }) else {
        return Ok(None);
    };
    let mut conn = db.acquire().await?;
    let mut tx = conn.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(APPEND_LOCK)
        .execute(&mut *tx)
        .await?;
    // The chain hash in the metadata tells this event from any other written at that position
    // since.
    let found: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM events WHERE position = $1 AND aggregate_type = $2
            AND aggregate_id = $3 AND sequence = $4 AND metadata = $5)",
    )
    .bind(position)
    .bind(&event.aggregate_type)
    .bind(&event.aggregate_id)
    .bind(event.sequence as i64)
    .bind(&event.metadata)
    .fetch_one(&mut *tx)
    .await?;
    tx.rollback().await?;
    tracing::info!(recorded = found, "resolved a commit whose answer was lost");
    Ok(Some(found))
}

/// Writes one append in a savepoint of its own, so that its refusal or failure leaves the rest
/// of the batch as it was.
async fn write_alone(
    tx: &mut Transaction<'_, Postgres>,
    append: &Append,
    next: i64,
) -> Result<Vec<Position>, StoreError> {
    let mut sp = (&mut **tx).begin().await?;
    match write_append(&mut sp, append, next).await {
        Ok(positions) => {
            sp.commit().await?;
            Ok(positions)
        }
        Err(e) => {
            sp.rollback().await?;
            Err(e)
        }
    }
}

/// Whether an append can be written together with others ([`write_together`]): its events
/// extend one existing story contiguously and open nothing (no slug to claim).
fn extends_a_story(append: &Append) -> bool {
    let Some(first) = append.events.first() else {
        return false;
    };
    first.sequence > 1
        && append.events.iter().enumerate().all(|(i, e)| {
            e.aggregate_id == first.aggregate_id
                && e.aggregate_type == first.aggregate_type
                && e.sequence == first.sequence + i
                && e.event_type != "StoryOpened"
        })
}

/// Writes appends that each extend a different existing story ([`extends_a_story`]) in a
/// constant number of statements, whatever their number: the stories' heads moved by one
/// compare-and-set for all (an append whose story's head is elsewhere is refused with
/// [`StoreError::Conflict`] and writes nothing), then the events, the development index and
/// the snapshots as arrays. Positions follow from `next` in the appends' order. In a savepoint:
/// an error leaves the transaction as before it.
async fn write_together(
    tx: &mut Transaction<'_, Postgres>,
    appends: &[&Append],
    mut next: i64,
) -> Result<Vec<Written>, sqlx::Error> {
    let mut sp = (&mut **tx).begin().await?;
    let written = async {
        let n = appends.len();
        let (mut types, mut ids, mut befores, mut lasts) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for a in appends {
            let (first, last) = (&a.events[0], &a.events[a.events.len() - 1]);
            types.push(first.aggregate_type.as_str());
            ids.push(first.aggregate_id.as_str());
            befores.push(first.sequence as i64 - 1);
            lasts.push(last.sequence as i64);
        }
        let moved: Vec<(String, String)> = sqlx::query_as(
            "UPDATE story_heads h SET sequence = u.last
               FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::bigint[])
                    AS u(aggregate_type, aggregate_id, before, last)
              WHERE h.aggregate_type = u.aggregate_type AND h.aggregate_id = u.aggregate_id
                AND h.sequence = u.before
              RETURNING h.aggregate_type, h.aggregate_id",
        )
        .bind(&types)
        .bind(&ids)
        .bind(&befores)
        .bind(&lasts)
        .fetch_all(&mut *sp)
        .await?;
        let moved: std::collections::HashSet<(String, String)> = moved.into_iter().collect();
        let events: usize = appends.iter().map(|a| a.events.len()).sum();
        let mut columns = EventColumns::with_capacity(events);
        let mut developments = Vec::new();
        let mut outcomes = Vec::with_capacity(n);
        for a in appends {
            let first = &a.events[0];
            if !moved.contains(&(first.aggregate_type.clone(), first.aggregate_id.clone())) {
                outcomes.push(Err(StoreError::Conflict));
                continue;
            }
            let mut positions = Vec::with_capacity(a.events.len());
            for event in &a.events {
                columns.push(next, event);
                positions.push(next);
                next += 1;
            }
            for change in &a.developments {
                developments.push((first.aggregate_id.as_str(), change));
            }
            outcomes.push(Ok(positions));
        }
        columns.insert(&mut sp).await?;
        crate::developments::apply_all_pg(&mut sp, &developments).await?;
        for (a, outcome) in appends.iter().zip(&outcomes) {
            if let (Some(snapshot), Ok(_)) = (&a.snapshot, outcome) {
                save_snapshot(&mut sp, a, snapshot).await?;
            }
        }
        Ok::<_, sqlx::Error>(outcomes)
    }
    .await;
    match written {
        Ok(outcomes) => {
            sp.commit().await?;
            Ok(outcomes)
        }
        Err(e) => {
            sp.rollback().await?;
            Err(e)
        }
    }
}

/// The columns of events inserted together, as arrays.
struct EventColumns<'a> {
    positions: Vec<i64>,
    types: Vec<&'a str>,
    ids: Vec<&'a str>,
    sequences: Vec<i64>,
    event_types: Vec<&'a str>,
    versions: Vec<&'a str>,
    payloads: Vec<&'a Value>,
    metadata: Vec<&'a Value>,
    recorded: Vec<DateTime<Utc>>,
}

impl<'a> EventColumns<'a> {
    fn with_capacity(n: usize) -> Self {
        Self {
            positions: Vec::with_capacity(n),
            types: Vec::with_capacity(n),
            ids: Vec::with_capacity(n),
            sequences: Vec::with_capacity(n),
            event_types: Vec::with_capacity(n),
            versions: Vec::with_capacity(n),
            payloads: Vec::with_capacity(n),
            metadata: Vec::with_capacity(n),
            recorded: Vec::with_capacity(n),
        }
    }

    fn push(&mut self, position: i64, event: &'a SerializedEvent) {
        self.positions.push(position);
        self.types.push(&event.aggregate_type);
        self.ids.push(&event.aggregate_id);
        self.sequences.push(event.sequence as i64);
        self.event_types.push(&event.event_type);
        self.versions.push(&event.event_version);
        self.payloads.push(&event.payload);
        self.metadata.push(&event.metadata);
        self.recorded.push(recorded_at(event));
    }

    async fn insert(self, conn: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
        if self.positions.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO events (position, aggregate_type, aggregate_id, sequence, event_type,
                event_version, payload, metadata, recorded_at)
             SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::text[],
                $6::text[], $7::jsonb[], $8::jsonb[], $9::timestamptz[])",
        )
        .bind(self.positions)
        .bind(self.types)
        .bind(self.ids)
        .bind(self.sequences)
        .bind(self.event_types)
        .bind(self.versions)
        .bind(self.payloads)
        .bind(self.metadata)
        .bind(self.recorded)
        .execute(conn)
        .await?;
        Ok(())
    }
}

/// When an event was recorded: its metadata's `recorded_at`, or now.
fn recorded_at(event: &SerializedEvent) -> DateTime<Utc> {
    event
        .metadata
        .get("recorded_at")
        .and_then(Value::as_str)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(Utc::now)
}

async fn write_append(
    tx: &mut Transaction<'_, Postgres>,
    append: &Append,
    first_position: i64,
) -> Result<Vec<Position>, StoreError> {
    let first = &append.events[0];
    let contiguous = append.events.iter().enumerate().all(|(i, e)| {
        e.aggregate_id == first.aggregate_id
            && e.aggregate_type == first.aggregate_type
            && e.sequence == first.sequence + i
    });
    if !contiguous {
        return Err(StoreError::Conflict);
    }
    advance_head(
        tx,
        first,
        append.events.last().map_or(0, |e| e.sequence as i64),
    )
    .await?;
    let mut columns = EventColumns::with_capacity(append.events.len());
    let mut positions = Vec::with_capacity(append.events.len());
    for (i, event) in append.events.iter().enumerate() {
        let position = first_position + i as i64;
        columns.push(position, event);
        positions.push(position);
    }
    columns.insert(tx).await?;
    for event in &append.events {
        if event.event_type == "StoryOpened" {
            claim_slug(tx, event).await?;
        }
    }
    for change in &append.developments {
        crate::developments::apply_pg(tx, &first.aggregate_id, change).await?;
    }
    if let Some(snapshot) = &append.snapshot {
        save_snapshot(tx, append, snapshot).await?;
    }
    Ok(positions)
}

/// Saves an append's snapshot, unless a later one is stored.
async fn save_snapshot(
    conn: &mut sqlx::PgConnection,
    append: &Append,
    snapshot: &SnapshotUpdate,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO snapshots (aggregate_type, aggregate_id, last_sequence, snapshot_version, payload)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (aggregate_type, aggregate_id) DO UPDATE SET
            last_sequence = excluded.last_sequence,
            snapshot_version = excluded.snapshot_version,
            payload = excluded.payload
         WHERE excluded.last_sequence > snapshots.last_sequence",
    )
    .bind(&append.events[0].aggregate_type)
    .bind(&snapshot.aggregate_id)
    .bind(append.events.last().map_or(0, |e| e.sequence as i64))
    .bind(snapshot.version as i64)
    .bind(&snapshot.payload)
    .execute(conn)
    .await?;
    Ok(())
}

/// Moves a story's head from the sequence before `first` to `last`, or refuses with
/// [`StoreError::Conflict`] if the story's head is elsewhere: someone else appended first (the
/// caller holds the append lock, so the row cannot change meanwhile).
async fn advance_head(
    tx: &mut Transaction<'_, Postgres>,
    first: &SerializedEvent,
    last: i64,
) -> Result<(), StoreError> {
    let before = first.sequence as i64 - 1;
    let moved = if before == 0 {
        sqlx::query(
            "INSERT INTO story_heads (aggregate_type, aggregate_id, sequence) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
        )
        .bind(&first.aggregate_type)
        .bind(&first.aggregate_id)
        .bind(last)
        .execute(&mut **tx)
        .await?
    } else {
        sqlx::query(
            "UPDATE story_heads SET sequence = $3
             WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence = $4",
        )
        .bind(&first.aggregate_type)
        .bind(&first.aggregate_id)
        .bind(last)
        .bind(before)
        .execute(&mut **tx)
        .await?
    };
    if moved.rows_affected() == 0 {
        return Err(StoreError::Conflict);
    }
    Ok(())
}

/// Fills what a migration left to fill from the events (see `0002_story_developments.sql`), once,
/// under the append lock: of several processes starting together one fills, the others find it
/// done. Nothing is appended meanwhile, so the index is complete when the lock is released.
async fn fill_pending(pool: &PgPool) -> Result<(), StoreError> {
    let pending: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pending_fills)")
        .fetch_one(pool)
        .await?;
    if !pending {
        return Ok(());
    }
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(APPEND_LOCK)
        .execute(&mut *tx)
        .await?;
    let still: Option<String> = sqlx::query_scalar(
        "DELETE FROM pending_fills WHERE name = 'story_developments' RETURNING name",
    )
    .fetch_optional(&mut *tx)
    .await?;
    if still.is_some() {
        let filled = crate::developments::fill_pg(&mut tx).await?;
        tracing::info!(developments = filled, "indexed the logged developments");
    }
    tx.commit().await?;
    Ok(())
}

/// Claims the slug a `StoryOpened` names for its story, in the append's transaction.
async fn claim_slug(
    tx: &mut Transaction<'_, Postgres>,
    event: &SerializedEvent,
) -> Result<(), StoreError> {
    let Some(slug) = event
        .payload
        .get("StoryOpened")
        .and_then(|p| p.get("slug"))
        .and_then(Value::as_str)
    else {
        return Ok(());
    };
    let claimed = sqlx::query(
        "INSERT INTO story_slugs (slug, story_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(slug)
    .bind(&event.aggregate_id)
    .execute(&mut **tx)
    .await?;
    if claimed.rows_affected() == 0 {
        return Err(StoreError::SlugTaken(slug.to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    //! The batch writer against a real PostgreSQL (`NEWSROOM_TEST_DATABASE_URL`; skipped without
    //! it), in a database of its own.
    use super::*;
    use sqlx::Executor;
    use tokio::sync::oneshot;

    struct Scratch {
        admin: PgPool,
        name: String,
        db: Db,
    }

    async fn scratch() -> Option<Scratch> {
        let Ok(url) = std::env::var("NEWSROOM_TEST_DATABASE_URL") else {
            assert!(
                std::env::var_os("NEWSROOM_REQUIRE_SERVICES").is_none(),
                "NEWSROOM_TEST_DATABASE_URL is required"
            );
            eprintln!("skipped: NEWSROOM_TEST_DATABASE_URL is not set");
            return None;
        };
        let admin = PgPool::connect(&url).await.unwrap();
        let name = format!("batch_{}", uuid::Uuid::new_v4().simple());
        admin
            .execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .unwrap();
        let (base, _) = url.rsplit_once('/').unwrap();
        let store = PgStore::connect(&format!("{base}/{name}")).await.unwrap();
        let db = store.db.clone();
        Some(Scratch { admin, name, db })
    }

    impl Scratch {
        async fn drop_database(self) {
            self.db.pool.close().await;
            self.admin
                .execute(format!("DROP DATABASE {} WITH (FORCE)", self.name).as_str())
                .await
                .unwrap();
        }
    }

    fn event(story: &str, sequence: usize, kind: &str) -> SerializedEvent {
        SerializedEvent {
            aggregate_id: story.to_owned(),
            sequence,
            aggregate_type: "story".to_owned(),
            event_type: kind.to_owned(),
            event_version: "1".to_owned(),
            payload: serde_json::json!({ kind: { "n": sequence } }),
            metadata: serde_json::json!({}),
        }
    }

    fn append(events: Vec<SerializedEvent>) -> Append {
        Append {
            events,
            snapshot: None,
            developments: Vec::new(),
            reply: oneshot::channel().0,
        }
    }

    async fn stored(db: &Db) -> Vec<(i64, String, i64)> {
        sqlx::query_as("SELECT position, aggregate_id, sequence FROM events ORDER BY position")
            .fetch_all(&db.pool)
            .await
            .unwrap()
    }

    /// Appends to different stories in one batch are written together: positions in the batch's
    /// order, gap-free; one whose story moved on meanwhile is refused and writes nothing, and
    /// the others are kept. Two appends to one story in a batch are written one after the other.
    #[tokio::test]
    async fn a_batch_of_appends_to_several_stories_is_written_together_and_a_stale_one_alone_is_refused(
    ) {
        let Some(s) = scratch().await else { return };
        let opened: Vec<Append> = ["a", "b", "c"]
            .iter()
            .map(|story| append(vec![event(story, 1, "StoryOpened")]))
            .collect();
        let results = write_batch(&s.db, &opened).await;
        assert!(results.iter().all(Result::is_ok), "{results:?}");

        // Together: a and c go on; b's append expects a head it does not have.
        let together = [
            append(vec![
                event("a", 2, "DevelopmentRecorded"),
                event("a", 3, "DevelopmentRecorded"),
            ]),
            append(vec![event("b", 3, "DevelopmentRecorded")]),
            append(vec![event("c", 2, "DevelopmentRecorded")]),
        ];
        let refs: Vec<&Append> = together.iter().collect();
        let mut conn = s.db.pool.acquire().await.unwrap();
        let mut tx = conn.begin().await.unwrap();
        let written = write_together(&mut tx, &refs, 4).await.unwrap();
        tx.commit().await.unwrap();
        drop(conn);
        assert_eq!(written[0].as_ref().unwrap(), &vec![4, 5]);
        assert!(matches!(written[1], Err(StoreError::Conflict)));
        assert_eq!(written[2].as_ref().unwrap(), &vec![6]);
        let heads: Vec<(String, i64)> =
            sqlx::query_as("SELECT aggregate_id, sequence FROM story_heads ORDER BY aggregate_id")
                .fetch_all(&s.db.pool)
                .await
                .unwrap();
        assert_eq!(heads, [("a".into(), 3), ("b".into(), 1), ("c".into(), 2)]);

        // Through the batch writer: two appends to a (one after the other), one to b, and a
        // stale one to c among them.
        let batch = [
            append(vec![event("a", 4, "DevelopmentRecorded")]),
            append(vec![event("b", 2, "DevelopmentRecorded")]),
            append(vec![event("a", 5, "DevelopmentRecorded")]),
            append(vec![event("c", 2, "DevelopmentRecorded")]),
        ];
        let results = write_batch(&s.db, &batch).await;
        assert!(
            results[0].is_ok() && results[1].is_ok() && results[2].is_ok(),
            "{results:?}"
        );
        assert!(
            matches!(results[3], Err(StoreError::Conflict)),
            "{results:?}"
        );
        let all = stored(&s.db).await;
        let positions: Vec<i64> = all.iter().map(|(p, _, _)| *p).collect();
        assert_eq!(positions, (1..=9).collect::<Vec<_>>(), "gap-free: {all:?}");
        for story in ["a", "b", "c"] {
            let sequences: Vec<i64> = all
                .iter()
                .filter(|(_, id, _)| id == story)
                .map(|(_, _, sequence)| *sequence)
                .collect();
            let expected: Vec<i64> = (1..=sequences.len() as i64).collect();
            assert_eq!(sequences, expected, "{story}'s events in sequence order");
        }
        assert_eq!(all.iter().filter(|(_, id, _)| id == "a").count(), 5);
        s.drop_database().await;
    }
}
