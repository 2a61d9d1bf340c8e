//! The bodies of newsroom's fuzz targets. `fuzz/` (cargo-fuzz, libFuzzer, nightly) calls them
//! from its targets, and `tests/replay.rs` calls the same functions on stable: every file of the
//! checked-in corpus (`fuzz/corpus/<target>/`) and a bounded run of mutated and random inputs.
//!
//! Each body takes arbitrary bytes and must never panic; beyond that it asserts what must hold
//! of whatever the code under test accepts:
//! - [`command_json`]: a request body of the command API, parsed as the HTTP edge parses it
//!   (the DTOs and their `parse` into domain commands), then decided by a story aggregate.
//!   Parsed values re-parse to themselves, and every event decided is read back unchanged.
//! - [`event_decode`]: a stored event (type, version, payload), upcast and decoded as the stores,
//!   the projection and the notifier read the log. Upcasting is idempotent; a decoded event is of
//!   the type it claims and round-trips through the shape this code writes.
//! - [`webhook_verify`]: the Standard Webhooks receiver check. Whatever the headers, a delivery
//!   verifies only if it carries the signature of exactly that id, timestamp and body.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chrono::{TimeZone, Utc};
use cqrs_es::{Aggregate, DomainEvent};
use newsroom_command::http::{
    CorrectionRequest, OpenStoryRequest, ReasonRequest, RecordDevelopmentRequest,
    ReviseStoryRequest,
};
use newsroom_domain::upcast;
use newsroom_domain::*;
use newsroom_notifier::signing::{self, WebhookSecret};
use newsroom_web::parse_json;
use serde_json::Value;
use uuid::Uuid;

/// The names of the targets: `fuzz/fuzz_targets/<name>.rs`, `fuzz/corpus/<name>/`.
pub const TARGETS: &[&str] = &["command_json", "event_decode", "webhook_verify"];

/// Runs the target called `name` on `data`.
pub fn run(name: &str, data: &[u8]) {
    match name {
        "command_json" => command_json(data),
        "event_decode" => event_decode(data),
        "webhook_verify" => webhook_verify(data),
        other => panic!("no fuzz target `{other}`"),
    }
}

fn development_id() -> DevelopmentId {
    DevelopmentId::from(Uuid::from_u128(0xd))
}

/// A story as the command target finds it: open, with one published development
/// ([`development_id`]) so that editing commands have something to work on, and its history
/// (from which the facts a command is decided with are derived, as the log's index holds them).
fn open_story(review_required: bool) -> (Story, Vec<StoryEvent>) {
    let mut story = Story::default();
    let opened = StoryEvent::StoryOpened {
        id: StoryId::from(Uuid::from_u128(1)),
        slug: Slug::parse("slug", "fuzzed-story").expect("a valid slug"),
        headline: Headline::parse("headline", "A story").expect("a valid headline"),
        summary: Summary::parse("summary", "").expect("a valid summary"),
        tags: vec![],
        review_required,
    };
    story.apply(opened.clone());
    let mut history = vec![opened];
    let when = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let filed = NewDevelopment {
        embargo_until: None,
        accused: vec![],
        id: development_id(),
        kind: DevelopmentKind::Update,
        headline: Headline::parse("headline", "Something happened").expect("valid"),
        body: Body::parse("body", "").expect("valid"),
        occurred_at: Some(when),
        actors: vec![],
        source: None,
        evidence: Evidence::default(),
        urgency: Urgency::default(),
        responds_to: None,
        hold: None,
    };
    let events = story
        .decide(Issued::new(
            Role::Reporter,
            when,
            StoryCommand::RecordDevelopment(filed),
        ))
        .expect("the first filing is accepted");
    for event in events {
        story.apply(event.clone());
        history.push(event);
    }
    (story, history)
}

/// Text values must re-parse to themselves: what was stored once is valid as it is.
fn assert_reparses(development: &NewDevelopment) {
    assert_eq!(
        Headline::parse("headline", development.headline.as_str()).as_ref(),
        Ok(&development.headline)
    );
    assert_eq!(
        Body::parse("body", development.body.as_str()).as_ref(),
        Ok(&development.body)
    );
    let names: Vec<String> = development
        .actors
        .iter()
        .map(|a| a.name().to_owned())
        .collect();
    assert_eq!(
        Actor::parse_list("actors", &names).as_ref(),
        Ok(&development.actors)
    );
}

/// Fuzz target `command_json`: the first byte picks the request type (and the issuer's role),
/// the rest is the JSON body.
pub fn command_json(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let dev = development_id();
    let parsed = match selector % 8 {
        0 => parse_json::<OpenStoryRequest>(body)
            .and_then(|r| r.parse(StoryId::from(Uuid::from_u128(2)))),
        1 | 2 => parse_json::<RecordDevelopmentRequest>(body).and_then(|r| r.parse()),
        3 => parse_json::<ReasonRequest>(body)
            .and_then(|r| r.parse())
            .map(|reason| StoryCommand::RejectDevelopment {
                development: dev,
                reason,
            }),
        4 => parse_json::<ReasonRequest>(body)
            .and_then(|r| r.parse())
            .map(|reason| StoryCommand::RetractDevelopment {
                development: dev,
                reason,
            }),
        5 | 6 => parse_json::<CorrectionRequest>(body).and_then(|r| r.parse(dev)),
        _ => parse_json::<ReviseStoryRequest>(body).and_then(|r| r.parse()),
    };
    let Ok(command) = parsed else { return };
    if let StoryCommand::RecordDevelopment(development) = &command {
        assert_reparses(development);
        // The fingerprint (idempotent retries) is defined for every filing.
        assert_eq!(development.fingerprint().len(), 32);
    }
    let role = match (selector / 8) % 3 {
        0 => Role::Reporter,
        1 => Role::Editor,
        _ => Role::Admin,
    };
    let now = Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap();
    let (mut story, history) = match command {
        StoryCommand::OpenStory { .. } => (Story::default(), vec![]),
        _ => open_story(selector & 0x80 != 0),
    };
    let before = story.version();
    let facts = Facts::from_history(&history);
    let Ok(events) = story.decide(Issued::new(role, now, command).knowing(facts)) else {
        return;
    };
    for event in events {
        // Every event decided is stored and read back exactly (through the upcasting path).
        let payload = serde_json::to_value(&event).expect("events serialise");
        let read = upcast::decode(upcast::stored(
            &event.event_type(),
            &event.event_version(),
            payload,
        ))
        .expect("what this code writes, it reads");
        assert_eq!(read, event);
        story.apply(event);
    }
    assert!(story.version() >= before);
}

/// Fuzz target `event_decode`: `<event type>\n<event version>\n<payload JSON>`.
pub fn event_decode(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(3, '\n');
    let (Some(event_type), Some(version), Some(payload)) =
        (parts.next(), parts.next(), parts.next())
    else {
        return;
    };
    let Ok(payload) = serde_json::from_str::<Value>(payload) else {
        return;
    };
    let stored = upcast::stored(event_type, version, payload);
    let once = upcast::upcast(stored.clone());
    assert_eq!(
        upcast::upcast(once.clone()),
        once,
        "upcasting is idempotent"
    );
    let Ok(event) = upcast::decode(stored) else {
        return;
    };
    assert_eq!(event.event_type(), event_type);
    let written = serde_json::to_value(&event).expect("events serialise");
    assert!(written.is_object(), "every payload is written as an object");
    let again = upcast::decode(upcast::stored(event_type, &event.event_version(), written))
        .expect("what this code writes, it reads");
    assert_eq!(again, event);
}

/// Fuzz target `webhook_verify`. Byte 0 sets the secret's length (24 to 64 bytes) and byte 1
/// the receiver's clock offset; then come the secret's bytes, and the rest is
/// `<webhook-id>\n<webhook-timestamp>\n<webhook-signature>\n<body>` (the body may hold anything).
pub fn webhook_verify(data: &[u8]) {
    let [len, offset, rest @ ..] = data else {
        return;
    };
    let secret_len = signing::MIN_SECRET_BYTES + usize::from(*len) % 41;
    if rest.len() < secret_len {
        // Too short for a secret: try the bytes as a serialised secret instead.
        if let Ok(text) = std::str::from_utf8(rest) {
            if let Ok(secret) = WebhookSecret::parse(text) {
                let again = WebhookSecret::parse(&secret.to_string()).expect("round trip");
                assert!(again == secret);
            }
        }
        return;
    }
    let (key, rest) = rest.split_at(secret_len);
    let secret = WebhookSecret::parse(&format!("whsec_{}", STANDARD.encode(key)))
        .expect("a long enough key is a secret");
    assert_eq!(secret.as_bytes(), key);
    let mut fields = rest.splitn(4, |b| *b == b'\n');
    let msg_id = String::from_utf8_lossy(fields.next().unwrap_or_default());
    let timestamp = String::from_utf8_lossy(fields.next().unwrap_or_default());
    let header = String::from_utf8_lossy(fields.next().unwrap_or_default());
    let body = fields.next().unwrap_or_default();
    let sent_at: Option<i64> = timestamp.trim().parse().ok();
    let now = sent_at
        .unwrap_or(1_649_367_553)
        .saturating_add(i64::from(*offset as i8) * 10);
    let tolerance = signing::DEFAULT_TOLERANCE_SECS;

    let verdict = signing::verify(&secret, &msg_id, &timestamp, &header, body, now, tolerance);
    let Some(sent_at) = sent_at else {
        assert!(verdict.is_err(), "no timestamp, no delivery");
        return;
    };
    let genuine = signing::signature(&secret, &msg_id, sent_at, body);
    if verdict.is_ok() && timestamp.trim() == sent_at.to_string() {
        // Accepted: the header must carry exactly the signature of this id, time and body.
        assert!(
            header.split_whitespace().any(|entry| entry == genuine),
            "accepted a header without the genuine signature: {header:?}"
        );
    }
    // The genuine signature verifies at the sender's own clock, alone or among others...
    let canonical = sent_at.to_string();
    let both = format!("{header} {genuine}");
    for h in [genuine.as_str(), both.as_str()] {
        assert_eq!(
            signing::verify(&secret, &msg_id, &canonical, h, body, sent_at, tolerance),
            Ok(())
        );
    }
    // ...and not for another body, another id, or too far from the receiver's clock.
    let mut other_body = body.to_vec();
    other_body.push(b'!');
    assert!(signing::verify(
        &secret,
        &msg_id,
        &canonical,
        &genuine,
        &other_body,
        sent_at,
        tolerance
    )
    .is_err());
    let other_id = format!("{msg_id}x");
    assert!(
        signing::verify(&secret, &other_id, &canonical, &genuine, body, sent_at, tolerance)
            .is_err()
    );
    if let Some(late) = sent_at.checked_add(tolerance + 1) {
        assert!(
            signing::verify(&secret, &msg_id, &canonical, &genuine, body, late, tolerance).is_err()
        );
    }
}
