//! The two backends side by side. A contract suite ([`the_contract`]) runs the same scenario on a
//! fresh embedded newsroom and on a fresh scale-out one: sequences and slugs, idempotent and
//! conflicting filings, a gap-free ordered feed, the views' timeline and a retraction shown struck,
//! the hash chain.
//!
//! Schema parity: the same newsroom set up fresh on SQLite (embedded) and on PostgreSQL
//! (scale-out) holds the same tables with the same columns. The two backends' schemas are
//! written separately (each crate's `migrations/sqlite` and `migrations/postgres`, side by side
//! under the same names), so a column added to one and forgotten in the other shows here, not in
//! production. What differs on purpose is
//! listed in [`DIFFERENT_ON_PURPOSE`], each with its reason.

use std::collections::{BTreeMap, BTreeSet};

use newsroom_testkit::prelude::*;
use reqwest::Method;
use serde_json::{json, Value};
use sqlx::Row as _;

/// Tables or columns one backend has and the other has not, on purpose: `(backend, name)` where
/// `name` is `table` or `table.column`.
const DIFFERENT_ON_PURPOSE: &[(&str, &str, &str)] = &[
    // The full-text index: SQLite's is an FTS5 table with a column per field (weighted apart)
    // and a table mapping its rowids to stories and times; PostgreSQL's is one row per document
    // with a tsvector and the story and time beside it.
    ("sqlite", "search.headline", FULL_TEXT),
    ("sqlite", "search.body", FULL_TEXT),
    ("sqlite", "search.names", FULL_TEXT),
    ("sqlite", "search_keys", FULL_TEXT),
    ("postgres", "search.key", FULL_TEXT),
    ("postgres", "search.story_id", FULL_TEXT),
    ("postgres", "search.occurred_at", FULL_TEXT),
    ("postgres", "search.words", FULL_TEXT),
    (
        "postgres",
        "deliveries.partition",
        "notifier copies sharing one PostgreSQL queue split deliveries into partitions; an \
         embedded process owns the one partition there is",
    ),
    (
        "postgres",
        "fanouts",
        "notifier copies sharing one PostgreSQL queue write one event's alerts side by side, \
         from chunks by subscriber partition; an embedded process writes them itself",
    ),
    (
        "postgres",
        "pending_fills",
        "PostgreSQL fills the index of developments from the logged events after its migration \
         (SQL cannot upcast them); SQLite's migration does it in its hook",
    ),
    (
        "postgres",
        "story_heads",
        "command copies append to PostgreSQL together and move each story's head by \
         compare-and-set; SQLite's one writer thread reads the head from the events",
    ),
];

const FULL_TEXT: &str = "each backend's own full-text index (FTS5, tsvector)";

/// Tables that are a backend's own machinery, not newsroom's schema: migration bookkeeping,
/// SQLite's AUTOINCREMENT counters and FTS5's shadow tables.
fn machinery(backend: &str, table: &str) -> bool {
    match backend {
        "sqlite" => {
            table.starts_with("sqlite_")
                || ["_data", "_idx", "_content", "_docsize", "_config"]
                    .iter()
                    .any(|s| table.starts_with("search") && table.ends_with(s))
        }
        _ => table == "_sqlx_migrations",
    }
}

type Schema = BTreeMap<String, BTreeSet<String>>;

fn sqlite_schema(files: &[std::path::PathBuf]) -> Schema {
    let mut schema = Schema::new();
    for file in files {
        let conn = rusqlite::Connection::open(file).expect("the database file opens");
        let tables: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        for table in tables.into_iter().filter(|t| !machinery("sqlite", t)) {
            let columns: BTreeSet<String> = conn
                .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            // A table of the same name in two files (the views' and the notifier's
            // `checkpoints`) is one table in PostgreSQL's one database.
            schema.entry(table).or_default().extend(columns);
        }
    }
    schema
}

async fn postgres_schema(url: &str) -> Schema {
    let pool = sqlx::PgPool::connect(url)
        .await
        .expect("PostgreSQL answers");
    let rows = sqlx::query(
        "SELECT c.table_name::text, c.column_name::text
         FROM information_schema.columns c
         JOIN information_schema.tables t
           ON t.table_schema = c.table_schema AND t.table_name = c.table_name
         WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE'",
    )
    .fetch_all(&pool)
    .await
    .expect("the catalogue reads");
    let mut schema = Schema::new();
    for row in rows {
        let (table, column): (String, String) = (row.get(0), row.get(1));
        if !machinery("postgres", &table) {
            // The views share PostgreSQL's one database under the prefix `view_`; in SQLite
            // they have a file of their own.
            let table = table
                .strip_prefix("view_")
                .map(str::to_owned)
                .unwrap_or(table);
            schema.entry(table).or_default().insert(column);
        }
    }
    pool.close().await;
    schema
}

/// What `ours` has that `theirs` has not, as `table` or `table.column`.
fn only_in(ours: &Schema, theirs: &Schema) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (table, columns) in ours {
        match theirs.get(table) {
            None => {
                out.insert(table.clone());
            }
            Some(other) => out.extend(columns.difference(other).map(|c| format!("{table}.{c}"))),
        }
    }
    out
}

#[tokio::test]
async fn both_backends_hold_the_same_tables_with_the_same_columns() {
    let embedded = spawn_app().await;
    let files = [
        embedded.database_path.clone(),
        embedded.database_path.with_file_name("views.db"),
        embedded.database_path.with_file_name("notifier.db"),
    ];
    for f in &files {
        assert!(f.exists(), "{} exists after start-up", f.display());
    }
    let Some((scaled, db)) = spawn_app_on_postgres().await else {
        return;
    };
    let sqlite = sqlite_schema(&files);
    let postgres = postgres_schema(&db.url).await;
    assert!(
        sqlite.len() > 10 && postgres.len() > 10,
        "both schemas were read: {} SQLite tables, {} PostgreSQL tables",
        sqlite.len(),
        postgres.len()
    );
    let allowed = |backend: &str, name: &str| {
        DIFFERENT_ON_PURPOSE
            .iter()
            .any(|(b, n, _)| *b == backend && *n == name)
    };
    let drift: Vec<String> = only_in(&sqlite, &postgres)
        .into_iter()
        .filter(|n| !allowed("sqlite", n))
        .map(|n| format!("only in SQLite: {n}"))
        .chain(
            only_in(&postgres, &sqlite)
                .into_iter()
                .filter(|n| !allowed("postgres", n))
                .map(|n| format!("only in PostgreSQL: {n}")),
        )
        .collect();
    assert!(
        drift.is_empty(),
        "the schemas drifted:\n{}",
        drift.join("\n")
    );
    // Every exception still names something that differs: a stale one is removed.
    for (backend, name, why) in DIFFERENT_ON_PURPOSE {
        let (ours, theirs) = match *backend {
            "sqlite" => (&sqlite, &postgres),
            _ => (&postgres, &sqlite),
        };
        assert!(
            only_in(ours, theirs).contains(*name),
            "{name} ({why}) is listed as only in {backend}, but it is not"
        );
    }
    drop(scaled);
    drop(embedded);
}

/// The contract both backends keep, seen from the API: one scenario, run on a fresh embedded
/// newsroom (SQLite) and on a fresh scale-out one (PostgreSQL log, views and queue).
async fn the_contract(app: &TestApp, backend: &str) {
    // A story opens at sequence 1; its slug is the story's alone.
    let slug = format!(
        "contract-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    let open = json!({"slug": slug, "headline": "Campaign reports a hack", "tags": ["cyber"]});
    let opened = app.open_story_as(&app.reporter, open.clone()).await;
    let opened = opened.ok(201).clone();
    assert_eq!(opened["sequence"], 1, "{backend}: {opened}");
    let story = opened["id"].as_str().unwrap().to_owned();
    app.open_story_as(&app.reporter, open)
        .await
        .problem_for_field(409, "slug");

    // Filings: each a new sequence; the same filing again is answered from the first and
    // recorded once; the same id with other content is refused naming `id`.
    let filings: Vec<Value> = (0..3).map(|_| development("hack_reported")).collect();
    let mut positions = Vec::new();
    for (i, filing) in filings.iter().enumerate() {
        let recorded = app.record(&story, filing.clone()).await;
        let recorded = recorded.ok(201).clone();
        assert_eq!(recorded["sequence"], i as i64 + 2, "{backend}: {recorded}");
        positions.push(recorded["position"].as_i64().unwrap());
    }
    let again = app.record(&story, filings[0].clone()).await;
    assert_eq!(
        again.ok(200)["sequence"],
        2,
        "{backend}: a repeat answers as the first"
    );
    let mut changed = filings[1].clone();
    changed["headline"] = json!("Another headline");
    app.record(&story, changed)
        .await
        .problem_for_field(409, "id");

    // The feed: every event once, positions gap-free and increasing, the story's sequences in
    // order.
    let feed = app.feed().await;
    let feed_positions: Vec<i64> = feed
        .iter()
        .map(|e| e["position"].as_i64().unwrap())
        .collect();
    let first = feed_positions[0];
    assert_eq!(
        feed_positions,
        (first..first + feed.len() as i64).collect::<Vec<_>>(),
        "{backend}: the feed's positions are gap-free and in order"
    );
    let ours: Vec<i64> = feed
        .iter()
        .filter(|e| e["story_id"] == story.as_str())
        .map(|e| e["sequence"].as_i64().unwrap())
        .collect();
    assert_eq!(
        ours,
        vec![1, 2, 3, 4],
        "{backend}: one event per command, in order"
    );
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "{backend}: {positions:?}"
    );

    // The views: readers see the three developments once the views reach the last position;
    // a retraction is shown, struck, not removed.
    let last = *positions.last().unwrap();
    let path = format!("/v1/stories/{story}?min_position={last}");
    let body = app.call(Method::GET, &path, None, None).await;
    let mut shown: Vec<String> = body.ok(200)["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_owned())
        .collect();
    let mut want: Vec<String> = filings
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_owned())
        .collect();
    shown.sort();
    want.sort();
    assert_eq!(
        shown, want,
        "{backend}: the timeline shows each development once"
    );
    let retracted = app
        .editor_action(
            &story,
            &want[0],
            "retraction",
            json!({"reason": "The campaign withdrew the claim."}),
        )
        .await;
    let at = retracted.ok(200)["position"].as_i64().unwrap();
    let path = format!("/v1/stories/{story}?min_position={at}");
    let body = app.call(Method::GET, &path, None, None).await;
    let timeline = body.ok(200)["timeline"].as_array().unwrap().clone();
    let struck = timeline
        .iter()
        .find(|d| d["id"] == want[0].as_str())
        .unwrap_or_else(|| panic!("{backend}: a retracted development is still shown"));
    assert_eq!(struck["state"], "retracted", "{backend}: {struck}");
    assert_eq!(timeline.len(), 3, "{backend}: nothing removed");

    // The hash chain holds on the whole log.
    let report = newsroom_log::verify::verify_log(&app.app_state.store)
        .await
        .expect("the log reads");
    assert!(report.is_sound(), "{backend}: {report:?}");
}

#[tokio::test]
async fn both_backends_keep_the_same_contract() {
    let embedded = spawn_app().await;
    the_contract(&embedded, "SQLite").await;
    let Some((scaled, _db)) = spawn_app_on_postgres().await else {
        return;
    };
    the_contract(&scaled, "PostgreSQL").await;
}
