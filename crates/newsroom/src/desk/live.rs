//! What `desk.js` exchanges with the server while a page is open: the notices of what others
//! did to the signed-in person's filings, and the marks of who has which form open.

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use serde::Deserialize;
use uuid::Uuid;

use super::failure;
use super::presence::Doing;
use super::{notices, templates};
use super::{Answer, DeskState, Signed, SignedForm};

#[derive(Debug, Default, Deserialize)]
pub(super) struct NoticesQuery {
    after: Option<i64>,
}

/// `/desk/notices?after=<position>`: what others did to the signed-in person's filings since
/// `after`, as list items for `desk.js` (`{"position", "html"}`); without `after`, only where the
/// views stand, to start from.
pub(super) async fn notices_since(
    State(state): State<DeskState>,
    Signed(session): Signed,
    Query(query): Query<NoticesQuery>,
) -> Answer {
    let (found, position) = match query.after {
        None => (Vec::new(), state.views.position().await.map_err(failure)?),
        Some(after) => notices::since(
            &state.command.store,
            &state.views,
            &session.principal,
            after.max(0),
        )
        .await
        .map_err(failure)?,
    };
    let html = templates::notice_items(state.zone, &found).into_string();
    Ok((
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(serde_json::json!({ "position": position, "html": html })),
    )
        .into_response())
}

/// `desk.js` on an open approval, correction or retraction form: still here (`doing`: the
/// form's action), or gone (`left`). Answers 204; refuses a form without its CSRF value.
pub(super) async fn presence_mark(
    State(state): State<DeskState>,
    Path((_, dev)): Path<(String, String)>,
    SignedForm(session, form): SignedForm,
) -> Answer {
    state.check_csrf(&session, &form)?;
    let Ok(dev) = Uuid::parse_str(&dev) else {
        return Ok(StatusCode::NOT_FOUND.into_response());
    };
    if !form.get("left").is_empty() {
        state.presence.gone(dev, &session.principal);
    } else if let Some(doing) = Doing::parse(form.get("doing")) {
        if doing != Doing::Editing {
            state.require_editor(&session)?;
        }
        state.presence.here(dev, &session.principal, doing);
    } else {
        return Ok(StatusCode::UNPROCESSABLE_ENTITY.into_response());
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
