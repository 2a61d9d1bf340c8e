//! Relating a story to another, and removing a relation (editors).

use axum::body::Bytes;
use axum::extract::{Path, State};
use newsroom_domain::{Relation, StoryCommand, StoryId};
use newsroom_web::problem::Problem;
use uuid::Uuid;

use super::forms::FormData;
use super::session::Session;
use super::templates::{story_desk_path, Here};
use super::{failure, lag, not_found_page, see_other};
use super::{Answer, DeskState, Signed};

/// Relates the story to another, named by slug or id (editors): the API's command.
pub(super) async fn relate(
    State(state): State<DeskState>,
    Signed(session): Signed,
    Path(id): Path<String>,
    body: Bytes,
) -> Answer {
    state.require_editor(&session)?;
    let form = FormData::parse(&body);
    let view = state.posted_story(&session, &form, &id).await?;
    let back = story_desk_path(view.id);
    let named = form.get("story").trim();
    // An id, else a slug (checked as one first, so nothing that is no slug reaches a query).
    let other = match Uuid::parse_str(named) {
        Ok(other) => Some(other),
        Err(_) => match newsroom_domain::Slug::parse("story", named) {
            Ok(slug) => state
                .views
                .resolve(slug.to_string())
                .await
                .map_err(failure)?,
            Err(_) => None,
        },
    };
    let command = match (other, form.get("relation").parse::<Relation>()) {
        (Some(other), Ok(relation)) => StoryCommand::LinkStory {
            story: StoryId::from(other),
            relation,
        },
        (None, _) => {
            let problem = Problem::invalid("story", format!("no story `{named}`"));
            return Ok(state.problem_page(&session, problem, &back));
        }
        (_, Err(e)) => {
            return Ok(state.problem_page(&session, Problem::invalid("relation", e), &back));
        }
    };
    relation_done(&state, &session, view.id, command, "related", back).await
}

/// Removes the relation between the story and another, whichever records it (editors).
pub(super) async fn unrelate(
    State(state): State<DeskState>,
    Signed(session): Signed,
    Path((id, other)): Path<(String, String)>,
    body: Bytes,
) -> Answer {
    state.require_editor(&session)?;
    let form = FormData::parse(&body);
    let view = state.posted_story(&session, &form, &id).await?;
    let back = story_desk_path(view.id);
    let Ok(other) = Uuid::parse_str(&other) else {
        return Err(not_found_page(Some(&state.chrome(&session, Here::Other)), "story").into());
    };
    let outcome = state
        .command
        .service
        .unlink(
            StoryId::from(view.id),
            StoryId::from(other),
            &session.principal,
        )
        .await;
    match outcome {
        Ok(outcome) => {
            let caught_up = state.catch_up(outcome.position).await;
            Ok(see_other(&format!(
                "{back}?notice=unlinked{}",
                lag(caught_up)
            )))
        }
        Err(e) => Ok(state.problem_page(&session, e.into(), &back)),
    }
}

async fn relation_done(
    state: &DeskState,
    session: &Session,
    story: Uuid,
    command: StoryCommand,
    notice: &str,
    back: String,
) -> Answer {
    match state.execute(StoryId::from(story), session, command).await {
        Ok(outcome) => {
            let caught_up = state.catch_up(outcome.position).await;
            Ok(see_other(&format!(
                "{back}?notice={notice}{}",
                lag(caught_up)
            )))
        }
        Err(p) => Ok(state.problem_page(session, p, &back)),
    }
}
