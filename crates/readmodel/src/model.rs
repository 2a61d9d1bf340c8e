//! The reader's model of a story, and the one fold that builds it from the log.
//!
//! [`StoryView::apply`] is the only place an event changes a view. The incremental projector,
//! the full rebuild and the "as of" time travel all fold events through it, so they cannot
//! disagree. Everything a reader sees — the timeline, the claims ledger, the front-page line, the
//! actor entries — is derived from a `StoryView` by pure functions below.
//!
//! Beside its developments a view keeps what it derives from them ([`Derived`], not stored, rebuilt
//! on load: an index by id, the published ones' count and windows of their newest times), so
//! applying an event and the front-page line cost what the event changes. The projector and the
//! rebuild keep *partial* views ([`StoryView::partial`], [`StoryView::stored`]) that hold only some
//! developments. The derivations: [`StoryView::timeline`] (published and retracted developments in
//! `occurred_at` order), [`StoryView::claims`] (the claims ledger: each claim shows its `accused`
//! apart from the others it names and from its source, the claimant), a page of the ledger
//! ([`ClaimsAsk`], [`ledger_rows`]: the newest claims by recording, each with its newest
//! [`RESPONSES_SHOWN`] responses and, if those lack one, each side's newest published response, so
//! that the claim's status is that of all its responses), [`StoryView::front_page_entry`] and
//! [`StoryView::actor_entries`]. What readers page through is a [`StoryPage`] (one page of the
//! timeline, one page of the ledger, the cursors of the older ones, and the related stories as
//! seen from this one: [`RelatedStory`], [`SeenRelation`]); since related stories change
//! without this story's position changing, an answer's `ETag` names them too ([`relations_tag`]).
//!
//! What readers never see is decided here: a development pending review, rejected or under an
//! embargo (`DevelopmentStanding::Embargoed`) is neither published nor retracted, so every read
//! that filters on those states leaves it out by construction; `EmbargoLifted { published: true }`
//! publishes it (`published_at` is the lift's moment), and `ApprovalUndone` puts it back to waiting
//! for review. Edits of a filing before publication (`DevelopmentView::edits`) are kept apart from
//! corrections, for the desk's history only. [`public_development`] strips what is the desk's
//! alone: who filed and approved it, those edits, the embargo's moment and steps, the undo window.

use chrono::{DateTime, Utc};
use newsroom_domain::{
    Actor, DevelopmentChanges, DevelopmentKind, Evidence, PublicationStatus, Relation, Source,
    Stance, StoryEvent, Urgency,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One event of the log, decoded: what the fold consumes.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedEvent {
    pub position: i64,
    pub story_id: Uuid,
    pub sequence: i64,
    pub recorded_at: DateTime<Utc>,
    pub author: Option<String>,
    pub event: StoryEvent,
}

/// Whether a story takes new developments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StoryStatus {
    Open,
    Closed,
}

/// Where a development stands for readers. (The API document keeps its first name,
/// `DevelopmentState`, which clients generated from it know.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = DevelopmentState)]
pub enum DevelopmentStanding {
    /// Waiting for an editor; invisible to readers.
    PendingReview,
    Published,
    /// Refused by an editor before publication; invisible to readers.
    Rejected,
    /// Withdrawn after publication; shown struck through with the reason.
    Retracted,
    /// Held from readers until its embargo is lifted (an event, never a clock read here);
    /// seen at the desk only.
    Embargoed,
}

/// One field an editor's correction changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FieldChange {
    pub field: String,
    pub before: serde_json::Value,
    pub after: serde_json::Value,
}

/// A correction, shown inline under the development it corrects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CorrectionView {
    /// The editor's note, exactly as written.
    pub note: String,
    pub changes: Vec<FieldChange>,
    pub corrected_at: DateTime<Utc>,
    pub position: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

/// Why and when a development was retracted or rejected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Verdict {
    pub reason: String,
    pub at: DateTime<Utc>,
    pub position: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

/// One step of a development's embargo, for the desk's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EmbargoStep {
    pub step: EmbargoStepKind,
    pub at: DateTime<Utc>,
    pub position: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

/// What happened to an embargo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum EmbargoStepKind {
    /// Filed under an embargo until `until`.
    Filed { until: DateTime<Utc> },
    /// Approved while the embargo held: held until `until`.
    ApprovedUnder { until: DateTime<Utc> },
    /// Moved to `until`.
    Moved { until: DateTime<Utc> },
    /// Lifted; `published`: it reached readers by it.
    Lifted { published: bool },
    /// Its approval was undone in its undo window: waiting for review again.
    ApprovalUndone,
}

/// A link from a response to the development it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ResponseLink {
    pub development: Uuid,
    pub stance: Stance,
}

/// A development as readers (and editors) see it now: current values, with its history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DevelopmentView {
    pub id: Uuid,
    pub kind: DevelopmentKind,
    pub headline: String,
    pub body: String,
    pub occurred_at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
    pub actors: Vec<Actor>,
    /// Whom a claim of attribution blames (each among `actors`); empty for other kinds and for
    /// claims filed before the accused were asked for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub accused: Vec<Actor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    pub evidence: Evidence,
    pub urgency: Urgency,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub responds_to: Option<ResponseLink>,
    pub state: DevelopmentStanding,
    /// Position of the event that recorded it.
    pub position: i64,
    /// When readers first saw it (recording without review, or approval).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published_at: Option<DateTime<Utc>>,
    /// Position of the event that published it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published_position: Option<i64>,
    /// Position of the latest event that changed it.
    pub updated_position: i64,
    /// When it last changed (recorded, approved, corrected or retracted).
    pub updated_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filed_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_by: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub corrections: Vec<CorrectionView>,
    /// Edits of the filing made while it waited for review (`FilingEdited`): the desk's
    /// history only, never readers' (their `note` is empty when none was given).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub edits: Vec<CorrectionView>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retraction: Option<Verdict>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejection: Option<Verdict>,
    /// The embargo that holds it back (embargoed, or waiting for review under one): the
    /// desk's only, cleared once it is lifted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embargo_until: Option<DateTime<Utc>>,
    /// Its embargo's steps (the desk's history only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub embargo_steps: Vec<EmbargoStep>,
    /// The embargo is an undo window (of its filing, or of its approval), ending at
    /// `embargo_until`: the desk's only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub undo_window: bool,
}

impl DevelopmentView {
    /// The corrections readers are told about: those made after publication. An edit to a
    /// development still under review changes what readers will first see, and is not a
    /// correction to them (the desk still sees every edit in `corrections`).
    pub fn reader_corrections(&self) -> impl Iterator<Item = &CorrectionView> {
        let published = self.published_position;
        self.corrections
            .iter()
            .filter(move |c| published.is_some_and(|p| c.position > p))
    }

    /// Whether it belongs in the claims ledger: a claim of attribution, or a response.
    pub fn in_ledger(&self) -> bool {
        self.kind == DevelopmentKind::AttributionClaimed || self.responds_to.is_some()
    }

    /// Whether it is a claim of attribution: a claim of the ledger.
    pub fn is_claim(&self) -> bool {
        self.kind == DevelopmentKind::AttributionClaimed
    }

    /// The side a response takes on what it answers, as the claims ledger counts it.
    pub fn side(&self) -> Option<Side> {
        self.responds_to.map(|l| match l.stance {
            Stance::Supports => Side::Supports,
            Stance::Disputes | Stance::Denies => Side::Against,
        })
    }

    /// About how many bytes it takes in memory: its fields and the text they point at.
    pub fn approximate_size(&self) -> usize {
        let verdict = |v: &Option<Verdict>| v.as_ref().map_or(0, |v| v.reason.len() + 64);
        std::mem::size_of::<Self>()
            + self.headline.len()
            + self.body.len()
            + self
                .actors
                .iter()
                .map(|a| 2 * a.name().len() + 48)
                .sum::<usize>()
            + self.source.as_ref().map_or(0, |s| {
                s.name.as_str().len() + s.url.as_ref().map_or(0, |u| u.as_str().len()) + 48
            })
            + self.filed_by.as_ref().map_or(0, String::len)
            + self.approved_by.as_ref().map_or(0, String::len)
            + self
                .corrections
                .iter()
                .map(|c| {
                    c.note.len()
                        + 96
                        + c.changes
                            .iter()
                            .map(|f| f.field.len() + 2 * f.before.to_string().len() + 64)
                            .sum::<usize>()
                })
                .sum::<usize>()
            + verdict(&self.retraction)
            + verdict(&self.rejection)
    }

    /// Whether readers see it: published, or retracted (shown struck, never dropped).
    pub fn is_visible(&self) -> bool {
        matches!(
            self.state,
            DevelopmentStanding::Published | DevelopmentStanding::Retracted
        )
    }
}

/// The whole reader state of one story.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoryView {
    pub id: Uuid,
    pub slug: String,
    pub headline: String,
    pub summary: String,
    pub tags: Vec<String>,
    pub status: StoryStatus,
    pub review_required: bool,
    pub opened_at: DateTime<Utc>,
    /// Recorded time of the latest event applied.
    pub updated_at: DateTime<Utc>,
    /// Position of the latest event applied.
    pub position: i64,
    /// Every development ever recorded, in recording order (pending and rejected ones too;
    /// the reader outputs filter them out).
    pub developments: Vec<DevelopmentView>,
    /// Derived from `developments` and kept beside them, so that applying an event and the
    /// front-page line cost what the event changes, not what the story holds.
    #[serde(skip)]
    pub derived: Derived,
}

/// What a `StoryView` derives from its developments: where each sits, and the published ones'
/// count and newest times. Not stored (rebuilt by [`StoryView::reindex`]); equal for any two
/// views with equal developments, so it takes no part in comparing views.
#[derive(Debug, Clone, Default)]
pub struct Derived {
    index: std::collections::HashMap<Uuid, usize>,
    /// `occurred_at` and `published_at` of the published developments.
    occurred: Window,
    published: Window,
    published_count: usize,
    /// `occurred_at` of the developments readers see (published or retracted).
    visible: Window,
    /// Set in a view that holds only some of its developments: `index` then covers the
    /// developments held, the count above all of them, and the windows the newest times.
    partial: Option<Partial>,
}

/// How a partial view knows the developments it does not hold.
#[derive(Debug, Clone)]
pub enum Partial {
    /// By the id and position of every development, held or not (a rebuild's views, see
    /// [`StoryView::partial`]).
    Known(std::collections::HashMap<Uuid, i64>),
    /// Not at all: they are in the views' rows, where the projector looks each up by id before
    /// an event changes it (see [`StoryView::stored`]).
    Stored,
}

/// Times with how many developments share each: all of them, or only the newest (those after
/// `floor`) when the view was read from the views' rows. What is not held is never the newest,
/// so the newest time stays exact while the window holds one.
#[derive(Debug, Clone, Default)]
pub struct Window {
    times: std::collections::BTreeMap<DateTime<Utc>, u32>,
    /// How many times are held, with repeats.
    held: usize,
    /// Set when times at or before it may be left out.
    floor: Option<DateTime<Utc>>,
}

impl Window {
    /// The newest `times` of a set read from the rows (`complete` when they are all of it),
    /// every time left out at or before `floor`.
    pub fn newest(
        times: impl IntoIterator<Item = DateTime<Utc>>,
        floor: Option<DateTime<Utc>>,
    ) -> Self {
        let mut window = Self::default();
        for t in times {
            if floor.is_none_or(|f| t > f) {
                window.add(t);
            }
        }
        window.floor = floor;
        window
    }

    fn add(&mut self, at: DateTime<Utc>) {
        if self.floor.is_some_and(|f| at <= f) {
            return;
        }
        *self.times.entry(at).or_default() += 1;
        self.held += 1;
    }

    fn remove(&mut self, at: DateTime<Utc>) {
        if self.floor.is_some_and(|f| at <= f) {
            return;
        }
        if let Some(n) = self.times.get_mut(&at) {
            *n -= 1;
            self.held -= 1;
            if *n == 0 {
                self.times.remove(&at);
            }
        }
    }

    fn newest_time(&self) -> Option<DateTime<Utc>> {
        self.times.last_key_value().map(|(t, _)| *t)
    }

    /// Leaves out the oldest times while more than `keep` are held, never the newest time:
    /// the floor rises to the newest time left out.
    fn keep_newest(&mut self, keep: usize) {
        while self.held > keep && self.times.len() > 1 {
            let Some((at, n)) = self.times.pop_first() else {
                break;
            };
            self.held -= n as usize;
            self.floor = Some(self.floor.map_or(at, |f| f.max(at)));
        }
    }

    /// Whether `removals` times taken out could leave it without its newest time known.
    pub fn too_short_for(&self, removals: usize) -> bool {
        self.floor.is_some() && self.held <= removals
    }
}

impl PartialEq for Derived {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Derived {
    fn count(window: &mut Window, at: DateTime<Utc>, add: bool) {
        if add {
            window.add(at);
        } else {
            window.remove(at);
        }
    }

    /// Counts `d` in (`add`) or out of the published summary, if it is published.
    fn tally(&mut self, d: &DevelopmentView, add: bool) {
        if d.is_visible() {
            Self::count(&mut self.visible, d.occurred_at, add);
        }
        if d.state != DevelopmentStanding::Published {
            return;
        }
        Self::count(&mut self.occurred, d.occurred_at, add);
        if let Some(at) = d.published_at {
            Self::count(&mut self.published, at, add);
        }
        if add {
            self.published_count += 1;
        } else {
            self.published_count -= 1;
        }
    }
}

/// The side a response takes on a claim: what settles the claim's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Supports,
    /// Disputes or denies.
    Against,
}

impl Side {
    pub const BOTH: [Side; 2] = [Side::Supports, Side::Against];

    /// Its name in the views' `stance` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Supports => "supports",
            Side::Against => "against",
        }
    }
}

/// A claim and the published responses that point at it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ClaimEntry {
    pub claim: DevelopmentView,
    pub status: ClaimStatus,
    pub responses: Vec<DevelopmentView>,
}

/// Where a claim stands, from the responses to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClaimStatus {
    /// No responses yet.
    Unverified,
    /// Only supporting responses.
    Supported,
    /// Only denials or disputes.
    Denied,
    /// Both.
    Contested,
    /// The claim itself was retracted.
    Retracted,
}

/// A story's line on the front page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FrontPageEntry {
    pub id: Uuid,
    pub slug: String,
    pub headline: String,
    pub tags: Vec<String>,
    pub status: StoryStatus,
    /// Published developments (retracted ones not counted).
    pub development_count: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_occurred_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_recorded_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    pub position: i64,
    /// The newest published development (by when it was published), read with the front page
    /// from the story's developments; absent from a front page as it stood at an earlier time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest: Option<LatestDevelopment>,
}

/// What the front page shows of a story's newest published development.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LatestDevelopment {
    pub id: Uuid,
    pub headline: String,
    pub kind: DevelopmentKind,
    pub occurred_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published_at: Option<DateTime<Utc>>,
}

impl From<DevelopmentView> for LatestDevelopment {
    fn from(d: DevelopmentView) -> Self {
        Self {
            id: d.id,
            headline: d.headline,
            kind: d.kind,
            occurred_at: d.occurred_at,
            published_at: d.published_at,
        }
    }
}

/// A development on an actor's page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ActorEntry {
    pub actor: Actor,
    pub story_id: Uuid,
    pub story_slug: String,
    pub story_headline: String,
    pub development: DevelopmentView,
}

fn json<T: Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

impl StoryView {
    /// Starts a view from a `StoryOpened` event; `None` for any other event.
    pub fn open(logged: &LoggedEvent) -> Option<Self> {
        let StoryEvent::StoryOpened {
            slug,
            headline,
            summary,
            tags,
            review_required,
            ..
        } = &logged.event
        else {
            return None;
        };
        Some(Self {
            id: logged.story_id,
            slug: slug.to_string(),
            headline: headline.to_string(),
            summary: summary.as_str().to_owned(),
            tags: tags.iter().map(|t| t.as_str().to_owned()).collect(),
            status: StoryStatus::Open,
            review_required: *review_required,
            opened_at: logged.recorded_at,
            updated_at: logged.recorded_at,
            position: logged.position,
            developments: Vec::new(),
            derived: Derived::default(),
        })
    }

    /// The story's own fields, without developments.
    pub fn clone_head(&self) -> Self {
        Self {
            id: self.id,
            slug: self.slug.clone(),
            headline: self.headline.clone(),
            summary: self.summary.clone(),
            tags: self.tags.clone(),
            status: self.status,
            review_required: self.review_required,
            opened_at: self.opened_at,
            updated_at: self.updated_at,
            position: self.position,
            developments: Vec::new(),
            derived: Derived::default(),
        }
    }

    /// Rebuilds what is derived from `developments` (after they were set wholesale).
    pub fn reindex(&mut self) {
        let mut derived = Derived::default();
        for (i, d) in self.developments.iter().enumerate() {
            derived.index.insert(d.id, i);
            derived.tally(d, true);
        }
        self.derived = derived;
    }

    /// Whether `derived` describes `developments` (a view deserialised or built by hand has
    /// none, and is then read the slow way). A partial view's always does.
    fn indexed(&self) -> bool {
        self.derived.partial.is_some() || self.derived.index.len() == self.developments.len()
    }

    /// Makes this view one that holds only some of its developments in memory: a rebuild's, whose
    /// memory must not grow with the log. Its front-page line, `occurred_until` and its version
    /// rows stay exact (their counts and times cover every development); an event changing a
    /// development must find it held ([`StoryView::hold`] it first, see
    /// [`StoryView::absent_target`]). The reader outputs (`timeline`, `claims`, `actor_entries`)
    /// see only the developments held.
    pub fn partial(mut self) -> Self {
        if !self.indexed() {
            self.reindex();
        }
        let all = self
            .developments
            .iter()
            .map(|d| (d.id, d.position))
            .collect();
        self.derived.partial = Some(Partial::Known(all));
        self
    }

    /// The projector's view of a story between batches: its own fields, the count of its
    /// published developments and the windows of their newest times, without developments. Before
    /// an event changes (or records again) a development, the projector reads it from the rows
    /// and [holds](StoryView::hold) it; the windows must be long enough for the events to come
    /// ([`StoryView::windows_too_short_for`]).
    pub fn stored(
        mut self,
        published_count: usize,
        occurred: Window,
        published: Window,
        visible: Window,
    ) -> Self {
        self.developments.clear();
        self.derived = Derived {
            index: Default::default(),
            occurred,
            published,
            published_count,
            visible,
            partial: Some(Partial::Stored),
        };
        self
    }

    /// This view without its developments, as the projector keeps it between batches, each
    /// window cut to about its `keep` newest times: what the projector holds of a story stays
    /// the same size however long the story grows.
    pub fn let_go_all(mut self, keep: usize) -> Self {
        if !self.indexed() {
            self.reindex();
        }
        self.developments = Vec::new();
        let d = &mut self.derived;
        d.index = Default::default();
        d.partial = Some(Partial::Stored);
        for window in [&mut d.occurred, &mut d.published, &mut d.visible] {
            window.keep_newest(keep);
        }
        self
    }

    /// Whether `removals` developments leaving the published or visible ones could leave a window
    /// of this view without its newest time: it must then be read again, longer.
    pub fn windows_too_short_for(&self, removals: usize) -> bool {
        let d = &self.derived;
        d.occurred.too_short_for(removals)
            || d.published.too_short_for(removals)
            || d.visible.too_short_for(removals)
    }

    /// In a view whose developments are in the rows ([`StoryView::stored`]), the development
    /// `logged` changes or records, when the view does not hold it: the projector looks it up.
    pub fn unheld_target(&self, logged: &LoggedEvent) -> Option<Uuid> {
        if !matches!(self.derived.partial, Some(Partial::Stored)) {
            return None;
        }
        let id = logged.event.development_id()?.as_uuid();
        (!self.derived.index.contains_key(&id)).then_some(id)
    }

    /// In a partial view, the position of the development `logged` changes, when the view does
    /// not hold it: it must be [`held`](StoryView::hold) before the event is applied.
    pub fn absent_target(&self, logged: &LoggedEvent) -> Option<i64> {
        // (A development recorded again under its id is one too: folding it changes nothing,
        // but what it supersedes is read from the development.)
        let id = logged.event.development_id()?.as_uuid();
        let Some(Partial::Known(all)) = &self.derived.partial else {
            return None;
        };
        match self.derived.index.contains_key(&id) {
            true => None,
            false => all.get(&id).copied(),
        }
    }

    /// Holds again a development of this partial view that was [`let go`](StoryView::let_go)
    /// (as read back from where it was written). Ignored if it is not one of the story's or is
    /// held already.
    pub fn hold(&mut self, d: DevelopmentView) {
        let known = match &self.derived.partial {
            Some(Partial::Known(all)) => all.get(&d.id) == Some(&d.position),
            Some(Partial::Stored) => true,
            None => false,
        };
        if !known || self.derived.index.contains_key(&d.id) {
            return;
        }
        self.derived.index.insert(d.id, self.developments.len());
        self.developments.push(d);
    }

    /// Lets go of a development of this partial view, keeping it counted: its row holds it now.
    pub fn let_go(&mut self, id: Uuid) -> Option<DevelopmentView> {
        self.derived.partial.as_ref()?;
        let i = self.derived.index.remove(&id)?;
        let d = self.developments.swap_remove(i);
        if let Some(moved) = self.developments.get(i) {
            self.derived.index.insert(moved.id, i);
        }
        // What a story held at its busiest is given back once it holds a quarter of that: a
        // rebuild moves what it holds from story to story, and capacity kept by each story
        // would add up to far more than the budget of what is held.
        let held = self.developments.len();
        if self.developments.capacity() > 4 * held.max(8) {
            self.developments.shrink_to(2 * held);
            self.derived.index.shrink_to(2 * held);
        }
        Some(d)
    }

    /// Folds a stream of one story's events into its view.
    pub fn fold<'a>(events: impl IntoIterator<Item = &'a LoggedEvent>) -> Option<Self> {
        let mut view: Option<StoryView> = None;
        for event in events {
            match &mut view {
                None => view = StoryView::open(event),
                Some(v) => v.apply(event),
            }
        }
        view
    }

    /// Changes one development, keeping what is derived from it in step.
    fn change_development(&mut self, id: Uuid, change: impl FnOnce(&mut DevelopmentView)) {
        if !self.indexed() {
            self.reindex();
        }
        let Some(&i) = self.derived.index.get(&id) else {
            return;
        };
        let d = &mut self.developments[i];
        self.derived.tally(d, false);
        change(d);
        self.derived.tally(d, true);
    }

    pub fn development(&self, id: Uuid) -> Option<&DevelopmentView> {
        if self.indexed() {
            return self
                .derived
                .index
                .get(&id)
                .and_then(|&i| self.developments.get(i));
        }
        self.developments.iter().find(|d| d.id == id)
    }

    /// Applies one event. Events at or before the view's position are ignored, so replaying or
    /// redelivering can never apply an event twice.
    pub fn apply(&mut self, logged: &LoggedEvent) {
        if logged.position <= self.position {
            return;
        }
        self.position = logged.position;
        self.updated_at = logged.recorded_at;
        let at = logged.recorded_at;
        let by = logged.author.clone();
        match &logged.event {
            StoryEvent::StoryOpened { .. } => {}
            StoryEvent::DevelopmentRecorded {
                development: d,
                status,
                embargo_until,
                hold,
                ..
            } => {
                let published = *status == PublicationStatus::Published;
                if !self.indexed() {
                    self.reindex();
                }
                let seen = match &self.derived.partial {
                    Some(Partial::Known(all)) => all.contains_key(&d.id.as_uuid()),
                    // (The projector holds a stored development recorded again before this.)
                    Some(Partial::Stored) | None => {
                        self.derived.index.contains_key(&d.id.as_uuid())
                    }
                };
                if seen {
                    // The aggregate never records one id twice; a log that did keeps the first.
                    return;
                }
                if let Some(Partial::Known(all)) = &mut self.derived.partial {
                    all.insert(d.id.as_uuid(), logged.position);
                }
                self.developments.push(DevelopmentView {
                    id: d.id.as_uuid(),
                    kind: d.kind,
                    headline: d.headline.to_string(),
                    body: d.body.as_str().to_owned(),
                    occurred_at: d.occurred_at,
                    recorded_at: d.recorded_at,
                    actors: d.actors.clone(),
                    accused: d.accused.clone(),
                    source: d.source.clone(),
                    evidence: d.evidence,
                    urgency: d.urgency,
                    responds_to: d.responds_to.map(|r| ResponseLink {
                        development: r.development.as_uuid(),
                        stance: r.stance,
                    }),
                    state: match status {
                        PublicationStatus::Published => DevelopmentStanding::Published,
                        PublicationStatus::PendingReview => DevelopmentStanding::PendingReview,
                        PublicationStatus::Embargoed => DevelopmentStanding::Embargoed,
                    },
                    position: logged.position,
                    published_at: published.then_some(at),
                    published_position: published.then_some(logged.position),
                    updated_position: logged.position,
                    updated_at: at,
                    filed_by: by,
                    approved_by: None,
                    corrections: vec![],
                    edits: vec![],
                    retraction: None,
                    rejection: None,
                    embargo_until: *embargo_until,
                    embargo_steps: embargo_until
                        .map(|until| EmbargoStep {
                            step: EmbargoStepKind::Filed { until },
                            at,
                            position: logged.position,
                            by: logged.author.clone(),
                        })
                        .into_iter()
                        .collect(),
                    undo_window: hold.is_some(),
                });
                let i = self.developments.len() - 1;
                self.derived.index.insert(d.id.as_uuid(), i);
                self.derived.tally(&self.developments[i], true);
            }
            StoryEvent::DevelopmentApproved { development } => {
                let position = logged.position;
                self.change_development(development.as_uuid(), |d| {
                    d.state = DevelopmentStanding::Published;
                    d.published_at = Some(at);
                    d.published_position = Some(position);
                    d.approved_by = by;
                    d.updated_position = position;
                    d.updated_at = at;
                });
            }
            StoryEvent::DevelopmentApprovedUnderEmbargo {
                development,
                until,
                hold,
            } => {
                let position = logged.position;
                self.change_development(development.as_uuid(), |d| {
                    d.state = DevelopmentStanding::Embargoed;
                    d.embargo_until = Some(*until);
                    d.undo_window = hold.is_some();
                    d.embargo_steps.push(EmbargoStep {
                        step: EmbargoStepKind::ApprovedUnder { until: *until },
                        at,
                        position,
                        by: by.clone(),
                    });
                    d.approved_by = by;
                    d.updated_position = position;
                    d.updated_at = at;
                });
            }
            StoryEvent::EmbargoLifted {
                development,
                published,
            } => {
                let position = logged.position;
                self.change_development(development.as_uuid(), |d| {
                    d.embargo_until = None;
                    d.undo_window = false;
                    d.embargo_steps.push(EmbargoStep {
                        step: EmbargoStepKind::Lifted {
                            published: *published,
                        },
                        at,
                        position,
                        by,
                    });
                    if *published && d.state == DevelopmentStanding::Embargoed {
                        d.state = DevelopmentStanding::Published;
                        d.published_at = Some(at);
                        d.published_position = Some(position);
                    }
                    d.updated_position = position;
                    d.updated_at = at;
                });
            }
            StoryEvent::EmbargoMoved { development, until } => {
                let position = logged.position;
                self.change_development(development.as_uuid(), |d| {
                    d.embargo_until = Some(*until);
                    d.undo_window = false;
                    d.embargo_steps.push(EmbargoStep {
                        step: EmbargoStepKind::Moved { until: *until },
                        at,
                        position,
                        by,
                    });
                    d.updated_position = position;
                    d.updated_at = at;
                });
            }
            StoryEvent::ApprovalUndone { development } => {
                let position = logged.position;
                self.change_development(development.as_uuid(), |d| {
                    d.state = DevelopmentStanding::PendingReview;
                    d.approved_by = None;
                    d.embargo_until = None;
                    d.undo_window = false;
                    d.embargo_steps.push(EmbargoStep {
                        step: EmbargoStepKind::ApprovalUndone,
                        at,
                        position,
                        by,
                    });
                    d.updated_position = position;
                    d.updated_at = at;
                });
            }
            StoryEvent::DevelopmentRejected {
                development,
                reason,
            } => {
                let position = logged.position;
                self.change_development(development.as_uuid(), |d| {
                    d.state = DevelopmentStanding::Rejected;
                    d.rejection = Some(Verdict {
                        reason: reason.to_string(),
                        at,
                        position,
                        by,
                    });
                    d.updated_position = position;
                    d.updated_at = at;
                });
            }
            StoryEvent::DevelopmentRetracted {
                development,
                reason,
            } => {
                let position = logged.position;
                self.change_development(development.as_uuid(), |d| {
                    d.state = DevelopmentStanding::Retracted;
                    d.retraction = Some(Verdict {
                        reason: reason.to_string(),
                        at,
                        position,
                        by,
                    });
                    d.updated_position = position;
                    d.updated_at = at;
                });
            }
            StoryEvent::DevelopmentCorrected {
                development,
                note,
                changes,
            } => {
                let position = logged.position;
                self.change_development(development.as_uuid(), |d| {
                    let changes = apply_changes(d, changes);
                    d.corrections.push(CorrectionView {
                        note: note.to_string(),
                        changes,
                        corrected_at: at,
                        position,
                        by,
                    });
                    d.updated_position = position;
                    d.updated_at = at;
                });
            }
            StoryEvent::FilingEdited {
                development,
                changes,
                note,
            } => {
                let position = logged.position;
                self.change_development(development.as_uuid(), |d| {
                    let changes = apply_changes(d, changes);
                    d.edits.push(CorrectionView {
                        note: note.as_ref().map(|n| n.to_string()).unwrap_or_default(),
                        changes,
                        corrected_at: at,
                        position,
                        by,
                    });
                    d.updated_position = position;
                    d.updated_at = at;
                });
            }
            StoryEvent::HeadlineChanged { headline } => self.headline = headline.to_string(),
            StoryEvent::TagsChanged { tags } => {
                self.tags = tags.iter().map(|t| t.as_str().to_owned()).collect()
            }
            StoryEvent::StoryClosed {} => self.status = StoryStatus::Closed,
            StoryEvent::StoryReopened {} => self.status = StoryStatus::Open,
            // Relations are rows of their own (`relations`), shown on both stories: the story's
            // own fields do not change.
            StoryEvent::StoryLinked { .. } | StoryEvent::StoryUnlinked { .. } => {}
        }
    }

    /// What readers see, in `occurred_at` order (ties by position). Retracted developments stay,
    /// marked; pending and rejected ones are left out.
    pub fn timeline(&self) -> Vec<&DevelopmentView> {
        let mut visible: Vec<&DevelopmentView> = self
            .developments
            .iter()
            .filter(|d| d.is_visible())
            .collect();
        visible.sort_by_key(|d| (d.occurred_at, d.position));
        visible
    }

    /// Every visible claim of attribution with the published responses pointing at it.
    pub fn claims(&self) -> Vec<ClaimEntry> {
        let timeline = self.timeline();
        // Responses by the development they answer, in timeline order: one pass, not one per claim.
        let mut answers: std::collections::HashMap<Uuid, Vec<&DevelopmentView>> =
            std::collections::HashMap::new();
        for d in &timeline {
            if let Some(link) = d.responds_to {
                answers.entry(link.development).or_default().push(d);
            }
        }
        timeline
            .iter()
            .filter(|d| d.kind == DevelopmentKind::AttributionClaimed)
            .map(|claim| {
                let responses: Vec<DevelopmentView> = answers
                    .get(&claim.id)
                    .into_iter()
                    .flatten()
                    .map(|r| (*r).clone())
                    .collect();
                let counted = responses
                    .iter()
                    .filter(|r| r.state == DevelopmentStanding::Published);
                let (mut supports, mut against) = (false, false);
                for r in counted {
                    match r.responds_to.map(|l| l.stance) {
                        Some(Stance::Supports) => supports = true,
                        Some(Stance::Disputes | Stance::Denies) => against = true,
                        None => {}
                    }
                }
                let status = if claim.state == DevelopmentStanding::Retracted {
                    ClaimStatus::Retracted
                } else {
                    match (supports, against) {
                        (false, false) => ClaimStatus::Unverified,
                        (true, false) => ClaimStatus::Supported,
                        (false, true) => ClaimStatus::Denied,
                        (true, true) => ClaimStatus::Contested,
                    }
                };
                ClaimEntry {
                    claim: (*claim).clone(),
                    status,
                    responses,
                }
            })
            .collect()
    }

    /// The latest `occurred_at` of the developments readers see: no page of the timeline as it
    /// stands now reaches past it.
    pub fn occurred_until(&self) -> Option<DateTime<Utc>> {
        if self.indexed() {
            return self.derived.visible.newest_time();
        }
        self.developments
            .iter()
            .filter(|d| d.is_visible())
            .map(|d| d.occurred_at)
            .max()
    }

    /// The story's line on the front page.
    pub fn front_page_entry(&self) -> FrontPageEntry {
        let (count, last_occurred, last_recorded) = if self.indexed() {
            let d = &self.derived;
            (
                d.published_count,
                d.occurred.newest_time(),
                d.published.newest_time(),
            )
        } else {
            let published = self
                .developments
                .iter()
                .filter(|d| d.state == DevelopmentStanding::Published);
            let (mut count, mut last_occurred, mut last_recorded) = (0, None, None);
            for d in published {
                count += 1;
                last_occurred = last_occurred.max(Some(d.occurred_at));
                last_recorded = last_recorded.max(d.published_at);
            }
            (count, last_occurred, last_recorded)
        };
        FrontPageEntry {
            id: self.id,
            slug: self.slug.clone(),
            headline: self.headline.clone(),
            tags: self.tags.clone(),
            status: self.status,
            development_count: count,
            last_occurred_at: last_occurred,
            last_recorded_at: last_recorded,
            updated_at: self.updated_at,
            position: self.position,
            latest: None,
        }
    }

    /// One entry per (actor, visible development) of this story.
    pub fn actor_entries(&self) -> Vec<ActorEntry> {
        self.timeline()
            .into_iter()
            .flat_map(|d| {
                d.actors.iter().map(move |actor| ActorEntry {
                    actor: actor.clone(),
                    story_id: self.id,
                    story_slug: self.slug.clone(),
                    story_headline: self.headline.clone(),
                    development: d.clone(),
                })
            })
            .collect()
    }
}

/// Developments on one page of a story's timeline unless the reader asks for another number.
pub const PAGE_DEFAULT: usize = 100;
/// The most developments one page may hold.
pub const PAGE_MAX: usize = 1_000;

/// Claims one page of a story's claims ledger holds unless asked otherwise, and at most.
pub const CLAIMS_DEFAULT: usize = 20;
pub const CLAIMS_MAX: usize = 100;

/// Responses a page of the ledger shows with each claim: the newest recorded. Besides them it
/// holds each side's newest published response, which settle the claim's status.
pub const RESPONSES_SHOWN: usize = 10;

/// Which page of a story's claims ledger to read: the newest `limit` claims (by recording)
/// recorded before the claim at position `before`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimsAsk {
    pub before: Option<i64>,
    pub limit: usize,
}

impl Default for ClaimsAsk {
    fn default() -> Self {
        Self {
            before: None,
            limit: CLAIMS_DEFAULT,
        }
    }
}

impl ClaimsAsk {
    /// The bound on positions a page's claims lie below.
    pub fn bound(&self) -> i64 {
        self.before.unwrap_or(i64::MAX)
    }

    /// The page from up to `limit + 1` visible claims, newest recorded first: the first `limit`,
    /// and the cursor of the next page (the oldest claim kept) when one more was found.
    pub fn cut(&self, mut claims: Vec<DevelopmentView>) -> (Vec<DevelopmentView>, Option<i64>) {
        let older = (claims.len() > self.limit).then(|| {
            claims.truncate(self.limit);
            claims.last().map_or(0, |c| c.position)
        });
        (claims, older)
    }
}

/// The sides whose newest published response a claim's shown responses (`shown`, visible
/// responses) lack: each must be looked for among its older responses.
pub fn sides_to_settle(shown: &[DevelopmentView]) -> Vec<Side> {
    Side::BOTH
        .into_iter()
        .filter(|side| {
            !shown
                .iter()
                .any(|r| r.state == DevelopmentStanding::Published && r.side() == Some(*side))
        })
        .collect()
}

/// Rows in recording order, each once (a claim that answers another may be chosen twice).
pub fn in_recording_order(mut rows: Vec<DevelopmentView>) -> Vec<DevelopmentView> {
    rows.sort_by_key(|d| d.position);
    rows.dedup_by_key(|d| d.position);
    rows
}

/// The rows of one page of the claims ledger (see [`ClaimsAsk`], [`RESPONSES_SHOWN`]) chosen
/// from a story's visible developments held in memory, and the cursor of the next page: what
/// the views' indexed reads choose.
pub fn ledger_rows(
    visible: &[&DevelopmentView],
    ask: ClaimsAsk,
) -> (Vec<DevelopmentView>, Option<i64>) {
    fn newest_first(mut v: Vec<&DevelopmentView>) -> Vec<&DevelopmentView> {
        v.sort_by_key(|d| std::cmp::Reverse(d.position));
        v
    }
    let claims = newest_first(
        visible
            .iter()
            .copied()
            .filter(|d| d.is_claim() && d.position < ask.bound())
            .collect(),
    );
    let (claims, older) = ask.cut(claims.into_iter().take(ask.limit + 1).cloned().collect());
    let mut rows = Vec::new();
    for claim in claims {
        let responses = newest_first(
            visible
                .iter()
                .copied()
                .filter(|d| d.responds_to.is_some_and(|l| l.development == claim.id))
                .collect(),
        );
        let shown: Vec<DevelopmentView> = responses
            .iter()
            .take(RESPONSES_SHOWN)
            .map(|r| (*r).clone())
            .collect();
        for side in sides_to_settle(&shown) {
            rows.extend(
                responses
                    .iter()
                    .find(|r| r.state == DevelopmentStanding::Published && r.side() == Some(side))
                    .map(|r| (*r).clone()),
            );
        }
        rows.push(claim);
        rows.extend(shown);
    }
    (rows, older)
}

/// A story as readers page through it: its own fields, one page of its timeline (the newest
/// developments in the order they happened, or those before a cursor), and its claims ledger.
/// What it holds is bounded by the page and the story's claims, never by the story's length.
#[derive(Debug, Clone, PartialEq)]
pub struct StoryPage {
    /// The story's own fields with the page's developments only.
    pub view: StoryView,
    /// The story's front-page line: its counts cover the whole story.
    pub entry: FrontPageEntry,
    /// The story's own fields with the developments of one page of its claims ledger only
    /// (see [`ClaimsAsk`]): its claims, and the responses shown with them.
    pub ledger: StoryView,
    /// The position of the oldest development on the page, when older ones exist: the cursor
    /// (`before`) of the next page.
    pub older: Option<i64>,
    /// The position of the oldest claim of the ledger's page, when older claims exist: the
    /// cursor of the ledger's next page.
    pub claims_older: Option<i64>,
    /// The stories related to this one as they stand now, newest relation first, at most
    /// [`RELATIONS_SHOWN`]; `None` for a page that does not show them (as of a time, or folded
    /// in memory).
    pub relations: Option<Vec<RelatedStory>>,
}

/// Most related stories shown with a story (each side's newest relations are read, then the
/// newest of both): reading them is bounded whatever links to the story.
pub const RELATIONS_SHOWN: usize = 20;

/// How a related story relates to the story it is shown with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SeenRelation {
    /// This story follows up the related one.
    FollowUp,
    /// The related story follows up this one.
    FollowedUpBy,
    /// The related story is background to this one.
    Background,
    /// This story is background to the related one.
    BackgroundTo,
    SameEvent,
    Related,
}

impl SeenRelation {
    /// `relation`, recorded on one story, as seen from that story (`forward`) or the other.
    pub fn of(relation: Relation, forward: bool) -> Self {
        match (relation, forward) {
            (Relation::FollowUp, true) => SeenRelation::FollowUp,
            (Relation::FollowUp, false) => SeenRelation::FollowedUpBy,
            (Relation::Background, true) => SeenRelation::Background,
            (Relation::Background, false) => SeenRelation::BackgroundTo,
            (Relation::SameEvent, _) => SeenRelation::SameEvent,
            (Relation::Related, _) => SeenRelation::Related,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            SeenRelation::FollowUp => "follow_up",
            SeenRelation::FollowedUpBy => "followed_up_by",
            SeenRelation::Background => "background",
            SeenRelation::BackgroundTo => "background_to",
            SeenRelation::SameEvent => "same_event",
            SeenRelation::Related => "related",
        }
    }
}

/// A story related to the one it is shown with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RelatedStory {
    /// The related story's id.
    pub id: Uuid,
    pub slug: String,
    pub headline: String,
    /// The relation as seen from the story it is shown with.
    pub relation: SeenRelation,
    /// How readers are told of it: "Follow-up of", "Followed up by", "Background",
    /// "Background to", "Same event", "Related".
    pub label: String,
    /// The position of the event that related the two.
    pub position: i64,
}

impl RelatedStory {
    /// A related story as read from the views: the relation recorded (its stored name), from
    /// this story (`forward`) or from the other.
    pub fn of(
        id: Uuid,
        slug: String,
        headline: String,
        relation: &str,
        forward: bool,
        position: i64,
    ) -> Option<Self> {
        let relation: Relation = relation.parse().ok()?;
        Some(Self {
            id,
            slug,
            headline,
            relation: SeenRelation::of(relation, forward),
            label: relation.label(forward).to_owned(),
            position,
        })
    }
}

/// What distinguishes one set of related stories from another in an `ETag` (`""` for none):
/// a story's answers show them, so their tag changes when they do, though the story's own
/// position does not (a relation recorded on the other story, a headline changed there).
pub fn relations_tag(relations: Option<&[RelatedStory]>) -> String {
    let Some(relations) = relations.filter(|r| !r.is_empty()) else {
        return String::new();
    };
    // FNV-1a over what is shown: stable across processes, unlike the std hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for r in relations {
        for part in [
            r.id.as_bytes().as_slice(),
            r.slug.as_bytes(),
            r.headline.as_bytes(),
            r.relation.as_str().as_bytes(),
            &r.position.to_be_bytes(),
        ] {
            for b in part.iter().chain(&[0xff]) {
                hash ^= u64::from(*b);
                hash = hash.wrapping_mul(0x0100_0000_01b3);
            }
        }
    }
    format!("-r{hash:016x}")
}

impl StoryPage {
    /// The page of a whole view held in memory (a story folded from the log): the `limit`
    /// visible developments before `before` in timeline order (the newest without a cursor).
    /// `None` if `before` names no visible development of the story.
    pub fn of_view(view: &StoryView, before: Option<i64>, limit: usize) -> Option<Self> {
        let timeline = view.timeline();
        let end = match before {
            None => timeline.len(),
            Some(p) => timeline.iter().position(|d| d.position == p)?,
        };
        let start = end.saturating_sub(limit);
        let head = |developments: Vec<DevelopmentView>| {
            let mut v = StoryView {
                developments,
                derived: Derived::default(),
                ..view.clone_head()
            };
            v.reindex();
            v
        };
        let page = timeline[start..end].iter().map(|d| (*d).clone()).collect();
        let (ledger, claims_older) = ledger_rows(&timeline, ClaimsAsk::default());
        Some(Self {
            view: head(page),
            entry: view.front_page_entry(),
            ledger: head(in_recording_order(ledger)),
            older: (start > 0).then(|| timeline[start].position),
            claims_older,
            relations: None,
        })
    }
}

/// Applies a correction's changes to a development, returning what changed (before → after).
fn apply_changes(d: &mut DevelopmentView, changes: &DevelopmentChanges) -> Vec<FieldChange> {
    let mut out = Vec::new();
    let mut record = |field: &str, before: serde_json::Value, after: serde_json::Value| {
        if before != after {
            out.push(FieldChange {
                field: field.to_owned(),
                before,
                after,
            });
        }
    };
    if let Some(h) = &changes.headline {
        record("headline", json(&d.headline), json(h));
        d.headline = h.to_string();
    }
    if let Some(b) = &changes.body {
        record("body", json(&d.body), json(b));
        d.body = b.as_str().to_owned();
    }
    if let Some(t) = changes.occurred_at {
        record("occurred_at", json(&d.occurred_at), json(&t));
        d.occurred_at = t;
    }
    if let Some(a) = &changes.actors {
        let names = |actors: &[Actor]| json(&actors.iter().map(Actor::name).collect::<Vec<_>>());
        record("actors", names(&d.actors), names(a));
        d.actors = a.clone();
    }
    if let Some(s) = &changes.source {
        record("source", json(&d.source), json(s));
        d.source = Some(s.clone());
    }
    if let Some(e) = changes.evidence {
        record("evidence", json(&d.evidence), json(&e));
        d.evidence = e;
    }
    out
}

/// A development as the public sees it: who filed or approved it, and edits made before it was
/// published, stay on the desk.
pub fn public_development(d: &DevelopmentView) -> DevelopmentView {
    let mut d = d.clone();
    d.corrections = d.reader_corrections().cloned().collect();
    d.edits = Vec::new();
    d.filed_by = None;
    d.approved_by = None;
    d.embargo_until = None;
    d.embargo_steps = Vec::new();
    d.undo_window = false;
    for c in &mut d.corrections {
        c.by = None;
    }
    if let Some(r) = &mut d.retraction {
        r.by = None;
    }
    d
}

#[cfg(test)]
mod window_tests {
    use super::*;

    fn at(minute: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::minutes(minute)
    }

    #[test]
    fn a_window_cut_down_keeps_its_newest_times_and_a_floor_below_them() {
        let mut w = Window::newest((1..=100).map(at), None);
        w.keep_newest(8);
        assert_eq!(w.held, 8);
        assert_eq!(w.newest_time(), Some(at(100)));
        assert_eq!(w.floor, Some(at(92)));
        // A time at or below the floor is not counted; one above it is.
        w.add(at(50));
        w.add(at(101));
        assert_eq!((w.held, w.newest_time()), (9, Some(at(101))));
        assert!(w.too_short_for(9) && !w.too_short_for(8));
    }

    #[test]
    fn a_window_of_one_time_shared_by_many_is_never_left_empty() {
        let mut w = Window::newest(std::iter::repeat_n(at(5), 50).chain([at(1)]), None);
        w.keep_newest(8);
        assert_eq!((w.held, w.newest_time()), (50, Some(at(5))));
        assert_eq!(w.floor, Some(at(1)));
    }
}
