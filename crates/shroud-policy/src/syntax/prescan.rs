//! A light lexical pass over HCL policy text before the real parser sees it.
//!
//! It exists for two reasons:
//!
//! 1. **Hostile input.** Policies arrive over the network. A recursive-descent parser can be
//!    driven into unbounded recursion (deeply nested brackets, long operator chains such as
//!    `1+1+1+…`, `!!!!…`, interpolations inside strings), and a stack overflow aborts the whole
//!    server, it does not unwind. A policy needs none of that: only blocks, strings, numbers,
//!    lists and maps. So this pass bounds nesting and rejects every operator character and
//!    template sequence outside comments, which leaves the parser only shallow, flat input.
//! 2. **HCL 1 habits.** Vault parses policies with HCL 1, which accepts the opening brace of a
//!    block on the next line (`path "x"\n{`), a style common in published policies. HCL 2 does
//!    not. This pass moves such a brace up to the end of the header line, keeping every byte
//!    offset after it and every line number unchanged, so parser errors still point at the
//!    user's own lines.

use crate::error::PolicyError;
use std::borrow::Cow;

/// Deepest nesting of `{`, `[` and `(` accepted. Real policies use three or four levels.
pub(crate) const MAX_NESTING: usize = 32;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Ctx {
    /// Inside a block body (or at the top level): newlines end statements.
    Body,
    /// Inside an expression bracket: newlines are insignificant.
    Expr,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Tok {
    None,
    Ident,
    Str,
    Other,
}

/// Statement tracking for the innermost block body, to tell a block's `{` from an object's.
struct Stmt {
    first: Tok,
    assign: bool,
    pending_newline: bool,
}

impl Stmt {
    const fn new() -> Self {
        Stmt {
            first: Tok::None,
            assign: false,
            pending_newline: false,
        }
    }
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
    stack: Vec<Ctx>,
    stmt: Stmt,
    last: Tok,
    last_end: usize,
    /// Nothing but whitespace since the last token (no comment in between).
    gap_clean: bool,
    /// (end of the block header's last token, position of the `{` on a later line).
    moves: Vec<(usize, usize)>,
}

/// Checks `text` and returns it, possibly with HCL-1-style braces moved (see the module doc).
pub(crate) fn prepare(text: &str) -> Result<Cow<'_, str>, PolicyError> {
    let mut s = Scanner {
        b: text.as_bytes(),
        i: 0,
        stack: Vec::new(),
        stmt: Stmt::new(),
        last: Tok::None,
        last_end: 0,
        gap_clean: true,
        moves: Vec::new(),
    };
    s.run()?;
    if s.moves.is_empty() {
        return Ok(Cow::Borrowed(text));
    }
    let mut out = text.as_bytes().to_vec();
    for (end, brace) in s.moves {
        // `"x"   \n  {` becomes `"x"{   \n  `: same length, same newlines. Only ASCII
        // whitespace and the brace move, so the text stays valid UTF-8.
        out[end] = b'{';
        out[end + 1..=brace].copy_from_slice(&text.as_bytes()[end..brace]);
    }
    String::from_utf8(out)
        .map(Cow::Owned)
        .map_err(|_| PolicyError::invalid(None, None, "policy is not valid UTF-8"))
}

impl Scanner<'_> {
    fn peek(&self, off: usize) -> Option<u8> {
        self.b.get(self.i + off).copied()
    }

    fn in_body(&self) -> bool {
        matches!(self.stack.last(), None | Some(Ctx::Body))
    }

    fn err(&self, at: usize, message: impl Into<String>) -> PolicyError {
        let before = &self.b[..at.min(self.b.len())];
        let line = before.iter().filter(|&&c| c == b'\n').count() + 1;
        let line_start = before
            .iter()
            .rposition(|&c| c == b'\n')
            .map_or(0, |p| p + 1);
        let column = String::from_utf8_lossy(&before[line_start..])
            .chars()
            .count()
            + 1;
        PolicyError::Syntax {
            line,
            column,
            message: message.into(),
        }
    }

    /// Records a token that ended at `end`.
    fn token(&mut self, kind: Tok, end: usize) {
        if self.in_body() && (self.stmt.pending_newline || self.stmt.first == Tok::None) {
            self.stmt = Stmt::new();
            self.stmt.first = kind;
        }
        self.last = kind;
        self.last_end = end;
        self.gap_clean = true;
    }

    fn run(&mut self) -> Result<(), PolicyError> {
        while let Some(c) = self.peek(0) {
            match c {
                b' ' | b'\t' | b'\r' => self.i += 1,
                b'\n' => {
                    if self.in_body() {
                        self.stmt.pending_newline = true;
                    }
                    self.i += 1;
                }
                b'#' => self.line_comment(),
                b'/' if self.peek(1) == Some(b'/') => self.line_comment(),
                b'/' if self.peek(1) == Some(b'*') => self.block_comment(),
                b'"' => self.string()?,
                b'{' | b'[' | b'(' => self.open(c)?,
                b'}' | b']' | b')' => self.close(),
                b'=' if self.peek(1) == Some(b'=') => {
                    return Err(self.err(self.i, "operators are not allowed in a policy"));
                }
                b'=' | b':' => {
                    self.i += 1;
                    if self.in_body() {
                        self.stmt.assign = true;
                    }
                    self.token(Tok::Other, self.i);
                }
                b',' | b'.' => {
                    self.i += 1;
                    self.token(Tok::Other, self.i);
                }
                b'0'..=b'9' => self.number(),
                c if c == b'_' || c.is_ascii_alphabetic() || c >= 0x80 => self.ident(),
                _ => {
                    let shown = String::from_utf8_lossy(&self.b[self.i..=self.i]).into_owned();
                    return Err(self.err(
                        self.i,
                        format!(
                            "unexpected {shown:?}: a policy holds only blocks, strings, \
                             numbers, lists and maps (no operators or expressions)"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    fn line_comment(&mut self) {
        while let Some(c) = self.peek(0) {
            if c == b'\n' {
                break;
            }
            self.i += 1;
        }
        self.gap_clean = false;
    }

    fn block_comment(&mut self) {
        self.i += 2;
        while let Some(c) = self.peek(0) {
            if c == b'*' && self.peek(1) == Some(b'/') {
                self.i += 2;
                break;
            }
            if c == b'\n' && self.in_body() {
                self.stmt.pending_newline = true;
            }
            self.i += 1;
        }
        self.gap_clean = false;
    }

    fn string(&mut self) -> Result<(), PolicyError> {
        self.i += 1;
        while let Some(c) = self.peek(0) {
            match c {
                b'\\' => self.i += 2,
                b'"' => {
                    self.i += 1;
                    break;
                }
                // An unterminated string: leave the newline to the parser, which reports it.
                b'\n' => break,
                b'$' | b'%' => match self.peek(1) {
                    // `$${` and `%%{` are HCL's escapes for a literal `${` / `%{`.
                    Some(n) if n == c => self.i += 2,
                    Some(b'{') => {
                        return Err(self.err(
                            self.i,
                            "template sequences (\"${…}\", \"%{…}\") are not supported in \
                             policies",
                        ));
                    }
                    _ => self.i += 1,
                },
                _ => self.i += 1,
            }
        }
        self.i = self.i.min(self.b.len());
        self.token(Tok::Str, self.i);
        Ok(())
    }

    fn number(&mut self) {
        while let Some(c) = self.peek(0) {
            match c {
                b'0'..=b'9' | b'.' => self.i += 1,
                b'e' | b'E' => {
                    self.i += 1;
                    if matches!(self.peek(0), Some(b'+' | b'-')) {
                        self.i += 1;
                    }
                }
                _ => break,
            }
        }
        self.token(Tok::Other, self.i);
    }

    fn ident(&mut self) {
        while let Some(c) = self.peek(0) {
            if c == b'_' || c == b'-' || c.is_ascii_alphanumeric() || c >= 0x80 {
                self.i += 1;
            } else {
                break;
            }
        }
        self.token(Tok::Ident, self.i);
    }

    fn open(&mut self, c: u8) -> Result<(), PolicyError> {
        if self.stack.len() >= MAX_NESTING {
            return Err(self.err(self.i, format!("nesting deeper than {MAX_NESTING} levels")));
        }
        let pos = self.i;
        self.i += 1;
        if c == b'{' && self.in_body() {
            let header = !self.stmt.assign
                && self.stmt.first == Tok::Ident
                && matches!(self.last, Tok::Ident | Tok::Str);
            if header {
                if self.stmt.pending_newline && self.gap_clean {
                    self.moves.push((self.last_end, pos));
                }
                self.stack.push(Ctx::Body);
                self.stmt = Stmt::new();
                self.last = Tok::None;
                self.gap_clean = true;
                return Ok(());
            }
        }
        self.token(Tok::Other, self.i);
        self.stack.push(Ctx::Expr);
        Ok(())
    }

    fn close(&mut self) {
        self.i += 1;
        match self.stack.pop() {
            Some(Ctx::Body) => {
                // The block statement is complete; whatever follows on this line is not a
                // block header.
                self.stmt = Stmt::new();
                self.stmt.first = Tok::Other;
                self.last = Tok::Other;
                self.last_end = self.i;
                self.gap_clean = true;
            }
            // Unbalanced closers are left for the parser to report.
            Some(Ctx::Expr) | None => self.token(Tok::Other, self.i),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_policy_is_borrowed_unchanged() {
        let t = "path \"a/*\" {\n  capabilities = [\"read\"]\n}\n";
        assert!(matches!(prepare(t).unwrap(), Cow::Borrowed(_)));
    }

    #[test]
    fn brace_on_next_line_is_moved_keeping_lines() {
        let t = "path \"a/*\"\n{\n  capabilities = [\"read\"]\n}\n";
        let out = prepare(t).unwrap();
        assert_eq!(out, "path \"a/*\"{\n\n  capabilities = [\"read\"]\n}\n");
        assert_eq!(out.len(), t.len());
        assert_eq!(out.lines().count(), t.lines().count());
    }

    #[test]
    fn object_brace_after_assignment_is_not_moved() {
        let t = "path \"a\" {\n  allowed_parameters =\n  {\n    \"x\" = []\n  }\n}\n";
        assert!(matches!(prepare(t).unwrap(), Cow::Borrowed(_)));
    }

    #[test]
    fn operators_are_rejected() {
        for bad in [
            "a = 1+1",
            "a = !true",
            "a = 1 == 1",
            "a = x ? 1 : 2",
            "a = <<EOF\nx\nEOF",
        ] {
            let e = prepare(bad).unwrap_err();
            assert!(
                matches!(e, PolicyError::Syntax { line: 1, .. }),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn templates_are_rejected_but_escapes_and_vault_templating_pass() {
        assert!(prepare("a = \"${x}\"").is_err());
        assert!(prepare("a = \"%{if x}\"").is_err());
        assert!(prepare("a = \"$${x}\"").is_ok());
        assert!(prepare("path \"identity/entity/id/{{identity.entity.id}}\" {\n}\n").is_ok());
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = format!("a = {}{}", "[".repeat(100_000), "]".repeat(100_000));
        let e = prepare(&deep).unwrap_err();
        assert!(e.to_string().contains("nesting"), "{e}");
    }

    #[test]
    fn operators_inside_strings_and_comments_are_fine() {
        let t = "# a+b*c\n/* x | y */\npath \"a+b*\" { // !\n  capabilities = [\"read\"]\n}\n";
        assert!(prepare(t).is_ok());
    }

    #[test]
    fn error_position_is_reported() {
        let e = prepare("path \"a\" {\n  capabilities = 1 + 2\n}\n").unwrap_err();
        assert!(
            matches!(
                e,
                PolicyError::Syntax {
                    line: 2,
                    column: 20,
                    ..
                }
            ),
            "{e:?}"
        );
    }
}
