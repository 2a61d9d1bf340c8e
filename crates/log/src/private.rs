//! Data files are their owner's alone. The log (`newsroom.db`: authors' names, token digests,
//! pending and rejected developments), the notifier's queue (`notifier.db`: webhook secrets,
//! unsubscribe tokens, addresses), the views and an export hold what nobody else on the machine
//! may read: a directory created for them is 0700 and every file 0600, whatever the umask.
//! SQLite creates a database's `-wal` and `-shm` files with the database file's own mode, so a
//! database file made 0600 before SQLite opens it keeps its companions private too; an existing
//! file (made by an older version, or copied in) is narrowed to 0600 when it is opened.

use std::fs::{DirBuilder, File, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The mode of every data file.
pub const FILE_MODE: u32 = 0o600;
/// The mode of a data directory newsroom creates (one that exists is left as it is: it may be
/// the working directory, or one systemd made with `StateDirectoryMode=0700`).
pub const DIR_MODE: u32 = 0o700;

/// The files SQLite keeps beside a database in WAL mode.
pub fn companions(path: &Path) -> [PathBuf; 2] {
    let with = |suffix: &str| {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    [with("-wal"), with("-shm")]
}

/// Makes `path` ready for SQLite: its directory created (0700) if missing, the file created
/// empty (0600) if missing — SQLite takes an empty file for a new database — and an existing
/// file and its `-wal`/`-shm` narrowed to 0600. On error, what failed is the directory or the
/// file, named by the path returned with it.
pub fn prepare_database_file(path: &Path) -> Result<(), (PathBuf, io::Error)> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(dir)
            .map_err(|e| (dir.to_owned(), e))?;
    }
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(FILE_MODE)
        .open(path)
        .map_err(|e| (path.to_owned(), e))?;
    for file in std::iter::once(path.to_owned()).chain(companions(path)) {
        match std::fs::set_permissions(&file, Permissions::from_mode(FILE_MODE)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err((file, e)),
        }
    }
    Ok(())
}

/// Creates (or empties) a file only its owner may read or write, such as an export of the log.
pub fn create_private_file(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(FILE_MODE)
        .open(path)?;
    // `mode` applies only when the file is created: an existing one is narrowed.
    file.set_permissions(Permissions::from_mode(FILE_MODE))?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_database_file_and_its_new_directory_are_private_and_an_old_file_is_narrowed() {
        let temp = tempfile::tempdir().unwrap();
        let path = temp.path().join("data").join("deeper").join("newsroom.db");
        prepare_database_file(&path).unwrap();
        assert_eq!(mode(&path), FILE_MODE);
        assert_eq!(mode(path.parent().unwrap()), DIR_MODE);
        assert_eq!(mode(path.parent().unwrap().parent().unwrap()), DIR_MODE);

        // SQLite's companions follow the database file's mode.
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
            .unwrap();
        for file in companions(&path) {
            assert_eq!(mode(&file), FILE_MODE, "{}", file.display());
        }

        // Files left world-readable by an older version are narrowed when opened again.
        for file in std::iter::once(path.clone()).chain(companions(&path)) {
            std::fs::set_permissions(&file, Permissions::from_mode(0o644)).unwrap();
        }
        prepare_database_file(&path).unwrap();
        for file in std::iter::once(path.clone()).chain(companions(&path)) {
            assert_eq!(mode(&file), FILE_MODE, "{}", file.display());
        }
        let n: i64 = conn.query_row("SELECT x FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 1, "the data is untouched");
    }

    #[test]
    fn an_export_file_is_private_even_over_an_existing_one() {
        let temp = tempfile::tempdir().unwrap();
        let path = temp.path().join("log.jsonl");
        std::fs::write(&path, "old").unwrap();
        std::fs::set_permissions(&path, Permissions::from_mode(0o644)).unwrap();
        drop(create_private_file(&path).unwrap());
        assert_eq!(mode(&path), FILE_MODE);
        assert_eq!(std::fs::read(&path).unwrap(), b"");
        let fresh = temp.path().join("fresh.jsonl");
        drop(create_private_file(&fresh).unwrap());
        assert_eq!(mode(&fresh), FILE_MODE);
    }
}
