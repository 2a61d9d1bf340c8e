//! The matcher: follows the global feed from its checkpoint, reads the story right after each
//! event that may alert someone from the views' history (`crate::views`, once the views hold the
//! event), decides which events are alertable (a development published, a
//! published development corrected or retracted), finds the recipients and queues one alert per
//! (subscriber, event) with a delivery per endpoint — in one transaction with the checkpoint —
//! then hands the immediate deliveries to the dispatcher.
//!
//! The checkpoint is kept in memory between batches and checked inside each transaction; what the
//! matcher keeps (the checkpoint, the hand-off) is dropped whenever a batch fails or the stored
//! checkpoint is not the one it expects. For each event that may alert someone it waits until the
//! views hold it (the `stories` view at the code's shape and at or past its position: the projector
//! of this process or of another sharing the views). With a projector in the same process it hears
//! that projector's positions ([`Matcher::hearing_views`]) and asks the views once it has passed
//! the batch; otherwise it asks them again and again, a little later each time. A batch that waits
//! longer than `VIEWS_WAIT` fails and is tried again, and `/healthz` says so.
//!
//! Alertable: a development published (recorded without review, approved, or released from an
//! embargo or undo window by `EmbargoLifted { published: true }`), a published development
//! corrected or retracted, and a relation between stories (`StoryLinked`: one `story.related` alert,
//! at once, to each subscriber of either story whose subscription asked for `include_related`,
//! naming the other story as it is now; it concerns no development and is never in `alerted`).
//! Never alerted: pending, rejected or embargoed developments, edits before publication, and a
//! development undone in its window. Recipients: the matching subscriptions, plus everyone alerted
//! to the original for a correction or retraction. A batch queues one alert per (subscriber, event)
//! — its id derived from both, never drawn — and one delivery per active endpoint (`crate::queue`),
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
use newsroom_readmodel::{decode, DevelopmentView, LoggedEvent, SeenRelation, StoryView};
use serde_json::{json, Value};
use tokio::sync::watch;
use uuid::Uuid;

use crate::clock::Clock;
use crate::dispatch::{Handoff, Job};
use crate::error::NotifyError;
use crate::index::{Delivery, SubscriptionIndex, Target};
use crate::partitions::{checkpoint_name, story_partition, Ownership};
use crate::queue::{queue_batch, queue_one_by_one, Links, Outlets, Planned, Queueing};
use crate::store::{matched_through, ts, NotifierStore};
use crate::streams::{AlertHub, QueuedAlert};
use crate::views::ViewsHistory;

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
    views: Arc<dyn ViewsHistory>,
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
    /// The position the views reached, from a projector in this process (`None`: asked of the
    /// views).
    projector_positions: Option<watch::Receiver<i64>>,
}

impl std::fmt::Debug for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Matcher")
            .field("store", &self.store)
            .field("after", &self.after)
            .finish()
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
        views: Arc<dyn ViewsHistory>,
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
            projector_positions: None,
        }
    }

    /// Hears where the views stand from the projector in this process, instead of asking the
    /// views again and again until they hold a batch's events.
    pub fn hearing_views(mut self, reached: watch::Receiver<i64>) -> Self {
        self.projector_positions = Some(reached);
        self
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

    /// How its last step went: shared with `/healthz`.
    pub fn status(&self) -> FollowerStatus {
        self.status.clone()
    }

    /// Takes events from a durable JetStream consumer instead of reading the log; each batch is
    /// acknowledged once the transaction that matched it has committed.
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
        if let Some(reached) = &self.projector_positions {
            // The projector says when it committed the batch's last event; the views are then
            // asked once (a rebuild may have swapped them since), and polled only if not there.
            let mut reached = reached.clone();
            let _ = tokio::time::timeout(VIEWS_WAIT, reached.wait_for(|p| *p >= last)).await;
        }
        let mut pause = Duration::from_millis(1);
        while !self.views.reached(last).await? {
            if started.elapsed() > VIEWS_WAIT {
                return Err(NotifyError::ViewsBehind(last));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(50));
        }
        let found = self.views.stories_after(&asked).await?;
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

fn faster(a: Delivery, b: Delivery) -> Delivery {
    match (a, b) {
        (Delivery::Immediate, _) | (_, Delivery::Immediate) => Delivery::Immediate,
        (Delivery::Digest { minutes: x }, Delivery::Digest { minutes: y }) => {
            Delivery::Digest { minutes: x.min(y) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
