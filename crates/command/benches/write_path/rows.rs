//! What gets written: the reporter, the development, the commands, and the event rows the
//! baselines insert.

use chrono::{SecondsFormat, Utc};
use newsroom_domain::{
    Actor, Body, Development, DevelopmentId, DevelopmentKind, Evidence, Headline, NewDevelopment,
    PublicationStatus, Role, Slug, Source, SourceKind, SourceName, StoryCommand, StoryEvent,
    StoryId, Summary, Urgency,
};
use newsroom_web::Principal;
use serde_json::json;
use uuid::Uuid;

use crate::{ACTORS, BODY, HEADLINE, SOURCE};

pub(crate) fn reporter() -> Principal {
    Principal {
        token_id: Uuid::now_v7().to_string(),
        name: "Bench Reporter".into(),
        role: Role::Reporter,
    }
}

/// A development as a reporter files it, parsed with the value types' own `parse`.
pub(crate) fn template() -> NewDevelopment {
    NewDevelopment {
        embargo_until: None,
        accused: vec![],
        id: DevelopmentId::from(Uuid::new_v4()),
        kind: DevelopmentKind::StatementIssued,
        headline: Headline::parse("headline", HEADLINE).expect("valid headline"),
        body: Body::parse("body", BODY).expect("valid body"),
        occurred_at: None,
        actors: Actor::parse_list("actors", &ACTORS.map(str::to_owned)).expect("valid actors"),
        source: Some(Source {
            name: SourceName::parse("source.name", SOURCE).expect("valid source"),
            kind: SourceKind::OfficialStatement,
            url: None,
        }),
        evidence: Evidence::Documentary,
        urgency: Urgency::Priority,
        responds_to: None,
        hold: None,
    }
}

/// The template with a fresh id: a new filing, never an idempotent repeat.
pub(crate) fn record_development(template: &NewDevelopment) -> StoryCommand {
    let mut new = template.clone();
    new.id = DevelopmentId::from(Uuid::new_v4());
    StoryCommand::RecordDevelopment(new)
}

pub(crate) fn open_story(id: StoryId, slug: &str) -> StoryCommand {
    StoryCommand::OpenStory {
        id,
        slug: Slug::parse("slug", slug).expect("valid slug"),
        headline: Headline::parse("headline", "Campaign hack").expect("valid headline"),
        summary: Summary::parse("summary", "").expect("valid summary"),
        tags: vec![],
        review_required: false,
    }
}

/// The stored payload of a `DevelopmentRecorded` event for the template, as the baselines write
/// it, and the id inside it (replaced per row so that rows differ).
pub(crate) fn recorded_payload() -> (String, String) {
    let new = template();
    let now = Utc::now();
    let event = StoryEvent::DevelopmentRecorded {
        embargo_until: None,
        fingerprint: new.fingerprint(),
        development: Development {
            accused: vec![],
            id: new.id,
            kind: new.kind,
            headline: new.headline,
            body: new.body,
            occurred_at: now,
            recorded_at: now,
            actors: new.actors,
            source: new.source,
            evidence: new.evidence,
            urgency: new.urgency,
            responds_to: None,
        },
        status: PublicationStatus::Published,
        hold: None,
    };
    let payload = serde_json::to_string(&event).expect("an event serialises");
    (payload, new.id.to_string())
}

/// Metadata shaped like the command service's.
pub(crate) fn metadata(recorded_at: &str) -> String {
    json!({
        "author_id": "0190d1c4-7d2f-7c4e-9a65-3f1f2b9b1c11",
        "author_name": "Bench Reporter",
        "author_role": "reporter",
        "recorded_at": recorded_at,
    })
    .to_string()
}

fn now_rfc3339() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// One baseline row: story `i % stories`, next sequence of that story.
pub(crate) struct RowGen {
    story_ids: Vec<String>,
    next_seq: Vec<i64>,
    pub(crate) payload: String,
    placeholder: String,
}

impl RowGen {
    pub(crate) fn new(stories: usize) -> Self {
        let (payload, placeholder) = recorded_payload();
        Self {
            story_ids: (0..stories).map(|_| Uuid::now_v7().to_string()).collect(),
            next_seq: vec![1; stories],
            payload,
            placeholder,
        }
    }

    /// (aggregate_id, sequence, payload, metadata, recorded_at)
    pub(crate) fn row(&mut self, i: usize) -> (&str, i64, String, String, String) {
        let s = i % self.story_ids.len();
        let seq = self.next_seq[s];
        self.next_seq[s] += 1;
        let payload = self
            .payload
            .replace(&self.placeholder, &Uuid::new_v4().to_string());
        let recorded_at = now_rfc3339();
        (
            &self.story_ids[s],
            seq,
            payload,
            metadata(&recorded_at),
            recorded_at,
        )
    }
}
