//! The projector's batch step, the same on both backends: which stories a batch changes, the
//! views it starts from (cached, or read back), and the fold of the batch's events into the rows
//! to write.
//!
//! `fold` decides what a batch changes (`Changes`: the stories, developments and actor rows its
//! events changed, and the history and relation rows they make) and `Changes::rows` the rows it
//! writes; each touched story's own row and only the development and actor rows its events changed
//! are written. What the step reads and keeps of a story costs what the batch changes, never the
//! story's length: a story is a *stored* `StoryView` (its own fields, its published count, and
//! windows of its newest times — `occurred_at` of the published and of the visible developments,
//! `published_at` — at least 16 each, read from the rows by index: `developments_timeline`,
//! `developments_published`), taken from the projector's cache (`take_cached`) or read back
//! (`missing`). Before folding the batch, the developments its events change or record again and
//! the stored views do not hold (`unheld`) are read by id (`developments_id`) and held; a window
//! the batch's changes could run out of (a story's newest developments retracted or moved back in
//! time, counted by `removals`) is read again, longer. After the batch the developments are let go
//! of. What is not in a window is never the newest, so the front-page line stays exact.
//!
//! [`apply`] is the step, written once: each backend gives it its reads and writes
//! ([`BatchIo`]) inside its own transaction — SQLite's writer connection (`projector.rs`), a
//! statement per story or development read, in process; PostgreSQL's (`pg.rs`), a statement per
//! kind of read or write, each taking the whole batch as arrays, so that a batch costs the same
//! few round trips however many stories it touches.

use crate::marks::MarkSpacing;
use crate::rows::SearchRow;
use crate::rows::{
    ActorRow, BatchRows, DevelopmentRow, RelationRow, StoryRow, StoryVersionRow, SupersededRow,
    ViewError, ViewName,
};
use newsroom_domain::StoryEvent;
use newsroom_readmodel::model::{DevelopmentView, LoggedEvent, StoryView};
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use uuid::Uuid;

/// What the batch step reads from and writes to the views, inside one transaction of a backend.
pub(crate) trait BatchIo {
    /// Each view's checkpoint (0 for a view without one); where projectors share the views,
    /// locked until the transaction ends.
    async fn checkpoints(&mut self) -> Result<HashMap<ViewName, i64>, ViewError>;
    /// The stored views of `stories` (id, and the least window of newest times to read), with
    /// the window each was read with; a story the views do not hold is left out.
    async fn stored(&mut self, stories: &[(Uuid, usize)]) -> Result<Stored, ViewError>;
    /// The developments `wanted` (story id, development id) that the views hold.
    async fn developments(&mut self, wanted: &[(Uuid, Uuid)]) -> Result<Held, ViewError>;
    /// Writes the rows of the batch of `events` and the front-page marks it reaches (`marks`
    /// apart), and moves the checkpoints of the views `behind` it to `last`.
    async fn write(&mut self, rows: &BatchRows, events: &[LoggedEvent], moved: Moved<'_>) -> Done;
}

/// Stored views read back, each with the window of newest times it was read with.
pub(crate) type Stored = Vec<(StoryView, usize)>;
/// Developments read by id, each with its story's id.
pub(crate) type Held = Vec<(Uuid, DevelopmentView)>;
/// What a batch's write did.
pub(crate) type Done = Result<(), ViewError>;

/// The checkpoints a batch moves: the views `behind` its last position, to `last`, and the
/// spacing of the front-page marks it writes.
#[derive(Clone, Copy)]
pub(crate) struct Moved<'a> {
    pub(crate) behind: &'a [ViewName],
    pub(crate) last: i64,
    pub(crate) marks: MarkSpacing,
}

/// A batch to apply: its events, and what the projector keeps from one batch to the next.
pub(crate) struct Batch {
    pub(crate) events: Vec<LoggedEvent>,
    /// The stored views of the stories this projector touched lately.
    pub(crate) cache: Arc<Mutex<lru::LruCache<Uuid, StoryView>>>,
    /// The position this projector last wrote: its cache is good only if no one wrote since.
    pub(crate) last_written: Option<i64>,
    /// The least window of newest times read of a story.
    pub(crate) window: usize,
    pub(crate) marks: MarkSpacing,
}

/// Applies a batch of events to the views through `io`, checkpoints included; the caller
/// commits.
pub(crate) async fn apply(io: &mut impl BatchIo, batch: &Batch) -> Result<BatchResult, ViewError> {
    let (events, cache, window) = (&batch.events[..], &batch.cache, batch.window);
    let checkpoints = io.checkpoints().await?;
    let at = |view| checkpoints.get(&view).copied().unwrap_or(0);
    let (stories_at, actors_at) = (at(ViewName::Stories), at(ViewName::Actors));
    let last = events.last().map_or(0, |e| e.position);
    let events = past(events, stories_at.min(actors_at));
    let mut taken = take_cached(cache, events, batch.last_written, stories_at.min(actors_at))?;
    let removals = removals(events);
    let mut absent = missing(events, &mut taken, window, &removals);
    while !absent.is_empty() {
        // (A window whose last times all share one step is read again, longer.)
        let stored = io.stored(&absent).await?;
        absent.clear();
        for (view, limit) in stored {
            if view.windows_too_short_for(removals[&view.id]) {
                absent.push((view.id, 2 * limit));
            } else {
                taken.insert(view.id, view);
            }
        }
    }
    let wanted = unheld(events, &taken);
    if !wanted.is_empty() {
        for (story, d) in io.developments(&wanted).await? {
            if let Some(view) = taken.get_mut(&story) {
                view.hold(d);
            }
        }
    }
    let mut changes = fold(events, stories_at, actors_at, &mut taken);
    let rows = changes.rows(&taken)?;
    let behind: Vec<ViewName> = ViewName::ALL
        .into_iter()
        .filter(|view| last > at(*view))
        .collect();
    let (behind, marks) = (&behind[..], batch.marks);
    io.write(
        &rows,
        events,
        Moved {
            behind,
            last,
            marks,
        },
    )
    .await?;
    Ok(BatchResult {
        applied: changes.applied,
        position: last.max(stories_at.min(actors_at)),
        views: taken
            .into_values()
            .map(|v| v.let_go_all(KEPT_WINDOWS * window))
            .collect(),
    })
}

pub(crate) struct BatchResult {
    pub(crate) applied: usize,
    pub(crate) position: i64,
    pub(crate) views: Vec<StoryView>,
}

/// A story kept between batches holds this many times its least window of newest times, so
/// that its windows seldom run short and are read again.
const KEPT_WINDOWS: usize = 4;

/// The batch's events past `at`, the lower of the views' checkpoints: the others change
/// nothing (another projector sharing the views applied them), and their stories need not even
/// be loaded.
pub(crate) fn past(events: &[LoggedEvent], at: i64) -> &[LoggedEvent] {
    let first = events.partition_point(|e| e.position <= at);
    &events[first..]
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
