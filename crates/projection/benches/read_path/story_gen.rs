//! What the log holds: stories of generated developments (actors, authors, headlines, bodies,
//! sources) as the cases fill their logs with them.

use chrono::{DateTime, Utc};
use cqrs_es::persist::SerializedEvent;
use newsroom_domain::{
    Actor, Body, Development, DevelopmentChanges, DevelopmentId, DevelopmentKind, Evidence,
    Headline, Note, PublicationStatus, Slug, Source, SourceKind, SourceName, StoryEvent, StoryId,
    Summary, Tag, Urgency,
};
use newsroom_testkit::Res;
use uuid::Uuid;

use crate::common::{correction_note, development_kind, recorded, serialize, Author};

pub(crate) const ACTORS: [&str; 12] = [
    "Interior Ministry",
    "APT28",
    "Campaign A",
    "Fancy Bear",
    "Electoral Commission",
    "Cyber Command",
    "Ministry of Foreign Affairs",
    "Sandworm",
    "National Police",
    "Public Prosecutor",
    "Campaign B",
    "CERT-EU",
];

const AUTHORS: [Author; 4] = [
    (
        "0190d1c4-7d2f-7c4e-9a65-3f1f2b9b1c11",
        "Rita Reporter",
        "reporter",
    ),
    (
        "0190d1c4-7d2f-7c4e-9a65-3f1f2b9b1c12",
        "Rafael Reporter",
        "reporter",
    ),
    (
        "0190d1c4-7d2f-7c4e-9a65-3f1f2b9b1c13",
        "Renee Reporter",
        "reporter",
    ),
    (
        "0190d1c4-7d2f-7c4e-9a65-3f1f2b9b1c14",
        "Eda Editor",
        "editor",
    ),
];

pub(crate) const HEADLINES: [&str; 4] = [
    "Ministry confirms breach of campaign mail server",
    "Investigators trace intrusion to rented server",
    "Campaign says no voter data was taken",
    "Prosecutor opens inquiry into the leak",
];

/// A development body of about 300 bytes; `i` makes each one differ.
pub(crate) fn body_text(i: usize) -> String {
    format!(
        "Officials said on Tuesday that investigators had traced the intrusion to a server rented \
         under a false name abroad. The campaign's security team disconnected the affected \
         mailboxes and notified the electoral commission; no ballots or voter rolls were \
         affected, the spokesperson added. Further details are expected (item {i})."
    )
}

fn source(kind: SourceKind) -> Source {
    Source {
        name: SourceName::parse("source.name", "Interior Ministry spokesperson")
            .expect("valid source"),
        kind,
        url: None,
    }
}

/// Everything parsed once: the generator only clones.
pub(crate) struct Pools {
    pub(crate) actors: Vec<Actor>,
    headlines: Vec<Headline>,
    note: Note,
    reason: Note,
}

impl Pools {
    pub(crate) fn new() -> Self {
        Self {
            actors: ACTORS
                .iter()
                .map(|a| Actor::parse("actors", a).expect("valid actor"))
                .collect(),
            headlines: HEADLINES
                .iter()
                .map(|h| Headline::parse("headline", h).expect("valid headline"))
                .collect(),
            note: correction_note(),
            reason: Note::parse("reason", "The source withdrew the statement.")
                .expect("valid reason"),
        }
    }
}

/// One story's event generator: realistic shapes, contiguous sequences.
pub(crate) struct StoryGen {
    id: StoryId,
    index: usize,
    review_required: bool,
    seq: usize,
    devs: Vec<DevelopmentId>,
    claims: Vec<DevelopmentId>,
    pending: Option<DevelopmentId>,
}

impl StoryGen {
    pub(crate) fn new(index: usize) -> Self {
        Self {
            id: StoryId::new(),
            index,
            // One story in ten is under desk review: its developments wait for an editor.
            review_required: index % 10 == 0,
            seq: 0,
            devs: Vec::new(),
            claims: Vec::new(),
            pending: None,
        }
    }

    pub(crate) fn next(&mut self, pools: &Pools, at: DateTime<Utc>) -> StoryEvent {
        self.seq += 1;
        let k = self.seq;
        if k == 1 {
            return StoryEvent::StoryOpened {
                id: self.id,
                slug: Slug::parse("slug", &format!("campaign-hack-{}", self.index))
                    .expect("valid slug"),
                headline: Headline::parse("headline", &format!("Campaign hack {}", self.index))
                    .expect("valid headline"),
                summary: Summary::parse("summary", "A campaign says its email was breached.")
                    .expect("valid summary"),
                tags: vec![
                    Tag::parse("tags", "cyber").expect("valid tag"),
                    Tag::parse("tags", "elections").expect("valid tag"),
                ],
                review_required: self.review_required,
            };
        }
        if let Some(development) = self.pending.take() {
            return if k % 23 == 0 {
                StoryEvent::DevelopmentRejected {
                    development,
                    reason: pools.reason.clone(),
                }
            } else {
                StoryEvent::DevelopmentApproved { development }
            };
        }
        let n = self.devs.len();
        if k % 97 == 0 && n > 10 {
            return StoryEvent::DevelopmentCorrected {
                development: self.devs[n - 7],
                note: pools.note.clone(),
                changes: DevelopmentChanges {
                    body: Some(Body::parse("body", &body_text(k + 1)).expect("valid body")),
                    evidence: Some(Evidence::Confirmed),
                    ..Default::default()
                },
            };
        }
        if k % 331 == 0 && n > 10 {
            return StoryEvent::DevelopmentRetracted {
                development: self.devs[n - 3],
                reason: pools.reason.clone(),
            };
        }
        let id = DevelopmentId::from(Uuid::new_v4());
        let last_claim = self.claims.last().copied();
        let (kind, responds_to) = development_kind(k, last_claim, true);
        if kind == DevelopmentKind::AttributionClaimed {
            self.claims.push(id);
        }
        self.devs.push(id);
        let status = if self.review_required {
            self.pending = Some(id);
            PublicationStatus::PendingReview
        } else {
            PublicationStatus::Published
        };
        let a = k % pools.actors.len();
        recorded(
            Development {
                accused: vec![],
                id,
                kind,
                headline: pools.headlines[k % pools.headlines.len()].clone(),
                body: Body::parse("body", &body_text(k)).expect("valid body"),
                occurred_at: at - chrono::Duration::minutes((k % 90) as i64),
                recorded_at: at,
                actors: vec![
                    pools.actors[a].clone(),
                    pools.actors[(a + 5) % pools.actors.len()].clone(),
                ],
                source: Some(source(SourceKind::OfficialStatement)),
                evidence: Evidence::Documentary,
                urgency: Urgency::Priority,
                responds_to,
            },
            status,
        )
    }

    pub(crate) fn serialized(&mut self, pools: &Pools, at: DateTime<Utc>) -> Res<SerializedEvent> {
        let event = self.next(pools, at);
        let author = match &event {
            StoryEvent::DevelopmentApproved { .. }
            | StoryEvent::DevelopmentRejected { .. }
            | StoryEvent::DevelopmentCorrected { .. }
            | StoryEvent::DevelopmentRetracted { .. } => AUTHORS[3],
            _ => AUTHORS[self.index % 3],
        };
        serialize(self.id, self.seq, &event, author, at)
    }
}
