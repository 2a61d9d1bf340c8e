//! Commands sent straight to a `CommandService` (no HTTP), for the tests that drive the write
//! side in process: who sends them, a story opened, a routine development.

use newsroom_domain::*;
use newsroom_web::Principal;
use uuid::Uuid;

/// A principal of `role`, named `{name} {role}`, with a fresh token id.
pub fn principal_named(name: &str, role: Role) -> Principal {
    Principal {
        token_id: Uuid::new_v4().to_string(),
        name: format!("{name} {role}"),
        role,
    }
}

/// A principal of `role`, named `a {role}`.
pub fn principal(role: Role) -> Principal {
    principal_named("a", role)
}

/// A routine update headed "Update", with no body, actors or source, and a fresh id.
pub fn new_development() -> NewDevelopment {
    NewDevelopment {
        embargo_until: None,
        accused: vec![],
        id: Uuid::new_v4().into(),
        kind: DevelopmentKind::Update,
        headline: Headline::parse("headline", "Update").unwrap(),
        body: Body::parse("body", "").unwrap(),
        occurred_at: None,
        actors: vec![],
        source: None,
        evidence: Evidence::NoneProvided,
        urgency: Urgency::Routine,
        responds_to: None,
        hold: None,
    }
}

/// Opens the story `id` headed "A story", with the slug `slug` and `tags`.
pub fn open_story(id: StoryId, slug: &str, tags: Vec<Tag>, review_required: bool) -> StoryCommand {
    StoryCommand::OpenStory {
        id,
        slug: Slug::parse("slug", slug).unwrap(),
        headline: Headline::parse("headline", "A story").unwrap(),
        summary: Summary::parse("summary", "").unwrap(),
        tags,
        review_required,
    }
}

/// [`open_story`] with a fresh slug and no tags.
pub fn open_new_story(id: StoryId, review_required: bool) -> StoryCommand {
    let slug = format!("s-{}", Uuid::new_v4().simple());
    open_story(id, &slug, vec![], review_required)
}
