//! Schema parity: the same newsroom set up fresh on SQLite (embedded) and on PostgreSQL
//! (scale-out) holds the same tables with the same columns. The two backends' schemas are
//! written separately (SQLite's in Rust, PostgreSQL's as `.sql` migrations), so a column added
//! to one and forgotten in the other shows here, not in production. What differs on purpose is
//! listed in [`DIFFERENT_ON_PURPOSE`], each with its reason.

use std::collections::{BTreeMap, BTreeSet};

use newsroom_tests::*;
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
