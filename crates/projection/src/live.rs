//! Live streams of stories as a broadcast: what `/v1/stories/{id}/stream` (and so every open
//! story page) is served from.
//!
//! One task per process, the **hub**, follows the views' position. For each story that has open
//! streams it keeps a channel, not the story: as the views move, each new event of a watched story
//! is read from the log's feed once and described once — with the story as it stood right after it,
//! read from the views' history (`crate::history`), so what it costs does not grow with the story —
//! its reader-visible change serialised once into the bytes of one server-sent event, kept in a
//! short ring (for streams that resume) and handed to every open stream of that story through a
//! `tokio::sync::broadcast` channel. Events of stories nobody watches are skipped without being
//! decoded, and with no stream open at all the hub reads nothing but the views' position — a write
//! costs the same however many readers other stories have.
//!
//! A stream never slows the others: one that falls more than the channel's capacity behind (a
//! reader that does not read) is sent a final `resume` event and closed; its client reconnects
//! with `Last-Event-ID` and resumes exactly after what it got — from the ring if it still holds
//! the position, otherwise from that story's own events after the id, read from the log and
//! described as they stood then.
//!
//! Open streams are capped per client address and in total (429 / 503 with `Retry-After`).
//!
//! The hub also publishes the views' position it last read (`reached`): a read waiting for
//! `min_position` waits on that signal instead of polling the views itself.
//!
//! The hub is woken by the in-process projector, and polls every 100 ms (`POLL`) for views moved by
//! another process. A change of the claims ledger is described with the ledger as it stands. Each
//! change is rendered once as the change JSON plus the page's markup for it
//! (`pages::story::timeline_item`, `pages::story::claims_markup`), so `live.js` updates a page
//! without asking for anything. A stream joins the changes already waiting for it into one write
//! (up to `COALESCE_BYTES`, 64 KiB), so a burst costs it one write, not one per change. A stream
//! more than [`LiveLimits::buffer`] changes behind is sent a final `resume` event with a jittered
//! `retry:`. `?after=` resumes like `Last-Event-ID`. The caps are [`LiveLimits::per_address`] and
//! [`LiveLimits::total`] (configured as `live_streams_per_address` and `live_streams_total`:
//! `NEWSROOM_LIVE_STREAMS_PER_ADDRESS`, `NEWSROOM_LIVE_STREAMS_TOTAL`).
//!
//! **Architecture invariant:** the cost of a write does not depend on how many readers other
//! stories have: nothing per stream runs when the log moves; per story with readers, one
//! description and one serialisation per event. The hub tells nothing of an embargoed development's
//! recording.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use newsroom_log::EventLog;
use serde::Serialize;
use tokio::sync::{broadcast, watch};
use uuid::Uuid;

use crate::history::{stories_after, HistoryError};
use crate::pages;
use crate::resource::{change_of, Change};
use crate::rows::{PageRead, ViewError};
use crate::store::ViewStore;
use newsroom_readmodel::decode::{decode, DecodeError};
use newsroom_readmodel::model::{ClaimsAsk, LoggedEvent, StoryView};

/// How often the hub looks at the views' position when no in-process projector tells it (a
/// projector in another process, or a copy sharing the views, moved them).
const POLL: Duration = Duration::from_millis(100);
/// Keep-alive comments go to every open stream this often.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// A story nobody watches any more is forgotten after this long (a reader reconnecting within
/// it resumes from memory).
const IDLE_KEEP: Duration = Duration::from_secs(60);
/// Events read from the log per page while following the views.
const PAGE: usize = 1_000;
/// The recent changes of a story kept for streams that resume: at most `LiveLimits::ring` of
/// them, and at most this many bytes.
const RING_BYTES: usize = 1 << 20;
/// The most bytes of waiting changes a stream joins into one write.
const COALESCE_BYTES: usize = 64 * 1024;

/// Caps on open streams, and how far behind a stream may fall before it is cut off.
#[derive(Debug, Clone, Copy)]
pub struct LiveLimits {
    /// Open streams per client address (429 beyond).
    pub per_address: usize,
    /// Open streams in this process (503 beyond).
    pub total: usize,
    /// Changes a stream may have waiting before it is cut off. The hub hands out what a batch
    /// of the projector changed at once, so this is also the largest burst on one story that
    /// keeps every stream open.
    pub buffer: usize,
    /// Recent changes kept per story for streams that resume.
    pub ring: usize,
}

impl Default for LiveLimits {
    fn default() -> Self {
        Self {
            per_address: 64,
            total: 10_000,
            buffer: 1_024,
            ring: 1_024,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error(transparent)]
    View(#[from] ViewError),
    #[error(transparent)]
    History(#[from] HistoryError),
    #[error("reading the event feed failed: {0}")]
    Feed(#[from] newsroom_log::StoreError),
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("no story {0}")]
    NotFound(Uuid),
    #[error("too many open streams from this address")]
    TooManyFromAddress,
    #[error("too many open streams")]
    TooMany,
}

/// One change as a server-sent event, serialised once for every stream of its story.
#[derive(Debug, Clone)]
struct Frame {
    /// The change's global position; keep-alive comments have none.
    position: Option<i64>,
    bytes: Bytes,
}

/// What the stream's data carries besides the change: the markup the story page shows for it,
/// rendered once, so that a page updates itself without asking the server for anything.
#[derive(Serialize)]
struct LiveChange<'a> {
    #[serde(flatten)]
    change: &'a Change,
    /// The development's timeline card (`<li>` content of `#timeline`), when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    html: Option<String>,
    /// The whole claims ledger (`#claims`), when the change may have changed it.
    #[serde(skip_serializing_if = "Option::is_none")]
    claims_html: Option<String>,
}

impl Frame {
    /// The frame of `change`, described from `view` (the story right after it); `ledger` is the
    /// story's claims ledger, for a change that may have changed it.
    fn of(view: &StoryView, change: &Change, ledger: Option<&(StoryView, Option<i64>)>) -> Self {
        let html = change
            .development
            .as_ref()
            .map(|d| pages::story::timeline_item(view, d).into_string());
        let claims_html =
            ledger.map(|(l, older)| pages::story::claims_markup(l, *older).into_string());
        let data = LiveChange {
            change,
            html,
            claims_html,
        };
        let json = serde_json::to_string(&data).unwrap_or_else(|_| "{}".to_owned());
        let text = format!(
            "id: {}\nevent: {}\ndata: {json}\n\n",
            change.position, change.change
        );
        Frame {
            position: Some(change.position),
            bytes: Bytes::from(text),
        }
    }

    fn keep_alive() -> Self {
        Frame {
            position: None,
            bytes: Bytes::from_static(b":\n\n"),
        }
    }
}

/// Whether a change may change the claims ledger.
fn touches_ledger(change: &Change) -> bool {
    change.development.as_ref().is_some_and(|d| d.in_ledger())
}

/// One watched story.
struct Channel {
    tx: broadcast::Sender<Frame>,
    /// The position of the newest event of the story handed out (or in the views when the
    /// channel opened).
    position: i64,
    /// The latest changes, oldest first.
    ring: VecDeque<Frame>,
    ring_bytes: usize,
    /// Every change after this position is in `ring` or still to come; older ones only the
    /// log has.
    floor: i64,
    /// When the last stream went away, if none is open.
    idle_since: Option<Instant>,
    ring_frames: usize,
}

impl Channel {
    fn new(position: i64, limits: &LiveLimits) -> Self {
        Self {
            tx: broadcast::channel(limits.buffer.max(1)).0,
            ring_frames: limits.ring,
            floor: position,
            position,
            ring: VecDeque::new(),
            ring_bytes: 0,
            idle_since: None,
        }
    }

    /// Hands one change of this story to every stream, and keeps it in the ring.
    fn publish(&mut self, position: i64, frame: Option<Frame>) {
        self.position = self.position.max(position);
        let Some(frame) = frame else {
            return;
        };
        self.ring_bytes += frame.bytes.len();
        self.ring.push_back(frame.clone());
        while self.ring.len() > self.ring_frames || self.ring_bytes > RING_BYTES {
            let Some(old) = self.ring.pop_front() else {
                break;
            };
            self.ring_bytes -= old.bytes.len();
            self.floor = old.position.unwrap_or(self.floor);
        }
        // No receiver is fine: nobody is reading right now.
        let _ = self.tx.send(frame);
    }
}

struct HubState {
    /// The views' position up to which every watched story has been folded.
    cursor: i64,
    stories: HashMap<Uuid, Channel>,
}

#[derive(Default)]
struct Open {
    total: usize,
    per_address: HashMap<IpAddr, usize>,
}

struct Inner {
    views: ViewStore,
    log: EventLog,
    limits: LiveLimits,
    state: tokio::sync::Mutex<HubState>,
    reached: watch::Sender<i64>,
    open: Mutex<Open>,
    /// Stories looked up in the views (one per story that gets a first reader).
    loads: AtomicU64,
    /// Events decoded and described (each once, whatever the number of streams).
    folded: AtomicU64,
    /// Story histories read from the log for resumes older than the ring.
    log_reads: AtomicU64,
}

/// The live streams of this process. Cheap to clone.
#[derive(Clone)]
pub struct LiveHub {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for LiveHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveHub")
            .field("limits", &self.inner.limits)
            .field("reached", &*self.inner.reached.borrow())
            .finish()
    }
}

/// Counters of the hub's work, for tests and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveStats {
    pub loads: u64,
    pub folded: u64,
    pub log_reads: u64,
    pub open_streams: usize,
    pub watched_stories: usize,
}

impl LiveHub {
    /// A hub starting at the views' current position.
    pub async fn new(
        views: ViewStore,
        log: EventLog,
        limits: LiveLimits,
    ) -> Result<Self, LiveError> {
        let at = views.position().await?;
        Ok(Self {
            inner: Arc::new(Inner {
                views,
                log,
                limits,
                state: tokio::sync::Mutex::new(HubState {
                    cursor: at,
                    stories: HashMap::new(),
                }),
                reached: watch::channel(at).0,
                open: Mutex::new(Open::default()),
                loads: AtomicU64::new(0),
                folded: AtomicU64::new(0),
                log_reads: AtomicU64::new(0),
            }),
        })
    }

    /// The views' position as last read by the hub; changes whenever it moves.
    pub fn reached(&self) -> watch::Receiver<i64> {
        self.inner.reached.subscribe()
    }

    pub fn stats(&self) -> LiveStats {
        let open = self.inner.open.lock().map(|o| o.total).unwrap_or(0);
        let watched = self
            .inner
            .state
            .try_lock()
            .map(|s| s.stories.len())
            .unwrap_or(0);
        LiveStats {
            loads: self.inner.loads.load(Ordering::Relaxed),
            folded: self.inner.folded.load(Ordering::Relaxed),
            log_reads: self.inner.log_reads.load(Ordering::Relaxed),
            open_streams: open,
            watched_stories: watched,
        }
    }

    /// Follows the views until `shutdown` completes: woken by `wake` (the in-process projector's
    /// commits), and every `POLL` for views moved by another process.
    pub async fn run_until_stopped(
        self,
        mut wake: watch::Receiver<i64>,
        shutdown: impl std::future::Future<Output = ()> + Send,
    ) {
        tokio::pin!(shutdown);
        let mut keep_alive = tokio::time::interval(KEEP_ALIVE);
        keep_alive.tick().await;
        loop {
            if let Err(e) = self.round().await {
                tracing::warn!(error = %e, "live streams could not follow the views");
            }
            tokio::select! {
                _ = &mut shutdown => break,
                _ = wake.changed() => {},
                _ = tokio::time::sleep(POLL) => {},
                _ = keep_alive.tick() => self.keep_alive().await,
            }
        }
        // Ends every open stream.
        self.inner.state.lock().await.stories.clear();
    }

    /// Brings every watched story up to the views' position and hands out their changes.
    pub async fn round(&self) -> Result<(), LiveError> {
        let upto = self.inner.views.position().await?;
        let mut state = self.inner.state.lock().await;
        if upto > state.cursor && !state.stories.is_empty() {
            // The watched stories' new events, decoded once each.
            let mut events = Vec::new();
            let mut after = state.cursor;
            'pages: while after < upto {
                let page = self.inner.log.read_feed(after, PAGE).await?;
                if page.is_empty() {
                    break;
                }
                for raw in &page {
                    if raw.position > upto {
                        break 'pages;
                    }
                    after = raw.position;
                    let Ok(story) = raw.story_id.parse::<Uuid>() else {
                        continue;
                    };
                    if state
                        .stories
                        .get(&story)
                        .is_some_and(|c| raw.position > c.position)
                    {
                        events.push(decode(raw)?);
                    }
                }
            }
            self.inner
                .folded
                .fetch_add(events.len() as u64, Ordering::Relaxed);
            for (e, frame) in events.iter().zip(self.frames(&events).await?) {
                if let Some(channel) = state.stories.get_mut(&e.story_id) {
                    channel.publish(e.position, frame);
                }
            }
        }
        if upto > state.cursor {
            state.cursor = upto;
        }
        let now = Instant::now();
        state.stories.retain(|_, c| {
            if c.tx.receiver_count() > 0 {
                c.idle_since = None;
                return true;
            }
            let since = *c.idle_since.get_or_insert(now);
            now.duration_since(since) < IDLE_KEEP
        });
        let cursor = state.cursor;
        drop(state);
        self.inner.reached.send_if_modified(|p| {
            let moved = cursor > *p;
            *p = (*p).max(cursor);
            moved
        });
        Ok(())
    }

    /// The frame of each of `events` (of watched stories, in log order), `None` where readers
    /// see no change: each described with the story as it stood right after it, from the views'
    /// history; the claims ledger, as it stands, for changes that may have changed it.
    async fn frames(&self, events: &[LoggedEvent]) -> Result<Vec<Option<Frame>>, LiveError> {
        let asked: Vec<&LoggedEvent> = events.iter().collect();
        let views = stories_after(&self.inner.log, &self.inner.views, &asked).await?;
        let mut ledgers: HashMap<Uuid, Option<(StoryView, Option<i64>)>> = HashMap::new();
        let mut frames = Vec::with_capacity(events.len());
        for (e, view) in events.iter().zip(views) {
            let Some((view, change)) = view.and_then(|v| change_of(&v, e).map(|c| (v, c))) else {
                frames.push(None);
                continue;
            };
            let ledger = if touches_ledger(&change) {
                if let Entry::Vacant(slot) = ledgers.entry(e.story_id) {
                    let read = self
                        .inner
                        .views
                        .story_page(e.story_id.to_string(), None, 1, ClaimsAsk::default())
                        .await?;
                    slot.insert(match read {
                        PageRead::Found(page) => Some((page.ledger, page.claims_older)),
                        _ => None,
                    });
                }
                ledgers.get(&e.story_id).and_then(Option::as_ref)
            } else {
                None
            };
            frames.push(Some(Frame::of(&view, &change, ledger)));
        }
        Ok(frames)
    }

    async fn keep_alive(&self) {
        let state = self.inner.state.lock().await;
        for c in state.stories.values() {
            let _ = c.tx.send(Frame::keep_alive());
        }
    }

    /// Counts a new stream against the caps.
    fn admit(&self, address: Option<IpAddr>) -> Result<Permit, LiveError> {
        // Counted per client: an IPv4 address or an IPv6 /64.
        let address = address.map(newsroom_web::serve::client_address);
        let mut open = self.inner.open.lock().map_err(|_| LiveError::TooMany)?;
        if open.total >= self.inner.limits.total {
            return Err(LiveError::TooMany);
        }
        if let Some(ip) = address {
            let n = open.per_address.entry(ip).or_default();
            if *n >= self.inner.limits.per_address {
                return Err(LiveError::TooManyFromAddress);
            }
            *n += 1;
        }
        open.total += 1;
        metrics::gauge!("newsroom_live_streams").set(open.total as f64);
        Ok(Permit {
            hub: self.inner.clone(),
            address,
        })
    }

    /// Opens a stream of `story`'s changes after `last` (a `Last-Event-ID`), or from now on.
    pub async fn open(
        &self,
        story: Uuid,
        last: Option<i64>,
        address: Option<IpAddr>,
    ) -> Result<LiveStream, LiveError> {
        let permit = self.admit(address)?;
        let mut state = self.inner.state.lock().await;
        let channel = match state.stories.entry(story) {
            Entry::Occupied(slot) => slot.into_mut(),
            Entry::Vacant(slot) => {
                // The story's position in the views, which are at or past the hub's cursor:
                // every event of the story the hub has not handed out yet is either at or
                // before it (and skipped) or still to come.
                let head = self
                    .inner
                    .views
                    .story_head(story.to_string())
                    .await?
                    .ok_or(LiveError::NotFound(story))?;
                self.inner.loads.fetch_add(1, Ordering::Relaxed);
                slot.insert(Channel::new(head.position, &self.inner.limits))
            }
        };
        channel.idle_since = None;
        // Under the hub's lock: changes up to `now` are in the ring or the log, later ones
        // will come through `rx`.
        let rx = channel.tx.subscribe();
        let now = channel.position;
        let last = last.unwrap_or(now);
        let mut backlog: VecDeque<Bytes> = channel
            .ring
            .iter()
            .filter(|f| f.position.is_some_and(|p| p > last))
            .map(|f| f.bytes.clone())
            .collect();
        let older = (last < channel.floor).then_some((last, channel.floor));
        drop(state);
        if let Some((after, upto)) = older {
            // Resuming from before what the ring holds: the story's own events after the id,
            // read without holding up the hub, each change then shown with the development as
            // it stands now.
            let events = self.story_events_since(story, after, upto).await?;
            let frames = self.frames(&events).await?;
            for f in frames.into_iter().flatten().rev() {
                backlog.push_front(f.bytes);
            }
        }
        Ok(LiveStream {
            backlog,
            rx,
            last: last.max(now),
            fell_behind: false,
            _permit: permit,
        })
    }

    async fn story_events_since(
        &self,
        story: Uuid,
        after: i64,
        upto: i64,
    ) -> Result<Vec<newsroom_readmodel::model::LoggedEvent>, LiveError> {
        self.inner.log_reads.fetch_add(1, Ordering::Relaxed);
        story_events_between(&self.inner.log, story, after, upto, usize::MAX).await
    }
}

/// A story's events with positions in `(after, upto]`, at most `max` of them, reading only
/// those: the sequence of the last event at or before `after` is found by bisecting the story's
/// (indexed) sequence numbers, then the events after it are read.
pub(crate) async fn story_events_between(
    log: &EventLog,
    story: Uuid,
    after: i64,
    upto: i64,
    max: usize,
) -> Result<Vec<newsroom_readmodel::model::LoggedEvent>, LiveError> {
    let id = story.to_string();
    // Find an upper bound of the story's sequences, doubling.
    let mut high = 1usize;
    while log.position_of(id.clone(), high).await?.is_some() {
        high *= 2;
    }
    // The largest sequence whose position is at or before `after` (0 if none).
    let mut low = 0usize;
    while high - low > 1 {
        let mid = low + (high - low) / 2;
        match log.position_of(id.clone(), mid).await? {
            Some(p) if p <= after => low = mid,
            _ => high = mid,
        }
    }
    let raw = log.story_events_after(id, low, Some(max)).await?;
    let mut events = Vec::new();
    for r in raw
        .iter()
        .filter(|r| r.position > after && r.position <= upto)
    {
        events.push(decode(r)?);
    }
    Ok(events)
}

/// A place among the open streams; given back when the stream ends.
struct Permit {
    hub: Arc<Inner>,
    address: Option<IpAddr>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Ok(mut open) = self.hub.open.lock() {
            open.total = open.total.saturating_sub(1);
            if let Some(ip) = self.address {
                if let Some(n) = open.per_address.get_mut(&ip) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        open.per_address.remove(&ip);
                    }
                }
            }
            metrics::gauge!("newsroom_live_streams").set(open.total as f64);
        }
    }
}

/// One open stream: what it owes its reader first, then what the story's channel hands out.
pub struct LiveStream {
    backlog: VecDeque<Bytes>,
    rx: broadcast::Receiver<Frame>,
    /// The newest position sent.
    last: i64,
    /// It fell behind while joining waiting changes: it ends after what it has sent.
    fell_behind: bool,
    _permit: Permit,
}

impl std::fmt::Debug for LiveStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveStream")
            .field("backlog", &self.backlog.len())
            .field("last", &self.last)
            .finish()
    }
}

/// Why a stream ends.
enum End {
    /// It fell more than the channel's capacity behind.
    FellBehind,
    /// The hub stopped.
    Closed,
}

/// The last event of a stream cut off for falling behind: reconnect (the browser's
/// `EventSource` does so by itself, sending `Last-Event-ID`) after a jittered pause, so that
/// readers cut off together do not all come back at once.
fn resume_frame(last: i64) -> Bytes {
    let retry = 1_000 + rand::random::<u64>() % 4_000;
    Bytes::from(format!(
        "retry: {retry}\nevent: resume\ndata: {{\"reason\":\"this stream fell behind; reconnect with Last-Event-ID to resume\",\"last_event_id\":{last}}}\n\n"
    ))
}

impl LiveStream {
    /// A frame the stream has not sent yet (a keep-alive, or a change after `last`).
    fn accept(&mut self, frame: Frame) -> Option<Bytes> {
        match frame.position {
            None => Some(frame.bytes),
            Some(p) if p > self.last => {
                self.last = p;
                Some(frame.bytes)
            }
            // Already sent from the backlog.
            Some(_) => None,
        }
    }

    /// The next bytes to send, or why the stream ends. Changes already waiting when one arrives
    /// go out with it, in one write (up to [`COALESCE_BYTES`]): a burst on a story costs each
    /// stream a write per burst, not per change.
    async fn next(&mut self) -> Result<Bytes, End> {
        if let Some(b) = self.backlog.pop_front() {
            return Ok(b);
        }
        if self.fell_behind {
            return Err(End::FellBehind);
        }
        let first = loop {
            match self.rx.recv().await {
                Ok(frame) => {
                    if let Some(b) = self.accept(frame) {
                        break b;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    metrics::counter!("newsroom_live_streams_cut_total").increment(1);
                    return Err(End::FellBehind);
                }
                Err(broadcast::error::RecvError::Closed) => return Err(End::Closed),
            }
        };
        let mut joined: Option<Vec<u8>> = None;
        while joined.as_ref().map_or(first.len(), Vec::len) < COALESCE_BYTES {
            match self.rx.try_recv() {
                Ok(frame) => {
                    if let Some(b) = self.accept(frame) {
                        joined
                            .get_or_insert_with(|| first.to_vec())
                            .extend_from_slice(&b);
                    }
                }
                // What was joined goes out first; the stream ends after it.
                Err(broadcast::error::TryRecvError::Lagged(_)) => {
                    metrics::counter!("newsroom_live_streams_cut_total").increment(1);
                    self.fell_behind = true;
                    break;
                }
                // Nothing more waiting (or the hub stopped: the next `recv` says so).
                Err(_) => break,
            }
        }
        Ok(joined.map_or(first, Bytes::from))
    }

    /// The response body: the server-sent events, ending with a `resume` event if it fell
    /// behind.
    pub fn into_body(self) -> Body {
        let stream = futures_util::stream::unfold(Some(self), |s| async move {
            let mut s = s?;
            match s.next().await {
                Ok(b) => Some((Ok::<_, Infallible>(b), Some(s))),
                // Cut off: one last event, then the end.
                Err(End::FellBehind) => Some((Ok(resume_frame(s.last)), None)),
                Err(End::Closed) => None,
            }
        });
        Body::from_stream(stream)
    }
}
