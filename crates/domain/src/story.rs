//! The `Story` aggregate: what a story is, what may happen to it and what did.
//!
//! Decisions are pure: `handle` looks only at the aggregate's state and the command (which carries
//! the issuer's role, the clock reading and the [`Facts`] looked up about the developments it
//! names), and writes events. `apply` is the only place the aggregate's state changes.
//!
//! The aggregate keeps only what does not grow with the story (its identity, headline, tags,
//! whether it is closed or needs review, its version), so its snapshot stays the same size at ten
//! developments and at ten thousand. What decisions need to know of one development — its
//! fingerprint, the sequence that recorded it, the status it was recorded with and its current
//! status ([`DevelopmentState`]) — is kept by the event log in an index beside the events, changed
//! in the same transaction as the events that change it ([`StoryEvent::development_change`] says
//! how), and looked up for the one or two developments a command names
//! ([`StoryCommand::developments_named`]) before the command is decided.
//!
//! Rules that span several commands (each command's and event's own doc says the rest):
//!
//! - **Before publication a change is an edit, not a correction.** A development waiting for
//!   review or under an embargo is changed with `EditFiling`, by its filer or an editor, recorded
//!   as `FilingEdited` (the changes, and a note for the desk only if one was given); a
//!   `CorrectDevelopment` of such a development is decided as the same edit. Once published, a
//!   change is an editor's `DevelopmentCorrected`. The filer may also `WithdrawDevelopment`,
//!   recorded as `DevelopmentRejected` with the reason [`WITHDRAWN`], so no reader of the log needs
//!   a new event. Whether the issuer filed a development is a fact looked up outside
//!   ([`Facts::filed_by_issuer`]: the command service compares the `author_id` of the event that
//!   recorded it with the issuer's token).
//! - **A story's own fields are an editor's.** `ReviseStory` (headline, tags) needs an editor or an
//!   admin on every story, and is refused on a closed story until it is reopened.
//! - **Relations.** `LinkStory { story, relation }` ([`Relation`]: `follow_up`, `background`,
//!   `same_event`, `related`, read "this story is a follow-up of that one") is recorded on this
//!   story as `StoryLinked` and removed by `UnlinkStory` (`StoryUnlinked`, naming the relation it
//!   was). Both stories show it, the other with the relation reversed (`Relation::reverse_str`:
//!   `followed_up_by`, `background_to`; the symmetric ones read the same). The decision knows the
//!   other story ([`OtherStory`], read from its own aggregate): refused are a story that does not
//!   exist or this story itself, a pair related already from either side
//!   (`StoryError::AlreadyRelated`), and a relation beyond `limits::RELATIONS` on one story; a
//!   closed story may be related. The other aggregate is read, not locked, so two editors relating
//!   a pair from both sides at once may both succeed: each relation is shown, and either unlinked.
//! - **Embargoes.** A filing may carry `embargo_until` ([`embargo::check`]: after the decision's
//!   clock, at most 366 days ahead). It is recorded `Embargoed` (or `PendingReview` with the
//!   moment, if it waits for review); approved while the moment lies ahead it is
//!   `DevelopmentApprovedUnderEmbargo`, an event type of its own, so that no reader of the log that
//!   predates embargoes takes it for a publication. An embargo ends only by an event,
//!   `EmbargoLifted { published }`: an editor's `LiftEmbargo { due: None }`, or the scheduler's
//!   `LiftEmbargo { due: Some(moment) }`, which decides nothing unless the development is still
//!   under that very moment and it has come, so two schedulers (or one reading before an editor's
//!   `EmbargoMoved`) never lift twice or early. A lift of a filing still waiting for review leaves
//!   it waiting (`published: false`). An embargoed development is spiked like a pending one
//!   (rejected or withdrawn, it is never lifted), changed only by `FilingEdited`, never retracted.
//! - **Undo windows are embargoes.** A filing that would be published at once may carry a `hold`
//!   ([`Hold`]: 1 to 600 seconds): it is recorded `Embargoed` until the clock plus the hold, the
//!   `hold` marking the embargo as an undo window; `ApproveDevelopment { hold }` is likewise
//!   `DevelopmentApprovedUnderEmbargo { until, hold }` when no embargo of the filing lies ahead.
//!   The scheduler releases it as any embargo. During it the filer takes a filing back with
//!   `WithdrawDevelopment`, and an editor an approval with `UndoApproval` (`ApprovalUndone`: the
//!   development waits for review again, with no embargo). Only an approval's own undo window can
//!   be undone, never an embargo asked for at filing.
//!
//! The snapshot also holds the relations the story records (at most `limits::RELATIONS`), so it
//! stays a few hundred bytes; its shape is `upcast`'s business ([`crate::upcast::snapshot`]).

use chrono::{DateTime, Duration, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{FieldError, StoryError};
use crate::values::*;

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

/// The aggregate type under which stories are stored. Part of every stored event's key:
/// it must never change.
pub const AGGREGATE_TYPE: &str = "story";

/// How far in the future `occurred_at` may lie (clock skew between newsroom and reporter).
pub const FUTURE_TOLERANCE: Duration = moment::FUTURE_TOLERANCE;

/// A development as a reporter files it. `occurred_at` is optional: left out, it is the moment
/// the newsroom records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewDevelopment {
    pub id: DevelopmentId,
    pub kind: DevelopmentKind,
    pub headline: Headline,
    pub body: Body,
    pub occurred_at: Option<DateTime<Utc>>,
    pub actors: Vec<Actor>,
    /// Whom a claim of attribution blames (`attribution_claimed` only): named among the actors
    /// too, so that readers tell the accused from the target and the claimant. Absent from the
    /// fingerprint when empty, so filings made before it keep theirs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accused: Vec<Actor>,
    pub source: Option<Source>,
    pub evidence: Evidence,
    pub urgency: Urgency,
    pub responds_to: Option<RespondsTo>,
    /// Held from readers until this moment (an embargo): recorded, seen at the desk, lifted by
    /// an [`StoryEvent::EmbargoLifted`]. Absent from the fingerprint when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embargo_until: Option<DateTime<Utc>>,
    /// An undo window: published, unless held for review or by an embargo, only this long
    /// after it is recorded ([`Hold`]). Absent from the fingerprint when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold: Option<Hold>,
}

impl NewDevelopment {
    /// A digest of everything the client sent: two filings with the same id are "the same"
    /// exactly when their fingerprints are equal.
    pub fn fingerprint(&self) -> String {
        let json = serde_json::to_vec(self).expect("a development always serialises");
        let digest = Sha256::digest(json);
        digest[..16].iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// A development as recorded in the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Development {
    pub id: DevelopmentId,
    pub kind: DevelopmentKind,
    pub headline: Headline,
    pub body: Body,
    /// When it happened in the world.
    pub occurred_at: DateTime<Utc>,
    /// When the newsroom recorded it (set by the server).
    pub recorded_at: DateTime<Utc>,
    /// Every actor named: the accused among them.
    pub actors: Vec<Actor>,
    /// Whom a claim of attribution blames, each also in `actors` (none for other kinds, and for
    /// claims filed before it was asked: their actors' roles are not known).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accused: Vec<Actor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    pub evidence: Evidence,
    pub urgency: Urgency,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub responds_to: Option<RespondsTo>,
}

/// What an editor's correction changes; absent fields stay as they were.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct DevelopmentChanges {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headline: Option<Headline>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Body>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurred_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actors: Option<Vec<Actor>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Evidence>,
}

impl DevelopmentChanges {
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

/// Whether a recorded development is visible to readers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub enum PublicationStatus {
    Published,
    PendingReview,
    /// Would be published, but is held from readers until its embargo is lifted.
    Embargoed,
}

impl PublicationStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            PublicationStatus::Published => "published",
            PublicationStatus::PendingReview => "pending_review",
            PublicationStatus::Embargoed => "embargoed",
        }
    }
}

/// What can be asked of a story.
#[derive(Debug, Clone, PartialEq)]
pub enum StoryCommand {
    OpenStory {
        id: StoryId,
        slug: Slug,
        headline: Headline,
        summary: Summary,
        tags: Vec<Tag>,
        review_required: bool,
    },
    RecordDevelopment(NewDevelopment),
    /// Approves a development waiting for review; with `hold`, it is held for that undo window
    /// first (unless its own embargo holds it longer).
    ApproveDevelopment {
        development: DevelopmentId,
        hold: Option<Hold>,
    },
    /// An editor takes back an approval still in its undo window: the development waits for
    /// review again, never having reached readers.
    UndoApproval {
        development: DevelopmentId,
    },
    RejectDevelopment {
        development: DevelopmentId,
        reason: Note,
    },
    CorrectDevelopment {
        development: DevelopmentId,
        note: Note,
        changes: DevelopmentChanges,
    },
    RetractDevelopment {
        development: DevelopmentId,
        reason: Note,
    },
    /// An edit of a development still waiting for review, by the one who filed it or an editor:
    /// it changes what readers will first see, and is no correction to them
    /// ([`StoryEvent::FilingEdited`]). The note, if any, is for the desk.
    EditFiling {
        development: DevelopmentId,
        changes: DevelopmentChanges,
        note: Option<Note>,
    },
    /// The one who filed a development takes it back while it waits for review: it is recorded
    /// as rejected, with [`WITHDRAWN`] as the reason, and never reaches readers.
    WithdrawDevelopment {
        development: DevelopmentId,
    },
    /// Ends a development's embargo: an editor's, at once (`due: None`), or the scheduler's,
    /// for the embargo it found due (`due`: the moment it read). A development no longer under
    /// that embargo (lifted already, moved, never embargoed) is left as it is: no event, so two
    /// schedulers never both lift it.
    LiftEmbargo {
        development: DevelopmentId,
        due: Option<DateTime<Utc>>,
    },
    /// An editor moves a development's embargo to another moment in the future.
    MoveEmbargo {
        development: DevelopmentId,
        until: DateTime<Utc>,
    },
    /// Changes the story's headline and/or tags, atomically; unchanged values record nothing.
    /// Editors and admins only, and only while the story is open.
    ReviseStory {
        headline: Option<Headline>,
        tags: Option<Vec<Tag>>,
    },
    CloseStory,
    ReopenStory,
    /// An editor relates this story to another (`story`): recorded on this story, shown on
    /// both. Decided knowing the other story ([`Facts::other_story`]).
    LinkStory {
        story: StoryId,
        relation: Relation,
    },
    /// An editor removes the relation this story records to `story`.
    UnlinkStory {
        story: StoryId,
    },
}

impl StoryCommand {
    /// The developments whose state the decision needs: the one an editing command names; for a
    /// filing its own id (a retry is answered from the first filing) and the development it
    /// responds to. The command service looks these up before deciding.
    pub fn developments_named(&self) -> Vec<DevelopmentId> {
        match self {
            StoryCommand::RecordDevelopment(new) => std::iter::once(new.id)
                .chain(new.responds_to.map(|r| r.development))
                .collect(),
            StoryCommand::ApproveDevelopment { development, .. }
            | StoryCommand::UndoApproval { development }
            | StoryCommand::RejectDevelopment { development, .. }
            | StoryCommand::CorrectDevelopment { development, .. }
            | StoryCommand::RetractDevelopment { development, .. }
            | StoryCommand::EditFiling { development, .. }
            | StoryCommand::LiftEmbargo { development, .. }
            | StoryCommand::MoveEmbargo { development, .. }
            | StoryCommand::WithdrawDevelopment { development } => vec![*development],
            StoryCommand::OpenStory { .. }
            | StoryCommand::ReviseStory { .. }
            | StoryCommand::CloseStory
            | StoryCommand::ReopenStory
            | StoryCommand::LinkStory { .. }
            | StoryCommand::UnlinkStory { .. } => vec![],
        }
    }
}

/// A command with who issued it, when, and what is known of the developments it names: the
/// aggregate's decisions depend on all of them, and each is read outside so that decisions stay
/// pure.
#[derive(Debug, Clone, PartialEq)]
pub struct Issued {
    pub by: Role,
    pub at: DateTime<Utc>,
    pub command: StoryCommand,
    /// The state of the developments [`StoryCommand::developments_named`] lists, as the log's
    /// index holds it; a development not in it was never recorded in this story.
    pub facts: Facts,
}

impl Issued {
    /// A command issued knowing of no development (as for a story that has none yet).
    pub fn new(by: Role, at: DateTime<Utc>, command: StoryCommand) -> Self {
        Self {
            by,
            at,
            command,
            facts: Facts::default(),
        }
    }

    /// The same command, decided with `facts` looked up about the developments it names.
    pub fn knowing(mut self, facts: Facts) -> Self {
        self.facts = facts;
        self
    }
}

/// What happened to a story. Past tense; names never change once written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum StoryEvent {
    StoryOpened {
        id: StoryId,
        slug: Slug,
        headline: Headline,
        summary: Summary,
        tags: Vec<Tag>,
        review_required: bool,
    },
    DevelopmentRecorded {
        development: Development,
        status: PublicationStatus,
        fingerprint: String,
        /// The embargo it was filed under (status `Embargoed`, or `PendingReview` and held after
        /// approval until then).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        embargo_until: Option<DateTime<Utc>>,
        /// Held for an undo window of this length (then `status` is `Embargoed` and
        /// `embargo_until` the window's end): its filer may still withdraw it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hold: Option<Hold>,
    },
    DevelopmentApproved {
        development: DevelopmentId,
    },
    /// An editor approved a development whose embargo still holds: it stays from readers until
    /// the embargo is lifted (a type of its own, so that no reader of the log that predates
    /// embargoes takes it for a publication).
    DevelopmentApprovedUnderEmbargo {
        development: DevelopmentId,
        until: DateTime<Utc>,
        /// The embargo is the approval's undo window, of this length (`until` is its end): the
        /// approval may still be undone ([`StoryEvent::ApprovalUndone`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hold: Option<Hold>,
    },
    /// An editor took back an approval during its undo window: the development waits for review
    /// again, as before it, and never reached readers.
    ApprovalUndone {
        development: DevelopmentId,
    },
    /// The embargo ended (its time came, or an editor lifted it early; who is in the
    /// metadata). `published`: the development reached readers by it; otherwise it was still
    /// waiting for review, and is published by its approval.
    EmbargoLifted {
        development: DevelopmentId,
        published: bool,
    },
    /// An editor moved the embargo to `until`.
    EmbargoMoved {
        development: DevelopmentId,
        until: DateTime<Utc>,
    },
    DevelopmentRejected {
        development: DevelopmentId,
        reason: Note,
    },
    DevelopmentCorrected {
        development: DevelopmentId,
        note: Note,
        changes: DevelopmentChanges,
    },
    DevelopmentRetracted {
        development: DevelopmentId,
        reason: Note,
    },
    /// A development was edited while it waited for review: readers first see it as edited, and
    /// are told of no correction; subscribers are alerted to nothing. `note` is the desk's.
    FilingEdited {
        development: DevelopmentId,
        changes: DevelopmentChanges,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<Note>,
    },
    HeadlineChanged {
        headline: Headline,
    },
    TagsChanged {
        tags: Vec<Tag>,
    },
    /// Version 2: a struct variant, stored as `{"StoryClosed": {}}` like every other event
    /// (version 1 was the bare string `"StoryClosed"`; see `upcast.rs`).
    StoryClosed {},
    /// Version 2, as `StoryClosed`.
    StoryReopened {},
    /// An editor related this story to `story` (this story is a `follow_up` of it, has it as
    /// `background`, …): shown on both stories.
    StoryLinked {
        story: StoryId,
        relation: Relation,
    },
    /// An editor removed the relation this story recorded to `story` (`relation`: what it was).
    StoryUnlinked {
        story: StoryId,
        relation: Relation,
    },
}

impl StoryEvent {
    /// The development an event concerns, if any.
    pub fn development_id(&self) -> Option<DevelopmentId> {
        match self {
            StoryEvent::DevelopmentRecorded { development, .. } => Some(development.id),
            StoryEvent::DevelopmentApproved { development }
            | StoryEvent::DevelopmentRejected { development, .. }
            | StoryEvent::DevelopmentCorrected { development, .. }
            | StoryEvent::FilingEdited { development, .. }
            | StoryEvent::DevelopmentApprovedUnderEmbargo { development, .. }
            | StoryEvent::ApprovalUndone { development }
            | StoryEvent::EmbargoLifted { development, .. }
            | StoryEvent::EmbargoMoved { development, .. }
            | StoryEvent::DevelopmentRetracted { development, .. } => Some(*development),
            _ => None,
        }
    }
}

impl DomainEvent for StoryEvent {
    fn event_type(&self) -> String {
        match self {
            StoryEvent::StoryOpened { .. } => "StoryOpened",
            StoryEvent::DevelopmentRecorded { .. } => "DevelopmentRecorded",
            StoryEvent::DevelopmentApproved { .. } => "DevelopmentApproved",
            StoryEvent::DevelopmentRejected { .. } => "DevelopmentRejected",
            StoryEvent::DevelopmentCorrected { .. } => "DevelopmentCorrected",
            StoryEvent::DevelopmentRetracted { .. } => "DevelopmentRetracted",
            StoryEvent::FilingEdited { .. } => "FilingEdited",
            StoryEvent::DevelopmentApprovedUnderEmbargo { .. } => "DevelopmentApprovedUnderEmbargo",
            StoryEvent::ApprovalUndone { .. } => "ApprovalUndone",
            StoryEvent::EmbargoLifted { .. } => "EmbargoLifted",
            StoryEvent::EmbargoMoved { .. } => "EmbargoMoved",
            StoryEvent::HeadlineChanged { .. } => "HeadlineChanged",
            StoryEvent::TagsChanged { .. } => "TagsChanged",
            StoryEvent::StoryClosed {} => "StoryClosed",
            StoryEvent::StoryReopened {} => "StoryReopened",
            StoryEvent::StoryLinked { .. } => "StoryLinked",
            StoryEvent::StoryUnlinked { .. } => "StoryUnlinked",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        crate::upcast::current_version(&self.event_type())
            .expect("every event type has a current version")
            .to_owned()
    }
}

/// Where a development stands now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DevelopmentStatus {
    PendingReview,
    Published,
    Rejected,
    Retracted,
    /// Approved (or needing no review) and held from readers until its embargo is lifted.
    Embargoed,
}

impl DevelopmentStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            DevelopmentStatus::PendingReview => "pending review",
            DevelopmentStatus::Published => "published",
            DevelopmentStatus::Embargoed => "embargoed",
            DevelopmentStatus::Rejected => "rejected",
            DevelopmentStatus::Retracted => "retracted",
        }
    }
}

/// What decisions need to know of one recorded development. The event log keeps it per story
/// and development in an index beside the events (not the aggregate, whose snapshot must not
/// grow with the story), changed by [`StoryEvent::development_change`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DevelopmentState {
    /// Fingerprint of the filing, for idempotent retries.
    pub fingerprint: String,
    /// The story sequence of the event that recorded it.
    pub recorded_in: usize,
    /// The status it was recorded with (the answer a retry gets again).
    pub recorded_as: PublicationStatus,
    pub status: DevelopmentStatus,
    /// The embargo that holds it from readers, if one does (embargoed, or waiting for review
    /// and to be held after approval).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embargo_until: Option<DateTime<Utc>>,
    /// The embargo is an undo window (a filing's or an approval's hold), not a moment asked for.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub undo_window: bool,
}

/// How one event changes the index of a story's developments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DevelopmentChange {
    /// A development was recorded: its row is added.
    Recorded {
        development: DevelopmentId,
        state: DevelopmentState,
    },
    /// A recorded development's current status changed.
    StatusChanged {
        development: DevelopmentId,
        status: DevelopmentStatus,
    },
    /// A development's embargo was set or moved (`until`) or ended (`None`), and its status
    /// changed with it if `status` says so; `undo_window`: the embargo is an undo window.
    EmbargoChanged {
        development: DevelopmentId,
        until: Option<DateTime<Utc>>,
        status: Option<DevelopmentStatus>,
        undo_window: bool,
    },
}

impl StoryEvent {
    /// How this event, stored at `sequence` of its story, changes the index of the story's
    /// developments (`None`: it does not). The one definition the stores, the import and the
    /// migration that fills the index all use.
    pub fn development_change(&self, sequence: usize) -> Option<DevelopmentChange> {
        let status_changed = |development: &DevelopmentId, status| {
            Some(DevelopmentChange::StatusChanged {
                development: *development,
                status,
            })
        };
        match self {
            StoryEvent::DevelopmentRecorded {
                development,
                status,
                fingerprint,
                embargo_until,
                hold,
            } => Some(DevelopmentChange::Recorded {
                development: development.id,
                state: DevelopmentState {
                    fingerprint: fingerprint.clone(),
                    recorded_in: sequence,
                    recorded_as: *status,
                    status: match status {
                        PublicationStatus::Published => DevelopmentStatus::Published,
                        PublicationStatus::PendingReview => DevelopmentStatus::PendingReview,
                        PublicationStatus::Embargoed => DevelopmentStatus::Embargoed,
                    },
                    embargo_until: *embargo_until,
                    undo_window: hold.is_some(),
                },
            }),
            StoryEvent::DevelopmentApproved { development } => {
                status_changed(development, DevelopmentStatus::Published)
            }
            // (`until` is the embargo the approval found, or the undo window it opened.)
            StoryEvent::DevelopmentApprovedUnderEmbargo {
                development,
                until,
                hold,
            } => Some(DevelopmentChange::EmbargoChanged {
                development: *development,
                until: Some(*until),
                status: Some(DevelopmentStatus::Embargoed),
                undo_window: hold.is_some(),
            }),
            StoryEvent::ApprovalUndone { development } => Some(DevelopmentChange::EmbargoChanged {
                development: *development,
                until: None,
                status: Some(DevelopmentStatus::PendingReview),
                undo_window: false,
            }),
            StoryEvent::EmbargoLifted {
                development,
                published,
            } => Some(DevelopmentChange::EmbargoChanged {
                development: *development,
                until: None,
                status: published.then_some(DevelopmentStatus::Published),
                undo_window: false,
            }),
            StoryEvent::EmbargoMoved { development, until } => {
                Some(DevelopmentChange::EmbargoChanged {
                    development: *development,
                    until: Some(*until),
                    status: None,
                    undo_window: false,
                })
            }
            StoryEvent::DevelopmentRejected { development, .. } => {
                status_changed(development, DevelopmentStatus::Rejected)
            }
            StoryEvent::DevelopmentRetracted { development, .. } => {
                status_changed(development, DevelopmentStatus::Retracted)
            }
            StoryEvent::StoryOpened { .. }
            | StoryEvent::DevelopmentCorrected { .. }
            | StoryEvent::FilingEdited { .. }
            | StoryEvent::HeadlineChanged { .. }
            | StoryEvent::TagsChanged { .. }
            | StoryEvent::StoryClosed {}
            | StoryEvent::StoryReopened {}
            | StoryEvent::StoryLinked { .. }
            | StoryEvent::StoryUnlinked { .. } => None,
        }
    }

    /// The other story an event relates this one to or unrelates it from, with the relation.
    pub fn relation(&self) -> Option<(StoryId, Relation)> {
        match self {
            StoryEvent::StoryLinked { story, relation }
            | StoryEvent::StoryUnlinked { story, relation } => Some((*story, *relation)),
            _ => None,
        }
    }
}

/// The rule for an embargo's moment.
pub mod embargo {
    use chrono::{DateTime, Duration, Timelike, Utc};

    use crate::error::FieldError;

    /// How far ahead an embargo may reach.
    pub const HORIZON: Duration = Duration::days(366);

    /// An embargo ends after `now` (else there is nothing to hold back) and within a year and a
    /// day, on no leap second.
    pub fn check(
        field: &'static str,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), FieldError> {
        if until.nanosecond() >= 1_000_000_000 {
            return Err(FieldError::new(field, "must not be a leap second (`:60`)"));
        }
        if until <= now {
            return Err(FieldError::new(
                field,
                format!(
                    "must lie in the future (it is now {})",
                    now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                ),
            ));
        }
        if until > now + HORIZON {
            return Err(FieldError::new(field, "must lie at most 366 days ahead"));
        }
        Ok(())
    }
}

/// The reason a withdrawn development is recorded as rejected with.
pub const WITHDRAWN: &str = "Withdrawn by the one who filed it.";

/// What is known of the developments a command names, looked up before it is decided. A
/// development not listed was never recorded in the story (as far as the index knew when it was
/// read).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    developments: Vec<(DevelopmentId, DevelopmentState)>,
    /// Those the command's issuer filed (the same token recorded them).
    own: Vec<DevelopmentId>,
    /// The other story a relation names, as its own aggregate holds it.
    other: Option<OtherStory>,
}

/// What a relation's decision needs to know of the other story: whether it exists, and the
/// relation it records to this story, if any (a pair is related once, from either side).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtherStory {
    pub id: StoryId,
    pub exists: bool,
    pub relation_to_this: Option<Relation>,
}

impl Facts {
    /// Facts about these developments.
    pub fn new(developments: impl IntoIterator<Item = (DevelopmentId, DevelopmentState)>) -> Self {
        Self {
            developments: developments.into_iter().collect(),
            own: Vec::new(),
            other: None,
        }
    }

    /// The same facts, knowing the other story a relation names.
    pub fn with_other_story(mut self, other: OtherStory) -> Self {
        self.other = Some(other);
        self
    }

    /// The other story a relation names, if it was looked up.
    pub fn other_story(&self) -> Option<&OtherStory> {
        self.other.as_ref()
    }

    /// The same facts, knowing that the command's issuer filed `developments`.
    pub fn filed_by_issuer(
        mut self,
        developments: impl IntoIterator<Item = DevelopmentId>,
    ) -> Self {
        self.own.extend(developments);
        self
    }

    /// Whether the command's issuer filed `id`.
    pub fn is_issuers(&self, id: &DevelopmentId) -> bool {
        self.own.contains(id)
    }

    /// The facts the index holds after a story's events, `history[i]` stored at sequence
    /// `i + 1`: what the stores would look up, for tests and tools that have the events at hand.
    pub fn from_history<'a>(history: impl IntoIterator<Item = &'a StoryEvent>) -> Self {
        let mut facts = Self::default();
        for (i, event) in history.into_iter().enumerate() {
            if let Some(change) = event.development_change(i + 1) {
                facts.apply(change);
            }
        }
        facts
    }

    /// Changes the facts as the index is changed.
    pub fn apply(&mut self, change: DevelopmentChange) {
        match change {
            DevelopmentChange::Recorded { development, state } => {
                self.developments.retain(|(id, _)| *id != development);
                self.developments.push((development, state));
            }
            DevelopmentChange::StatusChanged {
                development,
                status,
            } => {
                if let Some((_, state)) = self
                    .developments
                    .iter_mut()
                    .find(|(id, _)| *id == development)
                {
                    state.status = status;
                }
            }
            DevelopmentChange::EmbargoChanged {
                development,
                until,
                status,
                undo_window,
            } => {
                if let Some((_, state)) = self
                    .developments
                    .iter_mut()
                    .find(|(id, _)| *id == development)
                {
                    state.embargo_until = until;
                    state.undo_window = undo_window;
                    if let Some(status) = status {
                        state.status = status;
                    }
                }
            }
        }
    }

    pub fn development(&self, id: &DevelopmentId) -> Option<&DevelopmentState> {
        self.developments
            .iter()
            .find_map(|(known, state)| (known == id).then_some(state))
    }
}

/// The story aggregate. Nothing in it grows with the number of developments (see the module
/// comment); its serialised form is the story's snapshot (`upcast::snapshot`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Story {
    id: Option<StoryId>,
    slug: Option<Slug>,
    headline: Option<Headline>,
    tags: Vec<Tag>,
    review_required: bool,
    closed: bool,
    /// The relations this story records to others (at most [`limits::RELATIONS`], so the
    /// snapshot stays small), oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    relations: Vec<(StoryId, Relation)>,
    /// Number of events applied: the sequence of the latest event.
    version: usize,
}

impl Story {
    pub fn is_open(&self) -> bool {
        self.id.is_some() && !self.closed
    }
    pub fn exists(&self) -> bool {
        self.id.is_some()
    }
    pub fn id(&self) -> Option<StoryId> {
        self.id
    }
    pub fn slug(&self) -> Option<&Slug> {
        self.slug.as_ref()
    }
    /// The sequence of the last event applied (0 for a story never opened).
    pub fn version(&self) -> usize {
        self.version
    }
    /// The relation this story records to `other`, if it records one.
    pub fn relation_to(&self, other: StoryId) -> Option<Relation> {
        self.relations
            .iter()
            .find_map(|(id, r)| (*id == other).then_some(*r))
    }

    fn require_editor(by: Role, action: &'static str) -> Result<(), StoryError> {
        if by.at_least(Role::Editor) {
            Ok(())
        } else {
            Err(StoryError::Forbidden {
                required: "editor",
                action,
            })
        }
    }

    fn existing(facts: &Facts, id: DevelopmentId) -> Result<&DevelopmentState, StoryError> {
        facts
            .development(&id)
            .ok_or(StoryError::DevelopmentNotFound(id))
    }

    /// `occurred_at` from 1900 to five minutes ahead, no leap second ([`moment::check`]).
    fn sane_moment(
        field: &'static str,
        at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), StoryError> {
        Ok(moment::check(field, at, now)?)
    }

    fn decide_record(
        &self,
        new: NewDevelopment,
        by: Role,
        now: DateTime<Utc>,
        facts: &Facts,
    ) -> Result<Option<StoryEvent>, StoryError> {
        let fingerprint = new.fingerprint();
        if let Some(existing) = facts.development(&new.id) {
            // A retry of the same filing is answered from the first one, without a new event.
            return if existing.fingerprint == fingerprint {
                Ok(None)
            } else {
                Err(StoryError::DevelopmentIdReused(new.id))
            };
        }
        if self.closed {
            return Err(StoryError::StoryClosed);
        }
        if let Some(at) = new.occurred_at {
            Self::sane_moment("occurred_at", at, now)?;
        }
        if let Some(until) = new.embargo_until {
            embargo::check("embargo_until", until, now)?;
        }
        if matches!(
            new.kind,
            DevelopmentKind::AttributionClaimed | DevelopmentKind::DenialIssued
        ) && new.source.is_none()
        {
            return Err(FieldError::new(
                "source.name",
                format!("a named source is required for `{}`", new.kind),
            )
            .into());
        }
        match (new.kind, new.responds_to) {
            (DevelopmentKind::DenialIssued, None) => {
                return Err(FieldError::new(
                    "responds_to",
                    "a denial must name the development it denies",
                )
                .into())
            }
            (DevelopmentKind::DenialIssued, Some(r)) if r.stance != Stance::Denies => {
                return Err(
                    FieldError::new("responds_to.stance", "a denial's stance is `denies`").into(),
                )
            }
            _ => {}
        }
        if !new.accused.is_empty() && new.kind != DevelopmentKind::AttributionClaimed {
            return Err(FieldError::new(
                "accused",
                format!(
                    "only a claim of attribution accuses; this is `{}`",
                    new.kind
                ),
            )
            .into());
        }
        // The accused are named among the actors too (actor pages and alerts follow them).
        let mut actors = new.actors;
        for accused in &new.accused {
            if !actors.iter().any(|a| a.key() == accused.key()) {
                actors.push(accused.clone());
            }
        }
        if actors.len() > limits::ACTORS {
            return Err(FieldError::new(
                "accused",
                format!("at most {} actors, the accused included", limits::ACTORS),
            )
            .into());
        }
        if let Some(response) = new.responds_to {
            match facts.development(&response.development) {
                Some(target) if target.status != DevelopmentStatus::Rejected => {}
                _ => {
                    return Err(FieldError::new(
                        "responds_to.development",
                        format!("no development {} in this story", response.development),
                    )
                    .into())
                }
            }
        }
        // A story under review holds back reporters' filings; `flash` (which alerts every
        // subscriber at once) needs an editor, or an editor's approval, on any story.
        let needs_review = self.review_required || new.urgency == Urgency::Flash;
        let status = if needs_review && !by.at_least(Role::Editor) {
            PublicationStatus::PendingReview
        } else if new.embargo_until.is_some() {
            PublicationStatus::Embargoed
        } else {
            PublicationStatus::Published
        };
        // An undo window holds back only what would be published now: held for review or by
        // its own embargo, nothing reaches readers before an editor or the moment anyway.
        let (status, embargo_until, hold) = match new.hold {
            Some(hold) if status == PublicationStatus::Published => (
                PublicationStatus::Embargoed,
                Some(now + hold.duration()),
                Some(hold),
            ),
            _ => (status, new.embargo_until, None),
        };
        let development = Development {
            id: new.id,
            kind: new.kind,
            headline: new.headline,
            body: new.body,
            occurred_at: new.occurred_at.unwrap_or(now),
            recorded_at: now,
            actors,
            accused: new.accused,
            source: new.source,
            evidence: new.evidence,
            urgency: new.urgency,
            responds_to: new.responds_to,
        };
        Ok(Some(StoryEvent::DevelopmentRecorded {
            development,
            status,
            fingerprint,
            embargo_until,
            hold,
        }))
    }

    /// Decides what a command means for this story: the events to record, or why not.
    pub fn decide(&self, issued: Issued) -> Result<Vec<StoryEvent>, StoryError> {
        let Issued {
            by,
            at,
            command,
            facts,
        } = issued;
        if let StoryCommand::OpenStory {
            id,
            slug,
            headline,
            summary,
            tags,
            review_required,
        } = command
        {
            if self.exists() {
                return Err(StoryError::StoryAlreadyOpened);
            }
            return Ok(vec![StoryEvent::StoryOpened {
                id,
                slug,
                headline,
                summary,
                tags,
                review_required,
            }]);
        }
        if !self.exists() {
            return Err(StoryError::StoryNotFound);
        }
        let event = match command {
            StoryCommand::OpenStory { .. } => unreachable!("handled above"),
            StoryCommand::RecordDevelopment(new) => {
                return Ok(self
                    .decide_record(new, by, at, &facts)?
                    .into_iter()
                    .collect())
            }
            StoryCommand::ApproveDevelopment { development, hold } => {
                Self::require_editor(by, "approve a development")?;
                Self::expect_status(
                    &facts,
                    development,
                    DevelopmentStatus::PendingReview,
                    "approval",
                )?;
                // An embargo whose time has not come holds the approved development back; else
                // the undo window asked for, if any.
                match (Self::existing(&facts, development)?.embargo_until, hold) {
                    (Some(until), _) if until > at => StoryEvent::DevelopmentApprovedUnderEmbargo {
                        development,
                        until,
                        hold: None,
                    },
                    (_, Some(hold)) => StoryEvent::DevelopmentApprovedUnderEmbargo {
                        development,
                        until: at + hold.duration(),
                        hold: Some(hold),
                    },
                    _ => StoryEvent::DevelopmentApproved { development },
                }
            }
            StoryCommand::UndoApproval { development } => {
                Self::require_editor(by, "undo an approval")?;
                let state = Self::existing(&facts, development)?;
                // Only an approval's own undo window: an embargo asked for at filing stays, and
                // a filing held for its undo window is taken back by its filer's withdrawal.
                let approval_held = state.status == DevelopmentStatus::Embargoed
                    && state.undo_window
                    && state.recorded_as == PublicationStatus::PendingReview;
                if !approval_held {
                    return Err(StoryError::DevelopmentState {
                        id: development,
                        status: if state.status == DevelopmentStatus::Embargoed {
                            "not in an approval's undo window"
                        } else {
                            state.status.as_str()
                        },
                        action: "undoing an approval",
                    });
                }
                StoryEvent::ApprovalUndone { development }
            }
            StoryCommand::RejectDevelopment {
                development,
                reason,
            } => {
                Self::require_editor(by, "reject a development")?;
                // An embargoed development is spiked the same way: it never reaches readers.
                Self::expect_unpublished(&facts, development, "rejection")?;
                StoryEvent::DevelopmentRejected {
                    development,
                    reason,
                }
            }
            StoryCommand::CorrectDevelopment {
                development,
                note,
                changes,
            } => {
                // Before publication a change is an edit of the filing, never a correction
                // readers are told of (the API's correction of a pending or embargoed
                // development included).
                if matches!(
                    Self::existing(&facts, development)?.status,
                    DevelopmentStatus::PendingReview | DevelopmentStatus::Embargoed
                ) {
                    let edit = (development, changes, Some(note));
                    return Self::decide_edit(by, at, &facts, edit, "correct a development");
                }
                Self::require_editor(by, "correct a development")?;
                let state = Self::existing(&facts, development)?;
                if matches!(
                    state.status,
                    DevelopmentStatus::Retracted | DevelopmentStatus::Rejected
                ) {
                    return Err(StoryError::DevelopmentState {
                        id: development,
                        status: state.status.as_str(),
                        action: "correction",
                    });
                }
                Self::check_changes(&changes, at)?;
                StoryEvent::DevelopmentCorrected {
                    development,
                    note,
                    changes,
                }
            }
            StoryCommand::EditFiling {
                development,
                changes,
                note,
            } => {
                let edit = (development, changes, note);
                return Self::decide_edit(by, at, &facts, edit, "edit someone else's filing");
            }
            StoryCommand::RetractDevelopment {
                development,
                reason,
            } => {
                Self::require_editor(by, "retract a development")?;
                Self::expect_status(
                    &facts,
                    development,
                    DevelopmentStatus::Published,
                    "retraction",
                )?;
                StoryEvent::DevelopmentRetracted {
                    development,
                    reason,
                }
            }
            StoryCommand::WithdrawDevelopment { development } => {
                Self::existing(&facts, development)?;
                if !facts.is_issuers(&development) {
                    return Err(StoryError::NotTheirs {
                        action: "withdraw a development",
                    });
                }
                Self::expect_unpublished(&facts, development, "withdrawal")?;
                StoryEvent::DevelopmentRejected {
                    development,
                    reason: Note::parse("reason", WITHDRAWN).expect("the reason is a valid note"),
                }
            }
            StoryCommand::LiftEmbargo { development, due } => {
                Self::require_editor(by, "lift an embargo")?;
                let state = Self::existing(&facts, development)?;
                let held = matches!(
                    state.status,
                    DevelopmentStatus::PendingReview | DevelopmentStatus::Embargoed
                );
                match (due, state.embargo_until.filter(|_| held)) {
                    // The scheduler's lift: only of the embargo it found due, once its time came.
                    (Some(due), Some(until)) if due == until && until <= at => {}
                    (Some(_), _) => return Ok(vec![]),
                    (None, Some(_)) => {}
                    (None, None) => {
                        return Err(StoryError::DevelopmentState {
                            id: development,
                            status: state.status.as_str(),
                            action: "lifting an embargo",
                        })
                    }
                }
                StoryEvent::EmbargoLifted {
                    development,
                    published: state.status == DevelopmentStatus::Embargoed,
                }
            }
            StoryCommand::MoveEmbargo { development, until } => {
                Self::require_editor(by, "move an embargo")?;
                let state = Self::existing(&facts, development)?;
                let held = matches!(
                    state.status,
                    DevelopmentStatus::PendingReview | DevelopmentStatus::Embargoed
                );
                if !held || state.embargo_until.is_none() {
                    return Err(StoryError::DevelopmentState {
                        id: development,
                        status: if held {
                            "not embargoed"
                        } else {
                            state.status.as_str()
                        },
                        action: "moving an embargo",
                    });
                }
                embargo::check("until", until, at)?;
                if state.embargo_until == Some(until) {
                    return Ok(vec![]);
                }
                StoryEvent::EmbargoMoved { development, until }
            }
            StoryCommand::ReviseStory { headline, tags } => {
                // A story's own fields are what the front page shows and what subscribers
                // follow: revising them is an editor's decision, as closing the story is, on
                // every story (under review or not). A closed story is settled: reopen it first.
                Self::require_editor(by, "revise a story")?;
                if self.closed {
                    return Err(StoryError::StoryClosed);
                }
                let headline = headline
                    .filter(|h| self.headline.as_ref() != Some(h))
                    .map(|headline| StoryEvent::HeadlineChanged { headline });
                let tags = tags
                    .filter(|t| &self.tags != t)
                    .map(|tags| StoryEvent::TagsChanged { tags });
                return Ok(headline.into_iter().chain(tags).collect());
            }
            StoryCommand::CloseStory => {
                Self::require_editor(by, "close a story")?;
                if self.closed {
                    return Err(StoryError::StoryStatusUnchanged("closed"));
                }
                StoryEvent::StoryClosed {}
            }
            StoryCommand::ReopenStory => {
                Self::require_editor(by, "reopen a story")?;
                if !self.closed {
                    return Err(StoryError::StoryStatusUnchanged("open"));
                }
                StoryEvent::StoryReopened {}
            }
            StoryCommand::LinkStory { story, relation } => {
                Self::require_editor(by, "relate stories")?;
                self.decide_link(story, relation, &facts)?
            }
            StoryCommand::UnlinkStory { story } => {
                Self::require_editor(by, "relate stories")?;
                match self.relation_to(story) {
                    Some(relation) => StoryEvent::StoryUnlinked { story, relation },
                    None => return Err(StoryError::NotRelated(story)),
                }
            }
        };
        Ok(vec![event])
    }

    /// A relation to `other`: another story that exists, not related to this one yet from
    /// either side, and room for it among this story's relations. Closed stories may be related
    /// (a new story follows up a settled one).
    fn decide_link(
        &self,
        other: StoryId,
        relation: Relation,
        facts: &Facts,
    ) -> Result<StoryEvent, StoryError> {
        if Some(other) == self.id {
            return Err(FieldError::new("story", "a story cannot be related to itself").into());
        }
        let known = facts.other_story().filter(|o| o.id == other);
        if !known.is_some_and(|o| o.exists) {
            return Err(FieldError::new("story", format!("no story {other}")).into());
        }
        if let Some(existing) = self.relation_to(other) {
            return Err(StoryError::AlreadyRelated {
                story: other,
                relation: existing.as_str(),
            });
        }
        if let Some(existing) = known.and_then(|o| o.relation_to_this) {
            return Err(StoryError::AlreadyRelated {
                story: other,
                relation: existing.reverse_str(),
            });
        }
        if self.relations.len() >= limits::RELATIONS {
            return Err(FieldError::new(
                "story",
                format!(
                    "a story records at most {} relations; unlink one first",
                    limits::RELATIONS
                ),
            )
            .into());
        }
        Ok(StoryEvent::StoryLinked {
            story: other,
            relation,
        })
    }

    /// What a change names: at least one field, and a sane `occurred_at`.
    fn check_changes(changes: &DevelopmentChanges, at: DateTime<Utc>) -> Result<(), StoryError> {
        if changes.is_empty() {
            return Err(FieldError::new("changes", "name at least one field to change").into());
        }
        if let Some(occurred_at) = changes.occurred_at {
            Self::sane_moment("changes.occurred_at", occurred_at, at)?;
        }
        Ok(())
    }

    /// An edit of a filing: by the one who filed it or an editor, while it waits for review.
    /// `action` names it in a refusal to someone else than an editor or its filer.
    fn decide_edit(
        by: Role,
        at: DateTime<Utc>,
        facts: &Facts,
        (development, changes, note): (DevelopmentId, DevelopmentChanges, Option<Note>),
        action: &'static str,
    ) -> Result<Vec<StoryEvent>, StoryError> {
        let state = Self::existing(facts, development)?;
        if !facts.is_issuers(&development) {
            Self::require_editor(by, action)?;
        }
        // An embargoed development has not reached readers either: a change is an edit.
        if state.status != DevelopmentStatus::Embargoed {
            Self::expect_status(
                facts,
                development,
                DevelopmentStatus::PendingReview,
                "edit of the filing",
            )?;
        }
        Self::check_changes(&changes, at)?;
        Ok(vec![StoryEvent::FilingEdited {
            development,
            changes,
            note,
        }])
    }

    /// Refuses unless the development has not reached readers: waiting for review, or held
    /// under an embargo.
    fn expect_unpublished(
        facts: &Facts,
        id: DevelopmentId,
        action: &'static str,
    ) -> Result<(), StoryError> {
        let state = Self::existing(facts, id)?;
        if !matches!(
            state.status,
            DevelopmentStatus::PendingReview | DevelopmentStatus::Embargoed
        ) {
            return Err(StoryError::DevelopmentState {
                id,
                status: state.status.as_str(),
                action,
            });
        }
        Ok(())
    }

    fn expect_status(
        facts: &Facts,
        id: DevelopmentId,
        expected: DevelopmentStatus,
        action: &'static str,
    ) -> Result<(), StoryError> {
        let state = Self::existing(facts, id)?;
        if state.status != expected {
            return Err(StoryError::DevelopmentState {
                id,
                status: state.status.as_str(),
                action,
            });
        }
        Ok(())
    }
}

impl Aggregate for Story {
    const TYPE: &'static str = AGGREGATE_TYPE;
    type Command = Issued;
    type Event = StoryEvent;
    type Error = StoryError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        for event in self.decide(command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        self.version += 1;
        match event {
            StoryEvent::StoryOpened {
                id,
                slug,
                headline,
                tags,
                review_required,
                ..
            } => {
                self.id = Some(id);
                self.slug = Some(slug);
                self.headline = Some(headline);
                self.tags = tags;
                self.review_required = review_required;
            }
            // What happens to a development is kept by the log's index, not here.
            StoryEvent::DevelopmentRecorded { .. }
            | StoryEvent::DevelopmentApproved { .. }
            | StoryEvent::DevelopmentRejected { .. }
            | StoryEvent::DevelopmentRetracted { .. }
            | StoryEvent::DevelopmentCorrected { .. }
            | StoryEvent::DevelopmentApprovedUnderEmbargo { .. }
            | StoryEvent::ApprovalUndone { .. }
            | StoryEvent::EmbargoLifted { .. }
            | StoryEvent::EmbargoMoved { .. }
            | StoryEvent::FilingEdited { .. } => {}
            StoryEvent::HeadlineChanged { headline } => self.headline = Some(headline),
            StoryEvent::TagsChanged { tags } => self.tags = tags,
            StoryEvent::StoryClosed {} => self.closed = true,
            StoryEvent::StoryReopened {} => self.closed = false,
            StoryEvent::StoryLinked { story, relation } => {
                self.relations.retain(|(id, _)| *id != story);
                self.relations.push((story, relation));
            }
            StoryEvent::StoryUnlinked { story, .. } => {
                self.relations.retain(|(id, _)| *id != story)
            }
        }
    }
}
