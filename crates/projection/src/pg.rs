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

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use sqlx::migrate::Migrator;
use sqlx::{PgConnection, PgPool, Postgres, Row, Transaction};
use uuid::Uuid;

use crate::model::{DevelopmentView, FrontPageEntry, StoryView};
use crate::projector::{fold, missing, past, take_cached, BatchResult};
use crate::store::{
    ActorRow, BatchRows, Checkpoint, DevelopmentRow, StoryHead, StoryRow, ViewError, ViewName,
};
use crate::LoggedEvent;

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
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT entry FROM view_stories ORDER BY sort_key DESC, position DESC LIMIT $1",
        )
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok(serde_json::from_str(r)?)).collect()
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

    pub(crate) async fn story(&self, id: Uuid) -> Result<Option<StoryView>, ViewError> {
        let mut conn = self.pool.acquire().await?;
        Ok(load_stories(&mut conn, &[id]).await?.remove(&id))
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
    pub(crate) async fn apply_batch(
        &self,
        events: &[LoggedEvent],
        cache: &Mutex<lru::LruCache<Uuid, StoryView>>,
        last_written: Option<i64>,
    ) -> Result<BatchResult, ViewError> {
        let mut tx = self.pool.begin().await?;
        let checkpoints = read_checkpoints(&mut tx, true).await?;
        let at = |view| {
            checkpoints
                .get(&view)
                .map_or(0, |c: &Checkpoint| c.position)
        };
        let (stories_at, actors_at) = (at(ViewName::Stories), at(ViewName::Actors));
        let last = events.last().map_or(0, |e| e.position);
        let events = past(events, stories_at.min(actors_at));
        let mut taken = take_cached(cache, events, last_written, stories_at.min(actors_at))?;
        let absent = missing(events, &taken);
        if !absent.is_empty() {
            taken.extend(load_stories(&mut tx, &absent).await?);
        }
        let changes = fold(events, stories_at, actors_at, &mut taken);
        write_rows(&mut tx, &changes.rows(&taken)?).await?;
        for view in ViewName::ALL {
            if last > at(view) {
                set_checkpoint(&mut tx, view, last).await?;
            }
        }
        tx.commit().await?;
        Ok(BatchResult {
            applied: changes.applied,
            position: last.max(stories_at.min(actors_at)),
            views: taken.into_values().collect(),
        })
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
        Ok(Some(Replacement {
            tx,
            chosen: chosen.to_vec(),
        }))
    }
}

/// A rebuild's transaction: the chosen views emptied, being filled.
pub(crate) struct Replacement {
    tx: Transaction<'static, Postgres>,
    chosen: Vec<ViewName>,
}

impl Replacement {
    pub(crate) async fn stories(&mut self, stories: &[StoryView]) -> Result<(), ViewError> {
        let rows = stories
            .iter()
            .map(StoryRow::of)
            .collect::<Result<Vec<_>, _>>()?;
        for part in rows.chunks(ROWS_PER_STATEMENT) {
            upsert_stories(&mut self.tx, part).await?;
        }
        Ok(())
    }

    pub(crate) async fn developments(&mut self, rows: &[DevelopmentRow]) -> Result<(), ViewError> {
        for part in rows.chunks(ROWS_PER_STATEMENT) {
            upsert_developments(&mut self.tx, part).await?;
        }
        Ok(())
    }

    pub(crate) async fn actors(&mut self, rows: &[ActorRow]) -> Result<(), ViewError> {
        for part in rows.chunks(ROWS_PER_STATEMENT) {
            insert_actor_rows(&mut self.tx, part).await?;
        }
        Ok(())
    }

    /// Sets the chosen views' checkpoints to `position` and commits: readers see the new rows
    /// from now on.
    pub(crate) async fn finish(mut self, position: i64) -> Result<(), ViewError> {
        for view in &self.chosen {
            set_checkpoint(&mut self.tx, *view, position).await?;
        }
        self.tx.commit().await?;
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

async fn set_checkpoint(
    conn: &mut PgConnection,
    view: ViewName,
    position: i64,
) -> Result<(), ViewError> {
    sqlx::query(
        "INSERT INTO view_checkpoints (view, position, schema_version) VALUES ($1, $2, $3)
         ON CONFLICT (view) DO UPDATE SET position = EXCLUDED.position,
            schema_version = EXCLUDED.schema_version",
    )
    .bind(view.as_str())
    .bind(position)
    .bind(view.schema_version())
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

/// Writes a batch's rows (see [`BatchRows`]).
async fn write_rows(conn: &mut PgConnection, rows: &BatchRows) -> Result<(), ViewError> {
    if !rows.stories.is_empty() {
        upsert_stories(conn, &rows.stories).await?;
    }
    if !rows.developments.is_empty() {
        upsert_developments(conn, &rows.developments).await?;
    }
    if !rows.replaced.is_empty() {
        sqlx::query("DELETE FROM view_actor_entries WHERE position = ANY($1)")
            .bind(&rows.replaced)
            .execute(&mut *conn)
            .await?;
        insert_actor_rows(conn, &rows.actors).await?;
    }
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

async fn upsert_developments(
    conn: &mut PgConnection,
    rows: &[DevelopmentRow],
) -> Result<(), ViewError> {
    sqlx::query(
        "INSERT INTO view_developments (position, story_id, state, filed_by, doc)
         SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[])
         ON CONFLICT (position) DO UPDATE SET story_id = EXCLUDED.story_id,
            state = EXCLUDED.state, filed_by = EXCLUDED.filed_by, doc = EXCLUDED.doc",
    )
    .bind(rows.iter().map(|r| r.position).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.story_id.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.state).collect::<Vec<_>>())
    .bind(
        rows.iter()
            .map(|r| r.filed_by.as_deref())
            .collect::<Vec<_>>(),
    )
    .bind(rows.iter().map(|r| r.doc.as_str()).collect::<Vec<_>>())
    .execute(conn)
    .await?;
    Ok(())
}

/// Inserts rows of the `actors` view whose developments' rows were removed first. A
/// development naming one actor twice (two spellings of one key) has one row, the last
/// spelling, as in `views.db`.
async fn insert_actor_rows(conn: &mut PgConnection, rows: &[ActorRow]) -> Result<(), ViewError> {
    let mut unique: BTreeMap<(i64, &str), &ActorRow> = BTreeMap::new();
    for row in rows {
        unique.insert((row.position, row.key.as_str()), row);
    }
    let rows: Vec<&ActorRow> = unique.into_values().collect();
    sqlx::query(
        "INSERT INTO view_actor_entries (position, actor_key, occurred_at, name)
         SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[])",
    )
    .bind(rows.iter().map(|r| r.position).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.key.as_str()).collect::<Vec<_>>())
    .bind(
        rows.iter()
            .map(|r| r.occurred_at.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(rows.iter().map(|r| r.name.as_str()).collect::<Vec<_>>())
    .execute(conn)
    .await?;
    Ok(())
}
