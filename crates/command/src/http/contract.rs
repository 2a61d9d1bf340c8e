//! The OpenAPI document as served: the parts each router documents (`#[utoipa::path]` beside
//! its handlers), merged, then finished here with what holds for every operation alike, so that
//! no handler can forget it:
//!
//! - every error is `application/problem+json` (RFC 9457), never `application/json`;
//! - every operation can answer 400 (an unknown or repeated query parameter, a malformed path
//!   parameter, a control character anywhere in the path or query) and 503 (a database away,
//!   with `Retry-After`), except the two that read no database;
//! - every authenticated operation can answer 401 with `WWW-Authenticate: Bearer`;
//! - every operation with a body can answer 413, 415 and 422; every write 429 (rate limits);
//! - the text fields of request bodies carry the domain's rules (length, alphabet, no control
//!   characters) as `minLength`/`maxLength`/`pattern`, from the same constants the parsers use.

use newsroom_domain::limits;
use serde_json::{json, Map, Value};

/// Characters Rust's `str::trim` removes (Unicode `White_Space`), as a regex class body.
const WS: &str = r"\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";
/// Control characters (`char::is_control`: Unicode `Cc`).
const CC: &str = r"\x00-\x1f\x7f-\x9f";
/// Control characters a multi-line text may not carry (it may carry tabs and line breaks).
const CC_MULTILINE: &str = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f";

/// The rule of a text field as the domain parses it (trimmed, then counted and checked).
#[derive(Debug, Clone, Copy)]
pub enum Text {
    /// One line, at least one visible character, at most `max` characters.
    Line(usize),
    /// Line breaks and tabs allowed; `min` is 0 or 1.
    Multiline(usize, usize),
    /// A story's slug.
    Slug,
    /// A tag (trimmed and lowercased by the server).
    Tag,
    /// An http(s) URL.
    Url,
}

impl Text {
    /// The JSON Schema keywords of the rule.
    pub fn schema(self) -> Value {
        match self {
            Text::Line(max) => json!({
                "minLength": 1, "maxLength": max,
                "pattern": format!("^[{WS}]*[^{CC}]*[^{WS}{CC}][^{CC}]*[{WS}]*$"),
            }),
            Text::Multiline(min, max) => {
                let body = format!("[^{CC_MULTILINE}]*[^{WS}{CC}][^{CC_MULTILINE}]*");
                let pattern = if min == 0 {
                    format!("^[{WS}]*(?:{body})?[{WS}]*$")
                } else {
                    format!("^[{WS}]*{body}[{WS}]*$")
                };
                json!({"minLength": min, "maxLength": max, "pattern": pattern})
            }
            Text::Slug => json!({
                "minLength": 1, "maxLength": limits::SLUG,
                "pattern": "^[a-z0-9]+(?:-[a-z0-9]+)*$", "example": "campaign-hack-2026",
            }),
            Text::Tag => json!({
                "minLength": 1, "maxLength": limits::TAG,
                "pattern": format!("^[{WS}]*[A-Za-z0-9_-]+[{WS}]*$"), "example": "elections",
            }),
            Text::Url => json!({
                "minLength": 1, "maxLength": limits::URL,
                "pattern": "^[Hh][Tt][Tt][Pp][Ss]?://[^/?#\\s]+", "example": "https://example.com/statement",
            }),
        }
    }
}

/// The text rules of the request bodies' fields: `(schema, property, rule)`; a list's rule is
/// that of its items.
pub const TEXT_FIELDS: &[(&str, &str, Text)] = &[
    ("OpenStoryRequest", "slug", Text::Slug),
    ("OpenStoryRequest", "headline", Text::Line(limits::HEADLINE)),
    (
        "OpenStoryRequest",
        "summary",
        Text::Multiline(0, limits::SUMMARY),
    ),
    ("OpenStoryRequest", "tags", Text::Tag),
    (
        "ReviseStoryRequest",
        "headline",
        Text::Line(limits::HEADLINE),
    ),
    ("ReviseStoryRequest", "tags", Text::Tag),
    (
        "RecordDevelopmentRequest",
        "headline",
        Text::Line(limits::HEADLINE),
    ),
    (
        "RecordDevelopmentRequest",
        "body",
        Text::Multiline(0, limits::BODY),
    ),
    (
        "RecordDevelopmentRequest",
        "actors",
        Text::Line(limits::ACTOR),
    ),
    ("SourceRequest", "name", Text::Line(limits::SOURCE_NAME)),
    ("SourceRequest", "url", Text::Url),
    ("ChangesRequest", "headline", Text::Line(limits::HEADLINE)),
    ("ChangesRequest", "body", Text::Multiline(0, limits::BODY)),
    ("ChangesRequest", "actors", Text::Line(limits::ACTOR)),
    ("ReasonRequest", "reason", Text::Multiline(1, limits::NOTE)),
    (
        "CorrectionRequest",
        "note",
        Text::Multiline(1, limits::NOTE),
    ),
    (
        "CreateTokenRequest",
        "name",
        Text::Line(limits::SOURCE_NAME),
    ),
    // The subscriber API (crates/notifier).
    ("SignUp", "name", Text::Line(limits::SOURCE_NAME)),
    ("NewSubscription", "actor", Text::Line(limits::ACTOR)),
    ("NewSubscription", "tag", Text::Tag),
];

/// Lists' bounds: `(schema, property, maxItems)`.
const LISTS: &[(&str, &str, usize)] = &[
    ("OpenStoryRequest", "tags", limits::TAGS),
    ("ReviseStoryRequest", "tags", limits::TAGS),
    ("RecordDevelopmentRequest", "actors", limits::ACTORS),
    ("ChangesRequest", "actors", limits::ACTORS),
];

fn problem_ref() -> Value {
    json!({"$ref": "#/components/schemas/Problem"})
}

fn problem(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/problem+json": {"schema": problem_ref()}},
    })
}

fn retry_after() -> Value {
    json!({"Retry-After": {
        "description": "seconds to wait before trying again",
        "schema": {"type": "integer", "minimum": 0},
    }})
}

/// Adds `status` to `responses` unless the operation documents it already.
fn add(responses: &mut Map<String, Value>, status: &str, response: Value) {
    responses.entry(status.to_owned()).or_insert(response);
}

/// Finishes a merged document: see the module's documentation.
pub fn finish(document: utoipa::openapi::OpenApi) -> Value {
    let mut doc = serde_json::to_value(document).expect("an OpenAPI document serialises");
    if let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        constrain(schemas);
    }
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return doc;
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, operation) in item.iter_mut() {
            if !matches!(method.as_str(), "get" | "post" | "put" | "patch" | "delete") {
                continue;
            }
            finish_operation(path, method, operation);
        }
    }
    doc
}

fn finish_operation(path: &str, method: &str, operation: &mut Value) {
    let authenticated = operation
        .get("security")
        .and_then(Value::as_array)
        .is_some_and(|s| {
            s.iter()
                .any(|r| r.as_object().is_some_and(|r| !r.is_empty()))
        });
    let has_body = operation.get("requestBody").is_some();
    let responses = operation
        .as_object_mut()
        .expect("an operation is an object")
        .entry("responses")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .expect("responses are an object");
    // Errors are problem details, whatever the annotation wrote.
    for (status, response) in responses.iter_mut() {
        if !status.starts_with('4') && !status.starts_with('5') {
            continue;
        }
        if let Some(content) = response.get_mut("content").and_then(Value::as_object_mut) {
            let is_problem = content
                .get("application/json")
                .and_then(|c| c.pointer("/schema/$ref"))
                .and_then(Value::as_str)
                .is_some_and(|r| r.ends_with("/Problem"));
            if is_problem {
                let json = content.remove("application/json").expect("looked at");
                content.insert("application/problem+json".into(), json);
            }
        }
    }
    add(
        responses,
        "400",
        problem(
            "A malformed request: an unknown or repeated query parameter, a parameter out of its \
             bounds, a path parameter of the wrong form or a control character in the path or query",
        ),
    );
    if authenticated {
        let mut unauthorized = problem("No token, or a token that is unknown or revoked");
        unauthorized["headers"] = json!({"WWW-Authenticate": {
            "description": "how to authenticate (RFC 6750)",
            "schema": {"type": "string", "example": "Bearer realm=\"newsroom\""},
        }});
        responses.insert("401".into(), unauthorized);
    }
    if has_body {
        add(
            responses,
            "413",
            problem("The body is larger than the server takes (64 KiB)"),
        );
        add(
            responses,
            "415",
            problem("The body is not `application/json`"),
        );
        add(
            responses,
            "422",
            problem(
                "The body is JSON of the wrong shape, or a field breaks a rule (named in `field`)",
            ),
        );
    }
    if method != "get" {
        let mut limited = problem("Too many writes from this token or address; see `Retry-After`");
        limited["headers"] = retry_after();
        add(responses, "429", limited);
    }
    if !matches!(path, "/metrics" | "/openapi.json") {
        let mut unavailable =
            problem("A database is away or restarting; try again after `Retry-After` seconds");
        unavailable["headers"] = retry_after();
        add(responses, "503", unavailable);
    }
}

/// Puts the domain's text rules on the request schemas' properties.
fn constrain(schemas: &mut Map<String, Value>) {
    for (schema, property, rule) in TEXT_FIELDS {
        // A process serves only some of the APIs (a scale-out role): what it does not serve is
        // not in its document.
        let Some(target) = schemas
            .get_mut(*schema)
            .and_then(|s| s.pointer_mut(&format!("/properties/{property}")))
        else {
            continue;
        };
        let target = if target.get("items").is_some() {
            target.get_mut("items").expect("items")
        } else {
            target
        };
        if let (Some(target), Value::Object(rule)) = (target.as_object_mut(), rule.schema()) {
            target.extend(rule);
        }
    }
    for (schema, property, max) in LISTS {
        if let Some(target) = schemas
            .get_mut(*schema)
            .and_then(|s| s.pointer_mut(&format!("/properties/{property}")))
            .and_then(Value::as_object_mut)
        {
            target.insert("maxItems".into(), json!(max));
        }
    }
    // A revision must change something: `{}` (or only nulls) is refused.
    if let Some(revise) = schemas
        .get_mut("ReviseStoryRequest")
        .and_then(Value::as_object_mut)
    {
        revise.insert(
            "anyOf".into(),
            json!([
                {"required": ["headline"], "properties": {"headline": {"type": "string"}}},
                {"required": ["tags"], "properties": {"tags": {"type": "array"}}},
            ]),
        );
    }
}
