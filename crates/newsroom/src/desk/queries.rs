//! What the desk reads of the notifier: its subscriptions. (What it reads of the views is the
//! projection's, `newsroom_projection::desk`.) Reads only; every write goes through the command
//! service.

use newsroom_notifier::{NotifierStore, NotifyError};
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
