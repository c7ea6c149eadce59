//! Upstream's hand-written label selector lexer, kept byte for byte in
//! behaviour (including treating a NUL byte as end of input) so that odd
//! inputs fail with the same messages.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Token {
    Error,
    EndOfString,
    ClosedPar,
    Comma,
    DoesNotExist,
    DoubleEquals,
    Equals,
    GreaterThan,
    Identifier,
    In,
    LessThan,
    NotEquals,
    NotIn,
    OpenPar,
}

/// Literal → token, for everything but identifiers.
fn keyword(s: &[u8]) -> Option<Token> {
    Some(match s {
        b")" => Token::ClosedPar,
        b"," => Token::Comma,
        b"!" => Token::DoesNotExist,
        b"==" => Token::DoubleEquals,
        b"=" => Token::Equals,
        b">" => Token::GreaterThan,
        b"in" => Token::In,
        b"<" => Token::LessThan,
        b"!=" => Token::NotEquals,
        b"notin" => Token::NotIn,
        b"(" => Token::OpenPar,
        _ => return None,
    })
}

fn is_whitespace(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_special(c: u8) -> bool {
    matches!(c, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

pub(super) struct Lexer<'a> {
    s: &'a [u8],
    pos: usize,
}

impl<'a> Lexer<'a> {
    pub(super) fn new(s: &'a str) -> Self {
        Self {
            s: s.as_bytes(),
            pos: 0,
        }
    }

    /// Next byte, or 0 at the end (position not advanced then).
    fn read(&mut self) -> u8 {
        match self.s.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                b
            }
            None => 0,
        }
    }

    fn unread(&mut self) {
        self.pos = self.pos.saturating_sub(1);
    }

    fn literal(bytes: &[u8]) -> String {
        String::from_utf8_lossy(bytes).into_owned()
    }

    fn scan_id_or_keyword(&mut self) -> (Token, String) {
        let start = self.pos;
        let mut end;
        loop {
            end = self.pos;
            let c = self.read();
            if c == 0 {
                break;
            }
            if is_special(c) || is_whitespace(c) {
                self.unread();
                break;
            }
        }
        let buf = &self.s[start..end];
        match keyword(buf) {
            Some(t) => (t, Self::literal(buf)),
            None => (Token::Identifier, Self::literal(buf)),
        }
    }

    fn scan_special(&mut self) -> (Token, String) {
        let start = self.pos;
        let mut last: Option<(Token, usize)> = None;
        loop {
            let c = self.read();
            if c == 0 {
                break;
            }
            if !is_special(c) {
                self.unread();
                break;
            }
            let buf = &self.s[start..self.pos];
            if let Some(t) = keyword(buf) {
                last = Some((t, self.pos));
            } else if last.is_some() {
                self.unread();
                break;
            }
        }
        match last {
            Some((t, end)) => (t, Self::literal(&self.s[start..end])),
            None => (
                Token::Error,
                format!(
                    "error expected: keyword found '{}'",
                    Self::literal(&self.s[start..self.pos])
                ),
            ),
        }
    }

    /// The next token and its literal (meaningful for identifiers).
    pub(super) fn lex(&mut self) -> (Token, String) {
        let mut c = self.read();
        while is_whitespace(c) {
            c = self.read();
        }
        if c == 0 {
            return (Token::EndOfString, String::new());
        }
        self.unread();
        if is_special(c) {
            self.scan_special()
        } else {
            self.scan_id_or_keyword()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(s: &str) -> Vec<Token> {
        let mut l = Lexer::new(s);
        let mut out = Vec::new();
        loop {
            let (t, _) = l.lex();
            if t == Token::EndOfString {
                return out;
            }
            out.push(t);
        }
    }

    #[test]
    fn single_tokens() {
        use Token::*;
        for (s, t) in [
            ("", EndOfString),
            (",", Comma),
            ("notin", NotIn),
            ("in", In),
            ("=", Equals),
            ("==", DoubleEquals),
            (">", GreaterThan),
            ("<", LessThan),
            ("!", DoesNotExist),
            ("!=", NotEquals),
            ("(", OpenPar),
            (")", ClosedPar),
            ("~", Identifier),
            ("||", Identifier),
        ] {
            let (tok, lit) = Lexer::new(s).lex();
            assert_eq!(tok, t, "{s}");
            assert_eq!(lit, s);
        }
    }

    #[test]
    fn sequences() {
        use Token::*;
        for (s, want) in [
            (
                "key in ( value )",
                vec![Identifier, In, OpenPar, Identifier, ClosedPar],
            ),
            (
                "key notin ( value )",
                vec![Identifier, NotIn, OpenPar, Identifier, ClosedPar],
            ),
            (
                "key in ( value1, value2 )",
                vec![
                    Identifier, In, OpenPar, Identifier, Comma, Identifier, ClosedPar,
                ],
            ),
            ("key", vec![Identifier]),
            ("!key", vec![DoesNotExist, Identifier]),
            ("()", vec![OpenPar, ClosedPar]),
            (
                "x in (),y",
                vec![Identifier, In, OpenPar, ClosedPar, Comma, Identifier],
            ),
            (
                "== != (), = notin",
                vec![
                    DoubleEquals,
                    NotEquals,
                    OpenPar,
                    ClosedPar,
                    Comma,
                    Equals,
                    NotIn,
                ],
            ),
            ("key>2", vec![Identifier, GreaterThan, Identifier]),
            ("key<1", vec![Identifier, LessThan, Identifier]),
            (
                "a!!b",
                vec![Identifier, DoesNotExist, DoesNotExist, Identifier],
            ),
            (
                "a==!b",
                vec![Identifier, DoubleEquals, DoesNotExist, Identifier],
            ),
        ] {
            assert_eq!(tokens(s), want, "{s}");
        }
    }

    #[test]
    fn nul_ends_input() {
        // As upstream: a NUL where a token starts ends the input, but one
        // right after an operator or identifier is swallowed as a separator.
        assert_eq!(tokens("x, \0y"), vec![Token::Identifier, Token::Comma]);
        assert_eq!(
            tokens("x,\0y"),
            vec![Token::Identifier, Token::Comma, Token::Identifier]
        );
        assert_eq!(tokens("x\0y"), vec![Token::Identifier, Token::Identifier]);
    }
}
