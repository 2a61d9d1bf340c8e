//! The reader's web pages, rendered on the server.
//!
//! Every function here is pure: it takes a view from [`newsroom_readmodel::model`] and returns
//! [`maud::Markup`]. maud escapes every spliced value, so nothing a reporter, an editor or a
//! source typed can become markup; no HTML is ever assembled by string formatting.
//!
//! The pages work with the server's Content-Security-Policy
//! (`default-src 'self'; script-src 'self'; style-src 'self'`): no inline scripts, no inline
//! event handlers, no `style` attributes. The only script is [`SCRIPT_PATH`], which keeps an open
//! story's timeline and claims ledger current by fetching [`timeline_fragment`] whenever the
//! story's event stream reports a change.
//!
//! Newsroom practice, as readers see it: developments waiting for review (or rejected) never
//! appear; a correction is shown inline with the editor's note exactly as written and what it
//! changed; a retraction stays on the page, struck through, with the reason.

use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat, Utc};
use maud::{html, Markup, PreEscaped, DOCTYPE};
use newsroom_domain::{Actor, DevelopmentKind, Evidence, Source, SourceKind, Stance, Urgency};
use uuid::Uuid;

use newsroom_readmodel::model::{
    ActorEntry, ClaimEntry, ClaimStatus, CorrectionView, DevelopmentStanding, DevelopmentView,
    FieldChange, FrontPageEntry, RelatedStory, StoryPage, StoryStatus, StoryView, Verdict,
};

/// Where the pages expect the stylesheet to be served.
pub const STYLESHEET_PATH: &str = "/static/newsroom.css";
/// Where the pages expect the live-update script to be served.
pub const SCRIPT_PATH: &str = "/static/live.js";
/// Where the pages expect the script that shows times in the reader's time zone.
pub const TIME_SCRIPT_PATH: &str = "/static/time.js";
/// The script at [`TIME_SCRIPT_PATH`] (`text/javascript; charset=utf-8`).
pub const TIME_JS: &str = include_str!("../../static/time.js");
/// The stylesheet, for the server to serve at [`STYLESHEET_PATH`] (`text/css; charset=utf-8`).
pub const NEWSROOM_CSS: &str = include_str!("../../static/newsroom.css");
/// The live-update script, for the server to serve at [`SCRIPT_PATH`]
/// (`text/javascript; charset=utf-8`).
pub const LIVE_JS: &str = include_str!("../../static/live.js");

const SITE_NAME: &str = "Newsroom";

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

/// The HTML fragment [`timeline_fragment`] is served at: `/stories/{slug}/fragment`.
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

/// The in-page anchor of a development.
/// The reader's alerts page (subscriptions made in the browser).
pub const ALERTS_PATH: &str = "/alerts";

/// The form that follows a story by its slug.
pub fn follow_story_path(slug: &str) -> String {
    format!("{ALERTS_PATH}/follow?story={}", encode_segment(slug))
}

/// The form that follows an actor by name.
pub fn follow_actor_path(name: &str) -> String {
    format!("{ALERTS_PATH}/follow?actor={}", encode_segment(name))
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

fn anchor(id: Uuid) -> String {
    format!("dev-{id}")
}

// ---------------------------------------------------------------------------------------------
// Words readers see
// ---------------------------------------------------------------------------------------------

/// A development kind in words: "Denial issued".
pub fn kind_label(kind: DevelopmentKind) -> &'static str {
    match kind {
        DevelopmentKind::HackReported => "Hack reported",
        DevelopmentKind::AttributionClaimed => "Attribution claimed",
        DevelopmentKind::DenialIssued => "Denial issued",
        DevelopmentKind::ChargesFiled => "Charges filed",
        DevelopmentKind::StatementIssued => "Statement issued",
        DevelopmentKind::ReportPublished => "Report published",
        DevelopmentKind::CommentRequested => "Comment requested",
        DevelopmentKind::InvestigationOpened => "Investigation opened",
        DevelopmentKind::ArrestMade => "Arrest made",
        DevelopmentKind::RulingIssued => "Ruling issued",
        DevelopmentKind::Update => "Update",
    }
}

/// A source kind in words: "Official statement".
pub fn source_kind_label(kind: SourceKind) -> &'static str {
    match kind {
        SourceKind::OfficialStatement => "Official statement",
        SourceKind::Document => "Document",
        SourceKind::Report => "Report",
        SourceKind::Anonymous => "Anonymous source",
        SourceKind::OwnReporting => "Our own reporting",
        SourceKind::SocialMedia => "Social media",
    }
}

/// How well a development is backed, in words.
pub fn evidence_label(evidence: Evidence) -> &'static str {
    match evidence {
        Evidence::NoneProvided => "No evidence provided",
        Evidence::Circumstantial => "Circumstantial evidence",
        Evidence::Documentary => "Documentary evidence",
        Evidence::Confirmed => "Confirmed",
    }
}

/// How urgent a development is, in words.
pub fn urgency_label(urgency: Urgency) -> &'static str {
    match urgency {
        Urgency::Routine => "Routine",
        Urgency::Priority => "Priority",
        Urgency::Flash => "Flash",
    }
}

/// How a response relates to what it answers: "denies".
pub fn stance_label(stance: Stance) -> &'static str {
    match stance {
        Stance::Supports => "supports",
        Stance::Disputes => "disputes",
        Stance::Denies => "denies",
    }
}

/// Where a claim stands: "denied".
pub fn claim_status_label(status: ClaimStatus) -> &'static str {
    match status {
        ClaimStatus::Unverified => "unverified",
        ClaimStatus::Supported => "supported",
        ClaimStatus::Denied => "denied",
        ClaimStatus::Contested => "contested",
        ClaimStatus::Retracted => "retracted",
    }
}

fn story_status_label(status: StoryStatus) -> &'static str {
    match status {
        StoryStatus::Open => "Open",
        StoryStatus::Closed => "Closed",
    }
}

fn story_status_class(status: StoryStatus) -> &'static str {
    match status {
        StoryStatus::Open => "status-open",
        StoryStatus::Closed => "status-closed",
    }
}

fn claim_status_class(status: ClaimStatus) -> &'static str {
    match status {
        ClaimStatus::Unverified => "claim-unverified",
        ClaimStatus::Supported => "claim-supported",
        ClaimStatus::Denied => "claim-denied",
        ClaimStatus::Contested => "claim-contested",
        ClaimStatus::Retracted => "claim-retracted",
    }
}

fn stance_class(stance: Stance) -> &'static str {
    match stance {
        Stance::Supports => "stance-supports",
        Stance::Disputes => "stance-disputes",
        Stance::Denies => "stance-denies",
    }
}

fn urgency_class(urgency: Urgency) -> &'static str {
    match urgency {
        Urgency::Routine => "urgency-routine",
        Urgency::Priority => "urgency-priority",
        Urgency::Flash => "urgency-flash",
    }
}

fn evidence_class(evidence: Evidence) -> &'static str {
    match evidence {
        Evidence::NoneProvided => "evidence-none",
        Evidence::Circumstantial => "evidence-circumstantial",
        Evidence::Documentary => "evidence-documentary",
        Evidence::Confirmed => "evidence-confirmed",
    }
}

fn field_label(field: &str) -> &str {
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

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

fn status_text(status: u16) -> &'static str {
    match status {
        400 => "Bad request",
        401 => "Sign-in required",
        403 => "Forbidden",
        404 => "Not found",
        405 => "Method not allowed",
        409 => "Conflict",
        410 => "Gone",
        422 => "Unprocessable request",
        429 => "Too many requests",
        500 => "Something went wrong",
        502 | 504 => "Upstream trouble",
        503 => "Temporarily unavailable",
        _ if (400..500).contains(&status) => "Request error",
        _ => "Something went wrong",
    }
}

// ---------------------------------------------------------------------------------------------
// Small pieces
// ---------------------------------------------------------------------------------------------

/// A `<time>` element: machine-readable RFC 3339, human-readable UTC, with the UTC reading in
/// its `title` too. [`TIME_SCRIPT_PATH`] shows it in the reader's own time zone, leaving UTC on
/// hover; without script the page reads in UTC.
fn time(at: &DateTime<Utc>) -> Markup {
    let utc = at.format("%-d %B %Y, %H:%M UTC").to_string();
    html! {
        time datetime=(at.to_rfc3339_opts(SecondsFormat::Secs, true)) title=(utc) { (utc) }
    }
}

/// Splits free text into paragraphs at blank lines; single line breaks stay as `<br>`.
fn paragraph_lines(text: &str) -> Vec<Vec<&str>> {
    let mut paragraphs: Vec<Vec<&str>> = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    for line in text.lines() {
        let line = line.trim_end();
        if line.trim().is_empty() {
            if !current.is_empty() {
                paragraphs.push(std::mem::take(&mut current));
            }
        } else {
            current.push(line);
        }
    }
    if !current.is_empty() {
        paragraphs.push(current);
    }
    paragraphs
}

fn paragraphs(text: &str) -> Markup {
    html! {
        @for lines in paragraph_lines(text) {
            p {
                @for (i, line) in lines.iter().enumerate() {
                    @if i > 0 { br; }
                    (line)
                }
            }
        }
    }
}

fn tag_list(tags: &[String]) -> Markup {
    html! {
        @if !tags.is_empty() {
            ul.tags aria-label="Topics" {
                @for tag in tags {
                    li.tag { (tag) }
                }
            }
        }
    }
}

fn status_badge(status: StoryStatus) -> Markup {
    html! {
        span.badge.story-status.(story_status_class(status)) { (story_status_label(status)) }
    }
}

fn actor_links(actors: &[Actor]) -> Markup {
    labelled_actors("Named", actors)
}

/// A labelled list of actors, each linking to their page; nothing when there are none.
fn labelled_actors(label: &str, actors: &[Actor]) -> Markup {
    html! {
        @if !actors.is_empty() {
            div.actors {
                span.meta-label { (label) }
                ul.actor-list {
                    @for actor in actors {
                        li { a.actor href=(actor_path(actor.name())) { (actor.name()) } }
                    }
                }
            }
        }
    }
}

/// Who a claim blames, who else it names (the target, as a rule) and who makes it (its
/// source). A claim filed without its accused named says only who it names: the roles of its
/// actors are not known.
fn claim_roles(claim: &DevelopmentView) -> Markup {
    let others: Vec<Actor> = claim
        .actors
        .iter()
        .filter(|a| !claim.accused.iter().any(|x| x.key() == a.key()))
        .cloned()
        .collect();
    html! {
        @if claim.accused.is_empty() {
            (actor_links(&claim.actors))
        } @else {
            (labelled_actors("Accused", &claim.accused))
            (labelled_actors("Also named", &others))
        }
        @if let Some(source) = &claim.source {
            div.actors.claimant {
                span.meta-label { "Claimed by" }
                " " (source.name.as_str())
            }
        }
    }
}

/// A source URL is linked only if it really is an absolute http(s) URL: the log is trusted on
/// read, so this is the last line of defence against a `javascript:` link.
fn safe_web_url(raw: &str) -> Option<String> {
    let url = url::Url::parse(raw).ok()?;
    (matches!(url.scheme(), "http" | "https") && url.host_str().is_some()).then(|| url.into())
}

fn source_line(source: &Source) -> Markup {
    html! {
        div.source {
            span.meta-label { "Source" }
            span.source-name {
                @match source.url.as_ref().and_then(|u| safe_web_url(u.as_str())) {
                    Some(href) => {
                        a href=(href) rel="nofollow noopener" { (source.name.as_str()) }
                    }
                    None => { (source.name.as_str()) }
                }
            }
            " "
            span.source-kind { "(" (source_kind_label(source.kind)) ")" }
        }
    }
}

/// A value a correction changed, in words rather than JSON.
fn describe_value(field: &str, value: &serde_json::Value) -> String {
    describe_change_value(field, value, &|t| {
        t.format("%-d %B %Y, %H:%M UTC").to_string()
    })
}

/// A corrected field's value in words (labels for kinds and evidence, times through `time`), as
/// the reader pages and the desk show a correction's before and after.
pub fn describe_change_value(
    field: &str,
    value: &serde_json::Value,
    time: &dyn Fn(DateTime<Utc>) -> String,
) -> String {
    use serde_json::Value;
    match value {
        Value::Null => "none".to_owned(),
        Value::String(s) if field == "occurred_at" => DateTime::parse_from_rfc3339(s)
            .map(|t| time(t.with_timezone(&Utc)))
            .unwrap_or_else(|_| s.clone()),
        Value::String(s) if field == "evidence" => s
            .parse::<Evidence>()
            .map(|e| evidence_label(e).to_owned())
            .unwrap_or_else(|_| s.clone()),
        Value::String(s) => s.clone(),
        Value::Array(items) if items.is_empty() => "none".to_owned(),
        Value::Array(items) => items
            .iter()
            .map(|item| describe_change_value(field, item, time))
            .collect::<Vec<_>>()
            .join(", "),
        Value::Object(map) if field == "source" => {
            let mut parts = Vec::new();
            if let Some(Value::String(name)) = map.get("name") {
                parts.push(name.clone());
            }
            if let Some(Value::String(kind)) = map.get("kind") {
                parts.push(
                    kind.parse::<SourceKind>()
                        .map(|k| source_kind_label(k).to_owned())
                        .unwrap_or_else(|_| kind.clone()),
                );
            }
            if let Some(Value::String(url)) = map.get("url") {
                parts.push(url.clone());
            }
            if parts.is_empty() {
                value.to_string()
            } else {
                parts.join(" · ")
            }
        }
        other => other.to_string(),
    }
}

fn field_change(change: &FieldChange) -> Markup {
    html! {
        li.change {
            span.change-field { (field_label(&change.field)) ": " }
            del.change-before { (describe_value(&change.field, &change.before)) }
            span.change-arrow aria-hidden="true" { " → " }
            span.visually-hidden { " changed to " }
            ins.change-after { (describe_value(&change.field, &change.after)) }
        }
    }
}

fn correction(c: &CorrectionView) -> Markup {
    html! {
        section.correction aria-label="Correction" {
            p.correction-title {
                strong { "Correction" }
                " · "
                (time(&c.corrected_at))
            }
            div.correction-note { (paragraphs(&c.note)) }
            @if !c.changes.is_empty() {
                ul.changes aria-label="What changed" {
                    @for change in &c.changes { (field_change(change)) }
                }
            }
        }
    }
}

fn retraction(v: &Verdict) -> Markup {
    html! {
        section.retraction aria-label="Retraction" {
            p.retraction-title {
                strong { "Retracted" }
                " · "
                (time(&v.at))
            }
            div.retraction-reason {
                span.meta-label { "Reason" }
                (paragraphs(&v.reason))
            }
        }
    }
}

/// How links from a development card reach other developments: inside the story page they are
/// in-page anchors; elsewhere they go to the story page.
struct Links<'a> {
    story: Option<&'a StoryView>,
    base: String,
}

impl Links<'_> {
    fn development(&self, id: Uuid) -> String {
        format!("{}#{}", self.base, anchor(id))
    }
}

/// One development as readers see it: the same card on the story page, the fragment and the
/// actor page.
fn development_card(d: &DevelopmentView, links: &Links<'_>) -> Markup {
    let retracted = d.state == DevelopmentStanding::Retracted;
    let answered = d.responds_to.map(|link| {
        let target = links
            .story
            .and_then(|s| s.development(link.development))
            .filter(|t| t.is_visible());
        (link, target)
    });
    html! {
        article.development.retracted[retracted] id=(anchor(d.id)) data-kind=(d.kind.as_str()) {
            header.development-header {
                p.labels {
                    span.badge.kind { (kind_label(d.kind)) }
                    @if retracted { " " span.badge.badge-retracted { "Retracted" } }
                    @if d.reader_corrections().next().is_some() { " " span.badge.badge-corrected { "Corrected" } }
                    " "
                    span.badge.urgency.(urgency_class(d.urgency)) { (urgency_label(d.urgency)) }
                    " "
                    span.badge.evidence.(evidence_class(d.evidence)) { (evidence_label(d.evidence)) }
                }
                h3.development-headline {
                    @if retracted { del { (d.headline) } } @else { (d.headline) }
                }
                dl.times {
                    div {
                        dt { "Happened" }
                        dd { (time(&d.occurred_at)) }
                    }
                    div {
                        dt { "Reported" }
                        dd { (time(&d.recorded_at)) }
                    }
                }
            }
            @if let Some(v) = d.retraction.as_ref().filter(|_| retracted) {
                (retraction(v))
            }
            @if let Some((link, target)) = answered {
                p.responds-to {
                    span.badge.stance.(stance_class(link.stance)) { (stance_label(link.stance)) }
                    " "
                    @match target {
                        Some(t) => {
                            a href=(links.development(t.id)) { (t.headline) }
                        }
                        None if links.story.is_none() => {
                            a href=(links.development(link.development)) { "an earlier development" }
                        }
                        None => { "an earlier development" }
                    }
                }
            }
            @if !d.body.trim().is_empty() {
                div.development-body {
                    @if retracted { del { (paragraphs(&d.body)) } } @else { (paragraphs(&d.body)) }
                }
            }
            (actor_links(&d.actors))
            @if let Some(source) = &d.source { (source_line(source)) }
            @for c in d.reader_corrections() { (correction(c)) }
        }
    }
}

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

// ---------------------------------------------------------------------------------------------
// Layout
// ---------------------------------------------------------------------------------------------

/// What `live.js` needs to follow a story.
struct Live<'a> {
    story_id: Uuid,
    slug: &'a str,
    position: i64,
}

fn layout(title: &str, head: Markup, live: Option<&Live<'_>>, content: Markup) -> Markup {
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

// ---------------------------------------------------------------------------------------------
// Pages
// ---------------------------------------------------------------------------------------------

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

/// `/actors/{key}`: every published development naming an actor, across stories, in the order
/// given (newest first).
pub fn actor_page(name: &str, entries: &[ActorEntry]) -> Markup {
    let visible: Vec<&ActorEntry> = entries
        .iter()
        .filter(|e| e.development.is_visible())
        .collect();
    let mut stories: Vec<Uuid> = visible.iter().map(|e| e.story_id).collect();
    stories.sort();
    stories.dedup();
    let content = html! {
        header.page-header {
            p.story-kicker { span.badge.kind { "Actor" } }
            h1.page-title { (name) }
            p.feeds {
                a.follow-link href=(follow_actor_path(name)) { "Get alerts when " (name) " is named" }
            }
            @if !visible.is_empty() {
                p.section-note {
                    (plural(visible.len(), "development", "developments"))
                    " in "
                    (plural(stories.len(), "story", "stories"))
                    ", newest first."
                }
            }
        }
        section.actor-developments aria-labelledby="actor-developments-heading" {
            h2 #actor-developments-heading .section-heading { "Developments" }
            @if visible.is_empty() {
                p.empty { "No published development names " (name) " yet." }
            } @else {
                ol.timeline-list {
                    @for e in &visible {
                        @let links = Links { story: None, base: story_path(&e.story_slug) };
                        li.timeline-item {
                            p.story-link {
                                "In "
                                a href=(story_path(&e.story_slug)) { (e.story_headline) }
                            }
                            (development_card(&e.development, &links))
                        }
                    }
                }
            }
        }
    };
    let head = html! {
        meta name="description" content=(format!("Developments naming {name}"));
    };
    layout(name, head, None, content)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole story on one page.
    fn whole(view: &StoryView) -> StoryPage {
        StoryPage::of_view(view, None, newsroom_readmodel::model::PAGE_MAX).expect("no cursor")
    }
    use chrono::{Duration, TimeZone};
    use newsroom_domain::{
        Body, Development, DevelopmentChanges, DevelopmentId, Headline, Note, PublicationStatus,
        RespondsTo, Slug, SourceName, StoryEvent, StoryId, Summary, Tag, WebUrl,
    };
    use newsroom_readmodel::model::LoggedEvent;
    use proptest::prelude::*;

    const SCRIPT: &str = "<script>alert(1)</script>";
    const IMG: &str = "\"><img src=x onerror=alert(1)>";

    fn esc(text: &str) -> String {
        html! { (text) }.into_string()
    }

    fn story_id() -> Uuid {
        Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001)
    }

    fn dev_id(n: u128) -> DevelopmentId {
        DevelopmentId::from(Uuid::from_u128(0xd000 + n))
    }

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap()
    }

    fn logged(position: i64, event: StoryEvent) -> LoggedEvent {
        LoggedEvent {
            position,
            story_id: story_id(),
            sequence: position,
            recorded_at: t0() + Duration::hours(position),
            author: Some(format!("editor {SCRIPT}")),
            event,
        }
    }

    struct Dev<'a> {
        n: u128,
        kind: DevelopmentKind,
        headline: &'a str,
        body: &'a str,
        actors: &'a [&'a str],
        source: Option<Source>,
        responds_to: Option<RespondsTo>,
        occurred_hours: i64,
    }

    impl Dev<'_> {
        fn build(&self) -> Development {
            let actors: Vec<String> = self.actors.iter().map(|a| a.to_string()).collect();
            Development {
                accused: vec![],
                id: dev_id(self.n),
                kind: self.kind,
                headline: Headline::parse("headline", self.headline).unwrap(),
                body: Body::parse("body", self.body).unwrap(),
                occurred_at: t0() + Duration::hours(self.occurred_hours),
                recorded_at: t0() + Duration::hours(self.occurred_hours + 1),
                actors: Actor::parse_list("actors", &actors).unwrap(),
                source: self.source.clone(),
                evidence: Evidence::Circumstantial,
                urgency: if self.n % 2 == 0 {
                    Urgency::Routine
                } else {
                    Urgency::Priority
                },
                responds_to: self.responds_to,
            }
        }
    }

    fn recorded(position: i64, dev: &Dev<'_>, status: PublicationStatus) -> LoggedEvent {
        logged(
            position,
            StoryEvent::DevelopmentRecorded {
                embargo_until: None,
                development: dev.build(),
                status,
                fingerprint: format!("fp-{}", dev.n),
                hold: None,
            },
        )
    }

    const CORRECTED_BEFORE: &str = "Campaign says its email was hacked";
    const CORRECTED_AFTER: &str = "Campaign says its email server was breached";
    const PENDING: &str = "Pending headline nobody may see";
    const REJECTED: &str = "Rejected headline nobody may see";
    const RETRACTED: &str = "Second ministry statement";
    const NOTE: &str =
        "We misquoted the campaign <script>alert(1)</script> \"><img src=x onerror=alert(1)>";
    const REASON: &str =
        "Statement was fabricated <script>alert(1)</script> \"><img src=x onerror=alert(1)>";
    const HOSTILE_ACTOR: &str = "\"><img src=x onerror=alert(1)>";

    /// A story with hostile text in every free-text field, a pending, a rejected, a corrected
    /// and a retracted development, and a claim with a denial.
    fn hostile_story() -> StoryView {
        let hostile_source = Source {
            name: SourceName::parse("source.name", &format!("Campaign {SCRIPT} {IMG}")).unwrap(),
            kind: SourceKind::OfficialStatement,
            url: Some(
                WebUrl::parse("source.url", "https://example.org/statement?a=1&b=\"><x>").unwrap(),
            ),
        };
        let events = vec![
            logged(
                1,
                StoryEvent::StoryOpened {
                    id: StoryId::from(story_id()),
                    slug: Slug::parse("slug", "campaign-hack").unwrap(),
                    headline: Headline::parse("headline", &format!("Hack {SCRIPT} {IMG}")).unwrap(),
                    summary: Summary::parse(
                        "summary",
                        &format!("Summary {SCRIPT}\n\nSecond paragraph {IMG}"),
                    )
                    .unwrap(),
                    tags: Tag::parse_list("tags", &["elections".into(), "cyber".into()]).unwrap(),
                    review_required: false,
                },
            ),
            recorded(
                2,
                &Dev {
                    n: 1,
                    kind: DevelopmentKind::HackReported,
                    headline: CORRECTED_BEFORE,
                    body: &format!("Body {SCRIPT}\nnext line {IMG}"),
                    actors: &[HOSTILE_ACTOR, "Campaign HQ"],
                    source: Some(hostile_source.clone()),
                    responds_to: None,
                    occurred_hours: 0,
                },
                PublicationStatus::Published,
            ),
            recorded(
                3,
                &Dev {
                    n: 2,
                    kind: DevelopmentKind::AttributionClaimed,
                    headline: &format!("Officials blame State X {SCRIPT}"),
                    body: "",
                    actors: &["State X", "Fancy  Bear"],
                    source: None,
                    responds_to: None,
                    occurred_hours: 2,
                },
                PublicationStatus::Published,
            ),
            recorded(
                4,
                &Dev {
                    n: 3,
                    kind: DevelopmentKind::DenialIssued,
                    headline: &format!("State X denies involvement {IMG}"),
                    body: "The ministry called the claim baseless.",
                    actors: &["State X"],
                    source: None,
                    responds_to: Some(RespondsTo {
                        development: dev_id(2),
                        stance: Stance::Denies,
                    }),
                    occurred_hours: 3,
                },
                PublicationStatus::Published,
            ),
            recorded(
                5,
                &Dev {
                    n: 4,
                    kind: DevelopmentKind::ChargesFiled,
                    headline: PENDING,
                    body: "",
                    actors: &["State X"],
                    source: None,
                    responds_to: None,
                    occurred_hours: 4,
                },
                PublicationStatus::PendingReview,
            ),
            logged(
                6,
                StoryEvent::DevelopmentCorrected {
                    development: dev_id(1),
                    note: Note::parse("note", NOTE).unwrap(),
                    changes: DevelopmentChanges {
                        headline: Some(Headline::parse("headline", CORRECTED_AFTER).unwrap()),
                        evidence: Some(Evidence::Documentary),
                        ..Default::default()
                    },
                },
            ),
            recorded(
                7,
                &Dev {
                    n: 5,
                    kind: DevelopmentKind::StatementIssued,
                    headline: RETRACTED,
                    body: &format!("Retracted body {SCRIPT}"),
                    actors: &["State X"],
                    source: None,
                    responds_to: Some(RespondsTo {
                        development: dev_id(2),
                        stance: Stance::Disputes,
                    }),
                    occurred_hours: 5,
                },
                PublicationStatus::Published,
            ),
            logged(
                8,
                StoryEvent::DevelopmentRetracted {
                    development: dev_id(5),
                    reason: Note::parse("reason", REASON).unwrap(),
                },
            ),
            recorded(
                9,
                &Dev {
                    n: 6,
                    kind: DevelopmentKind::Update,
                    headline: REJECTED,
                    body: "",
                    actors: &["State X"],
                    source: None,
                    responds_to: None,
                    occurred_hours: 6,
                },
                PublicationStatus::PendingReview,
            ),
            logged(
                10,
                StoryEvent::DevelopmentRejected {
                    development: dev_id(6),
                    reason: Note::parse("reason", "Unsourced").unwrap(),
                },
            ),
        ];
        StoryView::fold(&events).expect("the story opens")
    }

    /// Every tag of the markup with its attribute names. Text and attribute values are escaped,
    /// so a literal `<` always starts a real tag and a literal `"` always delimits a value.
    fn tags(markup: &str) -> Vec<(String, Vec<String>)> {
        let mut out = Vec::new();
        let bytes = markup.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] != b'<' {
                i += 1;
                continue;
            }
            i += 1;
            let start = i;
            while i < bytes.len() && !bytes[i].is_ascii_whitespace() && bytes[i] != b'>' {
                i += 1;
            }
            let name = markup[start..i].to_ascii_lowercase();
            let mut attrs = Vec::new();
            loop {
                while i < bytes.len() && (bytes[i].is_ascii_whitespace() || bytes[i] == b'/') {
                    i += 1;
                }
                if i >= bytes.len() || bytes[i] == b'>' {
                    i += 1;
                    break;
                }
                let a = i;
                while i < bytes.len()
                    && !bytes[i].is_ascii_whitespace()
                    && !matches!(bytes[i], b'=' | b'>')
                {
                    i += 1;
                }
                attrs.push(markup[a..i].to_ascii_lowercase());
                if i < bytes.len() && bytes[i] == b'=' {
                    i += 1;
                    assert_eq!(bytes.get(i), Some(&b'"'), "unquoted attribute in {name}");
                    i += 1;
                    while i < bytes.len() && bytes[i] != b'"' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            out.push((name, attrs));
        }
        out
    }

    /// No injected markup, no scripts but ours, no event handlers, no inline styles.
    fn assert_safe(markup: &str) {
        assert!(!markup.contains("<script>alert"), "{markup}");
        assert!(!markup.contains("<img"), "{markup}");
        assert!(!markup.contains("<x>"), "{markup}");
        assert!(!markup.contains(" style="), "{markup}");
        let scripts = markup.matches("<script").count();
        let live = markup
            .matches(r#"<script src="/static/live.js" defer></script>"#)
            .count();
        let times = markup
            .matches(r#"<script src="/static/time.js" defer></script>"#)
            .count();
        assert_eq!(
            scripts,
            live + times,
            "only the live.js and time.js scripts may appear"
        );
        assert!(live <= 1 && times <= 1);
        for (name, attrs) in tags(markup) {
            assert!(
                !matches!(
                    name.as_str(),
                    "img" | "iframe" | "object" | "embed" | "style"
                ),
                "unexpected <{name}>"
            );
            for attr in attrs {
                assert!(!attr.starts_with("on"), "event handler {attr} on <{name}>");
                assert_ne!(attr, "style", "inline style on <{name}>");
            }
        }
    }

    fn section<'a>(markup: &'a str, id: &str) -> &'a str {
        let start = markup
            .find(&format!("id=\"{id}\""))
            .unwrap_or_else(|| panic!("no #{id}"));
        &markup[start..]
    }

    #[test]
    fn story_page_escapes_every_field_and_carries_no_inline_code() {
        let view = hostile_story();
        let html = story_page(&whole(&view), TimelineOptions::default()).into_string();
        assert_safe(&html);
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains(&esc(IMG)));
        assert!(html.contains(&esc(&format!("Hack {SCRIPT} {IMG}"))));
        assert!(html.contains(&esc(&format!("Campaign {SCRIPT} {IMG}"))));
        assert!(html.contains(&esc(HOSTILE_ACTOR)));
        assert!(html.starts_with("<!DOCTYPE html><html lang=\"en\">"));
        assert!(html.contains(r#"<meta charset="utf-8">"#));
        assert!(html.contains(r#"<meta name="viewport""#));
        assert!(html.contains(r#"<link rel="stylesheet" href="/static/newsroom.css">"#));
        assert!(html.contains(r#"<script src="/static/live.js" defer></script>"#));
        assert!(html.contains(
            r#"type="application/atom+xml" title="Hack &lt;script&gt;alert(1)&lt;/script&gt;"#
        ));
        assert!(html.contains(r#"href="/v1/stories/campaign-hack/feed.atom""#));
        assert!(html.contains(r#"type="application/feed+json""#));
        assert!(html.contains(r#"href="/v1/stories/campaign-hack/feed.json""#));
        assert!(html.contains("<main"));
        assert!(html.contains("<footer"));
        assert!(html.contains(r#"<a class="masthead-title" href="/">"#));
    }

    #[test]
    fn body_tells_live_js_what_to_follow() {
        let view = hostile_story();
        let html = story_page(&whole(&view), TimelineOptions::default()).into_string();
        assert!(html.contains(&format!(
            r#"<body data-story-id="{}" data-slug="campaign-hack" data-position="10">"#,
            story_id()
        )));
        assert!(html.contains(r#"id="live-status""#));
        assert!(html.contains(r#"id="timeline""#));
        assert!(html.contains(r#"<aside class="claims" id="claims""#));
    }

    #[test]
    fn pending_and_rejected_developments_never_appear() {
        let view = hostile_story();
        let html = story_page(&whole(&view), TimelineOptions::default()).into_string();
        assert!(!html.contains(PENDING));
        assert!(!html.contains(REJECTED));
        assert!(!html.contains("Unsourced"));
        assert!(!html.contains("Charges filed"));
        let fragment = timeline_fragment(&whole(&view), TimelineOptions::default()).into_string();
        assert!(!fragment.contains(PENDING));
        assert!(!fragment.contains(REJECTED));
    }

    #[test]
    fn corrections_show_the_note_as_written_and_what_changed() {
        let html = story_page(&whole(&hostile_story()), TimelineOptions::default()).into_string();
        let timeline = section(&html, "timeline");
        assert!(timeline.contains("<strong>Correction</strong>"));
        assert!(timeline.contains(&esc(NOTE)), "note exactly as written");
        assert!(timeline.contains(&format!(
            r#"<del class="change-before">{CORRECTED_BEFORE}</del>"#
        )));
        assert!(timeline.contains(&format!(
            r#"<ins class="change-after">{CORRECTED_AFTER}</ins>"#
        )));
        assert!(timeline.contains(
            r#"<del class="change-before">Circumstantial evidence</del><span class="change-arrow" aria-hidden="true"> → </span>"#
        ));
        assert!(timeline.contains(r#"<ins class="change-after">Documentary evidence</ins>"#));
        // When: the correction event was recorded at t0 + 6h.
        assert!(timeline.contains(r#"<time datetime="2026-03-01T15:00:00Z" "#));
        // The development now reads as corrected.
        assert!(timeline.contains(&format!(
            r#"<h3 class="development-headline">{CORRECTED_AFTER}</h3>"#
        )));
    }

    #[test]
    fn retractions_stay_struck_through_with_the_reason() {
        let html = story_page(&whole(&hostile_story()), TimelineOptions::default()).into_string();
        let timeline = section(&html, "timeline");
        assert!(timeline.contains(&format!(
            r#"<h3 class="development-headline"><del>{RETRACTED}</del></h3>"#
        )));
        assert!(timeline.contains(r#"class="development retracted""#));
        assert!(timeline.contains("<strong>Retracted</strong>"));
        assert!(timeline.contains(&esc(REASON)));
        assert!(timeline.contains(&format!(
            "<del><p>{}</p></del>",
            esc(&format!("Retracted body {SCRIPT}"))
        )));
    }

    #[test]
    fn claims_ledger_shows_the_denial() {
        let html = story_page(&whole(&hostile_story()), TimelineOptions::default()).into_string();
        let claims = section(&html, "claims");
        assert!(claims.contains(r#"<span class="badge claim-status claim-denied">denied</span>"#));
        assert!(claims.contains(r#"<span class="badge stance stance-denies">denies</span>"#));
        // The retracted dispute is listed, struck, but does not count.
        assert!(claims.contains(&format!("<del>{RETRACTED}</del>")));
        assert!(claims.contains(&format!("href=\"#dev-{}\"", dev_id(3))));
    }

    #[test]
    fn developments_show_times_actors_source_and_labels() {
        let html = story_page(&whole(&hostile_story()), TimelineOptions::default()).into_string();
        let timeline = section(&html, "timeline");
        assert!(timeline.contains("<dt>Happened</dt><dd><time datetime=\"2026-03-01T09:00:00Z\" title=\"1 March 2026, 09:00 UTC\">1 March 2026, 09:00 UTC</time></dd>"));
        assert!(timeline.contains("<dt>Reported</dt><dd><time datetime=\"2026-03-01T10:00:00Z\" "));
        assert!(timeline.contains(r#"<span class="badge kind">Denial issued</span>"#));
        assert!(timeline.contains(r#"<span class="badge kind">Hack reported</span>"#));
        assert!(timeline.contains("Priority"));
        assert!(timeline.contains(r#"href="/actors/State%20X">State X</a>"#));
        assert!(timeline.contains(r#"href="/actors/Fancy%20%20Bear">Fancy  Bear</a>"#));
        assert!(timeline
            .contains(r#"href="/actors/%22%3E%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E""#));
        assert!(timeline.contains(
            r#"<a href="https://example.org/statement?a=1&amp;b=%22%3E%3Cx%3E" rel="nofollow noopener">"#
        ));
        assert!(timeline.contains("(Official statement)"));
        assert!(timeline.contains("<p>Body &lt;script&gt;alert(1)&lt;/script&gt;<br>next line"));
        // Newest first by default; the order things happened when asked.
        let order = |html: &str| {
            let timeline = section(html, "timeline");
            (1..=3)
                .map(|i| timeline.find(&format!("id=\"dev-{}\"", dev_id(i))).unwrap())
                .collect::<Vec<_>>()
        };
        let newest = order(&html);
        assert!(newest[2] < newest[1] && newest[1] < newest[0], "{newest:?}");
        let oldest = TimelineOptions {
            oldest_first: true,
            key_only: false,
        };
        let html = story_page(&whole(&hostile_story()), oldest).into_string();
        let oldest = order(&html);
        assert!(oldest[0] < oldest[1] && oldest[1] < oldest[2], "{oldest:?}");
    }

    #[test]
    fn key_events_are_the_flash_and_priority_developments() {
        let view = hostile_story();
        let key = TimelineOptions {
            oldest_first: false,
            key_only: true,
        };
        let all = story_page(&whole(&view), TimelineOptions::default()).into_string();
        let all = section(&all, "timeline");
        let only = story_page(&whole(&view), key).into_string();
        let only = section(&only, "timeline");
        let shown = |t: &str| t.matches("<li class=\"timeline-item\"").count();
        let keys = view
            .timeline()
            .into_iter()
            .filter(|d| is_key_event(d))
            .count();
        assert!(
            keys > 0 && keys < view.timeline().len(),
            "the story has both"
        );
        assert_eq!(shown(all), view.timeline().len());
        assert_eq!(shown(only), keys);
        assert!(only.contains(r#"href="/stories/campaign-hack?order=oldest&amp;show=key""#));
        assert!(only.contains(r#"<a class="switch" href="/stories/campaign-hack?show=key" aria-current="true">Key events</a>"#), "{only}");
    }

    #[test]
    fn unknown_timeline_options_are_refused_naming_the_field() {
        assert_eq!(
            TimelineOptions::parse(Some("oldest"), Some("key")),
            Ok(TimelineOptions {
                oldest_first: true,
                key_only: true
            })
        );
        assert_eq!(
            TimelineOptions::parse(None, None),
            Ok(TimelineOptions::default())
        );
        assert_eq!(
            TimelineOptions::parse(Some("sideways"), None)
                .unwrap_err()
                .field,
            "order"
        );
        assert_eq!(
            TimelineOptions::parse(None, Some("<x>")).unwrap_err().field,
            "show"
        );
    }

    #[test]
    fn every_kind_has_human_words() {
        for kind in DevelopmentKind::ALL {
            let label = kind_label(*kind);
            assert!(!label.contains('_'), "{label}");
            assert!(
                label.starts_with(|c: char| c.is_ascii_uppercase()),
                "{label}"
            );
        }
        assert_eq!(kind_label(DevelopmentKind::DenialIssued), "Denial issued");
    }

    #[test]
    fn fragment_is_the_same_markup_as_the_page() {
        let view = hostile_story();
        let page = story_page(&whole(&view), TimelineOptions::default()).into_string();
        let fragment = timeline_fragment(&whole(&view), TimelineOptions::default()).into_string();
        assert_safe(&fragment);
        let prefix = r#"<div id="live-fragment" data-position="10">"#;
        assert!(fragment.starts_with(prefix), "{fragment}");
        assert!(!fragment.contains("<html"));
        assert!(!fragment.contains("<script"));
        let inner = fragment
            .strip_prefix(prefix)
            .and_then(|f| f.strip_suffix("</div>"))
            .unwrap();
        assert!(inner.starts_with(r#"<section class="timeline" id="timeline""#));
        assert!(inner.contains(r#"<aside class="claims" id="claims""#));
        assert!(
            page.contains(inner),
            "the page embeds the fragment's sections"
        );
    }

    #[test]
    fn front_page_lists_stories_with_counts_and_times() {
        let view = hostile_story();
        let mut entry = view.front_page_entry();
        entry.tags.push(SCRIPT.to_owned());
        entry.tags.push(IMG.to_owned());
        let mut hostile_slug = entry.clone();
        hostile_slug.slug = IMG.to_owned();
        let mut latest = view.developments[0].clone();
        latest.headline = SCRIPT.to_owned();
        entry.latest = Some(latest.into());
        let html = front_page(&[entry, hostile_slug]).into_string();
        assert_safe(&html);
        assert!(html.contains(r#"<a href="/stories/campaign-hack">Hack &lt;script&gt;"#));
        assert!(html.contains("/stories/%22%3E%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E"));
        assert!(html.contains(r#"<li class="tag">&lt;script&gt;alert(1)&lt;/script&gt;</li>"#));
        assert!(html.contains(r#"<li class="tag">cyber</li>"#));
        // Three published; the retracted, pending and rejected ones are not counted.
        assert!(html.contains("3 developments"));
        assert!(html.contains(">Open</span>"));
        assert!(html.contains("<dt>Latest happened</dt>"));
        assert!(html.contains("<dt>Latest reported</dt>"));
        // The newest published development's line, escaped, on the entry that has one.
        assert_eq!(html.matches(r#"<p class="story-card-latest">"#).count(), 1);
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; · "));
        assert!(html.contains(r#"<a href="/v1/feed.atom" type="application/atom+xml">"#));
        assert!(!html.contains("data-story-id"));
        assert!(!html.contains("/static/live.js"));
        assert!(html.contains(r#"<script src="/static/time.js" defer></script>"#));

        let empty = front_page(&[]).into_string();
        assert!(empty.contains("No stories yet."));
    }

    #[test]
    fn actor_page_lists_developments_across_stories() {
        let view = hostile_story();
        let mut entries: Vec<ActorEntry> = view
            .actor_entries()
            .into_iter()
            .filter(|e| e.actor.key() == "state x")
            .collect();
        entries.reverse();
        assert_eq!(entries.len(), 3, "claim, denial, retracted statement");
        let html = actor_page(&format!("State X {SCRIPT}"), &entries).into_string();
        assert_safe(&html);
        assert!(html.contains("State X &lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains(r#"In <a href="/stories/campaign-hack">Hack &lt;script&gt;"#));
        assert!(html.contains(&format!("<del>{RETRACTED}</del>")));
        assert!(html.contains(&esc(REASON)));
        assert!(!html.contains(PENDING));
        assert!(html.contains(&format!(
            r#"href="/stories/campaign-hack#dev-{}">an earlier development</a>"#,
            dev_id(2)
        )));
        assert!(html.contains("3 developments in 1 story"));
        let retracted = html.find(RETRACTED).unwrap();
        let claim = html.find("Officials blame State X").unwrap();
        assert!(retracted < claim, "newest first, as given");

        let hostile = actor_page(HOSTILE_ACTOR, &[]).into_string();
        assert_safe(&hostile);
        assert!(hostile.contains(&esc(HOSTILE_ACTOR)));
    }

    #[test]
    fn error_pages_escape_what_they_are_given() {
        let html = not_found_page(&format!("story {SCRIPT} {IMG}")).into_string();
        assert_safe(&html);
        assert!(html.contains("&lt;script&gt;"));
        assert!(html.contains("<h1 class=\"page-title\">Not found</h1>"));
        let html = error_page(503, &format!("Down {SCRIPT} {IMG}")).into_string();
        assert_safe(&html);
        assert!(html.contains("&lt;script&gt;"));
        assert!(html.contains("Error 503"));
        assert!(html.contains("Temporarily unavailable"));
    }

    #[test]
    fn unsafe_source_urls_from_the_log_are_not_linked() {
        assert_eq!(safe_web_url("javascript:alert(1)"), None);
        assert_eq!(safe_web_url("data:text/html,<script>"), None);
        assert_eq!(
            safe_web_url("https://example.org/a").as_deref(),
            Some("https://example.org/a")
        );
    }

    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(actor_path("fancy bear"), "/actors/fancy%20bear");
        assert_eq!(actor_path("a/b?c#d"), "/actors/a%2Fb%3Fc%23d");
        assert_eq!(actor_path("gru"), "/actors/gru");
        assert_eq!(actor_path("ünit"), "/actors/%C3%BCnit");
    }

    /// Every element the pages emit; anything else would be injected markup.
    const ELEMENTS: &[&str] = &[
        "!doctype", "html", "head", "meta", "title", "link", "script", "body", "a", "header",
        "div", "p", "main", "footer", "article", "section", "aside", "h1", "h2", "h3", "span",
        "nav", "ol", "ul", "li", "dl", "dt", "dd", "time", "del", "ins", "strong", "br",
    ];

    proptest! {
        #[test]
        fn arbitrary_text_never_becomes_markup(
            headline in r#"[a-z<>"'&=/ ]{1,40}"#,
            body in r#"[a-z<>"'&=/ \n]{0,80}"#,
            actor in r#"[a-z<>"'&=/ ]{1,30}"#,
            note in r#"[a-z<>"'&=/ ]{1,40}"#,
        ) {
            prop_assume!(!headline.trim().is_empty());
            prop_assume!(!actor.trim().is_empty());
            prop_assume!(!note.trim().is_empty());
            let events = vec![
                logged(1, StoryEvent::StoryOpened {
                    id: StoryId::from(story_id()),
                    slug: Slug::parse("slug", "s").unwrap(),
                    headline: Headline::parse("headline", &headline).unwrap(),
                    summary: Summary::parse("summary", &body).unwrap(),
                    tags: vec![],
                    review_required: false,
                }),
                recorded(2, &Dev {
                    n: 1,
                    kind: DevelopmentKind::AttributionClaimed,
                    headline: &headline,
                    body: &body,
                    actors: &[actor.as_str()],
                    source: None,
                    responds_to: None,
                    occurred_hours: 0,
                }, PublicationStatus::Published),
                logged(3, StoryEvent::DevelopmentCorrected {
                    development: dev_id(1),
                    note: Note::parse("note", &note).unwrap(),
                    changes: DevelopmentChanges {
                        body: Some(Body::parse("body", &note).unwrap()),
                        ..Default::default()
                    },
                }),
                logged(4, StoryEvent::DevelopmentRetracted {
                    development: dev_id(1),
                    reason: Note::parse("reason", &note).unwrap(),
                }),
            ];
            let view = StoryView::fold(&events).unwrap();
            let page = story_page(&whole(&view), TimelineOptions::default()).into_string();
            assert_safe(&page);
            for (name, _) in tags(&page) {
                let bare = name.trim_start_matches('/');
                prop_assert!(ELEMENTS.contains(&bare), "unexpected element <{}>", name);
            }
            assert_safe(&actor_page(&actor, &view.actor_entries()).into_string());
        }
    }
}
