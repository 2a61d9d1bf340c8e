//! The write side of newsroom: the command service, the embargo scheduler, and the HTTP command API.
//!
//! **Architecture invariant:** nothing here renders reader views or sends alerts. What other
//! parts of newsroom learn of the log, they learn from its global feed
//! (`newsroom_log::EventLog::read_feed` and its wake-up signal), never from in-process callbacks.

pub mod app;
pub mod embargo;
pub mod http;
pub mod service;

pub use app::{Application, Settings, StartupError};
pub use service::{CommandError, CommandService, Outcome, Seen, ServiceOptions};
