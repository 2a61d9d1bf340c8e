//! The JSON resource of a story, rendered once per change and cached as bytes by the store,
//! and the reader-visible changes (`?since=`, live streams) an event makes.
//!
//! A story's API body ([`story_body`]) is rendered from its first page (`StoryPage`: the newest
//! `PAGE_DEFAULT` developments, the first page of the claims ledger, the cursors of the older
//! ones); the store keeps it in memory while the story's position and its related stories are
//! unchanged (`store.rs`). [`change_of`] decides what readers see of an event: nothing of a filing
//! pending review, an approval under embargo, a rejection, an edit of a filing or a relation
//! between stories.

use chrono::{DateTime, Utc};
use newsroom_domain::StoryEvent;
use newsroom_readmodel::model::{
    ClaimEntry, DevelopmentView, LoggedEvent, RelatedStory, StoryPage, StoryStatus, StoryView,
    CLAIMS_DEFAULT, PAGE_DEFAULT,
};
use newsroom_readmodel::public_development;
use serde::Serialize;
use uuid::Uuid;

pub(crate) fn public_claims(ledger: &StoryView) -> Vec<ClaimEntry> {
    ledger
        .claims()
        .into_iter()
        .map(|mut c| {
            c.claim = public_development(&c.claim);
            c.responses = c.responses.iter().map(public_development).collect();
            c
        })
        .collect()
}

/// The JSON resource of a story: its front-page line, a page of its timeline and its claims
/// ledger.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StoryResource {
    pub id: Uuid,
    pub slug: String,
    pub headline: String,
    pub summary: String,
    pub tags: Vec<String>,
    pub status: StoryStatus,
    pub opened_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The position of the newest event this view reflects.
    pub position: i64,
    pub development_count: usize,
    /// The newest developments (or those before the page's `before`), in the order they
    /// happened.
    pub timeline: Vec<DevelopmentView>,
    /// The page of older developments, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub older: Option<String>,
    /// The newest claims of its claims ledger (by recording), each with its newest responses.
    pub claims: Vec<ClaimEntry>,
    /// The page of older claims (`/v1/stories/{id}/claims?before=…`), when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claims_older: Option<String>,
    /// Stories editors related to this one, as they stand now (newest relation first, at most
    /// 20; `relation` as seen from this story). Absent from an answer as of a moment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relations: Option<Vec<RelatedStory>>,
}

impl StoryResource {
    /// The resource of one page; `older` is the link to the next page, if there is one.
    pub fn of(page: &StoryPage, older: Option<String>) -> Self {
        let (view, entry) = (&page.view, &page.entry);
        Self {
            id: view.id,
            slug: view.slug.clone(),
            headline: view.headline.clone(),
            summary: view.summary.clone(),
            tags: view.tags.clone(),
            status: view.status,
            opened_at: view.opened_at,
            updated_at: view.updated_at,
            position: view.position,
            development_count: entry.development_count,
            timeline: view
                .timeline()
                .into_iter()
                .map(public_development)
                .collect(),
            older,
            claims: public_claims(&page.ledger),
            claims_older: claims_link(view.id, page.claims_older, CLAIMS_DEFAULT),
            relations: page.relations.clone(),
        }
    }
}

/// A next page's link (which has a query already) for a read as of `as_of`, if it is one.
pub(crate) fn at_moment(link: String, as_of: Option<DateTime<Utc>>) -> String {
    match as_of {
        Some(t) => format!(
            "{link}&as_of={}",
            t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
                .replace('+', "%2B")
        ),
        None => link,
    }
}

/// The link to the page of a story's claims recorded before the claim at `before`.
pub(crate) fn claims_link(id: Uuid, before: Option<i64>, limit: usize) -> Option<String> {
    let before = before?;
    Some(if limit == CLAIMS_DEFAULT {
        format!("/v1/stories/{id}/claims?before={before}")
    } else {
        format!("/v1/stories/{id}/claims?before={before}&limit={limit}")
    })
}

/// The link to the page of a story's developments before `before`.
pub(crate) fn older_link(id: Uuid, before: Option<i64>, limit: usize) -> Option<String> {
    let before = before?;
    Some(if limit == PAGE_DEFAULT {
        format!("/v1/stories/{id}?before={before}")
    } else {
        format!("/v1/stories/{id}?before={before}&limit={limit}")
    })
}

/// The rendered API body of a story's first page (rendered on the first read of each version of
/// the story and kept in memory by the `ViewStore`).
pub fn story_body(page: &StoryPage) -> String {
    let older = older_link(page.view.id, page.older, PAGE_DEFAULT);
    serde_json::to_string(&StoryResource::of(page, older)).expect("a story view always serialises")
}

/// One reader-visible change to a story.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Change {
    pub position: i64,
    pub at: DateTime<Utc>,
    /// `added`, `corrected`, `retracted`, `story_revised`, `story_closed` or `story_reopened`.
    pub change: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub development: Option<DevelopmentView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headline: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
}

/// The reader-visible changes of a story with positions in `(since, upto]`, each with the
/// development as it stood right after the change.
pub fn changes_since(events: &[LoggedEvent], since: i64, upto: i64) -> Vec<Change> {
    let mut view: Option<StoryView> = None;
    let mut out = Vec::new();
    for e in events.iter().take_while(|e| e.position <= upto) {
        match &mut view {
            None => view = StoryView::open(e),
            Some(v) => v.apply(e),
        }
        if e.position <= since {
            continue;
        }
        if let Some(change) = view.as_ref().and_then(|v| change_of(v, e)) {
            out.push(change);
        }
    }
    out
}

/// The change readers see in event `e` of a story, described from `view` (the story right after
/// `e`, or later: then the development is shown as it stands in `view`); `None` if readers see
/// nothing of it.
pub fn change_of(view: &StoryView, e: &LoggedEvent) -> Option<Change> {
    let visible = |id: Uuid| view.development(id).filter(|d| d.is_visible());
    let (change, development) = match &e.event {
        StoryEvent::DevelopmentRecorded { development, .. } => {
            ("added", Some(visible(development.id.as_uuid())?))
        }
        StoryEvent::DevelopmentApproved { development }
        | StoryEvent::EmbargoLifted { development, .. } => {
            ("added", Some(visible(development.as_uuid())?))
        }
        StoryEvent::DevelopmentCorrected { development, .. } => {
            ("corrected", Some(visible(development.as_uuid())?))
        }
        StoryEvent::DevelopmentRetracted { development, .. } => {
            ("retracted", visible(development.as_uuid()))
        }
        StoryEvent::HeadlineChanged { .. } | StoryEvent::TagsChanged { .. } => {
            ("story_revised", None)
        }
        StoryEvent::StoryClosed {} => ("story_closed", None),
        StoryEvent::StoryReopened {} => ("story_reopened", None),
        // An edit of a filing happens before readers see it: nothing to tell them.
        StoryEvent::StoryOpened { .. }
        | StoryEvent::DevelopmentRejected { .. }
        | StoryEvent::DevelopmentApprovedUnderEmbargo { .. }
        | StoryEvent::ApprovalUndone { .. }
        | StoryEvent::EmbargoMoved { .. }
        | StoryEvent::FilingEdited { .. }
        // Relations are no change of the timeline; the story's answers show them as they are.
        | StoryEvent::StoryLinked { .. }
        | StoryEvent::StoryUnlinked { .. } => return None,
    };
    let story_level = development.is_none();
    Some(Change {
        position: e.position,
        at: e.recorded_at,
        change,
        development: development.map(public_development),
        headline: story_level.then(|| view.headline.clone()),
        tags: story_level.then(|| view.tags.clone()),
    })
}
