//! A story's desk page (`/desk/stories/{id}`): the story, its related stories, and every
//! development as a card with its history and what this user can do with it.

use maud::{html, Markup};
use newsroom_domain::Relation;
use newsroom_projection::pages::story_path;
use newsroom_readmodel::{
    DevelopmentStanding, DevelopmentView, RelatedStory, StoryStatus, StoryView,
};
use uuid::Uuid;

use super::development::{development_body, history, others_at_work};
use super::{
    anchor, csrf_field, development_path, layout, notice_banner, state_class, story_desk_path,
    text_block, time, Chrome,
};

/// `/desk/stories/{id}`: the story, every development with its history, and who follows it.
pub(crate) fn story_page(
    chrome: &Chrome<'_>,
    view: &StoryView,
    related: &[RelatedStory],
    subscribers: Option<i64>,
    notice: Option<&Markup>,
    highlight: Option<Uuid>,
) -> Markup {
    let mut developments: Vec<&DevelopmentView> = view.developments.iter().collect();
    developments.sort_by_key(|d| (d.occurred_at, d.position));
    let count = |state: DevelopmentStanding| {
        view.developments
            .iter()
            .filter(|d| d.state == state)
            .count() as i64
    };
    let content = html! {
        (notice_banner(notice))
        header.story-head {
            p.labels {
                @match view.status {
                    StoryStatus::Open => { span.badge.state-published { "Open" } }
                    StoryStatus::Closed => { span.badge.state-closed { "Closed" } }
                }
                @if view.review_required { " " span.badge.review { "Review required" } }
            }
            h1 { (view.headline) }
            p.meta {
                span.slug { (view.slug) }
                " · opened " (time(chrome.zone, view.opened_at))
                @if !view.tags.is_empty() {
                    " · topics: " (view.tags.join(", "))
                }
            }
            (text_block("summary", &view.summary))
            dl.facts {
                div { dt { "Published" } dd { (count(DevelopmentStanding::Published)) } }
                div { dt { "Waiting for review" } dd { (count(DevelopmentStanding::PendingReview)) } }
                @let embargoed = count(DevelopmentStanding::Embargoed);
                @if embargoed > 0 { div { dt { "Embargoed" } dd { (embargoed) } } }
                div { dt { "Retracted" } dd { (count(DevelopmentStanding::Retracted)) } }
                div { dt { "Rejected" } dd { (count(DevelopmentStanding::Rejected)) } }
                div {
                    dt { "Subscribers following" }
                    dd { @match subscribers { Some(n) => { (n) } None => { "unknown" } } }
                }
            }
            p.actions {
                @if view.status == StoryStatus::Open {
                    a.button href=(format!("{}/file", story_desk_path(view.id))) { "File a development" }
                    " "
                }
                a.button.button-secondary href=(story_path(&view.slug)) { "Reader page" }
            }
            @if chrome.is_editor() {
                form.inline method="post" action=(format!("{}/{}", story_desk_path(view.id), if view.status == StoryStatus::Open { "close" } else { "reopen" })) {
                    (csrf_field(chrome.csrf))
                    @match view.status {
                        StoryStatus::Open => { button.button.button-secondary type="submit" { "Close the story" } }
                        StoryStatus::Closed => { button.button.button-secondary type="submit" { "Reopen the story" } }
                    }
                }
            }
        }
        (related_section(chrome, view, related))
        section aria-labelledby="timeline-heading" {
            h2 #timeline-heading { "Timeline and history" }
            p.small {
                "Every development, in the order things happened — including those readers don't "
                "see (waiting for review, or rejected). Times are in " (chrome.zone.name()) "."
            }
            @if developments.is_empty() {
                p.empty { "Nothing filed yet." }
            } @else {
                ol.desk-timeline {
                    @for d in &developments {
                        li { (development_card(chrome, view, d, highlight == Some(d.id))) }
                    }
                }
            }
        }
    };
    layout(&view.headline, Some(chrome), content)
}

/// The story's related stories, each with an "Unlink" button for editors, and the form that
/// relates it to another story (editors).
fn related_section(chrome: &Chrome<'_>, view: &StoryView, related: &[RelatedStory]) -> Markup {
    let base = story_desk_path(view.id);
    html! {
        section.related aria-labelledby="related-heading" {
            h2 #related-heading { "Related stories" }
            @if related.is_empty() {
                p.empty { "No related stories." }
            } @else {
                ul.related-list {
                    @for r in related {
                        li {
                            span.relation-label { (r.label) ": " }
                            a href=(story_desk_path(r.id)) { (r.headline) }
                            @if chrome.is_editor() {
                                " "
                                form.inline method="post"
                                    action=(format!("{base}/relations/{}/unlink", r.id)) {
                                    (csrf_field(chrome.csrf))
                                    button.button.button-secondary type="submit"
                                        aria-label=(format!("Unlink {}", r.headline)) { "Unlink" }
                                }
                            }
                        }
                    }
                }
            }
            @if chrome.is_editor() {
                form.relate method="post" action=(format!("{base}/relations")) {
                    (csrf_field(chrome.csrf))
                    div.field {
                        label for="relate-relation" { "This story is" }
                        select #relate-relation name="relation" required {
                            @for r in Relation::ALL {
                                option value=(r.as_str()) { (relation_choice(*r)) }
                            }
                        }
                    }
                    div.field {
                        label for="relate-story" { "Story (its slug or id)" }
                        input #relate-story type="text" name="story" required maxlength="80";
                    }
                    button.button type="submit" { "Relate the stories" }
                }
            }
        }
    }
}

/// How the relation form offers a relation: what this story is to the other.
fn relation_choice(relation: Relation) -> &'static str {
    match relation {
        Relation::FollowUp => "a follow-up of",
        Relation::Background => "given background by",
        Relation::SameEvent => "about the same event as",
        Relation::Related => "related to",
    }
}

/// The links of what can be done with a development from its card, for this user.
fn development_actions(chrome: &Chrome<'_>, view: &StoryView, d: &DevelopmentView) -> Vec<Markup> {
    let mut links = Vec::new();
    let link = |href: String, text: &str| {
        html! { a href=(href) { (text) span.visually-hidden { ": " (d.headline) } } }
    };
    if d.is_visible() {
        links.push(link(
            format!("{}#{}", story_path(&view.slug), anchor(d.id)),
            "On the reader page",
        ));
    }
    let pending = d.state == DevelopmentStanding::PendingReview;
    let published = d.state == DevelopmentStanding::Published;
    if published && view.status == StoryStatus::Open {
        links.push(link(
            format!("{}/file?responds_to={}", story_desk_path(view.id), d.id),
            "File a response",
        ));
    }
    if pending && d.filed_by.as_deref() == Some(chrome.who.name.as_str()) {
        if !chrome.is_editor() {
            links.push(link(development_path(view.id, d.id, "correct"), "Edit"));
        }
        links.push(link(
            development_path(view.id, d.id, "withdraw"),
            "Withdraw",
        ));
    }
    if chrome.is_editor() && pending {
        links.push(link(format!("/desk/review#{}", anchor(d.id)), "Review"));
        links.push(link(
            development_path(view.id, d.id, "correct"),
            "Edit before approving",
        ));
    }
    if chrome.is_editor() && published {
        links.push(link(development_path(view.id, d.id, "correct"), "Correct"));
    }
    let undoable = d.undo_window && d.state == DevelopmentStanding::Embargoed;
    let (approval_window, mine) = (
        d.approved_by.is_some(),
        d.filed_by.as_deref() == Some(chrome.who.name.as_str()),
    );
    if undoable && ((approval_window && chrome.is_editor()) || (!approval_window && mine)) {
        links.push(link(development_path(view.id, d.id, "undo"), "Undo"));
    }
    if chrome.is_editor() && d.embargo_until.is_some() {
        links.push(link(
            development_path(view.id, d.id, "embargo"),
            if d.undo_window {
                "Publish now or spike it"
            } else {
                "Lift or move the embargo"
            },
        ));
    }
    if chrome.is_editor() && published {
        links.push(link(development_path(view.id, d.id, "retract"), "Retract"));
    }
    links
}

fn development_card(
    chrome: &Chrome<'_>,
    view: &StoryView,
    d: &DevelopmentView,
    highlight: bool,
) -> Markup {
    let zone = chrome.zone;
    html! {
        article.desk-dev.(state_class(d.state)).highlight[highlight] id=(anchor(d.id)) {
            (development_body(zone, Some(view), d))
            (history(zone, d))
            (others_at_work(chrome, d.id))
            p.dev-actions {
                @for (i, link) in development_actions(chrome, view, d).into_iter().enumerate() {
                    @if i > 0 { " · " }
                    (link)
                }
            }
        }
    }
}
