//! Changing a development after filing it: the correction (or edit) form and its preview
//! (`…/correct`), retracting (`…/retract`) and withdrawing one's own filing (`…/withdraw`).

use maud::{html, Markup};
use newsroom_readmodel::{DevelopmentStanding, DevelopmentView, StoryView};

use super::development::{changed_banner, changes_list, development_body, others_at_work};
use super::{
    anchor, csrf_field, development_path, error_summary, evidence_options, hidden_fields, layout,
    select, source_kind_options, state_class, story_desk_path, text_input, textarea, Chrome, Ctl,
};
use crate::desk::forms::{FormData, FormError, CORRECTION_CONTROLS};

/// The fields of the correction form an error may name: the note, the changes as a whole, and
/// each control of the changes.
fn correction_fields() -> Vec<&'static str> {
    ["note", "changes"]
        .into_iter()
        .chain(CORRECTION_CONTROLS)
        .collect()
}

/// `…/correct`: the editor's note and the corrected fields, starting from the current values.
pub(crate) fn correct_page(
    chrome: &Chrome<'_>,
    view: &StoryView,
    d: &DevelopmentView,
    form: &FormData,
    error: Option<&FormError>,
    changed: Option<&Markup>,
) -> Markup {
    let zone = chrome.zone;
    let pending = d.state == DevelopmentStanding::PendingReview;
    let note = if pending {
        Ctl::new("note", "Note for the desk", error).hint(
            "Optional. Readers never see it: they are not told of edits made before publication.",
        )
    } else {
        Ctl::new("note", "Correction note", error)
            .hint(
                "Shown to readers exactly as you write it, under the development. Say what was wrong.",
            )
            .required()
    };
    let headline = Ctl::new("changes.headline", "Headline", error);
    let body = Ctl::new("changes.body", "Text", error);
    let zone_hint = format!("Time zone: {}.", zone.name());
    let occurred = Ctl::new("changes.occurred_at", "When it happened", error).hint(&zone_hint);
    let actors = Ctl::new("changes.actors", "Named", error).hint("Separated by commas.");
    let source_name = Ctl::new("changes.source.name", "Source name", error);
    let source_kind = Ctl::new("changes.source.kind", "Kind of source", error);
    let source_url = Ctl::new("changes.source.url", "Source link", error);
    let evidence = Ctl::new("changes.evidence", "Evidence", error);
    let changes_error = error.and_then(|e| e.for_field("changes"));
    let title = if pending {
        "Edit before approving"
    } else {
        "Correct a development"
    };
    let content = html! {
        p.back { a href=(format!("{}#{}", story_desk_path(view.id), anchor(d.id))) { "← " (view.headline) } }
        h1 { (title) }
        article.desk-dev.(state_class(d.state)) { (development_body(zone, Some(view), d)) }
        @if pending {
            p.notice role="status" {
                "It is still waiting for review: readers see nothing of it yet. What you save here "
                "is what they will first see once it is approved, without any correction note."
            }
        }
        (changed_banner(changed))
        (others_at_work(chrome, d.id))
        (error_summary(error, &correction_fields()))
        form.stack method="post" action=(development_path(view.id, d.id, "correct")) novalidate data-no-enter
            data-presence=(development_path(view.id, d.id, "presence")) data-doing="correct" {
            (csrf_field(chrome.csrf))
            (version_fields(form))
            (textarea(&note, form.get("note"), 3, Some(newsroom_domain::limits::NOTE)))
            fieldset.field-invalid[changes_error.is_some()] #f-changes aria-describedby="f-changes-hint" {
                legend { "What changes" }
                p.hint #f-changes-hint { "Edit the fields that were wrong; the others stay as they are. Change at least one." }
                @if let Some(e) = changes_error {
                    p.error-message #f-changes-error { span.visually-hidden { "Error: " } (e) }
                }
                (text_input(&headline, "text", form.get("changes.headline"), Some(newsroom_domain::limits::HEADLINE)))
                (textarea(&body, form.get("changes.body"), 6, Some(newsroom_domain::limits::BODY)))
                (text_input(&occurred, "datetime-local", form.get("changes.occurred_at"), None))
                (text_input(&actors, "text", form.get("changes.actors"), None))
                (text_input(&source_name, "text", form.get("changes.source.name"), Some(newsroom_domain::limits::SOURCE_NAME)))
                (select(&source_kind, &source_kind_options(), form.get("changes.source.kind")))
                (text_input(&source_url, "url", form.get("changes.source.url"), Some(newsroom_domain::limits::URL)))
                (select(&evidence, &evidence_options(), form.get("changes.evidence")))
            }
            div.actions {
                @if pending {
                    button.button type="submit" name="confirm" value="correct" { "Save the edit" }
                    span.small { " It stays in the review queue: nothing is published." }
                } @else {
                    button.button type="submit" name="step" value="preview" { "Preview the correction" }
                    span.small { " Nothing is published until you confirm it on the next page." }
                }
            }
        }
    };
    layout(title, Some(chrome), content)
}

/// `…/retract`: why the development is withdrawn.
pub(crate) fn retract_page(
    chrome: &Chrome<'_>,
    view: &StoryView,
    d: &DevelopmentView,
    form: &FormData,
    error: Option<&FormError>,
    changed: Option<&Markup>,
) -> Markup {
    let reason = Ctl::new("reason", "Reason for retracting", error)
        .hint("Shown to readers exactly as you write it. The development stays on the reader page, struck through.")
        .required();
    let content = html! {
        p.back { a href=(format!("{}#{}", story_desk_path(view.id), anchor(d.id))) { "← " (view.headline) } }
        h1 { "Retract a development" }
        article.desk-dev.(state_class(d.state)) { (development_body(chrome.zone, Some(view), d)) }
        (changed_banner(changed))
        (others_at_work(chrome, d.id))
        (error_summary(error, &["reason"]))
        form.stack method="post" action=(development_path(view.id, d.id, "retract")) novalidate
            data-presence=(development_path(view.id, d.id, "presence")) data-doing="retract" {
            (csrf_field(chrome.csrf))
            (version_fields(form))
            (textarea(&reason, form.get("reason"), 3, Some(newsroom_domain::limits::NOTE)))
            div.actions { button.button.button-danger type="submit" { "Retract it" } }
        }
    };
    layout("Retract a development", Some(chrome), content)
}

/// The preview of a correction to a published development: the development as readers will see
/// it, with the note and what changed (the last of `after`'s corrections), and the button that
/// publishes it.
pub(crate) fn correct_preview_page(
    chrome: &Chrome<'_>,
    story: &StoryView,
    after: &DevelopmentView,
    form: &FormData,
) -> Markup {
    let zone = chrome.zone;
    let correction = after.reader_corrections().last();
    let content = html! {
        p.back { a href=(format!("{}#{}", story_desk_path(story.id), anchor(after.id))) { "← " (story.headline) } }
        h1 { "Check the correction before publishing" }
        div.notice.notice-warning role="status" {
            "Publishing the correction changes the reader page at once, and everyone who was "
            "alerted to the development is alerted again, with your note."
        }
        section.preview aria-labelledby="preview-heading" {
            h2 #preview-heading { "What readers will see" }
            article.desk-dev.(state_class(after.state)) {
                (development_body(zone, Some(story), after))
                @if let Some(c) = correction {
                    div.correction-preview {
                        h3.history-title { "Correction" }
                        div.note-quote { span.visually-hidden { "Note: " } (c.note) }
                        (changes_list(zone, &c.changes))
                    }
                }
            }
        }
        form.stack method="post" action=(development_path(story.id, after.id, "correct")) {
            (csrf_field(chrome.csrf))
            (hidden_fields(form))
            div.actions {
                button.button type="submit" name="confirm" value="correct" { "Publish the correction" }
                " "
                button.button.button-secondary type="submit" name="step" value="edit" { "Change it" }
            }
        }
    };
    layout("Check the correction", Some(chrome), content)
}

/// `…/withdraw`: one's own filing, still waiting for review, and the button that takes it back.
pub(crate) fn withdraw_page(
    chrome: &Chrome<'_>,
    view: &StoryView,
    d: &DevelopmentView,
    seen: i64,
    changed: Option<&Markup>,
) -> Markup {
    let content = html! {
        p.back { a href=(format!("{}#{}", story_desk_path(view.id), anchor(d.id))) { "← " (view.headline) } }
        h1 { "Withdraw your filing" }
        (changed_banner(changed))
        article.desk-dev.(state_class(d.state)) { (development_body(chrome.zone, Some(view), d)) }
        p {
            "It has not been published. Withdrawn, it never will be: it stays on the desk, marked "
            "as withdrawn, and you can still revise and file it again."
        }
        form.stack method="post" action=(development_path(view.id, d.id, "withdraw")) {
            (csrf_field(chrome.csrf))
            input type="hidden" name="seen" value=(seen);
            div.actions {
                button.button.button-danger type="submit" {
                    "Withdraw it" span.visually-hidden { ": " (d.headline) }
                }
                " "
                a.button.button-secondary href=(format!("{}#{}", story_desk_path(view.id), anchor(d.id))) { "Keep it" }
            }
        }
    };
    layout("Withdraw your filing", Some(chrome), content)
}

/// The version a form on a development was made from, and what its editor was shown (hidden).
fn version_fields(form: &FormData) -> Markup {
    html! {
        @for (name, value) in crate::desk::forms::carried(form).filter(|(k, _)| *k == "seen" || k.starts_with("was.")) {
            input type="hidden" name=(name) value=(value);
        }
    }
}

/// A correction control in words: `changes.headline` → "the headline".
pub(crate) fn control_label(control: &str) -> &str {
    match control {
        "changes.headline" => "the headline",
        "changes.body" => "the text",
        "changes.occurred_at" => "when it happened",
        "changes.actors" => "who is named",
        "changes.source.name" => "the source's name",
        "changes.source.kind" => "the kind of source",
        "changes.source.url" => "the source's link",
        "changes.evidence" => "the evidence",
        other => other,
    }
}
