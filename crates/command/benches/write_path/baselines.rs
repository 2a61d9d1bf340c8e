//! Sections 1 and 2, the baselines: event rows inserted one per transaction through raw rusqlite,
//! then through sqlx's SQLite driver.

use std::path::Path;
use std::time::Instant;

use newsroom_log::Synchronous;
use newsroom_testkit::Res;

use crate::rows::RowGen;
use crate::{mode_name, Config, BUSY_TIMEOUT, EVENTS_DDL, INSERT};

pub(crate) fn baseline_rusqlite(path: &Path, sync: Synchronous, cfg: &Config) -> Res<f64> {
    use rusqlite::{params, Connection, TransactionBehavior};
    let mut conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", mode_name(sync))?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.execute_batch(EVENTS_DDL)?;
    let mut rows = RowGen::new(cfg.stories);

    let started = Instant::now();
    for i in 0..cfg.events {
        let (id, seq, payload, metadata, recorded_at) = rows.row(i);
        // IMMEDIATE, like the store's writer.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.prepare_cached(INSERT)?.execute(params![
            "story",
            id,
            seq,
            "DevelopmentRecorded",
            "1",
            payload,
            metadata,
            recorded_at
        ])?;
        tx.commit()?;
    }
    let elapsed = started.elapsed();

    let count: i64 = conn.query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))?;
    assert_eq!(count as usize, cfg.events, "baseline A lost rows");
    Ok(cfg.events as f64 / elapsed.as_secs_f64())
}

pub(crate) async fn baseline_sqlx(path: &Path, sync: Synchronous, cfg: &Config) -> Res<f64> {
    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
    use sqlx::{Connection, Executor};
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(match sync {
            Synchronous::Full => SqliteSynchronous::Full,
            Synchronous::Normal => SqliteSynchronous::Normal,
        })
        .busy_timeout(BUSY_TIMEOUT)
        .foreign_keys(true);
    let mut conn = sqlx::SqliteConnection::connect_with(&options).await?;
    conn.execute(EVENTS_DDL).await?;
    let mut rows = RowGen::new(cfg.stories);

    let started = Instant::now();
    for i in 0..cfg.events {
        let (id, seq, payload, metadata, recorded_at) = rows.row(i);
        let id = id.to_owned();
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query(INSERT)
            .bind("story")
            .bind(id)
            .bind(seq)
            .bind("DevelopmentRecorded")
            .bind("1")
            .bind(payload)
            .bind(metadata)
            .bind(recorded_at)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    }
    let elapsed = started.elapsed();

    let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM events")
        .fetch_one(&mut conn)
        .await?;
    assert_eq!(count as usize, cfg.events, "baseline B lost rows");
    conn.close().await?;
    Ok(cfg.events as f64 / elapsed.as_secs_f64())
}
