//! Walking the syntax tree.
//!
//! [`Visit`] reads a tree: override the `visit_*` methods for the nodes of interest and call
//! the matching `walk_*` function inside to keep descending. [`VisitMut`] does the same with
//! mutable access and also reaches every [`Span`], which is how [`strip_spans`] works.
//! Recursion depth is bounded because the parser bounds the depth of the trees it builds.

use super::ast::{
    CreateDatabaseStatement, Expr, Field, GroupBy, Ident, MeasurementName, MeasurementRef, Query,
    RegexLiteral, SelectStatement, Source, Span, Statement, TagKeyMatch, TimeOffset,
};

/// A read-only walk over a syntax tree.
pub trait Visit<'ast> {
    fn visit_statement(&mut self, statement: &'ast Statement) {
        walk_statement(self, statement);
    }

    fn visit_select(&mut self, select: &'ast SelectStatement) {
        walk_select(self, select);
    }

    fn visit_source(&mut self, source: &'ast Source) {
        walk_source(self, source);
    }

    fn visit_measurement(&mut self, _measurement: &'ast MeasurementRef) {}

    fn visit_expr(&mut self, expr: &'ast Expr) {
        walk_expr(self, expr);
    }

    /// Regexes outside expressions: measurement names, GROUP BY, WITH KEY, WITH MEASUREMENT.
    fn visit_regex(&mut self, _regex: &'ast RegexLiteral) {}
}

pub fn walk_query<'ast, V: Visit<'ast> + ?Sized>(visitor: &mut V, query: &'ast Query) {
    for statement in &query.statements {
        visitor.visit_statement(statement);
    }
}

pub fn walk_statement<'ast, V: Visit<'ast> + ?Sized>(visitor: &mut V, statement: &'ast Statement) {
    fn sources<'ast, V: Visit<'ast> + ?Sized>(visitor: &mut V, sources: &'ast [MeasurementRef]) {
        for measurement in sources {
            visitor.visit_measurement(measurement);
        }
    }
    fn condition<'ast, V: Visit<'ast> + ?Sized>(visitor: &mut V, condition: &'ast Option<Expr>) {
        if let Some(condition) = condition {
            visitor.visit_expr(condition);
        }
    }
    fn key<'ast, V: Visit<'ast> + ?Sized>(visitor: &mut V, key: &'ast TagKeyMatch) {
        if let TagKeyMatch::Regex(regex) | TagKeyMatch::NotRegex(regex) = key {
            visitor.visit_regex(regex);
        }
    }
    match statement {
        Statement::Select(select) => visitor.visit_select(select),
        Statement::Explain(explain) => visitor.visit_select(&explain.select),
        Statement::ShowMeasurements(show) => {
            if let Some(MeasurementName::Regex(regex)) = &show.measurement {
                visitor.visit_regex(regex);
            }
            condition(visitor, &show.condition);
        }
        Statement::ShowTagKeys(show) => {
            sources(visitor, &show.sources);
            condition(visitor, &show.condition);
        }
        Statement::ShowTagValues(show) => {
            sources(visitor, &show.sources);
            key(visitor, &show.key);
            condition(visitor, &show.condition);
        }
        Statement::ShowFieldKeys(show) => sources(visitor, &show.sources),
        Statement::ShowSeries(show) => {
            sources(visitor, &show.sources);
            condition(visitor, &show.condition);
        }
        Statement::ShowCardinality(show) => {
            sources(visitor, &show.sources);
            condition(visitor, &show.condition);
            if let Some(show_key) = &show.key {
                key(visitor, show_key);
            }
        }
        Statement::DropSeries(drop) => {
            sources(visitor, &drop.sources);
            condition(visitor, &drop.condition);
        }
        Statement::Delete(delete) => {
            if let Some(source) = &delete.source {
                visitor.visit_measurement(source);
            }
            condition(visitor, &delete.condition);
        }
        Statement::CreateDatabase(_)
        | Statement::DropDatabase(_)
        | Statement::ShowDatabases { .. }
        | Statement::ShowRetentionPolicies(_)
        | Statement::ShowDiagnostics { .. }
        | Statement::ShowStats { .. }
        | Statement::ShowRules { .. }
        | Statement::ShowAlerts { .. }
        | Statement::ShowCompactions { .. }
        | Statement::CreateRetentionPolicy(_)
        | Statement::AlterRetentionPolicy(_)
        | Statement::DropRetentionPolicy(_)
        | Statement::DropMeasurement(_) => {}
    }
}

pub fn walk_select<'ast, V: Visit<'ast> + ?Sized>(visitor: &mut V, select: &'ast SelectStatement) {
    for field in &select.fields {
        visitor.visit_expr(&field.expr);
    }
    for source in &select.sources {
        visitor.visit_source(source);
    }
    if let Some(condition) = &select.condition {
        visitor.visit_expr(condition);
    }
    if let Some(group_by) = &select.group_by {
        for regex in &group_by.regexes {
            visitor.visit_regex(regex);
        }
    }
}

pub fn walk_source<'ast, V: Visit<'ast> + ?Sized>(visitor: &mut V, source: &'ast Source) {
    match source {
        Source::Measurement(measurement) => visitor.visit_measurement(measurement),
        Source::Subquery { select, .. } => visitor.visit_select(select),
    }
}

pub fn walk_expr<'ast, V: Visit<'ast> + ?Sized>(visitor: &mut V, expr: &'ast Expr) {
    match expr {
        Expr::Call(call) => {
            for arg in &call.args {
                visitor.visit_expr(arg);
            }
        }
        Expr::Binary(binary) => {
            visitor.visit_expr(&binary.lhs);
            visitor.visit_expr(&binary.rhs);
        }
        Expr::Unary(unary) => visitor.visit_expr(&unary.operand),
        Expr::Paren(paren) => visitor.visit_expr(&paren.inner),
        Expr::VarRef(_) | Expr::Literal(_) | Expr::Now { .. } | Expr::Wildcard(_) => {}
    }
}

/// A walk with mutable access to every node and every span.
pub trait VisitMut {
    fn visit_statement_mut(&mut self, statement: &mut Statement) {
        walk_statement_mut(self, statement);
    }

    fn visit_select_mut(&mut self, select: &mut SelectStatement) {
        walk_select_mut(self, select);
    }

    fn visit_expr_mut(&mut self, expr: &mut Expr) {
        walk_expr_mut(self, expr);
    }

    fn visit_measurement_mut(&mut self, measurement: &mut MeasurementRef) {
        walk_measurement_mut(self, measurement);
    }

    fn visit_ident_mut(&mut self, ident: &mut Ident) {
        self.visit_span_mut(&mut ident.span);
    }

    fn visit_regex_mut(&mut self, regex: &mut RegexLiteral) {
        self.visit_span_mut(&mut regex.span);
    }

    /// Called once for every span in the tree.
    fn visit_span_mut(&mut self, _span: &mut Span) {}
}

fn walk_option_ident_mut<V: VisitMut + ?Sized>(visitor: &mut V, ident: &mut Option<Ident>) {
    if let Some(ident) = ident {
        visitor.visit_ident_mut(ident);
    }
}

fn walk_option_expr_mut<V: VisitMut + ?Sized>(visitor: &mut V, expr: &mut Option<Expr>) {
    if let Some(expr) = expr {
        visitor.visit_expr_mut(expr);
    }
}

fn walk_measurements_mut<V: VisitMut + ?Sized>(visitor: &mut V, sources: &mut [MeasurementRef]) {
    for measurement in sources {
        visitor.visit_measurement_mut(measurement);
    }
}

fn walk_measurement_name_mut<V: VisitMut + ?Sized>(visitor: &mut V, name: &mut MeasurementName) {
    match name {
        MeasurementName::Name(ident) => visitor.visit_ident_mut(ident),
        MeasurementName::Regex(regex) => visitor.visit_regex_mut(regex),
    }
}

fn walk_tag_key_mut<V: VisitMut + ?Sized>(visitor: &mut V, key: &mut TagKeyMatch) {
    match key {
        TagKeyMatch::Equal(ident) | TagKeyMatch::NotEqual(ident) => visitor.visit_ident_mut(ident),
        TagKeyMatch::Regex(regex) | TagKeyMatch::NotRegex(regex) => visitor.visit_regex_mut(regex),
        TagKeyMatch::In(idents) => {
            for ident in idents {
                visitor.visit_ident_mut(ident);
            }
        }
    }
}

pub fn walk_query_mut<V: VisitMut + ?Sized>(visitor: &mut V, query: &mut Query) {
    visitor.visit_span_mut(&mut query.span);
    for statement in &mut query.statements {
        visitor.visit_statement_mut(statement);
    }
}

pub fn walk_statement_mut<V: VisitMut + ?Sized>(visitor: &mut V, statement: &mut Statement) {
    match statement {
        Statement::Select(select) => visitor.visit_select_mut(select),
        Statement::Explain(explain) => {
            visitor.visit_span_mut(&mut explain.span);
            visitor.visit_select_mut(&mut explain.select);
        }
        Statement::CreateDatabase(CreateDatabaseStatement {
            name,
            retention,
            span,
        }) => {
            visitor.visit_span_mut(span);
            visitor.visit_ident_mut(name);
            if let Some(retention) = retention {
                visitor.visit_span_mut(&mut retention.span);
                walk_option_ident_mut(visitor, &mut retention.policy_name);
            }
        }
        Statement::DropDatabase(drop) => {
            visitor.visit_span_mut(&mut drop.span);
            visitor.visit_ident_mut(&mut drop.name);
        }
        Statement::ShowMeasurements(show) => {
            visitor.visit_span_mut(&mut show.span);
            walk_option_ident_mut(visitor, &mut show.database);
            if let Some(name) = &mut show.measurement {
                walk_measurement_name_mut(visitor, name);
            }
            walk_option_expr_mut(visitor, &mut show.condition);
        }
        Statement::ShowTagKeys(show) => {
            visitor.visit_span_mut(&mut show.span);
            walk_option_ident_mut(visitor, &mut show.database);
            walk_measurements_mut(visitor, &mut show.sources);
            walk_option_expr_mut(visitor, &mut show.condition);
        }
        Statement::ShowTagValues(show) => {
            visitor.visit_span_mut(&mut show.span);
            walk_option_ident_mut(visitor, &mut show.database);
            walk_measurements_mut(visitor, &mut show.sources);
            walk_tag_key_mut(visitor, &mut show.key);
            walk_option_expr_mut(visitor, &mut show.condition);
        }
        Statement::ShowFieldKeys(show) => {
            visitor.visit_span_mut(&mut show.span);
            walk_option_ident_mut(visitor, &mut show.database);
            walk_measurements_mut(visitor, &mut show.sources);
        }
        Statement::ShowSeries(show) => {
            visitor.visit_span_mut(&mut show.span);
            walk_option_ident_mut(visitor, &mut show.database);
            walk_measurements_mut(visitor, &mut show.sources);
            walk_option_expr_mut(visitor, &mut show.condition);
        }
        Statement::ShowCardinality(show) => {
            visitor.visit_span_mut(&mut show.span);
            walk_option_ident_mut(visitor, &mut show.database);
            walk_measurements_mut(visitor, &mut show.sources);
            walk_option_expr_mut(visitor, &mut show.condition);
            if let Some(key) = &mut show.key {
                walk_tag_key_mut(visitor, key);
            }
        }
        Statement::ShowRetentionPolicies(show) => {
            visitor.visit_span_mut(&mut show.span);
            walk_option_ident_mut(visitor, &mut show.database);
        }
        Statement::CreateRetentionPolicy(create) => {
            visitor.visit_span_mut(&mut create.span);
            visitor.visit_ident_mut(&mut create.name);
            visitor.visit_ident_mut(&mut create.database);
        }
        Statement::AlterRetentionPolicy(alter) => {
            visitor.visit_span_mut(&mut alter.span);
            visitor.visit_ident_mut(&mut alter.name);
            visitor.visit_ident_mut(&mut alter.database);
        }
        Statement::DropRetentionPolicy(drop) => {
            visitor.visit_span_mut(&mut drop.span);
            visitor.visit_ident_mut(&mut drop.name);
            visitor.visit_ident_mut(&mut drop.database);
        }
        Statement::DropMeasurement(drop) => {
            visitor.visit_span_mut(&mut drop.span);
            visitor.visit_ident_mut(&mut drop.name);
        }
        Statement::DropSeries(drop) => {
            visitor.visit_span_mut(&mut drop.span);
            walk_measurements_mut(visitor, &mut drop.sources);
            walk_option_expr_mut(visitor, &mut drop.condition);
        }
        Statement::Delete(delete) => {
            visitor.visit_span_mut(&mut delete.span);
            if let Some(source) = &mut delete.source {
                visitor.visit_measurement_mut(source);
            }
            walk_option_expr_mut(visitor, &mut delete.condition);
        }
        Statement::ShowDatabases { span }
        | Statement::ShowDiagnostics { span }
        | Statement::ShowStats { span }
        | Statement::ShowRules { span }
        | Statement::ShowAlerts { span }
        | Statement::ShowCompactions { span } => visitor.visit_span_mut(span),
    }
}

pub fn walk_select_mut<V: VisitMut + ?Sized>(visitor: &mut V, select: &mut SelectStatement) {
    visitor.visit_span_mut(&mut select.span);
    for Field { expr, alias, span } in &mut select.fields {
        visitor.visit_span_mut(span);
        visitor.visit_expr_mut(expr);
        walk_option_ident_mut(visitor, alias);
    }
    for source in &mut select.sources {
        match source {
            Source::Measurement(measurement) => visitor.visit_measurement_mut(measurement),
            Source::Subquery { select, span } => {
                visitor.visit_span_mut(span);
                visitor.visit_select_mut(select);
            }
        }
    }
    walk_option_expr_mut(visitor, &mut select.condition);
    if let Some(group_by) = &mut select.group_by {
        walk_group_by_mut(visitor, group_by);
    }
    if let Some(fill) = &mut select.fill {
        visitor.visit_span_mut(&mut fill.span);
    }
}

fn walk_group_by_mut<V: VisitMut + ?Sized>(visitor: &mut V, group_by: &mut GroupBy) {
    visitor.visit_span_mut(&mut group_by.span);
    if let Some(time) = &mut group_by.time {
        visitor.visit_span_mut(&mut time.span);
        visitor.visit_span_mut(&mut time.interval_span);
        match &mut time.offset {
            Some(TimeOffset::Duration { span, .. } | TimeOffset::Now { span }) => {
                visitor.visit_span_mut(span);
            }
            None => {}
        }
    }
    for tag in &mut group_by.tags {
        visitor.visit_ident_mut(tag);
    }
    for regex in &mut group_by.regexes {
        visitor.visit_regex_mut(regex);
    }
}

pub fn walk_measurement_mut<V: VisitMut + ?Sized>(
    visitor: &mut V,
    measurement: &mut MeasurementRef,
) {
    visitor.visit_span_mut(&mut measurement.span);
    walk_option_ident_mut(visitor, &mut measurement.database);
    walk_option_ident_mut(visitor, &mut measurement.retention_policy);
    walk_measurement_name_mut(visitor, &mut measurement.name);
}

pub fn walk_expr_mut<V: VisitMut + ?Sized>(visitor: &mut V, expr: &mut Expr) {
    match expr {
        Expr::VarRef(var_ref) => visitor.visit_span_mut(&mut var_ref.span),
        Expr::Call(call) => {
            visitor.visit_span_mut(&mut call.span);
            for arg in &mut call.args {
                visitor.visit_expr_mut(arg);
            }
        }
        Expr::Binary(binary) => {
            visitor.visit_span_mut(&mut binary.span);
            visitor.visit_expr_mut(&mut binary.lhs);
            visitor.visit_expr_mut(&mut binary.rhs);
        }
        Expr::Unary(unary) => {
            visitor.visit_span_mut(&mut unary.span);
            visitor.visit_expr_mut(&mut unary.operand);
        }
        Expr::Paren(paren) => {
            visitor.visit_span_mut(&mut paren.span);
            visitor.visit_expr_mut(&mut paren.inner);
        }
        Expr::Literal(literal) => visitor.visit_span_mut(&mut literal.span),
        Expr::Now { span } => visitor.visit_span_mut(span),
        Expr::Wildcard(wildcard) => visitor.visit_span_mut(&mut wildcard.span),
    }
}

struct SpanEraser;

impl VisitMut for SpanEraser {
    fn visit_span_mut(&mut self, span: &mut Span) {
        *span = Span::default();
    }
}

/// Sets every span in the statement to `0..0`, so that trees parsed from differently spaced
/// text compare equal.
pub fn strip_spans(statement: &mut Statement) {
    SpanEraser.visit_statement_mut(statement);
}

/// [`strip_spans`] for a whole query.
pub fn strip_query_spans(query: &mut Query) {
    walk_query_mut(&mut SpanEraser, query);
}
