//! Where a subscriber's alerts go: webhooks (with their signing secrets and rotation), email
//! addresses (confirmed by a mailed link first), NATS subjects and browsers' push
//! subscriptions, with the VAPID key browsers subscribe with.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::Utc;
use newsroom_domain::FieldError;
use newsroom_log::args;
use newsroom_log::sql::{OptionalRow, Row};
use newsroom_web::auth::{generate_token, token_digest};
use newsroom_web::problem::{Problem, ProblemDetails};
use newsroom_web::{ApiPath, JsonBody};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::signing::WebhookSecret;
use crate::store::ts;
use crate::subjects::AlertSubjects;
use crate::webpush::{PushKeys, ENDPOINT_LIMIT};

use super::links::send_confirmation;
use super::subscribers::{find_subscriber, parse_email};
use super::{ApiResult, Caller, Refusal, SubscriberApi, CONFIRMATION_VALID};

/// How long a rotated-out webhook secret keeps signing.
const ROTATION_GRACE: chrono::Duration = chrono::Duration::hours(24);

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub(super) enum NewEndpoint {
    Webhook {
        url: String,
    },
    Email {
        address: String,
    },
    Nats {
        subject: String,
    },
    /// A browser's push subscription: what `PushSubscription.toJSON()` gives.
    WebPush {
        subscription: PushSubscription,
    },
}

/// A browser's `PushSubscription`, as its `toJSON()` gives it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct PushSubscription {
    /// The push service's URL for this browser (https, on the public internet).
    #[schema(example = "https://push.example.net/send/abc123")]
    endpoint: String,
    /// When the browser lets the subscription lapse (milliseconds since 1970), if it says.
    #[serde(default, rename = "expirationTime")]
    #[schema(rename = "expirationTime")]
    #[allow(dead_code)]
    expiration_time: Option<f64>,
    keys: PushSubscriptionKeys,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct PushSubscriptionKeys {
    /// The browser's P-256 public key: the uncompressed point, base64url.
    #[schema(
        example = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"
    )]
    p256dh: String,
    /// The subscription's 16-byte authentication secret, base64url.
    #[schema(example = "BTBZMqHH6r4Tts7J_aSIgg")]
    auth: String,
}

/// The installation's VAPID public key.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct PushKey {
    /// The uncompressed P-256 point, base64url without padding: a browser's
    /// `applicationServerKey` when it subscribes.
    public_key: String,
}

/// The key browsers subscribe with (`pushManager.subscribe({applicationServerKey})`) before
/// registering a `web_push` endpoint: every push is signed with its private half (VAPID).
#[utoipa::path(get, path = "/v1/push/key", tag = "subscribers",
    responses((status = 200, body = PushKey)))]
pub(super) async fn push_key(State(state): State<SubscriberApi>) -> Json<PushKey> {
    Json(PushKey {
        public_key: state.vapid.public_key().to_owned(),
    })
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct EndpointView {
    id: String,
    kind: String,
    target: String,
    status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    disabled_reason: Option<String>,
    /// A NATS endpoint's whole subject: the subscriber's namespace, then `target`.
    #[serde(skip_serializing_if = "Option::is_none")]
    subject: Option<String>,
    /// Only in the answer that creates or rotates it.
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
}

const ENDPOINT: &str = "SELECT id, kind, target, status, disabled_reason FROM endpoints";

/// An endpoint row as the API shows it (never with its secret).
fn endpoint_row(r: &Row) -> Result<EndpointView, newsroom_log::DbError> {
    Ok(EndpointView {
        id: r.get(0)?,
        kind: r.get(1)?,
        target: r.get(2)?,
        status: r.get(3)?,
        disabled_reason: r.get(4)?,
        subject: None,
        secret: None,
    })
}

impl EndpointView {
    /// With the subject a NATS endpoint of `subscriber` publishes on.
    fn placed(mut self, subjects: &AlertSubjects, subscriber: &str) -> Self {
        if self.kind == "nats" {
            self.subject = subjects.subject(subscriber, &self.target);
        }
        self
    }
}

fn parse_subject(raw: &str) -> Result<String, FieldError> {
    crate::subjects::parse_registered(raw).ok_or_else(|| {
        FieldError::new(
            "subject",
            "must be a NATS subject of dot-separated tokens (letters, digits, - and _), no wildcards, at most 200 bytes",
        )
    })
}

/// Adds where alerts go: a webhook (Standard Webhooks; its secret is in this answer only), an
/// email address (confirmed by a mailed link first) or a NATS subject.
#[utoipa::path(post, path = "/v1/subscribers/{id}/endpoints", tag = "subscribers", security(("bearer" = [])), params(("id" = uuid::Uuid, Path, description = "the subscriber's id")),
    request_body = NewEndpoint,
    responses((status = 201, body = EndpointView), (status = 403, body = ProblemDetails, description = "a staff token below admin"), (status = 404, body = ProblemDetails, description = "no such subscriber (or not the caller's)"),
        (status = 409, body = ProblemDetails, description = "the same target again, or as many endpoints as allowed"),
        (status = 429, body = ProblemDetails, description = "too many confirmation mails to this address, or too many writes", headers(("Retry-After" = i64)))))]
pub(super) async fn add_endpoint(
    State(state): State<SubscriberApi>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    JsonBody(body): JsonBody<NewEndpoint>,
) -> ApiResult<(StatusCode, Json<EndpointView>)> {
    caller.may_manage(&id)?;
    find_subscriber(&state, &id).await?;
    let (kind, target, secret) = match body {
        NewEndpoint::Webhook { url } => {
            let url = state.guard.check_url(&url).await.map_err(|refusal| {
                // The whole reason stays here; the subscriber gets the public one.
                tracing::warn!(subscriber = %id, %refusal, "webhook URL refused");
                FieldError::new("url", refusal.public_detail())
            })?;
            (
                "webhook",
                url.to_string(),
                Some(WebhookSecret::generate().to_string()),
            )
        }
        NewEndpoint::Email { address } => ("email", parse_email("address", &address)?, None),
        NewEndpoint::Nats { subject } => ("nats", parse_subject(&subject)?, None),
        NewEndpoint::WebPush { subscription } => {
            // The keys first: they need no look-up.
            let keys = PushKeys::parse(&subscription.keys.p256dh, &subscription.keys.auth)?;
            if subscription.endpoint.len() > ENDPOINT_LIMIT {
                return Err(FieldError::new(
                    "subscription.endpoint",
                    format!("must be at most {ENDPOINT_LIMIT} bytes"),
                )
                .into());
            }
            let url = state
                .guard
                .check_url(&subscription.endpoint)
                .await
                .map_err(|refusal| {
                    tracing::warn!(subscriber = %id, %refusal, "push endpoint refused");
                    FieldError::new("subscription.endpoint", refusal.public_detail())
                })?;
            ("web_push", url.to_string(), Some(keys.to_stored()))
        }
    };
    let email = kind == "email";
    // Counted only where a mail would go out.
    if email && state.mailer.is_some() {
        if let Err(wait) = state.confirmations.check(&target) {
            return Err(Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                "Too many confirmation mails",
                "this address was sent confirmation mails recently; try again later",
            )
            .with_field("address")
            .retry_after(wait)
            .into());
        }
    }
    // An email address gets nothing but the mail that confirms it until it is confirmed.
    let confirmation = email.then(|| generate_token(""));
    let endpoint = Uuid::now_v7().to_string();
    let view = EndpointView {
        id: endpoint.clone(),
        kind: kind.to_owned(),
        target: target.clone(),
        status: if email { "unconfirmed" } else { "active" }.into(),
        disabled_reason: None,
        subject: None,
        // A push subscription's keys are the browser's: never shown back.
        secret: secret.clone().filter(|_| kind == "webhook"),
    }
    .placed(&state.subjects, &id);
    let cap = state.limits.endpoints;
    let (row_target, status) = (target.clone(), view.status.clone());
    let digest = confirmation.as_deref().map(token_digest);
    let subscriber = id.clone();
    let refused = state
        .store
        .write(move |tx| {
            let id = subscriber;
            let n: i64 = tx.query_row(
                "SELECT COUNT(*) FROM endpoints WHERE subscriber_id = ?1",
                args![&id],
                |r| r.get(0),
            )?;
            if n >= cap as i64 {
                return Ok(Some(Refusal::TooMany(cap)));
            }
            // One target once per subscriber: otherwise one development is sent to it once
            // per copy. Addresses are compared without regard to case.
            let twice: i64 = tx.query_row(
                "SELECT COUNT(*) FROM endpoints WHERE subscriber_id = ?1 AND kind = ?2
                    AND (target = ?3 OR (kind = 'email' AND lower(target) = lower(?3)))",
                args![&id, kind, &row_target],
                |r| r.get(0),
            )?;
            if twice > 0 {
                return Ok(Some(Refusal::Duplicate));
            }
            tx.execute(
                "INSERT INTO endpoints (id, subscriber_id, kind, target, secret, status, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                args![&endpoint, id, kind, row_target, secret, status, ts(Utc::now())],
            )?;
            if let Some(digest) = digest {
                tx.execute(
                    "INSERT INTO email_confirmations (token_hash, endpoint_id, expires_at)
                     VALUES (?1, ?2, ?3)",
                    args![&digest[..], &endpoint, ts(Utc::now() + CONFIRMATION_VALID)],
                )?;
            }
            Ok(None)
        })
        .await?;
    match refused {
        Some(Refusal::TooMany(cap)) => {
            return Err(Problem::new(
                StatusCode::CONFLICT,
                "too-many-endpoints",
                "Too many endpoints",
                format!("a subscriber may have {cap} endpoints; remove one first"),
            )
            .into())
        }
        Some(Refusal::Duplicate) => {
            let field = match kind {
                "webhook" => "url",
                "email" => "address",
                "web_push" => "subscription.endpoint",
                _ => "subject",
            };
            return Err(Problem::conflict(format!(
                "this subscriber already has an endpoint with this {field}"
            ))
            .with_field(field)
            .into());
        }
        None => {}
    }
    if let Some(token) = confirmation {
        send_confirmation(&state, &id, target, token);
    }
    Ok((StatusCode::CREATED, Json(view)))
}

/// A subscriber's endpoints (never their secrets).
#[utoipa::path(get, path = "/v1/subscribers/{id}/endpoints", tag = "subscribers", security(("bearer" = [])), params(("id" = uuid::Uuid, Path, description = "the subscriber's id")),
    responses((status = 200, body = [EndpointView]), (status = 403, body = ProblemDetails, description = "a staff token below admin"), (status = 404, body = ProblemDetails, description = "no such subscriber (or not the caller's)")))]
pub(super) async fn list_endpoints(
    State(state): State<SubscriberApi>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Vec<EndpointView>>> {
    caller.may_manage(&id)?;
    // An admin asking for a subscriber that does not exist: not an empty list.
    find_subscriber(&state, &id).await?;
    let subscriber = id.clone();
    let list: Vec<EndpointView> = state
        .store
        .read(move |c| {
            Ok(c.statement(&format!(
                "{ENDPOINT} WHERE subscriber_id = ?1 ORDER BY created_at"
            ))?
            .query_map(args![subscriber], endpoint_row)?
            .collect::<Result<_, _>>()?)
        })
        .await?;
    let list = list
        .into_iter()
        .map(|e| e.placed(&state.subjects, &id))
        .collect();
    Ok(Json(list))
}

/// Removes an endpoint.
#[utoipa::path(delete, path = "/v1/subscribers/{id}/endpoints/{endpoint}", tag = "subscribers", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "the subscriber's id"), ("endpoint" = uuid::Uuid, Path, description = "the endpoint's id")),
    responses((status = 204, description = "removed"), (status = 403, body = ProblemDetails, description = "a staff token below admin"), (status = 404, body = ProblemDetails, description = "no such subscriber or endpoint")))]
pub(super) async fn remove_endpoint(
    State(state): State<SubscriberApi>,
    caller: Caller,
    ApiPath((id, endpoint)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    caller.may_manage(&id)?;
    let n = state
        .store
        .write(move |tx| {
            tx.execute(
                "DELETE FROM email_confirmations WHERE endpoint_id IN
                    (SELECT id FROM endpoints WHERE id = ?1 AND subscriber_id = ?2)",
                args![&endpoint, &id],
            )?;
            Ok(tx.execute(
                "DELETE FROM endpoints WHERE id = ?1 AND subscriber_id = ?2",
                args![endpoint, id],
            )?)
        })
        .await?;
    if n == 0 {
        return Err(Problem::not_found("no such endpoint").into());
    }
    Ok(StatusCode::NO_CONTENT)
}

/// A new signing secret; the old one keeps signing (alongside) for 24 hours.
#[utoipa::path(post, path = "/v1/subscribers/{id}/endpoints/{endpoint}/secret", tag = "subscribers", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "the subscriber's id"), ("endpoint" = uuid::Uuid, Path, description = "the webhook endpoint's id")),
    responses((status = 200, body = EndpointView, description = "with the new `secret`, shown only here"), (status = 403, body = ProblemDetails, description = "a staff token below admin"), (status = 404, body = ProblemDetails, description = "no such subscriber or webhook endpoint")))]
pub(super) async fn rotate_secret(
    State(state): State<SubscriberApi>,
    caller: Caller,
    ApiPath((id, endpoint)): ApiPath<(String, String)>,
) -> ApiResult<Json<EndpointView>> {
    caller.may_manage(&id)?;
    let secret = WebhookSecret::generate().to_string();
    let new = secret.clone();
    let expires = ts(Utc::now() + ROTATION_GRACE);
    let view = state
        .store
        .write(move |tx| {
            let n = tx.execute(
                "UPDATE endpoints SET previous_secret = secret, previous_expires = ?3, secret = ?4
                 WHERE id = ?1 AND subscriber_id = ?2 AND kind = 'webhook'",
                args![endpoint, id, expires, new],
            )?;
            if n == 0 {
                return Ok(None);
            }
            Ok(tx
                .query_row(
                    &format!("{ENDPOINT} WHERE id = ?1"),
                    args![&endpoint],
                    endpoint_row,
                )
                .optional()?)
        })
        .await?
        .ok_or_else(|| Problem::not_found("no such webhook endpoint"))?;
    Ok(Json(EndpointView {
        secret: Some(secret),
        ..view
    }))
}
