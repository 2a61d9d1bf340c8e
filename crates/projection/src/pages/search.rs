//! The search box and the search page.

use maud::{html, Markup, PreEscaped};
use newsroom_domain::DevelopmentKind;

use super::pieces::time;
use super::words::kind_label;
use super::{anchor, layout, story_path};

/// Where the search box sends its query.
pub const SEARCH_PATH: &str = "/search";

/// The search box: a labelled field and a button, a plain GET form.
pub fn search_form(q: &str) -> Markup {
    html! {
        form.search-form role="search" action=(SEARCH_PATH) method="get" {
            label for="search-q" { "Search stories and developments" }
            div.search-row {
                input #search-q type="search" name="q" value=(q) maxlength=(crate::search::MAX_QUERY_CHARS)
                    required autocomplete="off" aria-describedby="search-help";
                button type="submit" { "Search" }
            }
            p #search-help .search-help {
                "All words must match. Put a phrase in \"quotes\"; end a word with * to match its beginning."
            }
        }
    }
}

/// One search result: the story, the development (struck and marked if retracted) and the
/// snippet that matched — already escaped, with `<mark>` around the words found.
fn search_result(hit: &crate::search::SearchHit) -> Markup {
    let story = story_path(&hit.story.slug);
    html! {
        li.search-result {
            article {
                @match &hit.development {
                    Some(d) => {
                        h2.search-result-headline .retracted[d.retracted] {
                            a href=(format!("{story}#{}", anchor(d.id))) { (d.headline) }
                        }
                        p.story-card-meta {
                            @if let Ok(kind) = d.kind.parse::<DevelopmentKind>() {
                                span.badge.kind { (kind_label(kind)) }
                                " "
                            }
                            @if d.retracted {
                                span.badge.badge-retracted { "Retracted" }
                                " "
                            }
                            "In " a href=(story) { (hit.story.headline) }
                            " · " (time(&d.occurred_at))
                        }
                    }
                    None => {
                        h2.search-result-headline { a href=(story) { (hit.story.headline) } }
                        p.story-card-meta { span.badge { "Story" } }
                    }
                }
                p.search-snippet { (PreEscaped(&hit.snippet)) }
            }
        }
    }
}

/// `/search?q=`: the search box and, when a query was given, its results (or what is wrong
/// with it).
pub fn search_page(
    q: &str,
    hits: Option<&[crate::search::SearchHit]>,
    next: Option<&str>,
    error: Option<&str>,
) -> Markup {
    let content = html! {
        h1.page-title { "Search" }
        (search_form(q))
        @if let Some(error) = error {
            p.search-error role="alert" { (error) }
        }
        @if let Some(hits) = hits {
            section aria-labelledby="search-results-heading" {
                h2 #search-results-heading .section-heading {
                    @if hits.is_empty() { "No results" } @else { "Results" }
                }
                @if hits.is_empty() {
                    p.empty { "Nothing published matches " (q) "." }
                } @else {
                    ol.search-results {
                        @for hit in hits { (search_result(hit)) }
                    }
                }
                @if let Some(next) = next {
                    p { a href=(next) rel="next" { "More results" } }
                }
            }
        }
    };
    let title = if q.is_empty() {
        "Search".to_owned()
    } else {
        format!("Search: {q}")
    };
    layout(&title, html! {}, None, content)
}
