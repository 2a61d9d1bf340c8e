//! The shell every page of the public site shares — the reader pages, the alert pages and the
//! pages a subscriber's mail links open — and the Content-Security-Policy they are served
//! with. The pages themselves live with what they show (`newsroom_projection::pages`, the
//! binary's `follow`, the notifier's `api::links`); here is only what they have in common.

use maud::{html, Markup, DOCTYPE};
use uuid::Uuid;

/// The Content-Security-Policy of every page and answer of the site (read side, desk, alert
/// pages, subscriber links): no inline script or style.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Where the pages expect the stylesheet to be served.
pub const STYLESHEET_PATH: &str = "/static/newsroom.css";
/// Where the pages expect the live-update script to be served.
pub const SCRIPT_PATH: &str = "/static/live.js";
/// Where the pages expect the script that shows times in the reader's time zone.
pub const TIME_SCRIPT_PATH: &str = "/static/time.js";
/// The reader's alerts page (subscriptions made in the browser).
pub const ALERTS_PATH: &str = "/alerts";

const SITE_NAME: &str = "Newsroom";

/// What `live.js` needs to follow a story (carried by the page's `<body>`).
#[derive(Debug)]
pub struct Live<'a> {
    pub story_id: Uuid,
    pub slug: &'a str,
    pub position: i64,
}

/// A reader-side page around `content`: the masthead, the footer, the stylesheet, and the
/// given same-origin `scripts` (the Content-Security-Policy allows no inline script).
pub fn reader_page(title: &str, scripts: &[&str], content: Markup) -> Markup {
    let head = html! {
        @for src in scripts {
            script src=(src) defer {}
        }
    };
    layout(title, head, None, content)
}

/// The page around `content`: `head` is added to the `<head>`; with `live`, the page follows a
/// story ([`SCRIPT_PATH`]).
pub fn layout(title: &str, head: Markup, live: Option<&Live<'_>>, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                title { (title) " — " (SITE_NAME) }
                link rel="stylesheet" href=(STYLESHEET_PATH);
                // Every reader page leads feed readers to the front page's feeds.
                link rel="alternate" type="application/atom+xml" title="All stories (Atom)"
                    href="/v1/feed.atom";
                link rel="alternate" type="application/feed+json"
                    title="All stories (JSON Feed)" href="/v1/feed.json";
                script src=(TIME_SCRIPT_PATH) defer {}
                (head)
                @if live.is_some() {
                    script src=(SCRIPT_PATH) defer {}
                }
            }
            body
                data-story-id=[live.map(|l| l.story_id)]
                data-slug=[live.map(|l| l.slug)]
                data-position=[live.map(|l| l.position)]
            {
                a.skip-link href="#content" { "Skip to content" }
                header.masthead {
                    div.masthead-inner {
                        a.masthead-title href="/" { (SITE_NAME) }
                        p.masthead-tagline {
                            "Running stories, development by development · "
                            a href=(ALERTS_PATH) { "Your alerts" }
                            " · "
                            a href="/desk" { "Newsroom desk" }
                        }
                    }
                }
                main #content .page {
                    (content)
                }
                footer.site-footer {
                    div.footer-inner {
                        p {
                            "Every development shows when it happened and when we reported it. "
                            "Corrections are noted where they were made; retracted developments "
                            "stay on the page, struck through, with the reason."
                        }
                        p { a href="/" { "All stories" } }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shell, byte for byte, as the reader, alert and link pages have always had it.
    #[test]
    fn a_reader_page_is_the_shell_around_its_content() {
        let page = reader_page("Your alerts", &["/a.js", "/b.js"], html! { p { "z" } });
        let expected = concat!(
            r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">"#,
            r#"<meta name="viewport" content="width=device-width, initial-scale=1">"#,
            r#"<meta name="color-scheme" content="light dark"><title>Your alerts — Newsroom</title>"#,
            r#"<link rel="stylesheet" href="/static/newsroom.css">"#,
            r#"<link rel="alternate" type="application/atom+xml" title="All stories (Atom)" href="/v1/feed.atom">"#,
            r#"<link rel="alternate" type="application/feed+json" title="All stories (JSON Feed)" href="/v1/feed.json">"#,
            r#"<script src="/static/time.js" defer></script><script src="/a.js" defer></script>"#,
            r#"<script src="/b.js" defer></script></head><body>"#,
            r##"<a class="skip-link" href="#content">Skip to content</a><header class="masthead">"##,
            r#"<div class="masthead-inner"><a class="masthead-title" href="/">Newsroom</a>"#,
            r#"<p class="masthead-tagline">Running stories, development by development · <a href="/alerts">Your alerts</a> · <a href="/desk">Newsroom desk</a>"#,
            r#"</p></div></header><main class="page" id="content"><p>z</p></main>"#,
            r#"<footer class="site-footer"><div class="footer-inner">"#,
            "<p>Every development shows when it happened and when we reported it. Corrections are noted where they were made; retracted developments stay on the page, struck through, with the reason.</p>",
            r#"<p><a href="/">All stories</a></p></div></footer></body></html>"#
        );
        assert_eq!(page.into_string(), expected);
    }
}
