//! What the core may read of a request: its headers, taken once from the
//! host as bytes (a header value need not be UTF-8; the SDK's string API
//! would panic on one that is not).
//!
//! The headers stay in the one buffer the host serialized them into
//! (proxy-wasm's header-map format), indexed once. The SDK's own reader
//! makes two allocations per header; on a cached-token request that was a
//! measurable share of the filter's whole cost (see BENCHMARKS.md).

use std::ops::Range;

/// The headers the core looks up on every request, a dozen times between
/// them on a cached-token request: found once while indexing, so that each
/// lookup is one comparison instead of a scan of every header's name.
const KNOWN: [&str; 4] = [":path", ":method", "authorization", "cookie"];

/// Whether header name `header` is `name`, in any case (lengths first:
/// most names differ there).
fn same_name(header: &[u8], name: &str) -> bool {
    header.len() == name.len() && header.eq_ignore_ascii_case(name.as_bytes())
}

/// Where a header of `KNOWN` is.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
enum Slot {
    #[default]
    Absent,
    /// Its only occurrence, at this position of `index`.
    At(usize),
    /// More than once: lookups scan.
    Repeated,
}

/// A request's headers, names lower-case as Envoy gives them.
#[derive(Debug, Clone, Default)]
pub struct RequestView {
    buf: Vec<u8>,
    /// Name and value of each header, as ranges of `buf`.
    index: Vec<(Range<usize>, Range<usize>)>,
    /// Where the headers of `KNOWN` are in `index`.
    known: [Slot; KNOWN.len()],
    /// Envoy's route name (`xds.route_name`), read only when a rule
    /// matches on it (`route_names`).
    route_name: Option<Box<str>>,
}

impl RequestView {
    /// From (name, value) pairs: tests, fuzzing.
    pub fn new(headers: Vec<(String, Vec<u8>)>) -> Self {
        let mut view = RequestView::default();
        for (name, value) in headers {
            let n = view.buf.len()..view.buf.len() + name.len();
            view.buf.extend_from_slice(name.as_bytes());
            let v = view.buf.len()..view.buf.len() + value.len();
            view.buf.extend_from_slice(&value);
            view.index.push((n, v));
        }
        view.find_known();
        view
    }

    /// Fills `known` from `index`.
    fn find_known(&mut self) {
        for (at, (name, _)) in self.index.iter().enumerate() {
            let name = self.buf.get(name.clone()).unwrap_or_default();
            let known = KNOWN.iter().position(|k| same_name(name, k));
            if let Some(slot) = known.and_then(|k| self.known.get_mut(k)) {
                *slot = match slot {
                    Slot::Absent => Slot::At(at),
                    _ => Slot::Repeated,
                };
            }
        }
    }

    /// From a proxy-wasm serialized header map: a little-endian u32 count,
    /// then a (name length, value length) u32 pair per header, then each
    /// name and value followed by a NUL byte. `None` if it is not that.
    pub fn from_serialized(buf: Vec<u8>) -> Option<Self> {
        let word = |at: usize| -> Option<usize> {
            let bytes = buf.get(at..at.checked_add(4)?)?;
            let n = u32::from_le_bytes(bytes.try_into().ok()?);
            usize::try_from(n).ok()
        };
        if buf.is_empty() {
            return Some(RequestView::default());
        }
        let count = word(0)?;
        // Each header takes 8 bytes of sizes and at least 2 NULs.
        if count > buf.len() / 10 {
            return None;
        }
        let mut index = Vec::with_capacity(count);
        let mut data = 4 + 8 * count;
        for i in 0..count {
            let name_len = word(4 + 8 * i)?;
            let value_len = word(8 + 8 * i)?;
            let name = data..data.checked_add(name_len)?;
            let value = name.end.checked_add(1)?..name.end.checked_add(1 + value_len)?;
            data = value.end.checked_add(1)?;
            if data > buf.len() {
                return None;
            }
            index.push((name, value));
        }
        let mut view = RequestView {
            buf,
            index,
            ..RequestView::default()
        };
        view.find_known();
        Some(view)
    }

    /// Every value of a header, in order.
    pub fn all<'a, 'n>(&'a self, name: &'n str) -> impl Iterator<Item = &'a [u8]> + use<'a, 'n> {
        // The literal is usually the very one in `KNOWN` (the same
        // address): found without comparing bytes, which wasm's `memcmp`
        // does one at a time.
        let slot = KNOWN
            .iter()
            .position(|k| std::ptr::eq(*k, name) || *k == name)
            .and_then(|k| self.known.get(k));
        // A known header found once while indexing is taken as it is: its
        // name was compared then.
        let (span, compare) = match slot {
            Some(Slot::Absent) => (0..0, false),
            Some(Slot::At(i)) => (*i..*i + 1, false),
            Some(Slot::Repeated) | None => (0..self.index.len(), true),
        };
        // Any other name: the length check skips most headers before their
        // bytes are looked at.
        self.index
            .get(span)
            .unwrap_or_default()
            .iter()
            .filter(move |(n, _)| {
                !compare
                    || (n.len() == name.len()
                        && self.buf.get(n.clone()).is_some_and(|n| same_name(n, name)))
            })
            .filter_map(move |(_, v)| self.buf.get(v.clone()))
    }

    /// Whether the request has a header `name` (any case), compared as
    /// bytes: cheaper than `names()`, which checks each name is UTF-8.
    pub fn has(&self, name: &str) -> bool {
        self.all(name).next().is_some()
    }

    /// The name of every header, in order (names that are not UTF-8 are
    /// skipped: none of ours is such).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names_with(None)
    }

    /// The names holding byte `b` (all names for `None`): the filter runs
    /// on bytes first and checks UTF-8 only on the names it keeps.
    pub fn names_with(&self, b: Option<u8>) -> impl Iterator<Item = &str> {
        self.index
            .iter()
            .filter_map(|(n, _)| self.buf.get(n.clone()))
            .filter(move |n| b.is_none_or(|b| n.contains(&b)))
            .filter_map(|n| std::str::from_utf8(n).ok())
    }

    /// The first value of a header, if it is UTF-8.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.all(name)
            .next()
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    pub fn method(&self) -> &str {
        self.get(":method").unwrap_or_default()
    }

    /// `:path`, query included.
    pub fn path(&self) -> &str {
        self.get(":path").unwrap_or_default()
    }

    /// `:path` as `path` reads it, or `None` when it was sent but is not
    /// UTF-8 (`path` then reads it as empty).
    pub fn utf8_path(&self) -> Option<&str> {
        match self.all(":path").next() {
            Some(v) => std::str::from_utf8(v).ok(),
            None => Some(""),
        }
    }

    /// `:authority` (or `host`), as the client sent it.
    pub fn authority(&self) -> &str {
        self.get(":authority")
            .or(self.get("host"))
            .unwrap_or_default()
    }

    /// The host the request is for, without its port (nor the dot of a
    /// fully qualified `example.com.`, the same host: rules on hosts must
    /// not miss it).
    pub fn host(&self) -> &str {
        without_final_dot(without_port(self.authority()))
    }

    /// Whether the client came over https, as the proxy in front says it
    /// (`X-Forwarded-Proto`'s first value, in any case), else as Envoy
    /// does (`:scheme`). `None`: neither says http or https.
    pub fn is_https(&self) -> Option<bool> {
        let scheme = |v: &str| {
            let v = v.split(',').next().unwrap_or_default().trim();
            if v.eq_ignore_ascii_case("https") {
                Some(true)
            } else if v.eq_ignore_ascii_case("http") {
                Some(false)
            } else {
                None
            }
        };
        self.get("x-forwarded-proto")
            .and_then(scheme)
            .or_else(|| self.get(":scheme").and_then(scheme))
    }

    /// Envoy's name of the route the request took, when it was read.
    pub fn route_name(&self) -> Option<&str> {
        self.route_name.as_deref()
    }

    pub fn set_route_name(&mut self, name: Option<Vec<u8>>) {
        self.route_name = name.and_then(|n| String::from_utf8(n).ok().map(String::into_boxed_str));
    }
}

/// `example.com.` → `example.com`: a fully qualified name is the same host.
pub fn without_final_dot(host: &str) -> &str {
    host.strip_suffix('.').unwrap_or(host)
}

/// `host:port` → `host` (an IPv6 literal's colons are not a port).
pub fn without_port(authority: &str) -> &str {
    authority
        .rsplit_once(':')
        .filter(|(h, port)| port.bytes().all(|b| b.is_ascii_digit()) && !h.ends_with(':'))
        .map_or(authority, |(h, _)| h)
}

#[cfg(test)]
mod tests {
    use super::RequestView;

    #[test]
    fn https_is_read_from_the_forwarded_proto_first_then_the_scheme() {
        let req = |headers: &[(&str, &str)]| {
            RequestView::new(
                headers
                    .iter()
                    .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
                    .collect(),
            )
        };
        for (headers, https) in [
            (
                &[(":scheme", "http"), ("x-forwarded-proto", "https")][..],
                Some(true),
            ),
            (
                &[(":scheme", "https"), ("x-forwarded-proto", "http")],
                Some(false),
            ),
            (
                &[(":scheme", "https"), ("x-forwarded-proto", "HTTPS")],
                Some(true),
            ),
            (
                &[(":scheme", "http"), ("x-forwarded-proto", " https , http")],
                Some(true),
            ),
            (
                &[(":scheme", "https"), ("x-forwarded-proto", "wss")],
                Some(true),
            ),
            (&[(":scheme", "http")], Some(false)),
            (&[(":path", "/")], None),
        ] {
            assert_eq!(req(headers).is_https(), https, "{headers:?}");
        }
    }

    #[test]
    fn the_host_is_the_authority_without_its_port() {
        for (authority, host) in [
            ("gw.example.com:8443", "gw.example.com"),
            ("gw.example.com", "gw.example.com"),
            ("[::1]:8080", "[::1]"),
            ("[::1]", "[::1]"),
            ("", ""),
        ] {
            assert_eq!(super::without_port(authority), host, "{authority}");
        }
        let req = RequestView::new(vec![("host".into(), b"a.example:80".to_vec())]);
        assert_eq!((req.authority(), req.host()), ("a.example:80", "a.example"));
    }

    /// The host's format, built the way Envoy builds it.
    fn serialize(pairs: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = (pairs.len() as u32).to_le_bytes().to_vec();
        for (n, v) in pairs {
            out.extend((n.len() as u32).to_le_bytes());
            out.extend((v.len() as u32).to_le_bytes());
        }
        for (n, v) in pairs {
            out.extend(n.as_bytes());
            out.push(0);
            out.extend(*v);
            out.push(0);
        }
        out
    }

    #[test]
    fn reads_the_hosts_header_map() {
        let pairs: &[(&str, &[u8])] = &[
            (":path", b"/a?b"),
            ("cookie", b"x=1"),
            ("empty", b""),
            ("cookie", b"y=\xff"),
        ];
        let view = RequestView::from_serialized(serialize(pairs)).unwrap();
        assert_eq!(view.path(), "/a?b");
        assert_eq!(view.get("empty"), Some(""));
        assert_eq!(
            view.all("Cookie").collect::<Vec<_>>(),
            [&b"x=1"[..], b"y=\xff"]
        );
        assert_eq!(view.get("missing"), None);
        // The headers found while indexing (`KNOWN`): once, repeated, absent.
        assert_eq!(
            view.all("cookie").collect::<Vec<_>>(),
            [&b"x=1"[..], b"y=\xff"]
        );
        assert_eq!(view.all(":path").collect::<Vec<_>>(), [b"/a?b"]);
        assert_eq!(view.all("authorization").next(), None);
        let empty = RequestView::from_serialized(Vec::new()).unwrap();
        assert_eq!(empty.path(), "");
    }

    #[test]
    fn finds_known_headers_whatever_their_case() {
        let view = RequestView::new(vec![
            ("x-a".into(), b"1".to_vec()),
            ("Authorization".into(), b"Bearer t".to_vec()),
            ("COOKIE".into(), b"a=1".to_vec()),
            ("cookie".into(), b"b=2".to_vec()),
        ]);
        assert_eq!(view.get("authorization"), Some("Bearer t"));
        // A name that is not the literal of `KNOWN` (another address).
        assert_eq!(view.get(&String::from("authorization")), Some("Bearer t"));
        assert_eq!(view.all("cookie").count(), 2);
        assert_eq!(view.method(), "");
    }

    #[test]
    fn refuses_a_truncated_or_lying_header_map() {
        let good = serialize(&[(":path", b"/"), ("authorization", b"Bearer x")]);
        for cut in 1..good.len() {
            assert!(
                RequestView::from_serialized(good[..cut].to_vec()).is_none(),
                "cut at {cut}"
            );
        }
        let mut huge = good.clone();
        huge[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(RequestView::from_serialized(huge).is_none());
        let mut many = good;
        many[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(RequestView::from_serialized(many).is_none());
    }
}
