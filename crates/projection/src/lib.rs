//! The read side of newsroom: reader views projected from the global event feed, the read API,
//! the feeds (Atom, JSON Feed, ninjs) and the reader's web pages.
//!
//! **Architecture invariant:** views learn of events only by reading the global feed from their
//! own checkpoint, which is written in the same transaction as the view. In-process signals only
//! wake the projector up. Nothing here writes to the event log.
//!
//! **Architecture invariant:** incremental projection and rebuild both fold through
//! `newsroom_readmodel::StoryView::apply`, and time travel reads the history they write; `as_of` is
//! checked against a fold of the story's events at the moment of every event (each page, the
//! ledger, the front-page line; after a rebuild too); a property test checks that incremental views
//! equal a full rebuild for random command sequences, and a kill test that a projector killed
//! mid-stream converges.
//!
//! **Architecture invariant:** readers never see pending, rejected or embargoed developments, nor
//! who filed or approved what (not on pages, in the JSON API, the feeds or ninjs); a retracted
//! development stays in the timeline, struck, with its reason. Pages carry a
//! Content-Security-Policy without inline script; every text is escaped by maud.
//!
//! Views written before embargoes hold none, so their schema version did not change for them.

pub mod api;
mod batch;
pub mod desk;
pub mod feeds;
mod followed;
mod handover;
pub mod history;
pub mod live;
pub mod marks;
pub mod pages;
mod pg;
pub mod projector;
pub mod rebuild;
pub mod resource;
mod rows;
mod schema;
pub mod search;
mod sqlite;
pub mod store;
mod timing;

pub use live::{LiveHub, LiveLimits};
pub use marks::MarkSpacing;
pub use projector::{ProjectionError, Projector};
pub use rebuild::{rebuild, rebuild_outdated, RebuildReport};
pub use rows::{PageRead, StoryBody, ViewError, ViewName};
pub use store::ViewStore;
