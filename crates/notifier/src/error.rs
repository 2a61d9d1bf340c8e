//! The notifier's errors: its store's and those of the work done in its transactions, and the
//! making of a Web Push message.

use newsroom_log::DbError;

/// Errors of the notifier's store and of the work done in its transactions.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("notifier database error: {0}")]
    Database(#[from] rusqlite::Error),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("stored notifier data cannot be read: {0}")]
    Json(#[from] serde_json::Error),
    #[error("reading the event feed failed: {0}")]
    Feed(#[from] newsroom_log::StoreError),
    #[error(transparent)]
    Decode(#[from] newsroom_readmodel::DecodeError),
    #[error("following the event stream failed: {0}")]
    Stream(#[from] newsroom_log::relay::RelayError),
    #[error("notifier migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("reading the views failed: {0}")]
    Views(#[from] crate::views::ViewsError),
    #[error("the views have not reached position {0} yet")]
    ViewsBehind(i64),
    #[error("alerts are still being queued after {0:?}")]
    AlertsInFlight(std::time::Duration),
    #[error(transparent)]
    Push(#[from] PushError),
}

impl NotifyError {
    /// Whether the notifier's database cannot be reached right now (retrying later may work).
    pub fn is_unavailable(&self) -> bool {
        match self {
            NotifyError::Db(e) => e.is_unreachable(),
            _ => false,
        }
    }
}

/// What went wrong making a push message.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("the stored push keys cannot be read")]
    Keys,
    #[error("the stored VAPID key cannot be read")]
    VapidKey,
    #[error("encrypting the push message failed")]
    Encrypt,
}
