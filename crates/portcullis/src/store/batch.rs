//! Writes kept to be sent together, in one round trip, at the end of a unit
//! of work: each statement a write that returns nothing, written with its
//! own `$1`, `$2`, … and renumbered as it joins the batch.

use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::Any;

use super::Conn;
use crate::clock::Timestamp;

/// Statements and their values, in order. On PostgreSQL the batch runs as
/// one statement (see [`super::together`]): none of its statements may
/// touch a row another touches, or depend on another's changes.
#[derive(Default)]
pub struct Batch {
    statements: Vec<String>,
    values: Vec<Value>,
}

/// A value to bind: the column types the schema uses, and NULL.
pub enum Value {
    Text(Option<String>),
    Integer(Option<i64>),
    Real(Option<f64>),
}

impl From<&str> for Value {
    fn from(text: &str) -> Self {
        Value::Text(Some(text.to_owned()))
    }
}

impl From<Option<&str>> for Value {
    fn from(text: Option<&str>) -> Self {
        Value::Text(text.map(str::to_owned))
    }
}

impl From<Timestamp> for Value {
    fn from(number: Timestamp) -> Self {
        Value::Integer(Some(number))
    }
}

impl From<Option<Timestamp>> for Value {
    fn from(number: Option<Timestamp>) -> Self {
        Value::Integer(number)
    }
}

impl From<Option<f64>> for Value {
    fn from(number: Option<f64>) -> Self {
        Value::Real(number)
    }
}

/// A statement joining a batch; its values are bound in order.
pub struct Statement<'b> {
    values: &'b mut Vec<Value>,
}

impl Statement<'_> {
    pub fn bind(self, value: impl Into<Value>) -> Self {
        self.values.push(value.into());
        self
    }
}

/// What values are bound onto in order, so that one function binds a row's
/// values for a query and for a batch alike.
pub trait Bind<'q> {
    fn text(self, value: Option<&'q str>) -> Self;
    fn integer(self, value: Option<i64>) -> Self;
    fn real(self, value: Option<f64>) -> Self;
}

impl<'q> Bind<'q> for Query<'q, Any, AnyArguments<'q>> {
    fn text(self, value: Option<&'q str>) -> Self {
        self.bind(value)
    }

    fn integer(self, value: Option<i64>) -> Self {
        self.bind(value)
    }

    fn real(self, value: Option<f64>) -> Self {
        self.bind(value)
    }
}

impl<'q> Bind<'q> for Statement<'_> {
    fn text(self, value: Option<&'q str>) -> Self {
        self.bind(value)
    }

    fn integer(self, value: Option<i64>) -> Self {
        self.bind(value)
    }

    fn real(self, value: Option<f64>) -> Self {
        self.bind(value)
    }
}

impl Batch {
    /// Adds `sql`, whose placeholders start at `$1`; bind its values on the
    /// statement returned, as many as its highest placeholder.
    pub fn push(&mut self, sql: &str) -> Statement<'_> {
        self.statements.push(renumber(sql, self.values.len()));
        Statement {
            values: &mut self.values,
        }
    }

    fn is_empty(&self) -> bool {
        self.statements.is_empty()
    }

    /// Sends the batch, if it holds anything, in one round trip.
    pub async fn run(self, conn: &mut Conn) -> sqlx::Result<()> {
        if self.is_empty() {
            return Ok(());
        }
        let statements: Vec<&str> = self.statements.iter().map(String::as_str).collect();
        let sql = super::together(conn, &statements);
        let mut query: Query<'_, Any, AnyArguments<'_>> = sqlx::query(&sql);
        for value in self.values {
            query = match value {
                Value::Text(text) => query.bind(text),
                Value::Integer(number) => query.bind(number),
                Value::Real(number) => query.bind(number),
            };
        }
        query.execute(conn).await?;
        Ok(())
    }
}

/// `sql` with each placeholder `$n` made `$(n + by)`.
fn renumber(sql: &str, by: usize) -> String {
    if by == 0 {
        return sql.to_owned();
    }
    let mut out = String::with_capacity(sql.len() + 8);
    let mut rest = sql;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..=at]);
        rest = &rest[at + 1..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        match rest[..digits].parse::<usize>() {
            Ok(n) => out.push_str(&(n + by).to_string()),
            Err(_) => out.push_str(&rest[..digits]),
        }
        rest = &rest[digits..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::renumber;

    #[test]
    fn placeholders_move_up_by_the_values_before_them() {
        assert_eq!(
            renumber("UPDATE t SET a = $1, b = $12 WHERE c = $1", 10),
            "UPDATE t SET a = $11, b = $22 WHERE c = $11"
        );
        assert_eq!(renumber("SELECT $1", 0), "SELECT $1");
        assert_eq!(renumber("SELECT '$' || $2", 3), "SELECT '$' || $5");
    }
}
