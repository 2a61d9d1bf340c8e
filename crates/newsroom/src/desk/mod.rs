//! The desk: web pages under `/desk` where reporters open stories and file developments, and
//! editors review, correct and retract — in the browser, without JavaScript.
//!
//! The desk is a client of the command side that happens to live in the same process: every
//! action parses its form into the command API's own request types (`forms.rs`) and hands the
//! command to the same [`CommandService`](newsroom_command::CommandService) the JSON API uses, on
//! behalf of the signed-in token's principal. There is no second write path and no SQL write.
//! What it shows comes from the reader views (`views.db`, including what readers never see:
//! pending and rejected developments, who filed and approved) and the notifier's subscriptions.
//!
//! Every action is a plain HTML form, answered POST-redirect-GET. After a command the desk waits
//! (bounded) until the views reach the command's `position`, so the page it redirects to shows
//! the change. Filing carries an id drawn when the form was shown — the API's idempotency key —
//! so a double click or a resubmission files once.
//!
//! Sign-in, the cookie and CSRF protection are described in `session.rs`; the time zone in
//! `zone.rs`. Pages carry the reader side's Content-Security-Policy (no inline script or style),
//! `Cache-Control: no-store` and `Referrer-Policy: same-origin`.

pub(crate) mod forms;
mod notices;
mod parked;
mod presence;
mod queries;
pub(crate) mod session;
mod templates;
mod zone;

use std::collections::BTreeMap;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::Utc;
use maud::{html, Markup};
use newsroom_command::http::{AppState, ReasonRequest};
use newsroom_command::{Outcome, Seen};
use newsroom_domain::{
    Actor, DevelopmentId, Hold, Relation, Role, StoryCommand, StoryEvent, StoryId,
};
use newsroom_notifier::NotifierStore;
use newsroom_projection::pages::story_path;
use newsroom_projection::ViewStore;
use newsroom_readmodel::{DevelopmentStanding, DevelopmentView, LoggedEvent, StoryView};
use newsroom_web::problem::{InternalError, Problem};
use newsroom_web::{PasswordError, Principal};
use serde::Deserialize;
use tokio::sync::watch;
use tower_http::set_header::SetResponseHeaderLayer;
use uuid::Uuid;

use forms::{FormData, FormError, Step};
use parked::{Parked, ParkedForms};
use presence::{Doing, Presence};
use session::{Lookup, Session};
use templates::{story_desk_path, Chrome, FailedRejection, Here};
pub use zone::{Zone, TIME_ZONE_VARIABLE};

/// Largest accepted form: a development's text may be 20,000 characters, which URL-encoding can
/// grow several times over.
pub const FORM_LIMIT: usize = 512 * 1024;
/// How long an action waits for the views to show its result before redirecting anyway.
pub const READ_YOUR_WRITE_WAIT: Duration = Duration::from_secs(5);

const DESK_CSS: &str = include_str!("static/desk.css");
const DESK_JS: &str = include_str!("static/desk.js");

/// What the desk's handlers reach.
#[derive(Clone)]
pub struct DeskState {
    command: AppState,
    views: ViewStore,
    positions: watch::Receiver<i64>,
    notifier: NotifierStore,
    zone: Zone,
    /// Forms posted after their session lapsed (`parked.rs`).
    parked: ParkedForms,
    /// Who has which development's form open (`presence.rs`).
    presence: Presence,
    /// The undo window publishing and approving at the desk hold for (none: at once).
    undo: Option<Hold>,
}

impl std::fmt::Debug for DeskState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeskState")
            .field("views", &self.views)
            .field("zone", &self.zone)
            .finish_non_exhaustive()
    }
}

/// The desk's routes, with their state applied. `positions` are the views' positions as the live
/// hub reads them (`LiveHub::reached`); `undo_window`, the undo window its publications and approvals
/// are held for (none: published at once).
pub fn router(
    command: AppState,
    views: ViewStore,
    positions: watch::Receiver<i64>,
    notifier: NotifierStore,
    undo_window: Option<Hold>,
) -> Router {
    let state = DeskState {
        command,
        views,
        positions,
        notifier,
        zone: Zone::from_env(),
        parked: ParkedForms::default(),
        presence: Presence::default(),
        undo: undo_window,
    };
    Router::new()
        .route("/desk", get(home))
        .route("/desk/", get(|| async { see_other("/desk") }))
        .route("/desk/sign-in", get(sign_in_form).post(sign_in))
        .route("/desk/sign-out", post(sign_out))
        .route("/desk/password", get(password_form).post(set_password))
        .route("/desk/notices", get(notices_since))
        .route("/desk/review", get(review))
        .route("/desk/search", get(search))
        .route("/desk/parked/{key}", get(parked_form))
        .route("/desk/stories", post(open_story))
        .route("/desk/stories/{id}", get(story))
        .route("/desk/stories/{id}/file", get(file_form))
        .route("/desk/stories/{id}/developments", post(file))
        .route("/desk/stories/{id}/draft", post(save_draft))
        .route("/desk/stories/{id}/close", post(close_story))
        .route("/desk/stories/{id}/reopen", post(reopen_story))
        .route("/desk/stories/{id}/relations", post(relate))
        .route(
            "/desk/stories/{id}/relations/{other}/unlink",
            post(unrelate),
        )
        .route(
            "/desk/stories/{id}/developments/{dev}/approve",
            get(approve_form).post(approve),
        )
        .route("/desk/stories/{id}/developments/{dev}/reject", post(reject))
        .route(
            "/desk/stories/{id}/developments/{dev}/presence",
            post(presence_mark),
        )
        .route(
            "/desk/stories/{id}/developments/{dev}/correct",
            get(correct_form).post(correct),
        )
        .route(
            "/desk/stories/{id}/developments/{dev}/retract",
            get(retract_form).post(retract),
        )
        .route(
            "/desk/stories/{id}/developments/{dev}/withdraw",
            get(withdraw_form).post(withdraw),
        )
        .route(
            "/desk/stories/{id}/developments/{dev}/embargo",
            get(embargo_form).post(embargo),
        )
        .route(
            "/desk/stories/{id}/developments/{dev}/undo",
            get(undo_form).post(undo),
        )
        .route("/desk/static/desk.css", get(css))
        .route("/desk/static/desk.js", get(js))
        .route("/desk/{*rest}", get(not_found))
        .layer(DefaultBodyLimit::max(FORM_LIMIT))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(newsroom_projection::api::CSP),
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

/// A page that ends a request early: a refusal, a redirect to sign in, a failure. Boxed, as
/// responses are large.
struct Stop(Box<Response>);

impl From<Response> for Stop {
    fn from(r: Response) -> Self {
        Stop(Box::new(r))
    }
}

impl IntoResponse for Stop {
    fn into_response(self) -> Response {
        *self.0
    }
}

/// A handler's answer: a page or redirect, or a page saying why not.
type Answer = Result<Response, Stop>;

fn page(status: StatusCode, markup: Markup) -> Response {
    (status, Html(markup.into_string())).into_response()
}

fn see_other(location: &str) -> Response {
    let location = HeaderValue::from_str(location).unwrap_or(HeaderValue::from_static("/desk"));
    (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response()
}

fn encode(raw: &str) -> String {
    url::form_urlencoded::byte_serialize(raw.as_bytes()).collect()
}

/// Where to go after signing in: a desk page, never another site.
fn safe_next(raw: &str) -> String {
    let ok = (raw == "/desk" || raw.starts_with("/desk/") || raw.starts_with("/desk?"))
        && !raw.contains(['\\', '\r', '\n'])
        && !raw.contains("//");
    if ok {
        raw.to_owned()
    } else {
        "/desk".to_owned()
    }
}

/// A failure of the server: logged by the command side's middleware, never shown.
fn failure(cause: impl std::fmt::Display) -> Response {
    let mut r = page(
        StatusCode::INTERNAL_SERVER_ERROR,
        templates::message_page(
            None,
            "Something went wrong",
            "The desk could not do that. Try again in a moment; if it keeps failing, tell whoever runs the newsroom.",
            ("/desk", "Back to the desk"),
        ),
    );
    r.extensions_mut().insert(InternalError(cause.to_string()));
    r
}

fn not_found_page(chrome: Option<&Chrome<'_>>, what: &str) -> Response {
    page(
        StatusCode::NOT_FOUND,
        templates::message_page(
            chrome,
            "Not found",
            &format!("There is no such {what}."),
            ("/desk", "Back to the stories"),
        ),
    )
}

/// Refusal of a form that did not come from a desk page of this session.
fn csrf_refused(chrome: Option<&Chrome<'_>>) -> Response {
    let (link, text) = match chrome {
        Some(_) => ("/desk", "Back to the desk"),
        None => ("/desk/sign-in", "Back to sign-in"),
    };
    page(
        StatusCode::FORBIDDEN,
        templates::message_page(
            chrome,
            "This form cannot be accepted",
            "It did not come from a desk page you have open, or it is from before you last signed in. Nothing was recorded. Go back, reload the page and try again.",
            (link, text),
        ),
    )
}

/// The signed-in user of a request; anyone else is sent to sign in.
struct Signed(Session);

impl FromRequestParts<DeskState> for Signed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &DeskState) -> Result<Self, Response> {
        let found = session::lookup(&state.command.tokens, &parts.headers)
            .await
            .map_err(failure)?;
        let invalid = match found {
            Lookup::Valid(session) => return Ok(Signed(session)),
            Lookup::Invalid => true,
            Lookup::Absent => false,
        };
        // Come back here after signing in (a form is not sent again: back to the desk).
        let next = match parts.method {
            Method::GET => parts.uri.path_and_query().map_or("/desk", |p| p.as_str()),
            _ => "/desk",
        };
        let mut location = format!("/desk/sign-in?next={}", encode(next));
        if invalid {
            location.push_str("&expired=1");
        }
        let mut r = see_other(&location);
        if invalid {
            r.headers_mut().append(
                header::SET_COOKIE,
                session::clear_session_cookie(&parts.headers),
            );
        }
        Err(r)
    }
}

/// A form posted by the signed-in user, read whole. One posted without a valid session (it
/// lapsed while the form was open) is parked (`parked.rs`) and the user is sent to sign in and
/// then back to the form, everything as typed.
struct SignedForm(Session, FormData);

impl FromRequest<DeskState> for SignedForm {
    type Rejection = Response;

    async fn from_request(
        request: axum::extract::Request,
        state: &DeskState,
    ) -> Result<Self, Response> {
        let headers = request.headers().clone();
        let path = request.uri().path().to_owned();
        let found = session::lookup(&state.command.tokens, &headers)
            .await
            .map_err(failure)?;
        let body = Bytes::from_request(request, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let form = FormData::parse(&body);
        match found {
            Lookup::Valid(session) => Ok(SignedForm(session, form)),
            Lookup::Invalid => Err(state.lapsed(&headers, &path, &form, true)),
            Lookup::Absent => Err(state.lapsed(&headers, &path, &form, false)),
        }
    }
}

/// The desk forms that take typed text, and so are parked when their session lapsed.
#[derive(Debug, PartialEq, Eq)]
enum TypedForm {
    OpenStory,
    File(String),
    Reject(String, String),
    Correct(String, String),
    Retract(String, String),
}

impl TypedForm {
    /// Which form posts to `path`.
    fn of(path: &str) -> Option<Self> {
        let rest = path.strip_prefix("/desk/")?;
        let segments: Vec<&str> = rest.split('/').collect();
        let own = |s: &&str| s.to_string();
        Some(match segments.as_slice() {
            ["stories"] => TypedForm::OpenStory,
            ["stories", id, "developments"] => TypedForm::File(own(id)),
            ["stories", id, "developments", dev, action] => {
                let (id, dev) = (own(id), own(dev));
                match *action {
                    "reject" => TypedForm::Reject(id, dev),
                    "correct" => TypedForm::Correct(id, dev),
                    "retract" => TypedForm::Retract(id, dev),
                    _ => return None,
                }
            }
            _ => return None,
        })
    }
}

/// What a form brought back from the parked ones says above it.
const KEPT: &str = "Your sign-in had ended when you sent this, so nothing was recorded. \
    Everything you typed is below: check it and send it again.";

/// Notices shown after an action (POST-redirect-GET carries them in the query).
#[derive(Debug, Default, Deserialize)]
struct Notice {
    notice: Option<String>,
    development: Option<String>,
    story: Option<String>,
    lag: Option<String>,
    responds_to: Option<String>,
    /// A rejected filing to revise and file again.
    from: Option<String>,
}

impl Notice {
    fn development(&self) -> Option<Uuid> {
        self.development
            .as_deref()
            .and_then(|d| Uuid::parse_str(d).ok())
    }
}

fn lag(caught_up: bool) -> &'static str {
    if caught_up {
        ""
    } else {
        "&lag=1"
    }
}

impl DeskState {
    fn chrome<'a>(&'a self, session: &'a Session, here: Here) -> Chrome<'a> {
        Chrome {
            presence: &self.presence,
            who: &session.principal,
            csrf: &session.csrf,
            zone: self.zone,
            here,
            undo: self.undo,
        }
    }

    /// Ends `session`'s mark on the development `dev` once its form was sent and carried out
    /// (answered with a redirect to what comes next).
    fn done_with(&self, dev: &str, session: &Session, answer: Answer) -> Answer {
        if let (Ok(r), Ok(dev)) = (&answer, Uuid::parse_str(dev)) {
            if r.status() == StatusCode::SEE_OTHER {
                self.presence.gone(dev, &session.principal);
            }
        }
        answer
    }

    fn check_csrf(&self, session: &Session, form: &FormData) -> Result<(), Stop> {
        if session::same_secret(form.get("csrf"), &session.csrf) {
            Ok(())
        } else {
            tracing::warn!(
                token_id = %session.principal.token_id,
                "desk form refused: missing or wrong CSRF token"
            );
            Err(csrf_refused(Some(&self.chrome(session, Here::Other))).into())
        }
    }

    fn require_editor(&self, session: &Session) -> Result<(), Stop> {
        if session.principal.role.at_least(Role::Editor) {
            return Ok(());
        }
        Err(Stop::from(page(
            StatusCode::FORBIDDEN,
            templates::message_page(
                Some(&self.chrome(session, Here::Other)),
                "For editors only",
                &format!(
                    "Reviewing, correcting and retracting are for editors. You are signed in as {}, a {}.",
                    session.principal.name, session.principal.role
                ),
                ("/desk", "Back to the stories"),
            ),
        )))
    }

    /// The answer to a form posted without a valid session (`invalid`: its cookie names a token
    /// that is no longer valid): off to sign in, and back to the form afterwards if it is one
    /// that takes typed text and came from this site — what was typed is parked meanwhile.
    fn lapsed(&self, headers: &HeaderMap, path: &str, form: &FormData, invalid: bool) -> Response {
        let key = if parked::same_origin(headers) && TypedForm::of(path).is_some() {
            self.parked.park(Parked {
                path: path.to_owned(),
                form: form.typed(),
            })
        } else {
            None
        };
        let mut location = match &key {
            Some(key) => format!(
                "/desk/sign-in?next={}&kept=1",
                encode(&format!("/desk/parked/{key}"))
            ),
            None => format!("/desk/sign-in?next={}", encode("/desk")),
        };
        if invalid {
            location.push_str("&expired=1");
        }
        tracing::info!(
            parked = key.is_some(),
            "desk form posted without a valid session"
        );
        let mut r = see_other(&location);
        let h = r.headers_mut();
        if invalid {
            h.append(header::SET_COOKIE, session::clear_session_cookie(headers));
        }
        if let Some(key) = key {
            h.append(header::SET_COOKIE, parked::parked_cookie(headers, &key));
        }
        r
    }

    /// Editors edit and correct any development; the one who filed a development may edit it
    /// while it waits for review (the domain checks it is theirs by the token that filed it).
    fn require_editor_or_filer(&self, session: &Session, d: &DevelopmentView) -> Result<(), Stop> {
        if d.state == DevelopmentStanding::PendingReview && is_theirs(session, d) {
            return Ok(());
        }
        self.require_editor(session)
    }

    /// Carries out a command through the command service, as the signed-in user.
    /// A filing as the desk publishes it: held for the desk's undo window, if it has one.
    fn held(&self, command: StoryCommand) -> StoryCommand {
        match command {
            StoryCommand::RecordDevelopment(mut new) if new.hold.is_none() => {
                new.hold = self.undo;
                StoryCommand::RecordDevelopment(new)
            }
            other => other,
        }
    }

    async fn execute(
        &self,
        story: StoryId,
        session: &Session,
        command: StoryCommand,
    ) -> Result<Outcome, Problem> {
        Ok(self
            .command
            .service
            .execute(story, &session.principal, command)
            .await?)
    }

    /// Carries out a command on development `development` as a form showed it (`seen`: the
    /// version of the story the form was made from; `None` if it did not say, which is taken as
    /// changed). A newer change to that development refuses it (see [`is_changed`]).
    async fn execute_seen(
        &self,
        story: StoryId,
        session: &Session,
        command: StoryCommand,
        development: Uuid,
        seen: Option<i64>,
    ) -> Result<Outcome, Problem> {
        let seen = Seen {
            development: DevelopmentId::from(development),
            position: seen.unwrap_or(0),
        };
        Ok(self
            .command
            .service
            .execute_seen(story, &session.principal, command, Some(seen))
            .await?)
    }

    /// The story and development as they are now, after a form was refused as made from an
    /// older version: the views are first brought up to the log's head, so the change shows.
    async fn now(
        &self,
        session: &Session,
        id: &str,
        development: &str,
    ) -> Result<(StoryView, DevelopmentView), Stop> {
        self.catch_up_to_head().await;
        self.development(session, id, development).await
    }

    /// Decides a command as the signed-in user without recording anything: the events it would
    /// record now.
    async fn preview(
        &self,
        story: StoryId,
        session: &Session,
        command: StoryCommand,
    ) -> Result<Vec<StoryEvent>, Problem> {
        Ok(self
            .command
            .service
            .preview(story, &session.principal, command)
            .await?)
    }

    /// How many subscribers follow a story by name (`None` if the notifier cannot say).
    async fn subscribers(&self, story: Uuid) -> Option<i64> {
        queries::subscribers(&self.notifier, story)
            .await
            .map_err(|e| tracing::warn!(error = %e, "cannot count the story's subscribers"))
            .ok()
    }

    /// Waits (bounded) until the views reflect `position`; says whether they do. Reads the
    /// views' position once, then waits on the live hub's signal of it.
    async fn catch_up(&self, position: i64) -> bool {
        match self.views.position().await {
            Ok(reached) if reached >= position => return true,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the views' position");
                return false;
            }
        }
        let mut positions = self.positions.clone();
        let reached =
            tokio::time::timeout(READ_YOUR_WRITE_WAIT, positions.wait_for(|p| *p >= position))
                .await;
        matches!(reached, Ok(Ok(_)))
    }

    /// [`Self::catch_up`] to the log's newest position, whoever wrote it.
    async fn catch_up_to_head(&self) -> bool {
        match self.command.store.current_head().await {
            Ok(head) => self.catch_up(head).await,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the log's head");
                false
            }
        }
    }

    /// A story by id or slug, or the not-found page. A story the views do not hold yet may be
    /// one just opened (through the API, or by another process): the views are first brought up
    /// to the log's head (bounded), then asked again.
    async fn story(&self, session: &Session, id_or_slug: &str) -> Result<StoryView, Stop> {
        if let Some(view) = self.find_story(id_or_slug).await? {
            return Ok(view);
        }
        if self.catch_up_to_head().await {
            if let Some(view) = self.find_story(id_or_slug).await? {
                return Ok(view);
            }
        }
        Err(not_found_page(Some(&self.chrome(session, Here::Other)), "story").into())
    }

    async fn find_story(&self, id_or_slug: &str) -> Result<Option<StoryView>, Stop> {
        let id = match Uuid::parse_str(id_or_slug) {
            Ok(id) => id,
            Err(_) => match self
                .views
                .resolve(id_or_slug.to_owned())
                .await
                .map_err(failure)?
            {
                Some(id) => id,
                None => return Ok(None),
            },
        };
        Ok(self.views.story(id).await.map_err(failure)?)
    }

    /// A story and one of its developments, or the not-found page.
    async fn development(
        &self,
        session: &Session,
        id: &str,
        development: &str,
    ) -> Result<(StoryView, DevelopmentView), Stop> {
        let not_found = || {
            Stop::from(not_found_page(
                Some(&self.chrome(session, Here::Other)),
                "development",
            ))
        };
        let wanted = Uuid::parse_str(development).map_err(|_| not_found())?;
        let view = self.story(session, id).await?;
        if let Some(d) = view.development(wanted).cloned() {
            return Ok((view, d));
        }
        // Just filed elsewhere, perhaps: the views brought up to the log's head, then again.
        if !self.catch_up_to_head().await {
            return Err(not_found());
        }
        let view = self.story(session, id).await?;
        match view.development(wanted).cloned() {
            Some(d) => Ok((view, d)),
            None => Err(not_found()),
        }
    }

    /// A problem the form cannot show: a failure, or a refusal that is not about a field.
    fn problem_page(&self, session: &Session, problem: Problem, back: &str) -> Response {
        let status = problem.status();
        if status.is_server_error() {
            let cause = problem
                .clone()
                .into_response()
                .extensions()
                .get::<InternalError>()
                .map_or_else(|| problem.details().detail.clone(), |c| c.0.clone());
            return failure(cause);
        }
        let title = match status {
            StatusCode::FORBIDDEN => "Not allowed",
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::CONFLICT => "That cannot be done now",
            _ => "That did not work",
        };
        page(
            status,
            templates::message_page(
                Some(&self.chrome(session, Here::Other)),
                title,
                &sentence(&problem.details().detail),
                (back, "Go back"),
            ),
        )
    }

    /// Actors to suggest: those named in published developments, and in this story.
    async fn known_actors(&self, view: &StoryView) -> Vec<String> {
        let known = queries::known_actors(&self.views)
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "cannot read the known actors");
                Vec::new()
            });
        let mut by_key = BTreeMap::new();
        let story_actors = view
            .developments
            .iter()
            .flat_map(|d| d.actors.iter().map(|a| a.name().to_owned()));
        for name in known.into_iter().chain(story_actors) {
            by_key.entry(Actor::normalise(&name)).or_insert(name);
        }
        by_key.into_values().collect()
    }
}

/// Whether the signed-in user filed `d` (as the views name its filer).
fn is_theirs(session: &Session, d: &DevelopmentView) -> bool {
    d.filed_by.as_deref() == Some(session.principal.name.as_str())
}

/// Whether a command was refused because the development changed after the version its form
/// was made from.
fn is_changed(problem: &Problem) -> bool {
    problem.details().kind == "urn:newsroom:problem:changed"
}

/// `d` as readers will see it once its undo window has passed (the preview of a filing that
/// will be held for one).
fn as_published(d: &DevelopmentView) -> DevelopmentView {
    let mut d = d.clone();
    if d.undo_window {
        d.state = DevelopmentStanding::Published;
        d.published_at = d.embargo_until;
        d.embargo_until = None;
        d.embargo_steps.clear();
        d.undo_window = false;
    }
    d
}

/// `view` with `events` applied by the readers' own fold, as if `by` recorded them now: what the
/// views will hold once the command is carried out.
fn folded(view: &StoryView, events: Vec<StoryEvent>, by: &Principal) -> StoryView {
    let mut after = view.clone();
    let now = Utc::now();
    for (i, event) in events.into_iter().enumerate() {
        after.apply(&LoggedEvent {
            position: view.position + 1 + i as i64,
            story_id: view.id,
            sequence: 0,
            recorded_at: now,
            author: Some(by.name.clone()),
            event,
        });
    }
    after
}

fn sentence(raw: &str) -> String {
    let mut chars = raw.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

// ----- sign in and out ---------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
struct SignInQuery {
    next: Option<String>,
    signed_out: Option<String>,
    expired: Option<String>,
    kept: Option<String>,
}

async fn sign_in_form(
    State(state): State<DeskState>,
    headers: HeaderMap,
    Query(query): Query<SignInQuery>,
) -> Answer {
    let next = safe_next(query.next.as_deref().unwrap_or("/desk"));
    if let Lookup::Valid(_) = session::lookup(&state.command.tokens, &headers)
        .await
        .map_err(failure)?
    {
        return Ok(see_other(&next));
    }
    // Keep the value of an earlier visit, so a second tab does not spoil the first one's form.
    let login = session::cookie(&headers, session::LOGIN_COOKIE)
        .filter(|v| {
            v.len() == 22
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map_or_else(session::nonce, str::to_owned);
    let notice = if query.signed_out.is_some() {
        Some("You are signed out.")
    } else if query.kept.is_some() {
        Some(
            "Your sign-in had ended when you sent a form, so nothing was recorded. What you \
             typed is kept for an hour: sign in again to get back to it.",
        )
    } else if query.expired.is_some() {
        Some("Your sign-in has ended: the token is no longer valid. Sign in again.")
    } else {
        None
    };
    let mut r = page(
        StatusCode::OK,
        templates::sign_in_page(&login, &next, None, "", notice),
    );
    r.headers_mut()
        .append(header::SET_COOKIE, session::login_cookie(&headers, &login));
    Ok(r)
}

async fn sign_in(State(state): State<DeskState>, headers: HeaderMap, body: Bytes) -> Answer {
    let form = FormData::parse(&body);
    let expected = session::cookie(&headers, session::LOGIN_COOKIE).unwrap_or("");
    if expected.is_empty() || !session::same_secret(form.get("csrf"), expected) {
        return Ok(csrf_refused(None));
    }
    let next = safe_next(form.get("next"));
    let tokens = &state.command.tokens;
    // The name-and-password form, or the token form.
    let (login, password, token) = (
        form.get("login").trim(),
        form.get("password"),
        form.get("token").trim(),
    );
    let by_password = !login.is_empty() || !password.is_empty();
    let found = if by_password {
        tokens.sign_in_with_password(login, password).await
    } else {
        tokens.authenticate(token).await
    };
    match found {
        Ok(Some(principal)) => {
            let secret = tokens
                .open_session(&principal.token_id)
                .await
                .map_err(failure)?;
            tracing::info!(token_id = %principal.token_id, role = %principal.role, by_password, "signed in at the desk");
            let mut r = see_other(&next);
            let h = r.headers_mut();
            h.append(
                header::SET_COOKIE,
                session::session_cookie(&headers, &secret),
            );
            h.append(header::SET_COOKIE, session::clear_login_cookie(&headers));
            Ok(r)
        }
        Ok(None) => {
            tracing::info!(by_password, "desk sign-in refused");
            let error = if by_password {
                FormError::new(
                    Some("password"),
                    "That sign-in name and password do not match, or the account's token was revoked.",
                )
            } else {
                FormError::new(
                    Some("token"),
                    "That token is not known, or it was revoked. Check it and try again.",
                )
            };
            let shown_login = if by_password { login } else { "" };
            Ok(page(
                StatusCode::UNAUTHORIZED,
                templates::sign_in_page(expected, &next, Some(&error), shown_login, None),
            ))
        }
        Err(e) => Ok(failure(e)),
    }
}

async fn sign_out(State(state): State<DeskState>, headers: HeaderMap, body: Bytes) -> Answer {
    let form = FormData::parse(&body);
    if let Ok(Lookup::Valid(session)) = session::lookup(&state.command.tokens, &headers).await {
        state.check_csrf(&session, &form)?;
        if let Some(secret) = session::secret(&headers) {
            state
                .command
                .tokens
                .close_session(secret)
                .await
                .map_err(failure)?;
        }
        tracing::info!(token_id = %session.principal.token_id, "signed out of the desk");
    }
    let mut r = see_other("/desk/sign-in?signed_out=1");
    r.headers_mut()
        .append(header::SET_COOKIE, session::clear_session_cookie(&headers));
    Ok(r)
}

#[derive(Debug, Default, Deserialize)]
struct PasswordQuery {
    saved: Option<String>,
}

/// `/desk/password`: the signed-in holder's sign-in name and password.
async fn password_form(
    State(state): State<DeskState>,
    Signed(session): Signed,
    Query(query): Query<PasswordQuery>,
) -> Answer {
    let login = state
        .command
        .tokens
        .login_of(&session.principal.token_id)
        .await
        .map_err(failure)?;
    let notice = query
        .saved
        .is_some()
        .then_some("Saved: sign in with this name and password from now on.");
    Ok(page(
        StatusCode::OK,
        templates::password_page(
            &state.chrome(&session, Here::Other),
            login.as_deref(),
            None,
            notice,
        ),
    ))
}

async fn set_password(
    State(state): State<DeskState>,
    Signed(session): Signed,
    body: Bytes,
) -> Answer {
    let form = FormData::parse(&body);
    state.check_csrf(&session, &form)?;
    let (login, password) = (form.get("login"), form.get("password"));
    let refused = |field: &str, message: String, status: StatusCode| {
        page(
            status,
            templates::password_page(
                &state.chrome(&session, Here::Other),
                Some(login.trim()).filter(|l| !l.is_empty()),
                Some(&FormError::new(Some(field), message)),
                None,
            ),
        )
    };
    if password != form.get("repeat") {
        return Ok(refused(
            "repeat",
            "The two passwords differ: type the same one twice.".into(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ));
    }
    let set = state
        .command
        .tokens
        .set_password(&session.principal.token_id, login, password)
        .await;
    match set {
        Ok(_) => {
            tracing::info!(token_id = %session.principal.token_id, "desk password set");
            Ok(see_other("/desk/password?saved=1"))
        }
        Err(e @ PasswordError::BadLogin) => Ok(refused(
            "login",
            e.to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
        )),
        Err(e @ PasswordError::LoginTaken) => {
            Ok(refused("login", e.to_string(), StatusCode::CONFLICT))
        }
        Err(e @ PasswordError::BadPassword) => Ok(refused(
            "password",
            e.to_string(),
            StatusCode::UNPROCESSABLE_ENTITY,
        )),
        Err(PasswordError::Store(e)) => Err(failure(e).into()),
        Err(e) => Err(failure(e).into()),
    }
}

// ----- forms kept over a lapsed session --------------------------------------------------------

/// `/desk/parked/{key}`: a form posted after its session lapsed, shown again as it was typed.
async fn parked_form(
    State(state): State<DeskState>,
    Signed(session): Signed,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Answer {
    let found = state
        .parked
        .find(&key, &headers)
        .and_then(|p| TypedForm::of(&p.path).map(|which| (which, p.form)));
    let Some((which, form)) = found else {
        return Ok(page(
            StatusCode::NOT_FOUND,
            templates::message_page(
                Some(&state.chrome(&session, Here::Other)),
                "That form is no longer kept",
                "A form sent after a sign-in ended is kept for an hour, for the browser that sent it. \
                 This one is gone; nothing of it was recorded.",
                ("/desk", "Back to the desk"),
            ),
        ));
    };
    let kept = FormError::new(None, KEPT);
    let chrome = state.chrome(&session, Here::Other);
    match which {
        TypedForm::OpenStory => {
            home_with(&state, &session, StatusCode::OK, &form, Some(&kept)).await
        }
        TypedForm::File(id) => {
            let view = state.story(&session, &id).await?;
            let actors = state.known_actors(&view).await;
            Ok(page(
                StatusCode::OK,
                templates::file_page(
                    &chrome,
                    &view,
                    &form,
                    Some(&kept),
                    &actors,
                    templates::Opened::Sent,
                    None,
                ),
            ))
        }
        TypedForm::Correct(id, dev) => {
            let (view, d) = state.development(&session, &id, &dev).await?;
            state.require_editor_or_filer(&session, &d)?;
            Ok(page(
                StatusCode::OK,
                templates::correct_page(&chrome, &view, &d, &form, Some(&kept), None),
            ))
        }
        TypedForm::Retract(id, dev) => {
            state.require_editor(&session)?;
            let (view, d) = state.development(&session, &id, &dev).await?;
            Ok(page(
                StatusCode::OK,
                templates::retract_page(&chrome, &view, &d, &form, Some(&kept), None),
            ))
        }
        TypedForm::Reject(id, dev) => {
            state.require_editor(&session)?;
            let (_, development) = action_ids(&state, &session, &id, &dev)?;
            let failed = FailedRejection {
                development,
                reason: form.get("reason"),
                error: &kept,
            };
            review_with(&state, &session, StatusCode::OK, None, None, Some(&failed)).await
        }
    }
}

// ----- stories -------------------------------------------------------------------------------

async fn home_with(
    state: &DeskState,
    session: &Session,
    status: StatusCode,
    form: &FormData,
    error: Option<&FormError>,
) -> Answer {
    let stories = queries::stories(&state.views, session.principal.name.clone())
        .await
        .map_err(failure)?;
    let pending = if session.principal.role.at_least(Role::Editor) {
        Some(
            queries::pending_count(&state.views)
                .await
                .map_err(failure)?,
        )
    } else {
        None
    };
    let rejected = queries::rejected_filings(&state.views, session.principal.name.clone())
        .await
        .map_err(failure)?;
    let chrome = state.chrome(session, Here::Stories);
    Ok(page(
        status,
        templates::home_page(&chrome, &stories, pending, &rejected, form, error),
    ))
}

async fn home(State(state): State<DeskState>, Signed(session): Signed) -> Answer {
    home_with(
        &state,
        &session,
        StatusCode::OK,
        &forms::new_story_defaults(),
        None,
    )
    .await
}

async fn open_story(
    State(state): State<DeskState>,
    SignedForm(session, mut form): SignedForm,
) -> Answer {
    state.check_csrf(&session, &form)?;
    let id = StoryId::new();
    let request = forms::open_story_request(&form);
    let slug = request.slug.clone();
    let result = match request.parse(id) {
        Ok(command) => state.execute(id, &session, command).await,
        Err(p) => Err(p),
    };
    match result {
        Ok(outcome) => {
            let caught_up = state.catch_up(outcome.position).await;
            Ok(see_other(&format!(
                "{}?notice=opened{}",
                story_desk_path(id.as_uuid()),
                lag(caught_up)
            )))
        }
        Err(p) if forms::is_refusal(&p) => {
            if form.get("slug").trim().is_empty() {
                // Show the address made from the headline, so it can be changed.
                form.set("slug", slug);
            }
            let error = FormError::from_problem(&p);
            home_with(&state, &session, p.status(), &form, Some(&error)).await
        }
        Err(p) => Ok(state.problem_page(&session, p, "/desk")),
    }
}

fn filed_notice(view: &StoryView, d: Option<&DevelopmentView>, what: &str) -> Markup {
    let reader = |d: &DevelopmentView| format!("{}#dev-{}", story_path(&view.slug), d.id);
    html! {
        @match d {
            None => {
                (what) ". The desk has not caught up yet: reload in a moment to see it."
            }
            Some(d) => {
                (what) ": " a href=(format!("#dev-{}", d.id)) { (d.headline) } ". "
                @if d.state == DevelopmentStanding::PendingReview {
                    "It waits for an editor's review; readers see it once it is approved."
                } @else if d.is_visible() {
                    a href=(reader(d)) { "See it on the reader page" }
                }
            }
        }
    }
}

fn story_notice(chrome: &Chrome<'_>, query: &Notice, view: &StoryView) -> Option<Markup> {
    let d = query.development().and_then(|id| view.development(id));
    let lagging = query.lag.is_some();
    let text = match query.notice.as_deref()? {
        "opened" => html! {
            "Story opened. "
            a href=(format!("{}/file", story_desk_path(view.id))) { "File its first development" }
        },
        // The marker tells desk.js the draft of this filing is done with.
        "filed" => html! {
            (filed_notice(view, d, "Filed"))
            @if let Some(id) = query.development() { span hidden data-filed=(id) {} }
        },
        "approved" => filed_notice(view, d, "Approved and published"),
        // Held for its undo window: the time left and the button that takes it back; once the
        // window has passed, what came of it.
        // (Its draft is done with: undone, the filing form comes back filled in from it.)
        "held" => html! {
            @match d {
                Some(d) if d.undo_window && d.state == DevelopmentStanding::Embargoed => {
                    (templates::undo_notice(chrome, view, d))
                }
                Some(d) if d.is_visible() => (filed_notice(view, Some(d), "Published")),
                _ => (filed_notice(view, d, "Filed")),
            }
            @if let Some(id) = query.development() { span hidden data-filed=(id) {} }
        },
        "approved-embargoed" => filed_notice(view, d, "Approved; held until its embargo is lifted"),
        "corrected" => filed_notice(view, d, "Correction published"),
        "edited" => filed_notice(view, d, "Your edit is saved"),
        "embargo-lifted" => filed_notice(view, d, "Embargo lifted"),
        "embargo-moved" => filed_notice(view, d, "Embargo moved"),
        "withdrawn" => html! {
            "Withdrawn: it will not be published. It stays on the desk, marked as withdrawn."
        },
        "retracted" => filed_notice(
            view,
            d,
            "Retracted (readers see it struck through, with your reason)",
        ),
        "closed" => html! { "The story is closed: it takes no new developments." },
        "reopened" => html! { "The story is open again." },
        "related" => html! { "The stories are related: both pages show it." },
        "unlinked" => html! { "The stories are no longer related." },
        _ => return None,
    };
    Some(html! {
        (text)
        @if lagging && d.is_some() { " (The desk may still be a moment behind.)" }
    })
}

async fn story(
    State(state): State<DeskState>,
    Signed(session): Signed,
    Path(id): Path<String>,
    Query(query): Query<Notice>,
) -> Answer {
    let view = state.story(&session, &id).await?;
    let related = state.views.relations(view.id).await.map_err(failure)?;
    let subscribers = queries::subscribers(&state.notifier, view.id)
        .await
        .map_err(|e| tracing::warn!(error = %e, "cannot count the story's subscribers"))
        .ok();
    let chrome = state.chrome(&session, Here::Other);
    let notice = story_notice(&chrome, &query, &view);
    Ok(page(
        StatusCode::OK,
        templates::story_page(
            &chrome,
            &view,
            &related,
            subscribers,
            notice.as_ref(),
            query.development(),
        ),
    ))
}

async fn story_status(
    state: DeskState,
    session: Session,
    id: String,
    body: Bytes,
    command: StoryCommand,
    notice: &str,
) -> Answer {
    state.require_editor(&session)?;
    let form = FormData::parse(&body);
    state.check_csrf(&session, &form)?;
    let view = state.story(&session, &id).await?;
    let back = story_desk_path(view.id);
    match state
        .execute(StoryId::from(view.id), &session, command)
        .await
    {
        Ok(outcome) => {
            let caught_up = state.catch_up(outcome.position).await;
            Ok(see_other(&format!(
                "{back}?notice={notice}{}",
                lag(caught_up)
            )))
        }
        Err(p) => Ok(state.problem_page(&session, p, &back)),
    }
}

async fn close_story(
    State(state): State<DeskState>,
    Signed(session): Signed,
    Path(id): Path<String>,
    body: Bytes,
) -> Answer {
    story_status(state, session, id, body, StoryCommand::CloseStory, "closed").await
}

async fn reopen_story(
    State(state): State<DeskState>,
    Signed(session): Signed,
    Path(id): Path<String>,
    body: Bytes,
) -> Answer {
    story_status(
        state,
        session,
        id,
        body,
        StoryCommand::ReopenStory,
        "reopened",
    )
    .await
}

// ----- relations ---------------------------------------------------------------------------------

/// Relates the story to another, named by slug or id (editors): the API's command.
async fn relate(
    State(state): State<DeskState>,
    Signed(session): Signed,
    Path(id): Path<String>,
    body: Bytes,
) -> Answer {
    state.require_editor(&session)?;
    let form = FormData::parse(&body);
    state.check_csrf(&session, &form)?;
    let view = state.story(&session, &id).await?;
    let back = story_desk_path(view.id);
    let named = form.get("story").trim();
    // An id, else a slug (checked as one first, so nothing that is no slug reaches a query).
    let other = match Uuid::parse_str(named) {
        Ok(other) => Some(other),
        Err(_) => match newsroom_domain::Slug::parse("story", named) {
            Ok(slug) => state
                .views
                .resolve(slug.to_string())
                .await
                .map_err(failure)?,
            Err(_) => None,
        },
    };
    let command = match (other, form.get("relation").parse::<Relation>()) {
        (Some(other), Ok(relation)) => StoryCommand::LinkStory {
            story: StoryId::from(other),
            relation,
        },
        (None, _) => {
            let problem = Problem::invalid("story", format!("no story `{named}`"));
            return Ok(state.problem_page(&session, problem, &back));
        }
        (_, Err(e)) => {
            return Ok(state.problem_page(&session, Problem::invalid("relation", e), &back));
        }
    };
    relation_done(&state, &session, view.id, command, "related", back).await
}

/// Removes the relation between the story and another, whichever records it (editors).
async fn unrelate(
    State(state): State<DeskState>,
    Signed(session): Signed,
    Path((id, other)): Path<(String, String)>,
    body: Bytes,
) -> Answer {
    state.require_editor(&session)?;
    let form = FormData::parse(&body);
    state.check_csrf(&session, &form)?;
    let view = state.story(&session, &id).await?;
    let back = story_desk_path(view.id);
    let Ok(other) = Uuid::parse_str(&other) else {
        return Err(not_found_page(Some(&state.chrome(&session, Here::Other)), "story").into());
    };
    let outcome = state
        .command
        .service
        .unlink(
            StoryId::from(view.id),
            StoryId::from(other),
            &session.principal,
        )
        .await;
    match outcome {
        Ok(outcome) => {
            let caught_up = state.catch_up(outcome.position).await;
            Ok(see_other(&format!(
                "{back}?notice=unlinked{}",
                lag(caught_up)
            )))
        }
        Err(e) => Ok(state.problem_page(&session, e.into(), &back)),
    }
}

async fn relation_done(
    state: &DeskState,
    session: &Session,
    story: Uuid,
    command: StoryCommand,
    notice: &str,
    back: String,
) -> Answer {
    match state.execute(StoryId::from(story), session, command).await {
        Ok(outcome) => {
            let caught_up = state.catch_up(outcome.position).await;
            Ok(see_other(&format!(
                "{back}?notice={notice}{}",
                lag(caught_up)
            )))
        }
        Err(p) => Ok(state.problem_page(session, p, &back)),
    }
}

// ----- filing ------------------------------------------------------------------------------------

async fn file_form(
    State(state): State<DeskState>,
    Signed(session): Signed,
    Path(id): Path<String>,
    Query(query): Query<Notice>,
) -> Answer {
    let view = state.story(&session, &id).await?;
    let mut form = FormData::default();
    form.set("id", Uuid::now_v7().to_string());
    form.set("occurred_at", state.zone.input_value(Utc::now()));
    form.set("urgency", newsroom_domain::Urgency::default().as_str());
    form.set("evidence", newsroom_domain::Evidence::default().as_str());
    if let Some(target) = query
        .responds_to
        .as_deref()
        .and_then(|t| Uuid::parse_str(t).ok())
        .filter(|t| view.development(*t).is_some())
    {
        form.set("responds_to.development", target.to_string());
    }
    // Revising a rejected filing: the form opens with all of it, and says why it was rejected.
    let revised = query
        .from
        .as_deref()
        .and_then(|d| Uuid::parse_str(d).ok())
        .and_then(|d| view.development(d))
        .filter(|d| d.state == DevelopmentStanding::Rejected);
    let undone = query.notice.as_deref() == Some("undone");
    let notice = revised.map(|d| {
        form = forms::refile_defaults(d, &view, state.zone);
        html! {
            @if undone {
                "Undone: it was not published, and nobody was alerted. Your filing is below as you "
                "sent it; change it and publish it again when it is ready (as a new development)."
            } @else {
                "You are revising a rejected filing: it is filed again as a new development, once you confirm it."
                @if let Some(v) = &d.rejection {
                    " " (templates::who_rejected(v)) ": "
                    q { (v.reason) }
                }
            }
        }
    });
    // Opened afresh: the draft this person saved of it on the server, if any (typed before
    // their session lapsed, or on another device), comes back.
    let mut opened = if revised.is_none() {
        templates::Opened::Fresh
    } else {
        templates::Opened::Sent
    };
    let mut notice = notice;
    if opened == templates::Opened::Fresh && query.responds_to.is_none() {
        let saved = state
            .command
            .tokens
            .draft(&session.principal.token_id, &draft_key(view.id))
            .await
            .map_err(|e| tracing::warn!(error = %e, "cannot read a saved draft"))
            .ok()
            .flatten();
        if let Some((fields, saved_at)) = saved {
            form = FormData::parse(fields.as_bytes());
            opened = templates::Opened::ServerDraft;
            let at = chrono::DateTime::parse_from_rfc3339(&saved_at)
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_else(|_| Utc::now());
            // (Marked: desk.js takes the notice away if the browser's newer draft replaces it.)
            notice = Some(html! {
                span hidden data-server-draft-notice {}
                "Your draft, saved " (templates::when(state.zone, at))
                ", is back in the form below. It is filed only when you publish it."
            });
        }
    }
    let actors = state.known_actors(&view).await;
    let chrome = state.chrome(&session, Here::Other);
    Ok(page(
        StatusCode::OK,
        templates::file_page(
            &chrome,
            &view,
            &form,
            None,
            &actors,
            opened,
            notice.as_ref(),
        ),
    ))
}

/// The key of a person's server-side draft of a story's filing form.
fn draft_key(story: Uuid) -> String {
    format!("file:{story}")
}

/// `POST …/draft`: saves what is typed into the story's filing form, for the signed-in person
/// (`desk.js` sends it as they type); 204. What the filing form would park, bounded the same way.
async fn save_draft(
    State(state): State<DeskState>,
    Signed(session): Signed,
    Path(id): Path<String>,
    body: Bytes,
) -> Answer {
    if body.len() > newsroom_web::auth::DRAFT_BYTES {
        return Ok(StatusCode::PAYLOAD_TOO_LARGE.into_response());
    }
    let form = FormData::parse(&body);
    state.check_csrf(&session, &form)?;
    let view = state.story(&session, &id).await?;
    state
        .command
        .tokens
        .save_draft(
            &session.principal.token_id,
            &draft_key(view.id),
            &form.typed().encode(),
        )
        .await
        .map_err(failure)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// What the filing form's POST came to.
enum Filing {
    Preview(Vec<StoryEvent>),
    Done(Uuid, Outcome),
}

async fn file(
    State(state): State<DeskState>,
    Path(id): Path<String>,
    SignedForm(session, mut form): SignedForm,
) -> Answer {
    state.check_csrf(&session, &form)?;
    let view = state.story(&session, &id).await?;
    let step = Step::of(&form, "file");
    if step == Step::Edit {
        let actors = state.known_actors(&view).await;
        let chrome = state.chrome(&session, Here::Other);
        return Ok(page(
            StatusCode::OK,
            templates::file_page(
                &chrome,
                &view,
                &form,
                None,
                &actors,
                templates::Opened::Sent,
                None,
            ),
        ));
    }
    let story = StoryId::from(view.id);
    let parsed = forms::development_request(&form, state.zone).and_then(|request| {
        let development = request.id;
        request
            .parse()
            .map(|command| (development, state.held(command)))
    });
    let result = match parsed {
        // Only the preview page's own button files; anything else shows what would be filed.
        Ok((development, command)) if step == Step::Confirm => state
            .execute(story, &session, command)
            .await
            .map(|outcome| Filing::Done(development, outcome)),
        Ok((_, command)) => state
            .preview(story, &session, command)
            .await
            .map(Filing::Preview),
        Err(p) => Err(p),
    };
    let development = form.get("id").trim().to_owned();
    match result {
        Ok(Filing::Done(development, outcome)) => {
            // Filed: its draft is done with.
            if let Err(e) = state
                .command
                .tokens
                .discard_draft(&session.principal.token_id, &draft_key(view.id))
                .await
            {
                tracing::warn!(error = %e, "cannot drop a filed draft");
            }
            let caught_up = state.catch_up(outcome.position).await;
            // A retry (desk.js sends again when an answer was lost) records nothing: the
            // `held` notice then says what came of the first, its undo window included.
            let held = outcome
                .events
                .iter()
                .any(|e| matches!(e, StoryEvent::DevelopmentRecorded { hold: Some(_), .. }))
                || (outcome.events.is_empty() && state.undo.is_some());
            Ok(see_other(&format!(
                "{}?notice={}&development={development}{}",
                story_desk_path(view.id),
                if held { "held" } else { "filed" },
                lag(caught_up)
            )))
        }
        // Filed before, with the same content: there is nothing left to confirm.
        Ok(Filing::Preview(events)) if events.is_empty() => Ok(see_other(&format!(
            "{}?notice=filed&development={}",
            story_desk_path(view.id),
            encode(&development)
        ))),
        Ok(Filing::Preview(events)) => {
            let after = folded(&view, events, &session.principal);
            let Some(d) = Uuid::parse_str(&development)
                .ok()
                .and_then(|id| after.development(id))
            else {
                return Ok(failure("a previewed filing is not in the folded story"));
            };
            // Shown as readers will see it once its undo window has passed.
            let d = &as_published(d);
            let subscribers = state.subscribers(view.id).await;
            let chrome = state.chrome(&session, Here::Other);
            Ok(page(
                StatusCode::OK,
                templates::file_preview_page(&chrome, &after, d, &form, subscribers),
            ))
        }
        Err(p) if forms::is_refusal(&p) => {
            let error = FormError::from_problem(&p);
            if p.details().field.as_deref() == Some("id") {
                // Already filed with other content, or the form lost its id: a new filing.
                form.set("id", Uuid::now_v7().to_string());
            }
            let actors = state.known_actors(&view).await;
            let chrome = state.chrome(&session, Here::Other);
            Ok(page(
                p.status(),
                templates::file_page(
                    &chrome,
                    &view,
                    &form,
                    Some(&error),
                    &actors,
                    templates::Opened::Sent,
                    None,
                ),
            ))
        }
        Err(p) => Ok(state.problem_page(&session, p, &story_desk_path(view.id))),
    }
}

// ----- review ----------------------------------------------------------------------------------

async fn review_with(
    state: &DeskState,
    session: &Session,
    status: StatusCode,
    notice: Option<Markup>,
    error: Option<&FormError>,
    failed: Option<&FailedRejection<'_>>,
) -> Answer {
    let queue = queries::review_queue(&state.views).await.map_err(failure)?;
    let chrome = state.chrome(session, Here::Review);
    Ok(page(
        status,
        templates::review_page(&chrome, &queue, notice.as_ref(), error, failed),
    ))
}

async fn review(
    State(state): State<DeskState>,
    Signed(session): Signed,
    Query(query): Query<Notice>,
) -> Answer {
    state.require_editor(&session)?;
    let story = query.story.as_deref().and_then(|s| Uuid::parse_str(s).ok());
    let notice = match (query.notice.as_deref(), story) {
        (Some(notice @ ("approved" | "approved-embargoed")), Some(story)) => Some(html! {
            @if notice == "approved" { "Approved and published. " }
            @else { "Approved; held until its embargo is lifted, then published. " }
            a href=(format!("{}?notice={notice}&development={}#dev-{}", story_desk_path(story),
                query.development.as_deref().unwrap_or(""), query.development.as_deref().unwrap_or(""))) {
                "See it on the story's desk page"
            }
        }),
        (Some("rejected"), Some(story)) => Some(html! {
            "Rejected. Your reason is on "
            a href=(format!("{}#dev-{}", story_desk_path(story), query.development.as_deref().unwrap_or(""))) {
                "the story's desk page"
            }
            "; readers never see it."
        }),
        _ => None,
    };
    review_with(&state, &session, StatusCode::OK, notice, None, None).await
}

/// `/desk/search?q=`: the reader side's search (its parameters, its parsing and its index),
/// for staff: developments waiting for review are found too.
async fn search(
    State(state): State<DeskState>,
    Signed(session): Signed,
    axum::extract::RawQuery(raw): axum::extract::RawQuery,
) -> Answer {
    use newsroom_projection::api::{parse_search, search_next, ReadError, DESK_SEARCH_PARAMS};
    use newsroom_projection::search::Audience;
    let chrome = state.chrome(&session, Here::Search);
    let refused = |problem: Problem| {
        let details = problem.details();
        let error = FormError::new(details.field.as_deref(), details.detail.clone());
        page(
            problem.status(),
            templates::search_page(&chrome, "", None, None, None, Some(&error)),
        )
    };
    let params = match newsroom_web::query_params(raw.as_deref(), DESK_SEARCH_PARAMS) {
        Ok(params) => params,
        Err(problem) => return Ok(refused(problem)),
    };
    let q = params.get("q").cloned().unwrap_or_default();
    if q.trim().is_empty() {
        return Ok(page(
            StatusCode::OK,
            templates::search_page(&chrome, "", None, None, None, None),
        ));
    }
    let found = async {
        let search = parse_search(&state.views, &params, Audience::Staff).await?;
        let (offset, limit) = (search.offset, search.limit);
        let found = state.views.search(search).await?;
        let next = found
            .more
            .then(|| search_next("/desk/search", &params, offset + limit));
        Ok::<_, ReadError>((found.hits, next))
    }
    .await;
    match found {
        Ok((hits, next)) => Ok(page(
            StatusCode::OK,
            templates::search_page(
                &chrome,
                &q,
                params.get("status").map(String::as_str),
                Some(&hits),
                next.as_deref(),
                None,
            ),
        )),
        Err(ReadError(problem)) if problem.status().is_client_error() => {
            let details = problem.details();
            let error = FormError::new(details.field.as_deref(), details.detail.clone());
            Ok(page(
                problem.status(),
                templates::search_page(
                    &chrome,
                    &q,
                    params.get("status").map(String::as_str),
                    None,
                    None,
                    Some(&error),
                ),
            ))
        }
        Err(ReadError(problem)) => Err(Stop::from(failure(problem.details().detail.clone()))),
    }
}

/// The story and development ids of a development action's path.
fn action_ids(
    state: &DeskState,
    session: &Session,
    id: &str,
    dev: &str,
) -> Result<(Uuid, Uuid), Stop> {
    match (Uuid::parse_str(id), Uuid::parse_str(dev)) {
        (Ok(story), Ok(development)) => Ok((story, development)),
        _ => Err(Stop::from(not_found_page(
            Some(&state.chrome(session, Here::Other)),
            "development",
        ))),
    }
}

/// `GET …/approve`: the development as readers will see it once approved, and the button that
/// approves it.
async fn approve_form(
    State(state): State<DeskState>,
    Signed(session): Signed,
    Path((id, dev)): Path<(String, String)>,
    Query(query): Query<Notice>,
) -> Answer {
    state.require_editor(&session)?;
    let (view, d) = state.development(&session, &id, &dev).await?;
    check_state(
        &state,
        &session,
        &view,
        &d,
        &[DevelopmentStanding::PendingReview],
        "approved",
    )?;
    state
        .presence
        .here(d.id, &session.principal, Doing::Approving);
    approve_page_with(&state, &session, &view, &d, StatusCode::OK, &query, None).await
}

/// What the approval page says when the development changed since the editor looked at it.
fn approve_changed(zone: Zone, d: &DevelopmentView, since: Option<i64>) -> Markup {
    html! {
        (templates::changes_since(zone, d, since))
        p { "Below is the development as it is now: check it again before you approve it." }
    }
}

/// The approval page of `d`, with a notice or the reason the last approval was refused.
async fn approve_page_with(
    state: &DeskState,
    session: &Session,
    view: &StoryView,
    d: &DevelopmentView,
    status: StatusCode,
    query: &Notice,
    changed: Option<&Markup>,
) -> Answer {
    // (Previewed without the undo window: as readers will see it once it has passed.)
    let command = StoryCommand::ApproveDevelopment {
        development: DevelopmentId::from(d.id),
        hold: None,
    };
    let events = match state
        .preview(StoryId::from(view.id), session, command)
        .await
    {
        Ok(events) => events,
        Err(p) => return Ok(state.problem_page(session, p, "/desk/review")),
    };
    let after = folded(view, events, &session.principal);
    let shown = after.development(d.id).unwrap_or(d);
    let notice = match query.notice.as_deref() {
        Some("edited") => Some(html! {
            "Your edit is saved. It still waits for review: readers see it, as below, once you approve it."
        }),
        Some("undone") => Some(html! {
            "Approval undone: it was not published, and nobody was alerted. It waits for review "
            "again, as below."
        }),
        _ => None,
    };
    let subscribers = state.subscribers(view.id).await;
    let chrome = state.chrome(session, Here::Review);
    Ok(page(
        status,
        templates::approve_page(
            &chrome,
            &after,
            d,
            shown,
            view.position,
            subscribers,
            notice.as_ref(),
            changed,
        ),
    ))
}

/// `POST …/approve`: approves, if sent by the approval page's button; anything else goes to
/// that page.
async fn approve(
    State(state): State<DeskState>,
    Signed(session): Signed,
    Path((id, dev)): Path<(String, String)>,
    body: Bytes,
) -> Answer {
    state.require_editor(&session)?;
    let form = FormData::parse(&body);
    state.check_csrf(&session, &form)?;
    let (story, development) = action_ids(&state, &session, &id, &dev)?;
    if Step::of(&form, "approve") != Step::Confirm {
        return Ok(see_other(&templates::development_path(
            story,
            development,
            "approve",
        )));
    }
    let command = StoryCommand::ApproveDevelopment {
        development: DevelopmentId::from(development),
        hold: state.undo,
    };
    let seen = forms::seen(&form);
    match state
        .execute_seen(StoryId::from(story), &session, command, development, seen)
        .await
    {
        Ok(outcome) => {
            state.presence.gone(development, &session.principal);
            let caught_up = state.catch_up(outcome.position).await;
            // Approved under an embargo: held until it is lifted; in its undo window: the
            // story's page, with the time left and the button that undoes it.
            let hold = outcome.events.iter().find_map(|e| match e {
                StoryEvent::DevelopmentApprovedUnderEmbargo { hold, .. } => Some(hold.is_some()),
                _ => None,
            });
            Ok(see_other(&match hold {
                Some(true) => format!(
                    "{}?notice=held&development={development}{}",
                    story_desk_path(story),
                    lag(caught_up)
                ),
                Some(false) => format!(
                    "/desk/review?notice=approved-embargoed&story={story}&development={development}{}",
                    lag(caught_up)
                ),
                None => format!(
                    "/desk/review?notice=approved&story={story}&development={development}{}",
                    lag(caught_up)
                ),
            }))
        }
        Err(p) if is_changed(&p) => {
            let (view, d) = state.now(&session, &id, &dev).await?;
            check_state(
                &state,
                &session,
                &view,
                &d,
                &[DevelopmentStanding::PendingReview],
                "approved",
            )?;
            let changed = approve_changed(state.zone, &d, seen);
            approve_page_with(
                &state,
                &session,
                &view,
                &d,
                StatusCode::CONFLICT,
                &Notice::default(),
                Some(&changed),
            )
            .await
        }
        Err(p) if forms::is_refusal(&p) => {
            let error = FormError::from_problem(&p);
            review_with(&state, &session, p.status(), None, Some(&error), None).await
        }
        Err(p) => Ok(state.problem_page(&session, p, "/desk/review")),
    }
}

#[derive(Debug, Default, Deserialize)]
struct NoticesQuery {
    after: Option<i64>,
}

/// `/desk/notices?after=<position>`: what others did to the signed-in person's filings since
/// `after`, as list items for `desk.js` (`{"position", "html"}`); without `after`, only where the
/// views stand, to start from.
async fn notices_since(
    State(state): State<DeskState>,
    Signed(session): Signed,
    Query(query): Query<NoticesQuery>,
) -> Answer {
    let (found, position) = match query.after {
        None => (Vec::new(), state.views.position().await.map_err(failure)?),
        Some(after) => notices::since(
            &state.command.store,
            &state.views,
            &session.principal,
            after.max(0),
        )
        .await
        .map_err(failure)?,
    };
    let html = templates::notice_items(state.zone, &found).into_string();
    Ok((
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(serde_json::json!({ "position": position, "html": html })),
    )
        .into_response())
}

/// `desk.js` on an open approval, correction or retraction form: still here (`doing`: the
/// form's action), or gone (`left`). Answers 204; refuses a form without its CSRF value.
async fn presence_mark(
    State(state): State<DeskState>,
    Path((_, dev)): Path<(String, String)>,
    SignedForm(session, form): SignedForm,
) -> Answer {
    state.check_csrf(&session, &form)?;
    let Ok(dev) = Uuid::parse_str(&dev) else {
        return Ok(StatusCode::NOT_FOUND.into_response());
    };
    if !form.get("left").is_empty() {
        state.presence.gone(dev, &session.principal);
    } else if let Some(doing) = Doing::parse(form.get("doing")) {
        if doing != Doing::Editing {
            state.require_editor(&session)?;
        }
        state.presence.here(dev, &session.principal, doing);
    } else {
        return Ok(StatusCode::UNPROCESSABLE_ENTITY.into_response());
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn reject(
    State(state): State<DeskState>,
    Path((id, dev)): Path<(String, String)>,
    SignedForm(session, form): SignedForm,
) -> Answer {
    state.require_editor(&session)?;
    state.check_csrf(&session, &form)?;
    let (story, development) = action_ids(&state, &session, &id, &dev)?;
    let reason = form.get("reason");
    let result = match (ReasonRequest {
        reason: reason.to_owned(),
    })
    .parse()
    {
        Ok(reason) => {
            let command = StoryCommand::RejectDevelopment {
                development: DevelopmentId::from(development),
                reason,
            };
            state.execute(StoryId::from(story), &session, command).await
        }
        Err(p) => Err(p),
    };
    match result {
        Ok(outcome) => {
            let caught_up = state.catch_up(outcome.position).await;
            Ok(see_other(&format!(
                "/desk/review?notice=rejected&story={story}&development={development}{}",
                lag(caught_up)
            )))
        }
        Err(p) if forms::is_refusal(&p) => {
            let error = FormError::from_problem(&p);
            if error.field.as_deref() == Some("reason") {
                let failed = FailedRejection {
                    development,
                    reason,
                    error: &error,
                };
                review_with(&state, &session, p.status(), None, None, Some(&failed)).await
            } else {
                review_with(&state, &session, p.status(), None, Some(&error), None).await
            }
        }
        Err(p) => Ok(state.problem_page(&session, p, "/desk/review")),
    }
}

// ----- correct and retract ------------------------------------------------------------------------

/// Refuses to show a form for a development in a state the action does not apply to.
fn check_state(
    state: &DeskState,
    session: &Session,
    view: &StoryView,
    d: &DevelopmentView,
    allowed: &[DevelopmentStanding],
    action: &str,
) -> Result<(), Stop> {
    if allowed.contains(&d.state) {
        return Ok(());
    }
    Err(Stop::from(page(
        StatusCode::CONFLICT,
        templates::message_page(
            Some(&state.chrome(session, Here::Other)),
            "That cannot be done now",
            &format!(
                "This development is {}: it cannot be {action}.",
                match d.state {
                    DevelopmentStanding::PendingReview => "waiting for review",
                    DevelopmentStanding::Published => "published",
                    DevelopmentStanding::Rejected => "rejected",
                    DevelopmentStanding::Retracted => "retracted",
                    DevelopmentStanding::Embargoed => "embargoed",
                }
            ),
            (
                &format!("{}#dev-{}", story_desk_path(view.id), d.id),
                "Back to the story",
            ),
        ),
    )))
}

const CORRECTABLE: &[DevelopmentStanding] = &[
    DevelopmentStanding::Published,
    DevelopmentStanding::PendingReview,
];
const RETRACTABLE: &[DevelopmentStanding] = &[DevelopmentStanding::Published];

async fn correct_form(
    State(state): State<DeskState>,
    Signed(session): Signed,
    Path((id, dev)): Path<(String, String)>,
) -> Answer {
    let (view, d) = state.development(&session, &id, &dev).await?;
    state.require_editor_or_filer(&session, &d)?;
    check_state(&state, &session, &view, &d, CORRECTABLE, "corrected")?;
    state
        .presence
        .here(d.id, &session.principal, Doing::Editing);
    let mut form = forms::correction_defaults(&d, state.zone);
    forms::keep_shown(&mut form);
    form.set("seen", view.position.to_string());
    let chrome = state.chrome(&session, Here::Other);
    Ok(page(
        StatusCode::OK,
        templates::correct_page(&chrome, &view, &d, &form, None, None),
    ))
}

/// The correction form again, after it was sent over a newer change to its development: the
/// development as it is now, what changed, and the editor's own changes on top (nothing lost,
/// nothing of the other change undone), to be sent again knowingly.
async fn correct_changed(
    state: &DeskState,
    session: &Session,
    id: &str,
    dev: &str,
    form: &FormData,
) -> Answer {
    let since = forms::seen(form);
    let (view, d) = state.now(session, id, dev).await?;
    check_state(state, session, &view, &d, CORRECTABLE, "corrected")?;
    let (mut rebased, both) = forms::rebase_correction(form, &d, state.zone);
    rebased.set("seen", view.position.to_string());
    let published_since = since.is_none_or(|s| d.published_position.is_some_and(|p| p > s))
        && d.state == DevelopmentStanding::Published;
    let changed = html! {
        (templates::changes_since(state.zone, &d, since))
        @if published_since {
            p {
                strong { "It is published now." }
                " Saving your changes would publish a correction: readers see it, with your note, "
                "and everyone who was alerted to it is alerted again."
            }
        }
        p {
            "Below is the development as it is now, with your changes on top."
            @if !both.is_empty() {
                " You both changed "
                (both.iter().map(|c| templates::control_label(c)).collect::<Vec<_>>().join(", "))
                ": yours is in the form, theirs above."
            }
        }
    };
    let chrome = state.chrome(session, Here::Other);
    Ok(page(
        StatusCode::CONFLICT,
        templates::correct_page(&chrome, &view, &d, &rebased, None, Some(&changed)),
    ))
}

/// Where an action on a development sends the editor afterwards.
fn after_action(view: &StoryView, d: &DevelopmentView, notice: &str, caught_up: bool) -> String {
    format!(
        "{}?notice={notice}&development={id}{}",
        story_desk_path(view.id),
        lag(caught_up),
        id = d.id
    )
}

/// The answer to an editor's form on a development: back to the story once the views show
/// `done`, or the form again with the refusal beside its field (and what was typed kept).
async fn answer_editor_form(
    state: &DeskState,
    session: &Session,
    view: &StoryView,
    d: &DevelopmentView,
    done: &str,
    result: Result<Outcome, Problem>,
    form_again: impl FnOnce(&Chrome<'_>, &FormError) -> Markup,
) -> Answer {
    match result {
        Ok(outcome) => {
            let caught_up = state.catch_up(outcome.position).await;
            Ok(see_other(&after_action(view, d, done, caught_up)))
        }
        Err(p) if forms::is_refusal(&p) => {
            let error = FormError::from_problem(&p);
            let chrome = state.chrome(session, Here::Other);
            Ok(page(p.status(), form_again(&chrome, &error)))
        }
        Err(p) => Ok(state.problem_page(session, p, &story_desk_path(view.id))),
    }
}

/// What the correction form's note holds when none is typed for an edit of a pending
/// development: the form needs one to parse, and the edit is recorded without it.
const EDIT_NOTE: &str = "Edited before publication.";

/// A change of a development still under review is an edit of the filing (`EditFiling`): no
/// correction to readers, and the note only if one was typed.
fn as_edit_of_filing(command: StoryCommand, typed_note: bool) -> StoryCommand {
    match command {
        StoryCommand::CorrectDevelopment {
            development,
            note,
            changes,
        } => StoryCommand::EditFiling {
            development,
            changes,
            note: typed_note.then_some(note),
        },
        other => other,
    }
}

/// `POST …/correct`. A development still under review is edited at once (nothing is published)
/// and the editor goes on to its approval page; a correction of a published one is shown as a
/// preview first and published only by the preview's button.
async fn correct(
    State(state): State<DeskState>,
    Path((id, dev)): Path<(String, String)>,
    SignedForm(session, form): SignedForm,
) -> Answer {
    let answer = correct_sent(&state, &id, &dev, &session, &form).await;
    state.done_with(&dev, &session, answer)
}

async fn correct_sent(
    state: &DeskState,
    id: &str,
    dev: &str,
    session: &Session,
    form: &FormData,
) -> Answer {
    state.check_csrf(session, form)?;
    let (view, d) = state.development(session, id, dev).await?;
    state.require_editor_or_filer(session, &d)?;
    let pending = d.state == DevelopmentStanding::PendingReview;
    let step = match Step::of(form, "correct") {
        Step::Edit => Step::Edit,
        _ if pending => Step::Confirm,
        other => other,
    };
    if step == Step::Edit {
        let chrome = state.chrome(session, Here::Other);
        return Ok(page(
            StatusCode::OK,
            templates::correct_page(&chrome, &view, &d, form, None, None),
        ));
    }
    let seen = forms::seen(form);
    if seen.is_none_or(|s| d.updated_position > s) {
        // Already changed by the time it is shown: say so before any preview.
        return correct_changed(state, session, id, dev, form).await;
    }
    let mut request_form = form.clone();
    let typed_note = !request_form.get("note").trim().is_empty();
    if pending && !typed_note {
        request_form.set("note", EDIT_NOTE);
    }
    let command = forms::correction_request(&request_form, &d, state.zone)
        .and_then(|request| request.parse(DevelopmentId::from(d.id)))
        .map(|command| {
            if pending {
                as_edit_of_filing(command, typed_note)
            } else {
                command
            }
        });
    let story = StoryId::from(view.id);
    if step == Step::Preview {
        let previewed = match command {
            Ok(command) => state.preview(story, session, command).await,
            Err(p) => Err(p),
        };
        return match previewed {
            Ok(events) => {
                let after = folded(&view, events, &session.principal);
                let shown = after.development(d.id).unwrap_or(&d);
                let chrome = state.chrome(session, Here::Other);
                Ok(page(
                    StatusCode::OK,
                    templates::correct_preview_page(&chrome, &after, shown, form),
                ))
            }
            Err(p) if forms::is_refusal(&p) => {
                let error = FormError::from_problem(&p);
                let chrome = state.chrome(session, Here::Other);
                Ok(page(
                    p.status(),
                    templates::correct_page(&chrome, &view, &d, form, Some(&error), None),
                ))
            }
            Err(p) => Ok(state.problem_page(session, p, &story_desk_path(view.id))),
        };
    }
    let result = match command {
        Ok(command) => {
            state
                .execute_seen(story, session, command, d.id, seen)
                .await
        }
        Err(p) => Err(p),
    };
    if matches!(&result, Err(p) if is_changed(p)) {
        return correct_changed(state, session, id, dev, form).await;
    }
    if pending {
        if let Ok(outcome) = &result {
            let caught_up = state.catch_up(outcome.position).await;
            // An editor goes on to approve it; its reporter back to the story.
            return Ok(see_other(
                &if session.principal.role.at_least(Role::Editor) {
                    format!(
                        "{}?notice=edited",
                        templates::development_path(view.id, d.id, "approve")
                    )
                } else {
                    after_action(&view, &d, "edited", caught_up)
                },
            ));
        }
    }
    answer_editor_form(
        state,
        session,
        &view,
        &d,
        "corrected",
        result,
        |chrome, error| templates::correct_page(chrome, &view, &d, form, Some(error), None),
    )
    .await
}

async fn retract_form(
    State(state): State<DeskState>,
    Signed(session): Signed,
    Path((id, dev)): Path<(String, String)>,
) -> Answer {
    state.require_editor(&session)?;
    let (view, d) = state.development(&session, &id, &dev).await?;
    check_state(&state, &session, &view, &d, RETRACTABLE, "retracted")?;
    state
        .presence
        .here(d.id, &session.principal, Doing::Retracting);
    let mut form = FormData::default();
    form.set("seen", view.position.to_string());
    let chrome = state.chrome(&session, Here::Other);
    Ok(page(
        StatusCode::OK,
        templates::retract_page(&chrome, &view, &d, &form, None, None),
    ))
}

async fn retract(
    State(state): State<DeskState>,
    Path((id, dev)): Path<(String, String)>,
    SignedForm(session, form): SignedForm,
) -> Answer {
    let answer = retract_sent(&state, &id, &dev, &session, &form).await;
    state.done_with(&dev, &session, answer)
}

async fn retract_sent(
    state: &DeskState,
    id: &str,
    dev: &str,
    session: &Session,
    form: &FormData,
) -> Answer {
    state.require_editor(session)?;
    state.check_csrf(session, form)?;
    let (view, d) = state.development(session, id, dev).await?;
    let result = match (ReasonRequest {
        reason: form.get("reason").to_owned(),
    })
    .parse()
    {
        Ok(reason) => {
            let command = StoryCommand::RetractDevelopment {
                development: DevelopmentId::from(d.id),
                reason,
            };
            state
                .execute_seen(
                    StoryId::from(view.id),
                    session,
                    command,
                    d.id,
                    forms::seen(form),
                )
                .await
        }
        Err(p) => Err(p),
    };
    if matches!(&result, Err(p) if is_changed(p)) {
        let since = forms::seen(form);
        let (view, d) = state.now(session, id, dev).await?;
        check_state(state, session, &view, &d, RETRACTABLE, "retracted")?;
        let mut again = form.clone();
        again.set("seen", view.position.to_string());
        let changed = html! {
            (templates::changes_since(state.zone, &d, since))
            p { "Below is the development as it is now. Your reason is kept: check it and retract again." }
        };
        let chrome = state.chrome(session, Here::Other);
        return Ok(page(
            StatusCode::CONFLICT,
            templates::retract_page(&chrome, &view, &d, &again, None, Some(&changed)),
        ));
    }
    answer_editor_form(
        state,
        session,
        &view,
        &d,
        "retracted",
        result,
        |chrome, error| templates::retract_page(chrome, &view, &d, form, Some(error), None),
    )
    .await
}

// ----- undo ------------------------------------------------------------------------------------

/// Whether `d` is held for the undo window of its approval (else of its filing).
fn is_approval_window(d: &DevelopmentView) -> bool {
    d.approved_by.is_some()
}

/// Refuses an undo to whoever may not: an approval's window is editors', a filing's its filer's.
fn require_undoer(state: &DeskState, session: &Session, d: &DevelopmentView) -> Result<(), Stop> {
    if is_approval_window(d) {
        state.require_editor(session)
    } else {
        require_filer(state, session, d)
    }
}

/// The page saying an undo window has passed (or there was none): what came of it instead.
fn too_late(state: &DeskState, session: &Session, view: &StoryView, d: &DevelopmentView) -> Stop {
    let chrome = state.chrome(session, Here::Other);
    Stop::from(page(
        StatusCode::CONFLICT,
        templates::undo_page(&chrome, view, d),
    ))
}

/// `GET …/undo`: a development in its undo window, the time left and the button that takes it
/// back (the notice after publishing has the button itself; this page serves the card's link).
async fn undo_form(
    State(state): State<DeskState>,
    Signed(session): Signed,
    Path((id, dev)): Path<(String, String)>,
) -> Answer {
    let (view, d) = state.development(&session, &id, &dev).await?;
    require_undoer(&state, &session, &d)?;
    let chrome = state.chrome(&session, Here::Other);
    let held = d.undo_window && d.state == DevelopmentStanding::Embargoed;
    let status = if held {
        StatusCode::OK
    } else {
        StatusCode::CONFLICT
    };
    Ok(page(status, templates::undo_page(&chrome, &view, &d)))
}

/// `POST …/undo`: takes back a publication in its undo window, before readers see it. A filing is
/// withdrawn by its filer, and the filing form comes back filled in with it; an approval is
/// undone by an editor, and the development waits for review again.
async fn undo(
    State(state): State<DeskState>,
    Signed(session): Signed,
    Path((id, dev)): Path<(String, String)>,
    body: Bytes,
) -> Answer {
    let form = FormData::parse(&body);
    state.check_csrf(&session, &form)?;
    let (view, d) = state.development(&session, &id, &dev).await?;
    require_undoer(&state, &session, &d)?;
    if !(d.undo_window && d.state == DevelopmentStanding::Embargoed) {
        return Err(too_late(&state, &session, &view, &d));
    }
    let approval = is_approval_window(&d);
    let development = DevelopmentId::from(d.id);
    let command = if approval {
        StoryCommand::UndoApproval { development }
    } else {
        StoryCommand::WithdrawDevelopment { development }
    };
    match state
        .execute(StoryId::from(view.id), &session, command)
        .await
    {
        Ok(outcome) => {
            state.catch_up(outcome.position).await;
            Ok(see_other(&if approval {
                format!(
                    "{}?notice=undone",
                    templates::development_path(view.id, d.id, "approve")
                )
            } else {
                format!(
                    "{}/file?from={}&notice=undone",
                    story_desk_path(view.id),
                    d.id
                )
            }))
        }
        // The window passed meanwhile (it was published), or someone else took it back first.
        Err(p) if forms::is_refusal(&p) => {
            let (view, d) = state.now(&session, &id, &dev).await?;
            Err(too_late(&state, &session, &view, &d))
        }
        Err(p) => Ok(state.problem_page(&session, p, &story_desk_path(view.id))),
    }
}

// ----- withdraw ----------------------------------------------------------------------------------

/// Refuses a withdrawal of what the signed-in user did not file.
fn require_filer(state: &DeskState, session: &Session, d: &DevelopmentView) -> Result<(), Stop> {
    if is_theirs(session, d) {
        return Ok(());
    }
    Err(Stop::from(page(
        StatusCode::FORBIDDEN,
        templates::message_page(
            Some(&state.chrome(session, Here::Other)),
            "Not yours to withdraw",
            "Only the one who filed a development may withdraw it. Editors reject it instead.",
            ("/desk", "Back to the stories"),
        ),
    )))
}

/// `GET …/withdraw`: what is withdrawn, and the button that does it.
async fn withdraw_form(
    State(state): State<DeskState>,
    Signed(session): Signed,
    Path((id, dev)): Path<(String, String)>,
) -> Answer {
    let (view, d) = state.development(&session, &id, &dev).await?;
    require_filer(&state, &session, &d)?;
    check_state(
        &state,
        &session,
        &view,
        &d,
        &[DevelopmentStanding::PendingReview],
        "withdrawn",
    )?;
    let chrome = state.chrome(&session, Here::Other);
    Ok(page(
        StatusCode::OK,
        templates::withdraw_page(&chrome, &view, &d, view.position, None),
    ))
}

/// `POST …/withdraw`: takes back one's own filing while it waits for review.
async fn withdraw(
    State(state): State<DeskState>,
    Signed(session): Signed,
    Path((id, dev)): Path<(String, String)>,
    body: Bytes,
) -> Answer {
    let form = FormData::parse(&body);
    state.check_csrf(&session, &form)?;
    let (view, d) = state.development(&session, &id, &dev).await?;
    require_filer(&state, &session, &d)?;
    let seen = forms::seen(&form);
    let command = StoryCommand::WithdrawDevelopment {
        development: DevelopmentId::from(d.id),
    };
    match state
        .execute_seen(StoryId::from(view.id), &session, command, d.id, seen)
        .await
    {
        Ok(outcome) => {
            let caught_up = state.catch_up(outcome.position).await;
            Ok(see_other(&after_action(&view, &d, "withdrawn", caught_up)))
        }
        Err(p) if is_changed(&p) => {
            let (view, d) = state.now(&session, &id, &dev).await?;
            check_state(
                &state,
                &session,
                &view,
                &d,
                &[DevelopmentStanding::PendingReview],
                "withdrawn",
            )?;
            let changed = html! {
                (templates::changes_since(state.zone, &d, seen))
                p { "Below is the development as it is now: withdraw it, if you still want to." }
            };
            let chrome = state.chrome(&session, Here::Other);
            Ok(page(
                StatusCode::CONFLICT,
                templates::withdraw_page(&chrome, &view, &d, view.position, Some(&changed)),
            ))
        }
        Err(p) => Ok(state.problem_page(&session, p, &story_desk_path(view.id))),
    }
}

// ----- embargo -------------------------------------------------------------------------------------

/// Refuses the embargo page of a development under no embargo.
fn require_embargo(
    state: &DeskState,
    session: &Session,
    view: &StoryView,
    d: &DevelopmentView,
) -> Result<(), Stop> {
    if d.embargo_until.is_some() {
        return Ok(());
    }
    check_state(state, session, view, d, &[], "lifted or moved")
}

/// `GET …/embargo`: an embargoed development, with its lift and move buttons (editors).
async fn embargo_form(
    State(state): State<DeskState>,
    Signed(session): Signed,
    Path((id, dev)): Path<(String, String)>,
) -> Answer {
    state.require_editor(&session)?;
    let (view, d) = state.development(&session, &id, &dev).await?;
    require_embargo(&state, &session, &view, &d)?;
    let chrome = state.chrome(&session, Here::Other);
    Ok(page(
        StatusCode::OK,
        templates::embargo_page(&chrome, &view, &d, view.position, None),
    ))
}

/// `POST …/embargo`: `action=lift` lifts the embargo now; `action=move` moves it to `until`
/// (the desk's local time). Both are the API's commands, recorded with the editor as author.
async fn embargo(
    State(state): State<DeskState>,
    Path((id, dev)): Path<(String, String)>,
    SignedForm(session, form): SignedForm,
) -> Answer {
    state.require_editor(&session)?;
    state.check_csrf(&session, &form)?;
    let (view, d) = state.development(&session, &id, &dev).await?;
    let development = DevelopmentId::from(d.id);
    let (command, notice) = match form.get("action") {
        "lift" => (
            Ok(StoryCommand::LiftEmbargo {
                development,
                due: None,
            }),
            "embargo-lifted",
        ),
        _ => (
            forms::embargo_until(&form, state.zone)
                .map(|until| StoryCommand::MoveEmbargo { development, until }),
            "embargo-moved",
        ),
    };
    let result = match command {
        Ok(command) => {
            state
                .execute_seen(
                    StoryId::from(view.id),
                    &session,
                    command,
                    d.id,
                    forms::seen(&form),
                )
                .await
        }
        Err(p) => Err(p),
    };
    match result {
        Ok(outcome) => {
            let caught_up = state.catch_up(outcome.position).await;
            Ok(see_other(&after_action(&view, &d, notice, caught_up)))
        }
        Err(p) if p.status().is_client_error() && p.details().field.is_some() => {
            let chrome = state.chrome(&session, Here::Other);
            let error = FormError::from_problem(&p);
            Ok(page(
                p.status(),
                templates::embargo_page(&chrome, &view, &d, view.position, Some(&error)),
            ))
        }
        Err(p) => Ok(state.problem_page(&session, p, &story_desk_path(view.id))),
    }
}

// ----- the rest ------------------------------------------------------------------------------------

async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        DESK_CSS,
    )
        .into_response()
}

async fn js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        DESK_JS,
    )
        .into_response()
}

async fn not_found(State(state): State<DeskState>, headers: HeaderMap) -> Response {
    match session::lookup(&state.command.tokens, &headers).await {
        Ok(Lookup::Valid(session)) => {
            not_found_page(Some(&state.chrome(&session, Here::Other)), "page")
        }
        _ => not_found_page(None, "page"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_in_only_leads_back_into_the_desk() {
        assert_eq!(safe_next("/desk/review"), "/desk/review");
        assert_eq!(safe_next("/desk?x=1"), "/desk?x=1");
        assert_eq!(safe_next("/desk"), "/desk");
        for bad in [
            "https://evil.example/desk",
            "//evil.example",
            "/desk//evil",
            "/desktop",
            "/v1/tokens",
            "/desk/\\evil",
            "",
        ] {
            assert_eq!(safe_next(bad), "/desk", "{bad}");
        }
    }

    #[test]
    fn the_stylesheet_has_no_remote_imports() {
        assert!(!DESK_CSS.contains("@import"));
        assert!(!DESK_CSS.contains("url(http"));
    }
}
