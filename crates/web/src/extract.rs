//! Request extractors whose failures are problem details naming what was wrong.
//!
//! [`refuse_control_characters`] is the middleware that refuses a control character in any path
//! segment, query name or value (percent-decoded) before any handler sees it.

use axum::body::Bytes;
use axum::extract::{FromRef, FromRequest, FromRequestParts, Path, RawPathParams, Request};
use axum::http::{header, request::Parts, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use newsroom_domain::Role;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::auth::{Principal, Tokens};
use crate::problem::Problem;

/// A JSON request body. Malformed JSON is a 400; JSON of the wrong shape is a 422 naming the
/// offending field (`source.kind`, `actors[2]`); an oversized body is a 413.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| {
                let v = v.trim();
                v.eq_ignore_ascii_case("application/json")
                    || v.to_ascii_lowercase().ends_with("+json")
            })
            .unwrap_or(false);
        if !is_json {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
                "send the body as `Content-Type: application/json`",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            let status = rejection.status();
            if status == StatusCode::PAYLOAD_TOO_LARGE {
                Problem::new(
                    status,
                    "payload-too-large",
                    "Request body too large",
                    "the request body exceeds the size limit",
                )
            } else {
                Problem::bad_request(None, rejection.body_text())
            }
        })?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// Parses JSON, naming the path of the first offending value. Anything after the document (a
/// second document, stray bytes) makes it malformed. Every request body is an object: serde would
/// also fill a struct from an array of its field values in order, so arrays are refused here.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let value = deserialize(de)?;
    de.end()
        .map_err(|e| Problem::bad_request(None, format!("malformed JSON: {e}")))?;
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
            "Invalid body",
            "the body must be a JSON object, not an array",
        ));
    }
    Ok(value)
}

fn deserialize<'de, T: DeserializeOwned>(
    de: &mut serde_json::Deserializer<serde_json::de::SliceRead<'de>>,
) -> Result<T, Problem> {
    serde_path_to_error::deserialize(de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        // serde names a missing field only in its message; the path stops at its parent.
        let missing = inner
            .to_string()
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next())
            .map(str::to_owned);
        let field = match (path.as_str(), missing) {
            (".", Some(name)) => Some(name),
            (parent, Some(name)) => Some(format!("{parent}.{name}")),
            (".", None) => None,
            (_, None) => Some(path),
        };
        match inner.classify() {
            serde_json::error::Category::Data => {
                let detail = match &field {
                    Some(f) => format!("{f}: {inner}"),
                    None => inner.to_string(),
                };
                match field {
                    Some(f) => Problem::invalid(f, detail),
                    None => Problem::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "validation",
                        "Invalid body",
                        detail,
                    ),
                }
            }
            _ => Problem::bad_request(None, format!("malformed JSON: {inner}")),
        }
    })
}

/// Path parameters. One that cannot be decoded (invalid UTF-8 once percent-decoded, not a number
/// where one is expected) is a 400 problem, not axum's plain-text answer.
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(ApiPath(value)),
            Err(rejection) if rejection.status().is_client_error() => {
                Err(Problem::bad_request(None, rejection.body_text()))
            }
            Err(rejection) => Err(Problem::internal(rejection.body_text())),
        }
    }
}

/// Refuses a request with a control character (NUL, a line break, DEL, a C1 control) in a path
/// parameter, a path segment or a query parameter's name or value: a 400 problem naming the
/// parameter, before any extractor or handler runs. No identifier, slug, name, token, position or
/// time newsroom takes there has one, and a NUL would otherwise reach the database (PostgreSQL
/// refuses it in text: a 500) or a log line. Runs on every route of every router, so a new route
/// cannot forget it.
pub async fn refuse_control_characters(request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    if let Some(problem) = control_character_in(&mut parts).await {
        return problem.into_response();
    }
    next.run(Request::from_parts(parts, body)).await
}

async fn control_character_in(parts: &mut Parts) -> Option<Problem> {
    let refuse = |field: &str, what: &str| {
        Some(Problem::bad_request(
            Some(field),
            format!("{what} must not contain control characters"),
        ))
    };
    if let Ok(params) = RawPathParams::from_request_parts(parts, &()).await {
        for (name, value) in &params {
            if value.chars().any(char::is_control) {
                return refuse(name, &format!("the path parameter `{name}`"));
            }
        }
    }
    // Whatever the route (or none) makes of the path.
    if parts
        .uri
        .path()
        .split('/')
        .any(|segment| percent_decoded(segment).chars().any(char::is_control))
    {
        return refuse("path", "the path");
    }
    for (name, value) in url::form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes()) {
        if name.chars().any(char::is_control) {
            let shown: String = name.escape_default().collect();
            return refuse(&shown, "a query parameter's name");
        }
        if value.chars().any(char::is_control) {
            return refuse(&name, &format!("the query parameter `{name}`"));
        }
    }
    None
}

/// A path segment percent-decoded (bytes that are not UTF-8 replaced: only control characters
/// matter here).
fn percent_decoded(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The authenticated caller. Missing or unknown tokens are a 401.
#[derive(Debug, Clone)]
pub struct Auth(pub Principal);

impl Auth {
    /// Refuses callers below `role` with a 403.
    pub fn require(&self, role: Role) -> Result<&Principal, Problem> {
        if self.0.role.at_least(role) {
            Ok(&self.0)
        } else {
            Err(Problem::forbidden(format!(
                "this needs the {role} role; your token has the {} role",
                self.0.role
            )))
        }
    }
}

impl<S> FromRequestParts<S> for Auth
where
    Tokens: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let tokens = Tokens::from_ref(state);
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, token) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .ok_or_else(Problem::unauthorized)?;
        match tokens.authenticate(token).await? {
            Some(principal) => Ok(Auth(principal)),
            None => Err(Problem::unauthorized()),
        }
    }
}

/// Parses query parameters `name=value`; a repeated or unknown name is refused.
pub fn query_params(
    raw: Option<&str>,
    allowed: &[&str],
) -> Result<std::collections::HashMap<String, String>, Problem> {
    let mut out = std::collections::HashMap::new();
    for (k, v) in url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        if !allowed.contains(&k.as_ref()) {
            return Err(Problem::bad_request(
                Some(&k),
                format!("unknown query parameter `{k}`"),
            ));
        }
        if out.insert(k.to_string(), v.into_owned()).is_some() {
            return Err(Problem::bad_request(
                Some(&k),
                format!("query parameter `{k}` given twice"),
            ));
        }
    }
    Ok(out)
}

/// Parses an integer query parameter within bounds.
pub fn int_param(
    params: &std::collections::HashMap<String, String>,
    name: &str,
    default: i64,
    min: i64,
    max: i64,
) -> Result<i64, Problem> {
    match params.get(name) {
        None => Ok(default),
        Some(raw) => match raw.parse::<i64>() {
            Ok(v) if (min..=max).contains(&v) => Ok(v),
            _ => Err(Problem::bad_request(
                Some(name),
                format!("`{name}` must be an integer from {min} to {max}"),
            )),
        },
    }
}

/// An optional whole number, written `30` or `30.0`: JSON Schema's `integer` (what the
/// document promises) is any number without a fraction.
pub fn whole_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else {
        return Ok(None);
    };
    let whole = n.as_u64().or_else(|| {
        n.as_f64()
            .filter(|f| f.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(f))
            .map(|f| f as u64)
    });
    whole
        .and_then(|n| u32::try_from(n).ok())
        .map(Some)
        .ok_or_else(|| serde::de::Error::custom(format!("expected a whole number, got {n}")))
}
