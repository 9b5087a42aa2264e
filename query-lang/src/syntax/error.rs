//! The one error type of the query language front end: a message, where it applies, and what
//! would have been accepted there.

use super::ast::Span;

/// A syntax or validation error located in the query text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} at line {line}, column {column}")]
pub struct ParseError {
    /// What went wrong, in words a person understands: `expected FROM, found WHERE`.
    pub message: String,
    /// The bytes the error is about; empty at the end of the query.
    pub span: Span,
    /// What would have been accepted at `span`, when the parser knows: `["FROM"]`.
    pub expected: Vec<String>,
    /// A description of what was found instead, when the error is about an unexpected token.
    pub found: Option<String>,
    /// 1-based line of `span.start`.
    pub line: u32,
    /// 1-based column of `span.start`, counted in characters.
    pub column: u32,
}

impl ParseError {
    /// An error about `span` of `query`; line and column are worked out from the text.
    pub fn new(query: &str, span: Span, message: impl Into<String>) -> Self {
        let (line, column) = line_and_column(query, span.start);
        Self {
            message: message.into(),
            span,
            expected: Vec::new(),
            found: None,
            line,
            column,
        }
    }

    #[must_use]
    pub fn with_expected(mut self, expected: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.expected = expected.into_iter().map(Into::into).collect();
        self
    }

    #[must_use]
    pub fn with_found(mut self, found: impl Into<String>) -> Self {
        self.found = Some(found.into());
        self
    }

    /// The message, the line of `query` holding the error, and carets under the offending
    /// text:
    ///
    /// ```text
    /// error: expected FROM, found WHERE at line 1, column 20
    /// SELECT mean(usage) WHERE host = 'a'
    ///                    ^^^^^
    /// ```
    ///
    /// Long lines are cut to a window around the error. `query` should be the text the error
    /// came from; any other text still renders without panicking.
    pub fn render(&self, query: &str) -> String {
        let start = floor_char_boundary(query, self.span.start as usize);
        let end = floor_char_boundary(query, self.span.end as usize).max(start);
        let line_start = query[..start].rfind('\n').map_or(0, |newline| newline + 1);
        let line_end = query[start..]
            .find('\n')
            .map_or(query.len(), |newline| start + newline);
        let line = query[line_start..line_end].trim_end_matches('\r');
        let line_end = line_start + line.len();
        let underline_end = end.min(line_end).max(start);
        let (line_number, column) = line_and_column(query, self.span.start);

        let mut before: Vec<char> = query[line_start.min(start)..start].chars().collect();
        let underlined: Vec<char> = query[start..underline_end].chars().collect();
        let mut after: Vec<char> = query[underline_end..line_end.max(underline_end)]
            .chars()
            .collect();
        let mut shown_before = String::new();
        if before.len() > RENDER_CONTEXT_CHARS {
            shown_before.push_str("...");
            before.drain(..before.len() - RENDER_CONTEXT_CHARS);
        }
        shown_before.extend(before.iter());
        let caret_count = underlined.len().clamp(1, RENDER_CONTEXT_CHARS);
        let shown_underlined: String = underlined.iter().take(RENDER_CONTEXT_CHARS).collect();
        let mut shown_after = String::new();
        if underlined.len() > RENDER_CONTEXT_CHARS {
            after.clear();
            shown_after.push_str("...");
        } else if after.len() > RENDER_CONTEXT_CHARS {
            after.truncate(RENDER_CONTEXT_CHARS);
            shown_after.extend(after.iter());
            shown_after.push_str("...");
        } else {
            shown_after.extend(after.iter());
        }

        // The caret line copies tabs so that carets line up however wide the terminal's tabs are.
        let padding: String = shown_before
            .chars()
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        let carets = "^".repeat(caret_count);
        format!(
            "error: {} at line {line_number}, column {column}\n{shown_before}{shown_underlined}{shown_after}\n{padding}{carets}",
            self.message
        )
    }
}

/// How many characters of a long line the rendering keeps on each side of the error.
const RENDER_CONTEXT_CHARS: usize = 60;

/// 1-based line and character column of byte `offset` in `query`.
pub(crate) fn line_and_column(query: &str, offset: u32) -> (u32, u32) {
    let offset = floor_char_boundary(query, offset as usize);
    let before = &query[..offset];
    let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
    let line = before.bytes().filter(|&byte| byte == b'\n').count() + 1;
    let column = before[line_start..].chars().count() + 1;
    (
        u32::try_from(line).unwrap_or(u32::MAX),
        u32::try_from(column).unwrap_or(u32::MAX),
    )
}

/// The largest char boundary of `text` at or below `offset`.
pub(crate) fn floor_char_boundary(text: &str, offset: usize) -> usize {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_underlines_the_whole_token_on_its_line() {
        let query = "SELECT mean(usage) WHERE host = 'a'";
        let error = ParseError::new(query, Span::new(19, 24), "expected FROM, found WHERE");
        assert_eq!(
            error.render(query),
            "error: expected FROM, found WHERE at line 1, column 20\n\
             SELECT mean(usage) WHERE host = 'a'\n                   ^^^^^"
        );
        assert_eq!(
            error.to_string(),
            "expected FROM, found WHERE at line 1, column 20"
        );
    }

    #[test]
    fn render_shows_the_line_of_a_multi_line_query() {
        let query = "SELECT mean(usage)\nFROM cpu\nWHERE host = \n  GROUP BY host";
        let start = u32::try_from(query.find("GROUP").unwrap()).unwrap();
        let error = ParseError::new(
            query,
            Span::new(start, start + 5),
            "expected expression, found GROUP",
        );
        assert_eq!(
            error.render(query),
            "error: expected expression, found GROUP at line 4, column 3\n  GROUP BY host\n  ^^^^^"
        );
    }

    #[test]
    fn render_puts_one_caret_at_the_end_of_the_query() {
        let query = "SELECT";
        let error = ParseError::new(query, Span::new(6, 6), "expected field");
        assert_eq!(
            error.render(query),
            "error: expected field at line 1, column 7\nSELECT\n      ^"
        );
    }

    #[test]
    fn render_keeps_tabs_so_carets_line_up() {
        let query = "\tSELECT x";
        let error = ParseError::new(query, Span::new(8, 9), "boom");
        assert_eq!(
            error.render(query),
            "error: boom at line 1, column 9\n\tSELECT x\n\t       ^"
        );
    }

    #[test]
    fn render_counts_columns_in_characters_not_bytes() {
        let query = "SELECT \"µs\" x";
        let error = ParseError::new(query, Span::new(13, 14), "boom");
        assert_eq!(error.column, 13);
        assert!(error.render(query).ends_with("\n            ^"));
    }

    #[test]
    fn render_cuts_long_lines_to_a_window_around_the_error() {
        let query = format!("SELECT {} FROM", "a".repeat(500));
        let error = ParseError::new(&query, Span::new(508, 512), "boom");
        let rendered = error.render(&query);
        let lines: Vec<&str> = rendered.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[1].starts_with("...aaa"), "{rendered}");
        assert!(lines[1].ends_with(" FROM"), "{rendered}");
        assert_eq!(lines[2].trim_start(), "^^^^");
        assert_eq!(lines[2].len(), 3 + RENDER_CONTEXT_CHARS + 4);
    }

    #[test]
    fn render_survives_spans_outside_or_inside_characters_of_the_text() {
        let error = ParseError::new("µµ", Span::new(1, 900), "boom");
        assert_eq!(
            error.render("µµ"),
            "error: boom at line 1, column 1\nµµ\n^^"
        );
        assert!(error.render("").starts_with("error: boom"));
    }
}
