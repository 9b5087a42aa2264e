//! Tab completion: shell commands and their arguments, keywords and functions from the query
//! parser, and names (measurements, tag keys, field keys, databases, retention policies) that
//! the shell fetches from the server with SHOW queries.
//!
//! The names of a database are fetched when the shell starts, on `use` and on `connect`, and
//! kept per database; completing never waits on the network.

use std::collections::BTreeMap;
use std::rc::Rc;

use rustyline::completion::{Completer, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::{Context, Helper};
use serde_json::Value;
use tally_query::{CompletionCandidates, complete};

use super::client::{Client, QueryParameters};
use super::command::COMMAND_NAMES;
use super::error::ShellError;
use super::input::scan;
use super::response::{Series, parse_response};

/// The names of one database.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Catalog {
    pub(crate) measurements: Vec<String>,
    /// Tag keys per measurement.
    pub(crate) tag_keys: BTreeMap<String, Vec<String>>,
    /// Field keys per measurement.
    pub(crate) field_keys: BTreeMap<String, Vec<String>>,
    pub(crate) retention_policies: Vec<String>,
}

impl Catalog {
    /// Fetches the names of `database`. A statement the server refuses leaves its part empty;
    /// only failing to reach the server is an error.
    pub(crate) fn fetch(client: &Client, database: &str) -> Result<Catalog, ShellError> {
        let measurements = fetch_series(client, "SHOW MEASUREMENTS", Some(database))?;
        let tag_keys = fetch_series(client, "SHOW TAG KEYS", Some(database))?;
        let field_keys = fetch_series(client, "SHOW FIELD KEYS", Some(database))?;
        let retention_policies = fetch_series(client, "SHOW RETENTION POLICIES", Some(database))?;
        let per_measurement = |all_series: &[Series]| {
            let mut keys: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for series in all_series {
                keys.entry(series.name.clone())
                    .or_default()
                    .extend(first_column(series));
            }
            keys
        };
        Ok(Catalog {
            measurements: measurements.iter().flat_map(first_column).collect(),
            tag_keys: per_measurement(&tag_keys),
            field_keys: per_measurement(&field_keys),
            retention_policies: retention_policies.iter().flat_map(first_column).collect(),
        })
    }

    /// The keys of `measurement`, or of every measurement when it is not known.
    fn keys_for<'a>(
        keys: &'a BTreeMap<String, Vec<String>>,
        measurement: Option<&str>,
    ) -> Vec<&'a str> {
        if let Some(own_keys) = measurement.and_then(|name| keys.get(name)) {
            return own_keys.iter().map(String::as_str).collect();
        }
        let mut all: Vec<&str> = keys.values().flatten().map(String::as_str).collect();
        all.sort_unstable();
        all.dedup();
        all
    }
}

/// The database names the server knows.
pub(crate) fn fetch_databases(client: &Client) -> Result<Vec<String>, ShellError> {
    Ok(fetch_series(client, "SHOW DATABASES", None)?
        .iter()
        .flat_map(first_column)
        .collect())
}

fn fetch_series(
    client: &Client,
    query: &str,
    database: Option<&str>,
) -> Result<Vec<Series>, ShellError> {
    let parameters = QueryParameters {
        database,
        ..QueryParameters::default()
    };
    let answer = client.query(query, parameters)?;
    let Ok(response) = parse_response(&answer.body) else {
        return Ok(Vec::new());
    };
    Ok(response
        .results
        .into_iter()
        .filter(|result| result.error.is_none())
        .flat_map(|result| result.series)
        .collect())
}

fn first_column(series: &Series) -> impl Iterator<Item = String> + '_ {
    series.values.iter().filter_map(|row| match row.first() {
        Some(Value::String(name)) => Some(name.clone()),
        _ => None,
    })
}

/// What completion needs to know besides the line being edited.
#[derive(Debug, Default)]
pub(crate) struct CompletionContext {
    /// Earlier lines of the statement being typed, each ended by `\n`.
    pub(crate) pending: String,
    pub(crate) databases: Vec<String>,
    /// The names of the current database, when they could be fetched.
    pub(crate) catalog: Option<Rc<Catalog>>,
}

/// Whether `name` must be written in double quotes, asked of the parser itself so that
/// keywords and names with odd characters are both caught.
fn needs_quotes(name: &str) -> bool {
    let plain = name
        .chars()
        .next()
        .is_some_and(|first| first.is_alphabetic() || first == '_')
        && name
            .chars()
            .all(|character| character.is_alphanumeric() || character == '_');
    !plain || tally_query::parse_statement(&format!("SELECT x FROM {name}")).is_err()
}

fn quote_name(name: &str) -> String {
    format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The measurement after the first `FROM` of `statement`, if one is written there.
fn measurement_after_from(statement: &str) -> Option<String> {
    let is_word_character = |character: char| character.is_alphanumeric() || character == '_';
    let lower = statement.to_ascii_lowercase();
    let mut search_from = 0;
    let from_end = loop {
        let found = search_from + lower.get(search_from..)?.find("from")?;
        let end = found + "from".len();
        let starts_a_word = !lower[..found]
            .chars()
            .next_back()
            .is_some_and(is_word_character);
        let ends_a_word = !lower[end..].chars().next().is_some_and(is_word_character);
        if starts_a_word && ends_a_word {
            break end;
        }
        search_from = end;
    };
    // `db.rp.measurement`: the measurement is the last part; any part may be quoted.
    let mut rest = statement[from_end..].trim_start();
    let mut last_part = None;
    loop {
        if let Some(quoted) = rest.strip_prefix('"') {
            let close = quoted.find('"')?;
            last_part = Some(&quoted[..close]);
            rest = &quoted[close + 1..];
        } else {
            let end = rest
                .find(|character: char| !is_word_character(character))
                .unwrap_or(rest.len());
            if end > 0 {
                last_part = Some(&rest[..end]);
            }
            rest = &rest[end..];
        }
        match rest.strip_prefix('.') {
            Some(after_dot) => rest = after_dot,
            None => break,
        }
    }
    last_part.filter(|name| !name.is_empty()).map(str::to_owned)
}

/// The start of the word to replace, in bytes of `line`, and the candidates for it.
pub(crate) fn complete_line(
    context: &CompletionContext,
    line: &str,
    cursor: usize,
) -> (usize, Vec<Pair>) {
    let mut cursor = cursor.min(line.len());
    while !line.is_char_boundary(cursor) {
        cursor -= 1;
    }
    let text = format!("{}{}", context.pending, &line[..cursor]);
    let line_offset = context.pending.len();
    let statement_start = scan(&text)
        .pieces
        .last()
        .map_or(0, |piece| piece.range.start);
    let statement = &text[statement_start..];
    let leading_blanks = statement.len() - statement.trim_start().len();
    let body = &statement[leading_blanks..];
    let body_start = statement_start + leading_blanks;

    let first_word_end = body.find(char::is_whitespace);
    let Some(first_word_end) = first_word_end else {
        // The first word of a statement: a shell command or a statement keyword.
        let Some(start) = body_start.checked_sub(line_offset) else {
            return (cursor, Vec::new());
        };
        let mut candidates: Vec<Pair> = COMMAND_NAMES
            .iter()
            .filter(|name| name.starts_with(&body.to_ascii_lowercase()))
            .map(|name| plain_pair(name))
            .collect();
        let completion = complete(body, body.len());
        for kind in completion.candidates {
            if let CompletionCandidates::Keyword(keywords) = kind {
                candidates.extend(keywords.iter().map(|keyword| keyword_pair(keyword, body)));
            }
        }
        return (start, candidates);
    };

    let first_word = body[..first_word_end].to_ascii_lowercase();
    if COMMAND_NAMES.contains(&first_word.as_str()) {
        let argument = body[first_word_end..].trim_start();
        if argument.contains(char::is_whitespace) {
            return (cursor, Vec::new());
        }
        let Some(start) = (text.len() - argument.len()).checked_sub(line_offset) else {
            return (cursor, Vec::new());
        };
        let choices: Vec<String> = match first_word.as_str() {
            "use" => context.databases.clone(),
            "format" => vec!["table".into(), "csv".into(), "json".into()],
            "epoch" => ["ns", "us", "ms", "s", "rfc3339"]
                .map(String::from)
                .to_vec(),
            "timing" | "pretty" => vec!["on".into(), "off".into()],
            _ => Vec::new(),
        };
        let typed = argument.trim_start_matches('"');
        let candidates = choices
            .iter()
            .filter(|choice| choice.starts_with(typed))
            .map(|choice| name_pair(choice, argument.starts_with('"')))
            .collect();
        return (start, candidates);
    }

    let completion = complete(statement, statement.len());
    let Some(start) =
        (statement_start + completion.prefix_span.start as usize).checked_sub(line_offset)
    else {
        return (cursor, Vec::new());
    };
    let typed_quote = completion.prefix_span.len() as usize > completion.prefix.len();
    let catalog = context.catalog.as_deref();
    let measurement = measurement_after_from(statement);
    let mut candidates: Vec<Pair> = Vec::new();
    for kind in &completion.candidates {
        match kind {
            CompletionCandidates::Function(functions) => {
                for function in functions {
                    candidates.push(Pair {
                        display: (*function).to_owned(),
                        replacement: format!("{function}("),
                    });
                }
            }
            CompletionCandidates::Keyword(keywords) => {
                for keyword in keywords {
                    candidates.push(keyword_pair(keyword, &completion.prefix));
                }
            }
            CompletionCandidates::Measurement => {
                let names = catalog.map_or_else(Vec::new, |catalog| {
                    catalog.measurements.iter().map(String::as_str).collect()
                });
                add_names(&mut candidates, names, &completion.prefix, typed_quote);
            }
            CompletionCandidates::Field => {
                let names = catalog.map_or_else(Vec::new, |catalog| {
                    Catalog::keys_for(&catalog.field_keys, measurement.as_deref())
                });
                add_names(&mut candidates, names, &completion.prefix, typed_quote);
            }
            CompletionCandidates::Tag => {
                let names = catalog.map_or_else(Vec::new, |catalog| {
                    Catalog::keys_for(&catalog.tag_keys, measurement.as_deref())
                });
                add_names(&mut candidates, names, &completion.prefix, typed_quote);
            }
            CompletionCandidates::Database => {
                let names = context.databases.iter().map(String::as_str).collect();
                add_names(&mut candidates, names, &completion.prefix, typed_quote);
            }
            CompletionCandidates::RetentionPolicy => {
                let names = catalog.map_or_else(Vec::new, |catalog| {
                    catalog
                        .retention_policies
                        .iter()
                        .map(String::as_str)
                        .collect()
                });
                add_names(&mut candidates, names, &completion.prefix, typed_quote);
            }
            _ => {}
        }
    }
    (start, candidates)
}

/// Adds the names that start with `prefix` and are not listed yet.
fn add_names(candidates: &mut Vec<Pair>, names: Vec<&str>, prefix: &str, typed_quote: bool) {
    for name in names {
        if name.starts_with(prefix) && !candidates.iter().any(|pair| pair.display == name) {
            candidates.push(name_pair(name, typed_quote));
        }
    }
}

fn plain_pair(word: &str) -> Pair {
    Pair {
        display: word.to_owned(),
        replacement: word.to_owned(),
    }
}

/// A keyword in the case the person is typing in: `sel` completes to `select`.
fn keyword_pair(keyword: &str, typed: &str) -> Pair {
    let typing_lower_case =
        !typed.is_empty() && typed.chars().all(|character| !character.is_uppercase());
    let spelled = if typing_lower_case {
        keyword.to_lowercase()
    } else {
        keyword.to_owned()
    };
    plain_pair(&spelled)
}

fn name_pair(name: &str, typed_quote: bool) -> Pair {
    Pair {
        display: name.to_owned(),
        replacement: if typed_quote || needs_quotes(name) {
            quote_name(name)
        } else {
            name.to_owned()
        },
    }
}

/// The rustyline helper: completion only; the shell itself decides where input ends.
#[derive(Debug, Default)]
pub(crate) struct ShellHelper {
    pub(crate) context: CompletionContext,
}

impl Completer for ShellHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _history: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        Ok(complete_line(&self.context, line, pos))
    }
}

impl Hinter for ShellHelper {
    type Hint = String;
}

impl Highlighter for ShellHelper {}

impl Validator for ShellHelper {}

impl Helper for ShellHelper {}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn completing_any_line_at_any_cursor_stays_inside_the_line(
            pending in "[a-zA-Z '\"();/*=\n]{0,20}",
            line in prop_oneof![any::<String>(), "[a-zA-Z '\"();/*=~.é日]{0,40}"],
            cursor in 0usize..64,
        ) {
            let mut context = context();
            context.pending = pending;
            let (start, _) = complete_line(&context, &line, cursor);
            prop_assert!(start <= cursor.min(line.len()));
            prop_assert!(line.is_char_boundary(start));
        }
    }

    fn context() -> CompletionContext {
        let catalog = Catalog {
            measurements: vec!["cpu".into(), "gpu".into(), "llm".into(), "my-metric".into()],
            tag_keys: BTreeMap::from([
                ("cpu".into(), vec!["host".into()]),
                ("gpu".into(), vec!["gpu_index".into(), "host".into()]),
            ]),
            field_keys: BTreeMap::from([
                ("cpu".into(), vec!["usage_user".into()]),
                ("gpu".into(), vec!["util".into(), "used_memory".into()]),
            ]),
            retention_policies: vec!["autogen".into()],
        };
        CompletionContext {
            pending: String::new(),
            databases: vec!["telemetry".into(), "default".into(), "two words".into()],
            catalog: Some(Rc::new(catalog)),
        }
    }

    fn displays(context: &CompletionContext, line: &str) -> (usize, Vec<String>) {
        let (start, pairs) = complete_line(context, line, line.len());
        (start, pairs.into_iter().map(|pair| pair.display).collect())
    }

    fn replacements(context: &CompletionContext, line: &str) -> Vec<String> {
        complete_line(context, line, line.len())
            .1
            .into_iter()
            .map(|pair| pair.replacement)
            .collect()
    }

    #[test]
    fn the_first_word_completes_commands_and_statement_keywords() {
        let (start, words) = displays(&context(), "us");
        assert_eq!(start, 0);
        assert_eq!(words, vec!["use"]);
        let (_, words) = displays(&context(), "se");
        assert_eq!(words, vec!["select"]);
        let (_, words) = displays(&context(), "SH");
        assert_eq!(words, vec!["SHOW"]);
    }

    #[test]
    fn measurements_complete_after_from() {
        let (start, names) = displays(&context(), "SELECT * FROM g");
        assert_eq!(start, 14);
        assert_eq!(names, vec!["gpu"]);
        assert_eq!(
            replacements(&context(), "SELECT * FROM my"),
            vec!["\"my-metric\""]
        );
    }

    #[test]
    fn fields_and_tags_are_those_of_the_measurement_in_from() {
        let (_, names) = displays(&context(), "SELECT u FROM gpu WHERE h");
        assert!(names.contains(&"host".to_owned()), "{names:?}");
        let (_, names) = displays(&context(), "SELECT * FROM gpu WHERE gpu_");
        assert_eq!(names, vec!["gpu_index"]);
        let (_, names) = displays(&context(), "SELECT * FROM cpu GROUP BY g");
        assert!(!names.contains(&"gpu_index".to_owned()), "{names:?}");
    }

    #[test]
    fn functions_complete_with_an_opening_parenthesis() {
        let pairs = complete_line(&context(), "SELECT mea", 10).1;
        let mean = pairs.iter().find(|pair| pair.display == "mean").unwrap();
        assert_eq!(mean.replacement, "mean(");
    }

    #[test]
    fn command_arguments_complete_from_their_choices() {
        let (start, names) = displays(&context(), "use te");
        assert_eq!((start, names), (4, vec!["telemetry".to_owned()]));
        assert_eq!(replacements(&context(), "use tw"), vec!["\"two words\""]);
        let (_, formats) = displays(&context(), "format c");
        assert_eq!(formats, vec!["csv"]);
        let (_, settings) = displays(&context(), "timing o");
        assert_eq!(settings, vec!["on", "off"]);
    }

    #[test]
    fn completion_sees_the_earlier_lines_of_a_multi_line_statement() {
        let mut context = context();
        context.pending = "SELECT *\n".to_owned();
        let (start, names) = displays(&context, "FROM c");
        assert_eq!(start, 5);
        assert_eq!(names, vec!["cpu"]);
    }

    #[test]
    fn completion_starts_at_the_statement_after_the_last_semicolon() {
        let (start, names) = displays(&context(), "use telemetry; SELECT * FROM l");
        assert_eq!(start, 29);
        assert_eq!(names, vec!["llm"]);
    }

    #[test]
    fn without_a_catalog_only_keywords_and_functions_complete() {
        let context = CompletionContext::default();
        let (_, names) = displays(&context, "SELECT * FROM ");
        assert!(names.is_empty(), "{names:?}");
    }

    #[test]
    fn names_that_are_keywords_or_odd_are_quoted() {
        assert!(!needs_quotes("cpu"));
        assert!(!needs_quotes("gpu_util_pct"));
        assert!(needs_quotes("my-metric"));
        assert!(needs_quotes("two words"));
        assert!(needs_quotes("select"));
        assert!(needs_quotes("9lives"));
        assert_eq!(quote_name("a\"b"), "\"a\\\"b\"");
    }

    #[test]
    fn the_measurement_is_found_after_from_in_any_form() {
        assert_eq!(
            measurement_after_from("SELECT a FROM cpu WHERE"),
            Some("cpu".into())
        );
        assert_eq!(
            measurement_after_from("select a from db.rp.gpu"),
            Some("gpu".into())
        );
        assert_eq!(
            measurement_after_from("SELECT a FROM \"my m\" WHERE"),
            Some("my m".into())
        );
        assert_eq!(
            measurement_after_from("SELECT a FROM db..\"m\""),
            Some("m".into())
        );
        assert_eq!(
            measurement_after_from("SELECT fromage FROM x"),
            Some("x".into())
        );
        assert_eq!(measurement_after_from("SELECT a"), None);
        assert_eq!(measurement_after_from("SELECT a FROM "), None);
    }
}
