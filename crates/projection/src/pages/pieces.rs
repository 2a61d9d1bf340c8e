//! The small pieces the pages are made of: times, paragraphs, tags, actors, sources, what a
//! correction changed, a retraction, and a development's card.

use chrono::{DateTime, SecondsFormat, Utc};
use maud::{html, Markup};
use newsroom_domain::{Actor, Evidence, Source, SourceKind};
use uuid::Uuid;

use newsroom_readmodel::model::{
    CorrectionView, DevelopmentStanding, DevelopmentView, FieldChange, StoryStatus, StoryView,
    Verdict,
};

use super::words::{
    evidence_class, evidence_label, field_label, kind_label, source_kind_label, stance_class,
    stance_label, story_status_class, story_status_label, urgency_class, urgency_label,
};
use super::{actor_path, anchor};

/// A `<time>` element: machine-readable RFC 3339, human-readable UTC, with the UTC reading in
/// its `title` too. [`TIME_SCRIPT_PATH`](newsroom_web::page::TIME_SCRIPT_PATH) shows it in the
/// reader's own time zone, leaving UTC on hover; without script the page reads in UTC.
pub(super) fn time(at: &DateTime<Utc>) -> Markup {
    let utc = at.format("%-d %B %Y, %H:%M UTC").to_string();
    html! {
        time datetime=(at.to_rfc3339_opts(SecondsFormat::Secs, true)) title=(utc) { (utc) }
    }
}

/// Splits free text into paragraphs at blank lines; single line breaks stay as `<br>`.
fn paragraph_lines(text: &str) -> Vec<Vec<&str>> {
    let mut paragraphs: Vec<Vec<&str>> = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    for line in text.lines() {
        let line = line.trim_end();
        if line.trim().is_empty() {
            if !current.is_empty() {
                paragraphs.push(std::mem::take(&mut current));
            }
        } else {
            current.push(line);
        }
    }
    if !current.is_empty() {
        paragraphs.push(current);
    }
    paragraphs
}

pub(super) fn paragraphs(text: &str) -> Markup {
    html! {
        @for lines in paragraph_lines(text) {
            p {
                @for (i, line) in lines.iter().enumerate() {
                    @if i > 0 { br; }
                    (line)
                }
            }
        }
    }
}

pub(super) fn tag_list(tags: &[String]) -> Markup {
    html! {
        @if !tags.is_empty() {
            ul.tags aria-label="Topics" {
                @for tag in tags {
                    li.tag { (tag) }
                }
            }
        }
    }
}

pub(super) fn status_badge(status: StoryStatus) -> Markup {
    html! {
        span.badge.story-status.(story_status_class(status)) { (story_status_label(status)) }
    }
}

fn actor_links(actors: &[Actor]) -> Markup {
    labelled_actors("Named", actors)
}

/// A labelled list of actors, each linking to their page; nothing when there are none.
fn labelled_actors(label: &str, actors: &[Actor]) -> Markup {
    html! {
        @if !actors.is_empty() {
            div.actors {
                span.meta-label { (label) }
                ul.actor-list {
                    @for actor in actors {
                        li { a.actor href=(actor_path(actor.name())) { (actor.name()) } }
                    }
                }
            }
        }
    }
}

/// Who a claim blames, who else it names (the target, as a rule) and who makes it (its
/// source). A claim filed without its accused named says only who it names: the roles of its
/// actors are not known.
pub(super) fn claim_roles(claim: &DevelopmentView) -> Markup {
    let others: Vec<Actor> = claim
        .actors
        .iter()
        .filter(|a| !claim.accused.iter().any(|x| x.key() == a.key()))
        .cloned()
        .collect();
    html! {
        @if claim.accused.is_empty() {
            (actor_links(&claim.actors))
        } @else {
            (labelled_actors("Accused", &claim.accused))
            (labelled_actors("Also named", &others))
        }
        @if let Some(source) = &claim.source {
            div.actors.claimant {
                span.meta-label { "Claimed by" }
                " " (source.name.as_str())
            }
        }
    }
}

/// A source URL is linked only if it really is an absolute http(s) URL: the log is trusted on
/// read, so this is the last line of defence against a `javascript:` link.
pub(super) fn safe_web_url(raw: &str) -> Option<String> {
    let url = url::Url::parse(raw).ok()?;
    (matches!(url.scheme(), "http" | "https") && url.host_str().is_some()).then(|| url.into())
}

fn source_line(source: &Source) -> Markup {
    html! {
        div.source {
            span.meta-label { "Source" }
            span.source-name {
                @match source.url.as_ref().and_then(|u| safe_web_url(u.as_str())) {
                    Some(href) => {
                        a href=(href) rel="nofollow noopener" { (source.name.as_str()) }
                    }
                    None => { (source.name.as_str()) }
                }
            }
            " "
            span.source-kind { "(" (source_kind_label(source.kind)) ")" }
        }
    }
}

/// A value a correction changed, in words rather than JSON.
fn describe_value(field: &str, value: &serde_json::Value) -> String {
    describe_change_value(field, value, &|t| {
        t.format("%-d %B %Y, %H:%M UTC").to_string()
    })
}

/// A corrected field's value in words (labels for kinds and evidence, times through `time`), as
/// the reader pages and the desk show a correction's before and after.
pub fn describe_change_value(
    field: &str,
    value: &serde_json::Value,
    time: &dyn Fn(DateTime<Utc>) -> String,
) -> String {
    use serde_json::Value;
    match value {
        Value::Null => "none".to_owned(),
        Value::String(s) if field == "occurred_at" => DateTime::parse_from_rfc3339(s)
            .map(|t| time(t.with_timezone(&Utc)))
            .unwrap_or_else(|_| s.clone()),
        Value::String(s) if field == "evidence" => s
            .parse::<Evidence>()
            .map(|e| evidence_label(e).to_owned())
            .unwrap_or_else(|_| s.clone()),
        Value::String(s) => s.clone(),
        Value::Array(items) if items.is_empty() => "none".to_owned(),
        Value::Array(items) => items
            .iter()
            .map(|item| describe_change_value(field, item, time))
            .collect::<Vec<_>>()
            .join(", "),
        Value::Object(map) if field == "source" => {
            let mut parts = Vec::new();
            if let Some(Value::String(name)) = map.get("name") {
                parts.push(name.clone());
            }
            if let Some(Value::String(kind)) = map.get("kind") {
                parts.push(
                    kind.parse::<SourceKind>()
                        .map(|k| source_kind_label(k).to_owned())
                        .unwrap_or_else(|_| kind.clone()),
                );
            }
            if let Some(Value::String(url)) = map.get("url") {
                parts.push(url.clone());
            }
            if parts.is_empty() {
                value.to_string()
            } else {
                parts.join(" · ")
            }
        }
        other => other.to_string(),
    }
}

fn field_change(change: &FieldChange) -> Markup {
    html! {
        li.change {
            span.change-field { (field_label(&change.field)) ": " }
            del.change-before { (describe_value(&change.field, &change.before)) }
            span.change-arrow aria-hidden="true" { " → " }
            span.visually-hidden { " changed to " }
            ins.change-after { (describe_value(&change.field, &change.after)) }
        }
    }
}

fn correction(c: &CorrectionView) -> Markup {
    html! {
        section.correction aria-label="Correction" {
            p.correction-title {
                strong { "Correction" }
                " · "
                (time(&c.corrected_at))
            }
            div.correction-note { (paragraphs(&c.note)) }
            @if !c.changes.is_empty() {
                ul.changes aria-label="What changed" {
                    @for change in &c.changes { (field_change(change)) }
                }
            }
        }
    }
}

fn retraction(v: &Verdict) -> Markup {
    html! {
        section.retraction aria-label="Retraction" {
            p.retraction-title {
                strong { "Retracted" }
                " · "
                (time(&v.at))
            }
            div.retraction-reason {
                span.meta-label { "Reason" }
                (paragraphs(&v.reason))
            }
        }
    }
}

/// How links from a development card reach other developments: inside the story page they are
/// in-page anchors; elsewhere they go to the story page.
pub(super) struct Links<'a> {
    pub(super) story: Option<&'a StoryView>,
    pub(super) base: String,
}

impl Links<'_> {
    fn development(&self, id: Uuid) -> String {
        format!("{}#{}", self.base, anchor(id))
    }
}

/// One development as readers see it: the same card on the story page, the fragment and the
/// actor page.
pub(super) fn development_card(d: &DevelopmentView, links: &Links<'_>) -> Markup {
    let retracted = d.state == DevelopmentStanding::Retracted;
    let answered = d.responds_to.map(|link| {
        let target = links
            .story
            .and_then(|s| s.development(link.development))
            .filter(|t| t.is_visible());
        (link, target)
    });
    html! {
        article.development.retracted[retracted] id=(anchor(d.id)) data-kind=(d.kind.as_str()) {
            header.development-header {
                p.labels {
                    span.badge.kind { (kind_label(d.kind)) }
                    @if retracted { " " span.badge.badge-retracted { "Retracted" } }
                    @if d.reader_corrections().next().is_some() { " " span.badge.badge-corrected { "Corrected" } }
                    " "
                    span.badge.urgency.(urgency_class(d.urgency)) { (urgency_label(d.urgency)) }
                    " "
                    span.badge.evidence.(evidence_class(d.evidence)) { (evidence_label(d.evidence)) }
                }
                h3.development-headline {
                    @if retracted { del { (d.headline) } } @else { (d.headline) }
                }
                dl.times {
                    div {
                        dt { "Happened" }
                        dd { (time(&d.occurred_at)) }
                    }
                    div {
                        dt { "Reported" }
                        dd { (time(&d.recorded_at)) }
                    }
                }
            }
            @if let Some(v) = d.retraction.as_ref().filter(|_| retracted) {
                (retraction(v))
            }
            @if let Some((link, target)) = answered {
                p.responds-to {
                    span.badge.stance.(stance_class(link.stance)) { (stance_label(link.stance)) }
                    " "
                    @match target {
                        Some(t) => {
                            a href=(links.development(t.id)) { (t.headline) }
                        }
                        None if links.story.is_none() => {
                            a href=(links.development(link.development)) { "an earlier development" }
                        }
                        None => { "an earlier development" }
                    }
                }
            }
            @if !d.body.trim().is_empty() {
                div.development-body {
                    @if retracted { del { (paragraphs(&d.body)) } } @else { (paragraphs(&d.body)) }
                }
            }
            (actor_links(&d.actors))
            @if let Some(source) = &d.source { (source_line(source)) }
            @for c in d.reader_corrections() { (correction(c)) }
        }
    }
}
