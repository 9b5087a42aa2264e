//! Values in query results and in expression evaluation.

use std::cmp::Ordering;

use tally_engine::FieldValue;

/// One cell of a result.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Value {
    Null,
    Float(f64),
    Integer(i64),
    Unsigned(u64),
    Boolean(bool),
    String(String),
    /// Nanoseconds since the epoch; rendered as RFC 3339 or an epoch integer by the server.
    Time(i64),
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The value as a float, for arithmetic and numeric functions.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Float(v) => Some(*v),
            Value::Integer(v) => Some(*v as f64),
            Value::Unsigned(v) => Some(*v as f64),
            _ => None,
        }
    }

    pub(crate) fn from_field(value: &FieldValue<'_>) -> Value {
        match value {
            FieldValue::Float(v) => Value::Float(*v),
            FieldValue::Integer(v) => Value::Integer(*v),
            FieldValue::Unsigned(v) => Value::Unsigned(*v),
            FieldValue::Boolean(v) => Value::Boolean(*v),
            FieldValue::String(s) => Value::String(s.to_string()),
            _ => Value::Null,
        }
    }

    /// Compares two values of comparable kinds (numbers with numbers, strings with strings,
    /// booleans with booleans); `None` otherwise.
    pub(crate) fn compare(&self, other: &Value) -> Option<Ordering> {
        match (self, other) {
            (Value::Integer(a), Value::Integer(b)) => Some(a.cmp(b)),
            (Value::Unsigned(a), Value::Unsigned(b)) => Some(a.cmp(b)),
            (Value::Integer(a), Value::Unsigned(b)) => Some(i128::from(*a).cmp(&i128::from(*b))),
            (Value::Unsigned(a), Value::Integer(b)) => Some(i128::from(*a).cmp(&i128::from(*b))),
            (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
            (Value::Boolean(a), Value::Boolean(b)) => Some(a.cmp(b)),
            (Value::Time(a), Value::Time(b)) => Some(a.cmp(b)),
            (a, b) => a.as_f64()?.partial_cmp(&b.as_f64()?),
        }
    }
}
