//! Correcting a development (or, while it waits for review, editing the filing) and
//! retracting a published one, each refused when the development changed since its form was
//! shown.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use maud::{html, Markup};
use newsroom_command::http::ReasonRequest;
use newsroom_command::Outcome;
use newsroom_domain::{DevelopmentId, Role, StoryCommand, StoryId};
use newsroom_readmodel::{DevelopmentStanding, DevelopmentView, StoryView};
use newsroom_web::problem::Problem;

use super::forms::{FormData, FormError, Step};
use super::presence::Doing;
use super::session::Session;
use super::templates::{story_desk_path, Chrome, Here};
use super::{after_action, check_state, folded, is_changed, page, see_other};
use super::{forms, templates};
use super::{Answer, DeskState, Signed, SignedForm};

const CORRECTABLE: &[DevelopmentStanding] = &[
    DevelopmentStanding::Published,
    DevelopmentStanding::PendingReview,
];
const RETRACTABLE: &[DevelopmentStanding] = &[DevelopmentStanding::Published];

pub(super) async fn correct_form(
    State(state): State<DeskState>,
    Signed(session): Signed,
    Path((id, dev)): Path<(String, String)>,
) -> Answer {
    let (view, d) = state.development(&session, &id, &dev).await?;
    state.require_editor_or_filer(&session, &d)?;
    check_state(&state, &session, &view, &d, CORRECTABLE, "corrected")?;
    state
        .presence
        .here(d.id, &session.principal, Doing::Editing);
    let mut form = forms::correction_defaults(&d, state.zone);
    forms::keep_shown(&mut form);
    form.set("seen", view.position.to_string());
    let chrome = state.chrome(&session, Here::Other);
    Ok(page(
        StatusCode::OK,
        templates::correct_page(&chrome, &view, &d, &form, None, None),
    ))
}

/// The correction form again, after it was sent over a newer change to its development: the
/// development as it is now, what changed, and the editor's own changes on top (nothing lost,
/// nothing of the other change undone), to be sent again knowingly.
async fn correct_changed(
    state: &DeskState,
    session: &Session,
    id: &str,
    dev: &str,
    form: &FormData,
) -> Answer {
    let since = forms::seen(form);
    let (view, d) = state.now(session, id, dev).await?;
    check_state(state, session, &view, &d, CORRECTABLE, "corrected")?;
    let (mut rebased, both) = forms::rebase_correction(form, &d, state.zone);
    rebased.set("seen", view.position.to_string());
    let published_since = since.is_none_or(|s| d.published_position.is_some_and(|p| p > s))
        && d.state == DevelopmentStanding::Published;
    let changed = html! {
        (templates::changes_since(state.zone, &d, since))
        @if published_since {
            p {
                strong { "It is published now." }
                " Saving your changes would publish a correction: readers see it, with your note, "
                "and everyone who was alerted to it is alerted again."
            }
        }
        p {
            "Below is the development as it is now, with your changes on top."
            @if !both.is_empty() {
                " You both changed "
                (both.iter().map(|c| templates::control_label(c)).collect::<Vec<_>>().join(", "))
                ": yours is in the form, theirs above."
            }
        }
    };
    let chrome = state.chrome(session, Here::Other);
    Ok(page(
        StatusCode::CONFLICT,
        templates::correct_page(&chrome, &view, &d, &rebased, None, Some(&changed)),
    ))
}

/// The answer to an editor's form on a development: back to the story once the views show
/// `done`, or the form again with the refusal beside its field (and what was typed kept).
async fn answer_editor_form(
    state: &DeskState,
    session: &Session,
    view: &StoryView,
    d: &DevelopmentView,
    done: &str,
    result: Result<Outcome, Problem>,
    form_again: impl FnOnce(&Chrome<'_>, &FormError) -> Markup,
) -> Answer {
    match result {
        Ok(outcome) => {
            let caught_up = state.catch_up(outcome.position).await;
            Ok(see_other(&after_action(view, d, done, caught_up)))
        }
        Err(p) if forms::is_refusal(&p) => {
            let error = FormError::from_problem(&p);
            let chrome = state.chrome(session, Here::Other);
            Ok(page(p.status(), form_again(&chrome, &error)))
        }
        Err(p) => Ok(state.problem_page(session, p, &story_desk_path(view.id))),
    }
}

/// What the correction form's note holds when none is typed for an edit of a pending
/// development: the form needs one to parse, and the edit is recorded without it.
const EDIT_NOTE: &str = "Edited before publication.";

/// A change of a development still under review is an edit of the filing (`EditFiling`): no
/// correction to readers, and the note only if one was typed.
fn as_edit_of_filing(command: StoryCommand, typed_note: bool) -> StoryCommand {
    match command {
        StoryCommand::CorrectDevelopment {
            development,
            note,
            changes,
        } => StoryCommand::EditFiling {
            development,
            changes,
            note: typed_note.then_some(note),
        },
        other => other,
    }
}

/// `POST …/correct`. A development still under review is edited at once (nothing is published)
/// and the editor goes on to its approval page; a correction of a published one is shown as a
/// preview first and published only by the preview's button.
pub(super) async fn correct(
    State(state): State<DeskState>,
    Path((id, dev)): Path<(String, String)>,
    SignedForm(session, form): SignedForm,
) -> Answer {
    let answer = correct_sent(&state, &id, &dev, &session, &form).await;
    state.done_with(&dev, &session, answer)
}

async fn correct_sent(
    state: &DeskState,
    id: &str,
    dev: &str,
    session: &Session,
    form: &FormData,
) -> Answer {
    let (view, d) = state.posted_development(session, form, id, dev).await?;
    state.require_editor_or_filer(session, &d)?;
    let pending = d.state == DevelopmentStanding::PendingReview;
    let step = match Step::of(form, "correct") {
        Step::Edit => Step::Edit,
        _ if pending => Step::Confirm,
        other => other,
    };
    if step == Step::Edit {
        let chrome = state.chrome(session, Here::Other);
        return Ok(page(
            StatusCode::OK,
            templates::correct_page(&chrome, &view, &d, form, None, None),
        ));
    }
    let seen = forms::seen(form);
    if seen.is_none_or(|s| d.updated_position > s) {
        // Already changed by the time it is shown: say so before any preview.
        return correct_changed(state, session, id, dev, form).await;
    }
    let mut request_form = form.clone();
    let typed_note = !request_form.get("note").trim().is_empty();
    if pending && !typed_note {
        request_form.set("note", EDIT_NOTE);
    }
    let command = forms::correction_request(&request_form, &d, state.zone)
        .and_then(|request| request.parse(DevelopmentId::from(d.id)))
        .map(|command| {
            if pending {
                as_edit_of_filing(command, typed_note)
            } else {
                command
            }
        });
    let story = StoryId::from(view.id);
    if step == Step::Preview {
        let previewed = match command {
            Ok(command) => state.preview(story, session, command).await,
            Err(p) => Err(p),
        };
        return match previewed {
            Ok(events) => {
                let after = folded(&view, events, &session.principal);
                let shown = after.development(d.id).unwrap_or(&d);
                let chrome = state.chrome(session, Here::Other);
                Ok(page(
                    StatusCode::OK,
                    templates::correct_preview_page(&chrome, &after, shown, form),
                ))
            }
            Err(p) if forms::is_refusal(&p) => {
                let error = FormError::from_problem(&p);
                let chrome = state.chrome(session, Here::Other);
                Ok(page(
                    p.status(),
                    templates::correct_page(&chrome, &view, &d, form, Some(&error), None),
                ))
            }
            Err(p) => Ok(state.problem_page(session, p, &story_desk_path(view.id))),
        };
    }
    let result = match command {
        Ok(command) => {
            state
                .execute_seen(story, session, command, d.id, seen)
                .await
        }
        Err(p) => Err(p),
    };
    if matches!(&result, Err(p) if is_changed(p)) {
        return correct_changed(state, session, id, dev, form).await;
    }
    if pending {
        if let Ok(outcome) = &result {
            let caught_up = state.catch_up(outcome.position).await;
            // An editor goes on to approve it; its reporter back to the story.
            return Ok(see_other(
                &if session.principal.role.at_least(Role::Editor) {
                    format!(
                        "{}?notice=edited",
                        templates::development_path(view.id, d.id, "approve")
                    )
                } else {
                    after_action(&view, &d, "edited", caught_up)
                },
            ));
        }
    }
    answer_editor_form(
        state,
        session,
        &view,
        &d,
        "corrected",
        result,
        |chrome, error| templates::correct_page(chrome, &view, &d, form, Some(error), None),
    )
    .await
}

pub(super) async fn retract_form(
    State(state): State<DeskState>,
    Signed(session): Signed,
    Path((id, dev)): Path<(String, String)>,
) -> Answer {
    state.require_editor(&session)?;
    let (view, d) = state.development(&session, &id, &dev).await?;
    check_state(&state, &session, &view, &d, RETRACTABLE, "retracted")?;
    state
        .presence
        .here(d.id, &session.principal, Doing::Retracting);
    let mut form = FormData::default();
    form.set("seen", view.position.to_string());
    let chrome = state.chrome(&session, Here::Other);
    Ok(page(
        StatusCode::OK,
        templates::retract_page(&chrome, &view, &d, &form, None, None),
    ))
}

pub(super) async fn retract(
    State(state): State<DeskState>,
    Path((id, dev)): Path<(String, String)>,
    SignedForm(session, form): SignedForm,
) -> Answer {
    let answer = retract_sent(&state, &id, &dev, &session, &form).await;
    state.done_with(&dev, &session, answer)
}

async fn retract_sent(
    state: &DeskState,
    id: &str,
    dev: &str,
    session: &Session,
    form: &FormData,
) -> Answer {
    state.require_editor(session)?;
    let (view, d) = state.posted_development(session, form, id, dev).await?;
    let result = match (ReasonRequest {
        reason: form.get("reason").to_owned(),
    })
    .parse()
    {
        Ok(reason) => {
            let command = StoryCommand::RetractDevelopment {
                development: DevelopmentId::from(d.id),
                reason,
            };
            state
                .execute_seen(
                    StoryId::from(view.id),
                    session,
                    command,
                    d.id,
                    forms::seen(form),
                )
                .await
        }
        Err(p) => Err(p),
    };
    if matches!(&result, Err(p) if is_changed(p)) {
        let since = forms::seen(form);
        let (view, d) = state.now(session, id, dev).await?;
        check_state(state, session, &view, &d, RETRACTABLE, "retracted")?;
        let mut again = form.clone();
        again.set("seen", view.position.to_string());
        let changed = html! {
            (templates::changes_since(state.zone, &d, since))
            p { "Below is the development as it is now. Your reason is kept: check it and retract again." }
        };
        let chrome = state.chrome(session, Here::Other);
        return Ok(page(
            StatusCode::CONFLICT,
            templates::retract_page(&chrome, &view, &d, &again, None, Some(&changed)),
        ));
    }
    answer_editor_form(
        state,
        session,
        &view,
        &d,
        "retracted",
        result,
        |chrome, error| templates::retract_page(chrome, &view, &d, form, Some(error), None),
    )
    .await
}
