//! Rebuilding views from the whole log: replay every event in memory (writing the views' history,
//! `story_versions` and `development_versions`, in chunks as the replay finds it), write fresh
//! `_next` tables, then swap them in with the new checkpoint in one transaction. Readers see the old view until
//! the swap and the new one after it, never a mix.
//!
//! It is a bulk load, pipelined over two threads: while one reads the next page of the feed, the
//! other decodes and folds the current one; while one serialises developments, the other inserts
//! the previous chunk. Rows go in in key order (developments by the position that recorded them),
//! in chunks of one transaction each (the `_next` tables are invisible until the swap, so a crash
//! mid-way loses nothing; the next rebuild drops them), and the secondary indexes are built once,
//! after the rows, when the tables are swapped in.

use std::collections::HashMap;
use std::sync::Arc;

use indicatif::ProgressBar;
use newsroom_command::{EventLog, FeedEvent};
use uuid::Uuid;

use crate::decode::decode;
use crate::model::StoryView;
use crate::pg::Replacement;
use crate::projector::ProjectionError;
use crate::store::{
    create_next, swap_in, ActorRow, DevelopmentRow, StoryRow, StoryVersionRow, SupersededRow,
    ViewError, ViewName, ViewStore,
};

/// Events read per page while replaying.
const PAGE: usize = 10_000;

/// Developments written per transaction while filling the `_next` tables.
const CHUNK: usize = 50_000;

/// The views' writer's page cache during a rebuild, in KiB: big enough that a chunk's
/// transaction and the index builds of the swap stay in memory instead of spilling.
const REBUILD_CACHE_KIB: i64 = 512 * 1024;

/// What a rebuild did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebuildReport {
    pub views: Vec<ViewName>,
    pub events: u64,
    pub stories: usize,
    pub position: i64,
}

fn stopped(e: tokio::task::JoinError) -> ProjectionError {
    ProjectionError::View(ViewError::Task(e.to_string()))
}

/// Replays the log up to its current head into every story's view, in memory. One task reads
/// feed pages ahead (at most two waiting) while a blocking thread decodes and folds them.
pub async fn replay(
    source: &EventLog,
    progress: Option<&ProgressBar>,
) -> Result<(HashMap<Uuid, StoryView>, u64, i64), ProjectionError> {
    replay_with(source, progress, None).await
}

/// What `as_of` reads, found while replaying: a chunk of rows for `story_versions` and
/// `development_versions`.
#[derive(Default)]
struct History {
    versions: Vec<StoryVersionRow>,
    superseded: Vec<SupersededRow>,
}

/// [`replay`], handing the rows of the views' history to `history` in chunks as it goes (they
/// are final as soon as they are found, so they are never all in memory at once).
async fn replay_with(
    source: &EventLog,
    progress: Option<&ProgressBar>,
    history: Option<tokio::sync::mpsc::Sender<History>>,
) -> Result<(HashMap<Uuid, StoryView>, u64, i64), ProjectionError> {
    // Up to the head as of the start: events committed meanwhile are the projector's.
    let head = source.current_head().await?;
    let (pages_tx, mut pages) = tokio::sync::mpsc::channel::<Vec<FeedEvent>>(2);
    let reader = {
        let source = source.clone();
        tokio::spawn(async move {
            let mut after = 0;
            while after < head {
                let mut page = source.read_feed(after, PAGE).await?;
                page.retain(|e| e.position <= head);
                let Some(last) = page.last() else { break };
                after = last.position;
                if pages_tx.send(page).await.is_err() {
                    break; // the fold failed; it reports why
                }
            }
            Ok::<(), ProjectionError>(())
        })
    };
    let progress = progress.cloned();
    let fold = tokio::task::spawn_blocking(move || {
        let mut stories: HashMap<Uuid, StoryView> = HashMap::new();
        let (mut after, mut count) = (0, 0u64);
        let mut found = history.as_ref().map(|_| History::default());
        while let Some(page) = pages.blocking_recv() {
            for raw in &page {
                let event = decode(raw)?;
                match stories.get_mut(&event.story_id) {
                    Some(view) => match &mut found {
                        Some(h) => {
                            h.superseded.extend(SupersededRow::apply(view, &event));
                            h.versions.push(StoryVersionRow::of(view));
                        }
                        None => view.apply(&event),
                    },
                    None => {
                        if let Some(view) = StoryView::open(&event) {
                            if let Some(h) = &mut found {
                                h.versions.push(StoryVersionRow::of(&view));
                            }
                            stories.insert(event.story_id, view);
                        }
                    }
                }
            }
            if let (Some(h), Some(tx)) = (&mut found, &history) {
                if h.versions.len() >= CHUNK && tx.blocking_send(std::mem::take(h)).is_err() {
                    break; // the writer failed; it reports why
                }
            }
            count += page.len() as u64;
            after = page.last().map_or(after, |e| e.position);
            if let Some(p) = &progress {
                p.set_position(after as u64);
            }
        }
        if let (Some(h), Some(tx)) = (found, &history) {
            let _ = tx.blocking_send(h);
        }
        Ok::<_, ProjectionError>((stories, count, after))
    });
    let folded = fold.await.map_err(stopped)?;
    // A failed read ends the fold early without an error of its own: report the read's first.
    reader.await.map_err(stopped)??;
    folded
}

/// One transaction's worth of rows for the `_next` tables.
#[derive(Default)]
struct Chunk {
    developments: Vec<DevelopmentRow>,
    actors: Vec<ActorRow>,
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
    let report = rebuild_chosen(source, views, selected, progress, false).await?;
    Ok(report.expect("a rebuild that is not conditional always happens"))
}

/// Rebuilds the `selected` views. With `only_outdated`, views in PostgreSQL that another
/// process brought to the code's shape meanwhile are left alone (`None`).
async fn rebuild_chosen(
    source: &EventLog,
    views: &ViewStore,
    selected: Vec<ViewName>,
    progress: Option<ProgressBar>,
    only_outdated: bool,
) -> Result<Option<RebuildReport>, ProjectionError> {
    if let Some(p) = &progress {
        p.set_length(source.current_head().await? as u64);
    }
    if let Some(pg) = views.postgres() {
        // One transaction replaces the rows; readers and other copies' projectors see the old
        // views until it commits, and the projectors wait for it.
        let Some(replacement) = pg.replace(&selected, only_outdated).await? else {
            tracing::info!("views were rebuilt by another process");
            return Ok(None);
        };
        let report = replay_and_fill(
            source,
            Target::Postgres(replacement),
            &selected,
            progress.as_ref(),
        )
        .await?;
        finished(progress, &report);
        return Ok(Some(report));
    }

    let chosen = selected.clone();
    // While the `_next` tables fill, the writer keeps a large page cache and commits without
    // checkpointing (with `synchronous = NORMAL` a commit then costs no fsync): the WAL is
    // copied into the database once, at the end, instead of after every chunk.
    let (cache_size, autocheckpoint): (i64, i64) = views
        .write(move |tx| {
            let cache: i64 = tx.query_row("PRAGMA cache_size", [], |r| r.get(0))?;
            let autocheckpoint: i64 =
                tx.query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0))?;
            tx.execute_batch(&format!("PRAGMA cache_size = -{REBUILD_CACHE_KIB}"))?;
            tx.query_row("PRAGMA wal_autocheckpoint = 0", [], |_| Ok(()))?;
            for view in &chosen {
                create_next(tx, *view)?;
            }
            Ok((cache, autocheckpoint))
        })
        .await?;
    let filled = replay_and_fill(source, Target::Sqlite(views), &selected, progress.as_ref()).await;
    // The writer goes back to its usual settings whether or not the rebuild succeeded.
    let restored = views
        .write(move |tx| {
            tx.execute_batch(&format!(
                "PRAGMA cache_size = {cache_size}; PRAGMA shrink_memory;"
            ))?;
            tx.query_row(
                &format!("PRAGMA wal_autocheckpoint = {autocheckpoint}"),
                [],
                |_| Ok(()),
            )?;
            Ok(())
        })
        .await;
    let report = filled?;
    restored?;
    views.checkpoint_wal().await?;
    finished(progress, &report);
    Ok(Some(report))
}

/// Replays the log, writing the views' history into `target` as it is found, then fills the
/// chosen views from the replayed stories and makes them the views.
async fn replay_and_fill(
    source: &EventLog,
    mut target: Target<'_>,
    selected: &[ViewName],
    progress: Option<&ProgressBar>,
) -> Result<RebuildReport, ProjectionError> {
    let (history_tx, mut history) = tokio::sync::mpsc::channel::<History>(2);
    let with_history = selected.contains(&ViewName::Stories);
    let replayed = replay_with(source, progress, with_history.then_some(history_tx));
    let written = async {
        while let Some(chunk) = history.recv().await {
            target.history(chunk).await?;
        }
        Ok::<(), ViewError>(())
    };
    let (replayed, written) = tokio::join!(replayed, written);
    let (stories, events, position) = replayed?;
    written?;
    let report = RebuildReport {
        views: selected.to_vec(),
        events,
        stories: stories.len(),
        position,
    };
    let stories: Arc<Vec<StoryView>> = Arc::new(stories.into_values().collect());
    fill(target, stories, selected, position).await?;
    Ok(report)
}

fn finished(progress: Option<ProgressBar>, report: &RebuildReport) {
    if let Some(p) = &progress {
        p.finish_with_message("rebuilt");
    }
    tracing::info!(
        events = report.events,
        stories = report.stories,
        position = report.position,
        "views rebuilt"
    );
}

/// Where a rebuild writes: SQLite's `_next` tables, swapped in at the end, or a PostgreSQL
/// transaction that emptied the views' tables.
enum Target<'a> {
    Sqlite(&'a ViewStore),
    Postgres(Replacement),
}

impl Target<'_> {
    async fn stories(&mut self, stories: Arc<Vec<StoryView>>) -> Result<(), ViewError> {
        match self {
            Target::Sqlite(views) => {
                views
                    .write(move |tx| {
                        for story in stories.iter() {
                            StoryRow::insert_all(tx, [&StoryRow::of(story)?], "_next")?;
                        }
                        Ok(())
                    })
                    .await
            }
            Target::Postgres(replacement) => replacement.stories(&stories).await,
        }
    }

    /// Writes a chunk of the views' history.
    async fn history(&mut self, chunk: History) -> Result<(), ViewError> {
        match self {
            Target::Sqlite(views) => {
                views
                    .write(move |tx| {
                        StoryVersionRow::insert_all(tx, &chunk.versions, "_next")?;
                        SupersededRow::insert_all(tx, &chunk.superseded, "_next")
                    })
                    .await
            }
            Target::Postgres(replacement) => {
                replacement
                    .history(&chunk.versions, &chunk.superseded)
                    .await
            }
        }
    }

    /// Writes a chunk of rows (only the chosen views' rows are in it).
    async fn chunk(&mut self, chunk: Chunk) -> Result<(), ViewError> {
        match self {
            Target::Sqlite(views) => {
                views
                    .write(move |tx| {
                        // (Only the chosen views' `_next` tables exist.)
                        if !chunk.developments.is_empty() {
                            DevelopmentRow::insert_all(tx, &chunk.developments, "_next")?;
                        }
                        if !chunk.actors.is_empty() {
                            ActorRow::insert_all(tx, &chunk.actors, "_next")?;
                        }
                        Ok(())
                    })
                    .await
            }
            Target::Postgres(replacement) => {
                if !chunk.developments.is_empty() {
                    replacement.developments(&chunk.developments).await?;
                }
                if !chunk.actors.is_empty() {
                    replacement.actors(&chunk.actors).await?;
                }
                Ok(())
            }
        }
    }

    /// Makes the new rows the views, at `position`.
    async fn finish(self, chosen: &[ViewName], position: i64) -> Result<(), ViewError> {
        match self {
            Target::Sqlite(views) => {
                let chosen = chosen.to_vec();
                views
                    .write(move |tx| {
                        for view in &chosen {
                            swap_in(tx, *view, position)?;
                        }
                        Ok(())
                    })
                    .await
            }
            Target::Postgres(replacement) => replacement.finish(position).await,
        }
    }
}

/// Fills the chosen views from the replayed `stories` and makes them the views.
async fn fill(
    mut target: Target<'_>,
    stories: Arc<Vec<StoryView>>,
    chosen: &[ViewName],
    position: i64,
) -> Result<(), ProjectionError> {
    let with_stories = chosen.contains(&ViewName::Stories);
    let with_actors = chosen.contains(&ViewName::Actors);

    // A blocking thread serialises chunks of rows, in position order, while this task inserts
    // the previous chunk. It holds the last reference to the replayed views, so it also frees
    // them while the indexes are built.
    let (chunks_tx, mut chunks) = tokio::sync::mpsc::channel::<Chunk>(2);
    let serializer = {
        let stories = stories.clone();
        tokio::task::spawn_blocking(move || {
            let mut order: Vec<(i64, u32, u32)> = stories
                .iter()
                .enumerate()
                .flat_map(|(s, story)| {
                    story
                        .developments
                        .iter()
                        .enumerate()
                        .map(move |(d, dev)| (dev.position, s as u32, d as u32))
                })
                .collect();
            order.sort_unstable();
            for part in order.chunks(CHUNK) {
                let mut chunk = Chunk::default();
                for &(_, s, d) in part {
                    let story = &stories[s as usize];
                    let dev = &story.developments[d as usize];
                    if with_stories {
                        chunk.developments.push(DevelopmentRow::of(story, dev)?);
                    }
                    if with_actors {
                        chunk.actors.extend(ActorRow::of(dev));
                    }
                }
                if chunks_tx.blocking_send(chunk).is_err() {
                    break; // the writer failed; it reports why
                }
            }
            drop(chunks_tx);
            drop(stories);
            Ok::<(), ViewError>(())
        })
    };

    let written = async {
        if with_stories {
            target.stories(stories).await?;
        } else {
            drop(stories);
        }
        while let Some(chunk) = chunks.recv().await {
            target.chunk(chunk).await?;
        }
        Ok::<(), ViewError>(())
    }
    .await;
    // Stop the serialiser if the writer failed, then report the first failure.
    drop(chunks);
    let serialised = serializer.await.map_err(stopped)?;
    written?;
    serialised?;

    target.finish(chosen, position).await?;
    Ok(())
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
    rebuild_chosen(source, views, outdated, None, true).await
}
