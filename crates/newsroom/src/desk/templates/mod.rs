//! The desk's pages (maud). Pure functions of what the handlers read; maud escapes every
//! spliced value. No inline script or style: the pages work under `script-src 'self';
//! style-src 'self'`, with [`STYLESHEET_PATH`] as their only stylesheet and [`SCRIPT_PATH`] as
//! their only script, which only improves what works without it (Enter in a one-line field of a
//! form marked `data-no-enter` does not send it).
//!
//! Accessibility: every control has a `<label>`; hints and errors are tied to their control with
//! `aria-describedby`, invalid controls carry `aria-invalid`; a refused form opens with an error
//! summary that takes the focus and links to the field; everything is reachable by keyboard, in
//! reading order, with a visible focus ring; colours keep WCAG AA contrast (see `desk.css`).
//!
//! This module holds what every page shares: the frame ([`Chrome`], [`Here`], `layout`), the form
//! controls (`Ctl`), and the words, paths and pieces several pages use; `development` holds how
//! they show a development. Each other file holds one family of pages, most named after the
//! handlers' module that shows them (`home` and `story` are both shown by `stories`).

mod corrections;
mod development;
mod embargo;
mod filing;
mod home;
mod messages;
mod review;
mod search;
mod sign_in;
mod story;
mod undo;

pub(super) use corrections::{
    control_label, correct_page, correct_preview_page, retract_page, withdraw_page,
};
pub(super) use development::{changes_since, who_rejected};
pub(super) use embargo::embargo_page;
pub(super) use filing::{file_page, file_preview_page, Opened};
pub(super) use home::home_page;
pub(super) use messages::message_page;
pub(super) use review::{approve_page, review_page, FailedRejection};
pub(super) use search::search_page;
pub(super) use sign_in::{password_page, sign_in_page};
pub(super) use story::story_page;
pub(super) use undo::{undo_notice, undo_page};

use chrono::{DateTime, Utc};
use maud::{html, Markup, DOCTYPE};
use newsroom_domain::{Evidence, Hold, Role, SourceKind, Urgency};
use newsroom_projection::pages::words::{evidence_label, source_kind_label, urgency_label};
use newsroom_readmodel::DevelopmentStanding;
use newsroom_web::Principal;
use uuid::Uuid;

use super::forms::{FormData, FormError};
use super::zone::Zone;

/// Where the desk's stylesheet is served.
const STYLESHEET_PATH: &str = "/desk/static/desk.css";
/// Where the desk's script is served.
const SCRIPT_PATH: &str = "/desk/static/desk.js";

/// The frame of a signed-in page: who is at the desk, and the session's CSRF token for the
/// sign-out form.
#[derive(Debug)]
pub(super) struct Chrome<'a> {
    /// Who has which development's form open.
    pub presence: &'a super::presence::Presence,
    pub who: &'a Principal,
    pub csrf: &'a str,
    pub zone: Zone,
    /// Which navigation entry is the current page.
    pub here: Here,
    /// The undo window publishing and approving hold for (none: at once).
    pub undo: Option<newsroom_domain::Hold>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Here {
    Stories,
    Review,
    Search,
    Other,
}

impl Chrome<'_> {
    fn is_editor(&self) -> bool {
        self.who.role.at_least(Role::Editor)
    }
}

// ----- words -----------------------------------------------------------------------------

fn urgency_description(urgency: Urgency) -> &'static str {
    match urgency {
        Urgency::Routine => "alerts go out as each subscriber chose: at once or in a digest",
        Urgency::Priority => "important: also reaches subscribers who only want priority news",
        Urgency::Flash => "breaking: alerts every subscriber at once, skipping digests",
    }
}

fn evidence_description(evidence: Evidence) -> &'static str {
    match evidence {
        Evidence::NoneProvided => "the claim comes without evidence",
        Evidence::Circumstantial => "indirect evidence points to it",
        Evidence::Documentary => "documents back it",
        Evidence::Confirmed => "independently confirmed",
    }
}

fn state_label(state: DevelopmentStanding) -> &'static str {
    match state {
        DevelopmentStanding::PendingReview => "Waiting for review",
        DevelopmentStanding::Published => "Published",
        DevelopmentStanding::Rejected => "Rejected",
        DevelopmentStanding::Retracted => "Retracted",
        DevelopmentStanding::Embargoed => "Embargoed",
    }
}

fn state_class(state: DevelopmentStanding) -> &'static str {
    match state {
        DevelopmentStanding::PendingReview => "state-pending",
        DevelopmentStanding::Published => "state-published",
        DevelopmentStanding::Rejected => "state-rejected",
        DevelopmentStanding::Retracted => "state-retracted",
        DevelopmentStanding::Embargoed => "state-embargoed",
    }
}

fn plural(n: i64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

fn role_label(role: Role) -> &'static str {
    match role {
        Role::Reporter => "reporter",
        Role::Editor => "editor",
        Role::Admin => "admin",
    }
}

// ----- paths -------------------------------------------------------------------------------

pub(super) fn story_desk_path(story: Uuid) -> String {
    format!("/desk/stories/{story}")
}

pub(super) fn development_path(story: Uuid, development: Uuid, action: &str) -> String {
    format!("/desk/stories/{story}/developments/{development}/{action}")
}

fn anchor(id: Uuid) -> String {
    format!("dev-{id}")
}

/// A source URL from the log is linked only if it is an absolute http(s) URL.
fn safe_web_url(raw: &str) -> Option<String> {
    let url = url::Url::parse(raw).ok()?;
    (matches!(url.scheme(), "http" | "https") && url.host_str().is_some()).then(|| url.into())
}

// ----- small pieces --------------------------------------------------------------------------

/// A moment as the desk writes it, in its time zone.
pub(super) fn when(zone: Zone, at: DateTime<Utc>) -> Markup {
    time(zone, at)
}

fn time(zone: Zone, at: DateTime<Utc>) -> Markup {
    html! {
        time datetime=(at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)) { (zone.display(at)) }
    }
}

/// Free text with its line breaks kept (the stylesheet sets `white-space: pre-line`).
fn text_block(class: &str, text: &str) -> Markup {
    html! {
        @if !text.trim().is_empty() {
            div class=(class) { (text.trim()) }
        }
    }
}

fn csrf_field(csrf: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(csrf); }
}

/// The id of a form control: `source.name` → `f-source-name`.
fn control_id(name: &str) -> String {
    format!("f-{}", name.replace(['.', '_'], "-"))
}

/// A control's label, hint and error, as the control needs to point at them.
struct Ctl<'a> {
    name: &'a str,
    id: String,
    label: &'a str,
    hint: Option<&'a str>,
    error: Option<&'a str>,
    required: bool,
}

impl<'a> Ctl<'a> {
    fn new(name: &'a str, label: &'a str, error: Option<&'a FormError>) -> Self {
        Self {
            name,
            id: control_id(name),
            label,
            hint: None,
            error: error.and_then(|e| e.for_field(name)),
            required: false,
        }
    }

    fn with_id(mut self, id: String) -> Self {
        self.id = id;
        self
    }

    fn hint(mut self, hint: &'a str) -> Self {
        self.hint = Some(hint);
        self
    }

    fn required(mut self) -> Self {
        self.required = true;
        self
    }

    fn hint_id(&self) -> String {
        format!("{}-hint", self.id)
    }

    fn error_id(&self) -> String {
        format!("{}-error", self.id)
    }

    fn described_by(&self) -> Option<String> {
        let ids: Vec<String> = [
            self.hint.map(|_| self.hint_id()),
            self.error.map(|_| self.error_id()),
        ]
        .into_iter()
        .flatten()
        .collect();
        (!ids.is_empty()).then(|| ids.join(" "))
    }

    fn invalid(&self) -> Option<&'static str> {
        self.error.map(|_| "true")
    }

    /// Label, hint and error around `control`.
    fn wrap(&self, control: Markup) -> Markup {
        html! {
            div.field.field-invalid[self.error.is_some()] {
                label for=(self.id) {
                    (self.label)
                    @if self.required { span.required-mark { " (required)" } }
                }
                (self.notes())
                (control)
            }
        }
    }

    fn notes(&self) -> Markup {
        html! {
            @if let Some(hint) = self.hint {
                p.hint id=(self.hint_id()) { (hint) }
            }
            @if let Some(error) = self.error {
                p.error-message id=(self.error_id()) {
                    span.visually-hidden { "Error: " }
                    (error)
                }
            }
        }
    }
}

fn text_input(ctl: &Ctl<'_>, kind: &str, value: &str, maxlength: Option<usize>) -> Markup {
    ctl.wrap(html! {
        input type=(kind) id=(ctl.id) name=(ctl.name) value=(value)
            maxlength=[maxlength] required[ctl.required]
            aria-describedby=[ctl.described_by()] aria-invalid=[ctl.invalid()];
    })
}

fn textarea(ctl: &Ctl<'_>, value: &str, rows: u32, maxlength: Option<usize>) -> Markup {
    ctl.wrap(html! {
        textarea id=(ctl.id) name=(ctl.name) rows=(rows) maxlength=[maxlength]
            required[ctl.required]
            aria-describedby=[ctl.described_by()] aria-invalid=[ctl.invalid()] { (value) }
    })
}

fn select(ctl: &Ctl<'_>, options: &[(String, String)], selected: &str) -> Markup {
    ctl.wrap(html! {
        select id=(ctl.id) name=(ctl.name) required[ctl.required]
            aria-describedby=[ctl.described_by()] aria-invalid=[ctl.invalid()] {
            @for (value, text) in options {
                option value=(value) selected[value == selected] { (text) }
            }
        }
    })
}

fn placeholder(text: &str) -> (String, String) {
    (String::new(), text.to_owned())
}

fn source_kind_options() -> Vec<(String, String)> {
    std::iter::once(placeholder("Choose a kind of source…"))
        .chain(
            SourceKind::ALL
                .iter()
                .map(|k| (k.as_str().to_owned(), source_kind_label(*k).to_owned())),
        )
        .collect()
}

fn evidence_options() -> Vec<(String, String)> {
    Evidence::ALL
        .iter()
        .map(|e| {
            (
                e.as_str().to_owned(),
                format!("{} — {}", evidence_label(*e), evidence_description(*e)),
            )
        })
        .collect()
}

/// The summary a refused form opens with: it takes the focus, says what is wrong and links to
/// the field.
fn error_summary(error: Option<&FormError>, known: &[&str]) -> Markup {
    html! {
        @if let Some(e) = error {
            div.error-summary role="alert" aria-labelledby="error-summary-title" tabindex="-1" autofocus {
                h2 #error-summary-title { "There is a problem" }
                ul {
                    li {
                        @match e.field.as_deref().filter(|f| known.contains(f)) {
                            Some(field) => { a href=(format!("#{}", control_id(field))) { (e.message) } }
                            None => { (e.message) }
                        }
                    }
                }
            }
        }
    }
}

/// A notice after a successful action.
fn notice_banner(notice: Option<&Markup>) -> Markup {
    html! {
        @if let Some(n) = notice {
            div.notice role="status" { (n) }
        }
    }
}

// ----- layout ------------------------------------------------------------------------------

fn layout(title: &str, chrome: Option<&Chrome<'_>>, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                meta name="robots" content="noindex, nofollow";
                title { (title) " — Newsroom desk" }
                link rel="stylesheet" href=(STYLESHEET_PATH);
                script src=(SCRIPT_PATH) defer {}
            }
            body {
                a.skip-link href="#content" { "Skip to content" }
                header.desk-bar {
                    div.bar-inner {
                        a.brand href="/desk" { "Newsroom " span.brand-desk { "desk" } }
                        @if let Some(c) = chrome {
                            nav.desk-nav aria-label="Desk" {
                                ul {
                                    li {
                                        a href="/desk" aria-current=[(c.here == Here::Stories).then_some("page")] { "Stories" }
                                    }
                                    @if c.is_editor() {
                                        li {
                                            a href="/desk/review" aria-current=[(c.here == Here::Review).then_some("page")] { "Review queue" }
                                        }
                                    }
                                    li {
                                        a href="/desk/search" aria-current=[(c.here == Here::Search).then_some("page")] { "Search" }
                                    }
                                    li { a href="/desk/password" { "Password" } }
                                    li { a href="/" { "Reader site" } }
                                }
                            }
                            div.who {
                                span.who-name { (c.who.name) }
                                " "
                                span.badge.role { (role_label(c.who.role)) }
                                form.sign-out method="post" action="/desk/sign-out" {
                                    (csrf_field(c.csrf))
                                    button.button-link type="submit" { "Sign out" }
                                }
                            }
                        }
                    }
                }
                @if chrome.is_some() {
                    // What others did to this person's filings, as it happens (`desk.js`).
                    section #desk-notices .desk-notices aria-labelledby="desk-notices-heading" hidden {
                        h2 #desk-notices-heading { "Your filings" }
                        ul #desk-notices-list aria-live="polite" {}
                    }
                }
                main #content .desk-main {
                    (content)
                }
            }
        }
    }
}

/// The list items of what others did to someone's filings (`/desk/notices`).
pub(super) fn notice_items(zone: Zone, notices: &[super::notices::Notice]) -> Markup {
    html! {
        @for n in notices {
            li.desk-notice {
                a href=(format!("{}#{}", story_desk_path(n.story), anchor(n.development))) { (n.headline) }
                " was " strong { (n.what) }
                @if let Some(by) = &n.by { " by " (by) }
                " · " (time(zone, n.at))
                " · in " (n.story_headline)
                @if let Some(why) = &n.why { p.small { (why) } }
            }
        }
    }
}

// ----- previews: what readers and subscribers will get ------------------------------------------------

/// What was typed, carried on hidden to the preview page's buttons.
fn hidden_fields(form: &FormData) -> Markup {
    html! {
        @for (name, value) in super::forms::carried(form) {
            input type="hidden" name=(name) value=(value);
        }
    }
}

/// Who is alerted once readers see a development of this urgency.
fn alert_note(urgency: Urgency, subscribers: Option<i64>) -> Markup {
    html! {
        p {
            @match subscribers {
                Some(n) => { (plural(n, "subscriber follows", "subscribers follow")) " this story by name" }
                None => { "Subscribers follow this story" }
            }
            "; subscribers to its people, its kind or its topics are alerted too. "
            strong { (urgency_label(urgency)) } ": " (urgency_description(urgency)) "."
        }
    }
}

/// What publishing (`doing`: "Publishing", "Approving") will do, with the desk's undo window.
fn publishing_warning(undo: Option<Hold>, doing: &str) -> Markup {
    html! {
        @match undo {
            None => {
                (doing) " puts it on the reader page at once and alerts subscribers. "
                "Afterwards, only a public correction or a retraction can change it."
            }
            Some(hold) => {
                (doing) " puts it on the reader page and alerts subscribers "
                (hold.seconds()) " seconds later; until then you can undo it, and nobody sees it. "
                "Afterwards, only a public correction or a retraction can change it."
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_ids_are_plain() {
        assert_eq!(control_id("source.name"), "f-source-name");
        assert_eq!(control_id("responds_to.stance"), "f-responds-to-stance");
    }
}
