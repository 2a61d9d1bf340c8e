//! Rebuilding views from the whole log: replay every event into fresh `_next` tables, then swap
//! them in with the new checkpoint in one transaction. Readers see the old view until the swap
//! and the new one after it, never a mix.

use std::collections::HashMap;

use indicatif::ProgressBar;
use newsroom_command::EventLog;
use uuid::Uuid;

use crate::decode::decode;
use crate::model::StoryView;
use crate::projector::ProjectionError;
use crate::store::{create_next, swap_in, write_actor_entries, write_story, ViewName, ViewStore};

/// Events read per page while replaying.
const PAGE: usize = 10_000;

/// What a rebuild did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebuildReport {
    pub views: Vec<ViewName>,
    pub events: u64,
    pub stories: usize,
    pub position: i64,
}

/// Replays the log up to its current head into every story's view, in memory.
pub async fn replay(
    source: &EventLog,
    progress: Option<&ProgressBar>,
) -> Result<(HashMap<Uuid, StoryView>, u64, i64), ProjectionError> {
    let mut stories: HashMap<Uuid, StoryView> = HashMap::new();
    // Up to the head as of the start: events committed meanwhile are the projector's.
    let head = source.current_head().await?;
    let (mut after, mut count) = (0, 0u64);
    while after < head {
        let mut page = source.read_feed(after, PAGE).await?;
        page.retain(|e| e.position <= head);
        let Some(last) = page.last() else { break };
        after = last.position;
        for raw in &page {
            let event = decode(raw)?;
            match stories.get_mut(&event.story_id) {
                Some(view) => view.apply(&event),
                None => {
                    if let Some(view) = StoryView::open(&event) {
                        stories.insert(event.story_id, view);
                    }
                }
            }
        }
        count += page.len() as u64;
        if let Some(p) = progress {
            p.set_position(after as u64);
        }
    }
    Ok((stories, count, after))
}

/// Rebuilds `views` (all when empty) from the log and swaps them in atomically.
pub async fn rebuild(
    source: &EventLog,
    views: &ViewStore,
    only: &[ViewName],
    progress: Option<ProgressBar>,
) -> Result<RebuildReport, ProjectionError> {
    let selected: Vec<ViewName> = if only.is_empty() {
        ViewName::ALL.to_vec()
    } else {
        only.to_vec()
    };
    if let Some(p) = &progress {
        p.set_length(source.current_head().await? as u64);
    }
    let (stories, events, position) = replay(source, progress.as_ref()).await?;
    let story_count = stories.len();
    let chosen = selected.clone();
    views
        .write(move |tx| {
            for view in &chosen {
                create_next(tx, *view)?;
            }
            for story in stories.values() {
                if chosen.contains(&ViewName::Stories) {
                    write_story(tx, story, "_next")?;
                }
                if chosen.contains(&ViewName::Actors) {
                    let devs: Vec<Uuid> = story.developments.iter().map(|d| d.id).collect();
                    write_actor_entries(tx, story, &devs, "_next")?;
                }
            }
            for view in &chosen {
                swap_in(tx, *view, position)?;
            }
            Ok(())
        })
        .await?;
    if let Some(p) = &progress {
        p.finish_with_message("rebuilt");
    }
    tracing::info!(events, stories = story_count, position, "views rebuilt");
    Ok(RebuildReport {
        views: selected,
        events,
        stories: story_count,
        position,
    })
}

/// Rebuilds every view whose stored schema version differs from the code's.
pub async fn rebuild_outdated(
    source: &EventLog,
    views: &ViewStore,
) -> Result<Option<RebuildReport>, ProjectionError> {
    let outdated: Vec<ViewName> = views
        .checkpoints()
        .await?
        .into_iter()
        .filter(|(view, cp)| cp.schema_version != view.schema_version())
        .map(|(view, _)| view)
        .collect();
    if outdated.is_empty() {
        return Ok(None);
    }
    tracing::info!(?outdated, "view schema changed; rebuilding from the log");
    rebuild(source, views, &outdated, None).await.map(Some)
}
