//! The dispatcher: sends deliveries — webhooks signed per Standard Webhooks, email over SMTP,
//! messages on NATS — then records what happened.
//!
//! The matcher hands it each immediate delivery it queued, already leased, as soon as its
//! transaction commits; everything else (retries, digests, redrives, leases a dead process left)
//! it claims from the queue. A delivery is leased while it is being sent; if the process dies,
//! the lease runs out and the delivery is sent again with the same alert id (`webhook-id`,
//! `Nats-Msg-Id`), which receivers deduplicate on. A delivery is sent only after every earlier
//! pending delivery of its (endpoint, story) was delivered — a claim takes an (endpoint, story)'s
//! due deliveries together only if none before them is leased or waiting for a retry, and each
//! (claimed or handed over) waits in memory behind the earlier ones being sent, or goes back to
//! the queue if an earlier one is not this dispatcher's or failed — so one subscriber
//! receives a story's alerts in order. Failures back off exponentially with jitter,
//! honouring `Retry-After`; after the last attempt a delivery is dead-lettered (`failed`) and can
//! be redriven. A 410 disables the endpoint at once; an endpoint failing for a day is disabled and
//! its subscriber told by email.
//!
//! One loop sends handed-over deliveries at once (up to 64 in flight), claims the rest from the
//! queue — on a 200 ms timer, when the digester says so, and after an outcome that may have freed
//! one; looked for on a read connection first, then leased only where nobody holds a lease (with a
//! shared queue only deliveries of the partitions its copy owns, leased by one statement; on
//! PostgreSQL read partition by partition in `seq` order, see `CLAIM_PG_SQL`) — and records
//! outcomes as they come back, all that are waiting in one transaction (on PostgreSQL the leases
//! given back and the deliveries that succeeded, however many, in three statements; failures row by
//! row).
//!
//! Channels: webhooks signed per Standard Webhooks (`signing.rs`), email through lettre
//! (`email.rs`), NATS with `Nats-Msg-Id` on the subscriber's own subject (`subjects.rs`), Web Push
//! through the subscription's push service (`webpush.rs`: `TTL`, `Urgency` from the development's,
//! `Topic` per development so a correction replaces its original; a 404 or 410 removes the
//! endpoint, 429 and 5xx are retried, other 4xx dead-lettered).
//!
//! Retries (`RetryPolicy`): by default 16 attempts, 5 s apart doubling to an hour — about six hours
//! of an endpoint or relay away — before a delivery is dead-lettered.
//!
//! Stopping (SIGTERM): it stops after the matcher, finishes the sends in flight, gives back the
//! leases of everything taken and not sent (so the next dispatcher sends it at once rather than
//! when the lease runs out) and records it all. Outcomes it could not record because the database
//! was away are recorded once it is back, and are never claimed meanwhile; a delivery it sent is
//! never sent again by it, even if a claim finds it again before its outcome is recorded.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::stream::FuturesUnordered;
use futures_util::StreamExt;
use newsroom_log::args;
use newsroom_log::sql::{Ints, Sql, Texts};
use rand::Rng;
use tokio::sync::{mpsc, watch};

use crate::clock::Clock;
use crate::email::Mailer;
use crate::error::NotifyError;
use crate::partitions::Ownership;
use crate::signing::{signature_header, WebhookSecret};
use crate::ssrf::Guard;
use crate::store::{parse_ts, ts, NotifierStore};
use crate::subjects::AlertSubjects;

/// How deliveries are retried.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts before a delivery is dead-lettered.
    pub max_attempts: u32,
    /// Delay after the first failure; doubles with each further failure.
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// How long a taken delivery is reserved for the sender.
    pub lease: Duration,
    /// An endpoint failing for this long is disabled.
    pub disable_after: chrono::Duration,
    /// Bound on every webhook request.
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    /// Sixteen attempts, from 5 s apart doubling to an hour: a receiver or mail relay may be
    /// away for some six hours before anything is dead-lettered.
    fn default() -> Self {
        Self {
            max_attempts: 16,
            base_delay: Duration::from_secs(5),
            max_delay: Duration::from_secs(3_600),
            lease: Duration::from_secs(60),
            disable_after: chrono::Duration::hours(24),
            timeout: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The delay before attempt `attempts + 1`, with ±20 % jitter.
    pub fn backoff(&self, attempts: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(attempts.saturating_sub(1)))
            .min(self.max_delay);
        exp.mul_f64(rand::thread_rng().gen_range(0.8..1.2))
    }
}

/// One delivery being sent.
#[derive(Debug, Clone)]
pub struct Job {
    pub(crate) seq: i64,
    pub(crate) alert_id: String,
    pub(crate) subscriber_id: String,
    pub(crate) endpoint_id: String,
    pub(crate) story_id: String,
    pub(crate) attempts: u32,
    pub(crate) payload: String,
    pub(crate) kind: String,
    pub(crate) target: String,
    pub(crate) secret: Option<String>,
    pub(crate) previous_secret: Option<String>,
    pub(crate) previous_expires: Option<String>,
    /// The older deliveries of the same (endpoint, story) that were still pending when this one
    /// was queued: it may be sent only once each of them has been delivered.
    pub(crate) after: Vec<i64>,
    /// Taken from the queue by a claim (rather than handed over by the matcher).
    pub(crate) claimed: bool,
}

/// Where the matcher hands the deliveries it queued (already leased) to the dispatcher, right
/// after its transaction commits.
pub type Handoff = mpsc::UnboundedSender<Vec<Job>>;

/// What a send attempt came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Attempt {
    Delivered {
        status: Option<u16>,
    },
    /// The receiver said 410 Gone: the endpoint is disabled.
    Gone,
    /// The push service said the subscription is no more (404 or 410): the endpoint is
    /// removed.
    Expired {
        status: u16,
    },
    Failed {
        status: Option<u16>,
        retry_after: Option<Duration>,
        error: String,
        /// No retry can succeed (an address the relay refuses for good): dead-letter now.
        permanent: bool,
    },
}

impl Attempt {
    /// A failure worth retrying, with no more to say than `error`.
    fn retry(error: impl Into<String>) -> Self {
        Attempt::Failed {
            status: None,
            retry_after: None,
            error: error.into(),
            permanent: false,
        }
    }
}

/// Sends the queue.
///
/// Deliveries reach it two ways. The matcher hands over every immediate delivery it queued,
/// already leased, right after its transaction commits ([`Handoff`]): those are sent at once,
/// without another transaction. Everything else — retries coming due, digests, redriven
/// deliveries, deliveries whose earlier sibling is not this dispatcher's, leases left by a dead
/// process — is claimed from the queue, on a timer or when something says it is waiting.
/// Outcomes are recorded as they come back, all that are waiting in one transaction.
pub struct Dispatcher {
    courier: Arc<Courier>,
    concurrency: usize,
    waiting: watch::Receiver<u64>,
    handoff: mpsc::UnboundedReceiver<Vec<Job>>,
}

/// What sends and records: shared by the dispatcher's concurrent sends.
struct Courier {
    store: NotifierStore,
    clock: Arc<dyn Clock>,
    policy: RetryPolicy,
    guard: Arc<Guard>,
    http: reqwest::Client,
    mailer: Option<Mailer>,
    nats: Option<async_nats::Client>,
    /// Where NATS endpoints' alerts go: each subscriber's own namespace.
    subjects: AlertSubjects,
    /// Which partitions' deliveries it claims (all of them with an embedded queue).
    ownership: Ownership,
    /// Signs Web Push requests; none: push endpoints wait (retried) until it is given.
    push: Option<Pusher>,
}

/// What Web Push deliveries need: the installation's VAPID key pair, and where a digest's
/// notification leads.
#[derive(Debug, Clone)]
pub struct Pusher {
    pub vapid: Arc<crate::webpush::Vapid>,
    /// The reader's alert page (`<public URL>/alerts`).
    pub alerts_page: String,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("store", &self.courier.store)
            .field("policy", &self.courier.policy)
            .finish_non_exhaustive()
    }
}

/// Most deliveries taken by one claim.
const CLAIM: usize = 256;

/// Due deliveries none of whose earlier pending ones of the same (endpoint, story) is leased or
/// waiting for a retry, oldest first: a chain of one (endpoint, story)'s deliveries is taken
/// together, and sent one after another in memory.
const CLAIM_SQL: &str =
    "SELECT d.seq, d.alert_id, d.endpoint_id, d.story_id, d.attempts, a.payload,
        e.kind, e.target, e.secret, e.previous_secret, e.previous_expires, e.subscriber_id
    FROM deliveries d
    JOIN alerts a ON a.id = d.alert_id
    JOIN endpoints e ON e.id = d.endpoint_id AND e.status = 'active'
    JOIN subscribers s ON s.id = e.subscriber_id AND s.status = 'active'
    WHERE d.status = 'pending' AND d.next_attempt_at <= ?1
      AND (d.leased_until IS NULL OR d.leased_until <= ?1)
      AND NOT EXISTS (
          SELECT 1 FROM deliveries x
          WHERE x.endpoint_id = d.endpoint_id AND x.story_id = d.story_id
            AND x.status = 'pending' AND x.seq < d.seq
            AND (x.next_attempt_at > ?1 OR (x.leased_until IS NOT NULL AND x.leased_until > ?1)))
    ORDER BY d.seq LIMIT ?2";
/// The claim of a shared PostgreSQL queue: the same rule as [`CLAIM_SQL`], read per partition
/// the copy owns (`?3`) in `seq` order, at most `?4` from each, so a claim costs what it takes —
/// not the deliveries pending in other copies' partitions, nor those this copy was handed and is
/// sending (leased: `deliveries_leased` finds only leases that ran out), nor the queue's
/// history. Within a partition it takes a prefix of the due deliveries in `seq` order, and an
/// (endpoint, story) lies in one partition, so its deliveries are still taken oldest first.
/// The checks of each candidate are subqueries with `OFFSET 0`, which PostgreSQL runs per
/// candidate, by the index of its (endpoint, story), whatever its statistics say: as a join,
/// right after a fan-out queued deliveries the statistics did not count yet, the planner
/// compared every candidate with every pending delivery.
const CLAIM_PG_SQL: &str = "SELECT c.seq, c.alert_id, c.endpoint_id, c.story_id, c.attempts, a.payload,
        e.kind, e.target, e.secret, e.previous_secret, e.previous_expires, e.subscriber_id
    FROM (
        SELECT q.* FROM unnest(?3::int8[]) AS p(partition)
        CROSS JOIN LATERAL (
            SELECT u.* FROM (
                (SELECT d.seq, d.alert_id, d.endpoint_id, d.story_id, d.attempts FROM deliveries d
                 WHERE d.partition = p.partition AND d.status = 'pending'
                   AND d.leased_until IS NULL AND d.next_attempt_at <= ?1
                   AND EXISTS (SELECT 1 FROM endpoints e JOIN subscribers s ON s.id = e.subscriber_id
                       WHERE e.id = d.endpoint_id AND e.status = 'active' AND s.status = 'active'
                       OFFSET 0)
                   AND NOT EXISTS (SELECT 1 FROM deliveries x
                       WHERE x.endpoint_id = d.endpoint_id AND x.story_id = d.story_id
                         AND x.status = 'pending' AND x.seq < d.seq
                         AND (x.next_attempt_at > ?1 OR (x.leased_until IS NOT NULL AND x.leased_until > ?1))
                       OFFSET 0)
                 ORDER BY d.seq LIMIT ?4)
                UNION ALL
                (SELECT d.seq, d.alert_id, d.endpoint_id, d.story_id, d.attempts FROM (
                    SELECT d.* FROM deliveries d
                    WHERE d.partition = p.partition AND d.status = 'pending'
                      AND d.leased_until IS NOT NULL AND d.leased_until <= ?1
                    ORDER BY d.seq OFFSET 0) d
                 WHERE d.next_attempt_at <= ?1
                   AND EXISTS (SELECT 1 FROM endpoints e JOIN subscribers s ON s.id = e.subscriber_id
                       WHERE e.id = d.endpoint_id AND e.status = 'active' AND s.status = 'active'
                       OFFSET 0)
                   AND NOT EXISTS (SELECT 1 FROM deliveries x
                       WHERE x.endpoint_id = d.endpoint_id AND x.story_id = d.story_id
                         AND x.status = 'pending' AND x.seq < d.seq
                         AND (x.next_attempt_at > ?1 OR (x.leased_until IS NOT NULL AND x.leased_until > ?1))
                       OFFSET 0)
                 LIMIT ?4)
            ) u ORDER BY u.seq LIMIT ?4
        ) q
        ORDER BY q.seq LIMIT ?2
    ) c
    JOIN alerts a ON a.id = c.alert_id
    JOIN endpoints e ON e.id = c.endpoint_id
    ORDER BY c.seq";
/// Fewest deliveries a claim reads from each partition it owns.
const CLAIM_PER_PARTITION: usize = 16;
/// How many finished deliveries the dispatcher remembers, to judge hand-offs that name them.
const REMEMBERED: usize = 100_000;
/// How often the queue is looked at although nobody said anything is waiting (retries come due
/// on their own).
const POLL: Duration = Duration::from_millis(200);

/// What the dispatcher knows of a delivery it took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Taken {
    /// Waiting to be sent, or being sent.
    Open,
    Delivered,
    /// Not delivered (to be retried, dead-lettered, or given back).
    NotDelivered,
}

/// One thing to write down about a delivery.
#[derive(Debug, Clone)]
enum Note {
    Attempt(Sent, Attempt),
    /// A handed-over delivery that must wait for an earlier one this dispatcher does not hold:
    /// its lease is given back, and a claim takes it in order.
    GiveBack(i64),
}

impl Note {
    fn seq(&self) -> i64 {
        match self {
            Note::Attempt(sent, _) => sent.seq,
            Note::GiveBack(seq) => *seq,
        }
    }
}

/// What recording an outcome needs of the delivery.
#[derive(Debug, Clone)]
struct Sent {
    seq: i64,
    endpoint_id: String,
    attempts: u32,
    claimed: bool,
}

impl From<Job> for Sent {
    fn from(job: Job) -> Self {
        Self {
            seq: job.seq,
            endpoint_id: job.endpoint_id,
            attempts: job.attempts,
            claimed: job.claimed,
        }
    }
}

/// Keeps each (endpoint, story)'s deliveries in order among those the dispatcher holds.
#[derive(Debug, Default)]
struct Chains {
    taken: HashMap<i64, Taken>,
    /// Finished deliveries, oldest first, so `taken` stays bounded.
    finished: VecDeque<i64>,
    /// Deliveries waiting for an earlier one of the same (endpoint, story) to be delivered.
    blocked: HashMap<(String, String), VecDeque<Job>>,
}

impl Chains {
    fn open(&self) -> HashSet<i64> {
        self.taken
            .iter()
            .filter(|(_, t)| **t == Taken::Open)
            .map(|(seq, _)| *seq)
            .collect()
    }

    /// Takes a delivery: ready to send, blocked behind an earlier one, or given back.
    fn admit(&mut self, job: Job, ready: &mut VecDeque<Job>, notes: &mut Vec<Note>) {
        // Held, or delivered by this dispatcher (a claim may find it again when its lease ran
        // out before the outcome was recorded): never sent twice from here.
        if matches!(
            self.taken.get(&job.seq),
            Some(Taken::Open | Taken::Delivered)
        ) {
            return;
        }
        let mut blocked = false;
        for earlier in &job.after {
            match self.taken.get(earlier) {
                Some(Taken::Delivered) => {}
                Some(Taken::Open) => blocked = true,
                Some(Taken::NotDelivered) | None => {
                    self.finish(job.seq, Taken::NotDelivered);
                    notes.push(Note::GiveBack(job.seq));
                    return;
                }
            }
        }
        self.taken.insert(job.seq, Taken::Open);
        if blocked {
            self.blocked
                .entry((job.endpoint_id.clone(), job.story_id.clone()))
                .or_default()
                .push_back(job);
        } else {
            ready.push_back(job);
        }
    }

    /// A send came back: a delivered one lets the next of its (endpoint, story) go; any other
    /// outcome gives every delivery waiting behind it back to the queue.
    fn sent(
        &mut self,
        job: Job,
        outcome: Attempt,
        ready: &mut VecDeque<Job>,
        notes: &mut Vec<Note>,
    ) {
        let delivered = matches!(outcome, Attempt::Delivered { .. });
        let key = (job.endpoint_id.clone(), job.story_id.clone());
        self.finish(
            job.seq,
            if delivered {
                Taken::Delivered
            } else {
                Taken::NotDelivered
            },
        );
        notes.push(Note::Attempt(job.into(), outcome));
        let Some(mut queue) = self.blocked.remove(&key) else {
            return;
        };
        if delivered {
            if let Some(next) = queue.pop_front() {
                self.taken.remove(&next.seq);
                if !queue.is_empty() {
                    self.blocked.insert(key, queue);
                }
                self.admit(next, ready, notes);
            }
        } else {
            for job in queue {
                self.finish(job.seq, Taken::NotDelivered);
                notes.push(Note::GiveBack(job.seq));
            }
        }
    }

    fn finish(&mut self, seq: i64, how: Taken) {
        self.taken.insert(seq, how);
        self.finished.push_back(seq);
        while self.finished.len() > REMEMBERED {
            if let Some(old) = self.finished.pop_front() {
                if self.taken.get(&old) != Some(&Taken::Open) {
                    self.taken.remove(&old);
                }
            }
        }
    }
}

type Pending<T> = Option<Pin<Box<dyn Future<Output = Result<T, NotifyError>> + Send>>>;

impl Dispatcher {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: NotifierStore,
        clock: Arc<dyn Clock>,
        policy: RetryPolicy,
        guard: Arc<Guard>,
        mailer: Option<Mailer>,
        nats: Option<async_nats::Client>,
        subjects: AlertSubjects,
        waiting: watch::Receiver<u64>,
        handoff: mpsc::UnboundedReceiver<Vec<Job>>,
    ) -> Self {
        let http = crate::ssrf::webhook_client(&guard, policy.timeout);
        Self {
            courier: Arc::new(Courier {
                store,
                clock,
                policy,
                guard,
                http,
                mailer,
                nats,
                subjects,
                ownership: Ownership::single(),
                push: None,
            }),
            concurrency: 64,
            waiting,
            handoff,
        }
    }

    /// Sends Web Push deliveries, signed with `pusher`'s VAPID key.
    pub fn pushing(mut self, pusher: Pusher) -> Self {
        if let Some(courier) = Arc::get_mut(&mut self.courier) {
            courier.push = Some(pusher);
        }
        self
    }

    /// Claims only deliveries of the partitions `ownership` says this process owns (a shared
    /// queue).
    pub fn partitioned(mut self, ownership: Ownership) -> Self {
        if let Some(courier) = Arc::get_mut(&mut self.courier) {
            courier.ownership = ownership;
        }
        self
    }

    pub async fn run_until_stopped(
        mut self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), NotifyError> {
        tokio::pin!(shutdown);
        let mut chains = Chains::default();
        let mut ready: VecDeque<Job> = VecDeque::new();
        let mut sending = FuturesUnordered::new();
        let mut notes: Vec<Note> = Vec::new();
        let mut recording: Pending<(Vec<(String, String)>, bool)> = None;
        // What the write under way records, to record again if the database could not be
        // reached (rather than let the leases run out and send it all again).
        let mut unrecorded: Vec<Note> = Vec::new();
        let mut claiming: Pending<Vec<Job>> = None;
        let mut claim_wanted = true;
        let mut handoff_open = true;
        let mut waiting_open = true;
        // After a failed write, wait a little before the next.
        let mut record_not_before = tokio::time::Instant::now();
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            while sending.len() < self.concurrency {
                let Some(job) = ready.pop_front() else { break };
                let courier = self.courier.clone();
                sending.push(async move {
                    let outcome = courier.send(&job).await;
                    (job, outcome)
                });
            }
            if recording.is_none()
                && !notes.is_empty()
                && tokio::time::Instant::now() >= record_not_before
            {
                let courier = self.courier.clone();
                let batch = std::mem::take(&mut notes);
                unrecorded = batch.clone();
                recording = Some(Box::pin(async move { courier.record(batch).await }));
            }
            if claiming.is_none() && claim_wanted && ready.len() < self.concurrency {
                claim_wanted = false;
                let courier = self.courier.clone();
                // Sent but not recorded yet counts as held: its lease may have run out while
                // the database was away, and it must not be claimed and sent again.
                let mut open = chains.open();
                open.extend(notes.iter().chain(&unrecorded).map(Note::seq));
                claiming = Some(Box::pin(async move { courier.claim(open).await }));
            }
            tokio::select! {
                _ = &mut shutdown => break,
                batch = self.handoff.recv(), if handoff_open => match batch {
                    Some(jobs) => {
                        for job in jobs {
                            chains.admit(job, &mut ready, &mut notes);
                        }
                    }
                    None => handoff_open = false,
                },
                Some((job, outcome)) = sending.next(), if !sending.is_empty() => {
                    chains.sent(job, outcome, &mut ready, &mut notes);
                }
                done = async { recording.as_mut().expect("recording").await }, if recording.is_some() => {
                    recording = None;
                    let written = std::mem::take(&mut unrecorded);
                    match done {
                        Ok((notices, reclaim)) => {
                            claim_wanted |= reclaim;
                            for (email, endpoint) in notices {
                                let courier = self.courier.clone();
                                tokio::spawn(async move { courier.notify_disabled(&email, &endpoint).await });
                            }
                        }
                        Err(e) if e.is_unavailable() => {
                            // The database is away (a restart, a failover): record the same
                            // outcomes once it is back, before their leases run out.
                            tracing::warn!(error = %e, "recording deliveries failed; retrying");
                            let newer = std::mem::replace(&mut notes, written);
                            notes.extend(newer);
                            record_not_before = tokio::time::Instant::now() + Duration::from_millis(250);
                        }
                        Err(e) => {
                            // The outcomes stay leased; their leases run out and they are sent
                            // again with the same id. Nothing is lost, at worst repeated.
                            tracing::error!(error = %e, "recording deliveries failed");
                            record_not_before = tokio::time::Instant::now() + Duration::from_millis(100);
                        }
                    }
                }
                claimed = async { claiming.as_mut().expect("claiming").await }, if claiming.is_some() => {
                    claiming = None;
                    match claimed {
                        Ok(jobs) => {
                            // A full claim, or one a partition's share cut short: more
                            // may be due.
                            claim_wanted |= !jobs.is_empty();
                            for job in jobs {
                                chains.admit(job, &mut ready, &mut notes);
                            }
                        }
                        Err(e) => tracing::error!(error = %e, "claiming deliveries failed; retrying"),
                    }
                }
                _ = tick.tick() => claim_wanted = true,
                changed = self.waiting.changed(), if waiting_open => {
                    waiting_open = changed.is_ok();
                    claim_wanted = true;
                }
                _ = tokio::time::sleep_until(record_not_before), if !notes.is_empty() && recording.is_none() => {}
            }
        }
        // Stopping: finish the sends in flight (each is bounded by the policy's timeout), give
        // back the leases of everything taken and not sent — so that the next dispatcher sends
        // it at once instead of after the lease — and record it all.
        while let Some((job, outcome)) = sending.next().await {
            chains.sent(job, outcome, &mut ready, &mut notes);
        }
        self.handoff.close();
        while let Ok(jobs) = self.handoff.try_recv() {
            notes.extend(jobs.into_iter().map(|job| Note::GiveBack(job.seq)));
        }
        if let Some(pending) = claiming.take() {
            if let Ok(jobs) = pending.await {
                notes.extend(jobs.into_iter().map(|job| Note::GiveBack(job.seq)));
            }
        }
        notes.extend(ready.drain(..).map(|job| Note::GiveBack(job.seq)));
        notes.extend(
            chains
                .blocked
                .drain()
                .flat_map(|(_, queue)| queue)
                .map(|job| Note::GiveBack(job.seq)),
        );
        if let Some(pending) = recording.take() {
            if let Err(e) = pending.await {
                tracing::error!(error = %e, "recording deliveries failed");
                if e.is_unavailable() {
                    notes.extend(unrecorded);
                }
            }
        }
        let given_back = notes
            .iter()
            .filter(|n| matches!(n, Note::GiveBack(_)))
            .count();
        match self.courier.record(notes).await {
            // Their leases run out instead.
            Err(e) => tracing::error!(error = %e, "recording deliveries on the way out failed"),
            Ok(_) => tracing::info!(given_back, "dispatcher stopped"),
        }
        Ok(())
    }
}

impl Courier {
    /// Due deliveries, the oldest pending one of each (endpoint, story), leased for this
    /// dispatcher. Looked for on a read connection first, so an idle poll never takes the writer.
    async fn claim(&self, open: HashSet<i64>) -> Result<Vec<Job>, NotifyError> {
        let now = self.clock.now();
        let lease = now + chrono::Duration::from_std(self.policy.lease).unwrap_or_default();
        let owned = self.ownership.current();
        if owned.is_empty() {
            return Ok(Vec::new());
        }
        let partitions: Ints = if self.ownership.is_shared() {
            owned.iter().map(|p| i64::from(*p)).collect()
        } else {
            (0..i64::from(crate::partitions::PARTITIONS)).collect()
        };
        // Enough from each partition to fill a claim when the work is spread over them all; a
        // claim cut short by it is followed by another (see `run_until_stopped`).
        let per_partition = CLAIM
            .div_ceil(partitions.0.len().max(1))
            .max(CLAIM_PER_PARTITION) as i64;
        let candidates: Vec<Job> = self
            .store
            .read(move |c| {
                // With a shared queue, only deliveries of the partitions this process owns.
                let sql = if c.is_postgres() {
                    CLAIM_PG_SQL
                } else {
                    CLAIM_SQL
                };
                let (due, limit) = (ts(now), CLAIM as i64);
                let args = if c.is_postgres() {
                    args![due, limit, partitions, per_partition]
                } else {
                    args![due, limit]
                };
                let jobs: Vec<Job> = c
                    .statement(sql)?
                    .query_map(args, |r| {
                        Ok(Job {
                            seq: r.get(0)?,
                            alert_id: r.get(1)?,
                            endpoint_id: r.get(2)?,
                            story_id: r.get(3)?,
                            attempts: r.get(4)?,
                            payload: r.get(5)?,
                            kind: r.get(6)?,
                            target: r.get(7)?,
                            secret: r.get(8)?,
                            previous_secret: r.get(9)?,
                            previous_expires: r.get(10)?,
                            subscriber_id: r.get(11)?,
                            after: Vec::new(),
                            claimed: true,
                        })
                    })?
                    .collect::<Result<_, _>>()?;
                Ok(jobs)
            })
            .await?;
        // Each waits for the earlier ones of its (endpoint, story) taken with it (in order, as
        // read): sent only once they were delivered, given back if one was not taken.
        let mut candidates = candidates;
        let mut chains: HashMap<(String, String), Vec<i64>> = HashMap::new();
        for job in &mut candidates {
            let chain = chains
                .entry((job.endpoint_id.clone(), job.story_id.clone()))
                .or_default();
            job.after = chain.clone();
            chain.push(job.seq);
        }
        // Deliveries this dispatcher already holds (a long fan-out can outlive a lease) are
        // not taken twice.
        let candidates: Vec<Job> = candidates
            .into_iter()
            .filter(|j| !open.contains(&j.seq))
            .collect();
        if candidates.is_empty() {
            return Ok(candidates);
        }
        self.store
            .write_deliveries(move |tx| {
                // A lease is taken only if nobody holds one: several dispatchers may claim.
                if tx.is_postgres() {
                    let seqs: Ints = candidates.iter().map(|j| j.seq).collect();
                    let leased: HashSet<i64> = tx
                        .statement(
                            "UPDATE deliveries SET leased_until = ?2
                             WHERE seq = ANY(?1::int8[]) AND status = 'pending'
                               AND (leased_until IS NULL OR leased_until <= ?3)
                             RETURNING seq",
                        )?
                        .query_map(args![seqs, ts(lease), ts(now)], |r| r.get(0))?
                        .collect::<Result<_, _>>()?;
                    return Ok(candidates
                        .into_iter()
                        .filter(|j| leased.contains(&j.seq))
                        .collect());
                }
                let mut lease_stmt = tx.statement(
                    "UPDATE deliveries SET leased_until = ?2
                     WHERE seq = ?1 AND status = 'pending'
                       AND (leased_until IS NULL OR leased_until <= ?3)",
                )?;
                let mut jobs = Vec::with_capacity(candidates.len());
                for job in candidates {
                    if lease_stmt.execute(args![job.seq, ts(lease), ts(now)])? == 1 {
                        jobs.push(job);
                    }
                }
                Ok(jobs)
            })
            .await
    }

    #[tracing::instrument(skip_all, fields(alert = %job.alert_id, endpoint = %job.endpoint_id, kind = %job.kind))]
    async fn send(&self, job: &Job) -> Attempt {
        let outcome = match job.kind.as_str() {
            "webhook" => self.send_webhook(job).await,
            "email" => self.send_email(job).await,
            "nats" => self.send_nats(job).await,
            "web_push" => self.send_web_push(job).await,
            other => Attempt::Failed {
                status: None,
                retry_after: None,
                error: format!("unknown endpoint kind {other}"),
                permanent: true,
            },
        };
        let label = match &outcome {
            Attempt::Delivered { .. } => "delivered",
            Attempt::Gone | Attempt::Expired { .. } => "gone",
            Attempt::Failed { .. } => "failed",
        };
        metrics::counter!("newsroom_deliveries_total", "kind" => job.kind.clone(), "outcome" => label)
            .increment(1);
        outcome
    }

    async fn send_webhook(&self, job: &Job) -> Attempt {
        let url = match self.guard.check_url(&job.target).await {
            Ok(url) => url,
            Err(refusal) => {
                tracing::warn!(endpoint = %job.endpoint_id, %refusal, "webhook refused before sending");
                return Attempt::retry(refusal.public_detail());
            }
        };
        let now = self.clock.now();
        let mut secrets = Vec::new();
        for s in [Some(&job.secret), keep_previous(job, now)]
            .into_iter()
            .flatten()
        {
            if let Some(Ok(secret)) = s.as_deref().map(WebhookSecret::parse) {
                secrets.push(secret);
            }
        }
        if secrets.is_empty() {
            return Attempt::retry("the endpoint has no signing secret");
        }
        let refs: Vec<&WebhookSecret> = secrets.iter().collect();
        let timestamp = now.timestamp();
        let body = job.payload.as_bytes();
        let response = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", &job.alert_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header(
                "webhook-signature",
                signature_header(&refs, &job.alert_id, timestamp, body),
            )
            .body(job.payload.clone())
            .send()
            .await;
        match response {
            Err(e) => Attempt::retry(format!("request failed: {e}")),
            Ok(r) if r.status().is_success() => Attempt::Delivered {
                status: Some(r.status().as_u16()),
            },
            Ok(r) if r.status() == reqwest::StatusCode::GONE => Attempt::Gone,
            Ok(r) => Attempt::Failed {
                status: Some(r.status().as_u16()),
                retry_after: retry_after(r.headers(), now),
                error: format!("the receiver answered {}", r.status()),
                permanent: false,
            },
        }
    }

    /// A push through the subscription's push service (RFC 8030): the message encrypted for
    /// the browser (RFC 8291), signed with the installation's VAPID key (RFC 8292), with how long
    /// the service may keep it (`TTL`), how urgent it is (`Urgency`) and the development's
    /// `Topic`, so a correction replaces its original if that is still waiting.
    async fn send_web_push(&self, job: &Job) -> Attempt {
        let Some(push) = &self.push else {
            return Attempt::retry("Web Push is not set up in this process");
        };
        let url = match self.guard.check_url(&job.target).await {
            Ok(url) => url,
            Err(refusal) => {
                tracing::warn!(endpoint = %job.endpoint_id, %refusal, "push endpoint refused before sending");
                return Attempt::retry(refusal.public_detail());
            }
        };
        let permanent = |error: &str| Attempt::Failed {
            status: None,
            retry_after: None,
            error: error.to_owned(),
            permanent: true,
        };
        let Some(Ok(keys)) = job
            .secret
            .as_deref()
            .map(crate::webpush::PushKeys::from_stored)
        else {
            return permanent("the push subscription's keys cannot be read");
        };
        let message = crate::webpush::message(&job.payload, &push.alerts_page);
        let Ok(body) = crate::webpush::encrypt(&keys, message.body.as_bytes()) else {
            return permanent("the push message cannot be encrypted");
        };
        let now = self.clock.now();
        let mut request = self
            .http
            .post(url.clone())
            .header("content-type", "application/octet-stream")
            .header("content-encoding", "aes128gcm")
            .header("ttl", crate::webpush::TTL_SECONDS.to_string())
            .header("urgency", message.urgency)
            .header("authorization", push.vapid.authorization(&url, now));
        if let Some(topic) = &message.topic {
            request = request.header("topic", topic);
        }
        match request.body(body).send().await {
            Err(e) => Attempt::retry(format!("request failed: {e}")),
            Ok(r) if r.status().is_success() => Attempt::Delivered {
                status: Some(r.status().as_u16()),
            },
            Ok(r) if matches!(r.status().as_u16(), 404 | 410) => Attempt::Expired {
                status: r.status().as_u16(),
            },
            // Busy or down: later. Anything else (a refused token, a message too large) will
            // not change by trying again: dead-lettered, and can be redriven.
            Ok(r) => Attempt::Failed {
                status: Some(r.status().as_u16()),
                retry_after: retry_after(r.headers(), now),
                error: format!("the push service answered {}", r.status()),
                permanent: !(r.status().as_u16() == 429 || r.status().is_server_error()),
            },
        }
    }

    async fn send_email(&self, job: &Job) -> Attempt {
        let Some(mailer) = &self.mailer else {
            return Attempt::retry("no SMTP relay configured (NEWSROOM_SMTP_URL)");
        };
        let (subject, text) = email_text(&job.payload);
        let unsubscribe = unsubscribe_link(&job.payload);
        match mailer
            .send_alert(
                &job.target,
                &subject,
                &text,
                unsubscribe.as_deref(),
                &job.alert_id,
            )
            .await
        {
            Ok(()) => Attempt::Delivered { status: None },
            Err(e) => Attempt::Failed {
                status: e.smtp_code(),
                retry_after: None,
                permanent: e.is_permanent(),
                error: e.to_string(),
            },
        }
    }

    async fn send_nats(&self, job: &Job) -> Attempt {
        let Some(nats) = &self.nats else {
            return Attempt::retry("no NATS connection configured (NEWSROOM_NATS_URL)");
        };
        let Some(subject) = self.subjects.subject(&job.subscriber_id, &job.target) else {
            return Attempt::Failed {
                status: None,
                retry_after: None,
                error: "the subscriber's id cannot name a NATS subject".into(),
                permanent: true,
            };
        };
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", job.alert_id.as_str());
        headers.insert("Content-Type", "application/json");
        let sent = nats
            .publish_with_headers(subject, headers, job.payload.clone().into())
            .await;
        match sent {
            Ok(()) => match nats.flush().await {
                Ok(()) => Attempt::Delivered { status: None },
                Err(e) => Attempt::retry(format!("NATS flush failed: {e}")),
            },
            Err(e) => Attempt::retry(format!("NATS publish failed: {e}")),
        }
    }

    /// Records outcomes and gives leases back, in one transaction; returns (subscriber email,
    /// endpoint) pairs to tell of a disabled endpoint, and whether the queue may now hold
    /// deliveries to claim (something was given back, failed, or freed the next of its story).
    async fn record(&self, notes: Vec<Note>) -> Result<(Vec<(String, String)>, bool), NotifyError> {
        let now = self.clock.now();
        let policy = self.policy.clone();
        self.store
            .write_deliveries(move |tx| {
                let mut notices = Vec::new();
                let mut reclaim = false;
                let mut notes = notes;
                if tx.is_postgres() {
                    // The common notes, whatever their number, in a few statements.
                    reclaim |= record_batched(tx, &mut notes, now)?;
                }
                for note in notes {
                    let (job, outcome) = match note {
                        Note::Attempt(job, outcome) => (job, outcome),
                        Note::GiveBack(seq) => {
                            reclaim = true;
                            tx.statement(
                                "UPDATE deliveries SET leased_until = NULL WHERE seq = ?1 AND status = 'pending'",
                            )?
                            .execute(args![seq])?;
                            continue;
                        }
                    };
                    let attempts = job.attempts + 1;
                    // Only a claimed delivery can have a later one of its story waiting in
                    // the queue; a handed-over one's followers are handed over too.
                    reclaim |= job.claimed || !matches!(outcome, Attempt::Delivered { .. });
                    match outcome {
                        Attempt::Delivered { status } => {
                            set_delivery(tx, job.seq, "delivered", attempts, now, status, None, None)?;
                            tx.statement(
                                "UPDATE endpoints SET failing_since = NULL WHERE id = ?1 AND failing_since IS NOT NULL",
                            )?
                            .execute(args![&job.endpoint_id])?;
                        }
                        Attempt::Gone => {
                            set_delivery(tx, job.seq, "failed", attempts, now, Some(410), Some("the receiver answered 410 Gone"), None)?;
                            if let Some(n) = disable_endpoint(tx, &job.endpoint_id, "the receiver answered 410 Gone", now)? {
                                notices.push(n);
                            }
                        }
                        Attempt::Expired { status } => {
                            let why = format!("the push service answered {status}: the subscription expired");
                            set_delivery(tx, job.seq, "failed", attempts, now, Some(status), Some(&why), None)?;
                            // Failing its other pending deliveries first; a browser that
                            // subscribes again registers a new endpoint.
                            disable_endpoint(tx, &job.endpoint_id, &why, now)?;
                            tx.statement("DELETE FROM endpoints WHERE id = ?1")?
                                .execute(args![&job.endpoint_id])?;
                        }
                        Attempt::Failed { status, retry_after, error, permanent } => {
                            let dead = permanent || attempts >= policy.max_attempts;
                            let delay = policy.backoff(attempts).max(retry_after.unwrap_or_default());
                            let next = now + chrono::Duration::from_std(delay).unwrap_or_default();
                            set_delivery(
                                tx,
                                job.seq,
                                if dead { "failed" } else { "pending" },
                                attempts,
                                now,
                                status,
                                Some(&error),
                                (!dead).then_some(next),
                            )?;
                            tx.statement(
                                "UPDATE endpoints SET failing_since = COALESCE(failing_since, ?2) WHERE id = ?1",
                            )?
                            .execute(args![job.endpoint_id, ts(now)])?;
                            let since: Option<String> = tx
                                .statement("SELECT failing_since FROM endpoints WHERE id = ?1")?
                                .query_row(args![&job.endpoint_id], |r| r.get(0))?;
                            if since.is_some_and(|s| now - parse_ts(&s) >= policy.disable_after) {
                                if let Some(n) = disable_endpoint(tx, &job.endpoint_id, "failing for a day", now)? {
                                    notices.push(n);
                                }
                            }
                        }
                    }
                }
                Ok((notices, reclaim))
            })
            .await
    }

    async fn notify_disabled(&self, email: &str, endpoint: &str) {
        let Some(mailer) = &self.mailer else { return };
        let text = format!(
            "newsroom stopped sending alerts to your endpoint {endpoint}: it kept failing.\n\
             Alerts are kept; re-register the endpoint and redrive failed deliveries to get them."
        );
        if let Err(e) = mailer
            .send(email, "[newsroom] an alert endpoint was disabled", &text)
            .await
        {
            tracing::warn!(error = %e, "could not tell a subscriber of a disabled endpoint");
        }
    }
}

/// Records the leases given back and the deliveries that succeeded among `notes` (taking
/// them out) in one statement each, on PostgreSQL; the rest are left to the caller. Returns
/// whether the queue may now hold deliveries to claim.
fn record_batched(
    tx: &dyn Sql,
    notes: &mut Vec<Note>,
    now: DateTime<Utc>,
) -> Result<bool, NotifyError> {
    let mut given_back = Vec::new();
    let mut delivered: Vec<(Sent, Option<u16>)> = Vec::new();
    let mut rest = Vec::new();
    for note in notes.drain(..) {
        match note {
            Note::GiveBack(seq) => given_back.push(seq),
            Note::Attempt(sent, Attempt::Delivered { status }) => delivered.push((sent, status)),
            other => rest.push(other),
        }
    }
    *notes = rest;
    let mut reclaim = !given_back.is_empty();
    if !given_back.is_empty() {
        tx.statement(
            "UPDATE deliveries SET leased_until = NULL
             WHERE seq = ANY(?1::int8[]) AND status = 'pending'",
        )?
        .execute(args![given_back.into_iter().collect::<Ints>()])?;
    }
    if delivered.is_empty() {
        return Ok(reclaim);
    }
    // Only a claimed delivery can have a later one of its story waiting in the queue.
    reclaim |= delivered.iter().any(|(sent, _)| sent.claimed);
    let seqs: Ints = delivered.iter().map(|(s, _)| s.seq).collect();
    let attempts: Ints = delivered
        .iter()
        .map(|(s, _)| i64::from(s.attempts + 1))
        .collect();
    let statuses = Ints(
        delivered
            .iter()
            .map(|(_, status)| status.map(i64::from))
            .collect(),
    );
    // A delivery whose subscriber was forgotten while it was being sent is gone: nothing of
    // theirs is logged.
    tx.statement(
        "WITH done AS (
            UPDATE deliveries d SET status = 'delivered', attempts = u.attempts,
                updated_at = ?4, last_status = u.http_status, last_error = NULL,
                leased_until = NULL
            FROM unnest(?1::int8[], ?2::int8[], ?3::int8[]) AS u(seq, attempts, http_status)
            WHERE d.seq = u.seq
            RETURNING d.seq, d.last_status)
         INSERT INTO delivery_log (delivery_seq, at, status, http_status, detail)
         SELECT seq, ?4, 'delivered', last_status, NULL FROM done ORDER BY seq",
    )?
    .execute(args![seqs, attempts, statuses, ts(now)])?;
    let mut endpoints: Vec<String> = delivered.into_iter().map(|(s, _)| s.endpoint_id).collect();
    endpoints.sort_unstable();
    endpoints.dedup();
    tx.statement(
        "UPDATE endpoints SET failing_since = NULL
         WHERE id = ANY(?1::text[]) AND failing_since IS NOT NULL",
    )?
    .execute(args![endpoints.into_iter().collect::<Texts>()])?;
    Ok(reclaim)
}

fn keep_previous(job: &Job, now: DateTime<Utc>) -> Option<&Option<String>> {
    job.previous_expires
        .as_deref()
        .filter(|e| parse_ts(e) > now)
        .map(|_| &job.previous_secret)
}

#[allow(clippy::too_many_arguments)]
fn set_delivery(
    tx: &dyn Sql,
    seq: i64,
    status: &str,
    attempts: u32,
    now: DateTime<Utc>,
    http_status: Option<u16>,
    error: Option<&str>,
    next: Option<DateTime<Utc>>,
) -> Result<(), NotifyError> {
    let changed = tx
        .statement(
            "UPDATE deliveries SET status = ?2, attempts = ?3, updated_at = ?4, last_status = ?5,
            last_error = ?6, leased_until = NULL, next_attempt_at = COALESCE(?7, next_attempt_at)
         WHERE seq = ?1",
        )?
        .execute(args![
            seq,
            status,
            attempts,
            ts(now),
            http_status,
            error,
            next.map(ts)
        ])?;
    if changed == 0 {
        // Its subscriber was forgotten while it was being sent: nothing of theirs is kept.
        return Ok(());
    }
    log_change(tx, seq, status, now, http_status, error)
}

pub fn log_change(
    tx: &dyn Sql,
    seq: i64,
    status: &str,
    now: DateTime<Utc>,
    http_status: Option<u16>,
    detail: Option<&str>,
) -> Result<(), NotifyError> {
    tx.statement(
        "INSERT INTO delivery_log (delivery_seq, at, status, http_status, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(args![seq, ts(now), status, http_status, detail])?;
    Ok(())
}

/// Disables an endpoint and fails its pending deliveries; returns who to tell, if anyone.
fn disable_endpoint(
    tx: &dyn Sql,
    endpoint: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<Option<(String, String)>, NotifyError> {
    let changed = tx
        .statement(
            "UPDATE endpoints SET status = 'disabled', disabled_reason = ?2 WHERE id = ?1 AND status = 'active'",
        )?
        .execute(args![endpoint, reason])?;
    let pending: Vec<i64> = tx
        .statement("SELECT seq FROM deliveries WHERE endpoint_id = ?1 AND status = 'pending'")?
        .query_map(args![endpoint], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for seq in pending {
        tx.statement(
            "UPDATE deliveries SET status = 'failed', last_error = ?2, leased_until = NULL, updated_at = ?3 WHERE seq = ?1",
        )?
        .execute(args![seq, format!("endpoint disabled: {reason}"), ts(now)])?;
        log_change(tx, seq, "failed", now, None, Some("endpoint disabled"))?;
    }
    if changed == 0 {
        return Ok(None);
    }
    // Told only at an address the subscriber confirmed (as an email endpoint of theirs):
    // nothing goes to an address nobody confirmed.
    let row: Option<(Option<String>, String)> = tx
        .statement(
            "SELECT s.email, e.target FROM endpoints e JOIN subscribers s ON s.id = e.subscriber_id
             WHERE e.id = ?1 AND EXISTS (SELECT 1 FROM endpoints c WHERE c.subscriber_id = s.id
                AND c.kind = 'email' AND c.status <> 'unconfirmed'
                AND lower(c.target) = lower(s.email))",
        )?
        .query_row(args![endpoint], |r| Ok((r.get(0)?, r.get(1)?)))
        .ok();
    Ok(row.and_then(|(email, target)| email.map(|e| (e, target))))
}

/// `Retry-After` as seconds or an HTTP date.
fn retry_after(headers: &reqwest::header::HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let raw = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = raw.parse::<u64>() {
        return Some(Duration::from_secs(secs.min(86_400)));
    }
    let at = DateTime::parse_from_rfc2822(raw).ok()?.with_timezone(&Utc);
    (at - now).to_std().ok()
}

/// The unsubscribe link an alert payload carries (every alert and digest has one).
pub fn unsubscribe_link(payload: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(payload).ok()?;
    v["data"]["links"]["unsubscribe"]
        .as_str()
        .map(str::to_owned)
}

/// A value of a correction's before or after as a reader reads it: text in quotes, lists joined.
fn shown(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => format!("\u{201c}{s}\u{201d}"),
        serde_json::Value::Array(items) => {
            let items: Vec<String> = items.iter().map(shown).collect();
            if items.is_empty() {
                "none".to_owned()
            } else {
                items.join(", ")
            }
        }
        serde_json::Value::Null => "none".to_owned(),
        other => other.to_string(),
    }
}

/// An email's subject and plain-text body from an alert payload.
pub fn email_text(payload: &str) -> (String, String) {
    let v: serde_json::Value = serde_json::from_str(payload).unwrap_or_default();
    let data = &v["data"];
    let s = |p: &serde_json::Value| p.as_str().unwrap_or_default().to_owned();
    if v["type"] == "digest" {
        let mut text = String::from("What happened in the stories you follow:\n");
        for story in data["stories"].as_array().into_iter().flatten() {
            text.push_str(&format!("\n{}\n", s(&story["story"]["headline"])));
            for d in story["developments"].as_array().into_iter().flatten() {
                // A correction or retraction says so, beside the headline it changed.
                let label = match d["alert_type"].as_str() {
                    Some("story.correction") => "Corrected: ",
                    Some("story.retraction") => "Retracted: ",
                    _ => "",
                };
                text.push_str(&format!(
                    "  - {label}{} ({})\n",
                    s(&d["headline"]),
                    s(&d["kind"])
                ));
                if let Some(link) = d["link"].as_str() {
                    text.push_str(&format!("    {link}\n"));
                }
            }
        }
        text.push_str(&format!(
            "\nUnsubscribe: {}\n",
            s(&data["links"]["unsubscribe"])
        ));
        return ("[newsroom] your digest".into(), text);
    }
    if v["type"] == "story.related" {
        let related = &data["related"];
        let subject = format!("[newsroom] Related: {}", s(&related["headline"]));
        let text = format!(
            "{}\n\n{}: {}\n\nRead it: {}\nUnsubscribe: {}\n",
            s(&data["story"]["headline"]),
            s(&related["label"]),
            s(&related["headline"]),
            s(&data["links"]["related"]),
            s(&data["links"]["unsubscribe"])
        );
        return (subject, text);
    }
    let d = &data["development"];
    let label = match v["type"].as_str() {
        Some("story.correction") => "Correction: ",
        Some("story.retraction") => "Retracted: ",
        _ => "",
    };
    let subject = format!("[newsroom] {label}{}", s(&d["headline"]));
    let mut text = format!(
        "{}\n\n{}\n\n",
        s(&data["story"]["headline"]),
        s(&d["headline"])
    );
    if let Some(note) = data["correction"]["note"].as_str() {
        text.push_str(&format!("Correction: {note}\n"));
        // What changed, as the webhook's JSON carries it.
        for change in data["correction"]["changes"]
            .as_array()
            .into_iter()
            .flatten()
        {
            text.push_str(&format!(
                "  {}: was {}, now {}\n",
                s(&change["field"]).replace('_', " "),
                shown(&change["before"]),
                shown(&change["after"])
            ));
        }
        text.push('\n');
    }
    if let Some(reason) = data["retraction"]["reason"].as_str() {
        text.push_str(&format!("Retracted: {reason}\n\n"));
    }
    text.push_str(&s(&d["body"]));
    text.push_str(&format!(
        "\n\nRead it: {}\nUnsubscribe: {}\n",
        s(&data["links"]["development"]),
        s(&data["links"]["unsubscribe"])
    ));
    (subject, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_retries_last_hours_before_dead_lettering() {
        let policy = RetryPolicy::default();
        // The waits before attempts 2..=max, each at its shortest (jitter -20 %).
        let least: Duration = (1..policy.max_attempts)
            .map(|a| {
                policy
                    .base_delay
                    .saturating_mul(2u32.saturating_pow(a - 1))
                    .min(policy.max_delay)
                    .mul_f64(0.8)
            })
            .sum();
        assert!(least >= Duration::from_secs(5 * 3_600), "{least:?}");
        for a in 1..policy.max_attempts {
            let wait = policy.backoff(a);
            assert!(wait <= policy.max_delay.mul_f64(1.2), "{a}: {wait:?}");
        }
    }

    fn job(seq: i64, endpoint: &str, after: &[i64]) -> Job {
        Job {
            seq,
            alert_id: format!("msg_{seq}"),
            subscriber_id: "subscriber".into(),
            endpoint_id: endpoint.into(),
            story_id: "story".into(),
            attempts: 0,
            payload: "{}".into(),
            kind: "webhook".into(),
            target: "http://receiver.test/".into(),
            secret: None,
            previous_secret: None,
            previous_expires: None,
            after: after.to_vec(),
            claimed: false,
        }
    }

    fn seqs(ready: &VecDeque<Job>) -> Vec<i64> {
        ready.iter().map(|j| j.seq).collect()
    }

    fn given_back(notes: &[Note]) -> Vec<i64> {
        notes
            .iter()
            .filter_map(|n| match n {
                Note::GiveBack(seq) => Some(*seq),
                Note::Attempt(..) => None,
            })
            .collect()
    }

    const DELIVERED: Attempt = Attempt::Delivered { status: Some(200) };

    #[test]
    fn a_delivery_sent_here_is_not_sent_again_when_a_claim_finds_it_before_it_is_recorded() {
        let (mut chains, mut ready, mut notes) = (Chains::default(), VecDeque::new(), Vec::new());
        chains.admit(job(1, "a", &[]), &mut ready, &mut notes);
        let sent = ready.pop_front().unwrap();
        chains.sent(sent, DELIVERED, &mut ready, &mut notes);
        // Its lease ran out while the database was away, before the outcome was recorded: a
        // claim takes it again.
        let mut again = job(1, "a", &[]);
        again.claimed = true;
        chains.admit(again, &mut ready, &mut notes);
        assert!(ready.is_empty(), "sent once");
        assert_eq!(notes.len(), 1, "only its outcome is to be recorded");
    }

    #[test]
    fn a_story_s_deliveries_to_one_endpoint_go_one_after_another() {
        let (mut chains, mut ready, mut notes) = (Chains::default(), VecDeque::new(), Vec::new());
        chains.admit(job(1, "a", &[]), &mut ready, &mut notes);
        chains.admit(job(2, "a", &[1]), &mut ready, &mut notes);
        chains.admit(job(3, "a", &[1, 2]), &mut ready, &mut notes);
        chains.admit(job(4, "b", &[]), &mut ready, &mut notes);
        assert_eq!(seqs(&ready), [1, 4], "other endpoints do not wait");
        let first = ready.pop_front().unwrap();
        chains.sent(first, DELIVERED, &mut ready, &mut notes);
        assert_eq!(seqs(&ready), [4, 2]);
        let _ = ready.pop_front();
        let second = ready.pop_front().unwrap();
        chains.sent(second, DELIVERED, &mut ready, &mut notes);
        assert_eq!(seqs(&ready), [3]);
        // Handed over after the earlier ones were delivered (not yet recorded): sent at once.
        chains.admit(job(5, "a", &[1, 2, 3]), &mut ready, &mut notes);
        assert_eq!(seqs(&ready), [3], "3 is still being sent");
        let third = ready.pop_front().unwrap();
        chains.sent(third, DELIVERED, &mut ready, &mut notes);
        assert_eq!(seqs(&ready), [5]);
        assert!(given_back(&notes).is_empty());
    }

    #[test]
    fn a_failed_delivery_gives_the_later_ones_of_its_story_back_to_the_queue() {
        let (mut chains, mut ready, mut notes) = (Chains::default(), VecDeque::new(), Vec::new());
        chains.admit(job(1, "a", &[]), &mut ready, &mut notes);
        chains.admit(job(2, "a", &[1]), &mut ready, &mut notes);
        chains.admit(job(3, "a", &[1, 2]), &mut ready, &mut notes);
        let first = ready.pop_front().unwrap();
        chains.sent(first, Attempt::retry("refused"), &mut ready, &mut notes);
        assert!(ready.is_empty());
        assert_eq!(given_back(&notes), [2, 3]);
        chains.admit(job(4, "a", &[1, 2, 3]), &mut ready, &mut notes);
        assert!(ready.is_empty());
        assert_eq!(given_back(&notes), [2, 3, 4]);
    }

    #[test]
    fn a_delivery_behind_one_this_dispatcher_does_not_hold_goes_back_to_the_queue() {
        let (mut chains, mut ready, mut notes) = (Chains::default(), VecDeque::new(), Vec::new());
        chains.admit(job(7, "a", &[3]), &mut ready, &mut notes);
        assert!(ready.is_empty());
        assert_eq!(given_back(&notes), [7]);
        // Claimed later, in order, it is sent.
        let mut claimed = job(7, "a", &[]);
        claimed.claimed = true;
        chains.admit(claimed, &mut ready, &mut notes);
        assert_eq!(seqs(&ready), [7]);
        assert!(chains.open().contains(&7));
    }

    #[test]
    fn backoff_grows_and_stays_within_bounds() {
        let p = RetryPolicy {
            base_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(60),
            ..RetryPolicy::default()
        };
        for (attempt, base) in [(1, 2.0), (2, 4.0), (3, 8.0), (10, 60.0)] {
            let d = p.backoff(attempt).as_secs_f64();
            assert!(d >= base * 0.8 && d <= base * 1.2, "attempt {attempt}: {d}");
        }
    }

    #[test]
    fn retry_after_takes_seconds_or_a_date() {
        let now = Utc::now();
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("retry-after", "7".parse().unwrap());
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(7)));
        let later = (now + chrono::Duration::seconds(30)).to_rfc2822();
        h.insert("retry-after", later.parse().unwrap());
        let d = retry_after(&h, now).unwrap().as_secs();
        assert!((28..=30).contains(&d), "{d}");
    }

    #[test]
    fn a_correction_mail_says_what_was_changed_from_what_to_what() {
        let payload = serde_json::json!({
            "type": "story.correction",
            "data": {
                "story": {"headline": "Campaign hack"},
                "development": {"headline": "Turnout was 61%", "body": "Figures."},
                "correction": {"note": "Turnout misread.", "changes": [
                    {"field": "headline", "before": "Turnout was 16%", "after": "Turnout was 61%"},
                    {"field": "actors", "before": ["Campaign A"], "after": ["Campaign A", "GRU"]},
                ]},
                "links": {"development": "https://n.test/stories/x#d", "unsubscribe": "https://n.test/u"},
            },
        });
        let (subject, text) = email_text(&payload.to_string());
        assert_eq!(subject, "[newsroom] Correction: Turnout was 61%");
        assert!(text.contains("Correction: Turnout misread.\n"), "{text}");
        assert!(
            text.contains("  headline: was \u{201c}Turnout was 16%\u{201d}, now \u{201c}Turnout was 61%\u{201d}\n"),
            "{text}"
        );
        assert!(
            text.contains("  actors: was \u{201c}Campaign A\u{201d}, now \u{201c}Campaign A\u{201d}, \u{201c}GRU\u{201d}\n"),
            "{text}"
        );
    }

    #[test]
    fn a_digest_labels_corrections_and_links_each_development() {
        let payload = serde_json::json!({
            "type": "digest",
            "data": {
                "stories": [{"story": {"headline": "Campaign hack"}, "developments": [
                    {"headline": "Breach reported", "kind": "hack_reported",
                     "alert_type": "story.development", "link": "https://n.test/stories/x#d1"},
                    {"headline": "Turnout was 61%", "kind": "statement_issued",
                     "alert_type": "story.correction", "link": "https://n.test/stories/x#d2"},
                ]}],
                "links": {"unsubscribe": "https://n.test/u"},
            },
        });
        let (_, text) = email_text(&payload.to_string());
        assert!(
            text.contains("  - Breach reported (hack_reported)\n    https://n.test/stories/x#d1\n"),
            "{text}"
        );
        assert!(text.contains("  - Corrected: Turnout was 61% (statement_issued)\n    https://n.test/stories/x#d2\n"), "{text}");
    }
}
