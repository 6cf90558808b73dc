//! JSON text read by a strict cursor: the grammar the direct scans share
//! (the Lambda event, `event/scan.rs`; the DMS document, `decode/scan.rs`).
//!
//! It accepts only valid JSON: what it skips is parsed with the whole
//! grammar (strings without control characters and with valid escapes,
//! numbers, exact literals, nested objects and arrays up to [`DEPTH`]
//! levels), commas and colons where JSON puts them; only a cursor made by
//! [`Cursor::unchecked`] leaves the UTF-8 of what it skips unchecked.
//! Every reading answers `None` on anything it does not accept, and the
//! scans answer `None` in turn: they never decide what they do not read
//! exactly.

/// Nesting the scans follow before they give up (serde_json's recursion
/// limit; the usual event nests four levels, the usual document three).
pub(super) const DEPTH: usize = 128;

/// A position in a JSON text: either checked as UTF-8 once, as a whole
/// ([`Cursor::new`]; what is read as text is a slice of it), or checked
/// only where it is read as text ([`Cursor::unchecked`]).
pub(super) struct Cursor<'a> {
    text: Option<&'a str>,
    pub(super) bytes: &'a [u8],
    pub(super) at: usize,
}

impl<'a> Cursor<'a> {
    /// At the start of `bytes`; `None` when they are not UTF-8 (checked
    /// by `simdutf8`, which accepts exactly what `std::str::from_utf8`
    /// accepts and tells nothing of where it failed: the scans give up on
    /// such a text, and the paths after them say what is wrong).
    pub(super) fn new(bytes: &'a [u8]) -> Option<Cursor<'a>> {
        let text = simdutf8::basic::from_utf8(bytes).ok()?;
        Some(Cursor {
            text: Some(text),
            bytes,
            at: 0,
        })
    }

    /// At the start of `bytes`, which are checked as UTF-8 only where
    /// [`Cursor::str`] reads them: what is skipped is not checked, as
    /// serde_json does not check the strings it ignores.
    pub(super) fn unchecked(bytes: &'a [u8]) -> Cursor<'a> {
        Cursor {
            text: None,
            bytes,
            at: 0,
        }
    }

    /// The text from `start` to `end`; `None` when it is not UTF-8 or
    /// not on character boundaries.
    #[inline(always)]
    pub(super) fn str(&self, start: usize, end: usize) -> Option<&'a str> {
        match self.text {
            Some(text) => text.get(start..end),
            None => std::str::from_utf8(self.bytes.get(start..end)?).ok(),
        }
    }

    /// Whether only whitespace is left.
    pub(super) fn at_end(&mut self) -> bool {
        self.whitespace();
        self.at == self.bytes.len()
    }

    pub(super) fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    pub(super) fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.at += 1;
        Some(b)
    }

    pub(super) fn eat(&mut self, byte: u8) -> Option<()> {
        (self.next()? == byte).then_some(())
    }

    /// JSON whitespace (serde_json's: space, tab, line feed, carriage return).
    pub(super) fn whitespace(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.peek() {
            self.at += 1;
        }
    }

    /// The items of an array or object between `open` and `close`, each
    /// read by `item`, with the commas and whitespace between them.
    pub(super) fn sequence(
        &mut self,
        open: u8,
        close: u8,
        mut item: impl FnMut(&mut Self) -> Option<()>,
    ) -> Option<()> {
        self.eat(open)?;
        self.whitespace();
        if self.peek() == Some(close) {
            self.at += 1;
            return Some(());
        }
        loop {
            item(self)?;
            self.whitespace();
            match self.next()? {
                b',' => self.whitespace(),
                b if b == close => return Some(()),
                _ => return None,
            }
        }
    }

    /// An object at `depth`, each key (without escapes) handed to `field`,
    /// which reads its value (the whitespace before it is read).
    pub(super) fn object(
        &mut self,
        depth: usize,
        mut field: impl FnMut(&mut Self, &'a [u8]) -> Option<()>,
    ) -> Option<()> {
        if depth >= DEPTH {
            return None;
        }
        self.sequence(b'{', b'}', |c| {
            let (start, end) = c.plain_string()?;
            let key = c.bytes.get(start..end)?;
            c.whitespace();
            c.eat(b':')?;
            c.whitespace();
            field(c, key)
        })
    }

    /// A string without escapes: the positions of its contents.
    #[inline(always)]
    pub(super) fn plain_string(&mut self) -> Option<(usize, usize)> {
        self.eat(b'"')?;
        let start = self.at;
        let end = start + stop(self.bytes.get(start..)?);
        self.at = end + 1;
        (self.bytes.get(end)? == &b'"').then_some((start, end))
    }

    /// A string kept as text (no escapes).
    #[inline(always)]
    pub(super) fn kept_string(&mut self) -> Option<&'a str> {
        let (start, end) = self.plain_string()?;
        self.str(start, end)
    }

    /// Any string, escapes included.
    pub(super) fn skip_string(&mut self) -> Option<()> {
        self.eat(b'"')?;
        self.string_rest()
    }

    /// The rest of a string whose opening quote is read, escapes included.
    #[inline]
    pub(super) fn string_rest(&mut self) -> Option<()> {
        loop {
            self.at += stop(self.bytes.get(self.at..)?);
            match self.next()? {
                b'"' => return Some(()),
                b'\\' => match self.next()? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                    b'u' => {
                        for _ in 0..4 {
                            if !self.next()?.is_ascii_hexdigit() {
                                return None;
                            }
                        }
                    }
                    _ => return None,
                },
                _ => return None,
            }
        }
    }

    /// Exactly `word` (`true`, `false`, `null`).
    pub(super) fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.at + word.len();
        (self.bytes.get(self.at..end)? == word).then_some(())?;
        self.at = end;
        Some(())
    }

    /// A number, by the JSON grammar: `-`? (`0` | [1-9][0-9]*)
    /// (`.` [0-9]+)? ([eE] [+-]? [0-9]+)?
    pub(super) fn number(&mut self) -> Option<()> {
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.next()? {
            b'0' => {}
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            self.next().filter(u8::is_ascii_digit)?;
            self.digits();
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.at += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.at += 1;
            }
            self.next().filter(u8::is_ascii_digit)?;
            self.digits();
        }
        // A digit right after `0` (`01`) is no JSON.
        (!self.peek().is_some_and(|b| b.is_ascii_digit())).then_some(())
    }

    pub(super) fn digits(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
    }

    /// Any value at `depth`, read and dropped.
    pub(super) fn skip(&mut self, depth: usize) -> Option<()> {
        match self.peek()? {
            b'"' => self.skip_string(),
            b'{' => self.skip_object(depth),
            b'[' => self.skip_array(depth),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    fn skip_object(&mut self, depth: usize) -> Option<()> {
        if depth >= DEPTH {
            return None;
        }
        // Keys may have escapes here: nothing is kept.
        self.sequence(b'{', b'}', |c| {
            c.skip_string()?;
            c.whitespace();
            c.eat(b':')?;
            c.whitespace();
            c.skip(depth + 1)
        })
    }

    fn skip_array(&mut self, depth: usize) -> Option<()> {
        if depth >= DEPTH {
            return None;
        }
        self.sequence(b'[', b']', |c| c.skip(depth + 1))
    }
}

/// Where a string's text stops: the index in `rest` of the first `"`, `\\`
/// or control character (`rest.len()` if none), eight bytes at a time (the
/// way serde_json's `skip_to_escape` does it, inline, so short strings pay
/// no call).
pub(crate) fn stop(rest: &[u8]) -> usize {
    const ONES: u64 = u64::MAX / 255;
    const HIGH: u64 = ONES << 7;
    let mut chunks = rest.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut chunks {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        let v = u64::from_le_bytes(word);
        let control = v.wrapping_sub(ONES * 0x20) & !v;
        let quote = v ^ (ONES * u64::from(b'"'));
        let quote = quote.wrapping_sub(ONES) & !quote;
        let backslash = v ^ (ONES * u64::from(b'\\'));
        let backslash = backslash.wrapping_sub(ONES) & !backslash;
        let found = (control | quote | backslash) & HIGH;
        if found != 0 {
            // The lowest flagged byte is exact (borrows only run upwards).
            return at + found.trailing_zeros() as usize / 8;
        }
        at += 8;
    }
    at + chunks
        .remainder()
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
        .unwrap_or(chunks.remainder().len())
}
