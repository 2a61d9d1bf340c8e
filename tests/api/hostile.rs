//! Hostile input: hundreds of malformed requests, generated field by field and endpoint by
//! endpoint — wrong JSON types, huge strings, control characters, bad ids and times, unknown and
//! repeated fields, deep nesting, invalid UTF-8, bad content types, oversized bodies, bad header
//! values, bad path and query parameters. Each must be refused with a 4xx problem+json, the
//! server must stay healthy, and nothing may be written: the exported log, its head, the tokens
//! and the subscriber's rows are the same afterwards.

use newsroom_testkit::prelude::*;
use reqwest::Method;
use serde_json::{json, Value};
use uuid::Uuid;

/// One malformed request and what it must get.
struct Case {
    what: String,
    method: Method,
    path: String,
    token: Option<String>,
    /// `None`: no `Content-Type` header.
    content_type: Option<Vec<u8>>,
    body: Option<Vec<u8>>,
    headers: Vec<(&'static str, Vec<u8>)>,
    /// A particular 4xx, or any.
    status: Option<u16>,
}

impl Case {
    fn json(what: String, endpoint: &Endpoint, body: Vec<u8>, status: Option<u16>) -> Self {
        Case {
            what,
            method: endpoint.method.clone(),
            path: endpoint.path.clone(),
            token: endpoint.token.clone(),
            content_type: Some(b"application/json".to_vec()),
            body: Some(body),
            headers: Vec::new(),
            status,
        }
    }

    fn get(what: &str, path: String, token: Option<&str>) -> Self {
        Case {
            what: what.to_owned(),
            method: Method::GET,
            path,
            token: token.map(str::to_owned),
            content_type: None,
            body: None,
            headers: Vec::new(),
            status: None,
        }
    }
}

/// What a field holds, for choosing values it must refuse.
#[derive(Debug, Clone, Copy)]
enum Ty {
    /// A single-line text of at most this many characters, not blank.
    Line(usize),
    /// A text of at most this many characters that may hold line breaks.
    Text(usize),
    Slug,
    Uuid,
    Time,
    /// One of a set of names.
    Choice,
    Bool,
    /// A list of at most `.1` lines of at most `.0` characters each.
    Lines(usize, usize),
    Object,
    /// A whole number of minutes, 5 to 1440.
    Minutes,
    Email,
    /// A link shown to readers: http(s) only.
    Link,
    /// A webhook: http(s) to a public address only.
    Webhook,
    Subject,
}

struct Field {
    /// JSON pointer into the body.
    at: &'static str,
    ty: Ty,
    /// `null` is a valid value (the field is optional).
    nullable: bool,
}

const fn field(at: &'static str, ty: Ty) -> Field {
    Field {
        at,
        ty,
        nullable: false,
    }
}

const fn optional(at: &'static str, ty: Ty) -> Field {
    Field {
        at,
        ty,
        nullable: true,
    }
}

/// A write endpoint: a valid body, and the fields to spoil one at a time.
struct Endpoint {
    name: &'static str,
    method: Method,
    path: String,
    token: Option<String>,
    valid: Value,
    fields: Vec<Field>,
}

/// Values of the wrong JSON type for `ty`.
fn wrong_types(ty: Ty, nullable: bool) -> Vec<Value> {
    let all = [
        json!(null),
        json!(true),
        json!(0),
        json!(-1),
        json!(3.5),
        json!(18_446_744_073_709_551_615u64),
        json!("text"),
        json!([]),
        json!([1]),
        json!([null]),
        json!({"x": 1}),
    ];
    all.into_iter()
        .filter(|v| !(v.is_null() && nullable))
        .filter(|v| match ty {
            Ty::Line(_)
            | Ty::Text(_)
            | Ty::Slug
            | Ty::Email
            | Ty::Link
            | Ty::Webhook
            | Ty::Subject
            | Ty::Uuid
            | Ty::Time
            | Ty::Choice => !v.is_string(),
            Ty::Bool => !v.is_boolean(),
            Ty::Lines(..) => !(v.is_array() && v.as_array().unwrap().is_empty()),
            Ty::Object => true,
            Ty::Minutes => !matches!(v.as_i64(), Some(n) if (5..=1440).contains(&n)),
        })
        .collect()
}

const CONTROL: [&str; 5] = ["a\u{0}b", "a\u{1b}[2Jb", "\u{7}", "a\u{7f}b", "a\u{85}b"];

/// Values of the right JSON type that `ty` must refuse.
fn bad_values(ty: Ty) -> Vec<Value> {
    let over = |n: usize| json!("x".repeat(n + 1));
    let mut values: Vec<Value> = match ty {
        Ty::Line(max) => vec![over(max), json!(""), json!("   "), json!("two\nlines")],
        Ty::Text(max) => vec![over(max)],
        Ty::Slug => vec![
            json!("Not A Slug"),
            json!("../etc/passwd"),
            json!("a/b"),
            json!("ünïcode"),
            json!(""),
            over(80),
        ],
        Ty::Uuid => vec![
            json!("not-a-uuid"),
            json!(""),
            json!("00000000-0000-0000-0000-00000000000g"),
            json!("123"),
            json!(format!("{}x", Uuid::new_v4())),
        ],
        Ty::Time => vec![
            json!("yesterday"),
            json!("2026-13-01T00:00:00Z"),
            json!("2026-10-01"),
            json!("2026-10-01T25:00:00Z"),
            json!("9999-12-31T23:59:59Z"),
            json!(""),
        ],
        Ty::Choice => vec![json!("UPDATE"), json!("no_such_choice"), json!("")],
        Ty::Bool => vec![],
        Ty::Lines(max, items) => vec![
            json!(["x".repeat(max + 1)]),
            json!([""]),
            json!(["a\u{0}b"]),
            json!((0..=items).map(|i| format!("item-{i}")).collect::<Vec<_>>()),
        ],
        Ty::Object => vec![json!({"no_such_field": true})],
        Ty::Minutes => vec![json!(0), json!(4), json!(1441), json!(4_294_967_296u64)],
        Ty::Email => vec![
            json!("not-an-email"),
            json!("a@"),
            json!("@b.org"),
            json!("root@[10.0.0.5]"),
            json!("root@[IPv6:::1]"),
            over(300),
        ],
        Ty::Link => vec![
            json!("javascript:alert(1)"),
            json!("data:text/html,<script>alert(1)</script>"),
            json!("file:///etc/passwd"),
            json!("ftp://example.org/file"),
            json!("https://"),
            json!("not a url"),
            json!(format!("https://example.org/{}", "x".repeat(2_000))),
        ],
        Ty::Webhook => vec![
            json!("javascript:alert(1)"),
            json!("file:///etc/passwd"),
            json!("http://169.254.169.254/latest/meta-data/"),
            json!("http://10.0.0.1/hook"),
            json!("http://[::1]/hook"),
            json!("ftp://192.0.2.10/hook"),
            json!("not a url"),
            over(2000),
        ],
        Ty::Subject => vec![
            json!("alerts.*"),
            json!("alerts.>"),
            json!("a..b"),
            json!("a b"),
        ],
    };
    if matches!(ty, Ty::Line(_) | Ty::Text(_) | Ty::Slug | Ty::Email) {
        values.extend(CONTROL.iter().map(|c| json!(c)));
    }
    if matches!(ty, Ty::Text(_)) {
        // Line breaks are fine in a long text; a NUL is not.
        values.push(json!("line one\n\u{0}line two"));
    }
    values
}

/// Sets the value at a JSON pointer, making the objects on the way.
fn set(body: &mut Value, pointer: &str, value: Value) {
    let mut at = body;
    let parts: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
    for (i, part) in parts.iter().enumerate() {
        if !at.is_object() {
            *at = json!({});
        }
        let map = at.as_object_mut().unwrap();
        if i == parts.len() - 1 {
            map.insert((*part).to_owned(), value);
            return;
        }
        at = map.entry(*part).or_insert_with(|| json!({}));
    }
}

fn bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

/// Every malformed variant of an endpoint's body.
fn body_cases(e: &Endpoint) -> Vec<Case> {
    let mut cases = Vec::new();
    for f in &e.fields {
        let values = wrong_types(f.ty, f.nullable)
            .into_iter()
            .chain(bad_values(f.ty));
        for v in values {
            let mut body = e.valid.clone();
            set(&mut body, f.at, v.clone());
            let shown: String = v.to_string().chars().take(40).collect();
            cases.push(Case::json(
                format!("{}: {} = {shown}", e.name, f.at),
                e,
                bytes(&body),
                None,
            ));
        }
        // An unknown field beside this one in a nested object (the top level is below).
        let parent = f.at.rsplit_once('/').map_or("", |(p, _)| p);
        if parent.is_empty() {
            continue;
        }
        let mut body = e.valid.clone();
        set(&mut body, &format!("{parent}/is_admin"), json!(true));
        cases.push(Case::json(
            format!("{}: unknown field beside {}", e.name, f.at),
            e,
            bytes(&body),
            None,
        ));
    }
    let valid = bytes(&e.valid);
    let text = String::from_utf8(valid.clone()).unwrap();
    let first_key = e.valid.as_object().unwrap().keys().next().cloned();
    let mut unknown = e.valid.clone();
    unknown["is_admin"] = json!(true);
    let mut raw: Vec<(&str, Vec<u8>)> = vec![
        ("an unknown field", bytes(&unknown)),
        ("an unknown field that is null", {
            let mut v = e.valid.clone();
            v["role"] = json!(null);
            if e.name == "create a token" {
                v["__proto__"] = json!({"role": "admin"});
            }
            bytes(&v)
        }),
        ("a top-level array", bytes(&json!([e.valid.clone()]))),
        (
            "the fields' values as an array",
            bytes(&Value::Array(
                e.valid.as_object().unwrap().values().cloned().collect(),
            )),
        ),
        ("empty body", Vec::new()),
        ("truncated", valid[..valid.len() / 2].to_vec()),
        ("not JSON", b"slug=x&headline=y".to_vec()),
        ("single quotes", b"{'name': 'x'}".to_vec()),
        (
            "trailing comma",
            format!("{},}}", &text[..text.len() - 1]).into_bytes(),
        ),
        ("two documents", format!("{text}{text}").into_bytes()),
        ("trailing bytes", format!("{text} x").into_bytes()),
        ("null", b"null".to_vec()),
        ("a string", b"\"text\"".to_vec()),
        ("a number", b"42".to_vec()),
        ("invalid UTF-8", [b"\xff\xfe".as_slice(), &valid].concat()),
        (
            "a byte-order mark",
            [b"\xef\xbb\xbf".as_slice(), &valid].concat(),
        ),
        (
            "invalid UTF-8 in a string",
            b"{\"name\": \"caf\xe9\", \"headline\": \"\xc0\xaf\"}".to_vec(),
        ),
        (
            "a lone surrogate",
            br#"{"name": "\ud800", "headline": "\udfff"}"#.to_vec(),
        ),
        (
            "a raw control character",
            b"{\"name\": \"a\x01b\"}".to_vec(),
        ),
        (
            "deep nesting",
            format!("{}{}", "[".repeat(20_000), "]".repeat(20_000)).into_bytes(),
        ),
        (
            "deep nesting of objects",
            format!("{}1{}", "{\"a\":".repeat(10_000), "}".repeat(10_000)).into_bytes(),
        ),
    ];
    if let Some(key) = &first_key {
        // The first field again, with its value nested deeply or given twice.
        let nested = format!("{{\"{key}\": {}1{}}}", "[".repeat(5_000), "]".repeat(5_000));
        raw.push(("a deeply nested field", nested.into_bytes()));
        let value = serde_json::to_string(&e.valid[key]).unwrap();
        let twice = format!("{{\"{key}\": {value}, {}", &text[1..]);
        raw.push(("a repeated field", twice.into_bytes()));
    }
    for (what, body) in raw {
        cases.push(Case::json(format!("{}: {what}", e.name), e, body, None));
    }
    // Too big: padded with spaces past 64 KiB, a megabyte, a huge field.
    let mut padded = valid.clone();
    padded.extend(std::iter::repeat_n(b' ', 70 * 1024));
    cases.push(Case::json(
        format!("{}: padded past the limit", e.name),
        e,
        padded,
        Some(413),
    ));
    cases.push(Case::json(
        format!("{}: a megabyte", e.name),
        e,
        vec![b'['; 1024 * 1024],
        Some(413),
    ));
    if let Some(key) = &first_key {
        let mut huge = e.valid.clone();
        huge[key] = json!("x".repeat(100_000));
        cases.push(Case::json(
            format!("{}: a 100 KB field", e.name),
            e,
            bytes(&huge),
            Some(413),
        ));
    }
    // A valid body that does not say it is JSON.
    for content_type in [
        Some(b"text/plain".to_vec()),
        Some(b"application/x-www-form-urlencoded".to_vec()),
        Some(b"multipart/form-data; boundary=x".to_vec()),
        Some(b"application/xml".to_vec()),
        Some(b"application/json-seq".to_vec()),
        Some(b"text/json".to_vec()),
        Some(b"".to_vec()),
        Some(b"application/json\xff".to_vec()),
        None,
    ] {
        let mut case = Case::json(
            format!(
                "{}: content type {:?}",
                e.name,
                content_type.as_deref().map(String::from_utf8_lossy)
            ),
            e,
            valid.clone(),
            Some(415),
        );
        case.content_type = content_type;
        cases.push(case);
    }
    // A valid body with a bad `Authorization` (sign-up needs none).
    if e.token.is_some() {
        let long = format!("Bearer nr_{}", "A".repeat(10_000));
        for value in [
            b"Bearer nr_\xff\xfe\xfd".to_vec(),
            long.into_bytes(),
            b"Bearer".to_vec(),
            b"Bearer ".to_vec(),
            b"Basic YWRtaW46YWRtaW4=".to_vec(),
            b"Bearer nrs_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_vec(),
            b"Bearer nr_' OR '1'='1".to_vec(),
        ] {
            let mut case = Case::json(
                format!(
                    "{}: authorization {:?}",
                    e.name,
                    String::from_utf8_lossy(&value)
                        .chars()
                        .take(30)
                        .collect::<String>()
                ),
                e,
                valid.clone(),
                Some(401),
            );
            case.token = None;
            case.headers.push(("authorization", value));
            cases.push(case);
        }
    }
    cases
}

/// Ids in paths that are not ids, or name nothing.
const BAD_IDS: [&str; 7] = [
    "not-a-uuid",
    "%FF",
    "%00",
    "..%2F..%2Fetc%2Fpasswd",
    "%E2%80%AE",
    "00000000-0000-0000-0000-000000000000",
    "x%0D%0ASet-Cookie:%20a=b",
];

/// Malformed paths and query strings.
fn parameter_cases(fx: &HostileFixture, app: &TestApp) -> Vec<Case> {
    let mut cases = Vec::new();
    let (story, pending) = (&fx.story, &fx.pending);
    let reporter = Some(app.reporter.as_str());
    let editor = Some(app.editor.as_str());
    let reason = bytes(&json!({"reason": "Because"}));
    for bad in BAD_IDS.iter().copied().chain([&*"x".repeat(2_000)]) {
        let with_body = |path: String, token: Option<&str>, body: Vec<u8>| Case {
            what: format!("path {path}").chars().take(120).collect(),
            method: Method::POST,
            path,
            token: token.map(str::to_owned),
            content_type: Some(b"application/json".to_vec()),
            body: Some(body),
            headers: Vec::new(),
            status: None,
        };
        cases.push(with_body(
            format!("/v1/stories/{bad}/developments"),
            reporter,
            bytes(&development("update")),
        ));
        cases.push(with_body(
            format!("/v1/stories/{bad}/developments/{pending}/approval"),
            editor,
            b"{}".to_vec(),
        ));
        cases.push(with_body(
            format!("/v1/stories/{story}/developments/{bad}/approval"),
            editor,
            b"{}".to_vec(),
        ));
        cases.push(with_body(
            format!("/v1/stories/{story}/developments/{bad}/retraction"),
            editor,
            reason.clone(),
        ));
        cases.push(with_body(
            format!("/v1/stories/{bad}/close"),
            editor,
            Vec::new(),
        ));
        let mut patch = with_body(
            format!("/v1/stories/{bad}"),
            editor,
            bytes(&json!({"headline": "Revised"})),
        );
        patch.method = Method::PATCH;
        cases.push(patch);
        let mut revoke = with_body(format!("/v1/tokens/{bad}"), Some(&app.admin), Vec::new());
        revoke.method = Method::DELETE;
        cases.push(revoke);
        cases.push(with_body(
            format!("/v1/subscribers/{bad}/endpoints"),
            Some(&fx.subscriber.token),
            bytes(&json!({"kind": "nats", "subject": "newsroom.hostile"})),
        ));
        cases.push(with_body(
            format!(
                "/v1/subscribers/{}/deliveries/{bad}/redrive",
                fx.subscriber.id
            ),
            Some(&fx.subscriber.token),
            Vec::new(),
        ));
        cases.push(with_body(
            format!("/v1/unsubscribe/{bad}"),
            None,
            Vec::new(),
        ));
        cases.push(Case::get(
            "a story's events by a bad id",
            format!("/v1/stories/{bad}/events"),
            editor,
        ));
    }
    for delivery in ["-1", "1.5", "99999999999999999999", "0x10"] {
        cases.push(Case {
            what: format!("redrive delivery {delivery}"),
            method: Method::POST,
            path: format!(
                "/v1/subscribers/{}/deliveries/{delivery}/redrive",
                fx.subscriber.id
            ),
            token: Some(fx.subscriber.token.clone()),
            content_type: None,
            body: None,
            headers: Vec::new(),
            status: None,
        });
    }
    let admin = Some(app.admin.as_str());
    let own = Some(fx.subscriber.token.as_str());
    let sub = &fx.subscriber.id;
    for query in [
        "limit=-1",
        "limit=0",
        "limit=1001",
        "limit=abc",
        "limit=99999999999999999999",
        "limit=1e3",
        "limit=",
        "after=-1",
        "after=abc",
        "after=1&after=2",
        "unknown=1",
        "limit=%00",
    ] {
        cases.push(Case::get(
            "the feed's query",
            format!("/v1/events?{query}"),
            admin,
        ));
        cases.push(Case::get(
            "alerts' query",
            format!("/v1/subscribers/{sub}/alerts?{query}"),
            own,
        ));
    }
    for query in [
        "status=bogus",
        "status=",
        "status=pending&status=failed",
        "limit=-5",
        "limit=100000",
        "limit=x",
        "order=desc",
    ] {
        cases.push(Case::get(
            "deliveries' query",
            format!("/v1/subscribers/{sub}/deliveries?{query}"),
            own,
        ));
    }
    for query in [
        "as_of=yesterday",
        "as_of=2026-13-01T00:00:00Z",
        "limit=-1",
        "limit=abc",
        "min_position=-1",
        "min_position=abc",
        "unknown=1",
    ] {
        cases.push(Case::get(
            "the front page's query",
            format!("/v1/stories?{query}"),
            None,
        ));
    }
    for query in [
        "since=yesterday",
        "as_of=never",
        "since=1&as_of=2026-10-01T00:00:00Z",
        "min_position=-3",
        "unknown=1",
    ] {
        cases.push(Case::get(
            "a story's query",
            format!("/v1/stories/{story}?{query}"),
            None,
        ));
    }
    for (path, token) in [
        (format!("/v1/stories/{story}/stream"), None),
        (format!("/v1/subscribers/{sub}/alerts/stream"), own),
    ] {
        for last in [
            b"abc".to_vec(),
            b"-".to_vec(),
            b"1e9".to_vec(),
            b"\xff".to_vec(),
        ] {
            let mut case = Case::get("a bad Last-Event-ID", path.clone(), token);
            case.headers.push(("last-event-id", last));
            case.status = Some(400);
            cases.push(case);
        }
    }
    cases
}

struct HostileFixture {
    story: String,
    pending: String,
    published: String,
    subscriber: SignedUp,
}

fn endpoints(fx: &HostileFixture, app: &TestApp) -> Vec<Endpoint> {
    let (story, pending, published) = (&fx.story, &fx.pending, &fx.published);
    let reporter = Some(app.reporter.clone());
    let editor = Some(app.editor.clone());
    let reason = || vec![field("/reason", Ty::Text(2_000))];
    vec![
        Endpoint {
            name: "open a story",
            method: Method::POST,
            path: "/v1/stories".into(),
            token: reporter.clone(),
            valid: json!({"slug": "hostile-story", "headline": "Hostile", "summary": "A summary",
                "tags": ["cyber"], "review_required": false}),
            fields: vec![
                field("/slug", Ty::Slug),
                field("/headline", Ty::Line(200)),
                field("/summary", Ty::Text(2_000)),
                field("/tags", Ty::Lines(40, 20)),
                field("/review_required", Ty::Bool),
            ],
        },
        Endpoint {
            name: "revise a story",
            method: Method::PATCH,
            path: format!("/v1/stories/{story}"),
            token: editor.clone(),
            valid: json!({"headline": "Revised", "tags": ["cyber"]}),
            fields: vec![
                optional("/headline", Ty::Line(200)),
                optional("/tags", Ty::Lines(40, 20)),
            ],
        },
        Endpoint {
            name: "record a development",
            method: Method::POST,
            path: format!("/v1/stories/{story}/developments"),
            token: reporter.clone(),
            valid: development("update"),
            fields: vec![
                field("/id", Ty::Uuid),
                field("/kind", Ty::Choice),
                field("/headline", Ty::Line(200)),
                field("/body", Ty::Text(20_000)),
                optional("/occurred_at", Ty::Time),
                field("/actors", Ty::Lines(120, 50)),
                optional("/source", Ty::Object),
                field("/source/name", Ty::Line(200)),
                field("/source/kind", Ty::Choice),
                optional("/source/url", Ty::Link),
                field("/evidence", Ty::Choice),
                field("/urgency", Ty::Choice),
                optional("/responds_to", Ty::Object),
            ],
        },
        Endpoint {
            name: "approve",
            method: Method::POST,
            path: format!("/v1/stories/{story}/developments/{pending}/approval"),
            token: editor.clone(),
            valid: json!({}),
            fields: vec![],
        },
        Endpoint {
            name: "reject",
            method: Method::POST,
            path: format!("/v1/stories/{story}/developments/{pending}/rejection"),
            token: editor.clone(),
            valid: json!({"reason": "Not confirmed"}),
            fields: reason(),
        },
        Endpoint {
            name: "correct",
            method: Method::POST,
            path: format!("/v1/stories/{story}/developments/{published}/corrections"),
            token: editor.clone(),
            valid: json!({"note": "Fixed the headline", "changes": {"headline": "Better"}}),
            fields: vec![
                field("/note", Ty::Text(2_000)),
                field("/changes", Ty::Object),
                optional("/changes/headline", Ty::Line(200)),
                optional("/changes/body", Ty::Text(20_000)),
                optional("/changes/occurred_at", Ty::Time),
                optional("/changes/actors", Ty::Lines(120, 50)),
                optional("/changes/source", Ty::Object),
                optional("/changes/evidence", Ty::Choice),
            ],
        },
        Endpoint {
            name: "retract",
            method: Method::POST,
            path: format!("/v1/stories/{story}/developments/{published}/retraction"),
            token: editor.clone(),
            valid: json!({"reason": "Withdrawn"}),
            fields: reason(),
        },
        Endpoint {
            name: "create a token",
            method: Method::POST,
            path: "/v1/tokens".into(),
            token: Some(app.admin.clone()),
            valid: json!({"role": "reporter", "name": "Hostile Reporter"}),
            fields: vec![field("/role", Ty::Choice), field("/name", Ty::Line(200))],
        },
        Endpoint {
            name: "sign up",
            method: Method::POST,
            path: "/v1/subscribers".into(),
            token: None,
            valid: json!({"name": "Hostile Reader", "email": "reader@example.org"}),
            fields: vec![field("/name", Ty::Line(200)), optional("/email", Ty::Email)],
        },
        Endpoint {
            name: "add a webhook",
            method: Method::POST,
            path: format!("/v1/subscribers/{}/endpoints", fx.subscriber.id),
            token: Some(fx.subscriber.token.clone()),
            valid: json!({"kind": "webhook", "url": "http://127.0.0.1:9/hook"}),
            fields: vec![field("/kind", Ty::Choice), field("/url", Ty::Webhook)],
        },
        Endpoint {
            name: "add a NATS subject",
            method: Method::POST,
            path: format!("/v1/subscribers/{}/endpoints", fx.subscriber.id),
            token: Some(fx.subscriber.token.clone()),
            valid: json!({"kind": "nats", "subject": "newsroom.hostile"}),
            fields: vec![field("/subject", Ty::Subject)],
        },
        Endpoint {
            name: "add an email address",
            method: Method::POST,
            path: format!("/v1/subscribers/{}/endpoints", fx.subscriber.id),
            token: Some(fx.subscriber.token.clone()),
            valid: json!({"kind": "email", "address": "reader@example.org"}),
            fields: vec![field("/address", Ty::Email)],
        },
        Endpoint {
            name: "subscribe",
            method: Method::POST,
            path: format!("/v1/subscribers/{}/subscriptions", fx.subscriber.id),
            token: Some(fx.subscriber.token.clone()),
            valid: json!({"story": story, "actor": "Fancy Bear", "kind": "update", "tag": "cyber",
                "min_urgency": "priority", "delivery": "digest", "digest_minutes": 60}),
            fields: vec![
                optional("/story", Ty::Uuid),
                optional("/actor", Ty::Line(120)),
                optional("/kind", Ty::Choice),
                optional("/tag", Ty::Slug),
                field("/min_urgency", Ty::Choice),
                field("/delivery", Ty::Choice),
                field("/digest_minutes", Ty::Minutes),
            ],
        },
    ]
}

/// Everything a refused request must leave as it was.
#[derive(Debug, PartialEq)]
struct State {
    head: i64,
    log: Vec<Value>,
    tokens: i64,
    subscribers: Value,
    endpoints: Value,
    subscriptions: Value,
    deliveries: Value,
}

async fn state(app: &TestApp, fx: &HostileFixture) -> State {
    let conn = rusqlite::Connection::open(&app.database_path).unwrap();
    let tokens = conn
        .query_row("SELECT COUNT(*) FROM tokens", [], |r| r.get(0))
        .unwrap();
    let get = |path: String| async move {
        app.call(Method::GET, &path, Some(&app.admin), None)
            .await
            .ok(200)
            .clone()
    };
    let sub = &fx.subscriber.id;
    State {
        head: app.head().await,
        log: app.feed().await,
        tokens,
        subscribers: get("/v1/subscribers".into()).await,
        endpoints: get(format!("/v1/subscribers/{sub}/endpoints")).await,
        subscriptions: get(format!("/v1/subscribers/{sub}/subscriptions")).await,
        deliveries: get(format!("/v1/subscribers/{sub}/deliveries")).await,
    }
}

async fn send(app: &TestApp, case: &Case) -> (u16, String, String) {
    let mut request = app
        .client
        .request(case.method.clone(), format!("{}{}", app.address, case.path));
    if let Some(token) = &case.token {
        request = request.bearer_auth(token);
    }
    if let Some(ct) = &case.content_type {
        request = request.header(
            "content-type",
            reqwest::header::HeaderValue::from_bytes(ct).unwrap(),
        );
    }
    for (name, value) in &case.headers {
        request = request.header(
            *name,
            reqwest::header::HeaderValue::from_bytes(value).unwrap(),
        );
    }
    if let Some(body) = &case.body {
        request = request.body(body.clone());
    }
    let response = request.send().await.expect("request sent");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = if content_type.starts_with("text/event-stream") {
        String::new()
    } else {
        response.text().await.unwrap_or_default()
    };
    (status, content_type, body)
}

#[tokio::test]
async fn hundreds_of_malformed_requests_get_problems_and_change_nothing() {
    let (app, story) = spawn_app_with_story(true).await;
    let filing = development("update");
    let pending = filing["id"].as_str().unwrap().to_owned();
    app.record(&story, filing).await.ok(201);
    let filing = development("update");
    let published = filing["id"].as_str().unwrap().to_owned();
    app.record_as(&app.editor, &story, filing).await.ok(201);
    let subscriber = app.sign_up("Hostile Reader").await;
    let fx = HostileFixture {
        story,
        pending,
        published,
        subscriber,
    };

    let mut cases: Vec<Case> = endpoints(&fx, &app).iter().flat_map(body_cases).collect();
    cases.extend(parameter_cases(&fx, &app));
    let before = state(&app, &fx).await;
    let mut failures = Vec::new();
    for (n, case) in cases.iter().enumerate() {
        let (status, content_type, body) = send(&app, case).await;
        let problem: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        let right_status = match case.status {
            Some(expected) => status == expected,
            None => (400..500).contains(&status),
        };
        let is_problem = content_type == "application/problem+json"
            && problem["status"] == status
            && problem["type"].is_string()
            && problem["title"].is_string()
            && problem["detail"].is_string();
        if !(right_status && is_problem) {
            failures.push(format!(
                "{} {} ({}): expected {:?}, got {status} {content_type}: {}",
                case.method,
                case.path.chars().take(100).collect::<String>(),
                case.what,
                case.status.map_or("a 4xx".to_owned(), |s| s.to_string()),
                body.chars().take(200).collect::<String>()
            ));
        }
        if n % 100 == 99 {
            app.head().await; // still up, and healthy
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} malformed requests were not refused with a problem:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert!(cases.len() >= 200, "only {} cases", cases.len());
    eprintln!("{} malformed requests refused", cases.len());

    let after = state(&app, &fx).await;
    assert_eq!(after, before, "the refused requests changed nothing");
    // And the endpoints still work for well-formed requests.
    app.record(&fx.story, development("update")).await.ok(201);
    assert_eq!(app.head().await, before.head + 1);
}
