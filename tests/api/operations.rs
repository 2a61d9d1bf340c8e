use std::collections::BTreeSet;

use newsroom_testkit::prelude::*;
use reqwest::Method;
use serde_json::Value;

use crate::auth_matrix::{normalise, routes_in_source};

#[tokio::test]
async fn health_reports_the_event_store() {
    let app = spawn_app().await;
    let answer = app.call(Method::GET, "/healthz", None, None).await;
    let body = answer.ok(200);
    assert_eq!(body["status"], "ok");
    assert_eq!(body["checks"]["event_store"], "ok");
}

#[tokio::test]
async fn metrics_count_commands_in_prometheus_text() {
    let (app, story) = spawn_app_with_story(false).await;
    app.record(&story, development("update")).await.ok(201);
    let answer = app.call(Method::GET, "/metrics", None, None).await;
    assert_eq!(answer.status, 200);
    assert!(answer.content_type.starts_with("text/plain"));
    let text = answer.body.as_str().unwrap();
    assert!(
        text.lines()
            .any(|l| l.starts_with("newsroom_commands_total{")
                && l.contains("command=\"record_development\"")
                && l.contains("outcome=\"ok\"")),
        "{text}"
    );
}

/// Read by an independent parser of the Prometheus text format: every family has help text, and
/// latencies and sizes are histograms (buckets aggregate across scale-out processes; summaries'
/// quantiles do not), their `+Inf` bucket equal to their count.
#[tokio::test]
async fn metrics_have_help_and_latencies_are_histograms() {
    let (app, story) = spawn_app_with_story(false).await;
    app.record(&story, development("update")).await.ok(201);
    let answer = app.call(Method::GET, "/metrics", None, None).await;
    let text = answer.body.as_str().unwrap();
    let scrape =
        prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("parses");
    let families: std::collections::BTreeSet<&str> = scrape
        .samples
        .iter()
        .map(|s| {
            s.metric
                .trim_end_matches("_bucket")
                .trim_end_matches("_count")
                .trim_end_matches("_sum")
        })
        .collect();
    for family in &families {
        assert!(
            scrape.docs.get(*family).is_some_and(|h| !h.is_empty()),
            "{family} has no # HELP:\n{text}"
        );
    }
    let latency = scrape
        .samples
        .iter()
        .find(|s| {
            s.metric == "newsroom_command_seconds"
                && s.labels.get("command") == Some("record_development")
        })
        .expect("the command latency");
    let prometheus_parse::Value::Histogram(buckets) = &latency.value else {
        panic!("a histogram, not {:?}", latency.value);
    };
    assert!(buckets.len() > 5, "{buckets:?}");
    assert!(
        buckets
            .windows(2)
            .all(|w| w[0].less_than < w[1].less_than && w[0].count <= w[1].count),
        "{buckets:?}"
    );
    assert!(!text.contains("quantile="), "no summaries:\n{text}");
}

/// `(METHOD, path)` of every operation in an OpenAPI document, parameters written `{}`.
fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut found = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                found.insert((method.to_uppercase(), normalise(path)));
            }
        }
    }
    found
}

#[tokio::test]
async fn the_openapi_document_describes_every_route_of_every_api_router() {
    let app = spawn_app().await;
    let answer = app.call(Method::GET, "/openapi.json", None, None).await;
    let doc = answer.ok(200).clone();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    // Every route of the command API, the read API and the subscriber API, less the reader's
    // HTML pages (for browsers: the desk's and the alert pages' routers are not read here).
    let mut served = BTreeSet::new();
    for source in [
        include_str!("../../crates/command/src/http/mod.rs"),
        include_str!("../../crates/projection/src/api.rs"),
        include_str!("../../crates/notifier/src/api/mod.rs"),
    ] {
        served.extend(routes_in_source(source).into_iter().filter(|(_, path)| {
            path.starts_with("/v1/")
                || ["/healthz", "/metrics", "/openapi.json"].contains(&path.as_str())
        }));
    }
    assert!(served.len() > 40, "the parser found the routes: {served:?}");
    let documented = documented(&doc);
    let missing: Vec<_> = served.difference(&documented).collect();
    let stale: Vec<_> = documented.difference(&served).collect();
    assert!(
        missing.is_empty(),
        "routes served but not documented: {missing:?}"
    );
    assert!(stale.is_empty(), "documented but not served: {stale:?}");

    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let kinds = &schemas["DevelopmentKind"]["enum"];
    assert!(
        kinds
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k == "denial_issued"),
        "{kinds}"
    );
    assert_eq!(
        schemas["OpenStoryRequest"]["properties"]["slug"]["maxLength"], 80,
        "the domain's limits are in the schemas"
    );
}

#[tokio::test]
async fn every_documented_operation_declares_its_errors_as_problems() {
    let app = spawn_app().await;
    let doc = app
        .call(Method::GET, "/openapi.json", None, None)
        .await
        .ok(200)
        .clone();
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let at = format!("{method} {path}");
            let responses = operation["responses"].as_object().unwrap();
            operations += 1;
            assert!(responses.contains_key("400"), "{at} documents 400");
            for (status, response) in responses {
                let Some(content) = response["content"].as_object() else {
                    continue;
                };
                if status.starts_with('4') || (status.starts_with('5') && path != "/healthz") {
                    assert!(
                        !content.contains_key("application/json"),
                        "{at}: {status} is application/problem+json, not application/json"
                    );
                    assert!(
                        content.contains_key("application/problem+json"),
                        "{at}: {status} is a problem"
                    );
                }
            }
            let authenticated = operation["security"].as_array().is_some_and(|s| {
                s.iter()
                    .any(|r| r.as_object().is_some_and(|r| !r.is_empty()))
            });
            if authenticated {
                assert!(
                    responses["401"]["headers"]["WWW-Authenticate"].is_object(),
                    "{at}: 401 says how to authenticate"
                );
            }
            if operation.get("requestBody").is_some() {
                for status in ["413", "415", "422"] {
                    assert!(responses.contains_key(status), "{at} documents {status}");
                }
            }
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                let name = parameter["name"].as_str().unwrap();
                if parameter["in"] == "path"
                    && ["id", "dev", "endpoint", "subscription"].contains(&name)
                    && !path.starts_with("/v1/tokens")
                {
                    // Stories are read by id or slug; everything else by its UUID.
                    let by_slug = method == "get" && path.starts_with("/v1/stories/{id}");
                    if !by_slug {
                        assert_eq!(
                            parameter["schema"]["format"], "uuid",
                            "{at}: `{name}` is a UUID"
                        );
                    }
                }
                if ["after", "limit"].contains(&name) {
                    assert!(
                        parameter["schema"]["minimum"].is_number(),
                        "{at}: `{name}` has bounds"
                    );
                }
            }
        }
    }
    assert!(operations > 40);
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_with_problems() {
    let app = spawn_app().await;
    app.call(Method::GET, "/v1/nothing-here", None, None)
        .await
        .problem(404);
    app.call(Method::DELETE, "/v1/stories", Some(&app.admin), None)
        .await
        .problem(405);
}

#[tokio::test]
async fn stopping_the_server_keeps_every_answered_write() {
    let (app, story) = spawn_app_with_story(false).await;
    for _ in 0..20 {
        app.record(&story, development("update")).await.ok(201);
    }
    let path = app.database_path.clone();
    let _dir = app.stop().await;
    let conn = rusqlite::Connection::open(&path).unwrap();
    let count: i64 = conn
        .query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
        .unwrap();
    assert_eq!(count, 21);
}

#[tokio::test]
async fn data_files_are_the_owners_alone_and_old_world_readable_ones_are_narrowed() {
    use std::os::unix::fs::PermissionsExt;
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    // Every data file in a directory newsroom creates itself.
    let place = |settings: &mut newsroom::NewsroomSettings| {
        let data = settings
            .command
            .database_path
            .parent()
            .unwrap()
            .join("data");
        settings.command.database_path = data.join("newsroom.db");
        settings.views_path = data.join("views.db");
        settings.notifier.path = data.join("notifier.db");
    };
    let app = spawn_app_with(place).await;
    let story = app.open_story(false).await;
    app.record(&story, development("update")).await.ok(201);
    app.sign_up("Mode Reader").await;
    let data = app.database_path.parent().unwrap().to_owned();
    let check = |why: &str| {
        assert_eq!(mode(&data), 0o700, "{why}: the data directory");
        let mut seen = Vec::new();
        for entry in std::fs::read_dir(&data).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            assert_eq!(mode(&path), 0o600, "{why}: {name}");
            seen.push(name);
        }
        for expected in [
            "newsroom.db",
            "newsroom.db-wal",
            "newsroom.db-shm",
            "notifier.db",
            "notifier.db-wal",
            "views.db",
            "views.db-wal",
        ] {
            assert!(
                seen.iter().any(|s| s == expected),
                "{why}: {expected} in {seen:?}"
            );
        }
    };
    check("created");

    // Files an older version left world-readable are narrowed at the next start.
    let dir = app.stop().await;
    for entry in std::fs::read_dir(&data).unwrap() {
        let path = entry.unwrap().path();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let app = spawn_app_in(dir, place).await;
    app.record(&story, development("update")).await.ok(201);
    check("restarted");
}

#[test]
fn the_systemd_units_keep_the_state_directory_and_new_files_private() {
    let deploy = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy");
    for unit in ["newsroom.service", "newsroom@.service"] {
        let text = std::fs::read_to_string(deploy.join(unit)).unwrap();
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        assert!(lines.contains(&"UMask=0077"), "{unit}");
        assert!(lines.contains(&"StateDirectoryMode=0700"), "{unit}");
    }
}
