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

/// DESIGN.md's rules: an entry ending in `$` is an exact path, any other a
/// prefix that matches at a `/` boundary; the query is ignored; a path that
/// could be read differently upstream (dot segments, encoded dots or
/// slashes, backslashes) never bypasses.
pub fn bypasses(entries: &[String], path: &str) -> bool {
    if entries.is_empty() {
        return false;
    }
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let lower = path.to_ascii_lowercase();
    if lower.contains("..")
        || lower.contains("%2e")
        || lower.contains("%2f")
        || lower.contains("%5c")
        || lower.contains('\\')
    {
        return false;
    }
    entries.iter().any(|entry| match entry.strip_suffix('$') {
        Some(exact) => path == exact,
        None => {
            let prefix = entry.trim_end_matches('/');
            path == prefix
                || path
                    .strip_prefix(prefix)
                    .is_some_and(|rest| rest.starts_with('/'))
        }
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
}
