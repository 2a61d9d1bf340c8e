//! Undo: the notice with its button while a publication or approval is held (`undo_notice`), and
//! the undo page (`…/undo`).

use chrono::Utc;
use maud::{html, Markup};
use newsroom_readmodel::{DevelopmentStanding, DevelopmentView, StoryView};

use super::development::development_body;
use super::{
    anchor, csrf_field, development_path, layout, state_class, story_desk_path, time, Chrome,
};

/// The notice after publishing or approving with an undo window: "Publishing in 27 s — Undo"
/// (the seconds as the page was made; `desk.js` counts them down and takes the button away once
/// they are over), as a plain form, so that it works without the script.
pub(crate) fn undo_notice(chrome: &Chrome<'_>, view: &StoryView, d: &DevelopmentView) -> Markup {
    let until = d.embargo_until.unwrap_or(d.updated_at);
    let left = (until - Utc::now()).num_seconds().max(0);
    let approval = d.approved_by.is_some();
    html! {
        span.undo-left {
            @if approval { "Approved: publishing in " } @else { "Publishing in " }
            span.countdown.countdown-left data-until=(until.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)) {
                (left) " s"
            }
            " (at " (time(chrome.zone, until)) ")"
        }
        " — "
        form.inline.undo-form method="post" action=(development_path(view.id, d.id, "undo"))
            data-until=(until.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)) {
            (csrf_field(chrome.csrf))
            button.button type="submit" {
                "Undo" span.visually-hidden { ": " (d.headline) }
            }
        }
        " Readers see nothing of "
        a href=(format!("#{}", anchor(d.id))) { (d.headline) }
        ", and nobody is alerted, until then."
        @if approval { " " a href="/desk/review" { "Back to the review queue" } }
    }
}

/// `…/undo`: a development in its undo window and the button that takes it back; or, once the
/// window has passed, what came of it.
pub(crate) fn undo_page(chrome: &Chrome<'_>, view: &StoryView, d: &DevelopmentView) -> Markup {
    let held = d.undo_window && d.state == DevelopmentStanding::Embargoed;
    let approval = d.approved_by.is_some();
    let back = format!("{}#{}", story_desk_path(view.id), anchor(d.id));
    let title = if held {
        if approval {
            "Undo the approval"
        } else {
            "Undo publishing"
        }
    } else {
        "Too late to undo"
    };
    let content = html! {
        p.back { a href=(back) { "← " (view.headline) } }
        h1 { (title) }
        @if held {
            div.notice role="status" { (undo_notice(chrome, view, d)) }
            p {
                @if approval {
                    "Undone, it is not published and nobody is alerted: it waits for review again."
                } @else {
                    "Undone, it is not published and nobody is alerted; the filing form comes back "
                    "with what you wrote, to file it again when it is ready."
                }
            }
        } @else {
            div.notice.notice-warning role="status" {
                @match d.state {
                    DevelopmentStanding::Published => {
                        "Its undo window has passed: it is published. Only a public correction or "
                        "a retraction can change it now."
                    }
                    DevelopmentStanding::Rejected => { "It was taken back already: it will not be published." }
                    DevelopmentStanding::PendingReview => { "Its approval was undone already: it waits for review." }
                    _ => { "It is not in an undo window." }
                }
            }
        }
        article.desk-dev.(state_class(d.state)) { (development_body(chrome.zone, Some(view), d)) }
    };
    layout(title, Some(chrome), content)
}
