//! Browser login: authorization code flow with PKCE (RFC 6749 §4.1,
//! RFC 7636), with `state`, `nonce` and the RFC 9207 `iss` check.
//!
//! Nothing of a login in progress is kept in server memory: the verifier,
//! state, nonce and return URL travel in a short-lived sealed cookie named
//! after the state, so any replica can finish the login and two tabs can
//! log in at once.

use std::rc::Rc;

use sha2::{Digest, Sha256};

use super::outcomes::{self, Outcome};
use super::session::{self, Browser};
use super::slots::Key;
use super::{Core, IdpCall, Stop, bearer, idp_args};
use crate::action::{Action, Decision, IdpReply, Response};
use crate::cache::BoundedCache;
use crate::config::{Config, IssuerId, SameSite};
use crate::error::{Error, IdpError, TokenError};
use crate::oidc::claims::{Claims, check_policy, check_tenant, check_times};
use crate::oidc::jwt::Jwt;
use crate::oidc::pkce;
use crate::oidc::provider::{Document, Keys};
use crate::oidc::token::{self, TokenResponse};
use crate::request::{RequestView, without_final_dot, without_port};
use crate::session::{Login, Session};
use crate::store::SharedStore;

/// How long a login may take, from the redirect to the callback.
const LOGIN_TTL: u64 = 600;
/// Logins kept in cookies at once (tabs logging in concurrently).
const MAX_LOGINS: usize = 3;
/// Login cookies cleared in one answer, at most: a client sending many
/// (made up) costs no more than a few `Set-Cookie` lines; the rest expire.
pub(super) const MAX_CLEARED: usize = 8;
/// The page a login returns to, its `redirect_uri` (derived from the
/// request's path when none is configured) and the scope it asks for are
/// kept in its cookie: at most this long together, the page's query left out when they are
/// longer, and the page `/` when still so, so that the sealed cookie stays
/// within the 4 KB a browser keeps (a larger one is dropped, and the login
/// could never complete). The rest of the cookie (state, nonce, verifier,
/// JSON) takes ~250 bytes before sealing and base64.
const MAX_LOGIN_URLS: usize = 2560;
/// How long a code exchange's outcome is kept for the request awaiting it.
const RESULT_TTL: u64 = 60;
/// How long the IdP's refusal of a code is shared: for the callbacks
/// waiting on that exchange at other workers, which look on their next
/// tick (a slot it holds longer, made-up codes could fill).
const REFUSAL_TTL: u64 = 10;
/// The shared-data kind of code exchanges' leases and outcomes.
pub(super) const KIND: &str = "code";
const REPLAYED: Error = Error::BadRequest("this login is complete (a replayed callback)");

/// What this way in keeps per worker.
pub(super) struct State {
    /// Code exchange outcomes, for the callback requests that waited on
    /// the exchange (`Attempt::answered`) and no other.
    pub(super) results: BoundedCache<Key, Result<TokenResponse, Error>>,
    /// Logins whose code was exchanged, by state.
    pub(super) spent: BoundedCache<Key, ()>,
    /// Exchanges the IdP throttled, by state: not sent again before its
    /// `Retry-After` (the code is not spent: it never reached the IdP's
    /// grant).
    pub(super) throttled: BoundedCache<Key, Error>,
}

impl State {
    /// One exchange per login: until its cookie would expire, a callback
    /// with this state is refused here without asking the IdP.
    fn spend(&mut self, key: Key, now: u64) {
        self.spent.insert(key, (), now, now + LOGIN_TTL);
    }
}

impl Default for State {
    fn default() -> State {
        State {
            results: BoundedCache::new(super::SMALL_CAPACITY),
            spent: BoundedCache::new(super::SMALL_CAPACITY),
            throttled: BoundedCache::new(super::SMALL_CAPACITY),
        }
    }
}

/// The parameters of a callback to `redirect_uri`.
pub(super) struct Callback {
    state: String,
    code: Option<String>,
    error: Option<String>,
    iss: Option<String>,
}

/// A request to the path of a configured `redirect_uri` that carries
/// `state` and `code` or `error`, is a callback; anything else is not.
///
/// Without a configured `redirect_uri` (derived per request, as Kong does)
/// any path may be one: a request is a callback only when it also carries
/// the login cookie of its `state`, so an application's own `?code=&state=`
/// requests pass untouched.
pub(super) fn callback_params(
    cfg: &Config,
    req: &RequestView,
    browser: &Browser,
) -> Option<Callback> {
    let (path, query) = req.path().split_once('?')?;
    let derived = cfg.redirect_uris.is_empty();
    if !derived && !cfg.redirect_uris.iter().any(|u| u.path() == path) {
        return None;
    }
    let (mut state, mut code, mut error, mut iss) = (None, None, None, None);
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        let slot = match k.as_ref() {
            "state" => &mut state,
            "code" => &mut code,
            "error" => &mut error,
            "iss" => &mut iss,
            _ => continue,
        };
        slot.get_or_insert(v.into_owned());
    }
    let state = state?;
    if derived && browser.cookie(&login_cookie(cfg, &state)).is_none() {
        return None;
    }
    (code.is_some() || error.is_some()).then_some(Callback {
        state,
        code,
        error,
        iss,
    })
}

fn state_key(state: &str) -> Key {
    Sha256::digest(state.as_bytes()).into()
}

/// The login cookie for a state: `<session cookie>_login_<hash of state>`.
fn login_cookie(cfg: &Config, state: &str) -> String {
    let hash = state_key(state);
    let hex: String = hash.iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("{}_login_{hex}", cfg.session.cookie_name)
}

pub(super) fn is_login_cookie(cfg: &Config, name: &str) -> bool {
    crate::session::cookie::is_login(&cfg.session.cookie_name, name)
}

/// A browser without a session: 302 to the IdP's login page.
pub(super) fn start(
    cfg: &Config,
    req: &RequestView,
    browser: &Browser,
    now: u64,
    core: &Core,
) -> Result<Decision, Stop> {
    let Some(discovery) = core.provider.discovery(now) else {
        return Err(Stop::fetch(Document::Discovery));
    };
    let endpoint =
        discovery
            .authorization_endpoint
            .as_ref()
            .ok_or(Error::Idp(IdpError::Unroutable {
                endpoint: crate::error::Endpoint::Discovery,
                reason: "discovery has no authorization_endpoint".into(),
            }))?;
    // Outside the session cookie's path, the session would never come back
    // here: each visit a new login, in a loop. (The callback is checked at
    // load when configured; derived, it is this path.)
    let path = req.path().split('?').next().unwrap_or_default();
    if !crate::session::cookie::path_matches(&cfg.session.cookie_path, path) {
        return Err(Error::BadRequest(
            "a path outside session_cookie_path: its session would never come back",
        )
        .into());
    }
    let redirect_uri = redirect_uri_for(cfg, req, browser.secure());
    let (Some(state), Some(nonce), Some(verifier)) = (
        pkce::random_value(),
        pkce::random_value(),
        pkce::random_value(),
    ) else {
        return Err(Error::Internal("no randomness from the host for the login's state").into());
    };
    let challenge = pkce::challenge(&verifier);
    let mut scopes = cfg.scopes.clone();
    if !scopes.iter().any(|s| s == "openid") {
        scopes.insert(0, "openid".to_string());
    }
    let scope = scopes.join(" ");
    // Derived from a path so long that the login cookie could not hold it
    // with the scope (the browser would drop it, and the callback start a
    // login again, in a loop): refused at once.
    if in_json(&redirect_uri) + in_json(&scope) >= MAX_LOGIN_URLS {
        return Err(Error::BadRequest("a path too long to log in from").into());
    }
    let extra = idp_args::authorization(cfg, req);
    let mut params = vec![
        ("response_type", "code"),
        (
            "client_id",
            cfg.client_ids
                .first()
                .map(String::as_str)
                .unwrap_or_default(),
        ),
        ("redirect_uri", &redirect_uri),
        ("scope", &scope),
        ("state", &state),
        ("nonce", &nonce),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ];
    params.extend(idp_args::as_str(&extra));
    let location = endpoint.with_query(&params);
    let login = Login {
        return_to: return_to(
            req.path(),
            MAX_LOGIN_URLS.saturating_sub(in_json(&redirect_uri) + in_json(&scope)),
        ),
        state: state.clone(),
        nonce,
        verifier,
        redirect_uri,
        expires_at: now + LOGIN_TTL,
        scope: Some(scope.clone()),
        rule: cfg.rule_index,
    };
    let name = login_cookie(cfg, &state);
    let sealed = serde_json::to_vec(&login)
        .ok()
        .and_then(|json| core.sealer.seal(&name, &json))
        .ok_or(Error::Internal(
            "could not seal the login cookie (no randomness from the host)",
        ))?;
    let mut headers = vec![("location".to_string(), location)];
    // At most MAX_LOGINS logins at once: clear the oldest beyond that
    // (browsers send older cookies first).
    let logins: Vec<&str> = browser
        .cookies()
        .map(|(n, _)| n)
        .filter(|n| is_login_cookie(cfg, n))
        .collect();
    let excess = logins.len().saturating_sub(MAX_LOGINS - 1);
    for old in logins.into_iter().take(excess.min(MAX_CLEARED)) {
        headers.push(set_cookie(cfg, browser, old, "", Some(0)));
    }
    headers.push(set_cookie(cfg, browser, &name, &sealed, Some(LOGIN_TTL)));
    Ok(redirect(headers, "redirect to login"))
}

/// The `redirect_uri` of a login started by `req`: of the configured ones,
/// the one whose host is the request's (a gateway serving several hosts),
/// else the first; none configured: derived from the request as Kong does
/// (scheme, `:authority`, the path without its query).
fn redirect_uri_for(cfg: &Config, req: &RequestView, https: bool) -> String {
    let (authority, host) = (req.authority(), req.host());
    if let Some(first) = cfg.redirect_uris.first() {
        // The host as the request names it first (the login cookie is the
        // browser's for that host), then one that differs by a final dot.
        let sent = without_port(authority);
        let same_host = cfg
            .redirect_uris
            .iter()
            .find(|u| without_port(&u.authority).eq_ignore_ascii_case(sent))
            .or_else(|| {
                cfg.redirect_uris.iter().find(|u| {
                    without_final_dot(without_port(&u.authority)).eq_ignore_ascii_case(host)
                })
            });
        return same_host.unwrap_or(first).to_string();
    }
    let scheme = match req.is_https() {
        Some(true) => "https",
        Some(false) => "http",
        None if https => "https",
        None => "http",
    };
    let path = req.path().split('?').next().unwrap_or("/");
    format!("{scheme}://{authority}{}", local_path(path))
}

/// Where the login of a request to `path` returns, in at most `room`
/// bytes of the cookie's JSON (`MAX_LOGIN_URLS`).
fn return_to(path: &str, room: usize) -> String {
    let path = local_path(path);
    if in_json(&path) <= room {
        return path;
    }
    match path.split_once('?') {
        Some((without_query, _)) if in_json(without_query) <= room => without_query.to_string(),
        _ => "/".to_string(),
    }
}

/// The bytes `s` takes as a JSON string's content: browsers send `\` and
/// `"` in a query unencoded, and JSON writes each as two (a link of
/// 2,400 backslashes made a 6.8 KB cookie, which the browser drops). A
/// `local_path` has no control characters, the other escaped ones.
fn in_json(s: &str) -> usize {
    s.len() + s.bytes().filter(|b| matches!(b, b'"' | b'\\')).count()
}

/// Only a path of ours: never `//host` or a scheme, so no open redirect;
/// nor a control character, which browsers drop from a URL as they read it
/// (`/<TAB>/host` is read `//host`).
fn local_path(path: &str) -> String {
    if path.starts_with('/')
        && !path.starts_with("//")
        && !path.starts_with("/\\")
        && !path.bytes().any(|b| b.is_ascii_control())
    {
        path.to_string()
    } else {
        "/".to_string()
    }
}

fn set_cookie(
    cfg: &Config,
    browser: &Browser,
    name: &str,
    value: &str,
    max_age: Option<u64>,
) -> (String, String) {
    (
        "set-cookie".to_string(),
        crate::session::cookie::set_login_cookie(
            &cfg.session,
            browser.secure(),
            name,
            value,
            max_age,
        ),
    )
}

pub(super) fn redirect(headers: Vec<(String, String)>, log: &str) -> Decision {
    Decision {
        action: Action::Respond(Rc::new(Response {
            status: 302,
            headers,
            body: String::new(),
        })),
        log: Some(log.to_string()),
    }
}

/// The IdP sent the browser back: check it is our login, exchange the
/// code, check the ID token, set the session, return where it started.
pub(super) fn callback(
    cfg: &Config,
    req: &RequestView,
    cb: &Callback,
    browser: &Browser,
    now: u64,
    core: &mut Core,
    store: &mut dyn SharedStore,
) -> Result<Decision, Stop> {
    let name = login_cookie(cfg, &cb.state);
    let login: Login = browser
        .cookie(&name)
        .and_then(|v| core.sealer.open(&name, v))
        .and_then(|json| crate::json::from_object(&json).ok())
        .ok_or(Error::BadRequest("no login in progress for this state"))?;
    if !pkce::equal(&login.state, &cb.state) {
        return Err(Error::BadRequest("state mismatch").into());
    }
    if now >= login.expires_at {
        return Err(Error::BadRequest("login expired").into());
    }
    if cb
        .iss
        .as_deref()
        .is_some_and(|iss| !cfg.issuer.is(iss) && !is_allowed_tenant(cfg, iss, core, now))
    {
        return Err(Error::BadRequest("issuer mismatch").into());
    }
    // RFC 9207 §2.4: an IdP that says its callbacks carry `iss` sends none
    // only when the response is not its own.
    if cb.iss.is_none()
        && core
            .provider
            .discovery(now)
            .is_some_and(|d| d.iss_in_responses)
    {
        return Err(Error::BadRequest("no issuer in the callback, which the IdP sends").into());
    }
    if cb.error.is_some() {
        // The user cancelled or the IdP refused: end this login for good.
        return Ok(end_login(
            cfg,
            browser,
            &name,
            Error::Token(TokenError::LoginFailed),
        ));
    }
    let code = cb.code.as_deref().ok_or(Error::BadRequest("no code"))?;
    let key = state_key(&cb.state);
    let answered = core.answered.contains(&IdpCall::Code(key));
    // The callbacks that waited on the exchange are given its outcome, and
    // so is the first that did not, if none had it yet: the request that
    // started the exchange went away (the browser reloaded, and the reply
    // came before the reload). Either claims its tokens once it has made a
    // session of them (not before: a request may stop on the way, for the
    // keys, and be decided again), so that any later one is a replay.
    let tokens = match core.code.results.get(&key, now) {
        // The IdP refused the code (spent, unknown, or a refused client,
        // 400, 401 or 403 as providers really answer): this login is over.
        Some(Err(Error::Token(TokenError::Rejected))) if answered => {
            let refused = Error::BadRequest("the identity provider refused the code");
            return Ok(end_login(cfg, browser, &name, refused));
        }
        Some(result) if answered => result.clone()?,
        // Not exchanged by this worker, or not for this request: perhaps
        // by another, whose outcome is shared (a reload over a new
        // connection lands anywhere).
        _ => {
            match outcomes::read(store, core.leases_for(KIND).prefix(), KIND, &key, now) {
                // The code of this login was exchanged and its tokens
                // given already: a replayed callback (noted, for when the
                // shared outcome has lapsed).
                Some(outcome) if outcome.claimed && !answered => {
                    core.code.spend(key, now);
                    return Err(REPLAYED.into());
                }
                // Its outcome, and the code spent here too.
                Some(outcome) => {
                    core.code.spend(key, now);
                    match outcome.tokens {
                        Some(tokens) => tokens,
                        None => {
                            let refused =
                                Error::BadRequest("the identity provider refused the code");
                            return Ok(end_login(cfg, browser, &name, refused));
                        }
                    }
                }
                None if core.code.spent.get(&key, now).is_some() => {
                    return Err(REPLAYED.into());
                }
                None => return Err(exchange(cfg, req, code, &login, key, now, core, store)),
            }
        }
    };
    let id_token = tokens
        .id_token
        .as_deref()
        .ok_or(Error::Idp(IdpError::BadBody {
            endpoint: crate::error::Endpoint::Token,
            reason: "no id_token".into(),
        }))?;
    let id_claims = check_id_token(cfg, id_token, &login.nonce, now, core)?;
    let (identity, scope, expires_at) = if bearer::is_ours(cfg, &tokens.access_token) {
        // Ours: it must pass the same checks as any bearer token, on every
        // request, and its claims are who the session is.
        let allowed = bearer::authenticate(cfg, &tokens.access_token, now, core)?;
        let expires_at = session::expiry(&tokens, Some(&allowed.claims), now);
        check_at_login(cfg, &login, &allowed.claims, None)?;
        (None, None, expires_at)
    } else {
        // Not ours to verify (opaque, or for another API): trusted for
        // coming from our own code exchange; the ID token says who it is.
        // None in the answer: the one the login asked for (RFC 6749 §5.1).
        let asked = login.scope.as_deref().unwrap_or(&cfg.scope);
        let scope: Rc<str> = tokens.scope.as_deref().unwrap_or(asked).into();
        check_at_login(cfg, &login, &id_claims, Some(&scope))?;
        // By `expires_in`; an IdP that gives none: as long as the ID token.
        let expires_at = match tokens.expires_in {
            Some(s) => now.saturating_add(s),
            None => session::expiry(&tokens, Some(&id_claims), now),
        };
        (Some(Rc::new(id_claims)), Some(scope), expires_at)
    };
    // Expired already (`expires_in: 0`, or this clock past its `exp` by
    // less than the leeway): the session would be due at once, and each
    // request a new login. The login ends here instead.
    if expires_at <= now {
        return Err(Error::Idp(IdpError::BadBody {
            endpoint: crate::error::Endpoint::Token,
            reason: "the access token has expired already (is the gateway's clock right?)".into(),
        })
        .into());
    }
    let session = Session {
        sid: pkce::random_value().ok_or(Error::Internal(
            "no randomness from the host for the session id",
        ))?,
        access_token: tokens.access_token.as_str().into(),
        refresh_token: tokens.refresh_token.clone(),
        id_token: Some(id_token.to_string()),
        identity,
        scope,
        expires_at,
        obtained_at: now,
        created_at: now,
        renewed_at: now,
        seen_at: now,
    };
    let mut headers = session::set_cookies(cfg, browser, core, &session)?;
    // Claimed, and by this request unless it waited on the exchange (those
    // are all given it); else another took it meanwhile.
    let claimed = outcomes::claim(store, core.leases_for(KIND).prefix(), KIND, &key, now);
    if !answered && !claimed {
        return Err(REPLAYED.into());
    }
    headers.push(set_cookie(cfg, browser, &name, "", Some(0)));
    if cfg.session.same_site == SameSite::Strict {
        return Ok(same_site_hop(headers, &login.return_to));
    }
    headers.insert(0, ("location".to_string(), login.return_to.clone()));
    Ok(redirect(headers, "login complete"))
}

/// Exchanges the login's code, under a lease across workers: while another
/// worker exchanges it (the same callback, reloaded), this request waits
/// for that exchange's outcome rather than spending the code again.
#[allow(clippy::too_many_arguments)]
fn exchange(
    cfg: &Config,
    req: &RequestView,
    code: &str,
    login: &Login,
    key: Key,
    now: u64,
    core: &mut Core,
    store: &mut dyn SharedStore,
) -> Stop {
    let Some(discovery) = core.provider.discovery(now) else {
        return Stop::fetch(Document::Discovery);
    };
    let ended = |core: &Core, store: &dyn SharedStore| {
        outcomes::read(store, core.leases_for(KIND).prefix(), KIND, &key, now).is_some()
    };
    if !outcomes::lease(cfg, core, store, KIND, &key, now, ended) {
        return Stop::wait(IdpCall::Code(key));
    }
    // The IdP throttled this worker's exchange of it: not again before its
    // Retry-After. (Checked once the lease is ours: while another worker
    // exchanges the code, this request waits for that outcome instead.)
    if let Some((e, until)) = core.code.throttled.get_until(&key, now) {
        let e = e.served(until, now);
        core.leases_for(KIND).release(store, KIND, &key);
        return Stop::Fail(e);
    }
    let extra = idp_args::token(cfg, Some(req));
    let mut params = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", &login.redirect_uri),
        ("code_verifier", &login.verifier),
    ];
    params.extend(idp_args::as_str(&extra));
    let call = (KIND, IdpCall::Code(key), &key);
    outcomes::token_call(cfg, discovery, core, store, call, &params)
}

/// The end of a login when sessions are `SameSite=Strict`: a page that
/// sends the browser on to `to` from our own site. A redirect would still
/// belong to the navigation the IdP's site started, on which browsers send
/// no `Strict` cookie: the session just set would be missing there, and
/// the login would start again, in a loop.
fn same_site_hop(mut headers: Vec<(String, String)>, to: &str) -> Decision {
    let to = html_attribute(to);
    headers.extend([
        (
            "content-type".to_string(),
            "text/html; charset=utf-8".to_string(),
        ),
        ("cache-control".to_string(), "no-store".to_string()),
        // The callback's URL holds the code: not sent on as a Referer.
        ("referrer-policy".to_string(), "no-referrer".to_string()),
    ]);
    Decision {
        action: Action::Respond(Rc::new(Response {
            status: 200,
            headers,
            body: format!(
                "<!doctype html><meta http-equiv=\"refresh\" content=\"0;url={to}\">\
                 <title>Signed in</title><a href=\"{to}\">Continue</a>"
            ),
        })),
        log: Some("login complete".to_string()),
    }
}

/// `s` for a double-quoted HTML attribute.
fn html_attribute(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// The policy, before a session is made for a login it would refuse
/// anyway. With `search_user_info` the userinfo claims may be what meets it:
/// then only the requests check it (`route`), with them. A login started
/// under another rule than the callback's is for a page the callback's
/// policy does not guard: that page's rule checks each of its requests.
fn check_at_login(
    cfg: &Config,
    login: &Login,
    claims: &Claims,
    granted: Option<&str>,
) -> Result<(), Error> {
    if cfg.search_user_info || login.rule != cfg.rule_index {
        return Ok(());
    }
    check_policy(cfg, claims, granted)
}

/// Ends a login for good: `error`'s answer, and its login cookie cleared.
fn end_login(cfg: &Config, browser: &Browser, cookie: &str, error: Error) -> Decision {
    let mut r = error.response(cfg.issuer.realm());
    r.headers
        .push(set_cookie(cfg, browser, cookie, "", Some(0)));
    Decision {
        log: Some(format!("{} login ended: {error}", r.status)),
        action: Action::Respond(Rc::new(r)),
    }
}

/// OpenID Connect Core §3.1.3.7: signature, `iss`, `aud` holds our client,
/// `azp` is ours when present, times, and the `nonce` we sent. Returns its
/// claims.
fn check_id_token(
    cfg: &Config,
    token: &str,
    nonce: &str,
    now: u64,
    core: &mut Core,
) -> Result<Claims, Stop> {
    let jwt = Jwt::parse(token)?;
    let verdict = match core.provider.keys(jwt.kid.as_deref(), now) {
        Keys::Found(candidates) => jwt.verify(candidates),
        Keys::Fetch => return Err(Stop::fetch(Document::Jwks)),
        Keys::Unknown => return Err(core.unknown_key(IssuerId::CONFIGURED)),
    };
    if let Err(e) = verdict {
        // Keys rotated without a new `kid`: see `Core::refused_signature`.
        return Err(core
            .refused_signature(IssuerId::CONFIGURED, e, now)
            .unwrap_or_else(|| e.into()));
    }
    let claims: &Claims = &jwt.claims;
    let iss = claims
        .get("iss")
        .and_then(|v| v.as_str())
        .unwrap_or_default();
    if !cfg.issuer.is(iss) && !is_allowed_tenant(cfg, iss, core, now) {
        return Err(Error::BadRequest("ID token issuer mismatch").into());
    }
    if !cfg.issuer.is(iss) {
        check_tenant(claims)?;
    }
    let client_id = cfg
        .client_ids
        .first()
        .map(String::as_str)
        .unwrap_or_default();
    let aud_ok = match claims.get("aud") {
        Some(serde_json::Value::String(a)) => a == client_id,
        Some(serde_json::Value::Array(a)) => a.iter().any(|v| v.as_str() == Some(client_id)),
        _ => false,
    };
    let azp_ok = claims
        .get("azp")
        .is_none_or(|v| v.as_str() == Some(client_id));
    if !aud_ok || !azp_ok {
        return Err(TokenError::WrongIdTokenAudience.into());
    }
    check_times(claims, now, cfg.leeway)?;
    let sent = claims
        .get("nonce")
        .and_then(|v| v.as_str())
        .unwrap_or_default();
    if !pkce::equal(sent, nonce) {
        return Err(Error::BadRequest("nonce mismatch").into());
    }
    Ok(jwt.claims)
}

/// A multi-tenant issuer's login (Entra ID's `/organizations`) comes back
/// with the user's tenant as issuer: one of `issuers_allowed`, never any.
fn is_allowed_tenant(cfg: &Config, iss: &str, core: &Core, now: u64) -> bool {
    core.provider
        .discovery(now)
        .is_some_and(|d| d.is_multi_tenant())
        && cfg.issuer_id(iss).is_some()
}

/// Keeps the outcome of a code exchange for the requests awaiting it, here
/// and, when the IdP answered (tokens, or a refusal of the code), at the
/// other workers; gives the lease back.
pub(super) fn handle_reply(
    key: &Key,
    reply: &IdpReply,
    now: u64,
    core: &mut Core,
    store: &mut dyn SharedStore,
) -> Option<Error> {
    let result: Result<TokenResponse, Error> = token::parse_response(reply);
    let err = result.as_ref().err().cloned();
    let shared = match &result {
        Ok(tokens) => Some(Some(tokens.clone())),
        // Refused; or answered 200 with what we cannot read, having spent
        // the code all the same (sent again, it could revoke what it gave).
        Err(Error::Token(TokenError::Rejected)) => Some(None),
        Err(_) if reply.status == Some(200) => Some(None),
        // The IdP may not have seen the code (no answer, 5xx): a callback
        // may try it again (the requests that waited on this call fail
        // with its error, `Attempt::failed`).
        Err(_) => None,
    };
    if let Some(tokens) = shared {
        let life = if tokens.is_some() {
            RESULT_TTL
        } else {
            REFUSAL_TTL
        };
        let outcome = Outcome {
            until: now + life,
            tokens,
            claimed: false,
        };
        if !outcomes::write(
            store,
            core.leases_for(KIND).prefix(),
            KIND,
            key,
            &outcome,
            now,
        ) {
            core.stats.add("code_outcome_evicted");
        }
        core.code.spend(*key, now);
        core.code
            .results
            .insert(*key, result, now, now + RESULT_TTL);
    } else if let Some(e) = &err
        && let Some(wait) = e.retry_after()
    {
        core.code.throttled.insert(*key, e.clone(), now, now + wait);
    }
    core.leases_for(KIND).release(store, KIND, key);
    err
}
