//! Subscribers themselves: sign-up, the list (admins), one subscriber, deleting one with
//! everything it has, and suspending or resuming its alerts.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::Utc;
use newsroom_domain::{FieldError, SourceName};
use newsroom_log::args;
use newsroom_log::sql::{OptionalRow, Row};
use newsroom_web::auth::{generate_token, token_digest};
use newsroom_web::problem::{Problem, ProblemDetails};
use newsroom_web::{ApiPath, JsonBody};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::retention::forget_subscriber;
use crate::store::{record_change, ts};

use super::{ApiResult, Caller, SubscriberApi, TOKEN_PREFIX};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct SignUp {
    name: String,
    #[serde(default)]
    email: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct SignedUp {
    id: String,
    /// Manages this subscriber only. Shown once.
    token: String,
}

pub(super) fn parse_email(field: &'static str, raw: &str) -> Result<String, FieldError> {
    crate::email::parse_address(field, raw)
}

#[utoipa::path(post, path = "/v1/subscribers", tag = "subscribers", request_body = SignUp,
    responses((status = 201, body = SignedUp, description = "signed up; the token is shown only here")))]
pub(super) async fn sign_up(
    State(state): State<SubscriberApi>,
    JsonBody(body): JsonBody<SignUp>,
) -> ApiResult<(StatusCode, Json<SignedUp>)> {
    let name = SourceName::parse("name", &body.name)?.to_string();
    let email = body
        .email
        .as_deref()
        .map(|e| parse_email("email", e))
        .transpose()?;
    let id = Uuid::now_v7().to_string();
    let token = generate_token(TOKEN_PREFIX);
    let hash = token_digest(&token);
    let unsubscribe = generate_token("");
    let row_id = id.clone();
    state
        .store
        .write(move |tx| {
            tx.execute(
                "INSERT INTO subscribers (id, name, email, token_hash, unsubscribe_token, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                args![row_id, name, email, &hash[..], unsubscribe, ts(Utc::now())],
            )?;
            Ok(())
        })
        .await?;
    Ok((StatusCode::CREATED, Json(SignedUp { id, token })))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct SubscriberView {
    id: String,
    name: String,
    email: Option<String>,
    status: String,
    created_at: String,
}

fn subscriber_row(r: &Row) -> Result<SubscriberView, newsroom_log::DbError> {
    Ok(SubscriberView {
        id: r.get(0)?,
        name: r.get(1)?,
        email: r.get(2)?,
        status: r.get(3)?,
        created_at: r.get(4)?,
    })
}

const SUBSCRIBER: &str = "SELECT id, name, email, status, created_at FROM subscribers";

/// Every subscriber (admins).
#[utoipa::path(get, path = "/v1/subscribers", tag = "subscribers", security(("bearer" = [])),
    responses((status = 200, body = [SubscriberView]), (status = 403, body = ProblemDetails, description = "a staff token below admin")))]
pub(super) async fn list_subscribers(
    State(state): State<SubscriberApi>,
    caller: Caller,
) -> ApiResult<Json<Vec<SubscriberView>>> {
    caller.require_admin()?;
    let list = state
        .store
        .read(|c| {
            Ok(c.statement(&format!("{SUBSCRIBER} ORDER BY created_at"))?
                .query_map(args![], subscriber_row)?
                .collect::<Result<_, _>>()?)
        })
        .await?;
    Ok(Json(list))
}

pub(super) async fn find_subscriber(state: &SubscriberApi, id: &str) -> ApiResult<SubscriberView> {
    let id = id.to_owned();
    state
        .store
        .read(move |c| {
            Ok(c.statement(&format!("{SUBSCRIBER} WHERE id = ?1"))?
                .query_row(args![id], subscriber_row)
                .optional()?)
        })
        .await?
        .ok_or_else(|| Problem::not_found("no such subscriber").into())
}

/// A subscriber (itself, or admins).
#[utoipa::path(get, path = "/v1/subscribers/{id}", tag = "subscribers", security(("bearer" = [])), params(("id" = uuid::Uuid, Path, description = "the subscriber's id")),
    responses((status = 200, body = SubscriberView), (status = 403, body = ProblemDetails, description = "a staff token below admin"), (status = 404, body = ProblemDetails, description = "no such subscriber (or not the caller's)")))]
pub(super) async fn show_subscriber(
    State(state): State<SubscriberApi>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<SubscriberView>> {
    caller.may_manage(&id)?;
    Ok(Json(find_subscriber(&state, &id).await?))
}

/// Deletes a subscriber with everything it has (itself, or admins).
#[utoipa::path(delete, path = "/v1/subscribers/{id}", tag = "subscribers", security(("bearer" = [])), params(("id" = uuid::Uuid, Path, description = "the subscriber's id")),
    responses((status = 204, description = "deleted"), (status = 403, body = ProblemDetails, description = "a staff token below admin"), (status = 404, body = ProblemDetails, description = "no such subscriber (or not the caller's)")))]
pub(super) async fn delete_subscriber(
    State(state): State<SubscriberApi>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    caller.may_manage(&id)?;
    // Forgotten means forgotten: everything of theirs goes, in one transaction.
    let subscriber = id.clone();
    let existed = state
        .store
        .write(move |tx| forget_subscriber(tx, &subscriber))
        .await?;
    if !existed {
        return Err(Problem::not_found("no such subscriber").into());
    }
    // Their open streams end now (other processes' end at their next check).
    state.hub.close_subscriber(&id);
    Ok(StatusCode::NO_CONTENT)
}

async fn set_status(
    state: &SubscriberApi,
    id: String,
    status: &'static str,
) -> ApiResult<StatusCode> {
    let changed = state
        .store
        .write(move |tx| {
            let n = tx.execute(
                "UPDATE subscribers SET status = ?2 WHERE id = ?1",
                args![id, status],
            )?;
            record_change(tx, None, Some(&id))?;
            Ok(n)
        })
        .await?;
    if changed == 0 {
        return Err(Problem::not_found("no such subscriber").into());
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Suspends a subscriber's alerts (itself, or admins).
#[utoipa::path(post, path = "/v1/subscribers/{id}/suspension", tag = "subscribers", security(("bearer" = [])), params(("id" = uuid::Uuid, Path, description = "the subscriber's id")),
    responses((status = 204, description = "suspended"), (status = 403, body = ProblemDetails, description = "a staff token below admin"), (status = 404, body = ProblemDetails, description = "no such subscriber (or not the caller's)")))]
pub(super) async fn suspend(
    State(state): State<SubscriberApi>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    caller.require_admin()?;
    set_status(&state, id, "suspended").await
}

/// Resumes a suspended subscriber's alerts (itself, or admins).
#[utoipa::path(delete, path = "/v1/subscribers/{id}/suspension", tag = "subscribers", security(("bearer" = [])), params(("id" = uuid::Uuid, Path, description = "the subscriber's id")),
    responses((status = 204, description = "resumed"), (status = 403, body = ProblemDetails, description = "a staff token below admin"), (status = 404, body = ProblemDetails, description = "no such subscriber (or not the caller's)")))]
pub(super) async fn unsuspend(
    State(state): State<SubscriberApi>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    caller.require_admin()?;
    set_status(&state, id, "active").await
}
