//! Keys: what identifies a target row or a lookup, compared by what it
//! identifies rather than by how a payload spelled it, and matched
//! leniently against the keys a source returns.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::fmt;

use crate::dms::Value;

/// One part of a key, ordered and hashable (values themselves are not).
///
/// Keys compare by what they identify, not by how a payload spelled them:
/// the text of a canonical integer (`"7"`, `"-12"`, no sign, no leading
/// zero) is the same key as the integer, and `true`/`false` are 1/0, so a
/// child's `VARCHAR` reference and its parent's `INT` key meet. The part
/// keeps its own form for binding in a query.
#[derive(Debug, Clone)]
pub enum KeyPart {
    /// An integer (signed or unsigned).
    Int(i128),
    /// Text, a decimal or a date rendered as text.
    Text(String),
    /// Bytes.
    Bytes(Vec<u8>),
}

/// What a key part identifies: the form its order and equality use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Identity<'a> {
    Int(i128),
    Text(&'a str),
    Bytes(&'a [u8]),
}

/// The integer a text spells canonically (`-?[1-9][0-9]*` or `0`), if any:
/// such a text is the same key as the integer.
pub fn canonical_int(text: &str) -> Option<i128> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let canonical = match digits.as_bytes() {
        [b'0'] => !text.starts_with('-'),
        [b'1'..=b'9', rest @ ..] => rest.iter().all(u8::is_ascii_digit) && digits.len() <= 38,
        _ => false,
    };
    canonical.then(|| text.parse().ok()).flatten()
}

impl KeyPart {
    fn identity(&self) -> Identity<'_> {
        match self {
            KeyPart::Int(i) => Identity::Int(*i),
            KeyPart::Text(t) => match canonical_int(t) {
                Some(i) => Identity::Int(i),
                None => Identity::Text(t),
            },
            KeyPart::Bytes(b) => Identity::Bytes(b),
        }
    }

    /// The lenient form used only to match a row a source returned to the
    /// key that was asked for, when they are not identical: text without
    /// trailing spaces (PAD SPACE collations) and in lower case (case-
    /// insensitive collations).
    pub fn loose(&self) -> KeyPart {
        match self {
            KeyPart::Text(t) if canonical_int(t).is_none() => {
                KeyPart::Text(t.trim_end_matches(' ').to_lowercase())
            }
            other => other.clone(),
        }
    }

    /// Whether the part is its own [`KeyPart::loose`] form (an integer,
    /// bytes, ASCII text without capitals or trailing spaces): false
    /// leaves the question to `loose` (other text may be too).
    fn is_loose(&self) -> bool {
        match self {
            KeyPart::Int(_) | KeyPart::Bytes(_) => true,
            KeyPart::Text(t) => {
                !t.ends_with(' ') && t.bytes().all(|b| b.is_ascii() && !b.is_ascii_uppercase())
            }
        }
    }
}

// Two integers, the parts most keys are made of, compare as they are: the
// identity of an integer is the integer.
impl PartialEq for KeyPart {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (KeyPart::Int(a), KeyPart::Int(b)) => a == b,
            _ => self.identity() == other.identity(),
        }
    }
}

impl Eq for KeyPart {}

impl PartialOrd for KeyPart {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for KeyPart {
    #[inline]
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        match (self, other) {
            (KeyPart::Int(a), KeyPart::Int(b)) => a.cmp(b),
            _ => self.identity().cmp(&other.identity()),
        }
    }
}

impl std::hash::Hash for KeyPart {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.identity().hash(state)
    }
}

impl KeyPart {
    /// The key part of a value; `None` for NULL, floats, JSON and lossy values,
    /// which cannot identify a row.
    pub fn from_value(value: &Value) -> Option<KeyPart> {
        Some(match value {
            Value::Int(i) => KeyPart::Int(i128::from(*i)),
            Value::UInt(u) => KeyPart::Int(i128::from(*u)),
            Value::Bool(b) => KeyPart::Int(i128::from(*b)),
            Value::Bytes(b) => KeyPart::Bytes(b.clone()),
            Value::Decimal(_)
            | Value::Text(_)
            | Value::DateTime(_)
            | Value::Date(_)
            | Value::Time(_) => KeyPart::Text(crate::mapping::text_of(value)?),
            Value::Null | Value::Float(_) | Value::Json(_) | Value::Lossy(_) => return None,
        })
    }

    /// Back to a value for binding in a query.
    pub fn to_value(&self) -> Value {
        match self {
            KeyPart::Int(i) => match i64::try_from(*i) {
                Ok(v) => Value::Int(v),
                Err(_) => u64::try_from(*i)
                    .map(Value::UInt)
                    .unwrap_or_else(|_| Value::Decimal(i.to_string())),
            },
            KeyPart::Text(t) => Value::Text(t.clone()),
            KeyPart::Bytes(b) => Value::Bytes(b.clone()),
        }
    }
}

impl fmt::Display for KeyPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyPart::Int(i) => write!(f, "{i}"),
            KeyPart::Text(t) => write!(f, "{t:?}"),
            KeyPart::Bytes(b) => write!(
                f,
                "0x{}",
                b.iter().map(|x| format!("{x:02x}")).collect::<String>()
            ),
        }
    }
}

/// A tuple of key parts: a root key, or the values of a lookup's columns.
/// Ordered part by part (as a slice of parts).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyTuple(pub Vec<KeyPart>);

impl PartialOrd for KeyTuple {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for KeyTuple {
    #[inline]
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // A one-part key (most are) without the slice comparison's loop.
        match (self.0.as_slice(), other.0.as_slice()) {
            ([a], [b]) => a.cmp(b),
            (a, b) => a.cmp(b),
        }
    }
}

impl KeyTuple {
    /// Whether `other` is written the same, part by part (equality
    /// identifies: the text `"7"` equals the integer 7, which this tells
    /// apart).
    pub fn written_as(&self, other: &KeyTuple) -> bool {
        self.0.len() == other.0.len()
            && self.0.iter().zip(&other.0).all(|pair| match pair {
                (KeyPart::Int(a), KeyPart::Int(b)) => a == b,
                (KeyPart::Text(a), KeyPart::Text(b)) => a == b,
                (KeyPart::Bytes(a), KeyPart::Bytes(b)) => a == b,
                _ => false,
            })
    }

    /// Values for binding.
    pub fn values(&self) -> Vec<Value> {
        self.0.iter().map(KeyPart::to_value).collect()
    }

    /// See [`KeyPart::loose`].
    pub fn loose(&self) -> KeyTuple {
        KeyTuple(self.0.iter().map(KeyPart::loose).collect())
    }

    /// Whether every part is its own loose form ([`KeyPart::is_loose`]).
    fn is_loose(&self) -> bool {
        self.0.iter().all(KeyPart::is_loose)
    }
}

impl fmt::Display for KeyTuple {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(")?;
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{p}")?;
        }
        f.write_str(")")
    }
}

/// Matches the key tuples a source returned to the tuples that were asked
/// for. A source compares keys with its own rules (a case-insensitive or
/// PAD SPACE collation, a number compared with text), so a returned key is
/// not always identical to the one asked: it stands for every asked tuple
/// it equals loosely ([`KeyPart::loose`]): 'ABC' returned for 'abc' and
/// 'Abc ' is the row of all three. None is reported by the caller. Never
/// indexes with returned data.
///
/// The price of leniency: with a case-sensitive source column holding
/// 'abc' and 'ABC', a deleted 'abc' is rebuilt from 'ABC' instead of being
/// deleted in the target (`reconcile` reports it).
#[derive(Debug, Default)]
pub struct KeyMatcher {
    /// The asked tuples by their loose form. Most asked tuples are their
    /// own loose form and the only one of it (an integer key): the key is
    /// then that tuple, and the group stays empty (no copy of it). Hashed,
    /// not ordered: only looked up (a search of an ordered map of a chunk's
    /// keys took about 300 instructions per returned row).
    loose: HashMap<KeyTuple, Vec<KeyTuple>, foldhash::fast::RandomState>,
}

impl KeyMatcher {
    /// A matcher for the asked tuples.
    pub fn new<'a>(asked: impl IntoIterator<Item = &'a KeyTuple>) -> Self {
        let mut m = KeyMatcher::default();
        for t in asked {
            let own = t.is_loose();
            match m.loose.entry(if own { t.clone() } else { t.loose() }) {
                Entry::Vacant(e) => {
                    e.insert(if own { Vec::new() } else { vec![t.clone()] });
                }
                // Another asked tuple of the same loose form: `t` joins it
                // unless it is that tuple (an empty group holds the key).
                Entry::Occupied(mut e) if e.get().is_empty() => {
                    if e.key() != t {
                        let key = e.key().clone();
                        e.get_mut().extend([key, t.clone()]);
                    }
                }
                Entry::Occupied(mut e) => {
                    if !e.get().contains(t) {
                        e.get_mut().push(t.clone());
                    }
                }
            }
        }
        m
    }

    /// The asked tuples a returned tuple stands for (empty: none).
    pub fn matches<'a>(&'a self, returned: &KeyTuple) -> &'a [KeyTuple] {
        let found = if returned.is_loose() {
            self.loose.get_key_value(returned)
        } else {
            self.loose.get_key_value(&returned.loose())
        };
        match found {
            None => &[],
            Some((key, group)) if group.is_empty() => std::slice::from_ref(key),
            Some((_, group)) => group,
        }
    }
}
