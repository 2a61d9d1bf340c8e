//! Rebuilding views from the whole log, in memory bounded by the stories, not by the log.
//!
//! The replay streams: one task reads and decodes the next pages of the feed (the decoding on a
//! blocking thread of its own) while another blocking thread folds the current one into each
//! story's view, and a writer inserts what the fold hands it into fresh tables (SQLite's `_next`
//! tables, swapped in at the end; in PostgreSQL, the emptied views' tables inside one
//! transaction; in SQLite one transaction of the writer fills the `_next` tables and swaps them
//! in). Readers see the old views until the commit and the new ones after, never a mix; a crash
//! mid-way loses nothing and leaves none of the new rows.
//!
//! The views the fold keeps are *partial* ([`StoryView::partial`]): each story's own fields, the
//! counts and times its front-page line needs, and the id and position of every development,
//! but only the developments touched lately, up to a budget of bytes for all stories. A
//! development let go of is written as it stands; when a later event changes it (an approval,
//! a correction, a retraction), the fold first takes it back — from the parts handed over and
//! not yet written, else from the rows written (all of a page's such developments in one read,
//! answered before the writer's next part) — so its row is rewritten with the change. The
//! views' history (`story_versions`, `development_versions`) is written as the fold finds it.
//! Secondary indexes are built once, after the rows, when the tables are swapped in.
//!
//! Entry points: `newsroom projection rebuild [--view stories|actors]` ([`rebuild`]), and
//! [`rebuild_outdated`] on start for any view whose schema version changed. The budget for held
//! developments is `RebuildLimits::held_bytes` (16 MiB) for all stories (a story gives back its
//! room as it lets them go). The fold never waits for the writer to catch up: a development taken
//! back comes from the parts handed over but not yet written (kept until the writer counts their
//! part written), else from the rows written (one read per page of events, answered by the writer
//! between its writes and before it takes the next part).
//!
//! The writer gathers the full-text documents of parts (8 MiB of text) and writes them sorted by
//! key, each key's last only: FTS5 starts a new segment whenever a key is lower than the one
//! before, and developments are let go of in the order they were last touched. Sizes: 10,000 rows
//! at a time (`rows_per_write`, history included), one such part waiting at most; feed pages of 500
//! events (`page_events`); a 32 MiB page cache for the writer ([`REBUILD_CACHE_KIB`]). The
//! full-text index is loaded without merging its segments (`automerge` 0, `crisismerge` 1,000, a
//! segment per 8 MiB of pending text) and merged once (`optimize`) in the swap, which gives it back
//! FTS5's usual settings for the projector. A rebuild of the actors view alone keeps its
//! developments in a scratch table. [`replay`] (complete views of the whole log in memory) remains
//! as the reference fold for tests and benchmarks. (The `newsroom` process runs without transparent
//! huge pages, `newsroom::disable_transparent_huge_pages`, which keeps a rebuild's peak memory
//! down.) Where its stages spend their time is counted in `timing.rs` and logged when it ends.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use indicatif::ProgressBar;
use newsroom_log::EventLog;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::handover::{Handover, Load, Work};
use crate::marks::{MarkSpacing, Marker};
use crate::projector::ProjectionError;
use crate::rows::SearchRow;
use crate::rows::{
    ActorRow, BatchRows, DevelopmentRow, RelationRow, StoryRow, StoryVersionRow, SupersededRow,
    ViewError, ViewName,
};
use crate::store::{RebuildWriter, ViewStore};
use crate::timing::{since_sched, thread_sched, Timing, TIMING};
use newsroom_readmodel::decode::decode_owned;
use newsroom_readmodel::model::{DevelopmentView, LoggedEvent, StoryView};

#[doc(hidden)]
pub use crate::sqlite::{finish_search_bulk, tune_search_for_bulk, REBUILD_CACHE_KIB};

/// How much a rebuild holds in memory, beside what each story takes (its own fields and a few
/// dozen bytes per development).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RebuildLimits {
    /// Events read and folded at a time (three pages may be in memory at once, each event with
    /// its decoded JSON: 10,000 made the peak some 200 MB higher at 200,000 events than 2,000,
    /// and pages of 2,000 still held some 50 MB).
    pub page_events: usize,
    /// Developments kept in memory (about, in bytes), across all stories.
    pub held_bytes: usize,
    /// Rows handed to the writer at a time.
    pub rows_per_write: usize,
}

impl Default for RebuildLimits {
    fn default() -> Self {
        Self {
            page_events: 500,
            held_bytes: 16 << 20,
            rows_per_write: 10_000,
        }
    }
}

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

/// Reads the log up to its head as of the start, a page at a time, and decodes each page (off
/// the runtime, beside the fold), at most two pages ahead of whoever takes them.
fn read_ahead(
    source: &EventLog,
    head: i64,
    page_events: usize,
) -> (
    mpsc::Receiver<Vec<LoggedEvent>>,
    tokio::task::JoinHandle<Result<(), ProjectionError>>,
) {
    let (pages_tx, pages) = mpsc::channel::<Vec<LoggedEvent>>(2);
    let source = source.clone();
    let reader = tokio::spawn(async move {
        let mut after = 0;
        while after < head {
            let t = std::time::Instant::now();
            let mut page = source.read_feed(after, page_events).await?;
            Timing::add(&TIMING.read, t);
            page.retain(|e| e.position <= head);
            let Some(last) = page.last() else { break };
            after = last.position;
            let page = tokio::task::spawn_blocking(move || {
                let t = std::time::Instant::now();
                let events = page
                    .into_iter()
                    .map(decode_owned)
                    .collect::<Result<Vec<_>, _>>();
                Timing::add(&TIMING.decode, t);
                events
            })
            .await
            .map_err(stopped)??;
            let t = std::time::Instant::now();
            if pages_tx.send(page).await.is_err() {
                break; // the fold failed; it reports why
            }
            Timing::add(&TIMING.read_blocked, t);
        }
        Ok::<(), ProjectionError>(())
    });
    (pages, reader)
}

/// Replays the whole log into every story's complete view, in memory: memory grows with the
/// log. A reference for tests and benchmarks; rebuilds fold partial views instead.
pub async fn replay(
    source: &EventLog,
    progress: Option<&ProgressBar>,
) -> Result<(HashMap<Uuid, StoryView>, u64, i64), ProjectionError> {
    let head = source.current_head().await?;
    let (mut pages, reader) = read_ahead(source, head, RebuildLimits::default().page_events);
    let progress = progress.cloned();
    let fold = tokio::task::spawn_blocking(move || {
        let mut stories: HashMap<Uuid, StoryView> = HashMap::new();
        let (mut after, mut count) = (0, 0u64);
        while let Some(page) = pages.blocking_recv() {
            for event in &page {
                match stories.get_mut(&event.story_id) {
                    Some(view) => view.apply(event),
                    None => {
                        if let Some(view) = StoryView::open(event) {
                            stories.insert(event.story_id, view);
                        }
                    }
                }
            }
            count += page.len() as u64;
            after = page.last().map_or(after, |e| e.position);
            if let Some(p) = &progress {
                p.set_position(after as u64);
            }
        }
        Ok::<_, ProjectionError>((stories, count, after))
    });
    let folded = fold.await.map_err(stopped)?;
    // A failed read ends the fold early without an error of its own: report the read's first.
    reader.await.map_err(stopped)??;
    folded
}

/// Rebuilds `views` (all when empty) from the log and swaps them in atomically.
pub async fn rebuild(
    source: &EventLog,
    views: &ViewStore,
    only: &[ViewName],
    progress: Option<ProgressBar>,
) -> Result<RebuildReport, ProjectionError> {
    rebuild_within(source, views, only, progress, RebuildLimits::default()).await
}

/// [`rebuild`] within the given memory limits.
pub async fn rebuild_within(
    source: &EventLog,
    views: &ViewStore,
    only: &[ViewName],
    progress: Option<ProgressBar>,
    limits: RebuildLimits,
) -> Result<RebuildReport, ProjectionError> {
    let selected: Vec<ViewName> = if only.is_empty() {
        ViewName::ALL.to_vec()
    } else {
        only.to_vec()
    };
    let report = rebuild_chosen(source, views, selected, progress, false, limits, true).await?;
    Ok(report.expect("a rebuild that is not conditional always happens"))
}

/// A rebuild of every view that leaves the full-text index empty: for benchmarks only, to
/// measure what the index adds to a rebuild. The views it leaves cannot be searched (and a
/// projector keeps them so); rebuild them again before serving them.
#[doc(hidden)]
pub async fn rebuild_without_search_index(
    source: &EventLog,
    views: &ViewStore,
) -> Result<RebuildReport, ProjectionError> {
    let report = rebuild_chosen(
        source,
        views,
        ViewName::ALL.to_vec(),
        None,
        false,
        RebuildLimits::default(),
        false,
    )
    .await?;
    Ok(report.expect("a rebuild that is not conditional always happens"))
}

/// Rebuilds the `selected` views. With `only_outdated`, views in PostgreSQL that another
/// process brought to the code's shape meanwhile are left alone (`None`). Without `search`,
/// the full-text index is left empty (benchmarks only).
async fn rebuild_chosen(
    source: &EventLog,
    views: &ViewStore,
    selected: Vec<ViewName>,
    progress: Option<ProgressBar>,
    only_outdated: bool,
    limits: RebuildLimits,
    search: bool,
) -> Result<Option<RebuildReport>, ProjectionError> {
    // Up to the head as of the start: events committed meanwhile are the projector's. (Read
    // before the writer is made ready, so that nothing fails between that and its writing.)
    let head = source.current_head().await?;
    if let Some(p) = &progress {
        p.set_length(head as u64);
    }
    // PostgreSQL: one transaction empties the views' tables and refills them; readers and
    // other copies' projectors see the old views until it commits, and the projectors wait for
    // it. SQLite: one transaction of the writer fills `_next` tables and swaps them in.
    let Some(writer) = views.begin_rebuild(&selected, only_outdated).await? else {
        tracing::info!("views were rebuilt by another process");
        return Ok(None);
    };
    let report = replay_into(
        source,
        head,
        writer,
        &selected,
        progress.as_ref(),
        limits,
        views.marks(),
        search,
    )
    .await?;
    finished(progress, &report);
    Ok(Some(report))
}

/// Replays the log into `writer`, which makes the new rows the chosen views.
#[allow(clippy::too_many_arguments)]
async fn replay_into(
    source: &EventLog,
    head: i64,
    writer: RebuildWriter,
    selected: &[ViewName],
    progress: Option<&ProgressBar>,
    limits: RebuildLimits,
    marks: MarkSpacing,
    search: bool,
) -> Result<RebuildReport, ProjectionError> {
    TIMING.reset();
    let (mut pages, reader) = read_ahead(source, head, limits.page_events);
    let (work_tx, work) = mpsc::channel::<Work>(1);
    let (load_tx, loads) = mpsc::channel::<Load>(1);
    let written_parts = Arc::new(AtomicU64::new(0));
    let mut fold = PartialFold::new(
        selected.contains(&ViewName::Stories),
        selected.contains(&ViewName::Actors),
        limits,
        work_tx,
    );
    fold.loads = Some(load_tx);
    fold.written_parts = written_parts.clone();
    if fold.with_stories {
        fold.marker = Some(Marker::new(marks));
    }
    fold.with_search = fold.with_stories && search;
    let progress = progress.cloned();
    let folding = tokio::task::spawn_blocking(move || {
        let sched = thread_sched();
        let (mut after, mut count) = (0, 0u64);
        loop {
            let t = std::time::Instant::now();
            let Some(page) = pages.blocking_recv() else {
                break;
            };
            Timing::add(&TIMING.fold_waiting, t);
            if !fold.page(&page)? {
                break; // the writer failed; it reports why
            }
            count += page.len() as u64;
            after = page.last().map_or(after, |e| e.position);
            if let Some(p) = &progress {
                p.set_position(after as u64);
            }
        }
        let stories = fold.finish()?;
        since_sched(sched, &TIMING.fold_cpu, &TIMING.fold_queued);
        Ok::<_, ProjectionError>((stories, count, after))
    });
    let (decide, decision) = oneshot::channel::<i64>();
    let written = writer.write(Handover {
        work,
        loads,
        written_parts,
        decision,
    });
    let decided = async move {
        let folded = folding.await;
        let read = reader.await;
        if let (Ok(Ok((_, _, position))), Ok(Ok(()))) = (&folded, &read) {
            let _ = decide.send(*position);
        }
        (folded, read)
    };
    let (written, (folded, read)) = tokio::join!(written, decided);
    // The first failure: the reader's (a failed read ends the fold early without an error of
    // its own), else the fold's, else the writer's (when the writer fails, the fold's next
    // hand-over ends it without an error).
    read.map_err(stopped)??;
    let (stories, events, position) = folded.map_err(stopped)??;
    written?;
    Ok(RebuildReport {
        views: selected.to_vec(),
        events,
        stories,
        position,
    })
}

/// A development held by the fold.
struct Held {
    bytes: usize,
    /// Changed since it was last written (or never written).
    dirty: bool,
    /// Its rows were written before (it was read back): its actor rows are replaced, not added.
    written: bool,
}

/// The rebuild's fold: partial views of every story, the developments touched lately, and the
/// rows not yet handed to the writer.
struct PartialFold {
    stories: HashMap<Uuid, StoryView>,
    /// (story, development), least recently touched first.
    held: lru::LruCache<(Uuid, Uuid), Held>,
    held_bytes: usize,
    rows: BatchRows,
    with_stories: bool,
    with_actors: bool,
    /// Whether the full-text index is written (with the stories view; benchmarks leave it out).
    with_search: bool,
    limits: RebuildLimits,
    work: mpsc::Sender<Work>,
    /// Where read-backs are asked for.
    loads: Option<mpsc::Sender<Load>>,
    /// Parts handed to the writer, and how many of them it has written.
    parts: u64,
    written_parts: Arc<AtomicU64>,
    /// The developments let go of whose rows are in parts not yet written (by position, with
    /// the part): read back from here, the fold never waits for the writer to catch up.
    unwritten: HashMap<i64, (u64, DevelopmentView)>,
    /// The front-page marks, when the stories view is rebuilt.
    marker: Option<Marker>,
}

impl PartialFold {
    fn new(
        with_stories: bool,
        with_actors: bool,
        limits: RebuildLimits,
        work: mpsc::Sender<Work>,
    ) -> Self {
        Self {
            stories: HashMap::new(),
            held: lru::LruCache::unbounded(),
            held_bytes: 0,
            rows: BatchRows::default(),
            with_stories,
            with_actors,
            with_search: with_stories,
            limits,
            work,
            loads: None,
            parts: 0,
            written_parts: Arc::default(),
            unwritten: HashMap::new(),
            marker: None,
        }
    }

    /// Folds one page of events; `false` if the writer is gone.
    fn page(&mut self, events: &[LoggedEvent]) -> Result<bool, ViewError> {
        let t = std::time::Instant::now();
        if !self.hold_targets(events)? {
            return Ok(false);
        }
        Timing::add(&TIMING.fold_readback, t);
        let t = std::time::Instant::now();
        for e in events {
            self.apply(e)?;
        }
        Timing::add(&TIMING.fold_apply, t);
        let t = std::time::Instant::now();
        while self.held_bytes > self.limits.held_bytes {
            let Some(((story, id), held)) = self.held.pop_lru() else {
                break;
            };
            self.let_go(story, id, held)?;
        }
        Timing::add(&TIMING.fold_let_go, t);
        if self.pending() >= self.limits.rows_per_write {
            let t = std::time::Instant::now();
            let sent = self.hand_over();
            Timing::add(&TIMING.fold_blocked, t);
            return Ok(sent);
        }
        Ok(true)
    }

    /// Reads back, in one go, the developments the page's events change that were let go of.
    fn hold_targets(&mut self, events: &[LoggedEvent]) -> Result<bool, ViewError> {
        let mut wanted: HashMap<i64, Uuid> = HashMap::new();
        for e in events {
            if let Some(position) = self
                .stories
                .get(&e.story_id)
                .and_then(|view| view.absent_target(e))
            {
                wanted.insert(position, e.story_id);
            }
        }
        if wanted.is_empty() {
            return Ok(true);
        }
        // Those in parts not yet written are taken from here (and stay until their part is
        // written: let go of again unchanged, they are not written again); the rest from the
        // rows written.
        self.forget_written();
        let mut found = vec![];
        let mut positions = vec![];
        for &position in wanted.keys() {
            match self.unwritten.get(&position) {
                Some((_, d)) => found.push(d.clone()),
                None => positions.push(position),
            }
        }
        if !positions.is_empty() {
            let Some(loads) = &self.loads else {
                return Ok(false);
            };
            TIMING.readbacks.fetch_add(1, Ordering::Relaxed);
            TIMING
                .readback_rows
                .fetch_add(positions.len() as u64, Ordering::Relaxed);
            let (reply, answer) = oneshot::channel();
            if loads.blocking_send((positions, reply)).is_err() {
                return Ok(false);
            }
            let Ok(read) = answer.blocking_recv() else {
                return Ok(false);
            };
            found.extend(read);
        }
        for d in found {
            let Some(&story) = wanted.get(&d.position) else {
                continue;
            };
            let Some(view) = self.stories.get_mut(&story) else {
                continue;
            };
            let (key, bytes) = ((story, d.id), d.approximate_size());
            view.hold(d);
            self.held_bytes += bytes;
            self.held.put(
                key,
                Held {
                    bytes,
                    dirty: false,
                    written: true,
                },
            );
        }
        Ok(true)
    }

    fn apply(&mut self, e: &LoggedEvent) -> Result<(), ViewError> {
        let Some(view) = self.stories.get_mut(&e.story_id) else {
            if let Some(view) = StoryView::open(e) {
                if self.with_stories {
                    line(&mut self.marker, &mut self.rows, StoryVersionRow::of(&view));
                }
                self.stories.insert(e.story_id, view.partial());
            }
            return Ok(());
        };
        if e.position <= view.position {
            return Ok(());
        }
        if self.with_stories {
            self.rows.superseded.extend(SupersededRow::apply(view, e));
            line(&mut self.marker, &mut self.rows, StoryVersionRow::of(view));
            self.rows.relations.extend(RelationRow::of(e));
        } else {
            view.apply(e);
        }
        let Some(id) = e.event.development_id().map(|d| d.as_uuid()) else {
            return Ok(());
        };
        match self.held.get_mut(&(e.story_id, id)) {
            Some(held) => held.dirty = true,
            None => {
                // Recorded just now (a development never seen, or one let go of, is not held).
                if let Some(d) = view.development(id) {
                    let bytes = d.approximate_size();
                    self.held_bytes += bytes;
                    self.held.put(
                        (e.story_id, id),
                        Held {
                            bytes,
                            dirty: true,
                            written: false,
                        },
                    );
                }
            }
        }
        Ok(())
    }

    /// Lets go of a development, writing its rows if it changed since they were written.
    fn let_go(&mut self, story: Uuid, id: Uuid, held: Held) -> Result<(), ViewError> {
        self.held_bytes -= held.bytes;
        let Some(view) = self.stories.get_mut(&story) else {
            return Ok(());
        };
        let Some(d) = view.let_go(id) else {
            return Ok(());
        };
        if !held.dirty {
            return Ok(());
        }
        // The development's row is also where it is read back from, so it is written even
        // when only the actors view is rebuilt (to a scratch table then).
        self.rows.developments.push(DevelopmentRow::of(view, &d)?);
        if self.with_search {
            self.rows.search.push(SearchRow::development(view, &d));
        }
        if self.with_actors {
            if held.written {
                self.rows.replaced.push(d.position);
            }
            self.rows.actors.extend(ActorRow::of(&d));
        }
        // Its rows go with the next part handed over.
        self.unwritten.insert(d.position, (self.parts + 1, d));
        Ok(())
    }

    /// Rows waiting for the writer.
    fn pending(&self) -> usize {
        let r = &self.rows;
        r.developments.len()
            + r.versions.len()
            + r.superseded.len()
            + r.actors.len()
            + r.marks.len()
            + r.mark_lows.len()
            + r.search.len()
            + r.relations.len()
    }

    /// Hands the rows waiting to the writer; `false` if it is gone.
    fn hand_over(&mut self) -> bool {
        if self.pending() == 0 && self.rows.stories.is_empty() {
            return true;
        }
        let rows = std::mem::take(&mut self.rows);
        self.parts += 1;
        let sent = self.work.blocking_send(Box::new(rows)).is_ok();
        self.forget_written();
        sent
    }

    /// Lets go of the developments whose parts the writer has written.
    fn forget_written(&mut self) {
        let written = self.written_parts.load(Ordering::Acquire);
        self.unwritten.retain(|_, (part, _)| *part > written);
    }

    /// Writes every development still held and each story's own row; returns how many stories
    /// there are.
    fn finish(mut self) -> Result<usize, ViewError> {
        while let Some(((story, id), held)) = self.held.pop_lru() {
            self.let_go(story, id, held)?;
            if self.pending() >= self.limits.rows_per_write && !self.hand_over() {
                return Ok(self.stories.len());
            }
        }
        let count = self.stories.len();
        if let Some(marker) = self.marker.take() {
            self.rows.mark_lows = marker.lows();
        }
        if self.with_stories {
            let stories = std::mem::take(&mut self.stories);
            for view in stories.values() {
                self.rows.stories.push(StoryRow::of(view)?);
                if self.with_search {
                    self.rows.search.push(SearchRow::story(view));
                }
                if self.rows.stories.len() >= self.limits.rows_per_write && !self.hand_over() {
                    return Ok(count);
                }
            }
        }
        self.hand_over();
        Ok(count)
    }
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

/// A story's new front-page line for the writer, and the mark due after it.
fn line(marker: &mut Option<Marker>, rows: &mut BatchRows, line: StoryVersionRow) {
    if let Some(mark) = marker.as_mut().and_then(|m| m.follow(&line)) {
        rows.marks.push(mark);
    }
    rows.versions.push(line);
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
    rebuild_chosen(
        source,
        views,
        outdated,
        None,
        true,
        RebuildLimits::default(),
        true,
    )
    .await
}
