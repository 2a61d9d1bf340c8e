//! The feeds of the read side: Atom (RFC 4287), JSON Feed 1.1 and IPTC ninjs 3.0, rendered from
//! the reader model by pure functions (no I/O, no clock).
//!
//! What a reader may see is decided once, by [`StoryView::timeline`]: pending and rejected
//! developments never reach a feed, retracted ones stay in it, marked. Every text from the model
//! goes into Atom through `atom_syndication`'s types, which escape it; characters XML 1.0 cannot
//! carry at all are replaced by U+FFFD first, so no headline can make a feed ill-formed.
//!
//! URLs are built from `base`, the server's absolute base URL without a trailing slash
//! (`http://127.0.0.1:8080`):
//!
//! | what | URL |
//! | --- | --- |
//! | story page | `{base}/stories/{slug}` |
//! | a development on it | `{base}/stories/{slug}#development-{id}` ([`development_anchor`]) |
//! | story feeds | `{base}/v1/stories/{slug}/feed.atom`, `…/feed.json` |
//! | actor page | `{base}/actors/{key}`, the key percent-encoded ([`encode_segment`]) |
//! | actor feeds | `{base}/v1/actors/{key}/feed.atom`, `…/feed.json` |
//! | front page feeds | `{base}/v1/feed.atom`, `…/feed.json` |
//!
//! Identifiers do not depend on `base`, so a feed served under another host name keeps its ids:
//! a story feed is `urn:uuid:<story id>`, an actor feed `urn:newsroom:actor:<encoded key>`, and an
//! entry is `urn:uuid:<development id>` in every feed it appears in (story or actor, Atom or JSON),
//! which is what lets a reader recognise the same development across feeds.
//!
//! Each format has a module of its own ([`atom`], [`json_feed`], [`ninjs`]); this one holds what
//! they share: the URLs, the identifiers, the dates and the texts made from the model.
//!
//! What JSON Feed has no field for is under `_newsroom`, whose `about` names its description
//! (`json_feed_extension.md`, served at `/v1/feeds/json-feed-extension`); `.ci/conformance.py`
//! validates the feeds and the ninjs item against the official schemas in CI. A feed's own author
//! stands for every entry: no entry names who filed or approved it. A ninjs item carries a story's
//! related stories as `associations` with `rel`.

pub mod atom;
pub mod json_feed;
pub mod ninjs;
#[cfg(test)]
mod tests;

use std::collections::HashSet;

use atom_syndication::FixedDateTime;
use chrono::{DateTime, SecondsFormat, Utc};
use newsroom_domain::Source;
use uuid::Uuid;

use newsroom_readmodel::model::{
    ActorEntry, DevelopmentStanding, DevelopmentView, FrontPageEntry, StoryView,
};

/// `Content-Type` of the Atom feeds.
pub const ATOM_CONTENT_TYPE: &str = "application/atom+xml; charset=utf-8";
/// `Content-Type` of the JSON feeds (JSON Feed 1.1).
pub const JSON_FEED_CONTENT_TYPE: &str = "application/feed+json";
/// `Content-Type` of the ninjs export.
pub const NINJS_CONTENT_TYPE: &str = "application/json";

/// Who a feed or entry is by when no reporter's name was recorded.
const FEED_AUTHOR: &str = "newsroom";

/// Percent-encodes one path segment: everything but ASCII letters, digits and `*-._` is encoded,
/// a space as `%20` (never `+`, which a path keeps literally). Actor keys go through this.
pub fn encode_segment(raw: &str) -> String {
    // `byte_serialize` is the form encoding: it writes a space as `+` and a literal `+` as `%2B`,
    // so turning every `+` of its output into `%20` gives a correct path segment.
    url::form_urlencoded::byte_serialize(raw.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// The fragment that names a development on its story page, without the `#`.
pub fn development_anchor(id: Uuid) -> String {
    format!("development-{id}")
}

/// The reader's page of a story.
pub fn story_url(base: &str, slug: &str) -> String {
    format!("{}/stories/{}", trim(base), encode_segment(slug))
}

/// A development's place on its story page.
pub fn development_url(base: &str, slug: &str, id: Uuid) -> String {
    format!("{}#{}", story_url(base, slug), development_anchor(id))
}

/// The reader's page of an actor, by matching key.
pub fn actor_url(base: &str, actor_key: &str) -> String {
    format!("{}/actors/{}", trim(base), encode_segment(actor_key))
}

fn story_feed_url(base: &str, slug: &str, ext: &str) -> String {
    format!(
        "{}/v1/stories/{}/feed.{ext}",
        trim(base),
        encode_segment(slug)
    )
}

fn actor_feed_url(base: &str, actor_key: &str, ext: &str) -> String {
    format!(
        "{}/v1/actors/{}/feed.{ext}",
        trim(base),
        encode_segment(actor_key)
    )
}

fn trim(base: &str) -> &str {
    base.trim_end_matches('/')
}

fn urn(id: Uuid) -> String {
    format!("urn:uuid:{id}")
}

fn actor_feed_id(actor_key: &str) -> String {
    format!("urn:newsroom:actor:{}", encode_segment(actor_key))
}

/// RFC 3339 in UTC with a `Z`, fractional seconds only when there are some.
fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn fixed(at: DateTime<Utc>) -> FixedDateTime {
    at.fixed_offset()
}

/// Text as XML 1.0 can carry it. The domain refuses control characters, but the log is trusted
/// and older limits may have let some in, and U+FFFE/U+FFFF pass the domain's check while XML
/// forbids them: replace what XML cannot hold with U+FFFD. Line ends become `\n`, which is what
/// every XML parser would turn them into anyway.
fn xml_text(raw: &str) -> String {
    raw.replace("\r\n", "\n")
        .chars()
        .map(|c| match c {
            '\r' => '\n',
            '\t'
            | '\n'
            | '\u{20}'..='\u{D7FF}'
            | '\u{E000}'..='\u{FFFD}'
            | '\u{10000}'..='\u{10FFFF}' => c,
            _ => '\u{FFFD}',
        })
        .collect()
}

fn is_retracted(d: &DevelopmentView) -> bool {
    d.state == DevelopmentStanding::Retracted
}

/// The corrections readers are told about: those made after the development was published.
/// A development's title in a feed: its current headline, marked when retracted.
fn development_title(d: &DevelopmentView) -> String {
    if is_retracted(d) {
        format!("[Retracted] {}", d.headline)
    } else {
        d.headline.clone()
    }
}

/// A development's title in an actor's feed, where the story has to be named too.
fn actor_entry_title(entry: &ActorEntry) -> String {
    let d = &entry.development;
    let prefix = if is_retracted(d) { "[Retracted] " } else { "" };
    format!("{prefix}{}: {}", entry.story_headline, d.headline)
}

/// `attribution_claimed` → `attribution claimed`.
fn spoken(snake: &str) -> String {
    snake.replace('_', " ")
}

fn source_line(source: &Source) -> String {
    let mut line = format!("Source: {} ({})", source.name, spoken(source.kind.as_str()));
    if let Some(url) = &source.url {
        line.push_str(", ");
        line.push_str(url.as_str());
    }
    line
}

/// A development as plain text: the retraction first (so nobody reads the body without knowing),
/// then the body, the source and every correction readers were told about.
fn development_text(d: &DevelopmentView) -> String {
    let mut parts: Vec<String> = Vec::new();
    if is_retracted(d) {
        parts.push(match &d.retraction {
            Some(r) => format!("Retracted: {}", r.reason),
            None => "Retracted.".to_owned(),
        });
    }
    if !d.body.trim().is_empty() {
        parts.push(d.body.clone());
    }
    if let Some(source) = &d.source {
        parts.push(source_line(source));
    }
    for c in d.reader_corrections() {
        parts.push(format!("Correction: {}", c.note));
    }
    if parts.is_empty() {
        // JSON Feed wants some content; the headline is all there is.
        d.headline.clone()
    } else {
        parts.join("\n\n")
    }
}

/// When readers last saw the story change: its opening or the latest change to a visible
/// development. Story-level revisions (headline, tags) carry no time of their own in the model,
/// and the view's own `updated_at` also moves for pending and rejected developments, which must
/// not show, so neither is used. Never goes backwards: a visible development stays visible.
fn last_visible_change(view: &StoryView) -> (i64, DateTime<Utc>) {
    view.timeline()
        .into_iter()
        .map(|d| (d.updated_position, d.updated_at))
        .fold((0, view.opened_at), |(p, t), (dp, dt)| {
            (p.max(dp), t.max(dt))
        })
}

/// The first occurrence of each development, in the given order: an actor page lists one
/// (actor, development) pair per entry, and an Atom feed must not repeat an id.
fn distinct_entries(entries: &[ActorEntry]) -> Vec<&ActorEntry> {
    let mut seen = HashSet::new();
    entries
        .iter()
        .filter(|e| e.development.is_visible() && seen.insert(e.development.id))
        .collect()
}

/// The front page's feeds.
fn front_page_feed_url(base: &str, ext: &str) -> String {
    format!("{}/v1/feed.{ext}", trim(base))
}

/// The identifier of the front page's feeds.
const FRONT_PAGE_FEED_ID: &str = "urn:newsroom:front-page";

/// A story's line on the front page as a feed's summary: how many developments, and when the
/// newest happened.
fn front_page_summary(e: &FrontPageEntry) -> String {
    let count = match e.development_count {
        1 => "1 development".to_owned(),
        n => format!("{n} developments"),
    };
    match e.last_occurred_at {
        Some(t) => format!("{count}; the latest happened {}.", rfc3339(t)),
        None => format!("{count}."),
    }
}

/// When a story's line last changed for readers: its newest published development, or its
/// own last change.
fn front_page_updated(e: &FrontPageEntry) -> DateTime<Utc> {
    e.last_recorded_at.unwrap_or(e.updated_at)
}
