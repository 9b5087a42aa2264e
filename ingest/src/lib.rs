//! Tally's ingest: parsers for the formats Tally accepts and the built-in samplers.
//!
//! Every parser returns the good part of its input plus a list of precise errors, and never
//! panics on any input. This crate knows nothing of HTTP or of how points are stored.
#![forbid(unsafe_code)]

pub mod line_protocol;
pub mod prometheus;
pub mod samplers;
