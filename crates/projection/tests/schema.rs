//! The shape of `views.db`, object by object: what a new file holds, what a rebuild leaves, and
//! that a file made before opens as it is. [`BEFORE`] was read from files that the code made
//! before the views' SQLite statements moved from Rust strings into `migrations/sqlite`, so a
//! statement lost or changed in the move, or since, shows here (a change of shape is meant to
//! come with a new schema version, `ViewName::schema_version`, and a new `BEFORE`).

use newsroom_log::{EventLog, SqliteOptions, SqliteStore, Synchronous};
use newsroom_projection::{rebuild, rebuild_outdated, ViewName, ViewStore};
use rusqlite::Connection;

/// Every object of `views.db` (but FTS5's own shadow tables of `search`) as `type name ON
/// table` and its statement, white space folded, as the code made them at schema versions 14
/// (`stories`) and 4 (`actors`).
const BEFORE: [(&str, &str); 29] = [
    (
        "index actor_entries_newest ON actor_entries",
        "CREATE INDEX actor_entries_newest ON actor_entries (actor_key, occurred_at DESC, \
         position DESC)",
    ),
    (
        "index development_versions_moved ON development_versions",
        "CREATE INDEX development_versions_moved ON development_versions (story_id, until) \
         WHERE moved = 1",
    ),
    (
        "index development_versions_of ON development_versions",
        "CREATE INDEX development_versions_of ON development_versions (position, until)",
    ),
    (
        "index developments_answers ON developments",
        "CREATE INDEX developments_answers ON developments (story_id, answers, position) \
         WHERE answers IS NOT NULL",
    ),
    (
        "index developments_claims ON developments",
        "CREATE INDEX developments_claims ON developments (story_id, position) WHERE claim = \
         1 AND state IN ('published', 'retracted')",
    ),
    (
        "index developments_id ON developments",
        "CREATE INDEX developments_id ON developments (story_id, id)",
    ),
    (
        "index developments_pending ON developments",
        "CREATE INDEX developments_pending ON developments (story_id) WHERE state = \
         'pending_review'",
    ),
    (
        "index developments_published ON developments",
        "CREATE INDEX developments_published ON developments (story_id, published_at) WHERE \
         state = 'published'",
    ),
    (
        "index developments_rejected ON developments",
        "CREATE INDEX developments_rejected ON developments (filed_by, position) WHERE state \
         = 'rejected'",
    ),
    (
        "index developments_sides ON developments",
        "CREATE INDEX developments_sides ON developments (story_id, answers, stance, \
         position) WHERE answers IS NOT NULL",
    ),
    (
        "index developments_story ON developments",
        "CREATE INDEX developments_story ON developments (story_id)",
    ),
    (
        "index developments_timeline ON developments",
        "CREATE INDEX developments_timeline ON developments (story_id, occurred_at, position) \
         WHERE state IN ('published', 'retracted')",
    ),
    (
        "index front_page_marks_high ON front_page_marks",
        "CREATE INDEX front_page_marks_high ON front_page_marks (high, position)",
    ),
    (
        "index front_page_marks_low ON front_page_marks",
        "CREATE INDEX front_page_marks_low ON front_page_marks (low)",
    ),
    (
        "index relations_other ON relations",
        "CREATE INDEX relations_other ON relations (other_id, position)",
    ),
    (
        "index relations_story ON relations",
        "CREATE INDEX relations_story ON relations (story_id, position)",
    ),
    (
        "index stories_front ON stories",
        "CREATE INDEX stories_front ON stories (sort_key DESC, position DESC)",
    ),
    (
        "index story_versions_recorded ON story_versions",
        "CREATE INDEX story_versions_recorded ON story_versions (recorded_at)",
    ),
    (
        "index story_versions_story ON story_versions",
        "CREATE INDEX story_versions_story ON story_versions (story_id, recorded_at, \
         position)",
    ),
    (
        "table actor_entries ON actor_entries",
        "CREATE TABLE actor_entries (position INTEGER NOT NULL, actor_key TEXT NOT NULL, \
         occurred_at TEXT NOT NULL, name TEXT NOT NULL, PRIMARY KEY (position, actor_key)) \
         WITHOUT ROWID",
    ),
    (
        "table checkpoints ON checkpoints",
        "CREATE TABLE checkpoints (view TEXT PRIMARY KEY, position INTEGER NOT NULL, \
         schema_version INTEGER NOT NULL)",
    ),
    (
        "table development_versions ON development_versions",
        "CREATE TABLE development_versions (until INTEGER PRIMARY KEY, position INTEGER NOT \
         NULL, story_id TEXT NOT NULL, moved INTEGER NOT NULL, doc TEXT NOT NULL)",
    ),
    (
        "table developments ON developments",
        "CREATE TABLE developments (position INTEGER PRIMARY KEY, story_id TEXT NOT NULL, id \
         TEXT NOT NULL, state TEXT NOT NULL, filed_by TEXT, occurred_at TEXT NOT NULL, \
         published_at TEXT, claim INTEGER NOT NULL, answers TEXT, stance TEXT, doc TEXT NOT \
         NULL)",
    ),
    (
        "table front_page_marks ON front_page_marks",
        "CREATE TABLE front_page_marks (position INTEGER PRIMARY KEY, high TEXT NOT NULL, low \
         TEXT NOT NULL, stories TEXT NOT NULL, cut INTEGER NOT NULL)",
    ),
    (
        "table relations ON relations",
        "CREATE TABLE relations (story_id TEXT NOT NULL, other_id TEXT NOT NULL, relation \
         TEXT NOT NULL, position INTEGER NOT NULL, PRIMARY KEY (story_id, other_id)) WITHOUT \
         ROWID",
    ),
    (
        "table search ON search",
        "CREATE VIRTUAL TABLE search USING fts5(headline, body, names, filters, tokenize = \
         'unicode61 remove_diacritics 2', content = '', contentless_delete = 1)",
    ),
    (
        "table search_keys ON search_keys",
        "CREATE TABLE search_keys (rowid INTEGER PRIMARY KEY, story TEXT NOT NULL, \
         occurred_at TEXT)",
    ),
    (
        "table stories ON stories",
        "CREATE TABLE stories (id TEXT PRIMARY KEY, slug TEXT NOT NULL UNIQUE, headline TEXT \
         NOT NULL, position INTEGER NOT NULL, sort_key TEXT NOT NULL, review_required INTEGER \
         NOT NULL, entry TEXT NOT NULL, head TEXT NOT NULL)",
    ),
    (
        "table story_versions ON story_versions",
        "CREATE TABLE story_versions (position INTEGER PRIMARY KEY, story_id TEXT NOT NULL, \
         recorded_at TEXT NOT NULL, occurred_until TEXT NOT NULL, sort_key TEXT NOT NULL, \
         entry TEXT NOT NULL)",
    ),
];
/// FTS5 keeps the full-text index in tables of its own, made from `search`'s statement.
const SHADOW: [&str; 4] = [
    "search_config",
    "search_data",
    "search_docsize",
    "search_idx",
];

/// Every object of a views database, as in [`BEFORE`]: the statement's white space folded, and
/// what a rebuild changes in the names dropped (the quotes SQLite adds when it renames a table,
/// and the `_<hex>` of the indexes filled while loading).
fn schema_of(path: &std::path::Path) -> Vec<(String, String)> {
    let conn = Connection::open(path).unwrap();
    let mut objects: Vec<(String, String)> = conn
        .prepare("SELECT type, name, tbl_name, sql FROM sqlite_master WHERE sql IS NOT NULL")
        .unwrap()
        .query_map([], |r| {
            Ok((
                format!(
                    "{} {} ON {}",
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?
                ),
                r.get::<_, String>(3)?,
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .filter(|(object, _)| !SHADOW.iter().any(|s| object.ends_with(&format!(" ON {s}"))))
        .map(|(object, sql)| (without_generation(&object), normalise(&sql)))
        .collect();
    objects.sort();
    objects
}

fn normalise(sql: &str) -> String {
    let folded = sql
        .replace('"', "")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace("( ", "(")
        .replace(" )", ")");
    without_generation(&folded)
}

/// `name_18f3a9c2e4b5d601` as `name`.
fn without_generation(text: &str) -> String {
    text.split(' ')
        .map(|word| match word.rsplit_once('_') {
            Some((name, generation))
                if generation.len() >= 8 && generation.chars().all(|c| c.is_ascii_hexdigit()) =>
            {
                name
            }
            _ => word,
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn before() -> Vec<(String, String)> {
    BEFORE
        .iter()
        .map(|(object, sql)| (object.to_string(), sql.to_string()))
        .collect()
}

fn empty_log(dir: &std::path::Path) -> EventLog {
    SqliteStore::open(
        &dir.join("log.db"),
        SqliteOptions {
            synchronous: Synchronous::Normal,
            ..Default::default()
        },
    )
    .unwrap()
    .into()
}

#[test]
fn a_new_views_db_holds_the_tables_and_indexes_it_held_before() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("views.db");
    ViewStore::open(&path).unwrap();
    assert_eq!(schema_of(&path), before());
}

#[tokio::test]
async fn a_rebuild_leaves_the_tables_and_indexes_a_new_views_db_holds() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("views.db");
    let views = ViewStore::open(&path).unwrap();
    let log = empty_log(dir.path());
    rebuild(&log, &views, &[], None).await.unwrap();
    assert_eq!(schema_of(&path), before());
    // Rebuilt again, over tables a rebuild made.
    rebuild(&log, &views, &[ViewName::Actors], None)
        .await
        .unwrap();
    rebuild(&log, &views, &[ViewName::Stories], None)
        .await
        .unwrap();
    assert_eq!(schema_of(&path), before());
}

/// A `views.db` made before (here: made by [`BEFORE`]'s statements, its indexes as a rebuild
/// names them, at `user_version` 1 as its one migration left it) opens as it is: nothing is
/// created, dropped or rebuilt, and its checkpoints stay where they were.
#[tokio::test]
async fn a_views_db_made_before_opens_as_it_is_without_a_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("views.db");
    {
        let conn = Connection::open(&path).unwrap();
        let rebuilt = [
            "developments_story",
            "developments_pending",
            "relations_story",
        ];
        let (tables, indexes): (Vec<_>, Vec<_>) =
            BEFORE.iter().partition(|(o, _)| o.starts_with("table"));
        for (object, sql) in tables.iter().chain(&indexes) {
            let sql = match rebuilt.iter().find(|i| object.contains(&format!(" {i} "))) {
                Some(index) => sql.replacen(index, &format!("{index}_18f3a9c2e4b5d601"), 1),
                None => sql.to_string(),
            };
            conn.execute_batch(&sql).unwrap();
        }
        conn.execute_batch(&format!(
            "PRAGMA user_version = 1;
             INSERT INTO checkpoints VALUES ('stories', 0, {}), ('actors', 0, {});",
            ViewName::Stories.schema_version(),
            ViewName::Actors.schema_version()
        ))
        .unwrap();
    }
    let raw = |path: &std::path::Path| -> Vec<(String, String, i64)> {
        let conn = Connection::open(path).unwrap();
        let user_version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        let mut rows: Vec<(String, String, i64)> = conn
            .prepare("SELECT name, sql, ?1 FROM sqlite_master WHERE sql IS NOT NULL")
            .unwrap()
            .query_map([user_version], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .chain(
                conn.prepare("SELECT view, position, schema_version FROM checkpoints")
                    .unwrap()
                    .query_map([], |r| {
                        Ok((r.get(0)?, r.get::<_, i64>(1)?.to_string(), r.get(2)?))
                    })
                    .unwrap()
                    .map(Result::unwrap),
            )
            .collect();
        rows.sort();
        rows
    };
    let made = raw(&path);
    assert_eq!(
        schema_of(&path),
        before(),
        "the file is as the code made it"
    );
    let views = ViewStore::open(&path).unwrap();
    assert_eq!(raw(&path), made, "opening it changed nothing");
    let log = empty_log(dir.path());
    assert!(
        rebuild_outdated(&log, &views).await.unwrap().is_none(),
        "no view is rebuilt"
    );
    assert_eq!(raw(&path), made);
}
