//! Several openid-connect plugins, one per Kong route, as one filter
//! configuration: the whole filter's keys (issuer, client, session, IdP)
//! must agree; the per-request keys every plugin shares stay top-level and
//! each route gets a rule with its own. A route without the plugin becomes
//! a `bypass` rule, as Kong runs nothing on it.

use envoy_oidc::config::{Config, RULE_KEYS};
use serde_json::{Map, Value, json};

use crate::convert::{self, Conversion, Converted};
use crate::routes::{Route, Routed};

/// A plugin converted on its own, with the ways in it turns on.
struct One {
    name: String,
    config: Map<String, Value>,
    auth_methods: Value,
}

/// Whole-filter keys whose lists are joined across plugins rather than
/// required equal: a login uses the URI of the request's host, so every
/// route's callback can stay.
const JOINED: &[&str] = &["redirect_uri"];

/// Whole-filter keys a plugin may leave out while another sets them: they
/// only make a way in possible (the client for the code flow, its callback
/// and session), and each route's rule names its own ways in. Any other
/// whole-filter key left out means its default, which must then be what
/// the others set.
const OPTIONAL: &[&str] = &[
    "client_id",
    "client_secret",
    "redirect_uri",
    "session_secret",
    "idp_clusters",
];

/// The configuration for every route, and the name of its resources: the
/// plugin's when one plugin runs on every route (no rules needed then).
pub fn merge(routed: &Routed, o: &Conversion) -> Result<(String, Converted), String> {
    if let Some(Some(name)) = routed.routes.first().map(|r| r.plugin.as_ref())
        && routed
            .routes
            .iter()
            .all(|r| r.plugin.as_ref() == Some(name))
    {
        let plugin = routed
            .plugin(name)
            .ok_or_else(|| format!("no openid-connect plugin `{name}`"))?;
        let mut c = convert::convert(plugin, o)?;
        c.notes.splice(0..0, routed.notes.iter().cloned());
        return Ok((name.clone(), c));
    }
    rules(routed, o).map(|c| ("envoy-oidc".to_string(), c))
}

fn rules(routed: &Routed, o: &Conversion) -> Result<Converted, String> {
    let mut notes = routed.notes.clone();
    let mut clusters: Vec<(String, String)> = Vec::new();
    let mut used: Vec<One> = Vec::new();
    for route in &routed.routes {
        let Some(name) = &route.plugin else { continue };
        if used.iter().any(|u| u.name == *name) {
            continue;
        }
        let plugin = routed
            .plugin(name)
            .ok_or_else(|| format!("{}: no openid-connect plugin `{name}`", route.name))?;
        let c = convert::convert(plugin, o).map_err(|e| format!("plugin `{name}`: {e}"))?;
        for n in c.notes {
            if !notes.contains(&n) {
                notes.push(n);
            }
        }
        for cl in c.clusters {
            if !clusters.contains(&cl) {
                clusters.push(cl);
            }
        }
        let config = c.config.as_object().cloned().unwrap_or_default();
        let parsed = Config::parse(&serde_json::to_vec(&c.config).unwrap_or_default())
            .map_err(|e| format!("plugin `{name}`: {e}"))?;
        used.push(One {
            name: name.clone(),
            config,
            auth_methods: json!(parsed.config.auth_methods.names()),
        });
    }
    if used.is_empty() {
        return Err("no route runs an openid-connect plugin".to_string());
    }

    let mut top = whole_filter_keys(&used, &mut notes)?;
    // Per-request keys every plugin sets alike stay top-level.
    let is_rule_key = |k: &str| RULE_KEYS.contains(&k);
    for (key, value) in &used[0].config {
        if is_rule_key(key) && used.iter().all(|u| u.config.get(key) == Some(value)) {
            top.insert(key.clone(), value.clone());
        }
    }
    // Each plugin's ways in, made explicit: a route whose plugin had no
    // client_id keeps the code flow off though another plugin brings one.
    let methods = &used[0].auth_methods;
    if used.iter().all(|u| u.auth_methods == *methods) {
        top.insert("auth_methods".into(), methods.clone());
    }

    let mut rules = Vec::new();
    let mut bypassed = Vec::new();
    for route in &routed.routes {
        let mut rule = Map::new();
        rule.insert("match".into(), matcher(route));
        match &route.plugin {
            None => {
                rule.insert("bypass".into(), Value::Bool(true));
                bypassed.push(route.name.clone());
            }
            Some(name) => {
                let one = used.iter().find(|u| u.name == *name).ok_or("plugin")?;
                for (key, value) in &one.config {
                    if is_rule_key(key) && top.get(key) != Some(value) {
                        rule.insert(key.clone(), value.clone());
                    }
                }
                if top.get("auth_methods") != Some(&one.auth_methods) {
                    rule.insert("auth_methods".into(), one.auth_methods.clone());
                }
            }
        }
        rules.push(Value::Object(rule));
    }
    if !bypassed.is_empty() {
        notes.push(format!(
            "no openid-connect plugin on {}: their rules bypass authentication, as in Kong",
            bypassed.join(", ")
        ));
    }
    notes.push(format!(
        "a request matching none of the {} routes gets the top-level keys (what every plugin \
         shares{}); Kong answers such a request 404 before any plugin: keep Envoy's routes the \
         same as Kong's",
        routed.routes.len(),
        top.get("auth_methods")
            .map(|m| format!(", auth_methods {m}"))
            .unwrap_or_default()
    ));
    top.insert("rules".into(), Value::Array(rules));

    let config = Value::Object(top);
    if let Err(e) = Config::parse(&serde_json::to_vec(&config).unwrap_or_default()) {
        return Err(format!(
            "the merged configuration is refused by the filter: {e}"
        ));
    }
    Ok(Converted {
        config,
        clusters,
        notes,
    })
}

/// The keys of the whole filter: equal in every plugin that sets them
/// (else reported: one filter has one issuer, one client, one session).
fn whole_filter_keys(used: &[One], notes: &mut Vec<String>) -> Result<Map<String, Value>, String> {
    let mut top = Map::new();
    let mut conflicts = Vec::new();
    for one in used {
        for (key, value) in &one.config {
            if RULE_KEYS.contains(&key.as_str()) {
                continue;
            }
            match top.get_mut(key) {
                None => {
                    top.insert(key.clone(), value.clone());
                }
                Some(have) if have == value => {}
                Some(Value::Array(have)) if JOINED.contains(&key.as_str()) => {
                    for v in value.as_array().into_iter().flatten() {
                        if !have.contains(v) {
                            have.push(v.clone());
                        }
                    }
                }
                Some(Value::Object(have)) if key == "idp_clusters" => {
                    for (k, v) in value.as_object().into_iter().flatten() {
                        have.insert(k.clone(), v.clone());
                    }
                }
                Some(have) => {
                    let first = used
                        .iter()
                        .find(|u| u.config.get(key) == Some(&*have))
                        .map_or("", |u| u.name.as_str());
                    conflicts.push(format!(
                        "`{key}`: {first} sets {have}, {} sets {value}",
                        one.name
                    ));
                }
            }
        }
    }
    for (key, value) in &top {
        if OPTIONAL.contains(&key.as_str()) {
            continue;
        }
        if let Some(without) = used.iter().find(|u| !u.config.contains_key(key)) {
            let with = used
                .iter()
                .find(|u| u.config.contains_key(key))
                .map_or("", |u| u.name.as_str());
            conflicts.push(format!(
                "`{key}`: {with} sets {value}, {} leaves it unset",
                without.name
            ));
        }
    }
    if !conflicts.is_empty() {
        return Err(format!(
            "the plugins differ in keys that are the whole filter's, not per route (one filter \
             has one issuer, client and session): {}; align them, or convert the routes that \
             differ into a filter of their own (--name picks one plugin)",
            conflicts.join("; ")
        ));
    }
    if let Some(Value::Array(uris)) = top.get("redirect_uri")
        && uris.len() > 1
    {
        notes.push(
            "redirect_uri: the routes' callback URIs are joined; a login comes back to the \
             first one on the request's host"
                .to_string(),
        );
    }
    Ok(top)
}

fn matcher(route: &Route) -> Value {
    let mut m = Map::new();
    for (key, list) in [
        ("hosts", &route.hosts),
        ("paths", &route.paths),
        ("methods", &route.methods),
        ("route_names", &route.route_names),
    ] {
        if !list.is_empty() {
            m.insert(key.into(), json!(list));
        }
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::read;

    const ISSUER: &str = "https://idp.example.com";

    fn merged(yaml: &str) -> Result<Converted, String> {
        merge(&read(yaml).unwrap().unwrap(), &Conversion::default()).map(|(_, c)| c)
    }

    #[test]
    fn per_route_keys_become_rules_and_shared_ones_stay_top_level() {
        let deck = format!(
            r#"
_format_version: "3.0"
services:
  - name: shop
    routes:
      - name: api
        paths: [/api]
        plugins:
          - name: openid-connect
            config: {{issuer: "{ISSUER}", auth_methods: [bearer], scopes_required: [write], leeway: 5}}
      - name: admin
        paths: [/admin]
        plugins:
          - name: openid-connect
            config: {{issuer: "{ISSUER}", auth_methods: [bearer], groups_required: [admins], leeway: 5}}
      - name: public
        paths: [/public]
"#
        );
        let c = merged(&deck).unwrap();
        let cfg = &c.config;
        assert_eq!(cfg["leeway"], json!(5));
        assert_eq!(cfg["auth_methods"], json!(["bearer"]));
        assert!(cfg.get("scopes_required").is_none());
        let rules = cfg["rules"].as_array().unwrap();
        assert_eq!(
            rules[0],
            json!({"match": {"paths": ["/public*"]}, "bypass": true})
        );
        assert_eq!(
            rules[1],
            json!({"match": {"paths": ["/admin*"]}, "groups_required": ["admins"]})
        );
        assert_eq!(
            rules[2],
            json!({"match": {"paths": ["/api*"]}, "scopes_required": ["write"]})
        );
        assert!(
            c.notes.iter().any(|n| n.contains("route public")),
            "{:?}",
            c.notes
        );
    }

    /// A deck file with routes /a and /b, each with a plugin of `config`
    /// (YAML flow mappings, without braces).
    fn two_routes(a: &str, b: &str) -> String {
        format!(
            "_format_version: '3.0'\nroutes:\n\
             - {{name: a, paths: [/a], plugins: [{{name: openid-connect, config: {{issuer: '{ISSUER}', {a}}}}}]}}\n\
             - {{name: b, paths: [/b], plugins: [{{name: openid-connect, config: {{issuer: '{ISSUER}', {b}}}}}]}}\n"
        )
    }

    #[test]
    fn the_whole_filters_keys_must_agree() {
        let e = merged(&two_routes(
            "client_id: [one], client_secret: [s]",
            "client_id: [two], client_secret: [s]",
        ))
        .unwrap_err();
        assert!(
            e.contains("`client_id`") && e.contains("route a") && e.contains("route b"),
            "{e}"
        );
        // Left out, Kong's default (0) is written for it.
        let e = merged(&two_routes("leeway: 5", "scopes_required: [x]")).unwrap_err();
        assert!(
            e.contains("`leeway`") && e.contains("route b sets 0"),
            "{e}"
        );
    }

    /// The seed's two plugins on two routes: the client-credentials one
    /// has no client of its own, so its route keeps the code flow off.
    #[test]
    fn a_plugin_without_a_client_keeps_its_own_ways_in() {
        let deck = format!(
            r#"
_format_version: "3.0"
routes:
  - name: cc
    paths: [/cc]
    plugins: [{{name: openid-connect, config: {{issuer: "{ISSUER}", scopes: [s1]}}}}]
  - name: web
    paths: [/web]
    plugins:
      - name: openid-connect
        config: {{issuer: "{ISSUER}", scopes: [s1], client_id: [c], client_secret: [s],
                  redirect_uri: ["https://gw.example.com/web/cb"]}}
"#
        );
        let c = merged(&deck).unwrap();
        let rules = c.config["rules"].as_array().unwrap();
        let cc = rules
            .iter()
            .find(|r| r["match"]["paths"] == json!(["/cc*"]))
            .unwrap();
        let web = rules
            .iter()
            .find(|r| r["match"]["paths"] == json!(["/web*"]))
            .unwrap();
        let methods = |r: &Value| -> Vec<String> {
            serde_json::from_value(r["auth_methods"].clone()).unwrap()
        };
        assert!(
            !methods(cc).contains(&"authorization_code".to_string()),
            "{cc}"
        );
        assert!(
            methods(web).contains(&"authorization_code".to_string()),
            "{web}"
        );
        assert_eq!(c.config["client_id"], json!(["c"]));
    }

    /// Kong's suffix wildcard (`example.*`) has no rule equivalent: the
    /// merged configuration is refused, naming the field, not written to
    /// match nothing.
    #[test]
    fn a_host_wildcard_rules_cannot_express_is_refused() {
        let deck = two_routes("scopes_required: [a]", "scopes_required: [b]")
            .replace("paths: [/a]", "paths: [/a], hosts: ['example.*']");
        let e = merged(&deck).unwrap_err();
        assert!(e.contains("match.hosts") && e.contains("example.*"), "{e}");
    }

    #[test]
    fn redirect_uris_of_the_routes_are_joined() {
        let c = merged(&two_routes(
            "client_id: [c], client_secret: [s], redirect_uri: ['https://a.example.com/a']",
            "client_id: [c], client_secret: [s], redirect_uri: ['https://b.example.com/b']",
        ))
        .unwrap();
        assert_eq!(
            c.config["redirect_uri"],
            json!(["https://a.example.com/a", "https://b.example.com/b"])
        );
    }
}
