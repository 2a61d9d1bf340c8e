//! The IPTC ninjs 3.0 export of a story: one item with one association per development
//! readers may see, and the stories related to it.

use std::collections::HashSet;

use newsroom_domain::{Source, Urgency};
use serde_json::{json, Value};

use newsroom_readmodel::model::{DevelopmentView, RelatedStory, StoryView};

use super::{
    actor_url, development_anchor, development_text, development_url, is_retracted,
    last_visible_change, rfc3339, spoken, story_url,
};

/// The ninjs schema the export is valid against.
pub const NINJS_SCHEMA: &str = "http://www.iptc.org/std/ninjs/ninjs-schema_3.0.json#";

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
