//! What the desk reads: the reader views (their queries are the projection's,
//! `newsroom_projection::desk`) and the notifier's subscriptions. Reads only; every write goes
//! through the command service.

use newsroom_notifier::{NotifierStore, NotifyError};
pub use newsroom_projection::desk::{
    known_actors, pending_count, rejected_filings, review_queue, stories, DeskStory, Pending,
    Rejected,
};
use uuid::Uuid;

/// How many active subscribers follow a story (subscribed to it by name).
pub async fn subscribers(notifier: &NotifierStore, story: Uuid) -> Result<i64, NotifyError> {
    notifier
        .read(move |c| {
            Ok(c.statement(
                "SELECT COUNT(DISTINCT s.subscriber_id) FROM subscriptions s
                 JOIN subscribers u ON u.id = s.subscriber_id
                 WHERE s.story_id = ?1 AND u.status = 'active'",
            )?
            .query_row(newsroom_log::args![story.to_string()], |r| r.get(0))?)
        })
        .await
}
