//! The front page: the running stories.

use maud::{html, Markup};

use newsroom_readmodel::model::FrontPageEntry;

use super::pieces::{status_badge, tag_list, time};
use super::search::search_form;
use super::words::{kind_label, plural};
use super::{layout, story_path};

/// `/`: the running stories, in the order given (newest first).
pub fn front_page(entries: &[FrontPageEntry]) -> Markup {
    let content = html! {
        h1.page-title { "Running stories" }
        (search_form(""))
        p.feeds {
            "Follow every story by feed: "
            a href="/v1/feed.atom" type="application/atom+xml" { "Atom feed" }
            " · "
            a href="/v1/feed.json" type="application/feed+json" { "JSON Feed" }
        }
        @if entries.is_empty() {
            p.empty { "No stories yet." }
        } @else {
            ol.story-list {
                @for e in entries {
                    li {
                        article.story-card {
                            h2.story-card-headline {
                                a href=(story_path(&e.slug)) { (e.headline) }
                            }
                            p.story-card-meta {
                                (status_badge(e.status))
                                " "
                                span.count {
                                    (plural(e.development_count, "development", "developments"))
                                }
                            }
                            @if let Some(l) = &e.latest {
                                p.story-card-latest {
                                    span.latest-label { "Latest: " }
                                    span.latest-kind { (kind_label(l.kind)) }
                                    " — " (l.headline) " · "
                                    (time(l.published_at.as_ref().unwrap_or(&l.occurred_at)))
                                }
                            }
                            @if e.last_occurred_at.is_some() || e.last_recorded_at.is_some() {
                                dl.times {
                                    @if let Some(t) = &e.last_occurred_at {
                                        div {
                                            dt { "Latest happened" }
                                            dd { (time(t)) }
                                        }
                                    }
                                    @if let Some(t) = &e.last_recorded_at {
                                        div {
                                            dt { "Latest reported" }
                                            dd { (time(t)) }
                                        }
                                    }
                                }
                            }
                            (tag_list(&e.tags))
                        }
                    }
                }
            }
        }
    };
    let head = html! {
        meta name="description" content="Running news stories, development by development.";
    };
    layout("Running stories", head, None, content)
}
