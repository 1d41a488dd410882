//! Kong's claim semantics, shared by every `*_required` / `*_claim` pair:
//! a claim path walks nested objects; a string claim is split on spaces, an
//! array is taken as is; a requirement list passes when any one entry
//! passes, and an entry passes when all its space-separated values are
//! present.

use std::borrow::Cow;

use serde_json::Value;

use crate::oidc::claims::Claims;

/// A path into nested claims, e.g. `["realm_access", "roles"]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimPath(Vec<String>);

impl ClaimPath {
    pub fn new(segments: Vec<String>) -> Option<ClaimPath> {
        (!segments.is_empty() && segments.iter().all(|s| !s.is_empty()))
            .then_some(ClaimPath(segments))
    }

    /// The claim's value, if every segment of the path exists.
    pub fn lookup<'a>(&self, claims: &'a Claims) -> Option<&'a Value> {
        let (first, rest) = self.0.split_first()?;
        rest.iter()
            .try_fold(claims.get(first)?, |v, seg| v.as_object()?.get(seg))
    }

    /// The claim's values as a set of strings: a string is split on spaces,
    /// an array contributes its string and number elements (a number as
    /// its JSON text: numeric group ids are values like any other).
    pub fn values<'a>(&self, claims: &'a Claims) -> Vec<Cow<'a, str>> {
        match self.lookup(claims) {
            Some(Value::String(s)) => s
                .split(' ')
                .filter(|v| !v.is_empty())
                .map(Cow::Borrowed)
                .collect(),
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|v| match v {
                    Value::String(s) => Some(Cow::Borrowed(s.as_str())),
                    Value::Number(n) => Some(Cow::Owned(n.to_string())),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// A `*_required` list: any entry passes; within an entry, all values.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Requirement(Vec<Vec<String>>);

impl Requirement {
    pub fn parse(entries: &[String]) -> Result<Requirement, String> {
        entries
            .iter()
            .map(|e| {
                let values: Vec<String> = e
                    .split(' ')
                    .filter(|v| !v.is_empty())
                    .map(str::to_string)
                    .collect();
                if values.is_empty() {
                    Err("entries must not be empty".to_string())
                } else {
                    Ok(values)
                }
            })
            .collect::<Result<_, _>>()
            .map(Requirement)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `is_met_by` the values at `path` in `claims`, read only when something
    /// is required (this runs on every request).
    pub fn is_met_in(&self, path: &ClaimPath, claims: &Claims) -> bool {
        self.is_empty() || self.is_met_by(&path.values(claims))
    }

    /// True when nothing is required or some entry is wholly present.
    pub fn is_met_by(&self, present: &[impl AsRef<str>]) -> bool {
        self.0.is_empty()
            || self.0.iter().any(|entry| {
                entry
                    .iter()
                    .all(|v| present.iter().any(|p| p.as_ref() == v))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: Value) -> Claims {
        Claims::parse(v.to_string().into()).unwrap()
    }

    fn req(entries: &[&str]) -> Requirement {
        Requirement::parse(&entries.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn claim_path_walks_nested_objects_and_splits_strings() {
        let c = claims(
            json!({"scope": "a b  c", "realm_access": {"roles": ["admin", "dev"]},
                              "groups": ["ops", 42, 1.5, true, null, ["x"]], "n": 5}),
        );
        let scope = ClaimPath::new(vec!["scope".into()]).unwrap();
        assert_eq!(scope.values(&c), vec!["a", "b", "c"]);
        let roles = ClaimPath::new(vec!["realm_access".into(), "roles".into()]).unwrap();
        assert_eq!(roles.values(&c), vec!["admin", "dev"]);
        let groups = ClaimPath::new(vec!["groups".into()]).unwrap();
        assert_eq!(groups.values(&c), vec!["ops", "42", "1.5"]);
        assert!(req(&["42"]).is_met_in(&groups, &c));
        let n = ClaimPath::new(vec!["n".into()]).unwrap();
        assert!(n.values(&c).is_empty(), "a lone number is no list");
        let missing = ClaimPath::new(vec!["realm_access".into(), "nope".into()]).unwrap();
        assert!(missing.values(&c).is_empty());
        let not_object = ClaimPath::new(vec!["scope".into(), "x".into()]).unwrap();
        assert!(not_object.lookup(&c).is_none());
        assert!(ClaimPath::new(vec![]).is_none());
        assert!(ClaimPath::new(vec!["".into()]).is_none());
    }

    #[test]
    fn requirement_any_entry_all_values() {
        let r = req(&["read write", "admin"]);
        assert!(r.is_met_by(&["read", "write"]));
        assert!(r.is_met_by(&["admin"]));
        assert!(!r.is_met_by(&["read"]));
        assert!(!r.is_met_by(&[] as &[&str]));
        assert!(req(&[]).is_met_by(&[] as &[&str]));
        assert!(Requirement::parse(&["  ".to_string()]).is_err());
    }
}
