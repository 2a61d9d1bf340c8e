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
//!
//! This module holds the router, the state the handlers reach ([`DeskState`]), the extractors of
//! the signed-in user and their forms, and the pieces every handler shares; the handlers sit by
//! area in modules of their own: `sign_in`, `stories`, `relations`, `filing` (with withdrawing),
//! `review` (approving and rejecting), `search`, `live` (what `desk.js` asks in the
//! background), `corrections` (correcting, editing and retracting), `undo` and `embargo`.
//!
//! **Architecture invariant:** the desk never writes to a database itself; it only calls the
//! command service (and `Tokens` for its own sessions and drafts).
//!
//! Nothing is published by accident: a form that publishes (filing, approving, correcting a
//! published development) is carried out only by its preview page's own button (`confirm=<action>`,
//! `forms::Step`). The form itself — and Enter in one of its fields, which sends it with its first
//! button — only asks for the preview: the events `CommandService::preview` decides, folded into
//! the story by the readers' own `StoryView::apply`, shown as readers will see them, with who is
//! alerted; the preview carries what was typed, hidden, to "Publish" and to "Change it". An edit of
//! a development still under review publishes nothing and is saved at once (an `EditFiling`: no
//! correction note needed, none recorded unless typed); the editor goes on to its approval page.
//!
//! Undo: with an undo window (`NEWSROOM_DESK_UNDO_SECS`, 30 s by default; `DeskState::undo`) the
//! preview's button files or approves with that `hold`: the story's desk page then says "Publishing
//! in 27 s — Undo" (`templates::undo_notice`: a plain form posting to `…/undo`, which `desk.js`
//! counts down and takes away once the window has passed; the card of a held development links to
//! the same page). Undo withdraws a filing (its filer) and opens the filing form filled in from it
//! under a new id, or undoes an approval (`UndoApproval`, editors) and returns to its approval
//! page; once the window has passed, `…/undo` says what came of it (409).
//!
//! Retry on a bad connection: the preview's form (`data-retry`) is sent by `desk.js` with fetch,
//! the same body a plain POST carries; on a network failure or a 502/503/504 the page says "Not
//! sent yet — trying again in N s" (a status region, and "Try now"), and sends it again with
//! growing delays (1 s doubling to 30 s; at once when the browser is back online) until the desk
//! answers. The development's id in the form makes every attempt the same filing: the command side
//! answers a repeat from the first (`replay_of`), and the desk sends a repeat to the `held` notice,
//! which says what came of the first, undo window included.
//!
//! Relations: a story's desk page lists its related stories, and editors relate it to another story
//! (by slug or id, with a relation) and unlink one there (`/desk/stories/{id}/relations`,
//! `…/relations/{other}/unlink`: the API's commands, `CommandService::unlink`).
//!
//! The reporter's loop: the desk home counts and lists the signed-in user's rejected filings (the
//! newest 20, each with who rejected it, when and why;
//! `newsroom_projection::desk::rejected_filings`, a read of the views' developments by state and
//! filer, which no index serves yet), each with "Revise and refile" (the filing form filled in from
//! it, `forms::refile_defaults`, under a new id, with the reason above it). A reporter's own
//! pending filings offer "Edit" (`EditFiling`) and "Withdraw" (`…/withdraw`); a withdrawn filing is
//! listed with the rejected ones, as withdrawn. The filing form takes an optional "Embargoed until"
//! (the desk's local time); an embargoed development is marked with its moment, and editors lift it
//! now or move it from `…/embargo` (the API's commands, with `seen`); `desk.js` counts down to the
//! moment; a development's history lists its embargo's steps (`DevelopmentView::embargo_steps`).
//!
//! Two editors cannot overwrite each other: every form on a development (approve, edit or correct,
//! retract) carries `seen`, the position of the story's view it was made from, and is carried out
//! with `CommandService::execute_seen`. The correction form also keeps, hidden, what each control
//! showed (`was.*`); refused as changed, it comes back over the development as it now is, with what
//! changed since and the editor's own changes on top (`forms::rebase_correction`: only the controls
//! they changed keep their value). So an edit begun while an item was pending can never be saved as
//! a reader-facing correction after someone approved it.
//!
//! Drafts: the filing form is saved as it is typed in the browser's `localStorage` by `desk.js`
//! (per story and user), put back when the form is opened afresh, and removed once the page
//! confirming that filing is shown; and on the server for its author a second after the typing
//! stops (posted with the CSRF value to `…/draft`; `Tokens::save_draft`): opening the form afresh —
//! after a lapsed session, or on another device — brings it back with a notice, and filing it drops
//! it.
//!
//! Search: `/desk/search` is the reader side's search with pending work included
//! (`search::Audience::Staff`) and a `status` filter, leading to each story's desk page. Editor
//! pages refuse reporters with a 403 page. A new story's "Review required" starts ticked.

mod corrections;
mod embargo;
mod filing;
pub(crate) mod forms;
mod live;
mod notices;
mod parked;
mod presence;
mod queries;
mod relations;
mod review;
mod search;
pub(crate) mod session;
mod sign_in;
mod stories;
mod templates;
mod undo;
mod zone;

use std::collections::BTreeMap;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::Utc;
use maud::Markup;
use newsroom_command::http::AppState;
use newsroom_command::{Outcome, Seen};
use newsroom_domain::{Actor, DevelopmentId, Hold, Role, StoryCommand, StoryEvent, StoryId};
use newsroom_notifier::NotifierStore;
use newsroom_projection::desk as desk_views;
use newsroom_projection::ViewStore;
use newsroom_readmodel::{DevelopmentStanding, DevelopmentView, LoggedEvent, StoryView};
use newsroom_web::problem::{InternalError, Problem};
use newsroom_web::Principal;
use serde::Deserialize;
use tokio::sync::watch;
use tower_http::set_header::SetResponseHeaderLayer;
use uuid::Uuid;

use forms::FormData;
use parked::{Parked, ParkedForms};
use presence::Presence;
use session::{Lookup, Session};
use templates::{story_desk_path, Chrome, Here};
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
        .route("/desk", get(stories::home))
        .route("/desk/", get(|| async { see_other("/desk") }))
        .route(
            "/desk/sign-in",
            get(sign_in::sign_in_form).post(sign_in::sign_in),
        )
        .route("/desk/sign-out", post(sign_in::sign_out))
        .route(
            "/desk/password",
            get(sign_in::password_form).post(sign_in::set_password),
        )
        .route("/desk/notices", get(live::notices_since))
        .route("/desk/review", get(review::review))
        .route("/desk/search", get(search::search))
        .route("/desk/parked/{key}", get(sign_in::parked_form))
        .route("/desk/stories", post(stories::open_story))
        .route("/desk/stories/{id}", get(stories::story))
        .route("/desk/stories/{id}/file", get(filing::file_form))
        .route("/desk/stories/{id}/developments", post(filing::file))
        .route("/desk/stories/{id}/draft", post(filing::save_draft))
        .route("/desk/stories/{id}/close", post(stories::close_story))
        .route("/desk/stories/{id}/reopen", post(stories::reopen_story))
        .route("/desk/stories/{id}/relations", post(relations::relate))
        .route(
            "/desk/stories/{id}/relations/{other}/unlink",
            post(relations::unrelate),
        )
        .route(
            "/desk/stories/{id}/developments/{dev}/approve",
            get(review::approve_form).post(review::approve),
        )
        .route(
            "/desk/stories/{id}/developments/{dev}/reject",
            post(review::reject),
        )
        .route(
            "/desk/stories/{id}/developments/{dev}/presence",
            post(live::presence_mark),
        )
        .route(
            "/desk/stories/{id}/developments/{dev}/correct",
            get(corrections::correct_form).post(corrections::correct),
        )
        .route(
            "/desk/stories/{id}/developments/{dev}/retract",
            get(corrections::retract_form).post(corrections::retract),
        )
        .route(
            "/desk/stories/{id}/developments/{dev}/withdraw",
            get(filing::withdraw_form).post(filing::withdraw),
        )
        .route(
            "/desk/stories/{id}/developments/{dev}/embargo",
            get(embargo::embargo_form).post(embargo::embargo),
        )
        .route(
            "/desk/stories/{id}/developments/{dev}/undo",
            get(undo::undo_form).post(undo::undo),
        )
        .route("/desk/static/desk.css", get(css))
        .route("/desk/static/desk.js", get(js))
        .route("/desk/{*rest}", get(not_found))
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

    /// The story a posted form names, once the form's CSRF value is the session's.
    async fn posted_story(
        &self,
        session: &Session,
        form: &FormData,
        id: &str,
    ) -> Result<StoryView, Stop> {
        self.check_csrf(session, form)?;
        self.story(session, id).await
    }

    /// The story and the development a posted form names, once the form's CSRF value is the
    /// session's.
    async fn posted_development(
        &self,
        session: &Session,
        form: &FormData,
        id: &str,
        development: &str,
    ) -> Result<(StoryView, DevelopmentView), Stop> {
        self.check_csrf(session, form)?;
        self.development(session, id, development).await
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
        let known = desk_views::known_actors(&self.views)
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

/// What a development must be to be approved or withdrawn: waiting for review.
const PENDING: &[DevelopmentStanding] = &[DevelopmentStanding::PendingReview];

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

/// Where an action on a development sends the editor afterwards.
fn after_action(view: &StoryView, d: &DevelopmentView, notice: &str, caught_up: bool) -> String {
    format!(
        "{}?notice={notice}&development={id}{}",
        story_desk_path(view.id),
        lag(caught_up),
        id = d.id
    )
}

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
    fn the_stylesheet_has_no_remote_imports() {
        assert!(!DESK_CSS.contains("@import"));
        assert!(!DESK_CSS.contains("url(http"));
    }
}
