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

use std::collections::HashSet;

use atom_syndication::{Category, Content, Entry, Feed, FixedDateTime, Generator, Link, Person};
use chrono::{DateTime, SecondsFormat, Utc};
use newsroom_domain::{Source, Urgency};
use serde_json::{json, Value};
use uuid::Uuid;

use newsroom_readmodel::model::{
    ActorEntry, DevelopmentStanding, DevelopmentView, FrontPageEntry, RelatedStory, StoryView,
};

/// `Content-Type` of the Atom feeds.
pub const ATOM_CONTENT_TYPE: &str = "application/atom+xml; charset=utf-8";
/// `Content-Type` of the JSON feeds (JSON Feed 1.1).
pub const JSON_FEED_CONTENT_TYPE: &str = "application/feed+json";
/// `Content-Type` of the ninjs export.
pub const NINJS_CONTENT_TYPE: &str = "application/json";

/// The JSON Feed version this module writes.
pub const JSON_FEED_VERSION: &str = "https://jsonfeed.org/version/1.1";
/// The ninjs schema the export is valid against.
pub const NINJS_SCHEMA: &str = "http://www.iptc.org/std/ninjs/ninjs-schema_3.0.json#";

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

// ---------------------------------------------------------------------------------------------
// Atom

fn atom_link(href: String, rel: &str, mime_type: &str) -> Link {
    Link {
        href,
        rel: rel.to_owned(),
        mime_type: Some(mime_type.to_owned()),
        ..Link::default()
    }
}

fn atom_person(name: &str) -> Person {
    Person {
        name: xml_text(name),
        ..Person::default()
    }
}

fn atom_entry(d: &DevelopmentView, title: String, url: String) -> Entry {
    let kind = d.kind.as_str();
    Entry {
        id: urn(d.id),
        title: xml_text(&title).into(),
        updated: fixed(d.updated_at),
        published: Some(fixed(d.published_at.unwrap_or(d.recorded_at))),
        // No entry names who filed it: the staff behind a development stay on the desk, as on
        // the pages; the feed's author stands for every entry.
        authors: vec![],
        categories: vec![Category {
            term: kind.to_owned(),
            label: Some(spoken(kind)),
            ..Category::default()
        }],
        links: vec![atom_link(url, "alternate", "text/html")],
        content: Some(Content {
            value: Some(xml_text(&development_text(d))),
            content_type: Some("text".to_owned()),
            ..Content::default()
        }),
        ..Entry::default()
    }
}

fn atom_feed_shell(id: String, title: &str, updated: DateTime<Utc>, links: Vec<Link>) -> Feed {
    Feed {
        id,
        title: xml_text(title).into(),
        updated: fixed(updated),
        // RFC 4287 wants an author on the feed unless every entry has one.
        authors: vec![atom_person(FEED_AUTHOR)],
        generator: Some(Generator {
            value: FEED_AUTHOR.to_owned(),
            ..Generator::default()
        }),
        links,
        ..Feed::default()
    }
}

/// The Atom feed of a story: one entry per development readers see, newest first (by when it
/// happened). A correction moves the entry's `updated`; a retraction keeps the entry, titled
/// "[Retracted] …" with the reason at the top of its content.
pub fn story_atom(view: &StoryView, base: &str) -> String {
    let (_, updated) = last_visible_change(view);
    let mut feed = atom_feed_shell(
        urn(view.id),
        &view.headline,
        updated,
        vec![
            atom_link(
                story_feed_url(base, &view.slug, "atom"),
                "self",
                "application/atom+xml",
            ),
            atom_link(story_url(base, &view.slug), "alternate", "text/html"),
            atom_link(
                story_feed_url(base, &view.slug, "json"),
                "alternate",
                JSON_FEED_CONTENT_TYPE,
            ),
        ],
    );
    if !view.summary.trim().is_empty() {
        feed.subtitle = Some(xml_text(&view.summary).into());
    }
    feed.categories = view
        .tags
        .iter()
        .map(|t| Category {
            term: xml_text(t),
            ..Category::default()
        })
        .collect();
    feed.entries = view
        .timeline()
        .into_iter()
        .rev()
        .map(|d| {
            atom_entry(
                d,
                development_title(d),
                development_url(base, &view.slug, d.id),
            )
        })
        .collect();
    feed.to_string()
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

/// The Atom feed of the front page: one entry per story, in the front page's order (the newest
/// published development first), each linking to the story's page.
pub fn front_page_atom(entries: &[FrontPageEntry], base: &str) -> String {
    let updated = entries
        .iter()
        .map(front_page_updated)
        .max()
        .unwrap_or(DateTime::UNIX_EPOCH);
    let mut feed = atom_feed_shell(
        FRONT_PAGE_FEED_ID.to_owned(),
        "All stories",
        updated,
        vec![
            atom_link(
                front_page_feed_url(base, "atom"),
                "self",
                "application/atom+xml",
            ),
            atom_link(format!("{}/", trim(base)), "alternate", "text/html"),
            atom_link(
                front_page_feed_url(base, "json"),
                "alternate",
                JSON_FEED_CONTENT_TYPE,
            ),
        ],
    );
    feed.entries = entries
        .iter()
        .map(|e| Entry {
            id: urn(e.id),
            title: xml_text(&e.headline).into(),
            updated: fixed(front_page_updated(e)),
            links: vec![atom_link(
                story_url(base, &e.slug),
                "alternate",
                "text/html",
            )],
            summary: Some(xml_text(&front_page_summary(e)).into()),
            categories: e
                .tags
                .iter()
                .map(|t| Category {
                    term: xml_text(t),
                    ..Category::default()
                })
                .collect(),
            ..Entry::default()
        })
        .collect();
    feed.to_string()
}

/// The JSON Feed 1.1 of the front page: the same entries as [`front_page_atom`].
pub fn front_page_json_feed(entries: &[FrontPageEntry], base: &str) -> Value {
    let items: Vec<Value> = entries
        .iter()
        .map(|e| {
            json!({
                "id": urn(e.id),
                "url": story_url(base, &e.slug),
                "title": e.headline,
                "content_text": front_page_summary(e),
                "date_modified": rfc3339(front_page_updated(e)),
                "tags": e.tags,
            })
        })
        .collect();
    json!({
        "version": JSON_FEED_VERSION,
        "title": "All stories",
        "home_page_url": format!("{}/", trim(base)),
        "feed_url": front_page_feed_url(base, "json"),
        "authors": [{ "name": FEED_AUTHOR }],
        "items": items,
    })
}

/// The Atom feed of an actor's page. `entries` come newest first and keep that order; a
/// development listed twice appears once. An empty page is dated at the Unix epoch, there being
/// no change to date it by.
pub fn actor_atom(actor_name: &str, actor_key: &str, entries: &[ActorEntry], base: &str) -> String {
    let entries = distinct_entries(entries);
    let updated = entries
        .iter()
        .map(|e| e.development.updated_at)
        .max()
        .unwrap_or(DateTime::UNIX_EPOCH);
    let mut feed = atom_feed_shell(
        actor_feed_id(actor_key),
        actor_name,
        updated,
        vec![
            atom_link(
                actor_feed_url(base, actor_key, "atom"),
                "self",
                "application/atom+xml",
            ),
            atom_link(actor_url(base, actor_key), "alternate", "text/html"),
            atom_link(
                actor_feed_url(base, actor_key, "json"),
                "alternate",
                JSON_FEED_CONTENT_TYPE,
            ),
        ],
    );
    feed.subtitle = Some(xml_text(&format!("Developments naming {actor_name}")).into());
    feed.entries = entries
        .into_iter()
        .map(|e| {
            atom_entry(
                &e.development,
                actor_entry_title(e),
                development_url(base, &e.story_slug, e.development.id),
            )
        })
        .collect();
    feed.to_string()
}

// ---------------------------------------------------------------------------------------------
// JSON Feed

/// Where the `_newsroom` extension is described (JSON Feed 1.1: an extension object says so in
/// `about`).
pub const EXTENSION_PATH: &str = "/v1/feeds/json-feed-extension";

/// The description [`EXTENSION_PATH`] serves.
pub const EXTENSION_DOCUMENT: &str = include_str!("../json_feed_extension.md");

fn extension_about(base: &str) -> String {
    format!("{}{EXTENSION_PATH}", trim(base))
}

/// What JSON Feed has no field for, under the `_newsroom` extension key.
fn newsroom_extension(d: &DevelopmentView, base: &str) -> Value {
    json!({
        "about": extension_about(base),
        "development_id": d.id,
        "kind": d.kind.as_str(),
        "state": if is_retracted(d) { "retracted" } else { "published" },
        "evidence": d.evidence.as_str(),
        "urgency": d.urgency.as_str(),
        "occurred_at": rfc3339(d.occurred_at),
        "actors": d.actors.iter().map(|a| json!({
            "name": a.name(),
            "key": a.key(),
            "url": actor_url(base, a.name()),
        })).collect::<Vec<_>>(),
        "source": d.source.as_ref().map(|s| json!({
            "name": s.name.as_str(),
            "kind": s.kind.as_str(),
            "url": s.url.as_ref().map(|u| u.as_str()),
        })),
        "responds_to": d.responds_to.map(|r| json!({
            "id": urn(r.development),
            "stance": r.stance.as_str(),
        })),
        "corrections": d.reader_corrections().map(|c| json!({
            "note": c.note,
            "corrected_at": rfc3339(c.corrected_at),
            "fields": c.changes.iter().map(|f| f.field.as_str()).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "retraction": d.retraction.as_ref().filter(|_| is_retracted(d)).map(|r| json!({
            "reason": r.reason,
            "retracted_at": rfc3339(r.at),
        })),
    })
}

fn json_item(d: &DevelopmentView, title: String, url: String, base: &str) -> Value {
    let mut item = json!({
        "id": urn(d.id),
        "url": url,
        "title": title,
        "content_text": development_text(d),
        "date_published": rfc3339(d.published_at.unwrap_or(d.recorded_at)),
        "date_modified": rfc3339(d.updated_at),
        "tags": [d.kind.as_str()],
        "_newsroom": newsroom_extension(d, base),
    });
    if let Some(url) = d.source.as_ref().and_then(|s| s.url.as_ref()) {
        item["external_url"] = json!(url.as_str());
    }
    item
}

/// The JSON Feed 1.1 of a story: the same entries as [`story_atom`], in the same order.
pub fn story_json_feed(view: &StoryView, base: &str) -> Value {
    let items: Vec<Value> = view
        .timeline()
        .into_iter()
        .rev()
        .map(|d| {
            json_item(
                d,
                development_title(d),
                development_url(base, &view.slug, d.id),
                base,
            )
        })
        .collect();
    let mut feed = json!({
        "version": JSON_FEED_VERSION,
        "title": view.headline,
        "home_page_url": story_url(base, &view.slug),
        "feed_url": story_feed_url(base, &view.slug, "json"),
        "authors": [{ "name": FEED_AUTHOR }],
        "items": items,
        "_newsroom": {
            "about": extension_about(base),
            "story_id": view.id,
            "slug": view.slug,
            "status": view.status,
            "tags": view.tags,
        },
    });
    if !view.summary.trim().is_empty() {
        feed["description"] = json!(view.summary);
    }
    feed
}

/// The JSON Feed 1.1 of an actor's page: the same entries as [`actor_atom`], in the same order.
pub fn actor_json_feed(
    actor_name: &str,
    actor_key: &str,
    entries: &[ActorEntry],
    base: &str,
) -> Value {
    let items: Vec<Value> = distinct_entries(entries)
        .into_iter()
        .map(|e| {
            let mut item = json_item(
                &e.development,
                actor_entry_title(e),
                development_url(base, &e.story_slug, e.development.id),
                base,
            );
            item["_newsroom"]["story"] = json!({
                "id": e.story_id,
                "slug": e.story_slug,
                "headline": e.story_headline,
                "url": story_url(base, &e.story_slug),
            });
            item
        })
        .collect();
    json!({
        "version": JSON_FEED_VERSION,
        "title": actor_name,
        "description": format!("Developments naming {actor_name}"),
        "home_page_url": actor_url(base, actor_key),
        "feed_url": actor_feed_url(base, actor_key, "json"),
        "authors": [{ "name": FEED_AUTHOR }],
        "items": items,
        "_newsroom": {
            "about": extension_about(base),
            "actor": { "name": actor_name, "key": actor_key },
        },
    })
}

// ---------------------------------------------------------------------------------------------
// ninjs

/// ninjs urgency: 1 is the most urgent, 9 the least.
fn ninjs_urgency(urgency: Urgency) -> u8 {
    match urgency {
        Urgency::Flash => 1,
        Urgency::Priority => 3,
        Urgency::Routine => 5,
    }
}

fn ninjs_info_source(source: &Source) -> Value {
    let mut out = json!({ "name": source.name.as_str(), "role": source.kind.as_str() });
    if let Some(url) = &source.url {
        out["uri"] = json!(url.as_str());
    }
    out
}

fn ninjs_actor(name: &str, key: &str, base: &str) -> Value {
    json!({ "name": name, "literal": key, "uri": actor_url(base, key), "rel": "actor" })
}

fn ninjs_body(text: String) -> Value {
    json!([{
        "role": "main",
        "contentType": "text/plain",
        "charCount": text.chars().count(),
        "value": text,
    }])
}

/// A related story as a ninjs object inside the story's `associations`.
fn ninjs_related(r: &RelatedStory, base: &str) -> Value {
    json!({
        "name": r.slug,
        "rel": r.relation.as_str(),
        "uri": story_url(base, &r.slug),
        "altIds": [{ "role": "story-id", "value": r.id }],
        "type": "text",
        "headlines": [{ "role": "main", "value": r.headline }],
    })
}

/// One development as a ninjs object inside the story's `associations`.
fn ninjs_development(d: &DevelopmentView, slug: &str, base: &str) -> Value {
    let mut descriptions: Vec<Value> = d
        .reader_corrections()
        .map(|c| json!({ "role": "correction", "value": c.note }))
        .collect();
    if let Some(r) = d.retraction.as_ref().filter(|_| is_retracted(d)) {
        descriptions.push(json!({ "role": "retraction", "value": r.reason }));
    }
    let mut item = json!({
        "name": development_anchor(d.id),
        "uri": development_url(base, slug, d.id),
        "altIds": [{ "role": "development-id", "value": d.id }],
        "type": "text",
        "version": d.updated_position.to_string(),
        "firstCreated": rfc3339(d.published_at.unwrap_or(d.recorded_at)),
        "versionCreated": rfc3339(d.updated_at),
        "contentCreated": rfc3339(d.occurred_at),
        "pubStatus": if is_retracted(d) { "canceled" } else { "usable" },
        "urgency": ninjs_urgency(d.urgency),
        "headlines": [{ "role": "main", "value": d.headline }],
        "bodies": ninjs_body(development_text(d)),
        "genres": [{ "literal": d.kind.as_str(), "name": spoken(d.kind.as_str()) }],
        "subjects": d.actors.iter().map(|a| ninjs_actor(a.name(), a.key(), base)).collect::<Vec<_>>(),
        "infoSources": d.source.iter().map(ninjs_info_source).collect::<Vec<_>>(),
    });
    if !descriptions.is_empty() {
        item["descriptions"] = Value::Array(descriptions);
    }
    item
}

/// The story's timeline as plain text, oldest first, for the ninjs body.
fn timeline_text(view: &StoryView) -> String {
    let mut parts: Vec<String> = Vec::new();
    if !view.summary.trim().is_empty() {
        parts.push(view.summary.clone());
    }
    for d in view.timeline() {
        let when = d.occurred_at.format("%Y-%m-%d %H:%M UTC");
        let mark = if is_retracted(d) { "[RETRACTED] " } else { "" };
        parts.push(format!(
            "{mark}{when} — {}\n{}",
            d.headline,
            development_text(d)
        ));
    }
    parts.join("\n\n")
}

/// The story as an IPTC ninjs 3.0 item, for news systems.
///
/// Choices, where the model and ninjs do not line up one to one:
/// - **Schema.** ninjs 3.0 closes its root object (`unevaluatedProperties: false`) and names the
///   schema in `standard`, so the export says `standard: {name, version, schema}` rather than a
///   `$schema` key, which would make it invalid. For the same reason the tags are not written as
///   `keywords` (gone from 3.0) but as `subjects` with `rel: "tag"`.
/// - **Actors** go under `subjects` (`rel: "actor"`, `literal` = matching key, `uri` = actor
///   page): the model cannot tell a person from an organisation, and putting one under the
///   wrong heading would be a false statement to the receiving system.
/// - **`pubStatus`** of the story is always `usable`: nothing in the model withdraws a whole story
///   (closing only stops new developments), and a retraction is per development, shown rather than
///   removed. Each retracted development is an association with `pubStatus: "canceled"`, its
///   reason under `descriptions` (role `retraction`) and at the top of its body.
/// - **`uri`** is the story page; `altIds` carries the story's UUID. **`version`** is the global
///   position of the last change readers saw (`"0"` while no development is visible), so it only
///   grows; `versionCreated` is its time. What counts as a visible change: the opening and every
///   change to a visible development. Headline and tag revisions carry no time of their own in
///   [`StoryView`], so they move neither `version` nor any feed's `updated`.
/// - **`bodies`** hold one `text/plain` body: the summary, then the timeline oldest first, each
///   retracted development marked `[RETRACTED]`.
/// - **`infoSources`** are the distinct sources of the visible developments (role = source kind).
/// - **Related stories** are `associations` too, after the developments: `name` the story's
///   slug, `uri` its page, `rel` the relation as seen from this story (`follow_up`,
///   `followed_up_by`, `background`, `background_to`, `same_event`, `related`), its headline and
///   UUID (`altIds`, role `story-id`).
pub fn story_ninjs(view: &StoryView, base: &str) -> Value {
    story_ninjs_with(view, &[], base)
}

/// [`story_ninjs`] with the stories related to this one among its `associations`.
pub fn story_ninjs_with(view: &StoryView, related: &[RelatedStory], base: &str) -> Value {
    let timeline = view.timeline();
    let (position, updated) = last_visible_change(view);

    let mut sources: Vec<&Source> = Vec::new();
    let mut actor_keys = HashSet::new();
    let mut subjects: Vec<Value> = Vec::new();
    for d in &timeline {
        if let Some(s) = &d.source {
            if !sources.contains(&s) {
                sources.push(s);
            }
        }
        for a in &d.actors {
            if actor_keys.insert(a.key()) {
                subjects.push(ninjs_actor(a.name(), a.key(), base));
            }
        }
    }
    subjects.extend(
        view.tags
            .iter()
            .map(|t| json!({ "name": t, "literal": t, "rel": "tag" })),
    );

    let mut item = json!({
        "standard": { "name": "ninjs", "version": "3.0", "schema": NINJS_SCHEMA },
        "uri": story_url(base, &view.slug),
        "altIds": [{ "role": "story-id", "value": view.id }],
        "type": "text",
        "representationType": "full",
        "version": position.to_string(),
        "firstCreated": rfc3339(view.opened_at),
        "versionCreated": rfc3339(updated),
        "pubStatus": "usable",
        "slugline": view.slug,
        "headlines": [{ "role": "main", "value": view.headline }],
        "bodies": ninjs_body(timeline_text(view)),
        "infoSources": sources.into_iter().map(ninjs_info_source).collect::<Vec<_>>(),
        "subjects": subjects,
        "associations": timeline
            .iter()
            .map(|d| ninjs_development(d, &view.slug, base))
            .chain(related.iter().map(|r| ninjs_related(r, base)))
            .collect::<Vec<_>>(),
    });
    if !view.summary.trim().is_empty() {
        item["descriptions"] = json!([{ "role": "summary", "value": view.summary }]);
    }
    item
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};
    use newsroom_domain::{
        Actor, Body, Development, DevelopmentChanges, DevelopmentId, DevelopmentKind, Evidence,
        Headline, Note, PublicationStatus, Slug, Source, SourceKind, SourceName, StoryEvent,
        StoryId, Summary, Tag, Urgency, WebUrl,
    };
    use newsroom_readmodel::model::{LoggedEvent, StoryView};
    use proptest::prelude::*;

    const ATOM_NS: &str = "http://www.w3.org/2005/Atom";
    const BASE: &str = "http://127.0.0.1:8080";
    const HOSTILE: &str = r#"<script>alert(1)</script> & "quotes" ]]> 'apostrophes'"#;
    const HOSTILE_DEV: &str = "<b>Bold</b> & <![CDATA[ x ]]> &amp; \"q\"";
    const PENDING: &str = "Pending scoop nobody may read";
    const REJECTED: &str = "Rejected rumour nobody may read";
    const NOTE: &str = "The group was misnamed <sic> & is now correct";
    const REASON: &str = "The source recanted & withdrew <everything>";

    fn t(minutes: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap() + Duration::minutes(minutes)
    }

    /// A story's log, written event by event.
    struct Log {
        story: Uuid,
        events: Vec<LoggedEvent>,
    }

    impl Log {
        fn new() -> Self {
            Self {
                story: Uuid::now_v7(),
                events: Vec::new(),
            }
        }

        fn push(&mut self, minutes: i64, author: Option<&str>, event: StoryEvent) {
            let position = self.events.len() as i64 + 1;
            self.events.push(LoggedEvent {
                position,
                story_id: self.story,
                sequence: position,
                recorded_at: t(minutes),
                author: author.map(str::to_owned),
                event,
            });
        }

        fn open(&mut self, headline: &str) {
            let story = StoryId::from(self.story);
            self.push(
                0,
                Some("Editor Ed"),
                StoryEvent::StoryOpened {
                    id: story,
                    slug: Slug::parse("slug", "campaign-hack-2026").unwrap(),
                    headline: Headline::parse("headline", headline).unwrap(),
                    summary: Summary::parse("summary", "Who broke into the campaign & how.")
                        .unwrap(),
                    tags: Tag::parse_list("tags", &["cyber".into(), "elections".into()]).unwrap(),
                    review_required: true,
                },
            );
        }

        fn record(
            &mut self,
            minutes: i64,
            author: Option<&str>,
            headline: &str,
            actors: &[&str],
            source: Option<Source>,
            status: PublicationStatus,
        ) -> Uuid {
            let id = Uuid::now_v7();
            let development = Development {
                accused: vec![],
                id: DevelopmentId::from(id),
                kind: DevelopmentKind::AttributionClaimed,
                headline: Headline::parse("headline", headline).unwrap(),
                body: Body::parse("body", &format!("Body of {headline}\nsecond line")).unwrap(),
                occurred_at: t(minutes - 5),
                recorded_at: t(minutes),
                actors: Actor::parse_list(
                    "actors",
                    &actors.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
                )
                .unwrap(),
                source,
                evidence: Evidence::Documentary,
                urgency: Urgency::Flash,
                responds_to: None,
            };
            self.push(
                minutes,
                author,
                StoryEvent::DevelopmentRecorded {
                    embargo_until: None,
                    development,
                    status,
                    fingerprint: "fp".into(),
                    hold: None,
                },
            );
            id
        }

        fn view(&self) -> StoryView {
            StoryView::fold(&self.events).unwrap()
        }
    }

    fn ministry() -> Source {
        Source {
            name: SourceName::parse("source.name", "Ministry of <Foreign> Affairs").unwrap(),
            kind: SourceKind::OfficialStatement,
            url: Some(WebUrl::parse("source.url", "https://example.org/a?b=1&c=2").unwrap()),
        }
    }

    /// What the tests look for in the outputs.
    struct Scenario {
        view: StoryView,
        corrected: Uuid,
        retracted: Uuid,
        approved: Uuid,
    }

    /// A story with a published development that gets corrected, one pending forever, one
    /// rejected, one approved after review and one retracted; hostile text in the headlines.
    fn scenario() -> Scenario {
        let mut log = Log::new();
        log.open(HOSTILE);
        let corrected = log.record(
            10,
            Some("Ana <Reporter>"),
            "Fancy Bear blamed for the hack",
            &["Fancy Bear", "GRU"],
            Some(ministry()),
            PublicationStatus::Published,
        );
        log.record(
            12,
            Some("Ana <Reporter>"),
            PENDING,
            &["Secret Actor"],
            None,
            PublicationStatus::PendingReview,
        );
        let rejected = log.record(
            14,
            None,
            REJECTED,
            &["Rumour Mill"],
            None,
            PublicationStatus::PendingReview,
        );
        log.push(
            15,
            Some("Editor Ed"),
            StoryEvent::DevelopmentRejected {
                development: rejected.into(),
                reason: Note::parse("reason", "Unsourced").unwrap(),
            },
        );
        let retracted = log.record(
            20,
            None,
            HOSTILE_DEV,
            &["fancy  bear"],
            Some(ministry()),
            PublicationStatus::Published,
        );
        let approved = log.record(
            22,
            Some("Bo"),
            "Campaign confirms the breach",
            &["Campaign"],
            None,
            PublicationStatus::PendingReview,
        );
        log.push(
            25,
            Some("Editor Ed"),
            StoryEvent::DevelopmentApproved {
                development: approved.into(),
            },
        );
        log.push(
            30,
            Some("Editor Ed"),
            StoryEvent::DevelopmentCorrected {
                development: corrected.into(),
                note: Note::parse("note", NOTE).unwrap(),
                changes: DevelopmentChanges {
                    headline: Some(
                        Headline::parse("headline", "APT28 blamed for the hack").unwrap(),
                    ),
                    ..DevelopmentChanges::default()
                },
            },
        );
        log.push(
            40,
            Some("Editor Ed"),
            StoryEvent::DevelopmentRetracted {
                development: retracted.into(),
                reason: Note::parse("reason", REASON).unwrap(),
            },
        );
        // The last event is invisible: it must not move the feed's `updated`.
        log.record(
            50,
            None,
            "Another pending one",
            &[],
            None,
            PublicationStatus::PendingReview,
        );
        Scenario {
            view: log.view(),
            corrected,
            retracted,
            approved,
        }
    }

    fn rfc3339_of(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap_or_else(|e| panic!("{text:?} is not RFC 3339: {e}"))
            .with_timezone(&Utc)
    }

    fn atom_children<'a, 'i>(
        node: roxmltree::Node<'a, 'i>,
        name: &'a str,
    ) -> impl Iterator<Item = roxmltree::Node<'a, 'i>> + 'a {
        node.children()
            .filter(move |c| c.has_tag_name((ATOM_NS, name)))
    }

    fn only_text(node: roxmltree::Node<'_, '_>, name: &str) -> String {
        let found: Vec<_> = atom_children(node, name).collect();
        assert_eq!(
            found.len(),
            1,
            "exactly one <{name}> in <{}>",
            node.tag_name().name()
        );
        found[0].text().unwrap_or_default().to_owned()
    }

    fn parse(xml: &str) -> roxmltree::Document<'_> {
        roxmltree::Document::parse(xml).expect("well-formed XML")
    }

    /// Checks what RFC 4287 requires and returns (feed updated, entries with their ids).
    fn check_atom<'a, 'i>(
        doc: &'a roxmltree::Document<'i>,
        self_href: &str,
    ) -> (DateTime<Utc>, Vec<(String, roxmltree::Node<'a, 'i>)>) {
        let feed = doc.root_element();
        assert!(feed.has_tag_name((ATOM_NS, "feed")));
        assert!(!only_text(feed, "id").is_empty());
        only_text(feed, "title");
        let updated = rfc3339_of(&only_text(feed, "updated"));
        let selfs: Vec<_> = atom_children(feed, "link")
            .filter(|l| l.attribute("rel") == Some("self"))
            .collect();
        assert_eq!(selfs.len(), 1, "one self link");
        assert_eq!(selfs[0].attribute("href"), Some(self_href));
        assert!(atom_children(feed, "author").count() >= 1, "a feed author");

        let mut ids = HashSet::new();
        let mut entries = Vec::new();
        for entry in atom_children(feed, "entry") {
            let id = only_text(entry, "id");
            assert!(ids.insert(id.clone()), "duplicate entry id {id}");
            only_text(entry, "title");
            let entry_updated = rfc3339_of(&only_text(entry, "updated"));
            assert!(entry_updated <= updated, "an entry newer than its feed");
            for published in atom_children(entry, "published") {
                rfc3339_of(published.text().unwrap_or_default());
            }
            entries.push((id, entry));
        }
        (updated, entries)
    }

    fn find<'a, 'i>(
        entries: &[(String, roxmltree::Node<'a, 'i>)],
        id: Uuid,
    ) -> roxmltree::Node<'a, 'i> {
        entries
            .iter()
            .find(|(e, _)| *e == format!("urn:uuid:{id}"))
            .map(|(_, n)| *n)
            .unwrap_or_else(|| panic!("no entry for {id}"))
    }

    #[test]
    fn story_atom_holds_what_rfc_4287_requires_and_only_what_readers_may_see() {
        let s = scenario();
        let xml = story_atom(&s.view, BASE);
        let doc = parse(&xml);
        let (updated, entries) = check_atom(
            &doc,
            "http://127.0.0.1:8080/v1/stories/campaign-hack-2026/feed.atom",
        );
        let feed = doc.root_element();
        assert_eq!(only_text(feed, "id"), format!("urn:uuid:{}", s.view.id));
        assert_eq!(
            only_text(feed, "title"),
            HOSTILE,
            "the hostile headline survives as text"
        );
        assert!(!xml.contains("<script>"), "markup in a headline is escaped");
        let alternate = atom_children(feed, "link")
            .find(|l| {
                l.attribute("rel") == Some("alternate") && l.attribute("type") == Some("text/html")
            })
            .unwrap();
        assert_eq!(
            alternate.attribute("href"),
            Some("http://127.0.0.1:8080/stories/campaign-hack-2026")
        );

        // Three visible developments; pending and rejected ones appear nowhere.
        assert_eq!(entries.len(), 3);
        for hidden in [
            PENDING,
            REJECTED,
            "Secret Actor",
            "Rumour Mill",
            "Another pending one",
        ] {
            assert!(!xml.contains(hidden), "{hidden:?} leaked into the feed");
        }
        // The last (pending) event does not date the feed; the retraction, the last visible change, does.
        assert_eq!(updated, t(40));

        let corrected = find(&entries, s.corrected);
        assert_eq!(rfc3339_of(&only_text(corrected, "updated")), t(30));
        assert_eq!(rfc3339_of(&only_text(corrected, "published")), t(10));
        assert_eq!(only_text(corrected, "title"), "APT28 blamed for the hack");
        let content = only_text(corrected, "content");
        assert!(
            content.contains(&format!("Correction: {NOTE}")),
            "{content}"
        );
        assert!(
            content.contains("Body of Fancy Bear blamed for the hack"),
            "{content}"
        );
        assert!(content.contains("Source: Ministry of <Foreign> Affairs (official statement), https://example.org/a?b=1&c=2"));
        // Who filed it stays on the desk, as on the pages: the feed's own author stands for
        // every entry.
        assert!(atom_children(corrected, "author").next().is_none());
        let category = atom_children(corrected, "category").next().unwrap();
        assert_eq!(category.attribute("term"), Some("attribution_claimed"));
        let link = atom_children(corrected, "link").next().unwrap();
        assert_eq!(
            link.attribute("href").unwrap(),
            format!(
                "http://127.0.0.1:8080/stories/campaign-hack-2026#development-{}",
                s.corrected
            )
        );

        let retracted = find(&entries, s.retracted);
        assert_eq!(
            only_text(retracted, "title"),
            format!("[Retracted] {HOSTILE_DEV}")
        );
        assert_eq!(rfc3339_of(&only_text(retracted, "updated")), t(40));
        let content = only_text(retracted, "content");
        assert!(
            content.starts_with(&format!("Retracted: {REASON}")),
            "{content}"
        );
        assert_eq!(
            atom_children(retracted, "author").count(),
            0,
            "no reporter recorded"
        );

        let approved = find(&entries, s.approved);
        assert_eq!(
            rfc3339_of(&only_text(approved, "published")),
            t(25),
            "published on approval"
        );
    }

    #[test]
    fn story_json_feed_is_json_feed_1_1() {
        let s = scenario();
        let feed = story_json_feed(&s.view, BASE);
        assert_eq!(feed["version"], "https://jsonfeed.org/version/1.1");
        assert_eq!(feed["title"], HOSTILE);
        assert_eq!(
            feed["feed_url"],
            "http://127.0.0.1:8080/v1/stories/campaign-hack-2026/feed.json"
        );
        assert_eq!(
            feed["home_page_url"],
            "http://127.0.0.1:8080/stories/campaign-hack-2026"
        );
        let items = feed["items"].as_array().unwrap();
        assert_eq!(items.len(), 3);
        let mut ids = HashSet::new();
        for item in items {
            let id = item["id"].as_str().expect("an id");
            assert!(ids.insert(id.to_owned()), "duplicate id {id}");
            let text = item["content_text"]
                .as_str()
                .or(item["content_html"].as_str());
            assert!(text.is_some_and(|t| !t.is_empty()), "{item}");
            rfc3339_of(item["date_published"].as_str().unwrap());
            rfc3339_of(item["date_modified"].as_str().unwrap());
            assert_eq!(item["tags"], serde_json::json!(["attribution_claimed"]));
        }
        let text = feed.to_string();
        for hidden in [PENDING, REJECTED, "Secret Actor", "Another pending one"] {
            assert!(!text.contains(hidden), "{hidden:?} leaked into the feed");
        }

        let item = |id: Uuid| {
            items
                .iter()
                .find(|i| i["id"] == format!("urn:uuid:{id}"))
                .unwrap()
        };
        let corrected = item(s.corrected);
        assert_eq!(
            rfc3339_of(corrected["date_modified"].as_str().unwrap()),
            t(30)
        );
        assert_eq!(corrected["_newsroom"]["corrections"][0]["note"], NOTE);
        assert_eq!(
            corrected["_newsroom"]["corrections"][0]["fields"],
            serde_json::json!(["headline"])
        );
        assert_eq!(corrected["_newsroom"]["state"], "published");
        assert_eq!(corrected["_newsroom"]["evidence"], "documentary");
        assert_eq!(corrected["_newsroom"]["urgency"], "flash");
        assert!(corrected.get("authors").is_none());
        assert_eq!(corrected["external_url"], "https://example.org/a?b=1&c=2");
        assert!(corrected["content_text"].as_str().unwrap().contains(NOTE));

        let retracted = item(s.retracted);
        assert_eq!(retracted["title"], format!("[Retracted] {HOSTILE_DEV}"));
        assert_eq!(retracted["_newsroom"]["state"], "retracted");
        assert_eq!(retracted["_newsroom"]["retraction"]["reason"], REASON);
        assert!(retracted.get("authors").is_none());
    }

    #[test]
    fn a_correction_made_before_publication_is_not_a_correction_to_readers() {
        let mut log = Log::new();
        log.open("Story");
        let id = log.record(
            10,
            None,
            "Draft",
            &[],
            None,
            PublicationStatus::PendingReview,
        );
        log.push(
            12,
            Some("Editor Ed"),
            StoryEvent::DevelopmentCorrected {
                development: id.into(),
                note: Note::parse("note", "Tidied before approval").unwrap(),
                changes: DevelopmentChanges {
                    headline: Some(Headline::parse("headline", "Final").unwrap()),
                    ..DevelopmentChanges::default()
                },
            },
        );
        log.push(
            15,
            Some("Editor Ed"),
            StoryEvent::DevelopmentApproved {
                development: id.into(),
            },
        );
        let view = log.view();
        let xml = story_atom(&view, BASE);
        assert!(xml.contains("Final"));
        assert!(!xml.contains("Tidied before approval"), "{xml}");
        let feed = story_json_feed(&view, BASE);
        assert_eq!(
            feed["items"][0]["_newsroom"]["corrections"],
            serde_json::json!([])
        );
    }

    fn fancy_bear_entries(view: &StoryView) -> Vec<ActorEntry> {
        let mut entries: Vec<ActorEntry> = view
            .actor_entries()
            .into_iter()
            .filter(|e| e.actor.key() == "fancy bear")
            .collect();
        entries.reverse(); // newest first, as the actor page lists them
        entries
    }

    #[test]
    fn actor_feeds_link_to_the_percent_encoded_key_and_name_the_story() {
        let s = scenario();
        let entries = fancy_bear_entries(&s.view);
        assert_eq!(entries.len(), 2);

        let xml = actor_atom("Fancy Bear", "fancy bear", &entries, BASE);
        let doc = parse(&xml);
        let (updated, atom_entries) = check_atom(
            &doc,
            "http://127.0.0.1:8080/v1/actors/fancy%20bear/feed.atom",
        );
        assert_eq!(updated, t(40));
        assert_eq!(atom_entries.len(), 2);
        let feed = doc.root_element();
        assert_eq!(only_text(feed, "id"), "urn:newsroom:actor:fancy%20bear");
        assert_eq!(only_text(feed, "title"), "Fancy Bear");
        assert!(atom_children(feed, "link").any(|l| {
            l.attribute("rel") == Some("alternate")
                && l.attribute("href") == Some("http://127.0.0.1:8080/actors/fancy%20bear")
        }));
        // Newest first, as given; titles name the story.
        assert_eq!(atom_entries[0].0, format!("urn:uuid:{}", s.retracted));
        assert_eq!(
            only_text(atom_entries[0].1, "title"),
            format!("[Retracted] {HOSTILE}: {HOSTILE_DEV}")
        );
        assert_eq!(
            only_text(atom_entries[1].1, "title"),
            format!("{HOSTILE}: APT28 blamed for the hack")
        );

        let json = actor_json_feed("Fancy Bear", "fancy bear", &entries, BASE);
        assert_eq!(json["version"], JSON_FEED_VERSION);
        assert_eq!(json["title"], "Fancy Bear");
        assert_eq!(
            json["feed_url"],
            "http://127.0.0.1:8080/v1/actors/fancy%20bear/feed.json"
        );
        assert_eq!(
            json["home_page_url"],
            "http://127.0.0.1:8080/actors/fancy%20bear"
        );
        let items = json["items"].as_array().unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0]["id"], format!("urn:uuid:{}", s.retracted));
        assert_eq!(items[1]["_newsroom"]["story"]["headline"], HOSTILE);
        for item in items {
            rfc3339_of(item["date_published"].as_str().unwrap());
            rfc3339_of(item["date_modified"].as_str().unwrap());
        }
    }

    #[test]
    fn no_feed_nor_ninjs_names_who_filed_approved_corrected_or_retracted_anything() {
        // The pages and the JSON API never name the staff behind a development (their tokens'
        // names); the feeds and the ninjs export must not either.
        let s = scenario();
        let entries = fancy_bear_entries(&s.view);
        let outputs = [
            story_atom(&s.view, BASE),
            story_json_feed(&s.view, BASE).to_string(),
            story_ninjs(&s.view, BASE).to_string(),
            actor_atom("Fancy Bear", "fancy bear", &entries, BASE),
            actor_json_feed("Fancy Bear", "fancy bear", &entries, BASE).to_string(),
        ];
        for (i, text) in outputs.iter().enumerate() {
            for staff in ["Ana <Reporter>", "Ana &lt;Reporter&gt;", "Editor Ed"] {
                assert!(!text.contains(staff), "output {i} names {staff:?}: {text}");
            }
        }
    }

    #[test]
    fn an_actor_feed_lists_a_development_once_and_dates_an_empty_page_at_the_epoch() {
        let s = scenario();
        let mut entries = fancy_bear_entries(&s.view);
        entries.push(entries[0].clone());
        let xml = actor_atom("Fancy Bear", "fancy bear", &entries, BASE);
        let doc = parse(&xml);
        let (_, atom_entries) = check_atom(
            &doc,
            "http://127.0.0.1:8080/v1/actors/fancy%20bear/feed.atom",
        );
        assert_eq!(atom_entries.len(), 2);
        assert_eq!(
            actor_json_feed("Fancy Bear", "fancy bear", &entries, BASE)["items"]
                .as_array()
                .unwrap()
                .len(),
            2
        );

        let hostile = "<Evil> & \"Co\"";
        let key = Actor::normalise(hostile);
        let xml = actor_atom(hostile, &key, &[], BASE);
        let doc = parse(&xml);
        let (updated, atom_entries) = check_atom(
            &doc,
            &format!(
                "http://127.0.0.1:8080/v1/actors/{}/feed.atom",
                encode_segment(&key)
            ),
        );
        assert_eq!(updated, DateTime::UNIX_EPOCH);
        assert!(atom_entries.is_empty());
        assert_eq!(only_text(doc.root_element(), "title"), hostile);
    }

    #[test]
    fn keys_are_encoded_as_one_path_segment() {
        assert_eq!(encode_segment("fancy bear"), "fancy%20bear");
        assert_eq!(encode_segment("a/b?c#d+e%f"), "a%2Fb%3Fc%23d%2Be%25f");
        assert_eq!(encode_segment("ümit"), "%C3%BCmit");
        assert_eq!(encode_segment("campaign-hack-2026"), "campaign-hack-2026");
        assert_eq!(
            actor_url("http://h:1/", "apt 28"),
            "http://h:1/actors/apt%2028",
            "a trailing slash on the base is tolerated"
        );
    }

    /// Top-level properties of ninjs 3.0 (its root object admits no others).
    const NINJS_PROPERTIES: &[&str] = &[
        "uri",
        "type",
        "representationType",
        "profile",
        "version",
        "firstCreated",
        "versionCreated",
        "contentCreated",
        "embargoedUntil",
        "pubStatus",
        "urgency",
        "copyrightHolder",
        "copyrightNotice",
        "usageTerms",
        "edNote",
        "language",
        "descriptions",
        "bodies",
        "headlines",
        "people",
        "organisations",
        "places",
        "subjects",
        "events",
        "eventDetails",
        "plannedCoverage",
        "objects",
        "infoSources",
        "title",
        "by",
        "slugline",
        "located",
        "renditions",
        "associations",
        "altIds",
        "trustIndicators",
        "standard",
        "genres",
        "expires",
        "rightsInfo",
    ];

    fn check_ninjs_object(item: &Value, extra: &[&str]) {
        let object = item.as_object().expect("an object");
        for key in object.keys() {
            assert!(
                NINJS_PROPERTIES.contains(&key.as_str()) || extra.contains(&key.as_str()),
                "{key} is not a ninjs 3.0 property"
            );
        }
        assert!(item["uri"]
            .as_str()
            .is_some_and(|u| url::Url::parse(u).is_ok()));
        assert!(item["version"].is_string());
        assert!(["usable", "withheld", "canceled"].contains(&item["pubStatus"].as_str().unwrap()));
        assert!(!item["headlines"].as_array().unwrap().is_empty());
        assert!(item["headlines"][0]["value"].is_string());
        rfc3339_of(item["firstCreated"].as_str().unwrap());
        rfc3339_of(item["versionCreated"].as_str().unwrap());
        for body in item["bodies"].as_array().unwrap() {
            assert!(body["value"].is_string());
        }
    }

    #[test]
    fn story_ninjs_is_a_ninjs_3_item_with_one_association_per_visible_development() {
        let s = scenario();
        let item = story_ninjs(&s.view, BASE);
        check_ninjs_object(&item, &[]);
        assert_eq!(
            item["uri"],
            "http://127.0.0.1:8080/stories/campaign-hack-2026"
        );
        assert_eq!(item["standard"]["schema"], NINJS_SCHEMA);
        assert_eq!(item["type"], "text");
        assert_eq!(item["pubStatus"], "usable");
        assert_eq!(
            item["headlines"][0],
            serde_json::json!({"role": "main", "value": HOSTILE})
        );
        assert_eq!(rfc3339_of(item["firstCreated"].as_str().unwrap()), t(0));
        assert_eq!(rfc3339_of(item["versionCreated"].as_str().unwrap()), t(40));

        let body = item["bodies"][0]["value"].as_str().unwrap();
        assert!(
            body.contains(&format!("[RETRACTED] 2026-03-01 12:15 UTC — {HOSTILE_DEV}")),
            "{body}"
        );
        assert!(body.contains(&format!("Correction: {NOTE}")));
        let text = item.to_string();
        for hidden in [
            PENDING,
            REJECTED,
            "Secret Actor",
            "Rumour Mill",
            "Another pending one",
        ] {
            assert!(!text.contains(hidden), "{hidden:?} leaked into ninjs");
        }

        // One source, named by two developments.
        assert_eq!(
            item["infoSources"],
            serde_json::json!([{
                "name": "Ministry of <Foreign> Affairs",
                "role": "official_statement",
                "uri": "https://example.org/a?b=1&c=2",
            }])
        );
        let subjects = item["subjects"].as_array().unwrap();
        let actors: Vec<&str> = subjects
            .iter()
            .filter(|s| s["rel"] == "actor")
            .map(|s| s["name"].as_str().unwrap())
            .collect();
        assert_eq!(actors, ["Fancy Bear", "GRU", "Campaign"], "distinct by key");
        assert!(subjects
            .iter()
            .any(|s| s["uri"] == "http://127.0.0.1:8080/actors/fancy%20bear"));
        assert!(subjects
            .iter()
            .any(|s| s["rel"] == "tag" && s["name"] == "cyber"));

        let associations = item["associations"].as_array().unwrap();
        assert_eq!(associations.len(), 3);
        for association in associations {
            check_ninjs_object(association, &["name", "rel"]);
            assert!(association["name"].is_string());
        }
        let by_id = |id: Uuid| {
            associations
                .iter()
                .find(|a| a["altIds"][0]["value"] == id.to_string())
                .unwrap()
        };
        let retracted = by_id(s.retracted);
        assert_eq!(retracted["pubStatus"], "canceled");
        assert_eq!(retracted["descriptions"][0]["value"], REASON);
        let corrected = by_id(s.corrected);
        assert_eq!(corrected["pubStatus"], "usable");
        assert_eq!(corrected["urgency"], 1);
        assert_eq!(corrected["descriptions"][0]["role"], "correction");
        assert_eq!(
            rfc3339_of(corrected["versionCreated"].as_str().unwrap()),
            t(30)
        );
    }

    #[test]
    fn a_story_without_visible_developments_still_renders_valid_feeds() {
        let mut log = Log::new();
        log.open("Quiet story");
        log.record(
            5,
            None,
            PENDING,
            &[],
            None,
            PublicationStatus::PendingReview,
        );
        let view = log.view();
        let xml = story_atom(&view, BASE);
        let doc = parse(&xml);
        let (updated, entries) = check_atom(
            &doc,
            "http://127.0.0.1:8080/v1/stories/campaign-hack-2026/feed.atom",
        );
        assert_eq!(
            updated,
            t(0),
            "dated by the opening, not by the pending filing"
        );
        assert!(entries.is_empty());
        assert!(!xml.contains(PENDING));
        assert_eq!(story_json_feed(&view, BASE)["items"], serde_json::json!([]));
        let ninjs = story_ninjs(&view, BASE);
        check_ninjs_object(&ninjs, &[]);
        assert_eq!(ninjs["associations"], serde_json::json!([]));
    }

    /// Any text, with the characters that trouble XML (markup, line ends, characters XML 1.0
    /// forbids) far more often than chance would pick them.
    fn nasty_text() -> impl Strategy<Value = String> {
        let nasty = prop::sample::select(vec![
            '\u{0}',
            '\u{1}',
            '\u{8}',
            '\u{b}',
            '\u{c}',
            '\u{1f}',
            '\u{7f}',
            '\u{85}',
            '\r',
            '\n',
            '\t',
            '\u{fffe}',
            '\u{ffff}',
            '<',
            '>',
            '&',
            '"',
            '\'',
            ']',
            ';',
            '#',
            '\u{10ffff}',
        ]);
        prop::collection::vec(prop_oneof![any::<char>(), nasty], 0..40)
            .prop_map(|chars| chars.into_iter().collect())
    }

    proptest! {
        /// Whatever text the model holds, the Atom feed is well-formed and the text comes back
        /// (minus what XML 1.0 cannot carry at all).
        #[test]
        fn any_text_gives_a_well_formed_feed(headline in nasty_text(), body in nasty_text(),
                                             safe in "[^\u{0}-\u{1f}\u{fffe}\u{ffff}]{1,40}") {
            let mut log = Log::new();
            log.open("Story");
            log.record(10, Some("Ana"), "Development", &["Actor"], None, PublicationStatus::Published);
            let mut view = log.view();
            view.headline = safe.clone();
            view.summary = body.clone();
            view.developments[0].headline = headline.clone();
            view.developments[0].body = body;

            let xml = story_atom(&view, BASE);
            let doc = parse(&xml);
            let (_, entries) =
                check_atom(&doc, "http://127.0.0.1:8080/v1/stories/campaign-hack-2026/feed.atom");
            prop_assert_eq!(entries.len(), 1);
            prop_assert_eq!(only_text(doc.root_element(), "title"), safe);
            prop_assert_eq!(only_text(entries[0].1, "title"), xml_text(&headline));

            let actor = actor_atom(&headline, &headline, &view.actor_entries(), BASE);
            prop_assert!(roxmltree::Document::parse(&actor).is_ok());
        }
    }
}
