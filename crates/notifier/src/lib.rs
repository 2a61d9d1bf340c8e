//! Alerts for subscribers: the notifier reads the global event feed from its own checkpoint,
//! matches each published development (and each correction or retraction of one, and each new
//! relation between stories) against an index of subscriptions, and writes alerts and their
//! deliveries to a durable queue — its own SQLite file beside an embedded log (`notifier.db`), or
//! tables in the log's PostgreSQL database shared by every notifier copy — in one transaction with
//! its checkpoint; right after the commit it hands the immediate deliveries to the dispatcher in
//! memory. The dispatcher delivers them, and whatever else the queue holds, over webhooks (Standard
//! Webhooks), email (SMTP), NATS and Web Push; every subscriber can also follow their alerts as
//! server-sent events.
//!
//! Where to start: [`Notifier::build`] (`service.rs`) puts the parts together; `matcher.rs` turns
//! events into alerts, `queue.rs` writes them to the queue, `dispatch.rs` sends them,
//! `partitions.rs` says how copies share the work, `api/` is the subscriber API.
//!
//! **Architecture invariant:** the notifier learns of events only from the feed, never from
//! in-process dispatch, and keeps no story in memory: what a story looked like right after an event
//! it reads from the views' history (through [`ViewsHistory`], which the builder passes in), once
//! the views hold the event. It never writes to the views.

pub mod api;
pub mod clock;
pub mod digest;
pub mod dispatch;
pub mod email;
pub mod error;
pub mod fanout;
pub mod index;
pub mod matcher;
pub mod partitions;
pub mod queue;
pub mod retention;
pub mod service;
pub mod signing;
pub mod ssrf;
pub mod store;
pub mod streams;
pub mod subjects;
pub mod views;
pub mod webpush;

pub use clock::{Clock, ManualClock, SystemClock};
pub use dispatch::RetryPolicy;
pub use error::NotifyError;
pub use service::{Notifier, NotifierSettings, NotifierStartError};
pub use store::NotifierStore;
pub use views::{ViewsError, ViewsHistory};
