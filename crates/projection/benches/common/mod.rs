//! What the projection's benches share: the parts of their story generators that are the same
//! (the kinds of developments, the serialised events) and the filling of a log with appends in
//! flight.
//!
//! Each bench reaches it with `#[path = "../common/mod.rs"] mod common;`.

use std::time::Instant;

use chrono::{DateTime, SecondsFormat, Utc};
use cqrs_es::persist::SerializedEvent;
use cqrs_es::DomainEvent;
use futures_util::{Stream, StreamExt};
use newsroom_domain::{
    Development, DevelopmentId, DevelopmentKind, Note, PublicationStatus, RespondsTo, Stance,
    StoryEvent, StoryId, AGGREGATE_TYPE,
};
use newsroom_testkit::{BoxError, Res};
use serde_json::json;

/// An author as the events' metadata names it: id, name, role.
pub(crate) type Author = (&'static str, &'static str, &'static str);

/// The note every generated correction carries.
pub(crate) fn correction_note() -> Note {
    Note::parse(
        "note",
        "An earlier version misstated the date of the breach.",
    )
    .expect("valid note")
}

/// The kind of a story's `k`-th event when it records a development, by `k % 40`: a claim of
/// attribution, denials of the last claim, otherwise updates, statements and reports in turn.
/// With `supporting_report`, the 15th of each 40 is a report supporting the last claim.
pub(crate) fn development_kind(
    k: usize,
    last_claim: Option<DevelopmentId>,
    supporting_report: bool,
) -> (DevelopmentKind, Option<RespondsTo>) {
    match (k % 40, last_claim) {
        (5, _) => (DevelopmentKind::AttributionClaimed, None),
        (6 | 26, Some(claim)) => (
            DevelopmentKind::DenialIssued,
            Some(RespondsTo {
                development: claim,
                stance: Stance::Denies,
            }),
        ),
        (15, Some(claim)) if supporting_report => (
            DevelopmentKind::ReportPublished,
            Some(RespondsTo {
                development: claim,
                stance: Stance::Supports,
            }),
        ),
        (r, _) if r % 3 == 0 => (DevelopmentKind::Update, None),
        (r, _) if r % 3 == 1 => (DevelopmentKind::StatementIssued, None),
        _ => (DevelopmentKind::ReportPublished, None),
    }
}

/// `development` recorded with `status`: no embargo, no hold, a fingerprint from its id.
pub(crate) fn recorded(development: Development, status: PublicationStatus) -> StoryEvent {
    let fingerprint = format!("{:032x}", development.id.as_uuid().as_u128() ^ 0x5eed);
    StoryEvent::DevelopmentRecorded {
        embargo_until: None,
        development,
        status,
        fingerprint,
        hold: None,
    }
}

/// `event`, the `seq`-th of story `id`, as the log stores it, by `author` at `at`.
pub(crate) fn serialize(
    id: StoryId,
    seq: usize,
    event: &StoryEvent,
    author: Author,
    at: DateTime<Utc>,
) -> Res<SerializedEvent> {
    let (author_id, author_name, author_role) = author;
    let metadata = json!({
        "author_id": author_id,
        "author_name": author_name,
        "author_role": author_role,
        "recorded_at": at.to_rfc3339_opts(SecondsFormat::Micros, true),
    });
    Ok(SerializedEvent::new(
        id.to_string(),
        seq,
        AGGREGATE_TYPE.to_owned(),
        event.event_type(),
        event.event_version(),
        serde_json::to_value(event)?,
        metadata,
    ))
}

/// `total` spread over `stories` as evenly as it goes, the first stories taking one more.
pub(crate) fn per_story(total: usize, stories: usize) -> Vec<usize> {
    (0..stories)
        .map(|s| total / stories + usize::from(s < total % stories))
        .collect()
}

/// Awaits `appends` (each the number of events it wrote), reporting progress on stderr every
/// `every` events since `started`; the events written.
pub(crate) async fn drain_appends<E>(
    appends: impl Stream<Item = Result<usize, E>>,
    started: Instant,
    every: usize,
) -> Res<usize>
where
    BoxError: From<E>,
{
    tokio::pin!(appends);
    let mut written = 0usize;
    let mut next_report = every;
    while let Some(n) = appends.next().await {
        written += n?;
        if written >= next_report {
            eprintln!(
                "  filled {written} events ({:.0} events/s)",
                written as f64 / started.elapsed().as_secs_f64()
            );
            next_report += every;
        }
    }
    Ok(written)
}
