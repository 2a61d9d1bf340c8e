//! The views in PostgreSQL, when the log is there: tables in the log's database
//! (`migrations/postgres`), shared by every projector and reader process of a scale-out
//! deployment. The rows are those of `views.db` (`store.rs`); what differs is how writers share
//! them.
//!
//! Several projector copies may follow the feed at once. Each batch's transaction first locks
//! the checkpoint rows (`FOR UPDATE`), so batches of different copies are applied one after the
//! other, each seeing what the one before committed; an event at or before the checkpoint it
//! finds changes nothing, so a copy that lost the race to a batch applies none of it twice. A
//! copy's cache of stories is trusted only while the checkpoint is still the one it wrote last.
//!
//! A story is read in one statement (its row and its developments' documents joined into one
//! array), so it reflects one commit.
//!
//! The tables are `view_…`, created by sqlx migrations numbered from 1000 (`migrations/postgres`),
//! recorded in the log's `_sqlx_migrations` table. Rows are written as arrays (`UNNEST`); the
//! stories a batch needs are read in one statement, each with the documents of its windows of
//! newest times, so they reflect one commit. A rebuild replaces the rows in one transaction, which
//! readers do not see until it commits; `rebuild_outdated` rebuilds only if no other process did it
//! meanwhile. An unreachable database makes reads answer 503 with `Retry-After`. The statement that
//! moves a checkpoint also announces it (`followed.rs`).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use sqlx::migrate::Migrator;
use sqlx::{PgConnection, PgPool, Postgres, Row, Transaction};
use uuid::Uuid;

use crate::batch::{apply, Batch, BatchIo, BatchResult, Done, Held, Moved, Stored};
use crate::handover::{next_job, Handover};
use crate::marks::{follow_batch_pg, write_marks_pg};
use crate::rows::SearchRow;
use crate::rows::SearchText;
use crate::rows::{
    as_they_stood, place, recorded_time, related, with_moved, ActorRow, BatchRows, Checkpoint,
    DevelopmentRow, LedgerRows, NewestDocs, PageRead, RelationRow, StoryAfterRow, StoryHead,
    StoryRow, StoryVersionRow, SupersededRow, VersionAt, ViewError, ViewName, PAGE_END,
    WITNESS_SCAN,
};
use crate::search::found;
use crate::search::{tsquery_term, Found, Hit, Search, STORY_WINDOW, WINDOW};
use newsroom_readmodel::model::{
    sides_to_settle, ClaimsAsk, DevelopmentStanding, DevelopmentView, FrontPageEntry, RelatedStory,
    StoryView, RELATIONS_SHOWN, RESPONSES_SHOWN,
};
use newsroom_readmodel::LoggedEvent;

/// A search hit as read: its key, story id, slug and headline, the story's head (a story's own
/// document) or the development's document.
type HitRow = (i64, String, String, String, Option<String>, Option<String>);

/// A search of `view_search` (see `ViewStore::search`). `$1`: the query, `$2`: the filters (as
/// `tsquery` literals); `$3`, `$4`: the windows of developments and stories, each the newest
/// matches (the planner reads a rare word's matches from the GIN index and sorts them, and
/// walks the keys backwards for a common one, stopping at the window); `$5`, `$6`: the
/// `occurred_at` bounds, checked inside the window (the filter words only narrow it to the
/// months and years around them, so a window of a month's newest matches must not be filled by
/// matches outside the bounds); `$7`: the whole query as a phrase; `$8`, `$9`: the page, chosen
/// before the documents of its rows are read.
const SEARCH_SQL: &str = "WITH hits AS (
        (SELECT key, story_id, words FROM view_search
          WHERE words @@ $1::tsquery AND filters @@ $2::tsquery AND key > 0
            AND ($5::text IS NULL OR occurred_at >= $5)
            AND ($6::text IS NULL OR occurred_at <= $6)
          ORDER BY key DESC LIMIT $3)
        UNION ALL
        (SELECT key, story_id, words FROM view_search
          WHERE words @@ $1::tsquery AND filters @@ $2::tsquery AND key < 0
          ORDER BY key LIMIT $4)),
     page AS MATERIALIZED (
        SELECT h.key, h.story_id,
               COALESCE(h.words @@ $7::tsquery, false) AS first,
               ts_rank('{0.1, 0.2, 0.4, 1.0}', h.words, $1::tsquery) AS score
          FROM hits h
         WHERE EXISTS (SELECT 1 FROM view_stories s WHERE s.id = h.story_id)
         ORDER BY first DESC, score DESC, h.key DESC
         LIMIT $8 OFFSET $9)
     SELECT p.key, p.story_id, s.slug, s.headline,
            CASE WHEN p.key < 0 THEN s.head END, d.doc
       FROM page p JOIN view_stories s ON s.id = p.story_id
       LEFT JOIN view_developments d ON d.position = p.key
      ORDER BY p.first DESC, p.score DESC, p.key DESC";

/// Binds a search's parameters to [`SEARCH_SQL`] (or its `EXPLAIN`).
fn bind_search<'q, O>(
    query: sqlx::query::QueryAs<'q, Postgres, O, sqlx::postgres::PgArguments>,
    s: &Search,
) -> sqlx::query::QueryAs<'q, Postgres, O, sqlx::postgres::PgArguments> {
    let stories = if s.stories_too() { STORY_WINDOW } else { 0 };
    query
        .bind(s.query.tsquery())
        .bind(s.filters_tsquery())
        .bind(WINDOW as i64)
        .bind(stories as i64)
        .bind(s.from.clone())
        .bind(s.to.clone())
        .bind(s.query.as_phrase().map(|p| tsquery_term(&p)))
        .bind(s.limit as i64 + 1)
        .bind(s.offset as i64)
}

/// Rows sent in one statement (as arrays) when many are written at once.
const ROWS_PER_STATEMENT: usize = 5_000;

/// The views' migrations: recorded in the same `_sqlx_migrations` table as the log's (whose
/// versions they do not know), numbered from 1000.
fn migrator() -> Migrator {
    let mut migrator = sqlx::migrate!("./migrations/postgres");
    migrator.set_ignore_missing(true);
    migrator
}

/// The views in PostgreSQL. Cheap to clone.
#[derive(Clone)]
pub struct PgViews {
    pool: PgPool,
}

impl std::fmt::Debug for PgViews {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgViews").finish_non_exhaustive()
    }
}

impl PgViews {
    /// Brings the views' tables up to date; views never written are at position 0.
    pub(crate) async fn open(pool: PgPool) -> Result<Self, ViewError> {
        migrator().run(&pool).await?;
        for view in ViewName::ALL {
            // (A view of an older shape keeps its checkpoint, whose schema version makes it
            // rebuild itself.)
            sqlx::query(
                "INSERT INTO view_checkpoints (view, position, schema_version) VALUES ($1, 0, $2)
                 ON CONFLICT (view) DO NOTHING",
            )
            .bind(view.as_str())
            .bind(view.schema_version())
            .execute(&pool)
            .await?;
        }
        Ok(Self { pool })
    }

    /// The database (the log's).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub(crate) async fn checkpoints(&self) -> Result<Vec<(ViewName, Checkpoint)>, ViewError> {
        let mut conn = self.pool.acquire().await?;
        Ok(read_checkpoints(&mut conn, false)
            .await?
            .into_iter()
            .collect())
    }

    pub(crate) async fn front_page(&self, limit: usize) -> Result<Vec<FrontPageEntry>, ViewError> {
        // Each story's newest published development through `view_developments_published`.
        let rows: Vec<(String, Option<String>)> = sqlx::query_as(
            "SELECT s.entry,
                    (SELECT d.doc FROM view_developments d
                      WHERE d.story_id = s.id AND d.state = 'published'
                      ORDER BY d.published_at DESC, d.position DESC LIMIT 1)
               FROM view_stories s ORDER BY s.sort_key DESC, s.position DESC LIMIT $1",
        )
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|(entry, latest)| crate::rows::front_page_line(entry, latest.as_deref()))
            .collect()
    }

    /// A story's id and the position its view reflects, by id or slug.
    pub(crate) async fn locate(&self, id_or_slug: &str) -> Result<Option<(Uuid, i64)>, ViewError> {
        let row: Option<(String, i64)> =
            sqlx::query_as("SELECT id, position FROM view_stories WHERE id = $1 OR slug = $1")
                .bind(id_or_slug)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.and_then(|(id, position)| Some((Uuid::parse_str(&id).ok()?, position))))
    }

    /// The stories related to story `id` (see `store::RELATIONS_SQL`).
    pub(crate) async fn relations(&self, id: &str) -> Result<Vec<RelatedStory>, ViewError> {
        let mut conn = self.pool.acquire().await?;
        relations(&mut conn, id).await
    }

    /// A story's stored `head`, by id or slug.
    pub(crate) async fn story_head(&self, id_or_slug: &str) -> Result<Option<String>, ViewError> {
        Ok(
            sqlx::query_scalar("SELECT head FROM view_stories WHERE id = $1 OR slug = $1")
                .bind(id_or_slug)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// A page of a story (see `ViewStore::story_page`), in one read-only transaction.
    pub(crate) async fn story_page(
        &self,
        id_or_slug: &str,
        before: Option<i64>,
        limit: usize,
        claims: ClaimsAsk,
    ) -> Result<PageRead, ViewError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        let row: Option<(String, String, String)> =
            sqlx::query_as("SELECT id, head, entry FROM view_stories WHERE id = $1 OR slug = $1")
                .bind(id_or_slug)
                .fetch_optional(&mut *tx)
                .await?;
        let Some((id, head, entry)) = row else {
            return Ok(PageRead::NoStory);
        };
        let head: StoryHead = serde_json::from_str(&head)?;
        let entry: FrontPageEntry = serde_json::from_str(&entry)?;
        let bound: (String, i64) = match before {
            None => (PAGE_END.0.to_owned(), PAGE_END.1),
            Some(p) => {
                let at: Option<String> = sqlx::query_scalar(
                    "SELECT occurred_at FROM view_developments
                     WHERE position = $1 AND story_id = $2 AND state IN ('published', 'retracted')",
                )
                .bind(p)
                .bind(&id)
                .fetch_optional(&mut *tx)
                .await?;
                match at {
                    Some(at) => (at, p),
                    None => return Ok(PageRead::NoCursor),
                }
            }
        };
        let page: Vec<String> = sqlx::query_scalar(
            "SELECT doc FROM view_developments
             WHERE story_id = $1 AND state IN ('published', 'retracted')
               AND (occurred_at, position) < ($2, $3)
             ORDER BY occurred_at DESC, position DESC LIMIT $4",
        )
        .bind(&id)
        .bind(&bound.0)
        .bind(bound.1)
        .bind(limit as i64 + 1)
        .fetch_all(&mut *tx)
        .await?;
        let ledger = ledger(&mut tx, &id, None, claims).await?;
        let related = relations(&mut tx, &id).await?;
        tx.commit().await?;
        let parse = |docs: Vec<String>| {
            docs.iter()
                .map(|d| serde_json::from_str::<DevelopmentView>(d))
                .collect::<Result<Vec<_>, _>>()
        };
        let mut page = crate::rows::page_from_rows(head, entry, parse(page)?, ledger, limit);
        page.relations = Some(related);
        Ok(PageRead::Found(Box::new(page)))
    }

    /// A page of a story as it stood at `at` (see `ViewStore::story_page_as_of`), in one
    /// read-only transaction.
    pub(crate) async fn story_page_as_of(
        &self,
        id_or_slug: &str,
        at: DateTime<Utc>,
        before: Option<i64>,
        limit: usize,
        claims: ClaimsAsk,
    ) -> Result<PageRead, ViewError> {
        let parse = |doc: &str| serde_json::from_str::<DevelopmentView>(doc);
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        let row: Option<(String, String)> =
            sqlx::query_as("SELECT id, head FROM view_stories WHERE id = $1 OR slug = $1")
                .bind(id_or_slug)
                .fetch_optional(&mut *tx)
                .await?;
        let Some((id, head)) = row else {
            return Ok(PageRead::NoStory);
        };
        let version: Option<(i64, String, String)> = sqlx::query_as(
            "SELECT position, occurred_until, entry FROM view_story_versions
             WHERE story_id = $1 AND recorded_at <= $2
             ORDER BY recorded_at DESC, position DESC LIMIT 1",
        )
        .bind(&id)
        .bind(recorded_time(&at))
        .fetch_optional(&mut *tx)
        .await?;
        let Some((p, occurred_until, entry)) = version else {
            return Ok(PageRead::NotThen);
        };
        let version = VersionAt {
            position: p,
            occurred_until,
            entry: serde_json::from_str(&entry)?,
        };
        // Developments whose time was corrected since sit elsewhere in the index now: read
        // apart, as they stood.
        let rows: Vec<(i64, String, Option<String>)> = sqlx::query_as(&format!(
            "SELECT d.position, d.doc, {} FROM view_developments d
             WHERE d.position IN (SELECT v.position FROM view_development_versions v
                                  WHERE v.story_id = $1 AND v.moved AND v.until > $2)
               AND d.story_id = $1 AND d.position <= $2",
            THEN.replace("$p", "$2")
        ))
        .bind(&id)
        .bind(p)
        .fetch_all(&mut *tx)
        .await?;
        let mut moved = Vec::new();
        let mut moved_at = std::collections::HashSet::new();
        for (position, now, then) in &rows {
            moved_at.insert(*position);
            let then = then.as_deref().map(parse).transpose()?;
            moved.extend(as_they_stood(p, [(parse(now)?, then)], 1));
        }
        let cursor = match before {
            None => None,
            Some(b) => {
                let row: Option<(String, Option<String>)> = sqlx::query_as(&format!(
                    "SELECT d.doc, {} FROM view_developments d
                     WHERE d.position = $1 AND d.story_id = $2 AND d.position <= $3",
                    THEN.replace("$p", "$3")
                ))
                .bind(b)
                .bind(&id)
                .bind(p)
                .fetch_optional(&mut *tx)
                .await?;
                let Some((now, then)) = row else {
                    return Ok(PageRead::NoCursor);
                };
                let then = then.as_deref().map(parse).transpose()?;
                match as_they_stood(p, [(parse(&now)?, then)], 1).pop() {
                    Some(d) => Some(place(&d)),
                    None => return Ok(PageRead::NoCursor),
                }
            }
        };
        // Read in growing chunks until the page is full: rows recorded later, or not visible
        // then, are set aside.
        let (mut bound, mut chunk) = (version.bound(cursor.clone()), limit as i64 + 1);
        let mut page = Vec::new();
        loop {
            let rows: Vec<(i64, String, String, Option<String>)> = sqlx::query_as(&format!(
                "SELECT d.position, d.occurred_at, d.doc, {} FROM view_developments d
                 WHERE d.story_id = $1 AND d.state IN ('published', 'retracted')
                   AND (d.occurred_at, d.position) < ($2, $3)
                 ORDER BY d.occurred_at DESC, d.position DESC LIMIT $5",
                THEN.replace("$p", "$4")
            ))
            .bind(&id)
            .bind(&bound.0)
            .bind(bound.1)
            .bind(p)
            .bind(chunk)
            .fetch_all(&mut *tx)
            .await?;
            let last = rows
                .last()
                .map(|(position, occurred_at, _, _)| (occurred_at.clone(), *position));
            let full = rows.len() as i64 == chunk;
            let mut found = Vec::with_capacity(rows.len());
            for (position, _, now, then) in &rows {
                if !moved_at.contains(position) {
                    found.push((parse(now)?, then.as_deref().map(parse).transpose()?));
                }
            }
            let need = limit + 1 - page.len();
            page.extend(as_they_stood(p, found, need));
            match last {
                Some(last) if full && page.len() <= limit => {
                    bound = last;
                    chunk *= 2;
                }
                _ => break,
            }
        }
        let page = with_moved(page, &moved, cursor.as_ref(), limit + 1);
        let ledger = ledger(&mut tx, &id, Some(p), claims).await?;
        tx.commit().await?;
        let head: StoryHead = serde_json::from_str(&head)?;
        Ok(PageRead::Found(Box::new(crate::rows::page_from_rows(
            version.head(head),
            version.entry,
            page,
            ledger,
            limit,
        ))))
    }

    /// For `ViewStore::story_after`: per event position, the story's line then, and the
    /// development's document now and (if changed since) then.
    pub(crate) async fn story_after(
        &self,
        at: &[(i64, Option<i64>)],
    ) -> Result<Vec<StoryAfterRow>, ViewError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        let mut found = Vec::with_capacity(at.len());
        for (q, recorded) in at {
            let entry: Option<String> =
                sqlx::query_scalar("SELECT entry FROM view_story_versions WHERE position = $1")
                    .bind(q)
                    .fetch_optional(&mut *tx)
                    .await?;
            let doc = match recorded {
                None => None,
                Some(p) => {
                    sqlx::query_as::<_, (String, Option<String>)>(
                        "SELECT d.doc, (SELECT v.doc FROM view_development_versions v
                        WHERE v.position = d.position AND v.until > $2 ORDER BY v.until LIMIT 1)
                     FROM view_developments d WHERE d.position = $1",
                    )
                    .bind(p)
                    .bind(q)
                    .fetch_optional(&mut *tx)
                    .await?
                }
            };
            found.push((entry, doc));
        }
        tx.commit().await?;
        Ok(found)
    }

    /// Each story's front-page line as it stood at `at` (as `recorded_time`), if it existed:
    /// its place (sort key, position) and its entry.
    pub(crate) async fn front_page_as_of(
        &self,
        at: &str,
    ) -> Result<Vec<(String, i64, String)>, ViewError> {
        Ok(sqlx::query_as(
            "SELECT v.sort_key, v.position, v.entry FROM view_stories s
               JOIN view_story_versions v ON v.position =
                    (SELECT w.position FROM view_story_versions w
                      WHERE w.story_id = s.id AND w.recorded_at <= $1
                      ORDER BY w.recorded_at DESC, w.position DESC LIMIT 1)",
        )
        .bind(at)
        .fetch_all(&self.pool)
        .await?)
    }

    pub(crate) async fn story(&self, id: Uuid) -> Result<Option<StoryView>, ViewError> {
        let mut conn = self.pool.acquire().await?;
        Ok(load_stories(&mut conn, &[id]).await?.remove(&id))
    }

    /// A page of search results (see `ViewStore::search`): the newest matches of the GIN
    /// indexes, up to the windows, ranked by `ts_rank` (the whole query as one phrase first).
    pub(crate) async fn search(&self, s: &Search) -> Result<Found, ViewError> {
        // Planned for each search's own words (an unnamed statement): a prepared one may turn
        // to a generic plan after a few runs, which read every match of a common filter word.
        let rows: Vec<HitRow> = bind_search(sqlx::query_as(SEARCH_SQL).persistent(false), s)
            .fetch_all(&self.pool)
            .await?;
        let hits = rows
            .into_iter()
            .map(|(_key, story_id, slug, story_headline, head, doc)| Hit {
                story_id,
                slug,
                story_headline,
                head,
                doc,
            })
            .collect();
        found(hits, s)
    }

    /// The plan PostgreSQL chooses for a search (`EXPLAIN`): what tests hold to the indexes.
    pub(crate) async fn search_plan(&self, s: &Search) -> Result<String, ViewError> {
        let sql = format!("EXPLAIN {SEARCH_SQL}");
        let lines: Vec<(String,)> = bind_search(sqlx::query_as(&sql), s)
            .fetch_all(&self.pool)
            .await?;
        Ok(lines
            .into_iter()
            .map(|(l,)| l)
            .collect::<Vec<_>>()
            .join("\n"))
    }

    /// An actor's rows, newest first: the development's document, its story's id, slug and
    /// headline.
    pub(crate) async fn actor(
        &self,
        key: &str,
        limit: usize,
    ) -> Result<Vec<(String, String, String, String)>, ViewError> {
        Ok(sqlx::query_as(
            "SELECT d.doc, d.story_id, s.slug, s.headline FROM view_actor_entries a
             JOIN view_developments d ON d.position = a.position
             JOIN view_stories s ON s.id = d.story_id
             WHERE a.actor_key = $1
             ORDER BY a.occurred_at DESC, a.position DESC LIMIT $2",
        )
        .bind(key)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Applies a batch of events in one transaction, checkpoints included (see the module
    /// comment for how copies share the views).
    pub(crate) async fn apply_batch(&self, batch: &Batch) -> Result<BatchResult, ViewError> {
        let mut tx = self.pool.begin().await?;
        let result = apply(&mut PgBatch(&mut tx), batch).await?;
        tx.commit().await?;
        Ok(result)
    }

    /// Starts replacing the `chosen` views' rows (a rebuild): locks the checkpoints and empties
    /// the views' tables in a transaction that readers do not see until it commits. With
    /// `only_outdated`, `None` if another process already brought every chosen view to the
    /// code's shape.
    pub(crate) async fn replace(
        &self,
        chosen: &[ViewName],
        only_outdated: bool,
    ) -> Result<Option<Replacement>, ViewError> {
        let mut tx = self.pool.begin().await?;
        let checkpoints = read_checkpoints(&mut tx, true).await?;
        if only_outdated
            && chosen.iter().all(|v| {
                checkpoints
                    .get(v)
                    .is_some_and(|c| c.schema_version == v.schema_version())
            })
        {
            return Ok(None);
        }
        for view in chosen {
            match view {
                ViewName::Stories => {
                    sqlx::query("DELETE FROM view_developments")
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query("DELETE FROM view_search")
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query("DELETE FROM view_relations")
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query("DELETE FROM view_story_versions")
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query("DELETE FROM view_front_page_marks")
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query("DELETE FROM view_development_versions")
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query("DELETE FROM view_stories")
                        .execute(&mut *tx)
                        .await?;
                }
                ViewName::Actors => {
                    sqlx::query("DELETE FROM view_actor_entries")
                        .execute(&mut *tx)
                        .await?;
                }
            }
        }
        // A rebuild of the actors view alone keeps the developments it lets go of in a table
        // of its own, gone when the transaction ends.
        let developments = if chosen.contains(&ViewName::Stories) {
            "view_developments"
        } else {
            sqlx::query(
                "CREATE TEMP TABLE rebuild_developments
                    (LIKE view_developments INCLUDING DEFAULTS INCLUDING CONSTRAINTS
                     INCLUDING INDEXES) ON COMMIT DROP",
            )
            .execute(&mut *tx)
            .await?;
            "rebuild_developments"
        };
        Ok(Some(Replacement {
            tx,
            chosen: chosen.to_vec(),
            developments,
        }))
    }
}

/// A rebuild's transaction: the chosen views emptied, being filled.
pub(crate) struct Replacement {
    tx: Transaction<'static, Postgres>,
    chosen: Vec<ViewName>,
    /// The table the developments go to: the view's, or a scratch table when only the actors
    /// view is rebuilt.
    developments: &'static str,
}

impl Replacement {
    /// Writes a part of the rebuilt views' rows (only the chosen views' rows are in it; the
    /// developments go to the scratch table if the stories view is not chosen).
    async fn rows(&mut self, rows: &BatchRows) -> Result<(), ViewError> {
        write_rows(&mut self.tx, rows, self.developments).await
    }

    /// The developments recorded at `positions`, read back from what this rebuild wrote.
    async fn developments_at(
        &mut self,
        positions: &[i64],
    ) -> Result<Vec<DevelopmentView>, ViewError> {
        let docs: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT doc FROM {} WHERE position = ANY($1)",
            self.developments
        ))
        .bind(positions)
        .fetch_all(&mut *self.tx)
        .await?;
        docs.iter()
            .map(|d| serde_json::from_str(d).map_err(ViewError::from))
            .collect()
    }

    /// Writes what a rebuild's fold hands over (`handover.rs`), answering its read-backs
    /// between parts, and commits at the position it reached.
    pub(crate) async fn write(mut self, handover: Handover) -> Result<(), ViewError> {
        let Handover {
            mut work,
            mut loads,
            written_parts,
            decision,
        } = handover;
        while let Some(next) = next_job(&mut work, &mut loads).await {
            match next {
                Ok(rows) => {
                    self.rows(&rows).await?;
                    written_parts.fetch_add(1, std::sync::atomic::Ordering::Release);
                }
                Err((positions, reply)) => {
                    let _ = reply.send(self.developments_at(&positions).await?);
                }
            }
        }
        let Ok(position) = decision.await else {
            return Err(ViewError::Task("the rebuild stopped before its end".into()));
        };
        self.finish(position).await
    }

    /// Sets the chosen views' checkpoints to `position`, gathers the planner's statistics of
    /// the views' tables and commits: readers see the new rows from now on. (Without
    /// statistics, until autovacuum gathers them, if it runs at all, the planner takes every
    /// word of a search for a rare one: a common word's every match was read and sorted, seconds
    /// at 1,000,000 developments. `ANALYZE` in the transaction counts its own new rows.)
    async fn finish(mut self, position: i64) -> Result<(), ViewError> {
        for view in &self.chosen {
            // Every story may have changed.
            set_checkpoint(&mut self.tx, *view, position, None).await?;
        }
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT quote_ident(tablename) FROM pg_tables
             WHERE schemaname = current_schema() AND tablename LIKE 'view\\_%'",
        )
        .fetch_all(&mut *self.tx)
        .await?;
        if !tables.is_empty() {
            sqlx::query(&format!("ANALYZE {}", tables.join(", ")))
                .execute(&mut *self.tx)
                .await?;
        }
        self.tx.commit().await?;
        Ok(())
    }
}

/// The batch step's reads and writes on PostgreSQL views, in the batch's transaction: one
/// statement per kind of read or write, each taking the whole batch (`UNNEST`, `= ANY`), so that
/// a batch costs the same few round trips however many stories it touches.
struct PgBatch<'a>(&'a mut PgConnection);

impl BatchIo for PgBatch<'_> {
    async fn checkpoints(&mut self) -> Result<HashMap<ViewName, i64>, ViewError> {
        Ok(read_checkpoints(self.0, true)
            .await?
            .into_iter()
            .map(|(v, c)| (v, c.position))
            .collect())
    }

    /// One read for all of them, each with the longest window asked for.
    async fn stored(&mut self, stories: &[(Uuid, usize)]) -> Result<Stored, ViewError> {
        let Some(limit) = stories.iter().map(|(_, l)| *l).max() else {
            return Ok(Vec::new());
        };
        let ids: Vec<Uuid> = stories.iter().map(|(id, _)| *id).collect();
        Ok(load_stored(self.0, &ids, limit)
            .await?
            .into_iter()
            .map(|view| (view, limit))
            .collect())
    }

    async fn developments(&mut self, wanted: &[(Uuid, Uuid)]) -> Result<Held, ViewError> {
        developments_by_id(self.0, wanted).await
    }

    async fn write(&mut self, rows: &BatchRows, events: &[LoggedEvent], moved: Moved<'_>) -> Done {
        write_rows(self.0, rows, "view_developments").await?;
        follow_batch_pg(self.0, &rows.versions, moved.marks).await?;
        let changed = changed_stories(events);
        for view in moved.behind {
            set_checkpoint(self.0, *view, moved.last, Some(&changed)).await?;
        }
        Ok(())
    }
}

/// The stored checkpoints; `lock` takes them `FOR UPDATE`, so that one writer at a time goes on.
async fn read_checkpoints(
    conn: &mut PgConnection,
    lock: bool,
) -> Result<BTreeMap<ViewName, Checkpoint>, ViewError> {
    let sql = if lock {
        "SELECT view, position, schema_version FROM view_checkpoints ORDER BY view FOR UPDATE"
    } else {
        "SELECT view, position, schema_version FROM view_checkpoints"
    };
    let rows = sqlx::query(sql).fetch_all(&mut *conn).await?;
    let mut stored = BTreeMap::new();
    for row in rows {
        let name: String = row.try_get(0)?;
        if let Ok(view) = name.parse::<ViewName>() {
            stored.insert(
                view,
                Checkpoint {
                    position: row.try_get(1)?,
                    schema_version: row.try_get(2)?,
                },
            );
        }
    }
    for view in ViewName::ALL {
        stored.entry(view).or_insert(Checkpoint {
            position: 0,
            schema_version: 0,
        });
    }
    Ok(stored)
}

/// The stories a batch's events change the bodies of: each event's own story, and the other
/// story of a relation made or undone (its body lists the relation too).
fn changed_stories(events: &[LoggedEvent]) -> Vec<Uuid> {
    let mut ids: Vec<Uuid> = events
        .iter()
        .flat_map(|e| {
            let other = e.event.relation().map(|(other, _)| other.as_uuid());
            std::iter::once(e.story_id).chain(other)
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Moves `view`'s checkpoint to `position`, having changed `stories` (`None`: any).
async fn set_checkpoint(
    conn: &mut PgConnection,
    view: ViewName,
    position: i64,
    stories: Option<&[Uuid]>,
) -> Result<(), ViewError> {
    // The same statement announces the commit (`crate::followed`), heard at the commit by every
    // process that serves these views: no round trip more per checkpoint.
    sqlx::query(
        "WITH saved AS (
            INSERT INTO view_checkpoints (view, position, schema_version) VALUES ($1, $2, $3)
            ON CONFLICT (view) DO UPDATE SET position = EXCLUDED.position,
               schema_version = EXCLUDED.schema_version
            RETURNING position)
         SELECT pg_notify($4, $5) FROM saved",
    )
    .bind(view.as_str())
    .bind(position)
    .bind(view.schema_version())
    .bind(crate::rows::VIEWS_CHANNEL)
    .bind(crate::followed::announcement(view, position, stories))
    .execute(conn)
    .await?;
    Ok(())
}

/// The stored views of the given stories: each story's row and its developments in recording
/// order, in one statement.
async fn load_stories(
    conn: &mut PgConnection,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, StoryView>, ViewError> {
    let ids: Vec<String> = ids.iter().map(Uuid::to_string).collect();
    let rows: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT s.head,
            (SELECT string_agg(d.doc, ',' ORDER BY d.position)
               FROM view_developments d WHERE d.story_id = s.id)
         FROM view_stories s WHERE s.id = ANY($1)",
    )
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await?;
    let mut stories = HashMap::with_capacity(rows.len());
    for (head, docs) in rows {
        let head: StoryHead = serde_json::from_str(&head)?;
        let developments: Vec<DevelopmentView> = match docs {
            Some(docs) => serde_json::from_str(&format!("[{docs}]"))?,
            None => Vec::new(),
        };
        let view = head.with(developments);
        stories.insert(view.id, view);
    }
    Ok(stories)
}

/// The given stories as the projector keeps them ([`StoryView::stored`]), their windows `limit`
/// times long, in one statement; stories without a row are left out.
async fn load_stored(
    conn: &mut PgConnection,
    ids: &[Uuid],
    limit: usize,
) -> Result<Vec<StoryView>, ViewError> {
    let ids: Vec<String> = ids.iter().map(Uuid::to_string).collect();
    // Head, front-page line, then the documents of the three windows.
    type Row = (String, String, Vec<String>, Vec<String>, Vec<String>);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT s.head, s.entry,
            ARRAY(SELECT d.doc FROM view_developments d
                   WHERE d.story_id = s.id AND d.state IN ('published', 'retracted')
                   ORDER BY d.occurred_at DESC LIMIT $2),
            ARRAY(SELECT d.doc FROM view_developments d
                   WHERE d.story_id = s.id AND d.state IN ('published', 'retracted')
                     AND d.state = 'published'
                   ORDER BY d.occurred_at DESC LIMIT $2),
            ARRAY(SELECT d.doc FROM view_developments d
                   WHERE d.story_id = s.id AND d.state = 'published'
                   ORDER BY d.published_at DESC LIMIT $2)
         FROM view_stories s WHERE s.id = ANY($1)",
    )
    .bind(&ids)
    .bind(limit as i64)
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter()
        .map(|(head, entry, visible, occurred, published)| {
            let head: StoryHead = serde_json::from_str(&head)?;
            let entry: FrontPageEntry = serde_json::from_str(&entry)?;
            NewestDocs {
                visible,
                occurred,
                published,
            }
            .view(head, &entry, limit)
        })
        .collect()
}

/// The developments `(story, id)` from their rows, in one statement.
async fn developments_by_id(
    conn: &mut PgConnection,
    wanted: &[(Uuid, Uuid)],
) -> Result<Vec<(Uuid, DevelopmentView)>, ViewError> {
    let stories: Vec<String> = wanted.iter().map(|(s, _)| s.to_string()).collect();
    let ids: Vec<String> = wanted.iter().map(|(_, d)| d.to_string()).collect();
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT d.story_id, d.doc FROM view_developments d
           JOIN UNNEST($1::text[], $2::text[]) AS w(story_id, id)
             ON d.story_id = w.story_id AND d.id = w.id",
    )
    .bind(&stories)
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter()
        .map(|(story, doc)| {
            let story = story
                .parse()
                .map_err(|e: uuid::Error| ViewError::Task(e.to_string()))?;
            Ok((story, serde_json::from_str(&doc)?))
        })
        .collect()
}

/// Writes a batch's rows (see [`BatchRows`]), the developments into `developments` (the view's
/// table, or a rebuild's scratch table), `ROWS_PER_STATEMENT` rows per statement.
async fn write_rows(
    conn: &mut PgConnection,
    rows: &BatchRows,
    developments: &str,
) -> Result<(), ViewError> {
    for part in rows.stories.chunks(ROWS_PER_STATEMENT) {
        upsert_stories(conn, part).await?;
    }
    for part in rows.developments.chunks(ROWS_PER_STATEMENT) {
        upsert_developments(conn, part, developments).await?;
    }
    for part in rows.versions.chunks(ROWS_PER_STATEMENT) {
        insert_versions(conn, part).await?;
    }
    for part in rows.superseded.chunks(ROWS_PER_STATEMENT) {
        insert_superseded(conn, part).await?;
    }
    if !rows.replaced.is_empty() {
        sqlx::query("DELETE FROM view_actor_entries WHERE position = ANY($1)")
            .bind(&rows.replaced)
            .execute(&mut *conn)
            .await?;
    }
    insert_actor_rows(conn, &rows.actors).await?;
    write_marks_pg(conn, &rows.marks, &rows.mark_lows).await?;
    for part in rows.search.chunks(ROWS_PER_STATEMENT) {
        write_search(conn, part).await?;
    }
    if !rows.relations.is_empty() {
        write_relations(conn, &rows.relations).await?;
    }
    Ok(())
}

/// Writes relation changes: the last change of each pair replaces its row (two statements).
async fn write_relations(conn: &mut PgConnection, rows: &[RelationRow]) -> Result<(), ViewError> {
    let last = RelationRow::last_of_each(rows);
    sqlx::query(
        "DELETE FROM view_relations r
          USING UNNEST($1::text[], $2::text[]) AS t(s, o)
          WHERE r.story_id = t.s AND r.other_id = t.o",
    )
    .bind(last.iter().map(|r| r.story_id.as_str()).collect::<Vec<_>>())
    .bind(last.iter().map(|r| r.other_id.as_str()).collect::<Vec<_>>())
    .execute(&mut *conn)
    .await?;
    let set: Vec<(&RelationRow, &str)> = last
        .iter()
        .filter_map(|r| Some((*r, r.relation.as_deref()?)))
        .collect();
    if set.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO view_relations (story_id, other_id, relation, position)
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[])",
    )
    .bind(
        set.iter()
            .map(|(r, _)| r.story_id.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        set.iter()
            .map(|(r, _)| r.other_id.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(set.iter().map(|(_, rel)| *rel).collect::<Vec<_>>())
    .bind(set.iter().map(|(r, _)| r.position).collect::<Vec<_>>())
    .execute(conn)
    .await?;
    Ok(())
}

/// The stories related to story `id`: the newest relations recorded on it and to it, each side
/// read by its index up to [`RELATIONS_SHOWN`], then the newest of both.
async fn relations(conn: &mut PgConnection, id: &str) -> Result<Vec<RelatedStory>, ViewError> {
    let rows: Vec<(i64, String, bool, String, String, String)> = sqlx::query_as(
        "SELECT * FROM (
            (SELECT r.position, r.relation, TRUE, s.id, s.slug, s.headline
               FROM view_relations r JOIN view_stories s ON s.id = r.other_id
              WHERE r.story_id = $1 ORDER BY r.position DESC LIMIT $2)
            UNION ALL
            (SELECT r.position, r.relation, FALSE, s.id, s.slug, s.headline
               FROM view_relations r JOIN view_stories s ON s.id = r.story_id
              WHERE r.other_id = $1 ORDER BY r.position DESC LIMIT $2)) AS both_sides
          ORDER BY 1 DESC LIMIT $2",
    )
    .bind(id)
    .bind(RELATIONS_SHOWN as i64)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(position, relation, forward, other, slug, headline)| {
            related(position, &relation, forward, &other, slug, headline)
        })
        .collect())
}

/// Replaces documents of the search index: removes the rows' keys, then inserts those with
/// text (the last of a key, if a part names it twice).
async fn write_search(conn: &mut PgConnection, rows: &[SearchRow]) -> Result<(), ViewError> {
    let mut last: HashMap<i64, &SearchRow> = HashMap::with_capacity(rows.len());
    for row in rows {
        last.insert(row.key, row);
    }
    let keys: Vec<i64> = last.keys().copied().collect();
    sqlx::query("DELETE FROM view_search WHERE key = ANY($1)")
        .bind(&keys)
        .execute(&mut *conn)
        .await?;
    let written: Vec<(&SearchRow, &SearchText)> = last
        .values()
        .filter_map(|r| Some((*r, r.text.as_ref()?)))
        .collect();
    if written.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO view_search (key, story_id, occurred_at, words, filters)
         SELECT k, s, o, w::tsvector, f::tsvector
           FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[])
             AS t(k, s, o, w, f)",
    )
    .bind(written.iter().map(|(r, _)| r.key).collect::<Vec<_>>())
    .bind(
        written
            .iter()
            .map(|(r, _)| r.story_id.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        written
            .iter()
            .map(|(_, t)| t.occurred_at.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        written
            .iter()
            .map(|(_, t)| t.tsvector())
            .collect::<Vec<_>>(),
    )
    .bind(
        written
            .iter()
            .map(|(_, t)| t.filters_tsvector())
            .collect::<Vec<_>>(),
    )
    .execute(conn)
    .await?;
    Ok(())
}

async fn upsert_stories(conn: &mut PgConnection, rows: &[StoryRow]) -> Result<(), ViewError> {
    sqlx::query(
        "INSERT INTO view_stories
            (id, slug, headline, position, sort_key, review_required, entry, head)
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[],
            $6::boolean[], $7::text[], $8::text[])
         ON CONFLICT (id) DO UPDATE SET slug = EXCLUDED.slug, headline = EXCLUDED.headline,
            position = EXCLUDED.position, sort_key = EXCLUDED.sort_key,
            review_required = EXCLUDED.review_required, entry = EXCLUDED.entry,
            head = EXCLUDED.head",
    )
    .bind(rows.iter().map(|r| r.id.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.slug.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.headline.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.position).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.sort_key.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.review_required).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.entry.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.head.as_str()).collect::<Vec<_>>())
    .execute(conn)
    .await?;
    Ok(())
}

/// A development's document then, if an event changed it since `$p`.
const THEN: &str = "(SELECT v.doc FROM view_development_versions v
      WHERE v.position = d.position AND v.until > $p ORDER BY v.until LIMIT 1)";

/// Reads one page of a story's claims ledger by index, as it is now or as it stood right after
/// position `at` (see `store::load_ledger`, which reads the same rows one at a time): the claims
/// in growing chunks, then every claim's newest responses in one query and the sides' newest
/// published responses the page still needs in another.
async fn ledger(
    tx: &mut PgConnection,
    story: &str,
    at: Option<i64>,
    ask: ClaimsAsk,
) -> Result<LedgerRows, ViewError> {
    let upto = at.unwrap_or(i64::MAX);
    let then = match at {
        Some(_) => THEN.replace("$p", "$3"),
        None => "NULL::text".to_owned(),
    };
    // Rows as readers saw them then, those they saw (the queries read only visible rows now).
    let seen = |rows: &[(String, Option<String>)]| -> Result<Vec<DevelopmentView>, ViewError> {
        let mut out = Vec::with_capacity(rows.len());
        for (now, was) in rows {
            let now: DevelopmentView = serde_json::from_str(now)?;
            match at {
                None => out.push(now),
                Some(p) => {
                    let was = was.as_deref().map(serde_json::from_str).transpose()?;
                    out.extend(as_they_stood(p, [(now, was)], 1));
                }
            }
        }
        Ok(out)
    };
    let (mut bound, mut chunk) = (ask.bound(), ask.limit as i64 + 1);
    let mut claims = Vec::new();
    loop {
        let rows: Vec<(i64, String, Option<String>)> = sqlx::query_as(&format!(
            "SELECT d.position, d.doc, {then} FROM view_developments d
             WHERE d.story_id = $1 AND d.claim AND d.state IN ('published', 'retracted')
               AND d.position < $2 AND d.position <= $3
             ORDER BY d.position DESC LIMIT $4"
        ))
        .bind(story)
        .bind(bound)
        .bind(upto)
        .bind(chunk)
        .fetch_all(&mut *tx)
        .await?;
        let full = rows.len() as i64 == chunk;
        let last = rows.last().map(|r| r.0);
        let docs: Vec<(String, Option<String>)> = rows.into_iter().map(|r| (r.1, r.2)).collect();
        claims.extend(seen(&docs)?);
        match last {
            Some(last) if full && claims.len() <= ask.limit => {
                bound = last;
                chunk *= 2;
            }
            _ => break,
        }
    }
    claims.truncate(ask.limit + 1);
    let (claims, older) = ask.cut(claims);
    let ids: Vec<String> = claims.iter().map(|c| c.id.to_string()).collect();
    // As of a moment, a few more than are shown: some may not have been visible then.
    let take = RESPONSES_SHOWN + if at.is_some() { WITNESS_SCAN } else { 0 };
    let rows: Vec<(i64, String, Option<String>)> = sqlx::query_as(&format!(
        "SELECT a.n, r.doc, r.was FROM unnest($2::text[]) WITH ORDINALITY AS a(id, n)
         CROSS JOIN LATERAL (
             SELECT d.doc, {then} AS was FROM view_developments d
             WHERE d.story_id = $1 AND d.answers = a.id AND d.position <= $3
               AND d.state IN ('published', 'retracted')
             ORDER BY d.position DESC LIMIT $4) r
         ORDER BY a.n"
    ))
    .bind(story)
    .bind(&ids)
    .bind(upto)
    .bind(take as i64)
    .fetch_all(&mut *tx)
    .await?;
    let mut shown: Vec<Vec<DevelopmentView>> = vec![Vec::new(); claims.len()];
    for (n, doc, was) in rows {
        let list = &mut shown[n as usize - 1];
        if list.len() < RESPONSES_SHOWN {
            list.extend(seen(&[(doc, was)])?);
        }
    }
    let (mut need_ids, mut need_sides, mut need_at) = (Vec::new(), Vec::new(), Vec::new());
    for (i, list) in shown.iter().enumerate() {
        for side in sides_to_settle(list) {
            need_ids.push(ids[i].clone());
            need_sides.push(side.as_str());
            need_at.push(i);
        }
    }
    let mut witnesses: Vec<Option<DevelopmentView>> = vec![None; need_ids.len()];
    if !need_ids.is_empty() {
        let scan = if at.is_some() { WITNESS_SCAN } else { 1 };
        let rows: Vec<(i64, String, Option<String>)> = sqlx::query_as(&format!(
            "SELECT a.n, r.doc, r.was
             FROM unnest($2::text[], $5::text[]) WITH ORDINALITY AS a(id, side, n)
             CROSS JOIN LATERAL (
                 SELECT d.doc, {then} AS was, d.position FROM view_developments d
                 WHERE d.story_id = $1 AND d.answers = a.id AND d.stance = a.side
                   AND d.position <= $3
                   AND (d.state = 'published' OR ($6 AND d.state = 'retracted'))
                 ORDER BY d.position DESC LIMIT $4) r
             ORDER BY a.n, r.position DESC"
        ))
        .bind(story)
        .bind(&need_ids)
        .bind(upto)
        .bind(scan as i64)
        .bind(&need_sides)
        .bind(at.is_some())
        .fetch_all(&mut *tx)
        .await?;
        for (n, doc, was) in rows {
            let slot = &mut witnesses[n as usize - 1];
            if slot.is_none() {
                *slot = seen(&[(doc, was)])?
                    .into_iter()
                    .find(|r| r.state == DevelopmentStanding::Published);
            }
        }
    }
    let mut found = Vec::new();
    for (i, (claim, list)) in claims.into_iter().zip(shown).enumerate() {
        for (j, w) in witnesses.iter_mut().enumerate() {
            if need_at[j] == i {
                found.extend(w.take());
            }
        }
        found.push(claim);
        found.extend(list);
    }
    Ok(LedgerRows { rows: found, older })
}

async fn upsert_developments(
    conn: &mut PgConnection,
    rows: &[DevelopmentRow],
    table: &str,
) -> Result<(), ViewError> {
    sqlx::query(&format!(
        "INSERT INTO {table}
            (position, story_id, id, state, filed_by, occurred_at, published_at, claim,
             answers, stance, doc)
         SELECT * FROM UNNEST($1::bigint[], $2::text[], $8::text[], $3::text[], $4::text[],
            $5::text[], $9::text[], $6::boolean[], $10::text[], $11::text[], $7::text[])
         ON CONFLICT (position) DO UPDATE SET story_id = EXCLUDED.story_id, id = EXCLUDED.id,
            state = EXCLUDED.state, filed_by = EXCLUDED.filed_by,
            occurred_at = EXCLUDED.occurred_at, published_at = EXCLUDED.published_at,
            claim = EXCLUDED.claim, answers = EXCLUDED.answers, stance = EXCLUDED.stance,
            doc = EXCLUDED.doc"
    ))
    .bind(rows.iter().map(|r| r.position).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.story_id.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.state).collect::<Vec<_>>())
    .bind(
        rows.iter()
            .map(|r| r.filed_by.as_deref())
            .collect::<Vec<_>>(),
    )
    .bind(
        rows.iter()
            .map(|r| r.occurred_at.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(rows.iter().map(|r| r.claim).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.doc.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.id.as_str()).collect::<Vec<_>>())
    .bind(
        rows.iter()
            .map(|r| r.published_at.as_deref())
            .collect::<Vec<_>>(),
    )
    .bind(
        rows.iter()
            .map(|r| r.answers.as_deref())
            .collect::<Vec<_>>(),
    )
    .bind(rows.iter().map(|r| r.stance).collect::<Vec<_>>())
    .execute(conn)
    .await?;
    Ok(())
}

async fn insert_versions(
    conn: &mut PgConnection,
    rows: &[StoryVersionRow],
) -> Result<(), ViewError> {
    sqlx::query(
        "INSERT INTO view_story_versions
            (position, story_id, recorded_at, occurred_until, sort_key, entry)
         SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[],
                              $6::text[])
         ON CONFLICT (position) DO NOTHING",
    )
    .bind(rows.iter().map(|r| r.position).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.story_id.as_str()).collect::<Vec<_>>())
    .bind(
        rows.iter()
            .map(|r| r.recorded_at.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        rows.iter()
            .map(|r| r.occurred_until.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(rows.iter().map(|r| r.sort_key.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.entry.as_str()).collect::<Vec<_>>())
    .execute(conn)
    .await?;
    Ok(())
}

async fn insert_superseded(
    conn: &mut PgConnection,
    rows: &[SupersededRow],
) -> Result<(), ViewError> {
    sqlx::query(
        "INSERT INTO view_development_versions (until, position, story_id, moved, doc)
         SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::boolean[], $5::text[])
         ON CONFLICT (until) DO NOTHING",
    )
    .bind(rows.iter().map(|r| r.until).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.position).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.story_id.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.moved).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.doc.as_str()).collect::<Vec<_>>())
    .execute(conn)
    .await?;
    Ok(())
}

/// Inserts rows of the `actors` view whose developments' rows were removed first. A
/// development naming one actor twice (two spellings of one key) has one row, the last
/// spelling, as in `views.db`.
async fn insert_actor_rows(conn: &mut PgConnection, rows: &[ActorRow]) -> Result<(), ViewError> {
    // One row per (position, actor key), however the rows are split into statements.
    let mut unique: BTreeMap<(i64, &str), &ActorRow> = BTreeMap::new();
    for row in rows {
        unique.insert((row.position, row.key.as_str()), row);
    }
    let rows: Vec<&ActorRow> = unique.into_values().collect();
    for part in rows.chunks(ROWS_PER_STATEMENT) {
        sqlx::query(
            "INSERT INTO view_actor_entries (position, actor_key, occurred_at, name)
             SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[])",
        )
        .bind(part.iter().map(|r| r.position).collect::<Vec<_>>())
        .bind(part.iter().map(|r| r.key.as_str()).collect::<Vec<_>>())
        .bind(
            part.iter()
                .map(|r| r.occurred_at.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(part.iter().map(|r| r.name.as_str()).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}
