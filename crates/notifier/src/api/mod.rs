//! The subscriber API: sign-up, endpoints, subscriptions, deliveries (with redrive), the alert
//! stream, unsubscribe links and the links that confirm email addresses.
//!
//! A subscriber's token (`nrs_…`, stored hashed) manages that subscriber only; staff admin tokens
//! manage everyone. Every write is authenticated except sign-up, the unsubscribe link and the
//! confirmation link, whose random tokens are themselves the credential; those two links act
//! only on a POST (a GET or HEAD — a mail scanner — shows a page whose button POSTs).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, RawQuery, State};
use axum::http::{header, request::Parts, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Extension, Json, Router};
use chrono::Utc;
use newsroom_domain::{Actor, DevelopmentKind, FieldError, Role, SourceName, Tag, Urgency};
use newsroom_log::args;
use newsroom_log::sql::{OptionalRow, Row};
use newsroom_web::auth::{generate_token, token_digest};
use newsroom_web::problem::{Problem, ProblemDetails};
use newsroom_web::Tokens;
use newsroom_web::{int_param, query_params, ApiPath, JsonBody};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::dispatch::log_change;
use crate::email::Mailer;
use crate::error::NotifyError;
use crate::matcher::{confirmation_path, Links};
use crate::retention::forget_subscriber;
use crate::signing::WebhookSecret;
use crate::ssrf::Guard;
use crate::store::{record_change, ts, NotifierStore};
use crate::streams::{AlertHub, Opener, Refused};
use crate::subjects::AlertSubjects;
use crate::webpush::{PushKeys, Vapid, ENDPOINT_LIMIT};

const TOKEN_PREFIX: &str = "nrs_";
/// How long a rotated-out webhook secret keeps signing.
const ROTATION_GRACE: chrono::Duration = chrono::Duration::hours(24);

/// Open alert streams allowed per client address, by default.
pub const ALERT_STREAMS_PER_ADDRESS: usize = 8;
/// Open alert streams allowed in all, by default.
pub const ALERT_STREAMS_TOTAL: usize = 10_000;
/// Endpoints one subscriber may have, by default.
pub const ENDPOINTS_PER_SUBSCRIBER: usize = 10;
/// Subscriptions one subscriber may have, by default.
pub const SUBSCRIPTIONS_PER_SUBSCRIBER: usize = 100;

/// What the subscriber handlers reach.
#[derive(Clone, Debug)]
pub struct SubscriberApi {
    pub store: NotifierStore,
    pub tokens: Tokens,
    pub guard: Arc<Guard>,
    /// Where alert streams are served from.
    pub hub: AlertHub,
    /// Where NATS endpoints' alerts are published.
    pub subjects: AlertSubjects,
    /// How many endpoints and subscriptions one subscriber may have.
    pub limits: SubscriberLimits,
    /// Sends the mail that confirms an email endpoint (none: such endpoints stay unconfirmed).
    pub mailer: Option<Mailer>,
    /// Where the links in mails point.
    pub links: Links,
    /// Confirmation mails allowed per address.
    pub confirmations: ConfirmationMails,
    /// The installation's VAPID key pair: browsers subscribe with its public half.
    pub vapid: Arc<Vapid>,
}

/// How many endpoints and subscriptions one subscriber may have.
#[derive(Debug, Clone, Copy)]
pub struct SubscriberLimits {
    pub endpoints: usize,
    pub subscriptions: usize,
}

/// How long the link of a confirmation mail works.
pub const CONFIRMATION_VALID: chrono::Duration = chrono::Duration::days(7);
/// Confirmation mails one address may be sent per hour, however many subscribers ask (so that
/// adding and removing an endpoint cannot bomb someone's mailbox).
pub const CONFIRMATIONS_PER_ADDRESS_PER_HOUR: u32 = 3;

/// A limit on confirmation mails per address (by the address's digest, in this process).
#[derive(Clone)]
pub struct ConfirmationMails(Arc<governor::DefaultKeyedRateLimiter<[u8; 32]>>);

impl std::fmt::Debug for ConfirmationMails {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfirmationMails").finish_non_exhaustive()
    }
}

impl Default for ConfirmationMails {
    fn default() -> Self {
        let n = std::num::NonZeroU32::new(CONFIRMATIONS_PER_ADDRESS_PER_HOUR).expect("not zero");
        Self(Arc::new(governor::RateLimiter::keyed(
            governor::Quota::per_hour(n),
        )))
    }
}

impl ConfirmationMails {
    /// Whether another mail may go to `address` now; if not, how many seconds until one may.
    fn check(&self, address: &str) -> Result<(), u64> {
        use governor::clock::{Clock, DefaultClock};
        // Forget addresses whose hour has passed, so the map stays as small as the recent ones.
        if self.0.len() > 10_000 {
            self.0.retain_recent();
        }
        self.0
            .check_key(&token_digest(&address.to_lowercase()))
            .map_err(|not_until| {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                wait.as_secs().max(1)
            })
    }
}

/// An API error of the subscriber side.
#[derive(Debug)]
pub struct ApiError(Problem);

impl From<Problem> for ApiError {
    fn from(p: Problem) -> Self {
        Self(p)
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        Self(e.into())
    }
}

impl From<NotifyError> for ApiError {
    fn from(e: NotifyError) -> Self {
        if e.is_unavailable() {
            // The queue's database is down or restarting: try again shortly.
            return Self(Problem::unavailable(
                "the alert queue cannot be reached right now",
            ));
        }
        Self(Problem::internal(e))
    }
}

impl From<newsroom_log::StoreError> for ApiError {
    fn from(e: newsroom_log::StoreError) -> Self {
        Self(e.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.0.into_response()
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// Who is calling: a subscriber (by their token) or staff (by theirs).
#[derive(Debug, Clone)]
pub enum Caller {
    Subscriber(String),
    Staff(Role),
}

impl Caller {
    /// Refuses anyone but subscriber `id` itself and admins.
    fn may_manage(&self, id: &str) -> Result<(), ApiError> {
        match self {
            Caller::Subscriber(own) if own == id => Ok(()),
            Caller::Staff(Role::Admin) => Ok(()),
            // Not "forbidden": whether another subscriber exists is not the caller's business.
            Caller::Subscriber(_) => Err(Problem::not_found("no such subscriber").into()),
            Caller::Staff(_) => {
                Err(Problem::forbidden("managing subscribers needs the admin role").into())
            }
        }
    }

    fn require_admin(&self) -> Result<(), ApiError> {
        match self {
            Caller::Staff(Role::Admin) => Ok(()),
            _ => Err(Problem::forbidden("this needs the admin role").into()),
        }
    }
}

impl FromRequestParts<SubscriberApi> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &SubscriberApi,
    ) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, token) = v.split_once(' ')?;
                scheme
                    .eq_ignore_ascii_case("bearer")
                    .then(|| token.trim().to_owned())
            })
            .ok_or_else(Problem::unauthorized)?;
        if token.starts_with(TOKEN_PREFIX) {
            let hash = token_digest(&token);
            let id = state
                .store
                .read(move |c| {
                    Ok(
                        c.statement("SELECT id FROM subscribers WHERE token_hash = ?1")?
                            .query_row(args![&hash[..]], |r| r.get::<String>(0))
                            .optional()?,
                    )
                })
                .await?;
            return id
                .map(Caller::Subscriber)
                .ok_or_else(|| Problem::unauthorized().into());
        }
        match state.tokens.authenticate(&token).await? {
            Some(p) => Ok(Caller::Staff(p.role)),
            None => Err(Problem::unauthorized().into()),
        }
    }
}

/// The form a link's page POSTs (documented only: the server reads no field of it).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct LinkForm {
    #[schema(rename = "List-Unsubscribe", example = "One-Click")]
    list_unsubscribe: Option<String>,
}

/// The OpenAPI document of the subscriber API and its links.
#[derive(Debug, utoipa::OpenApi)]
#[openapi(paths(
    sign_up,
    list_subscribers,
    show_subscriber,
    delete_subscriber,
    suspend,
    unsuspend,
    add_endpoint,
    list_endpoints,
    remove_endpoint,
    rotate_secret,
    subscribe,
    list_subscriptions,
    unsubscribe_one,
    list_deliveries,
    redrive,
    list_alerts,
    alert_stream,
    unsubscribe_page,
    unsubscribe_link,
    confirmation_page,
    confirm_email,
    push_key
))]
pub struct SubscriberApiDoc;

/// The subscriber side's routes, with their state applied.
pub fn router(state: SubscriberApi) -> Router {
    Router::new()
        .route("/v1/subscribers", post(sign_up).get(list_subscribers))
        .route(
            "/v1/subscribers/{id}",
            get(show_subscriber).delete(delete_subscriber),
        )
        .route(
            "/v1/subscribers/{id}/suspension",
            post(suspend).delete(unsuspend),
        )
        .route(
            "/v1/subscribers/{id}/endpoints",
            post(add_endpoint).get(list_endpoints),
        )
        .route(
            "/v1/subscribers/{id}/endpoints/{endpoint}",
            delete(remove_endpoint),
        )
        .route(
            "/v1/subscribers/{id}/endpoints/{endpoint}/secret",
            post(rotate_secret),
        )
        .route(
            "/v1/subscribers/{id}/subscriptions",
            post(subscribe).get(list_subscriptions),
        )
        .route(
            "/v1/subscribers/{id}/subscriptions/{subscription}",
            delete(unsubscribe_one),
        )
        .route("/v1/subscribers/{id}/deliveries", get(list_deliveries))
        .route(
            "/v1/subscribers/{id}/deliveries/{delivery}/redrive",
            post(redrive),
        )
        .route("/v1/push/key", get(push_key))
        .route("/v1/subscribers/{id}/alerts", get(list_alerts))
        .route("/v1/subscribers/{id}/alerts/stream", get(alert_stream))
        .route(
            "/v1/unsubscribe/{token}",
            get(unsubscribe_page).post(unsubscribe_link),
        )
        .route(
            "/v1/email-confirmations/{token}",
            get(confirmation_page).post(confirm_email),
        )
        .with_state(state)
}

// ----- subscribers ----------------------------------------------------------------------------

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct SignUp {
    name: String,
    #[serde(default)]
    email: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct SignedUp {
    id: String,
    /// Manages this subscriber only. Shown once.
    token: String,
}

fn parse_email(field: &'static str, raw: &str) -> Result<String, FieldError> {
    crate::email::parse_address(field, raw)
}

#[utoipa::path(post, path = "/v1/subscribers", tag = "subscribers", request_body = SignUp,
    responses((status = 201, body = SignedUp, description = "signed up; the token is shown only here")))]
async fn sign_up(
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
struct SubscriberView {
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
async fn list_subscribers(
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

async fn find_subscriber(state: &SubscriberApi, id: &str) -> ApiResult<SubscriberView> {
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
async fn show_subscriber(
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
async fn delete_subscriber(
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
async fn suspend(
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
async fn unsuspend(
    State(state): State<SubscriberApi>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<StatusCode> {
    caller.require_admin()?;
    set_status(&state, id, "active").await
}

// ----- endpoints ----------------------------------------------------------------------------

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum NewEndpoint {
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
struct PushSubscription {
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
struct PushKey {
    /// The uncompressed P-256 point, base64url without padding: a browser's
    /// `applicationServerKey` when it subscribes.
    public_key: String,
}

/// The key browsers subscribe with (`pushManager.subscribe({applicationServerKey})`) before
/// registering a `web_push` endpoint: every push is signed with its private half (VAPID).
#[utoipa::path(get, path = "/v1/push/key", tag = "subscribers",
    responses((status = 200, body = PushKey)))]
async fn push_key(State(state): State<SubscriberApi>) -> Json<PushKey> {
    Json(PushKey {
        public_key: state.vapid.public_key().to_owned(),
    })
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct EndpointView {
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
async fn add_endpoint(
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

/// Why a subscriber's write was refused inside its transaction.
enum Refusal {
    /// They have as many as they may.
    TooMany(usize),
    /// They have that target already.
    Duplicate,
}

/// Mails the link that confirms `address`, after the commit that made its endpoint, without
/// making the request wait for the relay. It names no subscriber and carries no credential but
/// the single-use link.
fn send_confirmation(state: &SubscriberApi, subscriber: &str, address: String, token: String) {
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
async fn confirmation_page(
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
async fn confirm_email(
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

/// A subscriber's endpoints (never their secrets).
#[utoipa::path(get, path = "/v1/subscribers/{id}/endpoints", tag = "subscribers", security(("bearer" = [])), params(("id" = uuid::Uuid, Path, description = "the subscriber's id")),
    responses((status = 200, body = [EndpointView]), (status = 403, body = ProblemDetails, description = "a staff token below admin"), (status = 404, body = ProblemDetails, description = "no such subscriber (or not the caller's)")))]
async fn list_endpoints(
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
async fn remove_endpoint(
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
async fn rotate_secret(
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

// ----- subscriptions ------------------------------------------------------------------------

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewSubscription {
    #[serde(default)]
    story: Option<Uuid>,
    #[serde(default)]
    actor: Option<String>,
    #[serde(default)]
    kind: Option<DevelopmentKind>,
    #[serde(default)]
    tag: Option<String>,
    #[serde(default)]
    min_urgency: Urgency,
    #[serde(default)]
    delivery: DeliveryMode,
    /// Minutes between digests (`delivery: digest` only).
    #[serde(default, deserialize_with = "newsroom_web::whole_number")]
    #[schema(minimum = 5, maximum = 1440)]
    digest_minutes: Option<u32>,
    /// Every alert, whatever the story: must be asked for, never the result of no filters.
    #[serde(default)]
    everything: bool,
    /// With `story`: also one alert whenever an editor relates another story to it.
    #[serde(default)]
    include_related: bool,
}

#[derive(Debug, Default, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
enum DeliveryMode {
    #[default]
    Immediate,
    Digest,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct SubscriptionView {
    id: String,
    story: Option<String>,
    actor: Option<String>,
    kind: Option<String>,
    tag: Option<String>,
    min_urgency: String,
    delivery: String,
    digest_minutes: Option<u32>,
    /// No filter: every alert.
    everything: bool,
    /// Also alerted when another story is related to `story`.
    include_related: bool,
}

impl SubscriptionView {
    fn filters_nothing(&self) -> bool {
        self.story.is_none()
            && self.actor.is_none()
            && self.kind.is_none()
            && self.tag.is_none()
            && self.min_urgency == Urgency::Routine.as_str()
    }
}

/// Subscribes to alerts: filters (all must match) or `everything`.
#[utoipa::path(post, path = "/v1/subscribers/{id}/subscriptions", tag = "subscribers", security(("bearer" = [])), params(("id" = uuid::Uuid, Path, description = "the subscriber's id")),
    request_body = NewSubscription,
    responses((status = 201, body = SubscriptionView), (status = 403, body = ProblemDetails, description = "a staff token below admin"), (status = 404, body = ProblemDetails, description = "no such subscriber (or not the caller's)"),
        (status = 409, body = ProblemDetails, description = "as many subscriptions as allowed")))]
async fn subscribe(
    State(state): State<SubscriberApi>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    JsonBody(body): JsonBody<NewSubscription>,
) -> ApiResult<(StatusCode, Json<SubscriptionView>)> {
    caller.may_manage(&id)?;
    find_subscriber(&state, &id).await?;
    let actor = body
        .actor
        .as_deref()
        .map(|a| Actor::parse("actor", a).map(|a| a.key().to_owned()))
        .transpose()?;
    let tag = body
        .tag
        .as_deref()
        .map(|t| Tag::parse("tag", t).map(|t| t.as_str().to_owned()))
        .transpose()?;
    let digest_minutes = match (body.delivery, body.digest_minutes) {
        (DeliveryMode::Immediate, None) => None,
        (DeliveryMode::Immediate, Some(_)) => {
            return Err(FieldError::new("digest_minutes", "only digests have an interval").into())
        }
        (DeliveryMode::Digest, Some(m)) if (5..=1440).contains(&m) => Some(m),
        (DeliveryMode::Digest, _) => {
            return Err(FieldError::new(
                "digest_minutes",
                "a digest needs an interval of 5 to 1440 minutes",
            )
            .into())
        }
    };
    let filtered = body.story.is_some()
        || actor.is_some()
        || body.kind.is_some()
        || tag.is_some()
        || body.min_urgency > Urgency::Routine;
    match (body.everything, filtered) {
        (true, true) => {
            return Err(FieldError::new(
                "everything",
                "a subscription to everything takes no filters: drop `everything` or the filters",
            )
            .into())
        }
        (false, false) => {
            return Err(FieldError::new(
                "everything",
                "a subscription needs a filter (story, actor, kind, tag, or a min_urgency above routine), or `\"everything\": true` to get every alert",
            )
            .into())
        }
        _ => {}
    }
    if body.include_related && body.story.is_none() {
        return Err(FieldError::new(
            "include_related",
            "only a subscription to a story hears of the stories related to it: name `story`",
        )
        .into());
    }
    let view = SubscriptionView {
        id: Uuid::now_v7().to_string(),
        story: body.story.map(|s| s.to_string()),
        actor,
        kind: body.kind.map(|k| k.as_str().to_owned()),
        tag,
        min_urgency: body.min_urgency.as_str().to_owned(),
        delivery: match body.delivery {
            DeliveryMode::Immediate => "immediate",
            DeliveryMode::Digest => "digest",
        }
        .to_owned(),
        digest_minutes,
        everything: body.everything,
        include_related: body.include_related,
    };
    let include_related = body.include_related;
    let row = (
        view.id.clone(),
        view.story.clone(),
        view.actor.clone(),
        view.kind.clone(),
        view.tag.clone(),
        view.min_urgency.clone(),
        view.delivery.clone(),
    );
    let cap = state.limits.subscriptions;
    let refused = state
        .store
        .write(move |tx| {
            let (sid, story, actor, kind, tag, urgency, delivery) = row;
            let n: i64 = tx.query_row(
                "SELECT COUNT(*) FROM subscriptions WHERE subscriber_id = ?1",
                args![&id],
                |r| r.get(0),
            )?;
            if n >= cap as i64 {
                return Ok(Some(Refusal::TooMany(cap)));
            }
            tx.execute(
                "INSERT INTO subscriptions (id, subscriber_id, story_id, actor_key, kind, tag,
                    min_urgency, delivery, digest_minutes, created_at, include_related)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                args![
                    sid,
                    id,
                    story,
                    actor,
                    kind,
                    tag,
                    urgency,
                    delivery,
                    digest_minutes,
                    ts(Utc::now()),
                    include_related
                ],
            )?;
            record_change(tx, Some(&sid), Some(&id))?;
            Ok(None)
        })
        .await?;
    if refused.is_some() {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "too-many-subscriptions",
            "Too many subscriptions",
            format!("a subscriber may have {cap} subscriptions; remove one first"),
        )
        .into());
    }
    Ok((StatusCode::CREATED, Json(view)))
}

/// A subscriber's subscriptions.
#[utoipa::path(get, path = "/v1/subscribers/{id}/subscriptions", tag = "subscribers", security(("bearer" = [])), params(("id" = uuid::Uuid, Path, description = "the subscriber's id")),
    responses((status = 200, body = [SubscriptionView]), (status = 403, body = ProblemDetails, description = "a staff token below admin"), (status = 404, body = ProblemDetails, description = "no such subscriber (or not the caller's)")))]
async fn list_subscriptions(
    State(state): State<SubscriberApi>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Vec<SubscriptionView>>> {
    caller.may_manage(&id)?;
    // An admin asking for a subscriber that does not exist: not an empty list.
    find_subscriber(&state, &id).await?;
    let list = state
        .store
        .read(move |c| {
            Ok(c.statement(
                "SELECT id, story_id, actor_key, kind, tag, min_urgency, delivery, digest_minutes,
                        include_related
                 FROM subscriptions WHERE subscriber_id = ?1 ORDER BY created_at",
            )?
            .query_map(args![id], |r| {
                Ok(SubscriptionView {
                    id: r.get(0)?,
                    story: r.get(1)?,
                    actor: r.get(2)?,
                    kind: r.get(3)?,
                    tag: r.get(4)?,
                    min_urgency: r.get(5)?,
                    delivery: r.get(6)?,
                    digest_minutes: r.get(7)?,
                    everything: false,
                    include_related: r.get(8)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?)
        })
        .await?;
    let list = list
        .into_iter()
        .map(|mut s| {
            s.everything = s.filters_nothing();
            s
        })
        .collect();
    Ok(Json(list))
}

/// Ends one subscription.
#[utoipa::path(delete, path = "/v1/subscribers/{id}/subscriptions/{subscription}", tag = "subscribers", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "the subscriber's id"), ("subscription" = uuid::Uuid, Path, description = "the subscription's id")),
    responses((status = 204, description = "ended"), (status = 403, body = ProblemDetails, description = "a staff token below admin"), (status = 404, body = ProblemDetails, description = "no such subscriber or subscription")))]
async fn unsubscribe_one(
    State(state): State<SubscriberApi>,
    caller: Caller,
    ApiPath((id, subscription)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    caller.may_manage(&id)?;
    let n = state
        .store
        .write(move |tx| {
            let n = tx.execute(
                "DELETE FROM subscriptions WHERE id = ?1 AND subscriber_id = ?2",
                args![subscription, id],
            )?;
            record_change(tx, Some(&subscription), Some(&id))?;
            Ok(n)
        })
        .await?;
    if n == 0 {
        return Err(Problem::not_found("no such subscription").into());
    }
    Ok(StatusCode::NO_CONTENT)
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
            (
                header::CONTENT_SECURITY_POLICY,
                newsroom_projection::api::CSP,
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-store"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        newsroom_projection::pages::reader_page(title, &[], content).into_string(),
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
async fn unsubscribe_page(
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
async fn unsubscribe_link(
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

// ----- deliveries and alerts ----------------------------------------------------------------

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct DeliveryView {
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
async fn list_deliveries(
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
async fn redrive(
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
pub const ALERT_PAGE: i64 = 50;
/// The most alerts one page of the list holds.
pub const MAX_ALERT_PAGE: i64 = 200;

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
async fn list_alerts(
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
async fn alert_stream(
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
                    Ok(c.query_row(
                        "SELECT COALESCE(MAX(seq), 0) FROM alerts WHERE subscriber_id = ?1",
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
