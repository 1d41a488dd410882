//! Requests that pass without authentication: `bypass_paths` and, when
//! `run_on_preflight` is false, CORS preflights.

use crate::config::Config;
use crate::request::RequestView;

/// True when the request may pass with no credentials and no IdP call.
pub fn passes_unauthenticated(cfg: &Config, req: &RequestView) -> bool {
    is_unchecked_preflight(cfg, req) || bypasses(&cfg.bypass_paths, req.path())
}

fn is_unchecked_preflight(cfg: &Config, req: &RequestView) -> bool {
    !cfg.run_on_preflight
        && req.method() == "OPTIONS"
        && req.all("access-control-request-method").next().is_some()
}

/// `bypass_paths` (README's configuration reference): an entry ending in
/// `$` is an exact path, one ending in `*` a prefix matching anywhere (a
/// Kong route's), any other a
/// prefix that matches at a `/` boundary; the query is ignored; a path that
/// could be read differently upstream (dot segments, encoded dots or
/// slashes, backslashes, also once decoded again: `%252e`) never bypasses.
/// The match first: most requests match no entry, and the ambiguity check
/// decodes the path.
pub fn bypasses(entries: &[String], path: &str) -> bool {
    matches_entries(entries, path) && !is_ambiguous_path(path)
}

/// Whether `path` (query ignored) is one of `entries`, as `bypasses` reads
/// them, for a path already known not to be ambiguous.
pub fn matches_entries(entries: &[String], path: &str) -> bool {
    let path = without_query(path);
    entries.iter().any(|entry| {
        if let Some(exact) = entry.strip_suffix('$') {
            return path == exact;
        }
        // `/api*`: any path that starts so, inside a segment too (`/apis`),
        // as Kong's route prefixes match (kong2wasm writes them so).
        if let Some(raw) = entry.strip_suffix('*') {
            return path.starts_with(raw);
        }
        let prefix = entry.trim_end_matches('/');
        path == prefix
            || path
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with('/'))
    })
}

/// A request path (query ignored) that could be read differently
/// upstream: see `is_ambiguous`.
pub fn is_ambiguous_path(path: &str) -> bool {
    is_ambiguous(without_query(path).as_bytes())
}

/// How many times a path is percent-decoded in search of a dot, slash or
/// backslash that an upstream decoding it again would see. A path still
/// holding escapes after that is refused: legitimate paths are not encoded
/// four times over.
const DECODE_ROUNDS: usize = 4;

/// A path that could be read differently upstream: `..`, `\`, or an escape
/// of `.`, `/` or `\`, in the path as it is or in what a decoder makes of it
/// (`%252e` is `%2e` once decoded, whatever Envoy's normalisation did
/// before; `%25%32%65` too). Linear in the path's length.
/// `path` up to its query or fragment. By bytes: `split(['?', '#'])`
/// walks the path char by char, a visible share of a bypassed request's
/// time in a profile (both are ASCII, so the cut is on a char boundary).
fn without_query(path: &str) -> &str {
    let end = path
        .bytes()
        .position(|b| b == b'?' || b == b'#')
        .unwrap_or(path.len());
    path.get(..end).unwrap_or(path)
}

/// `path` (query ignored) with each segment's path parameters (`;…`)
/// taken out, as Java servers (Tomcat, Jetty, Spring) read it before
/// routing: `/admin;x/users` is their `/admin/users`. `None` when it has
/// none. (Tomcat takes them out before decoding, so `%3B` is no
/// parameter.)
pub fn without_parameters(path: &str) -> Option<String> {
    let path = without_query(path);
    path.contains(';').then(|| {
        path.split('/')
            .map(|segment| segment.split(';').next().unwrap_or_default())
            .collect::<Vec<_>>()
            .join("/")
    })
}

/// `path` (query ignored, path parameters already taken out or not) as
/// the servers behind Envoy read it before routing, when that differs:
/// runs of slashes merged (nginx, Tomcat), `.` segments dropped (and
/// Istio's normalisation), escapes of unreserved characters and of `%`
/// decoded (`/%61dmin`: Go, Spring, servlet containers; RFC 3986 §2.3 makes
/// it the same URI; `%2561` is that after one more decoder), up to
/// `DECODE_ROUNDS` times. `None` when it reads the same. Inside a bypass
/// prefix such readings stay inside it (`..` is refused there), so only
/// the choice of a rule asks for this.
pub fn normalized(path: &str) -> Option<String> {
    let path = without_query(path);
    let odd =
        |p: &str| p.contains("//") || p.contains("/./") || p.ends_with("/.") || p.contains('%');
    if !odd(path) {
        return None;
    }
    let mut current = path.to_string();
    for _ in 0..DECODE_ROUNDS {
        match decode_unreserved(&current) {
            Some(next) => current = next,
            None => break,
        }
    }
    let segments: Vec<&str> = current
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect();
    let mut read = format!("/{}", segments.join("/"));
    if current.ends_with('/') && read.len() > 1 {
        read.push('/');
    }
    (read != path).then_some(read)
}

/// `s` with each `%XY` that escapes an unreserved character or `%`
/// decoded; `None` when there is none. (Only ASCII is decoded, so what
/// was UTF-8 stays so.)
fn decode_unreserved(s: &str) -> Option<String> {
    let hex = |b: &u8| char::from(*b).to_digit(16);
    let mut out = Vec::with_capacity(s.len());
    let mut rest = s.as_bytes();
    let mut changed = false;
    while let Some((&b, tail)) = rest.split_first() {
        let decoded = match tail {
            [h, l, after @ ..] if b == b'%' => hex(h)
                .zip(hex(l))
                .and_then(|(h, l)| u8::try_from(h * 16 + l).ok())
                .filter(|c| c.is_ascii_alphanumeric() || b"-._~%".contains(c))
                .map(|c| (c, after)),
            _ => None,
        };
        match decoded {
            Some((c, after)) => {
                out.push(c);
                changed = true;
                rest = after;
            }
            None => {
                out.push(b);
                rest = tail;
            }
        }
    }
    changed.then(|| String::from_utf8(out).ok()).flatten()
}

fn is_ambiguous(path: &[u8]) -> bool {
    let mut decoded: Vec<u8>;
    let mut current = path;
    for _ in 0..=DECODE_ROUNDS {
        if has_ambiguous_bytes(current) {
            return true;
        }
        match crate::url::percent_decode(current) {
            None => return false,
            Some(next) => {
                decoded = next;
                current = &decoded;
            }
        }
    }
    true
}

fn has_ambiguous_bytes(path: &[u8]) -> bool {
    path.windows(2).any(|w| w == b"..")
        || path.contains(&b'\\')
        || path.windows(3).any(|w| {
            matches!(
                w,
                [b'%', b'2', b'e' | b'E' | b'f' | b'F'] | [b'%', b'5', b'c' | b'C']
            )
        })
}

#[cfg(test)]
mod tests {
    use super::bypasses;

    fn e(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn prefix_matches_only_at_a_slash_boundary() {
        let entries = e(&["/health", "/public/"]);
        assert!(bypasses(&entries, "/health"));
        assert!(bypasses(&entries, "/health/live?x=1"));
        assert!(!bypasses(&entries, "/healthz"));
        assert!(bypasses(&entries, "/public/logo.png"));
        assert!(bypasses(&entries, "/public"));
        assert!(!bypasses(&entries, "/publicity"));
    }

    #[test]
    fn dollar_means_exact() {
        let entries = e(&["/status$"]);
        assert!(bypasses(&entries, "/status"));
        assert!(bypasses(&entries, "/status?verbose"));
        assert!(!bypasses(&entries, "/status/x"));
    }

    #[test]
    fn star_is_kongs_prefix_inside_a_segment_too() {
        let entries = e(&["/api*"]);
        assert!(bypasses(&entries, "/api"));
        assert!(bypasses(&entries, "/apis?x"));
        assert!(bypasses(&entries, "/api/v1"));
        assert!(!bypasses(&entries, "/ap"));
        assert!(!bypasses(&entries, "/x/api"));
    }

    #[test]
    fn ambiguous_paths_never_bypass() {
        let entries = e(&["/public"]);
        for p in [
            "/public/../admin",
            "/public/%2e%2e/admin",
            "/public%2fadmin",
            "/public/%2F",
            "/public\\admin",
            "/public/%5cadmin",
        ] {
            assert!(!bypasses(&entries, p), "{p}");
        }
        assert!(!bypasses(&[], "/anything"));
    }

    #[test]
    fn normalized_reads_a_path_as_the_servers_behind_envoy_do() {
        use super::normalized;
        for (path, read) in [
            ("//admin/users", Some("/admin/users")),
            ("/./admin/", Some("/admin/")),
            ("/a/.", Some("/a")),
            ("/%61dmin?x=%61", Some("/admin")),
            ("/%2561dmin", Some("/admin")),
            ("/caf%C3%A9", None),
            ("/a%20b", None),
            ("/admin/users", None),
            ("/", None),
            ("//", Some("/")),
        ] {
            assert_eq!(normalized(path).as_deref(), read, "{path}");
        }
    }

    #[test]
    fn double_encoded_dots_and_slashes_never_bypass() {
        let entries = e(&["/public"]);
        for p in [
            "/public/%252e%252e/admin",
            "/public/%252E",
            "/public%252fadmin",
            "/public/%252F",
            "/public/%255cadmin",
            "/public/%255C",
            "/public/%2525252e",
            "/public/%25%32%65",
            "/public/%%32%65",
            "/public/%2%65",
            // Five rounds of escapes: refused whatever they hide.
            "/public/%2525252541",
        ] {
            assert!(!bypasses(&entries, p), "{p}");
        }
        for p in [
            "/public/100%25",
            "/public/file%2520name",
            "/public/%25252541",
            "/public/%zz",
            "/public/%",
            "/public/%2",
            "/public/caf%C3%A9",
        ] {
            assert!(bypasses(&entries, p), "{p}");
        }
    }
}
