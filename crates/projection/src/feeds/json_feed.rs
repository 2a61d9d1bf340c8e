//! The JSON feeds (JSON Feed 1.1) of a story, an actor and the front page, and the `_newsroom`
//! extension their items carry.

use serde_json::{json, Value};

use newsroom_readmodel::model::{ActorEntry, DevelopmentView, FrontPageEntry, StoryView};

use super::{
    actor_entry_title, actor_feed_url, actor_url, development_text, development_title,
    development_url, distinct_entries, front_page_feed_url, front_page_summary, front_page_updated,
    is_retracted, rfc3339, story_feed_url, story_url, trim, urn, FEED_AUTHOR,
};

/// The JSON Feed version this module writes.
pub const JSON_FEED_VERSION: &str = "https://jsonfeed.org/version/1.1";

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

/// The JSON Feed 1.1 of a story: the same entries as [`story_atom`](super::atom::story_atom), in
/// the same order.
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

/// The JSON Feed 1.1 of an actor's page: the same entries as
/// [`actor_atom`](super::atom::actor_atom), in the same order.
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

/// The JSON Feed 1.1 of the front page: the same entries as
/// [`front_page_atom`](super::atom::front_page_atom).
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
