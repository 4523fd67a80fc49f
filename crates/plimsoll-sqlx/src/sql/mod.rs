//! What a statement does and to which table, read from its SQL text; and
//! its shape, with every literal taken out, for logs.
//!
//! The reader is a small scanner, not a SQL parser: it skips comments,
//! string literals (standard, `E'…'` and `$tag$…$tag$`) and parameters,
//! reads quoted identifiers (`"…"`, `` `…` ``, `[…]`), and looks at the
//! first statement only.
//!
//! - **operation**: the statement's verb (after any `WITH` list): `select`
//!   (also `VALUES` and `TABLE`), `insert` (also SQLite's `REPLACE`),
//!   `update`, `delete`; anything else is `other`.
//! - **table**: the first table named after `INTO`, `UPDATE`, `FROM` or
//!   `JOIN` in the main statement; a name defined by the `WITH` list is
//!   looked through (the first table inside the common table expressions
//!   is taken when the main statement reads only those). The schema is
//!   dropped (`public.orders` → `orders`, so a schema per tenant does not
//!   multiply series: the tenant is a label already); unquoted names are
//!   lower-cased as the database folds them, quoted ones kept as written.
//!   A `FROM` inside a function call (`EXTRACT(YEAR FROM at)`) is not a
//!   table. No table: [`NO_TABLE`].

use std::borrow::Cow;

mod tokens;

pub use tokens::Dialect;
use tokens::{Token, Tokens};

/// The `table` label of a statement that names no table (`SELECT 1`,
/// `BEGIN`, `PRAGMA …`).
pub const NO_TABLE: &str = "__none__";

/// Longest table name kept, in bytes (PostgreSQL's identifier limit is 63).
pub const MAX_TABLE_LEN: usize = 63;

/// Longest statement shape logged, in bytes; longer shapes end in `…`.
pub const MAX_SHAPE_LEN: usize = 1024;

/// The `operation` label: what a statement does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    /// `SELECT`, `VALUES`, `TABLE`.
    Select,
    /// `INSERT`, `REPLACE`.
    Insert,
    /// `UPDATE`.
    Update,
    /// `DELETE`.
    Delete,
    /// Anything else (DDL, `BEGIN`, `PRAGMA`, `COPY` …).
    Other,
}

impl Operation {
    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Operation::Select => "select",
            Operation::Insert => "insert",
            Operation::Update => "update",
            Operation::Delete => "delete",
            Operation::Other => "other",
        }
    }
}

/// What [`parse`] read from a statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parsed<'a> {
    /// What the statement does.
    pub operation: Operation,
    /// The table it works on; `None` when it names none.
    pub table: Option<Cow<'a, str>>,
}

fn is(token: &Token<'_>, keyword: &str) -> bool {
    matches!(token, Token::Word(w) if w.eq_ignore_ascii_case(keyword))
}

/// An identifier's name: unquoted, escapes undone; unquoted names folded
/// to lower case.
fn ident_name(token: Token<'_>) -> Option<Cow<'_, str>> {
    match token {
        Token::Word(w) if w.bytes().any(|b| b.is_ascii_uppercase()) => {
            Some(Cow::Owned(w.to_ascii_lowercase()))
        }
        Token::Word(w) => Some(Cow::Borrowed(w)),
        Token::Quoted(q) => {
            // The opening quote is one ASCII byte; the closing one is there
            // unless the text ended first.
            let open = q.as_bytes()[0];
            let close = if open == b'[' { b']' } else { open };
            let inner = match q[1..].strip_suffix(close as char) {
                Some(inner) => inner,
                None => &q[1..],
            };
            let doubled = match close {
                b'"' => "\"\"",
                b'`' => "``",
                _ => return Some(Cow::Borrowed(inner)),
            };
            if inner.contains(doubled) {
                Some(Cow::Owned(inner.replace(doubled, &doubled[..1])))
            } else {
                Some(Cow::Borrowed(inner))
            }
        }
        _ => None,
    }
}

/// Words that may follow `FROM`, `JOIN`, `INTO` or `UPDATE` before the table.
fn is_table_modifier(token: &Token<'_>) -> bool {
    ["ONLY", "LATERAL"].iter().any(|k| is(token, k))
}

/// Words that open a query inside parentheses.
const QUERY_VERBS: &[&str] = &[
    "SELECT", "WITH", "VALUES", "TABLE", "INSERT", "UPDATE", "DELETE",
];

/// Where a token stands: its parenthesis depth, and whether the innermost
/// parenthesis around it holds a query.
#[derive(Clone, Copy, Debug)]
struct Place {
    in_query: bool,
    depth: usize,
}

/// The first statement's tokens, with each one's parenthesis depth and
/// whether the innermost parenthesis around it holds a query (a FROM in
/// `EXTRACT(YEAR FROM at)` names no table; one in `(SELECT … FROM t)` does).
fn first_statement(sql: &str, dialect: Dialect) -> Vec<(Token<'_>, Place)> {
    let mut out = Vec::new();
    let mut stack: Vec<bool> = Vec::new();
    let mut tokens = Tokens::new(sql, dialect).peekable();
    while let Some(token) = tokens.next() {
        let place = Place {
            in_query: stack.last().copied().unwrap_or(true),
            depth: stack.len(),
        };
        match token {
            Token::Punct(b';') if stack.is_empty() => {
                if out.is_empty() {
                    continue; // an empty statement: `; SELECT …`
                }
                break;
            }
            Token::Punct(b'(') => {
                let query = tokens
                    .peek()
                    .is_some_and(|t| QUERY_VERBS.iter().any(|k| is(t, k)));
                stack.push(query);
            }
            Token::Punct(b')') => {
                stack.pop();
            }
            _ => {}
        }
        out.push((token, place));
    }
    out
}

/// Reads a table name at `tokens[at..]` (modifiers skipped, schema
/// dropped); `None` when a subquery or anything else is there.
fn table_at<'a>(tokens: &[(Token<'a>, Place)], mut at: usize) -> Option<Cow<'a, str>> {
    while tokens.get(at).is_some_and(|(t, _)| is_table_modifier(t)) {
        at += 1;
    }
    let mut name = ident_name(tokens.get(at)?.0)?;
    // `schema.table`, `db.schema.table`: the last part.
    while matches!(tokens.get(at + 1), Some((Token::Punct(b'.'), _))) {
        match tokens.get(at + 2).and_then(|(t, _)| ident_name(*t)) {
            Some(part) => {
                name = part;
                at += 2;
            }
            None => break,
        }
    }
    Some(name)
}

/// Where the main statement starts after a `WITH` list, and the names it
/// defines; `tokens[0]` is `WITH`.
fn skip_with<'a>(tokens: &[(Token<'a>, Place)]) -> (usize, Vec<Cow<'a, str>>) {
    let mut names = Vec::new();
    let mut at = 1;
    if tokens.get(at).is_some_and(|(t, _)| is(t, "RECURSIVE")) {
        at += 1;
    }
    loop {
        let Some(name) = tokens.get(at).and_then(|(t, _)| ident_name(*t)) else {
            return (at, names);
        };
        names.push(name);
        at += 1;
        // Skip to the body's closing parenthesis: column list, AS,
        // [NOT] MATERIALIZED, then the body.
        let mut depth = 0usize;
        let mut seen_body = false;
        while let Some((token, _)) = tokens.get(at) {
            at += 1;
            match token {
                Token::Punct(b'(') => depth += 1,
                Token::Punct(b')') => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 && seen_body {
                        break;
                    }
                }
                t if depth == 0 && is(t, "AS") => seen_body = true,
                _ => {}
            }
        }
        if matches!(tokens.get(at), Some((Token::Punct(b','), _))) {
            at += 1;
        } else {
            return (at, names);
        }
    }
}

/// The first table named in `tokens[from..to]`, skipping the names in
/// `ctes`: at the statement's own level first (`SELECT (SELECT … FROM a)
/// FROM b` is about `b`), then anywhere.
fn first_table<'a>(
    tokens: &[(Token<'a>, Place)],
    from: usize,
    to: usize,
    ctes: &[Cow<'a, str>],
) -> Option<Cow<'a, str>> {
    first_table_at(tokens, from, to, ctes, true)
        .or_else(|| first_table_at(tokens, from, to, ctes, false))
}

fn first_table_at<'a>(
    tokens: &[(Token<'a>, Place)],
    from: usize,
    to: usize,
    ctes: &[Cow<'a, str>],
    top_only: bool,
) -> Option<Cow<'a, str>> {
    let top = tokens.get(from).map_or(0, |(_, place)| place.depth);
    let mut at = from;
    while at < to {
        let (token, place) = &tokens[at];
        at += 1;
        if top_only && place.depth != top {
            continue;
        }
        let names_table = place.in_query
            && ["FROM", "JOIN", "INTO", "UPDATE"]
                .iter()
                .any(|k| is(token, k));
        if !names_table {
            continue;
        }
        if let Some(table) = table_at(tokens, at)
            && !ctes.contains(&table)
        {
            return Some(table);
        }
    }
    None
}

/// Reads a statement's operation and table.
///
/// ```
/// use plimsoll_sqlx::sql::{parse, Operation};
///
/// let parsed = parse(r#"SELECT id FROM public."Orders" WHERE id = $1"#);
/// assert_eq!(parsed.operation, Operation::Select);
/// assert_eq!(parsed.table.as_deref(), Some("Orders"));
/// ```
pub fn parse(sql: &str) -> Parsed<'_> {
    parse_in(sql, Dialect::Standard)
}

/// [`parse`] for a database's [`Dialect`].
pub fn parse_in(sql: &str, dialect: Dialect) -> Parsed<'_> {
    let tokens = first_statement(sql, dialect);
    let (start, ctes) = match tokens.first() {
        Some((t, _)) if is(t, "WITH") => skip_with(&tokens),
        _ => (0, Vec::new()),
    };
    let verb = tokens.get(start).map(|(t, _)| t);
    let operation = match verb {
        Some(t) if is(t, "SELECT") || is(t, "VALUES") || is(t, "TABLE") => Operation::Select,
        Some(t) if is(t, "INSERT") || is(t, "REPLACE") => Operation::Insert,
        Some(t) if is(t, "UPDATE") => Operation::Update,
        Some(t) if is(t, "DELETE") => Operation::Delete,
        _ => Operation::Other,
    };
    let table = match operation {
        // `TABLE orders` reads the table named right after.
        Operation::Select if verb.is_some_and(|t| is(t, "TABLE")) => {
            table_at(&tokens, start + 1).filter(|t| !ctes.contains(t))
        }
        // `UPDATE [OR ROLLBACK] [ONLY] t`: the verb is the keyword.
        Operation::Update => {
            let mut at = start + 1;
            if tokens.get(at).is_some_and(|(t, _)| is(t, "OR")) {
                at += 2;
            }
            table_at(&tokens, at).filter(|t| !ctes.contains(t))
        }
        Operation::Other => None,
        _ => first_table(&tokens, start, tokens.len(), &ctes),
    };
    let table = table.or_else(|| {
        // The main statement reads only common table expressions: the
        // first real table inside them.
        (operation != Operation::Other && start > 0)
            .then(|| first_table(&tokens, 1, start, &ctes))
            .flatten()
    });
    Parsed { operation, table }
}

/// A table name as a label value: at most [`MAX_TABLE_LEN`] bytes, cut at
/// a character boundary.
pub fn truncate_table(name: &str) -> &str {
    if name.len() <= MAX_TABLE_LEN {
        return name;
    }
    let mut end = MAX_TABLE_LEN;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

/// The statement's shape: its words, identifiers, parameters and
/// punctuation, with every literal replaced by `?` and comments and
/// extra blanks removed, cut at [`MAX_SHAPE_LEN`] bytes. Values never
/// reach it, whether bound as parameters or written into the text.
///
/// ```
/// use plimsoll_sqlx::sql::shape;
///
/// assert_eq!(
///     shape("SELECT * FROM users -- find her\n WHERE email = 'ann@example.com' AND age > 41"),
///     "SELECT * FROM users WHERE email = ? AND age > ?"
/// );
/// ```
pub fn shape(sql: &str) -> String {
    shape_in(sql, Dialect::Standard)
}

/// [`shape`] for a database's [`Dialect`]: MySQL's backslash escapes and
/// double-quoted strings are literals there, and kept out of the shape.
pub fn shape_in(sql: &str, dialect: Dialect) -> String {
    let mut out = String::with_capacity(sql.len().min(MAX_SHAPE_LEN));
    let mut tokens = Tokens::new(sql, dialect);
    let mut prev: Option<Token<'_>> = None;
    while let Some(token) = tokens.next() {
        let text = match token {
            Token::Word(w) | Token::Quoted(w) | Token::Param(w) => w,
            Token::Literal => "?",
            Token::Punct(_) => {
                let start = tokens.at
                    - tokens.sql[..tokens.at]
                        .chars()
                        .next_back()
                        .map_or(1, char::len_utf8);
                &tokens.sql[start..tokens.at]
            }
        };
        let glue = matches!(token, Token::Punct(b'.' | b',' | b')' | b';'))
            || matches!(prev, Some(Token::Punct(b'.' | b'(')) | None);
        if !glue {
            out.push(' ');
        }
        if out.len() + text.len() > MAX_SHAPE_LEN {
            out.push('…');
            break;
        }
        out.push_str(text);
        prev = Some(token);
    }
    out
}

#[cfg(test)]
mod tests;
