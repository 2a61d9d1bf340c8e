//! The command service: loads a story, lets the aggregate decide, appends the events.
//!
//! Aggregates are kept in an LRU cache, one async lock per story, so a command on a story with ten
//! thousand developments neither replays its history nor copies its state. The cache is only an
//! optimisation: the store refuses any append that does not continue the story's sequence, and on
//! such a conflict (another process wrote first, or the cache was stale) the story is reloaded and
//! the command decided again, a bounded number of times. Cold loads go through cqrs-es's snapshot
//! store, so they read one snapshot plus at most `snapshot_every` events; the snapshot does not
//! grow with the story, because what is known of each development lives in the log's index of
//! developments, of which a command reads only the rows of the developments it names.
//!
//! The rows of the index of developments a command names (`StoryCommand::developments_named`) are
//! read after the aggregate, so they are at least as new: a row read ahead of a stale aggregate
//! makes a writing decision conflict, and a refusal, or a retry's answer, is then true of the log
//! as it is. Retries on conflict stop after [`MAX_RETRIES`] (then 409). A snapshot goes into the
//! same append as the events that reach it.
//!
//! Its clock ([`Now`]: the moment a command is decided and recorded at) is the system's unless the
//! process gives another; `newsroom` gives it the notifier's, so a test moving a `ManualClock`
//! moves both, and the embargo scheduler, which reads the service's. [`CommandService::preview`]
//! decides a command the same way and records nothing (what the desk shows before publishing). A
//! relation's decision knows the other story (`with_other_story`: its aggregate loaded as a command
//! would load it, without taking its lock, so relating a pair from both sides never deadlocks);
//! [`CommandService::unlink`] removes a relation whichever of the two stories records it.
//! [`CommandService::execute_seen`] carries the log's optimistic concurrency to a client that
//! looked at a development a while ago ([`Seen`]): under the story's lock it reads only the story's
//! events after the one the client saw, and refuses with `CommandError::Changed` (409 `changed`,
//! field `seen`) if one of them changed the development.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{DateTime, SecondsFormat, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::persist::{PersistedEventStore, SerializedEvent};
use cqrs_es::{Aggregate, AggregateError, DomainEvent, EventStore};
use newsroom_domain::{
    DevelopmentId, Facts, Issued, OtherStory, PublicationStatus, Role, Story, StoryCommand,
    StoryError, StoryEvent, StoryId,
};
use serde_json::Value;

use newsroom_log::feed::{Position, SnapshotUpdate, StoreError};
use newsroom_log::log::EventLog;
use newsroom_web::auth::Principal;

/// How many times a command is decided again after losing a race for its story.
pub const MAX_RETRIES: usize = 5;

/// Why a command was not carried out.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Refused(#[from] StoryError),
    #[error("the slug `{0}` is taken")]
    SlugTaken(String),
    #[error("the story kept changing concurrently; try again")]
    Conflict,
    #[error("development {development} changed after position {since}; read it again")]
    Changed {
        development: DevelopmentId,
        since: Position,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("stored history cannot be read: {0}")]
    Corrupt(String),
}

/// What the client of a command saw: a development as it stood in its story's view at
/// `position` (the position of the story's latest event the view had applied). A command
/// carried out on what it saw ([`CommandService::execute_seen`]) is refused with
/// [`CommandError::Changed`] if a later event of the story changed that development — the
/// log's optimistic concurrency, carried to a form that was open for a while.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    pub development: DevelopmentId,
    pub position: Position,
}

/// What a carried-out command did.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub story_id: StoryId,
    /// The sequence of the story's newest event after the command.
    pub sequence: usize,
    /// The global position of that event: read views are current once they reach it.
    pub position: Position,
    /// The events this command recorded; empty when it changed nothing (an idempotent retry).
    pub events: Vec<StoryEvent>,
    /// Set when the command repeated an earlier filing: the answer is the original one.
    pub replay_of: Option<(DevelopmentId, PublicationStatus)>,
}

struct Cached {
    story: Story,
    snapshot_version: Option<usize>,
    /// The chain hash of the story's latest event ("" before the first).
    last_hash: String,
}

type Slot = Arc<tokio::sync::Mutex<Option<Cached>>>;

/// Settings of the command service.
#[derive(Debug, Clone)]
pub struct ServiceOptions {
    /// Write a snapshot every this many events of a story. A snapshot is a few hundred bytes
    /// whatever the story's length, so it is written often: a cold load then reads fewer events
    /// after it than a short story has.
    pub snapshot_every: usize,
    /// Stories whose aggregate is kept in memory.
    pub cache_capacity: usize,
}

impl Default for ServiceOptions {
    fn default() -> Self {
        Self {
            snapshot_every: 10,
            cache_capacity: 10_000,
        }
    }
}

/// The clock commands are decided and recorded by: the system's, or one a test moves.
pub type Now = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// The system clock.
pub fn system_now() -> Now {
    Arc::new(Utc::now)
}

/// Carries out story commands. Cheap to share behind an `Arc`.
pub struct CommandService {
    store: EventLog,
    now: Now,
    loader: PersistedEventStore<EventLog, Story>,
    cache: Mutex<lru::LruCache<StoryId, Slot>>,
    snapshot_every: usize,
}

impl std::fmt::Debug for CommandService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommandService")
            .field("store", &self.store)
            .field("snapshot_every", &self.snapshot_every)
            .finish()
    }
}

impl CommandService {
    pub fn new(store: impl Into<EventLog>, options: ServiceOptions) -> Self {
        let store = store.into();
        let snapshot_every = options.snapshot_every.max(1);
        Self {
            loader: PersistedEventStore::new_snapshot_store(store.clone(), snapshot_every),
            store,
            now: system_now(),
            cache: Mutex::new(lru::LruCache::new(
                NonZeroUsize::new(options.cache_capacity.max(1)).expect("capacity is at least 1"),
            )),
            snapshot_every,
        }
    }

    /// The same service deciding and recording by `now` instead of the system clock.
    pub fn with_clock(mut self, now: Now) -> Self {
        self.now = now;
        self
    }

    /// The moment by this service's clock.
    pub fn now(&self) -> DateTime<Utc> {
        (self.now)()
    }

    pub fn store(&self) -> &EventLog {
        &self.store
    }

    fn slot(&self, id: StoryId) -> Slot {
        let mut cache = self.cache.lock().expect("cache lock poisoned");
        cache.get_or_insert(id, Slot::default).clone()
    }

    async fn load(&self, id: StoryId) -> Result<Cached, CommandError> {
        let context = self
            .loader
            .load_aggregate(&id.to_string())
            .await
            .map_err(|e| match e {
                // The log could not be read (PostgreSQL down, the connection cut): a 503,
                // not a corrupt history.
                AggregateError::DatabaseConnectionError(e) => {
                    CommandError::Store(StoreError::Unavailable(e.to_string()))
                }
                AggregateError::UnexpectedError(e) => CommandError::Corrupt(e.to_string()),
                AggregateError::DeserializationError(e) => CommandError::Corrupt(e.to_string()),
                AggregateError::AggregateConflict => CommandError::Conflict,
                AggregateError::UserError(e) => CommandError::Refused(e),
            })?;
        debug_assert_eq!(context.current_sequence, context.aggregate.version());
        let last_hash = match context.current_sequence {
            0 => String::new(),
            n => self
                .store
                .hash_of(&id.to_string(), n)
                .await?
                .unwrap_or_default(),
        };
        Ok(Cached {
            story: context.aggregate,
            snapshot_version: context.current_snapshot,
            last_hash,
        })
    }

    /// Carries out `command` on story `id` on behalf of `by`.
    #[tracing::instrument(skip_all, fields(story = %id, command = command_name(&command)))]
    pub async fn execute(
        &self,
        id: StoryId,
        by: &Principal,
        command: StoryCommand,
    ) -> Result<Outcome, CommandError> {
        self.execute_seen(id, by, command, None).await
    }

    /// Carries out `command` as [`execute`](Self::execute) does, unless `seen` says the
    /// development it acts on changed since its client saw it ([`CommandError::Changed`]). The
    /// check runs under the story's lock on the log itself, and a write by another process
    /// meanwhile makes the append conflict and the check run again: a change the client did not
    /// see can never be overwritten.
    #[tracing::instrument(skip_all, fields(story = %id, command = command_name(&command)))]
    pub async fn execute_seen(
        &self,
        id: StoryId,
        by: &Principal,
        command: StoryCommand,
        seen: Option<Seen>,
    ) -> Result<Outcome, CommandError> {
        let started = Instant::now();
        let name = command_name(&command);
        let result = self.execute_with_retries(id, by, command, seen).await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(CommandError::Refused(_) | CommandError::SlugTaken(_)) => "refused",
            Err(CommandError::Conflict) => "conflict",
            Err(CommandError::Changed { .. }) => "changed",
            Err(_) => "error",
        };
        metrics::counter!("newsroom_commands_total", "command" => name, "outcome" => outcome)
            .increment(1);
        metrics::histogram!("newsroom_command_seconds", "command" => name)
            .record(started.elapsed().as_secs_f64());
        result
    }

    /// Decides `command` on story `id` as `by` would issue it now, and records nothing: the
    /// events it would record (none for a repeated filing), or why it would be refused. What
    /// the desk shows before anything is published; the answer may differ a moment later, when
    /// the command is carried out, if the story changed meanwhile.
    #[tracing::instrument(skip_all, fields(story = %id, command = command_name(&command)))]
    pub async fn preview(
        &self,
        id: StoryId,
        by: &Principal,
        command: StoryCommand,
    ) -> Result<Vec<StoryEvent>, CommandError> {
        let slot = self.slot(id);
        let mut guard = slot.lock().await;
        let cached = match guard.take() {
            Some(cached) => cached,
            None => self.load(id).await?,
        };
        let facts = match self
            .store
            .developments(&id.to_string(), command.developments_named())
            .await
        {
            Ok(facts) => self.with_own(id, by, &command, facts).await,
            Err(e) => Err(e),
        };
        let facts = match facts {
            Ok(facts) => self.with_other_story(id, &command, facts).await,
            Err(e) => Err(e.into()),
        };
        // `decide` leaves the aggregate as it is: it goes back into its slot unchanged.
        let decided = facts.and_then(|facts| {
            Ok(cached
                .story
                .decide(Issued::new(by.role, self.now(), command).knowing(facts))?)
        });
        *guard = Some(cached);
        decided
    }

    async fn execute_with_retries(
        &self,
        id: StoryId,
        by: &Principal,
        command: StoryCommand,
        seen: Option<Seen>,
    ) -> Result<Outcome, CommandError> {
        for attempt in 0..=MAX_RETRIES {
            match self.attempt(id, by, command.clone(), seen).await {
                Err(CommandError::Conflict) if attempt < MAX_RETRIES => {
                    tracing::debug!(attempt, "story changed concurrently; deciding again");
                    tokio::task::yield_now().await;
                }
                other => return other,
            }
        }
        Err(CommandError::Conflict)
    }

    /// `facts`, knowing which of the developments `command` names its issuer filed, when the
    /// decision depends on it (a withdrawal; an edit by someone who is no editor): one read of
    /// the event that recorded each (its author's token), whatever the story's length.
    async fn with_own(
        &self,
        id: StoryId,
        by: &Principal,
        command: &StoryCommand,
        facts: Facts,
    ) -> Result<Facts, StoreError> {
        let asks = match command {
            StoryCommand::WithdrawDevelopment { .. } => true,
            StoryCommand::CorrectDevelopment { .. } | StoryCommand::EditFiling { .. } => {
                !by.role.at_least(Role::Editor)
            }
            _ => false,
        };
        if !asks {
            return Ok(facts);
        }
        let mut own = Vec::new();
        for development in command.developments_named() {
            let Some(state) = facts.development(&development) else {
                continue;
            };
            let author = self
                .store
                .author_of(&id.to_string(), state.recorded_in)
                .await?;
            if author.as_deref() == Some(by.token_id.as_str()) {
                own.push(development);
            }
        }
        Ok(facts.filed_by_issuer(own))
    }

    /// `facts`, knowing the other story a relation names (whether it exists, and the relation
    /// it records to story `id`): its aggregate, loaded as a command on it would load it but
    /// without taking its lock, so two editors relating a pair from both sides never wait for
    /// each other. (Both may then be recorded; each is shown, and either unlinks.)
    async fn with_other_story(
        &self,
        id: StoryId,
        command: &StoryCommand,
        facts: Facts,
    ) -> Result<Facts, CommandError> {
        let StoryCommand::LinkStory { story, .. } = command else {
            return Ok(facts);
        };
        if *story == id {
            // The decision refuses it; nothing to look up.
            return Ok(facts);
        }
        let other = self.load(*story).await?.story;
        Ok(facts.with_other_story(OtherStory {
            id: *story,
            exists: other.exists(),
            relation_to_this: other.relation_to(id),
        }))
    }

    /// Removes the relation between stories `id` and `other`, whichever of the two records it:
    /// `id` first, then `other`. Refused with [`StoryError::NotRelated`] (naming `other`) if
    /// neither does.
    pub async fn unlink(
        &self,
        id: StoryId,
        other: StoryId,
        by: &Principal,
    ) -> Result<Outcome, CommandError> {
        let not_related = |e: &CommandError| {
            matches!(
                e,
                CommandError::Refused(StoryError::NotRelated(_) | StoryError::StoryNotFound)
            )
        };
        match self
            .execute(id, by, StoryCommand::UnlinkStory { story: other })
            .await
        {
            Err(CommandError::Refused(StoryError::NotRelated(_))) if other != id => {
                match self
                    .execute(other, by, StoryCommand::UnlinkStory { story: id })
                    .await
                {
                    Err(e) if not_related(&e) => {
                        Err(CommandError::Refused(StoryError::NotRelated(other)))
                    }
                    answered => answered,
                }
            }
            answered => answered,
        }
    }

    /// Whether an event of story `id` after the one `seen` names changed its development
    /// (`Changed`), read from the log: the events since the client's view, not the story's
    /// history. A `seen` whose position is not an event of this story is taken as changed.
    async fn check_seen(&self, id: StoryId, seen: Seen) -> Result<(), CommandError> {
        let changed = Err(CommandError::Changed {
            development: seen.development,
            since: seen.position,
        });
        let story = id.to_string();
        let at = self
            .store
            .read_feed(seen.position.saturating_sub(1), 1)
            .await?;
        let Some(sequence) = at
            .first()
            .filter(|e| e.position == seen.position && e.story_id == story)
            .map(|e| e.sequence as usize)
        else {
            return changed;
        };
        for event in self.store.story_events_after(story, sequence, None).await? {
            if matches!(
                event.event_type.as_str(),
                "StoryOpened" | "HeadlineChanged" | "TagsChanged" | "StoryClosed" | "StoryReopened"
            ) {
                continue;
            }
            let decoded = newsroom_domain::upcast::decode(event.to_serialized())
                .map_err(|e| CommandError::Corrupt(e.to_string()))?;
            if decoded.development_id() == Some(seen.development) {
                return changed;
            }
        }
        Ok(())
    }

    async fn attempt(
        &self,
        id: StoryId,
        by: &Principal,
        command: StoryCommand,
        seen: Option<Seen>,
    ) -> Result<Outcome, CommandError> {
        let slot = self.slot(id);
        let mut guard = slot.lock().await;
        // The aggregate is taken out of its slot while the command runs and put back only once
        // the log agrees: if this future is dropped half-way (a client gone, a timeout), the
        // slot is empty and the next command reloads from the log.
        let mut cached = match guard.take() {
            Some(cached) => cached,
            None => self.load(id).await?,
        };
        if let Some(seen) = seen {
            // Read after the aggregate: a change the check does not see is one appended after
            // it, and makes this command's append conflict (and the check run again).
            if let Err(e) = self.check_seen(id, seen).await {
                *guard = Some(cached);
                return Err(e);
            }
        }
        let before = cached.story.version();
        let replayed_id = match &command {
            StoryCommand::RecordDevelopment(new) => Some(new.id),
            _ => None,
        };
        // Read after the aggregate, so the rows are at least as new as it is. They may be newer
        // (another process appended since the aggregate was cached): a decision that writes then
        // fails to continue the story's sequence, so the store refuses it as a conflict and it is
        // decided again on the reloaded story; one that refuses or answers a retry from the
        // original does so from the story as it now is, as if the command had come a moment later.
        let facts = match self
            .store
            .developments(&id.to_string(), command.developments_named())
            .await
        {
            Ok(facts) => match self.with_own(id, by, &command, facts).await {
                Ok(facts) => match self.with_other_story(id, &command, facts).await {
                    Ok(facts) => facts,
                    Err(e) => {
                        *guard = Some(cached);
                        return Err(e);
                    }
                },
                Err(e) => {
                    *guard = Some(cached);
                    return Err(e.into());
                }
            },
            Err(e) => {
                // Nothing was decided: the aggregate is still what the log holds.
                *guard = Some(cached);
                return Err(e.into());
            }
        };
        let replayed = replayed_id.and_then(|d| {
            facts
                .development(&d)
                .map(|s| (d, s.recorded_in, s.recorded_as))
        });
        let now = self.now();

        let sink = EventSink::default();
        let decided = cached
            .story
            .handle(
                Issued::new(by.role, now, command).knowing(facts),
                &(),
                &sink,
            )
            .await;
        let events = sink.collect().await;
        if let Err(refusal) = decided {
            // A refusal decides before writing any event: the aggregate is unchanged.
            *guard = Some(cached);
            return Err(refusal.into());
        }

        if events.is_empty() {
            // Nothing changed: an idempotent retry, or a change to what already was.
            let replay_of = replayed;
            let sequence = replay_of.map_or(before, |(_, seq, _)| seq);
            *guard = Some(cached);
            drop(guard);
            let position = self
                .store
                .position_of(id.to_string(), sequence)
                .await?
                .unwrap_or(0);
            return Ok(Outcome {
                story_id: id,
                sequence,
                position,
                events,
                replay_of: replay_of.map(|(d, _, status)| (d, status)),
            });
        }

        // The aggregate already has the new events applied (the sink applies them).
        let after = cached.story.version();
        let snapshot = if after / self.snapshot_every > before / self.snapshot_every {
            let version = cached.snapshot_version.map_or(1, |v| v + 1);
            let payload = serde_json::to_string(&newsroom_domain::upcast::snapshot(&cached.story))
                .map_err(|e| CommandError::Corrupt(e.to_string()))?;
            Some(SnapshotUpdate {
                aggregate_id: id.to_string(),
                payload,
                version,
            })
        } else {
            None
        };
        let serialized = serialize(id, before, &cached.last_hash, &events, by, now)?;
        let new_hash = serialized
            .last()
            .and_then(|e| newsroom_log::chain::stored_hash(&e.metadata))
            .map(str::to_owned);
        let snapshot_version = snapshot.as_ref().map(|s| s.version);
        match self.store.append(serialized, snapshot).await {
            Ok(positions) => {
                if snapshot_version.is_some() {
                    cached.snapshot_version = snapshot_version;
                }
                if let Some(hash) = new_hash {
                    cached.last_hash = hash;
                }
                *guard = Some(cached);
                Ok(Outcome {
                    story_id: id,
                    sequence: after,
                    position: *positions.last().expect("one position per event"),
                    events,
                    replay_of: None,
                })
            }
            // The aggregate ran ahead of the log: it stays out of the cache.
            Err(StoreError::Conflict) => Err(CommandError::Conflict),
            Err(StoreError::SlugTaken(slug)) => Err(CommandError::SlugTaken(slug)),
            Err(other) => Err(CommandError::Store(other)),
        }
    }
}

/// The stored form of a command's events, each with its metadata and its chain hash.
fn serialize(
    id: StoryId,
    before: usize,
    previous_hash: &str,
    events: &[StoryEvent],
    by: &Principal,
    now: chrono::DateTime<Utc>,
) -> Result<Vec<SerializedEvent>, CommandError> {
    let recorded_at = now.to_rfc3339_opts(SecondsFormat::Micros, true);
    let metadata: serde_json::Map<String, Value> = [
        ("author_id", by.token_id.as_str()),
        ("author_name", by.name.as_str()),
        ("author_role", by.role.as_str()),
        ("recorded_at", recorded_at.as_str()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), Value::String(v.to_owned())))
    .collect();
    let story_id = id.to_string();
    let mut previous = previous_hash.to_owned();
    events
        .iter()
        .enumerate()
        .map(|(i, event)| {
            let sequence = before + i + 1;
            let payload =
                serde_json::to_value(event).map_err(|e| CommandError::Corrupt(e.to_string()))?;
            let mut metadata = Value::Object(metadata.clone());
            let hash = newsroom_log::chain::event_hash(
                &previous,
                &story_id,
                sequence,
                &event.event_type(),
                &event.event_version(),
                &payload,
                &metadata,
            );
            metadata[newsroom_log::chain::HASH_KEY] = Value::String(hash.clone());
            previous = hash;
            Ok(SerializedEvent::new(
                story_id.clone(),
                sequence,
                Story::TYPE.to_owned(),
                event.event_type(),
                event.event_version(),
                payload,
                metadata,
            ))
        })
        .collect()
}

/// A stable, low-cardinality name of a command, for metrics and traces.
pub fn command_name(command: &StoryCommand) -> &'static str {
    match command {
        StoryCommand::OpenStory { .. } => "open_story",
        StoryCommand::RecordDevelopment(_) => "record_development",
        StoryCommand::ApproveDevelopment { .. } => "approve_development",
        StoryCommand::UndoApproval { .. } => "undo_approval",
        StoryCommand::RejectDevelopment { .. } => "reject_development",
        StoryCommand::CorrectDevelopment { .. } => "correct_development",
        StoryCommand::RetractDevelopment { .. } => "retract_development",
        StoryCommand::WithdrawDevelopment { .. } => "withdraw_development",
        StoryCommand::EditFiling { .. } => "edit_filing",
        StoryCommand::LiftEmbargo { .. } => "lift_embargo",
        StoryCommand::MoveEmbargo { .. } => "move_embargo",
        StoryCommand::ReviseStory { .. } => "revise_story",
        StoryCommand::CloseStory => "close_story",
        StoryCommand::ReopenStory => "reopen_story",
        StoryCommand::LinkStory { .. } => "link_story",
        StoryCommand::UnlinkStory { .. } => "unlink_story",
    }
}
