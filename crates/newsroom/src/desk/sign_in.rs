//! Signing in and out (by token, or by sign-in name and password), setting one's sign-in name
//! and password, and a form that was posted after its sign-in ended, shown again as typed.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use newsroom_web::PasswordError;
use serde::Deserialize;

use super::filing::filing_page;
use super::forms::{FormData, FormError};
use super::review::review_with;
use super::session::Lookup;
use super::stories::home_with;
use super::templates::{FailedRejection, Here};
use super::{action_ids, csrf_refused, failure, page, see_other};
use super::{session, templates};
use super::{Answer, DeskState, Signed, TypedForm};

#[derive(Debug, Default, Deserialize)]
pub(super) struct SignInQuery {
    next: Option<String>,
    signed_out: Option<String>,
    expired: Option<String>,
    kept: Option<String>,
}

pub(super) async fn sign_in_form(
    State(state): State<DeskState>,
    headers: HeaderMap,
    Query(query): Query<SignInQuery>,
) -> Answer {
    let next = safe_next(query.next.as_deref().unwrap_or("/desk"));
    if let Lookup::Valid(_) = session::lookup(&state.command.tokens, &headers)
        .await
        .map_err(failure)?
    {
        return Ok(see_other(&next));
    }
    // Keep the value of an earlier visit, so a second tab does not spoil the first one's form.
    let login = session::cookie(&headers, session::LOGIN_COOKIE)
        .filter(|v| {
            v.len() == 22
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map_or_else(session::nonce, str::to_owned);
    let notice = if query.signed_out.is_some() {
        Some("You are signed out.")
    } else if query.kept.is_some() {
        Some(
            "Your sign-in had ended when you sent a form, so nothing was recorded. What you \
             typed is kept for an hour: sign in again to get back to it.",
        )
    } else if query.expired.is_some() {
        Some("Your sign-in has ended: the token is no longer valid. Sign in again.")
    } else {
        None
    };
    let mut r = page(
        StatusCode::OK,
        templates::sign_in_page(&login, &next, None, "", notice),
    );
    r.headers_mut()
        .append(header::SET_COOKIE, session::login_cookie(&headers, &login));
    Ok(r)
}

pub(super) async fn sign_in(
    State(state): State<DeskState>,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    let form = FormData::parse(&body);
    let expected = session::cookie(&headers, session::LOGIN_COOKIE).unwrap_or("");
    if expected.is_empty() || !session::same_secret(form.get("csrf"), expected) {
        return Ok(csrf_refused(None));
    }
    let next = safe_next(form.get("next"));
    let tokens = &state.command.tokens;
    // The name-and-password form, or the token form.
    let (login, password, token) = (
        form.get("login").trim(),
        form.get("password"),
        form.get("token").trim(),
    );
    let by_password = !login.is_empty() || !password.is_empty();
    let found = if by_password {
        tokens.sign_in_with_password(login, password).await
    } else {
        tokens.authenticate(token).await
    };
    match found {
        Ok(Some(principal)) => {
            let secret = tokens
                .open_session(&principal.token_id)
                .await
                .map_err(failure)?;
            tracing::info!(token_id = %principal.token_id, role = %principal.role, by_password, "signed in at the desk");
            let mut r = see_other(&next);
            let h = r.headers_mut();
            h.append(
                header::SET_COOKIE,
                session::session_cookie(&headers, &secret),
            );
            h.append(header::SET_COOKIE, session::clear_login_cookie(&headers));
            Ok(r)
        }
        Ok(None) => {
            tracing::info!(by_password, "desk sign-in refused");
            let error = if by_password {
                FormError::new(
                    Some("password"),
                    "That sign-in name and password do not match, or the account's token was revoked.",
                )
            } else {
                FormError::new(
                    Some("token"),
                    "That token is not known, or it was revoked. Check it and try again.",
                )
            };
            let shown_login = if by_password { login } else { "" };
            Ok(page(
                StatusCode::UNAUTHORIZED,
                templates::sign_in_page(expected, &next, Some(&error), shown_login, None),
            ))
        }
        Err(e) => Ok(failure(e)),
    }
}

pub(super) async fn sign_out(
    State(state): State<DeskState>,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    let form = FormData::parse(&body);
    if let Ok(Lookup::Valid(session)) = session::lookup(&state.command.tokens, &headers).await {
        state.check_csrf(&session, &form)?;
        if let Some(secret) = session::secret(&headers) {
            state
                .command
                .tokens
                .close_session(secret)
                .await
                .map_err(failure)?;
        }
        tracing::info!(token_id = %session.principal.token_id, "signed out of the desk");
    }
    let mut r = see_other("/desk/sign-in?signed_out=1");
    r.headers_mut()
        .append(header::SET_COOKIE, session::clear_session_cookie(&headers));
    Ok(r)
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct PasswordQuery {
    saved: Option<String>,
}

/// `/desk/password`: the signed-in holder's sign-in name and password.
pub(super) async fn password_form(
    State(state): State<DeskState>,
    Signed(session): Signed,
    Query(query): Query<PasswordQuery>,
) -> Answer {
    let login = state
        .command
        .tokens
        .login_of(&session.principal.token_id)
        .await
        .map_err(failure)?;
    let notice = query
        .saved
        .is_some()
        .then_some("Saved: sign in with this name and password from now on.");
    Ok(page(
        StatusCode::OK,
        templates::password_page(
            &state.chrome(&session, Here::Other),
            login.as_deref(),
            None,
            notice,
        ),
    ))
}

pub(super) async fn set_password(
    State(state): State<DeskState>,
    Signed(session): Signed,
    body: Bytes,
) -> Answer {
    let form = FormData::parse(&body);
    state.check_csrf(&session, &form)?;
    let (login, password) = (form.get("login"), form.get("password"));
    let refused = |field: &str, message: String, status: StatusCode| {
        page(
            status,
            templates::password_page(
                &state.chrome(&session, Here::Other),
                Some(login.trim()).filter(|l| !l.is_empty()),
                Some(&FormError::new(Some(field), message)),
                None,
            ),
        )
    };
    if password != form.get("repeat") {
        return Ok(refused(
            "repeat",
            "The two passwords differ: type the same one twice.".into(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ));
    }
    let set = state
        .command
        .tokens
        .set_password(&session.principal.token_id, login, password)
        .await;
    match set {
        Ok(_) => {
            tracing::info!(token_id = %session.principal.token_id, "desk password set");
            Ok(see_other("/desk/password?saved=1"))
        }
        Err(e @ PasswordError::BadLogin) => Ok(refused(
            "login",
            e.to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
        )),
        Err(e @ PasswordError::LoginTaken) => {
            Ok(refused("login", e.to_string(), StatusCode::CONFLICT))
        }
        Err(e @ PasswordError::BadPassword) => Ok(refused(
            "password",
            e.to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
        )),
        Err(PasswordError::Store(e)) => Err(failure(e).into()),
        Err(e) => Err(failure(e).into()),
    }
}

/// Where to go after signing in: a desk page, never another site.
fn safe_next(raw: &str) -> String {
    let ok = (raw == "/desk" || raw.starts_with("/desk/") || raw.starts_with("/desk?"))
        && !raw.contains(['\\', '\r', '\n'])
        && !raw.contains("//");
    if ok {
        raw.to_owned()
    } else {
        "/desk".to_owned()
    }
}

/// What a form brought back from the parked ones says above it.
const KEPT: &str = "Your sign-in had ended when you sent this, so nothing was recorded. \
    Everything you typed is below: check it and send it again.";

// ----- forms kept over a lapsed session --------------------------------------------------------

/// `/desk/parked/{key}`: a form posted after its session lapsed, shown again as it was typed.
pub(super) async fn parked_form(
    State(state): State<DeskState>,
    Signed(session): Signed,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Answer {
    let found = state
        .parked
        .find(&key, &headers)
        .and_then(|p| TypedForm::of(&p.path).map(|which| (which, p.form)));
    let Some((which, form)) = found else {
        return Ok(page(
            StatusCode::NOT_FOUND,
            templates::message_page(
                Some(&state.chrome(&session, Here::Other)),
                "That form is no longer kept",
                "A form sent after a sign-in ended is kept for an hour, for the browser that sent it. \
                 This one is gone; nothing of it was recorded.",
                ("/desk", "Back to the desk"),
            ),
        ));
    };
    let kept = FormError::new(None, KEPT);
    let chrome = state.chrome(&session, Here::Other);
    match which {
        TypedForm::OpenStory => {
            home_with(&state, &session, StatusCode::OK, &form, Some(&kept)).await
        }
        TypedForm::File(id) => {
            let view = state.story(&session, &id).await?;
            let sent = templates::Opened::Sent;
            let markup = filing_page(&state, &session, &view, &form, Some(&kept), sent, None);
            Ok(page(StatusCode::OK, markup.await))
        }
        TypedForm::Correct(id, dev) => {
            let (view, d) = state.development(&session, &id, &dev).await?;
            state.require_editor_or_filer(&session, &d)?;
            Ok(page(
                StatusCode::OK,
                templates::correct_page(&chrome, &view, &d, &form, Some(&kept), None),
            ))
        }
        TypedForm::Retract(id, dev) => {
            state.require_editor(&session)?;
            let (view, d) = state.development(&session, &id, &dev).await?;
            Ok(page(
                StatusCode::OK,
                templates::retract_page(&chrome, &view, &d, &form, Some(&kept), None),
            ))
        }
        TypedForm::Reject(id, dev) => {
            state.require_editor(&session)?;
            let (_, development) = action_ids(&state, &session, &id, &dev)?;
            let failed = FailedRejection {
                development,
                reason: form.get("reason"),
                error: &kept,
            };
            review_with(&state, &session, StatusCode::OK, None, None, Some(&failed)).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_in_only_leads_back_into_the_desk() {
        assert_eq!(safe_next("/desk/review"), "/desk/review");
        assert_eq!(safe_next("/desk?x=1"), "/desk?x=1");
        assert_eq!(safe_next("/desk"), "/desk");
        for bad in [
            "https://evil.example/desk",
            "//evil.example",
            "/desk//evil",
            "/desktop",
            "/v1/tokens",
            "/desk/\\evil",
            "",
        ] {
            assert_eq!(safe_next(bad), "/desk", "{bad}");
        }
    }
}
