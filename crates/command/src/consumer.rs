//! Following the feed through JetStream (scale-out): a durable pull consumer of the stream the
//! relay fills, handing out events in position order and acknowledging them only when the
//! caller says its effect is committed.
//!
//! The relay publishes in position order, so the stream's order is the feed's order and per-story
//! order holds. Redelivered or re-published events (position at or below what the caller has
//! applied) are dropped here; the caller is idempotent by position anyway. If the stream ever
//! lacks events the caller needs (a gap between its checkpoint and the next message — a stream
//! recreated, a tail lost), the gap is read from the log itself, which stays the record: JetStream
//! carries the events and wakes the consumer, the log guarantees nothing is missed.

use std::time::Duration;

use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
use async_nats::jetstream::{self, AckKind, Message};
use futures_util::StreamExt;

use crate::log::EventLog;
use crate::relay::{nats, RelayError, StreamSettings};
use crate::store::{FeedEvent, Position};

/// How much longer than its own wait a pull may take before it counts as lost.
const PULL_GRACE: Duration = Duration::from_secs(5);

/// How long a durable consumer nobody pulls from is kept. A process away for longer starts over
/// on a new consumer: it replays the stream and drops what its checkpoint already holds.
pub const INACTIVE_FOR: Duration = Duration::from_secs(24 * 3600);

/// A durable consumer of `NEWSROOM_EVENTS` for one consuming process.
#[derive(Debug)]
pub struct JetStreamFeed {
    client: async_nats::Client,
    consumer: jetstream::consumer::Consumer<pull::Config>,
    log: EventLog,
    /// Messages handed out and not yet acknowledged, oldest first.
    unacked: Vec<Message>,
}

impl JetStreamFeed {
    /// Opens (creating if needed) the stream and the durable consumer `durable`. Copies of a
    /// process that must each see every event (replicas of the views) use their own names.
    pub async fn open(
        client: async_nats::Client,
        settings: &StreamSettings,
        durable: &str,
        log: EventLog,
    ) -> Result<Self, RelayError> {
        let js = jetstream::new(client.clone());
        let stream = js
            .get_or_create_stream(settings.config())
            .await
            .map_err(nats)?;
        let consumer = stream
            .get_or_create_consumer(
                durable,
                pull::Config {
                    durable_name: Some(durable.to_owned()),
                    // Acknowledging the newest applied event acknowledges all before it.
                    ack_policy: AckPolicy::All,
                    ack_wait: Duration::from_secs(30),
                    deliver_policy: DeliverPolicy::All,
                    filter_subject: format!("{}.>", settings.subject_prefix),
                    max_ack_pending: 20_000,
                    // A copy gone for good (a container replaced, its state with it) leaves
                    // no consumer behind for ever; one away for less resumes its own.
                    inactive_threshold: INACTIVE_FOR,
                    ..Default::default()
                },
            )
            .await
            .map_err(nats)?;
        Ok(Self {
            client,
            consumer,
            log,
            unacked: Vec::new(),
        })
    }

    /// Up to `limit` events after `after`, in position order, waiting at most `wait` for the
    /// first. Empty when nothing came.
    pub async fn next_batch(
        &mut self,
        after: Position,
        limit: usize,
        wait: Duration,
    ) -> Result<Vec<FeedEvent>, RelayError> {
        // A pull while the connection is down waits out its expiry and brings nothing, which
        // would pass for a quiet stream: say it instead, so the caller backs off and reports it.
        if self.client.connection_state() != async_nats::connection::State::Connected {
            return Err(nats("not connected to NATS"));
        }
        let limit = limit.max(1);
        // Take what is there without waiting; if nothing is, wait for one message only (a pull
        // for a whole batch would wait until it is full or expires), then take what followed it.
        // A pull whose request or answer is lost with the connection would wait for ever (a
        // fetch has no expiry of its own): each is bounded, and a timed-out one is an error.
        let bound = wait + PULL_GRACE;
        let fetch = |n: usize| all(self.consumer.fetch().max_messages(n).messages(), bound);
        let mut messages = fetch(limit).await?;
        if messages.is_empty() {
            let first = self.consumer.batch().max_messages(1).expires(wait);
            messages = all(first.messages(), bound).await?;
            if !messages.is_empty() && limit > 1 {
                messages.extend(fetch(limit - 1).await?);
            }
        }
        let mut events: Vec<FeedEvent> = Vec::new();
        let mut at = after;
        for message in messages {
            let event: FeedEvent = serde_json::from_slice(&message.payload)?;
            if event.position > at {
                if event.position > at + 1 {
                    // Events the stream does not have: read them from the log.
                    let gap = (event.position - at - 1) as usize;
                    let missing = self.log.read_feed(at, gap).await?;
                    tracing::warn!(
                        from = at + 1,
                        to = event.position - 1,
                        "the event stream lacks events; read them from the log"
                    );
                    events.extend(missing.into_iter().filter(|e| e.position < event.position));
                }
                at = event.position;
                events.push(event);
            }
            self.unacked.push(message);
        }
        Ok(events)
    }

    /// Acknowledges everything handed out so far: call once its effect is committed.
    pub async fn commit(&mut self) -> Result<(), RelayError> {
        // With `AckPolicy::All`, the newest acknowledges the rest.
        if let Some(m) = self.unacked.last() {
            m.double_ack().await.map_err(nats)?;
        }
        self.unacked.clear();
        Ok(())
    }

    /// Hands back everything not yet committed, for redelivery (on shutdown).
    /// A process killed without handing back gets its messages redelivered after `ack_wait`.
    pub async fn give_back(&mut self) -> Result<(), RelayError> {
        for m in self.unacked.drain(..) {
            m.ack_with(AckKind::Nak(None)).await.map_err(nats)?;
        }
        Ok(())
    }
}

/// Every message one pull request brings.
async fn all(
    pull: impl std::future::Future<Output = Result<pull::Batch, pull::BatchError>>,
    bound: Duration,
) -> Result<Vec<Message>, RelayError> {
    let collect = async {
        let mut batch = pull.await.map_err(nats)?;
        let mut messages = Vec::new();
        while let Some(message) = batch.next().await {
            messages.push(message.map_err(nats)?);
        }
        Ok(messages)
    };
    tokio::time::timeout(bound, collect)
        .await
        .map_err(|_| nats("a pull from the stream got no answer"))?
}

/// How a part following the feed (the projector, the notifier's matcher) paces its loop between
/// steps: after a short step it waits for new events (the log's wake-up, or a poll; a JetStream
/// consumer waits inside its step already), and after a failed step — the log or the stream away
/// (a database restart, NATS failing over) — it waits a pause growing from 100 ms to 5 s, then
/// reads the batch again: nothing of it was committed.
#[derive(Debug)]
pub struct Pacing {
    status: FollowerStatus,
    wake: tokio::sync::watch::Receiver<Position>,
    streaming: bool,
    poll: Duration,
    pause: Duration,
}

impl Pacing {
    const FIRST_PAUSE: Duration = Duration::from_millis(100);
    const LONGEST_PAUSE: Duration = Duration::from_secs(5);

    /// `status` is told the outcome of every step, for `/healthz`.
    pub fn new(log: &EventLog, streaming: bool, poll: Duration, status: FollowerStatus) -> Self {
        Self {
            status,
            wake: log.subscribe(),
            streaming,
            poll,
            pause: Self::FIRST_PAUSE,
        }
    }

    /// Call before each step: wake-ups from then on count.
    pub fn arm(&mut self) {
        self.wake.borrow_and_update();
    }

    /// Waits as the outcome of a step (`read` events, at most `batch`) asks; `false` if
    /// `shutdown` came first. `part` names the loop in the log.
    pub async fn after<E: std::fmt::Display, S: std::future::Future<Output = ()>>(
        &mut self,
        part: &str,
        step: Result<usize, E>,
        batch: usize,
        shutdown: std::pin::Pin<&mut S>,
    ) -> bool {
        let wait = match step {
            Ok(read) => {
                self.status.set(None);
                self.pause = Self::FIRST_PAUSE;
                if read == batch || self.streaming {
                    return true;
                }
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?self.pause, "{part} failed; retrying");
                self.status.set(Some(e.to_string()));
                let pause = self.pause;
                self.pause = (pause * 2).min(Self::LONGEST_PAUSE);
                Some(pause)
            }
        };
        tokio::select! {
            _ = shutdown => false,
            _ = self.wake.changed(), if wait.is_none() => true,
            _ = tokio::time::sleep(wait.unwrap_or(self.poll)) => true,
        }
    }
}

/// Whether a part following the feed is getting on, shared with `/healthz`: the error of its
/// last step, if that failed.
#[derive(Debug, Clone, Default)]
pub struct FollowerStatus(std::sync::Arc<std::sync::Mutex<Option<String>>>);

impl FollowerStatus {
    pub fn error(&self) -> Option<String> {
        self.0.lock().expect("follower status lock").clone()
    }

    fn set(&self, error: Option<String>) {
        *self.0.lock().expect("follower status lock") = error;
    }
}
