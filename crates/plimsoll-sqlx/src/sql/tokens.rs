//! The scanner: SQL text as words, quoted identifiers, literals,
//! parameters and punctuation, with blanks and comments skipped.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Token<'a> {
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

/// How a database writes literals and comments.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Dialect {
    /// PostgreSQL and SQLite: `'…'` strings with `''` escapes (`E'…'` with
    /// backslash escapes), `"…"` identifiers, `--` and `/* */` comments.
    #[default]
    Standard,
    /// MySQL: backslash escapes in strings, `"…"` strings too, `#` comments.
    MySql,
}

impl Dialect {
    /// The dialect of a sqlx database (`Database::NAME`).
    pub fn of(database: &str) -> Self {
        if database == "MySQL" {
            Dialect::MySql
        } else {
            Dialect::Standard
        }
    }
}

/// A scanner over SQL text, skipping blanks and comments.
pub(super) struct Tokens<'a> {
    pub(super) sql: &'a str,
    pub(super) at: usize,
    dialect: Dialect,
}

impl<'a> Tokens<'a> {
    pub(super) fn new(sql: &'a str, dialect: Dialect) -> Self {
        Self {
            sql,
            at: 0,
            dialect,
        }
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
            let hash_comment = self.dialect == Dialect::MySql && self.byte(self.at) == b'#';
            if hash_comment || (self.byte(self.at) == b'-' && self.byte(self.at + 1) == b'-') {
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
                self.skip_quoted(b'\'', self.dialect == Dialect::MySql);
                Token::Literal
            }
            b'"' if self.dialect == Dialect::MySql => {
                self.at += 1;
                self.skip_quoted(b'"', true);
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
