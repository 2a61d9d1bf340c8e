//! The matcher: follows the global feed from its checkpoint, reads the story right after each
//! event that may alert someone from the views' history (`newsroom_projection::history`, once
//! the views hold the event), decides which events are alertable (a development published, a
//! published development corrected or retracted), finds the recipients and queues one alert per
//! (subscriber, event) with a delivery per endpoint — in one transaction with the checkpoint —
//! then hands the immediate deliveries to the dispatcher.
//!
//! The checkpoint is kept in memory between batches and checked inside each transaction; what the
//! matcher keeps (the checkpoint, the hand-off) is dropped whenever a batch fails or the stored
//! checkpoint is not the one it expects. For each event that may alert someone it waits until the
//! views hold it (the `stories` view at the code's shape and at or past its position: the projector
//! of this process or of another sharing the views); a batch that waits longer than `VIEWS_WAIT`
//! fails and is tried again, and `/healthz` says so.
//!
//! Alertable: a development published (recorded without review, approved, or released from an
//! embargo or undo window by `EmbargoLifted { published: true }`), a published development
//! corrected or retracted, and a relation between stories (`StoryLinked`: one `story.related` alert,
//! at once, to each subscriber of either story whose subscription asked for `include_related`,
//! naming the other story as it is now; it concerns no development and is never in `alerted`).
//! Never alerted: pending, rejected or embargoed developments, edits before publication, and a
//! development undone in its window. Recipients: the matching subscriptions, plus everyone alerted
//! to the original for a correction or retraction. A batch queues one alert per (subscriber, event)
//! — its id [`alert_id`], derived from both, never drawn — and one delivery per active endpoint,
//! and moves the checkpoint, in one transaction. Immediate deliveries are inserted already leased,
//! each with the earlier pending deliveries of its (endpoint, story), and handed to the dispatcher
//! right after the commit. `flash` developments, and a subscriber with an immediate subscription,
//! skip the digest.
//!
//! With a shared queue the matcher matches only the events of the partitions its copy owns
//! (`crate::partitions`), each with a checkpoint of its own (`matcher/NN`): it reads from the lowest
//! of them (from the log while a partition it took over is behind the others, from its stream once
//! they are level); the batch's transaction locks those rows first (`FOR UPDATE`, in name order)
//! and checks they are where it left them, else it reads them again. Only deliveries to endpoints
//! of its own partitions are leased and handed over; the other owners' dispatchers are woken at the
//! commit (`pg_notify` on `partitions::WAKE_CHANNEL`; their poll finds the work if a notification is
//! lost). On PostgreSQL a batch costs a constant number of statements whatever its alerts (each
//! written by one statement over arrays, `unnest … WITH ORDINALITY … ORDER BY`, so `seq` follows
//! the batch's order); SQLite, one local writer, runs the same work row by row. An event alerting
//! many subscribers (from [`Matcher::chunked_from`] on) is not queued by the matcher itself but
//! written as chunks by subscriber partition, which every copy takes (`crate::fanout`). On SQLite
//! such a batch is queued that many recipients per transaction, each part handed over as it
//! commits, the checkpoint moved by the last: the first alerts go out while the rest are written
//! (a crash between parts matches the batch again; alerts already queued are not queued twice).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use newsroom_domain::{StoryEvent, Urgency};
use newsroom_log::args;
use newsroom_log::consumer::{FollowerStatus, JetStreamFeed, Pacing};
use newsroom_log::sql::{Ints, OptionalRow, Sql, Texts};
use newsroom_log::EventLog;
use newsroom_projection::history::{stories_after, views_reached};
use newsroom_projection::ViewStore;
use newsroom_readmodel::{decode, DevelopmentView, LoggedEvent, SeenRelation, StoryView};
use serde_json::{json, Value};
use tokio::sync::watch;
use uuid::Uuid;

use crate::clock::Clock;
use crate::dispatch::{Handoff, Job};
use crate::error::NotifyError;
use crate::index::{Delivery, SubscriptionIndex, Target};
use crate::partitions::{checkpoint_name, story_partition, Ownership};
use crate::store::{matched_through, ts, NotifierStore};
use crate::streams::{AlertHub, QueuedAlert};

/// Most events matched in one transaction.
pub const BATCH: usize = 500;
/// Alert bodies are cut to this many characters so that an alert stays well under 20 KB.
pub const BODY_LIMIT: usize = 4_000;
const CHECKPOINT: &str = "matcher";
/// How long a wait for new events lasts before the loop looks around again.
const POLL: Duration = Duration::from_millis(500);
/// How long a batch waits for the views to hold its events before the step fails (and is
/// tried again).
const VIEWS_WAIT: Duration = Duration::from_secs(10);

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
    /// The single-use link that confirms an email address.
    pub fn confirm_email(&self, token: &str) -> String {
        format!("{}{}", self.base, confirmation_path(token))
    }
}

/// The path of the link that confirms an email address.
pub fn confirmation_path(token: &str) -> String {
    format!("/v1/email-confirmations/{token}")
}

/// The alert's JSON without the per-subscriber links.
pub fn alert_payload(
    kind: AlertKind,
    view: &StoryView,
    d: &DevelopmentView,
    at: DateTime<Utc>,
    links: &Links,
) -> Value {
    let mut development = newsroom_readmodel::public_development(d);
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
///
/// It keeps no story in memory: for each event that may alert someone it reads the story as it
/// stood right after the event from the views' history (waiting until the views hold the
/// event), so what a batch costs is what its events change, whatever the stories' length. What
/// must survive a crash — alerts, who was alerted to what, deliveries, the checkpoint — is
/// written in one transaction per batch.
pub struct Matcher {
    source: EventLog,
    store: NotifierStore,
    index: Arc<Mutex<SubscriptionIndex>>,
    clock: Arc<dyn Clock>,
    links: Links,
    /// Where what it queued goes after the commit.
    outlets: Outlets,
    /// The views, whose history tells what the story looked like right after each event.
    views: ViewStore,
    /// The checkpoints of the partitions it owns, as of the last batch it committed; `None`
    /// until read (and whenever what it owns changes).
    after: Option<BTreeMap<u32, i64>>,
    /// Which partitions of the work this process owns (all of it with an embedded queue).
    ownership: Ownership,
    /// In scale-out mode, the events come through JetStream (the log still fills gaps).
    stream: Option<JetStreamFeed>,
    /// How its last step went, for `/healthz`.
    status: FollowerStatus,
    /// From how many recipients an event's alerts are queued in chunks: with a shared queue,
    /// by subscriber partition (`crate::fanout`); on SQLite, this many per transaction
    /// ([`Batch::InParts`]). `None`: [`crate::fanout::CHUNK_FROM`] on SQLite, never chunked
    /// on PostgreSQL.
    chunk_from: Option<usize>,
}

impl std::fmt::Debug for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Matcher")
            .field("store", &self.store)
            .field("after", &self.after)
            .finish()
    }
}

/// Where what a transaction queued goes once it has committed.
#[derive(Clone)]
pub(crate) struct Outlets {
    /// The dispatcher, given the immediate deliveries, leased for this long.
    handoff: Option<(Handoff, chrono::Duration)>,
    /// The subscribers' open alert streams.
    hub: Option<AlertHub>,
    /// Ticks when alerts were queued.
    queued: Arc<watch::Sender<u64>>,
    /// Ticks when deliveries were queued that nobody was handed (the dispatcher claims them).
    waiting: Arc<watch::Sender<u64>>,
}

impl Outlets {
    /// Until when deliveries queued `now` are leased to this process's dispatcher, if it has one.
    pub(crate) fn lease_from(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.handoff.as_ref().map(|(_, lease)| now + *lease)
    }

    /// Tells everyone what a committed transaction queued: `queued` alerts, the immediate ones
    /// `published`, the deliveries `jobs` handed to the dispatcher, and whether some were left
    /// for a claim.
    pub(crate) fn announce(
        &self,
        queued: usize,
        published: &[QueuedAlert],
        jobs: Vec<Job>,
        unhanded: bool,
    ) {
        if !jobs.is_empty() {
            if let Some((handoff, _)) = &self.handoff {
                // If the dispatcher is gone, the leases run out and a claim takes them.
                let _ = handoff.send(jobs);
            }
        }
        if let Some(hub) = &self.hub {
            hub.publish(published);
        }
        metrics::counter!("newsroom_alerts_queued_total").increment(queued as u64);
        if queued > 0 {
            self.queued.send_modify(|n| *n += queued as u64);
        }
        if unhanded {
            self.waiting.send_modify(|n| *n += 1);
        }
    }
}

/// What a batch's transaction did.
enum Batch {
    Committed {
        queued: usize,
        /// Where each partition's checkpoint stands now.
        checkpoints: BTreeMap<u32, i64>,
        /// The immediate alerts queued, for their subscribers' open streams.
        published: Vec<QueuedAlert>,
        jobs: Vec<Job>,
        unhanded: bool,
    },
    /// SQLite, a big fan-out (more recipients than the matcher's `chunk_from`): matched,
    /// nothing written yet, the plan cut into `parts` of `chunk_from` recipients. Each part is
    /// queued in a transaction of its own and handed over as it commits (the first alerts go
    /// out while the rest are written); the last part moves the checkpoints. A crash between
    /// parts leaves the checkpoints where they were: the batch is matched again, and the
    /// alerts already queued are not queued twice.
    InParts {
        parts: Vec<Vec<Planned>>,
        moved: Vec<(String, i64)>,
        checkpoints: BTreeMap<u32, i64>,
    },
    /// Someone else moved the checkpoint: the matcher's memory is stale.
    Moved,
}

impl Matcher {
    pub fn new(
        source: EventLog,
        store: NotifierStore,
        views: ViewStore,
        clock: Arc<dyn Clock>,
        links: Links,
    ) -> Self {
        Self {
            source,
            store,
            index: Arc::default(),
            clock,
            links,
            outlets: Outlets {
                handoff: None,
                hub: None,
                queued: Arc::new(watch::channel(0).0),
                waiting: Arc::new(watch::channel(0).0),
            },
            views,
            after: None,
            ownership: Ownership::single(),
            stream: None,
            status: FollowerStatus::default(),
            chunk_from: None,
        }
    }

    /// Queues the alerts of an event that has at least `from` recipients in chunks: with a
    /// shared queue by subscriber partition, for every copy's [`crate::fanout::Fanout`] to
    /// take; on SQLite `from` per transaction, each handed over as it commits.
    pub fn chunked_from(mut self, from: usize) -> Self {
        self.chunk_from = Some(from.max(1));
        self
    }

    /// Matches only the partitions `ownership` says this process owns (a shared queue).
    pub fn partitioned(mut self, ownership: Ownership) -> Self {
        self.ownership = ownership;
        self.after = None;
        self
    }

    /// Where the matcher stands: the lowest checkpoint of the partitions it owns.
    fn position(&self) -> Option<i64> {
        self.after.as_ref().and_then(|m| m.values().min().copied())
    }

    /// Hands the immediate alerts it queues to `hub`, right after their commit.
    pub fn publish_to(mut self, hub: AlertHub) -> Self {
        self.outlets.hub = Some(hub);
        self
    }

    /// Takes events from a durable JetStream consumer instead of reading the log; each batch is
    /// acknowledged once the transaction that matched it has committed.
    /// How its last step went: shared with `/healthz`.
    pub fn status(&self) -> FollowerStatus {
        self.status.clone()
    }

    pub fn with_stream(mut self, stream: JetStreamFeed) -> Self {
        self.stream = Some(stream);
        self
    }

    /// Hands every immediate delivery it queues to a dispatcher, leased for `lease`, right
    /// after the transaction that queued it commits.
    pub fn hand_over_to(&mut self, handoff: Handoff, lease: Duration) {
        self.outlets.handoff = Some((
            handoff,
            chrono::Duration::from_std(lease).unwrap_or_default(),
        ));
    }

    /// Where what it queues goes after the commit, for others that queue alerts the same way
    /// (the fan-out's taker).
    pub(crate) fn outlets(&self) -> Outlets {
        self.outlets.clone()
    }

    /// Ticks whenever alerts were queued: alert streams wait on it.
    pub fn queued(&self) -> watch::Receiver<u64> {
        self.outlets.queued.subscribe()
    }

    /// The sender of that signal, for others that queue alerts (the digester).
    pub fn queue_sender(&self) -> Arc<watch::Sender<u64>> {
        self.outlets.queued.clone()
    }

    /// Ticks when deliveries were queued without being handed over: the dispatcher claims them.
    pub fn waiting_sender(&self) -> Arc<watch::Sender<u64>> {
        self.outlets.waiting.clone()
    }

    /// How far every partition has been matched.
    pub async fn checkpoint(&self) -> Result<i64, NotifyError> {
        self.store.read(matched_through).await
    }

    /// Matches one batch; returns how many events it read.
    pub async fn step(&mut self) -> Result<usize, NotifyError> {
        match self.try_step().await {
            Ok(read) => Ok(read),
            Err(e) => {
                // Read the checkpoint again before the next batch.
                self.after = None;
                Err(e)
            }
        }
    }

    async fn try_step(&mut self) -> Result<usize, NotifyError> {
        let owned = self.ownership.current();
        if owned.is_empty() {
            // Other copies own every partition (or the leases are being taken): wait.
            self.after = None;
            let mut ownership = self.ownership.clone();
            tokio::select! {
                _ = ownership.changed() => {},
                _ = tokio::time::sleep(POLL) => {},
            }
            return Ok(0);
        }
        let shared = self.ownership.is_shared();
        let expected = match &self.after {
            Some(after) if after.keys().eq(owned.iter()) => after.clone(),
            _ => {
                let names: Vec<String> = owned.iter().map(|p| name(shared, *p)).collect();
                let stored = self
                    .store
                    .read(move |c| read_checkpoints(c, &names, false))
                    .await?;
                let at: BTreeMap<u32, i64> = owned
                    .iter()
                    .map(|p| (*p, stored.get(&name(shared, *p)).copied().unwrap_or(0)))
                    .collect();
                self.after = Some(at.clone());
                at
            }
        };
        // Read from the partition furthest behind; each partition skips what it has matched.
        let after = expected.values().min().copied().unwrap_or(0);
        // Partitions taken over from a copy that was behind are caught up from the log: the
        // stream has handed this copy those events already, and brings only newer ones.
        let level = expected.values().max().copied().unwrap_or(0) == after;
        let feed = match &mut self.stream {
            Some(stream) if level => stream.next_batch(after, BATCH, POLL).await?,
            _ => self.source.read_feed(after, BATCH).await?,
        };
        if feed.is_empty() {
            if let Some(stream) = &mut self.stream {
                // Redelivered events already matched.
                stream.commit().await?;
            }
            return Ok(0);
        }
        let events = feed.iter().map(decode).collect::<Result<Vec<_>, _>>()?;
        metrics::counter!("newsroom_matcher_batches_total").increment(1);
        let ours: Vec<&LoggedEvent> = events
            .iter()
            .filter(|e| is_ours(shared, &expected, e))
            .collect();
        let views = self.stories_after(&ours).await?;
        let lines = self.related_lines(&ours).await?;
        let index = self.index.clone();
        let links = self.links.clone();
        let now = self.clock.now();
        let lease = self.outlets.lease_from(now);
        let chunk_from = self.chunk_from;
        let owns = owned.clone();
        let batch = self
            .store
            .write_alerts(move |tx| {
                let mut index = index.lock().expect("index lock");
                index.refresh(tx)?;
                match_batch(
                    tx,
                    &events,
                    &expected,
                    shared,
                    &views,
                    &lines,
                    &index,
                    &Queueing {
                        links: &links,
                        now,
                        lease,
                        owned: &owned,
                    },
                    chunk_from,
                )
            })
            .await?;
        let (queued, checkpoints, published, jobs, unhanded) = match batch {
            Batch::Committed {
                queued,
                checkpoints,
                published,
                jobs,
                unhanded,
            } => (queued, checkpoints, published, jobs, unhanded),
            Batch::InParts {
                parts,
                moved,
                checkpoints,
            } => {
                self.queue_in_parts(parts, moved, now, lease, owns).await?;
                (0, checkpoints, Vec::new(), Vec::new(), false)
            }
            Batch::Moved => {
                self.after = None;
                return Ok(feed.len());
            }
        };
        if let Some(stream) = &mut self.stream {
            stream.commit().await?;
        }
        self.after = Some(checkpoints);
        self.outlets.announce(queued, &published, jobs, unhanded);
        Ok(feed.len())
    }

    /// Queues a matched batch's `parts` a transaction each, in order, announcing each part
    /// once it has committed; the last part moves the checkpoints (`moved`). See
    /// [`Batch::InParts`].
    async fn queue_in_parts(
        &self,
        parts: Vec<Vec<Planned>>,
        moved: Vec<(String, i64)>,
        now: DateTime<Utc>,
        lease: Option<DateTime<Utc>>,
        owned: Arc<Vec<u32>>,
    ) -> Result<(), NotifyError> {
        let count = parts.len();
        let mut moved = Some(moved);
        for (i, part) in parts.into_iter().enumerate() {
            let moved = if i + 1 == count { moved.take() } else { None };
            let links = self.links.clone();
            let owned = owned.clone();
            let (queued, published, jobs, unhanded) = self
                .store
                .write_alerts(move |tx| {
                    let q = Queueing {
                        links: &links,
                        now,
                        lease,
                        owned: &owned,
                    };
                    let mut published = Vec::new();
                    let (queued, mut jobs, unhanded) =
                        queue_one_by_one(tx, &part, &q, &mut published)?;
                    if let Some(moved) = moved {
                        write_checkpoints(tx, &moved)?;
                    }
                    if lease.is_none() {
                        jobs.clear();
                    }
                    Ok((queued, published, jobs, unhanded))
                })
                .await?;
            metrics::counter!("newsroom_alert_parts_total").increment(1);
            self.outlets.announce(queued, &published, jobs, unhanded);
        }
        Ok(())
    }

    /// The story right after each of `events` that may alert someone, by the event's
    /// position, from the views' history once the views hold those events.
    async fn stories_after(
        &self,
        events: &[&LoggedEvent],
    ) -> Result<HashMap<i64, StoryView>, NotifyError> {
        let asked: Vec<&LoggedEvent> = events.iter().copied().filter(|e| may_alert(e)).collect();
        let Some(last) = asked.last().map(|e| e.position) else {
            return Ok(HashMap::new());
        };
        // The projector (in this process, or another one sharing the views) is usually there
        // already; wait for it, a little longer each time.
        let started = std::time::Instant::now();
        let mut pause = Duration::from_millis(1);
        while !views_reached(&self.views, last).await? {
            if started.elapsed() > VIEWS_WAIT {
                return Err(NotifyError::ViewsBehind(last));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(50));
        }
        let found = stories_after(&self.source, &self.views, &asked).await?;
        let mut views = HashMap::with_capacity(asked.len());
        for (e, view) in asked.iter().zip(found) {
            match view {
                Some(view) => {
                    views.insert(e.position, view);
                }
                None => {
                    tracing::warn!(
                        position = e.position,
                        "the views hold nothing of this event"
                    )
                }
            }
        }
        Ok(views)
    }

    /// The id, slug and headline, as they are now, of each story the batch's events relate
    /// others to.
    async fn related_lines(
        &self,
        events: &[&LoggedEvent],
    ) -> Result<HashMap<Uuid, (Uuid, String, String)>, NotifyError> {
        let mut lines = HashMap::new();
        for e in events {
            let StoryEvent::StoryLinked { story, .. } = &e.event else {
                continue;
            };
            let id = story.as_uuid();
            if lines.contains_key(&id) {
                continue;
            }
            if let Some((slug, headline)) = self.views.story_line(id).await? {
                lines.insert(id, (id, slug, headline));
            }
        }
        Ok(lines)
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
        let mut pacing = Pacing::new(
            &self.source,
            self.stream.is_some(),
            POLL,
            self.status.clone(),
        );
        tokio::pin!(shutdown);
        loop {
            pacing.arm();
            let step = tokio::select! {
                _ = &mut shutdown => break,
                step = self.step() => step,
            };
            if !pacing
                .after("matching", step, self.position(), BATCH, shutdown.as_mut())
                .await
            {
                break;
            }
        }
        // Hand back what was taken and not matched, for redelivery.
        if let Some(stream) = &mut self.stream {
            stream.give_back().await?;
        }
        Ok(())
    }
}

/// Events that may alert someone; only their stories must be folded before the batch.
fn may_alert(e: &LoggedEvent) -> bool {
    matches!(
        e.event,
        StoryEvent::DevelopmentRecorded { .. }
            | StoryEvent::DevelopmentApproved { .. }
            | StoryEvent::EmbargoLifted { .. }
            | StoryEvent::DevelopmentCorrected { .. }
            | StoryEvent::DevelopmentRetracted { .. }
            | StoryEvent::StoryLinked { .. }
    )
}

/// The alert's JSON, without the per-subscriber links, telling those who follow `followed` that
/// an editor related `other` to it (`relation` as seen from the followed story).
pub fn related_payload(
    followed: (&Uuid, &str, &str),
    other: (&Uuid, &str, &str),
    relation: SeenRelation,
    label: &str,
    at: DateTime<Utc>,
    links: &Links,
) -> Value {
    let (id, slug, headline) = followed;
    let (other_id, other_slug, other_headline) = other;
    json!({
        "type": "story.related",
        "timestamp": ts(at),
        "data": {
            "story": {"id": id, "slug": slug, "headline": headline},
            "related": {
                "id": other_id, "slug": other_slug, "headline": other_headline,
                "relation": relation.as_str(), "label": label,
            },
            "links": {"story": links.story(slug), "related": links.story(other_slug)},
        },
    })
}

/// The name of partition `partition`'s checkpoint: the one `matcher` checkpoint of an embedded
/// queue, `matcher/NN` of a shared one.
fn name(shared: bool, partition: u32) -> String {
    if shared {
        checkpoint_name(partition)
    } else {
        CHECKPOINT.to_owned()
    }
}

/// Whether `e` is this matcher's to match: its story's partition is owned, and that partition
/// has not matched it yet.
fn is_ours(shared: bool, expected: &BTreeMap<u32, i64>, e: &LoggedEvent) -> bool {
    let partition = if shared {
        story_partition(&e.story_id.to_string())
    } else {
        0
    };
    expected.get(&partition).is_some_and(|at| e.position > *at)
}

/// The stored checkpoints named (missing ones are absent); `lock`: locked until the
/// transaction ends (PostgreSQL; in name order, so that two copies never wait for each other
/// in a circle).
fn read_checkpoints(
    c: &dyn Sql,
    names: &[String],
    lock: bool,
) -> Result<BTreeMap<String, i64>, NotifyError> {
    let mut found = BTreeMap::new();
    if c.is_postgres() {
        let sql = if lock {
            "SELECT name, position FROM checkpoints WHERE name = ANY(?1::text[])
             ORDER BY name FOR UPDATE"
        } else {
            "SELECT name, position FROM checkpoints WHERE name = ANY(?1::text[])"
        };
        let names: Texts = names.iter().cloned().collect();
        for row in c.statement(sql)?.query_map(args![names], |r| {
            Ok((r.get::<String>(0)?, r.get::<i64>(1)?))
        })? {
            let (name, position) = row?;
            found.insert(name, position);
        }
        return Ok(found);
    }
    for name in names {
        let position: Option<i64> = c
            .statement("SELECT position FROM checkpoints WHERE name = ?1")?
            .query_row(args![name], |r| r.get(0))
            .optional()?;
        if let Some(position) = position {
            found.insert(name.clone(), position);
        }
    }
    Ok(found)
}

fn write_checkpoints(tx: &dyn Sql, moved: &[(String, i64)]) -> Result<(), NotifyError> {
    if moved.is_empty() {
        return Ok(());
    }
    if tx.is_postgres() {
        let names: Texts = moved.iter().map(|(n, _)| n.clone()).collect();
        let positions: Ints = moved.iter().map(|(_, p)| *p).collect();
        tx.statement(
            "INSERT INTO checkpoints (name, position)
             SELECT * FROM unnest(?1::text[], ?2::int8[])
             ON CONFLICT (name) DO UPDATE SET position = excluded.position",
        )?
        .execute(args![names, positions])?;
        return Ok(());
    }
    for (name, position) in moved {
        tx.statement(
            "INSERT INTO checkpoints (name, position) VALUES (?1, ?2)
             ON CONFLICT (name) DO UPDATE SET position = excluded.position",
        )?
        .execute(args![name, position])?;
    }
    Ok(())
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
        // An embargoed development is alerted once, when its embargo is lifted and it is
        // published (its recording and an approval under the embargo leave it invisible).
        StoryEvent::DevelopmentApproved { development }
        | StoryEvent::EmbargoLifted { development, .. } => {
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

/// What queueing a batch's alerts needs besides the batch.
pub(crate) struct Queueing<'a> {
    pub(crate) links: &'a Links,
    pub(crate) now: DateTime<Utc>,
    /// Immediate deliveries are handed to this process's dispatcher, leased until then.
    pub(crate) lease: Option<DateTime<Utc>>,
    /// The partitions this process owns: only deliveries to their endpoints are handed over
    /// (the others are claimed by their owners).
    pub(crate) owned: &'a [u32],
}

/// One alertable event of a batch and who hears of it.
pub(crate) struct Planned {
    /// The event's position in the log.
    pub(crate) position: i64,
    pub(crate) story: Uuid,
    /// The development it is about (none for a relation between stories).
    pub(crate) development: Option<Uuid>,
    pub(crate) payload: Value,
    pub(crate) recipients: BTreeMap<String, Delivery>,
}

/// Plans the alerts of a relation recorded on `view`'s story to another (`other`: its id, slug
/// and headline; `None` if the views hold no such story, when nothing is alerted): those who
/// follow either story and asked for related stories hear of the other, once each, at once.
fn plan_related(
    plan: &mut Vec<Planned>,
    e: &LoggedEvent,
    view: &StoryView,
    other: Option<&(Uuid, String, String)>,
    relation: newsroom_domain::Relation,
    index: &SubscriptionIndex,
    q: &Queueing<'_>,
) {
    let Some((other_id, other_slug, other_headline)) = other else {
        return;
    };
    let this = (&view.id, view.slug.as_str(), view.headline.as_str());
    let that = (other_id, other_slug.as_str(), other_headline.as_str());
    let mut told: Vec<String> = Vec::new();
    for (followed, shown, forward) in [(this, that, true), (that, this, false)] {
        let recipients: BTreeMap<String, Delivery> = index
            .following_related(*followed.0)
            .into_iter()
            .map(|s| s.subscriber_id.clone())
            .filter(|s| !told.contains(s))
            .map(|s| (s, Delivery::Immediate))
            .collect();
        if recipients.is_empty() {
            continue;
        }
        told.extend(recipients.keys().cloned());
        let seen = SeenRelation::of(relation, forward);
        plan.push(Planned {
            position: e.position,
            story: e.story_id,
            development: None,
            payload: related_payload(
                followed,
                shown,
                seen,
                relation.label(forward),
                e.recorded_at,
                q.links,
            ),
            recipients,
        });
    }
}

#[allow(clippy::too_many_arguments)]
fn match_batch(
    tx: &dyn Sql,
    events: &[LoggedEvent],
    expected: &BTreeMap<u32, i64>,
    shared: bool,
    views: &HashMap<i64, StoryView>,
    lines: &HashMap<Uuid, (Uuid, String, String)>,
    index: &SubscriptionIndex,
    q: &Queueing<'_>,
    chunk_from: Option<usize>,
) -> Result<Batch, NotifyError> {
    // Lock this matcher's partitions and check nobody moved them since it read them.
    let names: Vec<String> = expected.keys().map(|p| name(shared, *p)).collect();
    let stored = read_checkpoints(tx, &names, true)?;
    for (p, at) in expected {
        if stored.get(&name(shared, *p)).copied().unwrap_or(0) != *at {
            return Ok(Batch::Moved);
        }
    }
    // What each event is and who hears of it, from the index...
    let mut plan: Vec<Planned> = Vec::new();
    for e in events.iter().filter(|e| is_ours(shared, expected, e)) {
        // Only events that may alert someone were looked up.
        let Some(view) = views.get(&e.position) else {
            continue;
        };
        if let StoryEvent::StoryLinked { story, relation } = &e.event {
            plan_related(
                &mut plan,
                e,
                view,
                lines.get(&story.as_uuid()),
                *relation,
                index,
                q,
            );
            continue;
        }
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
        plan.push(Planned {
            position: e.position,
            story: e.story_id,
            development: Some(development),
            payload: alert_payload(kind, view, d, e.recorded_at, q.links),
            recipients,
        });
    }
    // ... and everyone alerted to the original hears of its correction or retraction: those
    // alerted before this batch, and those alerted by an earlier event of it.
    let amended: Vec<String> = plan
        .iter()
        .filter(|p| {
            p.payload["type"] == "story.correction" || p.payload["type"] == "story.retraction"
        })
        .filter_map(|p| Some(p.development?.to_string()))
        .collect();
    let mut alerted = alerted_to(tx, &amended)?;
    for p in &mut plan {
        // (A relation between stories is no development anyone is alerted to.)
        let Some(key) = p.development.map(|d| d.to_string()) else {
            continue;
        };
        if amended.contains(&key) {
            for subscriber in alerted.get(&key).into_iter().flatten() {
                p.recipients
                    .entry(subscriber.clone())
                    .or_insert(Delivery::Immediate);
            }
        }
        // Only a development a later event of this batch amends needs its recipients kept
        // (once each: a set, not a list searched per recipient, which made a fan-out to
        // 100,000 cost seconds of CPU per 10,000).
        if amended.contains(&key) {
            alerted
                .entry(key)
                .or_default()
                .extend(p.recipients.keys().cloned());
        }
    }
    // A big fan-out, and whatever follows it in its story, goes out in chunks by subscriber
    // partition, which every copy turns into alerts side by side (`crate::fanout`).
    if let Some(from) = chunk_from.filter(|_| shared && tx.is_postgres()) {
        let (direct, chunked) = crate::fanout::split(tx, std::mem::take(&mut plan), from)?;
        let held = crate::fanout::write_chunks(tx, &chunked, q.now)?;
        if held > 0 {
            tracing::debug!(recipients = held, "alerts queued in chunks");
        }
        plan = direct;
    }
    plan.retain(|p| !p.recipients.is_empty());
    let last = events.last().map_or(0, |e| e.position);
    let mut moved = Vec::new();
    let mut checkpoints = BTreeMap::new();
    for (p, at) in expected {
        if last > *at {
            moved.push((name(shared, *p), last));
        }
        checkpoints.insert(*p, last.max(*at));
    }
    let part = chunk_from.unwrap_or(crate::fanout::CHUNK_FROM);
    let recipients: usize = plan.iter().map(|p| p.recipients.len()).sum();
    if !tx.is_postgres() && recipients > part {
        return Ok(Batch::InParts {
            parts: split_plan(plan, part),
            moved,
            checkpoints,
        });
    }
    let mut published = Vec::new();
    let (queued, mut jobs, unhanded) = if tx.is_postgres() {
        queue_batch(tx, &plan, q, &mut published)?
    } else {
        queue_one_by_one(tx, &plan, q, &mut published)?
    };
    write_checkpoints(tx, &moved)?;
    if q.lease.is_none() {
        jobs.clear();
    }
    Ok(Batch::Committed {
        queued,
        checkpoints,
        published,
        jobs,
        unhanded,
    })
}

/// Queues a plan's alerts a statement at a time (SQLite, whose statements are calls, not
/// round trips). Returns how many alerts were new, the deliveries to hand over, and whether
/// some were left for a claim.
fn queue_one_by_one(
    tx: &dyn Sql,
    plan: &[Planned],
    q: &Queueing<'_>,
    published: &mut Vec<QueuedAlert>,
) -> Result<(usize, Vec<Job>, bool), NotifyError> {
    let (mut queued, mut jobs, mut unhanded) = (0, Vec::new(), false);
    for p in plan {
        let alert = Alert {
            position: p.position,
            story: p.story,
            development: p.development,
            payload: &p.payload,
            template: &PayloadTemplate::of(&p.payload)?,
        };
        for (subscriber, mode) in &p.recipients {
            if let Some(new) = queue_alert(
                tx, subscriber, &alert, *mode, q.links, q.now, q.lease, published,
            )? {
                queued += 1;
                unhanded |= q.lease.is_none() && !new.is_empty();
                jobs.extend(new);
            }
        }
    }
    Ok((queued, jobs, unhanded))
}

/// `plan` cut into parts of at most `size` recipients each, in its order: an event's
/// recipients may be spread over consecutive parts, each part a [`Planned`] of its own.
fn split_plan(plan: Vec<Planned>, size: usize) -> Vec<Vec<Planned>> {
    let mut parts: Vec<Vec<Planned>> = Vec::new();
    let mut room = 0;
    for p in plan {
        let mut recipients = p.recipients.into_iter().peekable();
        while recipients.peek().is_some() {
            if room == 0 {
                parts.push(Vec::new());
                room = size.max(1);
            }
            let taken: BTreeMap<String, Delivery> = recipients.by_ref().take(room).collect();
            room -= taken.len();
            parts.last_mut().expect("a part was started").push(Planned {
                position: p.position,
                story: p.story,
                development: p.development,
                payload: p.payload.clone(),
                recipients: taken,
            });
        }
    }
    parts
}

/// The active subscribers alerted to each of `developments`.
fn alerted_to(
    tx: &dyn Sql,
    developments: &[String],
) -> Result<HashMap<String, HashSet<String>>, NotifyError> {
    let mut found: HashMap<String, HashSet<String>> = HashMap::new();
    if developments.is_empty() {
        return Ok(found);
    }
    let rows: Vec<(String, String)> = if tx.is_postgres() {
        let ids: Texts = developments.iter().cloned().collect();
        tx.statement(
            "SELECT a.development_id, a.subscriber_id FROM alerted a
             JOIN subscribers s ON s.id = a.subscriber_id
             WHERE a.development_id = ANY(?1::text[]) AND s.status = 'active'",
        )?
        .query_map(args![ids], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?
    } else {
        let mut rows = Vec::new();
        for id in developments {
            let mut stmt = tx.statement(
                "SELECT a.subscriber_id FROM alerted a JOIN subscribers s ON s.id = a.subscriber_id
                 WHERE a.development_id = ?1 AND s.status = 'active'",
            )?;
            for subscriber in stmt.query_map(args![id], |r| r.get::<String>(0))? {
                rows.push((id.clone(), subscriber?));
            }
        }
        rows
    };
    for (development, subscriber) in rows {
        found.entry(development).or_default().insert(subscriber);
    }
    Ok(found)
}

/// An alert's JSON as text, but for the subscriber's own unsubscribe link: serialised once per
/// event, not once per recipient.
enum PayloadTemplate {
    /// The text before and after the link.
    Split { head: String, tail: String },
    /// The alert's own text holds the mark (a headline may hold anything): serialised per
    /// recipient.
    Whole(Value),
}

impl PayloadTemplate {
    /// Where `data.links.unsubscribe` stands in the serialised alert.
    const MARK: &'static str = "\u{0}unsubscribe\u{0}";

    fn of(payload: &Value) -> Result<Self, NotifyError> {
        let mut marked = payload.clone();
        marked["data"]["links"]["unsubscribe"] = json!(Self::MARK);
        let text = serde_json::to_string(&marked)?;
        let mark = serde_json::to_string(Self::MARK)?;
        let mut found = text.match_indices(&mark).map(|(at, _)| at);
        Ok(match (found.next(), found.next()) {
            (Some(at), None) => Self::Split {
                head: text[..at].to_owned(),
                tail: text[at + mark.len()..].to_owned(),
            },
            _ => Self::Whole(payload.clone()),
        })
    }

    /// The alert's JSON with `link` as its unsubscribe link: the same text as serialising the
    /// alert with the link in place.
    fn with_unsubscribe(&self, link: &str) -> Result<String, NotifyError> {
        Ok(match self {
            Self::Split { head, tail } => {
                let link = serde_json::to_string(link)?;
                let mut out = String::with_capacity(head.len() + link.len() + tail.len());
                out.push_str(head);
                out.push_str(&link);
                out.push_str(tail);
                out
            }
            Self::Whole(payload) => {
                let mut payload = payload.clone();
                payload["data"]["links"]["unsubscribe"] = json!(link);
                serde_json::to_string(&payload)?
            }
        })
    }
}

/// Queues a batch's alerts on PostgreSQL in a constant number of statements, whatever the
/// number of alerts: the recipients' links and endpoints read at once, the alerts, who was
/// alerted and the deliveries each written by one statement over arrays (`unnest`, in the
/// batch's order, so `seq` follows it), and the earlier pending deliveries of the handed-over
/// ones read at once. Returns how many alerts were new, the deliveries to hand over, and
/// whether some were left for a claim. Each insert names its one conflict target: without it,
/// PostgreSQL checks every unique index of the table before each row (`seq`'s too), some 15 %
/// of a fan-out's inserts.
pub(crate) fn queue_batch(
    tx: &dyn Sql,
    plan: &[Planned],
    q: &Queueing<'_>,
    published: &mut Vec<QueuedAlert>,
) -> Result<(usize, Vec<Job>, bool), NotifyError> {
    if plan.is_empty() {
        return Ok((0, Vec::new(), false));
    }
    let mut subscribers: Vec<String> = plan
        .iter()
        .flat_map(|p| p.recipients.keys().cloned())
        .collect();
    subscribers.sort_unstable();
    subscribers.dedup();
    let ids: Texts = subscribers.iter().cloned().collect();
    let tokens: HashMap<String, String> = tx
        .statement("SELECT id, unsubscribe_token FROM subscribers WHERE id = ANY(?1::text[])")?
        .query_map(args![ids], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    // One row per (subscriber, event), in the batch's order.
    struct AlertRow {
        id: String,
        subscriber: String,
        position: i64,
        story: String,
        development: Option<String>,
        kind: String,
        payload: String,
        immediate: bool,
        due: Option<String>,
    }
    let mut rows: Vec<AlertRow> = Vec::new();
    for p in plan {
        let kind = p.payload["type"].as_str().unwrap_or_default().to_owned();
        let template = PayloadTemplate::of(&p.payload)?;
        let (story, development) = (p.story.to_string(), p.development.map(|d| d.to_string()));
        for (subscriber, mode) in &p.recipients {
            // Forgotten meanwhile: nothing of theirs is queued.
            let Some(token) = tokens.get(subscriber) else {
                continue;
            };
            let (immediate, due) = match mode {
                Delivery::Immediate => (true, None),
                Delivery::Digest { minutes } => (false, Some(ts(digest_due(q.now, *minutes)))),
            };
            rows.push(AlertRow {
                id: alert_id(subscriber, &format!("event:{}", p.position)),
                subscriber: subscriber.clone(),
                position: p.position,
                story: story.clone(),
                development: development.clone(),
                kind: kind.clone(),
                payload: template.with_unsubscribe(&q.links.unsubscribe(token))?,
                immediate,
                due,
            });
        }
    }
    let texts = |f: &dyn Fn(&AlertRow) -> String| -> Texts { rows.iter().map(f).collect() };
    let inserted: HashMap<String, i64> = tx
        .statement(
            "INSERT INTO alerts (id, subscriber_id, position, story_id, development_id,
                type, payload, mode, digest_due_at, created_at)
             SELECT u.id, u.subscriber_id, u.position, u.story_id, u.development_id, u.type,
                u.payload, u.mode, u.due, ?10
             FROM unnest(?1::text[], ?2::text[], ?3::int8[], ?4::text[], ?5::text[], ?6::text[],
                 ?7::text[], ?8::text[], ?9::text[])
                 WITH ORDINALITY AS u(id, subscriber_id, position, story_id, development_id,
                     type, payload, mode, due, ord)
             ORDER BY u.ord
             ON CONFLICT (id) DO NOTHING
             RETURNING id, seq",
        )?
        .query_map(
            args![
                texts(&|r| r.id.clone()),
                texts(&|r| r.subscriber.clone()),
                rows.iter().map(|r| r.position).collect::<Ints>(),
                texts(&|r| r.story.clone()),
                Texts(rows.iter().map(|r| r.development.clone()).collect()),
                texts(&|r| r.kind.clone()),
                texts(&|r| r.payload.clone()),
                texts(&|r| if r.immediate { "immediate" } else { "digest" }.to_owned()),
                Texts(rows.iter().map(|r| r.due.clone()).collect()),
                ts(q.now),
            ],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?
        .collect::<Result<_, _>>()?;
    // Alerts already queued (a batch matched again) are left as they are.
    rows.retain(|r| inserted.contains_key(&r.id));
    if rows.is_empty() {
        return Ok((0, Vec::new(), false));
    }
    tx.statement(
        "INSERT INTO alerted (development_id, subscriber_id)
         SELECT * FROM unnest(?1::text[], ?2::text[])
         ON CONFLICT DO NOTHING",
    )?
    .execute(args![
        rows.iter()
            .filter_map(|r| r.development.clone())
            .collect::<Texts>(),
        rows.iter()
            .filter(|r| r.development.is_some())
            .map(|r| r.subscriber.clone())
            .collect::<Texts>()
    ])?;
    rows.retain(|r| r.immediate);
    for r in &rows {
        published.push(QueuedAlert {
            subscriber: r.subscriber.clone(),
            seq: inserted[&r.id],
            kind: r.kind.clone(),
            payload: r.payload.clone(),
        });
    }
    if rows.is_empty() {
        return Ok((inserted.len(), Vec::new(), false));
    }
    // Every active endpoint of the immediate alerts' subscribers.
    struct Endpoint {
        id: String,
        kind: String,
        target: String,
        secret: Option<String>,
        previous_secret: Option<String>,
        previous_expires: Option<String>,
    }
    let immediate: Texts = rows.iter().map(|r| r.subscriber.clone()).collect();
    let mut endpoints: HashMap<String, Vec<Endpoint>> = HashMap::new();
    for row in tx
        .statement(
            "SELECT subscriber_id, id, kind, target, secret, previous_secret, previous_expires
             FROM endpoints WHERE subscriber_id = ANY(?1::text[]) AND status = 'active'
             ORDER BY subscriber_id, id",
        )?
        .query_map(args![immediate], |r| {
            Ok((
                r.get::<String>(0)?,
                Endpoint {
                    id: r.get(1)?,
                    kind: r.get(2)?,
                    target: r.get(3)?,
                    secret: r.get(4)?,
                    previous_secret: r.get(5)?,
                    previous_expires: r.get(6)?,
                },
            ))
        })?
    {
        let (subscriber, endpoint) = row?;
        endpoints.entry(subscriber).or_default().push(endpoint);
    }
    let mut wanted: Vec<(&AlertRow, &Endpoint)> = Vec::new();
    for r in &rows {
        for e in endpoints.get(&r.subscriber).into_iter().flatten() {
            wanted.push((r, e));
        }
    }
    if wanted.is_empty() {
        return Ok((inserted.len(), Vec::new(), false));
    }
    let owned: Ints = q.owned.iter().map(|p| i64::from(*p)).collect();
    let made: Vec<(i64, String, String, bool)> = tx
        .statement(
            "INSERT INTO deliveries (alert_id, endpoint_id, story_id, status, next_attempt_at,
                leased_until, created_at, updated_at, partition)
             SELECT u.alert_id, u.endpoint_id, u.story_id, 'pending', ?4,
                CASE WHEN u.partition = ANY(?6::int8[]) THEN ?5::text END, ?4, ?4, u.partition
             FROM (SELECT u.*, notifier_partition(u.subscriber_id) AS partition
                   FROM unnest(?1::text[], ?2::text[], ?3::text[], ?7::text[])
                       WITH ORDINALITY AS u(alert_id, endpoint_id, story_id, subscriber_id, ord)
             ) u
             ORDER BY u.ord
             ON CONFLICT (alert_id, endpoint_id) DO NOTHING
             RETURNING seq, alert_id, endpoint_id, leased_until IS NOT NULL",
        )?
        .query_map(
            args![
                wanted.iter().map(|(r, _)| r.id.clone()).collect::<Texts>(),
                wanted.iter().map(|(_, e)| e.id.clone()).collect::<Texts>(),
                wanted
                    .iter()
                    .map(|(r, _)| r.story.clone())
                    .collect::<Texts>(),
                ts(q.now),
                q.lease.map(ts),
                owned,
                wanted
                    .iter()
                    .map(|(r, _)| r.subscriber.clone())
                    .collect::<Texts>()
            ],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )?
        .collect::<Result<_, _>>()?;
    let unhanded = made.iter().any(|(_, _, _, leased)| !leased);
    if unhanded {
        // Wakes the other copies' dispatchers at the commit: some of these are theirs.
        tx.execute(
            "SELECT pg_notify(?1, '')",
            args![crate::partitions::WAKE_CHANNEL],
        )?;
    }
    let by_key: HashMap<(&str, &str), (&AlertRow, &Endpoint)> = wanted
        .iter()
        .map(|(r, e)| ((r.id.as_str(), e.id.as_str()), (*r, *e)))
        .collect();
    let mut jobs: Vec<Job> = made
        .iter()
        .filter(|(_, _, _, leased)| *leased)
        .filter_map(|(seq, alert, endpoint, _)| {
            let (r, e) = by_key.get(&(alert.as_str(), endpoint.as_str()))?;
            Some(Job {
                seq: *seq,
                alert_id: r.id.clone(),
                subscriber_id: r.subscriber.clone(),
                endpoint_id: e.id.clone(),
                story_id: r.story.clone(),
                attempts: 0,
                payload: r.payload.clone(),
                kind: e.kind.clone(),
                target: e.target.clone(),
                secret: e.secret.clone(),
                previous_secret: e.previous_secret.clone(),
                previous_expires: e.previous_expires.clone(),
                after: Vec::new(),
                claimed: false,
            })
        })
        .collect();
    jobs.sort_by_key(|j| j.seq);
    if !jobs.is_empty() {
        // Earlier deliveries of the same (endpoint, story) go first: all pending ones, read
        // at once.
        let mut pairs: Vec<(String, String)> = jobs
            .iter()
            .map(|j| (j.endpoint_id.clone(), j.story_id.clone()))
            .collect();
        pairs.sort_unstable();
        pairs.dedup();
        let mut pending: HashMap<(String, String), Vec<i64>> = HashMap::new();
        for row in tx
            .statement(
                "SELECT d.endpoint_id, d.story_id, d.seq FROM deliveries d
                 JOIN unnest(?1::text[], ?2::text[]) AS u(endpoint_id, story_id)
                   ON d.endpoint_id = u.endpoint_id AND d.story_id = u.story_id
                 WHERE d.status = 'pending'",
            )?
            .query_map(
                args![
                    pairs.iter().map(|(e, _)| e.clone()).collect::<Texts>(),
                    pairs.iter().map(|(_, s)| s.clone()).collect::<Texts>()
                ],
                |r| Ok((r.get::<String>(0)?, r.get::<String>(1)?, r.get::<i64>(2)?)),
            )?
        {
            let (endpoint, story, seq) = row?;
            pending.entry((endpoint, story)).or_default().push(seq);
        }
        for job in &mut jobs {
            if let Some(seqs) = pending.get(&(job.endpoint_id.clone(), job.story_id.clone())) {
                job.after = seqs.iter().copied().filter(|s| *s < job.seq).collect();
                job.after.sort_unstable();
            }
        }
    }
    Ok((inserted.len(), jobs, unhanded))
}

fn faster(a: Delivery, b: Delivery) -> Delivery {
    match (a, b) {
        (Delivery::Immediate, _) | (_, Delivery::Immediate) => Delivery::Immediate,
        (Delivery::Digest { minutes: x }, Delivery::Digest { minutes: y }) => {
            Delivery::Digest { minutes: x.min(y) }
        }
    }
}

/// The id of `subscriber`'s alert about `about` (an event's position, a digest's contents), in
/// the `msg_` form webhook receivers expect. It is the same however often it is computed: an
/// alert queued again — after the queue lost its last commits in a power cut, its derived state
/// being rebuilt from the log — keeps the `webhook-id` receivers deduplicate on.
pub fn alert_id(subscriber: &str, about: &str) -> String {
    use sha2::{Digest, Sha256};
    use std::fmt::Write;
    let digest = Sha256::new()
        .chain_update(b"newsroom alert v1\0")
        .chain_update(subscriber.as_bytes())
        .chain_update([0u8])
        .chain_update(about.as_bytes())
        .finalize();
    let mut id = String::from("msg_");
    for b in &digest[..16] {
        let _ = write!(id, "{b:02x}");
    }
    id
}

/// The event an alert is about, and its payload without the per-subscriber links.
struct Alert<'a> {
    position: i64,
    story: Uuid,
    development: Option<Uuid>,
    payload: &'a Value,
    /// The payload as text, but for each subscriber's own link.
    template: &'a PayloadTemplate,
}

/// Queues `subscriber`'s alert; `None` if they already had it. An immediate alert's deliveries
/// are returned as jobs, leased until `lease` if given.
#[allow(clippy::too_many_arguments)]
fn queue_alert(
    tx: &dyn Sql,
    subscriber: &str,
    alert: &Alert<'_>,
    mode: Delivery,
    links: &Links,
    now: DateTime<Utc>,
    lease: Option<DateTime<Utc>>,
    published: &mut Vec<QueuedAlert>,
) -> Result<Option<Vec<Job>>, NotifyError> {
    let unsubscribe: String = tx
        .statement("SELECT unsubscribe_token FROM subscribers WHERE id = ?1")?
        .query_row(args![subscriber], |r| r.get(0))?;
    let payload = alert.payload;
    let payload_text = alert
        .template
        .with_unsubscribe(&links.unsubscribe(&unsubscribe))?;
    let id = alert_id(subscriber, &format!("event:{}", alert.position));
    let (mode_text, due) = match mode {
        Delivery::Immediate => ("immediate", None),
        Delivery::Digest { minutes } => ("digest", Some(ts(digest_due(now, minutes)))),
    };
    let story = alert.story.to_string();
    let inserted: Option<i64> = tx
        .statement(
            "INSERT INTO alerts (id, subscriber_id, position, story_id, development_id,
                type, payload, mode, digest_due_at, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT DO NOTHING
             RETURNING seq",
        )?
        .query_row(
            args![
                id,
                subscriber,
                alert.position,
                story,
                alert.development.map(|d| d.to_string()),
                payload["type"].as_str(),
                payload_text,
                mode_text,
                due,
                ts(now),
            ],
            |r| r.get(0),
        )
        .optional()?;
    let Some(seq) = inserted else {
        return Ok(None);
    };
    if let Some(development) = alert.development {
        tx.statement(
            "INSERT INTO alerted (development_id, subscriber_id) VALUES (?1, ?2)
             ON CONFLICT DO NOTHING",
        )?
        .execute(args![development.to_string(), subscriber])?;
    }
    if mode != Delivery::Immediate {
        return Ok(Some(Vec::new()));
    }
    published.push(QueuedAlert {
        subscriber: subscriber.to_owned(),
        seq,
        kind: payload["type"].as_str().unwrap_or_default().to_owned(),
        payload: payload_text.clone(),
    });
    let endpoints: Vec<Job> = tx
        .statement(
            "SELECT id, kind, target, secret, previous_secret, previous_expires FROM endpoints
             WHERE subscriber_id = ?1 AND status = 'active'",
        )?
        .query_map(args![subscriber], |r| {
            Ok(Job {
                seq: 0,
                alert_id: id.clone(),
                subscriber_id: subscriber.to_owned(),
                endpoint_id: r.get(0)?,
                story_id: story.clone(),
                attempts: 0,
                payload: payload_text.clone(),
                kind: r.get(1)?,
                target: r.get(2)?,
                secret: r.get(3)?,
                previous_secret: r.get(4)?,
                previous_expires: r.get(5)?,
                after: Vec::new(),
                claimed: false,
            })
        })?
        .collect::<Result<_, _>>()?;
    let mut jobs = Vec::with_capacity(endpoints.len());
    for mut job in endpoints {
        let seq: Option<i64> = tx
            .statement(
                "INSERT INTO deliveries (alert_id, endpoint_id, story_id, status,
                    next_attempt_at, leased_until, created_at, updated_at)
                 VALUES (?1, ?2, ?3, 'pending', ?4, ?5, ?4, ?4)
                 ON CONFLICT DO NOTHING
                 RETURNING seq",
            )?
            .query_row(
                args![
                    job.alert_id,
                    job.endpoint_id,
                    job.story_id,
                    ts(now),
                    lease.map(ts)
                ],
                |r| r.get(0),
            )
            .optional()?;
        let Some(seq) = seq else { continue };
        job.seq = seq;
        // Earlier deliveries of this story to this endpoint go first.
        job.after = tx
            .statement(
                "SELECT seq FROM deliveries
                 WHERE endpoint_id = ?1 AND story_id = ?2 AND status = 'pending' AND seq < ?3",
            )?
            .query_map(args![job.endpoint_id, job.story_id, seq], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        jobs.push(job);
    }
    Ok(Some(jobs))
}

/// One pending delivery of alert `alert` per active endpoint of `subscriber`.
pub fn queue_deliveries(
    tx: &dyn Sql,
    alert: &str,
    subscriber: &str,
    story: &str,
    now: DateTime<Utc>,
) -> Result<(), NotifyError> {
    tx.statement(
        "INSERT INTO deliveries (alert_id, endpoint_id, story_id, status, next_attempt_at,
            created_at, updated_at)
         SELECT ?1, id, ?3, 'pending', ?4, ?4, ?4 FROM endpoints
         WHERE subscriber_id = ?2 AND status = 'active'
         ON CONFLICT DO NOTHING",
    )?
    .execute(args![alert, subscriber, story, ts(now)])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn an_alert_from_its_template_is_the_alert_serialised_with_the_link_in_place() {
        let payload = json!({
            "type": "story.hack_reported",
            "data": {
                "story": {"headline": "Campaign \"A\" hacked \u{0} – é"},
                "links": {"story": "https://n.example/stories/a", "zzz": 1},
            },
        });
        let link = "https://n.example/v1/unsubscribe/tok\"en";
        let mut whole = payload.clone();
        whole["data"]["links"]["unsubscribe"] = json!(link);
        let from_template = PayloadTemplate::of(&payload)
            .unwrap()
            .with_unsubscribe(link)
            .unwrap();
        assert_eq!(from_template, serde_json::to_string(&whole).unwrap());
        // A headline holding the mark itself is no place for the link.
        let mut forged = payload.clone();
        forged["data"]["story"]["headline"] = json!(PayloadTemplate::MARK);
        let mut whole = forged.clone();
        whole["data"]["links"]["unsubscribe"] = json!(link);
        let from_template = PayloadTemplate::of(&forged)
            .unwrap()
            .with_unsubscribe(link)
            .unwrap();
        assert_eq!(from_template, serde_json::to_string(&whole).unwrap());
    }

    #[test]
    fn a_plan_is_cut_into_parts_of_at_most_so_many_recipients_in_its_order() {
        let planned = |position: i64, names: &[&str]| Planned {
            position,
            story: Uuid::nil(),
            development: None,
            payload: serde_json::json!({"type": "story.development"}),
            recipients: names
                .iter()
                .map(|n| (n.to_string(), Delivery::Immediate))
                .collect(),
        };
        let plan = vec![
            planned(1, &["a", "b", "c"]),
            planned(2, &["d", "e", "f", "g"]),
            planned(3, &["h"]),
        ];
        let parts = split_plan(plan, 3);
        let seen: Vec<Vec<(i64, Vec<String>)>> = parts
            .iter()
            .map(|part| {
                part.iter()
                    .map(|p| (p.position, p.recipients.keys().cloned().collect()))
                    .collect()
            })
            .collect();
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            seen,
            vec![
                vec![(1, names(&["a", "b", "c"]))],
                vec![(2, names(&["d", "e", "f"]))],
                vec![(2, names(&["g"])), (3, names(&["h"]))],
            ]
        );
        assert!(split_plan(Vec::new(), 3).is_empty());
    }

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
