//! Deliveries: where each alert went and how that went, and redriving a failed one.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::Utc;
use newsroom_log::args;
use newsroom_web::problem::{Problem, ProblemDetails};
use newsroom_web::{int_param, query_params, ApiPath};
use serde::Serialize;

use crate::dispatch::log_change;
use crate::store::ts;

use super::subscribers::find_subscriber;
use super::{ApiResult, Caller, SubscriberApi};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct DeliveryView {
    id: i64,
    alert_id: String,
    endpoint_id: String,
    status: String,
    attempts: u32,
    next_attempt_at: String,
    last_status: Option<u16>,
    last_error: Option<String>,
    updated_at: String,
}

/// A subscriber's deliveries, newest first.
#[utoipa::path(get, path = "/v1/subscribers/{id}/deliveries", tag = "subscribers", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "the subscriber's id"),
        ("status" = Option<String>, Query, pattern = "^(pending|delivered|failed)$", description = "only deliveries in this state"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "1–1000, default 100")),
    responses((status = 200, body = [DeliveryView]), (status = 403, body = ProblemDetails, description = "a staff token below admin"), (status = 404, body = ProblemDetails, description = "no such subscriber (or not the caller's)")))]
pub(super) async fn list_deliveries(
    State(state): State<SubscriberApi>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<Vec<DeliveryView>>> {
    caller.may_manage(&id)?;
    // An admin asking for a subscriber that does not exist: not an empty list.
    find_subscriber(&state, &id).await?;
    let params = query_params(query.as_deref(), &["status", "limit"])?;
    let status = params.get("status").cloned();
    if let Some(s) = &status {
        if !matches!(s.as_str(), "pending" | "delivered" | "failed") {
            return Err(Problem::bad_request(
                Some("status"),
                "`status` is pending, delivered or failed",
            )
            .into());
        }
    }
    let limit = int_param(&params, "limit", 100, 1, 1000)?;
    let list = state
        .store
        .read(move |c| {
            Ok(c.statement(
                "SELECT d.seq, d.alert_id, d.endpoint_id, d.status, d.attempts, d.next_attempt_at,
                        d.last_status, d.last_error, d.updated_at
                 FROM deliveries d JOIN endpoints e ON e.id = d.endpoint_id
                 WHERE e.subscriber_id = ?1 AND (?2 IS NULL OR d.status = ?2)
                 ORDER BY d.seq DESC LIMIT ?3",
            )?
            .query_map(args![id, status, limit], |r| {
                Ok(DeliveryView {
                    id: r.get(0)?,
                    alert_id: r.get(1)?,
                    endpoint_id: r.get(2)?,
                    status: r.get(3)?,
                    attempts: r.get(4)?,
                    next_attempt_at: r.get(5)?,
                    last_status: r.get(6)?,
                    last_error: r.get(7)?,
                    updated_at: r.get(8)?,
                })
            })?
            .collect::<Result<_, _>>()?)
        })
        .await?;
    Ok(Json(list))
}

/// Puts a failed delivery back in the queue, with a fresh set of attempts.
#[utoipa::path(post, path = "/v1/subscribers/{id}/deliveries/{delivery}/redrive", tag = "subscribers", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "the subscriber's id"), ("delivery" = i64, Path, description = "the delivery's id")),
    responses((status = 202, description = "queued again"), (status = 403, body = ProblemDetails, description = "a staff token below admin"), (status = 404, body = ProblemDetails, description = "no such failed delivery")))]
pub(super) async fn redrive(
    State(state): State<SubscriberApi>,
    caller: Caller,
    ApiPath((id, delivery)): ApiPath<(String, i64)>,
) -> ApiResult<StatusCode> {
    caller.may_manage(&id)?;
    let n = state
        .store
        .write(move |tx| {
            let now = Utc::now();
            let n = tx.execute(
                "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = ?3,
                    leased_until = NULL, updated_at = ?3
                 WHERE seq = ?1 AND status = 'failed' AND endpoint_id IN
                    (SELECT id FROM endpoints WHERE subscriber_id = ?2 AND status = 'active')",
                args![delivery, id, ts(now)],
            )?;
            if n > 0 {
                log_change(tx, delivery, "pending", now, None, Some("redriven"))?;
            }
            Ok(n)
        })
        .await?;
    if n == 0 {
        return Err(Problem::not_found(
            "no failed delivery with that id on an active endpoint of this subscriber",
        )
        .into());
    }
    Ok(StatusCode::ACCEPTED)
}
