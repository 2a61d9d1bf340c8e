//! Taking back a publication or an approval in its undo window, before readers see it.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use newsroom_domain::{DevelopmentId, StoryCommand, StoryId};
use newsroom_readmodel::{DevelopmentStanding, DevelopmentView, StoryView};

use super::filing::require_filer;
use super::forms::FormData;
use super::session::Session;
use super::templates::{story_desk_path, Here};
use super::{forms, templates};
use super::{page, see_other};
use super::{Answer, DeskState, Signed, Stop};

/// Whether `d` is held for the undo window of its approval (else of its filing).
fn is_approval_window(d: &DevelopmentView) -> bool {
    d.approved_by.is_some()
}

/// Refuses an undo to whoever may not: an approval's window is editors', a filing's its filer's.
fn require_undoer(state: &DeskState, session: &Session, d: &DevelopmentView) -> Result<(), Stop> {
    if is_approval_window(d) {
        state.require_editor(session)
    } else {
        require_filer(state, session, d)
    }
}

/// The page saying an undo window has passed (or there was none): what came of it instead.
fn too_late(state: &DeskState, session: &Session, view: &StoryView, d: &DevelopmentView) -> Stop {
    let chrome = state.chrome(session, Here::Other);
    Stop::from(page(
        StatusCode::CONFLICT,
        templates::undo_page(&chrome, view, d),
    ))
}

/// `GET …/undo`: a development in its undo window, the time left and the button that takes it
/// back (the notice after publishing has the button itself; this page serves the card's link).
pub(super) async fn undo_form(
    State(state): State<DeskState>,
    Signed(session): Signed,
    Path((id, dev)): Path<(String, String)>,
) -> Answer {
    let (view, d) = state.development(&session, &id, &dev).await?;
    require_undoer(&state, &session, &d)?;
    let chrome = state.chrome(&session, Here::Other);
    let held = d.undo_window && d.state == DevelopmentStanding::Embargoed;
    let status = if held {
        StatusCode::OK
    } else {
        StatusCode::CONFLICT
    };
    Ok(page(status, templates::undo_page(&chrome, &view, &d)))
}

/// `POST …/undo`: takes back a publication in its undo window, before readers see it. A filing is
/// withdrawn by its filer, and the filing form comes back filled in with it; an approval is
/// undone by an editor, and the development waits for review again.
pub(super) async fn undo(
    State(state): State<DeskState>,
    Signed(session): Signed,
    Path((id, dev)): Path<(String, String)>,
    body: Bytes,
) -> Answer {
    let form = FormData::parse(&body);
    let (view, d) = state.posted_development(&session, &form, &id, &dev).await?;
    require_undoer(&state, &session, &d)?;
    if !(d.undo_window && d.state == DevelopmentStanding::Embargoed) {
        return Err(too_late(&state, &session, &view, &d));
    }
    let approval = is_approval_window(&d);
    let development = DevelopmentId::from(d.id);
    let command = if approval {
        StoryCommand::UndoApproval { development }
    } else {
        StoryCommand::WithdrawDevelopment { development }
    };
    match state
        .execute(StoryId::from(view.id), &session, command)
        .await
    {
        Ok(outcome) => {
            state.catch_up(outcome.position).await;
            Ok(see_other(&if approval {
                format!(
                    "{}?notice=undone",
                    templates::development_path(view.id, d.id, "approve")
                )
            } else {
                format!(
                    "{}/file?from={}&notice=undone",
                    story_desk_path(view.id),
                    d.id
                )
            }))
        }
        // The window passed meanwhile (it was published), or someone else took it back first.
        Err(p) if forms::is_refusal(&p) => {
            let (view, d) = state.now(&session, &id, &dev).await?;
            Err(too_late(&state, &session, &view, &d))
        }
        Err(p) => Ok(state.problem_page(&session, p, &story_desk_path(view.id))),
    }
}
