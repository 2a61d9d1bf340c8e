//! What the desk reads of the views: its list of stories, the review queue, a reporter's
//! rejected filings, the count waiting for review, and the actors already named. Cold paths:
//! each query is written once, in the SQL both databases speak (`newsroom_log::sql`, through
//! `ViewStore::read_sql`); callers never see which one answered.

use newsroom_readmodel::{DevelopmentView, FrontPageEntry};
use uuid::Uuid;

use newsroom_log::args;
use newsroom_log::sql::Row;

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
    views
        .read_sql(move |sql, tables| {
            let rows = sql.rows(
                &tables.sql(
                    "SELECT s.entry, s.review_required,
                        (SELECT COUNT(*) FROM {developments} d
                          WHERE d.story_id = s.id AND d.state = 'pending_review'),
                        (SELECT COUNT(*) FROM {developments} d
                          WHERE d.story_id = s.id AND d.filed_by = ?1)
                     FROM {stories} s ORDER BY s.sort_key DESC, s.position DESC LIMIT ?2",
                ),
                args![me, STORY_LIMIT],
            )?;
            rows.iter()
                .map(|r| {
                    Ok(DeskStory {
                        entry: serde_json::from_str(&r.get::<String>(0)?)?,
                        review_required: r.get(1)?,
                        pending: r.get(2)?,
                        mine: r.get(3)?,
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
    views
        .read_sql(|sql, tables| {
            let rows = sql.rows(
                &tables.sql(
                    "SELECT s.id, s.headline, d.doc
                     FROM {developments} d JOIN {stories} s ON s.id = d.story_id
                     WHERE d.state = 'pending_review'
                     ORDER BY d.position
                     LIMIT ?1",
                ),
                args![QUEUE_LIMIT],
            )?;
            rows.iter().filter_map(pending).collect()
        })
        .await
}

/// A pending development from its row (the story's id, its headline, the development's
/// document); `None` if the story's id is not one.
fn pending(row: &Row) -> Option<Result<Pending, ViewError>> {
    let read = || -> Result<(String, String, String), ViewError> {
        Ok((row.get(0)?, row.get(1)?, row.get(2)?))
    };
    let (id, headline, doc) = match read() {
        Ok(read) => read,
        Err(e) => return Some(Err(e)),
    };
    let story_id = Uuid::parse_str(&id).ok()?;
    Some(
        serde_json::from_str(&doc)
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
    views
        .read_sql(move |sql, tables| {
            let total: i64 = sql.query_row(
                &tables.sql(
                    "SELECT COUNT(*) FROM {developments}
                      WHERE state = 'rejected' AND filed_by = ?1",
                ),
                args![me],
                |r| r.get(0),
            )?;
            let rows = sql.rows(
                &tables.sql(
                    "SELECT s.id, s.headline, d.doc
                     FROM {developments} d JOIN {stories} s ON s.id = d.story_id
                     WHERE d.state = 'rejected' AND d.filed_by = ?1
                     ORDER BY d.position DESC
                     LIMIT ?2",
                ),
                args![me, REJECTED_LIMIT],
            )?;
            let newest = rows.iter().filter_map(pending).collect::<Result<_, _>>()?;
            Ok(Rejected { total, newest })
        })
        .await
}

/// How many developments wait for review.
pub async fn pending_count(views: &ViewStore) -> Result<i64, ViewError> {
    views
        .read_sql(|sql, tables| {
            Ok(sql.query_row(
                &tables.sql("SELECT COUNT(*) FROM {developments} WHERE state = 'pending_review'"),
                args![],
                |r| r.get(0),
            )?)
        })
        .await
}

/// Actors already named in published developments, by display name (one spelling per actor).
pub async fn known_actors(views: &ViewStore) -> Result<Vec<String>, ViewError> {
    views
        .read_sql(|sql, tables| {
            let rows = sql.rows(
                &tables.sql(
                    "SELECT MIN(name) FROM {actor_entries}
                     GROUP BY actor_key ORDER BY actor_key LIMIT ?1",
                ),
                args![ACTOR_LIMIT],
            )?;
            let mut names = Vec::new();
            for row in &rows {
                names.extend(row.get::<Option<String>>(0)?);
            }
            Ok(names)
        })
        .await
}
