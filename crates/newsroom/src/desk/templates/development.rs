//! A development as the desk's pages show it: its body, its history, who else has it open, and
//! what changed since a form on it was opened.

use maud::{html, Markup};
use newsroom_projection::pages::words::{
    evidence_label, kind_label, source_kind_label, stance_label, urgency_label,
};
use newsroom_readmodel::{
    CorrectionView, DevelopmentStanding, DevelopmentView, EmbargoStep, EmbargoStepKind,
    FieldChange, StoryView,
};
use uuid::Uuid;

use super::{anchor, safe_web_url, state_class, state_label, text_block, time, Chrome};
use crate::desk::zone::Zone;

fn describe_value(zone: Zone, field: &str, value: &serde_json::Value) -> String {
    newsroom_projection::pages::pieces::describe_change_value(field, value, &|t| zone.display(t))
}

fn field_name(field: &str) -> &str {
    match field {
        "headline" => "Headline",
        "body" => "Text",
        "occurred_at" => "When it happened",
        "actors" => "Named",
        "source" => "Source",
        "evidence" => "Evidence",
        other => other,
    }
}

pub(super) fn changes_list(zone: Zone, changes: &[FieldChange]) -> Markup {
    html! {
        @if !changes.is_empty() {
            ul.changes aria-label="What changed" {
                @for c in changes {
                    li {
                        strong { (field_name(&c.field)) ": " }
                        del { (describe_value(zone, &c.field, &c.before)) }
                        span aria-hidden="true" { " → " }
                        span.visually-hidden { " changed to " }
                        ins { (describe_value(zone, &c.field, &c.after)) }
                    }
                }
            }
        }
    }
}

pub(super) fn who(name: &Option<String>) -> &str {
    name.as_deref().unwrap_or("someone")
}

/// Whether a rejection is its filer's withdrawal.
pub(super) fn is_withdrawal(d: &DevelopmentView, v: &newsroom_readmodel::Verdict) -> bool {
    v.reason == newsroom_domain::WITHDRAWN && v.by.is_some() && v.by == d.filed_by
}

/// "Eda Editor's reason", for the notice over a revised filing.
pub(crate) fn who_rejected(v: &newsroom_readmodel::Verdict) -> String {
    format!("{}’s reason", who(&v.by))
}

pub(super) fn correction_entry(zone: Zone, d: &DevelopmentView, c: &CorrectionView) -> Markup {
    let before_publication = d.published_position.is_none_or(|p| c.position < p);
    html! {
        li.history-correction {
            "Corrected by " strong { (who(&c.by)) } " · " (time(zone, c.corrected_at))
            @if before_publication { " " span.small { "(before publication: readers are not told)" } }
            div.note-quote { span.visually-hidden { "Note: " } (c.note) }
            (changes_list(zone, &c.changes))
        }
    }
}

/// An edit of the filing made while it waited for review: readers are never told of it.
pub(super) fn edit_entry(zone: Zone, e: &CorrectionView) -> Markup {
    html! {
        li.history-edit {
            "Edited by " strong { (who(&e.by)) } " · " (time(zone, e.corrected_at))
            " " span.small { "(before publication: readers are not told)" }
            @if !e.note.is_empty() {
                div.note-quote { span.visually-hidden { "Note: " } (e.note) }
            }
            (changes_list(zone, &e.changes))
        }
    }
}

/// A development's full history: who filed it, who approved it, every correction, and its
/// rejection or retraction.
pub(super) fn history(zone: Zone, d: &DevelopmentView) -> Markup {
    let held = |s: &EmbargoStep| matches!(s.step, EmbargoStepKind::Filed { .. });
    let filed_held = d.embargo_steps.first().is_some_and(held);
    // Held by an embargo at filing and approved by no one: it waited for no review.
    let waited = d.published_position.is_none_or(|p| p != d.position)
        && !(filed_held
            && d.approved_by.is_none()
            && d.state != DevelopmentStanding::PendingReview
            && d.rejection.is_none());
    // An approval under an embargo is not when it was published.
    let approved_at = d
        .embargo_steps
        .iter()
        .find(|s| matches!(s.step, EmbargoStepKind::ApprovedUnder { .. }))
        .map(|s| s.at)
        .or(d.published_at);
    html! {
        section.history aria-label="History" {
            h4.history-title { "History" }
            ol.history-list {
                li {
                    "Filed by " strong { (who(&d.filed_by)) } " · " (time(zone, d.recorded_at))
                    @if waited { " · waited for review" }
                    @else if filed_held { " · held under embargo" }
                    @else { " · published at once" }
                }
                @if let (true, Some(at)) = (waited && d.approved_by.is_some(), approved_at) {
                    li { "Approved by " strong { (who(&d.approved_by)) } " · " (time(zone, at)) }
                }
                @for s in &d.embargo_steps {
                    @match s.step {
                        EmbargoStepKind::Filed { .. } | EmbargoStepKind::ApprovedUnder { .. } => {}
                        EmbargoStepKind::Moved { until } => {
                            li { "Embargo moved to " (time(zone, until)) " by " strong { (who(&s.by)) } " · " (time(zone, s.at)) }
                        }
                        EmbargoStepKind::Lifted { published } => {
                            li {
                                "Embargo lifted by " strong { (who(&s.by)) } " · " (time(zone, s.at))
                                @if published { " · published" }
                            }
                        }
                        EmbargoStepKind::ApprovalUndone => {
                            li { "Approval undone by " strong { (who(&s.by)) } " · " (time(zone, s.at)) " · waits for review again" }
                        }
                    }
                }
                @for e in &d.edits { (edit_entry(zone, e)) }
                @for c in &d.corrections { (correction_entry(zone, d, c)) }
                @if let Some(v) = &d.rejection {
                    li.history-rejection {
                        @if is_withdrawal(d, v) { "Withdrawn by " } @else { "Rejected by " }
                        strong { (who(&v.by)) } " · " (time(zone, v.at))
                        div.note-quote { span.visually-hidden { "Reason: " } (v.reason) }
                    }
                }
                @if let Some(v) = &d.retraction {
                    li.history-retraction {
                        "Retracted by " strong { (who(&v.by)) } " · " (time(zone, v.at))
                        div.note-quote { span.visually-hidden { "Reason: " } (v.reason) }
                    }
                }
            }
        }
    }
}

/// A development as the desk shows it: every field, whatever its state.
pub(super) fn development_body(
    zone: Zone,
    story: Option<&StoryView>,
    d: &DevelopmentView,
) -> Markup {
    let retracted = d.state == DevelopmentStanding::Retracted;
    let target = d.responds_to.map(|link| {
        let headline = story
            .and_then(|s| s.development(link.development))
            .map(|t| t.headline.clone());
        (link, headline)
    });
    html! {
        p.labels {
            span.badge.state.(state_class(d.state)) {
                @if d.undo_window { "Publishing soon" } @else { (state_label(d.state)) }
            }
            " " span.badge.kind { (kind_label(d.kind)) }
            " " span.badge { (urgency_label(d.urgency)) }
            " " span.badge { (evidence_label(d.evidence)) }
        }
        @if let (Some(until), true) = (d.embargo_until, d.undo_window) {
            p.embargo.undo-window {
                strong { "Publishing at " (time(zone, until)) }
                " " span.countdown data-until=(until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)) {}
                ": held so that it can still be undone. Readers see nothing of it, and nobody is "
                "alerted, until then."
            }
        } @else if let Some(until) = d.embargo_until {
            p.embargo {
                strong { "Embargoed until " (time(zone, until)) }
                // desk.js counts down to it; without the script the moment above says it all.
                " " span.countdown data-until=(until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)) {}
                @if d.state == DevelopmentStanding::PendingReview {
                    " (held after approval until then)"
                }
                ": readers see nothing of it, and nobody is alerted, until then."
            }
        }
        h3.dev-headline {
            @if retracted { del { (d.headline) } } @else { (d.headline) }
        }
        p.meta {
            "Happened " (time(zone, d.occurred_at))
        }
        (text_block("dev-body", &d.body))
        @if !d.actors.is_empty() {
            p.meta {
                span.label { "Named: " }
                @for (i, a) in d.actors.iter().enumerate() {
                    @if i > 0 { ", " }
                    (a.name())
                }
            }
        }
        @if let Some(s) = &d.source {
            p.meta {
                span.label { "Source: " }
                @match s.url.as_ref().and_then(|u| safe_web_url(u.as_str())) {
                    Some(href) => { a href=(href) rel="nofollow noopener noreferrer" { (s.name.as_str()) } }
                    None => { (s.name.as_str()) }
                }
                " (" (source_kind_label(s.kind)) ")"
            }
        }
        @if let Some((link, headline)) = target {
            p.meta {
                span.label { "Responds to: " }
                "it " (stance_label(link.stance)) " "
                a href=(format!("#{}", anchor(link.development))) {
                    (headline.unwrap_or_else(|| "an earlier development".to_owned()))
                }
            }
        }
    }
}

/// Who else is at work on a development right now, if anyone: said before anything is done to it.
pub(super) fn others_at_work(chrome: &Chrome<'_>, development: Uuid) -> Markup {
    let others = chrome.presence.others(development, chrome.who);
    html! {
        @if !others.is_empty() {
            div.notice.notice-warning.presence role="status" {
                @for p in &others {
                    p { strong { (p.name) } " " (p.doing.words()) " (opened " (time(chrome.zone, p.since)) ")." }
                }
                p.small { "If you change it too, the second change is refused and shows you the first." }
            }
        }
    }
}

// ----- what changed since a form was opened ----------------------------------------------------------

pub(super) fn changed_banner(changed: Option<&Markup>) -> Markup {
    html! {
        @if let Some(c) = changed {
            div.notice.notice-warning.changed role="alert" tabindex="-1" autofocus { (c) }
        }
    }
}

/// What happened to `d` after the story's view stood at `since` (all of it if the form did not
/// say), as the desk tells an editor whose form was made from the older version.
pub(crate) fn changes_since(zone: Zone, d: &DevelopmentView, since: Option<i64>) -> Markup {
    let after = |position: i64| since.is_none_or(|s| position > s);
    let approved = d
        .published_position
        .filter(|p| *p != d.position && after(*p));
    html! {
        h2.changed-title {
            @if since.is_some() { "Someone changed it since you opened this form" }
            @else { "This form does not say which version it was made from" }
        }
        p { "Nothing of yours was saved." }
        ul.changed-list {
            @if let (Some(_), Some(at)) = (approved, d.published_at) {
                li {
                    strong { (who(&d.approved_by)) } " approved it · " (time(zone, at))
                    ": it is published, and readers see it."
                }
            }
            @for c in d.edits.iter().chain(&d.corrections).filter(|c| after(c.position)) {
                li {
                    strong { (who(&c.by)) }
                    @if d.published_position.is_some_and(|p| c.position > p) { " corrected it" } @else { " edited it" }
                    " · " (time(zone, c.corrected_at))
                    div.note-quote { span.visually-hidden { "Note: " } (c.note) }
                    (changes_list(zone, &c.changes))
                }
            }
            @if let Some(v) = d.rejection.as_ref().filter(|v| after(v.position)) {
                li { strong { (who(&v.by)) } " rejected it · " (time(zone, v.at)) }
            }
            @if let Some(v) = d.retraction.as_ref().filter(|v| after(v.position)) {
                li { strong { (who(&v.by)) } " retracted it · " (time(zone, v.at)) }
            }
        }
    }
}
