//! Event schema evolution: which payload shape each event type is written in now, and the
//! upcasters that turn a payload stored in an older shape into the current one.
//!
//! Every stored event carries its `event_version` (cqrs-es's `DomainEvent::event_version`),
//! per event type. The log is never rewritten: an event keeps the shape and version it was
//! written with, and whoever reads it — the stores loading an aggregate, the projection and the
//! notifier decoding the feed — passes it through [`upcast`] first, then [`decode`]s it. The
//! tamper-evidence chain is over the stored form, so upcasting never disturbs it.
//!
//! Versions are semantic versions (`"1"` is `1.0.0`), compared as such. To change a payload's
//! shape: bump its entry in [`current_version`] and add an upcaster from the previous version
//! to the end of [`upcasters`] (they run in order, so a version-1 payload passes every step).
//!
//! History:
//! - `StoryLinked`, `StoryUnlinked` 1 (new): relations between stories, recorded on the story
//!   a relation is made from.
//! - `ApprovalUndone` 1 (new): undo windows. `DevelopmentRecorded` and
//!   `DevelopmentApprovedUnderEmbargo` gained an optional `hold` (the window's length) in
//!   version 1, absent when there is none, so older payloads are of the same shape.
//! - `DevelopmentApprovedUnderEmbargo`, `EmbargoLifted`, `EmbargoMoved` 1 (new): embargoes.
//!   `DevelopmentRecorded` gained an optional `embargo_until` and the status `embargoed` in
//!   version 1 (older payloads are of the same shape without them); code that predates them
//!   refuses such a payload instead of reading it as a publication.
//! - `FilingEdited` 1 (new): an edit of a development still waiting for review, by the one who
//!   filed it or an editor; before it, such an edit was a `DevelopmentCorrected` that readers
//!   were never shown, and those stay as they were written.
//! - `StoryClosed`, `StoryReopened` 2: struct variants without fields, stored as
//!   `{"StoryClosed": {}}` like every other event. Version 1 was the bare JSON string
//!   `"StoryClosed"`, the only payloads that were not objects, and a unit variant cannot gain a
//!   field later without another change of shape.
//!
//! Snapshots of the `Story` aggregate have a shape of their own ([`SNAPSHOT_SHAPE`]); unlike
//! events they are derived data, so a snapshot this code cannot read is ignored (the story is
//! loaded from its events and snapshotted again), never an error. [`snapshot`] writes one,
//! [`read_snapshot`] reads any shape into the current one. History:
//! - Shape 3: the story also holds the relations it records (`relations`, absent when none);
//!   a shape 2 snapshot is read as it is (it predates relations, so it holds none). Code that
//!   predates relations ignores a shape 3 snapshot and replays the events (and refuses the
//!   relation events it does not know, rather than lose them).
//! - Shape 2: `{"shape": 2, "story": {…}}`; the aggregate no longer holds its developments (the
//!   log's index of developments does).
//! - Shape 1: the aggregate's fields at the top level, with `developments`, a map of every
//!   development's state — read by dropping that map.

use std::str::FromStr;
use std::sync::OnceLock;

use cqrs_es::persist::{
    EventUpcaster, SemanticVersion, SemanticVersionEventUpcaster, SerializedEvent,
};
use cqrs_es::DomainEvent;
use serde_json::{Map, Value};

use crate::StoryEvent;

/// The version of the shape each event type is written in by this code (`None`: not an event
/// type of this code).
pub fn current_version(event_type: &str) -> Option<&'static str> {
    Some(match event_type {
        "StoryOpened"
        | "DevelopmentRecorded"
        | "DevelopmentApproved"
        | "DevelopmentRejected"
        | "DevelopmentCorrected"
        | "DevelopmentRetracted"
        | "HeadlineChanged"
        | "TagsChanged"
        | "FilingEdited"
        | "DevelopmentApprovedUnderEmbargo"
        | "EmbargoLifted"
        | "EmbargoMoved"
        | "ApprovalUndone"
        | "StoryLinked"
        | "StoryUnlinked" => "1",
        "StoryClosed" | "StoryReopened" => "2",
        _ => return None,
    })
}

/// Version 1 → 2 of the field-less events: `"StoryClosed"` becomes `{"StoryClosed": {}}`.
/// Anything else is left as it is, for [`decode`] to refuse.
fn unit_to_struct(event_type: &'static str) -> Box<dyn Fn(Value) -> Value + Send + Sync> {
    Box::new(move |payload| match payload {
        Value::String(name) if name == event_type => {
            Value::Object(Map::from_iter([(name, Value::Object(Map::new()))]))
        }
        other => other,
    })
}

/// Every upcaster, oldest first.
pub fn upcasters() -> &'static [Box<dyn EventUpcaster>] {
    static UPCASTERS: OnceLock<Vec<Box<dyn EventUpcaster>>> = OnceLock::new();
    UPCASTERS.get_or_init(|| {
        ["StoryClosed", "StoryReopened"]
            .into_iter()
            .map(|event_type| {
                Box::new(SemanticVersionEventUpcaster::new(
                    event_type,
                    "2",
                    unit_to_struct(event_type),
                )) as Box<dyn EventUpcaster>
            })
            .collect()
    })
}

/// `event` in the current shape of its type: every upcaster that applies, in order. Events
/// already current (or of a version newer than this code knows) come back unchanged.
pub fn upcast(event: SerializedEvent) -> SerializedEvent {
    upcasters().iter().fold(event, |event, upcaster| {
        if upcaster.can_upcast(&event.event_type, &event.event_version) {
            upcaster.upcast(event)
        } else {
            event
        }
    })
}

/// Why a stored event cannot be read as a [`StoryEvent`].
#[derive(Debug, thiserror::Error)]
pub enum EventDecodeError {
    #[error("unknown event type `{0}`")]
    UnknownType(String),
    #[error("`{event_type}` version {version} is not one this code reads (it writes {current})")]
    UnknownVersion {
        event_type: String,
        version: String,
        current: &'static str,
    },
    #[error("the payload is not a `{event_type}`: {source}")]
    Payload {
        event_type: String,
        source: serde_json::Error,
    },
    #[error("the payload is a `{found}`, the event says `{event_type}`")]
    TypeMismatch { event_type: String, found: String },
}

/// Whether `version` is the current version of `event_type`, as semantic versions (`"2"` and
/// `"2.0.0"` are the same).
fn is_current(version: &str, current: &str) -> bool {
    matches!(
        (SemanticVersion::from_str(version), SemanticVersion::from_str(current)),
        (Ok(a), Ok(b)) if a == b
    )
}

/// Reads a stored event: upcasts it, checks the version is the current one of its type, and
/// deserialises the payload, which must be of the type the event names.
pub fn decode(event: SerializedEvent) -> Result<StoryEvent, EventDecodeError> {
    let event = upcast(event);
    let current = current_version(&event.event_type)
        .ok_or_else(|| EventDecodeError::UnknownType(event.event_type.clone()))?;
    if !is_current(&event.event_version, current) {
        return Err(EventDecodeError::UnknownVersion {
            event_type: event.event_type,
            version: event.event_version,
            current,
        });
    }
    let decoded: StoryEvent =
        serde_json::from_value(event.payload).map_err(|source| EventDecodeError::Payload {
            event_type: event.event_type.clone(),
            source,
        })?;
    let found = decoded.event_type();
    if found != event.event_type {
        return Err(EventDecodeError::TypeMismatch {
            event_type: event.event_type,
            found,
        });
    }
    Ok(decoded)
}

/// The shape of the snapshots this code writes (see the module comment).
pub const SNAPSHOT_SHAPE: u64 = 3;

/// A story's snapshot, in the current shape.
pub fn snapshot(story: &crate::Story) -> Value {
    serde_json::json!({ "shape": SNAPSHOT_SHAPE, "story": story })
}

/// The aggregate's state in a stored snapshot, in the current shape of `Story`; `None` for a shape
/// this code does not know (a newer one): the caller ignores the snapshot and replays events.
pub fn read_snapshot(stored: Value) -> Option<Value> {
    let Value::Object(mut fields) = stored else {
        return None;
    };
    match fields.get("shape").map(Value::as_u64) {
        Some(Some(SNAPSHOT_SHAPE | 2)) => fields.remove("story"),
        Some(_) => None,
        // Shape 1: everything but the per-development map is still what the aggregate holds.
        None => {
            fields.remove("developments");
            Some(Value::Object(fields))
        }
    }
}

/// A serialised event of `event_type`/`event_version` with `payload`, for [`upcast`] and
/// [`decode`] when only those three are at hand.
pub fn stored(event_type: &str, event_version: &str, payload: Value) -> SerializedEvent {
    SerializedEvent::new(
        String::new(),
        0,
        crate::AGGREGATE_TYPE.to_owned(),
        event_type.to_owned(),
        event_version.to_owned(),
        payload,
        Value::Null,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DevelopmentId, Note};
    use serde_json::json;

    #[test]
    fn version_1_closing_and_reopening_decode_as_today() {
        for (event_type, expected) in [
            ("StoryClosed", StoryEvent::StoryClosed {}),
            ("StoryReopened", StoryEvent::StoryReopened {}),
        ] {
            let old = stored(event_type, "1", json!(event_type));
            let up = upcast(old.clone());
            assert_eq!(up.payload, json!({ event_type: {} }));
            assert!(is_current(&up.event_version, "2"), "{}", up.event_version);
            assert_eq!(decode(old).unwrap(), expected);
            // What this code writes reads back the same, and is not upcast again.
            let written = serde_json::to_value(&expected).unwrap();
            assert_eq!(written, json!({ event_type: {} }));
            let now = stored(event_type, &expected.event_version(), written);
            assert_eq!(upcast(now.clone()), now);
            assert_eq!(decode(now).unwrap(), expected);
        }
    }

    #[test]
    fn without_the_upcaster_a_version_1_payload_is_unreadable() {
        let raw: Result<StoryEvent, _> = serde_json::from_value(json!("StoryClosed"));
        assert!(raw.is_err(), "the old shape needs the upcaster");
    }

    #[test]
    fn every_event_type_is_written_in_its_current_version_as_an_object() {
        let d = DevelopmentId::from(uuid::Uuid::nil());
        let note = Note::parse("note", "why").unwrap();
        for event in [
            StoryEvent::DevelopmentApproved { development: d },
            StoryEvent::DevelopmentRetracted {
                development: d,
                reason: note,
            },
            StoryEvent::StoryClosed {},
            StoryEvent::StoryReopened {},
            StoryEvent::StoryLinked {
                story: crate::StoryId::from(uuid::Uuid::nil()),
                relation: crate::Relation::FollowUp,
            },
            StoryEvent::StoryUnlinked {
                story: crate::StoryId::from(uuid::Uuid::nil()),
                relation: crate::Relation::Background,
            },
        ] {
            let payload = serde_json::to_value(&event).unwrap();
            assert!(payload.is_object(), "{payload}");
            assert_eq!(
                Some(event.event_version().as_str()),
                current_version(&event.event_type())
            );
        }
    }

    #[test]
    fn a_shape_1_snapshot_reads_as_the_story_without_its_developments() {
        let story = crate::Story::default();
        let mut old = serde_json::to_value(&story).unwrap();
        old["developments"] = json!({
            "00000000-0000-0000-0000-000000000001": {
                "fingerprint": "f", "recorded_in": 2, "recorded_as": "published",
                "status": "retracted"
            }
        });
        let read = read_snapshot(old).expect("shape 1 is read");
        assert_eq!(serde_json::from_value::<crate::Story>(read).unwrap(), story);
    }

    #[test]
    fn a_snapshot_reads_back_as_written_and_an_unknown_shape_is_ignored() {
        let story = crate::Story::default();
        let written = snapshot(&story);
        assert_eq!(written["shape"], json!(SNAPSHOT_SHAPE));
        let read = read_snapshot(written).unwrap();
        assert_eq!(serde_json::from_value::<crate::Story>(read).unwrap(), story);
        assert_eq!(read_snapshot(json!({"shape": 4, "story": {}})), None);
        assert_eq!(read_snapshot(json!("not a snapshot")), None);
    }

    #[test]
    fn unknown_types_newer_versions_and_mismatched_payloads_are_refused() {
        assert!(matches!(
            decode(stored("StoryDeleted", "1", json!({"StoryDeleted": {}}))),
            Err(EventDecodeError::UnknownType(_))
        ));
        assert!(matches!(
            decode(stored("StoryClosed", "3", json!({"StoryClosed": {}}))),
            Err(EventDecodeError::UnknownVersion { .. })
        ));
        assert!(matches!(
            decode(stored("StoryClosed", "not a version", json!("StoryClosed"))),
            Err(EventDecodeError::UnknownVersion { .. })
        ));
        assert!(matches!(
            decode(stored("StoryClosed", "2", json!({"StoryReopened": {}}))),
            Err(EventDecodeError::TypeMismatch { .. })
        ));
        assert!(matches!(
            decode(stored("StoryClosed", "1", json!(["StoryClosed"]))),
            Err(EventDecodeError::Payload { .. })
        ));
    }
}
