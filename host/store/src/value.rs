//! What goes into a statement and comes out of it: the four kinds of
//! value both databases store the same way (integers are 64-bit; flags
//! are integers 0 and 1; text is UTF-8; blobs are bytes).

use crate::StoreError;

/// A parameter or a column's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// A 64-bit integer (a flag is 0 or 1).
    Integer(i64),
    /// UTF-8 text.
    Text(String),
    /// Bytes.
    Blob(Vec<u8>),
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Integer(v)
    }
}

impl From<i32> for Value {
    fn from(v: i32) -> Self {
        Value::Integer(v.into())
    }
}

impl From<u32> for Value {
    fn from(v: u32) -> Self {
        Value::Integer(v.into())
    }
}

/// Past `i64::MAX` saturates: no stored count or amount comes near it.
impl From<u64> for Value {
    fn from(v: u64) -> Self {
        Value::Integer(i64::try_from(v).unwrap_or(i64::MAX))
    }
}

/// Past `i64::MAX` saturates, as `u64` does.
impl From<usize> for Value {
    fn from(v: usize) -> Self {
        Value::Integer(i64::try_from(v).unwrap_or(i64::MAX))
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Integer(v.into())
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_string())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}

impl From<&String> for Value {
    fn from(v: &String) -> Self {
        Value::Text(v.clone())
    }
}

impl From<&[u8]> for Value {
    fn from(v: &[u8]) -> Self {
        Value::Blob(v.to_vec())
    }
}

impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Self {
        Value::Blob(v)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

impl<T: Clone + Into<Value>> From<&Option<T>> for Value {
    fn from(v: &Option<T>) -> Self {
        v.clone().map_or(Value::Null, Into::into)
    }
}

/// What a column's [`Value`] can be read as.
pub trait FromValue: Sized {
    /// `v` as `Self`, or what is wrong with it.
    fn from_value(v: &Value) -> Result<Self, String>;
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "NULL",
        Value::Integer(_) => "an integer",
        Value::Text(_) => "text",
        Value::Blob(_) => "a blob",
    }
}

impl FromValue for i64 {
    fn from_value(v: &Value) -> Result<Self, String> {
        match v {
            Value::Integer(i) => Ok(*i),
            other => Err(format!("expected an integer, found {}", kind(other))),
        }
    }
}

macro_rules! from_integer {
    ($($t:ty),*) => {$(
        impl FromValue for $t {
            fn from_value(v: &Value) -> Result<Self, String> {
                let i = i64::from_value(v)?;
                <$t>::try_from(i).map_err(|_| format!("{i} is out of range for {}", stringify!($t)))
            }
        }
    )*};
}
from_integer!(u64, i32, u32, usize);

impl FromValue for bool {
    fn from_value(v: &Value) -> Result<Self, String> {
        Ok(i64::from_value(v)? != 0)
    }
}

impl FromValue for String {
    fn from_value(v: &Value) -> Result<Self, String> {
        match v {
            Value::Text(s) => Ok(s.clone()),
            other => Err(format!("expected text, found {}", kind(other))),
        }
    }
}

impl FromValue for Vec<u8> {
    fn from_value(v: &Value) -> Result<Self, String> {
        match v {
            Value::Blob(b) => Ok(b.clone()),
            // SQLite stores an empty blob literal as a blob, but text put
            // in a blob column stays text: read its bytes.
            Value::Text(s) => Ok(s.as_bytes().to_vec()),
            other => Err(format!("expected a blob, found {}", kind(other))),
        }
    }
}

impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: &Value) -> Result<Self, String> {
        match v {
            Value::Null => Ok(None),
            other => T::from_value(other).map(Some),
        }
    }
}

/// One row a query returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row(pub Vec<Value>);

impl Row {
    /// Column `i` as `T`.
    pub fn get<T: FromValue>(&self, i: usize) -> Result<T, StoreError> {
        let v = self.0.get(i).ok_or_else(|| StoreError::Column {
            column: i,
            problem: format!("the row has {} columns", self.0.len()),
        })?;
        T::from_value(v).map_err(|problem| StoreError::Column { column: i, problem })
    }

    /// How many columns it has.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether it has no columns.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_back_as_what_was_stored_and_refuse_the_rest() {
        let row =
            Row(vec![Value::from(7u64), Value::from("x"), Value::Null, Value::from(true), Value::from(vec![1u8])]);
        assert_eq!(row.get::<u64>(0), Ok(7));
        assert_eq!(row.get::<String>(1).as_deref(), Ok("x"));
        assert_eq!(row.get::<Option<i64>>(2), Ok(None));
        assert_eq!(row.get::<bool>(3), Ok(true));
        assert_eq!(row.get::<Vec<u8>>(4), Ok(vec![1]));
        assert!(matches!(row.get::<i64>(1), Err(StoreError::Column { column: 1, .. })));
        assert!(matches!(row.get::<i64>(5), Err(StoreError::Column { column: 5, .. })));
        assert!(Row(vec![Value::Integer(-1)]).get::<u64>(0).is_err());
        assert_eq!(Value::from(u64::MAX), Value::Integer(i64::MAX));
    }
}
