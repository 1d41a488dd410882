//! The little URL handling the filter needs: split an absolute `http(s)`
//! URL into scheme, authority and path, to pick an Envoy cluster and to
//! build `dispatch_http_call` headers.
//!
//! Written by hand on purpose: the `url` crate brings IDNA tables that cost
//! hundreds of KB of wasm, and we only ever read URLs we were given by the
//! configuration or by the IdP's discovery document, never build new ones.

use std::fmt;

/// An absolute `http` or `https` URL, split.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    pub scheme: Scheme,
    /// `host` or `host:port`, host lower-cased, exactly as the URL names it.
    pub authority: String,
    /// Path and query, always starting with `/`.
    pub path_and_query: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UrlError {
    NotHttp,
    NoHost,
    UserInfo,
    BadCharacter,
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UrlError::NotHttp => "must be an absolute http:// or https:// URL",
            UrlError::NoHost => "has no host",
            UrlError::UserInfo => "must not carry user:password@",
            UrlError::BadCharacter => "contains whitespace or control characters",
        })
    }
}

impl Url {
    pub fn parse(s: &str) -> Result<Url, UrlError> {
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(UrlError::BadCharacter);
        }
        let (scheme, rest) = if let Some(rest) = strip_prefix_ignore_case(s, "https://") {
            (Scheme::Https, rest)
        } else if let Some(rest) = strip_prefix_ignore_case(s, "http://") {
            (Scheme::Http, rest)
        } else {
            return Err(UrlError::NotHttp);
        };
        // The fragment never goes on the wire.
        let rest = rest.split('#').next().unwrap_or_default();
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        if authority.contains('@') {
            return Err(UrlError::UserInfo);
        }
        if authority.is_empty() || authority.starts_with(':') {
            return Err(UrlError::NoHost);
        }
        let path_and_query = if tail.starts_with('/') {
            tail.to_string()
        } else {
            format!("/{tail}")
        };
        Ok(Url {
            scheme,
            authority: authority.to_ascii_lowercase(),
            path_and_query,
        })
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}{}",
            self.scheme.as_str(),
            self.authority,
            self.path_and_query
        )
    }
}

impl Url {
    /// The path without the query.
    pub fn path(&self) -> &str {
        self.path_and_query.split('?').next().unwrap_or_default()
    }

    /// This URL with query parameters appended.
    pub fn with_query(&self, params: &[(&str, &str)]) -> String {
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.extend_pairs(params);
        let sep = if self.path_and_query.contains('?') {
            '&'
        } else {
            '?'
        };
        format!("{self}{sep}{}", form.finish())
    }
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| s.get(prefix.len()..))
        .flatten()
}

/// `path` with every valid `%XX` escape decoded (others kept as they are),
/// or `None` when it holds no valid escape. (Paths read for what an
/// upstream would make of them; Basic credentials sent form-encoded.)
pub(crate) fn percent_decode(path: &[u8]) -> Option<Vec<u8>> {
    fn hex(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    }
    if !path.contains(&b'%') {
        return None;
    }
    let mut out = Vec::with_capacity(path.len());
    let mut changed = false;
    let mut rest = path;
    while let Some((&b, tail)) = rest.split_first() {
        if b == b'%'
            && let [h, l, after @ ..] = tail
            && let (Some(h), Some(l)) = (hex(*h), hex(*l))
        {
            out.push((h << 4) | l);
            changed = true;
            rest = after;
        } else {
            out.push(b);
            rest = tail;
        }
    }
    changed.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_authority_with_and_without_port() {
        let u = Url::parse("https://Cognito-IDP.us-west-1.amazonaws.com/pool_1").unwrap();
        assert_eq!(u.scheme, Scheme::Https);
        assert_eq!(u.authority, "cognito-idp.us-west-1.amazonaws.com");
        assert_eq!(u.path_and_query, "/pool_1");
        let u = Url::parse("http://127.0.0.1:3000").unwrap();
        assert_eq!(u.authority, "127.0.0.1:3000");
        assert_eq!(u.path_and_query, "/");
        let u = Url::parse("http://h:1?x=1#frag").unwrap();
        assert_eq!(u.path_and_query, "/?x=1");
    }

    #[test]
    fn refuses_what_is_not_a_plain_http_url() {
        assert_eq!(Url::parse("ftp://x/"), Err(UrlError::NotHttp));
        assert_eq!(Url::parse("idp.example.com"), Err(UrlError::NotHttp));
        assert_eq!(Url::parse("https:///path"), Err(UrlError::NoHost));
        assert_eq!(Url::parse("https://:443/"), Err(UrlError::NoHost));
        assert_eq!(Url::parse("https://u:p@h/"), Err(UrlError::UserInfo));
        assert_eq!(Url::parse("https://h/ x"), Err(UrlError::BadCharacter));
    }
}
