//! What the store's SQL needs of a database, so that it is written once as plain generic
//! Rust over [`Db`] and runs on SQLite and PostgreSQL alike.
//!
//! sqlx states what a database supports as bounds on other types (`i64: Encode<DB>`,
//! `&mut DB::Connection: Executor`), and Rust does not carry such bounds from a trait to
//! its users. So [`Db`] asks them once, in its one blanket implementation, and offers the
//! few operations the SQL uses in their place: binding an [`Arg`], reading a [`Column`],
//! running on a pool or a connection. The values the store binds and reads are the
//! portable ones: BIGINT, DOUBLE PRECISION, BOOLEAN and TEXT, each nullable.

use sqlx::Arguments as _;
use sqlx::error::BoxDynError;
use sqlx::query::Query;
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Pool, Row, Type};

/// Most rows one bulk statement names (an `IN` list, a `VALUES` list): well below both
/// databases' limits on bound parameters, whatever the row's width.
pub const CHUNK: usize = 500;

/// One value bound to a statement.
#[derive(Debug, Clone, Copy)]
pub enum Arg<'a> {
    Int(Option<i64>),
    Float(Option<f64>),
    Bool(bool),
    Text(Option<&'a str>),
}

/// A value the store binds.
pub trait IntoArg {
    fn arg(&self) -> Arg<'_>;
}

impl IntoArg for i64 {
    fn arg(&self) -> Arg<'_> {
        Arg::Int(Some(*self))
    }
}

impl IntoArg for Option<i64> {
    fn arg(&self) -> Arg<'_> {
        Arg::Int(*self)
    }
}

impl IntoArg for f64 {
    fn arg(&self) -> Arg<'_> {
        Arg::Float(Some(*self))
    }
}

impl IntoArg for Option<f64> {
    fn arg(&self) -> Arg<'_> {
        Arg::Float(*self)
    }
}

impl IntoArg for bool {
    fn arg(&self) -> Arg<'_> {
        Arg::Bool(*self)
    }
}

impl IntoArg for str {
    fn arg(&self) -> Arg<'_> {
        Arg::Text(Some(self))
    }
}

impl IntoArg for String {
    fn arg(&self) -> Arg<'_> {
        Arg::Text(Some(self))
    }
}

impl IntoArg for Option<&str> {
    fn arg(&self) -> Arg<'_> {
        Arg::Text(*self)
    }
}

impl IntoArg for Option<String> {
    fn arg(&self) -> Arg<'_> {
        Arg::Text(self.as_deref())
    }
}

impl<T: IntoArg + ?Sized> IntoArg for &T {
    fn arg(&self) -> Arg<'_> {
        (**self).arg()
    }
}

/// How many rows a statement changed (each driver's own result type has it).
pub trait RowsAffected {
    fn rows_affected(&self) -> u64;
}

impl RowsAffected for sqlx::sqlite::SqliteQueryResult {
    fn rows_affected(&self) -> u64 {
        self.rows_affected()
    }
}

impl RowsAffected for sqlx::postgres::PgQueryResult {
    fn rows_affected(&self) -> u64 {
        self.rows_affected()
    }
}

/// A database the store runs on: SQLite and PostgreSQL (any sqlx database whose types and
/// executors are what the store's SQL uses).
pub trait Db: Database<Arguments: IntoArguments<Self>, QueryResult: RowsAffected> {
    /// Adds `arg` to a statement's arguments.
    fn add(args: &mut Self::Arguments, arg: Arg<'_>) -> Result<(), BoxDynError>;
    /// A pool as an executor.
    fn pooled(pool: &Pool<Self>) -> impl Executor<'_, Database = Self>;
    /// A connection (or a transaction's) as an executor.
    fn on(conn: &mut Self::Connection) -> impl Executor<'_, Database = Self>;
    fn int(row: &Self::Row, column: &str) -> sqlx::Result<Option<i64>>;
    fn float(row: &Self::Row, column: &str) -> sqlx::Result<Option<f64>>;
    fn boolean(row: &Self::Row, column: &str) -> sqlx::Result<bool>;
    fn text(row: &Self::Row, column: &str) -> sqlx::Result<Option<String>>;
}

impl<DB> Db for DB
where
    DB: Database<Arguments: IntoArguments<DB>, QueryResult: RowsAffected>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'a> i64: Encode<'a, DB> + Decode<'a, DB> + Type<DB>,
    for<'a> f64: Encode<'a, DB> + Decode<'a, DB> + Type<DB>,
    for<'a> bool: Encode<'a, DB> + Decode<'a, DB> + Type<DB>,
    for<'a> &'a str: Encode<'a, DB> + Type<DB> + ColumnIndex<DB::Row>,
    for<'a> String: Decode<'a, DB> + Type<DB>,
    for<'a> Option<i64>: Encode<'a, DB>,
    for<'a> Option<f64>: Encode<'a, DB>,
    for<'a> Option<&'a str>: Encode<'a, DB>,
{
    fn add(args: &mut Self::Arguments, arg: Arg<'_>) -> Result<(), BoxDynError> {
        match arg {
            Arg::Int(v) => args.add(v),
            Arg::Float(v) => args.add(v),
            Arg::Bool(v) => args.add(v),
            Arg::Text(v) => args.add(v),
        }
    }

    fn pooled(pool: &Pool<Self>) -> impl Executor<'_, Database = Self> {
        pool
    }

    fn on(conn: &mut Self::Connection) -> impl Executor<'_, Database = Self> {
        conn
    }

    fn int(row: &Self::Row, column: &str) -> sqlx::Result<Option<i64>> {
        row.try_get(column)
    }

    fn float(row: &Self::Row, column: &str) -> sqlx::Result<Option<f64>> {
        row.try_get(column)
    }

    fn boolean(row: &Self::Row, column: &str) -> sqlx::Result<bool> {
        row.try_get(column)
    }

    fn text(row: &Self::Row, column: &str) -> sqlx::Result<Option<String>> {
        row.try_get(column)
    }
}

/// A value the store reads from a row.
pub trait Column: Sized {
    fn read<DB: Db>(row: &DB::Row, column: &str) -> sqlx::Result<Self>;
}

/// A NULL where the schema allows none.
fn null(column: &str) -> sqlx::Error {
    sqlx::Error::ColumnDecode { index: column.to_owned(), source: "unexpected NULL".into() }
}

impl Column for i64 {
    fn read<DB: Db>(row: &DB::Row, column: &str) -> sqlx::Result<Self> {
        DB::int(row, column)?.ok_or_else(|| null(column))
    }
}

impl Column for Option<i64> {
    fn read<DB: Db>(row: &DB::Row, column: &str) -> sqlx::Result<Self> {
        DB::int(row, column)
    }
}

impl Column for f64 {
    fn read<DB: Db>(row: &DB::Row, column: &str) -> sqlx::Result<Self> {
        DB::float(row, column)?.ok_or_else(|| null(column))
    }
}

impl Column for Option<f64> {
    fn read<DB: Db>(row: &DB::Row, column: &str) -> sqlx::Result<Self> {
        DB::float(row, column)
    }
}

impl Column for bool {
    fn read<DB: Db>(row: &DB::Row, column: &str) -> sqlx::Result<Self> {
        DB::boolean(row, column)
    }
}

impl Column for String {
    fn read<DB: Db>(row: &DB::Row, column: &str) -> sqlx::Result<Self> {
        DB::text(row, column)?.ok_or_else(|| null(column))
    }
}

impl Column for Option<String> {
    fn read<DB: Db>(row: &DB::Row, column: &str) -> sqlx::Result<Self> {
        DB::text(row, column)
    }
}

/// `row.col("name")`: a column of a row of a [`Db`].
pub trait RowExt {
    fn col<T: Column>(&self, column: &str) -> sqlx::Result<T>;
}

impl<R: Row> RowExt for R
where
    R::Database: Db<Row = R>,
{
    fn col<T: Column>(&self, column: &str) -> sqlx::Result<T> {
        T::read::<R::Database>(self, column)
    }
}

/// A statement and its arguments. A fixed text numbers its own placeholders (`$1`, `$2`,
/// which both databases take) and [`arg`](Self::arg)s them in order; a text built piece by
/// piece [`push`](Self::push)es SQL and [`bind`](Self::bind)s values, each bind writing the
/// database's own placeholder. The text is always ours: values are only ever bound.
pub struct Sql<DB: Db> {
    text: String,
    args: DB::Arguments,
    error: Option<BoxDynError>,
}

impl<DB: Db> Sql<DB> {
    pub fn new(text: impl Into<String>) -> Self {
        Self { text: text.into(), args: DB::Arguments::default(), error: None }
    }

    /// The same statement under SQLite's `EXPLAIN QUERY PLAN`, for tests of its plan.
    #[cfg(test)]
    pub fn explained(mut self) -> Self {
        self.text.insert_str(0, "EXPLAIN QUERY PLAN ");
        self
    }

    /// Binds the next of the text's own placeholders.
    pub fn arg(mut self, value: impl IntoArg) -> Self {
        self.add(value.arg());
        self
    }

    /// Appends SQL.
    pub fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends a placeholder and binds `value` to it.
    pub fn bind(&mut self, value: impl IntoArg) -> &mut Self {
        self.add(value.arg());
        // Writing into a String cannot fail.
        let _ = self.args.format_placeholder(&mut self.text);
        self
    }

    /// Appends `(a, b, …)`, the values `each` binds to a [`Tuple`].
    pub fn tuple(&mut self, each: impl FnOnce(&mut Tuple<'_, DB>)) -> &mut Self {
        self.push("(");
        each(&mut Tuple { sql: self, first: true });
        self.push(")")
    }

    /// Appends `(a, b, …)` binding each value: an `IN` list.
    pub fn in_list<T: IntoArg>(&mut self, values: impl IntoIterator<Item = T>) -> &mut Self {
        self.tuple(|t| {
            for value in values {
                t.bind(value);
            }
        })
    }

    /// Appends `(…), (…)`: one [`tuple`](Self::tuple) per item.
    pub fn tuples<T>(
        &mut self,
        items: impl IntoIterator<Item = T>,
        mut each: impl FnMut(&mut Tuple<'_, DB>, T),
    ) -> &mut Self {
        for (i, item) in items.into_iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.tuple(|t| each(t, item));
        }
        self
    }

    fn add(&mut self, arg: Arg<'_>) {
        if let Err(e) = DB::add(&mut self.args, arg) {
            self.error.get_or_insert(e);
        }
    }

    /// The statement to run; a value that failed to encode fails it here.
    fn query(self) -> sqlx::Result<Query<'static, DB, DB::Arguments>> {
        match self.error {
            Some(e) => Err(sqlx::Error::Encode(e)),
            None => Ok(sqlx::query_with(sqlx::AssertSqlSafe(self.text), self.args)),
        }
    }

    /// Runs the statement; returns how many rows it changed.
    pub async fn execute<'c>(self, on: impl Executor<'c, Database = DB>) -> sqlx::Result<u64> {
        Ok(self.query()?.execute(on).await?.rows_affected())
    }

    pub async fn fetch_one<'c>(self, on: impl Executor<'c, Database = DB>) -> sqlx::Result<DB::Row> {
        self.query()?.fetch_one(on).await
    }

    pub async fn fetch_optional<'c>(self, on: impl Executor<'c, Database = DB>) -> sqlx::Result<Option<DB::Row>> {
        self.query()?.fetch_optional(on).await
    }

    pub async fn fetch_all<'c>(self, on: impl Executor<'c, Database = DB>) -> sqlx::Result<Vec<DB::Row>> {
        self.query()?.fetch_all(on).await
    }
}

impl<DB: Db> std::fmt::Debug for Sql<DB> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sql").field("text", &self.text).finish_non_exhaustive()
    }
}

/// The values of one `(…)` being written, separated by commas.
#[derive(Debug)]
pub struct Tuple<'s, DB: Db> {
    sql: &'s mut Sql<DB>,
    first: bool,
}

impl<DB: Db> Tuple<'_, DB> {
    pub fn bind(&mut self, value: impl IntoArg) -> &mut Self {
        if !std::mem::take(&mut self.first) {
            self.sql.push(", ");
        }
        self.sql.bind(value);
        self
    }
}
