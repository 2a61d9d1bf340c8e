//! The links a subscriber opens from a mail, whose random tokens are themselves the
//! credential: the confirmation of an email address and the unsubscribe link in every alert.
//! A GET or HEAD (a mail scanner, a link preview) changes nothing and shows a page whose
//! button POSTs; a program asking for JSON gets a description instead.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use newsroom_log::args;
use newsroom_log::sql::OptionalRow;
use newsroom_web::auth::token_digest;
use newsroom_web::page;
use newsroom_web::problem::{Problem, ProblemDetails};
use newsroom_web::ApiPath;

use crate::queue::confirmation_path;
use crate::store::{record_change, ts};

use super::{ApiResult, SubscriberApi, CONFIRMATION_VALID};

/// The form a link's page POSTs (documented only: the server reads no field of it).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct LinkForm {
    #[schema(rename = "List-Unsubscribe", example = "One-Click")]
    list_unsubscribe: Option<String>,
}

/// Mails the link that confirms `address`, after the commit that made its endpoint, without
/// making the request wait for the relay. It names no subscriber and carries no credential but
/// the single-use link.
pub(super) fn send_confirmation(
    state: &SubscriberApi,
    subscriber: &str,
    address: String,
    token: String,
) {
    let Some(mailer) = state.mailer.clone() else {
        tracing::warn!(%subscriber, "no SMTP relay: an email endpoint stays unconfirmed");
        return;
    };
    let link = state.links.confirm_email(&token);
    let days = CONFIRMATION_VALID.num_days();
    let text = format!(
        "Someone asked newsroom to send news alerts to this address.\n\n\
         To confirm, open this link and press the button on the page it shows:\n\n{link}\n\n\
         The link works once, for {days} days. If it was not you, ignore this mail: nothing \
         else is sent to this address unless it is confirmed.\n"
    );
    let subscriber = subscriber.to_owned();
    tokio::spawn(async move {
        if let Err(e) = mailer
            .send(&address, "[newsroom] confirm alerts to this address", &text)
            .await
        {
            tracing::warn!(%subscriber, error = %e, "the confirmation mail was not sent");
        }
    });
}

/// The endpoint a confirmation link (by its digest) confirms, with its address, while it
/// waits for it and the link has not expired.
async fn confirmation(state: &SubscriberApi, token: &str) -> ApiResult<Option<(String, String)>> {
    let digest = token_digest(token);
    let now = ts(Utc::now());
    Ok(state
        .store
        .read(move |c| {
            Ok(c.statement(
                "SELECT e.id, e.target FROM email_confirmations c
                 JOIN endpoints e ON e.id = c.endpoint_id
                 WHERE c.token_hash = ?1 AND c.expires_at > ?2 AND e.status = 'unconfirmed'",
            )?
            .query_row(args![&digest[..], now], |r| {
                Ok((r.get::<String>(0)?, r.get::<String>(1)?))
            })
            .optional()?)
        })
        .await?)
}

/// The link of a confirmation mail, opened (GET or HEAD — what mail scanners do): changes
/// nothing, and shows a button that POSTs to the same link.
/// The link of a confirmation mail, opened: changes nothing; a page (or, asked for JSON, a
/// description) whose button POSTs to the same link.
#[utoipa::path(get, path = "/v1/email-confirmations/{token}", tag = "links",
    params(("token" = String, Path, description = "the link's single-use token")),
    responses((status = 200, description = "the page", content((String = "text/html"), (Object = "application/json"))), (status = 404, description = "the link is not (or no longer) valid", content((ProblemDetails = "application/problem+json"), (String = "text/html")))))]
pub(super) async fn confirmation_page(
    State(state): State<SubscriberApi>,
    ApiPath(token): ApiPath<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let Some((_, address)) = confirmation(&state, &token).await? else {
        return Ok(invalid_link(
            &headers,
            "this confirmation link is not valid: it was used, it expired, or its endpoint is gone",
        ));
    };
    let path = confirmation_path(&token);
    if wants_json(&headers) {
        return Ok(Json(serde_json::json!({
            "confirmed": false,
            "detail": "POST to this link to confirm the address",
            "confirm": {"method": "POST", "href": path},
        }))
        .into_response());
    }
    Ok(html_page(
        StatusCode::OK,
        "Confirm alerts",
        maud::html! {
            h1.page-title { "Send alerts to " (address) "?" }
            p { "Someone asked newsroom to send news alerts to this address. If it was you, confirm it; if not, close this page and nothing will be sent." }
            form method="post" action=(path) {
                button type="submit" { "Confirm this address" }
            }
        },
    ))
}

/// The link of a confirmation mail, POSTed (the page's button): the endpoint starts getting
/// alerts, and the link stops working.
/// The link of a confirmation mail, POSTed: the email endpoint starts getting alerts.
#[utoipa::path(post, path = "/v1/email-confirmations/{token}", tag = "links",
    params(("token" = String, Path, description = "the link's single-use token")),
    request_body(content = LinkForm, content_type = "application/x-www-form-urlencoded", description = "ignored: the link is the credential"),
    responses((status = 200, description = "confirmed", content((String = "text/html"), (Object = "application/json"))), (status = 404, description = "the link is not (or no longer) valid", content((ProblemDetails = "application/problem+json"), (String = "text/html")))))]
pub(super) async fn confirm_email(
    State(state): State<SubscriberApi>,
    ApiPath(token): ApiPath<String>,
    headers: HeaderMap,
    _body: axum::body::Bytes,
) -> ApiResult<Response> {
    let digest = token_digest(&token);
    let now = ts(Utc::now());
    let confirmed = state
        .store
        .write(move |tx| {
            let endpoint: Option<String> = tx
                .query_row(
                    "SELECT endpoint_id FROM email_confirmations
                     WHERE token_hash = ?1 AND expires_at > ?2",
                    args![&digest[..], now],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(endpoint) = endpoint else {
                return Ok(None);
            };
            let n = tx.execute(
                "UPDATE endpoints SET status = 'active' WHERE id = ?1 AND status = 'unconfirmed'",
                args![&endpoint],
            )?;
            tx.execute(
                "DELETE FROM email_confirmations WHERE endpoint_id = ?1",
                args![&endpoint],
            )?;
            Ok((n == 1).then_some(endpoint))
        })
        .await?;
    let Some(endpoint) = confirmed else {
        return Ok(invalid_link(
            &headers,
            "this confirmation link is not valid: it was used, it expired, or its endpoint is gone",
        ));
    };
    if wants_html(&headers) {
        return Ok(html_page(
            StatusCode::OK,
            "Address confirmed",
            maud::html! {
                h1.page-title { "Address confirmed" }
                p { "Alerts will be sent to this address from now on. Every alert has a link to stop them." }
            },
        ));
    }
    Ok(Json(serde_json::json!({"confirmed": true, "endpoint": endpoint})).into_response())
}

/// Whether the caller is a browser (asks for HTML), rather than a program.
fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"))
}

/// Whether the caller asked for JSON and not for HTML.
fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("json") && !a.contains("text/html"))
}

/// A small page of the subscriber side (the unsubscribe and confirmation links open in a
/// browser): the reader pages' layout and their Content-Security-Policy. The URL holds a
/// credential, so no `Referer` leaves it and nothing caches it.
fn html_page(status: StatusCode, title: &str, content: maud::Markup) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, page::CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-store"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        page::reader_page(title, &[], content).into_string(),
    )
        .into_response()
}

/// A link that is not (or no longer) valid: a page for a browser, a problem for a program.
fn invalid_link(headers: &HeaderMap, detail: &'static str) -> Response {
    if wants_html(headers) {
        return html_page(
            StatusCode::NOT_FOUND,
            "Link not valid",
            maud::html! {
                h1.page-title { "This link is not valid" }
                p { (detail) }
            },
        );
    }
    Problem::not_found(detail).into_response()
}

async fn subscriber_by_unsubscribe_token(
    state: &SubscriberApi,
    token: String,
) -> ApiResult<Option<String>> {
    Ok(state
        .store
        .read(move |c| {
            Ok(
                c.statement("SELECT id FROM subscribers WHERE unsubscribe_token = ?1")?
                    .query_row(args![&token], |r| r.get::<String>(0))
                    .optional()?,
            )
        })
        .await?)
}

/// The link in every alert, opened (GET or HEAD — what mail scanners and link previews do):
/// changes nothing, and shows a button that POSTs to the same link.
#[utoipa::path(get, path = "/v1/unsubscribe/{token}", tag = "links",
    params(("token" = String, Path, description = "the link's token")),
    responses((status = 200, description = "the page (or, asked for JSON, how to unsubscribe)", content((String = "text/html"), (Object = "application/json"))), (status = 404, description = "the link is not (or no longer) valid", content((ProblemDetails = "application/problem+json"), (String = "text/html")))))]
pub(super) async fn unsubscribe_page(
    State(state): State<SubscriberApi>,
    ApiPath(token): ApiPath<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let path = format!("/v1/unsubscribe/{token}");
    if subscriber_by_unsubscribe_token(&state, token)
        .await?
        .is_none()
    {
        return Ok(invalid_link(&headers, "this unsubscribe link is not valid"));
    }
    if wants_json(&headers) {
        return Ok(Json(serde_json::json!({
            "unsubscribed": false,
            "detail": "POST to this link to end every subscription",
            "unsubscribe": {"method": "POST", "href": path},
        }))
        .into_response());
    }
    Ok(html_page(
        StatusCode::OK,
        "Stop alerts",
        maud::html! {
            h1.page-title { "Stop all alerts?" }
            p { "You will get no more alerts from newsroom for anything you follow." }
            form method="post" action=(path) {
                input type="hidden" name="List-Unsubscribe" value="One-Click";
                button type="submit" { "Stop all alerts" }
            }
        },
    ))
}

/// The link in every alert, POSTed (the page's button, or a mail client's one-click
/// unsubscribe, RFC 8058, whose body `List-Unsubscribe=One-Click` is accepted like any other):
/// ends every subscription of its subscriber.
#[utoipa::path(post, path = "/v1/unsubscribe/{token}", tag = "links",
    params(("token" = String, Path, description = "the link's token")),
    request_body(content = LinkForm, content_type = "application/x-www-form-urlencoded", description = "ignored: the link is the credential (a mail client's one-click unsubscribe, RFC 8058, sends `List-Unsubscribe=One-Click`)"),
    responses((status = 200, description = "every subscription ended", content((Object = "application/json"), (String = "text/html"))), (status = 404, description = "the link is not (or no longer) valid", content((ProblemDetails = "application/problem+json"), (String = "text/html")))))]
pub(super) async fn unsubscribe_link(
    State(state): State<SubscriberApi>,
    ApiPath(token): ApiPath<String>,
    headers: HeaderMap,
    // Read, so that the connection stays usable; what it says does not matter.
    _body: axum::body::Bytes,
) -> ApiResult<Response> {
    let removed = state
        .store
        .write(move |tx| {
            let id: Option<String> = tx
                .query_row(
                    "SELECT id FROM subscribers WHERE unsubscribe_token = ?1",
                    args![&token],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(id) = id else { return Ok(None) };
            let n = tx.execute(
                "DELETE FROM subscriptions WHERE subscriber_id = ?1",
                args![&id],
            )?;
            record_change(tx, None, Some(&id))?;
            Ok(Some(n))
        })
        .await?;
    let Some(removed) = removed else {
        return Ok(invalid_link(&headers, "this unsubscribe link is not valid"));
    };
    if wants_html(&headers) {
        return Ok(html_page(
            StatusCode::OK,
            "Alerts stopped",
            maud::html! {
                h1.page-title { "Alerts stopped" }
                p { "You will get no more alerts. Follow a story again to get them back." }
            },
        ));
    }
    Ok(Json(serde_json::json!({
        "unsubscribed": true,
        "subscriptions_removed": removed,
    }))
    .into_response())
}
