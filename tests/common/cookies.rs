//! Reading the `Set-Cookie` headers the filter sends, as a browser would.

/// One `Set-Cookie` header: name, value and its attributes as written.
#[derive(Debug, Clone)]
pub struct SetCookie {
    pub name: String,
    pub value: String,
    /// Attributes in order, e.g. `["Path=/", "HttpOnly", "SameSite=Lax"]`.
    pub attributes: Vec<String>,
}

impl SetCookie {
    pub fn parse(header: &str) -> SetCookie {
        let mut parts = header.split(';').map(str::trim);
        let (name, value) = parts
            .next()
            .and_then(|p| p.split_once('='))
            .unwrap_or_else(|| panic!("Set-Cookie without name=value: {header:?}"));
        SetCookie {
            name: name.to_owned(),
            value: value.to_owned(),
            attributes: parts.map(str::to_owned).collect(),
        }
    }

    pub fn has(&self, attribute: &str) -> bool {
        self.attributes.iter().any(|a| a == attribute)
    }

    /// `Max-Age`, if set.
    pub fn max_age(&self) -> Option<u64> {
        self.attributes
            .iter()
            .find_map(|a| a.strip_prefix("Max-Age="))
            .map(|v| v.parse().unwrap_or_else(|_| panic!("Max-Age {v:?}")))
    }

    /// A deletion: empty value, `Max-Age=0`.
    pub fn clears(&self) -> bool {
        self.value.is_empty() && self.max_age() == Some(0)
    }
}

/// Every `Set-Cookie` among `values`.
pub fn parse_all(values: &[String]) -> Vec<SetCookie> {
    values.iter().map(|v| SetCookie::parse(v)).collect()
}

/// The one cookie named `name` among `cookies`; panics unless exactly one.
pub fn named<'a>(cookies: &'a [SetCookie], name: &str) -> &'a SetCookie {
    let found: Vec<&SetCookie> = cookies.iter().filter(|c| c.name == name).collect();
    match found.as_slice() {
        [one] => one,
        _ => panic!("expected one Set-Cookie {name}, found {cookies:?}"),
    }
}
