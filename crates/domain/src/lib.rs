//! The newsroom's story domain: the `Story` aggregate, its commands, events, rules and value
//! types.
//!
//! **Architecture invariant:** this crate does no I/O and knows nothing about SQLite, PostgreSQL,
//! NATS or HTTP. Everything it decides follows from an aggregate's state and one command.

mod error;
mod story;
pub mod upcast;
mod values;

#[cfg(test)]
mod story_tests;

pub use error::{FieldError, StoryError};
pub use story::*;
pub use values::*;
