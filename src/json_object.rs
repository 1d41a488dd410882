//! A JSON object held as its text and an index of its top-level members,
//! each member's value parsed the first time it is asked for: what a
//! token's header and claims, and an IdP's userinfo and introspection
//! answers, are held as.
//!
//! Why not `serde_json::Map`: a first-seen token's claims built into one
//! took 1.7–2.0 µs in Envoy's V8 (the probe), where reading the same JSON
//! without building anything took 0.27: a `String` per name and per string
//! value, a node per array, the map's own nodes, all freed one by one when
//! the token leaves the cache. A decision reads a handful of claims (`iss`,
//! the times, `token_use`, what the policy and the upstream headers name);
//! here the object costs its text, one index, and the values read. The
//! JWS parse went from 3.0–3.4 to 2.1 µs in the probe, and first-seen
//! RS256 requests to 1.028× (1.022–1.035) the map's req/s side by side in
//! Envoy (BENCHMARKS.md, "Session 21: claims read on demand").
//!
//! An object is taken exactly when a `serde_json::Map` of it would be
//! (see `index`), its values nested at most `MAX_DEPTH` deep.
//!
//! A name that appears twice means its last value, as in `serde_json::Map`
//! (and RFC 7515 §5.2's "lexically last"); `iter` gives each name once, by
//! name, as the map did.

use std::cell::OnceCell;
use std::cmp::Ordering;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny};
use serde::ser::{Serialize, Serializer};
use serde_json::Value;

/// A JSON object: its text, and where each member is in it.
#[derive(Clone)]
pub struct JsonObject {
    text: Box<str>,
    /// Each name once (its last value in the text); by name, unless `FEW`
    /// and told apart by their keys (see `parse`).
    members: Box<[Member]>,
}

#[derive(Clone)]
struct Member {
    /// `key` of the name.
    key: u64,
    name: Name,
    /// Where the value's text is in the object's.
    value: Span,
    parsed: OnceCell<Value>,
}

#[derive(Clone)]
enum Name {
    /// Written without escapes: these bytes of the object's text.
    Span(Span),
    /// Written with escapes: decoded.
    Decoded(Box<str>),
}

type Span = (usize, usize);

impl JsonObject {
    /// The object `text` is; `None` unless it is exactly one JSON object
    /// whose values all read as `Value`s (as a `serde_json::Map` of it
    /// would), none nested deeper than `MAX_DEPTH`.
    pub fn parse(text: Box<str>) -> Option<JsonObject> {
        // serde_json reads it whole first, building nothing (from bytes, as
        // every other JSON of the module is read: one copy of its parser),
        // so that `index` only has to find where the members are.
        serde_json::from_slice::<IgnoredAny>(text.as_bytes()).ok()?;
        let mut members = index(text.as_bytes())?;
        // A few members with names that differ in their first 8 bytes (a
        // token's claims) stay in the text's order, looked up one by one;
        // others are sorted by name and looked up by halves, and of one
        // name only the text's last is kept.
        let distinct = |m: &[Member]| {
            m.iter().enumerate().all(|(i, a)| {
                let later = m.get(i + 1..).unwrap_or_default();
                later.iter().all(|b| a.key != b.key)
            })
        };
        if members.len() > FEW || !distinct(&members) {
            members = sorted(&text, &members).into_iter().cloned().collect();
        }
        Some(JsonObject {
            members: members.into_boxed_slice(),
            text,
        })
    }

    /// The object JSON `bytes` are; `None` unless they are UTF-8 and one
    /// JSON object (as `parse`).
    pub fn from_slice(bytes: &[u8]) -> Option<JsonObject> {
        JsonObject::parse(std::str::from_utf8(bytes).ok()?.into())
    }

    /// The object JSON `bytes` are, taking them; as `from_slice`.
    pub fn from_vec(bytes: Vec<u8>) -> Option<JsonObject> {
        JsonObject::parse(String::from_utf8(bytes).ok()?.into_boxed_str())
    }

    /// The value of member `name`, parsed at its first reading.
    pub fn get(&self, name: &str) -> Option<&Value> {
        let i = self.position(name)?;
        self.members.get(i).map(|m| self.value(m))
    }

    /// Whether the object has a member `name`.
    pub fn contains_key(&self, name: &str) -> bool {
        self.position(name).is_some()
    }

    /// The members, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.by_name()
            .into_iter()
            .map(|m| (self.name(m), self.value(m)))
    }

    /// The members, by name (sorted here if `parse` left them as they came).
    fn by_name(&self) -> Vec<&Member> {
        if self.members.len() <= FEW {
            sorted(&self.text, &self.members)
        } else {
            self.members.iter().collect()
        }
    }

    /// This object's members and those of `extra` whose names it lacks:
    /// the two lists merged by name, their texts copied, their values
    /// read so far kept.
    pub fn with_missing_from(&self, extra: &JsonObject) -> JsonObject {
        let mut text = String::with_capacity(self.text.len() + extra.text.len());
        let mut members = Vec::with_capacity(self.members.len() + extra.members.len());
        let (ours, theirs) = (self.by_name(), extra.by_name());
        let (mut ours, mut theirs) = (ours.into_iter().peekable(), theirs.into_iter().peekable());
        text.push('{');
        loop {
            let (from, member) = match (ours.peek(), theirs.peek()) {
                (Some(a), Some(b)) => {
                    match compare_names(a.key, b.key, || (self.name(a), extra.name(b))) {
                        Ordering::Less => (self, ours.next()),
                        Ordering::Equal => {
                            theirs.next();
                            (self, ours.next())
                        }
                        Ordering::Greater => (extra, theirs.next()),
                    }
                }
                (Some(_), None) => (self, ours.next()),
                (None, _) => (extra, theirs.next()),
            };
            let Some(m) = member else { break };
            if !members.is_empty() {
                text.push(',');
            }
            let name = match &m.name {
                // Written without escapes: as it was.
                Name::Span(_) => {
                    let name = from.name(m);
                    text.push('"');
                    let start = text.len();
                    text.push_str(name);
                    text.push('"');
                    Name::Span((start, start + name.len()))
                }
                Name::Decoded(name) => {
                    // A `str` always serializes.
                    text.push_str(&serde_json::to_string(name).unwrap_or_default());
                    Name::Decoded(name.clone())
                }
            };
            text.push(':');
            let start = text.len();
            text.push_str(from.slice(m.value).unwrap_or("null"));
            members.push(Member {
                key: m.key,
                name,
                value: (start, text.len()),
                parsed: m.parsed.clone(),
            });
        }
        text.push('}');
        JsonObject {
            text: text.into_boxed_str(),
            members: members.into_boxed_slice(),
        }
    }

    fn position(&self, name: &str) -> Option<usize> {
        let sought = key(name.as_bytes());
        let order = |m: &Member| compare_names(m.key, sought, || (self.name(m), name));
        if self.members.len() <= FEW {
            self.members.iter().position(|m| order(m).is_eq())
        } else {
            self.members.binary_search_by(order).ok()
        }
    }

    fn name<'a>(&'a self, m: &'a Member) -> &'a str {
        name_of(&self.text, m)
    }

    /// A member's value: read from its text at the first call. `parse`
    /// read every value whose text could fail to read (see `index`), so
    /// `null` here is only a fallback.
    fn value<'a>(&'a self, m: &'a Member) -> &'a Value {
        m.parsed.get_or_init(|| {
            self.slice(m.value)
                .and_then(|raw| serde_json::from_slice(raw.as_bytes()).ok())
                .unwrap_or(Value::Null)
        })
    }

    fn slice(&self, (start, end): Span) -> Option<&str> {
        self.text.get(start..end)
    }
}

/// `members` by name, of one name only the text's last.
fn sorted<'a>(text: &str, members: &'a [Member]) -> Vec<&'a Member> {
    let mut sorted: Vec<&Member> = members.iter().collect();
    heap_sort(&mut sorted, |a, b| {
        order(text, a, b).then(b.value.0.cmp(&a.value.0)).is_lt()
    });
    sorted.dedup_by(|later, kept| order(text, later, kept).is_eq());
    sorted
}

/// Sorts `v` by `less`, a strict total order. Hand-written: the standard
/// library's sorts are ~4.5 KB of this module (measured), which sorts
/// nothing else, and a heap sort's worst case is still n log n (an IdP's
/// answer may have thousands of members).
fn heap_sort<T>(v: &mut [T], less: impl Fn(&T, &T) -> bool) {
    // Moves the item at `node` down the heap of v[..end] to its place.
    let sift_down = |v: &mut [T], mut node: usize, end: usize| loop {
        let (left, right) = (2 * node + 1, 2 * node + 2);
        let larger = |a: usize, b: usize| match (v.get(a), v.get(b)) {
            (Some(x), Some(y)) if b < end && less(x, y) => b,
            _ => a,
        };
        let child = larger(left, right);
        match (v.get(node), v.get(child)) {
            (Some(n), Some(c)) if child < end && less(n, c) => v.swap(node, child),
            _ => break,
        }
        node = child;
    };
    let len = v.len();
    for node in (0..len / 2).rev() {
        sift_down(v, node, len);
    }
    for end in (1..len).rev() {
        v.swap(0, end);
        sift_down(v, 0, end);
    }
}

/// Member `a` against `b` of one object's `text`, by name.
fn order(text: &str, a: &Member, b: &Member) -> Ordering {
    compare_names(a.key, b.key, || (name_of(text, a), name_of(text, b)))
}

/// Two names by their keys (`key`), and by the names themselves (`names`)
/// only when the keys are equal.
fn compare_names<'a>(a: u64, b: u64, names: impl FnOnce() -> (&'a str, &'a str)) -> Ordering {
    a.cmp(&b).then_with(|| {
        let (a, b) = names();
        a.cmp(b)
    })
}

/// A name's first 8 bytes as a big-endian number, zeros after a shorter
/// one: ordered as the names are (when two keys differ, so do their names,
/// the same way), so that sorting and looking up compare numbers, and
/// names only when 8 bytes do not tell them apart.
fn key(name: &[u8]) -> u64 {
    let mut bytes = [0u8; 8];
    for (k, &b) in bytes.iter_mut().zip(name) {
        *k = b;
    }
    u64::from_be_bytes(bytes)
}

fn name_of<'a>(text: &'a str, m: &'a Member) -> &'a str {
    match &m.name {
        Name::Span((start, end)) => text.get(*start..*end).unwrap_or_default(),
        Name::Decoded(name) => name,
    }
}

/// Up to this many members, an object whose names differ in their first
/// 8 bytes is not sorted (see `parse`).
const FEW: usize = 16;

/// How deep a member's value may nest: deeper is refused. Tighter than
/// serde_json's 128 levels for a whole document, so that an object kept
/// inside another (an ID token's claims in a session cookie) still reads.
const MAX_DEPTH: usize = 100;

/// Where the members of a JSON object are in `b`, in the text's order:
/// `None` unless `b` is (after whitespace) an object. `b` must be JSON
/// (serde_json has read it whole), so that only the object's own structure
/// is looked at: strings are skipped to their closing quote and nested
/// values to their closing bracket. Hand-written because serde_json tells
/// where a value is only through its `raw_value` feature, with which the
/// module was ~15 KB larger (a path of its own through the parser, and
/// through `Value`'s).
///
/// A value that the whole read lets through but a `Value` would not (a
/// `\u` escape that is half a surrogate pair, a number beyond `f64`) can
/// only be one with a `\u` escape, an exponent or a long run of digits:
/// such a value is read here, and the object refused if it does not read.
/// The others are read when asked for.
fn index(b: &[u8]) -> Option<Vec<Member>> {
    let mut i = skip_whitespace(b, 0);
    (b.get(i) == Some(&b'{')).then_some(())?;
    // A Cognito access token has 11 claims: room for them at once.
    let mut members = Vec::with_capacity(16);
    i = skip_whitespace(b, i + 1);
    if b.get(i) == Some(&b'}') {
        return Some(members);
    }
    loop {
        // At a member's opening quote.
        let (name_end, escapes) = string_end(b, i + 1)?;
        let (key, name) = if escapes.any {
            let quoted = b.get(i..=name_end)?;
            let name = serde_json::from_slice::<String>(quoted).ok()?;
            (key(name.as_bytes()), Name::Decoded(name.into_boxed_str()))
        } else {
            (key(b.get(i + 1..name_end)?), Name::Span((i + 1, name_end)))
        };
        let colon = skip_whitespace(b, name_end + 1);
        let start = skip_whitespace(b, colon + 1);
        let (end, doubtful) = value_end(b, start)?;
        let parsed = OnceCell::new();
        if doubtful {
            let value: Value = serde_json::from_slice(b.get(start..end)?).ok()?;
            parsed.set(value).ok()?;
        }
        members.push(Member {
            key,
            name,
            value: (start, end),
            parsed,
        });
        i = skip_whitespace(b, end);
        match b.get(i)? {
            b',' => i = skip_whitespace(b, i + 1),
            b'}' => return Some(members),
            _ => return None,
        }
    }
}

/// Where JSON `text` (read whole by serde_json already) first names a
/// member twice in one object, as a path (`leeway`,
/// `rules[0].hide_credentials`), if it does anywhere: serde_json keeps the
/// last silently, and a configuration read so would let
/// `"leeway": 0, "leeway": 3600` load as 3600. With `index`'s scanner, not
/// a serde visitor of its own (~7 KB of module).
pub fn first_duplicate(text: &str) -> Option<String> {
    duplicate_in(text, "")
}

fn duplicate_in(text: &str, at: &str) -> Option<String> {
    let b = text.as_bytes();
    let path = |name: &str| match at {
        "" => name.to_string(),
        _ => format!("{at}.{name}"),
    };
    let mut i = skip_whitespace(b, 0);
    match b.get(i)? {
        b'{' => {
            let members = index(b)?;
            for (n, m) in members.iter().enumerate() {
                let name = name_of(text, m);
                let before = members.get(..n).unwrap_or_default();
                if before.iter().any(|p| order(text, p, m).is_eq()) {
                    return Some(path(name));
                }
                let value = text.get(m.value.0..m.value.1)?;
                if let Some(found) = duplicate_in(value, &path(name)) {
                    return Some(found);
                }
            }
            None
        }
        b'[' => {
            i = skip_whitespace(b, i + 1);
            let mut n = 0;
            while b.get(i) != Some(&b']') {
                let (end, _) = value_end(b, i)?;
                if let Some(found) = duplicate_in(text.get(i..end)?, &format!("{at}[{n}]")) {
                    return Some(found);
                }
                i = skip_whitespace(b, end);
                if b.get(i) == Some(&b',') {
                    i = skip_whitespace(b, i + 1);
                }
                n += 1;
            }
            None
        }
        _ => None,
    }
}

fn skip_whitespace(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

/// What escapes a string has.
#[derive(Default, Clone, Copy)]
struct Escapes {
    any: bool,
    /// `\u`: perhaps half a surrogate pair.
    unicode: bool,
}

/// Where the string whose first character (after its opening quote) is
/// at `i` ends: the index of its closing quote, and its escapes.
fn string_end(b: &[u8], mut i: usize) -> Option<(usize, Escapes)> {
    let mut escapes = Escapes::default();
    loop {
        // The next quote or backslash, many bytes a step (`memchr`).
        i += memchr::memchr2(b'"', b'\\', b.get(i..)?)?;
        if b.get(i)? == &b'"' {
            return Some((i, escapes));
        }
        escapes.any = true;
        escapes.unicode |= b.get(i + 1) == Some(&b'u');
        i += 2;
    }
}

/// The index just past the value that starts at `i`, and whether it may
/// not read as a `Value` (see `index`); `None` for one nested deeper than
/// `MAX_DEPTH`.
fn value_end(b: &[u8], mut i: usize) -> Option<(usize, bool)> {
    let (mut depth, mut digits, mut doubtful) = (0usize, 0usize, false);
    loop {
        let byte = *b.get(i)?;
        digits = if byte.is_ascii_digit() { digits + 1 } else { 0 };
        match byte {
            b'"' => {
                let (end, escapes) = string_end(b, i + 1)?;
                doubtful |= escapes.unicode;
                i = end + 1;
                if depth == 0 {
                    return Some((i, doubtful));
                }
                continue;
            }
            b'{' | b'[' if depth == MAX_DEPTH => return None,
            b'{' | b'[' => depth += 1,
            // A scalar's end at its object's `}`, or a nested value's.
            b'}' | b']' if depth <= 1 => return Some((i + depth, doubtful)),
            b'}' | b']' => depth -= 1,
            b',' | b' ' | b'\t' | b'\n' | b'\r' if depth == 0 => return Some((i, doubtful)),
            // An exponent (`true` and `false` have an `e` after a letter).
            b'e' | b'E'
                if i.checked_sub(1)
                    .and_then(|p| b.get(p))
                    .is_some_and(u8::is_ascii_digit) =>
            {
                doubtful = true;
            }
            // Past u64: read as f64, beyond it past ~309 digits.
            _ if digits > 19 => doubtful = true,
            _ => {}
        }
        i += 1;
    }
}

/// `{}`.
impl Default for JsonObject {
    fn default() -> JsonObject {
        JsonObject {
            text: "{}".into(),
            members: Box::default(),
        }
    }
}

/// The same members with the same values, in any order and layout.
impl PartialEq for JsonObject {
    fn eq(&self, other: &JsonObject) -> bool {
        self.members.len() == other.members.len() && self.iter().eq(other.iter())
    }
}

impl Eq for JsonObject {}

impl fmt::Debug for JsonObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// As the JSON object it is, each name once (a session cookie keeps the ID
/// token's claims so).
impl Serialize for JsonObject {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for JsonObject {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<JsonObject, D::Error> {
        // An object as a map (the deserializer may be another than
        // serde_json's), then as text.
        let map = serde_json::Map::<String, Value>::deserialize(d)?;
        let text = Value::Object(map).to_string();
        JsonObject::parse(text.into()).ok_or_else(|| de::Error::custom("not a JSON object"))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn object(text: &str) -> JsonObject {
        JsonObject::parse(text.into()).unwrap()
    }

    #[test]
    fn reads_members_on_demand() {
        let o = object(
            r#" { "iss" : "https://idp", "exp": 1.5e3, "aud": ["a", "b"], "o": {"k": null} } "#,
        );
        assert_eq!(o.get("iss"), Some(&json!("https://idp")));
        assert_eq!(o.get("exp").and_then(Value::as_f64), Some(1500.0));
        assert_eq!(o.get("aud"), Some(&json!(["a", "b"])));
        assert_eq!(o.get("o"), Some(&json!({"k": null})));
        assert_eq!(o.get("nope"), None);
        assert!(o.contains_key("o") && !o.contains_key("k"));
        // Read twice, the same value.
        assert_eq!(o.get("iss").and_then(Value::as_str), Some("https://idp"));
    }

    #[test]
    fn refuses_what_is_not_one_object() {
        for text in [
            "",
            "[]",
            "\"a\"",
            "1",
            "null",
            "{",
            "{}x",
            "{} {}",
            r#"{"a":}"#,
            r#"{"a" 1}"#,
            r#"{"a":1,}"#,
            r#"{a:1}"#,
            r#"{"a":[1,]}"#,
            "{\"a\":\"\u{1}\"}",
            r#"{"a":01}"#,
        ] {
            assert!(JsonObject::parse(text.into()).is_none(), "{text:?}");
        }
        assert!(JsonObject::from_slice(b"{\"a\":\"\xff\"}").is_none());
    }

    /// What serde_json's whole read lets through but a `Value` does not,
    /// and what nests too deep: refused as a map of it would be.
    #[test]
    fn refuses_values_that_would_not_read() {
        let nested = |levels: usize| {
            format!(
                "{{\"a\":{}{},\"b\":1}}",
                "[".repeat(levels),
                "]".repeat(levels)
            )
        };
        assert!(JsonObject::parse(nested(MAX_DEPTH).into()).is_some());
        assert!(JsonObject::parse(nested(MAX_DEPTH + 1).into()).is_none());
        assert!(JsonObject::parse(nested(200_000).into()).is_none());
        for text in [
            r#"{"exp": 1e400}"#,
            r#"{"a": [1, {"b": -2E+999}]}"#,
            r#"{"s": "\ud800"}"#,
            r#"{"s": ["x", "a\udc00b"]}"#,
            r#"{"\ud800": 1}"#,
        ] {
            assert!(JsonObject::parse(text.into()).is_none(), "{text}");
            assert!(serde_json::from_str::<Value>(text).is_err(), "{text}");
        }
        let o = object(
            r#"{"e": 1e5, "n": 123456789012345678901234567890, "p": "\ud83d\ude00", "t": true, "f": [false, null]}"#,
        );
        assert_eq!(o.get("e"), Some(&json!(100000.0)));
        assert_eq!(
            o.get("n").and_then(Value::as_f64),
            Some(1.2345678901234568e29)
        );
        assert_eq!(o.get("p"), Some(&json!("\u{1f600}")));
        assert_eq!(o.get("f"), Some(&json!([false, null])));
    }

    #[test]
    fn heap_sort_sorts() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for len in 0..70 {
            let mut v: Vec<u64> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed % 10
                })
                .collect();
            let mut expected = v.clone();
            expected.sort();
            heap_sort(&mut v, |a, b| a < b);
            assert_eq!(v, expected, "{len}");
        }
    }

    /// Names sorted by their first 8 bytes, then whole: the order is the
    /// names' own, and each is found.
    #[test]
    fn orders_and_finds_names_sharing_their_first_bytes() {
        let names = [
            "client_id",
            "client_idx",
            "client_i",
            "cognito:groups",
            "a\u{0}",
            "a",
            "\u{e9}",
            "zzzzzzzzzz1",
            "zzzzzzzzzz0",
            "zzzzzzzz",
            "",
            "A",
        ];
        let text = serde_json::to_string(&serde_json::Map::from_iter(
            names
                .iter()
                .enumerate()
                .map(|(i, n)| (n.to_string(), json!(i))),
        ))
        .unwrap();
        let o = object(&text);
        let mut sorted = names.to_vec();
        sorted.sort();
        assert!(o.iter().map(|(n, _)| n).eq(sorted.iter().copied()));
        for (i, n) in names.iter().enumerate() {
            assert_eq!(o.get(n), Some(&json!(i)), "{n:?}");
        }
        for absent in ["client_", "client_idy", "zzzzzzzzz", "a\u{0}\u{0}", "B"] {
            assert!(!o.contains_key(absent), "{absent:?}");
        }
    }

    #[test]
    fn names_with_escapes_are_decoded() {
        let o = object(r#"{"a\"b": 1, "\u0069ss": "x", "plain": 2}"#);
        assert_eq!(o.get("a\"b"), Some(&json!(1)));
        assert_eq!(o.get("iss"), Some(&json!("x")));
        assert_eq!(o.get("plain"), Some(&json!(2)));
        assert_eq!(o.get("\\u0069ss"), None);
    }

    #[test]
    fn finds_the_first_name_given_twice_anywhere() {
        for (text, found) in [
            (r#"{"a": 1, "b": 2}"#, None),
            (r#"{"a": 1, "a": 2}"#, Some("a")),
            (
                r#" { "x": {"a": [1, {"b": 1, "b": 2}]} } "#,
                Some("x.a[1].b"),
            ),
            (r#"{"a": [{"b": 1}, {"b": 2}], "c": {"b": 3}}"#, None),
            (
                r#"{"l": [[], [1, 2], {"a": 1, "\u0061": 2}]}"#,
                Some("l[2].a"),
            ),
            (r#"{"a": {}, "b": [], "a": null}"#, Some("a")),
            (r#"[{"a": 1}, {"a": 1, "a": 1}]"#, Some("[1].a")),
            (r#""text""#, None),
        ] {
            assert_eq!(first_duplicate(text).as_deref(), found, "{text}");
        }
    }

    #[test]
    fn a_repeated_name_means_its_last_value() {
        let text = r#"{"iss": "first", "x": 1, "iss": "last", "\u0078": 2}"#;
        let o = object(text);
        assert_eq!(o.get("iss"), Some(&json!("last")));
        assert_eq!(
            o.get("x"),
            Some(&json!(2)),
            "an escaped name is the same name"
        );
        let members: Vec<_> = o.iter().collect();
        assert_eq!(members, [("iss", &json!("last")), ("x", &json!(2))]);
        let as_map: serde_json::Map<String, Value> = serde_json::from_str(text).unwrap();
        let as_map = as_map.iter().map(|(n, v)| (n.as_str(), v));
        assert!(as_map.eq(o.iter()), "as serde_json::Map reads it");
    }

    #[test]
    fn merges_the_missing_members() {
        let token = object(r#"{"sub":"u","email":"token@x"}"#);
        let userinfo = object(r#"{"email": "info@x", "name": "N\"q", "sub": "other"}"#);
        let merged = token.with_missing_from(&userinfo);
        assert_eq!(merged.get("email"), Some(&json!("token@x")));
        assert_eq!(merged.get("sub"), Some(&json!("u")));
        assert_eq!(merged.get("name"), Some(&json!("N\"q")));
        let names: Vec<&str> = merged.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["email", "name", "sub"]);
        // Read as a whole, the same.
        assert_eq!(
            merged,
            object(r#"{"email":"token@x","name":"N\"q","sub":"u"}"#)
        );
        let escaped = object(r#"{"\u0061": 1}"#).with_missing_from(&object(r#"{"a": 2, "b": 3}"#));
        assert_eq!(escaped, object(r#"{"a":1,"b":3}"#));
        assert_eq!(JsonObject::default().with_missing_from(&token), token);
        assert_eq!(token.with_missing_from(&JsonObject::default()), token);
    }

    #[test]
    fn serializes_each_name_once_and_reads_back() {
        let o = object(r#"{"b": [1, 2], "a": "x", "b": {"c": true}}"#);
        assert_eq!(
            serde_json::to_string(&o).unwrap(),
            r#"{"a":"x","b":{"c":true}}"#
        );
        #[derive(serde::Serialize, serde::Deserialize)]
        struct Holder {
            identity: JsonObject,
        }
        let compact = object(r#"{"b":[1,2],"a":"x"}"#);
        let held = serde_json::to_vec(&Holder {
            identity: compact.clone(),
        })
        .unwrap();
        let back: Holder = serde_json::from_slice(&held).unwrap();
        assert_eq!(back.identity, compact);
        assert_eq!(
            back.identity,
            object(r#"{ "a": "x", "b": [1,2] }"#),
            "any order, any layout"
        );
        assert_ne!(back.identity, object(r#"{"a":"x","b":[1,2],"c":0}"#));
        assert_ne!(back.identity, object(r#"{"a":"x","b":[2,1]}"#));
        assert_ne!(back.identity, object(r#"{"a":"x","c":[1,2]}"#));
        assert_eq!(back.identity.get("a"), Some(&json!("x")));
        // Not an object where one is held: refused.
        assert!(serde_json::from_str::<Holder>(r#"{"identity": [1]}"#).is_err());
        // From a `Value` too (another deserializer than serde_json's reader).
        let from_value: Holder = serde_json::from_value(json!({"identity": {"a": 1}})).unwrap();
        assert_eq!(from_value.identity.get("a"), Some(&json!(1)));
    }

    /// The index finds what serde_json's map holds, whatever the layout:
    /// whitespace everywhere JSON allows it, strings holding brackets,
    /// quotes, commas and escapes, values of every kind and depth.
    #[test]
    fn finds_what_serde_json_reads() {
        let values = [
            "0",
            "-1.5e-3",
            "true",
            "false",
            "null",
            r#""""#,
            r#""a,b}""#,
            r#""\"]}""#,
            r#""\\""#,
            r#""\u00e9\n""#,
            "[]",
            "{}",
            r#"[1,"]",{"x":[{}]}]"#,
            r#"{"a":{"b":{"c":"}"}}}"#,
            r#"[[[[]]],[]]"#,
            "\"\u{e9}\u{1f600}\"",
        ];
        for (k, v) in values.iter().enumerate() {
            for ws in ["", " ", "\n\t\r "] {
                let text = format!(
                    "{ws}{{{ws}\"first\"{ws}:{ws}{v}{ws},{ws}\"k{k}\\\"q\"{ws}:{ws}{v}{ws},{ws}\"last\":{v}{ws}}}{ws}"
                );
                let o = object(&text);
                let map: serde_json::Map<String, Value> = serde_json::from_str(&text).unwrap();
                let ours: serde_json::Map<String, Value> =
                    o.iter().map(|(n, v)| (n.to_string(), v.clone())).collect();
                assert_eq!(ours, map, "{text}");
                assert_eq!(o.iter().count(), 3, "{text}");
            }
        }
        assert!(object(" {\n} ").iter().next().is_none());
    }

    /// Every prefix and every one-byte change of a token's claims: no
    /// panic, and read exactly when serde_json reads it as an object.
    #[test]
    fn agrees_with_serde_json_on_mangled_input() {
        let text = r#"{"iss":"https://idp/a","aud":["x","y"],"n":{"k":[1,2.5,null]},"s":"a\"b\\"}"#;
        let mut cases: Vec<Vec<u8>> = (0..text.len())
            .map(|n| text.as_bytes()[..n].to_vec())
            .collect();
        for i in 0..text.len() {
            for byte in [
                b'"', b'\\', b'{', b'}', b'[', b']', b',', b':', b' ', b'1', b'x',
            ] {
                let mut b = text.as_bytes().to_vec();
                b[i] = byte;
                cases.push(b);
            }
        }
        for bytes in cases {
            let ours = JsonObject::from_slice(&bytes);
            let theirs = serde_json::from_slice::<serde_json::Map<String, Value>>(&bytes).ok();
            assert_eq!(
                ours.is_some(),
                theirs.is_some(),
                "{}",
                String::from_utf8_lossy(&bytes)
            );
            if let (Some(ours), Some(theirs)) = (ours, theirs) {
                let ours: serde_json::Map<String, Value> = ours
                    .iter()
                    .map(|(n, v)| (n.to_string(), v.clone()))
                    .collect();
                assert_eq!(ours, theirs, "{}", String::from_utf8_lossy(&bytes));
            }
        }
    }
}
