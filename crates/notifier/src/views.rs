//! What the notifier reads of the views, and only that: the matcher asks whether the views hold a
//! position, the story right after each event that may alert someone (from the views' history),
//! and the line of a story another is related to. The notifier defines the reads; whoever builds
//! it passes their implementation (the binary's, over the projection's `ViewStore`), so the
//! notifier knows nothing of how or where the views are kept.
//!
//! Each read is one call per batch (or per related story), so a boxed future per call is all the
//! indirection costs.

use futures_util::future::BoxFuture;
use newsroom_readmodel::{LoggedEvent, StoryView};
use uuid::Uuid;

/// The views' history, as the matcher reads it.
pub trait ViewsHistory: Send + Sync {
    /// Whether the views hold every event up to `position`, in the code's shape (a view being
    /// rebuilt to a new shape does not count: its history may not be written yet).
    fn reached(&self, position: i64) -> BoxFuture<'_, Result<bool, ViewsError>>;

    /// For each of `events` (of any stories, each story's in log order), the story right after
    /// it, as far as a reader of that change needs it; `None` for an event the views hold nothing
    /// of. Asked only once the views have [`reached`](Self::reached) the last of them.
    fn stories_after<'a>(
        &'a self,
        events: &'a [&'a LoggedEvent],
    ) -> BoxFuture<'a, Result<Vec<Option<StoryView>>, ViewsError>>;

    /// A story's slug and headline as they are now; `None` if the views hold no such story.
    fn story_line(&self, id: Uuid) -> BoxFuture<'_, Result<Option<(String, String)>, ViewsError>>;
}

/// Reading the views failed (whatever holds them says why).
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct ViewsError(Box<dyn std::error::Error + Send + Sync>);

impl ViewsError {
    pub fn new(cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self(Box::new(cause))
    }
}
