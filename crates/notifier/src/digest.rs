//! Digests: alerts a subscriber chose to receive every N minutes wait in the queue (mode
//! `digest`, due at the end of their window); when a window ends, they become one digest alert
//! per subscriber, grouped by story, delivered like any other alert.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use newsroom_log::args;
use newsroom_log::sql::Sql;
use serde_json::{json, Value};
use tokio::sync::watch;

use crate::clock::Clock;
use crate::error::NotifyError;
use crate::queue::{alert_id, queue_deliveries, Links};
use crate::store::{ts, NotifierStore};
use crate::streams::{AlertHub, QueuedAlert};

/// Turns due digest alerts into digests.
pub struct Digester {
    store: NotifierStore,
    clock: Arc<dyn Clock>,
    links: Links,
    queued: Arc<watch::Sender<u64>>,
    waiting: Arc<watch::Sender<u64>>,
    /// Where the digests it makes go to their subscribers' open streams.
    hub: Option<AlertHub>,
}

impl std::fmt::Debug for Digester {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Digester")
            .field("store", &self.store)
            .finish()
    }
}

impl Digester {
    /// `queued` (alert streams) and `waiting` (the dispatcher) are told whenever digests were
    /// queued.
    pub fn new(
        store: NotifierStore,
        clock: Arc<dyn Clock>,
        links: Links,
        queued: Arc<watch::Sender<u64>>,
        waiting: Arc<watch::Sender<u64>>,
    ) -> Self {
        Self {
            store,
            clock,
            links,
            queued,
            waiting,
            hub: None,
        }
    }

    /// Hands the digests it makes to `hub`, right after their commit.
    pub fn publish_to(mut self, hub: AlertHub) -> Self {
        self.hub = Some(hub);
        self
    }

    /// Sends every digest whose window has ended; returns how many.
    pub async fn step(&self) -> Result<usize, NotifyError> {
        let now = self.clock.now();
        let links = self.links.clone();
        let made = self
            .store
            .write_digests(move |tx| make_digests(tx, now, &links))
            .await?;
        if let Some(hub) = &self.hub {
            hub.publish(&made);
        }
        let made = made.len();
        if made > 0 {
            self.queued.send_modify(|n| *n += made as u64);
            self.waiting.send_modify(|n| *n += 1);
        }
        Ok(made)
    }

    /// When the next waiting digest is due, if one is waiting.
    pub async fn next_due(&self) -> Result<Option<DateTime<Utc>>, NotifyError> {
        let due: Option<String> = self
            .store
            .read(|tx| {
                Ok(tx
                    .statement("SELECT min(digest_due_at) FROM alerts WHERE mode = 'digest'")?
                    .query_row(args![], |r| r.get(0))?)
            })
            .await?;
        Ok(due.and_then(|d| {
            DateTime::parse_from_rfc3339(&d)
                .ok()
                .map(|t| t.with_timezone(&Utc))
        }))
    }

    /// Makes the due digests, then sleeps until the next one is due (at most `every`, which is
    /// how soon a digest window opened meanwhile is noticed), so a digest goes out when its window
    /// ends, not up to a tick later.
    pub async fn run_until_stopped(
        self,
        every: Duration,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), NotifyError> {
        tokio::pin!(shutdown);
        loop {
            if let Err(e) = self.step().await {
                tracing::error!(error = %e, "digests failed; retrying");
            }
            let next = match self.next_due().await {
                Ok(next) => next,
                Err(e) => {
                    tracing::error!(error = %e, "reading when the next digest is due failed");
                    None
                }
            };
            tokio::select! {
                _ = &mut shutdown => return Ok(()),
                _ = tokio::time::sleep(pause(self.clock.now(), next, every)) => {},
            }
        }
    }
}

/// How long the digester sleeps at `now` when the next digest is due at `next`: until then, at
/// most `every` (and a moment at least, so a failing read cannot spin).
fn pause(now: DateTime<Utc>, next: Option<DateTime<Utc>>, every: Duration) -> Duration {
    let until = match next {
        // (Overdue: at once.)
        Some(t) => (t - now).to_std().unwrap_or(Duration::ZERO),
        None => every,
    };
    until.clamp(Duration::from_millis(10), every)
}

/// Makes the due digests; returns them as queued.
fn make_digests(
    tx: &dyn Sql,
    now: DateTime<Utc>,
    links: &Links,
) -> Result<Vec<QueuedAlert>, NotifyError> {
    let mut made = Vec::new();
    let subscribers: Vec<String> = tx
        .statement(
            "SELECT DISTINCT subscriber_id FROM alerts WHERE mode = 'digest' AND digest_due_at <= ?1",
        )?
        .query_map(args![ts(now)], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for subscriber in &subscribers {
        let rows: Vec<(i64, String, String, String)> = tx
            .statement(
                "SELECT seq, id, story_id, payload FROM alerts
                 WHERE subscriber_id = ?1 AND mode = 'digest' AND digest_due_at <= ?2 ORDER BY seq",
            )?
            .query_map(args![subscriber, ts(now)], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?
            .collect::<Result<_, _>>()?;
        // Grouped by story, in the order the stories first appeared.
        let mut order: Vec<String> = Vec::new();
        let mut stories: BTreeMap<String, (Value, Vec<Value>)> = BTreeMap::new();
        for (_, _, story, payload) in &rows {
            let alert: Value = serde_json::from_str(payload)?;
            let entry = stories.entry(story.clone()).or_insert_with(|| {
                order.push(story.clone());
                (alert["data"]["story"].clone(), Vec::new())
            });
            let mut development = alert["data"]["development"].clone();
            development["alert_type"] = alert["type"].clone();
            development["link"] = alert["data"]["links"]["development"].clone();
            entry.1.push(development);
        }
        let unsubscribe: String = tx
            .statement("SELECT unsubscribe_token FROM subscribers WHERE id = ?1")?
            .query_row(args![subscriber], |r| r.get(0))?;
        let grouped: Vec<Value> = order
            .iter()
            .filter_map(|s| stories.remove(s))
            .map(|(story, developments)| json!({"story": story, "developments": developments}))
            .collect();
        let payload = json!({
            "type": "digest",
            "timestamp": ts(now),
            "data": {
                "count": rows.len(),
                "stories": grouped,
                "links": {"unsubscribe": links.unsubscribe(&unsubscribe)},
            },
        });
        // Named by what it collects, so a digest made again is the same message.
        let collected: Vec<&str> = rows.iter().map(|r| r.1.as_str()).collect();
        let id = alert_id(subscriber, &format!("digest:{}", collected.join(",")));
        let first_story = rows.first().map(|r| r.2.clone()).unwrap_or_default();
        let payload = serde_json::to_string(&payload)?;
        let seq: i64 = tx
            .statement(
                "INSERT INTO alerts (id, subscriber_id, position, story_id, type, payload, mode, created_at)
             VALUES (?1, ?2, NULL, ?3, 'digest', ?4, 'immediate', ?5)
             RETURNING seq",
            )?
            .query_row(
                args![id, subscriber, first_story, &payload, ts(now)],
                |r| r.get(0),
            )?;
        made.push(QueuedAlert {
            subscriber: subscriber.clone(),
            seq,
            kind: "digest".into(),
            payload,
        });
        let mut done = tx.statement("UPDATE alerts SET mode = 'digested' WHERE seq = ?1")?;
        for (seq, ..) in &rows {
            done.execute(args![seq])?;
        }
        // Digests have no story order to keep; filed under a key of their own.
        queue_deliveries(tx, &id, subscriber, &format!("digest:{subscriber}"), now)?;
    }
    Ok(made)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digester_wakes_when_the_next_digest_is_due_not_a_tick_later() {
        let now = DateTime::parse_from_rfc3339("2026-12-06T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let every = Duration::from_secs(30);
        let in_ = |ms: i64| Some(now + chrono::Duration::milliseconds(ms));
        assert_eq!(pause(now, in_(1_500), every), Duration::from_millis(1_500));
        assert_eq!(
            pause(now, in_(90_000), every),
            every,
            "a window opened meanwhile"
        );
        assert_eq!(pause(now, None, every), every);
        assert_eq!(
            pause(now, in_(-5_000), every),
            Duration::from_millis(10),
            "overdue"
        );
    }
}
