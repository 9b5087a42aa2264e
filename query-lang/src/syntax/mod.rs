//! The query language front end: text to a checked syntax tree, and back.
//!
//! [`parse_query`] turns query text into a [`Query`](ast::Query); [`validate`] checks what
//! the grammar alone cannot (known functions and their arguments, regexes, time strings);
//! `Display` on any node prints canonical text that parses back to an equal tree; [`complete`]
//! tells an editor what kind of word may come at the cursor. Nothing here knows about storage.

pub mod ast;
mod complete;
mod display;
mod error;
mod functions;
mod lexer;
mod parser;
mod time_literal;
pub mod visit;

pub use complete::{Completion, CompletionCandidates, complete};
pub use error::ParseError;
pub use functions::{ArgKind, FUNCTIONS, FunctionSignature, Param, Presence, function, validate};
pub use parser::ParseLimits;
pub use time_literal::{TimeLiteral, TimeLiteralError};

use ast::{Expr, Query, Statement};
use parser::Parser;

/// Parses a query of one or more statements separated by `;`, with the default
/// [`ParseLimits`] (1 MiB of text, nesting 128 deep).
pub fn parse_query(text: &str) -> Result<Query, ParseError> {
    parse_query_with_limits(text, &ParseLimits::default())
}

pub fn parse_query_with_limits(text: &str, limits: &ParseLimits) -> Result<Query, ParseError> {
    Parser::new(text, limits)?.parse_query()
}

/// Parses exactly one statement (a trailing `;` is fine).
pub fn parse_statement(text: &str) -> Result<Statement, ParseError> {
    Parser::new(text, &ParseLimits::default())?.parse_single_statement()
}

/// Parses a lone expression, such as the condition of an alert rule.
pub fn parse_expression(text: &str) -> Result<Expr, ParseError> {
    Parser::new(text, &ParseLimits::default())?.parse_standalone_expr()
}

/// Parses every statement it can: after an error it skips to the next `;` and goes on, so an
/// editor can show all the errors of a script at once.
pub fn parse_query_recovering(text: &str) -> (Vec<Statement>, Vec<ParseError>) {
    match Parser::new_for_recovery(text, &ParseLimits::default()) {
        Ok(mut parser) => parser.parse_query_recovering(),
        Err(error) => (Vec::new(), vec![error]),
    }
}
