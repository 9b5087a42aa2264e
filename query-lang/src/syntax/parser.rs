//! A hand-written recursive descent parser, with precedence climbing for expressions.
//!
//! Invariants:
//! - no panics on any input: tokens come from the lexer with char-aligned spans, and every
//!   number is range-checked;
//! - bounded recursion and tree depth: [`ParseLimits::max_depth`] caps both the nesting the
//!   parser walks into (parentheses, calls, negations, subqueries) and the depth of the tree it
//!   returns (a long `a + b + c ...` chain is a deep tree too), so later recursive passes
//!   (printing, dropping, visiting) cannot overflow the stack either;
//! - memory grows linearly with the query text, which the caller bounds with
//!   [`ParseLimits::max_query_bytes`].
//!
//! While the current token is the end of the text, the parser notes what it would have
//! accepted there; [`complete`](crate::complete) parses the text before the cursor and reads
//! those notes.

use super::ast::{
    AlterRetentionPolicyStatement, BinaryExpr, BinaryOp, Call, CardinalityKind, Cast,
    CreateDatabaseStatement, CreateRetentionPolicyStatement, DatabaseRetention, DeleteStatement,
    DropDatabaseStatement, DropMeasurementStatement, DropRetentionPolicyStatement,
    DropSeriesStatement, ExplainStatement, Expr, Field, Fill, FillOption, GroupBy, Ident, Literal,
    LiteralValue, MeasurementName, MeasurementRef, ParenExpr, Query, RegexLiteral,
    RetentionDuration, SelectStatement, ShowCardinalityStatement, ShowFieldKeysStatement,
    ShowMeasurementsStatement, ShowRetentionPoliciesStatement, ShowSeriesStatement,
    ShowTagKeysStatement, ShowTagValuesStatement, Source, Span, Statement, TagKeyMatch,
    TimeDimension, TimeOffset, UnaryExpr, UnaryOp, VarRef, Wildcard,
};
use super::error::ParseError;
use super::lexer::{Lexer, Token, TokenKind, offset, unescape, unescape_regex};

/// Bounds on what the parser accepts, so that no query can exhaust memory or the stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseLimits {
    /// The longest query text accepted, in bytes (never more than `u32::MAX`).
    pub max_query_bytes: usize,
    /// The deepest nesting of parentheses, calls, negations, subqueries and operator chains.
    pub max_depth: u32,
}

impl Default for ParseLimits {
    fn default() -> Self {
        Self {
            max_query_bytes: 1 << 20,
            max_depth: 128,
        }
    }
}

/// Words that cannot be bare names because the grammar gives them a meaning where a name could
/// also stand; `"from"` (double-quoted) is still a valid name.
pub(crate) const RESERVED_WORDS: &[&str] = &[
    "and", "as", "by", "distinct", "from", "group", "into", "limit", "offset", "on", "or", "order",
    "select", "slimit", "soffset", "where", "with",
];

/// Every keyword of the grammar, so that error messages can print them as keywords.
const KEYWORDS: &[&str] = &[
    "alerts",
    "alter",
    "analyze",
    "and",
    "as",
    "asc",
    "by",
    "cardinality",
    "compactions",
    "create",
    "database",
    "databases",
    "default",
    "delete",
    "desc",
    "diagnostics",
    "distinct",
    "drop",
    "duration",
    "exact",
    "explain",
    "field",
    "from",
    "group",
    "in",
    "inf",
    "into",
    "key",
    "keys",
    "limit",
    "measurement",
    "measurements",
    "name",
    "offset",
    "on",
    "or",
    "order",
    "policies",
    "policy",
    "replication",
    "retention",
    "rules",
    "select",
    "series",
    "shard",
    "show",
    "slimit",
    "soffset",
    "stats",
    "tag",
    "values",
    "where",
    "with",
    "fill",
    "tz",
    "time",
];

/// The words that may start a statement, as listed in error messages and completions.
const STATEMENT_KEYWORDS: [&str; 7] = [
    "SELECT", "SHOW", "CREATE", "DROP", "ALTER", "DELETE", "EXPLAIN",
];

/// Clause keywords of SELECT in the order they must appear.
const SELECT_CLAUSE_WORDS: [&str; 10] = [
    "from", "where", "group", "fill", "order", "limit", "offset", "slimit", "soffset", "tz",
];

pub(crate) fn is_reserved_word(word: &str) -> bool {
    RESERVED_WORDS
        .iter()
        .any(|reserved| reserved.eq_ignore_ascii_case(word))
}

fn is_keyword(word: &str) -> bool {
    KEYWORDS
        .iter()
        .any(|keyword| keyword.eq_ignore_ascii_case(word))
}

/// Something the parser would have accepted at the end of the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expectation {
    Keyword(&'static str),
    Measurement,
    Field,
    Tag,
    /// Any function of the function table.
    Function,
    /// Only `now()`, as in WHERE clauses.
    NowFunction,
    Database,
    RetentionPolicy,
}

/// Which kind of operand an expression is being read for; it shapes completions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OperandContext {
    Select,
    Condition,
}

/// "a, b or c".
fn join_alternatives(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [only] => (*only).to_owned(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// One of the two parts of a possibly qualified measurement name.
enum MeasurementPart {
    Name(Ident),
    Regex(RegexLiteral),
}

pub(crate) struct Parser<'a> {
    text: &'a str,
    lexer: Lexer<'a>,
    current: Token,
    /// End of the last token consumed, for the spans of the nodes that end there.
    previous_end: u32,
    depth: u32,
    max_depth: u32,
    context: OperandContext,
    /// Whether the last error came from the lexer rather than from the grammar.
    lexer_failed: bool,
    /// A lexer error met before parsing began, reported by [`Parser::parse_query_recovering`].
    pending_error: Option<ParseError>,
    pub(crate) expectations: Vec<Expectation>,
}

impl<'a> Parser<'a> {
    /// A parser positioned before the first token; fails only when the text is too long.
    fn blank(text: &'a str, limits: &ParseLimits) -> Result<Self, ParseError> {
        let max_bytes = limits.max_query_bytes.min(u32::MAX as usize);
        if text.len() > max_bytes {
            return Err(ParseError::new(
                "",
                Span::default(),
                format!(
                    "query is {} bytes long, more than the limit of {max_bytes}",
                    text.len()
                ),
            ));
        }
        Ok(Self {
            text,
            lexer: Lexer::new(text),
            current: Token {
                kind: TokenKind::Eof,
                span: Span::default(),
                number: 0,
            },
            previous_end: 0,
            depth: 0,
            max_depth: limits.max_depth,
            context: OperandContext::Select,
            lexer_failed: false,
            pending_error: None,
            expectations: Vec::new(),
        })
    }

    pub(crate) fn new(text: &'a str, limits: &ParseLimits) -> Result<Self, ParseError> {
        let mut parser = Self::blank(text, limits)?;
        parser.current = parser.lexer.next_token()?;
        Ok(parser)
    }

    /// A parser for [`Parser::parse_query_recovering`]: it starts even where the first token
    /// is bad, keeping that error for the list.
    pub(crate) fn new_for_recovery(
        text: &'a str,
        limits: &ParseLimits,
    ) -> Result<Self, ParseError> {
        let mut parser = Self::blank(text, limits)?;
        match parser.lexer.next_token() {
            Ok(token) => parser.current = token,
            Err(error) => {
                parser.lexer_failed = true;
                parser.recover(&error);
                parser.pending_error = Some(error);
            }
        }
        Ok(parser)
    }

    // ---------------------------------------------------------------- tokens

    fn token_text(&self, token: Token) -> &'a str {
        self.text.get(token.span.range()).unwrap_or("")
    }

    fn advance(&mut self) -> Result<Token, ParseError> {
        let token = self.current;
        self.previous_end = token.span.end;
        self.expectations.clear();
        match self.lexer.next_token() {
            Ok(next) => {
                self.current = next;
                Ok(token)
            }
            Err(error) => {
                self.lexer_failed = true;
                Err(error)
            }
        }
    }

    fn at(&self, kind: TokenKind) -> bool {
        self.current.kind == kind
    }

    fn eat(&mut self, kind: TokenKind) -> Result<Option<Token>, ParseError> {
        if self.at(kind) {
            self.advance().map(Some)
        } else {
            Ok(None)
        }
    }

    fn note(&mut self, expectation: Expectation) {
        if self.current.kind == TokenKind::Eof {
            self.expectations.push(expectation);
        }
    }

    /// Whether the current token is the word `keyword` (in any case), without noting it.
    fn is_word(&self, keyword: &str) -> bool {
        self.current.kind == TokenKind::Word
            && self.token_text(self.current).eq_ignore_ascii_case(keyword)
    }

    /// Whether the current token is `keyword`; notes it as acceptable when it is not.
    fn at_keyword(&mut self, keyword: &'static str) -> bool {
        let found = self.is_word(keyword);
        if !found {
            self.note(Expectation::Keyword(keyword));
        }
        found
    }

    fn eat_keyword(&mut self, keyword: &'static str) -> Result<Option<Span>, ParseError> {
        if self.at_keyword(keyword) {
            Ok(Some(self.advance()?.span))
        } else {
            Ok(None)
        }
    }

    fn expect_keyword(&mut self, keyword: &'static str) -> Result<Span, ParseError> {
        match self.eat_keyword(keyword)? {
            Some(span) => Ok(span),
            None => Err(self.unexpected(keyword, &[keyword])),
        }
    }

    fn expect_keyword_after(
        &mut self,
        keyword: &'static str,
        after: &str,
    ) -> Result<Span, ParseError> {
        match self.eat_keyword(keyword)? {
            Some(span) => Ok(span),
            None => Err(self.unexpected(&format!("{keyword} after {after}"), &[keyword])),
        }
    }

    fn expect(&mut self, kind: TokenKind, description: &str) -> Result<Token, ParseError> {
        if self.at(kind) {
            self.advance()
        } else {
            Err(self.unexpected(description, &[description]))
        }
    }

    /// How the current token reads in an error message: `WHERE`, `identifier host`, `','`.
    fn describe_current(&self) -> String {
        let text = self.token_text(self.current);
        let shown = if text.chars().count() > 40 {
            format!("{}...", text.chars().take(40).collect::<String>())
        } else {
            text.to_owned()
        };
        match self.current.kind {
            TokenKind::Eof => "end of query".to_owned(),
            TokenKind::Word if is_keyword(text) => {
                // Words written like functions read best in lower case, as they are printed.
                if ["fill", "tz", "time"]
                    .iter()
                    .any(|word| word.eq_ignore_ascii_case(text))
                {
                    text.to_ascii_lowercase()
                } else {
                    text.to_ascii_uppercase()
                }
            }
            TokenKind::Word | TokenKind::QuotedIdent => format!("identifier {shown}"),
            TokenKind::String => format!("string {shown}"),
            TokenKind::Integer | TokenKind::Float => format!("number {shown}"),
            TokenKind::Duration => format!("duration {shown}"),
            TokenKind::Regex => format!("regex {shown}"),
            _ => format!("'{shown}'"),
        }
    }

    /// `expected {description}, found {current token}`.
    fn unexpected(&self, description: &str, expected: &[&str]) -> ParseError {
        let found = self.describe_current();
        let span = if self.at(TokenKind::Eof) {
            Span::new(offset(self.text.len()), offset(self.text.len()))
        } else {
            self.current.span
        };
        ParseError::new(
            self.text,
            span,
            format!("expected {description}, found {found}"),
        )
        .with_expected(expected.iter().copied())
        .with_found(found)
    }

    fn error_at(&self, span: Span, message: impl Into<String>) -> ParseError {
        ParseError::new(self.text, span, message)
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth = self.depth.saturating_add(1);
        if self.depth > self.max_depth {
            return Err(self.too_deep(self.current.span));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    fn too_deep(&self, span: Span) -> ParseError {
        self.error_at(
            span,
            format!(
                "query nested too deeply (more than {} levels of parentheses, calls, operators or subqueries)",
                self.max_depth
            ),
        )
    }

    fn check_tree_depth(&self, tree_depth: u32, span: Span) -> Result<(), ParseError> {
        if self.depth.saturating_add(tree_depth) > self.max_depth {
            return Err(self.too_deep(span));
        }
        Ok(())
    }

    fn span_from(&self, start: Span) -> Span {
        Span::new(start.start, self.previous_end.max(start.end))
    }

    // ---------------------------------------------------------------- queries

    pub(crate) fn parse_query(&mut self) -> Result<Query, ParseError> {
        let mut statements = Vec::new();
        while let Some(statement) = self.parse_next_statement(statements.is_empty())? {
            statements.push(statement);
        }
        Ok(Query {
            statements,
            span: Span::new(0, offset(self.text.len())),
        })
    }

    /// Parses statement after statement, skipping to the next `;` after an error.
    pub(crate) fn parse_query_recovering(&mut self) -> (Vec<Statement>, Vec<ParseError>) {
        let mut statements = Vec::new();
        let mut errors = Vec::new();
        if let Some(error) = self.pending_error.take() {
            errors.push(error);
        }
        loop {
            match self.parse_next_statement(statements.is_empty() && errors.is_empty()) {
                Ok(Some(statement)) => statements.push(statement),
                Ok(None) => break,
                Err(error) => {
                    let at_end = self.at(TokenKind::Eof) && !self.lexer_failed;
                    self.recover(&error);
                    errors.push(error);
                    if at_end {
                        break;
                    }
                }
            }
            if self.at(TokenKind::Eof) {
                break;
            }
        }
        (statements, errors)
    }

    /// The statement after any `;`, or `None` at the end of a query that had one already.
    fn parse_next_statement(&mut self, first: bool) -> Result<Option<Statement>, ParseError> {
        while self.eat(TokenKind::Semicolon)?.is_some() {}
        if self.at(TokenKind::Eof) && !first {
            self.note_statement_keywords();
            return Ok(None);
        }
        let statement = self.parse_statement()?;
        self.expect_statement_end()?;
        Ok(Some(statement))
    }

    /// After an error, drops tokens up to the next `;` (or the end) so parsing can go on.
    fn recover(&mut self, error: &ParseError) {
        self.depth = 0;
        if !self.lexer_failed && matches!(self.current.kind, TokenKind::Semicolon | TokenKind::Eof)
        {
            return;
        }
        self.expectations.clear();
        let mut position = if self.lexer_failed {
            error.span.end.max(error.span.start.saturating_add(1)) as usize
        } else {
            self.current.span.end as usize
        };
        self.lexer_failed = false;
        loop {
            position = self.lexer.set_position(position);
            match self.lexer.next_token() {
                Ok(token) if matches!(token.kind, TokenKind::Semicolon | TokenKind::Eof) => {
                    self.current = token;
                    return;
                }
                Ok(token) => position = token.span.end as usize,
                Err(error) => {
                    position = (error.span.end as usize).max(position + 1);
                }
            }
        }
    }

    fn expect_statement_end(&mut self) -> Result<(), ParseError> {
        if self.at(TokenKind::Semicolon) || self.at(TokenKind::Eof) {
            return Ok(());
        }
        Err(self.unexpected("';' or end of query after the statement", &["';'"]))
    }

    fn note_statement_keywords(&mut self) {
        for keyword in STATEMENT_KEYWORDS {
            self.note(Expectation::Keyword(keyword));
        }
    }

    pub(crate) fn parse_single_statement(&mut self) -> Result<Statement, ParseError> {
        while self.eat(TokenKind::Semicolon)?.is_some() {}
        let statement = self.parse_statement()?;
        while self.eat(TokenKind::Semicolon)?.is_some() {}
        if !self.at(TokenKind::Eof) {
            return Err(self.unexpected("end of query after the statement", &[]));
        }
        Ok(statement)
    }

    pub(crate) fn parse_standalone_expr(&mut self) -> Result<Expr, ParseError> {
        self.context = OperandContext::Condition;
        let (expr, _) = self.parse_operand_expr("expression")?;
        if !self.at(TokenKind::Eof) {
            return Err(self.unexpected("an operator or end of expression", &[]));
        }
        Ok(expr)
    }

    fn parse_statement(&mut self) -> Result<Statement, ParseError> {
        self.depth = 0;
        let start = self.current.span;
        if self.at_keyword("SELECT") {
            return Ok(Statement::Select(Box::new(self.parse_select()?)));
        }
        if self.eat_keyword("SHOW")?.is_some() {
            return self.parse_show(start);
        }
        if self.eat_keyword("CREATE")?.is_some() {
            return self.parse_create(start);
        }
        if self.eat_keyword("DROP")?.is_some() {
            return self.parse_drop(start);
        }
        if self.eat_keyword("ALTER")?.is_some() {
            return self.parse_alter(start);
        }
        if self.eat_keyword("DELETE")?.is_some() {
            return self.parse_delete(start);
        }
        if self.eat_keyword("EXPLAIN")?.is_some() {
            let analyze = self.eat_keyword("ANALYZE")?.is_some();
            if !self.at_keyword("SELECT") {
                return Err(self.unexpected("SELECT after EXPLAIN", &["SELECT"]));
            }
            let select = Box::new(self.parse_select()?);
            return Ok(Statement::Explain(ExplainStatement {
                analyze,
                select,
                span: self.span_from(start),
            }));
        }
        self.note_statement_keywords();
        Err(self.unexpected(
            &format!("a statement ({})", join_alternatives(&STATEMENT_KEYWORDS)),
            &STATEMENT_KEYWORDS,
        ))
    }

    // ---------------------------------------------------------------- SELECT

    fn parse_select(&mut self) -> Result<SelectStatement, ParseError> {
        let start = self.expect_keyword("SELECT")?;
        let fields = self.parse_fields()?;
        if self.is_word("into") {
            return Err(self.error_at(
                self.current.span,
                "SELECT ... INTO is not supported: Tally does not write query results back into a measurement",
            ));
        }
        if self.eat_keyword("FROM")?.is_none() {
            return Err(self.unexpected("FROM", &["FROM"]));
        }
        let sources = self.parse_sources()?;
        let condition = self.parse_where()?;
        let group_by = match self.eat_keyword("GROUP")? {
            Some(group_span) => {
                self.expect_keyword_after("BY", "GROUP")?;
                Some(self.parse_group_by(group_span)?)
            }
            None => None,
        };
        let fill = if self.at_keyword("fill") {
            Some(self.parse_fill()?)
        } else {
            None
        };
        let mut order_desc = false;
        if self.eat_keyword("ORDER")?.is_some() {
            self.expect_keyword_after("BY", "ORDER")?;
            if !self.at_keyword("time") {
                return Err(self.unexpected(
                    "time after ORDER BY (only ORDER BY time is supported)",
                    &["time"],
                ));
            }
            self.advance()?;
            if self.eat_keyword("DESC")?.is_some() {
                order_desc = true;
            } else {
                self.eat_keyword("ASC")?;
            }
        }
        let limit = self.parse_count_clause("LIMIT")?;
        let offset = self.parse_count_clause("OFFSET")?;
        let slimit = self.parse_count_clause("SLIMIT")?;
        let soffset = self.parse_count_clause("SOFFSET")?;
        let tz = if self.at_keyword("tz") {
            self.advance()?;
            self.expect(TokenKind::LParen, "'(' after tz")?;
            if !self.at(TokenKind::String) {
                return Err(self.unexpected(
                    "a time zone name in single quotes, e.g. tz('Europe/Paris')",
                    &["string"],
                ));
            }
            let name = self.take_string()?;
            self.expect(TokenKind::RParen, "')' after the time zone name")?;
            Some(name)
        } else {
            None
        };
        if let Some(clause) = SELECT_CLAUSE_WORDS.iter().find(|word| self.is_word(word)) {
            return Err(self.error_at(
                self.current.span,
                format!(
                    "{} is out of place: the clauses of SELECT go in the order FROM, WHERE, GROUP BY, fill(), ORDER BY, LIMIT, OFFSET, SLIMIT, SOFFSET, tz()",
                    match *clause {
                        "fill" | "tz" => format!("{clause}()"),
                        "group" => "GROUP BY".to_owned(),
                        "order" => "ORDER BY".to_owned(),
                        _ => clause.to_ascii_uppercase(),
                    }
                ),
            ));
        }
        Ok(SelectStatement {
            fields,
            sources,
            condition,
            group_by,
            fill,
            order_desc,
            limit,
            offset,
            slimit,
            soffset,
            tz,
            span: self.span_from(start),
        })
    }

    fn parse_fields(&mut self) -> Result<Vec<Field>, ParseError> {
        let mut fields = Vec::new();
        loop {
            self.context = OperandContext::Select;
            let (expr, _) = self.parse_operand_expr("a field, function call, '*' or expression")?;
            let alias = if self.eat_keyword("AS")?.is_some() {
                Some(self.parse_ident("an alias name after AS")?)
            } else {
                None
            };
            let span = expr
                .span()
                .to(alias.as_ref().map_or(expr.span(), |alias| alias.span));
            fields.push(Field { expr, alias, span });
            if self.eat(TokenKind::Comma)?.is_none() {
                return Ok(fields);
            }
        }
    }

    fn parse_sources(&mut self) -> Result<Vec<Source>, ParseError> {
        let mut sources = Vec::new();
        loop {
            if self.at(TokenKind::LParen) {
                self.enter()?;
                let open = self.advance()?;
                if !self.at_keyword("SELECT") {
                    return Err(self.unexpected("SELECT after '(' (a subquery)", &["SELECT"]));
                }
                let select = Box::new(self.parse_select()?);
                self.leave();
                if !self.at(TokenKind::RParen) {
                    return Err(self.unexpected("')' to close the subquery", &["')'"]));
                }
                let close = self.advance()?;
                sources.push(Source::Subquery {
                    select,
                    span: open.span.to(close.span),
                });
            } else {
                sources.push(Source::Measurement(self.parse_measurement_ref(
                    "a measurement name, regex or '(' after FROM",
                )?));
            }
            if self.eat(TokenKind::Comma)?.is_none() {
                return Ok(sources);
            }
        }
    }

    fn parse_where(&mut self) -> Result<Option<Expr>, ParseError> {
        if self.eat_keyword("WHERE")?.is_none() {
            return Ok(None);
        }
        self.context = OperandContext::Condition;
        let (condition, _) = self.parse_operand_expr("a condition after WHERE")?;
        Ok(Some(condition))
    }

    fn parse_count_clause(&mut self, keyword: &'static str) -> Result<Option<u64>, ParseError> {
        if self.eat_keyword(keyword)?.is_none() {
            return Ok(None);
        }
        self.parse_count(keyword).map(Some)
    }

    /// A whole number that follows `keyword`.
    fn parse_count(&mut self, keyword: &str) -> Result<u64, ParseError> {
        if !self.at(TokenKind::Integer) {
            return Err(self.unexpected(&format!("a whole number after {keyword}"), &["integer"]));
        }
        Ok(self.advance()?.number)
    }

    /// The replication factor after `REPLICATION`: at least one copy.
    fn parse_replication(&mut self) -> Result<u64, ParseError> {
        let token = self.current;
        let replication = self.parse_count("REPLICATION")?;
        if replication == 0 {
            return Err(self.error_at(token.span, "REPLICATION must be at least 1"));
        }
        Ok(replication)
    }

    fn parse_group_by(&mut self, start: Span) -> Result<GroupBy, ParseError> {
        let mut group_by = GroupBy {
            time: None,
            tags: Vec::new(),
            regexes: Vec::new(),
            wildcard: false,
            span: start,
        };
        loop {
            self.note(Expectation::Tag);
            self.note(Expectation::Keyword("time"));
            match self.current.kind {
                TokenKind::Star => {
                    self.advance()?;
                    group_by.wildcard = true;
                }
                TokenKind::Slash => group_by.regexes.push(self.take_regex()?),
                TokenKind::Word if self.is_word("time") => {
                    let time_span = self.advance()?.span;
                    if !self.at(TokenKind::LParen) {
                        return Err(self.error_at(
                            time_span,
                            "GROUP BY time needs an interval, e.g. GROUP BY time(5m)",
                        ));
                    }
                    if group_by.time.is_some() {
                        return Err(self.error_at(time_span, "GROUP BY time(...) appears twice"));
                    }
                    group_by.time = Some(self.parse_time_dimension(time_span)?);
                }
                TokenKind::Word | TokenKind::QuotedIdent
                    if !(self.at(TokenKind::Word)
                        && is_reserved_word(self.token_text(self.current))) =>
                {
                    let tag = self.parse_ident("a tag key")?;
                    if tag.name.eq_ignore_ascii_case("time") {
                        return Err(self.error_at(
                            tag.span,
                            "GROUP BY time needs an interval, e.g. GROUP BY time(5m)",
                        ));
                    }
                    group_by.tags.push(tag);
                }
                _ => {
                    return Err(self.unexpected(
                        "time(...), a tag key, a regex or '*' after GROUP BY",
                        &["time(...)", "tag key", "regex", "'*'"],
                    ));
                }
            }
            if self.eat(TokenKind::Comma)?.is_none() {
                group_by.span = self.span_from(start);
                return Ok(group_by);
            }
        }
    }

    /// `(interval[, offset])` after `time` in GROUP BY.
    fn parse_time_dimension(&mut self, start: Span) -> Result<TimeDimension, ParseError> {
        self.expect(TokenKind::LParen, "'(' after time")?;
        if !self.at(TokenKind::Duration) {
            return Err(self.unexpected("a duration such as 1m inside time()", &["duration"]));
        }
        let interval_token = self.advance()?;
        let interval = self.positive_duration(interval_token)?;
        let offset = if self.eat(TokenKind::Comma)?.is_some() {
            let offset_start = self.current.span;
            if self.at_keyword("now") {
                self.advance()?;
                self.expect(TokenKind::LParen, "'(' after now")?;
                self.expect(TokenKind::RParen, "')' after now(")?;
                Some(TimeOffset::Now {
                    span: self.span_from(offset_start),
                })
            } else {
                let negative = self.eat(TokenKind::Minus)?.is_some();
                if !self.at(TokenKind::Duration) {
                    return Err(self.unexpected(
                        "a duration or now() as the offset in time()",
                        &["duration", "now()"],
                    ));
                }
                let token = self.advance()?;
                let nanos = self.signed_duration(token, negative, offset_start)?;
                Some(TimeOffset::Duration {
                    nanos,
                    span: self.span_from(offset_start),
                })
            }
        } else {
            None
        };
        if !self.at(TokenKind::RParen) {
            return Err(self.unexpected("')' to close time(...)", &["')'"]));
        }
        self.advance()?;
        Ok(TimeDimension {
            interval,
            interval_span: interval_token.span,
            offset,
            span: self.span_from(start),
        })
    }

    fn parse_fill(&mut self) -> Result<Fill, ParseError> {
        let start = self.advance()?.span;
        self.expect(TokenKind::LParen, "'(' after fill")?;
        let option = if self.at_keyword("none") {
            self.advance()?;
            FillOption::None
        } else if self.at_keyword("null") {
            self.advance()?;
            FillOption::Null
        } else if self.at_keyword("previous") {
            self.advance()?;
            FillOption::Previous
        } else if self.at_keyword("linear") {
            self.advance()?;
            FillOption::Linear
        } else {
            let sign_start = self.current.span;
            let negative = self.eat(TokenKind::Minus)?.is_some();
            match self.current.kind {
                TokenKind::Integer | TokenKind::Float => {
                    let token = self.advance()?;
                    match self.number_literal(token, negative, sign_start)? {
                        LiteralValue::Integer(value) => FillOption::Integer(value),
                        LiteralValue::Float(value) => FillOption::Float(value),
                        _ => {
                            return Err(self.error_at(
                                self.span_from(sign_start),
                                "fill value out of range (it must fit a 64-bit signed integer)",
                            ));
                        }
                    }
                }
                _ => {
                    return Err(self.unexpected(
                        "none, null, previous, linear or a number inside fill()",
                        &["none", "null", "previous", "linear", "number"],
                    ));
                }
            }
        };
        if !self.at(TokenKind::RParen) {
            return Err(self.unexpected("')' to close fill(...)", &["')'"]));
        }
        self.advance()?;
        Ok(Fill {
            option,
            span: self.span_from(start),
        })
    }

    // ---------------------------------------------------------------- names

    /// A bare (non-reserved) or double-quoted name.
    fn parse_ident(&mut self, description: &str) -> Result<Ident, ParseError> {
        match self.current.kind {
            TokenKind::Word if !is_reserved_word(self.token_text(self.current)) => {
                let token = self.advance()?;
                Ok(Ident {
                    name: self.token_text(token).to_owned(),
                    span: token.span,
                })
            }
            TokenKind::QuotedIdent => {
                let token = self.advance()?;
                let text = self.token_text(token);
                let inner = text.get(1..text.len().saturating_sub(1)).unwrap_or("");
                Ok(Ident {
                    name: unescape(inner),
                    span: token.span,
                })
            }
            _ => Err(self.unexpected(description, &["identifier"])),
        }
    }

    fn parse_measurement_part(&mut self, description: &str) -> Result<MeasurementPart, ParseError> {
        self.note(Expectation::Measurement);
        if self.at(TokenKind::Slash) {
            return Ok(MeasurementPart::Regex(self.take_regex()?));
        }
        match self.current.kind {
            TokenKind::Word | TokenKind::QuotedIdent => {
                self.parse_ident(description).map(MeasurementPart::Name)
            }
            _ => Err(self.unexpected(description, &["identifier", "regex"])),
        }
    }

    /// `m`, `/re/`, `rp.m`, `db.rp.m` or `db..m`.
    fn parse_measurement_ref(&mut self, description: &str) -> Result<MeasurementRef, ParseError> {
        let start = self.current.span;
        let first = self.parse_measurement_part(description)?;
        let first = match first {
            MeasurementPart::Regex(regex) => {
                return Ok(MeasurementRef {
                    database: None,
                    retention_policy: None,
                    name: MeasurementName::Regex(regex),
                    span: self.span_from(start),
                });
            }
            MeasurementPart::Name(name) => name,
        };
        if self.eat(TokenKind::Dot)?.is_none() {
            return Ok(MeasurementRef {
                database: None,
                retention_policy: None,
                name: MeasurementName::Name(first),
                span: self.span_from(start),
            });
        }
        let after_dot = "a measurement name or regex after '.'";
        let (database, retention_policy, name) = if self.eat(TokenKind::Dot)?.is_some() {
            (Some(first), None, self.parse_measurement_part(after_dot)?)
        } else {
            match self.parse_measurement_part(after_dot)? {
                MeasurementPart::Name(second) if self.at(TokenKind::Dot) => {
                    self.advance()?;
                    (
                        Some(first),
                        Some(second),
                        self.parse_measurement_part(after_dot)?,
                    )
                }
                second => (None, Some(first), second),
            }
        };
        let name = match name {
            MeasurementPart::Name(name) => MeasurementName::Name(name),
            MeasurementPart::Regex(regex) => MeasurementName::Regex(regex),
        };
        Ok(MeasurementRef {
            database,
            retention_policy,
            name,
            span: self.span_from(start),
        })
    }

    fn parse_measurement_list(&mut self) -> Result<Vec<MeasurementRef>, ParseError> {
        let mut sources = Vec::new();
        loop {
            sources.push(self.parse_measurement_ref("a measurement name or regex after FROM")?);
            if self.eat(TokenKind::Comma)?.is_none() {
                return Ok(sources);
            }
        }
    }

    fn parse_from_measurements(&mut self) -> Result<Vec<MeasurementRef>, ParseError> {
        if self.eat_keyword("FROM")?.is_none() {
            return Ok(Vec::new());
        }
        self.parse_measurement_list()
    }

    fn parse_on(&mut self) -> Result<Option<Ident>, ParseError> {
        if self.eat_keyword("ON")?.is_none() {
            return Ok(None);
        }
        self.note(Expectation::Database);
        self.parse_ident("a database name after ON").map(Some)
    }

    fn take_regex(&mut self) -> Result<RegexLiteral, ParseError> {
        let start = self.current.span.start as usize;
        match self.lexer.rescan_regex(start) {
            Ok(token) => self.current = token,
            Err(error) => {
                self.lexer_failed = true;
                return Err(error);
            }
        }
        let token = self.advance()?;
        let text = self.token_text(token);
        let inner = text.get(1..text.len().saturating_sub(1)).unwrap_or("");
        Ok(RegexLiteral {
            pattern: unescape_regex(inner),
            span: token.span,
        })
    }

    fn take_string(&mut self) -> Result<String, ParseError> {
        let token = self.advance()?;
        let text = self.token_text(token);
        Ok(unescape(
            text.get(1..text.len().saturating_sub(1)).unwrap_or(""),
        ))
    }

    fn expect_regex(&mut self, description: &str) -> Result<RegexLiteral, ParseError> {
        if !self.at(TokenKind::Slash) {
            return Err(self.unexpected(description, &["regex"]));
        }
        self.take_regex()
    }

    // ---------------------------------------------------------------- literals

    fn positive_duration(&self, token: Token) -> Result<i64, ParseError> {
        i64::try_from(token.number).map_err(|_| {
            self.error_at(
                token.span,
                "duration out of range (the longest is 9223372036854775807ns, about 292 years)",
            )
        })
    }

    fn signed_duration(
        &self,
        token: Token,
        negative: bool,
        start: Span,
    ) -> Result<i64, ParseError> {
        if !negative {
            return self.positive_duration(token);
        }
        // The lexer caps magnitudes at 2^63, which negates to exactly i64::MIN.
        i64::try_from(-i128::from(token.number))
            .map_err(|_| self.error_at(start.to(token.span), "duration out of range"))
    }

    /// The value of an integer or float token, with a leading minus folded in.
    fn number_literal(
        &self,
        token: Token,
        negative: bool,
        start: Span,
    ) -> Result<LiteralValue, ParseError> {
        match token.kind {
            TokenKind::Float => {
                let value = f64::from_bits(token.number);
                Ok(LiteralValue::Float(if negative { -value } else { value }))
            }
            TokenKind::Duration => self
                .signed_duration(token, negative, start)
                .map(LiteralValue::Duration),
            _ if negative => i64::try_from(-i128::from(token.number))
                .map(LiteralValue::Integer)
                .map_err(|_| {
                    self.error_at(
                        start.to(token.span),
                        format!(
                            "integer literal out of range (the smallest is {})",
                            i64::MIN
                        ),
                    )
                }),
            _ => Ok(match i64::try_from(token.number) {
                Ok(value) => LiteralValue::Integer(value),
                Err(_) => LiteralValue::Unsigned(token.number),
            }),
        }
    }

    fn retention_duration(&mut self, after: &str) -> Result<RetentionDuration, ParseError> {
        if self.at_keyword("INF") {
            self.advance()?;
            return Ok(RetentionDuration::Infinite);
        }
        if !self.at(TokenKind::Duration) {
            return Err(self.unexpected(
                &format!("a duration or INF after {after}"),
                &["duration", "INF"],
            ));
        }
        let token = self.advance()?;
        self.positive_duration(token).map(RetentionDuration::Finite)
    }

    fn shard_duration(&mut self) -> Result<i64, ParseError> {
        self.expect_keyword_after("DURATION", "SHARD")?;
        if !self.at(TokenKind::Duration) {
            return Err(self.unexpected("a duration after SHARD DURATION", &["duration"]));
        }
        let token = self.advance()?;
        self.positive_duration(token)
    }

    // ---------------------------------------------------------------- expressions

    fn can_start_operand(&self) -> bool {
        match self.current.kind {
            TokenKind::Word => {
                let text = self.token_text(self.current);
                !is_reserved_word(text) || text.eq_ignore_ascii_case("distinct")
            }
            TokenKind::LParen
            | TokenKind::Star
            | TokenKind::Slash
            | TokenKind::String
            | TokenKind::Integer
            | TokenKind::Float
            | TokenKind::Duration
            | TokenKind::QuotedIdent
            | TokenKind::Minus => true,
            _ => false,
        }
    }

    fn note_operand(&mut self) {
        match self.context {
            OperandContext::Select => {
                self.note(Expectation::Field);
                self.note(Expectation::Tag);
                self.note(Expectation::Function);
                self.note(Expectation::Keyword("DISTINCT"));
            }
            OperandContext::Condition => {
                self.note(Expectation::Tag);
                self.note(Expectation::Field);
                self.note(Expectation::Keyword("time"));
                self.note(Expectation::NowFunction);
            }
        }
    }

    /// An expression where `description` names what is expected if none starts here.
    fn parse_operand_expr(&mut self, description: &str) -> Result<(Expr, u32), ParseError> {
        self.note_operand();
        if !self.can_start_operand() {
            return Err(self.unexpected(description, &["expression"]));
        }
        self.parse_expr(0)
    }

    fn binary_op(&mut self) -> Option<BinaryOp> {
        let op = match self.current.kind {
            TokenKind::Plus => BinaryOp::Add,
            TokenKind::Minus => BinaryOp::Sub,
            TokenKind::Star => BinaryOp::Mul,
            TokenKind::Slash => BinaryOp::Div,
            TokenKind::Percent => BinaryOp::Mod,
            TokenKind::Eq => BinaryOp::Eq,
            TokenKind::NotEq | TokenKind::LtGt => BinaryOp::NotEq,
            TokenKind::Lt => BinaryOp::Lt,
            TokenKind::LtEq => BinaryOp::LtEq,
            TokenKind::Gt => BinaryOp::Gt,
            TokenKind::GtEq => BinaryOp::GtEq,
            TokenKind::EqTilde => BinaryOp::RegexMatch,
            TokenKind::NotTilde => BinaryOp::RegexNotMatch,
            TokenKind::Word if self.is_word("and") => BinaryOp::And,
            TokenKind::Word if self.is_word("or") => BinaryOp::Or,
            _ => {
                if self.context == OperandContext::Condition {
                    self.note(Expectation::Keyword("AND"));
                    self.note(Expectation::Keyword("OR"));
                }
                return None;
            }
        };
        Some(op)
    }

    /// Precedence climbing: operators binding at least as tightly as `min_precedence`.
    /// Returns the expression and the depth of its tree.
    fn parse_expr(&mut self, min_precedence: u8) -> Result<(Expr, u32), ParseError> {
        let (mut lhs, mut lhs_depth) = self.parse_unary()?;
        while let Some(op) = self.binary_op() {
            let precedence = op.precedence();
            if precedence < min_precedence {
                break;
            }
            let operator = self.advance()?;
            self.note_operand();
            if !self.can_start_operand() {
                return Err(self.unexpected(
                    &format!("an operand after '{}'", self.token_text(operator)),
                    &["expression"],
                ));
            }
            let (rhs, rhs_depth) = self.parse_expr(precedence + 1)?;
            let depth = 1 + lhs_depth.max(rhs_depth);
            let span = lhs.span().to(rhs.span());
            self.check_tree_depth(depth, span)?;
            lhs = Expr::Binary(BinaryExpr {
                op,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
                span,
            });
            lhs_depth = depth;
        }
        Ok((lhs, lhs_depth))
    }

    fn parse_unary(&mut self) -> Result<(Expr, u32), ParseError> {
        if !self.at(TokenKind::Minus) {
            return self.parse_primary();
        }
        let minus = self.advance()?.span;
        if matches!(
            self.current.kind,
            TokenKind::Integer | TokenKind::Float | TokenKind::Duration
        ) {
            let token = self.advance()?;
            let value = self.number_literal(token, true, minus)?;
            return Ok((
                Expr::Literal(Literal {
                    value,
                    span: minus.to(token.span),
                }),
                1,
            ));
        }
        self.enter()?;
        self.note_operand();
        if !self.can_start_operand() {
            return Err(self.unexpected("an operand after '-'", &["expression"]));
        }
        let (operand, depth) = self.parse_unary()?;
        self.leave();
        let span = minus.to(operand.span());
        self.check_tree_depth(depth + 1, span)?;
        Ok((
            Expr::Unary(UnaryExpr {
                op: UnaryOp::Neg,
                operand: Box::new(operand),
                span,
            }),
            depth + 1,
        ))
    }

    fn parse_primary(&mut self) -> Result<(Expr, u32), ParseError> {
        self.note_operand();
        let token = self.current;
        match token.kind {
            TokenKind::LParen => {
                self.enter()?;
                self.advance()?;
                self.note_operand();
                if !self.can_start_operand() {
                    return Err(self.unexpected("an expression after '('", &["expression"]));
                }
                let (inner, depth) = self.parse_expr(0)?;
                self.leave();
                if !self.at(TokenKind::RParen) {
                    let (line, column) = super::error::line_and_column(self.text, token.span.start);
                    let (current_line, _) =
                        super::error::line_and_column(self.text, self.current.span.start);
                    let opened = if line == current_line {
                        format!("in column {column}")
                    } else {
                        format!("on line {line}, column {column}")
                    };
                    return Err(
                        self.unexpected(&format!("')' to match the '(' opened {opened}"), &["')'"])
                    );
                }
                let close = self.advance()?;
                let span = token.span.to(close.span);
                self.check_tree_depth(depth + 1, span)?;
                Ok((
                    Expr::Paren(ParenExpr {
                        inner: Box::new(inner),
                        span,
                    }),
                    depth + 1,
                ))
            }
            TokenKind::Star => {
                self.advance()?;
                let cast = self.parse_cast(true)?;
                Ok((
                    Expr::Wildcard(Wildcard {
                        cast,
                        span: self.span_from(token.span),
                    }),
                    1,
                ))
            }
            TokenKind::Slash => {
                let regex = self.take_regex()?;
                let value = LiteralValue::Regex(regex.pattern);
                Ok((
                    Expr::Literal(Literal {
                        value,
                        span: regex.span,
                    }),
                    1,
                ))
            }
            TokenKind::String => {
                let value = LiteralValue::String(self.take_string()?);
                Ok((
                    Expr::Literal(Literal {
                        value,
                        span: token.span,
                    }),
                    1,
                ))
            }
            TokenKind::Integer | TokenKind::Float | TokenKind::Duration => {
                self.advance()?;
                let value = self.number_literal(token, false, token.span)?;
                Ok((
                    Expr::Literal(Literal {
                        value,
                        span: token.span,
                    }),
                    1,
                ))
            }
            TokenKind::QuotedIdent => self.parse_var_ref(),
            TokenKind::Word => {
                let text = self.token_text(token);
                if text.eq_ignore_ascii_case("true") || text.eq_ignore_ascii_case("false") {
                    self.advance()?;
                    let value = LiteralValue::Bool(text.eq_ignore_ascii_case("true"));
                    return Ok((
                        Expr::Literal(Literal {
                            value,
                            span: token.span,
                        }),
                        1,
                    ));
                }
                if text.eq_ignore_ascii_case("distinct") {
                    return self.parse_distinct();
                }
                if is_reserved_word(text) {
                    return Err(self.unexpected("an expression", &["expression"]));
                }
                self.advance()?;
                if !self.at(TokenKind::LParen) {
                    let cast = self.parse_cast(false)?;
                    let name = text.to_owned();
                    let span = self.span_from(token.span);
                    return Ok((Expr::VarRef(VarRef { name, cast, span }), 1));
                }
                if text.eq_ignore_ascii_case("now") {
                    self.advance()?;
                    if !self.at(TokenKind::RParen) {
                        return Err(
                            self.unexpected("')' after now( (now() takes no arguments)", &["')'"])
                        );
                    }
                    self.advance()?;
                    return Ok((
                        Expr::Now {
                            span: self.span_from(token.span),
                        },
                        1,
                    ));
                }
                self.parse_call_args(text.to_ascii_lowercase(), token.span)
            }
            _ => Err(self.unexpected("an expression", &["expression"])),
        }
    }

    fn parse_var_ref(&mut self) -> Result<(Expr, u32), ParseError> {
        let ident = self.parse_ident("a field or tag name")?;
        let cast = self.parse_cast(false)?;
        let span = self.span_from(ident.span);
        Ok((
            Expr::VarRef(VarRef {
                name: ident.name,
                cast,
                span,
            }),
            1,
        ))
    }

    /// `DISTINCT x` or `distinct(...)`; the first is normalised to the second.
    fn parse_distinct(&mut self) -> Result<(Expr, u32), ParseError> {
        let start = self.advance()?.span;
        if self.at(TokenKind::LParen) {
            return self.parse_call_args("distinct".to_owned(), start);
        }
        self.note(Expectation::Field);
        let is_name = match self.current.kind {
            TokenKind::QuotedIdent => true,
            TokenKind::Word => !is_reserved_word(self.token_text(self.current)),
            _ => false,
        };
        if !is_name {
            return Err(
                self.unexpected("a field name or '(' after DISTINCT", &["identifier", "'('"])
            );
        }
        let (field, _) = self.parse_var_ref()?;
        let span = start.to(field.span());
        Ok((
            Expr::Call(Call {
                name: "distinct".to_owned(),
                args: vec![field],
                span,
            }),
            2,
        ))
    }

    /// The `(args...)` of a call whose name has been read.
    fn parse_call_args(&mut self, name: String, start: Span) -> Result<(Expr, u32), ParseError> {
        self.enter()?;
        self.advance()?;
        let saved_context = self.context;
        let mut args = Vec::new();
        let mut depth = 0;
        if !self.at(TokenKind::RParen) {
            loop {
                self.context = saved_context;
                let (arg, arg_depth) =
                    self.parse_operand_expr(&format!("an argument of {name}() or ')'"))?;
                depth = depth.max(arg_depth);
                args.push(arg);
                if self.eat(TokenKind::Comma)?.is_none() {
                    break;
                }
            }
        }
        self.context = saved_context;
        if !self.at(TokenKind::RParen) {
            return Err(self.unexpected(
                &format!("',' or ')' in the arguments of {name}()"),
                &["','", "')'"],
            ));
        }
        self.advance()?;
        self.leave();
        let span = self.span_from(start);
        self.check_tree_depth(depth + 1, span)?;
        Ok((Expr::Call(Call { name, args, span }), depth + 1))
    }

    fn parse_cast(&mut self, wildcard: bool) -> Result<Option<Cast>, ParseError> {
        if self.eat(TokenKind::DoubleColon)?.is_none() {
            return Ok(None);
        }
        let expected = if wildcard {
            "field or tag after '*::'"
        } else {
            "a type after '::' (float, integer, unsigned, string, boolean, field or tag)"
        };
        for cast in Cast::ALL {
            if !wildcard || matches!(cast, Cast::Field | Cast::Tag) {
                self.note(Expectation::Keyword(cast.as_str()));
            }
        }
        let cast = match self.current.kind {
            TokenKind::Word => Cast::from_name(self.token_text(self.current)),
            _ => None,
        };
        match cast {
            Some(cast) if !wildcard || matches!(cast, Cast::Field | Cast::Tag) => {
                self.advance()?;
                Ok(Some(cast))
            }
            _ => Err(self.unexpected(expected, &["type"])),
        }
    }

    // ---------------------------------------------------------------- SHOW

    fn parse_show(&mut self, start: Span) -> Result<Statement, ParseError> {
        const AFTER_SHOW: [&str; 12] = [
            "DATABASES",
            "MEASUREMENTS",
            "MEASUREMENT",
            "TAG",
            "FIELD",
            "SERIES",
            "RETENTION",
            "DIAGNOSTICS",
            "STATS",
            "RULES",
            "ALERTS",
            "COMPACTIONS",
        ];
        if self.eat_keyword("DATABASES")?.is_some() {
            return Ok(Statement::ShowDatabases {
                span: self.span_from(start),
            });
        }
        if self.eat_keyword("MEASUREMENTS")?.is_some() {
            return self.parse_show_measurements(start);
        }
        if self.eat_keyword("MEASUREMENT")?.is_some() {
            return self.parse_show_cardinality(CardinalityKind::Measurement, start);
        }
        if self.eat_keyword("TAG")?.is_some() {
            if self.eat_keyword("KEYS")?.is_some() {
                let database = self.parse_on()?;
                let sources = self.parse_from_measurements()?;
                let condition = self.parse_where()?;
                let limit = self.parse_count_clause("LIMIT")?;
                let offset = self.parse_count_clause("OFFSET")?;
                return Ok(Statement::ShowTagKeys(ShowTagKeysStatement {
                    database,
                    sources,
                    condition,
                    limit,
                    offset,
                    span: self.span_from(start),
                }));
            }
            if self.eat_keyword("KEY")?.is_some() {
                return self.parse_show_cardinality(CardinalityKind::TagKey, start);
            }
            if self.eat_keyword("VALUES")?.is_some() {
                if self.at_keyword("EXACT") || self.at_keyword("CARDINALITY") {
                    return self.parse_show_cardinality(CardinalityKind::TagValues, start);
                }
                let database = self.parse_on()?;
                let sources = self.parse_from_measurements()?;
                if !self.at_keyword("WITH") {
                    return Err(self.unexpected("WITH KEY after SHOW TAG VALUES", &["WITH"]));
                }
                let key = self.parse_with_key()?;
                let condition = self.parse_where()?;
                let limit = self.parse_count_clause("LIMIT")?;
                let offset = self.parse_count_clause("OFFSET")?;
                return Ok(Statement::ShowTagValues(ShowTagValuesStatement {
                    database,
                    sources,
                    key,
                    condition,
                    limit,
                    offset,
                    span: self.span_from(start),
                }));
            }
            return Err(self.unexpected(
                "KEYS, VALUES or KEY after SHOW TAG",
                &["KEYS", "VALUES", "KEY"],
            ));
        }
        if self.eat_keyword("FIELD")?.is_some() {
            if self.eat_keyword("KEYS")?.is_some() {
                let database = self.parse_on()?;
                let sources = self.parse_from_measurements()?;
                let limit = self.parse_count_clause("LIMIT")?;
                let offset = self.parse_count_clause("OFFSET")?;
                return Ok(Statement::ShowFieldKeys(ShowFieldKeysStatement {
                    database,
                    sources,
                    limit,
                    offset,
                    span: self.span_from(start),
                }));
            }
            if self.eat_keyword("KEY")?.is_some() {
                return self.parse_show_cardinality(CardinalityKind::FieldKey, start);
            }
            return Err(self.unexpected("KEYS or KEY after SHOW FIELD", &["KEYS", "KEY"]));
        }
        if self.eat_keyword("SERIES")?.is_some() {
            if self.at_keyword("EXACT") || self.at_keyword("CARDINALITY") {
                return self.parse_show_cardinality(CardinalityKind::Series, start);
            }
            let database = self.parse_on()?;
            let sources = self.parse_from_measurements()?;
            let condition = self.parse_where()?;
            let limit = self.parse_count_clause("LIMIT")?;
            let offset = self.parse_count_clause("OFFSET")?;
            return Ok(Statement::ShowSeries(ShowSeriesStatement {
                database,
                sources,
                condition,
                limit,
                offset,
                span: self.span_from(start),
            }));
        }
        if self.eat_keyword("RETENTION")?.is_some() {
            self.expect_keyword_after("POLICIES", "SHOW RETENTION")?;
            let database = self.parse_on()?;
            return Ok(Statement::ShowRetentionPolicies(
                ShowRetentionPoliciesStatement {
                    database,
                    span: self.span_from(start),
                },
            ));
        }
        type Simple = fn(Span) -> Statement;
        let simple: [(&'static str, Simple); 5] = [
            ("DIAGNOSTICS", |span| Statement::ShowDiagnostics { span }),
            ("STATS", |span| Statement::ShowStats { span }),
            ("RULES", |span| Statement::ShowRules { span }),
            ("ALERTS", |span| Statement::ShowAlerts { span }),
            ("COMPACTIONS", |span| Statement::ShowCompactions { span }),
        ];
        for (keyword, make) in simple {
            if self.eat_keyword(keyword)?.is_some() {
                return Ok(make(self.span_from(start)));
            }
        }
        Err(self.unexpected(
            "DATABASES, MEASUREMENTS, TAG KEYS, TAG VALUES, FIELD KEYS, SERIES, RETENTION POLICIES, RULES, ALERTS, COMPACTIONS, DIAGNOSTICS or STATS after SHOW",
            &AFTER_SHOW,
        ))
    }

    fn parse_show_measurements(&mut self, start: Span) -> Result<Statement, ParseError> {
        let database = self.parse_on()?;
        let measurement = if self.eat_keyword("WITH")?.is_some() {
            self.expect_keyword_after("MEASUREMENT", "WITH")?;
            match self.current.kind {
                TokenKind::Eq => {
                    self.advance()?;
                    self.note(Expectation::Measurement);
                    Some(MeasurementName::Name(
                        self.parse_ident("a measurement name after '='")?,
                    ))
                }
                TokenKind::EqTilde => {
                    self.advance()?;
                    Some(MeasurementName::Regex(
                        self.expect_regex("a regex after '=~'")?,
                    ))
                }
                _ => {
                    return Err(
                        self.unexpected("'=' or '=~' after WITH MEASUREMENT", &["'='", "'=~'"])
                    );
                }
            }
        } else {
            None
        };
        let condition = self.parse_where()?;
        let limit = self.parse_count_clause("LIMIT")?;
        let offset = self.parse_count_clause("OFFSET")?;
        Ok(Statement::ShowMeasurements(ShowMeasurementsStatement {
            database,
            measurement,
            condition,
            limit,
            offset,
            span: self.span_from(start),
        }))
    }

    /// `WITH KEY (= k | != k | =~ /re/ | !~ /re/ | IN (k1, k2))`, at the WITH.
    fn parse_with_key(&mut self) -> Result<TagKeyMatch, ParseError> {
        self.expect_keyword("WITH")?;
        self.expect_keyword_after("KEY", "WITH")?;
        let operator = self.current.kind;
        let key_description = "a tag key";
        match operator {
            TokenKind::Eq | TokenKind::NotEq | TokenKind::LtGt => {
                self.advance()?;
                self.note(Expectation::Tag);
                let key = self.parse_ident(key_description)?;
                Ok(if operator == TokenKind::Eq {
                    TagKeyMatch::Equal(key)
                } else {
                    TagKeyMatch::NotEqual(key)
                })
            }
            TokenKind::EqTilde | TokenKind::NotTilde => {
                self.advance()?;
                let regex = self.expect_regex("a regex such as /^host$/ after the operator")?;
                Ok(if operator == TokenKind::EqTilde {
                    TagKeyMatch::Regex(regex)
                } else {
                    TagKeyMatch::NotRegex(regex)
                })
            }
            TokenKind::Word if self.is_word("in") => {
                self.advance()?;
                self.expect(TokenKind::LParen, "'(' after IN")?;
                let mut keys = Vec::new();
                loop {
                    self.note(Expectation::Tag);
                    keys.push(self.parse_ident(key_description)?);
                    if self.eat(TokenKind::Comma)?.is_none() {
                        break;
                    }
                }
                if !self.at(TokenKind::RParen) {
                    return Err(
                        self.unexpected("',' or ')' in the list of tag keys", &["','", "')'"])
                    );
                }
                self.advance()?;
                Ok(TagKeyMatch::In(keys))
            }
            _ => {
                self.note(Expectation::Keyword("IN"));
                Err(self.unexpected(
                    "=, !=, =~, !~ or IN after WITH KEY",
                    &["=", "!=", "=~", "!~", "IN"],
                ))
            }
        }
    }

    /// After `SHOW <kind>`, at `[EXACT] CARDINALITY`.
    fn parse_show_cardinality(
        &mut self,
        kind: CardinalityKind,
        start: Span,
    ) -> Result<Statement, ParseError> {
        let exact = self.eat_keyword("EXACT")?.is_some();
        self.expect_keyword_after("CARDINALITY", &format!("SHOW {}", kind.keywords()))?;
        let database = self.parse_on()?;
        let sources = self.parse_from_measurements()?;
        let wants_key = kind == CardinalityKind::TagValues;
        let mut key = None;
        if wants_key && self.at_keyword("WITH") {
            key = Some(self.parse_with_key()?);
        }
        let condition = self.parse_where()?;
        if wants_key && key.is_none() {
            if !self.at_keyword("WITH") {
                return Err(
                    self.unexpected("WITH KEY after SHOW TAG VALUES CARDINALITY", &["WITH"])
                );
            }
            key = Some(self.parse_with_key()?);
        }
        Ok(Statement::ShowCardinality(ShowCardinalityStatement {
            kind,
            exact,
            database,
            sources,
            condition,
            key,
            span: self.span_from(start),
        }))
    }

    // ---------------------------------------------------------------- CREATE, ALTER, DROP, DELETE

    fn parse_create(&mut self, start: Span) -> Result<Statement, ParseError> {
        if self.eat_keyword("DATABASE")?.is_some() {
            let name = self.parse_ident("a database name")?;
            let retention = match self.eat_keyword("WITH")? {
                Some(with_span) => {
                    let duration = match self.eat_keyword("DURATION")? {
                        Some(_) => Some(self.retention_duration("DURATION")?),
                        None => None,
                    };
                    let replication = match self.eat_keyword("REPLICATION")? {
                        Some(_) => Some(self.parse_replication()?),
                        None => None,
                    };
                    let shard_duration = match self.eat_keyword("SHARD")? {
                        Some(_) => Some(self.shard_duration()?),
                        None => None,
                    };
                    let policy_name = match self.eat_keyword("NAME")? {
                        Some(_) => {
                            self.note(Expectation::RetentionPolicy);
                            Some(self.parse_ident("a retention policy name after NAME")?)
                        }
                        None => None,
                    };
                    if duration.is_none()
                        && replication.is_none()
                        && shard_duration.is_none()
                        && policy_name.is_none()
                    {
                        return Err(self.unexpected(
                            "DURATION, REPLICATION, SHARD DURATION or NAME after WITH",
                            &["DURATION", "REPLICATION", "SHARD", "NAME"],
                        ));
                    }
                    Some(DatabaseRetention {
                        duration,
                        replication,
                        shard_duration,
                        policy_name,
                        span: self.span_from(with_span),
                    })
                }
                None => None,
            };
            return Ok(Statement::CreateDatabase(CreateDatabaseStatement {
                name,
                retention,
                span: self.span_from(start),
            }));
        }
        if self.eat_keyword("RETENTION")?.is_some() {
            self.expect_keyword_after("POLICY", "RETENTION")?;
            let (name, database) = self.parse_policy_on()?;
            self.expect_keyword("DURATION")?;
            let duration = self.retention_duration("DURATION")?;
            self.expect_keyword("REPLICATION")?;
            let replication = self.parse_replication()?;
            let shard_duration = match self.eat_keyword("SHARD")? {
                Some(_) => Some(self.shard_duration()?),
                None => None,
            };
            let default = self.eat_keyword("DEFAULT")?.is_some();
            return Ok(Statement::CreateRetentionPolicy(
                CreateRetentionPolicyStatement {
                    name,
                    database,
                    duration,
                    replication,
                    shard_duration,
                    default,
                    span: self.span_from(start),
                },
            ));
        }
        Err(self.unexpected(
            "DATABASE or RETENTION POLICY after CREATE",
            &["DATABASE", "RETENTION"],
        ))
    }

    /// `name ON db` of the retention policy statements.
    fn parse_policy_on(&mut self) -> Result<(Ident, Ident), ParseError> {
        self.note(Expectation::RetentionPolicy);
        let name = self.parse_ident("a retention policy name")?;
        self.expect_keyword_after("ON", "the retention policy name")?;
        self.note(Expectation::Database);
        let database = self.parse_ident("a database name after ON")?;
        Ok((name, database))
    }

    fn parse_alter(&mut self, start: Span) -> Result<Statement, ParseError> {
        self.expect_keyword_after("RETENTION", "ALTER")?;
        self.expect_keyword_after("POLICY", "RETENTION")?;
        let (name, database) = self.parse_policy_on()?;
        let mut duration = None;
        let mut replication = None;
        let mut shard_duration = None;
        let mut default = false;
        let mut any = false;
        loop {
            let option_span = self.current.span;
            let twice = |parser: &Self, option: &str| {
                parser.error_at(
                    option_span,
                    format!("{option} appears twice in ALTER RETENTION POLICY"),
                )
            };
            if self.eat_keyword("DURATION")?.is_some() {
                if duration.is_some() {
                    return Err(twice(self, "DURATION"));
                }
                duration = Some(self.retention_duration("DURATION")?);
            } else if self.eat_keyword("REPLICATION")?.is_some() {
                if replication.is_some() {
                    return Err(twice(self, "REPLICATION"));
                }
                replication = Some(self.parse_replication()?);
            } else if self.eat_keyword("SHARD")?.is_some() {
                if shard_duration.is_some() {
                    return Err(twice(self, "SHARD DURATION"));
                }
                shard_duration = Some(self.shard_duration()?);
            } else if self.eat_keyword("DEFAULT")?.is_some() {
                if default {
                    return Err(twice(self, "DEFAULT"));
                }
                default = true;
            } else if any {
                break;
            } else {
                return Err(self.unexpected(
                    "DURATION, REPLICATION, SHARD DURATION or DEFAULT",
                    &["DURATION", "REPLICATION", "SHARD", "DEFAULT"],
                ));
            }
            any = true;
        }
        Ok(Statement::AlterRetentionPolicy(
            AlterRetentionPolicyStatement {
                name,
                database,
                duration,
                replication,
                shard_duration,
                default,
                span: self.span_from(start),
            },
        ))
    }

    fn parse_drop(&mut self, start: Span) -> Result<Statement, ParseError> {
        if self.eat_keyword("DATABASE")?.is_some() {
            self.note(Expectation::Database);
            let name = self.parse_ident("a database name")?;
            return Ok(Statement::DropDatabase(DropDatabaseStatement {
                name,
                span: self.span_from(start),
            }));
        }
        if self.eat_keyword("RETENTION")?.is_some() {
            self.expect_keyword_after("POLICY", "RETENTION")?;
            let (name, database) = self.parse_policy_on()?;
            return Ok(Statement::DropRetentionPolicy(
                DropRetentionPolicyStatement {
                    name,
                    database,
                    span: self.span_from(start),
                },
            ));
        }
        if self.eat_keyword("MEASUREMENT")?.is_some() {
            self.note(Expectation::Measurement);
            let name = self.parse_ident("a measurement name")?;
            return Ok(Statement::DropMeasurement(DropMeasurementStatement {
                name,
                span: self.span_from(start),
            }));
        }
        if self.eat_keyword("SERIES")?.is_some() {
            let sources = self.parse_from_measurements()?;
            let condition = self.parse_where()?;
            if sources.is_empty() && condition.is_none() {
                return Err(self.unexpected("FROM or WHERE after DROP SERIES", &["FROM", "WHERE"]));
            }
            return Ok(Statement::DropSeries(DropSeriesStatement {
                sources,
                condition,
                span: self.span_from(start),
            }));
        }
        Err(self.unexpected(
            "DATABASE, RETENTION POLICY, MEASUREMENT or SERIES after DROP",
            &["DATABASE", "RETENTION", "MEASUREMENT", "SERIES"],
        ))
    }

    fn parse_delete(&mut self, start: Span) -> Result<Statement, ParseError> {
        let source = match self.eat_keyword("FROM")? {
            Some(_) => Some(self.parse_measurement_ref("a measurement name or regex after FROM")?),
            None => None,
        };
        let condition = self.parse_where()?;
        if source.is_none() && condition.is_none() {
            return Err(self.unexpected("FROM or WHERE after DELETE", &["FROM", "WHERE"]));
        }
        Ok(Statement::Delete(DeleteStatement {
            source,
            condition,
            span: self.span_from(start),
        }))
    }
}
