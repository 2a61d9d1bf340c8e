//! The views' tables and rows, the same for both databases: [`ViewName`] with each view's schema
//! version (the tables are declared in `migrations/sqlite`, read by `schema.rs`, and PostgreSQL's
//! `view_…` tables in `migrations/postgres`), the rows a batch or a rebuild writes (`BatchRows`: `StoryRow`,
//! `DevelopmentRow`, `ActorRow`, `StoryVersionRow`, `SupersededRow`, `RelationRow`, `SearchRow`),
//! [`ViewError`], and [`BATCH`], the most events the projector applies at a time.
//!
//! The `stories` view is two tables: `stories` (one row per story: its front-page line and its own
//! fields, without its developments) and `developments` (one row per development, keyed by the
//! position that recorded it: the `DevelopmentView` as JSON, plus its state and filer for the
//! desk's queries, its `occurred_at`, and its place in the claims ledger — `claim` for a claim of
//! attribution, `answers`/`stance` for a response), so that a page of the timeline (the rows
//! readers see, by index `developments_timeline` on story, `occurred_at` and position) and a page
//! of the ledger are indexed reads, whatever the story's length.
//!
//! Its history, what `?as_of=` reads: `story_versions` (one row per event: the story's front-page
//! line right after it, its `recorded_at`, how far its visible developments' `occurred_at` reached,
//! and its place on the front page then, `sort_key`) and `development_versions` (a development's
//! document as it stood until the event at `until` changed it, and whether that event moved it in
//! time). The projector writes a mark of `front_page_marks` (`marks.rs`) at the end of the batch
//! that reaches one, from the `stories` table's front-page index; a rebuild, from the places it
//! keeps for every story.
//!
//! Relations between stories are part of the `stories` view: `relations` (`view_relations` in
//! PostgreSQL), one row per relation a story records (its id, the other's, the relation, the
//! position of the `StoryLinked`), written by the projector and the rebuild from
//! `StoryLinked`/`StoryUnlinked` (`RelationRow`, the last change of each pair replacing its row) in
//! the batch's transaction.
//!
//! The `actors` view (`actor_entries`) has one small row per actor × visible development that
//! refers to the development's row (its position, the actor's key, `occurred_at`, the name as
//! spelled) instead of copying it. The `checkpoints` table (`store.rs`) holds per view its position
//! and schema version.

use axum::body::Bytes;
use chrono::{DateTime, Utc};
use newsroom_domain::StoryEvent;
use newsroom_log::DbError;
use newsroom_readmodel::model::{
    in_recording_order, DevelopmentStanding, DevelopmentView, FrontPageEntry, RelatedStory, Side,
    StoryPage, StoryStatus, StoryView, Window,
};
use newsroom_readmodel::LoggedEvent;
use rusqlite::{params, Connection};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use uuid::Uuid;

/// A view that can be rebuilt on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ViewName {
    Stories,
    Actors,
}

impl ViewName {
    pub const ALL: [ViewName; 2] = [ViewName::Stories, ViewName::Actors];

    pub fn as_str(&self) -> &'static str {
        match self {
            ViewName::Stories => "stories",
            ViewName::Actors => "actors",
        }
    }

    /// The shape version of the view's tables and documents. Bump it when either changes: the
    /// view is then rebuilt from the log on the next start.
    pub fn schema_version(&self) -> i64 {
        match self {
            // 2: developments remember the position that published them.
            // 3: one row per development instead of a document (and a rendered body) per story.
            // 4: developments carry `occurred_at` and `ledger`, so that a page of the timeline
            //    and the claims ledger are read by index, not from the whole story.
            // 5: `story_versions` and `development_versions`: what `as_of` reads.
            // 6: `developments_rejected`: a reporter's rejected filings at the desk.
            // 7: developments' `id` and `published_at`, indexed: the projector reads a story's
            //    newest times and the developments an event changes, not the whole story.
            // 8: `story_versions.sort_key` and `front_page_marks`: the front page as it stood
            //    is read from a mark and the lines after it, not one line per story.
            // 9: developments' `claim`, `answers` and `stance` in place of `ledger`: a page of
            //    the claims ledger is read by index (claims, then each claim's responses), not
            //    the whole ledger.
            // 10: `search`, the full-text index of stories and developments (`search.rs`).
            // 11: `relations`, the relations editors record between stories, shown on both.
            // 12: `search` keeps no copy of the text (contentless, `contentless_delete`); its
            //     story and time are in `search_keys`.
            // 13: `search` without prefix indexes: they tripled what a rebuild writes into the
            //     index; a prefix query reads the terms that begin with it instead.
            // 14: `stories.review_required`, a column as in PostgreSQL (the desk's list read it
            //     from `head` with `json_extract`).
            ViewName::Stories => 14,
            // 3: rows refer to the development (its position) instead of copying it.
            // 4: actor keys fold confusables and drop invisible characters (UTS #39 skeletons,
            //    `Actor::normalise`), computed from the name whenever an event is read.
            ViewName::Actors => 4,
        }
    }
}

impl std::str::FromStr for ViewName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "stories" => Ok(ViewName::Stories),
            "actors" => Ok(ViewName::Actors),
            _ => Err(format!("unknown view `{s}`: stories or actors")),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    #[error("view database error: {0}")]
    Database(#[from] rusqlite::Error),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("a stored view cannot be read: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the view task stopped: {0}")]
    Task(String),
    #[error("view database error: {0}")]
    Postgres(#[from] sqlx::Error),
    #[error("view migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("these views are in PostgreSQL; a SQLite connection was asked for")]
    NotSqlite,
}

impl ViewError {
    /// Whether the views' database cannot be reached at the moment (retrying later may work).
    pub fn is_unavailable(&self) -> bool {
        match self {
            ViewError::Postgres(e) => newsroom_log::feed::is_unreachable(e),
            _ => false,
        }
    }
}

/// The rendered API body of a story's first page.
#[derive(Debug, Clone)]
pub struct StoryBody {
    pub id: Uuid,
    /// The position the body reflects.
    pub position: i64,
    pub body: Bytes,
    /// The cursor of the page of older developments, if there is one.
    pub older: Option<i64>,
    /// The related stories the body shows (a change of them, which may leave the story's
    /// position as it was, makes the body stale).
    pub relations: Vec<RelatedStory>,
}

/// What a stored view's checkpoint says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    pub position: i64,
    pub schema_version: i64,
}

/// For [`ViewStore::story_after`], per event: the story's line then, and the changed
/// development's document now and (if an event changed it since) then.
pub(crate) type StoryAfterRow = (Option<String>, Option<(String, Option<String>)>);

/// What reading a page of a story found.
#[derive(Debug)]
pub enum PageRead {
    Found(Box<StoryPage>),
    /// No story has that id or slug.
    NoStory,
    /// The cursor names no development readers see in that story.
    NoCursor,
    /// The story did not exist yet at the time asked for.
    NotThen,
}

/// A story's line as it stood at a time: the position of its last event by then, how far its
/// visible developments reached, and its front-page entry.
pub(crate) struct VersionAt {
    pub(crate) position: i64,
    pub(crate) occurred_until: String,
    pub(crate) entry: FrontPageEntry,
}

impl VersionAt {
    /// The story's own fields then (see [`StoryHead::then`]).
    pub(crate) fn head(&self, now: StoryHead) -> StoryHead {
        now.then(&self.entry)
    }

    /// The bound of the page's scan: the cursor's place, and never past what had happened by
    /// then nor, among developments of that same time, anything recorded later (developments
    /// recorded later that happened earlier are read and set aside).
    pub(crate) fn bound(&self, cursor: Option<(String, i64)>) -> (String, i64) {
        let reach = (self.occurred_until.clone(), self.position.saturating_add(1));
        match cursor {
            Some(c) if c < reach => c,
            _ => reach,
        }
    }
}

/// What a page as of position `at` keeps of the rows read (newest first, each with the
/// position that recorded it, its current document, and its document then if an event
/// changed it since): those recorded by then and visible then, as they stood, up to `take`.
pub(crate) fn as_they_stood(
    at: i64,
    rows: impl IntoIterator<Item = (DevelopmentView, Option<DevelopmentView>)>,
    take: usize,
) -> Vec<DevelopmentView> {
    rows.into_iter()
        .filter(|(now, _)| now.position <= at)
        .map(|(now, then)| then.unwrap_or(now))
        .filter(DevelopmentView::is_visible)
        .take(take)
        .collect()
}

/// A development's place in the timeline: when it happened (as stored), then its position.
pub(crate) fn place(d: &DevelopmentView) -> (String, i64) {
    (sortable_time(&d.occurred_at), d.position)
}

/// Adds to a page read from the timeline's index (newest first, `moved` developments left out)
/// the developments whose time was corrected since (as they stood, so not where the index has
/// them now), keeping the newest `take` before the cursor.
pub(crate) fn with_moved(
    mut page: Vec<DevelopmentView>,
    moved: &[DevelopmentView],
    cursor: Option<&(String, i64)>,
    take: usize,
) -> Vec<DevelopmentView> {
    page.extend(
        moved
            .iter()
            .filter(|d| cursor.is_none_or(|c| place(d) < *c))
            .cloned(),
    );
    page.sort_by_key(|d| std::cmp::Reverse(place(d)));
    page.truncate(take);
    page
}

/// Responses of one side a read as of a moment looks through for one published then, newest
/// first (a response retracted since is still in the index; one retracted by then is not the
/// side's witness).
pub(crate) const WITNESS_SCAN: usize = 16;

/// One page of a claims ledger as read: its claims and the responses shown with them, and the
/// cursor of the ledger's next page.
pub(crate) struct LedgerRows {
    pub(crate) rows: Vec<DevelopmentView>,
    pub(crate) older: Option<i64>,
}

/// The bound of a timeline page without a cursor: after every stored time and position.
/// The PostgreSQL channel on which the views announce each commit (the position reached).
pub const VIEWS_CHANNEL: &str = "newsroom_views";

pub(crate) const PAGE_END: (&str, i64) = ("~", i64::MAX);

/// A related story from its row (`None` for a row this code cannot read: skipped, never fatal).
pub(crate) fn related(
    position: i64,
    relation: &str,
    forward: bool,
    other: &str,
    slug: String,
    headline: String,
) -> Option<RelatedStory> {
    let id = Uuid::parse_str(other).ok()?;
    RelatedStory::of(id, slug, headline, relation, forward, position)
}

/// A story's own fields: its `StoryView` without the developments, which have rows of their own.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct StoryHead {
    pub(crate) id: Uuid,
    pub(crate) slug: String,
    pub(crate) headline: String,
    pub(crate) summary: String,
    pub(crate) tags: Vec<String>,
    pub(crate) status: StoryStatus,
    pub(crate) review_required: bool,
    pub(crate) opened_at: DateTime<Utc>,
    pub(crate) updated_at: DateTime<Utc>,
    pub(crate) position: i64,
}

impl StoryHead {
    pub(crate) fn of(view: &StoryView) -> Self {
        Self {
            id: view.id,
            slug: view.slug.clone(),
            headline: view.headline.clone(),
            summary: view.summary.clone(),
            tags: view.tags.clone(),
            status: view.status,
            review_required: view.review_required,
            opened_at: view.opened_at,
            updated_at: view.updated_at,
            position: view.position,
        }
    }

    /// The story's own fields when `entry` was its front-page line: these fields (slug, summary,
    /// opening and review never change) with the line's headline, tags, status and times.
    pub(crate) fn then(self, entry: &FrontPageEntry) -> Self {
        Self {
            headline: entry.headline.clone(),
            tags: entry.tags.clone(),
            status: entry.status,
            updated_at: entry.updated_at,
            position: entry.position,
            ..self
        }
    }

    pub(crate) fn with(self, developments: Vec<DevelopmentView>) -> StoryView {
        let mut view = StoryView {
            id: self.id,
            slug: self.slug,
            headline: self.headline,
            summary: self.summary,
            tags: self.tags,
            status: self.status,
            review_required: self.review_required,
            opened_at: self.opened_at,
            updated_at: self.updated_at,
            position: self.position,
            developments,
            derived: Default::default(),
        };
        view.reindex();
        view
    }
}

/// A page from stored rows: the story's head and front-page line, up to `limit + 1` rows of
/// the timeline newest first (one more than the page says whether older ones exist), and
/// one page of the claims ledger.
pub(crate) fn page_from_rows(
    head: StoryHead,
    entry: FrontPageEntry,
    mut page: Vec<DevelopmentView>,
    ledger: LedgerRows,
    limit: usize,
) -> StoryPage {
    let older = (page.len() > limit).then(|| {
        page.truncate(limit);
        page.last().map_or(0, |d| d.position)
    });
    page.reverse();
    let view = head.clone().with(page);
    StoryPage {
        view,
        entry,
        ledger: head.with(in_recording_order(ledger.rows)),
        older,
        claims_older: ledger.older,
        relations: None,
    }
}

/// How many of a story's newest times the projector reads into each window at least.
pub(crate) const WINDOW: usize = 16;

/// The windows of a story's newest times read from its rows: each query's documents, newest
/// first, with the sort key of the last one read. A window read in full (fewer documents than
/// `limit`) is complete; otherwise times in the last one's sort-key step (a microsecond for
/// `occurred_at`, a nanosecond for `published_at`) or earlier may be missing.
pub(crate) struct NewestDocs {
    pub(crate) visible: Vec<String>,
    pub(crate) occurred: Vec<String>,
    pub(crate) published: Vec<String>,
}

impl NewestDocs {
    /// The story's stored view from its head, its front-page line and these documents.
    pub(crate) fn view(
        self,
        head: StoryHead,
        entry: &FrontPageEntry,
        limit: usize,
    ) -> Result<StoryView, ViewError> {
        use chrono::{DurationRound, TimeDelta};
        let parse = |docs: &[String]| {
            docs.iter()
                .map(|d| serde_json::from_str::<DevelopmentView>(d))
                .collect::<Result<Vec<_>, _>>()
        };
        let window = |times: Vec<DateTime<Utc>>, step: TimeDelta| -> Window {
            // The last time read decides the floor: its whole step may be only partly read.
            let floor = (times.len() >= limit).then(|| {
                let last = *times.last().expect("a full window has times");
                last.duration_trunc(step).unwrap_or(last) + step - TimeDelta::nanoseconds(1)
            });
            Window::newest(times, floor)
        };
        let micro = TimeDelta::microseconds(1);
        let visible = parse(&self.visible)?
            .iter()
            .map(|d| d.occurred_at)
            .collect();
        let occurred = parse(&self.occurred)?
            .iter()
            .map(|d| d.occurred_at)
            .collect();
        let published = parse(&self.published)?
            .iter()
            .filter_map(|d| d.published_at)
            .collect();
        Ok(head.with(Vec::new()).stored(
            entry.development_count,
            window(occurred, micro),
            window(published, TimeDelta::nanoseconds(1)),
            window(visible, micro),
        ))
    }
}

/// A story's front-page line from its stored entry and its newest published development's
/// document, if it has one.
pub(crate) fn front_page_line(
    entry: &str,
    latest: Option<&str>,
) -> Result<FrontPageEntry, ViewError> {
    let mut entry: FrontPageEntry = serde_json::from_str(entry)?;
    entry.latest = latest
        .map(serde_json::from_str::<DevelopmentView>)
        .transpose()?
        .map(Into::into);
    Ok(entry)
}

/// The sort key of the front page: when the newest published development was published, or
/// when the story was opened.
pub(crate) fn sort_key(entry: &FrontPageEntry, view: &StoryView) -> String {
    entry
        .last_recorded_at
        .unwrap_or(view.opened_at)
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// A story's own row in the `stories` view: everything but its developments, so its cost does
/// not grow with the story.
pub(crate) struct StoryRow {
    pub(crate) id: String,
    pub(crate) slug: String,
    pub(crate) headline: String,
    pub(crate) position: i64,
    pub(crate) sort_key: String,
    pub(crate) review_required: bool,
    pub(crate) entry: String,
    pub(crate) head: String,
}

impl StoryRow {
    pub(crate) fn of(view: &StoryView) -> Result<Self, ViewError> {
        let entry = view.front_page_entry();
        Ok(Self {
            id: view.id.to_string(),
            slug: view.slug.clone(),
            headline: view.headline.clone(),
            position: view.position,
            sort_key: sort_key(&entry, view),
            review_required: view.review_required,
            entry: serde_json::to_string(&entry)?,
            head: serde_json::to_string(&StoryHead::of(view))?,
        })
    }

    /// Inserts (or updates) rows in `stories` (table name with `suffix`, for rebuilds).
    pub(crate) fn insert_all<'a>(
        tx: &Connection,
        rows: impl IntoIterator<Item = &'a StoryRow>,
        suffix: &str,
    ) -> Result<(), ViewError> {
        let mut insert = tx.prepare_cached(&format!(
            "INSERT INTO stories{suffix}
                (id, slug, headline, position, sort_key, review_required, entry, head)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (id) DO UPDATE SET slug = excluded.slug, headline = excluded.headline,
                position = excluded.position, sort_key = excluded.sort_key,
                review_required = excluded.review_required, entry = excluded.entry,
                head = excluded.head"
        ))?;
        for row in rows {
            insert.execute(params![
                row.id,
                row.slug,
                row.headline,
                row.position,
                row.sort_key,
                row.review_required,
                row.entry,
                row.head
            ])?;
        }
        Ok(())
    }
}

/// The rows a batch writes, the same for both databases: the changed stories' own rows, the
/// changed developments' rows, and the `actors` view rows of the developments whose rows there
/// are replaced (`replaced`: their positions, whose old rows go first).
#[derive(Default)]
pub(crate) struct BatchRows {
    pub(crate) stories: Vec<StoryRow>,
    /// One per event applied to the `stories` view.
    pub(crate) versions: Vec<StoryVersionRow>,
    /// One per event that changed a development.
    pub(crate) superseded: Vec<SupersededRow>,
    pub(crate) developments: Vec<DevelopmentRow>,
    pub(crate) replaced: Vec<i64>,
    pub(crate) actors: Vec<ActorRow>,
    /// A rebuild's front-page marks, and the final `low` of those written earlier.
    pub(crate) marks: Vec<MarkRow>,
    pub(crate) mark_lows: Vec<(i64, String)>,
    /// Documents of the search index to write (or remove), for the `stories` view.
    pub(crate) search: Vec<SearchRow>,
    /// Relations set or removed, in the order of their events.
    pub(crate) relations: Vec<RelationRow>,
}

/// A change of the `relations` table: the relation story `story_id` records to `other_id`,
/// set (`relation`) or removed (`None`) by the event at `position`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RelationRow {
    pub(crate) story_id: String,
    pub(crate) other_id: String,
    pub(crate) relation: Option<String>,
    pub(crate) position: i64,
}

impl RelationRow {
    /// The change an event makes, if it relates or unrelates stories.
    pub(crate) fn of(e: &LoggedEvent) -> Option<Self> {
        let (other, relation) = match &e.event {
            StoryEvent::StoryLinked { story, relation } => (story, Some(relation.as_str())),
            StoryEvent::StoryUnlinked { story, .. } => (story, None),
            _ => return None,
        };
        Some(Self {
            story_id: e.story_id.to_string(),
            other_id: other.to_string(),
            relation: relation.map(str::to_owned),
            position: e.position,
        })
    }

    /// The last change of each pair of stories among `rows` (each replaces what was before).
    pub(crate) fn last_of_each(rows: &[RelationRow]) -> Vec<&RelationRow> {
        let mut last: HashMap<(&str, &str), &RelationRow> = HashMap::new();
        for row in rows {
            last.insert((&row.story_id, &row.other_id), row);
        }
        let mut rows: Vec<&RelationRow> = last.into_values().collect();
        rows.sort_by_key(|r| r.position);
        rows
    }
}

/// A story's row in `story_versions`: its front-page line right after the event at `position`.
#[derive(Debug)]
pub(crate) struct StoryVersionRow {
    pub(crate) position: i64,
    pub(crate) story_id: String,
    pub(crate) recorded_at: String,
    pub(crate) occurred_until: String,
    /// The story's place on the front page (the `stories` row's `sort_key` then).
    pub(crate) sort_key: String,
    pub(crate) entry: String,
}

/// `recorded_at` as `story_versions` stores it: RFC 3339 with nanoseconds, so that comparing
/// the text compares the times exactly.
pub(crate) fn recorded_time(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

impl StoryVersionRow {
    /// The row of `view` right after applying its latest event.
    pub(crate) fn of(view: &StoryView) -> Self {
        let entry = view.front_page_entry();
        Self {
            position: view.position,
            story_id: view.id.to_string(),
            recorded_at: recorded_time(&view.updated_at),
            occurred_until: view
                .occurred_until()
                .map(|t| sortable_time(&t))
                .unwrap_or_default(),
            sort_key: sort_key(&entry, view),
            entry: serde_json::to_string(&entry).expect("an entry always serialises"),
        }
    }

    pub(crate) fn insert_all<'a>(
        tx: &Connection,
        rows: impl IntoIterator<Item = &'a StoryVersionRow>,
        suffix: &str,
    ) -> Result<(), ViewError> {
        let mut insert = tx.prepare_cached(&format!(
            "INSERT OR REPLACE INTO story_versions{suffix}
                (position, story_id, recorded_at, occurred_until, sort_key, entry)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
        ))?;
        for row in rows {
            insert.execute(params![
                row.position,
                row.story_id,
                row.recorded_at,
                row.occurred_until,
                row.sort_key,
                row.entry
            ])?;
        }
        Ok(())
    }
}

/// A row of `development_versions`: a development's document as it stood until the event at
/// `until` changed it.
#[derive(Debug)]
pub(crate) struct SupersededRow {
    pub(crate) until: i64,
    pub(crate) position: i64,
    pub(crate) story_id: String,
    pub(crate) moved: bool,
    pub(crate) doc: String,
}

impl SupersededRow {
    /// Applies the event at `until` (which changes development `id`) to `view`, keeping the
    /// development's document from before, if it had one.
    pub(crate) fn apply(view: &mut StoryView, e: &newsroom_readmodel::LoggedEvent) -> Option<Self> {
        let before = e
            .event
            .development_id()
            .and_then(|id| view.development(id.as_uuid()))
            .map(|d| (d.id, d.occurred_at, Self::of(view.id, d, e.position)));
        view.apply(e);
        let (id, occurred_at, mut row) = before?;
        row.moved = view
            .development(id)
            .is_some_and(|d| d.occurred_at != occurred_at);
        Some(row)
    }

    pub(crate) fn of(story: Uuid, d: &DevelopmentView, until: i64) -> Self {
        Self {
            until,
            position: d.position,
            story_id: story.to_string(),
            moved: false,
            doc: serde_json::to_string(d).expect("a development always serialises"),
        }
    }

    pub(crate) fn insert_all<'a>(
        tx: &Connection,
        rows: impl IntoIterator<Item = &'a SupersededRow>,
        suffix: &str,
    ) -> Result<(), ViewError> {
        let mut insert = tx.prepare_cached(&format!(
            "INSERT OR REPLACE INTO development_versions{suffix}
                (until, position, story_id, moved, doc)
             VALUES (?1, ?2, ?3, ?4, ?5)"
        ))?;
        for row in rows {
            insert.execute(params![
                row.until,
                row.position,
                row.story_id,
                row.moved,
                row.doc
            ])?;
        }
        Ok(())
    }
}

/// A development's row in the `developments` table, ready to insert.
pub(crate) struct DevelopmentRow {
    pub(crate) position: i64,
    pub(crate) story_id: String,
    pub(crate) id: String,
    pub(crate) state: &'static str,
    pub(crate) filed_by: Option<String>,
    pub(crate) occurred_at: String,
    pub(crate) published_at: Option<String>,
    pub(crate) claim: bool,
    pub(crate) answers: Option<String>,
    pub(crate) stance: Option<&'static str>,
    pub(crate) doc: String,
}

/// A time as the views store it for sorting: RFC 3339 with microseconds, in UTC (its text
/// order is its time order).
pub(crate) fn sortable_time(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

impl DevelopmentRow {
    pub(crate) fn of(story: &StoryView, d: &DevelopmentView) -> Result<Self, ViewError> {
        Ok(Self {
            position: d.position,
            story_id: story.id.to_string(),
            id: d.id.to_string(),
            state: state_name(d.state),
            filed_by: d.filed_by.clone(),
            occurred_at: sortable_time(&d.occurred_at),
            published_at: d.published_at.as_ref().map(recorded_time),
            claim: d.is_claim(),
            answers: d.responds_to.map(|l| l.development.to_string()),
            stance: d.side().map(Side::as_str),
            doc: serde_json::to_string(d)?,
        })
    }

    /// Inserts (or replaces) rows in `developments` (table name with `suffix`).
    pub(crate) fn insert_all<'a>(
        tx: &Connection,
        rows: impl IntoIterator<Item = &'a DevelopmentRow>,
        suffix: &str,
    ) -> Result<(), ViewError> {
        let mut insert = tx.prepare_cached(&format!(
            "INSERT OR REPLACE INTO developments{suffix}
                (position, story_id, id, state, filed_by, occurred_at, published_at, claim,
                 answers, stance, doc)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
        ))?;
        for row in rows {
            insert.execute(params![
                row.position,
                row.story_id,
                row.id,
                row.state,
                row.filed_by,
                row.occurred_at,
                row.published_at,
                row.claim,
                row.answers,
                row.stance,
                row.doc
            ])?;
        }
        Ok(())
    }
}

/// One row of the `actors` view: an actor named by a visible development.
pub(crate) struct ActorRow {
    pub(crate) position: i64,
    pub(crate) key: String,
    pub(crate) occurred_at: String,
    pub(crate) name: String,
}

impl ActorRow {
    /// The rows a development has in the `actors` view: one per actor if readers see it.
    pub(crate) fn of(d: &DevelopmentView) -> impl Iterator<Item = ActorRow> + '_ {
        let occurred_at = sortable_time(&d.occurred_at);
        d.actors
            .iter()
            .filter(|_| d.is_visible())
            .map(move |actor| ActorRow {
                position: d.position,
                key: actor.key().to_owned(),
                occurred_at: occurred_at.clone(),
                name: actor.name().to_owned(),
            })
    }

    /// Inserts (or replaces) rows in `actor_entries` (table name with `suffix`).
    pub(crate) fn insert_all<'a>(
        tx: &Connection,
        rows: impl IntoIterator<Item = &'a ActorRow>,
        suffix: &str,
    ) -> Result<(), ViewError> {
        let mut insert = tx.prepare_cached(&format!(
            "INSERT OR REPLACE INTO actor_entries{suffix} (position, actor_key, occurred_at, name)
             VALUES (?1, ?2, ?3, ?4)"
        ))?;
        for row in rows {
            insert.execute(params![row.position, row.key, row.occurred_at, row.name])?;
        }
        Ok(())
    }
}

pub(crate) fn state_name(state: DevelopmentStanding) -> &'static str {
    match state {
        DevelopmentStanding::PendingReview => "pending_review",
        DevelopmentStanding::Published => "published",
        DevelopmentStanding::Rejected => "rejected",
        DevelopmentStanding::Retracted => "retracted",
        DevelopmentStanding::Embargoed => "embargoed",
    }
}

/// A row of `front_page_marks`. `stories`: a JSON array of the listed stories' line
/// positions, first place first; `cut`: the list was cut at its length (more stories were
/// on the front page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MarkRow {
    pub(crate) position: i64,
    pub(crate) high: String,
    pub(crate) low: String,
    pub(crate) stories: String,
    pub(crate) cut: bool,
}

impl MarkRow {
    pub(crate) fn new(position: i64, high: String, listed: &[i64], length: usize) -> Self {
        let cut = listed.len() > length;
        let listed = &listed[..listed.len().min(length)];
        Self {
            position,
            high,
            low: NO_LOW.to_owned(),
            stories: serde_json::to_string(listed).expect("integers serialise"),
            cut,
        }
    }
}

/// Most events applied in one transaction.
pub const BATCH: usize = 1_000;

// ----- documents ----------------------------------------------------------------------------

/// A document of the search index, folded, or the removal of one (`text: None`: a development
/// readers and staff no longer see, rejected or withdrawn).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SearchRow {
    pub(crate) key: i64,
    pub(crate) story_id: String,
    pub(crate) text: Option<SearchText>,
}

/// `low` while no line follows the mark: after every recording time.
pub(crate) const NO_LOW: &str = "~";

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SearchText {
    pub(crate) headline: String,
    pub(crate) body: String,
    pub(crate) names: String,
    pub(crate) filters: String,
    /// When it happened, as the views sort times (`''` for a story).
    pub(crate) occurred_at: String,
}
