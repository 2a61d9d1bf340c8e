//! The subscriber API: sign-up, endpoints, subscriptions, deliveries (with redrive), the alert
//! stream, unsubscribe links and the links that confirm email addresses.
//!
//! A subscriber's token (`nrs_…`, stored hashed) manages that subscriber only; staff admin tokens
//! manage everyone. Every write is authenticated except sign-up, the unsubscribe link and the
//! confirmation link, whose random tokens are themselves the credential; those two links act
//! only on a POST (a GET or HEAD — a mail scanner — shows a page whose button POSTs).
//!
//! This module holds what every resource shares: the state the handlers reach
//! ([`SubscriberApi`]), who is calling ([`Caller`]), the error type, the router and the OpenAPI
//! document. Each resource's handlers are in a module of their own: `subscribers`,
//! `endpoints`, `subscriptions`, `deliveries`, `alerts` and `links`.
//!
//! Routes: `/v1/push/key` (the VAPID public key, base64url) and `/v1/subscribers…`: sign-up
//! (returns the subscriber's own token once), endpoints, secret rotation (the old secret keeps
//! signing for 24 h), subscriptions, deliveries with redrive, the alert list (one page: the newest
//! 50 by default, at most 200, `before=<seq>` for older ones with a `Link: rel="next"`, or
//! `after=<seq>` forward) and the SSE stream (`crate::streams`), `/v1/unsubscribe/{token}` (the
//! link in every alert) and `/v1/email-confirmations/{token}` (the link of a confirmation mail);
//! the OpenAPI part is `SubscriberApiDoc`.
//!
//! Limits: a subscriber has at most `endpoints_per_subscriber` (10) endpoints and
//! `subscriptions_per_subscriber` (100) subscriptions, each target once (409s, counted in the write
//! transaction); a subscription without filters must say `"everything": true`. Sign-ups count
//! against the per-address limit (`newsroom_web::limits`).
//!
//! Endpoints: a `web_push` endpoint is a browser's `PushSubscription` JSON: its keys are parsed (a
//! bad one is a 422 naming `subscription.keys.p256dh` or `.auth`) and kept in the endpoint's
//! `secret`, never shown back; its push service URL goes through the SSRF guard like a webhook's.
//! An email endpoint is made `unconfirmed` with a confirmation link (its digest stored), mailed
//! after the commit by a task of its own (at most 3 an hour per address, in memory); the matcher
//! sends to active endpoints only. Addresses are parsed by `email::parse_address`. Both links are
//! safe to GET or HEAD (a small HTML page in the reader pages' layout and CSP, whose button POSTs;
//! JSON for a program asking for it); only the POST acts — unsubscribing takes RFC 8058's one-click
//! body.

mod alerts;
mod deliveries;
mod endpoints;
mod links;
mod subscribers;
mod subscriptions;

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::{header, request::Parts};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use newsroom_domain::{FieldError, Role};
use newsroom_log::args;
use newsroom_log::sql::OptionalRow;
use newsroom_web::auth::token_digest;
use newsroom_web::problem::Problem;
use newsroom_web::Tokens;

use crate::email::Mailer;
use crate::error::NotifyError;
use crate::queue::Links;
use crate::ssrf::Guard;
use crate::store::NotifierStore;
use crate::streams::AlertHub;
use crate::subjects::AlertSubjects;
use crate::webpush::Vapid;

const TOKEN_PREFIX: &str = "nrs_";

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

/// The OpenAPI document of the subscriber API and its links.
#[derive(Debug, utoipa::OpenApi)]
#[openapi(paths(
    subscribers::sign_up,
    subscribers::list_subscribers,
    subscribers::show_subscriber,
    subscribers::delete_subscriber,
    subscribers::suspend,
    subscribers::unsuspend,
    endpoints::add_endpoint,
    endpoints::list_endpoints,
    endpoints::remove_endpoint,
    endpoints::rotate_secret,
    subscriptions::subscribe,
    subscriptions::list_subscriptions,
    subscriptions::unsubscribe_one,
    deliveries::list_deliveries,
    deliveries::redrive,
    alerts::list_alerts,
    alerts::alert_stream,
    links::unsubscribe_page,
    links::unsubscribe_link,
    links::confirmation_page,
    links::confirm_email,
    endpoints::push_key
))]
pub struct SubscriberApiDoc;

/// The subscriber side's routes, with their state applied.
pub fn router(state: SubscriberApi) -> Router {
    Router::new()
        .route(
            "/v1/subscribers",
            post(subscribers::sign_up).get(subscribers::list_subscribers),
        )
        .route(
            "/v1/subscribers/{id}",
            get(subscribers::show_subscriber).delete(subscribers::delete_subscriber),
        )
        .route(
            "/v1/subscribers/{id}/suspension",
            post(subscribers::suspend).delete(subscribers::unsuspend),
        )
        .route(
            "/v1/subscribers/{id}/endpoints",
            post(endpoints::add_endpoint).get(endpoints::list_endpoints),
        )
        .route(
            "/v1/subscribers/{id}/endpoints/{endpoint}",
            delete(endpoints::remove_endpoint),
        )
        .route(
            "/v1/subscribers/{id}/endpoints/{endpoint}/secret",
            post(endpoints::rotate_secret),
        )
        .route(
            "/v1/subscribers/{id}/subscriptions",
            post(subscriptions::subscribe).get(subscriptions::list_subscriptions),
        )
        .route(
            "/v1/subscribers/{id}/subscriptions/{subscription}",
            delete(subscriptions::unsubscribe_one),
        )
        .route(
            "/v1/subscribers/{id}/deliveries",
            get(deliveries::list_deliveries),
        )
        .route(
            "/v1/subscribers/{id}/deliveries/{delivery}/redrive",
            post(deliveries::redrive),
        )
        .route("/v1/push/key", get(endpoints::push_key))
        .route("/v1/subscribers/{id}/alerts", get(alerts::list_alerts))
        .route(
            "/v1/subscribers/{id}/alerts/stream",
            get(alerts::alert_stream),
        )
        .route(
            "/v1/unsubscribe/{token}",
            get(links::unsubscribe_page).post(links::unsubscribe_link),
        )
        .route(
            "/v1/email-confirmations/{token}",
            get(links::confirmation_page).post(links::confirm_email),
        )
        .with_state(state)
}

/// Why a subscriber's write was refused inside its transaction.
enum Refusal {
    /// They have as many as they may.
    TooMany(usize),
    /// They have that target already.
    Duplicate,
}
