//! Lifting an embargo now, or moving it (editors).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use newsroom_domain::{DevelopmentId, StoryCommand, StoryId};
use newsroom_readmodel::{DevelopmentView, StoryView};

use super::forms::FormError;
use super::session::Session;
use super::templates::{story_desk_path, Here};
use super::{after_action, check_state, page, see_other};
use super::{forms, templates};
use super::{Answer, DeskState, Signed, SignedForm, Stop};

/// Refuses the embargo page of a development under no embargo.
fn require_embargo(
    state: &DeskState,
    session: &Session,
    view: &StoryView,
    d: &DevelopmentView,
) -> Result<(), Stop> {
    if d.embargo_until.is_some() {
        return Ok(());
    }
    check_state(state, session, view, d, &[], "lifted or moved")
}

/// `GET …/embargo`: an embargoed development, with its lift and move buttons (editors).
pub(super) async fn embargo_form(
    State(state): State<DeskState>,
    Signed(session): Signed,
    Path((id, dev)): Path<(String, String)>,
) -> Answer {
    state.require_editor(&session)?;
    let (view, d) = state.development(&session, &id, &dev).await?;
    require_embargo(&state, &session, &view, &d)?;
    let chrome = state.chrome(&session, Here::Other);
    Ok(page(
        StatusCode::OK,
        templates::embargo_page(&chrome, &view, &d, view.position, None),
    ))
}

/// `POST …/embargo`: `action=lift` lifts the embargo now; `action=move` moves it to `until`
/// (the desk's local time). Both are the API's commands, recorded with the editor as author.
pub(super) async fn embargo(
    State(state): State<DeskState>,
    Path((id, dev)): Path<(String, String)>,
    SignedForm(session, form): SignedForm,
) -> Answer {
    state.require_editor(&session)?;
    let (view, d) = state.posted_development(&session, &form, &id, &dev).await?;
    let development = DevelopmentId::from(d.id);
    let (command, notice) = match form.get("action") {
        "lift" => (
            Ok(StoryCommand::LiftEmbargo {
                development,
                due: None,
            }),
            "embargo-lifted",
        ),
        _ => (
            forms::embargo_until(&form, state.zone)
                .map(|until| StoryCommand::MoveEmbargo { development, until }),
            "embargo-moved",
        ),
    };
    let result = match command {
        Ok(command) => {
            state
                .execute_seen(
                    StoryId::from(view.id),
                    &session,
                    command,
                    d.id,
                    forms::seen(&form),
                )
                .await
        }
        Err(p) => Err(p),
    };
    match result {
        Ok(outcome) => {
            let caught_up = state.catch_up(outcome.position).await;
            Ok(see_other(&after_action(&view, &d, notice, caught_up)))
        }
        Err(p) if p.status().is_client_error() && p.details().field.is_some() => {
            let chrome = state.chrome(&session, Here::Other);
            let error = FormError::from_problem(&p);
            Ok(page(
                p.status(),
                templates::embargo_page(&chrome, &view, &d, view.position, Some(&error)),
            ))
        }
        Err(p) => Ok(state.problem_page(&session, p, &story_desk_path(view.id))),
    }
}
