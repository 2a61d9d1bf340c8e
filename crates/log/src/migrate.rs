//! SQLite migrations, numbered as PostgreSQL's.
//!
//! Each crate with a database keeps its schema as files side by side under the same names:
//! `migrations/postgres/NNNN_name.sql` and `migrations/sqlite/NNNN_name.sql`. A step only one
//! backend needs is a file on both sides, the other's holding only a comment that says why
//! nothing is done there. SQLite applies its files in the order of their names
//! (`rusqlite_migration`, which counts them in the database's `user_version`); PostgreSQL
//! records their numbers (`sqlx`). Each crate's tests call [`check_files`]: the two directories
//! hold the same names, and the crate applies its SQLite files, all of them, in that order.
//!
//! The SQLite files were once numbered on their own, without PostgreSQL's one-sided steps, and
//! in places in another order. A database made then counts an earlier list in its
//! `user_version`: a [`Renumbering`] says how many of today's files each such count stands
//! for, and [`migrate`] moves such a database onto today's numbering — in one transaction with
//! the files it still lacks, so a crash leaves it as it was — before the usual migration.

use rusqlite::{Connection, TransactionBehavior};
use rusqlite_migration::Migrations;

/// How a database counted in an earlier numbering of a crate's SQLite files stands today.
#[derive(Debug, Clone, Copy)]
pub struct Renumbering<'a> {
    /// Today's files' SQL, in the order they apply (the same as the crate's `Migrations`).
    pub files: &'a [&'a str],
    /// `applied[v]`: how many of today's files (a prefix of them) a database at `user_version`
    /// `v` of the earlier numbering holds. Shorter than `files`: a database made since is
    /// always at `files.len()` (a migration runs all its steps in one transaction), which no
    /// earlier count reaches.
    pub applied: &'a [usize],
}

/// Brings `conn` to the latest of `migrations`, first moving a database counted in the earlier
/// numbering onto today's (see the module's docs).
pub fn migrate(
    conn: &mut Connection,
    migrations: &Migrations<'_>,
    renumbering: Option<&Renumbering<'_>>,
) -> Result<(), rusqlite_migration::Error> {
    if let Some(renumbering) = renumbering {
        renumber(conn, renumbering)?;
    }
    migrations.to_latest(conn)
}

fn renumber(conn: &mut Connection, renumbering: &Renumbering<'_>) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version: usize = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let applied = match renumbering.applied.get(version) {
        // A new database, or one whose earlier count means the same today: the usual migration
        // takes it from there.
        Some(&applied) if version > 0 && applied != version => applied,
        _ => return Ok(()),
    };
    for sql in &renumbering.files[applied..] {
        tx.execute_batch(sql)?;
    }
    tx.pragma_update(None, "user_version", renumbering.files.len())?;
    tracing::info!(
        earlier = version,
        now = renumbering.files.len(),
        "moved the database onto today's numbering of its migrations"
    );
    tx.commit()
}

/// Whether `crate_dir/migrations/sqlite` and `crate_dir/migrations/postgres` hold the same file
/// names, and `files` is the SQLite files' text in the order of their names. For each crate's
/// tests; the error says what differs.
pub fn check_files(crate_dir: &std::path::Path, files: &[&str]) -> Result<(), String> {
    let names = |backend: &str| -> Result<Vec<std::path::PathBuf>, String> {
        let dir = crate_dir.join("migrations").join(backend);
        let mut paths: Vec<_> = std::fs::read_dir(&dir)
            .and_then(|entries| entries.map(|e| e.map(|e| e.path())).collect())
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        paths.sort();
        Ok(paths)
    };
    let (sqlite, postgres) = (names("sqlite")?, names("postgres")?);
    let file_names = |paths: &[std::path::PathBuf]| -> Vec<String> {
        paths
            .iter()
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect()
    };
    if file_names(&sqlite) != file_names(&postgres) {
        return Err(format!(
            "sqlite {:?} against postgres {:?}",
            file_names(&sqlite),
            file_names(&postgres)
        ));
    }
    if sqlite.len() != files.len() {
        return Err(format!(
            "{} SQLite files, {} applied",
            sqlite.len(),
            files.len()
        ));
    }
    for (path, applied) in sqlite.iter().zip(files) {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        if text != *applied {
            return Err(format!("{} is not applied in its place", path.display()));
        }
    }
    Ok(())
}

/// Whether a database made by each prefix of `earlier` (an earlier numbering's files, in its
/// order) opens onto today's schema and numbering: the same tables, indexes and statements as a
/// new database's, at `user_version` `renumbering.files.len()`. For each crate's tests; the
/// error names the prefix that does not.
pub fn check_renumbering(
    earlier: &[&str],
    migrations: &Migrations<'_>,
    renumbering: &Renumbering<'_>,
) -> Result<(), String> {
    fn schema(conn: &Connection) -> rusqlite::Result<Vec<(String, Option<String>)>> {
        conn.prepare("SELECT name, sql FROM sqlite_master ORDER BY name")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect()
    }
    let open = || Connection::open_in_memory().map_err(|e| e.to_string());
    let mut fresh = open()?;
    migrate(&mut fresh, migrations, Some(renumbering)).map_err(|e| format!("new: {e}"))?;
    let expected = schema(&fresh).map_err(|e| e.to_string())?;
    for made in 0..=earlier.len() {
        let fail = |e: String| format!("made by {made} earlier files: {e}");
        let mut conn = open()?;
        let tx = conn.transaction().map_err(|e| fail(e.to_string()))?;
        for sql in &earlier[..made] {
            tx.execute_batch(sql).map_err(|e| fail(e.to_string()))?;
        }
        tx.pragma_update(None, "user_version", made)
            .and_then(|()| tx.commit())
            .map_err(|e| fail(e.to_string()))?;
        migrate(&mut conn, migrations, Some(renumbering)).map_err(|e| fail(e.to_string()))?;
        if schema(&conn).map_err(|e| fail(e.to_string()))? != expected {
            return Err(fail("a schema other than a new database's".into()));
        }
        let version: usize = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| fail(e.to_string()))?;
        if version != renumbering.files.len() {
            return Err(fail(format!("at user_version {version}")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite_migration::M;

    const FILES: [&str; 3] = [
        "CREATE TABLE a (x);",
        "-- nothing on this backend",
        "CREATE TABLE b (x); CREATE TABLE c (x);",
    ];

    fn tables(conn: &Connection) -> Vec<String> {
        conn.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    fn version(conn: &Connection) -> usize {
        conn.query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap()
    }

    /// An earlier numbering with two files, `a` and then `b` and `c` together; today a
    /// comment-only file sits between them.
    const RENUMBERING: Renumbering<'static> = Renumbering {
        files: &FILES,
        applied: &[0, 1, 3],
    };

    fn today() -> Migrations<'static> {
        Migrations::new(FILES.iter().map(|sql| M::up(sql)).collect())
    }

    #[test]
    fn files_without_namesakes_or_out_of_order_are_told() {
        let dir = tempfile::tempdir().unwrap();
        for backend in ["sqlite", "postgres"] {
            std::fs::create_dir_all(dir.path().join("migrations").join(backend)).unwrap();
        }
        let write = |path: &str, text: &str| {
            std::fs::write(dir.path().join("migrations").join(path), text).unwrap();
        };
        write("sqlite/0001_a.sql", "A");
        write("sqlite/0002_b.sql", "B");
        write("postgres/0001_a.sql", "a");
        let e = check_files(dir.path(), &["A", "B"]).expect_err("no postgres 0002_b");
        assert!(e.contains("0002_b.sql"), "{e}");
        write("postgres/0002_b.sql", "b");
        check_files(dir.path(), &["A", "B"]).unwrap();
        let e = check_files(dir.path(), &["B", "A"]).expect_err("out of order");
        assert!(e.contains("0001_a.sql is not applied in its place"), "{e}");
        let e = check_files(dir.path(), &["A"]).expect_err("one left out");
        assert!(e.contains("2 SQLite files, 1 applied"), "{e}");
    }

    #[test]
    fn a_database_of_the_earlier_numbering_is_moved_onto_today_s() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE a (x); CREATE TABLE b (x); CREATE TABLE c (x);")
            .unwrap();
        conn.pragma_update(None, "user_version", 2).unwrap();
        migrate(&mut conn, &today(), Some(&RENUMBERING)).unwrap();
        assert_eq!(version(&conn), 3);
        assert_eq!(tables(&conn), ["a", "b", "c"]);
        // Opened again, it is today's and stays as it is.
        migrate(&mut conn, &today(), Some(&RENUMBERING)).unwrap();
        assert_eq!(version(&conn), 3);
    }

    #[test]
    fn every_prefix_of_an_earlier_numbering_is_checked() {
        let earlier = [
            "CREATE TABLE a (x);",
            "CREATE TABLE b (x); CREATE TABLE c (x);",
        ];
        check_renumbering(&earlier, &today(), &RENUMBERING).unwrap();
        // Told that the earlier second file meant today's second only:
        let wrong = Renumbering {
            files: &FILES,
            applied: &[0, 1, 2],
        };
        let e = check_renumbering(&earlier, &today(), &wrong).expect_err("a wrong count");
        assert!(e.starts_with("made by 2 earlier files"), "{e}");
    }

    #[test]
    fn a_count_that_means_the_same_today_is_left_to_the_usual_migration() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE a (x);").unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        migrate(&mut conn, &today(), Some(&RENUMBERING)).unwrap();
        assert_eq!(version(&conn), 3);
        assert_eq!(tables(&conn), ["a", "b", "c"]);
    }

    #[test]
    fn a_new_database_gets_today_s_files() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn, &today(), Some(&RENUMBERING)).unwrap();
        assert_eq!(version(&conn), 3);
        assert_eq!(tables(&conn), ["a", "b", "c"]);
    }

    #[test]
    fn a_renumbering_that_fails_leaves_the_database_as_it_was() {
        let mut conn = Connection::open_in_memory().unwrap();
        // Counted 2 in the earlier numbering (today's first file), yet `c` is there: today's
        // last file, which the move applies, cannot.
        conn.execute_batch("CREATE TABLE a (x); CREATE TABLE c (x);")
            .unwrap();
        conn.pragma_update(None, "user_version", 2).unwrap();
        let renumbering = Renumbering {
            files: &FILES,
            applied: &[0, 1, 1],
        };
        assert!(migrate(&mut conn, &today(), Some(&renumbering)).is_err());
        assert_eq!(version(&conn), 2);
        assert_eq!(tables(&conn), ["a", "c"]);
    }
}
