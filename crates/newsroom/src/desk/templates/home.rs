//! The desk's home (`/desk`): the reporter's rejected filings, their stories, the form to open a
//! story, and every story.

use maud::{html, Markup};
use newsroom_projection::desk::{DeskStory, Pending, Rejected};
use newsroom_projection::pages::story_path;
use newsroom_readmodel::StoryStatus;

use super::development::{is_withdrawal, who};
use super::{
    anchor, csrf_field, error_summary, layout, plural, story_desk_path, text_input, textarea, time,
    Chrome, Ctl,
};
use crate::desk::forms::{FormData, FormError};
use crate::desk::zone::Zone;

fn story_line(s: &DeskStory, zone: Zone) -> Markup {
    let e = &s.entry;
    html! {
        li.story-line {
            h3.story-line-headline { a href=(story_desk_path(e.id)) { (e.headline) } }
            p.meta {
                span.slug { (e.slug) }
                " · "
                @if e.status == StoryStatus::Closed { span.badge.state-closed { "Closed" } " · " }
                @if s.review_required { span.badge.review { "Review required" } " · " }
                (plural(e.development_count as i64, "published", "published"))
                @if s.pending > 0 { " · " strong { (plural(s.pending, "waiting for review", "waiting for review")) } }
                @if s.mine > 0 { " · " (plural(s.mine, "by you", "by you")) }
                @if let Some(t) = e.last_recorded_at { " · latest " (time(zone, t)) }
            }
            p.links {
                @if e.status == StoryStatus::Open {
                    a href=(format!("{}/file", story_desk_path(e.id))) { "File a development" span.visually-hidden { " on " (e.headline) } }
                    " · "
                }
                a href=(story_path(&e.slug)) { "Reader page" span.visually-hidden { " of " (e.headline) } }
            }
        }
    }
}

/// One of the reporter's rejected filings on their desk home: what, where, why, and the way to
/// file it again.
fn rejected_line(zone: Zone, p: &Pending) -> Markup {
    let d = &p.development;
    html! {
        li.story-line.rejected-filing id=(anchor(d.id)) {
            h3.story-line-headline { (d.headline) }
            p.meta {
                "In " a href=(format!("{}#{}", story_desk_path(p.story_id), anchor(d.id))) { (p.story_headline) }
                @if let Some(v) = &d.rejection {
                    @if is_withdrawal(d, v) { " · withdrawn by " } @else { " · rejected by " }
                    strong { (who(&v.by)) } " · " (time(zone, v.at))
                }
            }
            @if let Some(v) = &d.rejection {
                div.note-quote { span.label { "Reason: " } (v.reason) }
            }
            p.links {
                a.button href=(format!("{}/file?from={}", story_desk_path(p.story_id), d.id)) {
                    "Revise and refile" span.visually-hidden { ": " (d.headline) }
                }
            }
        }
    }
}

/// `/desk`: your stories, the form to open one, and every story.
pub(crate) fn home_page(
    chrome: &Chrome<'_>,
    stories: &[DeskStory],
    pending: Option<i64>,
    rejected: &Rejected,
    form: &FormData,
    error: Option<&FormError>,
) -> Markup {
    let mine: Vec<&DeskStory> = stories.iter().filter(|s| s.mine > 0).collect();
    let known = ["headline", "slug", "summary", "tags"];
    let headline = Ctl::new("headline", "Headline", error).required();
    let slug = Ctl::new("slug", "Short name for the address", error).hint(
        "Lowercase letters, digits and hyphens, like campaign-hack-2026. Leave it empty to make one from the headline.",
    );
    let summary = Ctl::new("summary", "Summary", error)
        .hint("What the story is about, for readers. You can leave it empty.");
    let tags =
        Ctl::new("tags", "Topics", error).hint("Separated by commas, like elections, cyber.");
    let content = html! {
        h1 { "Stories" }
        @if let Some(n) = pending.filter(|n| *n > 0) {
            p.notice.notice-review {
                a href="/desk/review" { (plural(n, "development waits", "developments wait")) " for review" }
            }
        }
        @if rejected.total > 0 {
            section aria-labelledby="rejected-heading" {
                h2 #rejected-heading {
                    "Your rejected filings " span.badge.state-rejected { (rejected.total) }
                }
                p.small {
                    "Turned down by an editor, or withdrawn by you: readers never saw them. Revise "
                    "one and file it again: the form opens filled in."
                    @if rejected.total > rejected.newest.len() as i64 {
                        " The newest " (rejected.newest.len()) " are shown."
                    }
                }
                ul.story-lines {
                    @for p in &rejected.newest { (rejected_line(chrome.zone, p)) }
                }
            }
        }
        section aria-labelledby="mine-heading" {
            h2 #mine-heading { "Your stories" }
            @if mine.is_empty() {
                p.empty { "Stories you file developments on appear here." }
            } @else {
                ul.story-lines { @for s in &mine { (story_line(s, chrome.zone)) } }
            }
        }
        section.panel aria-labelledby="open-heading" id="open" {
            h2 #open-heading { "Open a story" }
            (error_summary(error, &known))
            form.stack method="post" action="/desk/stories" novalidate {
                (csrf_field(chrome.csrf))
                (text_input(&headline, "text", form.get("headline"), Some(newsroom_domain::limits::HEADLINE)))
                (text_input(&slug, "text", form.get("slug"), Some(newsroom_domain::limits::SLUG)))
                (textarea(&summary, form.get("summary"), 3, Some(newsroom_domain::limits::SUMMARY)))
                (text_input(&tags, "text", form.get("tags"), None))
                div.field.checkbox {
                    input type="checkbox" id="f-review-required" name="review_required" value="yes"
                        checked[form.checked("review_required")] aria-describedby="f-review-required-hint";
                    label for="f-review-required" { "Reporters' developments wait for an editor's approval" }
                    p.hint #f-review-required-hint { "Editors' own developments are published at once." }
                }
                div.actions { button.button type="submit" { "Open story" } }
            }
        }
        section aria-labelledby="all-heading" {
            h2 #all-heading { "All stories" }
            @if stories.is_empty() {
                p.empty { "No stories yet. Open the first one above." }
            } @else {
                ul.story-lines { @for s in stories { (story_line(s, chrome.zone)) } }
            }
        }
    };
    layout("Stories", Some(chrome), content)
}
