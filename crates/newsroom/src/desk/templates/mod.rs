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

use chrono::{DateTime, Utc};
use maud::{html, Markup, DOCTYPE};
use newsroom_domain::{
    DevelopmentKind, Evidence, Hold, Relation, Role, SourceKind, Stance, Urgency,
};
use newsroom_projection::pages::story_path;
use newsroom_projection::pages::words::{
    evidence_label, kind_label, source_kind_label, stance_label, urgency_label,
};
use newsroom_readmodel::{
    CorrectionView, DevelopmentStanding, DevelopmentView, EmbargoStep, EmbargoStepKind,
    FieldChange, RelatedStory, StoryStatus, StoryView,
};
use newsroom_web::Principal;
use uuid::Uuid;

use super::forms::{FormData, FormError, CORRECTION_CONTROLS};
use super::zone::Zone;
use newsroom_projection::desk::{DeskStory, Pending, Rejected};

/// Where the desk's stylesheet is served.
pub const STYLESHEET_PATH: &str = "/desk/static/desk.css";
/// Where the desk's script is served.
pub const SCRIPT_PATH: &str = "/desk/static/desk.js";

/// The frame of a signed-in page: who is at the desk, and the session's CSRF token for the
/// sign-out form.
#[derive(Debug)]
pub struct Chrome<'a> {
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
pub enum Here {
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

/// What each kind of development means, in plain words.
pub fn kind_description(kind: DevelopmentKind) -> &'static str {
    match kind {
        DevelopmentKind::HackReported => "systems or accounts were broken into, or someone says so",
        DevelopmentKind::AttributionClaimed => {
            "someone says who is behind it (needs a named source)"
        }
        DevelopmentKind::DenialIssued => {
            "the accused deny a claim (needs a named source and the development it denies)"
        }
        DevelopmentKind::ChargesFiled => "prosecutors charge someone",
        DevelopmentKind::StatementIssued => "someone involved says something on the record",
        DevelopmentKind::ReportPublished => "a report, investigation or analysis is published",
        DevelopmentKind::CommentRequested => "we asked someone for comment",
        DevelopmentKind::InvestigationOpened => {
            "police, prosecutors, a regulator or a company start investigating"
        }
        DevelopmentKind::ArrestMade => "someone is arrested",
        DevelopmentKind::RulingIssued => "a court or regulator decides",
        DevelopmentKind::Update => "anything else new on the story",
    }
}

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

fn stance_description(stance: Stance) -> &'static str {
    match stance {
        Stance::Supports => "supports it",
        Stance::Disputes => "disputes it",
        Stance::Denies => "denies it",
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

pub fn story_desk_path(story: Uuid) -> String {
    format!("/desk/stories/{story}")
}

pub fn development_path(story: Uuid, development: Uuid, action: &str) -> String {
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
pub fn when(zone: Zone, at: DateTime<Utc>) -> Markup {
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

/// A correction control in words: `changes.headline` → "the headline".
pub fn control_label(control: &str) -> &str {
    match control {
        "changes.headline" => "the headline",
        "changes.body" => "the text",
        "changes.occurred_at" => "when it happened",
        "changes.actors" => "who is named",
        "changes.source.name" => "the source's name",
        "changes.source.kind" => "the kind of source",
        "changes.source.url" => "the source's link",
        "changes.evidence" => "the evidence",
        other => other,
    }
}

/// The id of a form control: `source.name` → `f-source-name`.
pub fn control_id(name: &str) -> String {
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

fn kind_options() -> Vec<(String, String)> {
    std::iter::once(placeholder("Choose a kind…"))
        .chain(DevelopmentKind::ALL.iter().map(|k| {
            (
                k.as_str().to_owned(),
                format!("{} — {}", kind_label(*k), kind_description(*k)),
            )
        }))
        .collect()
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

/// The urgencies; a reporter is told that a flash waits for an editor.
fn urgency_options(editor: bool) -> Vec<(String, String)> {
    Urgency::ALL
        .iter()
        .map(|u| {
            let held = if *u == Urgency::Flash && !editor {
                " (from a reporter, only once an editor approves it)"
            } else {
                ""
            };
            (
                u.as_str().to_owned(),
                format!("{} — {}{held}", urgency_label(*u), urgency_description(*u)),
            )
        })
        .collect()
}

fn stance_options() -> Vec<(String, String)> {
    std::iter::once(placeholder("Choose…"))
        .chain(Stance::ALL.iter().map(|s| {
            (
                s.as_str().to_owned(),
                format!("It {}", stance_description(*s)),
            )
        }))
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
pub fn notice_items(zone: Zone, notices: &[super::notices::Notice]) -> Markup {
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

// ----- sign in -----------------------------------------------------------------------------

/// `/desk/sign-in`: a name and password, or an API token. Neither secret is ever filled in again.
/// `error` names the field it concerns (`login`, `password` or `token`).
pub fn sign_in_page(
    csrf: &str,
    next: &str,
    error: Option<&FormError>,
    login: &str,
    notice: Option<&str>,
) -> Markup {
    let login_ctl = Ctl::new("login", "Sign-in name", error).required();
    let password_ctl = Ctl::new("password", "Password", error).required();
    let token_ctl = Ctl::new("token", "Your API token", error)
        .hint("It starts with nr_. The first admin token is printed when newsroom first starts; an admin makes one for you with: newsroom token create --role reporter --name \"Your Name\"")
        .required();
    let content = html! {
        div.narrow {
            h1 { "Sign in to the desk" }
            @if let Some(n) = notice { div.notice role="status" { (n) } }
            (error_summary(error, &["login", "password", "token"]))
            form.stack #password-sign-in method="post" action="/desk/sign-in" {
                (csrf_field(csrf))
                input type="hidden" name="next" value=(next);
                (login_ctl.wrap(html! {
                    input type="text" id=(login_ctl.id) name="login" value=(login) required
                        autocomplete="username" spellcheck="false" autocapitalize="off"
                        maxlength="64"
                        aria-describedby=[login_ctl.described_by()] aria-invalid=[login_ctl.invalid()];
                }))
                (password_ctl.wrap(html! {
                    input type="password" id=(password_ctl.id) name="password" required
                        autocomplete="current-password" maxlength="256"
                        aria-describedby=[password_ctl.described_by()] aria-invalid=[password_ctl.invalid()];
                }))
                div.actions { button.button type="submit" { "Sign in" } }
            }
            h2 { "With an API token" }
            p.small {
                "The first time, sign in with the token an admin gave you, then choose a "
                "sign-in name and password under “Password”."
            }
            form.stack #token-sign-in method="post" action="/desk/sign-in" {
                (csrf_field(csrf))
                input type="hidden" name="next" value=(next);
                (token_ctl.wrap(html! {
                    input type="password" id=(token_ctl.id) name="token" required
                        autocomplete="off" spellcheck="false" autocapitalize="off"
                        aria-describedby=[token_ctl.described_by()] aria-invalid=[token_ctl.invalid()];
                }))
                div.actions { button.button type="submit" { "Sign in with the token" } }
            }
            p.small {
                "A sign-in lasts up to twelve hours or until you sign out; the desk's cookie "
                "holds a key of its own, never your password or token."
            }
        }
    };
    layout("Sign in", None, content)
}

/// `/desk/password`: choose (or change) the sign-in name and password of this token's holder.
pub fn password_page(
    chrome: &Chrome<'_>,
    login: Option<&str>,
    error: Option<&FormError>,
    notice: Option<&str>,
) -> Markup {
    let login_ctl = Ctl::new("login", "Sign-in name", error)
        .hint("3 to 64 letters, digits, dots, dashes, underscores or @; not case-sensitive.")
        .required();
    let password_ctl = Ctl::new("password", "New password", error)
        .hint("At least 12 characters. A few unrelated words make a good one.")
        .required();
    let repeat_ctl = Ctl::new("repeat", "The new password again", error).required();
    let content = html! {
        div.narrow {
            h1 { "Sign-in name and password" }
            @if let Some(n) = notice { div.notice role="status" { (n) } }
            (error_summary(error, &["login", "password", "repeat"]))
            p {
                @match login {
                    Some(l) => { "You sign in as " strong { (l) } ". Change it or the password here." }
                    None => { "Choose a name and password to sign in with instead of your API token." }
                }
            }
            form.stack method="post" action="/desk/password" {
                (csrf_field(chrome.csrf))
                (login_ctl.wrap(html! {
                    input type="text" id=(login_ctl.id) name="login" value=(login.unwrap_or_default())
                        required autocomplete="username" spellcheck="false" autocapitalize="off"
                        maxlength="64"
                        aria-describedby=[login_ctl.described_by()] aria-invalid=[login_ctl.invalid()];
                }))
                (password_ctl.wrap(html! {
                    input type="password" id=(password_ctl.id) name="password" required
                        autocomplete="new-password" minlength="12" maxlength="256"
                        aria-describedby=[password_ctl.described_by()] aria-invalid=[password_ctl.invalid()];
                }))
                (repeat_ctl.wrap(html! {
                    input type="password" id=(repeat_ctl.id) name="repeat" required
                        autocomplete="new-password" minlength="12" maxlength="256"
                        aria-describedby=[repeat_ctl.described_by()] aria-invalid=[repeat_ctl.invalid()];
                }))
                div.actions { button.button type="submit" { "Save" } }
            }
        }
    };
    layout("Sign-in name and password", Some(chrome), content)
}

// ----- stories -----------------------------------------------------------------------------

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
pub fn home_page(
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

// ----- a development on the desk ------------------------------------------------------------

fn describe_value(zone: Zone, field: &str, value: &serde_json::Value) -> String {
    newsroom_projection::pages::pieces::describe_change_value(field, value, &|t| zone.display(t))
}

fn field_name(field: &str) -> &str {
    match field {
        "headline" => "Headline",
        "body" => "Text",
        "occurred_at" => "When it happened",
        "actors" => "Named",
        "source" => "Source",
        "evidence" => "Evidence",
        other => other,
    }
}

fn changes_list(zone: Zone, changes: &[FieldChange]) -> Markup {
    html! {
        @if !changes.is_empty() {
            ul.changes aria-label="What changed" {
                @for c in changes {
                    li {
                        strong { (field_name(&c.field)) ": " }
                        del { (describe_value(zone, &c.field, &c.before)) }
                        span aria-hidden="true" { " → " }
                        span.visually-hidden { " changed to " }
                        ins { (describe_value(zone, &c.field, &c.after)) }
                    }
                }
            }
        }
    }
}

fn who(name: &Option<String>) -> &str {
    name.as_deref().unwrap_or("someone")
}

/// Whether a rejection is its filer's withdrawal.
fn is_withdrawal(d: &DevelopmentView, v: &newsroom_readmodel::Verdict) -> bool {
    v.reason == newsroom_domain::WITHDRAWN && v.by.is_some() && v.by == d.filed_by
}

/// "Eda Editor's reason", for the notice over a revised filing.
pub fn who_rejected(v: &newsroom_readmodel::Verdict) -> String {
    format!("{}’s reason", who(&v.by))
}

fn correction_entry(zone: Zone, d: &DevelopmentView, c: &CorrectionView) -> Markup {
    let before_publication = d.published_position.is_none_or(|p| c.position < p);
    html! {
        li.history-correction {
            "Corrected by " strong { (who(&c.by)) } " · " (time(zone, c.corrected_at))
            @if before_publication { " " span.small { "(before publication: readers are not told)" } }
            div.note-quote { span.visually-hidden { "Note: " } (c.note) }
            (changes_list(zone, &c.changes))
        }
    }
}

/// An edit of the filing made while it waited for review: readers are never told of it.
fn edit_entry(zone: Zone, e: &CorrectionView) -> Markup {
    html! {
        li.history-edit {
            "Edited by " strong { (who(&e.by)) } " · " (time(zone, e.corrected_at))
            " " span.small { "(before publication: readers are not told)" }
            @if !e.note.is_empty() {
                div.note-quote { span.visually-hidden { "Note: " } (e.note) }
            }
            (changes_list(zone, &e.changes))
        }
    }
}

/// A development's full history: who filed it, who approved it, every correction, and its
/// rejection or retraction.
fn history(zone: Zone, d: &DevelopmentView) -> Markup {
    let held = |s: &EmbargoStep| matches!(s.step, EmbargoStepKind::Filed { .. });
    let filed_held = d.embargo_steps.first().is_some_and(held);
    // Held by an embargo at filing and approved by no one: it waited for no review.
    let waited = d.published_position.is_none_or(|p| p != d.position)
        && !(filed_held
            && d.approved_by.is_none()
            && d.state != DevelopmentStanding::PendingReview
            && d.rejection.is_none());
    // An approval under an embargo is not when it was published.
    let approved_at = d
        .embargo_steps
        .iter()
        .find(|s| matches!(s.step, EmbargoStepKind::ApprovedUnder { .. }))
        .map(|s| s.at)
        .or(d.published_at);
    html! {
        section.history aria-label="History" {
            h4.history-title { "History" }
            ol.history-list {
                li {
                    "Filed by " strong { (who(&d.filed_by)) } " · " (time(zone, d.recorded_at))
                    @if waited { " · waited for review" }
                    @else if filed_held { " · held under embargo" }
                    @else { " · published at once" }
                }
                @if let (true, Some(at)) = (waited && d.approved_by.is_some(), approved_at) {
                    li { "Approved by " strong { (who(&d.approved_by)) } " · " (time(zone, at)) }
                }
                @for s in &d.embargo_steps {
                    @match s.step {
                        EmbargoStepKind::Filed { .. } | EmbargoStepKind::ApprovedUnder { .. } => {}
                        EmbargoStepKind::Moved { until } => {
                            li { "Embargo moved to " (time(zone, until)) " by " strong { (who(&s.by)) } " · " (time(zone, s.at)) }
                        }
                        EmbargoStepKind::Lifted { published } => {
                            li {
                                "Embargo lifted by " strong { (who(&s.by)) } " · " (time(zone, s.at))
                                @if published { " · published" }
                            }
                        }
                        EmbargoStepKind::ApprovalUndone => {
                            li { "Approval undone by " strong { (who(&s.by)) } " · " (time(zone, s.at)) " · waits for review again" }
                        }
                    }
                }
                @for e in &d.edits { (edit_entry(zone, e)) }
                @for c in &d.corrections { (correction_entry(zone, d, c)) }
                @if let Some(v) = &d.rejection {
                    li.history-rejection {
                        @if is_withdrawal(d, v) { "Withdrawn by " } @else { "Rejected by " }
                        strong { (who(&v.by)) } " · " (time(zone, v.at))
                        div.note-quote { span.visually-hidden { "Reason: " } (v.reason) }
                    }
                }
                @if let Some(v) = &d.retraction {
                    li.history-retraction {
                        "Retracted by " strong { (who(&v.by)) } " · " (time(zone, v.at))
                        div.note-quote { span.visually-hidden { "Reason: " } (v.reason) }
                    }
                }
            }
        }
    }
}

/// A development as the desk shows it: every field, whatever its state.
fn development_body(zone: Zone, story: Option<&StoryView>, d: &DevelopmentView) -> Markup {
    let retracted = d.state == DevelopmentStanding::Retracted;
    let target = d.responds_to.map(|link| {
        let headline = story
            .and_then(|s| s.development(link.development))
            .map(|t| t.headline.clone());
        (link, headline)
    });
    html! {
        p.labels {
            span.badge.state.(state_class(d.state)) {
                @if d.undo_window { "Publishing soon" } @else { (state_label(d.state)) }
            }
            " " span.badge.kind { (kind_label(d.kind)) }
            " " span.badge { (urgency_label(d.urgency)) }
            " " span.badge { (evidence_label(d.evidence)) }
        }
        @if let (Some(until), true) = (d.embargo_until, d.undo_window) {
            p.embargo.undo-window {
                strong { "Publishing at " (time(zone, until)) }
                " " span.countdown data-until=(until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)) {}
                ": held so that it can still be undone. Readers see nothing of it, and nobody is "
                "alerted, until then."
            }
        } @else if let Some(until) = d.embargo_until {
            p.embargo {
                strong { "Embargoed until " (time(zone, until)) }
                // desk.js counts down to it; without the script the moment above says it all.
                " " span.countdown data-until=(until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)) {}
                @if d.state == DevelopmentStanding::PendingReview {
                    " (held after approval until then)"
                }
                ": readers see nothing of it, and nobody is alerted, until then."
            }
        }
        h3.dev-headline {
            @if retracted { del { (d.headline) } } @else { (d.headline) }
        }
        p.meta {
            "Happened " (time(zone, d.occurred_at))
        }
        (text_block("dev-body", &d.body))
        @if !d.actors.is_empty() {
            p.meta {
                span.label { "Named: " }
                @for (i, a) in d.actors.iter().enumerate() {
                    @if i > 0 { ", " }
                    (a.name())
                }
            }
        }
        @if let Some(s) = &d.source {
            p.meta {
                span.label { "Source: " }
                @match s.url.as_ref().and_then(|u| safe_web_url(u.as_str())) {
                    Some(href) => { a href=(href) rel="nofollow noopener noreferrer" { (s.name.as_str()) } }
                    None => { (s.name.as_str()) }
                }
                " (" (source_kind_label(s.kind)) ")"
            }
        }
        @if let Some((link, headline)) = target {
            p.meta {
                span.label { "Responds to: " }
                "it " (stance_label(link.stance)) " "
                a href=(format!("#{}", anchor(link.development))) {
                    (headline.unwrap_or_else(|| "an earlier development".to_owned()))
                }
            }
        }
    }
}

/// Who else is at work on a development right now, if anyone: said before anything is done to it.
fn others_at_work(chrome: &Chrome<'_>, development: Uuid) -> Markup {
    let others = chrome.presence.others(development, chrome.who);
    html! {
        @if !others.is_empty() {
            div.notice.notice-warning.presence role="status" {
                @for p in &others {
                    p { strong { (p.name) } " " (p.doing.words()) " (opened " (time(chrome.zone, p.since)) ")." }
                }
                p.small { "If you change it too, the second change is refused and shows you the first." }
            }
        }
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

// ----- the story's desk page ------------------------------------------------------------------

/// `/desk/stories/{id}`: the story, every development with its history, and who follows it.
pub fn story_page(
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

// ----- filing -----------------------------------------------------------------------------------

/// The fields of the filing form, for the error summary's links.
const FILING_FIELDS: &[&str] = &[
    "kind",
    "headline",
    "body",
    "occurred_at",
    "embargo_until",
    "actors",
    "accused",
    "urgency",
    "source.name",
    "source.kind",
    "source.url",
    "evidence",
    "responds_to.development",
    "responds_to.stance",
];

/// How many actor boxes the filing form shows at least.
const ACTOR_BOXES: usize = 4;

/// Where the browser keeps the draft of a filing (`desk.js`): per story and per user, without
/// naming the user.
pub fn draft_key(who: &Principal, story: Uuid) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("newsroom desk draft\0{}", who.token_id));
    let user: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("newsroom-desk-draft:v1:{story}:{user}")
}

/// How a filing form came to hold what it holds, which tells `desk.js` whether the browser's
/// own draft may take its place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opened {
    /// Just opened, nothing typed: the browser's draft, if any, fills it.
    Fresh,
    /// Filled from the person's draft on the server: the browser's draft takes its place only
    /// if it holds typing the server never got (`desk.js` knows which saves reached it).
    ServerDraft,
    /// Sent back with what was sent (an error, a story closed meanwhile, "change it").
    Sent,
}

/// `/desk/stories/{id}/file`: the filing form. `form` holds what was typed (or the defaults,
/// with a fresh `id`).
pub fn file_page(
    chrome: &Chrome<'_>,
    view: &StoryView,
    form: &FormData,
    error: Option<&FormError>,
    known_actors: &[String],
    opened: Opened,
    notice: Option<&Markup>,
) -> Markup {
    let fresh = opened == Opened::Fresh;
    let from_server = opened == Opened::ServerDraft;
    let kind = Ctl::new("kind", "Kind of development", error).required();
    let headline = Ctl::new("headline", "Headline", error)
        .hint("One line: what happened, who says so.")
        .required();
    let body = Ctl::new("body", "Text", error).hint("The details. You can leave it empty.");
    let occurred = Ctl::new("occurred_at", "When it happened", error).hint(
        "Local time in the newsroom's time zone. It starts as the moment you opened this form.",
    );
    let zone_hint = format!("Time zone: {}.", chrome.zone.name());
    let embargo = Ctl::new("embargo_until", "Embargoed until (optional)", error).hint(
        "Held from readers, and alerted to nobody, until this local time; then published. \
         Leave it empty to publish as usual.",
    );
    let urgency = Ctl::new("urgency", "Urgency", error);
    let source_name = Ctl::new("source.name", "Source name", error)
        .hint("Who or what it comes from. Required for attributions and denials.");
    let source_kind = Ctl::new("source.kind", "Kind of source", error);
    let source_url = Ctl::new("source.url", "Source link", error)
        .hint("An http or https address, if there is one.");
    let evidence = Ctl::new("evidence", "Evidence", error);
    let target = Ctl::new(
        "responds_to.development",
        "Earlier development it answers",
        error,
    )
    .hint("For denials, statements and other responses. Denials must name one.");
    let stance = Ctl::new("responds_to.stance", "It…", error);
    let actors_error = error.and_then(|e| e.for_field("actors"));
    let accused = Ctl::new("accused", "Accused", error).hint(
        "For a claim of attribution: whom it blames, separated by commas. Readers see them apart \
         from the target and the claimant; they are named with the others.",
    );

    let mut targets: Vec<(String, String)> = vec![placeholder("Not a response")];
    let mut earlier: Vec<&DevelopmentView> = view
        .developments
        .iter()
        .filter(|d| d.state != DevelopmentStanding::Rejected)
        .collect();
    earlier.sort_by_key(|d| (d.occurred_at, d.position));
    for d in earlier.iter().rev() {
        let state = match d.state {
            DevelopmentStanding::Published => String::new(),
            other => format!(" ({})", state_label(other).to_lowercase()),
        };
        targets.push((
            d.id.to_string(),
            format!(
                "{}: {} — {}{}",
                kind_label(d.kind),
                d.headline,
                chrome.zone.display(d.occurred_at),
                state
            ),
        ));
    }
    let typed_actors: Vec<&str> = form.all("actors").collect();
    let boxes = ACTOR_BOXES.max(typed_actors.len() + 1);
    let closed = view.status == StoryStatus::Closed;

    let content = html! {
        p.back { a href=(story_desk_path(view.id)) { "← " (view.headline) } }
        h1 { "File a development" }
        (notice_banner(notice))
        p.lede { "On " strong { (view.headline) } "."
            @if view.review_required && !chrome.is_editor() {
                " This story is under desk review: an editor approves your development before readers see it."
            }
        }
        @if closed {
            div.notice.notice-warning role="status" {
                "This story is closed: it takes no new developments until an editor reopens it."
            }
        }
        // A filing refused because the story closed meanwhile keeps its form: nothing typed is lost.
        @if !closed || error.is_some() {
            (error_summary(error, FILING_FIELDS))
            form.stack method="post" action=(format!("{}/developments", story_desk_path(view.id))) novalidate data-no-enter
                data-draft=(draft_key(chrome.who, view.id)) data-fresh[fresh] data-from-server-draft[from_server]
                data-server-draft=(format!("{}/draft", story_desk_path(view.id))) {
                (csrf_field(chrome.csrf))
                input type="hidden" name="id" value=(form.get("id"));
                fieldset {
                    legend { "What happened" }
                    (select(&kind, &kind_options(), form.get("kind")))
                    (text_input(&headline, "text", form.get("headline"), Some(newsroom_domain::limits::HEADLINE)))
                    (textarea(&body, form.get("body"), 6, Some(newsroom_domain::limits::BODY)))
                    (occurred.wrap(html! {
                        input type="datetime-local" id=(occurred.id) name="occurred_at"
                            value=(form.get("occurred_at")) step="60"
                            aria-describedby=(format!("{} {}-zone{}", occurred.hint_id(), occurred.id,
                                occurred.error.map(|_| format!(" {}", occurred.error_id())).unwrap_or_default()))
                            aria-invalid=[occurred.invalid()];
                        p.hint id=(format!("{}-zone", occurred.id)) { (zone_hint) }
                    }))
                    (select(&urgency, &urgency_options(chrome.is_editor()), form.get("urgency")))
                    (text_input(&embargo, "datetime-local", form.get("embargo_until"), None))
                }
                fieldset.field-invalid[actors_error.is_some()] #f-actors aria-describedby="f-actors-hint" {
                    legend { "Who is named" }
                    p.hint #f-actors-hint {
                        "People or organisations in this development, one per box. "
                        "Separate more names in a box with commas. Names already known are suggested."
                    }
                    @if let Some(e) = actors_error {
                        p.error-message #f-actors-error { span.visually-hidden { "Error: " } (e) }
                    }
                    div.actor-boxes {
                        @for i in 0..boxes {
                            @let id = format!("f-actor-{}", i + 1);
                            div.field {
                                label for=(id) { "Name " (i + 1) }
                                input type="text" id=(id) name="actors" list="known-actors"
                                    value=(typed_actors.get(i).copied().unwrap_or(""))
                                    autocomplete="off" aria-invalid=[actors_error.map(|_| "true")];
                            }
                        }
                    }
                    datalist #known-actors {
                        @for name in known_actors { option value=(name) {} }
                    }
                    (text_input(&accused, "text", form.get("accused"), None))
                }
                fieldset {
                    legend { "Source and evidence" }
                    (text_input(&source_name, "text", form.get("source.name"), Some(newsroom_domain::limits::SOURCE_NAME)))
                    (select(&source_kind, &source_kind_options(), form.get("source.kind")))
                    (text_input(&source_url, "url", form.get("source.url"), Some(newsroom_domain::limits::URL)))
                    (select(&evidence, &evidence_options(), form.get("evidence")))
                }
                fieldset {
                    legend { "Is it a response?" }
                    (select(&target, &targets, form.get("responds_to.development")))
                    (select(&stance, &stance_options(), form.get("responds_to.stance")))
                }
                div.actions {
                    button.button type="submit" name="step" value="preview" { "Preview" }
                    span.small { " Nothing is filed until you confirm it on the next page." }
                }
            }
        }
    };
    layout("File a development", Some(chrome), content)
}

// ----- review ----------------------------------------------------------------------------------

/// A reject form that was refused: which development, what was typed, why.
#[derive(Debug)]
pub struct FailedRejection<'a> {
    pub development: Uuid,
    pub reason: &'a str,
    pub error: &'a FormError,
}

/// `/desk/review`: developments waiting for an editor, oldest first.
pub fn review_page(
    chrome: &Chrome<'_>,
    queue: &[Pending],
    notice: Option<&Markup>,
    error: Option<&FormError>,
    failed: Option<&FailedRejection<'_>>,
) -> Markup {
    let zone = chrome.zone;
    let content = html! {
        h1 { "Review queue" }
        (notice_banner(notice))
        @if let Some(f) = failed {
            div.error-summary role="alert" aria-labelledby="error-summary-title" tabindex="-1" autofocus {
                h2 #error-summary-title { "There is a problem" }
                ul { li { a href=(format!("#{}", reason_id(f.development))) { (f.error.message) } } }
            }
        }
        (error_summary(error, &[]))
        @if queue.is_empty() {
            p.empty { "Nothing waits for review." }
        } @else {
            p.small { (plural(queue.len() as i64, "development waits", "developments wait")) ", oldest first. Readers see none of them until you approve it." }
            ol.review-list {
                @for p in queue {
                    @let d = &p.development;
                    @let failed_here = failed.filter(|f| f.development == d.id);
                    li {
                        article.desk-dev.state-pending id=(anchor(d.id)) {
                            p.story-of {
                                "In " a href=(format!("{}#{}", story_desk_path(p.story_id), anchor(d.id))) { (p.story_headline) }
                            }
                            (development_body(zone, None, d))
                            p.meta { "Filed by " strong { (who(&d.filed_by)) } " · " (time(zone, d.recorded_at)) }
                            (others_at_work(chrome, d.id))
                            @if !d.edits.is_empty() || !d.corrections.is_empty() {
                                ul.history-list {
                                    @for e in &d.edits { (edit_entry(zone, e)) }
                                    @for c in &d.corrections { (correction_entry(zone, d, c)) }
                                }
                            }
                            p.dev-actions {
                                a href=(development_path(p.story_id, d.id, "correct")) {
                                    "Edit it before approving" span.visually-hidden { ": " (d.headline) }
                                }
                            }
                            div.review-actions {
                                a.button href=(development_path(p.story_id, d.id, "approve")) {
                                    "Check and approve" span.visually-hidden { ": " (d.headline) }
                                }
                                form.reject method="post" action=(development_path(p.story_id, d.id, "reject")) {
                                    (csrf_field(chrome.csrf))
                                    @let ctl = reject_reason(d.id, failed_here.map(|f| f.error));
                                    (textarea(&ctl, failed_here.map_or("", |f| f.reason), 2, Some(newsroom_domain::limits::NOTE)))
                                    button.button.button-danger type="submit" {
                                        "Reject" span.visually-hidden { ": " (d.headline) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    layout("Review queue", Some(chrome), content)
}

fn reject_reason(development: Uuid, error: Option<&FormError>) -> Ctl<'_> {
    Ctl::new("reason", "Reason for rejecting", error)
        .with_id(reason_id(development))
        .hint("Stays on the desk: readers never see rejected developments.")
        .required()
}

fn reason_id(development: Uuid) -> String {
    format!("f-reason-{development}")
}

// ----- correct and retract -------------------------------------------------------------------------

/// The fields of the correction form an error may name: the note, the changes as a whole, and
/// each control of the changes.
fn correction_fields() -> Vec<&'static str> {
    ["note", "changes"]
        .into_iter()
        .chain(CORRECTION_CONTROLS)
        .collect()
}

/// `…/correct`: the editor's note and the corrected fields, starting from the current values.
pub fn correct_page(
    chrome: &Chrome<'_>,
    view: &StoryView,
    d: &DevelopmentView,
    form: &FormData,
    error: Option<&FormError>,
    changed: Option<&Markup>,
) -> Markup {
    let zone = chrome.zone;
    let pending = d.state == DevelopmentStanding::PendingReview;
    let note = if pending {
        Ctl::new("note", "Note for the desk", error).hint(
            "Optional. Readers never see it: they are not told of edits made before publication.",
        )
    } else {
        Ctl::new("note", "Correction note", error)
            .hint(
                "Shown to readers exactly as you write it, under the development. Say what was wrong.",
            )
            .required()
    };
    let headline = Ctl::new("changes.headline", "Headline", error);
    let body = Ctl::new("changes.body", "Text", error);
    let zone_hint = format!("Time zone: {}.", zone.name());
    let occurred = Ctl::new("changes.occurred_at", "When it happened", error).hint(&zone_hint);
    let actors = Ctl::new("changes.actors", "Named", error).hint("Separated by commas.");
    let source_name = Ctl::new("changes.source.name", "Source name", error);
    let source_kind = Ctl::new("changes.source.kind", "Kind of source", error);
    let source_url = Ctl::new("changes.source.url", "Source link", error);
    let evidence = Ctl::new("changes.evidence", "Evidence", error);
    let changes_error = error.and_then(|e| e.for_field("changes"));
    let title = if pending {
        "Edit before approving"
    } else {
        "Correct a development"
    };
    let content = html! {
        p.back { a href=(format!("{}#{}", story_desk_path(view.id), anchor(d.id))) { "← " (view.headline) } }
        h1 { (title) }
        article.desk-dev.(state_class(d.state)) { (development_body(zone, Some(view), d)) }
        @if pending {
            p.notice role="status" {
                "It is still waiting for review: readers see nothing of it yet. What you save here "
                "is what they will first see once it is approved, without any correction note."
            }
        }
        (changed_banner(changed))
        (others_at_work(chrome, d.id))
        (error_summary(error, &correction_fields()))
        form.stack method="post" action=(development_path(view.id, d.id, "correct")) novalidate data-no-enter
            data-presence=(development_path(view.id, d.id, "presence")) data-doing="correct" {
            (csrf_field(chrome.csrf))
            (version_fields(form))
            (textarea(&note, form.get("note"), 3, Some(newsroom_domain::limits::NOTE)))
            fieldset.field-invalid[changes_error.is_some()] #f-changes aria-describedby="f-changes-hint" {
                legend { "What changes" }
                p.hint #f-changes-hint { "Edit the fields that were wrong; the others stay as they are. Change at least one." }
                @if let Some(e) = changes_error {
                    p.error-message #f-changes-error { span.visually-hidden { "Error: " } (e) }
                }
                (text_input(&headline, "text", form.get("changes.headline"), Some(newsroom_domain::limits::HEADLINE)))
                (textarea(&body, form.get("changes.body"), 6, Some(newsroom_domain::limits::BODY)))
                (text_input(&occurred, "datetime-local", form.get("changes.occurred_at"), None))
                (text_input(&actors, "text", form.get("changes.actors"), None))
                (text_input(&source_name, "text", form.get("changes.source.name"), Some(newsroom_domain::limits::SOURCE_NAME)))
                (select(&source_kind, &source_kind_options(), form.get("changes.source.kind")))
                (text_input(&source_url, "url", form.get("changes.source.url"), Some(newsroom_domain::limits::URL)))
                (select(&evidence, &evidence_options(), form.get("changes.evidence")))
            }
            div.actions {
                @if pending {
                    button.button type="submit" name="confirm" value="correct" { "Save the edit" }
                    span.small { " It stays in the review queue: nothing is published." }
                } @else {
                    button.button type="submit" name="step" value="preview" { "Preview the correction" }
                    span.small { " Nothing is published until you confirm it on the next page." }
                }
            }
        }
    };
    layout(title, Some(chrome), content)
}

/// `…/retract`: why the development is withdrawn.
pub fn retract_page(
    chrome: &Chrome<'_>,
    view: &StoryView,
    d: &DevelopmentView,
    form: &FormData,
    error: Option<&FormError>,
    changed: Option<&Markup>,
) -> Markup {
    let reason = Ctl::new("reason", "Reason for retracting", error)
        .hint("Shown to readers exactly as you write it. The development stays on the reader page, struck through.")
        .required();
    let content = html! {
        p.back { a href=(format!("{}#{}", story_desk_path(view.id), anchor(d.id))) { "← " (view.headline) } }
        h1 { "Retract a development" }
        article.desk-dev.(state_class(d.state)) { (development_body(chrome.zone, Some(view), d)) }
        (changed_banner(changed))
        (others_at_work(chrome, d.id))
        (error_summary(error, &["reason"]))
        form.stack method="post" action=(development_path(view.id, d.id, "retract")) novalidate
            data-presence=(development_path(view.id, d.id, "presence")) data-doing="retract" {
            (csrf_field(chrome.csrf))
            (version_fields(form))
            (textarea(&reason, form.get("reason"), 3, Some(newsroom_domain::limits::NOTE)))
            div.actions { button.button.button-danger type="submit" { "Retract it" } }
        }
    };
    layout("Retract a development", Some(chrome), content)
}

// ----- what changed since a form was opened ----------------------------------------------------------

/// The version a form on a development was made from, and what its editor was shown (hidden).
fn version_fields(form: &FormData) -> Markup {
    html! {
        @for (name, value) in super::forms::carried(form).filter(|(k, _)| *k == "seen" || k.starts_with("was.")) {
            input type="hidden" name=(name) value=(value);
        }
    }
}

fn changed_banner(changed: Option<&Markup>) -> Markup {
    html! {
        @if let Some(c) = changed {
            div.notice.notice-warning.changed role="alert" tabindex="-1" autofocus { (c) }
        }
    }
}

/// What happened to `d` after the story's view stood at `since` (all of it if the form did not
/// say), as the desk tells an editor whose form was made from the older version.
pub fn changes_since(zone: Zone, d: &DevelopmentView, since: Option<i64>) -> Markup {
    let after = |position: i64| since.is_none_or(|s| position > s);
    let approved = d
        .published_position
        .filter(|p| *p != d.position && after(*p));
    html! {
        h2.changed-title {
            @if since.is_some() { "Someone changed it since you opened this form" }
            @else { "This form does not say which version it was made from" }
        }
        p { "Nothing of yours was saved." }
        ul.changed-list {
            @if let (Some(_), Some(at)) = (approved, d.published_at) {
                li {
                    strong { (who(&d.approved_by)) } " approved it · " (time(zone, at))
                    ": it is published, and readers see it."
                }
            }
            @for c in d.edits.iter().chain(&d.corrections).filter(|c| after(c.position)) {
                li {
                    strong { (who(&c.by)) }
                    @if d.published_position.is_some_and(|p| c.position > p) { " corrected it" } @else { " edited it" }
                    " · " (time(zone, c.corrected_at))
                    div.note-quote { span.visually-hidden { "Note: " } (c.note) }
                    (changes_list(zone, &c.changes))
                }
            }
            @if let Some(v) = d.rejection.as_ref().filter(|v| after(v.position)) {
                li { strong { (who(&v.by)) } " rejected it · " (time(zone, v.at)) }
            }
            @if let Some(v) = d.retraction.as_ref().filter(|v| after(v.position)) {
                li { strong { (who(&v.by)) } " retracted it · " (time(zone, v.at)) }
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

/// The preview of a filing: the development as the reader model will hold it (`d`, folded into
/// `story` from the events the command would record), who is alerted, and the one button that
/// files it.
pub fn file_preview_page(
    chrome: &Chrome<'_>,
    story: &StoryView,
    d: &DevelopmentView,
    form: &FormData,
    subscribers: Option<i64>,
) -> Markup {
    let pending = d.state == DevelopmentStanding::PendingReview;
    let title = if pending {
        "Check it before filing it for review"
    } else {
        "Check it before publishing"
    };
    let content = html! {
        p.back { a href=(story_desk_path(story.id)) { "← " (story.headline) } }
        h1 { (title) }
        @if pending {
            div.notice.notice-review role="status" {
                @if story.review_required {
                    "This story is under desk review. "
                } @else {
                    "A flash alerts every subscriber at once, so a reporter's flash waits for an editor's approval. "
                }
                "Readers and subscribers see nothing of it until an editor approves it."
            }
        } @else {
            div.notice.notice-warning role="status" {
                (publishing_warning(chrome.undo, "Publishing"))
            }
        }
        section.preview aria-labelledby="preview-heading" {
            h2 #preview-heading {
                @if pending { "What the editor will review" } @else { "What readers will see" }
            }
            article.desk-dev.(state_class(d.state)) { (development_body(chrome.zone, Some(story), d)) }
        }
        section.preview aria-labelledby="alert-heading" {
            h2 #alert-heading { "Who is alerted" }
            @if pending { p { "Nobody until it is approved. Then:" } }
            (alert_note(d.urgency, subscribers))
        }
        // desk.js sends it again, as it is, until the desk answers (the id makes it one filing).
        form.stack method="post" action=(format!("{}/developments", story_desk_path(story.id))) data-retry {
            (csrf_field(chrome.csrf))
            (hidden_fields(form))
            div.actions {
                button.button type="submit" name="confirm" value="file" {
                    @if pending { "File it for review" } @else { "Publish" }
                }
                " "
                button.button.button-secondary type="submit" name="step" value="edit" { "Change it" }
            }
        }
    };
    layout(title, Some(chrome), content)
}

/// `…/approve`: a pending development as readers will see it once approved (`after`, folded
/// with the approval), who is alerted, and the button that approves it — the version it shows.
#[allow(clippy::too_many_arguments)]
pub fn approve_page(
    chrome: &Chrome<'_>,
    story: &StoryView,
    d: &DevelopmentView,
    after: &DevelopmentView,
    seen: i64,
    subscribers: Option<i64>,
    notice: Option<&Markup>,
    changed: Option<&Markup>,
) -> Markup {
    let zone = chrome.zone;
    let content = html! {
        p.back { a href=(format!("/desk/review#{}", anchor(d.id))) { "← Review queue" } }
        (notice_banner(notice))
        h1 { "Approve and publish" }
        (changed_banner(changed))
        (others_at_work(chrome, d.id))
        div.notice.notice-warning role="status" {
            (publishing_warning(chrome.undo, "Approving"))
        }
        section.preview aria-labelledby="preview-heading" {
            h2 #preview-heading { "What readers will see" }
            article.desk-dev.(state_class(after.state)) { (development_body(zone, Some(story), after)) }
            p.meta { "Filed by " strong { (who(&d.filed_by)) } " · " (time(zone, d.recorded_at)) }
            @if !d.edits.is_empty() || !d.corrections.is_empty() {
                p.small { "Edited before approval: readers see it as it is now, and are not told of the edits." }
            }
        }
        section.preview aria-labelledby="alert-heading" {
            h2 #alert-heading { "Who is alerted" }
            (alert_note(after.urgency, subscribers))
        }
        form.stack method="post" action=(development_path(story.id, d.id, "approve"))
            data-presence=(development_path(story.id, d.id, "presence")) data-doing="approve" {
            (csrf_field(chrome.csrf))
            input type="hidden" name="seen" value=(seen);
            div.actions {
                button.button type="submit" name="confirm" value="approve" {
                    "Approve and publish" span.visually-hidden { ": " (d.headline) }
                }
                " "
                a.button.button-secondary href=(development_path(story.id, d.id, "correct")) { "Edit it first" }
            }
        }
    };
    layout("Approve and publish", Some(chrome), content)
}

/// The preview of a correction to a published development: the development as readers will see
/// it, with the note and what changed (the last of `after`'s corrections), and the button that
/// publishes it.
pub fn correct_preview_page(
    chrome: &Chrome<'_>,
    story: &StoryView,
    after: &DevelopmentView,
    form: &FormData,
) -> Markup {
    let zone = chrome.zone;
    let correction = after.reader_corrections().last();
    let content = html! {
        p.back { a href=(format!("{}#{}", story_desk_path(story.id), anchor(after.id))) { "← " (story.headline) } }
        h1 { "Check the correction before publishing" }
        div.notice.notice-warning role="status" {
            "Publishing the correction changes the reader page at once, and everyone who was "
            "alerted to the development is alerted again, with your note."
        }
        section.preview aria-labelledby="preview-heading" {
            h2 #preview-heading { "What readers will see" }
            article.desk-dev.(state_class(after.state)) {
                (development_body(zone, Some(story), after))
                @if let Some(c) = correction {
                    div.correction-preview {
                        h3.history-title { "Correction" }
                        div.note-quote { span.visually-hidden { "Note: " } (c.note) }
                        (changes_list(zone, &c.changes))
                    }
                }
            }
        }
        form.stack method="post" action=(development_path(story.id, after.id, "correct")) {
            (csrf_field(chrome.csrf))
            (hidden_fields(form))
            div.actions {
                button.button type="submit" name="confirm" value="correct" { "Publish the correction" }
                " "
                button.button.button-secondary type="submit" name="step" value="edit" { "Change it" }
            }
        }
    };
    layout("Check the correction", Some(chrome), content)
}

/// `…/withdraw`: one's own filing, still waiting for review, and the button that takes it back.
pub fn withdraw_page(
    chrome: &Chrome<'_>,
    view: &StoryView,
    d: &DevelopmentView,
    seen: i64,
    changed: Option<&Markup>,
) -> Markup {
    let content = html! {
        p.back { a href=(format!("{}#{}", story_desk_path(view.id), anchor(d.id))) { "← " (view.headline) } }
        h1 { "Withdraw your filing" }
        (changed_banner(changed))
        article.desk-dev.(state_class(d.state)) { (development_body(chrome.zone, Some(view), d)) }
        p {
            "It has not been published. Withdrawn, it never will be: it stays on the desk, marked "
            "as withdrawn, and you can still revise and file it again."
        }
        form.stack method="post" action=(development_path(view.id, d.id, "withdraw")) {
            (csrf_field(chrome.csrf))
            input type="hidden" name="seen" value=(seen);
            div.actions {
                button.button.button-danger type="submit" {
                    "Withdraw it" span.visually-hidden { ": " (d.headline) }
                }
                " "
                a.button.button-secondary href=(format!("{}#{}", story_desk_path(view.id), anchor(d.id))) { "Keep it" }
            }
        }
    };
    layout("Withdraw your filing", Some(chrome), content)
}

/// `…/embargo`: an embargoed development, with "Lift it now" and "Move the embargo" (editors).
pub fn embargo_page(
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

// ----- messages --------------------------------------------------------------------------------------

/// A page that only says something: a refusal, a missing page, a failure.
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

/// The notice after publishing or approving with an undo window: "Publishing in 27 s — Undo"
/// (the seconds as the page was made; `desk.js` counts them down and takes the button away once
/// they are over), as a plain form, so that it works without the script.
pub fn undo_notice(chrome: &Chrome<'_>, view: &StoryView, d: &DevelopmentView) -> Markup {
    let until = d.embargo_until.unwrap_or(d.updated_at);
    let left = (until - Utc::now()).num_seconds().max(0);
    let approval = d.approved_by.is_some();
    html! {
        span.undo-left {
            @if approval { "Approved: publishing in " } @else { "Publishing in " }
            span.countdown.countdown-left data-until=(until.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)) {
                (left) " s"
            }
            " (at " (time(chrome.zone, until)) ")"
        }
        " — "
        form.inline.undo-form method="post" action=(development_path(view.id, d.id, "undo"))
            data-until=(until.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)) {
            (csrf_field(chrome.csrf))
            button.button type="submit" {
                "Undo" span.visually-hidden { ": " (d.headline) }
            }
        }
        " Readers see nothing of "
        a href=(format!("#{}", anchor(d.id))) { (d.headline) }
        ", and nobody is alerted, until then."
        @if approval { " " a href="/desk/review" { "Back to the review queue" } }
    }
}

/// `…/undo`: a development in its undo window and the button that takes it back; or, once the
/// window has passed, what came of it.
pub fn undo_page(chrome: &Chrome<'_>, view: &StoryView, d: &DevelopmentView) -> Markup {
    let held = d.undo_window && d.state == DevelopmentStanding::Embargoed;
    let approval = d.approved_by.is_some();
    let back = format!("{}#{}", story_desk_path(view.id), anchor(d.id));
    let title = if held {
        if approval {
            "Undo the approval"
        } else {
            "Undo publishing"
        }
    } else {
        "Too late to undo"
    };
    let content = html! {
        p.back { a href=(back) { "← " (view.headline) } }
        h1 { (title) }
        @if held {
            div.notice role="status" { (undo_notice(chrome, view, d)) }
            p {
                @if approval {
                    "Undone, it is not published and nobody is alerted: it waits for review again."
                } @else {
                    "Undone, it is not published and nobody is alerted; the filing form comes back "
                    "with what you wrote, to file it again when it is ready."
                }
            }
        } @else {
            div.notice.notice-warning role="status" {
                @match d.state {
                    DevelopmentStanding::Published => {
                        "Its undo window has passed: it is published. Only a public correction or "
                        "a retraction can change it now."
                    }
                    DevelopmentStanding::Rejected => { "It was taken back already: it will not be published." }
                    DevelopmentStanding::PendingReview => { "Its approval was undone already: it waits for review." }
                    _ => { "It is not in an undo window." }
                }
            }
        }
        article.desk-dev.(state_class(d.state)) { (development_body(chrome.zone, Some(view), d)) }
    };
    layout(title, Some(chrome), content)
}

pub fn message_page(
    chrome: Option<&Chrome<'_>>,
    title: &str,
    message: &str,
    link: (&str, &str),
) -> Markup {
    let content = html! {
        div.narrow {
            h1 { (title) }
            p { (message) }
            p { a href=(link.0) { (link.1) } }
        }
    };
    layout(title, chrome, content)
}

// ----- search ------------------------------------------------------------------------------

/// `/desk/search`: the reader side's search, with developments waiting for review too, each
/// leading to its story's desk page.
pub fn search_page(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_explained_in_the_picker() {
        let options = kind_options();
        assert_eq!(options.len(), DevelopmentKind::ALL.len() + 1);
        assert!(options
            .iter()
            .any(|(v, t)| v == "denial_issued" && t.starts_with("Denial issued — ")));
    }

    #[test]
    fn control_ids_are_plain() {
        assert_eq!(control_id("source.name"), "f-source-name");
        assert_eq!(control_id("responds_to.stance"), "f-responds-to-stance");
    }

    #[test]
    fn sign_in_never_carries_a_token_and_escapes_what_it_shows() {
        let error = FormError::new(Some("password"), "bad <b>");
        let html = sign_in_page(
            "c<s>rf",
            "/desk\"><script>",
            Some(&error),
            "<i>login</i>",
            None,
        )
        .into_string();
        assert!(html.contains("&lt;i&gt;login&lt;/i&gt;"));
        assert!(!html.contains("<script>"));
        assert!(html.contains("c&lt;s&gt;rf"));
        assert!(html.contains("bad &lt;b&gt;"));
        assert!(html.contains(r#"type="password""#));
        assert!(!html.contains("style="));
        assert!(html.contains(r#"<link rel="stylesheet" href="/desk/static/desk.css">"#));
    }
}
