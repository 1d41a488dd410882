//! What an allowed request carries upstream: the access token where
//! `upstream_access_token_header` says, claim headers, and no client-sent
//! copies of either.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use std::cell::OnceCell;
use std::rc::Rc;

use super::Allowed;
use super::answers::Answer;
use super::session::Browser;
use super::sources;
use crate::action::{Action, Decision};

use crate::config::{Config, Forwarded};
use crate::oidc::claims::Claims;
use crate::oidc::jwt::unverified_claims;
use crate::policy::ClaimPath;
use crate::request::RequestView;

/// The headers a request is to lose. Only those it has are named: removing
/// one it lacks is a host call, and a change of Envoy's header map, that
/// changes nothing (the bypass path removed `authorization` on every
/// request); naming one it lacks costs no allocation.
struct Removals<'r> {
    req: &'r RequestView,
    names: Vec<String>,
}

impl<'r> Removals<'r> {
    fn new(req: &'r RequestView) -> Removals<'r> {
        Removals {
            req,
            names: Vec::new(),
        }
    }

    fn add(&mut self, name: &str) {
        if self.req.has(name) {
            self.names.push(name.to_string());
        }
    }
}

/// A request that passes without authentication (bypass path, preflight):
/// unchanged, except that it carries nothing the upstream would take for
/// ours: no claim header, no header named like our token header (nor
/// `Authorization` when that is our token header and `hide_credentials` is
/// on), no lookalike of either, and none of our cookies.
///
/// The bypass path runs this on every request: a request that sends none of
/// these costs no allocation (see `Removals`).
pub(super) fn unauthenticated(cfg: &Config, req: &RequestView) -> Action {
    let (set, remove) = stripped(cfg, req);
    continue_with(set, remove)
}

/// `anonymous` (Kong): a request that would be a 401 passes without
/// identity, as an unauthenticated one does, marked for the upstream with
/// Kong's consumer headers (client-sent copies replaced).
pub(super) fn anonymous(cfg: &Config, req: &RequestView, consumer: &str) -> Action {
    let (mut set, remove) = stripped(cfg, req);
    set.push(("x-anonymous-consumer".to_string(), "true".to_string()));
    set.push(("x-consumer-id".to_string(), consumer.to_string()));
    continue_with(set, remove)
}

/// What `unauthenticated` sets and removes: our claim, token and identity
/// headers (`upstream_*_header`) as a client sent them, and with
/// `hide_credentials` the credentials it sent, wherever the configuration
/// lets it send them (the `Authorization` header, the bearer cookie, the
/// query), as an authenticated request loses them.
fn stripped<'r>(cfg: &Config, req: &'r RequestView) -> (Vec<(String, String)>, Removals<'r>) {
    let mut remove = Removals::new(req);
    remove_client_copies(cfg, &mut remove, None);
    remove_consumer_headers(cfg, &mut remove);
    // Another token header is among `upstream_names`.
    if cfg.upstream_access_token_header.name == "authorization" && cfg.hide_credentials {
        remove.add("authorization");
    }
    remove_lookalikes(cfg, &mut remove, None);
    let mut set = Vec::new();
    if req.all("cookie").next().is_some() {
        let browser = Browser::new(cfg, req);
        strip_our_cookies(cfg, &browser, &mut set, &mut remove);
    }
    if cfg.hide_credentials
        && let Some(path) = sources::path_without_credentials(cfg, req)
    {
        set.push((":path".to_string(), path));
    }
    (set, remove)
}

/// The headers Kong sets for the consumer a request authenticated as (or
/// the anonymous one), and clears on every request it authenticates: an
/// upstream that came from Kong trusts them. Removed, as client copies,
/// under every rule when Kong's consumers are in use here (`anonymous`
/// anywhere: `Config::consumers_in_use`); ours are set after.
const KONG_CONSUMER_HEADERS: [&str; 7] = [
    "x-consumer-id",
    "x-consumer-custom-id",
    "x-consumer-username",
    "x-consumer-groups",
    "x-credential-identifier",
    "x-credential-username",
    "x-anonymous-consumer",
];

fn remove_consumer_headers(cfg: &Config, remove: &mut Removals) {
    if cfg.consumers_in_use {
        for name in KONG_CONSUMER_HEADERS {
            remove.add(name);
        }
    }
}

/// A client's copies of our claim headers (`upstream_headers*`), identity
/// headers (`upstream_*_header`) and token header, the top level's and
/// every rule's (`Config::upstream_names`): only ours reach the upstream.
/// (`kept`: our token header, when the request carries our token in it
/// already.)
fn remove_client_copies(cfg: &Config, remove: &mut Removals, kept: Option<&str>) {
    for name in &cfg.upstream_names {
        if kept != Some(name.as_str()) {
            remove.add(name);
        }
    }
}

fn continue_with(set: Vec<(String, String)>, remove: Removals) -> Action {
    Action::Continue {
        set,
        remove: remove.names,
        response: Vec::new(),
        state: Vec::new(),
    }
}

/// Client headers whose names, with `_` and `-` read alike, are those of
/// our token, claim or identity headers: upstreams that fold both into one
/// (CGI, WSGI, Rack, PHP-FPM: `HTTP_X_USER_ID`) would take them for ours.
/// Only when one of ours has a `-` or a `_` (`Config::lookalikes_possible`,
/// not so for the default `authorization`); and only names with a `_` can
/// be such unless one of ours has a `_` (then a client's `-` can pass for
/// it): a request without one costs a scan of its header names.
/// (`kept`: as for `remove_client_copies`; it may be a lookalike of
/// another rule's.)
fn remove_lookalikes(cfg: &Config, remove: &mut Removals, kept: Option<&str>) {
    if !cfg.lookalikes_possible {
        return;
    }
    let scan = (!cfg.lookalikes_of_underscores).then_some(b'_');
    for name in remove.req.names_with(scan) {
        // Another name read as one of ours (ours as sent are copies,
        // removed already, or our token header left in place).
        let passes_for = |ours: &str| same_when_folded(ours, name) && ours != name;
        let ours = cfg.upstream_names.iter().any(|n| passes_for(n));
        if ours && kept != Some(name) && !remove.names.iter().any(|r| r == name) {
            remove.add(name);
        }
    }
}

/// Header names equal with `_` read as `-`, whatever the case.
fn same_when_folded(a: &str, b: &str) -> bool {
    let fold = |c: u8| {
        if c == b'_' {
            b'-'
        } else {
            c.to_ascii_lowercase()
        }
    };
    a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| fold(x) == fold(y))
}

/// Our cookies (sessions hold tokens, a refresh token among them) are for
/// the filter alone when it takes sessions anywhere (`Config::sessions_on`),
/// whatever `hide_credentials` says, as Kong removes its session cookie: an
/// upstream (or its logs) given the sealed session could replay it.
/// Without sessions, a cookie of that name is the application's (Flask's is
/// `session` too), removed only with `hide_credentials`. With
/// `hide_credentials`, so is the bearer cookie, a client's credential.
fn strip_our_cookies(
    cfg: &Config,
    browser: &Browser,
    set: &mut Vec<(String, String)>,
    remove: &mut Removals,
) {
    let ours = cfg.sessions_on || cfg.hide_credentials;
    let also = cfg
        .bearer_cookie
        .as_deref()
        .filter(|_| cfg.hide_credentials);
    let stripped = |n: &str| (ours && Browser::is_ours(cfg, n)) || also == Some(n);
    if browser.cookies().any(|(n, _)| stripped(n)) {
        match browser.foreign_cookies(stripped) {
            rest if rest.is_empty() => remove.add("cookie"),
            rest => set.push(("cookie".to_string(), rest)),
        }
    }
}

pub(super) fn allow(
    cfg: &Config,
    req: &RequestView,
    allowed: &Allowed,
    browser: &Browser,
) -> Decision {
    let token = &*allowed.token;
    let header = &cfg.upstream_access_token_header;
    let mut remove = Removals::new(req);
    if (cfg.hide_credentials || allowed.hide_authorization) && header.name != "authorization" {
        remove.add("authorization");
    }
    // Only an anonymous pass carries these.
    remove_consumer_headers(cfg, &mut remove);
    let mut set = Vec::new();
    // A bearer request already carries exactly this header: a host call
    // (and an ~1 KB copy) saved on every cached-token request.
    let unchanged = (allowed.as_sent && header.is_default()) || {
        let mut sent = req.all(&header.name);
        matches!((sent.next(), sent.next()), (Some(v), None) if header.carries(v, token))
    };
    if !unchanged {
        set.push((header.name.clone(), header.value(token)));
    }
    // Our cookies are for the filter alone. With `hide_credentials`, so is
    // every credential the request carries where the configuration reads
    // them (the bearer cookie, the query), used or not, as on a bypass
    // path: a second token beside the one that passed would reach the
    // upstream's logs.
    strip_our_cookies(cfg, browser, &mut set, &mut remove);
    if cfg.hide_credentials
        && let Some(path) = sources::path_without_credentials(cfg, req)
    {
        set.push((":path".to_string(), path));
    }
    // Always removed first, so a client cannot forge a header of ours,
    // whether we have a value for it or not.
    let kept = unchanged.then_some(header.name.as_str());
    remove_client_copies(cfg, &mut remove, kept);
    let mut dropped = Vec::new();
    let sources = ClaimSources::of(allowed);
    for ch in &cfg.upstream_headers {
        match sources.lookup(&ch.claim).map(header_value) {
            Some(Some(v)) => set.push((ch.header.clone(), v)),
            Some(None) => dropped.push(ch.header.as_str()),
            None => {}
        }
    }
    if !cfg.upstream_extra.is_empty() {
        set.extend(forwarded(&cfg.upstream_extra, allowed, &sources));
    }
    let mut response = allowed.response.clone();
    if !cfg.downstream.is_empty() {
        response.extend(forwarded(&cfg.downstream, allowed, &sources));
    }
    remove_lookalikes(cfg, &mut remove, kept);
    let log = (!dropped.is_empty()).then(|| {
        format!(
            "claim headers dropped, value has CR, LF or NUL: {}",
            dropped.join(", ")
        )
    });
    Decision {
        action: Action::Continue {
            set,
            remove: remove.names,
            response,
            state: identity_state(cfg, allowed),
        },
        log,
    }
}

/// `identity_filter_state`: who was let in and how, as filter state that
/// Envoy's access log prints with `%FILTER_STATE(wasm.envoy_oidc.subject:PLAIN)%`
/// (the host prefixes `wasm.`). Off by default: three host calls a request.
fn identity_state(cfg: &Config, allowed: &Allowed) -> Vec<(&'static str, String)> {
    if !cfg.identity_filter_state {
        return Vec::new();
    }
    let claims = &*allowed.claims;
    let text = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| claims.get(n).and_then(Value::as_str))
            .filter(|v| !v.contains(['\r', '\n', '\0']))
            .unwrap_or("-")
            .to_string()
    };
    let method = allowed
        .metric
        .strip_prefix("allowed_")
        .unwrap_or(allowed.metric);
    vec![
        ("envoy_oidc.subject", text(&["sub"])),
        // Cognito's and Okta's names for the client, then OIDC's.
        ("envoy_oidc.client_id", text(&["client_id", "cid", "azp"])),
        ("envoy_oidc.method", method.to_string()),
    ]
}

/// The headers `f` names, with the values this request has: tokens as
/// they are, userinfo and introspection JSON in base64, claims as claim
/// headers are (Kong's forms: `header_value`). A value that cannot be a header value
/// is left out. Only the values of headers named are made.
fn forwarded(f: &Forwarded, allowed: &Allowed, sources: &ClaimSources) -> Vec<(String, String)> {
    let session = allowed.session.as_deref();
    let mut out = Vec::new();
    let mut add = |name: &Option<String>, value: &dyn Fn() -> Option<String>| {
        if let Some(name) = name
            && let Some(v) = value()
            && !v.contains(['\r', '\n', '\0'])
        {
            out.push((name.clone(), v));
        }
    };
    let encoded = |answer: &Option<Rc<Answer>>| Some(answer.as_ref()?.encoded()?.to_string());
    add(&f.access_token, &|| Some(allowed.token.to_string()));
    add(&f.id_token, &|| session?.id_token.clone());
    add(&f.user_info, &|| encoded(&allowed.userinfo));
    add(&f.introspection, &|| encoded(&allowed.introspection));
    add(&f.refresh_token, &|| session?.refresh_token.clone());
    add(&f.session_id, &|| Some(session?.sid.clone()));
    out.extend(f.claims.iter().filter_map(|ch| {
        let v = sources.lookup(&ch.claim).and_then(header_value)?;
        Some((ch.header.clone(), v))
    }));
    out
}

/// Where claim headers find their claims, as Kong looks them up: the
/// access token's (with userinfo's under `search_user_info`), else, for a
/// session whose access token is ours, its ID token's (Cognito's access
/// tokens carry no `email`), read once per request and only when a claim
/// is missing. Read unverified: the ID token came from our own exchange at
/// the token endpoint (verified at login; at a refresh, over TLS, which
/// OpenID Connect Core §3.1.3.7 lets stand for the signature), sealed in
/// the cookie since, so no one could change it. Headers only, never the
/// policy; and its `sub` is not compared with the access token's (Okta's
/// differ by design).
struct ClaimSources<'a> {
    claims: &'a Claims,
    id_token: Option<&'a str>,
    id_claims: OnceCell<Option<Claims>>,
}

impl<'a> ClaimSources<'a> {
    fn of(allowed: &'a Allowed) -> ClaimSources<'a> {
        // With an `identity`, the claims are the ID token's already.
        let session = allowed.session.as_deref().filter(|s| s.identity.is_none());
        ClaimSources {
            claims: &allowed.claims,
            id_token: session.and_then(|s| s.id_token.as_deref()),
            id_claims: OnceCell::new(),
        }
    }

    fn lookup(&self, path: &ClaimPath) -> Option<&Value> {
        path.lookup(self.claims).or_else(|| {
            let id = self.id_token?;
            let id_claims = self.id_claims.get_or_init(|| unverified_claims(id));
            path.lookup(id_claims.as_ref()?)
        })
    }
}

/// A claim as a header value, as Kong makes it (its `headers.lua`):
/// strings as is, numbers and booleans as text, arrays and objects as
/// their JSON in base64 (standard, padded). `None` when it cannot be a
/// header, or is `null` (no value: not the text "null").
fn header_value(v: &Value) -> Option<String> {
    let text = match v {
        Value::Null => return None,
        Value::String(s) => s.clone(),
        Value::Array(_) | Value::Object(_) => STANDARD.encode(v.to_string()),
        other => other.to_string(),
    };
    (!text.contains(['\r', '\n', '\0'])).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::header_value;
    use serde_json::json;

    #[test]
    fn claim_values_become_header_text() {
        assert_eq!(header_value(&json!("a b")).as_deref(), Some("a b"));
        assert_eq!(header_value(&json!(42)).as_deref(), Some("42"));
        assert_eq!(header_value(&json!(true)).as_deref(), Some("true"));
        // ["g1","g2",3] and {"a":1} in standard base64, as Kong sends them.
        assert_eq!(
            header_value(&json!(["g1", "g2", 3])).as_deref(),
            Some("WyJnMSIsImcyIiwzXQ==")
        );
        assert_eq!(
            header_value(&json!({"a": 1})).as_deref(),
            Some("eyJhIjoxfQ==")
        );
        assert_eq!(header_value(&json!("x\r\nSet-Cookie: y")), None);
        assert_eq!(header_value(&json!(null)), None);
        // ["a",null,"b"]: an array's nulls are kept, as in Kong's JSON.
        assert_eq!(
            header_value(&json!(["a", null, "b"])).as_deref(),
            Some("WyJhIixudWxsLCJiIl0=")
        );
    }
}
