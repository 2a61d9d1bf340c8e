//! An actor's page: every published development naming the actor, across stories.

use maud::{html, Markup};
use uuid::Uuid;

use newsroom_readmodel::model::ActorEntry;

use super::pieces::{development_card, Links};
use super::words::plural;
use super::{follow_actor_path, layout, story_path};

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
