//! The usual DMS document read by a direct, strict scan of its bytes, ahead
//! of the serde fast path (see the docs of `decode.rs`).
//!
//! The scan accepts only valid JSON (the strict grammar of [`Cursor`]),
//! nothing but whitespace after the document. What it keeps it reads the
//! way the fast path reads it: the top-level fields by role, the `metadata`
//! fields as text (a string without escapes, an integer that the parser
//! hands as a 64-bit integer, a boolean, `null` as absent), each column
//! value classified from its text as [`classify_parsed`] classifies it, the
//! `control` detail as its text. Anything else it does not decide: an
//! escape in a key or a metadata string, a top-level or metadata field
//! twice, a metadata value of another type, an image that is not an object,
//! a column value that does not classify, a before-image field named like
//! another field, and so on; it answers `None` and the caller reads the
//! document with serde, which gives the record or the error. So a `Some` is
//! always what the serde reading would give.

use super::{
    meta_field, roles, Columns, MetaFields, MetaText, Parts, BEFORE, CONTROL, DATA, METADATA,
};
use crate::dms::cursor::{stop, Cursor};
use crate::dms::{classify_number, classify_parsed, compact_value, Row, Value};

/// Reads what the document says into `parts` (empty); `None` when the scan
/// does not decide (see the module docs), with `parts` partly filled.
pub(super) fn scan<'a>(payload: &'a [u8], before_field: &str, parts: &mut Parts<'a>) -> Option<()> {
    // A before image named like another field is read twice: exact path.
    if matches!(before_field, "metadata" | "data" | "control") {
        return None;
    }
    let mut cursor = Cursor::new(payload)?;
    cursor.whitespace();
    let mut seen = 0u8;
    cursor.object(0, |c, key| {
        let role = roles(key, before_field);
        if seen & role != 0 {
            return None;
        }
        seen |= role;
        match role {
            METADATA => c.metadata(parts.metadata.insert(MetaFields::default()))?,
            DATA => parts.data = Some(Ok(c.image()?)),
            BEFORE if c.peek() == Some(b'n') => c.literal(b"null")?,
            BEFORE => parts.before = Some(Ok(c.image()?)),
            CONTROL => {
                let start = c.at;
                c.skip(1)?;
                parts.control = Some(c.str(start, c.at)?);
            }
            _ => c.skip(1)?,
        }
        Some(())
    })?;
    cursor.at_end().then_some(())
}

impl<'a> Cursor<'a> {
    /// `metadata` into `fields` (empty): the fields that are read, each
    /// once; the others skipped.
    fn metadata(&mut self, fields: &mut MetaFields<'a>) -> Option<()> {
        let mut seen = 0u32;
        self.object(1, |c, key| {
            let Some(i) = meta_field(key) else {
                return c.skip(2);
            };
            if seen & (1 << i) != 0 {
                return None;
            }
            seen |= 1 << i;
            *fields.0.get_mut(i)? = c.meta_value()?;
            Some(())
        })
    }

    /// One metadata value as the fast path reads it: a string without
    /// escapes, an integer the parser hands as `u64` or `i64` (its text is
    /// what writing it back gives), a boolean; `null` as absent.
    fn meta_value(&mut self) -> Option<Option<MetaText<'a>>> {
        let text = match self.peek()? {
            b'"' => self.kept_string()?,
            b'n' => {
                self.literal(b"null")?;
                return Some(None);
            }
            b't' => {
                self.literal(b"true")?;
                "true"
            }
            b'f' => {
                self.literal(b"false")?;
                "false"
            }
            _ => self.meta_number()?,
        };
        Some(Some(MetaText::Borrowed(text)))
    }

    /// A metadata number: its text when it is an integer serde_json hands
    /// as `u64` or `i64`.
    fn meta_number(&mut self) -> Option<&'a str> {
        let start = self.at;
        // The usual one, taken as its digits are scanned: a non-negative
        // integer of up to 19 digits without a leading zero (a `u64`).
        let plain = match (self.peek(), self.plain_digits()) {
            (Some(d @ b'0'..=b'9'), Some(n)) if n < 20 && (d != b'0' || n == 1) => {
                self.at += n;
                true
            }
            _ => {
                self.number()?;
                false
            }
        };
        let text = self.str(start, self.at)?;
        (plain || plain_integer(text)).then_some(text)
    }

    /// How many digits start at the cursor when they are the whole number
    /// (no fraction or exponent follows); `None` otherwise.
    #[inline(always)]
    fn plain_digits(&self) -> Option<usize> {
        let rest = self.bytes.get(self.at..)?;
        let n = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        match rest.get(n) {
            Some(b'.' | b'e' | b'E') => None,
            _ => Some(n),
        }
    }

    /// An image: an object of column values, each of which classifies.
    fn image(&mut self) -> Option<Row> {
        let mut columns = Columns::new();
        // `object`, with the names as text.
        self.sequence(b'{', b'}', |c| {
            let name = c.kept_string()?;
            c.whitespace();
            c.eat(b':')?;
            c.whitespace();
            let value = c.column_value()?;
            columns.push(name, value);
            Some(())
        })?;
        Some(columns.finish())
    }

    /// One column value, classified from its text.
    fn column_value(&mut self) -> Option<Value> {
        let start = self.at;
        match self.peek()? {
            b'"' => {
                let content = start + 1;
                let end = content + stop(self.bytes.get(content..)?);
                if self.bytes.get(end) == Some(&b'"') {
                    self.at = end + 1;
                    return Some(Value::Text(self.str(content, end)?.to_owned()));
                }
                // An escape (or no JSON): the whole grammar, then the
                // classification of the text.
                self.at = end;
                self.string_rest()?;
            }
            b'n' => {
                self.literal(b"null")?;
                return Some(Value::Null);
            }
            b't' => {
                self.literal(b"true")?;
                return Some(Value::Bool(true));
            }
            b'f' => {
                self.literal(b"false")?;
                return Some(Value::Bool(false));
            }
            b'-' | b'0'..=b'9' => return self.column_number(),
            b'[' | b'{' => {
                // The usual JSON value, written as `classify` writes it
                // back (a strict subset of JSON): taken as it is checked,
                // without a second pass.
                let mut end = start;
                if compact_value(self.bytes, &mut end, 0) {
                    self.at = end;
                    return Some(Value::Json(self.str(start, end)?.to_owned()));
                }
                self.skip(2)?;
            }
            _ => self.skip(2)?,
        }
        classify_parsed(self.str(start, self.at)?).ok()
    }

    /// A column number: an integer of up to 18 digits (which always fits
    /// `i64`) and a decimal without exponent read as they are scanned, any
    /// other number classified from its text, all as [`classify_number`]
    /// classifies them.
    fn column_number(&mut self) -> Option<Value> {
        let start = self.at;
        let negative = self.peek() == Some(b'-');
        if negative {
            self.at += 1;
        }
        let digits = self.at;
        let mut value = 0i64;
        match self.next()? {
            b'0' => {}
            d @ b'1'..=b'9' => {
                value = i64::from(d - b'0');
                while let Some(d @ b'0'..=b'9') = self.peek() {
                    value = value.wrapping_mul(10).wrapping_add(i64::from(d - b'0'));
                    self.at += 1;
                }
            }
            _ => return None,
        }
        match self.peek() {
            // The usual decimal, taken as its fraction is scanned: a point
            // and digits with no exponent after them is what `classify_number`
            // keeps as a decimal's text, whatever its integer part.
            Some(b'.') => {
                self.at += 1;
                self.next().filter(u8::is_ascii_digit)?;
                self.digits();
                match self.peek() {
                    Some(b'e' | b'E') => {
                        self.at = start;
                        self.number()?;
                    }
                    _ => return Some(Value::Decimal(self.str(start, self.at)?.to_owned())),
                }
            }
            Some(b'e' | b'E') => {
                self.at = start;
                self.number()?;
            }
            // A digit right after `0` (`01`) is no JSON.
            Some(b'0'..=b'9') => return None,
            _ if self.at - digits <= 18 => {
                return Some(Value::Int(if negative { -value } else { value }))
            }
            _ => {}
        }
        Some(classify_number(self.str(start, self.at)?))
    }
}

/// Whether a JSON number's text is an integer serde_json hands as `u64` or
/// `i64` (not `-0`, nothing beyond 64 bits), whose text is then what writing
/// the integer back gives (the grammar allows no leading zero).
fn plain_integer(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    if digits.len() == text.len() {
        digits.len() < 20 || text.parse::<u64>().is_ok()
    } else {
        digits != "0" && (digits.len() < 19 || text.parse::<i64>().is_ok())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::dms::classify;

    /// A column number read by the scan: its value and whether the whole
    /// text was read (`None` where the scan refuses it).
    fn scanned_number(text: &str) -> Option<(Value, bool)> {
        let mut cursor = Cursor::new(text.as_bytes())?;
        let value = cursor.column_number()?;
        Some((value, cursor.at == text.len()))
    }

    #[test]
    fn column_numbers_classify_as_their_text() {
        for t in [
            "0",
            "-0",
            "7",
            "-7",
            "123456789012345678",
            "-123456789012345678",
            "999999999999999999",
            "1234567890123456789",
            "9223372036854775807",
            "-9223372036854775808",
            "9223372036854775808",
            "-9223372036854775809",
            "18446744073709551615",
            "18446744073709551616",
            "4.50",
            "-0.0",
            "1.5E-3",
            "2.5e+10",
            "1E+16",
            "1e400",
            "0e0",
            "0.5",
            "-12.25",
            "12345678901234567890.5",
            "-0.000",
        ] {
            assert_eq!(scanned_number(t), Some((classify(t).unwrap(), true)), "{t}");
        }
        for t in [
            "01", "-", "-a", "1.", "1.e3", "1e", "1e+", ".5", "--1", "-01",
        ] {
            assert!(scanned_number(t).is_none_or(|(_, whole)| !whole), "{t}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(5000))]

        /// Any JSON number reads as `classify` reads its text.
        #[test]
        fn column_numbers_are_classified_numbers(
            text in "-?(0|[1-9][0-9]{0,24})(\\.[0-9]{1,8})?([eE][+-]?[0-9]{1,3})?",
        ) {
            prop_assert_eq!(scanned_number(&text), Some((classify(&text).unwrap(), true)));
        }
    }

    /// A column value read by the scan, when it reads the whole text
    /// (`None` where the scan refuses it or stops before the end).
    fn scanned_value(text: &str) -> Option<Value> {
        let mut cursor = Cursor::new(text.as_bytes())?;
        let value = cursor.column_value()?;
        (cursor.at == text.len()).then_some(value)
    }

    /// What the scan must give for a whole column value: what
    /// `classify_parsed` gives for the text when it is one JSON value,
    /// nothing otherwise.
    fn classified(text: &str) -> Option<Value> {
        serde_json::from_str::<&serde_json::value::RawValue>(text).ok()?;
        classify_parsed(text).ok()
    }

    #[test]
    fn json_columns_classify_as_their_text() {
        let deep = |n| format!("{}{}", "[".repeat(n), "]".repeat(n));
        for t in [
            "[]",
            "{}",
            r#"{"a":[true,null,"x"],"b":{}}"#,
            r#"["vegan","quick"]"#,
            r#"{"a":1}"#,
            r#"[1,2.5]"#,
            r#"{"a": true}"#,
            r#"[ "x"]"#,
            r#"{"a":true,"a":false}"#,
            r#"["\u00e9"]"#,
            r#"["é"]"#,
            &deep(63),
            &deep(64),
            &deep(70),
            "[true,]",
            "[,true]",
            r#"{"a":}"#,
            r#"{"a"}"#,
            "[tru]",
            "[true",
            r#"{"a":true"#,
            "[\"\u{1}\"]",
            "[true]]",
        ] {
            assert_eq!(scanned_value(t), classified(t), "{t}");
        }
    }

    fn arb_json() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::Bool),
            any::<i32>().prop_map(|i| serde_json::json!(i)),
            "[a-z\"\\\\é\u{1}]{0,4}".prop_map(serde_json::Value::String),
        ];
        leaf.prop_recursive(4, 32, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
                proptest::collection::vec(("[a-c]{1,2}", inner), 0..4)
                    .prop_map(|kv| serde_json::Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        /// Any JSON array or object, written compact or with whitespace,
        /// and any one byte of it changed, reads as `classify_parsed` reads
        /// its text, or is refused.
        #[test]
        fn json_columns_are_classified_values(
            value in arb_json(),
            pretty in any::<bool>(),
            edit in proptest::option::of((any::<prop::sample::Index>(), any::<u8>())),
        ) {
            let value = match value {
                v @ (serde_json::Value::Array(_) | serde_json::Value::Object(_)) => v,
                v => serde_json::Value::Array(vec![v]),
            };
            let text = if pretty {
                serde_json::to_string_pretty(&value).unwrap()
            } else {
                serde_json::to_string(&value).unwrap()
            };
            let mut bytes = text.into_bytes();
            if let Some((at, byte)) = edit {
                let i = at.index(bytes.len());
                bytes[i] = byte;
            }
            if let Ok(text) = std::str::from_utf8(&bytes) {
                prop_assert_eq!(scanned_value(text), classified(text), "{}", text);
            }
        }
    }

    /// What the fast path's metadata reading does with a number: the text of
    /// the `u64` or `i64` serde_json hands, or nothing.
    fn serde_integer(text: &str) -> Option<String> {
        match serde_json::from_str::<serde_json::Value>(text).ok()? {
            serde_json::Value::Number(n) if n.is_u64() || n.is_i64() => Some(n.to_string()),
            _ => None,
        }
    }

    #[test]
    fn plain_integers_are_those_serde_hands_as_integers() {
        for t in [
            "0",
            "-0",
            "7",
            "-7",
            "10",
            "1.0",
            "1e3",
            "-1E-3",
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775808",
            "-9223372036854775809",
            "18446744073709551615",
            "18446744073709551616",
            "99999999999999999999",
            "-99999999999999999999",
            "1234567890123456789",
            "-1234567890123456789",
        ] {
            let plain = plain_integer(t).then(|| t.to_owned());
            assert_eq!(plain, serde_integer(t), "{t}");
        }
    }
}
