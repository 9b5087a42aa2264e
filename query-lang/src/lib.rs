//! Tally's query language, close to InfluxQL: lexer, parser (an AST with byte spans),
//! planner and executor over the engine's read API.
#![forbid(unsafe_code)]
