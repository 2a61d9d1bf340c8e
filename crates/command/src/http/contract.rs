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
//!
//! Each router documents its own operations with utoipa beside its handlers — [`super::ApiDoc`]
//! for the command API, `ReadApiDoc` in the projection, `SubscriberApiDoc` in the notifier — and
//! the process merges what it serves before [`finish`] adds the above and the links between
//! operations.

use newsroom_domain::limits;
use serde_json::{json, Map, Value};

/// Characters Rust's `str::trim` removes (Unicode `White_Space`), as a regex class body.
const WS: &str = r"\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";
/// Control characters (`char::is_control`: Unicode `Cc`).
const CC: &str = r"\x00-\x1f\x7f-\x9f";
/// Control characters a multi-line text may not carry (it may carry tabs and line breaks).
const CC_MULTILINE: &str = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f";
/// Default-ignorable code points (UTS #39 drops them from a skeleton; an actor's name is
/// taken without them).
/// Those beyond the Basic Multilingual Plane are written as themselves (regex dialects escape
/// them differently).
const INVISIBLE: &str = concat!(
    r"\xad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e",
    r"\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufff8",
    "\u{1bca0}-\u{1bca3}\u{1d173}-\u{1d17a}\u{e0000}-\u{e0fff}",
);

/// The rule of a text field as the domain parses it (trimmed, then counted and checked).
#[derive(Debug, Clone, Copy)]
pub enum Text {
    /// One line, at least one visible character, at most `max` characters.
    Line(usize),
    /// An actor's name: a line, less invisible characters.
    Actor(usize),
    /// Line breaks and tabs allowed; `min` is 0 or 1.
    Multiline(usize, usize),
    /// A story's slug.
    Slug,
    /// A tag (trimmed and lowercased by the server).
    Tag,
    /// An http(s) URL.
    Url,
    /// An email address at a domain name.
    Email,
    /// A NATS subject of plain tokens.
    Subject,
}

/// A trimmed text of `min` (0 or 1) to `max` characters: `edge` may open and close it, `inner`
/// fill it, and whatever `pad` holds is trimmed off first.
fn trimmed(pad: &str, edge: &str, inner: &str, min: usize, max: usize) -> String {
    let core = if max >= 2 {
        format!("[{edge}](?:[{inner}]{{0,{}}}[{edge}])?", max - 2)
    } else {
        format!("[{edge}]")
    };
    let core = if min == 0 {
        format!("(?:{core})?")
    } else {
        core
    };
    format!("^[{pad}]*{core}[{pad}]*$")
}

impl Text {
    /// The JSON Schema keywords of the rule: a pattern exact to the parser (the length is counted
    /// after trimming, so it is in the pattern, not in `maxLength`).
    pub fn schema(self) -> Value {
        match self {
            Text::Line(max) => json!({
                "minLength": 1,
                "pattern": trimmed(WS, &format!("^{WS}{CC}"), &format!("^{CC}"), 1, max),
            }),
            Text::Actor(max) => json!({
                "minLength": 1,
                "pattern": trimmed(
                    &format!("{WS}{INVISIBLE}"),
                    &format!("^{WS}{CC}{INVISIBLE}"),
                    &format!("^{CC}"),
                    1,
                    max,
                ),
                "example": "Fancy Bear",
            }),
            Text::Multiline(min, max) => json!({
                "minLength": min,
                "pattern": trimmed(WS, &format!("^{WS}{CC}"), &format!("^{CC_MULTILINE}"), min, max),
            }),
            Text::Slug => json!({
                "minLength": 1, "maxLength": limits::SLUG,
                "pattern": "^[a-z0-9]+(?:-[a-z0-9]+)*$", "example": "campaign-hack-2026",
            }),
            Text::Tag => json!({
                "minLength": 1,
                "pattern": format!("^[{WS}]*[A-Za-z0-9_-]{{1,{}}}[{WS}]*$", limits::TAG),
                "example": "elections",
            }),
            // Stricter than the parser (which also takes international domain names): an ASCII
            // host name whose last label starts with a letter, or an IPv4 address.
            Text::Url => json!({
                "minLength": 1, "maxLength": limits::URL,
                "pattern": r"^[Hh][Tt][Tt][Pp][Ss]?://(?:[A-Za-z0-9-]+\.)*[A-Za-z][A-Za-z0-9-]*(?::[1-9][0-9]{0,3})?(?:[/?#][!-~]*)?$",
                "example": "https://example.com/statement",
            }),
            // Stricter than the parser: a plain local part of at most 64 characters, ASCII
            // labels of at most 31.
            Text::Email => json!({
                "minLength": 3, "maxLength": 254,
                "pattern": format!(r"^[{WS}]*[A-Za-z0-9_+-]{{1,32}}(?:\.[A-Za-z0-9_+-]{{1,15}}){{0,2}}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{{0,29}}[A-Za-z0-9])?\.){{1,4}}[A-Za-z](?:[A-Za-z0-9-]{{0,29}}[A-Za-z0-9])?[{WS}]*$"),
                "example": "reader@example.com",
            }),
            Text::Subject => json!({
                "minLength": 1, "maxLength": 200,
                "pattern": r"^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*$",
                "example": "alerts.elections",
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
        Text::Actor(limits::ACTOR),
    ),
    ("SourceRequest", "name", Text::Line(limits::SOURCE_NAME)),
    ("SourceRequest", "url", Text::Url),
    ("ChangesRequest", "headline", Text::Line(limits::HEADLINE)),
    ("ChangesRequest", "body", Text::Multiline(0, limits::BODY)),
    ("ChangesRequest", "actors", Text::Actor(limits::ACTOR)),
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
    ("SignUp", "email", Text::Email),
    ("NewSubscription", "actor", Text::Actor(limits::ACTOR)),
    ("NewSubscription", "tag", Text::Tag),
];

/// Lists' bounds: `(schema, property, maxItems)`.
const LISTS: &[(&str, &str, usize)] = &[
    ("OpenStoryRequest", "tags", limits::TAGS),
    ("ReviseStoryRequest", "tags", limits::TAGS),
    ("RecordDevelopmentRequest", "actors", limits::ACTORS),
    ("ChangesRequest", "actors", limits::ACTORS),
];

/// A link: `(operation, status, name, target operation, [(parameter, expression)])`.
type Link = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

/// What a client does next with what an answer names (OpenAPI links): `(operation, status,
/// link, target operation, [(parameter, expression)])`. Reads of the views name the write's
/// `position` as `min_position`, so that they see it.
const LINKS: &[Link] = &[
    (
        "open_story",
        "201",
        "ReviseStory",
        "revise_story",
        &[("id", "$response.body#/id")],
    ),
    (
        "open_story",
        "201",
        "RecordDevelopment",
        "record_development",
        &[("id", "$response.body#/id")],
    ),
    (
        "open_story",
        "201",
        "CloseStory",
        "close_story",
        &[("id", "$response.body#/id")],
    ),
    (
        "open_story",
        "201",
        "StoryEvents",
        "story_events",
        &[("id", "$response.body#/id")],
    ),
    (
        "open_story",
        "201",
        "ReadStory",
        "story_json",
        &[
            ("id", "$response.body#/id"),
            ("min_position", "$response.body#/position"),
        ],
    ),
    (
        "open_story",
        "201",
        "ReadClaims",
        "claims_json",
        &[
            ("id", "$response.body#/id"),
            ("min_position", "$response.body#/position"),
        ],
    ),
    (
        "record_development",
        "201",
        "Approve",
        "approve_development",
        &[("id", "$request.path.id"), ("dev", "$response.body#/id")],
    ),
    (
        "record_development",
        "201",
        "Reject",
        "reject_development",
        &[("id", "$request.path.id"), ("dev", "$response.body#/id")],
    ),
    (
        "record_development",
        "201",
        "Correct",
        "correct_development",
        &[("id", "$request.path.id"), ("dev", "$response.body#/id")],
    ),
    (
        "record_development",
        "201",
        "Retract",
        "retract_development",
        &[("id", "$request.path.id"), ("dev", "$response.body#/id")],
    ),
    (
        "record_development",
        "201",
        "ReadStory",
        "story_json",
        &[
            ("id", "$request.path.id"),
            ("min_position", "$response.body#/position"),
        ],
    ),
    (
        "close_story",
        "200",
        "Reopen",
        "reopen_story",
        &[("id", "$request.path.id")],
    ),
    (
        "open_story",
        "201",
        "Relate",
        "link_story",
        &[("id", "$response.body#/id")],
    ),
    (
        "link_story",
        "200",
        "Unlink",
        "unlink_story",
        &[
            ("id", "$request.path.id"),
            ("other", "$request.body#/story"),
        ],
    ),
    (
        "create_token",
        "201",
        "Revoke",
        "revoke_token",
        &[("id", "$response.body#/id")],
    ),
    (
        "sign_up",
        "201",
        "Show",
        "show_subscriber",
        &[("id", "$response.body#/id")],
    ),
    (
        "sign_up",
        "201",
        "AddEndpoint",
        "add_endpoint",
        &[("id", "$response.body#/id")],
    ),
    (
        "sign_up",
        "201",
        "ListEndpoints",
        "list_endpoints",
        &[("id", "$response.body#/id")],
    ),
    (
        "sign_up",
        "201",
        "Subscribe",
        "subscribe",
        &[("id", "$response.body#/id")],
    ),
    (
        "sign_up",
        "201",
        "ListSubscriptions",
        "list_subscriptions",
        &[("id", "$response.body#/id")],
    ),
    (
        "sign_up",
        "201",
        "ListDeliveries",
        "list_deliveries",
        &[("id", "$response.body#/id")],
    ),
    (
        "sign_up",
        "201",
        "ListAlerts",
        "list_alerts",
        &[("id", "$response.body#/id")],
    ),
    (
        "sign_up",
        "201",
        "Suspend",
        "suspend",
        &[("id", "$response.body#/id")],
    ),
    (
        "sign_up",
        "201",
        "Delete",
        "delete_subscriber",
        &[("id", "$response.body#/id")],
    ),
    (
        "suspend",
        "204",
        "Resume",
        "unsuspend",
        &[("id", "$request.path.id")],
    ),
    (
        "add_endpoint",
        "201",
        "Remove",
        "remove_endpoint",
        &[
            ("id", "$request.path.id"),
            ("endpoint", "$response.body#/id"),
        ],
    ),
    (
        "subscribe",
        "201",
        "Unsubscribe",
        "unsubscribe_one",
        &[
            ("id", "$request.path.id"),
            ("subscription", "$response.body#/id"),
        ],
    ),
];

/// Adds [`LINKS`] to the answers they start from, where both operations are in the document.
fn link(paths: &mut Map<String, Value>) {
    let mut operations = std::collections::HashSet::new();
    for item in paths.values() {
        for operation in item.as_object().into_iter().flat_map(|i| i.values()) {
            if let Some(id) = operation.get("operationId").and_then(Value::as_str) {
                operations.insert(id.to_owned());
            }
        }
    }
    for item in paths.values_mut() {
        for operation in item
            .as_object_mut()
            .into_iter()
            .flat_map(|i| i.values_mut())
        {
            let Some(id) = operation
                .get("operationId")
                .and_then(Value::as_str)
                .map(str::to_owned)
            else {
                continue;
            };
            for (from, status, name, to, parameters) in LINKS {
                if *from != id || !operations.contains(*to) {
                    continue;
                }
                let Some(response) = operation.pointer_mut(&format!("/responses/{status}")) else {
                    continue;
                };
                let parameters: Map<String, Value> = parameters
                    .iter()
                    .map(|(p, e)| ((*p).to_owned(), json!(e)))
                    .collect();
                response["links"][*name] = json!({"operationId": to, "parameters": parameters});
            }
        }
    }
}

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
    link(paths);
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
    // No path or query parameter may carry a control character (`refuse_control_characters`).
    if let Some(parameters) = operation
        .get_mut("parameters")
        .and_then(Value::as_array_mut)
    {
        for parameter in parameters {
            if !matches!(parameter["in"].as_str(), Some("path" | "query")) {
                continue;
            }
            if let Some(schema) = parameter.get_mut("schema").and_then(Value::as_object_mut) {
                let string = schema.get("type").is_some_and(|t| {
                    t == "string" || t.as_array().is_some_and(|a| a.contains(&json!("string")))
                });
                if string && !schema.contains_key("pattern") && !schema.contains_key("format") {
                    schema.insert("pattern".into(), json!(format!("^[^{CC}]*$")));
                }
            }
        }
    }
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
    // An endpoint's target, in each kind's variant.
    if let Some(variants) = schemas
        .get_mut("NewEndpoint")
        .and_then(|s| s.get_mut("oneOf"))
        .and_then(Value::as_array_mut)
    {
        for variant in variants {
            // Each kind takes its own field only (`deny_unknown_fields`).
            variant["additionalProperties"] = json!(false);
            for (property, rule) in [
                ("url", Text::Url),
                ("address", Text::Email),
                ("subject", Text::Subject),
            ] {
                if let (Some(Value::Object(target)), Value::Object(rule)) = (
                    variant.pointer_mut(&format!("/properties/{property}")),
                    rule.schema(),
                ) {
                    target.extend(rule);
                }
            }
        }
    }
    // A subscription has filters or is to everything, never both or neither; a digest has an
    // interval and only a digest has one.
    if let Some(subscription) = schemas
        .get_mut("NewSubscription")
        .and_then(Value::as_object_mut)
    {
        let absent = |p: &str| json!({"not": {"required": [p], "properties": {p: {"not": {"type": "null"}}}}});
        let present =
            |p: &str| json!({"required": [p], "properties": {p: {"not": {"type": "null"}}}});
        subscription.insert(
            "allOf".into(),
            json!([
                {"oneOf": [
                    {"allOf": [
                        {"required": ["everything"], "properties": {"everything": {"const": true}}},
                        absent("story"), absent("actor"), absent("kind"), absent("tag"),
                        {"properties": {"min_urgency": {"const": "routine"}}},
                    ]},
                    {"allOf": [
                        {"properties": {"everything": {"const": false}}},
                        {"anyOf": [
                            present("story"), present("actor"), present("kind"), present("tag"),
                            {"required": ["min_urgency"], "properties": {"min_urgency": {"enum": ["priority", "flash"]}}},
                        ]},
                    ]},
                ]},
                // Only a subscription to a story hears of the stories related to it.
                {"anyOf": [
                    {"properties": {"include_related": {"const": false}}},
                    present("story"),
                ]},
                {"oneOf": [
                    {"allOf": [
                        {"properties": {"delivery": {"const": "immediate"}}},
                        absent("digest_minutes"),
                    ]},
                    {"allOf": [
                        {"required": ["delivery"], "properties": {"delivery": {"const": "digest"}}},
                        present("digest_minutes"),
                    ]},
                ]},
            ]),
        );
    }
    // A revision must change something: `{}` (or only nulls) is refused. Said as a union of
    // two object schemas, one requiring each field (not as a bare `anyOf` beside `properties`,
    // which client generators cannot turn into a type).
    if let Some(revise) = schemas.remove("ReviseStoryRequest") {
        let requiring = |field: &str, kind: &str| {
            let mut one = revise.clone();
            one["required"] = json!([field]);
            if let Some(p) = one["properties"].get_mut(field) {
                p["type"] = json!(kind);
            }
            one
        };
        schemas.insert(
            "ReviseStoryHeadline".into(),
            requiring("headline", "string"),
        );
        schemas.insert("ReviseStoryTags".into(), requiring("tags", "array"));
        schemas.insert(
            "ReviseStoryRequest".into(),
            json!({
                "description": "What a revision changes: the headline, the tags, or both.",
                "anyOf": [
                    {"$ref": "#/components/schemas/ReviseStoryHeadline"},
                    {"$ref": "#/components/schemas/ReviseStoryTags"},
                ],
            }),
        );
    }
}

#[cfg(test)]
mod tests {
    //! The document's patterns against the parsers they describe: for strings built around
    //! every character of the first planes (and the invisible ones beyond), the pattern matches
    //! exactly when the domain takes the value.

    use newsroom_domain::{Actor, Body, Headline, Note, Slug, Tag};

    use super::*;

    fn pattern(rule: Text) -> regex::Regex {
        let p = rule.schema()["pattern"].as_str().unwrap().to_owned();
        // A body's counted repetition is large for this engine's default.
        regex::RegexBuilder::new(&p)
            .size_limit(1 << 30)
            .build()
            .unwrap()
    }

    /// Characters to build samples from: ASCII, Latin-1, the spaces, controls and invisibles.
    fn characters() -> impl Iterator<Item = char> {
        (0u32..0x3100)
            .chain(0xfe00..0xff00)
            .chain(0xfff0..0x10000)
            .chain(0x1bc9e..0x1bca5)
            .chain(0x1d170..0x1d17c)
            .chain(0xe0000..0xe0100)
            .filter_map(char::from_u32)
    }

    /// Strings with `c` alone, at the ends and inside text.
    fn samples(c: char) -> Vec<String> {
        vec![
            c.to_string(),
            format!("{c}a"),
            format!("a{c}"),
            format!("a{c}b"),
            format!(" {c} "),
            format!("{c}{c}"),
        ]
    }

    fn agree(rule: Text, parses: impl Fn(&str) -> bool) {
        let re = pattern(rule);
        let mut disagreements = Vec::new();
        for c in characters() {
            for s in samples(c) {
                if re.is_match(&s) != parses(&s) {
                    disagreements.push(format!("{s:?} (U+{:04X})", c as u32));
                }
            }
        }
        assert!(
            disagreements.is_empty(),
            "{rule:?}: {} disagreements, first {:?}",
            disagreements.len(),
            &disagreements[..disagreements.len().min(10)]
        );
    }

    #[test]
    fn a_line_pattern_takes_what_the_parser_takes() {
        agree(Text::Line(limits::HEADLINE), |s| {
            Headline::parse("h", s).is_ok()
        });
    }

    #[test]
    fn a_multiline_pattern_takes_what_the_parser_takes() {
        agree(Text::Multiline(1, limits::NOTE), |s| {
            Note::parse("n", s).is_ok()
        });
        agree(Text::Multiline(0, limits::BODY), |s| {
            Body::parse("b", s).is_ok()
        });
    }

    #[test]
    fn an_actor_pattern_takes_what_the_parser_takes() {
        agree(Text::Actor(limits::ACTOR), |s| Actor::parse("a", s).is_ok());
    }

    #[test]
    fn slug_and_tag_patterns_take_what_the_parsers_take() {
        let slug = pattern(Text::Slug);
        for c in characters() {
            for s in samples(c) {
                assert_eq!(slug.is_match(&s), Slug::parse("s", &s).is_ok(), "{s:?}");
            }
        }
        // Lowercasing maps a few letters outside ASCII into it (the Kelvin sign to `k`): the
        // pattern takes ASCII only, stricter than the parser there.
        let tag = pattern(Text::Tag);
        for c in characters().filter(|c| c.is_ascii() || !c.to_lowercase().any(|l| l.is_ascii())) {
            for s in samples(c) {
                assert_eq!(tag.is_match(&s), Tag::parse("t", &s).is_ok(), "{s:?}");
            }
        }
    }

    #[test]
    fn lengths_are_counted_after_trimming() {
        let line = pattern(Text::Line(limits::HEADLINE));
        let full = "x".repeat(limits::HEADLINE);
        assert!(line.is_match(&full));
        assert!(line.is_match(&format!("  {full}\n")));
        assert!(!line.is_match(&format!("{full}x")));
        let tag = pattern(Text::Tag);
        assert!(tag.is_match(&format!(" {} ", "a".repeat(limits::TAG))));
        assert!(!tag.is_match(&"a".repeat(limits::TAG + 1)));
    }
}
