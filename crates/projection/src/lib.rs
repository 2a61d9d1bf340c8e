//! The read side of newsroom: reader views projected from the global event feed, the read API,
//! the feeds (Atom, JSON Feed, ninjs) and the reader's web pages.
//!
//! **Architecture invariant:** views learn of events only by reading the global feed from their
//! own checkpoint, which is written in the same transaction as the view. In-process signals only
//! wake the projector up. Nothing here writes to the event log.

pub mod decode;
pub mod model;

pub use decode::{decode, DecodeError};
pub use model::*;
