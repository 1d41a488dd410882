//! Riding a session: a sealed cookie carries the tokens; the access token
//! is checked like a bearer token on every request and refreshed with the
//! refresh token shortly before it expires.
//!
//! One refresh per session at a time across all workers (a lease, as for
//! client credentials), and its outcome stays readable for a minute under
//! the session id, so that parallel requests of the session use the new
//! tokens instead of replaying the old refresh token (an IdP that rotates
//! refresh tokens revokes the whole grant on a replay).

use std::borrow::Cow;
use std::rc::Rc;

use sha2::{Digest, Sha256};

use super::authorization_code::MAX_CLEARED;
use super::outcomes::{self, Outcome};
use super::slots::Key;
use super::{Allowed, Core, IdpCall, Stop, bearer, idp_args};
use crate::action::IdpReply;
use crate::cache::{BoundedCache, TailKeyed, same_bytes, tail_key};
use crate::config::{AuthMethod, Config};
use crate::error::{Endpoint, Error, IdpError, TokenError};
use crate::oidc::claims::Claims;
use crate::oidc::provider::Document;
use crate::oidc::token::{self, TokenResponse};
use crate::request::RequestView;
use crate::session::{Session, cookie};
use crate::store::SharedStore;

/// Refresh this long before the access token expires, at most: a quarter
/// of the token's life when that is less (as client credentials do), so
/// that a token serves three quarters of its life between refreshes. A
/// margin of a fixed minute would make a token of 62 s due 2 s after each
/// refresh: every active session of a provider issuing minute tokens would
/// spend a refresh grant every 2 s.
const REFRESH_MARGIN: u64 = 60;
/// A refresh outcome is readable for a minute at least, for the session's
/// parallel requests (`outcome_life`).
const OUTCOME_MIN_LIFE: u64 = 60;
/// Outcomes read in one request, each found for the token the one before
/// gave (`authenticate`): a cookie refreshes behind at most this many
/// (a day of outcomes at the idling timeout's bound, of tokens of ~6 min).
const MAX_OUTCOMES_READ: usize = 256;
/// After the IdP failed to answer a refresh, wait this long before the next
/// try (the still-valid token serves meanwhile).
const REFRESH_BACKOFF: u64 = 5;
/// The life of a refreshed opaque token that says none (nor its ID token).
const DEFAULT_LIFETIME: u64 = 300;
/// Note a session in use (idling timeout) at most this often (or a quarter
/// of a shorter idling timeout): each time is a new cookie.
const SEEN_EVERY: u64 = 60;
/// The shared-data kind of refresh slots and leases.
pub(super) const KIND: &str = "refresh";

/// What riding sessions keeps per worker (the shared slots hold the rest).
pub(super) struct State {
    /// Opened session cookies, by `cache::tail_key` (see `open`).
    pub(super) opened: TailKeyed<Opened>,
    /// Refresh outcomes this worker made or read, by refresh key.
    pub(super) refreshed: BoundedCache<Key, Refreshed>,
    /// Refreshes the IdP failed to answer, to retry a little later.
    pub(super) backoff: BoundedCache<Key, Error>,
}

/// A session cookie opened, as this worker keeps it.
pub(super) struct Opened {
    /// The sealed value, compared whole on a hit.
    sealed: Box<str>,
    session: Rc<Session>,
    /// Its access token once verified (`bearer::verify`; tokens of our own
    /// exchange, `identity`, are not): later requests with this cookie skip
    /// the verified-token cache's hash, lookup and compare of the token.
    verified: Option<bearer::Verified>,
}

impl Default for State {
    fn default() -> State {
        State {
            opened: TailKeyed::with_capacity(super::SMALL_CAPACITY),
            refreshed: BoundedCache::new(super::SMALL_CAPACITY),
            backoff: BoundedCache::new(super::SMALL_CAPACITY),
        }
    }
}

/// A header value as text: borrowed when it is UTF-8 (the usual case,
/// which `from_utf8` checks a word at a time), else read lossily. By hand
/// because `from_utf8_lossy` alone walks the value chunk by chunk: on a
/// session request (a 1.5 KB cookie) that was a quarter of the module's
/// time in a wasmtime profile (tests/harness/profile.rs).
fn text(value: &[u8]) -> Cow<'_, str> {
    std::str::from_utf8(value).map_or_else(|_| String::from_utf8_lossy(value), Cow::Borrowed)
}

/// What the filter reads of a browser request.
pub(super) struct Browser<'r> {
    /// The `Cookie` headers' pieces in order, read once: borrowed from the
    /// request, owned where a header was not UTF-8.
    pieces: Vec<Piece<'r>>,
    req: &'r RequestView,
    cookie_secure: Option<bool>,
}

/// A `cookie::Piece` of the request's `Cookie` headers.
struct Piece<'r> {
    sent: Cow<'r, str>,
    name: Cow<'r, str>,
    value: Option<Cow<'r, str>>,
}

impl<'r> Piece<'r> {
    /// `p`'s parts, each kept by `keep` (borrowed, or copied).
    fn new<'a>(p: cookie::Piece<'a>, keep: impl Fn(&'a str) -> Cow<'r, str>) -> Piece<'r> {
        Piece {
            sent: keep(p.sent),
            name: keep(p.name),
            value: p.value.map(&keep),
        }
    }
}

impl<'r> Browser<'r> {
    pub fn new(cfg: &Config, req: &'r RequestView) -> Browser<'r> {
        let mut pieces = Vec::new();
        for header in req.all("cookie") {
            // Lossy, not skipped: a header with a stray non-UTF-8 byte must
            // still have our cookies found in it (and stripped before upstream).
            match text(header) {
                Cow::Borrowed(h) => {
                    pieces.extend(cookie::pieces(h).map(|p| Piece::new(p, Cow::Borrowed)));
                }
                Cow::Owned(h) => pieces.extend(
                    cookie::pieces(&h).map(|p| Piece::new(p, |s: &str| Cow::Owned(s.to_string()))),
                ),
            }
        }
        Browser {
            pieces,
            req,
            cookie_secure: cfg.session.cookie_secure,
        }
    }

    /// Whether cookies set for this request get `Secure`: as configured,
    /// else when it came over https, read as the login's `redirect_uri` is
    /// (`X-Forwarded-Proto` first: behind a TLS terminator that speaks h2c
    /// to Envoy, `:scheme` says http). Asked only when a cookie is set
    /// (two header lookups that most requests need not make).
    pub fn secure(&self) -> bool {
        self.cookie_secure
            .unwrap_or_else(|| self.req.is_https() == Some(true))
    }

    /// The cookies (the pieces with a name and a value), in order.
    pub fn cookies(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pieces
            .iter()
            .filter_map(|p| Some((p.name.as_ref(), p.value.as_deref()?)))
    }

    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// Is this one of our cookies (session chunks, logins)?
    pub fn is_ours(cfg: &Config, name: &str) -> bool {
        cookie::is_ours(&cfg.session.cookie_name, name)
    }

    /// The `Cookie` header without the cookies named `stripped` (ours, a
    /// bearer token's), for upstream: every other piece as the client sent
    /// it, byte for byte (quotes, cookies without `=`), only the separators
    /// made `; `.
    pub fn foreign_cookies(&self, stripped: impl Fn(&str) -> bool) -> String {
        let mut rest = String::new();
        let foreign = self
            .pieces
            .iter()
            .filter(|p| !p.sent.is_empty() && !stripped(&p.name));
        for p in foreign {
            if !rest.is_empty() {
                rest.push_str("; ");
            }
            rest.push_str(&p.sent);
        }
        rest
    }
}

/// When a session's access token expires: the token's `exp` (from its
/// `claims`, when it has any), or sooner if the token endpoint said so.
pub(super) fn expiry(tokens: &TokenResponse, claims: Option<&Claims>, now: u64) -> u64 {
    let exp = claims
        .and_then(|c| c.get("exp")?.as_f64())
        .map(|t| t as u64);
    let by_expires_in = tokens.expires_in.map(|s| now.saturating_add(s));
    match (exp, by_expires_in) {
        (Some(a), Some(b)) => a.min(b),
        (Some(t), None) | (None, Some(t)) => t,
        (None, None) => now,
    }
}

/// `Set-Cookie` headers that store `session`, and clear chunks it no
/// longer needs.
pub(super) fn set_cookies(
    cfg: &Config,
    browser: &Browser,
    core: &Core,
    session: &Session,
) -> Result<Vec<(String, String)>, Error> {
    let name = &cfg.session.cookie_name;
    let sealed = serde_json::to_vec(session)
        .ok()
        .and_then(|json| core.sealer.seal(name, &json))
        .ok_or(Error::Internal(
            "could not seal the session cookie (no randomness from the host)",
        ))?;
    let chunks = cookie::split(name, &sealed).ok_or(Error::Internal(
        "the session is too large for its cookies (the IdP's tokens are too big)",
    ))?;
    // A persistent cookie until the absolute timeout; a browser-session
    // cookie when there is none.
    let max_age = (cfg.session.absolute_timeout != u64::MAX).then(|| {
        cfg.session
            .absolute_timeout
            .saturating_sub(session.seen_at.saturating_sub(session.created_at))
    });
    let mut headers: Vec<(String, String)> = chunks
        .iter()
        .map(|(n, v)| {
            (
                "set-cookie".to_string(),
                cookie::set_cookie(&cfg.session, browser.secure(), n, v, max_age),
            )
        })
        .collect();
    for i in chunks.len()..cookie::MAX_CHUNKS {
        let stale = cookie::chunk_name(name, i);
        if browser.cookie(&stale).is_some() {
            headers.push((
                "set-cookie".to_string(),
                cookie::set_cookie(&cfg.session, browser.secure(), &stale, "", Some(0)),
            ));
        }
    }
    Ok(headers)
}

/// `Set-Cookie` headers that delete the cookies of ours the browser sent:
/// the session's chunks, whatever else comes before them, and at most
/// `MAX_CLEARED` logins (each name once). A browser holds no more, and a
/// client sending many made-up ones, or a sibling subdomain planting them
/// on a longer path (sent first), gets no more lines back nor keeps the
/// session from being cleared.
pub(super) fn clear_cookies(cfg: &Config, browser: &Browser) -> Vec<(String, String)> {
    let base = &cfg.session.cookie_name;
    let chunks = (0..cookie::MAX_CHUNKS)
        .map(|i| cookie::chunk_name(base, i))
        .filter(|n| browser.cookie(n).is_some());
    let mut logins: Vec<&str> = Vec::new();
    for (n, _) in browser.cookies() {
        if logins.len() < MAX_CLEARED && cookie::is_login(base, n) && !logins.contains(&n) {
            logins.push(n);
        }
    }
    chunks
        .chain(logins.into_iter().map(str::to_string))
        .map(|n| {
            (
                "set-cookie".to_string(),
                cookie::set_cookie(&cfg.session, browser.secure(), &n, "", Some(0)),
            )
        })
        .collect()
}

/// The session in the request's cookies, if it opens and has not timed out.
///
/// Opened sessions are kept per worker by their sealed value: a browser
/// sends the same cookie until it is renewed, and decrypting and parsing it
/// cost several times a whole cached request in V8. A hit is the very bytes
/// that were authenticated before; the timeouts are checked on every use.
pub(super) fn open(
    cfg: &Config,
    browser: &Browser,
    core: &mut Core,
    now: u64,
) -> Option<Rc<Session>> {
    open_cached(cfg, browser, core, now).map(|(_, session, _)| session)
}

/// `open`, with the cookie's cache key and its access token as verified
/// before (see `Opened::verified`).
fn open_cached(
    cfg: &Config,
    browser: &Browser,
    core: &mut Core,
    now: u64,
) -> Option<(u64, Rc<Session>, Option<bearer::Verified>)> {
    let name = &cfg.session.cookie_name;
    let sealed = cookie::join_with(|n| browser.cookie(n), name)?;
    let key = tail_key(&core.hasher, sealed.as_bytes());
    let (session, verified) = match core.session.opened.get(&key, now) {
        Some(o) if same_bytes(o.sealed.as_bytes(), sealed.as_bytes()) => {
            (Rc::clone(&o.session), o.verified.clone())
        }
        _ => {
            let json = core.sealer.open(name, &sealed)?;
            let s: Rc<Session> = Rc::new(crate::json::from_object(&json).ok()?);
            let until = s.ends_at(&cfg.session);
            let opened = Opened {
                sealed: sealed.into_owned().into_boxed_str(),
                session: Rc::clone(&s),
                verified: None,
            };
            core.session.opened.insert(key, opened, now, until);
            (s, None)
        }
    };
    session
        .is_live(&cfg.session, now)
        .then_some((key, session, verified))
}

/// Names one refresh of one session: its id and the access token being
/// replaced, so a later refresh never reads an earlier one's outcome.
fn refresh_key(session: &Session) -> Key {
    let mut h = Sha256::new();
    h.update(session.sid.as_bytes());
    h.update([0]);
    h.update(session.access_token.as_bytes());
    h.finalize().into()
}

/// A refresh outcome as shared between workers (`None` tokens: the
/// refresh failed, the session is over).
pub(super) type Refreshed = Outcome;

/// How long a refresh's outcome is kept: as long as a cookie from before
/// it can still open, so that one coming back late (the refresh's response
/// never reached the browser: an aborted fetch, a closed tab; or a slower
/// response's older cookie overwrote the new one) is given the tokens the
/// refresh got, and does not send its spent refresh token again (IdPs that
/// rotate refresh tokens take a second use for theft, and revoke the
/// grant). Such a cookie was seen and renewed before the refresh, so it
/// ends within the shortest of the session's timeouts after it; within a
/// day, at most.
fn outcome_life(cfg: &Config) -> u64 {
    let s = &cfg.session;
    s.idling_timeout
        .min(s.rolling_timeout)
        .min(s.absolute_timeout)
        .clamp(OUTCOME_MIN_LIFE, outcomes::MAX_LIFE)
}

fn read_outcome(core: &Core, store: &dyn SharedStore, key: &Key, now: u64) -> Option<Refreshed> {
    if let Some(r) = core.session.refreshed.get(key, now) {
        return Some(r.clone());
    }
    outcomes::read(store, core.leases_for(KIND).prefix(), KIND, key, now)
}

/// Keeps an outcome for this worker's requests, and for the other workers
/// in shared data (`outcomes::write`; an outcome given up for it is
/// counted as `refresh_outcome_evicted`).
fn write_outcome(
    core: &mut Core,
    store: &mut dyn SharedStore,
    key: &Key,
    outcome: &Refreshed,
    now: u64,
) {
    core.session
        .refreshed
        .insert(*key, outcome.clone(), now, outcome.until);
    if !outcomes::write(
        store,
        core.leases_for(KIND).prefix(),
        KIND,
        key,
        outcome,
        now,
    ) {
        core.stats.add("refresh_outcome_evicted");
    }
}

/// Authenticates with the session cookie. `Ok(None)`: no usable session
/// (none, tampered, expired, or its refresh failed): treat as no
/// credentials.
pub(super) fn authenticate(
    cfg: &Config,
    browser: &Browser,
    now: u64,
    core: &mut Core,
    store: &mut dyn SharedStore,
) -> Result<Option<Allowed>, Stop> {
    let Some((cookie_key, mut session, verified)) = open_cached(cfg, browser, core, now) else {
        return Ok(None);
    };
    let mut renewed = false;
    // A cookie from before a refresh (its response lost, or overwritten by
    // an older one's) comes back to the refresh's tokens, not to a second
    // use of its refresh token; if those are due in turn, to the next
    // refresh's, and so on.
    for _ in 0..MAX_OUTCOMES_READ {
        // A minute before expiry, or a quarter of the token's life if shorter.
        let margin = REFRESH_MARGIN.min(session.token_life() / 4);
        if now + margin < session.expires_at {
            break;
        }
        let can_refresh =
            session.refresh_token.is_some() && cfg.auth_methods.contains(AuthMethod::RefreshToken);
        if !can_refresh {
            if now >= session.expires_at {
                return Ok(None);
            }
            break;
        }
        let key = refresh_key(&session);
        let still_valid = now < session.expires_at;
        match read_outcome(core, store, &key, now) {
            Some(Refreshed { tokens: None, .. }) => return Ok(None),
            Some(Refreshed {
                tokens: Some(t),
                until,
                ..
            }) => {
                renewed = true;
                match apply_outcome(cfg, &mut session, &key, &t, until, now) {
                    // The refresh named another user: no session.
                    None => return Ok(None),
                    Some(false) => break,
                    Some(true) => {}
                }
            }
            None => match core.session.backoff.get_until(&key, now) {
                // The IdP could not refresh just now: the current token
                // serves on until it expires; past that the request
                // fails as the refresh did until the backoff (or the
                // IdP's Retry-After) ends, not calling on each one.
                Some(_) if still_valid => break,
                Some((e, until)) => return Err(Stop::Fail(e.served(until, now))),
                None => return Err(refresh(cfg, &session, key, now, core, store)),
            },
        }
    }
    // Past the outcomes read (or the same token given back), a token that
    // has expired is no session: never forwarded, nor sealed anew (one not
    // ours to verify would be neither checked nor refused below).
    if now >= session.expires_at {
        return Ok(None);
    }
    let verified = match &session.identity {
        // Obtained by our own exchange and not ours to verify: who it is
        // for is the identity verified at login.
        Some(identity) => Ok(Allowed::obtained(
            Rc::clone(&session.access_token),
            Rc::clone(identity),
            session.scope.clone(),
        )),
        // The token this cookie carries, verified before: unless a refresh
        // just replaced it.
        None => {
            let kept = verified.filter(|_| !renewed);
            bearer::verify_unless_kept(cfg, &session.access_token, kept, now, core).map(
                |(verified, fresh)| {
                    if fresh
                        && !renewed
                        && let Some(o) = core.session.opened.get_mut(&cookie_key, now)
                    {
                        o.verified = Some(verified.clone());
                    }
                    let (token, claims, _) = verified;
                    Allowed::new(token, claims)
                },
            )
        }
    };
    // A session whose token no longer passes is no session; a policy
    // refusal (403) or an IdP outage stays what it is. After a refresh, the
    // refresh token the browser's cookie holds is spent: the renewed cookie
    // goes out with the refusal, also when the new token names a key the
    // IdP does not publish yet (a later request may find it).
    let kept_after_refresh = |stop: &Stop| {
        renewed && !matches!(stop, Stop::Fail(Error::Token(e)) if *e != TokenError::UnknownKey)
    };
    let mut allowed = match verified {
        Ok(a) => a,
        Err(stop) if kept_after_refresh(&stop) => {
            return Err(stop.keeping(resealed(cfg, browser, core, &mut session, true, now)?));
        }
        Err(Stop::Fail(Error::Token(_))) => return Ok(None),
        Err(other) => return Err(other),
    };
    allowed.refreshed = renewed;
    // In use: seen (idling timeout) at most once a minute; renewed (rolling
    // timeout) once half its period has passed, so that a session in use
    // never meets it. Either way a new cookie.
    let seen = session.seen_at.max(session.renewed_at);
    let roll = cfg.session.rolling_timeout != u64::MAX
        && now
            >= session
                .renewed_at
                .saturating_add(cfg.session.rolling_timeout / 2);
    // Short idling timeouts are noted more often, so that use keeps them.
    let every = SEEN_EVERY.min(cfg.session.idling_timeout / 4).max(1);
    if renewed || roll || now >= seen.saturating_add(every) {
        allowed.response = resealed(cfg, browser, core, &mut session, renewed || roll, now)?;
    }
    allowed.session = Some(session);
    Ok(Some(allowed))
}

/// The session's new cookie: seen in use at `now`, and renewed then if
/// `renewed` (copied out of the cache first).
fn resealed(
    cfg: &Config,
    browser: &Browser,
    core: &Core,
    session: &mut Rc<Session>,
    renewed: bool,
    now: u64,
) -> Result<Vec<(String, String)>, Error> {
    let s = Rc::make_mut(session);
    s.seen_at = now;
    if renewed {
        // A cookie from before `obtained_at` had its token's time in
        // `renewed_at`: kept before that moves.
        if s.obtained_at == 0 {
            s.obtained_at = s.renewed_at;
        }
        s.renewed_at = now;
    }
    set_cookies(cfg, browser, core, session)
}

/// Applies a refresh's tokens (its outcome, readable until `until`) to
/// `session`, whose refresh key was `key`: `Some(false)` when the IdP gave
/// the same access token back (the same outcome would be found again, so
/// no further one is to be looked for); `None`, and nothing applied, when
/// its ID token names another `iss`, `sub` or `aud` than the session's
/// (OpenID Connect Core §12.2: the refresh failed; its tokens are not the
/// session's user's).
fn apply_outcome(
    cfg: &Config,
    session: &mut Rc<Session>,
    key: &Key,
    t: &TokenResponse,
    until: u64,
    now: u64,
) -> Option<bool> {
    if let Some(idt) = &t.id_token
        && !same_subject(session.id_token.as_deref(), idt)
    {
        return None;
    }
    // Copied (out of the cache) only when it changes; timed from when the
    // refresh was (it may be another worker's, a while ago), which `until`
    // says.
    let at = until.saturating_sub(outcome_life(cfg)).min(now);
    apply_refresh(Rc::make_mut(session), t, at);
    Some(refresh_key(session) != *key)
}

/// `session` with the refreshes made since its cookie was sealed applied
/// (the outcomes `authenticate` follows), never starting one: what logout
/// revokes and ends.
pub(super) fn latest(
    cfg: &Config,
    mut session: Rc<Session>,
    core: &Core,
    store: &dyn SharedStore,
    now: u64,
) -> Rc<Session> {
    for _ in 0..MAX_OUTCOMES_READ {
        let key = refresh_key(&session);
        let Some(Refreshed {
            tokens: Some(t),
            until,
            ..
        }) = read_outcome(core, store, &key, now)
        else {
            break;
        };
        if apply_outcome(cfg, &mut session, &key, &t, until, now) != Some(true) {
            break;
        }
    }
    session
}

/// Ends `session`'s refreshes on every worker (a logout): its refresh
/// key's outcome, a refusal, so that a copy of its cookie still in a
/// browser or in flight is no session once its token is due.
pub(super) fn end_refreshes(
    cfg: &Config,
    session: &Session,
    core: &mut Core,
    store: &mut dyn SharedStore,
    now: u64,
) {
    if session.refresh_token.is_none() {
        return;
    }
    // Until the session's token is due at the latest (a copy of its
    // cookie in use meanwhile does not idle out), within an outcome's life.
    let due = session.expires_at.saturating_add(REFRESH_MARGIN);
    let ended = Refreshed {
        until: (now + outcome_life(cfg))
            .max(due)
            .min(now + outcomes::MAX_LIFE),
        tokens: None,
        claimed: false,
    };
    write_outcome(core, store, &refresh_key(session), &ended, now);
}

/// Whether a refreshed ID token names the `iss`, `sub` and `aud` of the
/// one it replaces, as OpenID Connect Core §12.2 requires (see
/// `apply_outcome`). Read without a signature check: it came from the
/// token endpoint, over TLS, as the one at login did.
fn same_subject(before: Option<&str>, after: &str) -> bool {
    let claims = |t| crate::oidc::jwt::Jwt::parse(t).ok().map(|j| j.claims);
    let Some(after) = claims(after) else {
        return false;
    };
    match before.and_then(claims) {
        Some(before) => ["iss", "sub", "aud"]
            .iter()
            .all(|k| before.get(k).is_some() && before.get(k) == after.get(k)),
        None => true,
    }
}

fn apply_refresh(session: &mut Session, t: &TokenResponse, now: u64) {
    session.access_token = t.access_token.as_str().into();
    // IdPs that do not rotate refresh tokens send none back: keep ours.
    if let Some(rt) = &t.refresh_token {
        session.refresh_token = Some(rt.clone());
    }
    if let Some(idt) = &t.id_token {
        session.id_token = Some(idt.clone());
    }
    // The identity stays the one verified at login (the subject of a
    // refreshed ID token is the same, OpenID Connect Core §12.2); the
    // granted scopes may narrow.
    if let (Some(_), Some(scope)) = (&session.identity, &t.scope) {
        session.scope = Some(scope.as_str().into());
    }
    session.expires_at = refreshed_expiry(t, now);
    session.obtained_at = now;
}

/// When a refreshed access token expires: by its `exp` and `expires_in`;
/// an opaque one with no `expires_in`, as long as the refreshed ID token
/// (as at login), else five minutes.
fn refreshed_expiry(t: &TokenResponse, now: u64) -> u64 {
    let by_exp = token::unverified_exp(&t.access_token);
    let by_expires_in = t.expires_in.map(|s| now.saturating_add(s));
    match (by_exp, by_expires_in) {
        (Some(a), Some(b)) => a.min(b),
        (Some(t), None) | (None, Some(t)) => t,
        (None, None) => t
            .id_token
            .as_deref()
            .and_then(token::unverified_exp)
            .filter(|&exp| exp > now)
            .unwrap_or(now + DEFAULT_LIFETIME),
    }
}

/// Starts the session's refresh, or waits for the one under way.
fn refresh(
    cfg: &Config,
    session: &Session,
    key: Key,
    now: u64,
    core: &mut Core,
    store: &mut dyn SharedStore,
) -> Stop {
    let Some(discovery) = core.provider.discovery(now) else {
        return Stop::fetch(Document::Discovery);
    };
    let ended =
        |core: &Core, store: &dyn SharedStore| read_outcome(core, store, &key, now).is_some();
    if !outcomes::lease(cfg, core, store, KIND, &key, now, ended) {
        return Stop::wait(IdpCall::Refresh(key));
    }
    let rt = session.refresh_token.as_deref().unwrap_or_default();
    // Fixed parameters only: the request that finds the refresh due may
    // be any of the session's.
    let extra = idp_args::token(cfg, None);
    let mut params = vec![("grant_type", "refresh_token"), ("refresh_token", rt)];
    params.extend(idp_args::as_str(&extra));
    let call = (KIND, IdpCall::Refresh(key), &key);
    outcomes::token_call(cfg, discovery, core, store, call, &params)
}

/// The budget refused the refresh call: like an IdP that did not answer,
/// the session's current token serves on while it is valid (retried the
/// next second), rather than a 503 for every request of every session
/// near expiry while the budget is spent.
pub(super) fn refused(key: &Key, e: &Error, now: u64, core: &mut Core) {
    core.session.backoff.insert(*key, e.clone(), now, now + 1);
}

/// Shares a refresh's outcome with the session's other requests.
pub(super) fn handle_reply(
    cfg: &Config,
    key: &Key,
    reply: &IdpReply,
    now: u64,
    core: &mut Core,
    store: &mut dyn SharedStore,
) -> Option<Error> {
    // A token that has expired already (`expires_in: 0`) would leave the
    // session due at once. The IdP issued it, so it spent the refresh token
    // (and may have rotated it): not to be sent again, so the end of the
    // session, as a refusal is.
    let mut spent_for_nothing = false;
    let result = token::parse_response(reply).and_then(|t| {
        if refreshed_expiry(&t, now) <= now {
            spent_for_nothing = true;
            return Err(IdpError::BadBody {
                endpoint: Endpoint::Token,
                reason: "the refreshed access token has expired already".into(),
            }
            .into());
        }
        Ok(t)
    });
    let outcome = Refreshed {
        until: now + outcome_life(cfg),
        tokens: result.as_ref().ok().cloned(),
        claimed: false,
    };
    // A 200 in JSON that does not read as a token answer (a negative
    // `expires_in`, a `scope` array, another `token_type`) is the IdP's own
    // answer too: it may have spent, and rotated, the refresh token.
    let unread_answer = result.is_err()
        && reply.status == Some(200)
        && serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&reply.body)
            .is_ok();
    // A refresh the IdP could not answer (503, or a 200 that is no JSON
    // answer: a maintenance page) is not the end of the session: only a
    // refusal, a token that expired at once or an answer that did not read
    // is shared as final.
    let final_refusal = spent_for_nothing
        || unread_answer
        || matches!(result, Err(Error::Token(TokenError::Rejected)));
    if let Err(e) = &result
        && !final_refusal
    {
        let wait = e.retry_after().unwrap_or(REFRESH_BACKOFF);
        core.session
            .backoff
            .insert(*key, e.clone(), now, now + wait);
    }
    // A logout while the refresh was under way recorded its end
    // (`end_refreshes`): the tokens it got are not written over that.
    let ended = result.is_ok()
        && matches!(
            read_outcome(core, store, key, now),
            Some(Refreshed { tokens: None, .. })
        );
    if (result.is_ok() || final_refusal) && !ended {
        write_outcome(core, store, key, &outcome, now);
    }
    core.leases_for(KIND).release(store, KIND, key);
    result.err()
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::HashMap;

    use super::*;
    use crate::flow::{Need, Shared};
    use crate::request::RequestView;

    #[derive(Default)]
    struct Map {
        entries: HashMap<String, (Vec<u8>, u32)>,
        next: u32,
    }

    impl SharedStore for Map {
        fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
            self.entries.get(key).cloned()
        }
        fn set(&mut self, key: &str, value: &[u8], cas: u32) -> bool {
            if cas != 0 && self.entries.get(key).is_some_and(|(_, c)| *c != cas) {
                return false;
            }
            self.next += 1;
            self.entries.insert(key.into(), (value.to_vec(), self.next));
            true
        }
    }

    /// What runs in another worker meanwhile.
    type Hook<'a> = Box<dyn FnOnce(&mut Map) + 'a>;

    /// A store whose first read of a lease first runs `hook`: another
    /// worker finishing its refresh between two steps of ours.
    struct Hooked<'a> {
        inner: RefCell<&'a mut Map>,
        hook: RefCell<Option<Hook<'a>>>,
    }

    impl SharedStore for Hooked<'_> {
        fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
            if key.contains("-lease/")
                && let Some(hook) = self.hook.borrow_mut().take()
            {
                hook(&mut self.inner.borrow_mut());
            }
            self.inner.borrow().get(key)
        }
        fn set(&mut self, key: &str, value: &[u8], cas: u32) -> bool {
            self.inner.borrow_mut().set(key, value, cas)
        }
    }

    const NOW: u64 = 1_700_000_000;
    const SECRET: &str = "a-session-secret-of-32-bytes-or-more";

    fn cfg() -> Config {
        let j = serde_json::json!({"issuer": "https://idp.example.com", "idp_cluster": "idp",
            "client_id": "web", "client_secret": "s", "redirect_uri": "https://gw/cb",
            "session_secret": SECRET});
        Config::parse(j.to_string().as_bytes()).unwrap().config
    }

    /// A worker's core, its discovery document in hand.
    fn core(store: &mut dyn SharedStore, holder: u8) -> Core {
        let mut random = [7u8; 72];
        random[64..].fill(holder);
        let shared = Shared::prepare(store, "p/", &cfg(), random);
        let mut core = Core::new(&cfg(), shared);
        let discovery = serde_json::json!({"issuer": "https://idp.example.com",
            "jwks_uri": "https://idp.example.com/jwks",
            "authorization_endpoint": "https://idp.example.com/authorize",
            "token_endpoint": "https://idp.example.com/token"});
        let reply = IdpReply {
            status: Some(200),
            body: discovery.to_string().into_bytes(),
            retry_after: None,
        };
        core.provider
            .handle_reply(&cfg().issuer, Document::Discovery, &reply, NOW)
            .unwrap();
        core
    }

    #[test]
    fn a_refresh_ended_between_the_look_and_the_lease_is_not_made_again() {
        let cfg = cfg();
        let mut map = Map::default();
        let mut a = core(&mut map, 1);
        let mut b = core(&mut map, 2);
        let session: Session = serde_json::from_value(serde_json::json!({
            "sid": "sid-1", "access_token": "opaque-at0", "refresh_token": "rt0",
            "identity": {"sub": "alice"}, "expires_at": NOW + 30,
            "created_at": NOW - 100, "renewed_at": NOW - 100, "seen_at": NOW - 10}))
        .unwrap();
        let sealed = a
            .sealer
            .seal("session", &serde_json::to_vec(&session).unwrap())
            .unwrap();
        let req = RequestView::new(vec![
            (":method".into(), b"GET".to_vec()),
            (":path".into(), b"/x".to_vec()),
            ("cookie".into(), format!("session={sealed}").into_bytes()),
        ]);
        let browser = Browser::new(&cfg, &req);
        // Worker A: the refresh is due; A takes the lease and calls.
        let first = authenticate(&cfg, &browser, NOW, &mut a, &mut map);
        assert!(
            matches!(first, Err(Stop::Need(Need::Call { .. }))),
            "A refreshes"
        );
        let key = refresh_key(&session);
        // Worker B finds no outcome; before it tries the lease, A's reply
        // arrives (new tokens written, the lease given back).
        let reply = IdpReply {
            status: Some(200),
            body: br#"{"access_token":"opaque-at1","refresh_token":"rt1","token_type":"Bearer","expires_in":300}"#.to_vec(),
            retry_after: None,
        };
        let a_ref = &mut a;
        let a_cfg = cfg.clone();
        let mut hooked = Hooked {
            inner: RefCell::new(&mut map),
            hook: RefCell::new(Some(Box::new(move |m: &mut Map| {
                assert!(handle_reply(&a_cfg, &key, &reply, NOW, a_ref, m).is_none());
            }))),
        };
        let second = authenticate(&cfg, &browser, NOW, &mut b, &mut hooked);
        drop(hooked);
        assert!(
            matches!(second, Err(Stop::Need(Need::Wait(_)))),
            "B waits for A's outcome rather than spending rt0 again"
        );
        // The lease was given back, and B's next look rides A's tokens.
        let third = authenticate(&cfg, &browser, NOW, &mut b, &mut map);
        let allowed = third.ok().flatten().expect("allowed");
        assert_eq!(&*allowed.token, "opaque-at1");
    }

    /// A store whose first write of a refresh-outcome slot first runs
    /// `hook`: another worker writing the same slot between our read of it
    /// and our write.
    struct WriteHooked<'a> {
        inner: &'a mut Map,
        hook: Option<Hook<'a>>,
    }

    impl SharedStore for WriteHooked<'_> {
        fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
            self.inner.get(key)
        }
        fn set(&mut self, key: &str, value: &[u8], cas: u32) -> bool {
            if !key.contains("-lease/")
                && let Some(hook) = self.hook.take()
            {
                hook(self.inner);
            }
            self.inner.set(key, value, cas)
        }
    }

    #[test]
    fn the_outcome_slots_are_prepared_when_only_a_rule_refreshes() {
        let j = serde_json::json!({"issuer": "https://idp.example.com", "idp_cluster": "idp",
            "client_id": "web", "client_secret": "s", "redirect_uri": "https://gw/app/cb",
            "auth_methods": ["bearer"],
            "rules": [{"match": {"paths": ["/app"]},
                       "auth_methods": ["authorization_code", "session", "refresh_token"]}]});
        let cfg = Config::parse(j.to_string().as_bytes()).unwrap().config;
        let mut map = Map::default();
        Shared::prepare(&mut map, "p/", &cfg, [7; 72]);
        let prefix = crate::flow::session_prefix(&cfg);
        let last = format!("{prefix}{KIND}/{}", crate::flow::slots::SLOTS - 1);
        assert!(map.get(&format!("{prefix}{KIND}/0")).is_some() && map.get(&last).is_some());
    }

    #[test]
    fn two_outcomes_written_at_once_to_one_slot_are_both_kept() {
        let mut map = Map::default();
        let mut a = core(&mut map, 1);
        let mut b = core(&mut map, 2);
        // Two sessions whose outcomes start at the same slot.
        let (ka, mut kb) = ([1u8; 32], [1u8; 32]);
        kb[31] = 2;
        let outcome = Refreshed {
            until: NOW + 60,
            tokens: None,
            claimed: false,
        };
        let theirs = outcome.clone();
        let mut hooked = WriteHooked {
            inner: &mut map,
            hook: Some(Box::new(move |m: &mut Map| {
                write_outcome(&mut a, m, &ka, &theirs, NOW);
            })),
        };
        write_outcome(&mut b, &mut hooked, &kb, &outcome, NOW);
        drop(hooked);
        let c = core(&mut map, 3);
        for key in [ka, kb] {
            assert!(
                read_outcome(&c, &map, &key, NOW).is_some(),
                "an outcome was overwritten"
            );
        }
    }
}
