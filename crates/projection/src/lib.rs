//! The read side of newsroom: reader views projected from the global event feed, the read API,
//! the feeds (Atom, JSON Feed, ninjs) and the reader's web pages.
//!
//! **Architecture invariant:** views learn of events only by reading the global feed from their
//! own checkpoint, which is written in the same transaction as the view. In-process signals only
//! wake the projector up. Nothing here writes to the event log.

pub mod api;
mod batch;
pub mod desk;
pub mod feeds;
mod followed;
pub mod history;
pub mod live;
pub mod marks;
pub mod pages;
pub mod pg;
pub mod projector;
pub mod rebuild;
pub mod resource;
mod rows;
pub mod search;
pub mod store;
mod timing;

pub use live::{LiveHub, LiveLimits};
pub use marks::MarkSpacing;
pub use pg::PgViews;
pub use projector::{ProjectionError, Projector};
pub use rebuild::{rebuild, rebuild_outdated, RebuildReport};
pub use rows::{PageRead, StoryBody, ViewError, ViewName};
pub use store::ViewStore;
