//! Kong openid-connect parameters → envoy-oidc configuration.
//!
//! The tables below are the migration table of docs/kong-migration.md.

use serde::Deserialize;
use serde_json::{Map, Value, json};

/// Kong parameters whose name and meaning are the same in envoy-oidc.
pub const SAME: &[&str] = &[
    "issuer",
    "client_id",
    "client_secret",
    "redirect_uri",
    "scopes",
    "scopes_required",
    "scopes_claim",
    "audience_required",
    "audience_claim",
    "groups_required",
    "groups_claim",
    "roles_required",
    "roles_claim",
    "claims_forbidden",
    "auth_methods",
    "leeway",
    "session_secret",
    "session_cookie_name",
    "session_cookie_secure",
    "session_cookie_same_site",
    "session_cookie_domain",
    "session_cookie_path",
    "session_idling_timeout",
    "session_rolling_timeout",
    "session_absolute_timeout",
    "end_session_endpoint",
    "logout_methods",
    "logout_query_arg",
    "logout_uri_suffix",
    "logout_revoke",
    "logout_revoke_access_token",
    "logout_revoke_refresh_token",
    "revocation_endpoint",
    "introspection_endpoint",
    "introspection_hint",
    "run_on_preflight",
    "upstream_access_token_header",
    "upstream_headers_claims",
    "upstream_headers_names",
    "hide_credentials",
    "issuers_allowed",
    "search_user_info",
    "audience",
    "authorization_query_args_names",
    "authorization_query_args_values",
    "authorization_query_args_client",
    "token_post_args_names",
    "token_post_args_values",
    "token_post_args_client",
    "domains",
    "client_auth",
    "client_jwk",
    "client_alg",
    "token_endpoint_auth_method",
    "introspection_endpoint_auth_method",
    "revocation_endpoint_auth_method",
    "anonymous",
    "unauthorized_redirect_uri",
    "forbidden_redirect_uri",
    "bearer_token_cookie_name",
    "upstream_id_token_header",
    "upstream_user_info_header",
    "upstream_introspection_header",
    "upstream_refresh_token_header",
    "upstream_session_id_header",
    "downstream_access_token_header",
    "downstream_id_token_header",
    "downstream_user_info_header",
    "downstream_introspection_header",
    "downstream_refresh_token_header",
    "downstream_session_id_header",
    "downstream_headers_claims",
    "downstream_headers_names",
];

/// Keys carried over whose meaning here differs from Kong's in some
/// respect: each present one gets a note saying how.
const DIFFERENT: &[(&str, &str)] = &[
    (
        "anonymous",
        "sent to the upstream as X-Consumer-ID as it is (Envoy has no consumer to look it up); a browser without credentials is still sent to login when the code flow is on; a 403 stays a 403 (Kong lets it pass as anonymous too)",
    ),
    (
        "unauthorized_redirect_uri",
        "only browsers navigating are redirected (API clients get the 401), to the first URI",
    ),
    (
        "forbidden_redirect_uri",
        "only browsers navigating are redirected (API clients get the 403), to the first URI",
    ),
    (
        "client_auth",
        "only the first entry is used (the gateway's own client is the first client_id)",
    ),
    (
        "client_jwk",
        "required for private_key_jwt (Kong generates a key when absent); only the first key is used",
    ),
    (
        "session_rolling_timeout",
        "a session in use is renewed once half of the period has passed",
    ),
    (
        "session_secret",
        "each secret must be at least 32 bytes; the first seals, all open",
    ),
    (
        "search_user_info",
        "the token's own claims win over userinfo's of the same name; userinfo's claims also count toward the *_required checks (Kong's checks read the token and introspection only)",
    ),
    (
        "upstream_user_info_header",
        "carries userinfo only for requests whose token went to the userinfo endpoint (search_user_info, or auth_methods userinfo); Kong calls userinfo just to fill it",
    ),
    (
        "downstream_user_info_header",
        "carries userinfo only for requests whose token went to the userinfo endpoint (search_user_info, or auth_methods userinfo); Kong calls userinfo just to fill it",
    ),
    (
        "upstream_introspection_header",
        "carries the answer only for tokens that were introspected (opaque ones, or any without bearer in auth_methods); Kong introspects just to fill it",
    ),
    (
        "downstream_introspection_header",
        "carries the answer only for tokens that were introspected (opaque ones, or any without bearer in auth_methods); Kong introspects just to fill it",
    ),
    (
        "upstream_headers_claims",
        "each claim is looked up in the access token's claims (joined with userinfo's under search_user_info), then in a session's ID token; Kong looks in the ID token before userinfo",
    ),
    (
        "downstream_headers_claims",
        "each claim is looked up in the access token's claims (joined with userinfo's under search_user_info), then in a session's ID token; Kong looks in the ID token before userinfo",
    ),
    (
        "issuers_allowed",
        "each entry is an issuer of its own, with its own discovery and keys: a token of another listed issuer, signed with that issuer's keys, passes (in Kong the list only widens the iss check; keys still come from issuer and extra_jwks_uris)",
    ),
];

/// Where credentials come from: the same keys, Kong's default made
/// explicit (ours differs) and `body` dropped (unsupported here).
const PLACES: [&str; 2] = ["bearer_token_param_type", "client_credentials_param_type"];

/// Kong parameters read into another key of ours: (kong, ours). Kong's
/// `refresh_tokens` (refresh the session's tokens, default true) is our
/// `auth_methods` entry `refresh_token`; see `session_refresh`.
pub const FOLDED: &[(&str, &str)] = &[("refresh_tokens", "auth_methods")];

/// Kong parameters with another name here: (kong, ours).
pub const RENAMED: &[(&str, &str)] = &[
    ("timeout", "idp_timeout_ms"),
    ("logout_redirect_uri", "post_logout_redirect_uri"),
];

/// Kong parameters that change nothing here when left at the value given
/// (then dropped with a note; any other value is unsupported).
fn no_op(key: &str, v: &Value) -> Option<&'static str> {
    let (value, why): (Value, &str) = match key {
        "ssl_verify" => (
            json!(true),
            "TLS to the IdP is the Envoy cluster's (Istio: DestinationRule) business",
        ),
        "verify_signature" | "verify_claims" | "verify_nonce" => (json!(true), "always verified"),
        "display_errors" => (json!(false), "error details are never shown to clients"),
        "cache_ttl" => (
            v.clone(),
            "discovery and JWKS are cached (24 h and 1 h, refetched on an unknown kid), tokens until exp (at most until the JWKS is fetched again)",
        ),
        _ => return None,
    };
    (*v == value).then_some(why)
}

/// How IdP clusters are named in the output.
#[derive(Debug, Clone, Default)]
pub enum ClusterNaming {
    /// Istio's `outbound|<port>||<host>` per host (`idp_clusters`).
    #[default]
    Istio,
    /// One cluster for every IdP URL (`idp_cluster`).
    Single(String),
}

#[derive(Debug, Clone, Default)]
pub struct Conversion {
    pub extra_hosts: Vec<String>,
    pub naming: ClusterNaming,
    pub ignore_unsupported: bool,
}

/// One KongPlugin of the input.
#[derive(Debug, Clone)]
pub struct KongPlugin {
    pub name: String,
    pub config: Map<String, Value>,
}

#[derive(Debug, Clone)]
pub struct Converted {
    pub config: Value,
    /// IdP hosts (authorities) the filter calls, each with its cluster.
    pub clusters: Vec<(String, String)>,
    pub notes: Vec<String>,
}

#[derive(Deserialize)]
struct Doc {
    kind: Option<String>,
    metadata: Option<Metadata>,
    plugin: Option<String>,
    config: Option<Map<String, Value>>,
}

#[derive(Deserialize)]
struct Metadata {
    name: Option<String>,
}

/// Finds the openid-connect KongPlugin in a YAML stream.
pub fn find_plugin(text: &str, name: Option<&str>) -> Result<KongPlugin, String> {
    let mut found = Vec::new();
    for (i, de) in serde_norway::Deserializer::from_str(text).enumerate() {
        let v = Value::deserialize(de).map_err(|e| format!("YAML document {}: {e}", i + 1))?;
        if v.is_null() {
            continue;
        }
        let doc: Doc = serde_json::from_value(v)
            .map_err(|e| format!("YAML document {}: not a KongPlugin: {e}", i + 1))?;
        if let Some(kind) = &doc.kind
            && kind != "KongPlugin"
            && kind != "KongClusterPlugin"
        {
            continue;
        }
        if doc.plugin.as_deref() != Some("openid-connect") {
            continue;
        }
        let plugin_name = doc
            .metadata
            .and_then(|m| m.name)
            .unwrap_or_else(|| "envoy-oidc".to_string());
        found.push(KongPlugin {
            name: plugin_name,
            config: doc.config.unwrap_or_default(),
        });
    }
    match name {
        Some(n) => found
            .into_iter()
            .find(|p| p.name == n)
            .ok_or_else(|| format!("no openid-connect KongPlugin named {n}")),
        None => match found.len() {
            0 => Err("no KongPlugin with `plugin: openid-connect` found".to_string()),
            1 => Ok(found.remove(0)),
            _ => Err(format!(
                "several openid-connect KongPlugins ({}); pick one with --name",
                found
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        },
    }
}

/// `host` or `host:port` of an http(s) URL, lower-cased; `None` if not one.
fn authority(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let a = rest.split(['/', '?', '#']).next()?;
    (!a.is_empty()).then(|| a.to_ascii_lowercase())
}

fn istio_cluster(authority: &str, https: bool) -> String {
    match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => {
            format!("outbound|{port}||{host}")
        }
        _ => format!("outbound|{}||{authority}", if https { 443 } else { 80 }),
    }
}

fn is_cognito_issuer(authority: &str) -> bool {
    authority.starts_with("cognito-idp.") && authority.ends_with(".amazonaws.com")
}

pub fn convert(plugin: &KongPlugin, o: &Conversion) -> Result<Converted, String> {
    // A key set to null is one left unset in Kong's schema (`deck gateway
    // dump` writes every key so): read as absent, Kong's default.
    let plugin = &KongPlugin {
        name: plugin.name.clone(),
        config: plugin
            .config
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    };
    let mut out = Map::new();
    let mut notes = Vec::new();
    let mut unsupported = Vec::new();

    for (key, value) in &plugin.config {
        // Kong reads an empty client or redirect list as none given (deck
        // dumps may write one); the filter refuses `[]` for these.
        let unset = matches!(key.as_str(), "client_id" | "client_secret" | "redirect_uri")
            && value.as_array().is_some_and(Vec::is_empty);
        if unset {
            continue;
        }
        if SAME.contains(&key.as_str()) {
            out.insert(key.clone(), value.clone());
        } else if let Some((_, ours)) = RENAMED.iter().find(|(k, _)| k == key) {
            let value = match (key.as_str(), value) {
                ("logout_redirect_uri", Value::Array(list)) => {
                    if list.len() > 1 {
                        notes.push(format!(
                            "logout_redirect_uri has {} entries; post_logout_redirect_uri takes the first",
                            list.len()
                        ));
                    }
                    list.first().cloned().unwrap_or(Value::Null)
                }
                _ => value.clone(),
            };
            if !value.is_null() {
                out.insert(ours.to_string(), value);
            }
        } else if PLACES.contains(&key.as_str()) {
            // Converted below, with Kong's default made explicit.
        } else if FOLDED.iter().any(|(k, _)| k == key) {
            // Read below into the key it folds into.
        } else if let Some(why) = no_op(key, value) {
            notes.push(format!("{key} dropped: {why}"));
        } else {
            unsupported.push(key.clone());
        }
    }
    if !unsupported.is_empty() {
        let list = unsupported.join(", ");
        if o.ignore_unsupported {
            notes.push(format!(
                "dropped Kong parameters envoy-oidc does not support: {list}"
            ));
        } else {
            return Err(format!(
                "Kong parameters envoy-oidc does not support: {list} (see docs/kong-migration.md; \
                 --ignore-unsupported drops them)"
            ));
        }
    }

    let issuer = out
        .get("issuer")
        .and_then(Value::as_str)
        .ok_or("the KongPlugin has no `issuer`")?
        .trim()
        .to_string();
    let issuer_authority =
        authority(&issuer).ok_or_else(|| format!("issuer `{issuer}` is not an http(s) URL"))?;
    let https = issuer.starts_with("https://");

    let mut hosts = vec![issuer_authority.clone()];
    for h in &o.extra_hosts {
        let h = h.trim().to_ascii_lowercase();
        let h = authority(&h).unwrap_or(h);
        if !hosts.contains(&h) {
            hosts.push(h);
        }
    }
    let clusters: Vec<(String, String)> = match &o.naming {
        ClusterNaming::Istio => hosts
            .iter()
            .map(|h| (h.clone(), istio_cluster(h, https)))
            .collect(),
        ClusterNaming::Single(name) => hosts.iter().map(|h| (h.clone(), name.clone())).collect(),
    };
    match &o.naming {
        ClusterNaming::Istio => {
            let map: Map<String, Value> = clusters
                .iter()
                .map(|(h, c)| (h.clone(), Value::String(c.clone())))
                .collect();
            out.insert("idp_clusters".to_string(), Value::Object(map));
        }
        ClusterNaming::Single(name) => {
            out.insert("idp_cluster".to_string(), Value::String(name.clone()));
        }
    }

    if is_cognito_issuer(&issuer_authority) && o.extra_hosts.is_empty() {
        notes.push(
            "Cognito serves its token, authorize and logout endpoints on the hosted-UI domain \
             (<domain>.auth.<region>.amazoncognito.com), not the issuer host: add \
             --idp-host <that domain> so the filter has a cluster for it"
                .to_string(),
        );
    }
    if is_cognito_issuer(&issuer_authority)
        && out.get("logout_revoke") == Some(&Value::Bool(true))
        && out.get("revocation_endpoint").is_none_or(Value::is_null)
    {
        notes.push(
            "logout_revoke: Cognito's discovery lists no revocation endpoint, so nothing is \
             revoked: set revocation_endpoint to https://<hosted-UI domain>/oauth2/revoke"
                .to_string(),
        );
    }
    // Kong's default places include the query string and the body; ours
    // are the header only, and the body cannot be read here at all.
    for key in PLACES {
        let given = plugin.config.get(key).and_then(Value::as_array);
        let places: Vec<Value> = match given {
            Some(list) => list.clone(),
            None => vec![json!("header"), json!("query"), json!("body")],
        };
        let kept: Vec<Value> = places.iter().filter(|p| *p != "body").cloned().collect();
        if key == "bearer_token_param_type" && kept.iter().any(|p| p == "header") {
            notes.push(
                "bearer_token_param_type: `header` reads the Authorization header only (Kong \
                 also reads access-token and x-access-token)"
                    .to_string(),
            );
        }
        if given.is_none() {
            notes.push(format!(
                "{key}: Kong's default [header, query, body] written as [header, query] (envoy-oidc's \
                 own default is [header]: tokens in query strings end up in logs; remove `query` if \
                 no client sends it)"
            ));
        } else if kept.len() != places.len() {
            notes.push(format!(
                "{key}: `body` dropped: Envoy's wasm host cannot read the body while it holds the headers"
            ));
        }
        // `body` alone: left out, the key would be our default, the
        // header, which Kong did not read.
        if kept.is_empty() {
            return Err(format!(
                "{key}: only `body`, which Envoy's wasm host cannot read while it holds the \
                 headers; left out, the header would be read instead (not in Kong): choose \
                 header, query or cookie"
            ));
        }
        out.insert(key.to_string(), Value::Array(kept));
    }
    for (key, how) in DIFFERENT {
        if plugin.config.contains_key(*key) {
            notes.push(format!("{key}: differs from Kong: {how}"));
        }
    }
    if !plugin.config.contains_key("auth_methods") {
        notes.push(
            "auth_methods: Kong's default list includes userinfo; envoy-oidc's leaves it out \
             (one IdP call per new opaque token): add auth_methods with \"userinfo\" if opaque \
             bearer tokens must be validated at the userinfo endpoint"
                .to_string(),
        );
    }
    if plugin
        .config
        .get("auth_methods")
        .and_then(Value::as_array)
        .is_some_and(|m| {
            m.iter().any(|v| v == "userinfo") && m.iter().any(|v| v == "introspection")
        })
    {
        notes.push(
            "auth_methods: with both introspection and userinfo, an opaque bearer token is \
             introspected; userinfo validates it only when introspection is not listed"
                .to_string(),
        );
    }
    if plugin.config.contains_key("session_rolling_timeout")
        && !plugin.config.contains_key("session_idling_timeout")
    {
        notes.push(
            "session_idling_timeout: not set, so sessions end after 900 s without a request, \
             as in Kong (envoy-oidc before used session_rolling_timeout as the inactivity limit)"
                .to_string(),
        );
    }
    // Kong's defaults where ours differ, written out: a token Kong refuses
    // at its `exp` must not pass here for 30 s more.
    if !plugin.config.contains_key("leeway") {
        out.insert("leeway".to_string(), json!(0));
        notes.push("leeway: Kong's default 0 s written out (envoy-oidc's own is 30 s)".to_string());
    }
    if !plugin.config.contains_key("timeout") {
        out.insert("idp_timeout_ms".to_string(), json!(10_000));
        notes.push(
            "idp_timeout_ms: Kong's default timeout, 10000 ms, written out (envoy-oidc's own is \
             5000 ms)"
                .to_string(),
        );
    }
    if !plugin.config.contains_key("hide_credentials") {
        notes.push(
            "hide_credentials: envoy-oidc's default is true, as Kong's since 3.14 (client \
             credentials do not reach the upstream; the filter's session cookie never does, as \
             in Kong); Kong before 3.14 defaulted to false: set hide_credentials: false if the \
             upstream reads them"
                .to_string(),
        );
    }

    session_refresh(&plugin.config, &mut out, &mut notes)?;
    // As converted: the code flow may have been left out (no client_id).
    if turns_on(&out, "authorization_code") {
        notes.push(
            "auth_methods: a request without credentials is sent to the login only when a \
             browser navigates (Accept: text/html); other clients get the 401 (Kong starts the \
             login for any)"
                .to_string(),
        );
        // Kong's defaults, where the plugin leaves them (set, they are
        // keys this converter refuses, or drops with --ignore-unsupported).
        let destroys = ["unauthorized_destroy_session", "forbidden_destroy_session"]
            .iter()
            .any(|k| plugin.config.get(*k).is_none_or(|v| v != false));
        if destroys {
            notes.push(
                "sessions: a 401 or 403 leaves the session in place (Kong's \
                 unauthorized_destroy_session and forbidden_destroy_session, true by default, \
                 end it)"
                    .to_string(),
            );
        }
        if !plugin.config.contains_key("login_action") {
            notes.push(
                "sessions: after the login's callback the browser goes back to the page it \
                 started on (Kong's login_action, upstream by default, proxies the callback \
                 request)"
                    .to_string(),
            );
        }
    }
    if turns_on(&out, "client_credentials") && !plugin.config.contains_key("scopes") {
        notes.push(
            "scopes: not set, so a client-credentials exchange asks for no scope (the IdP's \
             default for the client), where Kong asks for openid (which Cognito refuses \
             there): set scopes to ask for some"
                .to_string(),
        );
    }

    let config = Value::Object(out);
    // The filter must accept what we print.
    let bytes = serde_json::to_vec(&config).expect("JSON");
    if let Err(e) = envoy_oidc::config::Config::parse(&bytes) {
        return Err(format!(
            "the converted configuration is refused by the filter: {e}"
        ));
    }
    Ok(Converted {
        config,
        clusters,
        notes,
    })
}

/// Whether the filter turns `method` on for `out` as converted: listed in
/// its `auth_methods`, or, with none, among the defaults its keys allow.
fn turns_on(out: &Map<String, Value>, method: &str) -> bool {
    match out.get("auth_methods").and_then(Value::as_array) {
        Some(methods) => methods.iter().any(|v| v == method),
        None => default_methods(out).is_some_and(|m| m.contains(&method)),
    }
}

/// The ways in the filter turns on for `out` with `auth_methods` left at
/// its default: those whose keys are there (the filter's loader decides).
/// `None` when the filter refuses `out`; the final check reports why.
fn default_methods(out: &Map<String, Value>) -> Option<Vec<&'static str>> {
    let mut config = out.clone();
    config.remove("auth_methods");
    let bytes = serde_json::to_vec(&Value::Object(config)).ok()?;
    let loaded = envoy_oidc::config::Config::parse(&bytes).ok()?;
    Some(loaded.config.auth_methods.names())
}

/// `refresh_token` does not mean the same in both `auth_methods`: Kong's is
/// the refresh-token grant for clients (a client sends a refresh token,
/// Kong exchanges it), which the filter does not have; Kong refreshes the
/// session's tokens under `refresh_tokens` (default true). Ours is session
/// refresh, so our `refresh_token` follows Kong's `refresh_tokens`, and
/// Kong's entry only earns a note.
fn session_refresh(
    kong: &Map<String, Value>,
    out: &mut Map<String, Value>,
    notes: &mut Vec<String>,
) -> Result<(), String> {
    let refresh = match kong.get("refresh_tokens") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(v) => return Err(format!("refresh_tokens must be true or false, not {v}")),
    };
    // Refreshing needs what the loader asks of `refresh_token` (the client).
    let can_refresh = || default_methods(out).is_some_and(|m| m.contains(&"refresh_token"));
    let Some(Value::Array(listed)) = out.get("auth_methods") else {
        // Kong's default list: ours refreshes sessions when it can, as
        // Kong's with refresh_tokens; without it, the default made explicit
        // less session refresh.
        if !refresh && let Some(mut methods) = default_methods(out) {
            methods.retain(|m| *m != "refresh_token");
            notes.push(format!(
                "refresh_tokens: false: auth_methods written as the default's {methods:?}, \
                 without session refresh (refresh_token)"
            ));
            out.insert("auth_methods".into(), json!(methods));
        }
        return Ok(());
    };
    let mut methods = listed.clone();
    // Grants for clients the filter does not have, in Kong's default list
    // (which `deck gateway dump` writes out): left out, those clients get
    // 401, never a laxer pass.
    for grant in ["password", "kong_oauth2"] {
        if methods.iter().any(|m| m == grant) {
            methods.retain(|m| m != grant);
            notes.push(format!(
                "auth_methods: {grant} NOT SUPPORTED (a grant for clients envoy-oidc does not \
                 have): left out, such clients get 401"
            ));
        }
    }
    // The code flow and introspection need the gateway's client here:
    // Kong's default list names them whether the plugin has one or not.
    // Left out with a loud note (fewer ways in, never a laxer one).
    for needs_client in ["authorization_code", "introspection"] {
        if out.get("client_id").is_none() && methods.iter().any(|m| m == needs_client) {
            methods.retain(|m| m != needs_client);
            notes.push(format!(
                "auth_methods: {needs_client} NOT CONVERTED: envoy-oidc needs client_id for \
                 it, which the plugin does not have; left out (add client_id and \
                 client_secret, then the method, if it is used)"
            ));
        }
    }
    let grant = methods.iter().any(|m| m == "refresh_token");
    methods.retain(|m| m != "refresh_token");
    if grant {
        notes.push(
            "auth_methods: refresh_token NOT SUPPORTED: in Kong it is the refresh-token grant \
             for clients (a client sends its refresh token, refresh_token_param_name/type, and \
             Kong exchanges it); envoy-oidc has no such grant and answers those clients 401. \
             envoy-oidc's refresh_token is session refresh, written after Kong's \
             refresh_tokens (default true)"
                .to_string(),
        );
        if methods.is_empty() {
            return Err(
                "auth_methods: Kong's refresh_token (the refresh-token grant for clients) is \
                 not supported, and it is the only method listed"
                    .to_string(),
            );
        }
    }
    let sessions = methods
        .iter()
        .any(|m| m == "session" || m == "authorization_code");
    if refresh && sessions {
        if can_refresh() {
            methods.push(json!("refresh_token"));
        } else {
            notes.push(
                "refresh_tokens: sessions are not refreshed without client_id (the refresh \
                 grant is the client's)"
                    .to_string(),
            );
        }
    }
    out.insert("auth_methods".into(), Value::Array(methods));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plugin(config: Value) -> KongPlugin {
        KongPlugin {
            name: "p".into(),
            config: config.as_object().unwrap().clone(),
        }
    }

    #[test]
    fn istio_cluster_names_follow_the_authority() {
        assert_eq!(
            istio_cluster("idp.example.com", true),
            "outbound|443||idp.example.com"
        );
        assert_eq!(
            istio_cluster("idp.example.com", false),
            "outbound|80||idp.example.com"
        );
        assert_eq!(
            istio_cluster("idp.example.com:8443", true),
            "outbound|8443||idp.example.com"
        );
    }

    #[test]
    fn renamed_parameters_take_our_names() {
        let c = convert(
            &plugin(json!({"issuer": "https://idp.example.com", "timeout": 2000,
                           "logout_redirect_uri": ["https://a.example.com/", "https://b.example.com/"]})),
            &Conversion::default(),
        )
        .unwrap();
        assert_eq!(c.config["idp_timeout_ms"], json!(2000));
        assert_eq!(
            c.config["post_logout_redirect_uri"],
            json!("https://a.example.com/")
        );
        assert!(c.config.get("timeout").is_none());
        assert!(c.notes.iter().any(|n| n.contains("takes the first")));
    }

    #[test]
    fn no_op_parameters_are_dropped_only_at_their_harmless_value() {
        let ok = convert(
            &plugin(json!({"issuer": "https://idp.example.com", "ssl_verify": true, "verify_signature": true})),
            &Conversion::default(),
        )
        .unwrap();
        assert!(ok.config.get("ssl_verify").is_none());
        let e = convert(
            &plugin(json!({"issuer": "https://idp.example.com", "verify_signature": false})),
            &Conversion::default(),
        )
        .unwrap_err();
        assert!(e.contains("verify_signature"), "{e}");
    }

    #[test]
    fn empty_client_and_redirect_lists_are_left_out_as_kong_reads_them() {
        let c = convert(
            &plugin(json!({"issuer": "https://idp.example.com", "client_id": [],
                           "client_secret": [], "redirect_uri": [], "scopes": ["openid"]})),
            &Conversion::default(),
        )
        .unwrap();
        for key in ["client_id", "client_secret", "redirect_uri"] {
            assert!(c.config.get(key).is_none(), "{key}: {:?}", c.config);
        }
        assert_eq!(c.config["scopes"], json!(["openid"]));
    }

    #[test]
    fn provider_keys_carry_over_and_the_userinfo_default_is_noted() {
        let p = plugin(
            json!({"issuer": "https://idp.example.com", "audience": ["https://api"],
                              "domains": ["example.com"], "token_post_args_names": ["resource"],
                              "token_post_args_values": ["urn:x"]}),
        );
        let c = convert(&p, &Conversion::default()).unwrap();
        assert_eq!(c.config["audience"], json!(["https://api"]));
        assert_eq!(c.config["domains"], json!(["example.com"]));
        assert_eq!(c.config["token_post_args_names"], json!(["resource"]));
        assert!(
            c.notes.iter().any(|n| n.contains("includes userinfo")),
            "{:?}",
            c.notes
        );
        let listed = plugin(json!({"issuer": "https://idp.example.com",
                                   "client_id": "gw", "client_secret": "s",
                                   "auth_methods": ["bearer", "introspection", "userinfo"]}));
        let c = convert(&listed, &Conversion::default()).unwrap();
        assert!(!c.notes.iter().any(|n| n.contains("includes userinfo")));
        assert!(
            c.notes.iter().any(|n| n.contains("is introspected")),
            "{:?}",
            c.notes
        );
    }

    #[test]
    fn keys_whose_meaning_differs_are_noted() {
        let c = convert(
            &plugin(
                json!({"issuer": "https://idp.example.com", "anonymous": "guest",
                           "unauthorized_redirect_uri": ["https://a.example.com/x"]}),
            ),
            &Conversion::default(),
        )
        .unwrap();
        for key in ["anonymous", "unauthorized_redirect_uri"] {
            assert!(
                c.notes
                    .iter()
                    .any(|n| n.starts_with(&format!("{key}: differs from Kong"))),
                "{key}: {:?}",
                c.notes
            );
        }
    }

    #[test]
    fn credential_places_make_kongs_default_explicit_without_the_body() {
        let c = convert(
            &plugin(json!({"issuer": "https://idp.example.com"})),
            &Conversion::default(),
        )
        .unwrap();
        assert_eq!(
            c.config["bearer_token_param_type"],
            json!(["header", "query"])
        );
        assert_eq!(
            c.config["client_credentials_param_type"],
            json!(["header", "query"])
        );
        assert!(
            c.notes.iter().any(|n| n.contains("Kong's default")),
            "{:?}",
            c.notes
        );
        let c = convert(
            &plugin(json!({"issuer": "https://idp.example.com", "bearer_token_param_type": ["body", "cookie"],
                           "bearer_token_cookie_name": "at"})),
            &Conversion::default(),
        )
        .unwrap();
        assert_eq!(c.config["bearer_token_param_type"], json!(["cookie"]));
        assert!(
            c.notes.iter().any(|n| n.contains("`body` dropped")),
            "{:?}",
            c.notes
        );
        // The body alone: refused, not read as our default, the header.
        let e = convert(
            &plugin(json!({"issuer": "https://idp.example.com", "client_credentials_param_type": ["body"]})),
            &Conversion::default(),
        )
        .unwrap_err();
        assert!(
            e.contains("client_credentials_param_type") && e.contains("only `body`"),
            "{e}"
        );
    }

    #[test]
    fn a_deck_dump_with_kongs_defaults_and_nulls_converts() {
        // `deck gateway dump` writes every key: Kong's default methods, and
        // null for the unset ones (unsupported keys among them).
        let c = convert(
            &plugin(json!({"issuer": "https://idp.example.com",
                "auth_methods": ["password", "client_credentials", "authorization_code", "bearer",
                                 "introspection", "userinfo", "kong_oauth2", "refresh_token", "session"],
                "consumer_claim": null, "leeway": null, "max_age": null})),
            &Conversion::default(),
        )
        .unwrap();
        let methods = c.config["auth_methods"].as_array().unwrap();
        for gone in [
            "password",
            "kong_oauth2",
            "authorization_code",
            "introspection",
        ] {
            assert!(!methods.contains(&json!(gone)), "{gone}: {methods:?}");
        }
        assert!(methods.contains(&json!("bearer")), "{methods:?}");
        assert_eq!(c.config["leeway"], json!(0), "null: Kong's default");
        assert!(
            c.notes.iter().any(|n| n.contains("password NOT SUPPORTED")),
            "{:?}",
            c.notes
        );
    }

    #[test]
    fn unsupported_parameters_fail_unless_ignored() {
        let p = plugin(
            json!({"issuer": "https://idp.example.com", "max_age": 300, "consumer_claim": ["sub"]}),
        );
        let e = convert(&p, &Conversion::default()).unwrap_err();
        assert!(e.contains("consumer_claim, max_age"), "{e}");
        let c = convert(
            &p,
            &Conversion {
                ignore_unsupported: true,
                ..Conversion::default()
            },
        )
        .unwrap();
        assert!(c.config.get("max_age").is_none());
        assert!(c.notes.iter().any(|n| n.contains("max_age")));
    }

    /// Kong's `auth_methods: refresh_token` is the refresh-token grant for
    /// clients; Kong refreshes sessions' tokens under `refresh_tokens`
    /// (default true). Ours is the one method `refresh_token`, session
    /// refresh: it follows `refresh_tokens`, and Kong's grant is noted.
    #[test]
    fn session_refresh_follows_kongs_refresh_tokens_not_its_refresh_token_grant() {
        let login = |extra: Value| {
            let mut kong = json!({"issuer": "https://idp.example.com", "client_id": "gw",
                                  "client_secret": "s",
                                  "auth_methods": ["authorization_code", "session"]});
            kong.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            convert(&plugin(kong), &Conversion::default())
        };
        let grant_note = |c: &Converted| {
            c.notes
                .iter()
                .any(|n| n.contains("refresh-token grant") && n.contains("NOT SUPPORTED"))
        };
        // refresh_tokens unset: Kong's default, true: sessions keep refreshing.
        let c = login(json!({})).unwrap();
        assert_eq!(
            c.config["auth_methods"],
            json!(["authorization_code", "session", "refresh_token"])
        );
        assert!(!grant_note(&c), "{:?}", c.notes);
        let c = login(json!({"refresh_tokens": false})).unwrap();
        assert_eq!(
            c.config["auth_methods"],
            json!(["authorization_code", "session"])
        );
        // Kong's grant listed: noted, and no session refresh unless
        // refresh_tokens says so.
        let c = login(json!({"refresh_tokens": false,
                             "auth_methods": ["authorization_code", "session", "refresh_token"]}))
        .unwrap();
        assert_eq!(
            c.config["auth_methods"],
            json!(["authorization_code", "session"])
        );
        assert!(grant_note(&c), "{:?}", c.notes);
        let c = login(json!({"auth_methods": ["bearer", "refresh_token"]})).unwrap();
        assert_eq!(c.config["auth_methods"], json!(["bearer"]));
        assert!(grant_note(&c), "{:?}", c.notes);
        let e = login(json!({"auth_methods": ["refresh_token"]})).unwrap_err();
        assert!(e.contains("refresh-token grant"), "{e}");
        // Left at Kong's default list, refresh_tokens: false takes session
        // refresh out of ours.
        let c = convert(
            &plugin(
                json!({"issuer": "https://idp.example.com", "client_id": "gw",
                           "client_secret": "s", "refresh_tokens": false}),
            ),
            &Conversion::default(),
        )
        .unwrap();
        let methods = c.config["auth_methods"].as_array().unwrap();
        assert!(methods.contains(&json!("session")), "{methods:?}");
        assert!(!methods.contains(&json!("refresh_token")), "{methods:?}");
    }

    #[test]
    fn a_value_the_filter_refuses_is_reported_with_its_field() {
        let e = convert(
            &plugin(
                json!({"issuer": "https://idp.example.com", "session_cookie_same_site": "Default"}),
            ),
            &Conversion::default(),
        )
        .unwrap_err();
        assert!(e.contains("field `session_cookie_same_site`"), "{e}");
    }

    #[test]
    fn single_cluster_naming_for_plain_envoy() {
        let c = convert(
            &plugin(json!({"issuer": "https://idp.example.com"})),
            &Conversion {
                naming: ClusterNaming::Single("idp".into()),
                ..Conversion::default()
            },
        )
        .unwrap();
        assert_eq!(c.config["idp_cluster"], json!("idp"));
        assert!(c.config.get("idp_clusters").is_none());
    }

    /// Where the same key does less, or other, than in Kong: said.
    #[test]
    fn keys_that_differ_from_kongs_are_noted() {
        let notes_of = |config: Value| {
            let mut config = config;
            config["issuer"] = json!("https://idp.example.com");
            convert(&plugin(config), &Conversion::default())
                .unwrap()
                .notes
        };
        let noted = |notes: &[String], key: &str, text: &str| {
            notes.iter().any(|n| n.starts_with(key) && n.contains(text))
        };
        let notes = notes_of(json!({
            "anonymous": "guest", "search_user_info": true,
            "upstream_user_info_header": "x-ui", "upstream_introspection_header": "x-in",
            "upstream_headers_claims": ["email"], "upstream_headers_names": ["x-email"],
            "client_id": ["c"], "client_secret": ["s"]
        }));
        assert!(noted(&notes, "anonymous", "a 403 stays a 403"), "{notes:?}");
        assert!(noted(&notes, "search_user_info", "*_required"), "{notes:?}");
        assert!(
            noted(&notes, "upstream_user_info_header", "just to fill it"),
            "{notes:?}"
        );
        assert!(
            noted(&notes, "upstream_introspection_header", "just to fill it"),
            "{notes:?}"
        );
        assert!(
            noted(&notes, "upstream_headers_claims", "a session's ID token"),
            "{notes:?}"
        );
        assert!(
            noted(&notes, "bearer_token_param_type", "x-access-token"),
            "{notes:?}"
        );
        assert!(noted(&notes, "sessions", "destroy_session"), "{notes:?}");
        assert!(noted(&notes, "sessions", "login_action"), "{notes:?}");
        assert!(noted(&notes, "scopes", "asks for openid"), "{notes:?}");
        assert!(
            noted(&notes, "auth_methods", "only when a browser navigates"),
            "{notes:?}"
        );
        // Neither said where it does not apply.
        let notes =
            notes_of(json!({"auth_methods": ["bearer"], "bearer_token_param_type": ["query"]}));
        assert!(
            !noted(&notes, "auth_methods", "browser navigates"),
            "{notes:?}"
        );
        assert!(
            !noted(&notes, "bearer_token_param_type", "x-access-token"),
            "{notes:?}"
        );
        // Kong's default list, without the client the code flow needs.
        let notes = notes_of(json!({}));
        assert!(
            !noted(&notes, "auth_methods", "browser navigates"),
            "{notes:?}"
        );
    }

    /// Kong 3.14+ defaults `hide_credentials` to true, as we do; only
    /// plugins written for an older Kong relied on `false`.
    #[test]
    fn hide_credentials_default_is_kongs_since_3_14() {
        let c = convert(
            &plugin(json!({"issuer": "https://idp.example.com"})),
            &Conversion::default(),
        )
        .unwrap();
        let notes: Vec<&String> = c
            .notes
            .iter()
            .filter(|n| n.contains("hide_credentials"))
            .collect();
        assert_eq!(notes.len(), 1, "{:?}", c.notes);
        assert!(
            notes[0].contains("3.14") && !notes[0].contains("Kong's default is false"),
            "{}",
            notes[0]
        );
        assert!(c.config.get("hide_credentials").is_none());
        let set = convert(
            &plugin(json!({"issuer": "https://idp.example.com", "hide_credentials": false})),
            &Conversion::default(),
        )
        .unwrap();
        assert_eq!(set.config["hide_credentials"], json!(false));
        assert!(!set.notes.iter().any(|n| n.contains("hide_credentials")));
    }

    /// Kong's logout keys carry over as they are, with Kong's defaults
    /// (POST and DELETE, no revocation); `logout_post_arg` needs a request
    /// body the filter does not read yet, so it is refused by name.
    #[test]
    fn logout_keys_carry_over() {
        let kong = json!({"issuer": "https://cognito-idp.us-west-1.amazonaws.com/pool",
                          "logout_methods": ["POST", "GET"], "logout_query_arg": "logout",
                          "logout_uri_suffix": "/logout", "logout_revoke": true,
                          "logout_revoke_access_token": false, "logout_revoke_refresh_token": true,
                          "revocation_endpoint": "https://demo.auth.us-west-1.amazoncognito.com/oauth2/revoke"});
        let c = convert(&plugin(kong.clone()), &Conversion::default()).unwrap();
        for (key, value) in kong.as_object().unwrap() {
            assert_eq!(&c.config[key], value, "{key}");
        }
        assert!(!c.notes.iter().any(|n| n.contains("/oauth2/revoke")));
        let e = convert(
            &plugin(json!({"issuer": "https://idp.example.com", "logout_post_arg": "logout"})),
            &Conversion::default(),
        )
        .unwrap_err();
        assert!(e.contains("logout_post_arg"), "{e}");
        let cognito = json!({"issuer": "https://cognito-idp.us-west-1.amazonaws.com/pool",
                             "logout_revoke": true});
        let c = convert(&plugin(cognito), &Conversion::default()).unwrap();
        assert!(
            c.notes.iter().any(|n| n.contains("/oauth2/revoke")),
            "{:?}",
            c.notes
        );
    }

    #[test]
    fn finds_the_plugin_among_other_documents() {
        let text = "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n---\n\
                    apiVersion: configuration.konghq.com/v1\nkind: KongPlugin\nmetadata: {name: oidc}\n\
                    plugin: openid-connect\nconfig: {issuer: 'https://idp.example.com'}\n";
        let p = find_plugin(text, None).unwrap();
        assert_eq!(p.name, "oidc");
        assert!(find_plugin("kind: KongPlugin\nplugin: rate-limiting\n", None).is_err());
        let two = format!(
            "{text}---\nkind: KongPlugin\nmetadata: {{name: other}}\nplugin: openid-connect\nconfig: {{}}\n"
        );
        assert!(find_plugin(&two, None).unwrap_err().contains("--name"));
        assert_eq!(find_plugin(&two, Some("other")).unwrap().name, "other");
    }
}

#[cfg(test)]
mod doc_tests {
    use super::*;

    /// Every key of Kong's openid-connect schema has its row in the
    /// migration table: carried over (then a key of config.schema.json),
    /// renamed, dropped at a harmless value, or unsupported with a reason.
    #[test]
    fn every_kong_key_has_its_place_in_the_migration_table() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
        let doc = std::fs::read_to_string(format!("{root}/docs/kong-migration.md")).unwrap();
        let schema: Value = serde_json::from_str(
            &std::fs::read_to_string(format!("{root}/config.schema.json")).unwrap(),
        )
        .unwrap();
        let ours = schema["properties"].as_object().unwrap();
        let unsupported = &doc[doc
            .find("## Not supported")
            .expect("a Not supported section")..];
        let keys = include_str!("../kong-openid-connect-keys.txt")
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'));
        let mut count = 0;
        for key in keys {
            count += 1;
            let named = |text: &str| {
                text.contains(&format!("`{key}`")) || text.contains(&format!("`{key}:"))
            };
            assert!(
                named(&doc),
                "docs/kong-migration.md says nothing of `{key}`"
            );
            let carried = SAME.contains(&key) || PLACES.contains(&key);
            if carried {
                assert!(
                    ours.contains_key(key),
                    "`{key}` is carried over but not in config.schema.json"
                );
            } else if let Some((_, to)) = RENAMED.iter().chain(FOLDED).find(|(k, _)| *k == key) {
                assert!(
                    ours.contains_key(*to),
                    "`{key}` read into `{to}`, not in config.schema.json"
                );
                assert!(
                    !named(unsupported),
                    "`{key}` is converted but listed as unsupported"
                );
            } else if !matches!(
                key,
                "ssl_verify"
                    | "verify_signature"
                    | "verify_claims"
                    | "verify_nonce"
                    | "display_errors"
                    | "cache_ttl"
            ) {
                assert!(
                    named(unsupported),
                    "`{key}` is neither carried over nor listed as unsupported"
                );
                assert!(
                    !ours.contains_key(key) || key == "logout_post_arg",
                    "`{key}` is in config.schema.json but kong2wasm drops it"
                );
            }
        }
        assert!(count > 200, "{count} keys");
    }

    /// docs/kong-migration.md's tables list every parameter the tool maps.
    #[test]
    fn migration_doc_lists_what_the_tool_maps() {
        let doc = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../docs/kong-migration.md"
        ))
        .expect("docs/kong-migration.md");
        for key in SAME {
            assert!(
                doc.contains(&format!("| `{key}` | `{key}` |")),
                "docs/kong-migration.md: row for {key}"
            );
        }
        for (kong, ours) in RENAMED {
            assert!(
                doc.contains(&format!("| `{kong}` | `{ours}` |")),
                "docs/kong-migration.md: row for {kong}"
            );
        }
        for (kong, ours) in FOLDED {
            assert!(
                doc.lines()
                    .any(|l| l.starts_with(&format!("| `{kong}` |")) && l.contains(ours)),
                "docs/kong-migration.md: row for {kong}"
            );
        }
        let row = doc
            .lines()
            .find(|l| l.starts_with("| `hide_credentials` |"))
            .expect("docs/kong-migration.md: row for hide_credentials");
        assert!(
            row.contains("3.14") && !row.contains("Kong `false`"),
            "docs/kong-migration.md: Kong 3.14+ defaults hide_credentials to true: {row}"
        );
        for key in [
            "ssl_verify",
            "verify_signature",
            "display_errors",
            "cache_ttl",
        ] {
            assert!(
                no_op(key, &json!(true)).is_some() || no_op(key, &json!(false)).is_some(),
                "{key}"
            );
            assert!(
                doc.contains(&format!("`{key}")),
                "docs/kong-migration.md mentions {key}"
            );
        }
    }
}
