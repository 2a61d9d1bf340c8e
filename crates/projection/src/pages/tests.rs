//! The pages' tests: every field escaped, no inline code, and what readers may and may not see.

use super::actor::actor_page;
use super::front::front_page;
use super::pieces::safe_web_url;
use super::story::{is_key_event, story_page, timeline_fragment, TimelineOptions};
use super::words::kind_label;
use super::*;

use chrono::{DateTime, Utc};
use maud::html;
use newsroom_domain::{Actor, DevelopmentKind, Evidence, Source, SourceKind, Stance, Urgency};
use uuid::Uuid;

use newsroom_readmodel::model::{ActorEntry, StoryPage, StoryView};

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
    assert!(
        timeline.contains(r#"href="/actors/%22%3E%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E""#)
    );
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
    "!doctype", "html", "head", "meta", "title", "link", "script", "body", "a", "header", "div",
    "p", "main", "footer", "article", "section", "aside", "h1", "h2", "h3", "span", "nav", "ol",
    "ul", "li", "dl", "dt", "dd", "time", "del", "ins", "strong", "br",
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
