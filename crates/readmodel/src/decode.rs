//! Turns stored events into domain events: upcasts old payload shapes first
//! (`newsroom_domain::upcast`), then checks the version and the payload.

use newsroom_domain::upcast::{self, EventDecodeError};
use newsroom_log::FeedEvent;
use uuid::Uuid;

use crate::model::LoggedEvent;

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("event at position {position} cannot be read: {source}")]
    Event {
        position: i64,
        source: EventDecodeError,
    },
    #[error("event at position {position} names no valid story id")]
    StoryId { position: i64 },
}

/// Decodes one feed event. Only story events are in the log today.
pub fn decode(event: &FeedEvent) -> Result<LoggedEvent, DecodeError> {
    decode_parts(event, event.payload.clone())
}

/// [`decode`], taking the event: its payload becomes the decoded event instead of a copy of it
/// (a rebuild reads every event once and keeps none of them).
pub fn decode_owned(mut event: FeedEvent) -> Result<LoggedEvent, DecodeError> {
    let payload = std::mem::take(&mut event.payload);
    decode_parts(&event, payload)
}

/// Decodes `event` with `payload` as its payload.
fn decode_parts(event: &FeedEvent, payload: serde_json::Value) -> Result<LoggedEvent, DecodeError> {
    let story_id = Uuid::parse_str(&event.story_id).map_err(|_| DecodeError::StoryId {
        position: event.position,
    })?;
    // Only type, version and payload matter to decoding: the metadata is not copied.
    let stored = upcast::stored(&event.event_type, &event.event_version, payload);
    let payload = upcast::decode(stored).map_err(|source| DecodeError::Event {
        position: event.position,
        source,
    })?;
    Ok(LoggedEvent {
        position: event.position,
        story_id,
        sequence: event.sequence,
        recorded_at: event.recorded_at,
        author: event
            .metadata
            .get("author_name")
            .and_then(|v| v.as_str())
            .map(str::to_owned),
        event: payload,
    })
}
