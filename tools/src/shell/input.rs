//! Where input ends: when a typed line finishes a statement, and where `;` splits statements.
//!
//! A statement goes on to the next line while a quote, a parenthesis or a `/* */` comment is
//! open, or while the line ends with `\`. `;` separates statements except inside quotes,
//! regexes and comments. This is a scan, not a parse: the parser of `tally-query` still decides
//! whether the text is valid, and reports where it is not.
//!
//! `/` is both division and the regex delimiter. Like the query parser, the scan reads it as a
//! regex where an operand is expected (after an operator, `(`, `,`, `FROM` or at the start) and
//! as division after a name, a number or `)`. A regex cannot span lines, so a `/` with no
//! closing `/` on its line is read as division.

use std::ops::Range;

/// A construct still open at the end of the text, which makes the input continue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpenConstruct {
    SingleQuote,
    DoubleQuote,
    BlockComment,
    /// This many `(` are not closed yet.
    Parentheses(u32),
}

/// The text between two `;` (or the ends of the text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Piece {
    /// Byte range in the scanned text, without the `;`.
    pub(crate) range: Range<usize>,
    /// Whether the piece holds anything besides blanks and comments.
    pub(crate) has_content: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Scan {
    pub(crate) pieces: Vec<Piece>,
    pub(crate) open: Option<OpenConstruct>,
}

fn is_word_byte(byte: u8) -> bool {
    // Bytes of multi-byte characters count as word bytes, as letters do in the lexer.
    byte.is_ascii_alphanumeric() || byte == b'_' || byte >= 0x80
}

/// The end of the quoted text opening at `start`, after its closing quote; `None` if the text
/// ends first.
fn quoted_end(bytes: &[u8], start: usize, quote: u8) -> Option<usize> {
    let mut position = start + 1;
    while let Some(&byte) = bytes.get(position) {
        if byte == b'\\' {
            position += 2;
        } else if byte == quote {
            return Some(position + 1);
        } else {
            position += 1;
        }
    }
    None
}

/// The end of a regex opening at `start`, after its closing `/`; `None` if the line ends first.
fn regex_end(bytes: &[u8], start: usize) -> Option<usize> {
    let mut position = start + 1;
    while let Some(&byte) = bytes.get(position) {
        match byte {
            b'\n' => return None,
            b'\\' => position += 2,
            b'/' => return Some(position + 1),
            _ => position += 1,
        }
    }
    None
}

/// Splits `text` at `;` and says what is still open at its end.
pub(crate) fn scan(text: &str) -> Scan {
    let bytes = text.as_bytes();
    let mut pieces = Vec::new();
    let mut open = None;
    let mut depth: u32 = 0;
    let mut piece_start = 0;
    let mut has_content = false;
    let mut regex_allowed = true;
    let mut position = 0;
    while let Some(&byte) = bytes.get(position) {
        let next = bytes.get(position + 1).copied();
        match byte {
            _ if byte.is_ascii_whitespace() => position += 1,
            b'-' if next == Some(b'-') => {
                position = text[position..]
                    .find('\n')
                    .map_or(bytes.len(), |newline| position + newline);
            }
            b'/' if next == Some(b'*') => match text[position + 2..].find("*/") {
                Some(close) => position += 2 + close + 2,
                None => {
                    open = Some(OpenConstruct::BlockComment);
                    position = bytes.len();
                }
            },
            b'\'' | b'"' => {
                has_content = true;
                regex_allowed = false;
                match quoted_end(bytes, position, byte) {
                    Some(end) => position = end,
                    None => {
                        open = Some(if byte == b'\'' {
                            OpenConstruct::SingleQuote
                        } else {
                            OpenConstruct::DoubleQuote
                        });
                        position = bytes.len();
                    }
                }
            }
            b'/' => {
                has_content = true;
                match regex_end(bytes, position).filter(|_| regex_allowed) {
                    Some(end) => {
                        position = end;
                        regex_allowed = false;
                    }
                    None => {
                        position += 1;
                        regex_allowed = true;
                    }
                }
            }
            b'(' => {
                has_content = true;
                depth = depth.saturating_add(1);
                regex_allowed = true;
                position += 1;
            }
            b')' => {
                has_content = true;
                depth = depth.saturating_sub(1);
                regex_allowed = false;
                position += 1;
            }
            b';' => {
                pieces.push(Piece {
                    range: piece_start..position,
                    has_content,
                });
                piece_start = position + 1;
                has_content = false;
                regex_allowed = true;
                position += 1;
            }
            _ if is_word_byte(byte) => {
                has_content = true;
                let word_start = position;
                while bytes.get(position).copied().is_some_and(is_word_byte) {
                    position += 1;
                }
                regex_allowed = text[word_start..position].eq_ignore_ascii_case("from");
            }
            _ => {
                has_content = true;
                regex_allowed = true;
                position += 1;
            }
        }
    }
    pieces.push(Piece {
        range: piece_start..bytes.len().max(piece_start),
        has_content,
    });
    if open.is_none() && depth > 0 {
        open = Some(OpenConstruct::Parentheses(depth));
    }
    Scan { pieces, open }
}

/// Gathers typed lines until they make complete input.
#[derive(Debug, Default)]
pub(crate) struct InputBuffer {
    pending: String,
}

impl InputBuffer {
    /// Adds one line, without its line break. Returns the whole input once this line completes
    /// it; lines before it are joined with `\n`, and a `\` that ended a line is dropped.
    pub(crate) fn push_line(&mut self, line: &str) -> Option<String> {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if let Some(before_backslash) = line.trim_end().strip_suffix('\\') {
            self.pending.push_str(before_backslash);
            self.pending.push('\n');
            return None;
        }
        self.pending.push_str(line);
        if scan(&self.pending).open.is_some() {
            self.pending.push('\n');
            return None;
        }
        Some(std::mem::take(&mut self.pending))
    }

    /// The lines taken so far that do not yet make complete input.
    pub(crate) fn pending(&self) -> &str {
        &self.pending
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    pub(crate) fn clear(&mut self) {
        self.pending.clear();
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn pieces_of_any_text_join_back_into_it(
            text in prop_oneof![any::<String>(), "[a-z '\"();/*\\\n=~é日-]{0,40}"]
        ) {
            let scanned = scan(&text);
            let mut rejoined = String::new();
            for (index, piece) in scanned.pieces.iter().enumerate() {
                prop_assert!(text.is_char_boundary(piece.range.start));
                prop_assert!(text.is_char_boundary(piece.range.end));
                if index > 0 {
                    rejoined.push(';');
                }
                rejoined.push_str(&text[piece.range.clone()]);
            }
            prop_assert_eq!(rejoined, text);
        }
    }

    fn piece_texts(text: &str) -> Vec<&str> {
        scan(text)
            .pieces
            .iter()
            .map(|piece| &text[piece.range.clone()])
            .collect()
    }

    #[test]
    fn balanced_input_is_complete() {
        assert_eq!(scan("SELECT mean(x) FROM cpu").open, None);
        assert_eq!(scan("SELECT 'a(' FROM \"b)\"").open, None);
        assert_eq!(scan("").open, None);
    }

    #[test]
    fn open_quotes_parentheses_and_block_comments_continue_the_input() {
        assert_eq!(
            scan("SELECT * FROM cpu WHERE host = 'a").open,
            Some(OpenConstruct::SingleQuote)
        );
        assert_eq!(
            scan("SELECT \"usage").open,
            Some(OpenConstruct::DoubleQuote)
        );
        assert_eq!(
            scan("SELECT mean(usage").open,
            Some(OpenConstruct::Parentheses(1))
        );
        assert_eq!(
            scan("SELECT ((a + b)").open,
            Some(OpenConstruct::Parentheses(1))
        );
        assert_eq!(
            scan("SELECT a /* note").open,
            Some(OpenConstruct::BlockComment)
        );
    }

    #[test]
    fn escaped_quotes_do_not_close_a_string() {
        assert_eq!(
            scan(r"SELECT * FROM m WHERE t = 'it\'s").open,
            Some(OpenConstruct::SingleQuote)
        );
        assert_eq!(scan(r"SELECT * FROM m WHERE t = 'it\'s'").open, None);
    }

    #[test]
    fn a_closing_parenthesis_too_many_does_not_wait_for_more() {
        assert_eq!(scan("SELECT a) FROM m").open, None);
    }

    #[test]
    fn brackets_and_quotes_in_comments_and_regexes_are_ignored() {
        assert_eq!(scan("SELECT a FROM m -- it's (open\n").open, None);
        assert_eq!(scan("SELECT a /* ( ' */ FROM m").open, None);
        assert_eq!(scan("SELECT a FROM m WHERE h =~ /x(y|'/").open, None);
        assert_eq!(scan("SELECT a FROM /cpu(\"/").open, None);
    }

    #[test]
    fn semicolons_split_statements_outside_quotes_regexes_and_comments() {
        assert_eq!(
            piece_texts("SHOW DATABASES; SELECT 'a;b' FROM m;SELECT x"),
            vec!["SHOW DATABASES", " SELECT 'a;b' FROM m", "SELECT x"]
        );
        assert_eq!(
            piece_texts("SELECT a FROM m WHERE h =~ /a;b/; SHOW MEASUREMENTS"),
            vec!["SELECT a FROM m WHERE h =~ /a;b/", " SHOW MEASUREMENTS"]
        );
        assert_eq!(
            piece_texts("SELECT a -- x; y\nFROM m"),
            vec!["SELECT a -- x; y\nFROM m"]
        );
    }

    #[test]
    fn division_is_not_mistaken_for_a_regex() {
        // Read as a regex, `/ 2; SELECT b /` would swallow the `;`.
        assert_eq!(
            piece_texts("SELECT a / 2; SELECT b / 4 FROM m"),
            vec!["SELECT a / 2", " SELECT b / 4 FROM m"]
        );
        assert_eq!(
            piece_texts("SELECT sum(a)/sum(b); SELECT 1/2"),
            vec!["SELECT sum(a)/sum(b)", " SELECT 1/2"]
        );
    }

    #[test]
    fn pieces_know_whether_they_hold_more_than_blanks_and_comments() {
        let scanned = scan("SELECT 1; ;  -- note\n; /* x */");
        let contents: Vec<bool> = scanned
            .pieces
            .iter()
            .map(|piece| piece.has_content)
            .collect();
        assert_eq!(contents, vec![true, false, false, false]);
    }

    #[test]
    fn input_buffer_joins_lines_until_the_statement_is_complete() {
        let mut buffer = InputBuffer::default();
        assert_eq!(buffer.push_line("SELECT mean(usage"), None);
        assert_eq!(
            buffer.push_line(") FROM cpu"),
            Some("SELECT mean(usage\n) FROM cpu".into())
        );
        assert!(buffer.is_empty());
        assert_eq!(
            buffer.push_line("SHOW DATABASES"),
            Some("SHOW DATABASES".into())
        );
    }

    #[test]
    fn input_buffer_continues_after_a_trailing_backslash() {
        let mut buffer = InputBuffer::default();
        assert_eq!(buffer.push_line("SELECT usage \\"), None);
        assert_eq!(buffer.pending(), "SELECT usage \n");
        assert_eq!(buffer.push_line("FROM cpu  \\  "), None);
        assert_eq!(
            buffer.push_line("LIMIT 1\r"),
            Some("SELECT usage \nFROM cpu  \nLIMIT 1".into())
        );
    }

    #[test]
    fn input_buffer_waits_for_a_quote_to_close() {
        let mut buffer = InputBuffer::default();
        assert_eq!(buffer.push_line("SELECT * FROM m WHERE t = 'a"), None);
        assert_eq!(
            buffer.push_line("b'"),
            Some("SELECT * FROM m WHERE t = 'a\nb'".into())
        );
        buffer.push_line("SELECT (");
        buffer.clear();
        assert!(buffer.is_empty());
    }
}
