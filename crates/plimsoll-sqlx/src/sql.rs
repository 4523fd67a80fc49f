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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Token<'a> {
    /// A bare word: keyword or unquoted identifier.
    Word(&'a str),
    /// A quoted identifier, with its quotes (`"a""b"`, `` `a` ``, `[a]`).
    Quoted(&'a str),
    /// A string literal, a number, or a dollar-quoted body.
    Literal,
    /// A parameter: `$1`, `?`, `?1`, `:name`, `@name`.
    Param(&'a str),
    /// Any other character.
    Punct(u8),
}

/// A scanner over SQL text, skipping blanks and comments.
struct Tokens<'a> {
    sql: &'a str,
    at: usize,
}

impl<'a> Tokens<'a> {
    fn new(sql: &'a str) -> Self {
        Self { sql, at: 0 }
    }

    fn bytes(&self) -> &'a [u8] {
        self.sql.as_bytes()
    }

    /// The byte at `i`, or 0 past the end.
    fn byte(&self, i: usize) -> u8 {
        self.bytes().get(i).copied().unwrap_or(0)
    }

    fn skip_blanks_and_comments(&mut self) {
        let b = self.bytes();
        loop {
            while self.at < b.len() && b[self.at].is_ascii_whitespace() {
                self.at += 1;
            }
            if self.byte(self.at) == b'-' && self.byte(self.at + 1) == b'-' {
                while self.at < b.len() && b[self.at] != b'\n' {
                    self.at += 1;
                }
            } else if self.byte(self.at) == b'/' && self.byte(self.at + 1) == b'*' {
                // PostgreSQL nests block comments.
                let mut depth = 0usize;
                while self.at < b.len() {
                    if self.byte(self.at) == b'/' && self.byte(self.at + 1) == b'*' {
                        depth += 1;
                        self.at += 2;
                    } else if self.byte(self.at) == b'*' && self.byte(self.at + 1) == b'/' {
                        depth -= 1;
                        self.at += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        self.at += 1;
                    }
                }
                self.at = self.at.min(b.len());
            } else {
                return;
            }
        }
    }

    /// Skips to just after `close`, honouring doubled `close` as an escape
    /// (and backslash escapes when `backslash`).
    fn skip_quoted(&mut self, close: u8, backslash: bool) {
        let b = self.bytes();
        while self.at < b.len() {
            let c = b[self.at];
            self.at += 1;
            if backslash && c == b'\\' {
                self.at += 1;
            } else if c == close {
                if self.byte(self.at) == close && close != b']' {
                    self.at += 1;
                } else {
                    return;
                }
            }
        }
        self.at = b.len();
    }

    fn is_word_start(c: u8) -> bool {
        c.is_ascii_alphabetic() || c == b'_' || c >= 0x80
    }

    fn is_word_byte(c: u8) -> bool {
        c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80
    }

    fn word_end(&self, from: usize) -> usize {
        let b = self.bytes();
        let mut end = from;
        while end < b.len() && Self::is_word_byte(b[end]) {
            end += 1;
        }
        end
    }

    /// A `$tag$` opener at `self.at`: the tag's length with both dollars.
    fn dollar_tag(&self) -> Option<usize> {
        let b = self.bytes();
        let mut end = self.at + 1;
        while end < b.len() && (b[end].is_ascii_alphanumeric() || b[end] == b'_') {
            end += 1;
        }
        let tag_ok = end == self.at + 1 || !b[self.at + 1].is_ascii_digit();
        (tag_ok && self.byte(end) == b'$').then_some(end + 1 - self.at)
    }
}

impl<'a> Iterator for Tokens<'a> {
    type Item = Token<'a>;

    fn next(&mut self) -> Option<Token<'a>> {
        self.skip_blanks_and_comments();
        let b = self.bytes();
        let start = self.at;
        let c = *b.get(start)?;
        let next = self.byte(start + 1);
        let token = match c {
            b'\'' => {
                self.at += 1;
                self.skip_quoted(b'\'', false);
                Token::Literal
            }
            b'E' | b'e' if next == b'\'' => {
                self.at += 2;
                self.skip_quoted(b'\'', true);
                Token::Literal
            }
            b'X' | b'x' | b'B' | b'b' | b'N' | b'n' if next == b'\'' => {
                self.at += 2;
                self.skip_quoted(b'\'', false);
                Token::Literal
            }
            b'"' | b'`' | b'[' => {
                let close = match c {
                    b'[' => b']',
                    other => other,
                };
                self.at += 1;
                self.skip_quoted(close, false);
                Token::Quoted(&self.sql[start..self.at])
            }
            b'$' => {
                if next.is_ascii_digit() {
                    self.at = self.word_end(start + 1);
                    Token::Param(&self.sql[start..self.at])
                } else if let Some(tag_len) = self.dollar_tag() {
                    let tag = &self.sql[start..start + tag_len];
                    self.at = match self.sql[start + tag_len..].find(tag) {
                        Some(end) => start + tag_len + end + tag_len,
                        None => b.len(),
                    };
                    Token::Literal
                } else {
                    self.at += 1;
                    Token::Punct(c)
                }
            }
            b'?' => {
                self.at += 1;
                while self.byte(self.at).is_ascii_digit() {
                    self.at += 1;
                }
                Token::Param(&self.sql[start..self.at])
            }
            b':' | b'@' if Self::is_word_start(next) => {
                self.at = self.word_end(start + 1);
                Token::Param(&self.sql[start..self.at])
            }
            b'0'..=b'9' => {
                while Self::is_word_byte(self.byte(self.at)) || self.byte(self.at) == b'.' {
                    let e = self.byte(self.at);
                    self.at += 1;
                    // An exponent's sign: 1e-5.
                    if (e == b'e' || e == b'E') && matches!(self.byte(self.at), b'+' | b'-') {
                        self.at += 1;
                    }
                }
                Token::Literal
            }
            b'.' if next.is_ascii_digit() => {
                self.at += 1;
                while self.byte(self.at).is_ascii_alphanumeric() {
                    self.at += 1;
                }
                Token::Literal
            }
            c if Self::is_word_start(c) => {
                self.at = self.word_end(start);
                // Keep `self.at` on a char boundary (a word ends on an ASCII byte or the end).
                Token::Word(&self.sql[start..self.at])
            }
            _ => {
                // One character, whole (never split a multi-byte one).
                let len = self.sql[start..].chars().next().map_or(1, char::len_utf8);
                self.at += len;
                Token::Punct(c)
            }
        };
        Some(token)
    }
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
        Token::Quoted(q) if q.len() >= 2 => {
            let close = q.as_bytes()[q.len() - 1];
            let inner = &q[1..q.len() - 1];
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

/// The first statement's tokens, with each one's parenthesis depth and
/// whether the innermost parenthesis around it holds a query (a FROM in
/// `EXTRACT(YEAR FROM at)` names no table; one in `(SELECT … FROM t)` does).
fn first_statement(sql: &str) -> Vec<(Token<'_>, bool)> {
    let mut out = Vec::new();
    let mut stack: Vec<bool> = Vec::new();
    let mut tokens = Tokens::new(sql).peekable();
    while let Some(token) = tokens.next() {
        let in_query = stack.last().copied().unwrap_or(true);
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
        out.push((token, in_query));
    }
    out
}

/// Reads a table name at `tokens[at..]` (modifiers skipped, schema
/// dropped); `None` when a subquery or anything else is there.
fn table_at<'a>(tokens: &[(Token<'a>, bool)], mut at: usize) -> Option<Cow<'a, str>> {
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
fn skip_with<'a>(tokens: &[(Token<'a>, bool)]) -> (usize, Vec<Cow<'a, str>>) {
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

/// The first table named in `tokens[from..to]`, skipping the names in `ctes`.
fn first_table<'a>(
    tokens: &[(Token<'a>, bool)],
    from: usize,
    to: usize,
    ctes: &[Cow<'a, str>],
) -> Option<Cow<'a, str>> {
    let mut at = from;
    while at < to {
        let (token, in_query) = &tokens[at];
        at += 1;
        let names_table = *in_query
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
    let tokens = first_statement(sql);
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
    let mut out = String::with_capacity(sql.len().min(MAX_SHAPE_LEN));
    let mut tokens = Tokens::new(sql);
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
mod tests {
    use super::*;

    #[track_caller]
    fn check(sql: &str, operation: Operation, table: Option<&str>) {
        let parsed = parse(sql);
        assert_eq!(
            (parsed.operation, parsed.table.as_deref()),
            (operation, table),
            "{sql}"
        );
    }

    #[test]
    fn reads_operation_and_table_of_real_statements() {
        use Operation::*;
        check(
            "SELECT id, total FROM orders WHERE id = $1",
            Select,
            Some("orders"),
        );
        check(
            "select * from Orders o join customers c on c.id = o.customer_id",
            Select,
            Some("orders"),
        );
        check("SELECT * FROM public.orders", Select, Some("orders"));
        check(
            r#"SELECT * FROM "public"."Order Lines""#,
            Select,
            Some("Order Lines"),
        );
        check(r#"SELECT * FROM "we""ird""#, Select, Some("we\"ird"));
        check("SELECT * FROM `orders`", Select, Some("orders"));
        check("SELECT * FROM [order items]", Select, Some("order items"));
        check(
            "INSERT INTO orders (tenant, total) VALUES (?, ?)",
            Insert,
            Some("orders"),
        );
        check(
            "insert or replace into kv(k, v) values (?1, ?2)",
            Insert,
            Some("kv"),
        );
        check("REPLACE INTO kv VALUES ('a', 1)", Insert, Some("kv"));
        check(
            "INSERT INTO archive SELECT * FROM orders",
            Insert,
            Some("archive"),
        );
        check(
            "UPDATE orders SET total = total + 1 WHERE id = $1",
            Update,
            Some("orders"),
        );
        check(
            "UPDATE ONLY billing.invoices SET paid = true",
            Update,
            Some("invoices"),
        );
        check("UPDATE OR IGNORE kv SET v = 2", Update, Some("kv"));
        check(
            "DELETE FROM sessions WHERE expires < now()",
            Delete,
            Some("sessions"),
        );
        check("DELETE FROM ONLY sessions", Delete, Some("sessions"));
        check("TABLE orders", Select, Some("orders"));
        check("VALUES (1), (2)", Select, None);
        check("SELECT 1", Select, None);
        check("SELECT now()", Select, None);
        check("BEGIN", Other, None);
        check("PRAGMA journal_mode = WAL", Other, None);
        check("CREATE TABLE orders (id INTEGER PRIMARY KEY)", Other, None);
        check("", Other, None);
        check("   -- only a comment\n", Other, None);
    }

    #[test]
    fn common_table_expressions_are_looked_through() {
        use Operation::*;
        check(
            "WITH recent AS (SELECT * FROM orders WHERE at > $1) SELECT count(*) FROM recent",
            Select,
            Some("orders"),
        );
        check(
            "WITH recent AS (SELECT * FROM orders) SELECT * FROM recent JOIN customers c ON true",
            Select,
            Some("customers"),
        );
        check(
            "WITH RECURSIVE tree(id, parent) AS (SELECT id, parent FROM nodes UNION ALL SELECT n.id, n.parent FROM nodes n JOIN tree t ON n.parent = t.id) SELECT * FROM tree",
            Select,
            Some("nodes"),
        );
        check(
            "WITH moved AS (DELETE FROM queue WHERE id = $1 RETURNING *) INSERT INTO done SELECT * FROM moved",
            Insert,
            Some("done"),
        );
        check(
            "with a as materialized (select 1), b as not materialized (select * from b_src) update target set x = 1",
            Update,
            Some("target"),
        );
    }

    #[test]
    fn comments_literals_and_functions_do_not_mislead() {
        use Operation::*;
        check(
            "/* from nowhere */ SELECT 'FROM fake' FROM real_one",
            Select,
            Some("real_one"),
        );
        check("-- DELETE FROM x\nSELECT * FROM y", Select, Some("y"));
        check(
            "/* outer /* nested */ still comment FROM z */ SELECT * FROM t",
            Select,
            Some("t"),
        );
        check(
            "SELECT EXTRACT(YEAR FROM created_at) FROM orders",
            Select,
            Some("orders"),
        );
        check(
            "SELECT substring(name FROM 2 FOR 3) AS s FROM people",
            Select,
            Some("people"),
        );
        check(
            "SELECT * FROM (SELECT * FROM inner_t) sub",
            Select,
            Some("inner_t"),
        );
        check(
            "SELECT $$ FROM dollar $$, $tag$ FROM x $tag$ FROM t",
            Select,
            Some("t"),
        );
        check(r"SELECT E'it\'s FROM x' FROM t", Select, Some("t"));
        check(
            "SELECT * FROM orders o, LATERAL (SELECT 1) x",
            Select,
            Some("orders"),
        );
        check(
            "SELECT * FROM (VALUES (1)) v JOIN t ON true",
            Select,
            Some("t"),
        );
    }

    #[test]
    fn only_the_first_statement_counts() {
        use Operation::*;
        check("SELECT * FROM a; DELETE FROM b", Select, Some("a"));
        check("; ; UPDATE c SET x = 1; SELECT 1", Update, Some("c"));
        check(
            "DELETE FROM d WHERE note = 'a;b'; SELECT 1",
            Delete,
            Some("d"),
        );
    }

    #[test]
    fn unterminated_and_odd_text_never_panics() {
        for sql in [
            "SELECT '",
            "SELECT \"",
            "SELECT /* ",
            "SELECT $a$ ",
            "SELECT [",
            "WITH",
            "WITH x",
            "WITH x AS (",
            "UPDATE",
            "UPDATE OR",
            "SELECT * FROM",
            "SELECT * FROM a.",
            "DELETE FROM ONLY",
            "SELECT ((((",
            "))))",
            "SELECT 'é' FROM tàble",
            "€ FROM €",
            "SELECT 1e-5, .5, 0x1F FROM t",
            "$",
            "$1",
            "?",
            ":",
            "@",
        ] {
            let _ = parse(sql);
            let _ = shape(sql);
        }
        check("SELECT * FROM tàble", Operation::Select, Some("tàble"));
    }

    #[test]
    fn long_names_are_cut_at_a_character_boundary() {
        let long = "é".repeat(40);
        let cut = truncate_table(&long);
        assert!(cut.len() <= MAX_TABLE_LEN && long.starts_with(cut) && cut.len() == 62);
        assert_eq!(truncate_table("orders"), "orders");
    }

    #[test]
    fn shapes_keep_no_literal() {
        assert_eq!(
            shape("INSERT INTO t (a, b) VALUES ('secret', 42), ($1, ?2) -- note\n"),
            "INSERT INTO t (a, b) VALUES (?, ?), ($1, ?2)"
        );
        assert_eq!(
            shape(
                "SELECT x.y FROM \"T\" WHERE z = E'a\\'b' AND w = $q$hidden$q$ AND v IN (1, 2.5, -3)"
            ),
            "SELECT x.y FROM \"T\" WHERE z = ? AND w = ? AND v IN (?, ?, - ?)"
        );
        let long = format!("SELECT {} FROM t", "a, ".repeat(1000));
        let cut = shape(&long);
        assert!(cut.len() <= MAX_SHAPE_LEN + '…'.len_utf8() && cut.ends_with('…'));
    }
}
