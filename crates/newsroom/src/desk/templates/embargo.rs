//! The embargo page (`…/embargo`): lift an embargo now, move it, or spike the development.

use maud::{html, Markup};
use newsroom_readmodel::{DevelopmentStanding, DevelopmentView, StoryView};

use super::development::development_body;
use super::review::reject_reason;
use super::{
    anchor, csrf_field, development_path, error_summary, layout, state_class, story_desk_path,
    text_input, textarea, Chrome, Ctl,
};
use crate::desk::forms::FormError;

/// `…/embargo`: an embargoed development, with "Lift it now" and "Move the embargo" (editors).
pub(crate) fn embargo_page(
    chrome: &Chrome<'_>,
    view: &StoryView,
    d: &DevelopmentView,
    seen: i64,
    error: Option<&FormError>,
) -> Markup {
    let until = Ctl::new("until", "New moment", error)
        .hint("Local time in the newsroom's time zone; in the future, at most a year ahead.");
    let content = html! {
        p.back { a href=(format!("{}#{}", story_desk_path(view.id), anchor(d.id))) { "← " (view.headline) } }
        h1 { "Embargo" }
        (error_summary(error, &["until"]))
        article.desk-dev.(state_class(d.state)) { (development_body(chrome.zone, Some(view), d)) }
        form.stack method="post" action=(development_path(view.id, d.id, "embargo")) {
            (csrf_field(chrome.csrf))
            input type="hidden" name="seen" value=(seen);
            input type="hidden" name="action" value="lift";
            p {
                @if d.state == DevelopmentStanding::PendingReview {
                    "Lifted now, it is published as soon as it is approved."
                } @else {
                    "Lifted now, it is published at once and its subscribers are alerted."
                }
            }
            div.actions {
                button.button type="submit" {
                    "Lift the embargo now" span.visually-hidden { ": " (d.headline) }
                }
            }
        }
        form.stack method="post" action=(development_path(view.id, d.id, "embargo")) novalidate {
            (csrf_field(chrome.csrf))
            input type="hidden" name="seen" value=(seen);
            input type="hidden" name="action" value="move";
            (text_input(&until, "datetime-local", "", None))
            div.actions {
                button.button.button-secondary type="submit" {
                    "Move the embargo" span.visually-hidden { ": " (d.headline) }
                }
            }
        }
        h2 { "Spike it" }
        p { "Never published and nobody alerted: it stays on the desk, rejected, with your reason." }
        form.reject method="post" action=(development_path(view.id, d.id, "reject")) {
            (csrf_field(chrome.csrf))
            @let ctl = reject_reason(d.id, None);
            (textarea(&ctl, "", 2, Some(newsroom_domain::limits::NOTE)))
            button.button.button-danger type="submit" {
                "Spike it" span.visually-hidden { ": " (d.headline) }
            }
        }
    };
    layout("Embargo", Some(chrome), content)
}
