//! The read API (`GET /v1/…`), the feeds, the live stream and the reader's pages.
//!
//! Reads come from the views, and none folds a story. Time travel (`?as_of=`) reads the views'
//! history (`story_versions`, `development_versions`, `front_page_marks`); "what changed"
//! (`?since=`) reads the story's events after the position from the log (at most 500 per answer,
//! found by bisecting its sequence numbers) and shows each change with the development as it stood
//! right after it, from the history (`crate::history`). Answers carry an `ETag` naming the position
//! they reflect (and a story's related stories, `relations_tag`); a read may ask to see at least a
//! given position (`?min_position=`): the views' position is read once, then the read waits (at
//! most [`MIN_POSITION_WAIT`], 5 s, then 503 with `Retry-After`) on the live hub's signal of it; a
//! position past the log's end is a 404 at once.
//!
//! Routes (all `GET`): `/v1/stories[/{id-or-slug}[/claims|/feed.atom|/feed.json|/ninjs|/stream]]`,
//! the front page's feeds `/v1/feed.atom` and `/v1/feed.json` with `/v1/feeds/json-feed-extension`,
//! `/v1/actors/{name}[/feed.atom|/feed.json]`, `/v1/search` (public: published and retracted work;
//! [`parse_search`] is shared with the desk's search, which also finds pending work), the pages
//! `/`, `/stories/{slug}`, `/stories/{slug}/fragment`, `/actors/{name}`, `/search` and their static
//! files; the OpenAPI part is [`ReadApiDoc`].
//!
//! The absolute links of feeds and ninjs come from `NEWSROOM_PUBLIC_URL` (as alerts' do), never
//! from the request's `Host`. A story is answered a page at a time (`timeline`: the newest 100 in
//! the order they happened, `older` and `Link: rel="next"` to the page before; feeds hold the
//! newest page). The SSE stream is served by the hub (`live.rs`).

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Utc};
use newsroom_domain::Actor;
use newsroom_log::EventLog;
use newsroom_web::page::CSP;
use newsroom_web::problem::{Problem, ProblemDetails};
use newsroom_web::{int_param, query_params, ApiPath};
use serde::Serialize;
use tower_http::set_header::SetResponseHeaderLayer;
use uuid::Uuid;

use crate::history::{stories_after, HistoryError};
use crate::live::{story_events_between, LiveError, LiveHub};
use crate::pages::story::TimelineOptions;
use crate::resource::{
    at_moment, change_of, claims_link, older_link, public_claims, Change, StoryResource,
};
use crate::rows::{PageRead, ViewError};
use crate::store::ViewStore;
use crate::{feeds, pages, search};
use newsroom_readmodel::model::{
    relations_tag, ClaimEntry, ClaimsAsk, DevelopmentStanding, DevelopmentView, FrontPageEntry,
    LoggedEvent, StoryPage, StoryView, CLAIMS_DEFAULT, CLAIMS_MAX, PAGE_DEFAULT, PAGE_MAX,
};
use newsroom_readmodel::public_development;

/// How long a read waits for `min_position` before answering 503.
pub const MIN_POSITION_WAIT: Duration = Duration::from_secs(5);

/// What the read handlers reach.
#[derive(Clone, Debug)]
pub struct ReadState {
    pub views: ViewStore,
    pub log: EventLog,
    /// The live streams, which also say how far the views have got.
    pub live: LiveHub,
    /// The public base URL of the reader pages and API (`NEWSROOM_PUBLIC_URL`, as alerts use it),
    /// without a trailing slash: the absolute links of feeds and ninjs, never taken from a
    /// request's `Host`.
    pub public_url: String,
}

impl From<ViewError> for ReadError {
    fn from(e: ViewError) -> Self {
        if e.is_unavailable() {
            // The views' database is down or restarting: try again shortly.
            return ReadError(Problem::unavailable("the views cannot be read right now"));
        }
        ReadError(Problem::internal(e))
    }
}

/// A problem answer of the read side.
#[derive(Debug)]
pub struct ReadError(pub Problem);

impl From<Problem> for ReadError {
    fn from(p: Problem) -> Self {
        Self(p)
    }
}

impl From<newsroom_log::StoreError> for ReadError {
    fn from(e: newsroom_log::StoreError) -> Self {
        Self(e.into())
    }
}

impl From<newsroom_readmodel::decode::DecodeError> for ReadError {
    fn from(e: newsroom_readmodel::decode::DecodeError) -> Self {
        Self(Problem::internal(e))
    }
}

impl IntoResponse for ReadError {
    fn into_response(self) -> Response {
        self.0.into_response()
    }
}

type ReadResult<T = Response> = Result<T, ReadError>;

/// The OpenAPI document of the read side's JSON API and feeds (the reader pages are HTML for
/// browsers, not part of it).
#[derive(Debug, utoipa::OpenApi)]
#[openapi(paths(
    front_page_json,
    story_json,
    claims_json,
    story_atom,
    story_json_feed,
    story_ninjs,
    story_stream,
    actor_json,
    actor_atom,
    actor_json_feed,
    json_feed_extension,
    front_page_atom,
    front_page_json_feed,
    search_json
))]
pub struct ReadApiDoc;

/// The read side's routes, with their state applied.
pub fn router(state: ReadState) -> Router {
    Router::new()
        .route("/v1/stories", get(front_page_json))
        .route("/v1/stories/{id}", get(story_json))
        .route("/v1/stories/{id}/claims", get(claims_json))
        .route("/v1/stories/{id}/feed.atom", get(story_atom))
        .route("/v1/stories/{id}/feed.json", get(story_json_feed))
        .route("/v1/stories/{id}/ninjs", get(story_ninjs))
        .route("/v1/stories/{id}/stream", get(story_stream))
        .route("/v1/feed.atom", get(front_page_atom))
        .route("/v1/feed.json", get(front_page_json_feed))
        .route("/v1/feeds/json-feed-extension", get(json_feed_extension))
        .route("/v1/search", get(search_json))
        .route("/search", get(search_html))
        .route("/v1/actors/{name}", get(actor_json))
        .route("/v1/actors/{name}/feed.atom", get(actor_atom))
        .route("/v1/actors/{name}/feed.json", get(actor_json_feed))
        .route("/", get(front_page_html))
        .route("/stories/{slug}", get(story_html))
        .route("/stories/{slug}/fragment", get(story_fragment))
        .route("/actors/{name}", get(actor_html))
        .route("/static/newsroom.css", get(css))
        .route("/static/live.js", get(live_js))
        .route("/static/time.js", get(time_js))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .with_state(state)
}

// ----- shared helpers -------------------------------------------------------------------------

struct ReadParams(HashMap<String, String>);

impl ReadParams {
    fn parse(raw: Option<String>, allowed: &[&str]) -> ReadResult<Self> {
        Ok(Self(query_params(raw.as_deref(), allowed)?))
    }

    fn as_of(&self) -> ReadResult<Option<DateTime<Utc>>> {
        self.0
            .get("as_of")
            .map(|raw| {
                DateTime::parse_from_rfc3339(raw)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|_| {
                        Problem::bad_request(
                            Some("as_of"),
                            "`as_of` must be an RFC 3339 time, like 2026-11-03T12:00:00Z",
                        )
                        .into()
                    })
            })
            .transpose()
    }

    /// The page of the claims ledger asked for: `before` (a cursor) and `limit`.
    fn claims(&self) -> ReadResult<ClaimsAsk> {
        let before = self.int("before")?;
        let limit = int_param(
            &self.0,
            "limit",
            CLAIMS_DEFAULT as i64,
            1,
            CLAIMS_MAX as i64,
        )?;
        Ok(ClaimsAsk {
            before,
            limit: limit as usize,
        })
    }

    /// The page asked for: `before` (a cursor) and `limit`.
    fn page(&self) -> ReadResult<(Option<i64>, usize)> {
        let before = self.int("before")?;
        let limit = int_param(&self.0, "limit", PAGE_DEFAULT as i64, 1, PAGE_MAX as i64)?;
        Ok((before, limit as usize))
    }

    fn int(&self, name: &str) -> ReadResult<Option<i64>> {
        if !self.0.contains_key(name) {
            return Ok(None);
        }
        Ok(Some(int_param(&self.0, name, 0, 0, i64::MAX)?))
    }
}

impl ReadState {
    /// Waits until the views have applied `min` (bounded), or answers 503; a position past the
    /// log's head is a 404. Reads the views'
    /// position once, then waits for the live hub, which follows it for the whole process.
    async fn reach(&self, min: Option<i64>) -> ReadResult<()> {
        let Some(min) = min else { return Ok(()) };
        // Heard announced: no round trip.
        if self
            .views
            .heard_position()
            .is_some_and(|heard| heard >= min)
        {
            return Ok(());
        }
        if self.views.position().await? >= min {
            return Ok(());
        }
        // A position the log has not reached is not worth waiting for: nothing was answered
        // with it (a command's answer names a committed position).
        let head = self.log.current_head().await?;
        if head < min {
            return Err(Problem::not_found(format!(
                "nothing has been recorded at position {min}: the log ends at {head}"
            ))
            .with_field("min_position")
            .into());
        }
        let mut reached = self.live.reached();
        let waited = tokio::time::timeout(MIN_POSITION_WAIT, reached.wait_for(|p| *p >= min)).await;
        match waited {
            Ok(Ok(_)) => Ok(()),
            _ => Err(Problem::unavailable(format!(
                "the views have not reached position {min} yet; try again"
            ))
            .with_field("min_position")
            .into()),
        }
    }

    async fn resolve(&self, id_or_slug: &str) -> ReadResult<Uuid> {
        self.views
            .resolve(id_or_slug.to_owned())
            .await?
            .ok_or_else(|| Problem::not_found(format!("no story `{id_or_slug}`")).into())
    }

    /// A page of a story as it is now, or as it stood at `as_of` (see [`StoryPage`]).
    async fn page(
        &self,
        id_or_slug: &str,
        as_of: Option<DateTime<Utc>>,
        before: Option<i64>,
        limit: usize,
        claims: ClaimsAsk,
    ) -> ReadResult<StoryPage> {
        let key = id_or_slug.to_owned();
        let read = match as_of {
            None => self.views.story_page(key, before, limit, claims).await?,
            Some(t) => {
                self.views
                    .story_page_as_of(key, t, before, limit, claims)
                    .await?
            }
        };
        match read {
            PageRead::Found(page) => Ok(*page),
            PageRead::NoStory => Err(Problem::not_found(format!("no story `{id_or_slug}`")).into()),
            PageRead::NoCursor => Err(no_cursor()),
            PageRead::NotThen => Err(Problem::not_found("the story did not exist then").into()),
        }
    }

    /// The reader-visible changes of a story with positions in `(since, upto]`, at most
    /// `SINCE_MAX` events' worth, each with the development as it stood right after the change
    /// (from the views' history); with the position to ask from next if there are more. Reads
    /// the story's events after `since` only, never its whole history.
    async fn changes_since(
        &self,
        story: Uuid,
        since: i64,
        upto: i64,
    ) -> ReadResult<(Vec<Change>, Option<i64>)> {
        let events = story_events_between(&self.log, story, since, upto, SINCE_MAX).await?;
        let more = (events.len() == SINCE_MAX)
            .then(|| events.last().map(|e| e.position))
            .flatten();
        let asked: Vec<&LoggedEvent> = events.iter().collect();
        let views = stories_after(&self.log, &self.views, &asked).await?;
        let changes = events
            .iter()
            .zip(views)
            .filter_map(|(e, view)| change_of(view.as_ref()?, e))
            .collect();
        Ok((changes, more))
    }
}

/// A page that does not exist: the cursor names no development readers see in the story.
fn no_cursor() -> ReadError {
    Problem::not_found("`before` must be the position of a development readers see in this story")
        .with_field("before")
        .into()
}

/// Answers `body` with an ETag; a matching `If-None-Match` gets a 304.
fn cached(
    headers: &HeaderMap,
    etag: String,
    content_type: &'static str,
    body: impl Into<axum::body::Body>,
) -> Response {
    let etag = format!("\"{etag}\"");
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut response = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, content_type)], body.into()).into_response()
    };
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, no-cache"),
    );
    response
}

const JSON: &str = "application/json";

fn json_string<T: Serialize>(value: &T) -> ReadResult<String> {
    serde_json::to_string(value).map_err(|e| ReadError(Problem::internal(e)))
}

// ----- JSON endpoints ---------------------------------------------------------------------

/// The front page: every story's line, newest change first.
#[derive(Serialize, utoipa::ToSchema)]
struct FrontPage {
    position: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    as_of: Option<DateTime<Utc>>,
    stories: Vec<FrontPageEntry>,
}

/// The front page: every story's line, newest change first.
#[utoipa::path(get, path = "/v1/stories", tag = "read",
    params(("as_of" = Option<String>, Query, format = DateTime, description = "the state at this moment (RFC 3339), folded from the log"), ("min_position" = Option<i64>, Query, minimum = 0, description = "answer only once the views have applied this position (from a command's answer); waits at most 5 s, then 503"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "stories, 1–1000, default 100")),
    responses((status = 200, body = FrontPage, description = "`position`, `stories` (and `as_of`)", headers(("ETag" = String))), (status = 304, description = "not modified since the `ETag` sent in `If-None-Match`"),
        (status = 404, body = ProblemDetails, description = "`min_position` is past the log's end")))]
async fn front_page_json(
    State(state): State<ReadState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> ReadResult {
    let params = ReadParams::parse(query, &["as_of", "min_position", "limit"])?;
    state.reach(params.int("min_position")?).await?;
    let limit = int_param(&params.0, "limit", 100, 1, 1000)? as usize;
    if let Some(as_of) = params.as_of()? {
        let stories = state.views.front_page_as_of(as_of, limit).await?;
        let position = stories.iter().map(|s| s.position).max().unwrap_or(0);
        let body = json_string(&FrontPage {
            position,
            as_of: Some(as_of),
            stories,
        })?;
        return Ok(([(header::CONTENT_TYPE, JSON)], body).into_response());
    }
    let position = state.views.position().await?;
    let stories = state.views.front_page(limit).await?;
    let body = json_string(&FrontPage {
        position,
        as_of: None,
        stories,
    })?;
    Ok(cached(&headers, format!("f{position}-{limit}"), JSON, body))
}

/// Stories in the front page's feeds.
const FRONT_PAGE_FEED_ITEMS: usize = 100;

/// The front page as an Atom feed: one entry per story, in the front page's order.
#[utoipa::path(get, path = "/v1/feed.atom", tag = "feeds",
    responses((status = 200, content_type = "application/atom+xml", body = String, headers(("ETag" = String))),
        (status = 304, description = "not modified since the `ETag` sent in `If-None-Match`")))]
async fn front_page_atom(State(state): State<ReadState>, headers: HeaderMap) -> ReadResult {
    let position = state.views.position().await?;
    let stories = state.views.front_page(FRONT_PAGE_FEED_ITEMS).await?;
    Ok(cached(
        &headers,
        format!("Fa{position}"),
        feeds::ATOM_CONTENT_TYPE,
        feeds::atom::front_page_atom(&stories, &state.public_url),
    ))
}

/// The front page as a JSON Feed 1.1: one item per story, in the front page's order.
#[utoipa::path(get, path = "/v1/feed.json", tag = "feeds",
    responses((status = 200, content_type = "application/feed+json", body = Object, headers(("ETag" = String))),
        (status = 304, description = "not modified since the `ETag` sent in `If-None-Match`")))]
async fn front_page_json_feed(State(state): State<ReadState>, headers: HeaderMap) -> ReadResult {
    let position = state.views.position().await?;
    let stories = state.views.front_page(FRONT_PAGE_FEED_ITEMS).await?;
    let body = json_string(&feeds::json_feed::front_page_json_feed(
        &stories,
        &state.public_url,
    ))?;
    Ok(cached(
        &headers,
        format!("Fj{position}"),
        feeds::JSON_FEED_CONTENT_TYPE,
        body,
    ))
}

/// What changed in a story after a position (`?since=`).
#[derive(Serialize, utoipa::ToSchema)]
struct ChangesAnswer {
    story_id: Uuid,
    since: i64,
    position: i64,
    changes: Vec<Change>,
}

/// What `GET /v1/stories/{id}` answers: the story, or with `since` what changed (for the
/// document only).
#[derive(Serialize, utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum StoryAnswer {
    Story(Box<StoryResource>),
    Changes(ChangesAnswer),
}

/// A story: its line, a page of its timeline (newest first; `Link: rel="next"` to older ones)
/// and its claims ledger; or, with `since`, the reader-visible changes after a position.
#[utoipa::path(get, path = "/v1/stories/{id}", tag = "read",
    params(("id" = String, Path, min_length = 1, description = "the story's id or slug", example = "campaign-hack-2026"), ("as_of" = Option<String>, Query, format = DateTime, description = "the state at this moment (RFC 3339), folded from the log"),
        ("since" = Option<i64>, Query, minimum = 0, description = "only the changes after this position (not with `as_of`)"),
        ("min_position" = Option<i64>, Query, minimum = 0, description = "answer only once the views have applied this position (from a command's answer); waits at most 5 s, then 503"),
        ("before" = Option<i64>, Query, minimum = 0, description = "the page of developments before this cursor (from `Link`)"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "developments per page, 1–1000, default 100")),
    responses((status = 200, body = StoryAnswer, description = "the story (a page of it); with `since`, the changes after that position", headers(("ETag" = String), ("Link" = String, description = "the next (older) page, RFC 8288"))), (status = 304, description = "not modified since the `ETag` sent in `If-None-Match`"), (status = 404, body = ProblemDetails, description = "no such story")))]
async fn story_json(
    State(state): State<ReadState>,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> ReadResult {
    let params = ReadParams::parse(
        query,
        &["as_of", "since", "min_position", "before", "limit"],
    )?;
    let at_least = params.int("min_position")?;
    state.reach(at_least).await?;
    let as_of = params.as_of()?;
    let since = params.int("since")?;
    let (before, limit) = params.page()?;
    let first_page = before.is_none() && limit == PAGE_DEFAULT;
    if as_of.is_none() && since.is_none() && first_page {
        // The common read: the stored body, one query, usually from memory.
        let story = state
            .views
            .story_body_by(id.clone(), at_least)
            .await?
            .ok_or_else(|| Problem::not_found(format!("no story `{id}`")))?;
        let older = older_link(story.id, story.older, PAGE_DEFAULT);
        let tag = format!(
            "s{}{}",
            story.position,
            relations_tag(Some(story.relations.as_slice()))
        );
        let response = cached(&headers, tag, JSON, story.body);
        return Ok(with_next(response, older));
    }
    if let Some(since) = since {
        if as_of.is_some() {
            return Err(
                Problem::bad_request(Some("since"), "use `since` or `as_of`, not both").into(),
            );
        }
        let id = state.resolve(&id).await?;
        let upto = state.views.position().await?;
        let (changes, more) = state.changes_since(id, since, upto).await?;
        let position = match more {
            Some(next) => next,
            None => changes.last().map_or(since, |c| c.position),
        };
        let body = json_string(&ChangesAnswer {
            story_id: id,
            since,
            position,
            changes,
        })?;
        return Ok(([(header::CONTENT_TYPE, JSON)], body).into_response());
    }
    let page = state
        .page(&id, as_of, before, limit, ClaimsAsk::default())
        .await?;
    let older = older_link(page.view.id, page.older, limit).map(|link| at_moment(link, as_of));
    let body = json_string(&StoryResource::of(&page, older.clone()))?;
    let response = if as_of.is_none() {
        cached(
            &headers,
            format!(
                "s{}-{}-{limit}{}",
                page.view.position,
                before.unwrap_or(0),
                relations_tag(page.relations.as_deref())
            ),
            JSON,
            body,
        )
    } else {
        ([(header::CONTENT_TYPE, JSON)], body).into_response()
    };
    Ok(with_next(response, older))
}

/// Adds a `Link` to the next page (RFC 8288), if there is one.
fn with_next(mut response: Response, next: Option<String>) -> Response {
    if let Some(v) = next.and_then(|l| HeaderValue::from_str(&format!("<{l}>; rel=\"next\"")).ok())
    {
        response.headers_mut().insert(header::LINK, v);
    }
    response
}

/// A page of a story's claims ledger.
#[derive(Serialize, utoipa::ToSchema)]
struct ClaimsAnswer {
    story_id: Uuid,
    position: i64,
    claims: Vec<ClaimEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    older: Option<String>,
}

/// A page of a story's claims ledger: its newest claims (by recording; `Link: rel="next"` to
/// older ones), each with its newest responses and the published responses that settle its
/// status, in the order they happened.
#[utoipa::path(get, path = "/v1/stories/{id}/claims", tag = "read",
    params(("id" = String, Path, min_length = 1, description = "the story's id or slug", example = "campaign-hack-2026"), ("as_of" = Option<String>, Query, format = DateTime, description = "the state at this moment (RFC 3339), folded from the log"), ("min_position" = Option<i64>, Query, minimum = 0, description = "answer only once the views have applied this position (from a command's answer); waits at most 5 s, then 503"),
        ("before" = Option<i64>, Query, minimum = 0, description = "the page of claims recorded before this cursor (from `Link` or `older`)"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 100, description = "claims per page, 1–100, default 20")),
    responses((status = 200, body = ClaimsAnswer, headers(("ETag" = String), ("Link" = String, description = "the next (older) page of claims, RFC 8288"))), (status = 304, description = "not modified since the `ETag` sent in `If-None-Match`"), (status = 404, body = ProblemDetails, description = "no such story")))]
async fn claims_json(
    State(state): State<ReadState>,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> ReadResult {
    let params = ReadParams::parse(query, &["as_of", "min_position", "before", "limit"])?;
    state.reach(params.int("min_position")?).await?;
    let as_of = params.as_of()?;
    let claims = params.claims()?;
    let page = state.page(&id, as_of, None, 1, claims).await?;
    let older = claims_link(page.view.id, page.claims_older, claims.limit)
        .map(|link| at_moment(link, as_of));
    let body = json_string(&ClaimsAnswer {
        story_id: page.view.id,
        position: page.view.position,
        claims: public_claims(&page.ledger),
        older: older.clone(),
    })?;
    let response = match as_of {
        None => cached(
            &headers,
            format!(
                "c{}-{}-{}",
                page.view.position,
                claims.before.unwrap_or(0),
                claims.limit
            ),
            JSON,
            body,
        ),
        Some(_) => ([(header::CONTENT_TYPE, JSON)], body).into_response(),
    };
    Ok(with_next(response, older))
}

/// Most events one `?since=` answer reads (its `position` then says where to go on from).
const SINCE_MAX: usize = 500;

/// Developments in a story's feeds: the newest, as on the first page.
const FEED_ITEMS: usize = PAGE_DEFAULT;

/// The story as its feeds show it: its newest developments (and its related stories).
async fn current_page(state: &ReadState, id: &str) -> ReadResult<StoryPage> {
    // Feeds show no claims ledger.
    let claims = ClaimsAsk {
        before: None,
        limit: 0,
    };
    state.page(id, None, None, FEED_ITEMS, claims).await
}

/// The story as its feeds show it: its newest developments.
async fn current_story(state: &ReadState, id: &str) -> ReadResult<StoryView> {
    Ok(current_page(state, id).await?.view)
}

/// A story's Atom feed (RFC 4287).
#[utoipa::path(get, path = "/v1/stories/{id}/feed.atom", tag = "feeds", params(("id" = String, Path, min_length = 1, description = "the story's id or slug", example = "campaign-hack-2026")),
    responses((status = 200, content_type = "application/atom+xml", body = String, headers(("ETag" = String))), (status = 304, description = "not modified since the `ETag` sent in `If-None-Match`"), (status = 404, body = ProblemDetails, description = "no such story")))]
async fn story_atom(
    State(state): State<ReadState>,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
) -> ReadResult {
    let view = current_story(&state, &id).await?;
    let body = feeds::atom::story_atom(&view, &state.public_url);
    Ok(cached(
        &headers,
        format!("a{}", view.position),
        "application/atom+xml; charset=utf-8",
        body,
    ))
}

/// A story's JSON Feed 1.1.
#[utoipa::path(get, path = "/v1/stories/{id}/feed.json", tag = "feeds", params(("id" = String, Path, min_length = 1, description = "the story's id or slug", example = "campaign-hack-2026")),
    responses((status = 200, content_type = "application/feed+json", body = Object, headers(("ETag" = String))), (status = 304, description = "not modified since the `ETag` sent in `If-None-Match`"), (status = 404, body = ProblemDetails, description = "no such story")))]
async fn story_json_feed(
    State(state): State<ReadState>,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
) -> ReadResult {
    let view = current_story(&state, &id).await?;
    let body = json_string(&feeds::json_feed::story_json_feed(&view, &state.public_url))?;
    Ok(cached(
        &headers,
        format!("j{}", view.position),
        "application/feed+json",
        body,
    ))
}

/// A story as an IPTC ninjs item: its developments and its related stories are its
/// `associations`.
#[utoipa::path(get, path = "/v1/stories/{id}/ninjs", tag = "feeds", params(("id" = String, Path, min_length = 1, description = "the story's id or slug", example = "campaign-hack-2026")),
    responses((status = 200, body = Object, headers(("ETag" = String))), (status = 304, description = "not modified since the `ETag` sent in `If-None-Match`"), (status = 404, body = ProblemDetails, description = "no such story")))]
async fn story_ninjs(
    State(state): State<ReadState>,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
) -> ReadResult {
    let page = current_page(&state, &id).await?;
    let related = page.relations.as_deref().unwrap_or_default();
    let body = json_string(&feeds::ninjs::story_ninjs_with(
        &page.view,
        related,
        &state.public_url,
    ))?;
    let tag = format!(
        "n{}{}",
        page.view.position,
        relations_tag(page.relations.as_deref())
    );
    Ok(cached(&headers, tag, JSON, body))
}

/// An actor's newest developments across stories.
#[derive(Serialize, utoipa::ToSchema)]
struct ActorAnswer {
    actor: String,
    key: String,
    developments: Vec<ActorDevelopment>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct ActorDevelopment {
    story_id: Uuid,
    story_slug: String,
    story_headline: String,
    development: DevelopmentView,
}

/// An actor's newest entries, with its name as first spelled there, its key and the ETag of
/// the answers made of them (the views' position, read first, so an answer is never older than
/// its tag). Not found when no visible development names the actor.
async fn actor_entries(
    state: &ReadState,
    name: &str,
) -> ReadResult<(
    String,
    String,
    Vec<newsroom_readmodel::model::ActorEntry>,
    i64,
)> {
    let key = Actor::normalise(name);
    let position = state.views.position().await?;
    let entries = state.views.actor(key.clone(), 500).await?;
    let Some(first) = entries.first() else {
        return Err(ReadError(Problem::not_found(
            "no published development names this actor",
        )));
    };
    let display = first.actor.name().to_owned();
    Ok((display, key, entries, position))
}

/// The published developments that name an actor, newest first.
#[utoipa::path(get, path = "/v1/actors/{name}", tag = "read", params(("name" = String, Path, min_length = 1, description = "an actor's name, in any spelling that normalises to it", example = "Fancy Bear"), ("min_position" = Option<i64>, Query, minimum = 0, description = "answer only once the views have applied this position (from a command's answer); waits at most 5 s, then 503")),
    responses((status = 200, body = ActorAnswer, headers(("ETag" = String))), (status = 304, description = "not modified since the `ETag` sent in `If-None-Match`"),
        (status = 404, body = ProblemDetails, description = "no published development names this actor")))]
async fn actor_json(
    State(state): State<ReadState>,
    ApiPath(name): ApiPath<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> ReadResult {
    let params = ReadParams::parse(query, &["min_position"])?;
    state.reach(params.int("min_position")?).await?;
    let (actor, key, entries, position) = actor_entries(&state, &name).await?;
    let body = json_string(&ActorAnswer {
        actor,
        key,
        developments: entries
            .into_iter()
            .map(|e| ActorDevelopment {
                story_id: e.story_id,
                story_slug: e.story_slug,
                story_headline: e.story_headline,
                development: public_development(&e.development),
            })
            .collect(),
    })?;
    Ok(cached(&headers, format!("A{position}"), JSON, body))
}

/// An actor's Atom feed.
#[utoipa::path(get, path = "/v1/actors/{name}/feed.atom", tag = "feeds", params(("name" = String, Path, min_length = 1, description = "an actor's name, in any spelling that normalises to it", example = "Fancy Bear")),
    responses((status = 200, content_type = "application/atom+xml", body = String, headers(("ETag" = String))), (status = 304, description = "not modified since the `ETag` sent in `If-None-Match`"),
        (status = 404, body = ProblemDetails, description = "no published development names this actor")))]
async fn actor_atom(
    State(state): State<ReadState>,
    ApiPath(name): ApiPath<String>,
    headers: HeaderMap,
) -> ReadResult {
    let (actor, key, entries, position) = actor_entries(&state, &name).await?;
    let body = feeds::atom::actor_atom(&actor, &key, &entries, &state.public_url);
    Ok(cached(
        &headers,
        format!("Aa{position}"),
        "application/atom+xml; charset=utf-8",
        body,
    ))
}

/// An actor's JSON Feed 1.1.
#[utoipa::path(get, path = "/v1/actors/{name}/feed.json", tag = "feeds", params(("name" = String, Path, min_length = 1, description = "an actor's name, in any spelling that normalises to it", example = "Fancy Bear")),
    responses((status = 200, content_type = "application/feed+json", body = Object, headers(("ETag" = String))), (status = 304, description = "not modified since the `ETag` sent in `If-None-Match`"),
        (status = 404, body = ProblemDetails, description = "no published development names this actor")))]
async fn actor_json_feed(
    State(state): State<ReadState>,
    ApiPath(name): ApiPath<String>,
    headers: HeaderMap,
) -> ReadResult {
    let (actor, key, entries, position) = actor_entries(&state, &name).await?;
    let body = json_string(&feeds::json_feed::actor_json_feed(
        &actor,
        &key,
        &entries,
        &state.public_url,
    ))?;
    Ok(cached(
        &headers,
        format!("Aj{position}"),
        "application/feed+json",
        body,
    ))
}

// ----- live stream ------------------------------------------------------------------------

/// The address a request came from, if the server was started with connect info.
struct ClientAddress(Option<std::net::IpAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientAddress {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

impl From<HistoryError> for ReadError {
    fn from(e: HistoryError) -> Self {
        match e {
            HistoryError::View(v) => v.into(),
            HistoryError::Log(l) => l.into(),
        }
    }
}

impl From<LiveError> for ReadError {
    fn from(e: LiveError) -> Self {
        ReadError(match e {
            LiveError::View(v) => return v.into(),
            LiveError::History(h) => return h.into(),
            LiveError::Feed(f) => return f.into(),
            LiveError::NotFound(id) => Problem::not_found(format!("no story `{id}`")),
            LiveError::TooManyFromAddress => Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too-many-streams",
                "Too many open streams",
                "too many live streams are open from this address; close one or try again later",
            )
            .retry_after(5),
            LiveError::TooMany => Problem::unavailable(
                "the server holds as many live streams as it can; try again shortly",
            )
            .retry_after(5),
            e @ LiveError::Decode(_) => Problem::internal(e),
        })
    }
}

/// Server-sent events of a story's reader-visible changes, from the process's broadcast hub
/// (`live.rs`). `id:` is the change's global position; a reconnecting client's
/// `Last-Event-ID` (or `?after=`, for a page that knows the position it shows) resumes strictly
/// after it.
#[utoipa::path(get, path = "/v1/stories/{id}/stream", tag = "read",
    params(("id" = String, Path, min_length = 1, description = "the story's id or slug", example = "campaign-hack-2026"), ("min_position" = Option<i64>, Query, minimum = 0, description = "answer only once the views have applied this position (from a command's answer); waits at most 5 s, then 503"),
        ("after" = Option<i64>, Query, minimum = 0, description = "resume after this position (as `Last-Event-ID`)"),
        ("Last-Event-ID" = Option<i64>, Header, minimum = 0, description = "resume strictly after this position")),
    responses((status = 200, content_type = "text/event-stream", body = String,
        description = "Server-sent events, one per reader-visible change: `event:` is the change (`added`, `corrected`, `retracted`, `story_revised`, `story_closed`, `story_reopened`), `id:` its position, `data:` the change as JSON"),
        (status = 404, body = ProblemDetails, description = "no such story"),
        (status = 429, body = ProblemDetails, description = "too many streams open from this address", headers(("Retry-After" = i64))),
        (status = 503, body = ProblemDetails, description = "the server holds as many streams as it can", headers(("Retry-After" = i64)))))]
async fn story_stream(
    State(state): State<ReadState>,
    ApiPath(id): ApiPath<String>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> ReadResult {
    let params = ReadParams::parse(query, &["min_position", "after"])?;
    state.reach(params.int("min_position")?).await?;
    let story = state.resolve(&id).await?;
    let last = match headers.get("last-event-id") {
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<i64>().ok())
                .filter(|p| *p >= 0)
                .ok_or_else(|| {
                    Problem::bad_request(Some("Last-Event-ID"), "must be a position (an integer)")
                })?,
        ),
        // A new subscriber gets what happens from now on.
        None => params.int("after")?,
    };
    let stream = state.live.open(story, last, address).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        stream.into_body(),
    )
        .into_response())
}

// ----- pages --------------------------------------------------------------------------------

fn page(status: StatusCode, markup: maud::Markup) -> Response {
    (status, Html(markup.into_string())).into_response()
}

async fn front_page_html(State(state): State<ReadState>) -> ReadResult {
    let entries = state.views.front_page(100).await?;
    Ok(page(StatusCode::OK, pages::front::front_page(&entries)))
}

/// A page of a story for the reader pages: the newest developments, or those before the
/// query's `before`.
async fn story_page_by_slug(
    state: &ReadState,
    slug: &str,
    query: Option<String>,
) -> Result<(StoryPage, TimelineOptions), Response> {
    let asked =
        ReadParams::parse(query, &["before", "order", "show", "claims_before"]).and_then(|p| {
            let options = TimelineOptions::parse(
                p.0.get("order").map(String::as_str),
                p.0.get("show").map(String::as_str),
            )
            .map_err(|e| ReadError::from(Problem::bad_request(Some(e.field), e.expected)))?;
            let claims = ClaimsAsk {
                before: p.int("claims_before")?,
                ..ClaimsAsk::default()
            };
            Ok((p.int("before")?, options, claims))
        });
    let (before, options, claims) = match asked {
        Ok(asked) => asked,
        Err(e) => return Err(e.into_response()),
    };
    match state
        .views
        .story_page(slug.to_owned(), before, PAGE_DEFAULT, claims)
        .await
    {
        Ok(PageRead::Found(page)) => Ok((*page, options)),
        Ok(PageRead::NoStory) => Err(page(StatusCode::NOT_FOUND, pages::not_found_page("story"))),
        Ok(PageRead::NoCursor) => Err(no_cursor().into_response()),
        Ok(PageRead::NotThen) => Err(page(StatusCode::NOT_FOUND, pages::not_found_page("story"))),
        Err(e) => Err(ReadError::from(e).into_response()),
    }
}

async fn story_html(
    State(state): State<ReadState>,
    ApiPath(slug): ApiPath<String>,
    RawQuery(query): RawQuery,
) -> Response {
    match story_page_by_slug(&state, &slug, query).await {
        Ok((story, options)) => page(StatusCode::OK, pages::story::story_page(&story, options)),
        Err(r) => r,
    }
}

async fn story_fragment(
    State(state): State<ReadState>,
    ApiPath(slug): ApiPath<String>,
    RawQuery(query): RawQuery,
) -> Response {
    match story_page_by_slug(&state, &slug, query).await {
        Ok((story, options)) => page(
            StatusCode::OK,
            pages::story::timeline_fragment(&story, options),
        ),
        Err(r) => r,
    }
}

/// The actor's page, even for an actor nothing names yet: it is where readers follow them.
async fn actor_html(State(state): State<ReadState>, ApiPath(name): ApiPath<String>) -> ReadResult {
    let entries = state.views.actor(Actor::normalise(&name), 500).await?;
    let actor = entries.first().map_or(name.as_str(), |e| e.actor.name());
    Ok(page(
        StatusCode::OK,
        pages::actor::actor_page(actor, &entries),
    ))
}

// ----- search -------------------------------------------------------------------------------

/// The query parameters of a search.
pub const SEARCH_PARAMS: &[&str] = &[
    "q", "story", "actor", "kind", "from", "to", "limit", "cursor",
];

/// The desk's search takes `status` too.
pub const DESK_SEARCH_PARAMS: &[&str] = &[
    "q", "story", "actor", "kind", "from", "to", "limit", "cursor", "status",
];

/// A time bound of a search: an RFC 3339 time, or a date (the day's start for `from`, its end
/// for `to`), as the views sort times.
fn search_bound(params: &HashMap<String, String>, name: &str) -> Result<Option<String>, Problem> {
    let Some(raw) = params.get(name).filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    let bad = || {
        Problem::bad_request(
            Some(name),
            format!(
                "`{name}` must be a date (2026-11-03) or an RFC 3339 time (2026-11-03T12:00:00Z)"
            ),
        )
    };
    let at = match DateTime::parse_from_rfc3339(raw) {
        Ok(t) => t.with_timezone(&Utc),
        Err(_) => {
            let day = chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d").map_err(|_| bad())?;
            let time = if name == "to" {
                chrono::NaiveTime::from_hms_micro_opt(23, 59, 59, 999_999)
            } else {
                chrono::NaiveTime::from_hms_opt(0, 0, 0)
            };
            day.and_time(time.ok_or_else(bad)?).and_utc()
        }
    };
    Ok(Some(crate::rows::sortable_time(&at)))
}

/// Parses a search's query parameters (`SEARCH_PARAMS`) for `audience`; a story filter is
/// looked up (by id or slug) in the views. The desk searches with these too.
pub async fn parse_search(
    views: &ViewStore,
    params: &HashMap<String, String>,
    audience: search::Audience,
) -> ReadResult<search::Search> {
    let raw = params.get("q").map(String::as_str).unwrap_or("");
    let query =
        search::Query::parse(raw).map_err(|e| Problem::bad_request(Some("q"), e.to_string()))?;
    let story =
        match params.get("story").filter(|s| !s.is_empty()) {
            None => None,
            Some(s) => Some(views.resolve(s.clone()).await?.ok_or_else(|| {
                Problem::not_found(format!("no story `{s}`")).with_field("story")
            })?),
        };
    let actor = params
        .get("actor")
        .filter(|a| !a.trim().is_empty())
        .map(|a| Actor::normalise(a));
    let kind = match params.get("kind").filter(|k| !k.is_empty()) {
        None => None,
        Some(k) => Some(
            k.parse::<newsroom_domain::DevelopmentKind>()
                .map_err(|e| Problem::bad_request(Some("kind"), e))?,
        ),
    };
    // `status` is the desk's: readers see published and retracted work only.
    let status = match params.get("status").filter(|s| !s.is_empty()) {
        None => None,
        Some(_) if audience == search::Audience::Public => {
            return Err(
                Problem::bad_request(Some("status"), "`status` is for staff, at the desk").into(),
            )
        }
        Some(s) => Some(match s.as_str() {
            "pending_review" => DevelopmentStanding::PendingReview,
            "published" => DevelopmentStanding::Published,
            "retracted" => DevelopmentStanding::Retracted,
            _ => {
                return Err(Problem::bad_request(
                    Some("status"),
                    "`status` must be pending_review, published or retracted",
                )
                .into())
            }
        }),
    };
    let (from, to) = (search_bound(params, "from")?, search_bound(params, "to")?);
    if let (Some(from), Some(to)) = (&from, &to) {
        if to < from {
            return Err(Problem::bad_request(Some("to"), "`to` is before `from`").into());
        }
    }
    let limit = int_param(
        params,
        "limit",
        search::LIMIT_DEFAULT as i64,
        1,
        search::LIMIT_MAX as i64,
    )? as usize;
    let offset = int_param(
        params,
        "cursor",
        0,
        0,
        (search::WINDOW + search::STORY_WINDOW) as i64,
    )? as usize;
    Ok(search::Search {
        query,
        story,
        actor,
        kind,
        status,
        from,
        to,
        audience,
        offset,
        limit,
    })
}

/// The link to the next page of a search: the same parameters, the cursor moved on.
pub fn search_next(path: &str, params: &HashMap<String, String>, next: usize) -> String {
    let mut keys: Vec<&String> = params.keys().filter(|k| *k != "cursor").collect();
    keys.sort();
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for k in keys {
        query.append_pair(k, &params[k]);
    }
    query.append_pair("cursor", &next.to_string());
    format!("{path}?{}", query.finish())
}

/// A page of search results.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SearchAnswer {
    /// The query as given.
    pub q: String,
    /// The views' position the answer reflects.
    pub position: i64,
    pub results: Vec<search::SearchHit>,
    /// The next page, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// Searches stories (headline, summary) and published developments (headline, body, actors,
/// source), accents and case aside. `q` holds words (all must match), `"quoted phrases"` and
/// `prefix*`es; the newest 500 matching developments (and 50 stories) are ranked, the whole
/// query as a phrase first. Retracted developments are found, marked `retracted`.
#[utoipa::path(get, path = "/v1/search", tag = "read",
    params(("q" = String, Query, min_length = 1, max_length = 200, description = "words, \"phrases\" and prefix* terms", example = "phishing \"UN mission\""),
        ("story" = Option<String>, Query, description = "only this story (id or slug)"),
        ("actor" = Option<String>, Query, description = "only developments naming this actor (any spelling that normalises to it)"),
        ("kind" = Option<String>, Query, description = "only developments of this kind", example = "denial_issued"),
        ("from" = Option<String>, Query, description = "only developments that happened at or after this date or RFC 3339 time"),
        ("to" = Option<String>, Query, description = "only developments that happened at or before this date or RFC 3339 time"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 50, description = "results, 1–50, default 20"),
        ("cursor" = Option<i64>, Query, minimum = 0, maximum = 550, description = "where the page starts: the `next` link of the page before"),
        ("min_position" = Option<i64>, Query, minimum = 0, description = "answer only once the views have applied this position (from a command's answer); waits at most 5 s, then 503")),
    responses((status = 200, body = SearchAnswer, headers(("ETag" = String))), (status = 304, description = "not modified since the `ETag` sent in `If-None-Match`"),
        (status = 404, body = ProblemDetails, description = "no such `story`, or `min_position` is past the log's end")))]
async fn search_json(
    State(state): State<ReadState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> ReadResult {
    let allowed: Vec<&str> = SEARCH_PARAMS
        .iter()
        .copied()
        .chain(["min_position"])
        .collect();
    let params = ReadParams::parse(query.clone(), &allowed)?;
    state.reach(params.int("min_position")?).await?;
    let search = parse_search(&state.views, &params.0, search::Audience::Public).await?;
    let position = state.views.position().await?;
    let (offset, limit) = (search.offset, search.limit);
    let found = state.views.search(search).await?;
    let mut shown = params.0.clone();
    shown.remove("min_position");
    let body = json_string(&SearchAnswer {
        q: params.0.get("q").cloned().unwrap_or_default(),
        position,
        results: found.hits,
        next: found
            .more
            .then(|| search_next("/v1/search", &shown, offset + limit)),
    })?;
    let tag = search::filter_word('S', query.as_deref().unwrap_or(""));
    Ok(cached(&headers, format!("{tag}-{position}"), JSON, body))
}

/// `/search?q=`: the search box's page of results (a 400 page says what is wrong with `q`).
async fn search_html(State(state): State<ReadState>, RawQuery(query): RawQuery) -> Response {
    let params = match ReadParams::parse(query, SEARCH_PARAMS) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let q = params.0.get("q").cloned().unwrap_or_default();
    if q.trim().is_empty() {
        return page(
            StatusCode::OK,
            pages::search::search_page("", None, None, None),
        );
    }
    let result = async {
        let search = parse_search(&state.views, &params.0, search::Audience::Public).await?;
        let (offset, limit) = (search.offset, search.limit);
        let found = state.views.search(search).await?;
        let next = found
            .more
            .then(|| search_next("/search", &params.0, offset + limit));
        Ok::<_, ReadError>((found.hits, next))
    }
    .await;
    match result {
        Ok((hits, next)) => page(
            StatusCode::OK,
            pages::search::search_page(&q, Some(&hits), next.as_deref(), None),
        ),
        Err(ReadError(problem)) if problem.status().is_client_error() => {
            let status = problem.status();
            let detail = problem.details().detail.clone();
            page(
                status,
                pages::search::search_page(&q, None, None, Some(&detail)),
            )
        }
        Err(e) => e.into_response(),
    }
}

/// What the `_newsroom` objects of the JSON Feeds hold: the page their `about` names.
#[utoipa::path(get, path = "/v1/feeds/json-feed-extension", tag = "feeds",
    responses((status = 200, content_type = "text/markdown", body = String)))]
async fn json_feed_extension() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/markdown; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        feeds::json_feed::EXTENSION_DOCUMENT,
    )
        .into_response()
}

async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        include_str!("../static/newsroom.css"),
    )
        .into_response()
}

async fn live_js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        include_str!("../static/live.js"),
    )
        .into_response()
}

async fn time_js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        pages::TIME_JS,
    )
        .into_response()
}
