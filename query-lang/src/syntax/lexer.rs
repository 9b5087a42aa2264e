//! Turns query text into tokens, one at a time, on the parser's demand.
//!
//! `/` is both division and the regex delimiter; only the parser knows which one it needs, so
//! the lexer reads `/` as [`TokenKind::Slash`] and the parser asks for
//! [`Lexer::rescan_regex`] where an operand is expected. Keywords are not special here: every
//! bare word is a [`TokenKind::Word`] and the parser compares words case-insensitively.
//!
//! The lexer never panics: it only slices the text at char boundaries it has walked to, and
//! every number is checked for overflow.

use super::ast::Span;
use super::error::ParseError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenKind {
    /// A bare identifier or keyword.
    Word,
    /// `"..."`: an identifier that may hold any character.
    QuotedIdent,
    /// `'...'`.
    String,
    Integer,
    Float,
    Duration,
    /// `/.../`, produced only by [`Lexer::rescan_regex`].
    Regex,
    LParen,
    RParen,
    Comma,
    Semicolon,
    Dot,
    DoubleColon,
    Star,
    Plus,
    Minus,
    Slash,
    Percent,
    Eq,
    NotEq,
    /// `<>`, the other spelling of `!=`.
    LtGt,
    Lt,
    LtEq,
    Gt,
    GtEq,
    EqTilde,
    NotTilde,
    Eof,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Token {
    pub(crate) kind: TokenKind,
    pub(crate) span: Span,
    /// The value of an [`TokenKind::Integer`], the bits of a [`TokenKind::Float`], or the
    /// magnitude in nanoseconds of a [`TokenKind::Duration`] (at most 2^63, so that a leading
    /// minus can reach `i64::MIN`).
    pub(crate) number: u64,
}

/// The units a duration may use, as written in error messages.
pub(crate) const DURATION_UNIT_LIST: &str = "ns, u, µ, ms, s, m, h, d or w";

/// The largest duration magnitude in nanoseconds: `-9223372036854775808ns` is still valid.
const MAX_DURATION_MAGNITUDE: u128 = 1 << 63;

pub(crate) fn is_ident_start(c: char) -> bool {
    c.is_alphabetic() || c == '_'
}

pub(crate) fn is_ident_continue(c: char) -> bool {
    c.is_alphabetic() || c == '_' || c.is_ascii_digit()
}

pub(crate) fn offset(position: usize) -> u32 {
    u32::try_from(position).unwrap_or(u32::MAX)
}

fn span(start: usize, end: usize) -> Span {
    Span::new(offset(start), offset(end))
}

pub(crate) struct Lexer<'a> {
    text: &'a str,
    position: usize,
}

impl<'a> Lexer<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        Self { text, position: 0 }
    }

    /// Moves to `position`, rounded up to a char boundary; returns where it moved to.
    pub(crate) fn set_position(&mut self, position: usize) -> usize {
        let mut position = position.min(self.text.len());
        while !self.text.is_char_boundary(position) {
            position += 1;
        }
        self.position = position;
        position
    }

    fn char_at(&self, position: usize) -> Option<char> {
        self.text
            .get(position..)
            .and_then(|rest| rest.chars().next())
    }

    fn error(&self, start: usize, end: usize, message: impl Into<String>) -> ParseError {
        ParseError::new(self.text, span(start, end), message)
    }

    fn token(&self, kind: TokenKind, start: usize, number: u64) -> Token {
        Token {
            kind,
            span: span(start, self.position),
            number,
        }
    }

    /// Skips whitespace, `-- line` comments and `/* block */` comments.
    fn skip_trivia(&mut self) -> Result<(), ParseError> {
        loop {
            let rest = &self.text[self.position..];
            let trimmed = rest.trim_start();
            self.position += rest.len() - trimmed.len();
            if trimmed.starts_with("--") {
                self.position += trimmed.find('\n').unwrap_or(trimmed.len());
            } else if let Some(comment) = trimmed.strip_prefix("/*") {
                match comment.find("*/") {
                    Some(close) => self.position += 2 + close + 2,
                    None => {
                        return Err(self.error(
                            self.position,
                            self.position + 2,
                            "unterminated block comment starting here",
                        ));
                    }
                }
            } else {
                return Ok(());
            }
        }
    }

    /// The next token, reading `/` as [`TokenKind::Slash`].
    pub(crate) fn next_token(&mut self) -> Result<Token, ParseError> {
        self.skip_trivia()?;
        let start = self.position;
        let Some(c) = self.char_at(start) else {
            return Ok(self.token(TokenKind::Eof, start, 0));
        };
        let next = self.char_at(start + c.len_utf8());
        if c.is_ascii_digit() || (c == '.' && next.is_some_and(|n| n.is_ascii_digit())) {
            return self.number(start);
        }
        if is_ident_start(c) {
            self.position = start + c.len_utf8();
            while let Some(c) = self
                .char_at(self.position)
                .filter(|&c| is_ident_continue(c))
            {
                self.position += c.len_utf8();
            }
            return Ok(self.token(TokenKind::Word, start, 0));
        }
        let (kind, length) = match (c, next) {
            ('\'', _) => return self.quoted(start, '\'', TokenKind::String),
            ('"', _) => return self.quoted(start, '"', TokenKind::QuotedIdent),
            ('(', _) => (TokenKind::LParen, 1),
            (')', _) => (TokenKind::RParen, 1),
            (',', _) => (TokenKind::Comma, 1),
            (';', _) => (TokenKind::Semicolon, 1),
            ('.', _) => (TokenKind::Dot, 1),
            (':', Some(':')) => (TokenKind::DoubleColon, 2),
            (':', _) => {
                return Err(self.error(
                    start,
                    start + 1,
                    "unexpected ':' (casts are written with '::', e.g. usage::float)",
                ));
            }
            ('*', _) => (TokenKind::Star, 1),
            ('+', _) => (TokenKind::Plus, 1),
            ('-', _) => (TokenKind::Minus, 1),
            ('/', _) => (TokenKind::Slash, 1),
            ('%', _) => (TokenKind::Percent, 1),
            ('=', Some('~')) => (TokenKind::EqTilde, 2),
            ('=', _) => (TokenKind::Eq, 1),
            ('!', Some('=')) => (TokenKind::NotEq, 2),
            ('!', Some('~')) => (TokenKind::NotTilde, 2),
            ('!', _) => {
                return Err(self.error(
                    start,
                    start + 1,
                    "unexpected '!' (did you mean != or !~?)",
                ));
            }
            ('<', Some('=')) => (TokenKind::LtEq, 2),
            ('<', Some('>')) => (TokenKind::LtGt, 2),
            ('<', _) => (TokenKind::Lt, 1),
            ('>', Some('=')) => (TokenKind::GtEq, 2),
            ('>', _) => (TokenKind::Gt, 1),
            _ => {
                return Err(self.error(
                    start,
                    start + c.len_utf8(),
                    format!("unexpected character '{}'", c.escape_debug()),
                ));
            }
        };
        self.position = start + length;
        Ok(self.token(kind, start, 0))
    }

    /// Reads a regex `/.../` starting at `start`, which must hold a `/` (the parser calls this
    /// where it holds a [`TokenKind::Slash`] and needs an operand).
    pub(crate) fn rescan_regex(&mut self, start: usize) -> Result<Token, ParseError> {
        let mut position = start + 1;
        loop {
            match self.char_at(position) {
                None | Some('\n') => {
                    return Err(self.error(start, start + 1, "unterminated regex starting here"));
                }
                Some('/') => {
                    self.position = position + 1;
                    return Ok(self.token(TokenKind::Regex, start, 0));
                }
                Some('\\') => {
                    position += 1;
                    match self.char_at(position) {
                        None | Some('\n') => {
                            return Err(self.error(
                                start,
                                start + 1,
                                "unterminated regex starting here",
                            ));
                        }
                        Some(escaped) => position += escaped.len_utf8(),
                    }
                }
                Some(c) => position += c.len_utf8(),
            }
        }
    }

    /// A string or quoted identifier; escapes are checked here and decoded by [`unescape`].
    fn quoted(&mut self, start: usize, quote: char, kind: TokenKind) -> Result<Token, ParseError> {
        let what = if quote == '\'' {
            "string literal"
        } else {
            "quoted identifier"
        };
        let mut position = start + 1;
        loop {
            match self.char_at(position) {
                None | Some('\n') => {
                    return Err(self.error(
                        start,
                        start + 1,
                        format!("unterminated {what} starting here"),
                    ));
                }
                Some('\\') => match self.char_at(position + 1) {
                    Some('\\' | '\'' | '"' | 'n') => position += 2,
                    None | Some('\n') => {
                        return Err(self.error(
                            start,
                            start + 1,
                            format!("unterminated {what} starting here"),
                        ));
                    }
                    Some(other) => {
                        return Err(self.error(
                            position,
                            position + 1 + other.len_utf8(),
                            format!(
                                "invalid escape sequence '\\{}' in {what} (expected \\', \\\", \\\\ or \\n)",
                                other.escape_debug()
                            ),
                        ));
                    }
                },
                Some(c) if c == quote => {
                    self.position = position + 1;
                    return Ok(self.token(kind, start, 0));
                }
                Some(c) => position += c.len_utf8(),
            }
        }
    }

    fn digits_end(&self, mut position: usize) -> usize {
        while self
            .text
            .as_bytes()
            .get(position)
            .is_some_and(u8::is_ascii_digit)
        {
            position += 1;
        }
        position
    }

    fn letters_end(&self, mut position: usize) -> usize {
        while let Some(c) = self.char_at(position).filter(|c| c.is_alphabetic()) {
            position += c.len_utf8();
        }
        position
    }

    fn number(&mut self, start: usize) -> Result<Token, ParseError> {
        let integer_end = self.digits_end(start);
        let bytes = self.text.as_bytes();
        let is_float = bytes.get(integer_end) == Some(&b'.')
            && bytes.get(integer_end + 1).is_some_and(u8::is_ascii_digit);
        if is_float {
            let end = self.digits_end(integer_end + 1);
            let letters_end = self.letters_end(end);
            if letters_end > end {
                return Err(self.error(
                    start,
                    letters_end,
                    "a duration must be a whole number of units (write 90m, not 1.5h)",
                ));
            }
            let value: f64 = self.text[start..end]
                .parse()
                .ok()
                .filter(|value: &f64| value.is_finite())
                .ok_or_else(|| self.error(start, end, "number literal out of range"))?;
            self.position = end;
            return Ok(self.token(TokenKind::Float, start, value.to_bits()));
        }
        if self.letters_end(integer_end) > integer_end {
            return self.duration(start);
        }
        let value: u64 = self.text[start..integer_end].parse().map_err(|_| {
            self.error(
                start,
                integer_end,
                format!("integer literal out of range (the largest is {})", u64::MAX),
            )
        })?;
        self.position = integer_end;
        Ok(self.token(TokenKind::Integer, start, value))
    }

    /// A duration: one or more `<digits><unit>` parts, such as `5m` or `1h30m`.
    fn duration(&mut self, start: usize) -> Result<Token, ParseError> {
        let mut total: u128 = 0;
        let mut position = start;
        loop {
            let digits_end = self.digits_end(position);
            let unit_end = self.letters_end(digits_end);
            let unit = &self.text[digits_end..unit_end];
            if unit.is_empty() {
                return Err(self.error(
                    position,
                    digits_end,
                    format!(
                        "duration '{}' needs a unit after {} (one of {DURATION_UNIT_LIST})",
                        &self.text[start..digits_end],
                        &self.text[position..digits_end]
                    ),
                ));
            }
            let unit_nanos: u128 = match unit {
                "ns" => 1,
                "u" | "µ" => 1_000,
                "ms" => 1_000_000,
                "s" => 1_000_000_000,
                "m" => 60_000_000_000,
                "h" => 3_600_000_000_000,
                "d" => 86_400_000_000_000,
                "w" => 604_800_000_000_000,
                _ => {
                    return Err(self.error(
                        digits_end,
                        unit_end,
                        format!("invalid duration unit '{unit}' (expected {DURATION_UNIT_LIST})"),
                    ));
                }
            };
            let out_of_range = || {
                self.error(
                    start,
                    unit_end,
                    "duration out of range (the longest is 9223372036854775807ns, about 292 years)",
                )
            };
            // More than 39 digits cannot fit u128; such a duration is out of range anyway.
            let count: u128 = self.text[position..digits_end]
                .parse()
                .map_err(|_| out_of_range())?;
            total = count
                .checked_mul(unit_nanos)
                .and_then(|nanos| nanos.checked_add(total))
                .filter(|&total| total <= MAX_DURATION_MAGNITUDE)
                .ok_or_else(out_of_range)?;
            position = unit_end;
            if !self
                .text
                .as_bytes()
                .get(position)
                .is_some_and(u8::is_ascii_digit)
            {
                break;
            }
        }
        self.position = position;
        let magnitude = u64::try_from(total).unwrap_or(u64::MAX);
        Ok(self.token(TokenKind::Duration, start, magnitude))
    }
}

/// Decodes the inside of a string or quoted identifier the lexer accepted.
pub(crate) fn unescape(inner: &str) -> String {
    if !inner.contains('\\') {
        return inner.to_owned();
    }
    let mut value = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            value.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => value.push('\n'),
            Some(escaped) => value.push(escaped),
            None => value.push('\\'),
        }
    }
    value
}

/// Decodes the inside of a regex the lexer accepted: `\/` becomes `/`, other escapes stay for
/// the regex engine.
pub(crate) fn unescape_regex(inner: &str) -> String {
    let mut pattern = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            pattern.push(c);
            continue;
        }
        match chars.next() {
            Some('/') => pattern.push('/'),
            Some(escaped) => {
                pattern.push('\\');
                pattern.push(escaped);
            }
            None => pattern.push('\\'),
        }
    }
    pattern
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<TokenKind> {
        let mut lexer = Lexer::new(text);
        let mut kinds = Vec::new();
        loop {
            let token = lexer.next_token().unwrap();
            if token.kind == TokenKind::Eof {
                return kinds;
            }
            kinds.push(token.kind);
        }
    }

    fn single(text: &str) -> Token {
        let mut lexer = Lexer::new(text);
        let token = lexer.next_token().unwrap();
        assert_eq!(
            lexer.next_token().unwrap().kind,
            TokenKind::Eof,
            "more than one token"
        );
        token
    }

    fn lex_error(text: &str) -> ParseError {
        let mut lexer = Lexer::new(text);
        loop {
            match lexer.next_token() {
                Ok(token) if token.kind == TokenKind::Eof => panic!("no error in {text:?}"),
                Ok(_) => {}
                Err(error) => return error,
            }
        }
    }

    #[test]
    fn operators_take_the_longest_match() {
        use TokenKind::*;
        assert_eq!(
            kinds("= =~ != !~ <> < <= > >= :: * + - / % . , ; ( )"),
            vec![
                Eq,
                EqTilde,
                NotEq,
                NotTilde,
                LtGt,
                Lt,
                LtEq,
                Gt,
                GtEq,
                DoubleColon,
                Star,
                Plus,
                Minus,
                Slash,
                Percent,
                Dot,
                Comma,
                Semicolon,
                LParen,
                RParen
            ]
        );
    }

    #[test]
    fn comments_are_skipped_and_unterminated_block_comments_are_errors() {
        use TokenKind::*;
        assert_eq!(kinds("a -- b c\n d /* e \n f */ g"), vec![Word, Word, Word]);
        assert_eq!(kinds("a--b"), vec![Word]);
        let error = lex_error("a /* b");
        assert_eq!(error.message, "unterminated block comment starting here");
        assert_eq!(error.span, Span::new(2, 4));
    }

    #[test]
    fn durations_add_up_their_parts_in_nanoseconds() {
        assert_eq!(single("10s").number, 10_000_000_000);
        assert_eq!(single("1h30m").number, 5_400_000_000_000);
        assert_eq!(single("100ms").number, 100_000_000);
        assert_eq!(single("10u").number, 10_000);
        assert_eq!(single("10µ").number, 10_000);
        assert_eq!(single("50ns").number, 50);
        assert_eq!(single("2w").number, 2 * 604_800_000_000_000);
        assert_eq!(single("7d").number, 7 * 86_400_000_000_000);
        assert_eq!(single("9223372036854775808ns").number, 1 << 63);
    }

    #[test]
    fn bad_durations_name_the_unit_or_the_range() {
        let error = lex_error("10x");
        assert_eq!(
            error.message,
            "invalid duration unit 'x' (expected ns, u, µ, ms, s, m, h, d or w)"
        );
        assert_eq!(error.span, Span::new(2, 3));
        assert_eq!(lex_error("5mins").span, Span::new(1, 5));
        assert!(lex_error("1h30").message.contains("needs a unit after 30"));
        assert!(
            lex_error("9223372036854775809ns")
                .message
                .starts_with("duration out of range")
        );
        assert!(
            lex_error("99999999999999999999999999999999999999999w")
                .message
                .starts_with("duration out of range")
        );
        assert!(lex_error("1.5h").message.contains("whole number"));
    }

    #[test]
    fn integers_floats_and_their_limits() {
        assert_eq!(single("18446744073709551615").number, u64::MAX);
        assert_eq!(f64::from_bits(single("1.25").number), 1.25);
        assert_eq!(f64::from_bits(single(".5").number), 0.5);
        assert!(
            lex_error("18446744073709551616")
                .message
                .starts_with("integer literal out of range")
        );
        let huge_float = format!("{}.0", "9".repeat(400));
        assert_eq!(
            lex_error(&huge_float).message,
            "number literal out of range"
        );
    }

    #[test]
    fn strings_and_quoted_identifiers_check_their_escapes() {
        let token = single(r"'it\'s \\ \n'");
        assert_eq!(token.kind, TokenKind::String);
        assert_eq!(unescape(r"it\'s \\ \n"), "it's \\ \n");
        assert_eq!(single(r#""a \" b""#).kind, TokenKind::QuotedIdent);
        let error = lex_error(r"'a\qb'");
        assert!(
            error.message.starts_with("invalid escape sequence '\\q'"),
            "{}",
            error.message
        );
        assert_eq!(error.span, Span::new(2, 4));
        let error = lex_error("x = 'abc");
        assert_eq!(error.message, "unterminated string literal starting here");
        assert_eq!(error.span, Span::new(4, 5));
        assert_eq!(
            lex_error("'a\nb'").message,
            "unterminated string literal starting here"
        );
        assert_eq!(
            lex_error("\"abc").message,
            "unterminated quoted identifier starting here"
        );
    }

    #[test]
    fn regexes_are_read_only_on_request_and_keep_their_escapes() {
        let mut lexer = Lexer::new(r"/a\/b\d/ x");
        let slash = lexer.next_token().unwrap();
        assert_eq!(slash.kind, TokenKind::Slash);
        let regex = lexer.rescan_regex(0).unwrap();
        assert_eq!(regex.kind, TokenKind::Regex);
        assert_eq!(regex.span, Span::new(0, 8));
        assert_eq!(unescape_regex(r"a\/b\d"), r"a/b\d");
        assert_eq!(lexer.next_token().unwrap().kind, TokenKind::Word);
        let mut lexer = Lexer::new("/abc");
        assert_eq!(
            lexer.rescan_regex(0).unwrap_err().message,
            "unterminated regex starting here"
        );
    }

    #[test]
    fn words_may_hold_unicode_letters_digits_and_underscores() {
        assert_eq!(single("_gpu_0_util").kind, TokenKind::Word);
        assert_eq!(single("température").span, Span::new(0, 12));
    }

    #[test]
    fn stray_characters_are_named_in_the_error() {
        assert_eq!(lex_error("a # b").message, "unexpected character '#'");
        assert_eq!(
            lex_error("a ! b").message,
            "unexpected '!' (did you mean != or !~?)"
        );
        assert!(lex_error("a : b").message.contains("'::'"));
        assert_eq!(lex_error("\u{0}").message, "unexpected character '\\0'");
    }
}
