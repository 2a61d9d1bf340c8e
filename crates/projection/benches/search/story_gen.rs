//! Stories of generated developments, their text drawn from the vocabulary.

use chrono::{DateTime, Utc};
use cqrs_es::persist::SerializedEvent;
use newsroom_domain::{
    Actor, Body, Development, DevelopmentChanges, DevelopmentId, DevelopmentKind, Evidence,
    Headline, Note, PublicationStatus, Slug, Source, SourceKind, SourceName, StoryEvent, StoryId,
    Summary, Tag, Urgency,
};
use newsroom_testkit::Res;

use crate::common::{correction_note, development_kind, recorded, serialize, Author};
use crate::text::{Rng, Vocabulary};

/// Everything parsed once.
pub(crate) struct Pools {
    pub(crate) vocabulary: Vocabulary,
    actors: Vec<Actor>,
    sources: Vec<Source>,
    note: Note,
}

impl Pools {
    pub(crate) fn new() -> Self {
        let vocabulary = Vocabulary::new();
        let mut rng = Rng(7);
        let title = |w: &str| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                .unwrap_or_default()
        };
        let actors = (0..300)
            .map(|i| {
                let name = format!(
                    "{} {} {i}",
                    title(vocabulary.rank(150 + rng.below(5_000))),
                    ["Group", "Ministry", "Agency", "Team", "Party", "Bureau"][i % 6]
                );
                Actor::parse("actors", &name).expect("valid actor")
            })
            .collect();
        let sources = (0..50)
            .map(|i| Source {
                name: SourceName::parse(
                    "source.name",
                    &format!(
                        "{} spokesperson {i}",
                        title(vocabulary.rank(150 + rng.below(2_000)))
                    ),
                )
                .expect("valid source"),
                kind: SourceKind::OfficialStatement,
                url: None,
            })
            .collect();
        Self {
            vocabulary,
            actors,
            sources,
            note: correction_note(),
        }
    }
}

const AUTHOR: Author = (
    "0190d1c4-7d2f-7c4e-9a65-3f1f2b9b1c11",
    "Rita Reporter",
    "reporter",
);

/// One story's events.
pub(crate) struct StoryGen {
    pub(crate) id: StoryId,
    index: usize,
    review_required: bool,
    seq: usize,
    pub(crate) developments: usize,
    devs: Vec<DevelopmentId>,
    claims: Vec<DevelopmentId>,
    rng: Rng,
}

impl StoryGen {
    pub(crate) fn new(index: usize) -> Self {
        Self {
            id: StoryId::from(uuid::Uuid::from_u128(
                0x0190_d1c4_7d2f_7c4e_9a65_0000_0000_0000 | index as u128,
            )),
            index,
            // One story in twenty is under desk review: its developments wait, seen by staff.
            review_required: index % 20 == 0,
            seq: 0,
            developments: 0,
            devs: Vec::new(),
            claims: Vec::new(),
            rng: Rng(index as u64 * 0x1_0000_0001 + 1),
        }
    }

    pub(crate) fn next(&mut self, pools: &Pools, at: DateTime<Utc>) -> StoryEvent {
        self.seq += 1;
        let k = self.seq;
        let v = &pools.vocabulary;
        if k == 1 {
            let headline = v.text(&mut self.rng, 5, false);
            return StoryEvent::StoryOpened {
                id: self.id,
                slug: Slug::parse("slug", &format!("story-{}", self.index)).expect("valid slug"),
                headline: Headline::parse("headline", &headline).expect("valid headline"),
                summary: Summary::parse("summary", &v.text(&mut self.rng, 20, true))
                    .expect("valid summary"),
                tags: vec![Tag::parse("tags", "cyber").expect("valid tag")],
                review_required: self.review_required,
            };
        }
        let n = self.devs.len();
        if k % 100 == 0 && n > 10 {
            let words = 35 + self.rng.below(26);
            return StoryEvent::DevelopmentCorrected {
                development: self.devs[n - 7],
                note: pools.note.clone(),
                changes: DevelopmentChanges {
                    body: Some(
                        Body::parse("body", &v.text(&mut self.rng, words, true))
                            .expect("valid body"),
                    ),
                    ..Default::default()
                },
            };
        }
        self.developments += 1;
        let id = DevelopmentId::from(uuid::Uuid::from_u128(
            (self.index as u128) << 64 | k as u128,
        ));
        let last_claim = self.claims.last().copied();
        let (kind, responds_to) = development_kind(k, last_claim, false);
        if kind == DevelopmentKind::AttributionClaimed {
            self.claims.push(id);
        }
        self.devs.push(id);
        let status = if self.review_required {
            PublicationStatus::PendingReview
        } else {
            PublicationStatus::Published
        };
        let headline_words = 6 + self.rng.below(6);
        let body_words = 35 + self.rng.below(26);
        let mut actors = vec![pools.actors[self.rng.below(pools.actors.len())].clone()];
        if self.rng.below(2) == 0 {
            let other = pools.actors[self.rng.below(pools.actors.len())].clone();
            if other != actors[0] {
                actors.push(other);
            }
        }
        recorded(
            Development {
                accused: vec![],
                id,
                kind,
                headline: Headline::parse(
                    "headline",
                    &v.text(&mut self.rng, headline_words, false),
                )
                .expect("valid headline"),
                body: Body::parse("body", &v.text(&mut self.rng, body_words, true))
                    .expect("valid body"),
                occurred_at: at - chrono::Duration::seconds(self.rng.below(3_600) as i64),
                recorded_at: at,
                actors,
                source: Some(pools.sources[self.rng.below(pools.sources.len())].clone()),
                evidence: Evidence::Documentary,
                urgency: Urgency::Priority,
                responds_to,
            },
            status,
        )
    }

    pub(crate) fn serialized(&mut self, pools: &Pools, at: DateTime<Utc>) -> Res<SerializedEvent> {
        let event = self.next(pools, at);
        serialize(self.id, self.seq, &event, AUTHOR, at)
    }
}
