//! What the desk reads of the views: its list of stories, the review queue, a reporter's
//! rejected filings, the count waiting for review, and the actors already named. Each query is
//! written once per database with the same meaning; callers never see which one answered.

use newsroom_readmodel::{DevelopmentView, FrontPageEntry};
use uuid::Uuid;

use crate::rows::ViewError;
use crate::store::ViewStore;

/// How many stories the desk lists.
const STORY_LIMIT: i64 = 300;
/// How many pending developments the review queue shows at once.
const QUEUE_LIMIT: i64 = 500;
/// How many known actors are suggested.
const ACTOR_LIMIT: i64 = 2_000;

/// A story's line on the desk.
#[derive(Debug, Clone)]
pub struct DeskStory {
    pub entry: FrontPageEntry,
    pub review_required: bool,
    /// Developments waiting for an editor.
    pub pending: i64,
    /// Developments the signed-in user filed.
    pub mine: i64,
}

/// The stories, newest first, with what the desk needs to know of each.
pub async fn stories(views: &ViewStore, me: String) -> Result<Vec<DeskStory>, ViewError> {
    if let Some(pg) = views.postgres() {
        let rows: Vec<(String, bool, i64, i64)> = sqlx::query_as(
            "SELECT s.entry, s.review_required,
                (SELECT COUNT(*) FROM view_developments d
                  WHERE d.story_id = s.id AND d.state = 'pending_review'),
                (SELECT COUNT(*) FROM view_developments d
                  WHERE d.story_id = s.id AND d.filed_by = $1)
             FROM view_stories s ORDER BY s.sort_key DESC, s.position DESC LIMIT $2",
        )
        .bind(me)
        .bind(STORY_LIMIT)
        .fetch_all(pg.pool())
        .await?;
        return rows
            .into_iter()
            .map(|(entry, review_required, pending, mine)| {
                Ok(DeskStory {
                    entry: serde_json::from_str(&entry)?,
                    review_required,
                    pending,
                    mine,
                })
            })
            .collect();
    }
    views
        .read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT s.entry, s.review_required,
                    (SELECT COUNT(*) FROM developments d
                      WHERE d.story_id = s.id AND d.state = 'pending_review'),
                    (SELECT COUNT(*) FROM developments d
                      WHERE d.story_id = s.id AND d.filed_by = ?1)
                 FROM stories s ORDER BY s.sort_key DESC, s.position DESC LIMIT ?2",
            )?;
            let rows = stmt.query_map(rusqlite::params![me, STORY_LIMIT], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, bool>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            })?;
            rows.map(|row| {
                let (entry, review_required, pending, mine) = row?;
                Ok(DeskStory {
                    entry: serde_json::from_str(&entry)?,
                    review_required,
                    pending,
                    mine,
                })
            })
            .collect()
        })
        .await
}

/// A development on the desk's lists (waiting for review, or rejected), with its story.
#[derive(Debug, Clone)]
pub struct Pending {
    pub story_id: Uuid,
    pub story_headline: String,
    pub development: DevelopmentView,
}

/// Developments waiting for an editor, across stories, oldest first.
pub async fn review_queue(views: &ViewStore) -> Result<Vec<Pending>, ViewError> {
    if let Some(pg) = views.postgres() {
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT s.id, s.headline, d.doc
             FROM view_developments d JOIN view_stories s ON s.id = d.story_id
             WHERE d.state = 'pending_review'
             ORDER BY d.position
             LIMIT $1",
        )
        .bind(QUEUE_LIMIT)
        .fetch_all(pg.pool())
        .await?;
        return rows
            .into_iter()
            .filter_map(|(id, headline, doc)| pending(&id, headline, &doc))
            .collect();
    }
    views
        .read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT s.id, s.headline, d.doc
                 FROM developments d JOIN stories s ON s.id = d.story_id
                 WHERE d.state = 'pending_review'
                 ORDER BY d.position
                 LIMIT ?1",
            )?;
            let rows = stmt.query_map([QUEUE_LIMIT], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })?;
            rows.filter_map(|row| match row {
                Ok((id, headline, doc)) => pending(&id, headline, &doc),
                Err(e) => Some(Err(e.into())),
            })
            .collect()
        })
        .await
}

/// A pending development from its row; `None` if the story's id is not one.
fn pending(id: &str, headline: String, doc: &str) -> Option<Result<Pending, ViewError>> {
    let story_id = Uuid::parse_str(id).ok()?;
    Some(
        serde_json::from_str(doc)
            .map_err(ViewError::from)
            .map(|development| Pending {
                story_id,
                story_headline: headline,
                development,
            }),
    )
}

/// How many of a reporter's rejected filings their desk home lists.
const REJECTED_LIMIT: i64 = 20;

/// A reporter's rejected filings: the newest [`REJECTED_LIMIT`] (with their stories), and how
/// many there are in all.
#[derive(Debug, Clone, Default)]
pub struct Rejected {
    pub total: i64,
    pub newest: Vec<Pending>,
}

/// The filings of `me` that an editor rejected, newest first.
pub async fn rejected_filings(views: &ViewStore, me: String) -> Result<Rejected, ViewError> {
    if let Some(pg) = views.postgres() {
        let total: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM view_developments WHERE state = 'rejected' AND filed_by = $1",
        )
        .bind(&me)
        .fetch_one(pg.pool())
        .await?;
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT s.id, s.headline, d.doc
             FROM view_developments d JOIN view_stories s ON s.id = d.story_id
             WHERE d.state = 'rejected' AND d.filed_by = $1
             ORDER BY d.position DESC
             LIMIT $2",
        )
        .bind(&me)
        .bind(REJECTED_LIMIT)
        .fetch_all(pg.pool())
        .await?;
        let newest = rows
            .into_iter()
            .filter_map(|(id, headline, doc)| pending(&id, headline, &doc))
            .collect::<Result<_, _>>()?;
        return Ok(Rejected { total, newest });
    }
    views
        .read(move |c| {
            let total: i64 = c
                .prepare_cached(
                    "SELECT COUNT(*) FROM developments WHERE state = 'rejected' AND filed_by = ?1",
                )?
                .query_row([&me], |r| r.get(0))?;
            let mut stmt = c.prepare_cached(
                "SELECT s.id, s.headline, d.doc
                 FROM developments d JOIN stories s ON s.id = d.story_id
                 WHERE d.state = 'rejected' AND d.filed_by = ?1
                 ORDER BY d.position DESC
                 LIMIT ?2",
            )?;
            let rows = stmt.query_map(rusqlite::params![me, REJECTED_LIMIT], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })?;
            let newest = rows
                .filter_map(|row| match row {
                    Ok((id, headline, doc)) => pending(&id, headline, &doc),
                    Err(e) => Some(Err(e.into())),
                })
                .collect::<Result<_, _>>()?;
            Ok(Rejected { total, newest })
        })
        .await
}

/// How many developments wait for review.
pub async fn pending_count(views: &ViewStore) -> Result<i64, ViewError> {
    if let Some(pg) = views.postgres() {
        return Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM view_developments WHERE state = 'pending_review'",
        )
        .fetch_one(pg.pool())
        .await?);
    }
    views
        .read(|c| {
            Ok(c.prepare_cached(
                "SELECT COUNT(*) FROM developments WHERE state = 'pending_review'",
            )?
            .query_row([], |r| r.get(0))?)
        })
        .await
}

/// Actors already named in published developments, by display name (one spelling per actor).
pub async fn known_actors(views: &ViewStore) -> Result<Vec<String>, ViewError> {
    if let Some(pg) = views.postgres() {
        let names: Vec<Option<String>> = sqlx::query_scalar(
            "SELECT MIN(name) FROM view_actor_entries
             GROUP BY actor_key ORDER BY actor_key LIMIT $1",
        )
        .bind(ACTOR_LIMIT)
        .fetch_all(pg.pool())
        .await?;
        return Ok(names.into_iter().flatten().collect());
    }
    views
        .read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT MIN(name) FROM actor_entries
                 GROUP BY actor_key ORDER BY actor_key LIMIT ?1",
            )?;
            let rows = stmt.query_map([ACTOR_LIMIT], |r| r.get::<_, Option<String>>(0))?;
            let mut names = Vec::new();
            for name in rows {
                names.extend(name?);
            }
            Ok(names)
        })
        .await
}
