//! The read model of a story: [`StoryView`], the fold of a story's events into what readers and
//! subscribers see (its line on the front page, its timeline of developments with their
//! corrections, retractions and embargo steps, its claims and responses, its relations), and
//! [`decode`], which turns a row of the global feed into a domain event.
//!
//! Pure: nothing here does I/O. The projection stores and serves these views; the notifier
//! describes each change to subscribers with them.

pub mod decode;
pub mod model;

pub use decode::{decode, DecodeError};
pub use model::*;
