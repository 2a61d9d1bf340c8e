//! The HTTP command API (`/v1`), health, metrics and the OpenAPI document.
//!
//! Handlers only translate: authenticate, parse the body into a domain command, call the
//! [`CommandService`], shape the answer. Every error becomes a [`Problem`] in one place
//! (`problem.rs`); 5xx causes are logged by middleware, never sent.
//!
//! Routes: `/v1/stories…` (commands, a story's events), `/v1/events` (the global feed, admins),
//! `/v1/tokens…`, `/healthz` (each follower's and the relay's status: `degraded` names the failing
//! part), `/metrics` and `/openapi.json` (see `contract`). An answer given without reading the
//! request's body to its end (a 401 before the JSON, a 429, 413 or 408) says `Connection: close`
//! (`close_after_unread_body`): hyper does not reuse such a connection, and the client must know.
//! The request types and their parsing into domain commands are `dto.rs`.

pub mod contract;
mod dto;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, RawQuery, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post, put};
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use newsroom_domain::{DevelopmentId, Hold, PublicationStatus, Role, StoryCommand, StoryId};
use serde::Serialize;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;

pub use dto::*;
use newsroom_web::limits;
use newsroom_web::problem::{InternalError, Problem, ProblemDetails};
use newsroom_web::{int_param, query_params, refuse_control_characters, ApiPath, Auth, JsonBody};

use crate::service::{CommandError, CommandService, Outcome};
use newsroom_log::log::EventLog;
use newsroom_web::auth::{IssuedToken, Tokens};

/// Largest accepted request body.
pub const BODY_LIMIT: usize = 64 * 1024;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub service: Arc<CommandService>,
    pub tokens: Tokens,
    pub store: EventLog,
    pub metrics: PrometheusHandle,
    /// The relay to NATS JetStream, when this process runs one.
    pub relay: Option<newsroom_log::relay::RelayStatus>,
    /// The parts of this process that follow the feed (projector, matcher), by name.
    pub followers: Vec<(&'static str, newsroom_log::consumer::FollowerStatus)>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

/// What every process serves: health, metrics and this document.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "newsroom",
        description = "Event-sourced story tracker: commands (staff tokens), the public read API and feeds, and the subscriber API. Writes need `Authorization: Bearer <token>` (a staff `nr_…` token or a subscriber's `nrs_…` token); every error is an RFC 9457 problem (`application/problem+json`) naming the field it concerns."
    ),
    paths(healthz, metrics_text, openapi_json),
    components(schemas(ProblemDetails)),
    modifiers(&BearerAuth)
)]
pub struct OperationsDoc;

/// The command API.
#[derive(Debug, OpenApi)]
#[openapi(
    paths(
        open_story,
        revise_story,
        record_development,
        approve_development,
        undo_approval,
        withdraw_development,
        reject_development,
        correct_development,
        retract_development,
        lift_embargo,
        move_embargo,
        close_story,
        reopen_story,
        link_story,
        unlink_story,
        story_events,
        global_feed,
        create_token,
        revoke_token
    ),
    components(schemas(
        OpenStoryRequest,
        RecordDevelopmentRequest,
        SourceRequest,
        RespondsToRequest,
        ReasonRequest,
        CorrectionRequest,
        ChangesRequest,
        ReviseStoryRequest,
        CreateTokenRequest,
        EmptyRequest,
        ApproveRequest,
        MoveEmbargoRequest,
        LinkStoryRequest,
        newsroom_domain::Relation,
        StoryOpened,
        DevelopmentFiled,
        CommandAccepted,
        FeedPage,
        IssuedToken,
        ProblemDetails,
        newsroom_log::feed::FeedEvent
    ))
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The OpenAPI document of a process: its operations, the command API if it serves commands,
/// and `extra`, the document of the other routes it serves.
pub fn document(commands: bool, extra: utoipa::openapi::OpenApi) -> serde_json::Value {
    let mut doc = OperationsDoc::openapi();
    if commands {
        doc.merge(ApiDoc::openapi());
    }
    doc.merge(extra);
    contract::finish(doc)
}

/// Builds the router with its middleware. `extra` holds the routes of other parts of newsroom
/// served by the same process (the read side), and `documented` their OpenAPI document; they
/// get the same middleware and fallbacks.
pub fn router(
    state: AppState,
    request_timeout: Duration,
    rate_limits: Option<limits::RateLimits>,
    extra: Router,
    documented: utoipa::openapi::OpenApi,
    commands: bool,
) -> Router {
    let document = Document(axum::body::Bytes::from(
        serde_json::to_vec(&document(commands, documented)).expect("a JSON value serialises"),
    ));
    let command_api = Router::new()
        .route("/v1/stories", post(open_story))
        .route("/v1/stories/{id}", patch(revise_story))
        .route("/v1/stories/{id}/developments", post(record_development))
        .route(
            "/v1/stories/{id}/developments/{dev}/approval",
            post(approve_development).delete(undo_approval),
        )
        .route(
            "/v1/stories/{id}/developments/{dev}/withdrawal",
            post(withdraw_development),
        )
        .route(
            "/v1/stories/{id}/developments/{dev}/rejection",
            post(reject_development),
        )
        .route(
            "/v1/stories/{id}/developments/{dev}/corrections",
            post(correct_development),
        )
        .route(
            "/v1/stories/{id}/developments/{dev}/retraction",
            post(retract_development),
        )
        .route(
            "/v1/stories/{id}/developments/{dev}/embargo",
            put(move_embargo),
        )
        .route(
            "/v1/stories/{id}/developments/{dev}/embargo/lift",
            post(lift_embargo),
        )
        .route("/v1/stories/{id}/close", post(close_story))
        .route("/v1/stories/{id}/reopen", post(reopen_story))
        .route("/v1/stories/{id}/relations", post(link_story))
        .route("/v1/stories/{id}/relations/{other}", delete(unlink_story))
        .route("/v1/stories/{id}/events", get(story_events))
        .route("/v1/events", get(global_feed))
        .route("/v1/tokens", post(create_token))
        .route("/v1/tokens/{id}", delete(revoke_token));
    let operations = Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_text))
        .route("/openapi.json", get(move || openapi_json(document.clone())));
    // A projector or notifier process (scale-out) serves no commands.
    let api = if commands {
        operations.merge(command_api)
    } else {
        operations
    };
    let api = api
        .with_state(state)
        .merge(extra)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn(refuse_control_characters));

    let api = match rate_limits {
        Some(l) => api.layer(middleware::from_fn_with_state(
            limits::Limiter::new(l),
            limits::limit_writes,
        )),
        None => api,
    };
    api.layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn(log_internal_errors))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            request_timeout,
        ))
        .layer(middleware::from_fn(close_after_unread_body))
        .layer(TraceLayer::new_for_http())
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

/// A request body that notes when it has been read to its end.
struct TrackedBody<S> {
    inner: S,
    finished: Arc<std::sync::atomic::AtomicBool>,
}

impl<S: futures_util::Stream + Unpin> futures_util::Stream for TrackedBody<S> {
    type Item = S::Item;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        let next = std::pin::Pin::new(&mut self.inner).poll_next(cx);
        if let std::task::Poll::Ready(None) = next {
            self.finished
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        next
    }
}

/// Answers that leave a request's body unread (a 401 before the JSON, a 429, a 413, a 408) say
/// `Connection: close`: hyper cannot reuse a connection whose request body was not read, and
/// a client told nothing would send its next request into a closed connection.
async fn close_after_unread_body(request: Request, next: Next) -> Response {
    let headers = request.headers();
    let has_body = headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0");
    if !has_body {
        return next.run(request).await;
    }
    let finished = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (parts, body) = request.into_parts();
    let body = axum::body::Body::from_stream(TrackedBody {
        inner: body.into_data_stream(),
        finished: finished.clone(),
    });
    let mut response = next.run(Request::from_parts(parts, body)).await;
    if !finished.load(std::sync::atomic::Ordering::Relaxed) {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// Logs the cause of every 5xx once, here, instead of inside the error conversions.
async fn log_internal_errors(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    if let Some(InternalError(cause)) = response.extensions().get::<InternalError>() {
        tracing::error!(%method, %path, status = response.status().as_u16(), %cause, "request failed");
    }
    response
}

fn story_id(raw: &str) -> Result<StoryId, Problem> {
    StoryId::parse("story_id", raw)
        .map_err(|e| Problem::bad_request(Some("story_id"), e.to_string()))
}

fn development_id(raw: &str) -> Result<DevelopmentId, Problem> {
    DevelopmentId::parse("development_id", raw)
        .map_err(|e| Problem::bad_request(Some("development_id"), e.to_string()))
}

fn accepted(outcome: Outcome) -> Json<CommandAccepted> {
    use cqrs_es::DomainEvent;
    Json(CommandAccepted {
        story_id: outcome.story_id,
        sequence: outcome.sequence,
        position: outcome.position,
        events: outcome.events.iter().map(|e| e.event_type()).collect(),
    })
}

/// Open a story.
#[utoipa::path(post, path = "/v1/stories", request_body = OpenStoryRequest,
    security(("bearer" = [])),
    responses((status = 201, body = StoryOpened), (status = 409, body = ProblemDetails, description = "slug taken"),
        (status = 422, body = ProblemDetails)))]
async fn open_story(
    State(state): State<AppState>,
    auth: Auth,
    JsonBody(request): JsonBody<OpenStoryRequest>,
) -> Result<(StatusCode, Json<StoryOpened>), Problem> {
    let by = auth.require(Role::Reporter)?;
    let id = StoryId::new();
    let command = request.parse(id)?;
    let (slug, headline) = match &command {
        StoryCommand::OpenStory { slug, headline, .. } => (slug.to_string(), headline.to_string()),
        _ => unreachable!("parse builds an OpenStory"),
    };
    let outcome = state.service.execute(id, by, command).await?;
    Ok((
        StatusCode::CREATED,
        Json(StoryOpened {
            id,
            slug,
            headline,
            sequence: outcome.sequence,
            position: outcome.position,
        }),
    ))
}

/// Change a story's headline and/or tags. Editors and admins only; a closed story is reopened
/// first.
#[utoipa::path(patch, path = "/v1/stories/{id}", request_body = ReviseStoryRequest,
    security(("bearer" = [])), params(("id" = uuid::Uuid, Path, description = "story id")),
    responses((status = 200, body = CommandAccepted), (status = 403, body = ProblemDetails),
        (status = 404, body = ProblemDetails), (status = 409, body = ProblemDetails, description = "the story is closed"),
        (status = 422, body = ProblemDetails)))]
async fn revise_story(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<String>,
    JsonBody(request): JsonBody<ReviseStoryRequest>,
) -> Result<Json<CommandAccepted>, Problem> {
    let by = auth.require(Role::Editor)?;
    let id = story_id(&id)?;
    let outcome = state.service.execute(id, by, request.parse()?).await?;
    Ok(accepted(outcome))
}

/// Record a development. Sending the same filing (same `id`, same content) again answers 200 with
/// the original result and records nothing; the same `id` with other content is a 409.
#[utoipa::path(post, path = "/v1/stories/{id}/developments", request_body = RecordDevelopmentRequest,
    security(("bearer" = [])), params(("id" = uuid::Uuid, Path, description = "story id")),
    responses((status = 201, body = DevelopmentFiled), (status = 200, body = DevelopmentFiled, description = "a repeated filing"),
        (status = 404, body = ProblemDetails), (status = 409, body = ProblemDetails), (status = 422, body = ProblemDetails)))]
async fn record_development(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<String>,
    JsonBody(request): JsonBody<RecordDevelopmentRequest>,
) -> Result<(StatusCode, Json<DevelopmentFiled>), Problem> {
    let by = auth.require(Role::Reporter)?;
    let story = story_id(&id)?;
    let development: DevelopmentId = request.id.into();
    let outcome = state.service.execute(story, by, request.parse()?).await?;
    let (status_code, status) = match (&outcome.replay_of, outcome.events.first()) {
        (Some((_, status)), _) => (StatusCode::OK, *status),
        (None, Some(newsroom_domain::StoryEvent::DevelopmentRecorded { status, .. })) => {
            (StatusCode::CREATED, *status)
        }
        _ => (StatusCode::CREATED, PublicationStatus::Published),
    };
    Ok((
        status_code,
        Json(DevelopmentFiled {
            id: development,
            story_id: story,
            sequence: outcome.sequence,
            position: outcome.position,
            status,
        }),
    ))
}

async fn editor_command(
    state: &AppState,
    auth: &Auth,
    id: &str,
    command: impl FnOnce() -> Result<StoryCommand, Problem>,
) -> Result<Json<CommandAccepted>, Problem> {
    let by = auth.require(Role::Editor)?;
    let id = story_id(id)?;
    let outcome = state.service.execute(id, by, command()?).await?;
    Ok(accepted(outcome))
}

/// Approve a pending development (editors), at once or after an undo window (`hold_seconds`).
#[utoipa::path(post, path = "/v1/stories/{id}/developments/{dev}/approval", request_body = ApproveRequest,
    security(("bearer" = [])), params(("id" = uuid::Uuid, Path, description = "story id"), ("dev" = uuid::Uuid, Path, description = "development id")),
    responses((status = 200, body = CommandAccepted), (status = 403, body = ProblemDetails), (status = 404, body = ProblemDetails), (status = 409, body = ProblemDetails)))]
async fn approve_development(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath((id, dev)): ApiPath<(String, String)>,
    JsonBody(body): JsonBody<ApproveRequest>,
) -> Result<Json<CommandAccepted>, Problem> {
    editor_command(&state, &auth, &id, || {
        Ok(StoryCommand::ApproveDevelopment {
            development: development_id(&dev)?,
            hold: body
                .hold_seconds
                .map(|s| Hold::parse("hold_seconds", s))
                .transpose()?,
        })
    })
    .await
}

/// Undo an approval while it is held for its undo window (editors): the development waits for
/// review again, having reached no reader and alerted no one. 409 once the window has passed
/// (it is published) or if it was not approved with a hold.
#[utoipa::path(delete, path = "/v1/stories/{id}/developments/{dev}/approval", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "story id"), ("dev" = uuid::Uuid, Path, description = "development id")),
    responses((status = 200, body = CommandAccepted), (status = 403, body = ProblemDetails), (status = 404, body = ProblemDetails), (status = 409, body = ProblemDetails)))]
async fn undo_approval(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath((id, dev)): ApiPath<(String, String)>,
) -> Result<Json<CommandAccepted>, Problem> {
    editor_command(&state, &auth, &id, || {
        Ok(StoryCommand::UndoApproval {
            development: development_id(&dev)?,
        })
    })
    .await
}

/// Withdraw one's own filing before readers see it: while it waits for review, or while it is
/// held (for its undo window, `hold_seconds`, or an embargo). It is recorded as rejected, with
/// "Withdrawn by the one who filed it." as the reason, and is never published. Only the token that
/// filed it may (403 for anyone else); 409 once it is published.
#[utoipa::path(post, path = "/v1/stories/{id}/developments/{dev}/withdrawal", security(("bearer" = [])), params(("id" = uuid::Uuid, Path, description = "story id"), ("dev" = uuid::Uuid, Path, description = "development id")),
    responses((status = 200, body = CommandAccepted), (status = 403, body = ProblemDetails), (status = 404, body = ProblemDetails), (status = 409, body = ProblemDetails)))]
async fn withdraw_development(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath((id, dev)): ApiPath<(String, String)>,
) -> Result<Json<CommandAccepted>, Problem> {
    let by = auth.require(Role::Reporter)?;
    let story = story_id(&id)?;
    let command = StoryCommand::WithdrawDevelopment {
        development: development_id(&dev)?,
    };
    let outcome = state.service.execute(story, by, command).await?;
    Ok(accepted(outcome))
}

/// Lift a development's embargo now (editors): it is published at once, or, while it waits for
/// review, published by its approval. 409 if it is under no embargo.
#[utoipa::path(post, path = "/v1/stories/{id}/developments/{dev}/embargo/lift", request_body = EmptyRequest,
    security(("bearer" = [])), params(("id" = uuid::Uuid, Path, description = "story id"), ("dev" = uuid::Uuid, Path, description = "development id")),
    responses((status = 200, body = CommandAccepted), (status = 403, body = ProblemDetails), (status = 404, body = ProblemDetails), (status = 409, body = ProblemDetails)))]
async fn lift_embargo(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath((id, dev)): ApiPath<(String, String)>,
    _body: JsonBody<EmptyRequest>,
) -> Result<Json<CommandAccepted>, Problem> {
    editor_command(&state, &auth, &id, || {
        Ok(StoryCommand::LiftEmbargo {
            development: development_id(&dev)?,
            due: None,
        })
    })
    .await
}

/// Move a development's embargo to another moment (editors). 409 if it is under no embargo.
#[utoipa::path(put, path = "/v1/stories/{id}/developments/{dev}/embargo", request_body = MoveEmbargoRequest,
    security(("bearer" = [])), params(("id" = uuid::Uuid, Path, description = "story id"), ("dev" = uuid::Uuid, Path, description = "development id")),
    responses((status = 200, body = CommandAccepted), (status = 403, body = ProblemDetails), (status = 404, body = ProblemDetails), (status = 409, body = ProblemDetails), (status = 422, body = ProblemDetails)))]
async fn move_embargo(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath((id, dev)): ApiPath<(String, String)>,
    JsonBody(request): JsonBody<MoveEmbargoRequest>,
) -> Result<Json<CommandAccepted>, Problem> {
    editor_command(&state, &auth, &id, || {
        Ok(StoryCommand::MoveEmbargo {
            development: development_id(&dev)?,
            until: request.until,
        })
    })
    .await
}

/// Reject a pending development (editors).
#[utoipa::path(post, path = "/v1/stories/{id}/developments/{dev}/rejection", request_body = ReasonRequest,
    security(("bearer" = [])), params(("id" = uuid::Uuid, Path, description = "story id"), ("dev" = uuid::Uuid, Path, description = "development id")),
    responses((status = 200, body = CommandAccepted), (status = 403, body = ProblemDetails), (status = 404, body = ProblemDetails), (status = 409, body = ProblemDetails)))]
async fn reject_development(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath((id, dev)): ApiPath<(String, String)>,
    JsonBody(request): JsonBody<ReasonRequest>,
) -> Result<Json<CommandAccepted>, Problem> {
    editor_command(&state, &auth, &id, || {
        Ok(StoryCommand::RejectDevelopment {
            development: development_id(&dev)?,
            reason: request.parse()?,
        })
    })
    .await
}

/// Correct a development (editors): a note for readers and the changed fields.
#[utoipa::path(post, path = "/v1/stories/{id}/developments/{dev}/corrections", request_body = CorrectionRequest,
    security(("bearer" = [])), params(("id" = uuid::Uuid, Path, description = "story id"), ("dev" = uuid::Uuid, Path, description = "development id")),
    responses((status = 200, body = CommandAccepted), (status = 403, body = ProblemDetails), (status = 404, body = ProblemDetails), (status = 409, body = ProblemDetails), (status = 422, body = ProblemDetails)))]
async fn correct_development(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath((id, dev)): ApiPath<(String, String)>,
    JsonBody(request): JsonBody<CorrectionRequest>,
) -> Result<Json<CommandAccepted>, Problem> {
    editor_command(&state, &auth, &id, || request.parse(development_id(&dev)?)).await
}

/// Retract a published development (editors). It stays visible to readers, struck through.
#[utoipa::path(post, path = "/v1/stories/{id}/developments/{dev}/retraction", request_body = ReasonRequest,
    security(("bearer" = [])), params(("id" = uuid::Uuid, Path, description = "story id"), ("dev" = uuid::Uuid, Path, description = "development id")),
    responses((status = 200, body = CommandAccepted), (status = 403, body = ProblemDetails), (status = 404, body = ProblemDetails), (status = 409, body = ProblemDetails)))]
async fn retract_development(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath((id, dev)): ApiPath<(String, String)>,
    JsonBody(request): JsonBody<ReasonRequest>,
) -> Result<Json<CommandAccepted>, Problem> {
    editor_command(&state, &auth, &id, || {
        Ok(StoryCommand::RetractDevelopment {
            development: development_id(&dev)?,
            reason: request.parse()?,
        })
    })
    .await
}

/// Close a story: no further developments until it is reopened (editors).
#[utoipa::path(post, path = "/v1/stories/{id}/close", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "story id")), responses((status = 200, body = CommandAccepted), (status = 403, body = ProblemDetails), (status = 404, body = ProblemDetails), (status = 409, body = ProblemDetails)))]
async fn close_story(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<CommandAccepted>, Problem> {
    editor_command(&state, &auth, &id, || Ok(StoryCommand::CloseStory)).await
}

/// Reopen a closed story (editors).
#[utoipa::path(post, path = "/v1/stories/{id}/reopen", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "story id")), responses((status = 200, body = CommandAccepted), (status = 403, body = ProblemDetails), (status = 404, body = ProblemDetails), (status = 409, body = ProblemDetails)))]
async fn reopen_story(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<CommandAccepted>, Problem> {
    editor_command(&state, &auth, &id, || Ok(StoryCommand::ReopenStory)).await
}

/// Relate this story to another (editors): recorded on this story, shown on both (on the other
/// as the reverse: `follow_up` there reads `followed_up_by`, `background` reads
/// `background_to`). A pair of stories is related once, from either side: 409 naming `story`
/// if they are already; 422 naming `story` for a story that does not exist, this story itself,
/// or a story that records 20 relations already; 422 naming `relation` for an unknown one.
#[utoipa::path(post, path = "/v1/stories/{id}/relations", request_body = LinkStoryRequest,
    security(("bearer" = [])), params(("id" = uuid::Uuid, Path, description = "story id")),
    responses((status = 200, body = CommandAccepted), (status = 403, body = ProblemDetails),
        (status = 404, body = ProblemDetails, description = "no such story"),
        (status = 409, body = ProblemDetails, description = "the stories are related already"),
        (status = 422, body = ProblemDetails)))]
async fn link_story(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<String>,
    JsonBody(request): JsonBody<LinkStoryRequest>,
) -> Result<Json<CommandAccepted>, Problem> {
    editor_command(&state, &auth, &id, || Ok(request.parse())).await
}

/// Remove the relation between this story and `other` (editors), whichever of the two it was
/// recorded on. 404 naming `other` if they are not related.
#[utoipa::path(delete, path = "/v1/stories/{id}/relations/{other}", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "story id"), ("other" = uuid::Uuid, Path, description = "the related story's id")),
    responses((status = 200, body = CommandAccepted), (status = 403, body = ProblemDetails),
        (status = 404, body = ProblemDetails, description = "no such story, or the stories are not related")))]
async fn unlink_story(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath((id, other)): ApiPath<(String, String)>,
) -> Result<Json<CommandAccepted>, Problem> {
    let by = auth.require(Role::Editor)?;
    let id = story_id(&id)?;
    let other = StoryId::parse("other", &other)
        .map_err(|e| Problem::bad_request(Some("other"), e.to_string()))?;
    let outcome = state.service.unlink(id, other, by).await?;
    Ok(accepted(outcome))
}

/// A story's raw event history with positions, authors and timestamps (editors).
#[utoipa::path(get, path = "/v1/stories/{id}/events", security(("bearer" = [])),
    params(("id" = String, Path, description = "story id or slug")),
    responses((status = 200, body = [newsroom_log::feed::FeedEvent]), (status = 403, body = ProblemDetails), (status = 404, body = ProblemDetails)))]
async fn story_events(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Vec<newsroom_log::feed::FeedEvent>>, Problem> {
    auth.require(Role::Editor)?;
    let id = match StoryId::parse("story_id", &id) {
        Ok(id) => id.to_string(),
        Err(_) => state
            .store
            .story_by_slug(id.clone())
            .await?
            .ok_or_else(|| Problem::not_found(format!("no story `{id}`")))?,
    };
    let events = state.store.story_events(id.clone()).await?;
    if events.is_empty() {
        return Err(Problem::not_found(format!("no story `{id}`")));
    }
    Ok(Json(events))
}

/// The global event feed, in commit order (admins). Positions have no gaps.
#[utoipa::path(get, path = "/v1/events", security(("bearer" = [])),
    params(("after" = Option<i64>, Query, minimum = 0, description = "position to read after (default 0)"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "1–1000, default 100")),
    responses((status = 200, body = FeedPage), (status = 403, body = ProblemDetails)))]
async fn global_feed(
    State(state): State<AppState>,
    auth: Auth,
    RawQuery(query): RawQuery,
) -> Result<Json<FeedPage>, Problem> {
    auth.require(Role::Admin)?;
    let params = query_params(query.as_deref(), &["after", "limit"])?;
    let after = int_param(&params, "after", 0, 0, i64::MAX)?;
    let limit = int_param(&params, "limit", 100, 1, 1000)?;
    let head = state.store.current_head().await?;
    let events = state.store.read_feed(after, limit as usize).await?;
    let next_after = events.last().map_or(after, |e| e.position);
    Ok(Json(FeedPage {
        events,
        next_after,
        head,
    }))
}

/// Create an API token (admins). The token is in this answer only.
#[utoipa::path(post, path = "/v1/tokens", request_body = CreateTokenRequest, security(("bearer" = [])),
    responses((status = 201, body = IssuedToken), (status = 403, body = ProblemDetails)))]
async fn create_token(
    State(state): State<AppState>,
    auth: Auth,
    JsonBody(request): JsonBody<CreateTokenRequest>,
) -> Result<(StatusCode, Json<IssuedToken>), Problem> {
    auth.require(Role::Admin)?;
    let name = newsroom_domain::SourceName::parse("name", &request.name)?;
    let issued = state
        .tokens
        .create(request.role, name.as_str().to_owned())
        .await?;
    Ok((StatusCode::CREATED, Json(issued)))
}

/// Revoke a token (admins); it stops working at once.
#[utoipa::path(delete, path = "/v1/tokens/{id}", security(("bearer" = [])),
    params(("id" = String, Path, description = "the token's id (`id` in the answer that created it)")), responses((status = 204, description = "revoked"), (status = 403, body = ProblemDetails), (status = 404, body = ProblemDetails)))]
async fn revoke_token(
    State(state): State<AppState>,
    auth: Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, Problem> {
    auth.require(Role::Admin)?;
    if state.tokens.revoke(id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Problem::not_found("no such live token"))
    }
}

/// The answer of `/healthz`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok`, `degraded` or `unhealthy`.
    #[schema(pattern = "^(ok|degraded|unhealthy)$")]
    pub status: String,
    /// Each dependency and part: `ok`, or what is wrong; `relay_position` is a number.
    #[schema(value_type = Object)]
    pub checks: serde_json::Value,
    /// The newest position of the log this process knows of.
    pub head_position: i64,
}

/// Health of the process and its dependencies: `ok`, `degraded` (a part retries; still
/// serving) or `unhealthy` (the event store cannot be reached: 503).
#[utoipa::path(get, path = "/healthz", responses(
    (status = 200, body = Health, description = "ok or degraded"),
    (status = 503, body = Health, description = "unhealthy: the event store cannot be reached")))]
async fn healthz(State(state): State<AppState>) -> Response {
    // The event store down: commands fail, so the process is unhealthy (503). NATS down: commands
    // are still taken and the relay catches up later, so the process is degraded (200) and says so.
    let store = state.store.ping().await;
    let head = match store {
        Ok(_) => state.store.current_head().await.ok(),
        Err(_) => None,
    };
    let (status, event_store) = match store {
        Ok(_) => (StatusCode::OK, "ok".to_owned()),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    };
    let mut checks = serde_json::json!({ "event_store": event_store });
    let mut degraded = false;
    if let Some(relay) = &state.relay {
        let nats = relay.error().unwrap_or_else(|| "ok".to_owned());
        degraded = nats != "ok";
        checks["nats"] = serde_json::json!(nats);
        checks["relay_position"] = serde_json::json!(relay.published());
    }
    // A part that cannot follow the feed (the log or the stream away, an event it cannot
    // apply) retries; the process still serves what it has, so it is degraded, and says which
    // part and why — until the part has got past where it failed, not merely until a retry
    // found nothing new.
    let reached = head.unwrap_or(state.store.head());
    for (name, follower) in &state.followers {
        let problem = follower.problem(reached);
        degraded |= problem.is_some();
        checks[*name] = serde_json::json!(problem.unwrap_or_else(|| "ok".to_owned()));
    }
    let word = if status != StatusCode::OK {
        "unhealthy"
    } else if degraded {
        "degraded"
    } else {
        "ok"
    };
    let body = serde_json::json!({
        "status": word,
        "checks": checks,
        // Not asked of a database that just failed to answer: this process's own idea then.
        "head_position": reached,
    });
    (status, Json(body)).into_response()
}

/// Prometheus metrics, in the text exposition format.
#[utoipa::path(get, path = "/metrics",
    responses((status = 200, description = "Prometheus text exposition format 0.0.4", content_type = "text/plain", body = String)))]
async fn metrics_text(State(state): State<AppState>) -> Response {
    metrics::gauge!("newsroom_feed_head_position").set(state.store.head() as f64);
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        state.metrics.render(),
    )
        .into_response()
}

/// The document, serialised once.
#[derive(Clone)]
struct Document(axum::body::Bytes);

/// This document (OpenAPI 3.1).
#[utoipa::path(get, path = "/openapi.json",
    responses((status = 200, description = "the OpenAPI document of this process", content_type = "application/json", body = Object)))]
async fn openapi_json(document: Document) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        document.0,
    )
        .into_response()
}

async fn not_found() -> Problem {
    Problem::not_found("no such resource")
}

async fn method_not_allowed() -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method not allowed",
        "this resource does not accept that method",
    )
}

impl From<CommandError> for Problem {
    fn from(e: CommandError) -> Self {
        match e {
            CommandError::Refused(e) => e.into(),
            CommandError::SlugTaken(slug) => {
                Problem::conflict(format!("the slug `{slug}` is already taken")).with_field("slug")
            }
            CommandError::Conflict => Problem::conflict(
                "the story kept changing while this command was decided; try again",
            ),
            CommandError::Changed { development, since } => Problem::new(
                StatusCode::CONFLICT,
                "changed",
                "Changed since seen",
                format!(
                    "development {development} changed after position {since}, the version this \
                     was based on; nothing was recorded: read it again"
                ),
            )
            .with_field("seen"),
            CommandError::Store(e) => e.into(),
            CommandError::Corrupt(cause) => Problem::internal(cause),
        }
    }
}

impl axum::extract::FromRef<AppState> for Tokens {
    fn from_ref(state: &AppState) -> Self {
        state.tokens.clone()
    }
}
