//! The reporter's side of a development: the filing form (with the draft kept on the server),
//! its preview and confirmation, and withdrawing one's own filing while it waits for review.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::Utc;
use maud::{html, Markup};
use newsroom_command::Outcome;
use newsroom_domain::{DevelopmentId, StoryCommand, StoryEvent, StoryId};
use newsroom_readmodel::{DevelopmentStanding, DevelopmentView, StoryView};
use uuid::Uuid;

use super::forms::{FormData, FormError, Step};
use super::session::Session;
use super::templates::{story_desk_path, Here};
use super::{
    after_action, as_published, check_state, encode, failure, folded, is_changed, is_theirs, lag,
    page, see_other, PENDING,
};
use super::{forms, templates};
use super::{Answer, DeskState, Notice, Signed, SignedForm, Stop};

pub(super) async fn file_form(
    State(state): State<DeskState>,
    Signed(session): Signed,
    Path(id): Path<String>,
    Query(query): Query<Notice>,
) -> Answer {
    let view = state.story(&session, &id).await?;
    let mut form = FormData::default();
    form.set("id", Uuid::now_v7().to_string());
    form.set("occurred_at", state.zone.input_value(Utc::now()));
    form.set("urgency", newsroom_domain::Urgency::default().as_str());
    form.set("evidence", newsroom_domain::Evidence::default().as_str());
    if let Some(target) = query
        .responds_to
        .as_deref()
        .and_then(|t| Uuid::parse_str(t).ok())
        .filter(|t| view.development(*t).is_some())
    {
        form.set("responds_to.development", target.to_string());
    }
    // Revising a rejected filing: the form opens with all of it, and says why it was rejected.
    let revised = query
        .from
        .as_deref()
        .and_then(|d| Uuid::parse_str(d).ok())
        .and_then(|d| view.development(d))
        .filter(|d| d.state == DevelopmentStanding::Rejected);
    let undone = query.notice.as_deref() == Some("undone");
    let notice = revised.map(|d| {
        form = forms::refile_defaults(d, &view, state.zone);
        html! {
            @if undone {
                "Undone: it was not published, and nobody was alerted. Your filing is below as you "
                "sent it; change it and publish it again when it is ready (as a new development)."
            } @else {
                "You are revising a rejected filing: it is filed again as a new development, once you confirm it."
                @if let Some(v) = &d.rejection {
                    " " (templates::who_rejected(v)) ": "
                    q { (v.reason) }
                }
            }
        }
    });
    // Opened afresh: the draft this person saved of it on the server, if any (typed before
    // their session lapsed, or on another device), comes back.
    let mut opened = if revised.is_none() {
        templates::Opened::Fresh
    } else {
        templates::Opened::Sent
    };
    let mut notice = notice;
    if opened == templates::Opened::Fresh && query.responds_to.is_none() {
        let saved = state
            .command
            .tokens
            .draft(&session.principal.token_id, &draft_key(view.id))
            .await
            .map_err(|e| tracing::warn!(error = %e, "cannot read a saved draft"))
            .ok()
            .flatten();
        if let Some((fields, saved_at)) = saved {
            form = FormData::parse(fields.as_bytes());
            opened = templates::Opened::ServerDraft;
            let at = chrono::DateTime::parse_from_rfc3339(&saved_at)
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_else(|_| Utc::now());
            // (Marked: desk.js takes the notice away if the browser's newer draft replaces it.)
            notice = Some(html! {
                span hidden data-server-draft-notice {}
                "Your draft, saved " (templates::when(state.zone, at))
                ", is back in the form below. It is filed only when you publish it."
            });
        }
    }
    let markup = filing_page(
        &state,
        &session,
        &view,
        &form,
        None,
        opened,
        notice.as_ref(),
    )
    .await;
    Ok(page(StatusCode::OK, markup))
}

/// The filing form of `view`'s story filled in with `form` (and `error`), with the actors the
/// desk already knows of.
pub(super) async fn filing_page(
    state: &DeskState,
    session: &Session,
    view: &StoryView,
    form: &FormData,
    error: Option<&FormError>,
    opened: templates::Opened,
    notice: Option<&Markup>,
) -> Markup {
    let actors = state.known_actors(view).await;
    let chrome = state.chrome(session, Here::Other);
    templates::file_page(&chrome, view, form, error, &actors, opened, notice)
}

/// The key of a person's server-side draft of a story's filing form.
fn draft_key(story: Uuid) -> String {
    format!("file:{story}")
}

/// `POST …/draft`: saves what is typed into the story's filing form, for the signed-in person
/// (`desk.js` sends it as they type); 204. What the filing form would park, bounded the same way.
pub(super) async fn save_draft(
    State(state): State<DeskState>,
    Signed(session): Signed,
    Path(id): Path<String>,
    body: Bytes,
) -> Answer {
    if body.len() > newsroom_web::auth::DRAFT_BYTES {
        return Ok(StatusCode::PAYLOAD_TOO_LARGE.into_response());
    }
    let form = FormData::parse(&body);
    let view = state.posted_story(&session, &form, &id).await?;
    state
        .command
        .tokens
        .save_draft(
            &session.principal.token_id,
            &draft_key(view.id),
            &form.typed().encode(),
        )
        .await
        .map_err(failure)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// What the filing form's POST came to.
enum Filing {
    Preview(Vec<StoryEvent>),
    Done(Uuid, Outcome),
}

pub(super) async fn file(
    State(state): State<DeskState>,
    Path(id): Path<String>,
    SignedForm(session, mut form): SignedForm,
) -> Answer {
    let view = state.posted_story(&session, &form, &id).await?;
    let step = Step::of(&form, "file");
    if step == Step::Edit {
        let sent = templates::Opened::Sent;
        let markup = filing_page(&state, &session, &view, &form, None, sent, None).await;
        return Ok(page(StatusCode::OK, markup));
    }
    let story = StoryId::from(view.id);
    let parsed = forms::development_request(&form, state.zone).and_then(|request| {
        let development = request.id;
        request
            .parse()
            .map(|command| (development, state.held(command)))
    });
    let result = match parsed {
        // Only the preview page's own button files; anything else shows what would be filed.
        Ok((development, command)) if step == Step::Confirm => state
            .execute(story, &session, command)
            .await
            .map(|outcome| Filing::Done(development, outcome)),
        Ok((_, command)) => state
            .preview(story, &session, command)
            .await
            .map(Filing::Preview),
        Err(p) => Err(p),
    };
    let development = form.get("id").trim().to_owned();
    match result {
        Ok(Filing::Done(development, outcome)) => {
            // Filed: its draft is done with.
            if let Err(e) = state
                .command
                .tokens
                .discard_draft(&session.principal.token_id, &draft_key(view.id))
                .await
            {
                tracing::warn!(error = %e, "cannot drop a filed draft");
            }
            let caught_up = state.catch_up(outcome.position).await;
            // A retry (desk.js sends again when an answer was lost) records nothing: the
            // `held` notice then says what came of the first, its undo window included.
            let held = outcome
                .events
                .iter()
                .any(|e| matches!(e, StoryEvent::DevelopmentRecorded { hold: Some(_), .. }))
                || (outcome.events.is_empty() && state.undo.is_some());
            Ok(see_other(&format!(
                "{}?notice={}&development={development}{}",
                story_desk_path(view.id),
                if held { "held" } else { "filed" },
                lag(caught_up)
            )))
        }
        // Filed before, with the same content: there is nothing left to confirm.
        Ok(Filing::Preview(events)) if events.is_empty() => Ok(see_other(&format!(
            "{}?notice=filed&development={}",
            story_desk_path(view.id),
            encode(&development)
        ))),
        Ok(Filing::Preview(events)) => {
            let after = folded(&view, events, &session.principal);
            let Some(d) = Uuid::parse_str(&development)
                .ok()
                .and_then(|id| after.development(id))
            else {
                return Ok(failure("a previewed filing is not in the folded story"));
            };
            // Shown as readers will see it once its undo window has passed.
            let d = &as_published(d);
            let subscribers = state.subscribers(view.id).await;
            let chrome = state.chrome(&session, Here::Other);
            Ok(page(
                StatusCode::OK,
                templates::file_preview_page(&chrome, &after, d, &form, subscribers),
            ))
        }
        Err(p) if forms::is_refusal(&p) => {
            let error = FormError::from_problem(&p);
            if p.details().field.as_deref() == Some("id") {
                // Already filed with other content, or the form lost its id: a new filing.
                form.set("id", Uuid::now_v7().to_string());
            }
            let sent = templates::Opened::Sent;
            let markup = filing_page(&state, &session, &view, &form, Some(&error), sent, None);
            Ok(page(p.status(), markup.await))
        }
        Err(p) => Ok(state.problem_page(&session, p, &story_desk_path(view.id))),
    }
}

// ----- withdraw ----------------------------------------------------------------------------------

/// Refuses a withdrawal of what the signed-in user did not file.
pub(super) fn require_filer(
    state: &DeskState,
    session: &Session,
    d: &DevelopmentView,
) -> Result<(), Stop> {
    if is_theirs(session, d) {
        return Ok(());
    }
    Err(Stop::from(page(
        StatusCode::FORBIDDEN,
        templates::message_page(
            Some(&state.chrome(session, Here::Other)),
            "Not yours to withdraw",
            "Only the one who filed a development may withdraw it. Editors reject it instead.",
            ("/desk", "Back to the stories"),
        ),
    )))
}

/// `GET …/withdraw`: what is withdrawn, and the button that does it.
pub(super) async fn withdraw_form(
    State(state): State<DeskState>,
    Signed(session): Signed,
    Path((id, dev)): Path<(String, String)>,
) -> Answer {
    let (view, d) = state.development(&session, &id, &dev).await?;
    require_filer(&state, &session, &d)?;
    check_state(&state, &session, &view, &d, PENDING, "withdrawn")?;
    let chrome = state.chrome(&session, Here::Other);
    Ok(page(
        StatusCode::OK,
        templates::withdraw_page(&chrome, &view, &d, view.position, None),
    ))
}

/// `POST …/withdraw`: takes back one's own filing while it waits for review.
pub(super) async fn withdraw(
    State(state): State<DeskState>,
    Signed(session): Signed,
    Path((id, dev)): Path<(String, String)>,
    body: Bytes,
) -> Answer {
    let form = FormData::parse(&body);
    let (view, d) = state.posted_development(&session, &form, &id, &dev).await?;
    require_filer(&state, &session, &d)?;
    let seen = forms::seen(&form);
    let command = StoryCommand::WithdrawDevelopment {
        development: DevelopmentId::from(d.id),
    };
    match state
        .execute_seen(StoryId::from(view.id), &session, command, d.id, seen)
        .await
    {
        Ok(outcome) => {
            let caught_up = state.catch_up(outcome.position).await;
            Ok(see_other(&after_action(&view, &d, "withdrawn", caught_up)))
        }
        Err(p) if is_changed(&p) => {
            let (view, d) = state.now(&session, &id, &dev).await?;
            check_state(&state, &session, &view, &d, PENDING, "withdrawn")?;
            let changed = html! {
                (templates::changes_since(state.zone, &d, seen))
                p { "Below is the development as it is now: withdraw it, if you still want to." }
            };
            let chrome = state.chrome(&session, Here::Other);
            Ok(page(
                StatusCode::CONFLICT,
                templates::withdraw_page(&chrome, &view, &d, view.position, Some(&changed)),
            ))
        }
        Err(p) => Ok(state.problem_page(&session, p, &story_desk_path(view.id))),
    }
}
