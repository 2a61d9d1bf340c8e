//! A story as readers saw it right after one of its events, read from the views' history
//! (`story_versions`, `development_versions`) instead of folding the story's events from the
//! start: how `?since=` and the notifier's matcher describe each change. What it reads is
//! bounded by the events asked about, whatever the story's length.
//!
//! [`stories_after`] describes events of any stories: the story's line from `story_versions`, the
//! development the event changed from its row or `development_versions`; where a development was
//! recorded comes from the event or the log's index of developments. Its users: `?since=`, the live
//! hub (`live.rs`), the notifier's matcher and the desk's notices. [`views_reached`] says whether
//! the views hold a position at the code's shape (what the matcher waits for).

use std::collections::{BTreeMap, HashMap};

use newsroom_domain::StoryEvent;
use newsroom_log::{EventLog, StoreError};
use uuid::Uuid;

use crate::rows::{ViewError, ViewName};
use crate::store::ViewStore;
use newsroom_readmodel::model::{LoggedEvent, StoryView};

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error(transparent)]
    View(#[from] ViewError),
    #[error("reading the log failed: {0}")]
    Log(#[from] StoreError),
}

/// For each of `events` (of any stories, each story's in log order), the story right after it,
/// as far as a reader of that change needs it: its line then (headline, tags, status, position)
/// and the development the event changed, as it stood then. `None` for an event the views hold
/// nothing of. The views must have applied the events ([`views_reached`]).
pub async fn stories_after(
    log: &EventLog,
    views: &ViewStore,
    events: &[&LoggedEvent],
) -> Result<Vec<Option<StoryView>>, HistoryError> {
    let mut by_story: BTreeMap<Uuid, Vec<usize>> = BTreeMap::new();
    for (i, e) in events.iter().enumerate() {
        by_story.entry(e.story_id).or_default().push(i);
    }
    let mut found: Vec<Option<StoryView>> = vec![None; events.len()];
    for (story, indexes) in by_story {
        // Where each changed development was recorded: its recording event, or the log's index.
        let mut recorded: HashMap<Uuid, i64> = HashMap::new();
        let mut named = Vec::new();
        for e in indexes.iter().map(|i| events[*i]) {
            match &e.event {
                StoryEvent::DevelopmentRecorded { development, .. } => {
                    recorded.insert(development.id.as_uuid(), e.position);
                }
                other => {
                    if let Some(d) = other.development_id() {
                        if !recorded.contains_key(&d.as_uuid()) && !named.contains(&d) {
                            named.push(d);
                        }
                    }
                }
            }
        }
        let key = story.to_string();
        let facts = log.developments(&key, named.clone()).await?;
        for d in &named {
            if let Some(state) = facts.development(d) {
                if let Some(p) = log.position_of(key.clone(), state.recorded_in).await? {
                    recorded.insert(d.as_uuid(), p);
                }
            }
        }
        let at = indexes
            .iter()
            .map(|i| {
                let e = events[*i];
                let d = e.event.development_id();
                (
                    e.position,
                    d.and_then(|d| recorded.get(&d.as_uuid()).copied()),
                )
            })
            .collect();
        for (i, view) in indexes.iter().zip(views.story_after(story, at).await?) {
            found[*i] = view;
        }
    }
    Ok(found)
}

/// Whether the views hold every event up to `position`, in the code's shape (a view being
/// rebuilt to a new shape does not count: its history may not be written yet).
pub async fn views_reached(views: &ViewStore, position: i64) -> Result<bool, ViewError> {
    Ok(views.checkpoints().await?.iter().any(|(view, c)| {
        *view == ViewName::Stories
            && c.schema_version == view.schema_version()
            && c.position >= position
    }))
}
