//! How long alerts are kept, and what goes when a subscriber asks to be forgotten.
//!
//! Alerts, their deliveries and each delivery's log are pruned once older than the retention
//! period, by a background task in bounded batches (one short transaction each, so the matcher
//! and the dispatcher never wait behind a long purge). A delivery still pending — waiting for a
//! retry, or leased by a dispatcher that is sending it — keeps its alert until it is settled,
//! and an alert still collecting into a digest is kept until the digest is made.
//!
//! `alerted` (who was alerted to which development) is **not** pruned with the alerts: it is
//! how a correction or retraction reaches everyone alerted to the original, and newsroom
//! practice is that a correction goes to all of them however late it comes. Its rows are two
//! ids each; they go when their subscriber is forgotten ([`forget_subscriber`]).
//!
//! The statements are written once for SQLite and PostgreSQL (`newsroom_log::sql`).
//!
//! The period is `NEWSROOM_ALERT_RETENTION_DAYS` (30 by default; 0 keeps everything), pruned
//! [`PRUNE_BATCH`] rows at a time. [`forget_subscriber`] is what `DELETE /v1/subscribers/{id}` and
//! the reader's "forget me" do: every row of the subscriber goes, and what is left is one change per
//! subscription they had, naming only its random id, so that every matcher's index drops it.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use newsroom_log::args;
use newsroom_log::sql::Sql;

use crate::clock::Clock;
use crate::error::NotifyError;
use crate::store::{record_change, ts, NotifierStore};

/// Alerts pruned in one transaction.
pub const PRUNE_BATCH: usize = 500;

/// Prunes alerts older than a retention period.
#[derive(Clone)]
pub struct Retention {
    store: NotifierStore,
    clock: Arc<dyn Clock>,
    keep: chrono::Duration,
    batch: usize,
}

impl std::fmt::Debug for Retention {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Retention")
            .field("keep", &self.keep)
            .finish_non_exhaustive()
    }
}

impl Retention {
    /// Keeps alerts for `keep`, pruning at most `batch` alerts per transaction.
    pub fn new(
        store: NotifierStore,
        clock: Arc<dyn Clock>,
        keep: chrono::Duration,
        batch: usize,
    ) -> Self {
        Self {
            store,
            clock,
            keep,
            batch: batch.max(1),
        }
    }

    /// Prunes one batch of expired alerts; returns how many alerts went.
    pub async fn prune_batch(&self) -> Result<usize, NotifyError> {
        let Some(cutoff) = self.clock.now().checked_sub_signed(self.keep) else {
            // A retention longer than the calendar: nothing has expired.
            return Ok(0);
        };
        let cutoff = ts(cutoff);
        let batch = self.batch as i64;
        let pruned = self
            .store
            .write_derived(move |tx| prune_expired(tx, &cutoff, batch))
            .await?;
        metrics::counter!("newsroom_alerts_pruned_total").increment(pruned as u64);
        Ok(pruned)
    }

    /// Prunes every expired alert, a batch at a time; returns how many went.
    pub async fn prune(&self) -> Result<usize, NotifyError> {
        let mut total = 0;
        loop {
            let n = self.prune_batch().await?;
            total += n;
            if n < self.batch {
                return Ok(total);
            }
            // Others' writes go between two batches.
            tokio::task::yield_now().await;
        }
    }

    /// Prunes every `every` until `shutdown` completes. A failure is logged and tried again
    /// next time: nothing depends on an alert being gone at once.
    pub async fn run_until_stopped(
        self,
        every: Duration,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), NotifyError> {
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => return Ok(()),
                pruned = self.prune() => match pruned {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(alerts = n, "expired alerts pruned"),
                    Err(e) => tracing::warn!(error = %e, "pruning expired alerts failed; trying again later"),
                },
            }
            tokio::select! {
                _ = &mut shutdown => return Ok(()),
                _ = tokio::time::sleep(every) => {}
            }
        }
    }
}

/// Deletes up to `batch` alerts created before `cutoff`, with their deliveries and delivery
/// logs, skipping those with a delivery still pending and digest alerts not yet collected.
pub fn prune_expired(tx: &dyn Sql, cutoff: &str, batch: i64) -> Result<usize, NotifyError> {
    let expired: Vec<(i64, String)> = tx
        .statement(
            "SELECT a.seq, a.id FROM alerts a
             WHERE a.created_at < ?1 AND a.mode <> 'digest'
               AND NOT EXISTS (SELECT 1 FROM deliveries d
                               WHERE d.alert_id = a.id AND d.status = 'pending')
             ORDER BY a.created_at LIMIT ?2",
        )?
        .query_map(args![cutoff, batch], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (seq, id) in &expired {
        delete_alert(tx, *seq, id)?;
    }
    Ok(expired.len())
}

/// Deletes one alert, its deliveries and their logs.
fn delete_alert(tx: &dyn Sql, seq: i64, id: &str) -> Result<(), NotifyError> {
    tx.statement(
        "DELETE FROM delivery_log WHERE delivery_seq IN
            (SELECT seq FROM deliveries WHERE alert_id = ?1)",
    )?
    .execute(args![id])?;
    tx.statement("DELETE FROM deliveries WHERE alert_id = ?1")?
        .execute(args![id])?;
    tx.statement("DELETE FROM alerts WHERE seq = ?1")?
        .execute(args![seq])?;
    Ok(())
}

/// Removes everything the notifier holds of subscriber `id`: the subscriber, their endpoints,
/// subscriptions, alerts (digests included), deliveries and their logs, who they were alerted
/// to, and the changes their subscriptions left for the matchers' index. What is left in their
/// place is one change per subscription they had, naming only the subscription's random id, so
/// that every matcher's index drops it. Returns whether they existed.
pub fn forget_subscriber(tx: &dyn Sql, id: &str) -> Result<bool, NotifyError> {
    if tx.is_postgres() {
        // No matcher or digester of any copy is queueing alerts meanwhile (they hold this lock
        // shared): none can queue one for this subscriber after their rows are gone.
        tx.execute(
            "SELECT pg_advisory_xact_lock(?1)",
            args![crate::store::ALERTS_LOCK],
        )?;
    }
    let subscriptions: Vec<String> = tx
        .statement("SELECT id FROM subscriptions WHERE subscriber_id = ?1")?
        .query_map(args![id], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    tx.statement(
        "DELETE FROM delivery_log WHERE delivery_seq IN
            (SELECT d.seq FROM deliveries d JOIN endpoints e ON e.id = d.endpoint_id
             WHERE e.subscriber_id = ?1)",
    )?
    .execute(args![id])?;
    tx.statement(
        "DELETE FROM deliveries WHERE endpoint_id IN
            (SELECT id FROM endpoints WHERE subscriber_id = ?1)",
    )?
    .execute(args![id])?;
    tx.statement("DELETE FROM alerts WHERE subscriber_id = ?1")?
        .execute(args![id])?;
    tx.statement("DELETE FROM alerted WHERE subscriber_id = ?1")?
        .execute(args![id])?;
    tx.statement("DELETE FROM subscription_changes WHERE subscriber_id = ?1")?
        .execute(args![id])?;
    let mut earlier =
        tx.statement("DELETE FROM subscription_changes WHERE subscription_id = ?1")?;
    for s in &subscriptions {
        earlier.execute(args![s])?;
    }
    tx.statement("DELETE FROM subscriptions WHERE subscriber_id = ?1")?
        .execute(args![id])?;
    tx.statement(
        "DELETE FROM email_confirmations WHERE endpoint_id IN
            (SELECT id FROM endpoints WHERE subscriber_id = ?1)",
    )?
    .execute(args![id])?;
    tx.statement("DELETE FROM endpoints WHERE subscriber_id = ?1")?
        .execute(args![id])?;
    let gone = tx
        .statement("DELETE FROM subscribers WHERE id = ?1")?
        .execute(args![id])?;
    for s in &subscriptions {
        // The index reloads the subscription, finds nothing and drops it.
        record_change(tx, Some(s), None)?;
    }
    Ok(gone > 0)
}
