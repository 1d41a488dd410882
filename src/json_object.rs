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
//! JWS parse went from 3.1–3.3 to 1.6–1.8 µs in the probe, and first-seen
//! RS256 requests to 1.024× (1.020–1.029) the map's req/s side by side in
//! Envoy (BENCHMARKS.md, "Session 21: claims read on demand").
//!
//! A name that appears twice means its last value, as `serde_json::Map`
//! (and RFC 7515 §5.2's "lexically last") has it.

use std::cell::OnceCell;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny};
use serde::ser::{Serialize, Serializer};
use serde_json::Value;

/// A JSON object: its text, and where each member is in it.
#[derive(Clone)]
pub struct JsonObject {
    text: Box<str>,
    members: Box<[Member]>,
}

#[derive(Clone)]
struct Member {
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
    /// The object `text` is; `None` unless it is exactly one JSON object.
    pub fn parse(text: Box<str>) -> Option<JsonObject> {
        // serde_json reads it whole first, building nothing (from bytes, as
        // every other JSON of the module is read: one copy of its parser),
        // so that `index` only has to find where the members are.
        serde_json::from_slice::<IgnoredAny>(text.as_bytes()).ok()?;
        let members = index(text.as_bytes())?.into_boxed_slice();
        Some(JsonObject { text, members })
    }

    /// The object JSON `bytes` are; `None` unless they are UTF-8 and
    /// exactly one JSON object.
    pub fn from_slice(bytes: &[u8]) -> Option<JsonObject> {
        JsonObject::parse(std::str::from_utf8(bytes).ok()?.into())
    }

    /// The object JSON `bytes` are, taking them; as `from_slice`.
    pub fn from_vec(bytes: Vec<u8>) -> Option<JsonObject> {
        JsonObject::parse(String::from_utf8(bytes).ok()?.into_boxed_str())
    }

    /// The object's JSON text, as it was read.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The value of member `name`, parsed at its first reading. A value
    /// that is JSON but no `Value` (a number beyond `f64`, or one nested
    /// deeper than serde_json's 128 levels: reading the whole object
    /// checks neither) is `null`: every check refuses `null` where it
    /// wants something.
    pub fn get(&self, name: &str) -> Option<&Value> {
        let member = self.members.iter().rev().find(|m| self.name(m) == name)?;
        Some(member.parsed.get_or_init(|| {
            self.slice(member.value)
                .and_then(|raw| serde_json::from_slice(raw.as_bytes()).ok())
                .unwrap_or(Value::Null)
        }))
    }

    /// Whether the object has a member `name`.
    pub fn contains_key(&self, name: &str) -> bool {
        self.members.iter().any(|m| self.name(m) == name)
    }

    /// The members, in the text's order, each name once (its last value).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.last_members().filter_map(|m| {
            let name = self.name(m);
            Some((name, self.get(name)?))
        })
    }

    /// This object's members and then those of `extra` whose names it
    /// lacks.
    pub fn with_missing_from(&self, extra: &JsonObject) -> JsonObject {
        let mut text = String::with_capacity(self.text.len() + extra.text.len());
        text.push('{');
        let ours = self
            .last_members()
            .map(|m| (self.name(m), self.slice(m.value)));
        let theirs = extra
            .last_members()
            .map(|m| (extra.name(m), extra.slice(m.value)))
            .filter(|&(name, _)| !self.contains_key(name));
        for (i, (name, value)) in ours.chain(theirs).enumerate() {
            if i > 0 {
                text.push(',');
            }
            // A `str` always serializes.
            text.push_str(&serde_json::to_string(name).unwrap_or_default());
            text.push(':');
            text.push_str(value.unwrap_or("null"));
        }
        text.push('}');
        // Names and values that were JSON are: this cannot fail.
        JsonObject::parse(text.into_boxed_str()).unwrap_or_default()
    }

    /// Each name's last member, in the text's order.
    fn last_members(&self) -> impl Iterator<Item = &Member> {
        self.members.iter().enumerate().filter_map(|(i, m)| {
            let later = self.members.get(i + 1..).unwrap_or_default();
            (!later.iter().any(|l| self.name(l) == self.name(m))).then_some(m)
        })
    }

    fn name<'a>(&'a self, m: &'a Member) -> &'a str {
        match &m.name {
            Name::Span(span) => self.slice(*span).unwrap_or_default(),
            Name::Decoded(name) => name,
        }
    }

    fn slice(&self, (start, end): Span) -> Option<&str> {
        self.text.get(start..end)
    }
}

/// Where the members of a JSON object are in `b`: `None` unless `b` is
/// (after whitespace) an object. `b` must be JSON (serde_json has read it
/// whole), so that only the object's own structure is looked at: strings
/// are skipped to their closing quote and nested values to their closing
/// bracket. Hand-written because serde_json tells where a value is only
/// through its `raw_value` feature, with which the module was ~15 KB
/// larger (a path of its own through the parser, and through `Value`'s).
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
        let (name_end, escaped) = string_end(b, i + 1)?;
        let name = if escaped {
            let quoted = b.get(i..=name_end)?;
            Name::Decoded(
                serde_json::from_slice::<String>(quoted)
                    .ok()?
                    .into_boxed_str(),
            )
        } else {
            Name::Span((i + 1, name_end))
        };
        let colon = skip_whitespace(b, name_end + 1);
        let start = skip_whitespace(b, colon + 1);
        let end = value_end(b, start)?;
        members.push(Member {
            name,
            value: (start, end),
            parsed: OnceCell::new(),
        });
        i = skip_whitespace(b, end);
        match b.get(i)? {
            b',' => i = skip_whitespace(b, i + 1),
            b'}' => return Some(members),
            _ => return None,
        }
    }
}

fn skip_whitespace(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

/// Where the string whose first character (after its opening quote) is
/// at `i` ends: the index of its closing quote, and whether it has escapes.
fn string_end(b: &[u8], mut i: usize) -> Option<(usize, bool)> {
    let mut escaped = false;
    loop {
        // The next quote or backslash, many bytes a step (`memchr`).
        i += memchr::memchr2(b'"', b'\\', b.get(i..)?)?;
        match b.get(i)? {
            b'"' => return Some((i, escaped)),
            _ => (i, escaped) = (i + 2, true),
        }
    }
}

/// The index just past the value that starts at `i`.
fn value_end(b: &[u8], mut i: usize) -> Option<usize> {
    let mut depth = 0usize;
    loop {
        match b.get(i)? {
            b'"' => {
                i = string_end(b, i + 1)?.0 + 1;
                if depth == 0 {
                    return Some(i);
                }
                continue;
            }
            b'{' | b'[' => depth += 1,
            // A scalar's end at its object's `}`, or a nested value's.
            b'}' | b']' if depth <= 1 => return Some(i + depth),
            b'}' | b']' => depth -= 1,
            b',' | b' ' | b'\t' | b'\n' | b'\r' if depth == 0 => return Some(i),
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
        self.text == other.text
            || (self.iter().count() == other.iter().count()
                && self
                    .iter()
                    .all(|(name, value)| other.get(name) == Some(value)))
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

    #[test]
    fn a_value_too_deep_to_read_reads_as_null() {
        // The index skips values without recursion (serde_json's), so it
        // takes any depth; reading past serde_json's limit of 128 fails.
        let deep = format!("{{\"a\":{}{},\"b\":1}}", "[".repeat(200), "]".repeat(200));
        let o = JsonObject::parse(deep.into()).unwrap();
        assert_eq!(o.get("a"), Some(&Value::Null));
        assert_eq!(o.get("b"), Some(&json!(1)));
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
    fn a_repeated_name_means_its_last_value() {
        let o = object(r#"{"iss": "first", "x": 1, "iss": "last"}"#);
        assert_eq!(o.get("iss"), Some(&json!("last")));
        let members: Vec<_> = o.iter().collect();
        assert_eq!(members, [("x", &json!(1)), ("iss", &json!("last"))]);
        let as_map: serde_json::Map<String, Value> = serde_json::from_str(o.as_str()).unwrap();
        assert_eq!(
            as_map.get("iss"),
            o.get("iss"),
            "as serde_json::Map reads it"
        );
    }

    #[test]
    fn a_number_beyond_f64_reads_as_null() {
        let o = object(r#"{"exp": 1e400, "n": 5}"#);
        assert_eq!(o.get("exp"), Some(&Value::Null));
        assert_eq!(o.get("n"), Some(&json!(5)));
    }

    #[test]
    fn merges_the_missing_members() {
        let token = object(r#"{"sub":"u","email":"token@x"}"#);
        let userinfo = object(r#"{"email": "info@x", "name": "N\"q", "sub": "other"}"#);
        let merged = token.with_missing_from(&userinfo);
        assert_eq!(merged.get("email"), Some(&json!("token@x")));
        assert_eq!(merged.get("sub"), Some(&json!("u")));
        assert_eq!(merged.get("name"), Some(&json!("N\"q")));
        assert_eq!(merged.iter().count(), 3);
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
