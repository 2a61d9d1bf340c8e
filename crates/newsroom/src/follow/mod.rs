//! Alerts for readers, in the browser: `/alerts/follow` signs a reader up as a subscriber and
//! follows a story or an actor; `/alerts` lists what they follow and the alerts they got, live.
//!
//! Like the desk, these pages are a client of an API that lives in the same process: every action
//! is a request to the subscriber API's own router (`newsroom_notifier::Notifier::router`), sent
//! in-process with the subscriber's token, so validation, limits on what may be followed and the
//! answers are exactly the API's. There is no SQL here.
//!
//! The subscriber's token is kept in one cookie, `newsroom_alerts`, as `<nonce>.<id>.<token>`:
//! `HttpOnly`, `SameSite=Strict`, `Path=/alerts`, `Secure` over https — the same rules as the
//! desk's (see `desk/session.rs`), including the CSRF field every form carries (HMAC of the nonce
//! keyed with the token) and the double-submit cookie of the first sign-up form. Each request
//! checks the token with the API again, so a deleted subscriber is signed out at once.
//!
//! The page updates itself while open: `alerts.js` listens to `/alerts/stream` (the API's
//! server-sent alert stream, passed through) and swaps in the server-rendered list from
//! `/alerts/list`. Without JavaScript, reloading shows the same.
//!
//! **Architecture invariant:** the alert pages hold no state and no SQL: the subscriber API is the
//! only way in.
//!
//! `/alerts` shows one page of the API's alert list (the latest [`SHOWN_ALERTS`], 50, with an
//! "Older alerts" link to `/alerts?before=<seq>`); `/alerts/stream` passes the API's SSE stream
//! through with the reader's address, resumed after the last alert shown; it ends when the reader's
//! token goes. An address given when following waits for confirmation, and the page says so.
//! "Notify me on this device" (`push.js`, shown where the browser can take pushes) registers the
//! service worker `/alerts/sw.js` (same origin; `Service-Worker-Allowed: /alerts`), subscribes with
//! the VAPID key the page carries and posts the subscription to `/alerts/push`, which adds it as
//! the reader's `web_push` endpoint through the API; the worker shows each push (a correction or
//! retraction carries its original's tag, so it replaces that notification, marked "Correction:" or
//! "Retracted:") and opens the story at the development when clicked. The in-process requests go
//! through `tower::ServiceExt::oneshot` with the reader's `nrs_` token; sign-up through the form
//! (`/alerts/follow`) counts against the per-address sign-up limit like `POST /v1/subscribers`.

mod templates;

use std::net::SocketAddr;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, Request, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use maud::Markup;
use newsroom_projection::ViewStore;
use newsroom_readmodel::StoryView;
use newsroom_web::page::ALERTS_PATH;
use serde::Deserialize;
use serde_json::{json, Value};
use tower::ServiceExt;
use tower_http::set_header::SetResponseHeaderLayer;
use uuid::Uuid;

use crate::desk::forms::FormData;
use crate::desk::session::{cookie, csrf_token, nonce, same_secret, scoped_cookie};

/// The subscriber's cookie: `<nonce>.<id>.<token>`.
pub const ALERTS_COOKIE: &str = "newsroom_alerts";
/// The first follow form's double-submit cookie.
pub const FORM_COOKIE: &str = "newsroom_alerts_form";
/// A reader stays signed up on this browser for a year.
const SESSION_SECONDS: u32 = 365 * 24 * 60 * 60;
const FORM_SECONDS: u32 = 60 * 60;
/// The largest form: a name and an address.
const FORM_LIMIT: usize = 16 * 1024;
/// How many of the latest alerts the page lists.
pub const SHOWN_ALERTS: usize = 50;
/// The digest intervals offered, in minutes.
pub const DIGEST_CHOICES: [(u32, &str); 3] =
    [(60, "hourly"), (360, "every six hours"), (1440, "daily")];

const ALERTS_JS: &str = include_str!("static/alerts.js");
const ALERTS_JS_PATH: &str = "/alerts/static/alerts.js";
const PUSH_JS: &str = include_str!("static/push.js");
const PUSH_JS_PATH: &str = "/alerts/static/push.js";
/// The service worker that shows push messages; it may control all of `/alerts`.
const SERVICE_WORKER: &str = include_str!("static/sw.js");
/// The largest body of `POST /alerts/push`: a push subscription and the CSRF value.
const PUSH_LIMIT: usize = 8 * 1024;

/// What the pages reach: the subscriber API (as a router, called in-process) and the views (for
/// headlines).
#[derive(Clone)]
pub struct FollowState {
    api: Router,
    views: ViewStore,
}

impl std::fmt::Debug for FollowState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FollowState").finish_non_exhaustive()
    }
}

/// The alert pages' routes. `subscriber_api` is the subscriber API's router.
pub fn router(subscriber_api: Router, views: ViewStore) -> Router {
    let state = FollowState {
        api: subscriber_api,
        views,
    };
    Router::new()
        .route("/alerts", get(alerts_page))
        .route("/alerts/list", get(alerts_list))
        .route("/alerts/stream", get(alerts_stream))
        .route("/alerts/follow", get(follow_form).post(follow))
        .route("/alerts/subscriptions/{id}/delete", post(stop_following))
        .route("/alerts/forget", post(forget))
        .route("/alerts/static/alerts.js", get(script))
        .route("/alerts/static/push.js", get(push_script))
        .route("/alerts/sw.js", get(service_worker))
        .route("/alerts/push", post(register_push))
        .layer(DefaultBodyLimit::max(FORM_LIMIT))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(newsroom_web::page::CSP),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .with_state(state)
}

// ----- the in-process API client -------------------------------------------------------------

/// An answer of the subscriber API.
struct ApiAnswer {
    status: StatusCode,
    body: Value,
}

impl ApiAnswer {
    /// The field a problem answer names, and its detail.
    fn problem(&self) -> (String, String) {
        (
            self.body["field"].as_str().unwrap_or_default().to_owned(),
            self.body["detail"]
                .as_str()
                .unwrap_or("the request was refused")
                .to_owned(),
        )
    }
}

impl FollowState {
    fn request(
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Request<Body> {
        let mut r = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            r = r.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        match body {
            Some(b) => r
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(b.to_string())),
            None => r.body(Body::empty()),
        }
        .expect("a request of known parts")
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Result<ApiAnswer, Response> {
        let response = self
            .api
            .clone()
            .oneshot(Self::request(method, path, token, body))
            .await
            .unwrap_or_else(|never| match never {});
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 4 * 1024 * 1024)
            .await
            .map_err(failure)?;
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).map_err(failure)?
        };
        if status.is_server_error() {
            return Err(failure(format!("the subscriber API answered {status}")));
        }
        Ok(ApiAnswer { status, body })
    }
}

// ----- the reader's session ------------------------------------------------------------------

/// A signed-up reader on this browser.
#[derive(Debug, Clone)]
struct Reader {
    id: String,
    name: String,
    email: Option<String>,
    token: String,
    csrf: String,
}

enum Lookup {
    Absent,
    Invalid,
    Valid(Reader),
}

fn set_cookie(request: &HeaderMap, name: &str, value: &str, max_age: u32) -> HeaderValue {
    scoped_cookie(request, ALERTS_PATH, name, value, max_age)
}

/// A token or id as it may appear in the cookie (base64url, hex and dashes only).
fn plain(raw: &str) -> bool {
    !raw.is_empty()
        && raw.len() <= 200
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl FollowState {
    async fn lookup(&self, headers: &HeaderMap) -> Result<Lookup, Response> {
        let Some(raw) = cookie(headers, ALERTS_COOKIE).filter(|v| !v.is_empty()) else {
            return Ok(Lookup::Absent);
        };
        let mut parts = raw.splitn(3, '.');
        let (Some(nonce), Some(id), Some(token)) = (parts.next(), parts.next(), parts.next())
        else {
            return Ok(Lookup::Invalid);
        };
        if !plain(nonce) || !plain(id) || !plain(token) {
            return Ok(Lookup::Invalid);
        }
        let me = self
            .call(
                Method::GET,
                &format!("/v1/subscribers/{id}"),
                Some(token),
                None,
            )
            .await?;
        if !me.status.is_success() {
            return Ok(Lookup::Invalid);
        }
        Ok(Lookup::Valid(Reader {
            id: id.to_owned(),
            name: me.body["name"].as_str().unwrap_or_default().to_owned(),
            email: me.body["email"].as_str().map(str::to_owned),
            token: token.to_owned(),
            csrf: csrf_token(token, nonce),
        }))
    }

    /// The reader, if signed up here; a stale cookie is reported so it can be cleared.
    async fn reader(&self, headers: &HeaderMap) -> Result<(Option<Reader>, bool), Response> {
        Ok(match self.lookup(headers).await? {
            Lookup::Valid(r) => (Some(r), false),
            Lookup::Invalid => (None, true),
            Lookup::Absent => (None, false),
        })
    }
}

// ----- answers -------------------------------------------------------------------------------

fn page(status: StatusCode, markup: Markup) -> Response {
    (status, Html(markup.into_string())).into_response()
}

fn see_other(location: &str) -> Response {
    let location = HeaderValue::from_str(location).unwrap_or(HeaderValue::from_static("/alerts"));
    (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response()
}

fn failure(cause: impl std::fmt::Display) -> Response {
    tracing::error!(%cause, "alerts page failed");
    page(
        StatusCode::INTERNAL_SERVER_ERROR,
        newsroom_projection::pages::error_page(500, "Something went wrong on our side."),
    )
}

/// The answer to a script's request from a browser that follows nothing.
fn not_signed_up() -> Response {
    newsroom_web::problem::Problem::new(
        StatusCode::UNAUTHORIZED,
        "not-following",
        "Not following anything",
        "this browser follows nothing yet: follow a story first",
    )
    .into_response()
}

fn csrf_refused() -> Response {
    page(StatusCode::FORBIDDEN, templates::refused_page())
}

type Answer = Result<Response, Response>;

// ----- what to follow ------------------------------------------------------------------------

/// What a follow form is about.
#[derive(Debug, Clone, Default, Deserialize)]
struct Target {
    story: Option<String>,
    actor: Option<String>,
}

/// A resolved target: the API's subscription filter and how to describe it.
#[derive(Debug, Clone)]
pub(crate) enum Followed {
    Story {
        id: Uuid,
        slug: String,
        headline: String,
    },
    Actor {
        name: String,
        key: String,
    },
}

impl Followed {
    fn filter(&self) -> Value {
        match self {
            Followed::Story { id, .. } => json!({"story": id}),
            Followed::Actor { name, .. } => json!({"actor": name}),
        }
    }
}

impl FollowState {
    /// The story's own fields (its developments are not needed here).
    async fn story(&self, id_or_slug: &str) -> Result<Option<StoryView>, Response> {
        self.views
            .story_head(id_or_slug.to_owned())
            .await
            .map_err(failure)
    }

    async fn resolve(&self, target: &Target) -> Result<Option<Followed>, Response> {
        if let Some(story) = target.story.as_deref().filter(|s| !s.trim().is_empty()) {
            // No story's id or slug holds a control character; a NUL would not even reach
            // PostgreSQL's text (it refuses the query), so such a value names nothing.
            if story.chars().any(char::is_control) {
                return Ok(None);
            }
            let view = self.story(story.trim()).await?;
            return Ok(view.map(|v| Followed::Story {
                id: v.id,
                slug: v.slug.clone(),
                headline: v.headline.clone(),
            }));
        }
        if let Some(actor) = target.actor.as_deref().filter(|s| !s.trim().is_empty()) {
            return Ok(newsroom_domain::Actor::parse("actor", actor.trim())
                .ok()
                .map(|a| Followed::Actor {
                    name: a.name().to_owned(),
                    key: a.key().to_owned(),
                }));
        }
        Ok(None)
    }
}

/// What the form asked for, kept to show it again.
#[derive(Debug, Clone, Default)]
pub(crate) struct Typed {
    pub name: String,
    pub email: String,
    pub digest: String,
}

// ----- handlers ------------------------------------------------------------------------------

async fn follow_form(
    State(state): State<FollowState>,
    headers: HeaderMap,
    Query(target): Query<Target>,
) -> Answer {
    let Some(followed) = state.resolve(&target).await? else {
        return Ok(page(StatusCode::NOT_FOUND, templates::nothing_to_follow()));
    };
    let (reader, stale) = state.reader(&headers).await?;
    let form_secret = cookie(&headers, FORM_COOKIE)
        .filter(|v| v.len() == 22 && plain(v))
        .map_or_else(nonce, str::to_owned);
    let csrf = reader
        .as_ref()
        .map_or(form_secret.clone(), |r| r.csrf.clone());
    let mut r = page(
        StatusCode::OK,
        templates::follow_page(
            &followed,
            reader.as_ref().map(|r| r.name.as_str()),
            &csrf,
            &Typed::default(),
            None,
        ),
    );
    let h = r.headers_mut();
    if reader.is_none() {
        h.append(
            header::SET_COOKIE,
            set_cookie(&headers, FORM_COOKIE, &form_secret, FORM_SECONDS),
        );
    }
    if stale {
        h.append(
            header::SET_COOKIE,
            set_cookie(&headers, ALERTS_COOKIE, "", 0),
        );
    }
    Ok(r)
}

async fn follow(State(state): State<FollowState>, headers: HeaderMap, body: Bytes) -> Answer {
    let form = FormData::parse(&body);
    let (reader, _) = state.reader(&headers).await?;
    let expected = match &reader {
        Some(r) => r.csrf.clone(),
        None => cookie(&headers, FORM_COOKIE).unwrap_or_default().to_owned(),
    };
    if expected.is_empty() || !same_secret(form.get("csrf"), &expected) {
        tracing::warn!("alerts form refused: missing or wrong CSRF token");
        return Ok(csrf_refused());
    }
    let target = Target {
        story: Some(form.get("story").to_owned()).filter(|s| !s.is_empty()),
        actor: Some(form.get("actor").to_owned()).filter(|s| !s.is_empty()),
    };
    let Some(followed) = state.resolve(&target).await? else {
        return Ok(page(StatusCode::NOT_FOUND, templates::nothing_to_follow()));
    };
    let typed = Typed {
        name: form.get("name").to_owned(),
        email: form.get("email").trim().to_owned(),
        digest: form.get("digest").to_owned(),
    };
    let again = |status: StatusCode, field: &str, detail: &str| {
        page(
            status,
            templates::follow_page(
                &followed,
                reader.as_ref().map(|r| r.name.as_str()),
                &expected,
                &typed,
                Some((field, detail)),
            ),
        )
    };
    let mut subscription = followed.filter();
    match typed.digest.as_str() {
        "" | "immediate" => {}
        minutes => match minutes.parse::<u32>() {
            Ok(m) if DIGEST_CHOICES.iter().any(|(c, _)| *c == m) => {
                subscription["delivery"] = json!("digest");
                subscription["digest_minutes"] = json!(m);
            }
            _ => {
                return Ok(again(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "digest",
                    "choose one of the offered options",
                ))
            }
        },
    }
    // Sign up first (the API checks the name and the address), then follow.
    let (id, token, new) = match &reader {
        Some(r) => (r.id.clone(), r.token.clone(), false),
        None => {
            let mut sign_up = json!({"name": typed.name});
            if !typed.email.is_empty() {
                sign_up["email"] = json!(typed.email);
            }
            let a = state
                .call(Method::POST, "/v1/subscribers", None, Some(&sign_up))
                .await?;
            if !a.status.is_success() {
                let (field, detail) = a.problem();
                return Ok(again(a.status, &field, &detail));
            }
            let id = a.body["id"].as_str().unwrap_or_default().to_owned();
            let token = a.body["token"].as_str().unwrap_or_default().to_owned();
            if !plain(&id) || !plain(&token) {
                return Err(failure("sign-up answered without an id or token"));
            }
            (id, token, true)
        }
    };
    if new && !typed.email.is_empty() {
        let a = state
            .call(
                Method::POST,
                &format!("/v1/subscribers/{id}/endpoints"),
                Some(&token),
                Some(&json!({"kind": "email", "address": typed.email})),
            )
            .await?;
        if !a.status.is_success() {
            let (_, detail) = a.problem();
            tracing::warn!(%detail, "email endpoint of a new reader refused");
        }
    }
    // A new reader is signed in on this browser whatever follows.
    let signed_up = new.then(|| {
        set_cookie(
            &headers,
            ALERTS_COOKIE,
            &format!("{}.{id}.{token}", nonce()),
            SESSION_SECONDS,
        )
    });
    let a = state
        .call(
            Method::POST,
            &format!("/v1/subscribers/{id}/subscriptions"),
            Some(&token),
            Some(&subscription),
        )
        .await?;
    if !a.status.is_success() {
        let (field, detail) = a.problem();
        // A sign-up that happened is kept: the reader is signed in and can try again.
        let mut r = again(a.status, &field, &detail);
        if let Some(c) = signed_up {
            r.headers_mut().append(header::SET_COOKIE, c);
        }
        return Ok(r);
    }
    let mut r = see_other(&format!("{ALERTS_PATH}?followed=1"));
    if let Some(c) = signed_up {
        let h = r.headers_mut();
        h.append(header::SET_COOKIE, c);
        h.append(header::SET_COOKIE, set_cookie(&headers, FORM_COOKIE, "", 0));
    }
    Ok(r)
}

/// A subscription as the page lists it.
#[derive(Debug, Clone)]
pub(crate) struct Following {
    pub id: String,
    pub what: Followed,
    pub delivery: String,
}

/// An alert as the page lists it.
#[derive(Debug, Clone)]
pub(crate) struct AlertLine {
    pub seq: i64,
    pub kind: String,
    pub payload: Value,
}

impl FollowState {
    async fn following(&self, reader: &Reader) -> Result<Vec<Following>, Response> {
        let a = self
            .call(
                Method::GET,
                &format!("/v1/subscribers/{}/subscriptions", reader.id),
                Some(&reader.token),
                None,
            )
            .await?;
        let mut list = Vec::new();
        for s in a.body.as_array().into_iter().flatten() {
            let what = if let Some(story) = s["story"].as_str() {
                match self.story(story).await? {
                    Some(v) => Followed::Story {
                        id: v.id,
                        slug: v.slug.clone(),
                        headline: v.headline.clone(),
                    },
                    None => continue,
                }
            } else if let Some(actor) = s["actor"].as_str() {
                Followed::Actor {
                    name: actor.to_owned(),
                    key: actor.to_owned(),
                }
            } else {
                // Made through the API with other filters: shown by what it is.
                continue;
            };
            let delivery = match s["digest_minutes"].as_u64() {
                Some(m) => DIGEST_CHOICES
                    .iter()
                    .find(|(c, _)| u64::from(*c) == m)
                    .map_or_else(
                        || format!("in a digest every {m} minutes"),
                        |(_, l)| format!("in a digest, {l}"),
                    ),
                None => "as it happens".to_owned(),
            };
            list.push(Following {
                id: s["id"].as_str().unwrap_or_default().to_owned(),
                what,
                delivery,
            });
        }
        Ok(list)
    }

    /// Whether the reader confirmed `address` (their email endpoint at it is no longer waiting).
    async fn email_confirmed(&self, reader: &Reader, address: &str) -> Result<bool, Response> {
        let a = self
            .call(
                Method::GET,
                &format!("/v1/subscribers/{}/endpoints", reader.id),
                Some(&reader.token),
                None,
            )
            .await?;
        Ok(a.body.as_array().into_iter().flatten().any(|e| {
            e["kind"] == "email"
                && e["status"] != "unconfirmed"
                && e["target"]
                    .as_str()
                    .is_some_and(|t| t.eq_ignore_ascii_case(address))
        }))
    }

    /// One page of alerts, newest first: the latest, or those before alert `before`; and the
    /// alert to page back from when there are older ones. One request for one page, whatever
    /// the reader's history holds.
    async fn alerts_page(
        &self,
        reader: &Reader,
        before: Option<i64>,
    ) -> Result<(Vec<AlertLine>, Option<i64>), Response> {
        // One more than shown says whether an older page exists.
        let mut path = format!(
            "/v1/subscribers/{}/alerts?limit={}",
            reader.id,
            SHOWN_ALERTS + 1
        );
        if let Some(before) = before {
            path.push_str(&format!("&before={before}"));
        }
        let a = self
            .call(Method::GET, &path, Some(&reader.token), None)
            .await?;
        if !a.status.is_success() {
            return Err(failure(format!("the alert list answered {}", a.status)));
        }
        let mut alerts: Vec<AlertLine> = a
            .body
            .as_array()
            .into_iter()
            .flatten()
            .map(|v| AlertLine {
                seq: v["seq"].as_i64().unwrap_or_default(),
                kind: v["type"].as_str().unwrap_or_default().to_owned(),
                payload: v["payload"].clone(),
            })
            .collect();
        let older = alerts.len() > SHOWN_ALERTS;
        alerts.truncate(SHOWN_ALERTS);
        let older = older.then(|| alerts.last().map(|a| a.seq)).flatten();
        Ok((alerts, older))
    }
}

#[derive(Debug, Default, Deserialize)]
struct PageQuery {
    followed: Option<String>,
    stopped: Option<String>,
    forgotten: Option<String>,
    /// Shows the page of alerts older than this one.
    before: Option<i64>,
}

async fn alerts_page(
    State(state): State<FollowState>,
    headers: HeaderMap,
    Query(query): Query<PageQuery>,
) -> Answer {
    let (reader, stale) = state.reader(&headers).await?;
    let mut r = match reader {
        None => page(
            StatusCode::OK,
            templates::no_alerts_page(query.forgotten.is_some()),
        ),
        Some(reader) => {
            let following = state.following(&reader).await?;
            let email = match reader.email.as_deref() {
                Some(e) => Some((e, state.email_confirmed(&reader, e).await?)),
                None => None,
            };
            let before = query.before.filter(|b| *b > 0);
            let (alerts, older) = state.alerts_page(&reader, before).await?;
            let notice = if query.followed.is_some() {
                Some("You are following it. Alerts appear here as they happen.")
            } else if query.stopped.is_some() {
                Some("You no longer follow it.")
            } else {
                None
            };
            page(
                StatusCode::OK,
                templates::alerts_page(
                    &reader.name,
                    email,
                    &reader.csrf,
                    &following,
                    &templates::AlertPage {
                        alerts: &alerts,
                        older,
                        // An older page stands still; only the latest is kept live.
                        live: before.is_none(),
                    },
                    notice,
                    &templates::Scripts {
                        alerts: ALERTS_JS_PATH,
                        push: PUSH_JS_PATH,
                        push_key: &state.push_key().await?,
                    },
                ),
            )
        }
    };
    if stale {
        r.headers_mut().append(
            header::SET_COOKIE,
            set_cookie(&headers, ALERTS_COOKIE, "", 0),
        );
    }
    Ok(r)
}

/// The alert list alone, for `alerts.js` to swap in place.
async fn alerts_list(State(state): State<FollowState>, headers: HeaderMap) -> Answer {
    let (Some(reader), _) = state.reader(&headers).await? else {
        return Ok(not_signed_up());
    };
    let (alerts, older) = state.alerts_page(&reader, None).await?;
    Ok(page(
        StatusCode::OK,
        templates::alert_list(&templates::AlertPage {
            alerts: &alerts,
            older,
            live: true,
        }),
    ))
}

#[derive(Debug, Default, Deserialize)]
struct StreamQuery {
    after: Option<i64>,
}

/// The API's alert stream of the signed-up reader, passed through. `?after=` (the last alert the
/// page shows) is where a first connection starts; a reconnecting browser's `Last-Event-ID` wins.
async fn alerts_stream(
    State(state): State<FollowState>,
    client: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Query(query): Query<StreamQuery>,
) -> Answer {
    let (Some(reader), _) = state.reader(&headers).await? else {
        return Ok(not_signed_up());
    };
    let mut request = FollowState::request(
        Method::GET,
        &format!("/v1/subscribers/{}/alerts/stream", reader.id),
        Some(&reader.token),
        None,
    );
    let resume = headers.get("last-event-id").cloned().or_else(|| {
        query
            .after
            .and_then(|a| HeaderValue::from_str(&a.to_string()).ok())
    });
    if let Some(v) = resume {
        request.headers_mut().insert("last-event-id", v);
    }
    // The reader's own address counts against the per-address cap on streams.
    if let Some(client) = client {
        request.extensions_mut().insert(client.0);
    }
    Ok(state
        .api
        .clone()
        .oneshot(request)
        .await
        .unwrap_or_else(|never| match never {}))
}

async fn stop_following(
    State(state): State<FollowState>,
    headers: HeaderMap,
    Path(subscription): Path<String>,
    body: Bytes,
) -> Answer {
    let form = FormData::parse(&body);
    let (Some(reader), _) = state.reader(&headers).await? else {
        return Ok(see_other(ALERTS_PATH));
    };
    if !same_secret(form.get("csrf"), &reader.csrf) {
        return Ok(csrf_refused());
    }
    if !plain(&subscription) {
        return Ok(page(StatusCode::NOT_FOUND, templates::nothing_to_follow()));
    }
    let a = state
        .call(
            Method::DELETE,
            &format!("/v1/subscribers/{}/subscriptions/{subscription}", reader.id),
            Some(&reader.token),
            None,
        )
        .await?;
    if !a.status.is_success() && a.status != StatusCode::NOT_FOUND {
        return Err(failure(format!("unsubscribing answered {}", a.status)));
    }
    Ok(see_other(&format!("{ALERTS_PATH}?stopped=1")))
}

/// Stops every alert: deletes the subscriber and clears the cookie.
async fn forget(State(state): State<FollowState>, headers: HeaderMap, body: Bytes) -> Answer {
    let form = FormData::parse(&body);
    let (reader, _) = state.reader(&headers).await?;
    if let Some(reader) = reader {
        if !same_secret(form.get("csrf"), &reader.csrf) {
            return Ok(csrf_refused());
        }
        let a = state
            .call(
                Method::DELETE,
                &format!("/v1/subscribers/{}", reader.id),
                Some(&reader.token),
                None,
            )
            .await?;
        if !a.status.is_success() && a.status != StatusCode::NOT_FOUND {
            return Err(failure(format!(
                "deleting the subscriber answered {}",
                a.status
            )));
        }
    }
    let mut r = see_other(&format!("{ALERTS_PATH}?forgotten=1"));
    r.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&headers, ALERTS_COOKIE, "", 0),
    );
    Ok(r)
}

impl FollowState {
    /// The VAPID public key browsers subscribe with.
    async fn push_key(&self) -> Result<String, Response> {
        let a = self.call(Method::GET, "/v1/push/key", None, None).await?;
        a.body["public_key"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| failure(format!("the push key answered {}", a.status)))
    }
}

/// What `push.js` posts: the browser's push subscription and the page's CSRF value.
#[derive(Debug, Deserialize)]
struct PushRegistration {
    csrf: String,
    subscription: Value,
}

/// Registers this browser's push subscription as an endpoint of the signed-up reader: the
/// API's `web_push` endpoint, so its checks (keys, the push service's address, caps) are the
/// API's. The same subscription again is no error: the browser already gets alerts.
async fn register_push(
    State(state): State<FollowState>,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    use newsroom_web::problem::Problem;
    let (Some(reader), _) = state.reader(&headers).await? else {
        return Ok(not_signed_up());
    };
    if body.len() > PUSH_LIMIT {
        return Ok(Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            "Too large",
            format!("a push subscription takes at most {PUSH_LIMIT} bytes"),
        )
        .into_response());
    }
    let Ok(registration) = serde_json::from_slice::<PushRegistration>(&body) else {
        return Ok(Problem::bad_request(
            None,
            "the body must be JSON: {\"csrf\": …, \"subscription\": the PushSubscription}",
        )
        .into_response());
    };
    if !same_secret(&registration.csrf, &reader.csrf) {
        return Ok(Problem::forbidden("this form is out of date: reload the page").into_response());
    }
    let a = state
        .call(
            Method::POST,
            &format!("/v1/subscribers/{}/endpoints", reader.id),
            Some(&reader.token),
            Some(&json!({"kind": "web_push", "subscription": registration.subscription})),
        )
        .await?;
    let already = a.status == StatusCode::CONFLICT && a.body["field"] == "subscription.endpoint";
    if a.status.is_success() || already {
        return Ok((
            StatusCode::OK,
            axum::Json(json!({"notifications": "on", "new": !already})),
        )
            .into_response());
    }
    let mut r = (a.status, axum::Json(a.body)).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    Ok(r)
}

async fn push_script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        PUSH_JS,
    )
        .into_response()
}

/// The service worker: script content type, allowed to control `/alerts` (its own folder is
/// `/alerts/`), and looked at afresh by the browser whenever it checks for an update.
async fn service_worker() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
            (
                header::HeaderName::from_static("service-worker-allowed"),
                ALERTS_PATH,
            ),
        ],
        SERVICE_WORKER,
    )
        .into_response()
}

async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        ALERTS_JS,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_parts_are_plain() {
        assert!(plain("0190f3c1-aaaa-7bbb-8ccc-0123456789ab"));
        assert!(plain("nrs_AbC-_9"));
        assert!(!plain(""));
        assert!(!plain("a.b"));
        assert!(!plain("a;b"));
        assert!(!plain(&"a".repeat(201)));
    }

    #[test]
    fn the_cookie_is_http_only_strict_and_scoped_to_alerts() {
        let c = set_cookie(&HeaderMap::new(), ALERTS_COOKIE, "n.i.t", 10);
        let c = c.to_str().unwrap();
        assert!(
            c.starts_with("newsroom_alerts=n.i.t; Path=/alerts; "),
            "{c}"
        );
        assert!(c.ends_with("HttpOnly; SameSite=Strict"), "{c}");
    }
}
