//! The desk's search page (`/desk/search`).

use maud::{html, Markup};

use super::{anchor, error_summary, layout, story_desk_path, time, Chrome, Ctl};
use crate::desk::forms::FormError;

/// `/desk/search`: the reader side's search, with developments waiting for review too, each
/// leading to its story's desk page.
pub(crate) fn search_page(
    chrome: &Chrome<'_>,
    q: &str,
    status: Option<&str>,
    hits: Option<&[newsroom_projection::search::SearchHit]>,
    next: Option<&str>,
    error: Option<&FormError>,
) -> Markup {
    let ctl = Ctl::new("q", "Search stories and developments", error)
        .hint("Pending work included. All words must match; put a phrase in \"quotes\"; end a word with * to match its beginning.")
        .required();
    let content = html! {
        h1 { "Search" }
        (error_summary(error, &["q"]))
        form.stack role="search" method="get" action="/desk/search" {
            (ctl.wrap(html! {
                input type="search" id=(ctl.id) name="q" value=(q) required
                    maxlength=(newsroom_projection::search::MAX_QUERY_CHARS)
                    aria-describedby=[ctl.described_by()] aria-invalid=[ctl.invalid()];
            }))
            @let status_ctl = Ctl::new("status", "Show", error);
            (status_ctl.wrap(html! {
                select id=(status_ctl.id) name="status" aria-describedby=[status_ctl.described_by()] aria-invalid=[status_ctl.invalid()] {
                    @for (value, label) in [("", "Everything"), ("pending_review", "Waiting for review"), ("published", "Published"), ("retracted", "Retracted")] {
                        option value=(value) selected[status.unwrap_or("") == value] { (label) }
                    }
                }
            }))
            div.actions { button.button type="submit" { "Search" } }
        }
        @if let Some(hits) = hits {
            @if hits.is_empty() {
                p.empty { "Nothing matches." }
            } @else {
                ol.review-list {
                    @for hit in hits {
                        li {
                            article.desk-dev {
                                @match &hit.development {
                                    Some(d) => {
                                        h2 {
                                            a href=(format!("{}#{}", story_desk_path(hit.story.id), anchor(d.id))) { (d.headline) }
                                        }
                                        p.story-of {
                                            @match d.state.as_str() {
                                                "pending_review" => { span.badge.state-pending { "Waiting for review" } " · " }
                                                "retracted" => { span.badge.state-retracted { "Retracted" } " · " }
                                                _ => {}
                                            }
                                            "In " a href=(story_desk_path(hit.story.id)) { (hit.story.headline) }
                                            " · " (time(chrome.zone, d.occurred_at))
                                        }
                                    }
                                    None => {
                                        h2 { a href=(story_desk_path(hit.story.id)) { (hit.story.headline) } }
                                        p.story-of { "A story" }
                                    }
                                }
                                // Escaped, then marked (`newsroom_projection::search::snippet`).
                                p { (maud::PreEscaped(&hit.snippet)) }
                            }
                        }
                    }
                }
                @if let Some(next) = next {
                    p { a href=(next) rel="next" { "More results" } }
                }
            }
        }
    };
    layout("Search", Some(chrome), content)
}
