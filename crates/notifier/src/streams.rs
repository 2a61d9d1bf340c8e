//! Subscribers' alert streams as a broadcast: what `/v1/subscribers/{id}/alerts/stream` (and so
//! the reader's `/alerts` page) is served from.
//!
//! The **hub** keeps one `tokio::sync::broadcast` channel per subscriber with open streams. An
//! alert is turned into the bytes of one server-sent event once — its payload as queued — and
//! handed to that subscriber's streams only: a stream of another subscriber does not wake, and
//! nothing reads the database for it. With the queue in SQLite only this process makes alerts,
//! and the matcher and the digester publish what they queued right after their commit. With
//! the queue in PostgreSQL other notifier processes make alerts too: one task per process reads
//! the alerts queued since it last looked, in queue order (woken by this process's own commits,
//! and at least every second), and publishes them — one read per batch of alerts, whatever the
//! number of streams, and while no stream is open only the newest sequence is read.
//!
//! A stream first sends what the subscriber missed (after `Last-Event-ID`, read a page at a time
//! from the queue), then what the hub hands it. One that falls more than the channel's capacity
//! behind is sent a final `resume` event and closed, never waited for; its client reconnects with
//! `Last-Event-ID` and resumes exactly after what it got. Open streams are capped per client
//! address (429) and in total (503), both with `Retry-After`.
//!
//! A stream lives no longer than what opened it: the hub remembers who opened each ([`Opener`]:
//! the subscriber's token, or a staff token), and closes (with a final `closed` event) the
//! streams of a subscriber forgotten in this process at once, and, once a second while streams
//! are open, those whose subscriber is gone, whose subscriber token is no longer theirs, or
//! whose staff token was revoked — by any process sharing the database.
//!
//! The caps are `NEWSROOM_ALERT_STREAMS_PER_ADDRESS` and `NEWSROOM_ALERT_STREAMS_TOTAL`; a stream is
//! closed once more than `CAPACITY` alerts behind, and revalidation reads the store once per
//! `CHECK_CHUNK` subscribers and once per staff token ([`AlertHub::revalidate`]).

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::future::Future;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use newsroom_log::args;
use newsroom_log::sql::Arg;
use newsroom_web::Tokens;
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

use crate::error::NotifyError;
use crate::store::alert_horizon;
use crate::store::NotifierStore;

/// Keep-alive comments go to every open stream this often.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// How often the hub looks for alerts other processes queued (with a shared queue).
const POLL: Duration = Duration::from_secs(1);
/// Alerts a stream may fall behind before it is cut off.
const CAPACITY: usize = 256;
/// Alerts read per page: a stream's catch-up, the hub's look at a shared queue.
pub const PAGE: i64 = 100;
/// How often the openers of open streams are checked again.
pub const REVALIDATE: Duration = Duration::from_secs(1);
/// Subscribers looked up per query when open streams are checked.
const CHECK_CHUNK: usize = 200;

/// Who opened a stream: checked again while it is open.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Opener {
    /// The subscriber, with the digest of the token they opened it with.
    Subscriber([u8; 32]),
    /// Staff, by their token's id.
    Staff(String),
}

/// An open stream, as the hub watches it.
#[derive(Debug)]
struct Watched {
    subscriber: String,
    opener: Opener,
    close: CancellationToken,
}

/// Caps on open alert streams.
#[derive(Debug, Clone, Copy)]
pub struct StreamLimits {
    /// Open streams per client address (429 beyond).
    pub per_address: usize,
    /// Open streams in all (503 beyond).
    pub total: usize,
}

/// An alert queued for a subscriber, as the hub hands it out.
#[derive(Debug, Clone)]
pub struct QueuedAlert {
    pub subscriber: String,
    pub seq: i64,
    pub kind: String,
    /// The alert's JSON as queued (one line).
    pub payload: String,
}

/// One server-sent event: an alert's queue sequence and its bytes.
#[derive(Debug)]
struct Frame {
    seq: i64,
    bytes: Bytes,
}

/// The bytes of an alert's server-sent event; `id:` is its queue sequence.
fn frame(seq: i64, kind: &str, payload: &str) -> Bytes {
    // Queued payloads are compact JSON (no line breaks); an event type is a plain name.
    let kind: String = kind.chars().filter(|c| !matches!(c, '\n' | '\r')).collect();
    let data = payload.replace(['\n', '\r'], " ");
    Bytes::from(format!("id: {seq}\nevent: {kind}\ndata: {data}\n\n"))
}

/// The last event of a stream that fell behind: reconnect (after a jittered pause, so readers
/// cut off together do not all come back at once) and resume after `last`.
fn resume_frame(last: i64) -> Bytes {
    let retry = 1_000 + rand::random::<u64>() % 4_000;
    Bytes::from(format!(
        "retry: {retry}\nevent: resume\ndata: {{\"reason\":\"this stream fell behind; reconnect with Last-Event-ID to resume\",\"last_event_id\":{last}}}\n\n"
    ))
}

/// Why a stream was not opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Too many streams from this client address.
    PerAddress,
    /// Too many streams in all.
    Total,
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    per_address: HashMap<IpAddr, usize>,
}

/// The channel of each subscriber with open streams.
#[derive(Debug, Default)]
struct Channels {
    by_subscriber: HashMap<String, broadcast::Sender<Arc<Frame>>>,
    /// With a shared queue: the alert after which the hub reads next; `None` while no stream
    /// is open (nothing is read then).
    cursor: Option<i64>,
}

#[derive(Debug)]
struct Inner {
    store: NotifierStore,
    limits: StreamLimits,
    channels: Mutex<Channels>,
    open: Mutex<Open>,
    /// Database reads made for streams (their catch-up, the hub's looks at a shared queue).
    reads: AtomicU64,
    /// Every open stream, by a number of its own, with who opened it.
    watched: Mutex<HashMap<u64, Watched>>,
    next_stream: AtomicU64,
}

/// The hub of alert streams. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AlertHub {
    inner: Arc<Inner>,
}

impl AlertHub {
    pub fn new(store: NotifierStore, limits: StreamLimits) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                limits,
                channels: Mutex::default(),
                open: Mutex::default(),
                reads: AtomicU64::new(0),
                watched: Mutex::default(),
                next_stream: AtomicU64::new(0),
            }),
        }
    }

    /// How many database reads were made to bring alerts to streams so far (the periodic check
    /// of who opened them is counted apart, in `newsroom_alert_stream_checks_total`).
    pub fn reads(&self) -> u64 {
        self.inner.reads.load(Ordering::Relaxed)
    }

    /// How many streams are open.
    pub fn open_streams(&self) -> usize {
        self.inner.open.lock().map(|o| o.total).unwrap_or(0)
    }

    fn count_read(&self) {
        self.inner.reads.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("newsroom_alert_stream_reads_total").increment(1);
    }

    /// Hands alerts this process queued to their subscribers' open streams, right after the
    /// commit that queued them. With a shared queue the hub reads alerts in queue order itself
    /// (see [`Self::follow_shared_queue`]), so these are left to it.
    pub fn publish(&self, alerts: &[QueuedAlert]) {
        if self.inner.store.is_shared() || alerts.is_empty() {
            return;
        }
        self.hand_out(alerts);
    }

    fn hand_out(&self, alerts: &[QueuedAlert]) {
        let Ok(mut guard) = self.inner.channels.lock() else {
            return;
        };
        let channels = &mut guard.by_subscriber;
        for a in alerts {
            let Some(tx) = channels.get(&a.subscriber) else {
                continue;
            };
            let f = Arc::new(Frame {
                seq: a.seq,
                bytes: frame(a.seq, &a.kind, &a.payload),
            });
            if tx.send(f).is_err() {
                // Every stream of theirs has gone.
                channels.remove(&a.subscriber);
            }
        }
    }

    /// Admits a stream from `address`, or says why not.
    fn admit(&self, address: Option<IpAddr>) -> Result<Permit, Refused> {
        // An IPv6 client counts by its /64, as the rate limits and the live streams count it.
        let address = address.map(newsroom_web::serve::client_address);
        let mut open = self.inner.open.lock().map_err(|_| Refused::Total)?;
        if open.total >= self.inner.limits.total {
            return Err(Refused::Total);
        }
        if let Some(ip) = address {
            let n = open.per_address.entry(ip).or_default();
            if *n >= self.inner.limits.per_address {
                return Err(Refused::PerAddress);
            }
            *n += 1;
        }
        open.total += 1;
        metrics::gauge!("newsroom_alert_streams").set(open.total as f64);
        Ok(Permit {
            hub: self.clone(),
            address,
            stream: self.inner.next_stream.fetch_add(1, Ordering::Relaxed),
        })
    }

    fn subscribe(&self, subscriber: &str) -> broadcast::Receiver<Arc<Frame>> {
        let mut guard = self.inner.channels.lock().expect("alert hub lock");
        let channels = &mut guard.by_subscriber;
        match channels.get(subscriber) {
            Some(tx) if tx.receiver_count() > 0 => tx.subscribe(),
            _ => {
                let (tx, rx) = broadcast::channel(CAPACITY);
                channels.insert(subscriber.to_owned(), tx);
                rx
            }
        }
    }

    /// Opens a stream of `subscriber`'s alerts after `last` (their queue sequence), counted
    /// against the caps for `address`; it stays open while `opener` may read it.
    pub async fn open(
        &self,
        subscriber: String,
        last: i64,
        address: Option<IpAddr>,
        opener: Opener,
    ) -> Result<Result<AlertStream, Refused>, NotifyError> {
        let permit = match self.admit(address) {
            Ok(p) => p,
            Err(refused) => return Ok(Err(refused)),
        };
        let close = CancellationToken::new();
        if let Ok(mut watched) = self.inner.watched.lock() {
            watched.insert(
                permit.stream,
                Watched {
                    subscriber: subscriber.clone(),
                    opener,
                    close: close.clone(),
                },
            );
        }
        // Subscribed before the catch-up is read, so nothing queued meanwhile is missed; what
        // both bring is sent once.
        let rx = self.subscribe(&subscriber);
        let mut upto = i64::MAX;
        if self.inner.store.is_shared() {
            // The hub publishes every alert after the queue's horizon as of now (below which
            // no alert can still appear): the catch-up below reads up to it, and whatever both
            // bring is sent once.
            self.count_read();
            let newest = self.newest().await?;
            upto = newest;
            let mut guard = self.inner.channels.lock().expect("alert hub lock");
            guard.cursor = Some(guard.cursor.map_or(newest, |c| c.min(newest)));
        }
        let mut backlog = VecDeque::new();
        let mut after = last;
        loop {
            let page = self.alerts_after(subscriber.clone(), after, upto).await?;
            let full = page.len() as i64 == PAGE;
            for a in page {
                after = a.seq;
                backlog.push_back(frame(a.seq, &a.kind, &a.payload));
            }
            if !full {
                break;
            }
        }
        Ok(Ok(AlertStream {
            rx,
            backlog,
            caught_up: after,
            last: after,
            in_order: self.inner.store.is_shared(),
            close,
            _permit: permit,
        }))
    }

    /// Closes every open stream of `subscriber` (forgotten): at once, in this process.
    pub fn close_subscriber(&self, subscriber: &str) {
        if let Ok(watched) = self.inner.watched.lock() {
            for w in watched.values().filter(|w| w.subscriber == subscriber) {
                w.close.cancel();
            }
        }
    }

    /// Checks who opened each open stream again, and closes those that may no longer read
    /// it: their subscriber is gone, the subscriber token is no longer the subscriber's, or the
    /// staff token was revoked. Returns how many were closed. Reads nothing while no stream is
    /// open; otherwise one read per [`CHECK_CHUNK`] subscribers and one per staff token.
    pub async fn revalidate(&self, tokens: &Tokens) -> Result<usize, NotifyError> {
        let open: Vec<(String, Opener, CancellationToken)> = match self.inner.watched.lock() {
            Ok(w) => w
                .values()
                .filter(|w| !w.close.is_cancelled())
                .map(|w| (w.subscriber.clone(), w.opener.clone(), w.close.clone()))
                .collect(),
            Err(_) => return Ok(0),
        };
        if open.is_empty() {
            return Ok(0);
        }
        let mut subscribers: Vec<String> = open.iter().map(|(s, _, _)| s.clone()).collect();
        subscribers.sort();
        subscribers.dedup();
        // Each subscriber still here, with the digest of their token.
        let mut present: HashMap<String, Vec<u8>> = HashMap::new();
        for chunk in subscribers.chunks(CHECK_CHUNK) {
            let chunk = chunk.to_vec();
            // Not one of [`Self::reads`] (what bringing alerts to streams costs): a check costs
            // the same whatever alerts are queued.
            metrics::counter!("newsroom_alert_stream_checks_total").increment(1);
            let rows: Vec<(String, Vec<u8>)> = self
                .inner
                .store
                .read(move |c| {
                    let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("?{i}")).collect();
                    let sql = format!(
                        "SELECT id, token_hash FROM subscribers WHERE id IN ({})",
                        marks.join(", ")
                    );
                    let args: Vec<&dyn Arg> = chunk.iter().map(|s| s as &dyn Arg).collect();
                    Ok(c.statement(&sql)?
                        .query_map(&args, |r| Ok((r.get(0)?, r.get(1)?)))?
                        .collect::<Result<_, _>>()?)
                })
                .await?;
            present.extend(rows);
        }
        let mut staff: HashMap<String, bool> = HashMap::new();
        for (_, opener, _) in &open {
            if let Opener::Staff(id) = opener {
                if !staff.contains_key(id) {
                    let live = tokens.is_live(id.clone()).await?;
                    staff.insert(id.clone(), live);
                }
            }
        }
        let mut closed = 0;
        for (subscriber, opener, close) in open {
            let allowed = match (present.get(&subscriber), &opener) {
                (None, _) => false,
                (Some(hash), Opener::Subscriber(opened_with)) => hash[..] == opened_with[..],
                (Some(_), Opener::Staff(id)) => staff.get(id).copied().unwrap_or(false),
            };
            if !allowed {
                close.cancel();
                closed += 1;
            }
        }
        if closed > 0 {
            metrics::counter!("newsroom_alert_streams_revoked_total").increment(closed as u64);
            tracing::info!(
                closed,
                "alert streams closed: their opener may no longer read them"
            );
        }
        Ok(closed)
    }

    /// Checks the open streams' openers every `every` until `shutdown` completes.
    pub async fn revalidate_until_stopped(
        self,
        tokens: Tokens,
        every: Duration,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), NotifyError> {
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => return Ok(()),
                _ = tokio::time::sleep(every) => {},
            }
            if let Err(e) = self.revalidate(&tokens).await {
                tracing::warn!(error = %e, "checking who opened alert streams failed; retrying");
            }
        }
    }

    /// A page of `subscriber`'s immediate alerts after `after`, oldest first.
    async fn alerts_after(
        &self,
        subscriber: String,
        after: i64,
        upto: i64,
    ) -> Result<Vec<QueuedAlert>, NotifyError> {
        self.count_read();
        self.inner
            .store
            .read(move |c| {
                Ok(c.statement(
                    "SELECT seq, type, payload FROM alerts
                     WHERE subscriber_id = ?1 AND mode = 'immediate' AND seq > ?2 AND seq <= ?4
                     ORDER BY seq LIMIT ?3",
                )?
                .query_map(args![&subscriber, after, PAGE, upto], |r| {
                    Ok(QueuedAlert {
                        subscriber: subscriber.clone(),
                        seq: r.get(0)?,
                        kind: r.get(1)?,
                        payload: r.get(2)?,
                    })
                })?
                .collect::<Result<_, _>>()?)
            })
            .await
    }

    /// With a shared queue: publishes, in queue order, the alerts any process queued, until
    /// `shutdown` completes. Wakes when this process queued alerts (`queued`) and every second.
    pub async fn follow_shared_queue(
        self,
        mut queued: watch::Receiver<u64>,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), NotifyError> {
        if !self.inner.store.is_shared() {
            return Ok(());
        }
        tokio::pin!(shutdown);
        loop {
            match self.look().await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "reading new alerts for streams failed; retrying");
                }
            }
            tokio::select! {
                _ = &mut shutdown => return Ok(()),
                _ = queued.changed() => {},
                _ = tokio::time::sleep(POLL) => {},
            }
        }
    }

    /// The queue's horizon: no alert can still appear at or below it
    /// ([`crate::store::alert_horizon`]).
    async fn newest(&self) -> Result<i64, NotifyError> {
        self.inner.store.read(alert_horizon).await
    }

    /// One look at the shared queue; whether a full page came (look again at once).
    async fn look(&self) -> Result<bool, NotifyError> {
        let after = {
            let mut guard = self.inner.channels.lock().expect("alert hub lock");
            guard.by_subscriber.retain(|_, tx| tx.receiver_count() > 0);
            if guard.by_subscriber.is_empty() {
                // Nobody listens: nothing to read. A stream that opens sets where to start.
                guard.cursor = None;
            }
            guard.cursor
        };
        let Some(after) = after else {
            return Ok(false);
        };
        self.count_read();
        // Copies queue alerts side by side: only what is below the horizon is read, so an
        // alert whose `seq` was taken early and committed late is never skipped.
        let (page, horizon): (Vec<QueuedAlert>, i64) = self
            .inner
            .store
            .read(move |c| {
                let horizon = alert_horizon(c)?;
                let page = c
                    .statement(
                        "SELECT seq, subscriber_id, type, payload FROM alerts
                         WHERE seq > ?1 AND seq <= ?3 AND mode = 'immediate'
                         ORDER BY seq LIMIT ?2",
                    )?
                    .query_map(args![after, PAGE, horizon], |r| {
                        Ok(QueuedAlert {
                            seq: r.get(0)?,
                            subscriber: r.get(1)?,
                            kind: r.get(2)?,
                            payload: r.get(3)?,
                        })
                    })?
                    .collect::<Result<_, _>>()?;
                Ok((page, horizon))
            })
            .await?;
        let reached = if page.len() as i64 == PAGE {
            page.last().map_or(after, |a| a.seq)
        } else {
            horizon.max(after)
        };
        {
            let mut guard = self.inner.channels.lock().expect("alert hub lock");
            // A stream that opened meanwhile may have moved the cursor back: it stays there
            // (streams skip what they already sent).
            if guard.cursor == Some(after) {
                guard.cursor = Some(reached);
            }
        }
        self.hand_out(&page);
        Ok(page.len() as i64 == PAGE)
    }
}

/// A place among the open streams, given back when the stream ends.
#[derive(Debug)]
struct Permit {
    hub: AlertHub,
    address: Option<IpAddr>,
    /// The stream's number among the watched.
    stream: u64,
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Ok(mut watched) = self.hub.inner.watched.lock() {
            watched.remove(&self.stream);
        }
        if let Ok(mut open) = self.hub.inner.open.lock() {
            open.total = open.total.saturating_sub(1);
            if let Some(ip) = self.address {
                if let Some(n) = open.per_address.get_mut(&ip) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        open.per_address.remove(&ip);
                    }
                }
            }
            metrics::gauge!("newsroom_alert_streams").set(open.total as f64);
        }
    }
}

/// One open stream of a subscriber's alerts.
#[derive(Debug)]
pub struct AlertStream {
    rx: broadcast::Receiver<Arc<Frame>>,
    /// What it missed, read when it opened.
    backlog: VecDeque<Bytes>,
    /// The newest alert the catch-up read: the hub's frames up to it were sent from the backlog.
    caught_up: i64,
    /// The newest alert sent.
    last: i64,
    /// Whether the hub hands alerts out in queue order (a shared queue, read by the hub, which
    /// may read some twice). With the queue in SQLite the matcher and the digester hand out
    /// their own commits, each alert once but not always in queue order: a digest may come just
    /// before the matcher's batch queued ahead of it, and is not a reason to drop the batch.
    in_order: bool,
    /// Cancelled when whoever opened it may no longer read it.
    close: CancellationToken,
    _permit: Permit,
}

enum Next {
    Send(Bytes),
    KeepAlive,
    Behind,
    Revoked,
    Closed,
}

/// The last event of a stream whose opener may no longer read it.
const REVOKED_FRAME: &[u8] = b"event: closed\ndata: {\"reason\":\"the token that opened this stream was revoked, or its subscriber is gone\"}\n\n";

impl AlertStream {
    async fn next(&mut self) -> Next {
        if self.close.is_cancelled() {
            return Next::Revoked;
        }
        if let Some(b) = self.backlog.pop_front() {
            return Next::Send(b);
        }
        loop {
            let received = tokio::select! {
                _ = self.close.cancelled() => return Next::Revoked,
                r = self.rx.recv() => r,
                _ = tokio::time::sleep(KEEP_ALIVE) => return Next::KeepAlive,
            };
            match received {
                Ok(f) if f.seq > self.caught_up && (!self.in_order || f.seq > self.last) => {
                    self.last = self.last.max(f.seq);
                    return Next::Send(f.bytes.clone());
                }
                // Already sent (from the catch-up, or read twice by the hub).
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    metrics::counter!("newsroom_alert_streams_cut_total").increment(1);
                    return Next::Behind;
                }
                Err(broadcast::error::RecvError::Closed) => return Next::Closed,
            }
        }
    }

    /// The response body: server-sent events, ending with a `resume` event if it fell behind.
    pub fn into_body(self) -> Body {
        let stream = futures_util::stream::unfold(Some(self), |s| async move {
            let mut s = s?;
            match s.next().await {
                Next::Send(b) => Some((Ok::<_, Infallible>(b), Some(s))),
                Next::KeepAlive => Some((Ok(Bytes::from_static(b":\n\n")), Some(s))),
                Next::Behind => Some((Ok(resume_frame(s.last)), None)),
                Next::Revoked => Some((Ok(Bytes::from_static(REVOKED_FRAME)), None)),
                Next::Closed => None,
            }
        });
        Body::from_stream(stream)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(subscriber: &str, seq: i64) -> QueuedAlert {
        QueuedAlert {
            subscriber: subscriber.into(),
            seq,
            kind: "story.update".into(),
            payload: format!(r#"{{"n":{seq}}}"#),
        }
    }

    #[tokio::test]
    async fn a_stream_that_falls_behind_is_cut_with_a_resume_event_and_others_go_on() {
        let dir = tempfile::tempdir().unwrap();
        let store = NotifierStore::open(&dir.path().join("notifier.db")).unwrap();
        let hub = AlertHub::new(
            store,
            StreamLimits {
                per_address: 8,
                total: 100,
            },
        );
        let mut slow = hub
            .open("a".into(), 0, None, Opener::Subscriber([0; 32]))
            .await
            .unwrap()
            .unwrap();
        let mut other = hub
            .open("b".into(), 0, None, Opener::Subscriber([0; 32]))
            .await
            .unwrap()
            .unwrap();
        hub.publish(&[alert("a", 1)]);
        assert!(matches!(slow.next().await, Next::Send(b) if b.starts_with(b"id: 1\n")));
        // The slow reader does not read while more than the channel holds comes in.
        let many: Vec<QueuedAlert> = (2..=CAPACITY as i64 + 10).map(|n| alert("a", n)).collect();
        hub.publish(&many);
        hub.publish(&[alert("b", 5_000)]);
        assert!(matches!(slow.next().await, Next::Behind));
        let last = resume_frame(slow.last);
        let last = String::from_utf8_lossy(&last);
        assert!(last.contains("event: resume\n"), "{last}");
        assert!(
            last.contains(r#""last_event_id":1}"#),
            "resumes after what it got: {last}"
        );
        // Another subscriber's stream is not held back by it.
        assert!(matches!(other.next().await, Next::Send(b) if b.starts_with(b"id: 5000\n")));
        // Alerts handed out out of queue order (in SQLite mode a digest may be handed out
        // before the matcher's batch committed ahead of it) are all sent.
        hub.publish(&[alert("b", 4_000), alert("b", 3_999)]);
        assert!(matches!(other.next().await, Next::Send(b) if b.starts_with(b"id: 4000\n")));
        assert!(matches!(other.next().await, Next::Send(b) if b.starts_with(b"id: 3999\n")));
        assert_eq!(hub.open_streams(), 2);
        drop(slow);
        assert_eq!(hub.open_streams(), 1, "a cut stream gives its place back");
    }

    #[tokio::test]
    async fn an_ipv6_client_is_capped_by_its_64_not_by_each_address_in_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = NotifierStore::open(&dir.path().join("notifier.db")).unwrap();
        let hub = AlertHub::new(
            store,
            StreamLimits {
                per_address: 2,
                total: 100,
            },
        );
        let from = |a: &str| Some(a.parse::<IpAddr>().unwrap());
        let open = |address| hub.open("a".into(), 0, address, Opener::Subscriber([0; 32]));
        let first = open(from("2001:db8:1:2::1")).await.unwrap().unwrap();
        let _second = open(from("2001:db8:1:2:ffff::9")).await.unwrap().unwrap();
        assert!(
            open(from("2001:db8:1:2:abcd::7")).await.unwrap().is_err(),
            "a third address of the same /64 is refused"
        );
        let _elsewhere = open(from("2001:db8:1:3::1")).await.unwrap().unwrap();
        drop(first);
        assert!(
            open(from("2001:db8:1:2:abcd::7")).await.unwrap().is_ok(),
            "closing one frees the /64's place"
        );
    }

    #[test]
    fn an_alert_is_one_event_named_by_its_type_with_its_sequence_as_id() {
        let f = frame(42, "story.correction", r#"{"type":"story.correction"}"#);
        assert_eq!(
            &f[..],
            b"id: 42\nevent: story.correction\ndata: {\"type\":\"story.correction\"}\n\n"
        );
        let f = frame(1, "a\nb", "x\ny");
        assert_eq!(&f[..], b"id: 1\nevent: ab\ndata: x y\n\n");
    }
}
