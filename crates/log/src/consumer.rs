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
//!
//! Only the relay should publish on the stream's subjects, but anyone allowed to publish on the
//! NATS server can. A message that is not an event as the relay sends it (it does not decode, or
//! its subject or `Newsroom-Position` header disagrees with its body) is set aside: logged with
//! its stream sequence, counted in `newsroom_stream_messages_set_aside_total`, and terminated
//! (`AckKind::Term`, never delivered again) once the batch around it is committed, instead of
//! failing every batch that holds it. Nothing is lost by it: an event the stream lacks is read
//! from the log.
//!
//! The consumer acknowledges with `AckPolicy::All`: [`JetStreamFeed::commit`] once the caller's
//! effect is committed, `give_back` (a nak, so it is read again at once) for what a failed batch
//! took, before the next pull. A pull takes what the stream has without waiting, and waits for one
//! message only when nothing is there; every pull is bounded in time (a pull lost with the
//! connection is an error, retried), and a consumer whose NATS connection is down says so instead
//! of passing for a quiet stream. [`Pacing`] paces the loop of a part that follows the feed (the
//! projector, the notifier's matcher), and [`FollowerStatus`] tells `/healthz` whether it is
//! getting on. Each consuming process has its own durable consumer, named once and kept beside its
//! state (`newsroom` keeps it in `<state file>.consumer`).

use std::time::Duration;

use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
use async_nats::jetstream::{self, AckKind, Message};
use futures_util::StreamExt;

use crate::feed::{FeedEvent, Position};
use crate::log::EventLog;
use crate::relay::{nats, RelayError, StreamSettings, POSITION_HEADER};

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
    settings: StreamSettings,
    durable: String,
    /// Messages taken and not yet acknowledged, oldest first, each with why it was set aside
    /// if it is not an event.
    unacked: Vec<(Message, Option<String>)>,
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
            settings: settings.clone(),
            durable: durable.to_owned(),
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
        // What an earlier batch took and never committed (it failed) goes back first, so it is
        // read again now rather than after `ack_wait` — and never acknowledged unapplied by the
        // next commit.
        self.give_back().await?;
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
            let event = match self.event_of(&message) {
                Ok(event) => event,
                Err(reason) => {
                    self.unacked.push((message, Some(reason)));
                    continue;
                }
            };
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
            self.unacked.push((message, None));
        }
        Ok(events)
    }

    /// The event a message carries, if it is one as the relay publishes it: its body a feed
    /// event, on that event's story's subject, with its position in the header.
    fn event_of(&self, message: &Message) -> Result<FeedEvent, String> {
        let event: FeedEvent = serde_json::from_slice(&message.payload)
            .map_err(|e| format!("the body is not an event: {e}"))?;
        let position = message
            .headers
            .as_ref()
            .and_then(|h| h.get(POSITION_HEADER))
            .map(|v| v.as_str());
        if position != Some(event.position.to_string().as_str()) {
            return Err(format!(
                "its {POSITION_HEADER} header ({position:?}) is not the event's position {}",
                event.position
            ));
        }
        if message.subject.as_str() != self.settings.subject(&event.story_id) {
            return Err("its subject is not the event's story's".into());
        }
        Ok(event)
    }

    /// Acknowledges everything handed out so far: call once its effect is committed. Messages
    /// that were set aside are terminated.
    pub async fn commit(&mut self) -> Result<(), RelayError> {
        let taken = std::mem::take(&mut self.unacked);
        // With `AckPolicy::All` an acknowledgement — a termination too — covers every earlier
        // message: all of them are committed by now.
        for (m, reason) in &taken {
            if let Some(reason) = reason {
                m.double_ack_with(AckKind::Term).await.map_err(nats)?;
                let sequence = m.info().map(|i| i.stream_sequence).unwrap_or_default();
                tracing::warn!(
                    stream = %self.settings.stream,
                    consumer = %self.durable,
                    stream_sequence = sequence,
                    subject = %m.subject,
                    %reason,
                    "set aside a message on the event stream that is not an event"
                );
                metrics::counter!(
                    "newsroom_stream_messages_set_aside_total",
                    "stream" => self.settings.stream.clone(),
                    "consumer" => self.durable.clone(),
                )
                .increment(1);
            }
        }
        if let Some((m, None)) = taken.last() {
            m.double_ack().await.map_err(nats)?;
        }
        Ok(())
    }

    /// Hands back everything not yet committed, for redelivery (on shutdown, and before a batch
    /// after one that failed). A process killed without handing back gets its messages
    /// redelivered after `ack_wait`.
    pub async fn give_back(&mut self) -> Result<(), RelayError> {
        for (m, _) in self.unacked.drain(..) {
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
    /// `shutdown` came first. `at` is where the part stands after the step, if it knows; `part`
    /// names the loop in the log.
    pub async fn after<E: std::fmt::Display, S: std::future::Future<Output = ()>>(
        &mut self,
        part: &str,
        step: Result<usize, E>,
        at: Option<Position>,
        batch: usize,
        shutdown: std::pin::Pin<&mut S>,
    ) -> bool {
        let wait = match step {
            Ok(read) => {
                self.status.succeeded(at);
                self.pause = Self::FIRST_PAUSE;
                if read == batch || self.streaming {
                    return true;
                }
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?self.pause, "{part} failed; retrying");
                self.status.failed(e.to_string());
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

/// Whether a part following the feed is getting on, shared with `/healthz`.
///
/// A step that succeeds is not yet progress: one that finds nothing new succeeds too, also when
/// the part is stuck behind an event it cannot apply (its batch failed, and the retry waits for
/// the stream to bring something). So a failure is remembered, with the position the part
/// stood at, until the part gets past that position; while the log's head is beyond it the
/// part is reported as not advancing.
#[derive(Debug, Clone, Default)]
pub struct FollowerStatus(std::sync::Arc<std::sync::Mutex<Following>>);

#[derive(Debug, Default)]
struct Following {
    /// Where the part stood after its last successful step.
    at: Position,
    /// The error of its last step, if that failed.
    error: Option<String>,
    /// Since a failure: the position it failed at and the latest error.
    stalled: Option<(Position, String)>,
}

impl FollowerStatus {
    /// The error of the last step, if it failed.
    pub fn error(&self) -> Option<String> {
        self.lock().error.clone()
    }

    /// What is wrong, if anything, with the log's head at `head`: the last step failed, or the
    /// part has not got past the position it failed at.
    pub fn problem(&self, head: Position) -> Option<String> {
        let f = self.lock();
        match (&f.stalled, &f.error) {
            (Some((at, e)), _) if head > *at => Some(format!(
                "not advancing: stuck at position {at} (the log is at {head}): {e}"
            )),
            (_, Some(e)) => Some(e.clone()),
            _ => None,
        }
    }

    /// A step succeeded; the part stands at `at` (if it knows).
    pub fn succeeded(&self, at: Option<Position>) {
        let mut f = self.lock();
        f.error = None;
        if let Some(at) = at {
            f.at = at;
        }
        if matches!(f.stalled, Some((stalled, _)) if f.at > stalled) {
            f.stalled = None;
        }
    }

    /// A step failed with `error`.
    pub fn failed(&self, error: String) {
        let mut f = self.lock();
        let at = f.stalled.as_ref().map_or(f.at, |(at, _)| *at);
        f.stalled = Some((at, error.clone()));
        f.error = Some(error);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Following> {
        self.0.lock().expect("follower status lock")
    }
}

#[cfg(test)]
mod tests {
    use super::FollowerStatus;

    #[test]
    fn a_follower_that_failed_is_reported_until_it_gets_past_where_it_failed() {
        let status = FollowerStatus::default();
        status.succeeded(Some(4));
        assert_eq!(status.problem(9), None);
        status.failed("cannot decode event 5".into());
        let said = status.problem(9).unwrap();
        assert!(said.contains("stuck at position 4"), "{said}");
        assert!(said.contains("cannot decode event 5"), "{said}");
        // Failing with nothing to advance to (NATS away, say) is reported as it is.
        assert_eq!(status.problem(4).as_deref(), Some("cannot decode event 5"));
        // A step that finds nothing new is no progress.
        status.succeeded(Some(4));
        assert_eq!(status.problem(9), Some(said));
        // Nothing to advance to: nothing wrong.
        assert_eq!(status.problem(4), None);
        status.succeeded(Some(9));
        assert_eq!(status.problem(12), None);
    }
}
