//! The reader's web pages, rendered on the server.
//!
//! Every function here is pure: it takes a view from [`newsroom_readmodel::model`] and returns
//! [`maud::Markup`]. maud escapes every spliced value, so nothing a reporter, an editor or a
//! source typed can become markup; no HTML is ever assembled by string formatting.
//!
//! The pages work with the server's Content-Security-Policy
//! (`default-src 'self'; script-src 'self'; style-src 'self'`): no inline scripts, no inline
//! event handlers, no `style` attributes. The only script is `live.js`, which keeps an open
//! story's timeline and claims ledger current by fetching [`story::timeline_fragment`] whenever
//! the story's event stream reports a change.
//!
//! Newsroom practice, as readers see it: developments waiting for review (or rejected) never
//! appear; a correction is shown inline with the editor's note exactly as written and what it
//! changed; a retraction stays on the page, struck through, with the reason.
//!
//! This module holds the paths and the pages that say something went wrong, in the layout every
//! page of the site shares ([`newsroom_web::page`]); the words readers see for the model's values
//! are in [`words`], the pieces pages are made of in [`pieces`], and each page has a module of its
//! own: [`front`], [`story`], [`actor`], [`search`].
//!
//! A story page shows its timeline newest first, or in the order things happened (`?order=oldest`),
//! all of it or its key events only (`?show=key`: flash and priority), chosen by plain links
//! (`TimelineOptions`; other values are a 400 naming the field); its count is the front page's
//! (published developments of the whole story), retracted ones counted apart; "Related stories"
//! lists its relations. `live.js` puts a development that arrives where the reader's order has it,
//! marked "New", leaves out what the key-events view does not show, keeps the counts and "Last
//! updated" current, and announces it in a polite `aria-live` region. Every `<time>` is rendered in
//! UTC with UTC in its `title`; `static/time.js` (on every reader page) shows it in the reader's
//! time zone, UTC on hover. On a phone every link and button is at least 44 × 44 px. A claim filed
//! before `accused` existed shows its actors as "Named".

pub mod actor;
pub mod front;
pub mod pieces;
pub mod search;
pub mod story;
#[cfg(test)]
mod tests;
pub mod words;

use std::fmt::Write as _;

use maud::{html, Markup};
use newsroom_web::page::{layout, Live, ALERTS_PATH};
use uuid::Uuid;

use words::status_text;

/// The script at [`TIME_SCRIPT_PATH`](newsroom_web::page::TIME_SCRIPT_PATH)
/// (`text/javascript; charset=utf-8`).
pub const TIME_JS: &str = include_str!("../../static/time.js");
/// The stylesheet, for the server to serve at
/// [`STYLESHEET_PATH`](newsroom_web::page::STYLESHEET_PATH) (`text/css; charset=utf-8`).
pub const NEWSROOM_CSS: &str = include_str!("../../static/newsroom.css");
/// The live-update script, for the server to serve at [`SCRIPT_PATH`](newsroom_web::page::SCRIPT_PATH)
/// (`text/javascript; charset=utf-8`).
pub const LIVE_JS: &str = include_str!("../../static/live.js");

// ---------------------------------------------------------------------------------------------
// Paths
// ---------------------------------------------------------------------------------------------

/// Percent-encodes one path segment: everything but RFC 3986 unreserved characters.
fn encode_segment(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for b in raw.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The reader page of a story: `/stories/{slug}`.
pub fn story_path(slug: &str) -> String {
    format!("/stories/{}", encode_segment(slug))
}

/// The reader page of an actor: `/actors/{percent-encoded name or key}`. Pages link by the name
/// as shown: the page finds the actor by the name's key, and a key (a UTS #39 skeleton, where
/// `m` becomes `rn`) is no name to show in an address.
pub fn actor_path(name: &str) -> String {
    format!("/actors/{}", encode_segment(name))
}

/// The HTML fragment [`story::timeline_fragment`] is served at: `/stories/{slug}/fragment`.
pub fn fragment_path(slug: &str) -> String {
    format!("/stories/{}/fragment", encode_segment(slug))
}

/// A story's Atom feed: `/v1/stories/{slug}/feed.atom`.
pub fn atom_feed_path(slug: &str) -> String {
    format!("/v1/stories/{}/feed.atom", encode_segment(slug))
}

/// A story's JSON Feed: `/v1/stories/{slug}/feed.json`.
pub fn json_feed_path(slug: &str) -> String {
    format!("/v1/stories/{}/feed.json", encode_segment(slug))
}

/// The form that follows a story by its slug.
pub fn follow_story_path(slug: &str) -> String {
    format!("{ALERTS_PATH}/follow?story={}", encode_segment(slug))
}

/// The form that follows an actor by name.
pub fn follow_actor_path(name: &str) -> String {
    format!("{ALERTS_PATH}/follow?actor={}", encode_segment(name))
}

/// The in-page anchor of a development.
fn anchor(id: Uuid) -> String {
    format!("dev-{id}")
}

// ---------------------------------------------------------------------------------------------
// Descriptions and error pages (the layout is `newsroom_web::page`'s, shared with the alert pages)
// ---------------------------------------------------------------------------------------------

/// A plain-text description for `<meta name="description">`, at most 200 characters.
fn description(text: &str) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= 200 {
        flat
    } else {
        let mut cut: String = flat.chars().take(199).collect();
        cut.push('…');
        cut
    }
}

/// A page for something that does not exist; `what` says what was looked for ("story
/// `campaign-hack`").
pub fn not_found_page(what: &str) -> Markup {
    let content = html! {
        h1.page-title { "Not found" }
        p { "We could not find " (what) "." }
        p { a href="/" { "See all running stories" } }
    };
    layout("Not found", html! {}, None, content)
}

/// A page for any other failure.
pub fn error_page(status: u16, message: &str) -> Markup {
    let title = status_text(status);
    let content = html! {
        h1.page-title { (title) }
        p.error-status { "Error " (status) }
        p { (message) }
        p { a href="/" { "Back to all running stories" } }
    };
    layout(title, html! {}, None, content)
}
