//! A story's page: its timeline (the reader's order and key-events choices), its claims
//! ledger, the stories related to it, and the fragment `live.js` refreshes them from.

use maud::{html, Markup};
use newsroom_domain::Urgency;

use newsroom_readmodel::model::{
    ClaimEntry, DevelopmentStanding, DevelopmentView, RelatedStory, StoryPage, StoryView,
};

use super::pieces::{
    claim_roles, development_card, paragraphs, status_badge, tag_list, time, Links,
};
use super::words::{claim_status_class, claim_status_label, plural, stance_class, stance_label};
use super::{
    anchor, atom_feed_path, description, follow_story_path, json_feed_path, layout, story_path,
    Live,
};

/// How a reader asked to see a story's timeline: newest first and every development unless the
/// page's query says `order=oldest` (the order things happened) or `show=key` (key events only:
/// flash and priority developments).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimelineOptions {
    pub oldest_first: bool,
    pub key_only: bool,
}

/// What a page's `order` or `show` named that it does not know: the field and what it takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownOption {
    pub field: &'static str,
    pub expected: &'static str,
}

impl TimelineOptions {
    /// The options of a page's query values `order` (`newest`, `oldest`) and `show` (`all`,
    /// `key`); absent values are the defaults.
    pub fn parse(order: Option<&str>, show: Option<&str>) -> Result<Self, UnknownOption> {
        let oldest_first = match order {
            None | Some("newest") => false,
            Some("oldest") => true,
            Some(_) => {
                return Err(UnknownOption {
                    field: "order",
                    expected: "`order` is `newest` or `oldest`",
                })
            }
        };
        let key_only = match show {
            None | Some("all") => false,
            Some("key") => true,
            Some(_) => {
                return Err(UnknownOption {
                    field: "show",
                    expected: "`show` is `all` or `key`",
                })
            }
        };
        Ok(Self {
            oldest_first,
            key_only,
        })
    }

    /// The query of a link to the story's page with these options and cursor (`""` for none).
    fn query(self, before: Option<i64>) -> String {
        let mut parts = Vec::new();
        if self.oldest_first {
            parts.push("order=oldest".to_owned());
        }
        if self.key_only {
            parts.push("show=key".to_owned());
        }
        if let Some(before) = before {
            parts.push(format!("before={before}"));
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!("?{}", parts.join("&"))
        }
    }
}

/// A key event of a breaking story: a flash or priority development.
pub fn is_key_event(d: &DevelopmentView) -> bool {
    matches!(d.urgency, Urgency::Flash | Urgency::Priority)
}

/// One switch of the timeline's controls: a link, or the current choice (`aria-current`).
fn timeline_switch(path: &str, current: bool, label: &str) -> Markup {
    html! {
        a.switch href=(path) aria-current=[current.then_some("true")] { (label) }
    }
}

/// `#timeline`: a page of the story's visible developments, newest first unless the reader chose
/// the order things happened, all or the key events only, with a link to the older ones when
/// there are more. The count is the front page's (published developments of the whole story);
/// retracted ones on the page are counted apart.
fn timeline_section(page: &StoryPage, options: TimelineOptions) -> Markup {
    let view = &page.view;
    let mut timeline = view.timeline();
    let links = Links {
        story: Some(view),
        base: String::new(),
    };
    let retracted = timeline
        .iter()
        .filter(|d| d.state == DevelopmentStanding::Retracted)
        .count();
    let on_page = timeline.len();
    if options.key_only {
        timeline.retain(|d| is_key_event(d));
    }
    if !options.oldest_first {
        timeline.reverse();
    }
    let path = story_path(&view.slug);
    let with = |o: TimelineOptions| format!("{path}{}", o.query(None));
    let older = page.older.map(|before| {
        html! {
            p.older-link {
                a href=(format!("{path}{}", options.query(Some(before)))) { "Older developments" }
            }
        }
    });
    html! {
        section #timeline .timeline aria-labelledby="timeline-heading" {
            h2 #timeline-heading .section-heading { "Timeline" }
            @if on_page == 0 {
                p.empty { "No developments have been published yet." }
            } @else {
                nav.timeline-controls aria-label="How the timeline is shown" {
                    p.switches {
                        span.switch-label { "Order:" }
                        " "
                        (timeline_switch(&with(TimelineOptions { oldest_first: false, ..options }),
                            !options.oldest_first, "Newest first"))
                        " "
                        (timeline_switch(&with(TimelineOptions { oldest_first: true, ..options }),
                            options.oldest_first, "Oldest first"))
                    }
                    p.switches {
                        span.switch-label { "Show:" }
                        " "
                        (timeline_switch(&with(TimelineOptions { key_only: false, ..options }),
                            !options.key_only, "All developments"))
                        " "
                        (timeline_switch(&with(TimelineOptions { key_only: true, ..options }),
                            options.key_only, "Key events"))
                    }
                }
                p.section-note {
                    span.development-count data-count=(page.entry.development_count) {
                        (plural(page.entry.development_count, "development", "developments"))
                    }
                    span.retracted-count data-count=(retracted) hidden[retracted == 0] {
                        " and " (retracted) " retracted, struck through"
                    }
                    @if page.older.is_some() { "; the latest " (on_page) " here" }
                    @if options.key_only {
                        "; key events only (flash and priority)"
                    }
                    @if options.oldest_first { ", in the order they happened." } @else { ", newest first." }
                }
                @if options.oldest_first { @if let Some(older) = &older { (older) } }
                @if timeline.is_empty() {
                    p.empty #no-key-events { "No key events among these developments." }
                }
                ol.timeline-list
                    data-order=(if options.oldest_first { "oldest" } else { "newest" })
                    data-show=(if options.key_only { "key" } else { "all" })
                {
                    @for d in &timeline {
                        (timeline_li(d, &links))
                    }
                }
                @if !options.oldest_first { @if let Some(older) = &older { (older) } }
            }
        }
    }
}

/// One `<li>` of `#timeline`; it carries what `live.js` needs to put a new one in its place.
fn timeline_li(d: &DevelopmentView, links: &Links<'_>) -> Markup {
    html! {
        li.timeline-item data-occurred=(d.occurred_at.to_rfc3339()) data-position=(d.position)
            data-key=(if is_key_event(d) { "true" } else { "false" })
        {
            (development_card(d, links))
        }
    }
}

/// A development's `<li>` of the story page's timeline, as the live stream hands it to pages.
pub fn timeline_item(view: &StoryView, d: &DevelopmentView) -> Markup {
    let links = Links {
        story: Some(view),
        base: String::new(),
    };
    timeline_li(d, &links)
}

/// The story page's claims ledger (`#claims`), as the live stream hands it to pages: `view`
/// holds a page of it, `older` the cursor of the page of older claims.
pub fn claims_markup(view: &StoryView, older: Option<i64>) -> Markup {
    claims_aside(view, older)
}

fn claim_card(entry: &ClaimEntry) -> Markup {
    let claim = &entry.claim;
    let retracted = claim.state == DevelopmentStanding::Retracted;
    html! {
        article.claim.(claim_status_class(entry.status)) {
            p.claim-status-line {
                span.badge.claim-status.(claim_status_class(entry.status)) {
                    (claim_status_label(entry.status))
                }
            }
            h3.claim-headline {
                a href=(format!("#{}", anchor(claim.id))) {
                    @if retracted { del { (claim.headline) } } @else { (claim.headline) }
                }
            }
            p.claim-when { "Happened " (time(&claim.occurred_at)) }
            (claim_roles(claim))
            @if let Some(v) = claim.retraction.as_ref().filter(|_| retracted) {
                p.claim-retraction {
                    strong { "Retracted" } ": " (v.reason)
                }
            }
            @if entry.responses.is_empty() {
                p.no-responses { "No responses yet." }
            } @else {
                ul.responses aria-label="Responses" {
                    @for r in &entry.responses {
                        @let r_retracted = r.state == DevelopmentStanding::Retracted;
                        li.response {
                            @if let Some(link) = r.responds_to {
                                span.badge.stance.(stance_class(link.stance)) {
                                    (stance_label(link.stance))
                                }
                                " "
                            }
                            a href=(format!("#{}", anchor(r.id))) {
                                @if r_retracted { del { (r.headline) } } @else { (r.headline) }
                            }
                            @if r_retracted { " " span.badge.badge-retracted { "Retracted" } }
                            @if !r.actors.is_empty() {
                                " "
                                span.response-actors {
                                    "— "
                                    @for (i, actor) in r.actors.iter().enumerate() {
                                        @if i > 0 { ", " }
                                        (actor.name())
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `#claims`: the newest claims of attribution and where each stands, with a link to older
/// ones when there are.
fn claims_aside(view: &StoryView, older: Option<i64>) -> Markup {
    let claims = view.claims();
    html! {
        aside #claims .claims aria-labelledby="claims-heading" {
            h2 #claims-heading .section-heading { "Claims ledger" }
            p.section-note { "Who is accused, by whom, and what the responses say." }
            @if claims.is_empty() {
                p.empty { "No claims of responsibility yet." }
            } @else {
                ol.claims-list {
                    @for entry in &claims {
                        li { (claim_card(entry)) }
                    }
                }
            }
            @if let Some(before) = older {
                p.older-claims {
                    a href=(format!("?claims_before={before}#claims")) { "Older claims" }
                }
            }
        }
    }
}

/// The parts of a story page that change as developments arrive, side by side.
fn live_sections(page: &StoryPage, options: TimelineOptions) -> Markup {
    html! {
        (timeline_section(page, options))
        (claims_aside(&page.ledger, page.claims_older))
    }
}

/// `/stories/{slug}`: a story with a page of its timeline and its claims ledger, kept current by
/// `live.js`.
pub fn story_page(page: &StoryPage, options: TimelineOptions) -> Markup {
    let view = &page.view;
    let live = Live {
        story_id: view.id,
        slug: &view.slug,
        position: view.position,
    };
    let atom = atom_feed_path(&view.slug);
    let json = json_feed_path(&view.slug);
    let head = html! {
        @if !view.summary.trim().is_empty() {
            meta name="description" content=(description(&view.summary));
        }
        link rel="alternate" type="application/atom+xml"
            title=(format!("{} (Atom)", view.headline)) href=(atom);
        link rel="alternate" type="application/feed+json"
            title=(format!("{} (JSON Feed)", view.headline)) href=(json);
    };
    let content = html! {
        article.story {
            header.story-header {
                p.story-kicker {
                    (status_badge(view.status))
                    " "
                    span #live-status .live-status role="status" aria-live="polite" hidden {}
                }
                // What arrives live is announced here, one line per development (`live.js`).
                div #live-announcer .visually-hidden aria-live="polite" aria-atomic="true" {}
                h1.story-headline { (view.headline) }
                @if !view.summary.trim().is_empty() {
                    div.story-summary { (paragraphs(&view.summary)) }
                }
                dl.times.story-times {
                    div {
                        dt { "Opened" }
                        dd { (time(&view.opened_at)) }
                    }
                    div {
                        dt { "Last updated" }
                        dd #last-updated { (time(&view.updated_at)) }
                    }
                }
                (tag_list(&view.tags))
                p.feeds {
                    a.follow-link href=(follow_story_path(&view.slug)) { "Get alerts for this story" }
                    " · or follow it by feed: "
                    a href=(atom) type="application/atom+xml" { "Atom feed" }
                    " · "
                    a href=(json) type="application/feed+json" { "JSON Feed" }
                }
            }
            div.story-columns {
                (live_sections(page, options))
            }
            (related_stories(page.relations.as_deref().unwrap_or_default()))
        }
    };
    layout(&view.headline, head, Some(&live), content)
}

/// The stories editors related to this one, each with how it relates ("Follow-up of",
/// "Followed up by", …); nothing when there are none.
fn related_stories(related: &[RelatedStory]) -> Markup {
    html! {
        @if !related.is_empty() {
            section #related .related-stories aria-labelledby="related-heading" {
                h2 #related-heading .section-heading { "Related stories" }
                ul.related-list {
                    @for r in related {
                        li.related-story data-relation=(r.relation.as_str()) {
                            span.relation-label { (r.label) ": " }
                            a href=(story_path(&r.slug)) { (r.headline) }
                        }
                    }
                }
            }
        }
    }
}

/// `/stories/{slug}/fragment`: the timeline and claims ledger alone, for `live.js` to swap in
/// place. Same markup as on [`story_page`].
pub fn timeline_fragment(page: &StoryPage, options: TimelineOptions) -> Markup {
    html! {
        div #live-fragment data-position=(page.view.position) {
            (live_sections(page, options))
        }
    }
}
