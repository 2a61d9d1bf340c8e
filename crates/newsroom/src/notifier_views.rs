//! The views' history as the notifier reads it ([`newsroom_notifier::ViewsHistory`]), over the
//! projection's [`ViewStore`] and the log: the notifier and the projection are siblings, so the
//! process that runs both joins them here.

use futures_util::future::{BoxFuture, FutureExt};
use newsroom_log::EventLog;
use newsroom_notifier::{ViewsError, ViewsHistory};
use newsroom_projection::history::{stories_after, views_reached};
use newsroom_projection::ViewStore;
use newsroom_readmodel::{LoggedEvent, StoryView};
use uuid::Uuid;

/// The views (kept current by a projector, in this process or another) and the log whose index
/// says where each development was recorded.
#[derive(Debug, Clone)]
pub struct NotifierViews {
    pub log: EventLog,
    pub views: ViewStore,
}

impl ViewsHistory for NotifierViews {
    fn reached(&self, position: i64) -> BoxFuture<'_, Result<bool, ViewsError>> {
        async move {
            views_reached(&self.views, position)
                .await
                .map_err(ViewsError::new)
        }
        .boxed()
    }

    fn stories_after<'a>(
        &'a self,
        events: &'a [&'a LoggedEvent],
    ) -> BoxFuture<'a, Result<Vec<Option<StoryView>>, ViewsError>> {
        async move {
            stories_after(&self.log, &self.views, events)
                .await
                .map_err(ViewsError::new)
        }
        .boxed()
    }

    fn story_line(&self, id: Uuid) -> BoxFuture<'_, Result<Option<(String, String)>, ViewsError>> {
        async move { self.views.story_line(id).await.map_err(ViewsError::new) }.boxed()
    }
}
