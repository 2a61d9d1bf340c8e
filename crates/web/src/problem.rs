//! RFC 9457 problem details: the one shape every error of the API takes, and the one place
//! errors of the lower layers become HTTP statuses.
//!
//! A store that is busy or unreachable (`StoreError::is_unavailable`) is a 503 with `Retry-After`,
//! never a 500; a commit whose answer was lost (`StoreError::InDoubt`) a 503 `outcome-unknown`,
//! which tells the client the command may have been recorded. The cause of a 5xx travels in the
//! response's extensions ([`InternalError`]) for the router's middleware to log, and is never sent
//! to the client.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use newsroom_domain::{FieldError, StoryError};
use serde::Serialize;

use newsroom_log::feed::StoreError;

/// An error answer: `application/problem+json`. Boxed, so that `Result<_, Problem>` stays small.
#[derive(Debug, Clone)]
pub struct Problem(Box<ProblemDetails>);

/// The body of a problem answer (RFC 9457).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = Problem)]
pub struct ProblemDetails {
    /// A URN naming the kind of problem, e.g. `urn:newsroom:problem:validation`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// The request field the problem concerns, in dotted form (`source.name`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(skip)]
    retry_after: Option<u64>,
    /// Kept for the error-logging middleware; never sent.
    #[serde(skip)]
    internal: Option<String>,
}

/// The problem type of a request without a valid bearer token.
const UNAUTHORIZED_KIND: &str = "urn:newsroom:problem:unauthorized";

/// The cause of a 5xx, handed to the logging middleware as a response extension.
#[derive(Debug, Clone)]
pub struct InternalError(pub String);

impl Problem {
    pub fn new(status: StatusCode, name: &str, title: &str, detail: impl Into<String>) -> Self {
        Self(Box::new(ProblemDetails {
            kind: format!("urn:newsroom:problem:{name}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            field: None,
            retry_after: None,
            internal: None,
        }))
    }

    pub fn details(&self) -> &ProblemDetails {
        &self.0
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.0.field = Some(field.into());
        self
    }

    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.0.retry_after = Some(seconds);
        self
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    pub fn invalid(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
            "Invalid field",
            detail,
        )
        .with_field(field)
    }

    pub fn bad_request(field: Option<&str>, detail: impl Into<String>) -> Self {
        let p = Self::new(
            StatusCode::BAD_REQUEST,
            "bad-request",
            "Bad request",
            detail,
        );
        match field {
            Some(f) => p.with_field(f),
            None => p,
        }
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", "Not found", detail)
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", "Conflict", detail)
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Authentication required",
            "send a valid token as `Authorization: Bearer <token>`",
        )
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden", detail)
    }

    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Service unavailable",
            detail,
        )
        .retry_after(1)
    }

    pub fn internal(cause: impl std::fmt::Display) -> Self {
        let mut p = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            "the server failed to carry out the request; nothing was recorded",
        );
        p.0.internal = Some(cause.to_string());
        p
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status();
        let retry_after = self.0.retry_after;
        let internal = self.0.internal.clone();
        // A request without a valid bearer token is told how to authenticate (RFC 9110
        // §11.6.1, RFC 6750 §3).
        let challenge = status == StatusCode::UNAUTHORIZED && self.0.kind == UNAUTHORIZED_KIND;
        let mut response = (status, axum::Json(*self.0)).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(seconds) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if challenge {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Bearer realm="newsroom""#),
            );
        }
        if let Some(cause) = internal {
            response.extensions_mut().insert(InternalError(cause));
        }
        response
    }
}

impl From<FieldError> for Problem {
    fn from(e: FieldError) -> Self {
        Problem::invalid(e.field.clone(), e.to_string())
    }
}

impl From<StoryError> for Problem {
    fn from(e: StoryError) -> Self {
        let detail = e.to_string();
        match e {
            StoryError::Invalid(f) => f.into(),
            StoryError::StoryNotFound | StoryError::DevelopmentNotFound(_) => {
                Problem::not_found(detail)
            }
            StoryError::DevelopmentIdReused(_) => Problem::conflict(detail).with_field("id"),
            StoryError::StoryAlreadyOpened
            | StoryError::StoryClosed
            | StoryError::StoryStatusUnchanged(_)
            | StoryError::DevelopmentState { .. } => Problem::conflict(detail),
            StoryError::Forbidden { .. } | StoryError::NotTheirs { .. } => {
                Problem::forbidden(detail)
            }
            StoryError::AlreadyRelated { .. } => Problem::conflict(detail).with_field("story"),
            StoryError::NotRelated(_) => Problem::not_found(detail).with_field("other"),
        }
    }
}

impl From<StoreError> for Problem {
    fn from(e: StoreError) -> Self {
        if let StoreError::InDoubt(_) = e {
            // Not "nothing was recorded": the client must find out, or repeat the command.
            Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "outcome-unknown",
                "Outcome unknown",
                "the event store went away while this command was being committed: it may have \
                 been recorded or not. Read the story, or send the same command again (a \
                 development sent again with the same id is answered with the original)",
            )
            .retry_after(1)
        } else if e.is_unavailable() {
            Problem::unavailable("the event store is busy or unavailable; try again")
        } else {
            Problem::internal(e)
        }
    }
}
