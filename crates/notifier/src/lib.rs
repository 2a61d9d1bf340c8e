//! Alerts for subscribers: the notifier reads the global event feed from its own checkpoint,
//! matches each published development (and each correction or retraction of one) against an
//! index of subscriptions, and writes alerts and their deliveries to a durable queue (its own
//! SQLite file beside the log, `notifier.db`), in one transaction with its checkpoint; right
//! after the commit it hands the immediate deliveries to the dispatcher in memory. The
//! dispatcher delivers them, and whatever else the queue holds, over webhooks (Standard
//! Webhooks), email (SMTP) and NATS; every subscriber can also follow their alerts as
//! server-sent events.
//!
//! **Architecture invariant:** the notifier learns of events only from the feed, never from
//! in-process dispatch, and does not read the reader views' database.

pub mod api;
pub mod clock;
pub mod digest;
pub mod dispatch;
pub mod email;
pub mod index;
pub mod matcher;
pub mod partitions;
pub mod retention;
pub mod service;
pub mod signing;
pub mod ssrf;
pub mod store;
pub mod streams;
pub mod subjects;
pub mod webpush;

pub use clock::{Clock, ManualClock, SystemClock};
pub use dispatch::RetryPolicy;
pub use service::{Notifier, NotifierSettings, NotifierStartError};
pub use store::{NotifierStore, NotifyError};
