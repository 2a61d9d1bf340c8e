//! The projector: follows the global feed from the views' checkpoints and applies each batch of
//! events to the views in one transaction, checkpoint included.
//!
//! Crash anywhere and the views are as of the last committed batch; the next run starts from the
//! checkpoint, and an event at or before a view's checkpoint is never applied again. The store's
//! commit signal only wakes the projector; without it the projector still polls.
//!
//! A batch is at most `BATCH` (1,000) events, read from the checkpoint; the batch step (`batch.rs`)
//! decides what it changes and which rows it writes, the same for both databases. Between batches
//! the projector keeps each story it touched as a *stored* `StoryView` (its own fields, its
//! published count and windows of its newest times, never its developments) in an LRU of 1,000
//! stories (`Projector::with_memory`), dropped if anyone else wrote the views (the stored
//! checkpoint is not the one it wrote last).
//!
//! A `--role projector` process follows the JetStream stream (`Projector::with_stream`, a
//! `newsroom_log::consumer::JetStreamFeed`), each copy with its own durable consumer, acknowledging
//! a batch only after its transaction commits, and handing back what it took and did not apply when
//! it stops; copies share the views in PostgreSQL (`pg.rs`). A failing log or stream is waited out
//! (`newsroom_log::consumer::Pacing`) and reported at `/healthz` (`FollowerStatus`).

use std::future::Future;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use newsroom_log::consumer::{FollowerStatus, JetStreamFeed, Pacing};
use newsroom_log::EventLog;
use tokio::sync::watch;
use uuid::Uuid;

use crate::batch::Batch;
use crate::rows::{ViewError, BATCH, WINDOW};
use crate::store::ViewStore;
use newsroom_readmodel::decode::{decode, DecodeError};
use newsroom_readmodel::model::StoryView;

/// How long the projector sleeps when no commit signal reaches it (another process writes).
const POLL: Duration = Duration::from_millis(500);

#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error(transparent)]
    View(#[from] ViewError),
    #[error("reading the event feed failed: {0}")]
    Feed(#[from] newsroom_log::StoreError),
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error("following the event stream failed: {0}")]
    Stream(#[from] newsroom_log::relay::RelayError),
}

/// Applies the feed to the views.
pub struct Projector {
    source: EventLog,
    /// In scale-out mode, the events come through JetStream (the log still fills gaps).
    stream: Option<JetStreamFeed>,
    views: ViewStore,
    cache: Arc<Mutex<lru::LruCache<Uuid, StoryView>>>,
    /// How many of a story's newest times it reads at least when it loads the story.
    window: usize,
    /// The checkpoint this projector last committed; if the stored one differs, someone else
    /// (a rebuild) changed the views and the cache is dropped.
    last_written: Option<i64>,
    position: watch::Sender<i64>,
    /// How its last step went, for `/healthz`.
    status: FollowerStatus,
}

impl std::fmt::Debug for Projector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Projector")
            .field("views", &self.views)
            .field("position", &*self.position.borrow())
            .finish()
    }
}

impl Projector {
    pub fn new(source: impl Into<EventLog>, views: ViewStore) -> Self {
        Self {
            source: source.into(),
            stream: None,
            views,
            cache: Arc::new(Mutex::new(lru::LruCache::new(
                NonZeroUsize::new(1_000).expect("non-zero"),
            ))),
            window: WINDOW,
            last_written: None,
            position: watch::channel(0).0,
            status: FollowerStatus::default(),
        }
    }

    /// Takes events from a durable JetStream consumer instead of reading the log; each batch is
    /// acknowledged after its transaction commits.
    /// How its last step went: shared with `/healthz`.
    pub fn status(&self) -> FollowerStatus {
        self.status.clone()
    }

    /// Keeps at most `stories` stories between batches (each its own fields and a few of its
    /// newest times, never its developments), and reads at least `window` of a story's newest
    /// times when it loads one (tests make both tiny, so that every path is taken).
    pub fn with_memory(mut self, stories: NonZeroUsize, window: usize) -> Self {
        self.cache = Arc::new(Mutex::new(lru::LruCache::new(stories)));
        self.window = window.max(1);
        self
    }

    pub fn with_stream(mut self, stream: JetStreamFeed) -> Self {
        self.stream = Some(stream);
        self
    }

    /// Changes whenever a batch commits, carrying the position the views reached.
    pub fn positions(&self) -> watch::Receiver<i64> {
        self.position.subscribe()
    }

    /// Applies one batch; returns how many events it read.
    pub async fn step(&mut self) -> Result<usize, ProjectionError> {
        let start = self.views.position().await?;
        let feed = match &mut self.stream {
            Some(stream) => stream.next_batch(start, BATCH, POLL).await?,
            None => self.source.read_feed(start, BATCH).await?,
        };
        if feed.is_empty() {
            if let Some(stream) = &mut self.stream {
                // Redelivered events the views already hold.
                stream.commit().await?;
            }
            self.position.send_if_modified(|p| {
                let changed = *p != start;
                *p = start;
                changed
            });
            return Ok(0);
        }
        let events = feed.iter().map(decode).collect::<Result<Vec<_>, _>>()?;
        let batch = Batch {
            events,
            cache: self.cache.clone(),
            last_written: self.last_written,
            window: self.window,
            marks: self.views.marks(),
        };
        let result = self.views.apply_batch(batch).await?;
        {
            let mut cache = self.cache.lock().expect("cache lock");
            for view in result.views {
                cache.put(view.id, view);
            }
        }
        self.last_written = Some(result.position);
        if let Some(stream) = &mut self.stream {
            stream.commit().await?;
        }
        metrics::counter!("newsroom_projection_events_total").increment(result.applied as u64);
        metrics::counter!("newsroom_projection_batches_total").increment(1);
        metrics::gauge!("newsroom_projection_position").set(result.position as f64);
        self.position.send_replace(result.position);
        Ok(feed.len())
    }

    /// Applies everything committed so far.
    pub async fn catch_up(&mut self) -> Result<(), ProjectionError> {
        while self.step().await? == BATCH {}
        Ok(())
    }

    /// Follows the feed until `shutdown` completes.
    pub async fn run_until_stopped(
        mut self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), ProjectionError> {
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
            let at = Some(*self.position.borrow());
            if !pacing
                .after("projecting", step, at, BATCH, shutdown.as_mut())
                .await
            {
                break;
            }
        }
        // Hand back what was taken and not applied, for this or another copy to apply.
        if let Some(stream) = &mut self.stream {
            stream.give_back().await?;
        }
        Ok(())
    }
}
