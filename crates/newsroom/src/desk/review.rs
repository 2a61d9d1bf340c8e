//! The editors' review: the queue of developments waiting for it, the approval page (a preview
//! as readers will see it) and approving, and rejecting with a reason.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use maud::{html, Markup};
use newsroom_command::http::ReasonRequest;
use newsroom_domain::{DevelopmentId, StoryCommand, StoryEvent, StoryId};
use newsroom_projection::desk as desk_views;
use newsroom_readmodel::{DevelopmentView, StoryView};
use uuid::Uuid;

use super::forms::{FormData, FormError, Step};
use super::presence::Doing;
use super::session::Session;
use super::templates::{story_desk_path, FailedRejection, Here};
use super::zone::Zone;
use super::{action_ids, check_state, failure, folded, is_changed, lag, page, see_other, PENDING};
use super::{forms, templates};
use super::{Answer, DeskState, Notice, Signed, SignedForm};

pub(super) async fn review_with(
    state: &DeskState,
    session: &Session,
    status: StatusCode,
    notice: Option<Markup>,
    error: Option<&FormError>,
    failed: Option<&FailedRejection<'_>>,
) -> Answer {
    let queue = desk_views::review_queue(&state.views)
        .await
        .map_err(failure)?;
    let chrome = state.chrome(session, Here::Review);
    Ok(page(
        status,
        templates::review_page(&chrome, &queue, notice.as_ref(), error, failed),
    ))
}

pub(super) async fn review(
    State(state): State<DeskState>,
    Signed(session): Signed,
    Query(query): Query<Notice>,
) -> Answer {
    state.require_editor(&session)?;
    let story = query.story.as_deref().and_then(|s| Uuid::parse_str(s).ok());
    let notice = match (query.notice.as_deref(), story) {
        (Some(notice @ ("approved" | "approved-embargoed")), Some(story)) => Some(html! {
            @if notice == "approved" { "Approved and published. " }
            @else { "Approved; held until its embargo is lifted, then published. " }
            a href=(format!("{}?notice={notice}&development={}#dev-{}", story_desk_path(story),
                query.development.as_deref().unwrap_or(""), query.development.as_deref().unwrap_or(""))) {
                "See it on the story's desk page"
            }
        }),
        (Some("rejected"), Some(story)) => Some(html! {
            "Rejected. Your reason is on "
            a href=(format!("{}#dev-{}", story_desk_path(story), query.development.as_deref().unwrap_or(""))) {
                "the story's desk page"
            }
            "; readers never see it."
        }),
        _ => None,
    };
    review_with(&state, &session, StatusCode::OK, notice, None, None).await
}

/// `GET …/approve`: the development as readers will see it once approved, and the button that
/// approves it.
pub(super) async fn approve_form(
    State(state): State<DeskState>,
    Signed(session): Signed,
    Path((id, dev)): Path<(String, String)>,
    Query(query): Query<Notice>,
) -> Answer {
    state.require_editor(&session)?;
    let (view, d) = state.development(&session, &id, &dev).await?;
    check_state(&state, &session, &view, &d, PENDING, "approved")?;
    state
        .presence
        .here(d.id, &session.principal, Doing::Approving);
    approve_page_with(&state, &session, &view, &d, StatusCode::OK, &query, None).await
}

/// What the approval page says when the development changed since the editor looked at it.
fn approve_changed(zone: Zone, d: &DevelopmentView, since: Option<i64>) -> Markup {
    html! {
        (templates::changes_since(zone, d, since))
        p { "Below is the development as it is now: check it again before you approve it." }
    }
}

/// The approval page of `d`, with a notice or the reason the last approval was refused.
async fn approve_page_with(
    state: &DeskState,
    session: &Session,
    view: &StoryView,
    d: &DevelopmentView,
    status: StatusCode,
    query: &Notice,
    changed: Option<&Markup>,
) -> Answer {
    // (Previewed without the undo window: as readers will see it once it has passed.)
    let command = StoryCommand::ApproveDevelopment {
        development: DevelopmentId::from(d.id),
        hold: None,
    };
    let events = match state
        .preview(StoryId::from(view.id), session, command)
        .await
    {
        Ok(events) => events,
        Err(p) => return Ok(state.problem_page(session, p, "/desk/review")),
    };
    let after = folded(view, events, &session.principal);
    let shown = after.development(d.id).unwrap_or(d);
    let notice = match query.notice.as_deref() {
        Some("edited") => Some(html! {
            "Your edit is saved. It still waits for review: readers see it, as below, once you approve it."
        }),
        Some("undone") => Some(html! {
            "Approval undone: it was not published, and nobody was alerted. It waits for review "
            "again, as below."
        }),
        _ => None,
    };
    let subscribers = state.subscribers(view.id).await;
    let chrome = state.chrome(session, Here::Review);
    Ok(page(
        status,
        templates::approve_page(
            &chrome,
            &after,
            d,
            shown,
            view.position,
            subscribers,
            notice.as_ref(),
            changed,
        ),
    ))
}

/// `POST …/approve`: approves, if sent by the approval page's button; anything else goes to
/// that page.
pub(super) async fn approve(
    State(state): State<DeskState>,
    Signed(session): Signed,
    Path((id, dev)): Path<(String, String)>,
    body: Bytes,
) -> Answer {
    state.require_editor(&session)?;
    let form = FormData::parse(&body);
    state.check_csrf(&session, &form)?;
    let (story, development) = action_ids(&state, &session, &id, &dev)?;
    if Step::of(&form, "approve") != Step::Confirm {
        return Ok(see_other(&templates::development_path(
            story,
            development,
            "approve",
        )));
    }
    let command = StoryCommand::ApproveDevelopment {
        development: DevelopmentId::from(development),
        hold: state.undo,
    };
    let seen = forms::seen(&form);
    match state
        .execute_seen(StoryId::from(story), &session, command, development, seen)
        .await
    {
        Ok(outcome) => {
            state.presence.gone(development, &session.principal);
            let caught_up = state.catch_up(outcome.position).await;
            // Approved under an embargo: held until it is lifted; in its undo window: the
            // story's page, with the time left and the button that undoes it.
            let hold = outcome.events.iter().find_map(|e| match e {
                StoryEvent::DevelopmentApprovedUnderEmbargo { hold, .. } => Some(hold.is_some()),
                _ => None,
            });
            Ok(see_other(&match hold {
                Some(true) => format!(
                    "{}?notice=held&development={development}{}",
                    story_desk_path(story),
                    lag(caught_up)
                ),
                Some(false) => format!(
                    "/desk/review?notice=approved-embargoed&story={story}&development={development}{}",
                    lag(caught_up)
                ),
                None => format!(
                    "/desk/review?notice=approved&story={story}&development={development}{}",
                    lag(caught_up)
                ),
            }))
        }
        Err(p) if is_changed(&p) => {
            let (view, d) = state.now(&session, &id, &dev).await?;
            check_state(&state, &session, &view, &d, PENDING, "approved")?;
            let changed = approve_changed(state.zone, &d, seen);
            approve_page_with(
                &state,
                &session,
                &view,
                &d,
                StatusCode::CONFLICT,
                &Notice::default(),
                Some(&changed),
            )
            .await
        }
        Err(p) if forms::is_refusal(&p) => {
            let error = FormError::from_problem(&p);
            review_with(&state, &session, p.status(), None, Some(&error), None).await
        }
        Err(p) => Ok(state.problem_page(&session, p, "/desk/review")),
    }
}

pub(super) async fn reject(
    State(state): State<DeskState>,
    Path((id, dev)): Path<(String, String)>,
    SignedForm(session, form): SignedForm,
) -> Answer {
    state.require_editor(&session)?;
    state.check_csrf(&session, &form)?;
    let (story, development) = action_ids(&state, &session, &id, &dev)?;
    let reason = form.get("reason");
    let result = match (ReasonRequest {
        reason: reason.to_owned(),
    })
    .parse()
    {
        Ok(reason) => {
            let command = StoryCommand::RejectDevelopment {
                development: DevelopmentId::from(development),
                reason,
            };
            state.execute(StoryId::from(story), &session, command).await
        }
        Err(p) => Err(p),
    };
    match result {
        Ok(outcome) => {
            let caught_up = state.catch_up(outcome.position).await;
            Ok(see_other(&format!(
                "/desk/review?notice=rejected&story={story}&development={development}{}",
                lag(caught_up)
            )))
        }
        Err(p) if forms::is_refusal(&p) => {
            let error = FormError::from_problem(&p);
            if error.field.as_deref() == Some("reason") {
                let failed = FailedRejection {
                    development,
                    reason,
                    error: &error,
                };
                review_with(&state, &session, p.status(), None, None, Some(&failed)).await
            } else {
                review_with(&state, &session, p.status(), None, Some(&error), None).await
            }
        }
        Err(p) => Ok(state.problem_page(&session, p, "/desk/review")),
    }
}
