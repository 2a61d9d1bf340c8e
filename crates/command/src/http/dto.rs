//! The JSON shapes of the command API, and their parsing into domain commands. Every field that
//! is refused is named in the problem answer.

use chrono::{DateTime, Utc};
use newsroom_domain::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use newsroom_web::problem::Problem;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenStoryRequest {
    /// Unique, URL-safe name: `campaign-hack-2026`.
    pub slug: String,
    pub headline: String,
    #[serde(default)]
    pub summary: String,
    #[serde(default)]
    pub tags: Vec<String>,
    /// When set, reporters' developments wait for an editor's approval.
    #[serde(default)]
    pub review_required: bool,
}

impl OpenStoryRequest {
    pub fn parse(self, id: StoryId) -> Result<StoryCommand, Problem> {
        Ok(StoryCommand::OpenStory {
            id,
            slug: Slug::parse("slug", &self.slug)?,
            headline: Headline::parse("headline", &self.headline)?,
            summary: Summary::parse("summary", &self.summary)?,
            tags: Tag::parse_list("tags", &self.tags)?,
            review_required: self.review_required,
        })
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceRequest {
    pub name: String,
    pub kind: SourceKind,
    #[serde(default)]
    pub url: Option<String>,
}

impl SourceRequest {
    fn parse(self, prefix: &'static str) -> Result<Source, Problem> {
        let (name_field, url_field) = match prefix {
            "changes.source" => ("changes.source.name", "changes.source.url"),
            _ => ("source.name", "source.url"),
        };
        Ok(Source {
            name: SourceName::parse(name_field, &self.name)?,
            kind: self.kind,
            url: self
                .url
                .as_deref()
                .map(|u| WebUrl::parse(url_field, u))
                .transpose()?,
        })
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RespondsToRequest {
    pub development: Uuid,
    pub stance: Stance,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordDevelopmentRequest {
    /// Chosen by the client; sending the same filing again is safe.
    pub id: Uuid,
    pub kind: DevelopmentKind,
    pub headline: String,
    #[serde(default)]
    pub body: String,
    /// When it happened: RFC 3339 with a four-digit year (`2026-11-03T12:00:00Z`), from
    /// 1900-01-01, no leap second. Defaults to now; at most 5 minutes ahead.
    #[serde(default, deserialize_with = "moment::deserialize_option")]
    pub occurred_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub actors: Vec<String>,
    /// Whom a claim of attribution (`attribution_claimed`) blames; each is named among the
    /// actors too. Readers see them apart from the target and the claimant.
    #[serde(default)]
    pub accused: Vec<String>,
    #[serde(default)]
    pub source: Option<SourceRequest>,
    #[serde(default)]
    pub evidence: Evidence,
    #[serde(default)]
    pub urgency: Urgency,
    #[serde(default)]
    pub responds_to: Option<RespondsToRequest>,
    /// An embargo: held from readers, and alerted to nobody, until this moment (RFC 3339,
    /// after now and at most 366 days ahead); seen at the desk meanwhile. Then it is published
    /// (or, while it waits for review, published by its approval).
    #[serde(default, deserialize_with = "moment::deserialize_option")]
    pub embargo_until: Option<DateTime<Utc>>,
    /// An undo window: what would be published at once is held from readers and alerts for
    /// this many seconds (1 to 600) after it is recorded (`"status": "embargoed"`), then
    /// published and alerted once; an editor may spike it meanwhile (`…/rejection`). Left out,
    /// it is published at once. Ignored when it waits for review or under its own embargo.
    #[serde(default, deserialize_with = "newsroom_web::whole_number")]
    #[schema(minimum = 1, maximum = 600)]
    pub hold_seconds: Option<u32>,
}

impl RecordDevelopmentRequest {
    pub fn parse(self) -> Result<StoryCommand, Problem> {
        Ok(StoryCommand::RecordDevelopment(NewDevelopment {
            accused: Actor::parse_list("accused", &self.accused)?,
            id: self.id.into(),
            kind: self.kind,
            headline: Headline::parse("headline", &self.headline)?,
            body: Body::parse("body", &self.body)?,
            occurred_at: self.occurred_at,
            actors: Actor::parse_list("actors", &self.actors)?,
            source: self.source.map(|s| s.parse("source")).transpose()?,
            evidence: self.evidence,
            urgency: self.urgency,
            responds_to: self.responds_to.map(|r| RespondsTo {
                development: r.development.into(),
                stance: r.stance,
            }),
            embargo_until: self.embargo_until,
            hold: self
                .hold_seconds
                .map(|s| Hold::parse("hold_seconds", s))
                .transpose()?,
        }))
    }
}

/// Approves a development (editors); the body may be empty (`{}`).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApproveRequest {
    /// An undo window: the approved development is held from readers and alerts for this many
    /// seconds (1 to 600), then published and alerted once. Left out, it is published at once
    /// (or, under an embargo still ahead, when the embargo is lifted).
    #[serde(default, deserialize_with = "newsroom_web::whole_number")]
    #[schema(minimum = 1, maximum = 600)]
    pub hold_seconds: Option<u32>,
}

/// Moves an embargo (editors).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveEmbargoRequest {
    /// The new moment: RFC 3339, after now and at most 366 days ahead.
    #[serde(deserialize_with = "moment::deserialize")]
    pub until: DateTime<Utc>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmptyRequest {}

/// Relates the story of the path to another (editors): "this story is a `follow_up` of
/// `story`", "`story` is `background` to this one", the `same_event`, or `related`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkStoryRequest {
    /// The other story's id.
    pub story: uuid::Uuid,
    pub relation: newsroom_domain::Relation,
}

impl LinkStoryRequest {
    pub fn parse(self) -> StoryCommand {
        StoryCommand::LinkStory {
            story: self.story.into(),
            relation: self.relation,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonRequest {
    /// Shown to readers as written.
    pub reason: String,
}

impl ReasonRequest {
    pub fn parse(self) -> Result<Note, Problem> {
        Ok(Note::parse("reason", &self.reason)?)
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangesRequest {
    #[serde(default)]
    pub headline: Option<String>,
    #[serde(default)]
    pub body: Option<String>,
    /// As a filing's `occurred_at`.
    #[serde(default, deserialize_with = "moment::deserialize_option")]
    pub occurred_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub actors: Option<Vec<String>>,
    #[serde(default)]
    pub source: Option<SourceRequest>,
    #[serde(default)]
    pub evidence: Option<Evidence>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CorrectionRequest {
    /// Shown to readers as written.
    pub note: String,
    pub changes: ChangesRequest,
}

impl CorrectionRequest {
    pub fn parse(self, development: DevelopmentId) -> Result<StoryCommand, Problem> {
        let c = self.changes;
        Ok(StoryCommand::CorrectDevelopment {
            development,
            note: Note::parse("note", &self.note)?,
            changes: DevelopmentChanges {
                headline: c
                    .headline
                    .map(|h| Headline::parse("changes.headline", &h))
                    .transpose()?,
                body: c
                    .body
                    .map(|b| Body::parse("changes.body", &b))
                    .transpose()?,
                occurred_at: c.occurred_at,
                actors: c
                    .actors
                    .map(|a| Actor::parse_list("changes.actors", &a))
                    .transpose()?,
                source: c.source.map(|s| s.parse("changes.source")).transpose()?,
                evidence: c.evidence,
            },
        })
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviseStoryRequest {
    #[serde(default)]
    pub headline: Option<String>,
    #[serde(default)]
    pub tags: Option<Vec<String>>,
}

impl ReviseStoryRequest {
    pub fn parse(self) -> Result<StoryCommand, Problem> {
        if self.headline.is_none() && self.tags.is_none() {
            return Err(Problem::invalid(
                "headline",
                "send `headline`, `tags` or both",
            ));
        }
        Ok(StoryCommand::ReviseStory {
            headline: self
                .headline
                .map(|h| Headline::parse("headline", &h))
                .transpose()?,
            tags: self.tags.map(|t| Tag::parse_list("tags", &t)).transpose()?,
        })
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTokenRequest {
    pub role: Role,
    /// Who the token is for: shown as the author of what it records.
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StoryOpened {
    pub id: StoryId,
    pub slug: String,
    pub headline: String,
    pub sequence: usize,
    pub position: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DevelopmentFiled {
    pub id: DevelopmentId,
    pub story_id: StoryId,
    pub sequence: usize,
    pub position: i64,
    pub status: PublicationStatus,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CommandAccepted {
    pub story_id: StoryId,
    /// The story's newest sequence after the command.
    pub sequence: usize,
    /// Global position of the newest event: pass it as `min_position` to read your write.
    pub position: i64,
    /// Types of the events recorded; empty when nothing changed.
    pub events: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FeedPage {
    pub events: Vec<newsroom_log::feed::FeedEvent>,
    /// Pass as `after` to get the next page.
    pub next_after: i64,
    /// The newest position in the log.
    pub head: i64,
}
