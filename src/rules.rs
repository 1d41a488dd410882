//! `rules`: per-route overrides in one filter (a Kong user's plugins per
//! route). A rule matches on host, path, method and Envoy route name;
//! every listed condition
//! must hold, an absent one matches all; the first rule that matches gives
//! the request's configuration, built at load from the top-level keys with
//! the rule's overrides, so choosing costs no parsing per request. No rule
//! matching: the top-level configuration.

use crate::request::RequestView;

/// What a rule matches, precomputed at load.
#[derive(Debug, Clone, Default)]
pub struct Match {
    /// Lower-cased host names; `*.example.com` matches any subdomain.
    pub hosts: Vec<String>,
    /// As `bypass_paths`: `$` exact, `*` any path that starts so, else a
    /// prefix at a `/` boundary.
    pub paths: Vec<String>,
    /// Upper-case method names.
    pub methods: Vec<String>,
    /// Envoy route names (`xds.route_name`), exact.
    pub route_names: Vec<String>,
}

impl Match {
    /// `path`: the request's path as `paths` are matched against (its own,
    /// or as a Java server reads it); `None` when it could be read
    /// differently upstream (decided once per request, not per rule): it
    /// matches no `paths`.
    pub fn matches(&self, req: &RequestView, path: Option<&str>) -> bool {
        (self.paths.is_empty()
            || path.is_some_and(|p| crate::flow::matches_entries(&self.paths, p)))
            && self.matches_but_paths(req)
    }

    /// Whether every condition but `paths` holds: a rule that some reading
    /// of the path could make match.
    pub fn matches_but_paths(&self, req: &RequestView) -> bool {
        (self.methods.is_empty() || self.methods.iter().any(|m| m == req.method()))
            && (self.hosts.is_empty() || self.host_matches(req))
            && (self.route_names.is_empty()
                || req
                    .route_name()
                    .is_some_and(|r| self.route_names.iter().any(|n| n == r)))
    }

    fn host_matches(&self, req: &RequestView) -> bool {
        self.covers_host(req.host())
    }

    /// Whether `host` is one of `hosts`. They are lower case (at load);
    /// `host` is compared without case, with no copy.
    pub fn covers_host(&self, host: &str) -> bool {
        self.hosts.iter().any(|h| match h.strip_prefix("*.") {
            Some(suffix) => host
                .len()
                .checked_sub(suffix.len())
                .filter(|&at| at > 1 && host.is_char_boundary(at))
                .is_some_and(|at| {
                    host[at..].eq_ignore_ascii_case(suffix) && host[..at].ends_with('.')
                }),
            None => h.eq_ignore_ascii_case(host),
        })
    }
}
