//! Rate limits on every write: per token and per client address, and on self sign-up per
//! address (an IPv4 address, or an IPv6 /64: `serve::client_address`). A refused request gets a 429 problem with `Retry-After`. Reads are not limited here.
//! Tokens are keyed by their digest, never kept in the clear.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::{Deserialize, Serialize};

use crate::auth::token_digest;
use crate::problem::Problem;

/// How many writes are allowed, each a sustained rate per minute that may also come in one burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RateLimits {
    pub writes_per_token_per_minute: u32,
    pub writes_per_address_per_minute: u32,
    pub sign_ups_per_address_per_hour: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            writes_per_token_per_minute: 600,
            writes_per_address_per_minute: 1_200,
            sign_ups_per_address_per_hour: 20,
        }
    }
}

/// The limiters, shared by every request.
#[derive(Clone)]
pub struct Limiter {
    per_token: Arc<DefaultKeyedRateLimiter<[u8; 32]>>,
    per_address: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    sign_ups: Arc<DefaultKeyedRateLimiter<IpAddr>>,
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiter").finish_non_exhaustive()
    }
}

fn quota(per_minute: u32) -> Quota {
    let n = NonZeroU32::new(per_minute.max(1)).expect("at least 1");
    Quota::per_minute(n)
}

impl Limiter {
    pub fn new(limits: RateLimits) -> Self {
        let sign_ups =
            NonZeroU32::new(limits.sign_ups_per_address_per_hour.max(1)).expect("at least 1");
        let limiter = Self {
            per_token: Arc::new(RateLimiter::keyed(quota(
                limits.writes_per_token_per_minute,
            ))),
            per_address: Arc::new(RateLimiter::keyed(quota(
                limits.writes_per_address_per_minute,
            ))),
            sign_ups: Arc::new(RateLimiter::keyed(Quota::per_hour(sign_ups))),
        };
        // Forget idle keys now and then, so the maps stay as small as the active clients.
        let weak = (
            Arc::downgrade(&limiter.per_token),
            Arc::downgrade(&limiter.per_address),
            Arc::downgrade(&limiter.sign_ups),
        );
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(60)).await;
                let (Some(a), Some(b), Some(c)) =
                    (weak.0.upgrade(), weak.1.upgrade(), weak.2.upgrade())
                else {
                    return;
                };
                a.retain_recent();
                b.retain_recent();
                c.retain_recent();
            }
        });
        limiter
    }

    fn refused(wait: Duration, what: &str) -> Response {
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        Problem::new(
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            "rate-limited",
            "Too many requests",
            format!("too many {what}; try again in {seconds} s"),
        )
        .retry_after(seconds.max(1))
        .into_response()
    }
}

/// Middleware: applies the limits to writes.
pub async fn limit_writes(
    axum::extract::State(limiter): axum::extract::State<Limiter>,
    request: Request,
    next: Next,
) -> Response {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return next.run(request).await;
    }
    let now = DefaultClock::default().now();
    let address = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| crate::serve::client_address(c.0.ip()));
    if let Some(ip) = address {
        // The reader's follow form signs up through the same API in-process.
        let sign_up = request.method() == Method::POST
            && matches!(request.uri().path(), "/v1/subscribers" | "/alerts/follow");
        if sign_up {
            if let Err(not_until) = limiter.sign_ups.check_key(&ip) {
                return Limiter::refused(
                    not_until.wait_time_from(now),
                    "sign-ups from this address",
                );
            }
        }
        if let Err(not_until) = limiter.per_address.check_key(&ip) {
            return Limiter::refused(not_until.wait_time_from(now), "writes from this address");
        }
    }
    let token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' ').map(|(_, t)| t.trim()));
    if let Some(token) = token {
        if let Err(not_until) = limiter.per_token.check_key(&token_digest(token)) {
            return Limiter::refused(not_until.wait_time_from(now), "writes with this token");
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::StatusCode;
    use axum::routing::post;
    use axum::Router;
    use tower::ServiceExt;

    fn app(limits: RateLimits) -> Router {
        let limiter = Limiter::new(limits);
        Router::new()
            .route("/v1/stories", post(|| async { "written" }))
            .route("/v1/subscribers", post(|| async { "signed up" }))
            .layer(axum::middleware::from_fn_with_state(limiter, limit_writes))
    }

    async fn post_from(app: &Router, path: &str, ip: &str) -> StatusCode {
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(path)
            .body(Body::empty())
            .unwrap();
        let peer = SocketAddr::new(ip.parse().unwrap(), 40_000);
        request.extensions_mut().insert(ConnectInfo(peer));
        app.clone().oneshot(request).await.unwrap().status()
    }

    #[tokio::test]
    async fn an_ipv6_client_is_limited_by_its_64_not_by_each_address_in_it() {
        // One host usually holds a whole /64: walking through its addresses must not buy more
        // writes or sign-ups.
        let app = app(RateLimits {
            writes_per_token_per_minute: 1_000,
            writes_per_address_per_minute: 2,
            sign_ups_per_address_per_hour: 1,
        });
        let write = |ip: &'static str| post_from(&app, "/v1/stories", ip);
        assert_eq!(write("2001:db8:1:2::1").await, StatusCode::OK);
        assert_eq!(write("2001:db8:1:2::2").await, StatusCode::OK);
        assert_eq!(
            write("2001:db8:1:2:ffff:ffff:ffff:3").await,
            StatusCode::TOO_MANY_REQUESTS
        );
        // The next /64 is someone else.
        assert_eq!(write("2001:db8:1:3::1").await, StatusCode::OK);
        // IPv4 counts by the address, written plainly or mapped into IPv6.
        assert_eq!(write("192.0.2.7").await, StatusCode::OK);
        assert_eq!(write("::ffff:192.0.2.7").await, StatusCode::OK);
        assert_eq!(write("192.0.2.7").await, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(write("192.0.2.8").await, StatusCode::OK);

        let sign_up = |ip: &'static str| post_from(&app, "/v1/subscribers", ip);
        assert_eq!(sign_up("2001:db8:9:9::1").await, StatusCode::OK);
        assert_eq!(
            sign_up("2001:db8:9:9::2").await,
            StatusCode::TOO_MANY_REQUESTS
        );
        assert_eq!(sign_up("2001:db8:9:a::1").await, StatusCode::OK);
    }
}
