//! The feeds' tests: what RFC 4287, JSON Feed 1.1 and ninjs 3.0 require of each, and that no
//! feed shows what readers may not see.

use super::atom::{actor_atom, story_atom};
use super::json_feed::{actor_json_feed, story_json_feed, JSON_FEED_VERSION};
use super::ninjs::{story_ninjs, NINJS_SCHEMA};
use super::*;
use chrono::{Duration, TimeZone};
use newsroom_domain::{
    Actor, Body, Development, DevelopmentChanges, DevelopmentId, DevelopmentKind, Evidence,
    Headline, Note, PublicationStatus, Slug, Source, SourceKind, SourceName, StoryEvent, StoryId,
    Summary, Tag, Urgency, WebUrl,
};
use newsroom_readmodel::model::{LoggedEvent, StoryView};
use proptest::prelude::*;
use serde_json::Value;

const ATOM_NS: &str = "http://www.w3.org/2005/Atom";
const BASE: &str = "http://127.0.0.1:8080";
const HOSTILE: &str = r#"<script>alert(1)</script> & "quotes" ]]> 'apostrophes'"#;
const HOSTILE_DEV: &str = "<b>Bold</b> & <![CDATA[ x ]]> &amp; \"q\"";
const PENDING: &str = "Pending scoop nobody may read";
const REJECTED: &str = "Rejected rumour nobody may read";
const NOTE: &str = "The group was misnamed <sic> & is now correct";
const REASON: &str = "The source recanted & withdrew <everything>";

fn t(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap() + Duration::minutes(minutes)
}

/// A story's log, written event by event.
struct Log {
    story: Uuid,
    events: Vec<LoggedEvent>,
}

impl Log {
    fn new() -> Self {
        Self {
            story: Uuid::now_v7(),
            events: Vec::new(),
        }
    }

    fn push(&mut self, minutes: i64, author: Option<&str>, event: StoryEvent) {
        let position = self.events.len() as i64 + 1;
        self.events.push(LoggedEvent {
            position,
            story_id: self.story,
            sequence: position,
            recorded_at: t(minutes),
            author: author.map(str::to_owned),
            event,
        });
    }

    fn open(&mut self, headline: &str) {
        let story = StoryId::from(self.story);
        self.push(
            0,
            Some("Editor Ed"),
            StoryEvent::StoryOpened {
                id: story,
                slug: Slug::parse("slug", "campaign-hack-2026").unwrap(),
                headline: Headline::parse("headline", headline).unwrap(),
                summary: Summary::parse("summary", "Who broke into the campaign & how.").unwrap(),
                tags: Tag::parse_list("tags", &["cyber".into(), "elections".into()]).unwrap(),
                review_required: true,
            },
        );
    }

    fn record(
        &mut self,
        minutes: i64,
        author: Option<&str>,
        headline: &str,
        actors: &[&str],
        source: Option<Source>,
        status: PublicationStatus,
    ) -> Uuid {
        let id = Uuid::now_v7();
        let development = Development {
            accused: vec![],
            id: DevelopmentId::from(id),
            kind: DevelopmentKind::AttributionClaimed,
            headline: Headline::parse("headline", headline).unwrap(),
            body: Body::parse("body", &format!("Body of {headline}\nsecond line")).unwrap(),
            occurred_at: t(minutes - 5),
            recorded_at: t(minutes),
            actors: Actor::parse_list(
                "actors",
                &actors.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            )
            .unwrap(),
            source,
            evidence: Evidence::Documentary,
            urgency: Urgency::Flash,
            responds_to: None,
        };
        self.push(
            minutes,
            author,
            StoryEvent::DevelopmentRecorded {
                embargo_until: None,
                development,
                status,
                fingerprint: "fp".into(),
                hold: None,
            },
        );
        id
    }

    fn view(&self) -> StoryView {
        StoryView::fold(&self.events).unwrap()
    }
}

fn ministry() -> Source {
    Source {
        name: SourceName::parse("source.name", "Ministry of <Foreign> Affairs").unwrap(),
        kind: SourceKind::OfficialStatement,
        url: Some(WebUrl::parse("source.url", "https://example.org/a?b=1&c=2").unwrap()),
    }
}

/// What the tests look for in the outputs.
struct Scenario {
    view: StoryView,
    corrected: Uuid,
    retracted: Uuid,
    approved: Uuid,
}

/// A story with a published development that gets corrected, one pending forever, one
/// rejected, one approved after review and one retracted; hostile text in the headlines.
fn scenario() -> Scenario {
    let mut log = Log::new();
    log.open(HOSTILE);
    let corrected = log.record(
        10,
        Some("Ana <Reporter>"),
        "Fancy Bear blamed for the hack",
        &["Fancy Bear", "GRU"],
        Some(ministry()),
        PublicationStatus::Published,
    );
    log.record(
        12,
        Some("Ana <Reporter>"),
        PENDING,
        &["Secret Actor"],
        None,
        PublicationStatus::PendingReview,
    );
    let rejected = log.record(
        14,
        None,
        REJECTED,
        &["Rumour Mill"],
        None,
        PublicationStatus::PendingReview,
    );
    log.push(
        15,
        Some("Editor Ed"),
        StoryEvent::DevelopmentRejected {
            development: rejected.into(),
            reason: Note::parse("reason", "Unsourced").unwrap(),
        },
    );
    let retracted = log.record(
        20,
        None,
        HOSTILE_DEV,
        &["fancy  bear"],
        Some(ministry()),
        PublicationStatus::Published,
    );
    let approved = log.record(
        22,
        Some("Bo"),
        "Campaign confirms the breach",
        &["Campaign"],
        None,
        PublicationStatus::PendingReview,
    );
    log.push(
        25,
        Some("Editor Ed"),
        StoryEvent::DevelopmentApproved {
            development: approved.into(),
        },
    );
    log.push(
        30,
        Some("Editor Ed"),
        StoryEvent::DevelopmentCorrected {
            development: corrected.into(),
            note: Note::parse("note", NOTE).unwrap(),
            changes: DevelopmentChanges {
                headline: Some(Headline::parse("headline", "APT28 blamed for the hack").unwrap()),
                ..DevelopmentChanges::default()
            },
        },
    );
    log.push(
        40,
        Some("Editor Ed"),
        StoryEvent::DevelopmentRetracted {
            development: retracted.into(),
            reason: Note::parse("reason", REASON).unwrap(),
        },
    );
    // The last event is invisible: it must not move the feed's `updated`.
    log.record(
        50,
        None,
        "Another pending one",
        &[],
        None,
        PublicationStatus::PendingReview,
    );
    Scenario {
        view: log.view(),
        corrected,
        retracted,
        approved,
    }
}

fn rfc3339_of(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text:?} is not RFC 3339: {e}"))
        .with_timezone(&Utc)
}

fn atom_children<'a, 'i>(
    node: roxmltree::Node<'a, 'i>,
    name: &'a str,
) -> impl Iterator<Item = roxmltree::Node<'a, 'i>> + 'a {
    node.children()
        .filter(move |c| c.has_tag_name((ATOM_NS, name)))
}

fn only_text(node: roxmltree::Node<'_, '_>, name: &str) -> String {
    let found: Vec<_> = atom_children(node, name).collect();
    assert_eq!(
        found.len(),
        1,
        "exactly one <{name}> in <{}>",
        node.tag_name().name()
    );
    found[0].text().unwrap_or_default().to_owned()
}

fn parse(xml: &str) -> roxmltree::Document<'_> {
    roxmltree::Document::parse(xml).expect("well-formed XML")
}

/// Checks what RFC 4287 requires and returns (feed updated, entries with their ids).
fn check_atom<'a, 'i>(
    doc: &'a roxmltree::Document<'i>,
    self_href: &str,
) -> (DateTime<Utc>, Vec<(String, roxmltree::Node<'a, 'i>)>) {
    let feed = doc.root_element();
    assert!(feed.has_tag_name((ATOM_NS, "feed")));
    assert!(!only_text(feed, "id").is_empty());
    only_text(feed, "title");
    let updated = rfc3339_of(&only_text(feed, "updated"));
    let selfs: Vec<_> = atom_children(feed, "link")
        .filter(|l| l.attribute("rel") == Some("self"))
        .collect();
    assert_eq!(selfs.len(), 1, "one self link");
    assert_eq!(selfs[0].attribute("href"), Some(self_href));
    assert!(atom_children(feed, "author").count() >= 1, "a feed author");

    let mut ids = HashSet::new();
    let mut entries = Vec::new();
    for entry in atom_children(feed, "entry") {
        let id = only_text(entry, "id");
        assert!(ids.insert(id.clone()), "duplicate entry id {id}");
        only_text(entry, "title");
        let entry_updated = rfc3339_of(&only_text(entry, "updated"));
        assert!(entry_updated <= updated, "an entry newer than its feed");
        for published in atom_children(entry, "published") {
            rfc3339_of(published.text().unwrap_or_default());
        }
        entries.push((id, entry));
    }
    (updated, entries)
}

fn find<'a, 'i>(
    entries: &[(String, roxmltree::Node<'a, 'i>)],
    id: Uuid,
) -> roxmltree::Node<'a, 'i> {
    entries
        .iter()
        .find(|(e, _)| *e == format!("urn:uuid:{id}"))
        .map(|(_, n)| *n)
        .unwrap_or_else(|| panic!("no entry for {id}"))
}

#[test]
fn story_atom_holds_what_rfc_4287_requires_and_only_what_readers_may_see() {
    let s = scenario();
    let xml = story_atom(&s.view, BASE);
    let doc = parse(&xml);
    let (updated, entries) = check_atom(
        &doc,
        "http://127.0.0.1:8080/v1/stories/campaign-hack-2026/feed.atom",
    );
    let feed = doc.root_element();
    assert_eq!(only_text(feed, "id"), format!("urn:uuid:{}", s.view.id));
    assert_eq!(
        only_text(feed, "title"),
        HOSTILE,
        "the hostile headline survives as text"
    );
    assert!(!xml.contains("<script>"), "markup in a headline is escaped");
    let alternate = atom_children(feed, "link")
        .find(|l| {
            l.attribute("rel") == Some("alternate") && l.attribute("type") == Some("text/html")
        })
        .unwrap();
    assert_eq!(
        alternate.attribute("href"),
        Some("http://127.0.0.1:8080/stories/campaign-hack-2026")
    );

    // Three visible developments; pending and rejected ones appear nowhere.
    assert_eq!(entries.len(), 3);
    for hidden in [
        PENDING,
        REJECTED,
        "Secret Actor",
        "Rumour Mill",
        "Another pending one",
    ] {
        assert!(!xml.contains(hidden), "{hidden:?} leaked into the feed");
    }
    // The last (pending) event does not date the feed; the retraction, the last visible change, does.
    assert_eq!(updated, t(40));

    let corrected = find(&entries, s.corrected);
    assert_eq!(rfc3339_of(&only_text(corrected, "updated")), t(30));
    assert_eq!(rfc3339_of(&only_text(corrected, "published")), t(10));
    assert_eq!(only_text(corrected, "title"), "APT28 blamed for the hack");
    let content = only_text(corrected, "content");
    assert!(
        content.contains(&format!("Correction: {NOTE}")),
        "{content}"
    );
    assert!(
        content.contains("Body of Fancy Bear blamed for the hack"),
        "{content}"
    );
    assert!(content.contains(
        "Source: Ministry of <Foreign> Affairs (official statement), https://example.org/a?b=1&c=2"
    ));
    // Who filed it stays on the desk, as on the pages: the feed's own author stands for
    // every entry.
    assert!(atom_children(corrected, "author").next().is_none());
    let category = atom_children(corrected, "category").next().unwrap();
    assert_eq!(category.attribute("term"), Some("attribution_claimed"));
    let link = atom_children(corrected, "link").next().unwrap();
    assert_eq!(
        link.attribute("href").unwrap(),
        format!(
            "http://127.0.0.1:8080/stories/campaign-hack-2026#development-{}",
            s.corrected
        )
    );

    let retracted = find(&entries, s.retracted);
    assert_eq!(
        only_text(retracted, "title"),
        format!("[Retracted] {HOSTILE_DEV}")
    );
    assert_eq!(rfc3339_of(&only_text(retracted, "updated")), t(40));
    let content = only_text(retracted, "content");
    assert!(
        content.starts_with(&format!("Retracted: {REASON}")),
        "{content}"
    );
    assert_eq!(
        atom_children(retracted, "author").count(),
        0,
        "no reporter recorded"
    );

    let approved = find(&entries, s.approved);
    assert_eq!(
        rfc3339_of(&only_text(approved, "published")),
        t(25),
        "published on approval"
    );
}

#[test]
fn story_json_feed_is_json_feed_1_1() {
    let s = scenario();
    let feed = story_json_feed(&s.view, BASE);
    assert_eq!(feed["version"], "https://jsonfeed.org/version/1.1");
    assert_eq!(feed["title"], HOSTILE);
    assert_eq!(
        feed["feed_url"],
        "http://127.0.0.1:8080/v1/stories/campaign-hack-2026/feed.json"
    );
    assert_eq!(
        feed["home_page_url"],
        "http://127.0.0.1:8080/stories/campaign-hack-2026"
    );
    let items = feed["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    let mut ids = HashSet::new();
    for item in items {
        let id = item["id"].as_str().expect("an id");
        assert!(ids.insert(id.to_owned()), "duplicate id {id}");
        let text = item["content_text"]
            .as_str()
            .or(item["content_html"].as_str());
        assert!(text.is_some_and(|t| !t.is_empty()), "{item}");
        rfc3339_of(item["date_published"].as_str().unwrap());
        rfc3339_of(item["date_modified"].as_str().unwrap());
        assert_eq!(item["tags"], serde_json::json!(["attribution_claimed"]));
    }
    let text = feed.to_string();
    for hidden in [PENDING, REJECTED, "Secret Actor", "Another pending one"] {
        assert!(!text.contains(hidden), "{hidden:?} leaked into the feed");
    }

    let item = |id: Uuid| {
        items
            .iter()
            .find(|i| i["id"] == format!("urn:uuid:{id}"))
            .unwrap()
    };
    let corrected = item(s.corrected);
    assert_eq!(
        rfc3339_of(corrected["date_modified"].as_str().unwrap()),
        t(30)
    );
    assert_eq!(corrected["_newsroom"]["corrections"][0]["note"], NOTE);
    assert_eq!(
        corrected["_newsroom"]["corrections"][0]["fields"],
        serde_json::json!(["headline"])
    );
    assert_eq!(corrected["_newsroom"]["state"], "published");
    assert_eq!(corrected["_newsroom"]["evidence"], "documentary");
    assert_eq!(corrected["_newsroom"]["urgency"], "flash");
    assert!(corrected.get("authors").is_none());
    assert_eq!(corrected["external_url"], "https://example.org/a?b=1&c=2");
    assert!(corrected["content_text"].as_str().unwrap().contains(NOTE));

    let retracted = item(s.retracted);
    assert_eq!(retracted["title"], format!("[Retracted] {HOSTILE_DEV}"));
    assert_eq!(retracted["_newsroom"]["state"], "retracted");
    assert_eq!(retracted["_newsroom"]["retraction"]["reason"], REASON);
    assert!(retracted.get("authors").is_none());
}

#[test]
fn a_correction_made_before_publication_is_not_a_correction_to_readers() {
    let mut log = Log::new();
    log.open("Story");
    let id = log.record(
        10,
        None,
        "Draft",
        &[],
        None,
        PublicationStatus::PendingReview,
    );
    log.push(
        12,
        Some("Editor Ed"),
        StoryEvent::DevelopmentCorrected {
            development: id.into(),
            note: Note::parse("note", "Tidied before approval").unwrap(),
            changes: DevelopmentChanges {
                headline: Some(Headline::parse("headline", "Final").unwrap()),
                ..DevelopmentChanges::default()
            },
        },
    );
    log.push(
        15,
        Some("Editor Ed"),
        StoryEvent::DevelopmentApproved {
            development: id.into(),
        },
    );
    let view = log.view();
    let xml = story_atom(&view, BASE);
    assert!(xml.contains("Final"));
    assert!(!xml.contains("Tidied before approval"), "{xml}");
    let feed = story_json_feed(&view, BASE);
    assert_eq!(
        feed["items"][0]["_newsroom"]["corrections"],
        serde_json::json!([])
    );
}

fn fancy_bear_entries(view: &StoryView) -> Vec<ActorEntry> {
    let mut entries: Vec<ActorEntry> = view
        .actor_entries()
        .into_iter()
        .filter(|e| e.actor.key() == "fancy bear")
        .collect();
    entries.reverse(); // newest first, as the actor page lists them
    entries
}

#[test]
fn actor_feeds_link_to_the_percent_encoded_key_and_name_the_story() {
    let s = scenario();
    let entries = fancy_bear_entries(&s.view);
    assert_eq!(entries.len(), 2);

    let xml = actor_atom("Fancy Bear", "fancy bear", &entries, BASE);
    let doc = parse(&xml);
    let (updated, atom_entries) = check_atom(
        &doc,
        "http://127.0.0.1:8080/v1/actors/fancy%20bear/feed.atom",
    );
    assert_eq!(updated, t(40));
    assert_eq!(atom_entries.len(), 2);
    let feed = doc.root_element();
    assert_eq!(only_text(feed, "id"), "urn:newsroom:actor:fancy%20bear");
    assert_eq!(only_text(feed, "title"), "Fancy Bear");
    assert!(atom_children(feed, "link").any(|l| {
        l.attribute("rel") == Some("alternate")
            && l.attribute("href") == Some("http://127.0.0.1:8080/actors/fancy%20bear")
    }));
    // Newest first, as given; titles name the story.
    assert_eq!(atom_entries[0].0, format!("urn:uuid:{}", s.retracted));
    assert_eq!(
        only_text(atom_entries[0].1, "title"),
        format!("[Retracted] {HOSTILE}: {HOSTILE_DEV}")
    );
    assert_eq!(
        only_text(atom_entries[1].1, "title"),
        format!("{HOSTILE}: APT28 blamed for the hack")
    );

    let json = actor_json_feed("Fancy Bear", "fancy bear", &entries, BASE);
    assert_eq!(json["version"], JSON_FEED_VERSION);
    assert_eq!(json["title"], "Fancy Bear");
    assert_eq!(
        json["feed_url"],
        "http://127.0.0.1:8080/v1/actors/fancy%20bear/feed.json"
    );
    assert_eq!(
        json["home_page_url"],
        "http://127.0.0.1:8080/actors/fancy%20bear"
    );
    let items = json["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["id"], format!("urn:uuid:{}", s.retracted));
    assert_eq!(items[1]["_newsroom"]["story"]["headline"], HOSTILE);
    for item in items {
        rfc3339_of(item["date_published"].as_str().unwrap());
        rfc3339_of(item["date_modified"].as_str().unwrap());
    }
}

#[test]
fn no_feed_nor_ninjs_names_who_filed_approved_corrected_or_retracted_anything() {
    // The pages and the JSON API never name the staff behind a development (their tokens'
    // names); the feeds and the ninjs export must not either.
    let s = scenario();
    let entries = fancy_bear_entries(&s.view);
    let outputs = [
        story_atom(&s.view, BASE),
        story_json_feed(&s.view, BASE).to_string(),
        story_ninjs(&s.view, BASE).to_string(),
        actor_atom("Fancy Bear", "fancy bear", &entries, BASE),
        actor_json_feed("Fancy Bear", "fancy bear", &entries, BASE).to_string(),
    ];
    for (i, text) in outputs.iter().enumerate() {
        for staff in ["Ana <Reporter>", "Ana &lt;Reporter&gt;", "Editor Ed"] {
            assert!(!text.contains(staff), "output {i} names {staff:?}: {text}");
        }
    }
}

#[test]
fn an_actor_feed_lists_a_development_once_and_dates_an_empty_page_at_the_epoch() {
    let s = scenario();
    let mut entries = fancy_bear_entries(&s.view);
    entries.push(entries[0].clone());
    let xml = actor_atom("Fancy Bear", "fancy bear", &entries, BASE);
    let doc = parse(&xml);
    let (_, atom_entries) = check_atom(
        &doc,
        "http://127.0.0.1:8080/v1/actors/fancy%20bear/feed.atom",
    );
    assert_eq!(atom_entries.len(), 2);
    assert_eq!(
        actor_json_feed("Fancy Bear", "fancy bear", &entries, BASE)["items"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    let hostile = "<Evil> & \"Co\"";
    let key = Actor::normalise(hostile);
    let xml = actor_atom(hostile, &key, &[], BASE);
    let doc = parse(&xml);
    let (updated, atom_entries) = check_atom(
        &doc,
        &format!(
            "http://127.0.0.1:8080/v1/actors/{}/feed.atom",
            encode_segment(&key)
        ),
    );
    assert_eq!(updated, DateTime::UNIX_EPOCH);
    assert!(atom_entries.is_empty());
    assert_eq!(only_text(doc.root_element(), "title"), hostile);
}

#[test]
fn keys_are_encoded_as_one_path_segment() {
    assert_eq!(encode_segment("fancy bear"), "fancy%20bear");
    assert_eq!(encode_segment("a/b?c#d+e%f"), "a%2Fb%3Fc%23d%2Be%25f");
    assert_eq!(encode_segment("ümit"), "%C3%BCmit");
    assert_eq!(encode_segment("campaign-hack-2026"), "campaign-hack-2026");
    assert_eq!(
        actor_url("http://h:1/", "apt 28"),
        "http://h:1/actors/apt%2028",
        "a trailing slash on the base is tolerated"
    );
}

/// Top-level properties of ninjs 3.0 (its root object admits no others).
const NINJS_PROPERTIES: &[&str] = &[
    "uri",
    "type",
    "representationType",
    "profile",
    "version",
    "firstCreated",
    "versionCreated",
    "contentCreated",
    "embargoedUntil",
    "pubStatus",
    "urgency",
    "copyrightHolder",
    "copyrightNotice",
    "usageTerms",
    "edNote",
    "language",
    "descriptions",
    "bodies",
    "headlines",
    "people",
    "organisations",
    "places",
    "subjects",
    "events",
    "eventDetails",
    "plannedCoverage",
    "objects",
    "infoSources",
    "title",
    "by",
    "slugline",
    "located",
    "renditions",
    "associations",
    "altIds",
    "trustIndicators",
    "standard",
    "genres",
    "expires",
    "rightsInfo",
];

fn check_ninjs_object(item: &Value, extra: &[&str]) {
    let object = item.as_object().expect("an object");
    for key in object.keys() {
        assert!(
            NINJS_PROPERTIES.contains(&key.as_str()) || extra.contains(&key.as_str()),
            "{key} is not a ninjs 3.0 property"
        );
    }
    assert!(item["uri"]
        .as_str()
        .is_some_and(|u| url::Url::parse(u).is_ok()));
    assert!(item["version"].is_string());
    assert!(["usable", "withheld", "canceled"].contains(&item["pubStatus"].as_str().unwrap()));
    assert!(!item["headlines"].as_array().unwrap().is_empty());
    assert!(item["headlines"][0]["value"].is_string());
    rfc3339_of(item["firstCreated"].as_str().unwrap());
    rfc3339_of(item["versionCreated"].as_str().unwrap());
    for body in item["bodies"].as_array().unwrap() {
        assert!(body["value"].is_string());
    }
}

#[test]
fn story_ninjs_is_a_ninjs_3_item_with_one_association_per_visible_development() {
    let s = scenario();
    let item = story_ninjs(&s.view, BASE);
    check_ninjs_object(&item, &[]);
    assert_eq!(
        item["uri"],
        "http://127.0.0.1:8080/stories/campaign-hack-2026"
    );
    assert_eq!(item["standard"]["schema"], NINJS_SCHEMA);
    assert_eq!(item["type"], "text");
    assert_eq!(item["pubStatus"], "usable");
    assert_eq!(
        item["headlines"][0],
        serde_json::json!({"role": "main", "value": HOSTILE})
    );
    assert_eq!(rfc3339_of(item["firstCreated"].as_str().unwrap()), t(0));
    assert_eq!(rfc3339_of(item["versionCreated"].as_str().unwrap()), t(40));

    let body = item["bodies"][0]["value"].as_str().unwrap();
    assert!(
        body.contains(&format!("[RETRACTED] 2026-03-01 12:15 UTC — {HOSTILE_DEV}")),
        "{body}"
    );
    assert!(body.contains(&format!("Correction: {NOTE}")));
    let text = item.to_string();
    for hidden in [
        PENDING,
        REJECTED,
        "Secret Actor",
        "Rumour Mill",
        "Another pending one",
    ] {
        assert!(!text.contains(hidden), "{hidden:?} leaked into ninjs");
    }

    // One source, named by two developments.
    assert_eq!(
        item["infoSources"],
        serde_json::json!([{
            "name": "Ministry of <Foreign> Affairs",
            "role": "official_statement",
            "uri": "https://example.org/a?b=1&c=2",
        }])
    );
    let subjects = item["subjects"].as_array().unwrap();
    let actors: Vec<&str> = subjects
        .iter()
        .filter(|s| s["rel"] == "actor")
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(actors, ["Fancy Bear", "GRU", "Campaign"], "distinct by key");
    assert!(subjects
        .iter()
        .any(|s| s["uri"] == "http://127.0.0.1:8080/actors/fancy%20bear"));
    assert!(subjects
        .iter()
        .any(|s| s["rel"] == "tag" && s["name"] == "cyber"));

    let associations = item["associations"].as_array().unwrap();
    assert_eq!(associations.len(), 3);
    for association in associations {
        check_ninjs_object(association, &["name", "rel"]);
        assert!(association["name"].is_string());
    }
    let by_id = |id: Uuid| {
        associations
            .iter()
            .find(|a| a["altIds"][0]["value"] == id.to_string())
            .unwrap()
    };
    let retracted = by_id(s.retracted);
    assert_eq!(retracted["pubStatus"], "canceled");
    assert_eq!(retracted["descriptions"][0]["value"], REASON);
    let corrected = by_id(s.corrected);
    assert_eq!(corrected["pubStatus"], "usable");
    assert_eq!(corrected["urgency"], 1);
    assert_eq!(corrected["descriptions"][0]["role"], "correction");
    assert_eq!(
        rfc3339_of(corrected["versionCreated"].as_str().unwrap()),
        t(30)
    );
}

#[test]
fn a_story_without_visible_developments_still_renders_valid_feeds() {
    let mut log = Log::new();
    log.open("Quiet story");
    log.record(
        5,
        None,
        PENDING,
        &[],
        None,
        PublicationStatus::PendingReview,
    );
    let view = log.view();
    let xml = story_atom(&view, BASE);
    let doc = parse(&xml);
    let (updated, entries) = check_atom(
        &doc,
        "http://127.0.0.1:8080/v1/stories/campaign-hack-2026/feed.atom",
    );
    assert_eq!(
        updated,
        t(0),
        "dated by the opening, not by the pending filing"
    );
    assert!(entries.is_empty());
    assert!(!xml.contains(PENDING));
    assert_eq!(story_json_feed(&view, BASE)["items"], serde_json::json!([]));
    let ninjs = story_ninjs(&view, BASE);
    check_ninjs_object(&ninjs, &[]);
    assert_eq!(ninjs["associations"], serde_json::json!([]));
}

/// Any text, with the characters that trouble XML (markup, line ends, characters XML 1.0
/// forbids) far more often than chance would pick them.
fn nasty_text() -> impl Strategy<Value = String> {
    let nasty = prop::sample::select(vec![
        '\u{0}',
        '\u{1}',
        '\u{8}',
        '\u{b}',
        '\u{c}',
        '\u{1f}',
        '\u{7f}',
        '\u{85}',
        '\r',
        '\n',
        '\t',
        '\u{fffe}',
        '\u{ffff}',
        '<',
        '>',
        '&',
        '"',
        '\'',
        ']',
        ';',
        '#',
        '\u{10ffff}',
    ]);
    prop::collection::vec(prop_oneof![any::<char>(), nasty], 0..40)
        .prop_map(|chars| chars.into_iter().collect())
}

proptest! {
    /// Whatever text the model holds, the Atom feed is well-formed and the text comes back
    /// (minus what XML 1.0 cannot carry at all).
    #[test]
    fn any_text_gives_a_well_formed_feed(headline in nasty_text(), body in nasty_text(),
                                         safe in "[^\u{0}-\u{1f}\u{fffe}\u{ffff}]{1,40}") {
        let mut log = Log::new();
        log.open("Story");
        log.record(10, Some("Ana"), "Development", &["Actor"], None, PublicationStatus::Published);
        let mut view = log.view();
        view.headline = safe.clone();
        view.summary = body.clone();
        view.developments[0].headline = headline.clone();
        view.developments[0].body = body;

        let xml = story_atom(&view, BASE);
        let doc = parse(&xml);
        let (_, entries) =
            check_atom(&doc, "http://127.0.0.1:8080/v1/stories/campaign-hack-2026/feed.atom");
        prop_assert_eq!(entries.len(), 1);
        prop_assert_eq!(only_text(doc.root_element(), "title"), safe);
        prop_assert_eq!(only_text(entries[0].1, "title"), xml_text(&headline));

        let actor = actor_atom(&headline, &headline, &view.actor_entries(), BASE);
        prop_assert!(roxmltree::Document::parse(&actor).is_ok());
    }
}
