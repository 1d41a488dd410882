//! Cookie headers: reading `Cookie`, writing `Set-Cookie`, and splitting a
//! value too large for one cookie into numbered chunks.

use std::borrow::Cow;

use crate::config::{SameSite, Session as SessionConfig};

/// Browsers keep at least 4096 bytes per cookie, name and attributes
/// included; values are split well below that.
pub const CHUNK: usize = 3800;
/// At most this many chunks are read or cleared (about 30 KB of session).
pub const MAX_CHUNKS: usize = 8;

/// One `;`-separated piece of a `Cookie` header value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece<'a> {
    /// As the client sent it, but for the blanks and tabs around it.
    pub sent: &'a str,
    /// The name, trimmed: all of the piece when it has no `=`.
    pub name: &'a str,
    /// The value, trimmed and unquoted; `None` when the piece is no cookie
    /// (no `=`, or no name).
    pub value: Option<&'a str>,
}

/// The pieces of a `Cookie` header value, in order, empty ones included.
///
/// Only spaces and tabs are trimmed (RFC 6265's whitespace), as browsers
/// do: `str::trim` would also take Unicode spaces, and a cookie a sibling
/// subdomain set as `\u{2000}__Host-session` (which a browser keeps apart
/// from `__Host-session`, and lets that subdomain set) would be read as
/// ours, defeating the `__Host-` prefix.
pub fn pieces(header: &str) -> impl Iterator<Item = Piece<'_>> {
    const BLANKS: [char; 2] = [' ', '\t'];
    semicolon_separated(header).map(|piece| {
        let sent = piece.trim_matches(BLANKS);
        let (name, value) = match sent.split_once('=') {
            Some((n, v)) => (
                n.trim_matches(BLANKS),
                Some(v.trim_matches(BLANKS).trim_matches('"')),
            ),
            None => (sent, None),
        };
        Piece {
            sent,
            name,
            value: value.filter(|_| !name.is_empty()),
        }
    })
}

/// `text` split at each `;`, as `str::split(';')` would, but found with
/// `memchr`, which looks at 64 bytes a step with WebAssembly SIMD where
/// `str::split` looks at 8: a session cookie's ~2 KB are scanned on every
/// request of a session (2.6k of its ~42k instructions in V8, counted by
/// bench/instructions.sh).
fn semicolon_separated(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let r = rest?;
        match memchr::memchr(b';', r.as_bytes()) {
            // `;` is ASCII, never part of a multi-byte character: both
            // sides of it are whole characters.
            Some(at) => {
                rest = r.get(at + 1..);
                r.get(..at)
            }
            None => rest.take(),
        }
    })
}

/// The name/value pairs of every `Cookie` header value.
pub fn parse<'a>(headers: impl Iterator<Item = &'a str>) -> Vec<(&'a str, &'a str)> {
    headers
        .flat_map(pieces)
        .filter_map(|p| Some((p.name, p.value?)))
        .collect()
}

/// Whether `name` is one of the cookies of the session cookie `base`:
/// itself, a chunk (`base.N`, `chunk_name`) or a login cookie
/// (`base_login_…`, `is_login`).
pub fn is_ours(base: &str, name: &str) -> bool {
    name.strip_prefix(base).is_some_and(|rest| {
        rest.is_empty()
            || rest
                .strip_prefix('.')
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            || rest.starts_with("_login_")
    })
}

/// Whether a browser sends a cookie of `cookie_path` with a request for
/// `path` (RFC 6265 §5.1.4, path-match).
pub fn path_matches(cookie_path: &str, path: &str) -> bool {
    path.strip_prefix(cookie_path)
        .is_some_and(|rest| rest.is_empty() || cookie_path.ends_with('/') || rest.starts_with('/'))
}

/// Whether `name` is a login cookie of the session cookie `base`.
pub fn is_login(base: &str, name: &str) -> bool {
    name.strip_prefix(base)
        .is_some_and(|rest| rest.starts_with("_login_"))
}

/// The name of chunk `i` of cookie `name` (chunk 0 is `name` itself).
pub fn chunk_name(name: &str, i: usize) -> String {
    if i == 0 {
        name.to_string()
    } else {
        format!("{name}.{i}")
    }
}

/// Reassembles a chunked value from `(name, value)` pairs: see `join_with`.
pub fn join<'a>(cookies: &[(&str, &'a str)], name: &str) -> Option<Cow<'a, str>> {
    join_with(
        |n| cookies.iter().find(|(k, _)| *k == n).map(|(_, v)| *v),
        name,
    )
}

/// Reassembles a chunked value, each cookie's value found by `find`:
/// `name` holds `<count>~<part>`, or the whole value when it fits in one
/// cookie (borrowed, not copied: this runs on every request of a session).
pub fn join_with<'a>(find: impl Fn(&str) -> Option<&'a str>, name: &str) -> Option<Cow<'a, str>> {
    let first = find(name)?;
    // The `~` is looked for where a count's digits end, not in the whole
    // value (~2 KB, on every request of a session): `<count>~` is at most
    // `MAX_CHUNKS` followed by `~`, and a sealed value never holds a `~`.
    let digits = first.bytes().take_while(u8::is_ascii_digit).count();
    let Some((count, part)) = first
        .split_at_checked(digits)
        .and_then(|(count, rest)| Some((count, rest.strip_prefix('~')?)))
    else {
        return Some(Cow::Borrowed(first));
    };
    let count: usize = count
        .parse()
        .ok()
        .filter(|c| (1..=MAX_CHUNKS).contains(c))?;
    let mut value = part.to_string();
    for i in 1..count {
        value.push_str(find(&chunk_name(name, i))?);
    }
    Some(Cow::Owned(value))
}

/// Splits a value into `(cookie name, value)` chunks.
pub fn split(name: &str, value: &str) -> Option<Vec<(String, String)>> {
    if value.len() <= CHUNK {
        return Some(vec![(name.to_string(), value.to_string())]);
    }
    let parts: Vec<&str> = value
        .as_bytes()
        .chunks(CHUNK)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect();
    if parts.len() > MAX_CHUNKS {
        return None;
    }
    Some(
        parts
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let v = if i == 0 {
                    format!("{}~{p}", parts.len())
                } else {
                    p.to_string()
                };
                (chunk_name(name, i), v)
            })
            .collect(),
    )
}

/// A `Set-Cookie` value with the configured attributes. `max_age: None`
/// is a browser-session cookie; `Some(0)` deletes the cookie.
pub fn set_cookie(
    cfg: &SessionConfig,
    secure: bool,
    name: &str,
    value: &str,
    max_age: Option<u64>,
) -> String {
    with_same_site(cfg, cfg.same_site, secure, name, value, max_age)
}

/// A login cookie's `Set-Cookie`: as `set_cookie`, but never `Strict`. The
/// login comes back from the IdP's site, a cross-site navigation that
/// carries no `Strict` cookie: with the session's `Strict` every callback
/// found no login (400). `Lax` is sent on that navigation (a GET; as Kong's
/// separate authorization cookie).
pub fn set_login_cookie(
    cfg: &SessionConfig,
    secure: bool,
    name: &str,
    value: &str,
    max_age: Option<u64>,
) -> String {
    let same_site = match cfg.same_site {
        SameSite::Strict => SameSite::Lax,
        other => other,
    };
    with_same_site(cfg, same_site, secure, name, value, max_age)
}

fn with_same_site(
    cfg: &SessionConfig,
    same_site: SameSite,
    secure: bool,
    name: &str,
    value: &str,
    max_age: Option<u64>,
) -> String {
    let mut c = format!("{name}={value}; Path={}; HttpOnly", cfg.cookie_path);
    if let Some(d) = &cfg.cookie_domain {
        c.push_str(&format!("; Domain={d}"));
    }
    c.push_str(match same_site {
        SameSite::Strict => "; SameSite=Strict",
        SameSite::Lax => "; SameSite=Lax",
        SameSite::None => "; SameSite=None",
    });
    // SameSite=None is refused by browsers without Secure.
    if secure || same_site == SameSite::None {
        c.push_str("; Secure");
    }
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_several_headers_and_pairs() {
        let c = parse(["a=1; b=\"2\"", "c=3;d", " e = 5 "].into_iter());
        assert_eq!(c, vec![("a", "1"), ("b", "2"), ("c", "3"), ("e", "5")]);
    }

    #[test]
    fn pieces_keep_what_was_sent_beside_what_they_read() {
        let p: Vec<Piece> = pieces(" a = \"1\" ;\tflag; =x;").collect();
        let read: Vec<_> = p.iter().map(|p| (p.sent, p.name, p.value)).collect();
        assert_eq!(
            read,
            [
                ("a = \"1\"", "a", Some("1")),
                ("flag", "flag", None),
                ("=x", "", None),
                ("", "", None),
            ]
        );
    }

    #[test]
    fn ours_are_the_cookie_its_numbered_chunks_and_its_logins() {
        for name in ["s", "s.1", "s.12", "s_login_abc"] {
            assert!(is_ours("s", name), "{name}");
        }
        // `usize::from_str` would take `+1`.
        for name in ["s.", "s.+1", "s.-1", "s.1a", "sx", "s_x", "\u{2000}s", "t"] {
            assert!(!is_ours("s", name), "{name}");
        }
    }

    #[test]
    fn semicolon_separated_splits_as_str_split_does() {
        let long = format!("a=1; s={}; b", "x".repeat(300));
        for text in ["", ";", ";;", "a", "a;", ";a", "a;b;;c;", "é;ü=1;", &long] {
            let ours: Vec<&str> = semicolon_separated(text).collect();
            let std: Vec<&str> = text.split(';').collect();
            assert_eq!(ours, std, "{text:?}");
        }
    }

    #[test]
    fn chunks_round_trip_and_refuse_gaps() {
        let small = split("s", "abc").unwrap();
        assert_eq!(small, vec![("s".to_string(), "abc".to_string())]);
        let big = "x".repeat(CHUNK * 2 + 10);
        let parts = split("s", &big).unwrap();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[1].0, "s.1");
        let cookies: Vec<(&str, &str)> = parts
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        assert_eq!(join(&cookies, "s").as_deref(), Some(big.as_str()));
        assert_eq!(join(&cookies[..2], "s"), None, "a missing chunk");
        assert_eq!(join(&[("s", "99~x")], "s"), None, "absurd count");
        assert!(split("s", &"x".repeat(CHUNK * (MAX_CHUNKS + 1))).is_none());
    }
}
