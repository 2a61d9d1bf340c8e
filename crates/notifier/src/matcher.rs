//! The matcher: follows the global feed from its checkpoint, keeps its own fold of each story,
//! decides which events are alertable (a development published, a published development
//! corrected or retracted), finds the recipients and queues one alert per (subscriber, event) with
//! a delivery per endpoint — in one transaction with the checkpoint.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use newsroom_command::EventLog;
use newsroom_domain::{StoryEvent, Urgency};
use newsroom_projection::{decode, DevelopmentView, LoggedEvent, StoryView};
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Value};
use tokio::sync::watch;
use uuid::Uuid;

use crate::clock::Clock;
use crate::index::{Delivery, SubscriptionIndex, Target};
use crate::store::{ts, NotifierStore, NotifyError};

/// Most events matched in one transaction.
pub const BATCH: usize = 500;
/// Alert bodies are cut to this many characters so that an alert stays well under 20 KB.
pub const BODY_LIMIT: usize = 4_000;
const CHECKPOINT: &str = "matcher";

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertKind {
    Published,
    Correction,
    Retraction,
}

/// The links every alert carries.
#[derive(Debug, Clone)]
pub struct Links {
    /// The public base URL of the reader pages and API, without a trailing slash.
    pub base: String,
}

impl Links {
    fn story(&self, slug: &str) -> String {
        format!("{}/stories/{slug}", self.base)
    }
    pub fn unsubscribe(&self, token: &str) -> String {
        format!("{}/v1/unsubscribe/{token}", self.base)
    }
}

/// The alert's JSON without the per-subscriber links.
pub fn alert_payload(
    kind: AlertKind,
    view: &StoryView,
    d: &DevelopmentView,
    at: DateTime<Utc>,
    links: &Links,
) -> Value {
    let mut development = newsroom_projection::api::public_development(d);
    if development.body.chars().count() > BODY_LIMIT {
        development.body = development
            .body
            .chars()
            .take(BODY_LIMIT)
            .collect::<String>()
            + "…";
    }
    let alert_type = match kind {
        AlertKind::Published => format!("story.{}", d.kind.as_str()),
        AlertKind::Correction => "story.correction".to_owned(),
        AlertKind::Retraction => "story.retraction".to_owned(),
    };
    let mut data = json!({
        "story": {"id": view.id, "slug": view.slug, "headline": view.headline, "tags": view.tags},
        "development": development,
        "links": {
            "story": links.story(&view.slug),
            "development": format!("{}#development-{}", links.story(&view.slug), d.id),
        },
    });
    match kind {
        AlertKind::Correction => {
            data["correction"] = json!(d.reader_corrections().last());
        }
        AlertKind::Retraction => {
            data["retraction"] = json!({"reason": d.retraction.as_ref().map(|r| r.reason.clone())});
        }
        AlertKind::Published => {}
    }
    json!({"type": alert_type, "timestamp": ts(at), "data": data})
}

/// When a digest of `minutes` collecting at `now` is due: the end of the current window.
pub fn digest_due(now: DateTime<Utc>, minutes: u32) -> DateTime<Utc> {
    let window = i64::from(minutes.max(1)) * 60;
    let end = (now.timestamp().div_euclid(window) + 1) * window;
    DateTime::from_timestamp(end, 0).unwrap_or(now)
}

/// Follows the feed and queues alerts.
pub struct Matcher {
    source: EventLog,
    store: NotifierStore,
    index: Arc<Mutex<SubscriptionIndex>>,
    clock: Arc<dyn Clock>,
    links: Links,
    queued: Arc<watch::Sender<u64>>,
}

impl std::fmt::Debug for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Matcher")
            .field("store", &self.store)
            .finish()
    }
}

impl Matcher {
    pub fn new(
        source: EventLog,
        store: NotifierStore,
        clock: Arc<dyn Clock>,
        links: Links,
    ) -> Self {
        Self {
            source,
            store,
            index: Arc::default(),
            clock,
            links,
            queued: Arc::new(watch::channel(0).0),
        }
    }

    /// Ticks whenever alerts were queued: the dispatcher and alert streams wait on it.
    pub fn queued(&self) -> watch::Receiver<u64> {
        self.queued.subscribe()
    }

    /// The sender of that signal, for others that queue deliveries (the digester).
    pub fn queue_sender(&self) -> Arc<watch::Sender<u64>> {
        self.queued.clone()
    }

    pub async fn checkpoint(&self) -> Result<i64, NotifyError> {
        self.store.read(checkpoint).await
    }

    /// Matches one batch; returns how many events it read.
    pub async fn step(&mut self) -> Result<usize, NotifyError> {
        let after = self.checkpoint().await?;
        let feed = self.source.read_feed(after, BATCH).await?;
        if feed.is_empty() {
            return Ok(0);
        }
        let events = feed.iter().map(decode).collect::<Result<Vec<_>, _>>()?;
        let index = self.index.clone();
        let links = self.links.clone();
        let now = self.clock.now();
        let queued = self
            .store
            .write(move |tx| {
                let mut index = index.lock().expect("index lock");
                index.refresh(tx)?;
                match_batch(tx, &events, &index, &links, now)
            })
            .await?;
        metrics::counter!("newsroom_alerts_queued_total").increment(queued as u64);
        if queued > 0 {
            self.queued.send_modify(|n| *n += queued as u64);
        }
        Ok(feed.len())
    }

    /// Matches everything committed so far.
    pub async fn catch_up(&mut self) -> Result<(), NotifyError> {
        while self.step().await? == BATCH {}
        Ok(())
    }

    pub async fn run_until_stopped(
        mut self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), NotifyError> {
        let mut wake = self.source.subscribe();
        tokio::pin!(shutdown);
        loop {
            wake.borrow_and_update();
            let read = tokio::select! {
                _ = &mut shutdown => return Ok(()),
                read = self.step() => read?,
            };
            if read < BATCH {
                tokio::select! {
                    _ = &mut shutdown => return Ok(()),
                    _ = wake.changed() => {},
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {},
                }
            }
        }
    }
}

fn checkpoint(c: &Connection) -> Result<i64, NotifyError> {
    Ok(
        c.prepare_cached("SELECT position FROM checkpoints WHERE name = ?1")?
            .query_row([CHECKPOINT], |r| r.get(0))
            .optional()?
            .unwrap_or(0),
    )
}

fn load_view(tx: &Connection, id: Uuid) -> Result<Option<StoryView>, NotifyError> {
    let doc: Option<String> = tx
        .prepare_cached("SELECT doc FROM notify_stories WHERE id = ?1")?
        .query_row([id.to_string()], |r| r.get(0))
        .optional()?;
    Ok(doc.map(|d| serde_json::from_str(&d)).transpose()?)
}

/// What an event means for subscribers, judged on the story right after it.
fn alertable(e: &LoggedEvent, view: &StoryView) -> Option<(AlertKind, Uuid)> {
    let visible = |id: Uuid| {
        view.development(id)
            .filter(|d| d.is_visible())
            .map(|d| d.id)
    };
    match &e.event {
        StoryEvent::DevelopmentRecorded { development, .. } => {
            visible(development.id.as_uuid()).map(|id| (AlertKind::Published, id))
        }
        StoryEvent::DevelopmentApproved { development } => {
            visible(development.as_uuid()).map(|id| (AlertKind::Published, id))
        }
        StoryEvent::DevelopmentCorrected { development, .. } => view
            .development(development.as_uuid())
            // Only a correction readers are told about (made after publication) is alerted.
            .filter(|d| d.is_visible() && d.reader_corrections().any(|c| c.position == e.position))
            .map(|d| (AlertKind::Correction, d.id)),
        StoryEvent::DevelopmentRetracted { development, .. } => {
            visible(development.as_uuid()).map(|id| (AlertKind::Retraction, id))
        }
        _ => None,
    }
}

fn match_batch(
    tx: &Connection,
    events: &[LoggedEvent],
    index: &SubscriptionIndex,
    links: &Links,
    now: DateTime<Utc>,
) -> Result<usize, NotifyError> {
    let after = checkpoint(tx)?;
    let mut views: HashMap<Uuid, StoryView> = HashMap::new();
    let mut queued = 0;
    for e in events.iter().filter(|e| e.position > after) {
        let view = match views.entry(e.story_id) {
            Entry::Occupied(slot) => slot.into_mut(),
            Entry::Vacant(slot) => {
                let loaded = match load_view(tx, e.story_id)? {
                    Some(v) => Some(v),
                    None => StoryView::open(e),
                };
                let Some(v) = loaded else { continue };
                slot.insert(v)
            }
        };
        view.apply(e);
        let Some((kind, development)) = alertable(e, view) else {
            continue;
        };
        let d = view
            .development(development)
            .expect("alertable developments exist");
        let target = Target {
            story: view.id,
            tags: &view.tags,
            kind: d.kind,
            actor_keys: d.actors.iter().map(|a| a.key()).collect(),
            urgency: d.urgency,
        };
        // One alert per subscriber, immediate if any of their matching subscriptions is.
        let mut recipients: BTreeMap<String, Delivery> = BTreeMap::new();
        for s in index.matching(&target) {
            let mode = if d.urgency == Urgency::Flash {
                Delivery::Immediate
            } else {
                s.delivery
            };
            recipients
                .entry(s.subscriber_id.clone())
                .and_modify(|m| *m = faster(*m, mode))
                .or_insert(mode);
        }
        if kind != AlertKind::Published {
            // Everyone alerted to the original hears of its correction or retraction.
            let mut stmt = tx.prepare_cached(
                "SELECT a.subscriber_id FROM alerted a JOIN subscribers s ON s.id = a.subscriber_id
                 WHERE a.development_id = ?1 AND s.status = 'active'",
            )?;
            let earlier: Vec<String> = stmt
                .query_map([development.to_string()], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            for subscriber in earlier {
                recipients.entry(subscriber).or_insert(Delivery::Immediate);
            }
        }
        if recipients.is_empty() {
            continue;
        }
        let payload = alert_payload(kind, view, d, e.recorded_at, links);
        for (subscriber, mode) in recipients {
            queued += queue_alert(tx, &subscriber, e, development, &payload, mode, links, now)?;
        }
    }
    for view in views.values() {
        tx.prepare_cached(
            "INSERT INTO notify_stories (id, position, doc) VALUES (?1, ?2, ?3)
             ON CONFLICT (id) DO UPDATE SET position = excluded.position, doc = excluded.doc",
        )?
        .execute(params![
            view.id.to_string(),
            view.position,
            serde_json::to_string(view)?
        ])?;
    }
    if let Some(last) = events.last().filter(|e| e.position > after) {
        tx.prepare_cached(
            "INSERT INTO checkpoints (name, position) VALUES (?1, ?2)
             ON CONFLICT (name) DO UPDATE SET position = excluded.position",
        )?
        .execute(params![CHECKPOINT, last.position])?;
    }
    Ok(queued)
}

fn faster(a: Delivery, b: Delivery) -> Delivery {
    match (a, b) {
        (Delivery::Immediate, _) | (_, Delivery::Immediate) => Delivery::Immediate,
        (Delivery::Digest { minutes: x }, Delivery::Digest { minutes: y }) => {
            Delivery::Digest { minutes: x.min(y) }
        }
    }
}

/// A fresh alert id, in the `msg_` form webhook receivers expect.
pub fn alert_id() -> String {
    format!("msg_{}", Uuid::now_v7().simple())
}

#[allow(clippy::too_many_arguments)]
fn queue_alert(
    tx: &Connection,
    subscriber: &str,
    e: &LoggedEvent,
    development: Uuid,
    payload: &Value,
    mode: Delivery,
    links: &Links,
    now: DateTime<Utc>,
) -> Result<usize, NotifyError> {
    let unsubscribe: String = tx
        .prepare_cached("SELECT unsubscribe_token FROM subscribers WHERE id = ?1")?
        .query_row([subscriber], |r| r.get(0))?;
    let mut payload = payload.clone();
    payload["data"]["links"]["unsubscribe"] = json!(links.unsubscribe(&unsubscribe));
    let id = alert_id();
    let (mode_text, due) = match mode {
        Delivery::Immediate => ("immediate", None),
        Delivery::Digest { minutes } => ("digest", Some(ts(digest_due(now, minutes)))),
    };
    let inserted = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO alerts (id, subscriber_id, position, story_id, development_id,
                type, payload, mode, digest_due_at, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )?
        .execute(params![
            id,
            subscriber,
            e.position,
            e.story_id.to_string(),
            development.to_string(),
            payload["type"].as_str(),
            serde_json::to_string(&payload)?,
            mode_text,
            due,
            ts(now),
        ])?;
    if inserted == 0 {
        return Ok(0);
    }
    tx.prepare_cached(
        "INSERT OR IGNORE INTO alerted (development_id, subscriber_id) VALUES (?1, ?2)",
    )?
    .execute(params![development.to_string(), subscriber])?;
    if mode == Delivery::Immediate {
        queue_deliveries(tx, &id, subscriber, &e.story_id.to_string(), now)?;
    }
    Ok(1)
}

/// One pending delivery of alert `alert` per active endpoint of `subscriber`.
pub fn queue_deliveries(
    tx: &Connection,
    alert: &str,
    subscriber: &str,
    story: &str,
    now: DateTime<Utc>,
) -> Result<(), NotifyError> {
    tx.prepare_cached(
        "INSERT OR IGNORE INTO deliveries (alert_id, endpoint_id, story_id, status, next_attempt_at,
            created_at, updated_at)
         SELECT ?1, id, ?3, 'pending', ?4, ?4, ?4 FROM endpoints
         WHERE subscriber_id = ?2 AND status = 'active'",
    )?
    .execute(params![alert, subscriber, story, ts(now)])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn digests_are_due_at_the_end_of_their_window() {
        let at = Utc.with_ymd_and_hms(2026, 11, 3, 12, 7, 30).unwrap();
        assert_eq!(
            digest_due(at, 5),
            Utc.with_ymd_and_hms(2026, 11, 3, 12, 10, 0).unwrap()
        );
        assert_eq!(
            digest_due(at, 60),
            Utc.with_ymd_and_hms(2026, 11, 3, 13, 0, 0).unwrap()
        );
    }
}
