//! Tally's query language, close to InfluxQL: lexer, parser (an AST with byte spans),
//! planner and executor over the engine's read API.
#![forbid(unsafe_code)]

mod exec;
mod syntax;

pub use exec::{
    AlertCatalog, CatalogTable, QueryError, QueryLimits, QueryOptions, QueryResult, ResultSeries,
    StatementResult, Value, execute,
};

pub use syntax::{
    ArgKind, Completion, CompletionCandidates, FUNCTIONS, FunctionSignature, Param, ParseError,
    ParseLimits, Presence, TimeLiteral, TimeLiteralError, ast, complete, function,
    parse_expression, parse_query, parse_query_recovering, parse_query_with_limits,
    parse_statement, validate, visit,
};
