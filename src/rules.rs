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
    /// As `bypass_paths`: `$` exact, else a prefix at a `/` boundary.
    pub paths: Vec<String>,
    /// Upper-case method names.
    pub methods: Vec<String>,
    /// Envoy route names (`xds.route_name`), exact.
    pub route_names: Vec<String>,
}

impl Match {
    pub fn matches(&self, req: &RequestView) -> bool {
        (self.methods.is_empty() || self.methods.iter().any(|m| m == req.method()))
            && (self.hosts.is_empty() || self.host_matches(req))
            && (self.paths.is_empty() || crate::flow::bypasses(&self.paths, req.path()))
            && (self.route_names.is_empty()
                || req
                    .route_name()
                    .is_some_and(|r| self.route_names.iter().any(|n| n == r)))
    }

    fn host_matches(&self, req: &RequestView) -> bool {
        let host = req.host().to_ascii_lowercase();
        self.hosts.iter().any(|h| match h.strip_prefix("*.") {
            Some(suffix) => host
                .strip_suffix(suffix)
                .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.')),
            None => *h == host,
        })
    }
}
