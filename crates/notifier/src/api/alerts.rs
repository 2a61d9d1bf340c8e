//! A subscriber's alerts: the paged list and the server-sent event stream.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use newsroom_log::args;
use newsroom_web::auth::token_digest;
use newsroom_web::problem::{Problem, ProblemDetails};
use newsroom_web::{int_param, query_params, ApiPath};
use serde::Serialize;
use serde_json::Value;

use crate::error::NotifyError;
use crate::streams::{Opener, Refused};

use super::subscribers::find_subscriber;
use super::{ApiResult, Caller, SubscriberApi, TOKEN_PREFIX};

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct AlertView {
    seq: i64,
    id: String,
    #[serde(rename = "type")]
    kind: String,
    payload: Value,
}

/// One page of `id`'s immediate alerts: `sql` selects `seq, id, type, payload` of `alerts` with
/// `?1` the subscriber, `?2` the bound of `seq`, `?3` the page's size and `?4` the queue's
/// horizon (alerts above it may still be joined by earlier ones, so they are left for the next
/// read: paging never skips one).
async fn alert_page(
    state: &SubscriberApi,
    sql: &'static str,
    id: String,
    bound: i64,
    limit: i64,
) -> ApiResult<Vec<AlertView>> {
    Ok(state
        .store
        .read(move |c| {
            let horizon = crate::store::alert_horizon(c)?;
            c.statement(sql)?
                .query_map(args![id, bound, limit, horizon], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get::<String>(3)?))
                })?
                .map(|row| {
                    let (seq, id, kind, payload) = row?;
                    Ok(AlertView {
                        seq,
                        id,
                        kind,
                        payload: serde_json::from_str(&payload)?,
                    })
                })
                .collect::<Result<_, NotifyError>>()
        })
        .await?)
}

async fn alerts_after(
    state: &SubscriberApi,
    id: String,
    after: i64,
    limit: i64,
) -> ApiResult<Vec<AlertView>> {
    alert_page(
        state,
        "SELECT seq, id, type, payload FROM alerts
         WHERE subscriber_id = ?1 AND mode = 'immediate' AND seq > ?2 AND seq <= ?4
         ORDER BY seq LIMIT ?3",
        id,
        after,
        limit,
    )
    .await
}

/// Alerts the list answers with when `limit` is not given.
const ALERT_PAGE: i64 = 50;
/// The most alerts one page of the list holds.
const MAX_ALERT_PAGE: i64 = 200;

/// The newest `limit` immediate alerts of `id` older than `before` (all if `None`), newest first.
async fn alerts_before(
    state: &SubscriberApi,
    id: String,
    before: Option<i64>,
    limit: i64,
) -> ApiResult<Vec<AlertView>> {
    alert_page(
        state,
        "SELECT seq, id, type, payload FROM alerts
         WHERE subscriber_id = ?1 AND mode = 'immediate' AND seq < ?2 AND seq <= ?4
         ORDER BY seq DESC LIMIT ?3",
        id,
        before.unwrap_or(i64::MAX),
        limit,
    )
    .await
}

/// One page of a subscriber's alerts, never more: by default the newest first, and
/// `before=<seq>` pages back through older ones (the `Link: rel="next"` header names the next
/// page while a page comes back full); `after=<seq>` reads forward instead, oldest first, from
/// just after an alert already seen.
#[utoipa::path(get, path = "/v1/subscribers/{id}/alerts", tag = "subscribers", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "the subscriber's id"),
        ("after" = Option<i64>, Query, minimum = 0, description = "read forward, oldest first, after this sequence (not with `before`)"),
        ("before" = Option<i64>, Query, minimum = 1, description = "page back from this sequence"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 200, description = "1–200, default 50")),
    responses((status = 200, body = [AlertView], headers(("Link" = String, description = "the next page, RFC 8288"))), (status = 403, body = ProblemDetails, description = "a staff token below admin"), (status = 404, body = ProblemDetails, description = "no such subscriber (or not the caller's)")))]
pub(super) async fn list_alerts(
    State(state): State<SubscriberApi>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Response> {
    caller.may_manage(&id)?;
    // An admin asking for a subscriber that does not exist: not an empty list.
    find_subscriber(&state, &id).await?;
    let params = query_params(query.as_deref(), &["after", "before", "limit"])?;
    let limit = int_param(&params, "limit", ALERT_PAGE, 1, MAX_ALERT_PAGE)?;
    if params.contains_key("after") && params.contains_key("before") {
        return Err(Problem::bad_request(
            Some("before"),
            "page back with `before` or forward with `after`, not both",
        )
        .into());
    }
    if params.contains_key("after") {
        let after = int_param(&params, "after", 0, 0, i64::MAX)?;
        return Ok(Json(alerts_after(&state, id, after, limit).await?).into_response());
    }
    let before = params
        .contains_key("before")
        .then(|| int_param(&params, "before", 0, 1, i64::MAX))
        .transpose()?;
    let page = alerts_before(&state, id.clone(), before, limit).await?;
    let next = (page.len() as i64 == limit)
        .then(|| page.last().map(|a| a.seq))
        .flatten()
        .and_then(|oldest| {
            header::HeaderValue::from_str(&format!(
                "</v1/subscribers/{id}/alerts?before={oldest}&limit={limit}>; rel=\"next\""
            ))
            .ok()
        });
    let mut response = Json(page).into_response();
    if let Some(link) = next {
        response.headers_mut().insert(header::LINK, link);
    }
    Ok(response)
}

/// Who is opening a stream (the caller was authenticated already): the subscriber's token by
/// its digest, or a staff token by its id, so that the stream ends when that token may no
/// longer read it.
async fn opener(state: &SubscriberApi, headers: &HeaderMap) -> ApiResult<Opener> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .map(|(_, t)| t.trim())
        .ok_or_else(Problem::unauthorized)?;
    if token.starts_with(TOKEN_PREFIX) {
        return Ok(Opener::Subscriber(token_digest(token)));
    }
    match state.tokens.authenticate(token).await? {
        Some(p) => Ok(Opener::Staff(p.token_id)),
        None => Err(Problem::unauthorized().into()),
    }
}

/// Server-sent events of a subscriber's alerts; `id:` is the alert's queue sequence and
/// `Last-Event-ID` resumes strictly after it. Served by the hub ([`crate::streams`]): what was
/// missed is read once, then each alert comes as it is queued, without a read of its own.
#[utoipa::path(get, path = "/v1/subscribers/{id}/alerts/stream", tag = "subscribers", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "the subscriber's id"), ("Last-Event-ID" = Option<i64>, Header, description = "resume strictly after this alert sequence")),
    responses((status = 200, content_type = "text/event-stream", body = String, description = "Server-sent events, one per alert: `event:` the alert's type (`story.<development kind>`, `story.correction`, `story.retraction`), `id:` its sequence, `data:` the alert as a webhook receives it. A stream that fell behind ends with a `resume` event (reconnect with `Last-Event-ID`); one whose token was revoked, or whose subscriber is gone, with `closed`. A browser, whose `EventSource` cannot send this header, signs up on the `/alerts` page and listens to `/alerts/stream` there, authenticated by that page's cookie: no token in a URL"),
        (status = 403, body = ProblemDetails, description = "a staff token below admin"), (status = 404, body = ProblemDetails, description = "no such subscriber (or not the caller's)"),
        (status = 429, body = ProblemDetails, description = "too many streams from this address", headers(("Retry-After" = i64))),
        (status = 503, body = ProblemDetails, description = "too many streams in all", headers(("Retry-After" = i64)))))]
pub(super) async fn alert_stream(
    State(state): State<SubscriberApi>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    client: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    caller.may_manage(&id)?;
    // An admin asking for a subscriber that does not exist: not an empty list.
    find_subscriber(&state, &id).await?;
    let last = match headers.get("last-event-id") {
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .ok_or_else(|| {
                Problem::bad_request(Some("Last-Event-ID"), "must be an alert sequence")
            })?,
        None => {
            let sid = id.clone();
            state
                .store
                .read(move |c| {
                    // The stream sends immediate alerts only: the newest of those (one seek
                    // of `alerts_listed`).
                    Ok(c.query_row(
                        "SELECT COALESCE(MAX(seq), 0) FROM alerts
                         WHERE subscriber_id = ?1 AND mode = 'immediate'",
                        args![sid],
                        |r| r.get(0),
                    )?)
                })
                .await?
        }
    };
    let address = client.map(|Extension(ConnectInfo(a))| a.ip());
    let opener = opener(&state, &headers).await?;
    let stream = match state.hub.open(id, last, address, opener).await? {
        Ok(stream) => stream,
        Err(Refused::PerAddress) => return Err(Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too-many-streams",
            "Too many alert streams",
            "this address has as many alert streams open as it may; close one or try again later",
        )
        .retry_after(5)
        .into()),
        Err(Refused::Total) => {
            return Err(Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "streams-full",
                "No room for another alert stream",
                "the server has as many alert streams open as it may; try again later",
            )
            .retry_after(5)
            .into())
        }
    };
    Ok((
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        stream.into_body(),
    )
        .into_response())
}
