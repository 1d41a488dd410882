//! What the core may read of a request: its headers, taken once from the
//! host as bytes (a header value need not be UTF-8; the SDK's string API
//! would panic on one that is not).

/// A request's headers, names lower-case as Envoy gives them.
#[derive(Debug, Clone, Default)]
pub struct RequestView {
    headers: Vec<(String, Vec<u8>)>,
}

impl RequestView {
    pub fn new(headers: Vec<(String, Vec<u8>)>) -> Self {
        RequestView { headers }
    }

    /// Every value of a header, in order.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// The first value of a header, if it is UTF-8.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    }

    pub fn method(&self) -> &str {
        self.get(":method").unwrap_or_default()
    }

    /// `:path`, query included.
    pub fn path(&self) -> &str {
        self.get(":path").unwrap_or_default()
    }
}
