//! The dispatcher: takes due deliveries from the queue and sends them — webhooks signed per
//! Standard Webhooks, email over SMTP, messages on NATS — then records what happened.
//!
//! A delivery is leased while it is being sent; if the process dies, the lease runs out and the
//! delivery is sent again with the same alert id (`webhook-id`, `Nats-Msg-Id`), which receivers
//! deduplicate on. Only the oldest pending delivery of each (endpoint, story) is taken, so one
//! subscriber receives a story's alerts in order. Failures back off exponentially with jitter,
//! honouring `Retry-After`; after the last attempt a delivery is dead-lettered (`failed`) and can
//! be redriven. A 410 disables the endpoint at once; an endpoint failing for a day is disabled and
//! its subscriber told by email.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use rand::Rng;
use rusqlite::{params, Connection};
use tokio::sync::watch;

use crate::clock::Clock;
use crate::email::Mailer;
use crate::signing::{signature_header, WebhookSecret};
use crate::ssrf::Guard;
use crate::store::{parse_ts, ts, NotifierStore, NotifyError};

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
    fn default() -> Self {
        Self {
            max_attempts: 8,
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
struct Job {
    seq: i64,
    alert_id: String,
    endpoint_id: String,
    attempts: u32,
    payload: String,
    kind: String,
    target: String,
    secret: Option<String>,
    previous_secret: Option<String>,
    previous_expires: Option<String>,
}

/// What a send attempt came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Delivered {
        status: Option<u16>,
    },
    /// The receiver said 410 Gone: the endpoint is disabled.
    Gone,
    Failed {
        status: Option<u16>,
        retry_after: Option<Duration>,
        error: String,
        /// No retry can succeed (an address the relay refuses for good): dead-letter now.
        permanent: bool,
    },
}

impl Outcome {
    /// A failure worth retrying, with no more to say than `error`.
    fn retry(error: impl Into<String>) -> Self {
        Outcome::Failed {
            status: None,
            retry_after: None,
            error: error.into(),
            permanent: false,
        }
    }
}

/// Sends the queue.
pub struct Dispatcher {
    store: NotifierStore,
    clock: Arc<dyn Clock>,
    policy: RetryPolicy,
    guard: Arc<Guard>,
    http: reqwest::Client,
    mailer: Option<Mailer>,
    nats: Option<async_nats::Client>,
    concurrency: usize,
    queued: watch::Receiver<u64>,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("store", &self.store)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl Dispatcher {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: NotifierStore,
        clock: Arc<dyn Clock>,
        policy: RetryPolicy,
        guard: Arc<Guard>,
        mailer: Option<Mailer>,
        nats: Option<async_nats::Client>,
        queued: watch::Receiver<u64>,
    ) -> Self {
        let http = crate::ssrf::webhook_client(&guard, policy.timeout);
        Self {
            store,
            clock,
            policy,
            guard,
            http,
            mailer,
            nats,
            concurrency: 64,
            queued,
        }
    }

    /// Sends what is due now; returns how many deliveries were attempted.
    pub async fn step(&self) -> Result<usize, NotifyError> {
        let jobs = self.claim().await?;
        if jobs.is_empty() {
            return Ok(0);
        }
        let results: Vec<(Job, Outcome)> = futures_util::stream::iter(jobs)
            .map(|job| async move {
                let outcome = self.send(&job).await;
                (job, outcome)
            })
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        let n = results.len();
        let notices = self.record(results).await?;
        for (email, endpoint) in notices {
            self.notify_disabled(&email, &endpoint).await;
        }
        Ok(n)
    }

    /// Sends until nothing is due.
    pub async fn drain(&self) -> Result<(), NotifyError> {
        while self.step().await? > 0 {}
        Ok(())
    }

    pub async fn run_until_stopped(
        mut self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), NotifyError> {
        tokio::pin!(shutdown);
        loop {
            self.queued.borrow_and_update();
            let sent = tokio::select! {
                _ = &mut shutdown => return Ok(()),
                sent = self.step() => sent,
            };
            match sent {
                Ok(n) if n > 0 => continue,
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "dispatching failed; retrying"),
            }
            tokio::select! {
                _ = &mut shutdown => return Ok(()),
                _ = self.queued.changed() => {},
                // Retries come due without anyone queueing.
                _ = tokio::time::sleep(Duration::from_millis(200)) => {},
            }
        }
    }

    async fn claim(&self) -> Result<Vec<Job>, NotifyError> {
        let now = self.clock.now();
        let lease = now + chrono::Duration::from_std(self.policy.lease).unwrap_or_default();
        self.store
            .write(move |tx| {
                let jobs: Vec<Job> = tx
                    .prepare_cached(
                        "SELECT d.seq, d.alert_id, d.endpoint_id, d.attempts, a.payload, e.kind,
                                e.target, e.secret, e.previous_secret, e.previous_expires
                         FROM deliveries d
                         JOIN alerts a ON a.id = d.alert_id
                         JOIN endpoints e ON e.id = d.endpoint_id AND e.status = 'active'
                         JOIN subscribers s ON s.id = e.subscriber_id AND s.status = 'active'
                         WHERE d.status = 'pending' AND d.next_attempt_at <= ?1
                           AND (d.leased_until IS NULL OR d.leased_until <= ?1)
                           AND NOT EXISTS (
                               SELECT 1 FROM deliveries x
                               WHERE x.endpoint_id = d.endpoint_id AND x.story_id = d.story_id
                                 AND x.status = 'pending' AND x.seq < d.seq)
                         ORDER BY d.seq LIMIT 256",
                    )?
                    .query_map([ts(now)], |r| {
                        Ok(Job {
                            seq: r.get(0)?,
                            alert_id: r.get(1)?,
                            endpoint_id: r.get(2)?,
                            attempts: r.get(3)?,
                            payload: r.get(4)?,
                            kind: r.get(5)?,
                            target: r.get(6)?,
                            secret: r.get(7)?,
                            previous_secret: r.get(8)?,
                            previous_expires: r.get(9)?,
                        })
                    })?
                    .collect::<Result<_, _>>()?;
                let mut lease_stmt =
                    tx.prepare_cached("UPDATE deliveries SET leased_until = ?2 WHERE seq = ?1")?;
                for job in &jobs {
                    lease_stmt.execute(params![job.seq, ts(lease)])?;
                }
                Ok(jobs)
            })
            .await
    }

    #[tracing::instrument(skip_all, fields(alert = %job.alert_id, endpoint = %job.endpoint_id, kind = %job.kind))]
    async fn send(&self, job: &Job) -> Outcome {
        let outcome = match job.kind.as_str() {
            "webhook" => self.send_webhook(job).await,
            "email" => self.send_email(job).await,
            "nats" => self.send_nats(job).await,
            other => Outcome::Failed {
                status: None,
                retry_after: None,
                error: format!("unknown endpoint kind {other}"),
                permanent: true,
            },
        };
        let label = match &outcome {
            Outcome::Delivered { .. } => "delivered",
            Outcome::Gone => "gone",
            Outcome::Failed { .. } => "failed",
        };
        metrics::counter!("newsroom_deliveries_total", "kind" => job.kind.clone(), "outcome" => label)
            .increment(1);
        outcome
    }

    async fn send_webhook(&self, job: &Job) -> Outcome {
        let url = match self.guard.check_url(&job.target).await {
            Ok(url) => url,
            Err(refusal) => return Outcome::retry(refusal.to_string()),
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
            return Outcome::retry("the endpoint has no signing secret");
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
            Err(e) => Outcome::retry(format!("request failed: {e}")),
            Ok(r) if r.status().is_success() => Outcome::Delivered {
                status: Some(r.status().as_u16()),
            },
            Ok(r) if r.status() == reqwest::StatusCode::GONE => Outcome::Gone,
            Ok(r) => Outcome::Failed {
                status: Some(r.status().as_u16()),
                retry_after: retry_after(r.headers(), now),
                error: format!("the receiver answered {}", r.status()),
                permanent: false,
            },
        }
    }

    async fn send_email(&self, job: &Job) -> Outcome {
        let Some(mailer) = &self.mailer else {
            return Outcome::retry("no SMTP relay configured (NEWSROOM_SMTP_URL)");
        };
        let (subject, text) = email_text(&job.payload);
        match mailer.send(&job.target, &subject, &text).await {
            Ok(()) => Outcome::Delivered { status: None },
            Err(e) => Outcome::Failed {
                status: e.smtp_code(),
                retry_after: None,
                permanent: e.is_permanent(),
                error: e.to_string(),
            },
        }
    }

    async fn send_nats(&self, job: &Job) -> Outcome {
        let Some(nats) = &self.nats else {
            return Outcome::retry("no NATS connection configured (NEWSROOM_NATS_URL)");
        };
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", job.alert_id.as_str());
        let sent = nats
            .publish_with_headers(job.target.clone(), headers, job.payload.clone().into())
            .await;
        match sent {
            Ok(()) => match nats.flush().await {
                Ok(()) => Outcome::Delivered { status: None },
                Err(e) => Outcome::retry(format!("NATS flush failed: {e}")),
            },
            Err(e) => Outcome::retry(format!("NATS publish failed: {e}")),
        }
    }

    /// Records outcomes; returns (subscriber email, endpoint) pairs to tell of a disabled
    /// endpoint.
    async fn record(
        &self,
        results: Vec<(Job, Outcome)>,
    ) -> Result<Vec<(String, String)>, NotifyError> {
        let now = self.clock.now();
        let policy = self.policy.clone();
        self.store
            .write(move |tx| {
                let mut notices = Vec::new();
                for (job, outcome) in results {
                    let attempts = job.attempts + 1;
                    match outcome {
                        Outcome::Delivered { status } => {
                            set_delivery(tx, job.seq, "delivered", attempts, now, status, None, None)?;
                            tx.prepare_cached("UPDATE endpoints SET failing_since = NULL WHERE id = ?1")?
                                .execute([&job.endpoint_id])?;
                        }
                        Outcome::Gone => {
                            set_delivery(tx, job.seq, "failed", attempts, now, Some(410), Some("the receiver answered 410 Gone"), None)?;
                            if let Some(n) = disable_endpoint(tx, &job.endpoint_id, "the receiver answered 410 Gone", now)? {
                                notices.push(n);
                            }
                        }
                        Outcome::Failed { status, retry_after, error, permanent } => {
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
                            tx.prepare_cached(
                                "UPDATE endpoints SET failing_since = COALESCE(failing_since, ?2) WHERE id = ?1",
                            )?
                            .execute(params![job.endpoint_id, ts(now)])?;
                            let since: Option<String> = tx
                                .prepare_cached("SELECT failing_since FROM endpoints WHERE id = ?1")?
                                .query_row([&job.endpoint_id], |r| r.get(0))?;
                            if since.is_some_and(|s| now - parse_ts(&s) >= policy.disable_after) {
                                if let Some(n) = disable_endpoint(tx, &job.endpoint_id, "failing for a day", now)? {
                                    notices.push(n);
                                }
                            }
                        }
                    }
                }
                Ok(notices)
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

fn keep_previous(job: &Job, now: DateTime<Utc>) -> Option<&Option<String>> {
    job.previous_expires
        .as_deref()
        .filter(|e| parse_ts(e) > now)
        .map(|_| &job.previous_secret)
}

#[allow(clippy::too_many_arguments)]
fn set_delivery(
    tx: &Connection,
    seq: i64,
    status: &str,
    attempts: u32,
    now: DateTime<Utc>,
    http_status: Option<u16>,
    error: Option<&str>,
    next: Option<DateTime<Utc>>,
) -> Result<(), NotifyError> {
    tx.prepare_cached(
        "UPDATE deliveries SET status = ?2, attempts = ?3, updated_at = ?4, last_status = ?5,
            last_error = ?6, leased_until = NULL, next_attempt_at = COALESCE(?7, next_attempt_at)
         WHERE seq = ?1",
    )?
    .execute(params![
        seq,
        status,
        attempts,
        ts(now),
        http_status,
        error,
        next.map(ts)
    ])?;
    log_change(tx, seq, status, now, http_status, error)
}

pub fn log_change(
    tx: &Connection,
    seq: i64,
    status: &str,
    now: DateTime<Utc>,
    http_status: Option<u16>,
    detail: Option<&str>,
) -> Result<(), NotifyError> {
    tx.prepare_cached(
        "INSERT INTO delivery_log (delivery_seq, at, status, http_status, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![seq, ts(now), status, http_status, detail])?;
    Ok(())
}

/// Disables an endpoint and fails its pending deliveries; returns who to tell, if anyone.
fn disable_endpoint(
    tx: &Connection,
    endpoint: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<Option<(String, String)>, NotifyError> {
    let changed = tx
        .prepare_cached(
            "UPDATE endpoints SET status = 'disabled', disabled_reason = ?2 WHERE id = ?1 AND status = 'active'",
        )?
        .execute(params![endpoint, reason])?;
    let pending: Vec<i64> = tx
        .prepare_cached("SELECT seq FROM deliveries WHERE endpoint_id = ?1 AND status = 'pending'")?
        .query_map([endpoint], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for seq in pending {
        tx.prepare_cached(
            "UPDATE deliveries SET status = 'failed', last_error = ?2, leased_until = NULL, updated_at = ?3 WHERE seq = ?1",
        )?
        .execute(params![seq, format!("endpoint disabled: {reason}"), ts(now)])?;
        log_change(tx, seq, "failed", now, None, Some("endpoint disabled"))?;
    }
    if changed == 0 {
        return Ok(None);
    }
    let row: Option<(Option<String>, String)> = tx
        .prepare_cached(
            "SELECT s.email, e.target FROM endpoints e JOIN subscribers s ON s.id = e.subscriber_id WHERE e.id = ?1",
        )?
        .query_row([endpoint], |r| Ok((r.get(0)?, r.get(1)?)))
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
                text.push_str(&format!("  - {} ({})\n", s(&d["headline"]), s(&d["kind"])));
            }
        }
        text.push_str(&format!(
            "\nUnsubscribe: {}\n",
            s(&data["links"]["unsubscribe"])
        ));
        return ("[newsroom] your digest".into(), text);
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
        text.push_str(&format!("Correction: {note}\n\n"));
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
}
