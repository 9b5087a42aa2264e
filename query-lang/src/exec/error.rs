//! Errors of query execution. Each says what to change: the limit and its setting, the
//! function and the type it cannot take, the missing database.

use tally_engine::EngineError;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    #[error("database name required: pass ?db=NAME, use `ON db`, or write db.measurement")]
    DatabaseRequired,
    #[error("database not found: {0}")]
    DatabaseNotFound(String),
    #[error(
        "query exceeds a limit: it would {what} {value}, more than {setting} = {limit}; narrow the \
         time range or the WHERE clause, or raise {setting}"
    )]
    Limit {
        what: &'static str,
        value: u64,
        limit: u64,
        setting: &'static str,
    },
    #[error(
        "query timed out after {seconds:.1}s (query.timeout); narrow the time range or raise query.timeout"
    )]
    Timeout { seconds: f64 },
    #[error("query cancelled: the client went away")]
    Cancelled,
    #[error("{0}")]
    Invalid(String),
    #[error("{0} is not supported yet")]
    Unsupported(String),
    #[error("{0}")]
    Engine(#[from] EngineError),
}

pub type QueryResult<T> = Result<T, QueryError>;

pub(crate) fn invalid(message: impl Into<String>) -> QueryError {
    QueryError::Invalid(message.into())
}
