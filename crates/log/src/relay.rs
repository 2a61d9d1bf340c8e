//! The relay: publishes every committed event from the global feed to the JetStream stream
//! `NEWSROOM_EVENTS`, subject `newsroom.events.<story id>`, so projection and notifier processes
//! elsewhere can follow the log (scale-out mode).
//!
//! It reads the durable feed, never in-process dispatch: an event committed just before the
//! command process dies is published when any command process starts again. Each message carries
//! `Nats-Msg-Id` = `<story id>:<sequence>`, so a re-publish is dropped by the server inside its
//! duplicate window, and `Newsroom-Position` = the event's global position. How far the relay
//! got is recorded in the stream itself: the position header of the stream's last message, read
//! on start — so the record and the publish can never disagree. Publishes are pipelined (a batch
//! is sent, then its acks awaited) and the position only moves past a batch whose every ack came
//! back.
//!
//! If NATS is unreachable, the relay keeps retrying with a growing pause; commands are still
//! accepted and stored (they never wait for the relay), and [`RelayStatus`] says what is wrong
//! for `/healthz`. Several command processes may each run a relay: publishes of the same event
//! deduplicate, and each relay publishes in position order, so the stream's order of first
//! publishes is the feed's order.
//!
//! While behind (a full page), it reads the feed's next page while the acks of the one before come
//! back. On start it resumes after the newest message of the stream that carries a position,
//! looking back past messages it did not publish.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, stream};
use async_nats::HeaderMap;
use tokio::sync::watch;

use crate::feed::{FeedEvent, Position, StoreError};
use crate::log::EventLog;

/// The header carrying an event's global position.
pub const POSITION_HEADER: &str = "Newsroom-Position";
/// How many events one round publishes before awaiting their acks.
const BATCH: usize = 256;
const MAX_PAUSE: Duration = Duration::from_secs(5);

/// Where events go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSettings {
    /// `NEWSROOM_EVENTS` in production; tests use their own.
    pub stream: String,
    /// Subjects are `<prefix>.<story id>`; `newsroom.events` in production.
    pub subject_prefix: String,
    /// How many servers hold each message (3 on a 3-node cluster).
    pub replicas: usize,
}

impl Default for StreamSettings {
    fn default() -> Self {
        Self {
            stream: "NEWSROOM_EVENTS".into(),
            subject_prefix: "newsroom.events".into(),
            replicas: 1,
        }
    }
}

impl StreamSettings {
    pub fn subject(&self, story_id: &str) -> String {
        format!("{}.{story_id}", self.subject_prefix)
    }

    /// The stream's configuration: file storage, every subject under the prefix, a two-minute
    /// duplicate window (the server's default) for `Nats-Msg-Id`.
    pub fn config(&self) -> stream::Config {
        stream::Config {
            name: self.stream.clone(),
            subjects: vec![format!("{}.>", self.subject_prefix)],
            storage: stream::StorageType::File,
            num_replicas: self.replicas.max(1),
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        }
    }
}

/// What went wrong publishing.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("reading the event feed: {0}")]
    Feed(#[from] StoreError),
    #[error("NATS JetStream: {0}")]
    Nats(String),
    #[error("encoding an event: {0}")]
    Encode(#[from] serde_json::Error),
}

pub(crate) fn nats(e: impl std::fmt::Display) -> RelayError {
    RelayError::Nats(e.to_string())
}

/// The relay's health, shared with `/healthz`: `None` while publishing works.
#[derive(Debug, Clone, Default)]
pub struct RelayStatus(Arc<Mutex<RelayHealth>>);

#[derive(Debug, Clone, Default)]
struct RelayHealth {
    error: Option<String>,
    published: Position,
}

impl RelayStatus {
    /// The last error, if the last attempt failed.
    pub fn error(&self) -> Option<String> {
        self.0.lock().expect("relay status lock").error.clone()
    }

    /// The position published up to.
    pub fn published(&self) -> Position {
        self.0.lock().expect("relay status lock").published
    }

    fn set(&self, error: Option<String>, published: Option<Position>) {
        let mut h = self.0.lock().expect("relay status lock");
        h.error = error;
        if let Some(p) = published {
            h.published = p;
        }
    }
}

/// Counts of one relay's work.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Published {
    pub events: u64,
    /// Publishes the server recognised as already stored.
    pub duplicates: u64,
}

/// Publishes the feed to JetStream.
#[derive(Debug)]
pub struct Relay {
    log: EventLog,
    js: jetstream::Context,
    settings: StreamSettings,
    status: RelayStatus,
    published: watch::Sender<Position>,
    /// The page after a full one, read while that one's acks came back: (after, events).
    ahead: Mutex<Option<(Position, Vec<FeedEvent>)>>,
}

impl Relay {
    /// A relay over an already connected client. Nothing is sent before [`Relay::run_until_stopped`].
    pub fn new(log: EventLog, client: async_nats::Client, settings: StreamSettings) -> Self {
        Self {
            log,
            js: jetstream::new(client),
            settings,
            status: RelayStatus::default(),
            published: watch::channel(0).0,
            ahead: Mutex::new(None),
        }
    }

    pub fn status(&self) -> RelayStatus {
        self.status.clone()
    }

    /// The position published up to, as it moves.
    pub fn positions(&self) -> watch::Receiver<Position> {
        self.published.subscribe()
    }

    /// Creates the stream if needed and returns the position of its last message (0 if empty).
    pub async fn prepare(&self) -> Result<Position, RelayError> {
        let mut stream = self
            .js
            .get_or_create_stream(self.settings.config())
            .await
            .map_err(nats)?;
        last_position(&mut stream).await
    }

    /// Publishes one round: up to [`BATCH`] events after `after`. Returns the new position and
    /// what was sent.
    pub async fn publish_after(
        &self,
        after: Position,
    ) -> Result<(Position, Published), RelayError> {
        let ahead = self.ahead.lock().expect("relay page lock").take();
        let batch = match ahead {
            Some((at, page)) if at == after => page,
            _ => self.log.read_feed(after, BATCH).await?,
        };
        let mut acks = Vec::with_capacity(batch.len());
        for event in &batch {
            let (subject, headers, body) = self.message(event)?;
            acks.push(
                self.js
                    .publish_with_headers(subject, headers, body.into())
                    .await
                    .map_err(nats)?,
            );
        }
        let last = batch.last().map_or(after, |e| e.position);
        let acked = async {
            let mut counts = Published::default();
            for ack in acks {
                let ack = ack.await.map_err(nats)?;
                counts.events += 1;
                if ack.duplicate {
                    counts.duplicates += 1;
                }
            }
            Ok::<_, RelayError>(counts)
        };
        // Behind (a full page): read the next page while the acks come back. The feed after
        // `last` is append-only, so the page stays true; it is used only by the next round.
        let next = async {
            if batch.len() == BATCH {
                self.log.read_feed(last, BATCH).await.ok()
            } else {
                None
            }
        };
        let (counts, next) = tokio::join!(acked, next);
        let counts = counts?;
        if let Some(page) = next {
            *self.ahead.lock().expect("relay page lock") = Some((last, page));
        }
        Ok((last, counts))
    }

    fn message(&self, e: &FeedEvent) -> Result<(String, HeaderMap, Vec<u8>), RelayError> {
        let mut headers = HeaderMap::new();
        headers.insert(
            "Nats-Msg-Id",
            format!("{}:{}", e.story_id, e.sequence).as_str(),
        );
        headers.insert(POSITION_HEADER, e.position.to_string().as_str());
        Ok((
            self.settings.subject(&e.story_id),
            headers,
            serde_json::to_vec(e)?,
        ))
    }

    /// Publishes until `shutdown`, following the feed as it grows. Never fails: errors are
    /// reported in [`RelayStatus`] and retried.
    pub async fn run_until_stopped(
        self,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Published {
        tokio::pin!(shutdown);
        let mut heads = self.log.subscribe();
        let mut total = Published::default();
        let mut pause = Duration::from_millis(100);
        let mut after: Option<Position> = None;
        loop {
            let round = async {
                let from = match after {
                    Some(p) => p,
                    None => self.prepare().await?,
                };
                after = Some(from);
                self.publish_after(from).await
            };
            let outcome = tokio::select! {
                _ = &mut shutdown => return total,
                r = round => r,
            };
            match outcome {
                Ok((to, counts)) => {
                    pause = Duration::from_millis(100);
                    total.events += counts.events;
                    total.duplicates += counts.duplicates;
                    let moved = Some(to) != after;
                    after = Some(to);
                    self.status.set(None, Some(to));
                    self.published.send_replace(to);
                    if moved {
                        continue;
                    }
                    // Caught up: wait for the next commit (or look again now and then, as
                    // another process may be writing to a shared log).
                    tokio::select! {
                        _ = &mut shutdown => return total,
                        _ = heads.changed() => {},
                        _ = tokio::time::sleep(Duration::from_millis(500)) => {},
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?pause, "relay could not publish");
                    self.status.set(Some(e.to_string()), None);
                    tokio::select! {
                        _ = &mut shutdown => return total,
                        _ = tokio::time::sleep(pause) => {},
                    }
                    pause = (pause * 2).min(MAX_PAUSE);
                }
            }
        }
    }
}

/// How far back from the stream's end the relay looks for its own last message, past messages
/// someone else put on the stream's subjects.
const LOOK_BACK: u64 = 10_000;

/// The position in the header of the stream's last message the relay published (the newest one
/// with a position), or 0 for a stream without one.
async fn last_position(stream: &mut stream::Stream) -> Result<Position, RelayError> {
    let state = stream.info().await.map_err(nats)?.state.clone();
    if state.messages == 0 {
        return Ok(0);
    }
    let oldest = state
        .first_sequence
        .max(state.last_sequence.saturating_sub(LOOK_BACK));
    for sequence in (oldest..=state.last_sequence).rev() {
        let m = match stream.get_raw_message(sequence).await {
            Ok(m) => m,
            // Deleted (a terminated message is not, but a stream may have gaps).
            Err(e) if e.kind() == stream::RawMessageErrorKind::NoMessageFound => continue,
            Err(e) => return Err(nats(e)),
        };
        match m
            .headers
            .get(POSITION_HEADER)
            .and_then(|v| v.as_str().parse::<Position>().ok())
        {
            Some(position) => return Ok(position),
            None => tracing::warn!(
                stream_sequence = sequence,
                subject = %m.subject,
                "a message on the event stream that the relay did not publish"
            ),
        }
    }
    if oldest <= state.first_sequence {
        Ok(0)
    } else {
        Err(RelayError::Nats(format!(
            "none of the stream's last {LOOK_BACK} messages has a position"
        )))
    }
}

/// Connects to NATS without waiting for it: the client keeps (re)connecting in the background,
/// so a command process starts and takes commands while NATS is down. `urls` may list several
/// servers of a cluster, comma-separated.
pub async fn connect(urls: &str) -> Result<async_nats::Client, RelayError> {
    let servers: Vec<&str> = urls
        .split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .collect();
    async_nats::ConnectOptions::new()
        .name("newsroom relay")
        .retry_on_initial_connect()
        .connect(servers)
        .await
        .map_err(nats)
}
