//! The notifier's durable state: subscribers, their endpoints and subscriptions, who was alerted
//! to what, the alert queue and its deliveries, and the checkpoint — all in one database, so
//! that matching a batch of events, queueing its alerts and moving the checkpoint are one
//! transaction: a SQLite file (`notifier.db`) beside an embedded log, or tables in the log's
//! PostgreSQL database, shared by every notifier process (`migrations/postgres`). The same
//! statements run on both (`newsroom_log::sql`). On PostgreSQL subscribers' own writes take
//! one advisory lock (so `subscription_changes` are numbered in commit order, as on SQLite);
//! the matcher's and the digester's writes only share another ([`ALERTS_LOCK`]), so copies
//! matching other partitions never wait for each other, and readers that follow alerts by
//! their sequence read only below [`alert_horizon`]; the dispatcher's writes take no lock at
//! all. The matcher's fold of each story is not stored: it is derived from the log.
//!
//! Tables: `subscribers` (token stored hashed), `endpoints` (webhook, email — `unconfirmed` until
//! its address confirms it —, NATS, Web Push), `email_confirmations` (the digest of each
//! confirmation link, with its expiry), `subscriptions`, `subscription_changes` (every change, in
//! order), `alerted` (who got which development), `alerts`, `deliveries`, `delivery_log` (every
//! state change), `installation_secrets` and the checkpoints.
//!
//! Durability: subscribers' own writes ([`NotifierStore::write`]) commit as the log does (SQLite
//! `synchronous = FULL`); the state derived from the log ([`NotifierStore::write_derived`]: what the
//! matcher queues, the dispatcher's outcomes, digests) commits without waiting for the disk (on
//! PostgreSQL `synchronous_commit = off`): a crash of the process loses nothing, and after a power
//! cut the matcher queues the same alerts again, from the log, under the same ids. WAL checkpoints
//! run in a background task, never in a commit on the alert path. An unreachable PostgreSQL is
//! answered 503. Forgetting a subscriber takes [`ALERTS_LOCK`] exclusively, so no copy queues an
//! alert for them after their rows are gone. Because copies queue alerts side by side, an alert's
//! `seq` may commit after a higher one: whatever follows alerts by `seq` (the alert streams' hub
//! and catch-up, the alert list's pages) reads only up to [`alert_horizon`], the sequence's value
//! once every transaction that held `ALERTS_LOCK` when it was read has ended, so it never skips one.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use newsroom_log::migrate::Renumbering;
use newsroom_log::sql::{Lock, Sql, SqlDb, Texts};
use newsroom_log::{args, DbError, EventLog, SqliteDb, Synchronous};
use rusqlite_migration::{Migrations, M};
use sqlx::PgPool;

use crate::error::NotifyError;

/// The advisory lock subscribers' own writes (and retention) take on PostgreSQL ("newsnoti"):
/// they take turns, so `subscription_changes.seq` is assigned in commit order.
const WRITE_LOCK: i64 = 0x6e65_7773_6e6f_7469;
/// Held shared by every transaction that queues alerts (matcher, digester), before it takes an
/// alert's `seq`, and exclusively by forgetting a subscriber ("newsaler"): a reader following
/// alerts by `seq` waits only for the holders it saw ([`alert_horizon`]).
pub const ALERTS_LOCK: i64 = 0x6e65_7773_616c_6572;
/// Digesters of several copies take turns ("newsdige").
const DIGEST_LOCK: i64 = 0x6e65_7773_6469_6765;
/// How long a reader waits for the alert transactions in flight before it gives up.
const HORIZON_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The notifier's PostgreSQL migrations: recorded in the log's `_sqlx_migrations` table, whose
/// versions (and the views') they do not know; numbered from 2000.
fn pg_migrator() -> sqlx::migrate::Migrator {
    let mut migrator = sqlx::migrate!("./migrations/postgres");
    migrator.set_ignore_missing(true);
    migrator
}

/// The notifier's SQLite files (`migrations/sqlite`), in the order of their names, which are those
/// of `migrations/postgres` (`newsroom_log::migrate`).
const FILES: [&str; 10] = [
    include_str!("../migrations/sqlite/2000_notifier.sql"),
    include_str!("../migrations/sqlite/2001_bounded_alerts.sql"),
    include_str!("../migrations/sqlite/2002_email_confirmations.sql"),
    include_str!("../migrations/sqlite/2003_partitions.sql"),
    include_str!("../migrations/sqlite/2004_web_push.sql"),
    include_str!("../migrations/sqlite/2005_include_related.sql"),
    include_str!("../migrations/sqlite/2006_claim_by_partition.sql"),
    include_str!("../migrations/sqlite/2007_fanouts.sql"),
    include_str!("../migrations/sqlite/2008_deliveries_by_subscriber.sql"),
    include_str!("../migrations/sqlite/2009_fewer_alert_index_entries.sql"),
];

/// The earlier numbering had none of PostgreSQL's steps for copies, and a second file that
/// dropped the matcher's folds (today's first file no longer makes them): a database at its 2
/// holds today's first file, at 5 today's first five, at 7 all of today's.
const RENUMBERING: Renumbering<'static> = Renumbering {
    files: &FILES,
    applied: &[0, 1, 1, 2, 3, 5, 6, 10],
};

fn migrations() -> Migrations<'static> {
    Migrations::new(FILES.iter().map(|sql| M::up(sql)).collect())
}

/// The notifier's database. Cheap to clone.
#[derive(Clone, Debug)]
pub struct NotifierStore {
    db: SqlDb,
    /// Statements run through this store (and its clones), each a round trip on PostgreSQL.
    statements: Arc<AtomicU64>,
}

/// A [`Sql`] that counts the statements run through it.
struct Counted<'a> {
    inner: &'a dyn Sql,
    count: &'a AtomicU64,
}

impl Sql for Counted<'_> {
    fn run(&self, sql: &str, args: &[&dyn newsroom_log::sql::Arg]) -> Result<usize, DbError> {
        self.count.fetch_add(1, Ordering::Relaxed);
        self.inner.run(sql, args)
    }

    fn rows(
        &self,
        sql: &str,
        args: &[&dyn newsroom_log::sql::Arg],
    ) -> Result<Vec<newsroom_log::sql::Row>, DbError> {
        self.count.fetch_add(1, Ordering::Relaxed);
        self.inner.rows(sql, args)
    }

    fn is_postgres(&self) -> bool {
        self.inner.is_postgres()
    }
}

impl NotifierStore {
    /// Subscribers' writes must survive power loss like the log: `synchronous = FULL`; the
    /// derived state the matcher and dispatcher write uses [`Self::write_derived`].
    pub fn open(path: &Path) -> Result<Self, NotifyError> {
        Ok(Self {
            db: SqlDb::Sqlite(SqliteDb::open(
                path,
                &migrations(),
                Some(&RENUMBERING),
                Synchronous::Full,
                8,
            )?),
            statements: Arc::default(),
        })
    }

    /// The notifier's tables in PostgreSQL (the log's database, reached through `pool`),
    /// brought up to date.
    pub async fn open_postgres(pool: PgPool) -> Result<Self, NotifyError> {
        pg_migrator().run(&pool).await?;
        Ok(Self {
            db: SqlDb::Postgres {
                pool,
                lock: WRITE_LOCK,
            },
            statements: Arc::default(),
        })
    }

    /// The notifier's store beside `log`: in its PostgreSQL database, or in the SQLite file at
    /// `path` when the log is embedded.
    pub async fn beside(log: &EventLog, path: &Path) -> Result<Self, NotifyError> {
        match log {
            EventLog::Postgres(store) => Self::open_postgres(store.pool().clone()).await,
            EventLog::Sqlite(_) => Self::open(path),
        }
    }

    /// Whether the store is in PostgreSQL (shared by every notifier process).
    pub fn is_shared(&self) -> bool {
        matches!(self.db, SqlDb::Postgres { .. })
    }

    /// How many statements this store (and its clones) has run: on PostgreSQL each is a round
    /// trip.
    pub fn statements(&self) -> u64 {
        self.statements.load(Ordering::Relaxed)
    }

    /// The PostgreSQL pool of a shared store.
    pub fn pool(&self) -> Option<&PgPool> {
        match &self.db {
            SqlDb::Postgres { pool, .. } => Some(pool),
            SqlDb::Sqlite(_) => None,
        }
    }

    /// See [`SqliteDb::checkpoint_in_background`]; the notifier runs it, so that the alert path
    /// never pays for a checkpoint.
    pub fn checkpoint_in_background(&self, every: std::time::Duration) -> Result<(), NotifyError> {
        Ok(self.db.checkpoint_in_background(every)?)
    }

    pub async fn read<T, F>(&self, f: F) -> Result<T, NotifyError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Sql) -> Result<T, NotifyError> + Send + 'static,
    {
        let count = self.statements.clone();
        self.db
            .read(move |c| {
                f(&Counted {
                    inner: c,
                    count: &count,
                })
            })
            .await
    }

    pub async fn write<T, F>(&self, f: F) -> Result<T, NotifyError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Sql) -> Result<T, NotifyError> + Send + 'static,
    {
        let count = self.statements.clone();
        self.db
            .write(false, move |c| {
                f(&Counted {
                    inner: c,
                    count: &count,
                })
            })
            .await
    }

    /// A write of state derived from the log (alerts queued, delivery outcomes, digests): its
    /// commit does not wait for the disk. A process crash loses nothing (WAL); a power cut may
    /// roll back the last such commits with the checkpoint, and the matcher queues the same
    /// alerts again with the same ids (see `queue::alert_id`), so receivers still see each
    /// `webhook-id` once however often it is sent. Subscribers' own writes use [`Self::write`].
    pub async fn write_derived<T, F>(&self, f: F) -> Result<T, NotifyError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Sql) -> Result<T, NotifyError> + Send + 'static,
    {
        let count = self.statements.clone();
        self.db
            .write(true, move |c| {
                f(&Counted {
                    inner: c,
                    count: &count,
                })
            })
            .await
    }

    /// The matcher's write of a batch (derived state): on PostgreSQL it shares
    /// [`ALERTS_LOCK`] with the other copies' matchers, so they never wait for each other;
    /// what keeps two copies from matching one partition twice is the partition's checkpoint,
    /// locked and checked inside the transaction.
    pub async fn write_alerts<T, F>(&self, f: F) -> Result<T, NotifyError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Sql) -> Result<T, NotifyError> + Send + 'static,
    {
        let count = self.statements.clone();
        self.db
            .write_locked(vec![Lock::Shared(ALERTS_LOCK)], true, move |c| {
                f(&Counted {
                    inner: c,
                    count: &count,
                })
            })
            .await
    }

    /// The digester's write: digesters take turns among themselves, and share
    /// [`ALERTS_LOCK`] with the matchers.
    pub async fn write_digests<T, F>(&self, f: F) -> Result<T, NotifyError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Sql) -> Result<T, NotifyError> + Send + 'static,
    {
        let count = self.statements.clone();
        self.db
            .write_locked(
                vec![Lock::Exclusive(DIGEST_LOCK), Lock::Shared(ALERTS_LOCK)],
                true,
                move |c| {
                    f(&Counted {
                        inner: c,
                        count: &count,
                    })
                },
            )
            .await
    }

    /// The dispatcher's writes (leases taken and given back, outcomes): rows of its own
    /// partitions' deliveries, taken under conditions checked in the statements themselves;
    /// no lock.
    pub async fn write_deliveries<T, F>(&self, f: F) -> Result<T, NotifyError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Sql) -> Result<T, NotifyError> + Send + 'static,
    {
        let count = self.statements.clone();
        self.db
            .write_locked(Vec::new(), true, move |c| {
                f(&Counted {
                    inner: c,
                    count: &count,
                })
            })
            .await
    }
}

/// The newest alert `seq` below which no alert can still appear: on SQLite (one writer) the
/// newest alert; on PostgreSQL, where copies queue alerts side by side and a `seq` taken early
/// may commit late, the sequence's value as it stood once every transaction that held
/// [`ALERTS_LOCK`] then has ended (waited for, at most [`HORIZON_WAIT`]). Readers that follow
/// alerts by `seq` (alert streams, the alert list) read only up to it, so none is skipped.
pub fn alert_horizon(c: &dyn Sql) -> Result<i64, NotifyError> {
    if !c.is_postgres() {
        return Ok(
            c.query_row("SELECT COALESCE(MAX(seq), 0) FROM alerts", args![], |r| {
                r.get(0)
            })?,
        );
    }
    let taken: i64 = c.query_row(
        "SELECT COALESCE(pg_sequence_last_value(pg_get_serial_sequence('alerts', 'seq')::regclass), 0)",
        args![],
        |r| r.get(0),
    )?;
    // Every transaction that took a `seq` up to `taken` held the lock before it did; wait for
    // those still holding it.
    let (high, low) = (ALERTS_LOCK >> 32, ALERTS_LOCK & 0xffff_ffff);
    // An empty `only` asks for every holder.
    let holders = |only: &Texts| -> Result<Vec<String>, NotifyError> {
        Ok(c.statement(
            "SELECT l.virtualtransaction FROM pg_locks l
             WHERE l.locktype = 'advisory' AND l.granted
               AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
               AND l.classid::int8 = ?1 AND l.objid::int8 = ?2 AND l.objsubid = 1
               AND (cardinality(?3::text[]) = 0 OR l.virtualtransaction = ANY(?3::text[]))",
        )?
        .query_map(args![high, low, only], |r| r.get(0))?
        .collect::<Result<_, _>>()?)
    };
    let mut waiting = holders(&Texts::default())?;
    let started = std::time::Instant::now();
    let mut pause = std::time::Duration::from_millis(1);
    while !waiting.is_empty() {
        if started.elapsed() > HORIZON_WAIT {
            return Err(NotifyError::AlertsInFlight(HORIZON_WAIT));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(std::time::Duration::from_millis(20));
        waiting = holders(&Texts(waiting.into_iter().map(Some).collect()))?;
    }
    Ok(taken)
}

/// How far the matcher has matched every partition: the lowest partition checkpoint (or the
/// one checkpoint of an embedded queue).
pub fn matched_through(c: &dyn Sql) -> Result<i64, NotifyError> {
    Ok(c.query_row(
        "SELECT COALESCE(
            (SELECT MIN(position) FROM checkpoints WHERE name LIKE 'matcher/%'),
            (SELECT position FROM checkpoints WHERE name = 'matcher'),
            0)",
        args![],
        |r| r.get(0),
    )?)
}

/// Times are stored as RFC 3339 with microseconds, UTC: they sort as text.
pub fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

pub fn parse_ts(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

/// Notes that a subscription or subscriber changed, for every matcher's index. A subscription's
/// change names its subscriber too (so that forgetting the subscriber finds it); the index then
/// reloads that subscription only.
pub fn record_change(
    tx: &dyn Sql,
    subscription: Option<&str>,
    subscriber: Option<&str>,
) -> Result<(), NotifyError> {
    tx.statement(
        "INSERT INTO subscription_changes (subscription_id, subscriber_id) VALUES (?1, ?2)",
    )?
    .execute(args![subscription, subscriber])?;
    Ok(())
}

#[cfg(test)]
mod migration_tests {
    use super::*;

    /// Every SQLite migration applies, in order, to an empty database.
    #[test]
    fn the_migrations_apply_to_an_empty_database() {
        migrations()
            .validate()
            .expect("the notifier's SQLite migrations apply");
    }

    #[test]
    fn the_files_have_namesakes_and_apply_in_the_order_of_their_names() {
        newsroom_log::migrate::check_files(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")),
            &FILES,
        )
        .unwrap();
    }

    /// A database made by any prefix of the earlier numbering (the first file with the
    /// matcher's folds, a second dropping them, then today's files but PostgreSQL's steps for
    /// copies) opens onto today's schema and numbering.
    #[test]
    fn a_database_of_the_earlier_numbering_opens_onto_today_s_schema() {
        let first = format!(
            "{}\nCREATE TABLE notify_stories (id TEXT PRIMARY KEY, position INTEGER NOT NULL, \
             doc TEXT NOT NULL);",
            FILES[0]
        );
        let earlier = [
            &first,
            "DROP TABLE notify_stories;",
            FILES[1],
            FILES[2],
            FILES[4],
            FILES[5],
            FILES[9],
        ];
        newsroom_log::migrate::check_renumbering(&earlier, &migrations(), &RENUMBERING).unwrap();
    }
}
