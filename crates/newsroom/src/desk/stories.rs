//! The stories: the desk's home page (the list, and the form that opens a story), one story's
//! desk page with the notice an action left, and closing and reopening a story.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use maud::{html, Markup};
use newsroom_domain::{Role, StoryCommand, StoryId};
use newsroom_projection::desk as desk_views;
use newsroom_projection::pages::story_path;
use newsroom_readmodel::{DevelopmentStanding, DevelopmentView, StoryView};

use super::forms::{FormData, FormError};
use super::session::Session;
use super::templates::{story_desk_path, Chrome, Here};
use super::{failure, lag, page, see_other};
use super::{forms, queries, templates};
use super::{Answer, DeskState, Notice, Signed, SignedForm};

pub(super) async fn home_with(
    state: &DeskState,
    session: &Session,
    status: StatusCode,
    form: &FormData,
    error: Option<&FormError>,
) -> Answer {
    let stories = desk_views::stories(&state.views, session.principal.name.clone())
        .await
        .map_err(failure)?;
    let pending = if session.principal.role.at_least(Role::Editor) {
        Some(
            desk_views::pending_count(&state.views)
                .await
                .map_err(failure)?,
        )
    } else {
        None
    };
    let rejected = desk_views::rejected_filings(&state.views, session.principal.name.clone())
        .await
        .map_err(failure)?;
    let chrome = state.chrome(session, Here::Stories);
    Ok(page(
        status,
        templates::home_page(&chrome, &stories, pending, &rejected, form, error),
    ))
}

pub(super) async fn home(State(state): State<DeskState>, Signed(session): Signed) -> Answer {
    home_with(
        &state,
        &session,
        StatusCode::OK,
        &forms::new_story_defaults(),
        None,
    )
    .await
}

pub(super) async fn open_story(
    State(state): State<DeskState>,
    SignedForm(session, mut form): SignedForm,
) -> Answer {
    state.check_csrf(&session, &form)?;
    let id = StoryId::new();
    let request = forms::open_story_request(&form);
    let slug = request.slug.clone();
    let result = match request.parse(id) {
        Ok(command) => state.execute(id, &session, command).await,
        Err(p) => Err(p),
    };
    match result {
        Ok(outcome) => {
            let caught_up = state.catch_up(outcome.position).await;
            Ok(see_other(&format!(
                "{}?notice=opened{}",
                story_desk_path(id.as_uuid()),
                lag(caught_up)
            )))
        }
        Err(p) if forms::is_refusal(&p) => {
            if form.get("slug").trim().is_empty() {
                // Show the address made from the headline, so it can be changed.
                form.set("slug", slug);
            }
            let error = FormError::from_problem(&p);
            home_with(&state, &session, p.status(), &form, Some(&error)).await
        }
        Err(p) => Ok(state.problem_page(&session, p, "/desk")),
    }
}

fn filed_notice(view: &StoryView, d: Option<&DevelopmentView>, what: &str) -> Markup {
    let reader = |d: &DevelopmentView| format!("{}#dev-{}", story_path(&view.slug), d.id);
    html! {
        @match d {
            None => {
                (what) ". The desk has not caught up yet: reload in a moment to see it."
            }
            Some(d) => {
                (what) ": " a href=(format!("#dev-{}", d.id)) { (d.headline) } ". "
                @if d.state == DevelopmentStanding::PendingReview {
                    "It waits for an editor's review; readers see it once it is approved."
                } @else if d.is_visible() {
                    a href=(reader(d)) { "See it on the reader page" }
                }
            }
        }
    }
}

fn story_notice(chrome: &Chrome<'_>, query: &Notice, view: &StoryView) -> Option<Markup> {
    let d = query.development().and_then(|id| view.development(id));
    let lagging = query.lag.is_some();
    let text = match query.notice.as_deref()? {
        "opened" => html! {
            "Story opened. "
            a href=(format!("{}/file", story_desk_path(view.id))) { "File its first development" }
        },
        // The marker tells desk.js the draft of this filing is done with.
        "filed" => html! {
            (filed_notice(view, d, "Filed"))
            @if let Some(id) = query.development() { span hidden data-filed=(id) {} }
        },
        "approved" => filed_notice(view, d, "Approved and published"),
        // Held for its undo window: the time left and the button that takes it back; once the
        // window has passed, what came of it.
        // (Its draft is done with: undone, the filing form comes back filled in from it.)
        "held" => html! {
            @match d {
                Some(d) if d.undo_window && d.state == DevelopmentStanding::Embargoed => {
                    (templates::undo_notice(chrome, view, d))
                }
                Some(d) if d.is_visible() => (filed_notice(view, Some(d), "Published")),
                _ => (filed_notice(view, d, "Filed")),
            }
            @if let Some(id) = query.development() { span hidden data-filed=(id) {} }
        },
        "approved-embargoed" => filed_notice(view, d, "Approved; held until its embargo is lifted"),
        "corrected" => filed_notice(view, d, "Correction published"),
        "edited" => filed_notice(view, d, "Your edit is saved"),
        "embargo-lifted" => filed_notice(view, d, "Embargo lifted"),
        "embargo-moved" => filed_notice(view, d, "Embargo moved"),
        "withdrawn" => html! {
            "Withdrawn: it will not be published. It stays on the desk, marked as withdrawn."
        },
        "retracted" => filed_notice(
            view,
            d,
            "Retracted (readers see it struck through, with your reason)",
        ),
        "closed" => html! { "The story is closed: it takes no new developments." },
        "reopened" => html! { "The story is open again." },
        "related" => html! { "The stories are related: both pages show it." },
        "unlinked" => html! { "The stories are no longer related." },
        _ => return None,
    };
    Some(html! {
        (text)
        @if lagging && d.is_some() { " (The desk may still be a moment behind.)" }
    })
}

pub(super) async fn story(
    State(state): State<DeskState>,
    Signed(session): Signed,
    Path(id): Path<String>,
    Query(query): Query<Notice>,
) -> Answer {
    let view = state.story(&session, &id).await?;
    let related = state.views.relations(view.id).await.map_err(failure)?;
    let subscribers = queries::subscribers(&state.notifier, view.id)
        .await
        .map_err(|e| tracing::warn!(error = %e, "cannot count the story's subscribers"))
        .ok();
    let chrome = state.chrome(&session, Here::Other);
    let notice = story_notice(&chrome, &query, &view);
    Ok(page(
        StatusCode::OK,
        templates::story_page(
            &chrome,
            &view,
            &related,
            subscribers,
            notice.as_ref(),
            query.development(),
        ),
    ))
}

async fn story_status(
    state: DeskState,
    session: Session,
    id: String,
    body: Bytes,
    command: StoryCommand,
    notice: &str,
) -> Answer {
    state.require_editor(&session)?;
    let form = FormData::parse(&body);
    let view = state.posted_story(&session, &form, &id).await?;
    let back = story_desk_path(view.id);
    match state
        .execute(StoryId::from(view.id), &session, command)
        .await
    {
        Ok(outcome) => {
            let caught_up = state.catch_up(outcome.position).await;
            Ok(see_other(&format!(
                "{back}?notice={notice}{}",
                lag(caught_up)
            )))
        }
        Err(p) => Ok(state.problem_page(&session, p, &back)),
    }
}

pub(super) async fn close_story(
    State(state): State<DeskState>,
    Signed(session): Signed,
    Path(id): Path<String>,
    body: Bytes,
) -> Answer {
    story_status(state, session, id, body, StoryCommand::CloseStory, "closed").await
}

pub(super) async fn reopen_story(
    State(state): State<DeskState>,
    Signed(session): Signed,
    Path(id): Path<String>,
    body: Bytes,
) -> Answer {
    story_status(
        state,
        session,
        id,
        body,
        StoryCommand::ReopenStory,
        "reopened",
    )
    .await
}
