//! Tamper evidence: every event's metadata carries `hash`, a SHA-256 over the previous event of
//! its story's hash and the event itself (story, sequence, type, version, payload, the rest of the
//! metadata), so a row changed behind the application's back breaks its story's chain from there
//! on. JSON is hashed in a canonical form (keys sorted, no spaces), so the chain survives stores
//! that reorder keys (PostgreSQL's JSONB).

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::feed::FeedEvent;

/// The metadata key holding an event's chain hash.
pub const HASH_KEY: &str = "hash";

/// `value` with every object's keys sorted, serialised without whitespace, appended to `out`;
/// `skip` is a key left out of the outermost object. Written as it walks, without a sorted copy.
fn write_canonical(value: &Value, skip: Option<&str>, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map
                .iter()
                .filter(|(k, _)| Some(k.as_str()) != skip)
                .collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut *out, key).expect("a string serialises");
                out.push(b':');
                write_canonical(item, None, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, None, out);
            }
            out.push(b']');
        }
        scalar => serde_json::to_writer(&mut *out, scalar).expect("a JSON value serialises"),
    }
}

/// The chain hash of an event, given the hash of its story's previous event ("" for the first).
pub fn event_hash(
    previous: &str,
    story_id: &str,
    sequence: usize,
    event_type: &str,
    event_version: &str,
    payload: &Value,
    metadata: &Value,
) -> String {
    let mut h = Sha256::new();
    let mut json = Vec::with_capacity(1024);
    for part in [
        previous,
        story_id,
        &sequence.to_string(),
        event_type,
        event_version,
    ] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    write_canonical(payload, None, &mut json);
    h.update(&json);
    h.update([0u8]);
    json.clear();
    write_canonical(metadata, Some(HASH_KEY), &mut json);
    h.update(&json);
    h.update([0u8]);
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The hash a stored event carries, if any.
pub fn stored_hash(metadata: &Value) -> Option<&str> {
    metadata.get(HASH_KEY).and_then(Value::as_str)
}

/// Something `newsroom verify` found wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub position: i64,
    pub story_id: String,
    pub sequence: i64,
    pub problem: String,
}

/// A row of the log as `verify` reads it.
#[derive(Debug, Clone)]
pub enum VerifyRow {
    Event(FeedEvent),
    /// A row that does not decode (its JSON broken, a NUL in it, a column of the wrong type):
    /// what could be read of it, so it is reported by position and its story's chain goes on.
    Unreadable {
        position: i64,
        story_id: String,
        sequence: i64,
        /// Its chain hash, if its metadata still decodes.
        hash: Option<String>,
        problem: String,
    },
}

impl VerifyRow {
    pub(crate) fn key(&self) -> (i64, &str, i64) {
        match self {
            VerifyRow::Event(e) => (e.position, &e.story_id, e.sequence),
            VerifyRow::Unreadable {
                position,
                story_id,
                sequence,
                ..
            } => (*position, story_id, *sequence),
        }
    }
}

/// Checks one story's events (in sequence order): each must carry the hash its content and its
/// predecessor give it.
pub fn verify_story(events: &[FeedEvent]) -> Vec<Finding> {
    let rows: Vec<VerifyRow> = events.iter().cloned().map(VerifyRow::Event).collect();
    verify_rows(&rows)
}

/// As [`verify_story`], over rows some of which may not decode: each of those is one finding,
/// and the chain goes on from its stored hash (or, if that cannot be read either, from the
/// next event's own, unchecked).
pub fn verify_rows(rows: &[VerifyRow]) -> Vec<Finding> {
    let mut findings = Vec::new();
    // The hash the next event must chain to; `None` after a row whose hash cannot be read.
    let mut previous = Some(String::new());
    for (i, row) in rows.iter().enumerate() {
        let (position, story_id, sequence) = row.key();
        let finding = |problem: String| Finding {
            position,
            story_id: story_id.to_owned(),
            sequence,
            problem,
        };
        if sequence != i as i64 + 1 {
            findings.push(finding(format!(
                "sequence {sequence} where {} was expected",
                i + 1
            )));
        }
        match row {
            VerifyRow::Unreadable { hash, problem, .. } => {
                findings.push(finding(format!(
                    "the stored event cannot be read: {problem}"
                )));
                previous = hash.clone();
            }
            VerifyRow::Event(e) => {
                let expected = previous.as_deref().map(|previous| {
                    event_hash(
                        previous,
                        &e.story_id,
                        e.sequence as usize,
                        &e.event_type,
                        &e.event_version,
                        &e.payload,
                        &e.metadata,
                    )
                });
                let stored = stored_hash(&e.metadata);
                match (stored, &expected) {
                    (None, _) => findings.push(finding("the event carries no hash".into())),
                    (Some(stored), Some(expected)) if stored != expected => findings.push(finding(
                        "the stored event does not match its hash: changed after it was \
                             written"
                            .into(),
                    )),
                    _ => {}
                }
                // Continue the chain from what is stored, so one changed row is reported once.
                previous = stored.map(str::to_owned).or(expected);
            }
        }
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    /// The canonical form as it was first written: a sorted copy, then `to_string`. Every hash
    /// already in a log was made this way.
    fn canonical_by_copy(value: &Value) -> String {
        fn sorted(value: &Value) -> Value {
            match value {
                Value::Object(map) => {
                    let mut keys: Vec<&String> = map.keys().collect();
                    keys.sort();
                    Value::Object(
                        keys.into_iter()
                            .map(|k| (k.clone(), sorted(&map[k])))
                            .collect(),
                    )
                }
                Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
                other => other.clone(),
            }
        }
        sorted(value).to_string()
    }

    fn json_values() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            "\\PC{0,12}".prop_map(Value::String),
            "[\"\\\\\u{0}-\u{1f}é€😀]{0,6}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::vec(("(hash|[a-zé_]{0,6})", inner), 0..6)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Written as it walks, the canonical form is byte for byte the sorted copy's, so every
        /// hash already in a log still verifies; the outermost `hash` key is left out as before.
        #[test]
        fn the_canonical_form_is_the_one_logs_were_hashed_with(value in json_values()) {
            let mut walked = Vec::new();
            write_canonical(&value, None, &mut walked);
            prop_assert_eq!(String::from_utf8(walked).unwrap(), canonical_by_copy(&value));
            let mut without = value.clone();
            if let Value::Object(map) = &mut without {
                map.remove(HASH_KEY);
            }
            let mut skipped = Vec::new();
            write_canonical(&value, Some(HASH_KEY), &mut skipped);
            prop_assert_eq!(String::from_utf8(skipped).unwrap(), canonical_by_copy(&without));
        }
    }

    #[test]
    fn key_order_does_not_change_a_hash_but_content_does() {
        let a = json!({"b": 1, "a": {"y": [1, 2], "x": "s"}});
        let b: Value = serde_json::from_str(r#"{"a":{"x":"s","y":[1,2]},"b":1}"#).unwrap();
        let m = json!({"author_name": "Rita", "hash": "ignored"});
        let h1 = event_hash("", "s", 1, "T", "1", &a, &m);
        let h2 = event_hash("", "s", 1, "T", "1", &b, &json!({"author_name": "Rita"}));
        assert_eq!(h1, h2);
        assert_ne!(h1, event_hash("", "s", 1, "T", "1", &json!({"b": 2}), &m));
        assert_ne!(h1, event_hash("x", "s", 1, "T", "1", &a, &m));
        assert_ne!(h1, event_hash("", "s", 2, "T", "1", &a, &m));
    }
}
