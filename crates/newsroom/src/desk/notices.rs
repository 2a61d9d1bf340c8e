//! What happened to your filings: reporters (and editors) are told at the desk, live, when
//! someone else approves, rejects, edits, corrects or retracts a development they filed, or
//! lifts or moves its embargo (the scheduler's lift, authored by no one, is told too).
//!
//! `desk.js` asks `/desk/notices` once for where the log stands, then every 10 s for what came
//! after; each answer reads at most [`READ_MAX`] events of the log past the asked position, only
//! as far as the views have applied (so the development is there to name), and describes those
//! of the signed-in person's filings from the views' history as they stood right after the event.
//! A filing is theirs by the name it was filed under (`filed_by`), as the desk shows it.

use chrono::{DateTime, Utc};
use newsroom_domain::StoryEvent;
use newsroom_log::EventLog;
use newsroom_projection::history::stories_after;
use newsroom_projection::ViewStore;
use newsroom_readmodel::{decode, LoggedEvent};
use newsroom_web::Principal;
use uuid::Uuid;

/// Most events of the log one ask reads; the answer's position says where the next starts.
pub const READ_MAX: usize = 500;

/// One thing that happened to a filing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub story: Uuid,
    pub story_headline: String,
    pub development: Uuid,
    pub headline: String,
    pub what: &'static str,
    /// The reason of a rejection or retraction, the note of a correction.
    pub why: Option<String>,
    pub by: Option<String>,
    pub at: DateTime<Utc>,
}

/// Why notices could not be read.
#[derive(Debug, thiserror::Error)]
pub enum NoticeError {
    #[error(transparent)]
    Log(#[from] newsroom_log::StoreError),
    #[error(transparent)]
    Views(#[from] newsroom_projection::ViewError),
    #[error(transparent)]
    History(#[from] newsroom_projection::history::HistoryError),
    #[error(transparent)]
    Decode(#[from] newsroom_readmodel::DecodeError),
}

/// What an event does to a filing, in words, and the text that goes with it.
fn what(event: &StoryEvent) -> Option<(&'static str, Option<String>)> {
    Some(match event {
        StoryEvent::DevelopmentApproved { .. } => ("approved and published", None),
        StoryEvent::DevelopmentApprovedUnderEmbargo {
            until, hold: None, ..
        } => (
            "approved, held under its embargo",
            Some(format!("Published at {}.", until.to_rfc3339())),
        ),
        StoryEvent::DevelopmentApprovedUnderEmbargo {
            until,
            hold: Some(_),
            ..
        } => (
            "approved",
            Some(format!(
                "Published at {} unless the editor undoes it before.",
                until.to_rfc3339()
            )),
        ),
        StoryEvent::ApprovalUndone { .. } => ("approval undone: it waits for review again", None),
        StoryEvent::EmbargoLifted {
            published: true, ..
        } => ("published: its embargo or undo window ended", None),
        StoryEvent::EmbargoMoved { until, .. } => (
            "given a new embargo time",
            Some(format!("Now held until {}.", until.to_rfc3339())),
        ),
        StoryEvent::DevelopmentRejected { reason, .. } => ("rejected", Some(reason.to_string())),
        StoryEvent::FilingEdited { note, .. } => (
            "edited before approval",
            note.as_ref().map(|n| n.to_string()),
        ),
        StoryEvent::DevelopmentCorrected { note, .. } => ("corrected", Some(note.to_string())),
        StoryEvent::DevelopmentRetracted { reason, .. } => ("retracted", Some(reason.to_string())),
        _ => return None,
    })
}

/// What others did to `me`'s filings after position `after` (at most [`READ_MAX`] events of
/// the log, as far as the views have applied), and the position to ask from next.
pub async fn since(
    log: &EventLog,
    views: &ViewStore,
    me: &Principal,
    after: i64,
) -> Result<(Vec<Notice>, i64), NoticeError> {
    let upto = views.position().await?;
    if after >= upto {
        return Ok((Vec::new(), after.max(0)));
    }
    let mut read = log.read_feed(after, READ_MAX).await?;
    read.retain(|e| e.position <= upto);
    let next = read.last().map_or(after, |e| e.position);
    let mut events: Vec<(LoggedEvent, &'static str, Option<String>)> = Vec::new();
    for raw in &read {
        let e = decode(raw)?;
        if e.author.as_deref() == Some(me.name.as_str()) {
            continue;
        }
        if let Some((what, why)) = what(&e.event) {
            events.push((e, what, why));
        }
    }
    let asked: Vec<&LoggedEvent> = events.iter().map(|(e, _, _)| e).collect();
    let views_then = stories_after(log, views, &asked).await?;
    let mut found = Vec::new();
    for ((e, what, why), view) in events.iter().zip(views_then) {
        let Some(view) = view else { continue };
        let Some(id) = e.event.development_id().map(|d| d.as_uuid()) else {
            continue;
        };
        let Some(d) = view.development(id) else {
            continue;
        };
        if d.filed_by.as_deref() != Some(me.name.as_str()) {
            continue;
        }
        found.push(Notice {
            story: view.id,
            story_headline: view.headline.clone(),
            development: id,
            headline: d.headline.clone(),
            what,
            why: why.clone(),
            by: e.author.clone(),
            at: e.recorded_at,
        });
    }
    Ok((found, next))
}
