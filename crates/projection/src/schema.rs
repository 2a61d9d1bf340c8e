//! The views' SQLite schema: the files of `migrations/sqlite`, named as their PostgreSQL
//! namesakes in `migrations/postgres`, read once into tables and their indexes. Both ways a
//! table comes to be in `views.db` take its statement from here: a new file
//! ([`create_missing_tables`]) and a rebuild, which creates the same table under a `_next` name
//! ([`create_next`]) and swaps it in ([`swap_in`]).
//!
//! SQLite's views are not migrated step by step as PostgreSQL's are: a change of shape bumps the
//! view's schema version (`ViewName::schema_version`) and the view is rebuilt from the log on the
//! next start, so the files hold the current shape. Only `checkpoints` is a migration proper
//! (the first and only one recorded in `views.db`'s `user_version`); a view's tables that a file
//! lacks are created at open, and tables of an older shape are left to the rebuild their
//! checkpoint's schema version brings on.
//!
//! The files are read by a deliberately small grammar: comments (`--`) between statements, and
//! each statement `CREATE TABLE name …`, `CREATE VIRTUAL TABLE name …` or `CREATE INDEX name ON
//! table …`. Which view a table belongs to, and which indexes a rebuild fills while it loads
//! the rows, are the code's choices, listed here.

use std::sync::LazyLock;

use rusqlite::{params, Connection};
use rusqlite_migration::{Migrations, M};

use crate::rows::{ViewError, ViewName};

/// The files, in the order of their names (those of `migrations/postgres`), the order a new
/// database gets their tables and indexes.
const FILES: [(&str, &str); 9] = [
    (
        "1000_views.sql",
        include_str!("../migrations/sqlite/1000_views.sql"),
    ),
    (
        "1001_timeline_pages.sql",
        include_str!("../migrations/sqlite/1001_timeline_pages.sql"),
    ),
    (
        "1002_versions.sql",
        include_str!("../migrations/sqlite/1002_versions.sql"),
    ),
    (
        "1003_rejected_filings.sql",
        include_str!("../migrations/sqlite/1003_rejected_filings.sql"),
    ),
    (
        "1004_development_ids.sql",
        include_str!("../migrations/sqlite/1004_development_ids.sql"),
    ),
    (
        "1005_front_page_marks.sql",
        include_str!("../migrations/sqlite/1005_front_page_marks.sql"),
    ),
    (
        "1006_claims_ledger_pages.sql",
        include_str!("../migrations/sqlite/1006_claims_ledger_pages.sql"),
    ),
    (
        "1007_search.sql",
        include_str!("../migrations/sqlite/1007_search.sql"),
    ),
    (
        "1008_relations.sql",
        include_str!("../migrations/sqlite/1008_relations.sql"),
    ),
];

/// The table every view shares, created by `views.db`'s one migration.
const CHECKPOINTS: &str = "checkpoints";

/// Each view's tables. A rebuild of a view replaces these together.
fn table_names(view: ViewName) -> &'static [&'static str] {
    match view {
        ViewName::Stories => &[
            "stories",
            "developments",
            "story_versions",
            "development_versions",
            "front_page_marks",
            "search",
            "search_keys",
            "relations",
        ],
        ViewName::Actors => &["actor_entries"],
    }
}

/// The indexes a rebuild creates with its `_next` tables, filled while it loads the rows (small,
/// in the page cache: built afterwards, each would read the whole table back). The others are
/// built once the rows are in, when the tables are swapped in.
const WHILE_LOADING: [&str; 4] = [
    "developments_story",
    "developments_pending",
    "relations_story",
    "relations_other",
];

/// One table of a view, as its file declares it.
#[derive(Debug)]
pub(crate) struct ViewTable {
    pub(crate) name: String,
    /// `TABLE` or `VIRTUAL TABLE` (the full-text index, FTS5).
    kind: &'static str,
    /// What follows the name in its `CREATE` statement.
    columns: String,
    pub(crate) indexes: Vec<ViewIndex>,
}

/// A secondary index of a view's table.
#[derive(Debug)]
pub(crate) struct ViewIndex {
    pub(crate) name: String,
    /// Its columns (and `WHERE` clause), as in `CREATE INDEX … ON table <on>`.
    on: String,
    /// Whether a rebuild creates it with the `_next` table, before the rows (else once the
    /// rows are in, when the table is swapped in).
    pub(crate) while_loading: bool,
}

impl ViewIndex {
    pub(crate) fn create(&self, name: &str, table: &str) -> String {
        format!("CREATE INDEX {name} ON {table} {};", self.on)
    }
}

impl ViewTable {
    pub(crate) fn create(&self, suffix: &str) -> String {
        format!(
            "CREATE {} {}{suffix} {};",
            self.kind, self.name, self.columns
        )
    }
}

/// The files, read.
#[derive(Debug)]
struct Schema {
    /// The `CREATE TABLE checkpoints` statement.
    checkpoints: String,
    stories: Vec<ViewTable>,
    actors: Vec<ViewTable>,
}

static SCHEMA: LazyLock<Schema> = LazyLock::new(|| {
    Schema::read(&FILES).unwrap_or_else(|e| panic!("the views' SQLite schema files: {e}"))
});

impl Schema {
    fn read(files: &[(&str, &str)]) -> Result<Self, String> {
        let mut checkpoints = None;
        let mut tables: Vec<ViewTable> = Vec::new();
        for (file, text) in files {
            for statement in statements(text) {
                let at = |e: String| format!("{file}: {e} in `{statement}`");
                match parse(&statement).map_err(at)? {
                    Statement::Table(table) if table.name == CHECKPOINTS => {
                        checkpoints = Some(statement.clone());
                    }
                    Statement::Table(table) => {
                        if tables.iter().any(|t| t.name == table.name) {
                            return Err(format!("{file}: table {} twice", table.name));
                        }
                        tables.push(table);
                    }
                    Statement::Index { table, index } => tables
                        .iter_mut()
                        .find(|t| t.name == table)
                        .ok_or_else(|| at(format!("an index on {table}, not declared before")))?
                        .indexes
                        .push(index),
                }
            }
        }
        let mut take = |view: ViewName| -> Result<Vec<ViewTable>, String> {
            table_names(view)
                .iter()
                .map(|name| match tables.iter().position(|t| t.name == *name) {
                    Some(i) => Ok(tables.remove(i)),
                    None => Err(format!("no file declares {name}")),
                })
                .collect()
        };
        let schema = Self {
            checkpoints: checkpoints.ok_or("no file declares checkpoints")?,
            stories: take(ViewName::Stories)?,
            actors: take(ViewName::Actors)?,
        };
        if let Some(stray) = tables.first() {
            return Err(format!("{} belongs to no view", stray.name));
        }
        let declared = |name: &&str| {
            schema
                .stories
                .iter()
                .chain(&schema.actors)
                .flat_map(|t| &t.indexes)
                .any(|i| i.name == *name)
        };
        if let Some(missing) = WHILE_LOADING.iter().find(|n| !declared(n)) {
            return Err(format!("no file declares the index {missing}"));
        }
        Ok(schema)
    }
}

enum Statement {
    Table(ViewTable),
    Index { table: String, index: ViewIndex },
}

/// The statements of a file, without its comments.
fn statements(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let code = match line.split_once("--") {
            // The files quote no `--` and no `;`.
            Some((code, _comment)) => code,
            None => line,
        };
        for (i, part) in code.split(';').enumerate() {
            if i > 0 {
                out.push(std::mem::take(&mut current).trim().to_owned());
            }
            current.push_str(part);
        }
        current.push('\n');
    }
    out.push(current.trim().to_owned());
    out.retain(|s| !s.is_empty());
    out
}

/// The first word of `s` (up to white space) and what follows it, trimmed.
fn word(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    let end = s.find(char::is_whitespace).unwrap_or(s.len());
    (&s[..end], s[end..].trim_start())
}

fn name(s: &str) -> Result<(String, &str), String> {
    let (name, rest) = word(s);
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(format!("`{name}` is not a plain name"));
    }
    Ok((name.to_owned(), rest))
}

fn parse(statement: &str) -> Result<Statement, String> {
    let (create, rest) = word(statement);
    if !create.eq_ignore_ascii_case("CREATE") {
        return Err("not a CREATE statement".into());
    }
    let (what, rest) = word(rest);
    let (kind, rest) = match what.to_ascii_uppercase().as_str() {
        "TABLE" => ("TABLE", rest),
        "VIRTUAL" => match word(rest) {
            (t, rest) if t.eq_ignore_ascii_case("TABLE") => ("VIRTUAL TABLE", rest),
            _ => return Err("CREATE VIRTUAL without TABLE".into()),
        },
        "INDEX" => {
            let (index, rest) = name(rest)?;
            let (on, rest) = word(rest);
            if !on.eq_ignore_ascii_case("ON") {
                return Err("an index without ON".into());
            }
            let (table, on) = name(rest)?;
            return Ok(Statement::Index {
                table,
                index: ViewIndex {
                    while_loading: WHILE_LOADING.contains(&index.as_str()),
                    name: index,
                    on: on.to_owned(),
                },
            });
        }
        _ => return Err("neither a table nor an index".into()),
    };
    let (name, columns) = name(rest)?;
    Ok(Statement::Table(ViewTable {
        name,
        kind,
        columns: columns.to_owned(),
        indexes: Vec::new(),
    }))
}

/// The tables of `view`, as the files declare them.
pub(crate) fn tables(view: ViewName) -> &'static [ViewTable] {
    match view {
        ViewName::Stories => &SCHEMA.stories,
        ViewName::Actors => &SCHEMA.actors,
    }
}

/// `views.db`'s migrations: `checkpoints`, the one table whose shape no rebuild replaces.
pub(crate) fn migrations() -> Migrations<'static> {
    let schema: &'static Schema = &SCHEMA;
    Migrations::new(vec![M::up(&schema.checkpoints)])
}

/// Creates the views' tables that a SQLite file lacks, each view at position 0.
pub(crate) fn create_missing_tables(path: &std::path::Path) -> Result<(), ViewError> {
    let mut conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    for view in ViewName::ALL {
        let mut created_all = true;
        for table in tables(view) {
            let exists: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
                [&table.name],
                |r| r.get(0),
            )?;
            if exists {
                created_all = false;
            } else {
                tx.execute_batch(&table.create(""))?;
                for index in &table.indexes {
                    tx.execute_batch(&index.create(&index.name, &table.name))?;
                }
            }
        }
        if created_all {
            // Fresh tables are "at position 0" of the right shape: the projector fills them.
            // (Tables of an older shape keep their checkpoint, whose schema version makes
            // the view rebuild itself.)
            set_checkpoint(&tx, view, 0)?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// Creates an empty `developments_next` table alone: where a rebuild of the `actors` view
/// without the `stories` view keeps the developments it lets go of. Dropped when it ends.
pub(crate) fn create_scratch_developments(tx: &Connection) -> Result<(), ViewError> {
    let table = tables(ViewName::Stories)
        .iter()
        .find(|t| t.name == "developments")
        .expect("the stories view has a developments table");
    tx.execute_batch(&format!(
        "DROP TABLE IF EXISTS developments_next; {}",
        table.create("_next")
    ))?;
    Ok(())
}

/// Creates empty `_next` tables for a rebuild of `view`, with the indexes that are filled along
/// with the rows; [`swap_in`] builds the others once the rows are in.
pub(crate) fn create_next(tx: &Connection, view: ViewName) -> Result<(), ViewError> {
    // Index names are global and the live table's indexes keep theirs until the swap: the
    // indexes created now get a name of their own, which they keep after the swap.
    let generation = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    for table in tables(view) {
        let next = format!("{}_next", table.name);
        tx.execute_batch(&format!(
            "DROP TABLE IF EXISTS {next}; {}",
            table.create("_next")
        ))?;
        for index in table.indexes.iter().filter(|i| i.while_loading) {
            let name = format!("{}_{generation:x}", index.name);
            tx.execute_batch(&index.create(&name, &next))?;
        }
    }
    Ok(())
}

/// Swaps a rebuilt view in: drops the live tables (and their indexes), renames `_next` over
/// them and builds the indexes that were not filled while loading. Runs inside the caller's
/// transaction together with the new checkpoint, so readers see old or new, never a mix.
pub(crate) fn swap_in(tx: &Connection, view: ViewName, position: i64) -> Result<(), ViewError> {
    for table in tables(view) {
        let name = &table.name;
        tx.execute_batch(&format!(
            "DROP TABLE IF EXISTS {name};
             ALTER TABLE {name}_next RENAME TO {name};"
        ))?;
        for index in table.indexes.iter().filter(|i| !i.while_loading) {
            tx.execute_batch(&index.create(&index.name, name))?;
        }
    }
    set_checkpoint(tx, view, position)
}

/// Moves `view`'s checkpoint to `position`, recording the schema version its rows have (a
/// version older than the code's brings on a rebuild).
pub(crate) fn set_checkpoint(
    tx: &Connection,
    view: ViewName,
    position: i64,
) -> Result<(), ViewError> {
    tx.prepare_cached(
        "INSERT INTO checkpoints (view, position, schema_version) VALUES (?1, ?2, ?3)
         ON CONFLICT (view) DO UPDATE SET position = excluded.position,
            schema_version = excluded.schema_version",
    )?
    .execute(params![view.as_str(), position, view.schema_version()])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every object of a database but FTS5's shadow tables' contents, as SQLite keeps it, with
    /// white space folded.
    fn objects(conn: &Connection) -> Vec<(String, String, String)> {
        let mut out: Vec<(String, String, String)> = conn
            .prepare("SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, String>(2)?)))
            .unwrap()
            .map(|o| {
                let (kind, name, sql) = o.unwrap();
                (
                    kind,
                    name,
                    sql.split_whitespace().collect::<Vec<_>>().join(" "),
                )
            })
            .collect();
        out.sort();
        out
    }

    /// The files, run as they are one after another on an empty database, make the same
    /// database as opening a new `views.db` does from what was read of them: nothing of the
    /// files is left out or changed by reading them.
    #[test]
    fn the_files_apply_in_order_to_an_empty_database_as_a_new_views_db_gets_them() {
        migrations()
            .validate()
            .expect("the views' SQLite migrations apply");
        let applied = Connection::open_in_memory().unwrap();
        for (file, text) in FILES {
            applied
                .execute_batch(text)
                .unwrap_or_else(|e| panic!("{file}: {e}"));
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("views.db");
        let mut opened = Connection::open(&path).unwrap();
        migrations().to_latest(&mut opened).unwrap();
        create_missing_tables(&path).unwrap();
        assert_eq!(objects(&opened), objects(&applied));
        assert!(objects(&applied).len() > 30, "{:?}", objects(&applied));
    }

    #[test]
    fn the_files_have_namesakes_and_apply_in_the_order_of_their_names() {
        let texts: Vec<&str> = FILES.iter().map(|(_, text)| *text).collect();
        newsroom_log::migrate::check_files(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")),
            &texts,
        )
        .unwrap();
        // And each file's name in `FILES` is the name of the file its text was read from.
        for (name, text) in FILES {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("migrations/sqlite")
                .join(name);
            assert_eq!(
                std::fs::read_to_string(&path).ok().as_deref(),
                Some(text),
                "{name}"
            );
        }
    }

    #[test]
    fn every_table_of_the_files_belongs_to_one_view_and_every_index_to_its_table() {
        let schema = Schema::read(&FILES).expect("the files read");
        let names = |tables: &[ViewTable]| -> Vec<String> {
            tables.iter().map(|t| t.name.clone()).collect()
        };
        assert_eq!(names(&schema.actors), ["actor_entries"]);
        assert_eq!(names(&schema.stories).len(), 8);
        let indexes: usize = schema
            .stories
            .iter()
            .chain(&schema.actors)
            .map(|t| t.indexes.len())
            .sum();
        assert_eq!(indexes, 19);
    }

    #[test]
    fn a_file_the_grammar_does_not_know_is_refused() {
        for (text, refusal) in [
            ("CREATE TABLE other (v TEXT);", "other belongs to no view"),
            ("CREATE TABLE stories (v TEXT);", "table stories twice"),
            ("CREATE INDEX i ON nowhere (v);", "not declared before"),
            ("CREATE TABLE \"quoted\" (v TEXT);", "plain name"),
            ("INSERT INTO checkpoints VALUES (1);", "not a CREATE"),
            (
                "CREATE TRIGGER t AFTER INSERT ON x BEGIN SELECT 1; END;",
                "neither",
            ),
        ] {
            let mut files = FILES.to_vec();
            files.push(("9999_test.sql", text));
            let e = Schema::read(&files).expect_err(text);
            assert!(e.contains(refusal), "{text}: {e}");
        }
        for (left_out, refusal) in [
            ("1008_relations.sql", "no file declares relations"),
            (
                "1000_views.sql",
                "1001_timeline_pages.sql: an index on developments, not declared before",
            ),
        ] {
            let files: Vec<(&str, &str)> = FILES
                .iter()
                .copied()
                .filter(|(f, _)| *f != left_out)
                .collect();
            let e = Schema::read(&files).expect_err(left_out);
            assert!(e.contains(refusal), "{left_out}: {e}");
        }
    }

    #[test]
    fn a_rebuilds_tables_are_the_files_tables_under_their_next_names() {
        let conn = Connection::open_in_memory().unwrap();
        for view in ViewName::ALL {
            create_next(&conn, view).unwrap();
        }
        for table in tables(ViewName::Stories)
            .iter()
            .chain(tables(ViewName::Actors))
        {
            let sql: String = conn
                .query_row(
                    "SELECT sql FROM sqlite_master WHERE name = ?1",
                    [format!("{}_next", table.name)],
                    |r| r.get(0),
                )
                .unwrap();
            assert!(
                sql.contains(&format!("{}_next {}", table.name, table.columns)),
                "{sql}"
            );
        }
    }
}
