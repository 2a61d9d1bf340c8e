//! Tamper evidence: every event's metadata carries `hash`, a SHA-256 over the previous event of
//! its story's hash and the event itself (story, sequence, type, version, payload, the rest of the
//! metadata), so a row changed behind the application's back breaks its story's chain from there
//! on. JSON is hashed in a canonical form (keys sorted, no spaces), so the chain survives stores
//! that reorder keys (PostgreSQL's JSONB).

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::store::FeedEvent;

/// The metadata key holding an event's chain hash.
pub const HASH_KEY: &str = "hash";

/// `value` with every object's keys sorted, serialised without whitespace.
fn canonical(value: &Value) -> String {
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
    let mut metadata = metadata.clone();
    if let Value::Object(map) = &mut metadata {
        map.remove(HASH_KEY);
    }
    let mut h = Sha256::new();
    for part in [
        previous,
        story_id,
        &sequence.to_string(),
        event_type,
        event_version,
        &canonical(payload),
        &canonical(&metadata),
    ] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
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

/// Checks one story's events (in sequence order): each must carry the hash its content and its
/// predecessor give it.
pub fn verify_story(events: &[FeedEvent]) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut previous = String::new();
    for (i, e) in events.iter().enumerate() {
        let finding = |problem: String| Finding {
            position: e.position,
            story_id: e.story_id.clone(),
            sequence: e.sequence,
            problem,
        };
        if e.sequence != i as i64 + 1 {
            findings.push(finding(format!(
                "sequence {} where {} was expected",
                e.sequence,
                i + 1
            )));
        }
        let expected = event_hash(
            &previous,
            &e.story_id,
            e.sequence as usize,
            &e.event_type,
            &e.event_version,
            &e.payload,
            &e.metadata,
        );
        match stored_hash(&e.metadata) {
            None => findings.push(finding("the event carries no hash".into())),
            Some(stored) if stored != expected => findings.push(finding(
                "the stored event does not match its hash: changed after it was written".into(),
            )),
            Some(_) => {}
        }
        // Continue the chain from what is stored, so one changed row is reported once.
        previous = stored_hash(&e.metadata).unwrap_or(&expected).to_owned();
    }
    findings
}

/// What walking the whole log found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyReport {
    pub events: u64,
    pub stories: usize,
    pub findings: Vec<Finding>,
}

/// Walks the whole log and checks every story's chain.
pub async fn verify_log(
    log: &crate::log::EventLog,
) -> Result<VerifyReport, crate::store::StoreError> {
    let mut stories: std::collections::BTreeMap<String, Vec<FeedEvent>> = Default::default();
    let mut after = 0;
    let mut report = VerifyReport::default();
    loop {
        let page = log.read_feed(after, 10_000).await?;
        let Some(last) = page.last() else { break };
        after = last.position;
        report.events += page.len() as u64;
        for e in page {
            stories.entry(e.story_id.clone()).or_default().push(e);
        }
    }
    report.stories = stories.len();
    for events in stories.values_mut() {
        events.sort_by_key(|e| e.sequence);
        report.findings.extend(verify_story(events));
    }
    report.findings.sort_by_key(|f| f.position);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
