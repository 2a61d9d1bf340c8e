//! The review queue (`/desk/review`), with its reject forms, and the page that approves a
//! pending development (`…/approve`).

use maud::{html, Markup};
use newsroom_projection::desk::Pending;
use newsroom_readmodel::{DevelopmentView, StoryView};
use uuid::Uuid;

use super::development::{
    changed_banner, correction_entry, development_body, edit_entry, others_at_work, who,
};
use super::{
    alert_note, anchor, csrf_field, development_path, error_summary, layout, notice_banner, plural,
    publishing_warning, state_class, story_desk_path, textarea, time, Chrome, Ctl,
};
use crate::desk::forms::FormError;

/// A reject form that was refused: which development, what was typed, why.
#[derive(Debug)]
pub(crate) struct FailedRejection<'a> {
    pub development: Uuid,
    pub reason: &'a str,
    pub error: &'a FormError,
}

/// `/desk/review`: developments waiting for an editor, oldest first.
pub(crate) fn review_page(
    chrome: &Chrome<'_>,
    queue: &[Pending],
    notice: Option<&Markup>,
    error: Option<&FormError>,
    failed: Option<&FailedRejection<'_>>,
) -> Markup {
    let zone = chrome.zone;
    let content = html! {
        h1 { "Review queue" }
        (notice_banner(notice))
        @if let Some(f) = failed {
            div.error-summary role="alert" aria-labelledby="error-summary-title" tabindex="-1" autofocus {
                h2 #error-summary-title { "There is a problem" }
                ul { li { a href=(format!("#{}", reason_id(f.development))) { (f.error.message) } } }
            }
        }
        (error_summary(error, &[]))
        @if queue.is_empty() {
            p.empty { "Nothing waits for review." }
        } @else {
            p.small { (plural(queue.len() as i64, "development waits", "developments wait")) ", oldest first. Readers see none of them until you approve it." }
            ol.review-list {
                @for p in queue {
                    @let d = &p.development;
                    @let failed_here = failed.filter(|f| f.development == d.id);
                    li {
                        article.desk-dev.state-pending id=(anchor(d.id)) {
                            p.story-of {
                                "In " a href=(format!("{}#{}", story_desk_path(p.story_id), anchor(d.id))) { (p.story_headline) }
                            }
                            (development_body(zone, None, d))
                            p.meta { "Filed by " strong { (who(&d.filed_by)) } " · " (time(zone, d.recorded_at)) }
                            (others_at_work(chrome, d.id))
                            @if !d.edits.is_empty() || !d.corrections.is_empty() {
                                ul.history-list {
                                    @for e in &d.edits { (edit_entry(zone, e)) }
                                    @for c in &d.corrections { (correction_entry(zone, d, c)) }
                                }
                            }
                            p.dev-actions {
                                a href=(development_path(p.story_id, d.id, "correct")) {
                                    "Edit it before approving" span.visually-hidden { ": " (d.headline) }
                                }
                            }
                            div.review-actions {
                                a.button href=(development_path(p.story_id, d.id, "approve")) {
                                    "Check and approve" span.visually-hidden { ": " (d.headline) }
                                }
                                form.reject method="post" action=(development_path(p.story_id, d.id, "reject")) {
                                    (csrf_field(chrome.csrf))
                                    @let ctl = reject_reason(d.id, failed_here.map(|f| f.error));
                                    (textarea(&ctl, failed_here.map_or("", |f| f.reason), 2, Some(newsroom_domain::limits::NOTE)))
                                    button.button.button-danger type="submit" {
                                        "Reject" span.visually-hidden { ": " (d.headline) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    layout("Review queue", Some(chrome), content)
}

pub(super) fn reject_reason(development: Uuid, error: Option<&FormError>) -> Ctl<'_> {
    Ctl::new("reason", "Reason for rejecting", error)
        .with_id(reason_id(development))
        .hint("Stays on the desk: readers never see rejected developments.")
        .required()
}

fn reason_id(development: Uuid) -> String {
    format!("f-reason-{development}")
}

/// `…/approve`: a pending development as readers will see it once approved (`after`, folded
/// with the approval), who is alerted, and the button that approves it — the version it shows.
#[allow(clippy::too_many_arguments)]
pub(crate) fn approve_page(
    chrome: &Chrome<'_>,
    story: &StoryView,
    d: &DevelopmentView,
    after: &DevelopmentView,
    seen: i64,
    subscribers: Option<i64>,
    notice: Option<&Markup>,
    changed: Option<&Markup>,
) -> Markup {
    let zone = chrome.zone;
    let content = html! {
        p.back { a href=(format!("/desk/review#{}", anchor(d.id))) { "← Review queue" } }
        (notice_banner(notice))
        h1 { "Approve and publish" }
        (changed_banner(changed))
        (others_at_work(chrome, d.id))
        div.notice.notice-warning role="status" {
            (publishing_warning(chrome.undo, "Approving"))
        }
        section.preview aria-labelledby="preview-heading" {
            h2 #preview-heading { "What readers will see" }
            article.desk-dev.(state_class(after.state)) { (development_body(zone, Some(story), after)) }
            p.meta { "Filed by " strong { (who(&d.filed_by)) } " · " (time(zone, d.recorded_at)) }
            @if !d.edits.is_empty() || !d.corrections.is_empty() {
                p.small { "Edited before approval: readers see it as it is now, and are not told of the edits." }
            }
        }
        section.preview aria-labelledby="alert-heading" {
            h2 #alert-heading { "Who is alerted" }
            (alert_note(after.urgency, subscribers))
        }
        form.stack method="post" action=(development_path(story.id, d.id, "approve"))
            data-presence=(development_path(story.id, d.id, "presence")) data-doing="approve" {
            (csrf_field(chrome.csrf))
            input type="hidden" name="seen" value=(seen);
            div.actions {
                button.button type="submit" name="confirm" value="approve" {
                    "Approve and publish" span.visually-hidden { ": " (d.headline) }
                }
                " "
                a.button.button-secondary href=(development_path(story.id, d.id, "correct")) { "Edit it first" }
            }
        }
    };
    layout("Approve and publish", Some(chrome), content)
}
