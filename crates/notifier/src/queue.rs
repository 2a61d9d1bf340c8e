//! Queueing alerts: what a planned alert becomes in the queue — the alert (its id [`alert_id`],
//! derived, never drawn; its payload with the subscriber's own links), who was alerted to what,
//! and a delivery per active endpoint — and where it goes once the transaction has committed
//! ([`Outlets`]: the dispatcher's hand-off, the alert streams, the queued and waiting signals).
//!
//! Written once for everyone that queues alerts: the matcher (`crate::matcher`) plans a batch's
//! alerts ([`Planned`]) and queues them here, on PostgreSQL in a constant number of statements
//! ([`queue_batch`]), on SQLite row by row ([`queue_one_by_one`]); the fan-out's taker
//! (`crate::fanout`) queues a chunk's alerts with the same [`queue_batch`]; the digester queues a
//! digest's deliveries ([`queue_deliveries`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use newsroom_log::args;
use newsroom_log::sql::{Ints, OptionalRow, Sql, Texts};
use serde_json::{json, Value};
use tokio::sync::watch;
use uuid::Uuid;

use crate::dispatch::{Handoff, Job};
use crate::error::NotifyError;
use crate::index::Delivery;
use crate::store::ts;
use crate::streams::{AlertHub, QueuedAlert};

/// The links every alert carries.
#[derive(Debug, Clone)]
pub struct Links {
    /// The public base URL of the reader pages and API, without a trailing slash.
    pub base: String,
}

impl Links {
    pub(crate) fn story(&self, slug: &str) -> String {
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

/// When a digest of `minutes` collecting at `now` is due: the end of the current window.
pub fn digest_due(now: DateTime<Utc>, minutes: u32) -> DateTime<Utc> {
    let window = i64::from(minutes.max(1)) * 60;
    let end = (now.timestamp().div_euclid(window) + 1) * window;
    DateTime::from_timestamp(end, 0).unwrap_or(now)
}

/// Where what a transaction queued goes once it has committed.
#[derive(Clone)]
pub(crate) struct Outlets {
    /// The dispatcher, given the immediate deliveries, leased for this long.
    pub(crate) handoff: Option<(Handoff, chrono::Duration)>,
    /// The subscribers' open alert streams.
    pub(crate) hub: Option<AlertHub>,
    /// Ticks when alerts were queued.
    pub(crate) queued: Arc<watch::Sender<u64>>,
    /// Ticks when deliveries were queued that nobody was handed (the dispatcher claims them).
    pub(crate) waiting: Arc<watch::Sender<u64>>,
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

/// Queues a plan's alerts a statement at a time (SQLite, whose statements are calls, not
/// round trips). Returns how many alerts were new, the deliveries to hand over, and whether
/// some were left for a claim.
pub(crate) fn queue_one_by_one(
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
