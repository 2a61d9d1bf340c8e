//! One way to run the same SQL on SQLite or PostgreSQL, for state that lives in either beside
//! the log (the notifier's queue; tokens, desk sessions and drafts through
//! [`EventLog::with_sql`](crate::EventLog::with_sql)): a closure gets a [`Sql`] and runs
//! statements through it, in rusqlite's manner (`statement(..)?.execute(args![..])`,
//! `query_row`, `query_map`), on whichever database the store was opened on. Its statements are
//! written once, in the SQL both databases speak: `?N` placeholders (rewritten to `$N` for
//! PostgreSQL), `ON CONFLICT`, `RETURNING`.
//!
//! [`SqlDb`] runs closures off the async runtime, as [`SqliteDb`] does. On PostgreSQL a write
//! transaction first takes one advisory lock, so that writes of every process are applied one
//! after another as on SQLite's single writer: sequences (`seq` columns) are then assigned in
//! commit order, and a reader following "seq > last" never skips a row that commits late.
//! Statements run through sqlx on the runtime's handle (`Handle::block_on`, from the blocking
//! thread the closure runs on).

use std::cell::RefCell;
use std::time::Duration;

use rusqlite::types::ValueRef;
use rusqlite::Connection;
use sqlx::postgres::PgArguments;
use sqlx::query::Query;
use sqlx::{Column, PgConnection, PgPool, Postgres, Row as _, TypeInfo};
use tokio::runtime::Handle;

use crate::db::{DbError, SqliteDb};

/// A stored value, as read.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

/// A statement's argument: a value of a known type (PostgreSQL needs the type of a NULL too).
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    Int(Option<i64>),
    Real(Option<f64>),
    Text(Option<String>),
    Blob(Option<Vec<u8>>),
    /// An array (PostgreSQL's `int8[]`), for statements that take a whole batch at once
    /// (`unnest`, `= ANY`). SQLite has no arrays: it is given the JSON text of the array.
    Ints(Vec<Option<i64>>),
    /// An array of text (PostgreSQL's `text[]`); see [`Param::Ints`].
    Texts(Vec<Option<String>>),
}

/// A batch of integers as one argument (`?1::int8[]` on PostgreSQL).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ints(pub Vec<Option<i64>>);

/// A batch of texts as one argument (`?1::text[]` on PostgreSQL).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Texts(pub Vec<Option<String>>);

impl Arg for Ints {
    fn param(&self) -> Param {
        Param::Ints(self.0.clone())
    }
}
impl Arg for Texts {
    fn param(&self) -> Param {
        Param::Texts(self.0.clone())
    }
}
impl<T: Into<i64> + Copy> FromIterator<T> for Ints {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        Ints(iter.into_iter().map(|v| Some(v.into())).collect())
    }
}
impl<S: Into<String>> FromIterator<S> for Texts {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Self {
        Texts(iter.into_iter().map(|v| Some(v.into())).collect())
    }
}

/// What can be passed as an argument.
pub trait Arg {
    fn param(&self) -> Param;
}

/// Types whose NULL can be passed (as `Option<T>`).
pub trait Typed {
    fn null() -> Param;
}

macro_rules! int_arg {
    ($($t:ty),*) => {$(
        impl Arg for $t {
            fn param(&self) -> Param {
                Param::Int(Some(i64::try_from(*self).unwrap_or(i64::MAX)))
            }
        }
        impl Typed for $t {
            fn null() -> Param {
                Param::Int(None)
            }
        }
    )*};
}
int_arg!(i64, i32, u32, u16, u8, usize);

impl Arg for bool {
    fn param(&self) -> Param {
        Param::Int(Some(i64::from(*self)))
    }
}
impl Typed for bool {
    fn null() -> Param {
        Param::Int(None)
    }
}
impl Arg for f64 {
    fn param(&self) -> Param {
        Param::Real(Some(*self))
    }
}
impl Typed for f64 {
    fn null() -> Param {
        Param::Real(None)
    }
}
impl Arg for str {
    fn param(&self) -> Param {
        Param::Text(Some(self.to_owned()))
    }
}
impl Arg for String {
    fn param(&self) -> Param {
        Param::Text(Some(self.clone()))
    }
}
impl Typed for String {
    fn null() -> Param {
        Param::Text(None)
    }
}
impl Typed for &str {
    fn null() -> Param {
        Param::Text(None)
    }
}
impl Arg for [u8] {
    fn param(&self) -> Param {
        Param::Blob(Some(self.to_vec()))
    }
}
impl Arg for Vec<u8> {
    fn param(&self) -> Param {
        Param::Blob(Some(self.clone()))
    }
}
impl Typed for Vec<u8> {
    fn null() -> Param {
        Param::Blob(None)
    }
}
impl<T: Arg + ?Sized> Arg for &T {
    fn param(&self) -> Param {
        (**self).param()
    }
}
impl<T: Arg + Typed> Arg for Option<T> {
    fn param(&self) -> Param {
        match self {
            Some(v) => v.param(),
            None => T::null(),
        }
    }
}

/// The arguments of a statement: `args![a, b, c]`.
#[macro_export]
macro_rules! args {
    () => { &[] as &[&dyn $crate::sql::Arg] };
    ($($a:expr),+ $(,)?) => { &[$(&$a as &dyn $crate::sql::Arg),+] as &[&dyn $crate::sql::Arg] };
}

/// A value read from a row, converted to `Self`.
pub trait FromValue: Sized {
    fn from_value(v: Value) -> Result<Self, DbError>;
}

fn mismatch(want: &str, got: &Value) -> DbError {
    DbError::Value(format!("expected {want}, found {got:?}"))
}

macro_rules! int_value {
    ($($t:ty),*) => {$(
        impl FromValue for $t {
            fn from_value(v: Value) -> Result<Self, DbError> {
                match v {
                    Value::Int(i) => <$t>::try_from(i)
                        .map_err(|_| DbError::Value(format!("{i} is out of range"))),
                    other => Err(mismatch("an integer", &other)),
                }
            }
        }
    )*};
}
int_value!(i64, i32, u32, u16, u8, usize);

impl FromValue for bool {
    fn from_value(v: Value) -> Result<Self, DbError> {
        match v {
            Value::Int(i) => Ok(i != 0),
            other => Err(mismatch("a boolean", &other)),
        }
    }
}
impl FromValue for f64 {
    fn from_value(v: Value) -> Result<Self, DbError> {
        match v {
            Value::Real(r) => Ok(r),
            Value::Int(i) => Ok(i as f64),
            other => Err(mismatch("a number", &other)),
        }
    }
}
impl FromValue for String {
    fn from_value(v: Value) -> Result<Self, DbError> {
        match v {
            Value::Text(s) => Ok(s),
            other => Err(mismatch("text", &other)),
        }
    }
}
impl FromValue for Vec<u8> {
    fn from_value(v: Value) -> Result<Self, DbError> {
        match v {
            Value::Blob(b) => Ok(b),
            Value::Text(s) => Ok(s.into_bytes()),
            other => Err(mismatch("bytes", &other)),
        }
    }
}
impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: Value) -> Result<Self, DbError> {
        match v {
            Value::Null => Ok(None),
            v => T::from_value(v).map(Some),
        }
    }
}

/// One row of a result.
#[derive(Debug, Clone)]
pub struct Row(Vec<Value>);

impl Row {
    /// Column `i`, as `T`.
    pub fn get<T: FromValue>(&self, i: usize) -> Result<T, DbError> {
        let v = self
            .0
            .get(i)
            .cloned()
            .ok_or_else(|| DbError::Value(format!("no column {i}")))?;
        T::from_value(v)
    }
}

/// A connection or transaction of either database.
pub trait Sql {
    /// Runs a statement; returns how many rows it changed.
    fn run(&self, sql: &str, args: &[&dyn Arg]) -> Result<usize, DbError>;
    /// Runs a query; returns its rows.
    fn rows(&self, sql: &str, args: &[&dyn Arg]) -> Result<Vec<Row>, DbError>;
    /// Whether this is PostgreSQL, where a batch is written by one statement over arrays
    /// (`unnest`) instead of one statement per row.
    fn is_postgres(&self) -> bool {
        false
    }
}

impl<'a> dyn Sql + 'a {
    /// A statement to run, by its text (both databases cache prepared statements by their
    /// text, so nothing is prepared here).
    pub fn statement<'s>(&'s self, sql: &'s str) -> Result<Stmt<'s, 'a>, DbError> {
        Ok(Stmt { db: self, sql })
    }

    /// Runs a statement; returns how many rows it changed.
    pub fn execute(&self, sql: &str, args: &[&dyn Arg]) -> Result<usize, DbError> {
        self.run(sql, args)
    }

    /// The first row of a query, mapped by `f`; [`DbError::NoRows`] if there is none.
    pub fn query_row<T>(
        &self,
        sql: &str,
        args: &[&dyn Arg],
        f: impl FnOnce(&Row) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        match self.rows(sql, args)?.first() {
            Some(row) => f(row),
            None => Err(DbError::NoRows),
        }
    }
}

/// A statement of a [`Sql`].
#[allow(missing_debug_implementations)]
pub struct Stmt<'s, 'a> {
    db: &'s (dyn Sql + 'a),
    sql: &'s str,
}

impl Stmt<'_, '_> {
    pub fn execute(&mut self, args: &[&dyn Arg]) -> Result<usize, DbError> {
        self.db.run(self.sql, args)
    }

    pub fn query_row<T>(
        &mut self,
        args: &[&dyn Arg],
        f: impl FnOnce(&Row) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        self.db.query_row(self.sql, args, f)
    }

    /// Every row, mapped by `f`.
    pub fn query_map<T>(
        &mut self,
        args: &[&dyn Arg],
        mut f: impl FnMut(&Row) -> Result<T, DbError>,
    ) -> Result<std::vec::IntoIter<Result<T, DbError>>, DbError> {
        let rows = self.db.rows(self.sql, args)?;
        Ok(rows.iter().map(&mut f).collect::<Vec<_>>().into_iter())
    }
}

/// `.optional()` of a single-row answer: no row is `None`.
pub trait OptionalRow<T> {
    fn optional(self) -> Result<Option<T>, DbError>;
}

impl<T> OptionalRow<T> for Result<T, DbError> {
    fn optional(self) -> Result<Option<T>, DbError> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(DbError::NoRows) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl rusqlite::ToSql for Param {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, Value as V};
        Ok(ToSqlOutput::Owned(match self {
            Param::Int(Some(i)) => V::Integer(*i),
            Param::Real(Some(r)) => V::Real(*r),
            Param::Text(Some(s)) => V::Text(s.clone()),
            Param::Blob(Some(b)) => V::Blob(b.clone()),
            Param::Ints(v) => V::Text(serde_json::to_string(v).unwrap_or_default()),
            Param::Texts(v) => V::Text(serde_json::to_string(v).unwrap_or_default()),
            _ => V::Null,
        }))
    }
}

/// A SQLite connection (or transaction) as a [`Sql`].
#[allow(missing_debug_implementations)]
pub struct SqliteSql<'c>(pub &'c Connection);

impl Sql for SqliteSql<'_> {
    fn run(&self, sql: &str, args: &[&dyn Arg]) -> Result<usize, DbError> {
        let params: Vec<Param> = args.iter().map(|a| a.param()).collect();
        Ok(self
            .0
            .prepare_cached(sql)?
            .execute(rusqlite::params_from_iter(params))?)
    }

    fn rows(&self, sql: &str, args: &[&dyn Arg]) -> Result<Vec<Row>, DbError> {
        let params: Vec<Param> = args.iter().map(|a| a.param()).collect();
        let mut stmt = self.0.prepare_cached(sql)?;
        let columns = stmt.column_count();
        let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let mut values = Vec::with_capacity(columns);
            for i in 0..columns {
                values.push(match row.get_ref(i)? {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(n) => Value::Int(n),
                    ValueRef::Real(r) => Value::Real(r),
                    ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Blob(b) => Value::Blob(b.to_vec()),
                });
            }
            out.push(Row(values));
        }
        Ok(out)
    }
}

/// `?N` placeholders as PostgreSQL's `$N` (outside quoted text).
pub fn postgres_sql(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quoted = false;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                quoted = !quoted;
                out.push(c);
            }
            '?' if !quoted && chars.peek().is_some_and(char::is_ascii_digit) => out.push('$'),
            _ => out.push(c),
        }
    }
    out
}

/// A PostgreSQL connection (or transaction) as a [`Sql`], for a closure running on a blocking
/// thread of the runtime `rt`.
#[allow(missing_debug_implementations)]
pub struct PgSql<'c> {
    conn: RefCell<&'c mut PgConnection>,
    rt: Handle,
}

impl<'c> PgSql<'c> {
    pub fn new(conn: &'c mut PgConnection, rt: Handle) -> Self {
        Self {
            conn: RefCell::new(conn),
            rt,
        }
    }
}

fn bind<'q>(
    mut query: Query<'q, Postgres, PgArguments>,
    args: &[&dyn Arg],
) -> Query<'q, Postgres, PgArguments> {
    for arg in args {
        query = match arg.param() {
            Param::Int(v) => query.bind(v),
            Param::Real(v) => query.bind(v),
            Param::Text(v) => query.bind(v),
            Param::Blob(v) => query.bind(v),
            Param::Ints(v) => query.bind(v),
            Param::Texts(v) => query.bind(v),
        };
    }
    query
}

fn pg_value(row: &sqlx::postgres::PgRow, i: usize) -> Result<Value, DbError> {
    let column = &row.columns()[i];
    let kind = column.type_info().name().to_owned();
    let v = match kind.as_str() {
        "INT8" => row.try_get::<Option<i64>, _>(i)?.map(Value::Int),
        "INT4" => row
            .try_get::<Option<i32>, _>(i)?
            .map(|n| Value::Int(n.into())),
        "INT2" => row
            .try_get::<Option<i16>, _>(i)?
            .map(|n| Value::Int(n.into())),
        "BOOL" => row
            .try_get::<Option<bool>, _>(i)?
            .map(|b| Value::Int(b.into())),
        "FLOAT8" => row.try_get::<Option<f64>, _>(i)?.map(Value::Real),
        "FLOAT4" => row
            .try_get::<Option<f32>, _>(i)?
            .map(|r| Value::Real(r.into())),
        "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" => {
            row.try_get::<Option<String>, _>(i)?.map(Value::Text)
        }
        "BYTEA" => row.try_get::<Option<Vec<u8>>, _>(i)?.map(Value::Blob),
        other => {
            return Err(DbError::Value(format!(
                "column {} is of a type this store does not read: {other}",
                column.name()
            )))
        }
    };
    Ok(v.unwrap_or(Value::Null))
}

impl Sql for PgSql<'_> {
    fn is_postgres(&self) -> bool {
        true
    }

    fn run(&self, sql: &str, args: &[&dyn Arg]) -> Result<usize, DbError> {
        let sql = postgres_sql(sql);
        let mut conn = self.conn.borrow_mut();
        let done = self
            .rt
            .block_on(bind(sqlx::query(&sql), args).execute(&mut **conn))?;
        Ok(done.rows_affected() as usize)
    }

    fn rows(&self, sql: &str, args: &[&dyn Arg]) -> Result<Vec<Row>, DbError> {
        let sql = postgres_sql(sql);
        let mut conn = self.conn.borrow_mut();
        let rows = self
            .rt
            .block_on(bind(sqlx::query(&sql), args).fetch_all(&mut **conn))?;
        rows.iter()
            .map(|row| {
                (0..row.columns().len())
                    .map(|i| pg_value(row, i))
                    .collect::<Result<Vec<_>, _>>()
                    .map(Row)
            })
            .collect()
    }
}

/// An advisory lock a PostgreSQL write transaction takes first, held until it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lock {
    /// Transactions holding it take turns.
    Exclusive(i64),
    /// Transactions holding it run side by side, and wait only for one holding it exclusively.
    Shared(i64),
}

/// A database that closures of [`Sql`] run on: a SQLite file (one writer, pooled readers) or
/// PostgreSQL, where a write transaction first takes the advisory lock `lock` (unless it is
/// given its own locks, [`SqlDb::write_locked`]).
#[derive(Clone, Debug)]
pub enum SqlDb {
    Sqlite(SqliteDb),
    Postgres { pool: PgPool, lock: i64 },
}

impl SqlDb {
    /// Runs `f` on a read connection, off the async runtime.
    pub async fn read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnOnce(&dyn Sql) -> Result<T, E> + Send + 'static,
    {
        match self {
            SqlDb::Sqlite(db) => db.read(move |c| f(&SqliteSql(c))).await,
            SqlDb::Postgres { pool, .. } => {
                let (pool, rt) = (pool.clone(), Handle::current());
                tokio::task::spawn_blocking(move || {
                    let mut conn = rt.block_on(pool.acquire()).map_err(DbError::from)?;
                    f(&PgSql::new(&mut conn, rt.clone()))
                })
                .await
                .map_err(|e| DbError::Task(e.to_string()))?
            }
        }
    }

    /// Runs `f` in a write transaction; commits if it succeeds. `derived`: state derived from
    /// the log, whose commit need not wait for the disk (see [`SqliteDb::write_derived`]; on
    /// PostgreSQL `synchronous_commit = off` for the transaction).
    pub async fn write<T, E, F>(&self, derived: bool, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnOnce(&dyn Sql) -> Result<T, E> + Send + 'static,
    {
        let locks = match self {
            SqlDb::Postgres { lock, .. } => vec![Lock::Exclusive(*lock)],
            SqlDb::Sqlite(_) => Vec::new(),
        };
        self.write_locked(locks, derived, f).await
    }

    /// Like [`Self::write`], but on PostgreSQL the transaction takes `locks` (in the order
    /// given; none at all if empty) instead of the store's one lock. SQLite has one writer
    /// anyway.
    pub async fn write_locked<T, E, F>(&self, locks: Vec<Lock>, derived: bool, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnOnce(&dyn Sql) -> Result<T, E> + Send + 'static,
    {
        match self {
            SqlDb::Sqlite(db) if derived => db.write_derived(move |tx| f(&SqliteSql(tx))).await,
            SqlDb::Sqlite(db) => db.write(move |tx| f(&SqliteSql(tx))).await,
            SqlDb::Postgres { pool, .. } => {
                let (pool, rt) = (pool.clone(), Handle::current());
                tokio::task::spawn_blocking(move || {
                    let mut tx = rt.block_on(pool.begin()).map_err(DbError::from)?;
                    for lock in locks {
                        let (sql, key) = match lock {
                            Lock::Exclusive(key) => ("SELECT pg_advisory_xact_lock($1)", key),
                            Lock::Shared(key) => ("SELECT pg_advisory_xact_lock_shared($1)", key),
                        };
                        rt.block_on(sqlx::query(sql).bind(key).execute(&mut *tx))
                            .map_err(DbError::from)?;
                    }
                    if derived {
                        rt.block_on(
                            sqlx::query("SET LOCAL synchronous_commit = off").execute(&mut *tx),
                        )
                        .map_err(DbError::from)?;
                    }
                    let out = f(&PgSql::new(&mut tx, rt.clone()))?;
                    rt.block_on(tx.commit()).map_err(DbError::from)?;
                    Ok(out)
                })
                .await
                .map_err(|e| DbError::Task(e.to_string()))?
            }
        }
    }

    /// See [`SqliteDb::checkpoint_in_background`]; nothing to do on PostgreSQL.
    pub fn checkpoint_in_background(&self, every: Duration) -> Result<(), DbError> {
        match self {
            SqlDb::Sqlite(db) => db.checkpoint_in_background(every),
            SqlDb::Postgres { .. } => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_postgres_ones_outside_quoted_text() {
        assert_eq!(
            postgres_sql("SELECT ?1, '?2', x FROM t WHERE a = ?12 AND b = '?' AND c = ?3"),
            "SELECT $1, '?2', x FROM t WHERE a = $12 AND b = '?' AND c = $3"
        );
    }

    #[test]
    fn the_same_statements_run_on_sqlite_through_the_facade() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, n INTEGER)")
            .unwrap();
        let db: &dyn Sql = &SqliteSql(&conn);
        let none: Option<&str> = None;
        assert_eq!(
            db.statement("INSERT INTO t (name, n) VALUES (?1, ?2)")
                .unwrap()
                .execute(args!["a", 7u32])
                .unwrap(),
            1
        );
        db.statement("INSERT INTO t (name, n) VALUES (?1, ?2)")
            .unwrap()
            .execute(args![none, true])
            .unwrap();
        let rows: Vec<(Option<String>, i64)> = db
            .statement("SELECT name, n FROM t ORDER BY id")
            .unwrap()
            .query_map(args![], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(rows, [(Some("a".to_owned()), 7), (None, 1)]);
        let missing: Option<i64> = db
            .query_row("SELECT n FROM t WHERE name = ?1", args!["zzz"], |r| {
                r.get(0)
            })
            .optional()
            .unwrap();
        assert_eq!(missing, None);
        assert!(matches!(
            db.query_row("SELECT name FROM t WHERE id = 2", args![], |r| r
                .get::<String>(0)),
            Err(DbError::Value(_))
        ));
    }
}
