//! Value types of the story domain. Each one is parsed once at the edge (`parse`), so a value that
//! reaches the aggregate is valid by construction. Deserialisation is transparent: the event log is
//! trusted, and tightening a limit later must never make history unreadable.
//!
//! Two rules live here rather than in the aggregate: [`moment`], when something happened in the
//! world (`occurred_at`: RFC 3339's own form, from 1900-01-01 to five minutes ahead, no leap
//! second), parsed by the API's request types and checked again by the decision against its
//! clock; and an [`Actor`]'s matching key ([`Actor::normalise`]: NFKC, UTS #39 skeleton, case),
//! derived from the name whenever an actor is read, never stored as truth — old events are matched
//! by the current rule, and a change of the rule rebuilds the views that index by it (their schema
//! version) instead of rewriting the log.

use std::fmt;

use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;
use uuid::Uuid;

use crate::error::FieldError;

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

/// Limits on free text, in Unicode scalar values.
pub mod limits {
    pub const SLUG: usize = 80;
    pub const HEADLINE: usize = 200;
    pub const SUMMARY: usize = 2_000;
    pub const BODY: usize = 20_000;
    pub const TAG: usize = 40;
    pub const TAGS: usize = 20;
    pub const ACTOR: usize = 120;
    pub const ACTORS: usize = 50;
    pub const SOURCE_NAME: usize = 200;
    pub const URL: usize = 2_000;
    pub const NOTE: usize = 2_000;
    /// Relations recorded on one story (those made from other stories to it are not counted).
    pub const RELATIONS: usize = 20;
}

/// An undo window: how long a publication is held back (from readers and alerts) after it is
/// recorded, during which it can still be taken back. From one second to [`Hold::MAX_SECONDS`]:
/// a window to change one's mind, not an embargo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Hold(u32);

impl Hold {
    /// The longest undo window, in seconds (ten minutes).
    pub const MAX_SECONDS: u32 = 600;

    pub fn parse(field: &'static str, seconds: u32) -> Result<Self, FieldError> {
        if seconds == 0 || seconds > Self::MAX_SECONDS {
            return Err(FieldError::new(
                field,
                format!("must be from 1 to {} seconds", Self::MAX_SECONDS),
            ));
        }
        Ok(Self(seconds))
    }

    pub fn seconds(&self) -> u32 {
        self.0
    }

    pub fn duration(&self) -> chrono::Duration {
        chrono::Duration::seconds(i64::from(self.0))
    }
}

/// When something happened in the world (`occurred_at`), as a client writes it and as the
/// aggregate accepts it. Only RFC 3339's own form is read — a four-digit year, `T`, seconds, an
/// offset (`2026-11-03T12:00:00Z`, `…T13:00:00.5+01:00`) — so `+002026-…`, `-0001-…` and dates
/// without a time or an offset are refused at parsing; a leap second (`…:60`) is refused too
/// (chrono would keep it as an instant that no other system reads back the same), and so is
/// anything before [`moment::EARLIEST`]. How far ahead it may lie depends on the clock:
/// [`moment::check`], called by the decision, also refuses more than five minutes ahead.
pub mod moment {
    use chrono::{DateTime, Duration, TimeZone, Timelike, Utc};

    use crate::error::FieldError;

    /// How far in the future a moment may lie (clock skew between newsroom and reporter).
    pub const FUTURE_TOLERANCE: Duration = Duration::minutes(5);

    /// The earliest moment accepted: 1900-01-01T00:00:00Z. Nothing this newsroom reports on
    /// happened before, and a year like `0000` is a typing error, not a date.
    pub fn earliest() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(1900, 1, 1, 0, 0, 0)
            .single()
            .expect("a valid date")
    }

    /// The earliest moment, for messages.
    pub const EARLIEST: &str = "1900-01-01T00:00:00Z";

    const FORM: &str = "must be an RFC 3339 date and time with a four-digit year and an offset, \
                        like `2026-11-03T12:00:00Z`";

    /// Parses a moment written in RFC 3339's form, not before [`EARLIEST`], without a leap
    /// second.
    pub fn parse(field: &'static str, raw: &str) -> Result<DateTime<Utc>, FieldError> {
        // chrono's RFC 3339 parser reads exactly four digits of year; its `FromStr` (what serde
        // uses) would also take a sign and more digits.
        let at = DateTime::parse_from_rfc3339(raw)
            .map_err(|_| FieldError::new(field, FORM))?
            .with_timezone(&Utc);
        if at.nanosecond() >= 1_000_000_000 {
            return Err(FieldError::new(field, "must not be a leap second (`:60`)"));
        }
        if at < earliest() {
            return Err(FieldError::new(
                field,
                format!("must not lie before {EARLIEST}"),
            ));
        }
        Ok(at)
    }

    /// Checks a moment against the clock: from [`EARLIEST`] to five minutes past `now`, and no
    /// leap second (the decision's rule, whatever edge the moment came through).
    pub fn check(
        field: &'static str,
        at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(), FieldError> {
        if at.nanosecond() >= 1_000_000_000 {
            return Err(FieldError::new(field, "must not be a leap second (`:60`)"));
        }
        if at < earliest() {
            return Err(FieldError::new(
                field,
                format!("must not lie before {EARLIEST}"),
            ));
        }
        if at > now + FUTURE_TOLERANCE {
            return Err(FieldError::new(
                field,
                "must not lie more than 5 minutes in the future",
            ));
        }
        Ok(())
    }

    /// `#[serde(deserialize_with = "moment::deserialize")]` for a moment in a request body:
    /// [`parse`]'s rule, the refusal naming the field through serde's path.
    pub fn deserialize<'de, D>(deserializer: D) -> Result<DateTime<Utc>, D::Error>
    where
        D: serde::Deserializer<'de>,
    {
        use serde::Deserialize;
        let raw = String::deserialize(deserializer)?;
        parse("until", &raw).map_err(|e| serde::de::Error::custom(e.message))
    }

    /// `#[serde(deserialize_with = "moment::deserialize_option")]` for an optional moment in a
    /// request body: [`parse`]'s rule, the refusal naming the field through serde's path.
    pub fn deserialize_option<'de, D>(deserializer: D) -> Result<Option<DateTime<Utc>>, D::Error>
    where
        D: serde::Deserializer<'de>,
    {
        use serde::Deserialize;
        match Option::<String>::deserialize(deserializer)? {
            None => Ok(None),
            Some(raw) => parse("occurred_at", &raw)
                .map(Some)
                .map_err(|e| serde::de::Error::custom(e.message)),
        }
    }
}

/// A story's identity: a UUID v7 chosen by the server when the story is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
#[cfg_attr(feature = "openapi", derive(ToSchema), schema(value_type = String, format = Uuid))]
pub struct StoryId(Uuid);

impl StoryId {
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, FieldError> {
        Uuid::parse_str(raw)
            .map(Self)
            .map_err(|_| FieldError::new(field, "must be a UUID"))
    }
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl Default for StoryId {
    fn default() -> Self {
        Self::new()
    }
}

impl From<Uuid> for StoryId {
    fn from(value: Uuid) -> Self {
        Self(value)
    }
}

impl fmt::Display for StoryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A development's identity, chosen by the client: it doubles as the idempotency key of
/// `RecordDevelopment`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
#[cfg_attr(feature = "openapi", derive(ToSchema), schema(value_type = String, format = Uuid))]
pub struct DevelopmentId(Uuid);

impl DevelopmentId {
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, FieldError> {
        Uuid::parse_str(raw)
            .map(Self)
            .map_err(|_| FieldError::new(field, "must be a UUID"))
    }
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl From<Uuid> for DevelopmentId {
    fn from(value: Uuid) -> Self {
        Self(value)
    }
}

impl fmt::Display for DevelopmentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Refuses control characters other than line breaks and tabs (which only long texts may carry).
fn check_text(
    field: &'static str,
    raw: &str,
    min: usize,
    max: usize,
    multiline: bool,
) -> Result<String, FieldError> {
    let trimmed = raw.trim();
    let len = trimmed.chars().count();
    if len < min {
        return Err(if min == 1 {
            FieldError::new(field, "must not be empty")
        } else {
            FieldError::new(field, format!("must be at least {min} characters"))
        });
    }
    if len > max {
        return Err(FieldError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    let bad = trimmed
        .chars()
        .any(|c| c.is_control() && !(multiline && matches!(c, '\n' | '\t' | '\r')));
    if bad {
        return Err(FieldError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(trimmed.to_owned())
}

macro_rules! text_type {
    ($(#[$doc:meta])* $name:ident, min = $min:expr, max = $max:expr, multiline = $ml:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        #[cfg_attr(feature = "openapi", derive(ToSchema), schema(value_type = String))]
        pub struct $name(String);

        impl $name {
            pub fn parse(field: &'static str, raw: &str) -> Result<Self, FieldError> {
                check_text(field, raw, $min, $max, $ml).map(Self)
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

text_type!(
    /// A story's or a development's headline: one line, 1–200 characters.
    Headline, min = 1, max = limits::HEADLINE, multiline = false
);
text_type!(
    /// A story's summary: up to 2,000 characters, may be empty.
    Summary, min = 0, max = limits::SUMMARY, multiline = true
);
text_type!(
    /// The text of a development: up to 20,000 characters, may be empty.
    Body, min = 0, max = limits::BODY, multiline = true
);
text_type!(
    /// An editor's correction note, rejection or retraction reason: shown to readers as written.
    Note, min = 1, max = limits::NOTE, multiline = true
);
text_type!(
    /// The name of a source: "Ministry of Foreign Affairs", "Campaign spokesperson".
    SourceName, min = 1, max = limits::SOURCE_NAME, multiline = false
);

/// A story's unique, URL-safe name: lowercase ASCII letters, digits and single hyphens.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
#[cfg_attr(feature = "openapi", derive(ToSchema), schema(value_type = String))]
pub struct Slug(String);

impl Slug {
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, FieldError> {
        if raw.is_empty() {
            return Err(FieldError::new(field, "must not be empty"));
        }
        if raw.len() > limits::SLUG {
            return Err(FieldError::new(
                field,
                format!("must be at most {} characters", limits::SLUG),
            ));
        }
        let valid_chars = raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !valid_chars || raw.starts_with('-') || raw.ends_with('-') || raw.contains("--") {
            return Err(FieldError::new(
                field,
                "must be lowercase letters, digits and single hyphens, like `campaign-hack-2026`",
            ));
        }
        Ok(Self(raw.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A topic label on a story, same alphabet as a slug.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
#[cfg_attr(feature = "openapi", derive(ToSchema), schema(value_type = String))]
pub struct Tag(String);

impl Tag {
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, FieldError> {
        let lowered = raw.trim().to_lowercase();
        if lowered.is_empty() || lowered.len() > limits::TAG {
            return Err(FieldError::new(
                field,
                format!("must be 1 to {} characters", limits::TAG),
            ));
        }
        if !lowered
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            return Err(FieldError::new(
                field,
                "must be letters, digits, `-` or `_`",
            ));
        }
        Ok(Self(lowered))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Parses a list of tags: deduplicated, sorted, at most [`limits::TAGS`].
    pub fn parse_list(field: &'static str, raw: &[String]) -> Result<Vec<Tag>, FieldError> {
        if raw.len() > limits::TAGS {
            return Err(FieldError::new(
                field,
                format!("at most {} tags", limits::TAGS),
            ));
        }
        let mut tags = raw
            .iter()
            .map(|t| Tag::parse(field, t))
            .collect::<Result<Vec<_>, _>>()?;
        tags.sort();
        tags.dedup();
        Ok(tags)
    }
}

/// A person or organisation named in a development. `name` keeps the spelling shown (less any
/// invisible characters, [`Actor::visible`]); `key` is what matching uses, [`Actor::normalise`]:
/// "Fancy  Bear" and "fancy bear", `APT28`, Cyrillic `АРТ28` and `APT\u{200b}28` are each one
/// actor.
///
/// The key is derived, never trusted from storage: an actor read from the log (or from a view)
/// gets its key computed again from its name, so every event, however old, is matched by the
/// rule of the code that reads it, and a change of the rule needs no rewrite of the log (the
/// views that index by key are rebuilt, by their schema version). The stored `key` is ignored.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "StoredActor")]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Actor {
    name: String,
    key: String,
}

/// An actor as stored: its key, if any, is computed again.
#[derive(Deserialize)]
struct StoredActor {
    name: String,
}

impl From<StoredActor> for Actor {
    fn from(stored: StoredActor) -> Self {
        let key = Actor::normalise(&stored.name);
        Actor {
            name: stored.name,
            key,
        }
    }
}

/// Whether `c` is a default-ignorable code point (UTS #39's list, which holds every bidi
/// control, zero-width character, soft hyphen and variation selector): exactly the characters
/// a UTS #39 skeleton drops.
fn is_invisible(c: char) -> bool {
    if let Some(Some(prototype)) = ASCII_SKELETONS.get(c as usize) {
        return prototype.is_empty();
    }
    let mut buf = [0u8; 4];
    let dropped = unicode_security::skeleton(c.encode_utf8(&mut buf))
        .next()
        .is_none();
    dropped
}

/// The UTS #39 skeleton of each ASCII character, as `unicode_security` computes it, where that
/// skeleton is ASCII too (`None` where it is not). Most names are ASCII: their skeleton is then
/// the characters' skeletons put together (NFD leaves ASCII alone), looked up instead of
/// decomposed and searched for in the confusables table character by character.
static ASCII_SKELETONS: std::sync::LazyLock<Vec<Option<String>>> = std::sync::LazyLock::new(|| {
    (0u8..128)
        .map(|b| {
            let skeleton: String = unicode_security::skeleton(&char::from(b).to_string()).collect();
            skeleton.is_ascii().then_some(skeleton)
        })
        .collect()
});

/// The skeleton of an ASCII `text` from [`ASCII_SKELETONS`]; `None` if `text` is not ASCII or
/// holds a character whose skeleton is not.
fn ascii_skeleton(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        out.push_str(ASCII_SKELETONS.get(b as usize)?.as_deref()?);
    }
    Some(out)
}

impl Actor {
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, FieldError> {
        let visible = Self::visible(raw);
        if visible.trim().is_empty() && !raw.trim().is_empty() {
            return Err(FieldError::new(
                field,
                "must name someone: it holds only invisible characters",
            ));
        }
        let name = check_text(field, &visible, 1, limits::ACTOR, false)?;
        let key = Self::normalise(&name);
        Ok(Self { name, key })
    }

    /// `raw` without default-ignorable code points (zero-width spaces and joiners, soft
    /// hyphens, bidi controls like U+202E, variation selectors): what is shown of a name.
    pub fn visible(raw: &str) -> String {
        raw.chars().filter(|c| !is_invisible(*c)).collect()
    }

    /// The matching key of a name: what the projection and the notifier index actors by.
    /// Invisible characters dropped, NFKC, then the UTS #39 skeleton (confusables folded to one
    /// prototype: Cyrillic `А` to Latin `A`), lower case and the skeleton again (so that case
    /// and confusables fold in either order), single spaces. The same for a key as for its
    /// name: `normalise(normalise(x)) == normalise(x)`.
    pub fn normalise(name: &str) -> String {
        // ASCII is its own NFKC, and its lower case is ASCII: the same steps, by table.
        if let Some(folded) =
            ascii_skeleton(name).and_then(|folded| ascii_skeleton(&folded.to_ascii_lowercase()))
        {
            return folded.split_whitespace().collect::<Vec<_>>().join(" ");
        }
        Self::normalise_unicode(name)
    }

    /// [`Actor::normalise`] the long way, for any text.
    fn normalise_unicode(name: &str) -> String {
        let compatible: String = Self::visible(name).nfkc().collect();
        let folded: String = unicode_security::skeleton(&compatible).collect();
        let lowered = folded.to_lowercase();
        let folded: String = unicode_security::skeleton(&lowered).collect();
        folded.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    /// Parses a list of actors, dropping repeats of the same key (first spelling wins).
    pub fn parse_list(field: &'static str, raw: &[String]) -> Result<Vec<Actor>, FieldError> {
        if raw.len() > limits::ACTORS {
            return Err(FieldError::new(
                field,
                format!("at most {} actors", limits::ACTORS),
            ));
        }
        let mut actors: Vec<Actor> = Vec::with_capacity(raw.len());
        for name in raw {
            let actor = Actor::parse(field, name)?;
            if !actors.iter().any(|a| a.key == actor.key) {
                actors.push(actor);
            }
        }
        Ok(actors)
    }

    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn key(&self) -> &str {
        &self.key
    }
}

macro_rules! snake_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        #[cfg_attr(feature = "openapi", derive(ToSchema))]
        #[cfg_attr(feature = "openapi", schema(rename_all = "snake_case"))]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(&self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(format!(
                        "unknown value `{s}`, expected one of: {}",
                        [$($text),+].join(", ")
                    )),
                }
            }
        }
    };
}

snake_enum!(
    /// What kind of development this is.
    DevelopmentKind {
        HackReported => "hack_reported",
        AttributionClaimed => "attribution_claimed",
        DenialIssued => "denial_issued",
        ChargesFiled => "charges_filed",
        StatementIssued => "statement_issued",
        ReportPublished => "report_published",
        CommentRequested => "comment_requested",
        InvestigationOpened => "investigation_opened",
        ArrestMade => "arrest_made",
        RulingIssued => "ruling_issued",
        Update => "update",
    }
);

snake_enum!(
    /// Where a development's information comes from.
    SourceKind {
        OfficialStatement => "official_statement",
        Document => "document",
        Report => "report",
        Anonymous => "anonymous",
        OwnReporting => "own_reporting",
        SocialMedia => "social_media",
    }
);

snake_enum!(
    /// How well a development's claim is backed.
    Evidence {
        NoneProvided => "none_provided",
        Circumstantial => "circumstantial",
        Documentary => "documentary",
        Confirmed => "confirmed",
    }
);

snake_enum!(
    /// How fast subscribers must hear of it; `flash` always goes out immediately.
    Urgency {
        Routine => "routine",
        Priority => "priority",
        Flash => "flash",
    }
);

snake_enum!(
    /// How a response relates to the development it answers.
    Stance {
        Supports => "supports",
        Disputes => "disputes",
        Denies => "denies",
    }
);

snake_enum!(
    /// How one story relates to another, as an editor links them (recorded on the story the
    /// link is made from: "this story is a `follow_up` of that one").
    Relation {
        FollowUp => "follow_up",
        Background => "background",
        SameEvent => "same_event",
        Related => "related",
    }
);

impl Relation {
    /// The relation as seen from the story it points at: `follow_up` ↔ `followed_up_by`,
    /// `background` ↔ `background_to`; `same_event` and `related` read the same both ways.
    pub fn reverse_str(&self) -> &'static str {
        match self {
            Relation::FollowUp => "followed_up_by",
            Relation::Background => "background_to",
            Relation::SameEvent => "same_event",
            Relation::Related => "related",
        }
    }

    /// How readers are told of it, on the story it is recorded on (`forward`) or on the other.
    pub fn label(&self, forward: bool) -> &'static str {
        match (self, forward) {
            (Relation::FollowUp, true) => "Follow-up of",
            (Relation::FollowUp, false) => "Followed up by",
            (Relation::Background, true) => "Background",
            (Relation::Background, false) => "Background to",
            (Relation::SameEvent, _) => "Same event",
            (Relation::Related, _) => "Related",
        }
    }
}

// The enums come from `snake_enum!`, which cannot mark a `#[default]` variant.
#[allow(clippy::derivable_impls)]
impl Default for Evidence {
    fn default() -> Self {
        Self::NoneProvided
    }
}

#[allow(clippy::derivable_impls)]
impl Default for Urgency {
    fn default() -> Self {
        Self::Routine
    }
}

/// An absolute http(s) URL.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
#[cfg_attr(feature = "openapi", derive(ToSchema), schema(value_type = String))]
pub struct WebUrl(String);

impl WebUrl {
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, FieldError> {
        if raw.len() > limits::URL {
            return Err(FieldError::new(
                field,
                format!("must be at most {} characters", limits::URL),
            ));
        }
        let url = url::Url::parse(raw)
            .map_err(|e| FieldError::new(field, format!("is not a valid URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(FieldError::new(field, "must be an http or https URL"));
        }
        Ok(Self(url.into()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where a development's information comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Source {
    pub name: SourceName,
    pub kind: SourceKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<WebUrl>,
}

/// A link from a response to the development it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct RespondsTo {
    pub development: DevelopmentId,
    pub stance: Stance,
}

/// The role of whoever issues a command. Ordered: admin > editor > reporter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub enum Role {
    Reporter,
    Editor,
    Admin,
}

impl Role {
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Reporter => "reporter",
            Role::Editor => "editor",
            Role::Admin => "admin",
        }
    }
    pub fn at_least(&self, other: Role) -> bool {
        *self >= other
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "reporter" => Ok(Role::Reporter),
            "editor" => Ok(Role::Editor),
            "admin" => Ok(Role::Admin),
            _ => Err(format!(
                "unknown role `{s}`, expected reporter, editor or admin"
            )),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The ASCII table folds a name exactly as the long way does.
        #[test]
        fn ascii_names_fold_as_the_long_way_does(name in "[ -~\t\n]{0,40}") {
            proptest::prop_assert_eq!(Actor::normalise(&name), Actor::normalise_unicode(&name));
        }
    }

    #[test]
    fn every_ascii_character_and_pair_folds_as_the_long_way_does() {
        let all: Vec<char> = (0u8..128).map(char::from).collect();
        for a in &all {
            for b in &all {
                let name = format!("{a}{b}");
                assert_eq!(
                    Actor::normalise(&name),
                    Actor::normalise_unicode(&name),
                    "{name:?}"
                );
            }
        }
        // Confusables still fold on the fast path: `1` and `l` are one prototype, `rn` and `m`.
        assert_eq!(Actor::normalise("Al Qaeda"), Actor::normalise("A1 Qaeda"));
        assert_eq!(Actor::normalise("modern"), Actor::normalise("rnodern"));
        assert_eq!(
            Actor::normalise("  Iran   UN  "),
            Actor::normalise("Iran UN")
        );
    }

    #[test]
    fn slugs_are_lowercase_words_joined_by_single_hyphens() {
        assert!(Slug::parse("slug", "campaign-hack-2026").is_ok());
        for bad in ["", "Campaign", "a--b", "-a", "a-", "a b", "ä"] {
            let err = Slug::parse("slug", bad).unwrap_err();
            assert_eq!(err.field, "slug", "{bad:?}");
        }
    }

    #[test]
    fn headlines_are_trimmed_bounded_and_single_line() {
        assert_eq!(
            Headline::parse("headline", "  Hack  ").unwrap().as_str(),
            "Hack"
        );
        assert!(Headline::parse("headline", "   ").is_err());
        assert!(Headline::parse("headline", &"x".repeat(limits::HEADLINE + 1)).is_err());
        assert!(Headline::parse("headline", &"é".repeat(limits::HEADLINE)).is_ok());
        assert!(Headline::parse("headline", "two\nlines").is_err());
        assert!(Body::parse("body", "two\nlines").is_ok());
        assert!(Body::parse("body", "bell\u{7}").is_err());
    }

    #[test]
    fn actors_match_by_normalised_key_and_keep_their_spelling() {
        let a = Actor::parse("actors", "Fancy  Bear").unwrap();
        let b = Actor::parse("actors", "fancy bear").unwrap();
        assert_eq!(a.key(), b.key());
        assert_eq!(a.name(), "Fancy  Bear");
        // Compatibility forms fold together: full-width letters are the same actor.
        assert_eq!(Actor::parse("actors", "ＡＰＴ28").unwrap().key(), "apt28");
        let list = Actor::parse_list("actors", &["GRU".into(), "gru".into()]).unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].name(), "GRU");
    }

    #[test]
    fn invisible_characters_are_stripped_from_actor_names_and_a_name_of_nothing_else_is_refused() {
        for (raw, shown) in [
            ("APT\u{200b}28", "APT28"),
            ("APT28\u{00ad}", "APT28"),
            ("\u{202e}APT28\u{202c}", "APT28"),
            ("\u{2066}GRU\u{2069}", "GRU"),
            ("\u{feff}Sandworm", "Sandworm"),
            ("Fancy\u{200d} Bear", "Fancy Bear"),
            ("\u{061c}Lazarus\u{200f}", "Lazarus"),
        ] {
            let actor = Actor::parse("actors", raw).unwrap();
            assert_eq!(actor.name(), shown, "{raw:?}");
            assert_eq!(actor.key(), Actor::parse("actors", shown).unwrap().key());
        }
        for invisible in [
            "\u{200b}",
            "\u{200b}\u{00ad}",
            " \u{202e} ",
            "\u{2066}\u{2069}\u{feff}",
        ] {
            let err = Actor::parse("actors", invisible).unwrap_err();
            assert_eq!(err.field, "actors", "{invisible:?}");
        }
        // Visible letters of every script stay.
        for kept in ["Ким", "Αθήνα", "東京", "مجموعة", "é"] {
            assert_eq!(Actor::parse("actors", kept).unwrap().name(), kept);
        }
    }

    #[test]
    fn confusable_spellings_of_an_actor_share_one_key_and_keep_their_spelling() {
        let latin = Actor::parse("actors", "APT28").unwrap();
        for spelling in [
            "\u{0410}\u{0420}\u{0422}28", // Cyrillic А, Р, Т
            "apt28",
            "ＡＰＴ28",
            "APT\u{200b}28",
            "APT28\u{00ad}",
            "\u{0391}PT28", // Greek Alpha
        ] {
            let actor = Actor::parse("actors", spelling).unwrap();
            assert_eq!(actor.key(), latin.key(), "{spelling:?}");
        }
        let cyrillic = Actor::parse("actors", "\u{0410}\u{0420}\u{0422}28").unwrap();
        assert_eq!(cyrillic.name(), "\u{0410}\u{0420}\u{0422}28");
        let list = Actor::parse_list(
            "actors",
            &[
                "APT28".into(),
                "\u{0410}\u{0420}\u{0422}28".into(),
                "GRU".into(),
            ],
        )
        .unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].name(), "APT28");
        // Different actors stay different.
        assert_ne!(latin.key(), Actor::parse("actors", "APT29").unwrap().key());
        assert_ne!(
            Actor::parse("actors", "Fancy Bear").unwrap().key(),
            Actor::parse("actors", "Cozy Bear").unwrap().key()
        );
    }

    #[test]
    fn a_key_normalises_to_itself() {
        for name in [
            "APT28",
            "\u{0410}\u{0420}\u{0422}28",
            "Mandiant",
            "Fancy  Bear",
            "İstanbul",
            "ǅemal",
            "ΣΊΣΥΦΟΣ",
            "straße",
            "ﬁnance",
            "Ⅻ",
            "l1I|",
            "0O",
            "ｍ",
            "Кремль",
        ] {
            let key = Actor::normalise(name);
            assert_eq!(Actor::normalise(&key), key, "{name:?}");
        }
    }

    #[test]
    fn an_actor_read_from_the_log_gets_its_key_from_its_name_not_from_storage() {
        // Written before keys folded confusables: the stored key is the old rule's.
        let stored = serde_json::json!({"name": "\u{0410}\u{0420}\u{0422}28", "key": "арт28"});
        let actor: Actor = serde_json::from_value(stored).unwrap();
        assert_eq!(actor.name(), "\u{0410}\u{0420}\u{0422}28");
        assert_eq!(actor.key(), Actor::parse("actors", "APT28").unwrap().key());
        // One without a key at all reads too, and writing it back carries the key.
        let actor: Actor = serde_json::from_value(serde_json::json!({"name": "GRU"})).unwrap();
        let written = serde_json::to_value(&actor).unwrap();
        assert_eq!(written["key"], Actor::normalise("GRU"));
        // A name stored with invisible characters is read as stored; its key ignores them.
        let actor: Actor = serde_json::from_value(
            serde_json::json!({"name": "APT\u{200b}28", "key": "apt\u{200b}28"}),
        )
        .unwrap();
        assert_eq!(actor.name(), "APT\u{200b}28");
        assert_eq!(actor.key(), Actor::normalise("APT28"));
    }

    #[test]
    fn occurred_at_is_read_only_in_rfc_3339s_own_form_from_1900() {
        for odd in [
            "0000-01-01T00:00:00Z",
            "-0001-01-01T00:00:00Z",
            "+002026-10-01T09:30:00Z",
            "2026-12-31T23:59:60Z",
            "1899-12-31T23:59:59Z",
            "1900-01-01T00:30:00+01:00",
            "2026-10-01",
            "2026-10-01T09:30:00",
            "2026-10-01T09:30Z",
            "26-10-01T09:30:00Z",
            "",
        ] {
            let err = moment::parse("occurred_at", odd).unwrap_err();
            assert_eq!(err.field, "occurred_at", "{odd:?}");
        }
        for fine in [
            "1900-01-01T00:00:00Z",
            "2026-10-01T09:30:00.123456+02:00",
            "2026-10-01t09:30:00z",
        ] {
            assert!(moment::parse("occurred_at", fine).is_ok(), "{fine:?}");
        }
        let now = chrono::Utc::now();
        assert!(moment::check("occurred_at", now + chrono::Duration::minutes(4), now).is_ok());
        assert!(moment::check("occurred_at", now + chrono::Duration::minutes(6), now).is_err());
        assert!(moment::check("occurred_at", moment::earliest(), now).is_ok());
        assert!(moment::check(
            "occurred_at",
            moment::earliest() - chrono::Duration::seconds(1),
            now
        )
        .is_err());
    }

    #[test]
    fn enums_name_the_accepted_values_when_refusing() {
        let err = "hack".parse::<DevelopmentKind>().unwrap_err();
        assert!(err.contains("hack_reported"), "{err}");
        assert_eq!(
            "denial_issued".parse::<DevelopmentKind>().unwrap(),
            DevelopmentKind::DenialIssued
        );
    }

    #[test]
    fn urls_must_be_absolute_web_urls() {
        assert!(WebUrl::parse("source.url", "https://example.org/report").is_ok());
        assert!(WebUrl::parse("source.url", "javascript:alert(1)").is_err());
        assert!(WebUrl::parse("source.url", "/relative").is_err());
    }

    #[test]
    fn tags_are_sorted_and_deduplicated() {
        let tags = Tag::parse_list(
            "tags",
            &["Elections".into(), "cyber".into(), "elections".into()],
        )
        .unwrap();
        let tags: Vec<_> = tags.iter().map(Tag::as_str).collect();
        assert_eq!(tags, ["cyber", "elections"]);
    }
}
