//! The projector: follows the global feed from the views' checkpoints and applies each batch of
//! events to the views in one transaction, checkpoint included.
//!
//! Crash anywhere and the views are as of the last committed batch; the next run starts from the
//! checkpoint, and an event at or before a view's checkpoint is never applied again. The store's
//! commit signal only wakes the projector; without it the projector still polls.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use newsroom_domain::StoryEvent;
use newsroom_log::consumer::{FollowerStatus, JetStreamFeed, Pacing};
use newsroom_log::EventLog;
use tokio::sync::watch;
use uuid::Uuid;

use crate::marks::{follow_batch, MarkSpacing};
use crate::search::SearchRow;
use crate::store::{
    development_by_id, load_stored, read_checkpoints, set_checkpoint, write_rows, ActorRow,
    BatchRows, DevelopmentRow, RelationRow, StoryRow, StoryVersionRow, SupersededRow, ViewError,
    ViewName, ViewStore, WINDOW,
};
use newsroom_readmodel::decode::{decode, DecodeError};
use newsroom_readmodel::model::{LoggedEvent, StoryView};

/// Most events applied in one transaction.
pub const BATCH: usize = 1_000;

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

pub(crate) struct BatchResult {
    pub(crate) applied: usize,
    pub(crate) position: i64,
    pub(crate) views: Vec<StoryView>,
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
        let cache = self.cache.clone();
        let (last_written, window, marks) = (self.last_written, self.window, self.views.marks());
        let result = match self.views.postgres() {
            Some(pg) => {
                pg.apply_batch(&events, &cache, last_written, window, marks)
                    .await?
            }
            None => {
                self.views
                    .write(move |tx| apply_batch(tx, &events, &cache, last_written, window, marks))
                    .await?
            }
        };
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

/// What a batch changes: found by folding its events into its stories' views, then written by
/// whichever database holds the views. A batch writes what it changed, never a whole story.
#[derive(Debug, Default)]
pub(crate) struct Changes {
    /// Stories whose own row changes.
    pub(crate) stories: BTreeSet<Uuid>,
    /// Per story, the developments whose rows change.
    pub(crate) developments: BTreeMap<Uuid, BTreeSet<Uuid>>,
    /// Per story, the developments whose rows in the `actors` view change.
    pub(crate) actors: BTreeMap<Uuid, BTreeSet<Uuid>>,
    /// Events applied to the `stories` view.
    pub(crate) applied: usize,
    /// The `story_versions` rows of the events applied to the `stories` view.
    pub(crate) versions: Vec<StoryVersionRow>,
    /// The documents those events replaced.
    pub(crate) superseded: Vec<SupersededRow>,
    /// The relations those events set or removed.
    pub(crate) relations: Vec<RelationRow>,
}

/// The batch's events past `at`, the lower of the views' checkpoints: the others change
/// nothing (another projector sharing the views applied them), and their stories need not even
/// be loaded.
pub(crate) fn past(events: &[LoggedEvent], at: i64) -> &[LoggedEvent] {
    let first = events.partition_point(|e| e.position <= at);
    &events[first..]
}

impl Changes {
    /// The rows to write for these changes, from the folded stories in `taken`.
    pub(crate) fn rows(
        &mut self,
        taken: &HashMap<Uuid, StoryView>,
    ) -> Result<BatchRows, ViewError> {
        let mut rows = BatchRows {
            versions: std::mem::take(&mut self.versions),
            superseded: std::mem::take(&mut self.superseded),
            relations: std::mem::take(&mut self.relations),
            ..Default::default()
        };
        for id in &self.stories {
            rows.stories.push(StoryRow::of(&taken[id])?);
            // The search index's document of the story: its headline may have changed.
            rows.search.push(SearchRow::story(&taken[id]));
        }
        for (story, devs) in &self.developments {
            let view = &taken[story];
            for d in devs.iter().filter_map(|id| view.development(*id)) {
                rows.developments.push(DevelopmentRow::of(view, d)?);
                // Indexed again with every change (a correction, a retraction, a rejection).
                rows.search.push(SearchRow::development(view, d));
            }
        }
        for (story, devs) in &self.actors {
            let Some(view) = taken.get(story) else {
                continue;
            };
            for d in devs.iter().filter_map(|id| view.development(*id)) {
                rows.replaced.push(d.position);
                rows.actors.extend(ActorRow::of(d));
            }
        }
        Ok(rows)
    }
}

/// Takes the batch's stories out of the cache. Cached views are trusted only if nobody else
/// wrote since this projector did (`last_written` is still the stored checkpoint `at`).
pub(crate) fn take_cached(
    cache: &Mutex<lru::LruCache<Uuid, StoryView>>,
    events: &[LoggedEvent],
    last_written: Option<i64>,
    at: i64,
) -> Result<HashMap<Uuid, StoryView>, ViewError> {
    let mut cache = cache.lock().map_err(|e| ViewError::Task(e.to_string()))?;
    if last_written != Some(at) {
        cache.clear();
    }
    let mut taken = HashMap::new();
    for e in events {
        if let Some(v) = cache.pop(&e.story_id) {
            taken.insert(e.story_id, v);
        }
    }
    Ok(taken)
}

/// Per story of the batch, how many of its events change a development that was recorded
/// before: at most that many times leave each window of newest times.
pub(crate) fn removals(events: &[LoggedEvent]) -> HashMap<Uuid, usize> {
    let mut count = HashMap::new();
    for e in events {
        let changes = e.event.development_id().is_some()
            && !matches!(e.event, StoryEvent::DevelopmentRecorded { .. });
        *count.entry(e.story_id).or_default() += usize::from(changes);
    }
    count
}

/// The batch's stories that are not in `taken`, each once, with the length of window to read
/// for each: to be loaded from the views. Cached views whose windows could run out during the
/// batch are taken out of `taken` to be read again, longer.
pub(crate) fn missing(
    events: &[LoggedEvent],
    taken: &mut HashMap<Uuid, StoryView>,
    window: usize,
    removals: &HashMap<Uuid, usize>,
) -> Vec<(Uuid, usize)> {
    taken.retain(|id, view| !view.windows_too_short_for(removals[id]));
    let mut seen = BTreeSet::new();
    events
        .iter()
        .map(|e| e.story_id)
        .filter(|id| !taken.contains_key(id) && seen.insert(*id))
        .map(|id| (id, window.max(2 * (removals[&id] + 1))))
        .collect()
}

/// The developments the batch's events change (or record again) that their stored views do not
/// hold, each once: to be read from the views by id and held before folding.
pub(crate) fn unheld(
    events: &[LoggedEvent],
    taken: &HashMap<Uuid, StoryView>,
) -> Vec<(Uuid, Uuid)> {
    let mut seen = BTreeSet::new();
    events
        .iter()
        .filter_map(|e| {
            let id = taken.get(&e.story_id)?.unheld_target(e)?;
            seen.insert((e.story_id, id)).then_some((e.story_id, id))
        })
        .collect()
}

/// Folds the batch into `taken` (every stored story of the batch, cached or loaded; a story
/// absent from it is opened by its first event). Events at or before a view's checkpoint
/// change nothing in that view.
pub(crate) fn fold(
    events: &[LoggedEvent],
    stories_at: i64,
    actors_at: i64,
    taken: &mut HashMap<Uuid, StoryView>,
) -> Changes {
    let mut changes = Changes::default();
    for e in events {
        let view = match taken.entry(e.story_id) {
            Entry::Occupied(slot) => slot.into_mut(),
            Entry::Vacant(slot) => {
                if let Some(v) = StoryView::open(e) {
                    if e.position > stories_at {
                        changes.versions.push(StoryVersionRow::of(&v));
                    }
                    slot.insert(v);
                    changes.stories.insert(e.story_id);
                    changes.applied += 1;
                } else {
                    tracing::warn!(position = e.position, "event of a story never opened");
                }
                continue;
            }
        };
        if e.position > stories_at && e.position > view.position {
            changes.superseded.extend(SupersededRow::apply(view, e));
            changes.versions.push(StoryVersionRow::of(view));
            changes.relations.extend(RelationRow::of(e));
            changes.stories.insert(e.story_id);
            if let Some(dev) = e.event.development_id() {
                changes
                    .developments
                    .entry(e.story_id)
                    .or_default()
                    .insert(dev.as_uuid());
            }
            changes.applied += 1;
        }
        if e.position > actors_at {
            if let Some(dev) = e.event.development_id() {
                changes
                    .actors
                    .entry(e.story_id)
                    .or_default()
                    .insert(dev.as_uuid());
            }
        }
    }
    changes
}

/// The batch applied to SQLite views, in the caller's write transaction.
fn apply_batch(
    tx: &rusqlite::Transaction<'_>,
    events: &[LoggedEvent],
    cache: &Mutex<lru::LruCache<Uuid, StoryView>>,
    last_written: Option<i64>,
    window: usize,
    marks: MarkSpacing,
) -> Result<BatchResult, ViewError> {
    let checkpoints: HashMap<ViewName, i64> = read_checkpoints(tx)?
        .into_iter()
        .map(|(v, c)| (v, c.position))
        .collect();
    let stories_at = checkpoints[&ViewName::Stories];
    let actors_at = checkpoints[&ViewName::Actors];
    let last = events.last().map_or(0, |e| e.position);
    let events = past(events, stories_at.min(actors_at));
    let mut taken = take_cached(cache, events, last_written, stories_at.min(actors_at))?;
    let removals = removals(events);
    for (id, mut limit) in missing(events, &mut taken, window, &removals) {
        // (A window whose last times all share one step is read again, longer.)
        while let Some(v) = load_stored(tx, id, limit)? {
            if !v.windows_too_short_for(removals[&id]) {
                taken.insert(id, v);
                break;
            }
            limit *= 2;
        }
    }
    for (story, id) in unheld(events, &taken) {
        if let Some(d) = development_by_id(tx, story, id)? {
            taken.get_mut(&story).expect("taken above").hold(d);
        }
    }
    let mut changes = fold(events, stories_at, actors_at, &mut taken);
    let rows = changes.rows(&taken)?;
    write_rows(tx, &rows)?;
    follow_batch(tx, &rows.versions, marks)?;
    for view in ViewName::ALL {
        if last > checkpoints[&view] {
            set_checkpoint(tx, view, last)?;
        }
    }
    Ok(BatchResult {
        applied: changes.applied,
        position: last.max(stories_at.min(actors_at)),
        views: taken.into_values().map(StoryView::let_go_all).collect(),
    })
}
