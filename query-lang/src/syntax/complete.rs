//! Context-aware completion for the shell and the dashboard's query editor.
//!
//! The text before the word under the cursor is parsed; at its end the parser has noted what
//! it would have accepted next. Keywords and functions are listed here, filtered by the part
//! of the word already typed; measurements, fields, tags, databases and retention policies
//! live in the database, so only their kind is returned and the caller fills them in.

use super::ast::Span;
use super::error::floor_char_boundary;
use super::functions::FUNCTIONS;
use super::lexer::{is_ident_continue, offset};
use super::parser::{Expectation, ParseLimits, Parser};

/// What may be typed at the cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// The part of the word before the cursor, without any opening `"`.
    pub prefix: String,
    /// What a chosen candidate replaces: the word up to the cursor, with its opening `"`.
    pub prefix_span: Span,
    /// The kinds of word that fit, most specific first; empty where nothing can be said (the
    /// cursor is inside a string, or the text before it has an error).
    pub candidates: Vec<CompletionCandidates>,
}

/// One kind of word that fits at the cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CompletionCandidates {
    /// Keywords starting with the prefix (in any case), in the spelling to insert.
    Keyword(Vec<&'static str>),
    /// Function names starting with the prefix.
    Function(Vec<&'static str>),
    Measurement,
    Field,
    Tag,
    Database,
    RetentionPolicy,
}

fn expectations_at_end(text: &str) -> Vec<Expectation> {
    let Ok(mut parser) = Parser::new_for_recovery(text, &ParseLimits::default()) else {
        return Vec::new();
    };
    let _ = parser.parse_query_recovering();
    std::mem::take(&mut parser.expectations)
}

/// The kinds of word that can come at byte `cursor` of `query`, with the matching keywords
/// and functions.
pub fn complete(query: &str, cursor: usize) -> Completion {
    let cursor = floor_char_boundary(query, cursor);
    let before_cursor = &query[..cursor];
    let word_start = before_cursor
        .char_indices()
        .rev()
        .take_while(|&(_, c)| is_ident_continue(c))
        .last()
        .map_or(cursor, |(index, _)| index);
    let prefix = &query[word_start..cursor];
    // A `"` right before the word opens a quoted name if the text before the quote parses up
    // to its end; if the quote closes a name instead, that text ends inside the name and
    // yields no expectations.
    let mut replace_start = word_start;
    let mut expectations = Vec::new();
    if word_start > 0 && query[..word_start].ends_with('"') {
        expectations = expectations_at_end(&query[..word_start - 1]);
        if !expectations.is_empty() {
            replace_start = word_start - 1;
        }
    }
    if expectations.is_empty() {
        expectations = expectations_at_end(&query[..word_start]);
    }

    let matches = |candidate: &str| {
        candidate.len() >= prefix.len()
            && candidate
                .get(..prefix.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
    };
    let mut keywords: Vec<&'static str> = Vec::new();
    let mut functions: Vec<&'static str> = Vec::new();
    let mut kinds: Vec<CompletionCandidates> = Vec::new();
    for expectation in expectations {
        let kind = match expectation {
            Expectation::Keyword(keyword) => {
                if matches(keyword) && !keywords.contains(&keyword) {
                    keywords.push(keyword);
                }
                continue;
            }
            Expectation::Function => {
                for signature in FUNCTIONS {
                    if matches(signature.name) && !functions.contains(&signature.name) {
                        functions.push(signature.name);
                    }
                }
                continue;
            }
            Expectation::NowFunction => {
                if matches("now") && !functions.contains(&"now") {
                    functions.push("now");
                }
                continue;
            }
            Expectation::Measurement => CompletionCandidates::Measurement,
            Expectation::Field => CompletionCandidates::Field,
            Expectation::Tag => CompletionCandidates::Tag,
            Expectation::Database => CompletionCandidates::Database,
            Expectation::RetentionPolicy => CompletionCandidates::RetentionPolicy,
        };
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    let mut candidates = Vec::new();
    if !functions.is_empty() {
        candidates.push(CompletionCandidates::Function(functions));
    }
    candidates.extend(kinds);
    if !keywords.is_empty() {
        candidates.push(CompletionCandidates::Keyword(keywords));
    }
    Completion {
        prefix: prefix.to_owned(),
        prefix_span: Span::new(offset(replace_start), offset(cursor)),
        candidates,
    }
}
