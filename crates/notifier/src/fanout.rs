//! One event's fan-out spread over the notifier copies (shared PostgreSQL queue only).
//!
//! Matching is partitioned by story, so one copy matches a story's events. For an event few
//! subscribers hear of, that copy queues the alerts itself, in the batch's transaction. An event
//! that goes to many — a flash to every subscriber — would leave that one copy writing every
//! alert and delivery before anyone is sent anything, while the other copies wait. From
//! [`CHUNK_FROM`] recipients on (a setting), the matcher instead writes the event's recipients
//! as *chunks*, one row of `fanouts` per subscriber partition (`notifier_partition` of the
//! subscriber), in the transaction that moves its checkpoint, and wakes every copy. Each copy's
//! [`Fanout`] takes the chunks of the partitions it owns ([`crate::partitions`]), in position
//! order per partition, and queues their alerts and deliveries exactly as the matcher would
//! ([`queue_batch`]), deleting the chunk in the same transaction. So the copies write one
//! development's alerts side by side, and each starts sending its own while the others are still
//! writing theirs.
//!
//! What holds:
//! - **Nothing lost, nothing twice.** A chunk is durable with the checkpoint that passed its
//!   event, and is deleted in the transaction that queued its alerts; alerts stay unique per
//!   (subscriber, event) under the same derived id.
//! - **Per (endpoint, story) order.** A partition's chunks are taken in position order, one
//!   transaction at a time (the first chunk is locked `FOR UPDATE`; a second taker waits, then
//!   finds it gone). While any chunk of a story waits, the matcher chunks every later event of
//!   that story too, even a small one: its alerts are queued after the earlier ones in every
//!   partition.
//! - **Corrections reach everyone alerted to the original.** A chunked correction or retraction
//!   covers every partition; the copy that takes it adds those its partition's subscribers who
//!   were alerted to the original (`alerted`, complete for the partition by then, since the
//!   original's chunk of the partition went first).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{self, StreamExt};
use newsroom_log::args;
use newsroom_log::sql::{Ints, Sql, Texts};
use tokio::sync::watch;
use uuid::Uuid;

use crate::clock::Clock;
use crate::error::NotifyError;
use crate::index::Delivery;
use crate::partitions::{Ownership, PARTITIONS};
use crate::queue::{queue_batch, Links, Outlets, Planned, Queueing};
use crate::store::{ts, NotifierStore};

/// By default, an event that alerts at least this many subscribers is queued in chunks.
pub const CHUNK_FROM: usize = 1_000;
/// Most chunks of one partition taken in one transaction.
const CHUNKS_PER_TAKE: i64 = 4;
/// Partitions worked on at once by one copy: while one waits for PostgreSQL, another is built.
const AT_ONCE: usize = 3;
/// How often the chunks are looked for although nobody said some were written.
const POLL: Duration = Duration::from_millis(500);

/// Which of `plan` the matcher queues itself, and which it writes as chunks (with the part
/// each is of its event): those with at least `from` recipients, and every one of a story that
/// already has chunks waiting (in the queue, or earlier in this plan).
pub(crate) fn split(
    tx: &dyn Sql,
    plan: Vec<Planned>,
    from: usize,
) -> Result<(Vec<Planned>, Vec<Planned>), NotifyError> {
    if plan.is_empty() {
        return Ok((plan, Vec::new()));
    }
    let mut stories: Vec<String> = plan.iter().map(|p| p.story.to_string()).collect();
    stories.sort_unstable();
    stories.dedup();
    let mut waiting: HashSet<Uuid> = tx
        .statement("SELECT DISTINCT story_id FROM fanouts WHERE story_id = ANY(?1::text[])")?
        .query_map(args![stories.into_iter().collect::<Texts>()], |r| {
            r.get::<String>(0)
        })?
        .collect::<Result<Vec<_>, _>>()?
        .iter()
        .filter_map(|s| Uuid::parse_str(s).ok())
        .collect();
    let (mut direct, mut chunked) = (Vec::new(), Vec::new());
    for p in plan {
        if p.recipients.len() >= from || waiting.contains(&p.story) {
            waiting.insert(p.story);
            chunked.push(p);
        } else {
            direct.push(p);
        }
    }
    Ok((direct, chunked))
}

/// Whether `p` amends a development (a correction or retraction), and which.
fn amends(p: &Planned) -> Option<String> {
    let kind = p.payload["type"].as_str()?;
    if kind == "story.correction" || kind == "story.retraction" {
        p.development.map(|d| d.to_string())
    } else {
        None
    }
}

/// Writes `chunked` as chunks, one row per subscriber partition that hears of it (every
/// partition for a correction or retraction), and wakes every copy at the commit. Returns how
/// many recipients the chunks hold.
pub(crate) fn write_chunks(
    tx: &dyn Sql,
    chunked: &[Planned],
    now: chrono::DateTime<chrono::Utc>,
) -> Result<usize, NotifyError> {
    let mut held = 0;
    let mut parts: HashMap<i64, i64> = HashMap::new();
    for p in chunked {
        let part = parts.entry(p.position).or_default();
        let subscribers: Texts = p.recipients.keys().cloned().collect();
        let modes: Ints = p
            .recipients
            .values()
            .map(|m| match m {
                Delivery::Immediate => 0,
                Delivery::Digest { minutes } => i64::from(*minutes),
            })
            .collect();
        tx.statement(
            "INSERT INTO fanouts (partition, position, part, story_id, development_id, amends,
                 payload, recipients, modes, created_at)
             SELECT n.p, ?3, ?4, ?5, ?6, ?7, ?8, COALESCE(g.subscribers, '{}'),
                 COALESCE(g.modes, '{}'), ?9
             FROM generate_series(0, ?10 - 1) AS n(p)
             LEFT JOIN (
                 SELECT notifier_partition(u.s) AS p, array_agg(u.s ORDER BY u.o) AS subscribers,
                     array_agg(u.m ORDER BY u.o) AS modes
                 FROM unnest(?1::text[], ?2::int8[]) WITH ORDINALITY AS u(s, m, o)
                 GROUP BY 1
             ) g ON g.p = n.p
             WHERE g.p IS NOT NULL OR ?7::text IS NOT NULL
             ON CONFLICT DO NOTHING",
        )?
        .execute(args![
            subscribers,
            modes,
            p.position,
            *part,
            p.story.to_string(),
            p.development.map(|d| d.to_string()),
            amends(p),
            serde_json::to_string(&p.payload)?,
            ts(now),
            i64::from(PARTITIONS)
        ])?;
        *part += 1;
        held += p.recipients.len();
    }
    if !chunked.is_empty() {
        tx.execute(
            "SELECT pg_notify(?1, '')",
            args![crate::partitions::WAKE_CHANNEL],
        )?;
    }
    Ok(held)
}

/// Turns the chunks of the partitions its copy owns into alerts and deliveries.
pub struct Fanout {
    store: NotifierStore,
    ownership: Ownership,
    clock: Arc<dyn Clock>,
    links: Links,
    /// The matcher's: where what it queues goes after the commit.
    outlets: Outlets,
    /// Ticks when some copy wrote chunks (or deliveries) for others.
    waiting: watch::Receiver<u64>,
}

impl std::fmt::Debug for Fanout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fanout")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

/// What taking one partition's chunks did.
#[derive(Default)]
struct Taken {
    chunks: usize,
    queued: usize,
    published: Vec<crate::streams::QueuedAlert>,
    jobs: Vec<crate::dispatch::Job>,
    unhanded: bool,
}

impl Fanout {
    pub(crate) fn new(
        store: NotifierStore,
        ownership: Ownership,
        clock: Arc<dyn Clock>,
        links: Links,
        outlets: Outlets,
    ) -> Self {
        Self {
            store,
            ownership,
            clock,
            links,
            waiting: outlets.waiting.subscribe(),
            outlets,
        }
    }

    /// Takes the waiting chunks of the partitions it owns, a few at a time per partition;
    /// returns how many it took.
    pub async fn step(&self) -> Result<usize, NotifyError> {
        let owned = self.ownership.current();
        if owned.is_empty() {
            return Ok(0);
        }
        let asked: Ints = owned.iter().map(|p| i64::from(*p)).collect();
        let waiting: Vec<i64> = self
            .store
            .read(move |c| {
                Ok(c.statement(
                    "SELECT DISTINCT partition::int8 FROM fanouts
                     WHERE partition = ANY(?1::int8[])",
                )?
                .query_map(args![asked], |r| r.get::<i64>(0))?
                .collect::<Result<Vec<_>, _>>()?)
            })
            .await?;
        let owned = &owned;
        let took = stream::iter(waiting)
            .map(|p| async move { self.take(p, owned.clone()).await })
            .buffer_unordered(AT_ONCE)
            .collect::<Vec<_>>()
            .await;
        let mut chunks = 0;
        for taken in took {
            chunks += taken?;
        }
        Ok(chunks)
    }

    /// Takes up to [`CHUNKS_PER_TAKE`] of partition `partition`'s chunks, in order, in one
    /// transaction, and hands over what it queued.
    async fn take(&self, partition: i64, owned: Arc<Vec<u32>>) -> Result<usize, NotifyError> {
        let links = self.links.clone();
        let now = self.clock.now();
        let lease = self.outlets.lease_from(now);
        let taken = self
            .store
            .write_alerts(move |tx| {
                take_chunks(
                    tx,
                    partition,
                    &Queueing {
                        links: &links,
                        now,
                        lease,
                        owned: &owned,
                    },
                )
            })
            .await?;
        self.outlets
            .announce(taken.queued, &taken.published, taken.jobs, taken.unhanded);
        Ok(taken.chunks)
    }

    /// Takes chunks until `shutdown`: whenever some copy wrote any, whenever what it owns
    /// changes, and every [`POLL`].
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), NotifyError> {
        tokio::pin!(shutdown);
        let mut woken = self.waiting.clone();
        let mut ownership = self.ownership.clone();
        loop {
            let busy = match self.step().await {
                Ok(taken) => taken > 0,
                Err(e) => {
                    tracing::warn!(error = %e, "taking alert chunks failed; trying again");
                    false
                }
            };
            if busy {
                // More may wait behind what it took.
                tokio::select! {
                    _ = &mut shutdown => return Ok(()),
                    _ = tokio::task::yield_now() => continue,
                }
            }
            tokio::select! {
                _ = &mut shutdown => return Ok(()),
                _ = woken.changed() => {}
                _ = ownership.changed() => {}
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    }
}

/// One chunk as stored.
struct Chunk {
    position: i64,
    part: i64,
    story: Uuid,
    development: Option<Uuid>,
    amends: Option<String>,
    payload: String,
}

fn take_chunks(tx: &dyn Sql, partition: i64, q: &Queueing<'_>) -> Result<Taken, NotifyError> {
    // The first chunks of the partition, locked: a copy taking them too waits, and then finds
    // them gone (fewer rows), never a later one before them.
    let chunks: Vec<Chunk> = tx
        .statement(
            "SELECT position, part::int8, story_id, development_id, amends, payload FROM fanouts
             WHERE partition = ?1 ORDER BY position, part LIMIT ?2 FOR UPDATE",
        )?
        .query_map(args![partition, CHUNKS_PER_TAKE], |r| {
            let uuid = |s: String| Uuid::parse_str(&s).unwrap_or_default();
            Ok(Chunk {
                position: r.get(0)?,
                part: r.get(1)?,
                story: uuid(r.get(2)?),
                development: r.get::<Option<String>>(3)?.map(uuid),
                amends: r.get(4)?,
                payload: r.get(5)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    if chunks.is_empty() {
        return Ok(Taken::default());
    }
    let positions: Ints = chunks.iter().map(|c| c.position).collect();
    let parts: Ints = chunks.iter().map(|c| c.part).collect();
    let mut recipients: HashMap<(i64, i64), BTreeMap<String, Delivery>> = HashMap::new();
    for row in tx
        .statement(
            "SELECT f.position, f.part::int8, u.s, u.m FROM fanouts f
             JOIN unnest(?2::int8[], ?3::int8[]) AS k(position, part)
               ON f.position = k.position AND f.part = k.part
             CROSS JOIN LATERAL unnest(f.recipients, f.modes) AS u(s, m)
             WHERE f.partition = ?1",
        )?
        .query_map(args![partition, positions.clone(), parts.clone()], |r| {
            Ok((
                r.get::<i64>(0)?,
                r.get::<i64>(1)?,
                r.get::<String>(2)?,
                r.get::<i64>(3)?,
            ))
        })?
    {
        let (position, part, subscriber, mode) = row?;
        let mode = match u32::try_from(mode) {
            Ok(minutes) if minutes > 0 => Delivery::Digest { minutes },
            _ => Delivery::Immediate,
        };
        recipients
            .entry((position, part))
            .or_default()
            .insert(subscriber, mode);
    }
    // Everyone of this partition alerted to what a correction or retraction amends.
    let amended: Texts = chunks.iter().filter_map(|c| c.amends.clone()).collect();
    let mut alerted: HashMap<String, Vec<String>> = HashMap::new();
    if !amended.0.is_empty() {
        for row in tx
            .statement(
                "SELECT a.development_id, a.subscriber_id FROM alerted a
                 JOIN subscribers s ON s.id = a.subscriber_id
                 WHERE a.development_id = ANY(?1::text[]) AND s.status = 'active'
                   AND notifier_partition(a.subscriber_id) = ?2",
            )?
            .query_map(args![amended, partition], |r| {
                Ok((r.get::<String>(0)?, r.get::<String>(1)?))
            })?
        {
            let (development, subscriber) = row?;
            alerted.entry(development).or_default().push(subscriber);
        }
    }
    // In order: a correction taken with its original hears of who the original's chunk
    // alerted.
    let mut plan = Vec::with_capacity(chunks.len());
    let taken_chunks = chunks.len();
    for c in chunks {
        let mut heard = recipients.remove(&(c.position, c.part)).unwrap_or_default();
        if let Some(original) = &c.amends {
            for subscriber in alerted.get(original).into_iter().flatten() {
                heard
                    .entry(subscriber.clone())
                    .or_insert(Delivery::Immediate);
            }
        }
        if let Some(development) = c.development {
            let known = alerted.entry(development.to_string()).or_default();
            known.extend(heard.keys().cloned());
        }
        if heard.is_empty() {
            continue;
        }
        plan.push(Planned {
            position: c.position,
            story: c.story,
            development: c.development,
            payload: serde_json::from_str(&c.payload)?,
            recipients: heard,
        });
    }
    let mut taken = Taken {
        chunks: taken_chunks,
        ..Taken::default()
    };
    let (queued, jobs, unhanded) = queue_batch(tx, &plan, q, &mut taken.published)?;
    taken.queued = queued;
    taken.jobs = jobs;
    taken.unhanded = unhanded;
    tx.statement(
        "DELETE FROM fanouts f USING unnest(?2::int8[], ?3::int8[]) AS k(position, part)
         WHERE f.partition = ?1 AND f.position = k.position AND f.part = k.part",
    )?
    .execute(args![partition, positions, parts])?;
    if q.lease.is_none() {
        taken.jobs.clear();
    }
    Ok(taken)
}
