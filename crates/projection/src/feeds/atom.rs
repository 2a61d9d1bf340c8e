//! The Atom feeds (RFC 4287, written with `atom_syndication`, whose types escape every text):
//! a story's, an actor's and the front page's.

use atom_syndication::{Category, Content, Entry, Feed, Generator, Link, Person};
use chrono::{DateTime, Utc};

use newsroom_readmodel::model::{ActorEntry, DevelopmentView, FrontPageEntry, StoryView};

use super::{
    actor_entry_title, actor_feed_id, actor_feed_url, actor_url, development_text,
    development_title, development_url, distinct_entries, fixed, front_page_feed_url,
    front_page_summary, front_page_updated, last_visible_change, spoken, story_feed_url, story_url,
    trim, urn, xml_text, FEED_AUTHOR, FRONT_PAGE_FEED_ID, JSON_FEED_CONTENT_TYPE,
};

fn atom_link(href: String, rel: &str, mime_type: &str) -> Link {
    Link {
        href,
        rel: rel.to_owned(),
        mime_type: Some(mime_type.to_owned()),
        ..Link::default()
    }
}

fn atom_person(name: &str) -> Person {
    Person {
        name: xml_text(name),
        ..Person::default()
    }
}

fn atom_entry(d: &DevelopmentView, title: String, url: String) -> Entry {
    let kind = d.kind.as_str();
    Entry {
        id: urn(d.id),
        title: xml_text(&title).into(),
        updated: fixed(d.updated_at),
        published: Some(fixed(d.published_at.unwrap_or(d.recorded_at))),
        // No entry names who filed it: the staff behind a development stay on the desk, as on
        // the pages; the feed's author stands for every entry.
        authors: vec![],
        categories: vec![Category {
            term: kind.to_owned(),
            label: Some(spoken(kind)),
            ..Category::default()
        }],
        links: vec![atom_link(url, "alternate", "text/html")],
        content: Some(Content {
            value: Some(xml_text(&development_text(d))),
            content_type: Some("text".to_owned()),
            ..Content::default()
        }),
        ..Entry::default()
    }
}

fn atom_feed_shell(id: String, title: &str, updated: DateTime<Utc>, links: Vec<Link>) -> Feed {
    Feed {
        id,
        title: xml_text(title).into(),
        updated: fixed(updated),
        // RFC 4287 wants an author on the feed unless every entry has one.
        authors: vec![atom_person(FEED_AUTHOR)],
        generator: Some(Generator {
            value: FEED_AUTHOR.to_owned(),
            ..Generator::default()
        }),
        links,
        ..Feed::default()
    }
}

/// The Atom feed of a story: one entry per development readers see, newest first (by when it
/// happened). A correction moves the entry's `updated`; a retraction keeps the entry, titled
/// "[Retracted] …" with the reason at the top of its content.
pub fn story_atom(view: &StoryView, base: &str) -> String {
    let (_, updated) = last_visible_change(view);
    let mut feed = atom_feed_shell(
        urn(view.id),
        &view.headline,
        updated,
        vec![
            atom_link(
                story_feed_url(base, &view.slug, "atom"),
                "self",
                "application/atom+xml",
            ),
            atom_link(story_url(base, &view.slug), "alternate", "text/html"),
            atom_link(
                story_feed_url(base, &view.slug, "json"),
                "alternate",
                JSON_FEED_CONTENT_TYPE,
            ),
        ],
    );
    if !view.summary.trim().is_empty() {
        feed.subtitle = Some(xml_text(&view.summary).into());
    }
    feed.categories = view
        .tags
        .iter()
        .map(|t| Category {
            term: xml_text(t),
            ..Category::default()
        })
        .collect();
    feed.entries = view
        .timeline()
        .into_iter()
        .rev()
        .map(|d| {
            atom_entry(
                d,
                development_title(d),
                development_url(base, &view.slug, d.id),
            )
        })
        .collect();
    feed.to_string()
}

/// The Atom feed of the front page: one entry per story, in the front page's order (the newest
/// published development first), each linking to the story's page.
pub fn front_page_atom(entries: &[FrontPageEntry], base: &str) -> String {
    let updated = entries
        .iter()
        .map(front_page_updated)
        .max()
        .unwrap_or(DateTime::UNIX_EPOCH);
    let mut feed = atom_feed_shell(
        FRONT_PAGE_FEED_ID.to_owned(),
        "All stories",
        updated,
        vec![
            atom_link(
                front_page_feed_url(base, "atom"),
                "self",
                "application/atom+xml",
            ),
            atom_link(format!("{}/", trim(base)), "alternate", "text/html"),
            atom_link(
                front_page_feed_url(base, "json"),
                "alternate",
                JSON_FEED_CONTENT_TYPE,
            ),
        ],
    );
    feed.entries = entries
        .iter()
        .map(|e| Entry {
            id: urn(e.id),
            title: xml_text(&e.headline).into(),
            updated: fixed(front_page_updated(e)),
            links: vec![atom_link(
                story_url(base, &e.slug),
                "alternate",
                "text/html",
            )],
            summary: Some(xml_text(&front_page_summary(e)).into()),
            categories: e
                .tags
                .iter()
                .map(|t| Category {
                    term: xml_text(t),
                    ..Category::default()
                })
                .collect(),
            ..Entry::default()
        })
        .collect();
    feed.to_string()
}

/// The Atom feed of an actor's page. `entries` come newest first and keep that order; a
/// development listed twice appears once. An empty page is dated at the Unix epoch, there being
/// no change to date it by.
pub fn actor_atom(actor_name: &str, actor_key: &str, entries: &[ActorEntry], base: &str) -> String {
    let entries = distinct_entries(entries);
    let updated = entries
        .iter()
        .map(|e| e.development.updated_at)
        .max()
        .unwrap_or(DateTime::UNIX_EPOCH);
    let mut feed = atom_feed_shell(
        actor_feed_id(actor_key),
        actor_name,
        updated,
        vec![
            atom_link(
                actor_feed_url(base, actor_key, "atom"),
                "self",
                "application/atom+xml",
            ),
            atom_link(actor_url(base, actor_key), "alternate", "text/html"),
            atom_link(
                actor_feed_url(base, actor_key, "json"),
                "alternate",
                JSON_FEED_CONTENT_TYPE,
            ),
        ],
    );
    feed.subtitle = Some(xml_text(&format!("Developments naming {actor_name}")).into());
    feed.entries = entries
        .into_iter()
        .map(|e| {
            atom_entry(
                &e.development,
                actor_entry_title(e),
                development_url(base, &e.story_slug, e.development.id),
            )
        })
        .collect();
    feed.to_string()
}
