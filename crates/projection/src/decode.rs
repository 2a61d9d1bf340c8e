//! Turns stored events into domain events, upcasting old payload shapes first.

use newsroom_command::FeedEvent;
use newsroom_domain::{StoryEvent, EVENT_VERSION};
use uuid::Uuid;

use crate::model::LoggedEvent;

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("event at position {position} has an unknown payload version {version}")]
    UnknownVersion { position: i64, version: String },
    #[error("event at position {position} cannot be read: {source}")]
    Payload {
        position: i64,
        source: serde_json::Error,
    },
    #[error("event at position {position} names no valid story id")]
    StoryId { position: i64 },
}

/// Decodes one feed event. Only story events are in the log today.
pub fn decode(event: &FeedEvent) -> Result<LoggedEvent, DecodeError> {
    if event.event_version != EVENT_VERSION {
        return Err(DecodeError::UnknownVersion {
            position: event.position,
            version: event.event_version.clone(),
        });
    }
    let story_id = Uuid::parse_str(&event.story_id).map_err(|_| DecodeError::StoryId {
        position: event.position,
    })?;
    let payload: StoryEvent =
        serde_json::from_value(event.payload.clone()).map_err(|source| DecodeError::Payload {
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
