//! The sans-IO core: a pure function of (configuration, request, now,
//! cached state) that returns what to do. One file per way in.

mod answers;
mod authorization_code;
mod bearer;
mod client_credentials;
pub mod documents;
mod idp_args;
mod introspection;
mod logout;
mod outcomes;
mod paths;
mod session;
pub mod slots;
mod sources;
mod upstream;
mod userinfo;

use std::rc::Rc;

pub use paths::{is_ambiguous_path, matches_entries, normalized, without_parameters};
pub use slots::{Key, Leases};
use sources::Found;

use crate::action::{Action, Decision, IdpReply, IdpRequest};
use crate::budget::{self, Purpose, Ticket};
use crate::config::{AuthMethod, Config, IssuerId, RuleId};
use crate::error::{Endpoint, Error, IdpError, TokenError};
use crate::oidc::claims::{Claims, check_policy};
use crate::oidc::provider::{Document, Provider};
use crate::oidc::token;
use crate::request::RequestView;
use crate::session::seal::Sealer;
use crate::stats::Stats;
use crate::store::{self, SharedStore};

/// Entries of the other per-worker caches. The verified tokens and the
/// introspection answers are `token_cache_size` instead: they grow with the
/// number of distinct API clients, and each miss costs a signature check
/// or an IdP call on the hot path. These do not scale with it: client
/// credentials are one entry per machine client (a miss reads the shared
/// data first), sessions one per browser (a miss is an AES-GCM open),
/// logins and logouts are one-off, and the refused tokens are kept small
/// on purpose, so that a flood of distinct forgeries cannot grow memory.
/// Userinfo answers are per token too (with `search_user_info`, or
/// `userinfo` as a way in), held 5 minutes at most and budgeted: a key of
/// their own if ever needed.
const SMALL_CAPACITY: usize = 1024;

/// An IdP call, by what it is for: the one name the engine schedules it by
/// (joining, leases, replies) and its endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdpCall {
    /// A discovery or JWKS fetch for an issuer (answered to its provider).
    Fetch(IssuerId, Document),
    /// Client credentials exchange, by salted hash of the credentials.
    Credentials(Key),
    /// Authorization code exchange, by hash of the login's state.
    Code(Key),
    /// Session refresh, by hash of the session id.
    Refresh(Key),
    /// A token's revocation at logout, by hash of the token.
    Revoke(Key),
    /// Introspection of an opaque token, by hash of the token.
    Introspect(Key),
    /// Userinfo of an access token, by hash of the token.
    Userinfo(Key),
}

impl IdpCall {
    /// A call whose reply must reach the filter even if the request that
    /// needed it goes away: a code exchange (a reload during a slow one
    /// would otherwise exchange the spent code again, which the IdP
    /// refuses), a refresh (the IdP rotates the refresh token; a lost reply
    /// would make the next request spend the old one again) and a
    /// revocation.
    pub fn outlives_request(self) -> bool {
        matches!(
            self,
            IdpCall::Code(_) | IdpCall::Refresh(_) | IdpCall::Revoke(_)
        )
    }

    /// The `idp_call_budget` it is made under: the calls that
    /// unauthenticated input can cause. Discovery and JWKS (once per
    /// Envoy) and revocation (only with a session) are not budgeted.
    pub fn budget(self) -> Option<Purpose> {
        match self {
            IdpCall::Code(_) => Some(Purpose::Code),
            IdpCall::Credentials(_) => Some(Purpose::ClientCredentials),
            IdpCall::Refresh(_) => Some(Purpose::Refresh),
            IdpCall::Introspect(_) => Some(Purpose::Introspection),
            IdpCall::Userinfo(_) => Some(Purpose::Userinfo),
            IdpCall::Fetch(..) | IdpCall::Revoke(_) => None,
        }
    }

    /// The IdP endpoint this call goes to.
    pub fn endpoint(self) -> Endpoint {
        match self {
            IdpCall::Fetch(_, doc) => doc.endpoint(),
            IdpCall::Credentials(_) | IdpCall::Code(_) | IdpCall::Refresh(_) => Endpoint::Token,
            IdpCall::Revoke(_) => Endpoint::Revocation,
            IdpCall::Introspect(_) => Endpoint::Introspection,
            IdpCall::Userinfo(_) => Endpoint::Userinfo,
        }
    }
}

/// Per-worker state the core reads and updates.
pub struct Core {
    /// What is known of the configured `issuer`.
    pub provider: Provider,
    /// What is known of each of `issuers_allowed`.
    others: Vec<Provider>,
    /// This worker's leases (and the prefix of this configuration's
    /// shared-data keys).
    leases: Leases,
    /// The leases (and, by their prefix, the outcomes) of a session's
    /// one-time exchanges, its login's code and its refresh token:
    /// `session_prefix`.
    session_leases: Leases,
    /// The leases (and, by their prefix, the tokens and the salt) of
    /// callers' client-credentials exchanges: `idp_prefix`.
    cc_leases: Leases,
    /// Where the IdP call budget is (`budget_names`).
    budget: budget::Names,
    /// Salt of the client-credentials cache keys, the same in all workers
    /// and all configurations of the issuer (`idp_prefix`).
    salt: [u8; 32],
    /// SHA-256 with the salt's block already hashed (`client_credentials::salted`).
    salted: sha2::Sha256,
    sealer: Sealer,
    /// The shared fallback session key in use (no `session_secret`).
    session_key: Option<[u8; 32]>,
    /// Where the workers share it.
    session_key_name: String,
    /// See `Shared::older_session_key`.
    older_session_key: Option<[u8; 32]>,
    /// Keys the hashes of the bearer and session caches: per worker, random.
    hasher: std::hash::RandomState,
    /// Each way in's own per-worker state.
    bearer: bearer::State,
    cc: client_credentials::State,
    code: authorization_code::State,
    session: session::State,
    logout: logout::State,
    introspection: introspection::State,
    userinfo: userinfo::State,
    /// What was decided, for metrics.
    pub stats: Stats,
    /// Whether the host writes info lines: a refused request's line is
    /// made only then (not on every request of a flood of forged tokens
    /// into a log that drops it). The engine keeps it current on each tick.
    pub log_denials: bool,
    /// `Attempt::adopted` and `answered` of the request being decided.
    adopted: Vec<(IssuerId, Document)>,
    answered: Vec<IdpCall>,
    /// Lines for the operator's log, taken by the engine.
    warnings: Vec<String>,
    /// Calls no request waits for (a revocation at logout), taken by the
    /// engine and made from the worker's root context.
    background: Vec<(IdpCall, IdpRequest)>,
    /// Refusals' responses, built once.
    responses: crate::error::Responses,
}

/// What every worker of a configuration must agree on, from shared data.
pub struct Shared {
    pub prefix: String,
    pub salt: [u8; 32],
    /// The session key when no `session_secret` is configured.
    pub session_key: [u8; 32],
    /// Where it is in shared data (`fallback_session_key_name`).
    pub session_key_name: String,
    /// The key builds before kept under this configuration's prefix, when
    /// the shared one is another (two configurations of one issuer and
    /// client upgraded together): it still opens the cookies it sealed.
    pub older_session_key: Option<[u8; 32]>,
    /// Names this worker as a lease holder.
    pub holder: [u8; 8],
    /// Where code exchanges' and refreshes' leases and outcomes are
    /// (`session_prefix`).
    pub session_prefix: String,
    /// Where callers' client-credentials tokens, their leases and their
    /// keys' salt are (`idp_prefix`).
    pub cc_prefix: String,
}

impl Shared {
    /// Sets up a configuration's shared keys: the salt and the fallback
    /// session key (random; see `Core::converge` for how the workers agree
    /// on one), and the leases, created up front so that taking one is
    /// always a real compare-and-set.
    pub fn prepare(
        store: &mut dyn SharedStore,
        prefix: &str,
        config: &Config,
        random: [u8; 72],
    ) -> Shared {
        slots::prepare_leases(store, prefix, FETCH_KIND);
        let cc_prefix = idp_prefix(config);
        slots::prepare_leases(store, &cc_prefix, client_credentials::KIND);
        let session_prefix = session_prefix(config);
        slots::prepare_leases(store, &session_prefix, session::KIND);
        let uses = |method| {
            let uses = |c: &Config| c.auth_methods.contains(method);
            uses(config) || config.rules.iter().any(|(_, c, _)| uses(c))
        };
        // Outcomes that must not be lost (`slots::prepare_slots`).
        if uses(AuthMethod::RefreshToken) {
            slots::prepare_slots(store, &session_prefix, session::KIND);
        }
        if uses(AuthMethod::AuthorizationCode) {
            slots::prepare_leases(store, &session_prefix, authorization_code::KIND);
            slots::prepare_slots(store, &session_prefix, authorization_code::KIND);
        }
        let (salt, rest) = random.split_at(32);
        let (session_key, holder) = rest.split_at(32);
        let mut shared = Shared {
            prefix: prefix.to_string(),
            salt: salt.try_into().unwrap_or_default(),
            session_key: session_key.try_into().unwrap_or_default(),
            session_key_name: fallback_session_key_name(config),
            older_session_key: None,
            holder: holder.try_into().unwrap_or_default(),
            session_prefix,
            cc_prefix,
        };
        // A module upgraded in place (the same VM's shared data) finds the
        // key where builds before kept it, under the prefix: taken up, so
        // that the upgrade logs nobody out.
        let before = read_key(store, &format!("{prefix}session-key"));
        if let Some(before) = before {
            shared.session_key = before;
        }
        for (key, mine) in [
            (format!("{}salt", shared.cc_prefix), &mut shared.salt),
            (shared.session_key_name.clone(), &mut shared.session_key),
        ] {
            // The first worker's value stays: a cookie sealed under the key
            // read back here opens on every worker from its first request.
            store::create(store, &key, mine.as_slice());
            if let Some(theirs) = read_key(store, &key) {
                *mine = theirs;
            }
        }
        shared.older_session_key = before.filter(|b| *b != shared.session_key);
        shared
    }
}

/// Where the fallback session key is in shared data: not under the
/// configuration's prefix (a hash of all of it), or any change to the
/// configuration (a scope, a bypass path) would bring a new key that opens
/// none of the cookies sealed before, logging every user out. Keyed as the
/// cookies are bound (`Config::sealer`): by the issuer and the first
/// client id.
pub fn fallback_session_key_name(config: &Config) -> String {
    format!("envoy-oidc/session-key/{}", idp_client(config))
}

/// Where a session's one-time exchanges (its login's code, its refresh
/// token) have their leases and outcomes in shared data: not under the
/// configuration's prefix, but named as the cookies are bound (the issuer,
/// the first client id, the cookie's name: `Config::sealer`). Every
/// configuration that opens a session's cookie, or its login's (a filter
/// per group of routes, one edited and its successor while Envoy drains
/// the old), must find its exchange under way or done: it would send the
/// refresh token a second time, which IdPs that rotate them take for
/// theft, or the code, whose second use an IdP may answer by revoking the
/// tokens the first obtained (RFC 6749 §4.1.2). (The name keeps the
/// `refresh/` of the builds that kept only refreshes there.)
pub fn session_prefix(config: &Config) -> String {
    let binding = [
        config.issuer.id.as_str(),
        first_client(config),
        config.session.cookie_name.as_str(),
    ];
    format!("envoy-oidc/refresh/{}/", hashed(&binding))
}

/// Where the IdP call budget is in shared data (`budget::Names`): not under
/// the configuration's prefix either, or each configuration in the VM (a
/// filter per group of routes, say) would spend a budget of its own at the
/// same IdP, and a flood sent to each would reach it that many times over.
/// Under what is spent: the IdP's token endpoint for callers' client
/// credentials, and its userinfo endpoint for users' tokens, by the issuer;
/// calls the gateway's own client authenticates (code, refresh,
/// introspection), by the issuer and the first client id. The issuer by
/// its discovery URL: one IdP is configured as `https://idp/`,
/// `https://idp` or its discovery URL, and each spelling must spend the
/// same budget.
pub fn budget_names(config: &Config) -> budget::Names {
    let idp = config.issuer.discovery_url.to_string();
    let issuer = idp_prefix(config);
    let client = format!(
        "envoy-oidc/client/{}/",
        hashed(&[&idp, first_client(config)])
    );
    budget::Names::new(&config.idp_call_budget, |p| match p {
        Purpose::ClientCredentials | Purpose::Userinfo => issuer.clone(),
        Purpose::Code | Purpose::Refresh | Purpose::Introspection => client.clone(),
    })
}

/// Where what belongs to the IdP whatever the configuration is in shared
/// data: the budget of the calls it takes from callers (`budget_names`),
/// and callers' client-credentials tokens, by the issuer's discovery URL
/// (see `budget_names` why). Not under the configuration's prefix: an edit
/// to the configuration (a route, a scope required) would have every
/// machine client exchange its credentials again, all at once, against
/// the same budget. A token stays the credentials', the scope's and the
/// extra parameters' it was obtained with (`client_credentials::key`);
/// what a configuration makes of it (whether it is a token of ours to
/// verify) each configuration judges for itself.
pub fn idp_prefix(config: &Config) -> String {
    let idp = config.issuer.discovery_url.to_string();
    format!("envoy-oidc/idp/{}/", hashed(&[&idp]))
}

/// The issuer as configured and the first client id, hashed into a
/// shared-data name.
fn idp_client(config: &Config) -> String {
    hashed(&[&config.issuer.id, first_client(config)])
}

fn first_client(config: &Config) -> &str {
    config.client_ids.first().map_or("", String::as_str)
}

/// `parts`, a zero byte between each two, hashed into a shared-data name
/// (as builds before named the fallback session key: the same bytes).
fn hashed(parts: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            h.update([0]);
        }
        h.update(part.as_bytes());
    }
    h.finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A 32-byte value the workers share.
fn read_key(store: &dyn SharedStore, key: &str) -> Option<[u8; 32]> {
    store.get(key).and_then(|(v, _)| v.try_into().ok())
}

impl Core {
    /// `token_cache_size` sizes the verified-token caches (see
    /// `SMALL_CAPACITY` for the others). A new configuration builds a new
    /// engine and so a new `Core`: its caches start empty at the new size.
    pub fn new(config: &Config, shared: Shared) -> Self {
        let session_secrets = &config.session.secrets;
        let token_cache_size = config.token_cache_size;
        let configured = !session_secrets.is_empty();
        let sealer = if configured {
            config.sealer(session_secrets)
        } else {
            let keys = std::iter::once(shared.session_key).chain(shared.older_session_key);
            config.sealer(&keys.collect::<Vec<_>>())
        };
        Core {
            provider: Provider::default(),
            others: Vec::new(),
            leases: Leases::new(&shared.prefix, shared.holder),
            session_leases: Leases::new(&shared.session_prefix, shared.holder),
            cc_leases: Leases::new(&shared.cc_prefix, shared.holder),
            budget: budget_names(config),
            salt: shared.salt,
            salted: client_credentials::salted(&shared.salt),
            session_key: (!configured).then_some(shared.session_key),
            session_key_name: shared.session_key_name,
            older_session_key: shared.older_session_key,
            sealer,
            hasher: std::hash::RandomState::new(),
            bearer: bearer::State::new(token_cache_size),
            cc: client_credentials::State::default(),
            code: authorization_code::State::default(),
            session: session::State::default(),
            logout: logout::State::default(),
            introspection: introspection::State::new(token_cache_size),
            userinfo: userinfo::State::default(),
            stats: Stats::default(),
            log_denials: true,
            adopted: Vec::new(),
            answered: Vec::new(),
            warnings: Vec::new(),
            background: Vec::new(),
            responses: Default::default(),
        }
    }

    /// The provider of the issuer at `index` (0: the configured `issuer`).
    pub fn provider_mut(&mut self, issuer: IssuerId) -> Option<&mut Provider> {
        match issuer.index().checked_sub(1) {
            None => Some(&mut self.provider),
            Some(i) => {
                if self.others.len() <= i {
                    self.others.resize_with(i + 1, Provider::default);
                }
                self.others.get_mut(i)
            }
        }
    }

    fn warn(&mut self, line: String) {
        self.warnings.push(line);
    }

    /// Has the engine make `call` on its own: no request waits for it, and
    /// its reply goes to `handle_call_reply` like any other.
    fn spawn(&mut self, call: IdpCall, request: IdpRequest) {
        self.background.push((call, request));
    }

    /// Calls the flows want made with no request waiting (`spawn`).
    pub fn take_background(&mut self) -> Vec<(IdpCall, IdpRequest)> {
        std::mem::take(&mut self.background)
    }

    /// What the flows have to tell the operator since the last call.
    pub fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }

    pub fn shared_prefix(&self) -> &str {
        self.leases.prefix()
    }

    /// Where the IdP call budget is (`budget_names`).
    pub fn budget(&self) -> &budget::Names {
        &self.budget
    }

    pub fn leases(&self) -> &Leases {
        &self.leases
    }

    /// Key sets taken that lacked a key of the set before, over every
    /// issuer (`Provider::withdrawals`).
    pub(super) fn withdrawals(&self) -> u64 {
        let others = self.others.iter().map(Provider::withdrawals);
        others.fold(self.provider.withdrawals(), u64::wrapping_add)
    }

    /// After a key set that lacks a key of the one before (`before`:
    /// `withdrawals` then): the tokens verified until now are verified
    /// again at their next use, so that a key the IdP withdrew (a leaked
    /// one) stops passing the tokens it signed now, not when the key set
    /// they were checked with would have been fetched again (an hour).
    /// The sessions' kept verifications go with the opened cookies.
    pub(super) fn forget_verifications_if_withdrawn(&mut self, before: u64) {
        if self.withdrawals() != before {
            self.bearer.verified.clear();
            self.session.opened.clear();
        }
    }

    /// The leases of `kind`'s calls; their prefix is where its one-time
    /// outcomes are too.
    pub(super) fn leases_for(&self, kind: &str) -> &Leases {
        match kind {
            session::KIND | authorization_code::KIND => &self.session_leases,
            client_credentials::KIND => &self.cc_leases,
            _ => &self.leases,
        }
    }

    /// Takes up the salt and fallback session key the store holds now
    /// (from every tick). Workers create them only if absent and adopt what
    /// is there (`Shared::prepare`), so they agree from the start; this
    /// covers a key written otherwise (a build before that one, which wrote
    /// with cas 0). A session sealed under the key that lost still opens.
    pub fn converge(&mut self, store: &dyn SharedStore) {
        let prefix = self.cc_leases.prefix();
        if let Some(salt) = read_key(store, &format!("{prefix}salt"))
            && salt != self.salt
        {
            // Exchanges cached under the old salt simply miss from now on.
            self.salt = salt;
            self.salted = client_credentials::salted(&salt);
        }
        if let (Some(mine), Some(theirs)) =
            (self.session_key, read_key(store, &self.session_key_name))
            && mine != theirs
        {
            let keys = [theirs, mine].into_iter().chain(self.older_session_key);
            self.sealer = self.sealer.rekeyed(&keys.collect::<Vec<_>>());
            self.session_key = Some(theirs);
        }
    }

    /// A token names a key that `doc` of `issuer` lacks: look for newer
    /// keys in shared data once, then it is an unknown key.
    fn unknown_key(&self, issuer: IssuerId) -> Stop {
        self.adopt_keys_once(issuer)
            .unwrap_or_else(|| TokenError::UnknownKey.into())
    }

    /// Once per request, a look for the keys of `issuer` another worker
    /// took since (a rotation: this worker's refetch is spent for 30 s, or
    /// another's lease held it back), before a token they cannot place is
    /// refused.
    fn adopt_keys_once(&self, issuer: IssuerId) -> Option<Stop> {
        let doc = Document::Jwks;
        (!self.adopted.contains(&(issuer, doc))).then(|| Stop::adopt(issuer, doc))
    }

    /// The stop for a signature `issuer`'s keys refused (`error`), when
    /// the keys are over 30 s old: a refetch when it may be made
    /// (`Provider::refetch_after_refusal`); else, this worker's refetch
    /// spent (or held back by another worker's lease), once per request a
    /// look for keys another worker took, the token then verified again
    /// only against another set (`bearer::State::before_look`; an ID
    /// token, which comes from our own code exchange, is verified again
    /// whatever the look found). `None`: the refusal stands.
    fn refused_signature(&mut self, issuer: IssuerId, error: TokenError, now: u64) -> Option<Stop> {
        let provider = self.provider_mut(issuer)?;
        if !bearer::stands_with_key_set(error) || !provider.keys_settled(now) {
            return None;
        }
        if provider.refetch_after_refusal(now) {
            return Some(Stop::fetch_from(issuer, Document::Jwks));
        }
        self.adopt_keys_once(issuer)
    }

    pub fn verified_len(&self) -> usize {
        self.bearer.verified.len()
    }
}

/// The core's answer for one request.
#[derive(Debug)]
pub enum Step {
    Done(Decision),
    /// Not decided yet: do this, then call `handle_request` again.
    Need(Need),
}

/// What a flow needs of the engine before it can decide.
#[derive(Debug)]
pub enum Need {
    /// Fetch `doc` of the issuer at index `issuer` (see `Config::issuer_at`),
    /// give it to that provider.
    Fetch { issuer: IssuerId, doc: Document },
    /// Make this IdP call (this worker holds its lease, if any); give the
    /// reply to `handle_call_reply`.
    Call {
        key: IdpCall,
        /// Boxed: every flow's `Result<_, Stop>` carries a `Need`.
        request: Box<IdpRequest>,
    },
    /// Another worker is making this call: try again on the next tick.
    Wait(IdpCall),
    /// A token names a key `doc` lacks and this worker refetched it too
    /// recently to fetch again: another worker may have fetched a newer
    /// one. Adopt it from shared data if so, and say so in
    /// `Attempt::adopted`.
    Adopt { issuer: IssuerId, doc: Document },
}

/// What the engine already did for the request being decided.
#[derive(Debug, Default)]
pub struct Attempt {
    /// The IdP call this request waited for failed so: a request that still
    /// needs it fails with this error instead of calling again.
    pub failed: Option<Error>,
    /// Documents looked for in shared data since the request (re)started.
    pub adopted: Vec<(IssuerId, Document)>,
    /// The calls this request waited on and that were answered, here or
    /// (found leased) at another worker: a one-time outcome (a code
    /// exchange's) is given only to the requests that waited on its call.
    pub answered: Vec<IdpCall>,
}

/// Why a flow stopped before deciding.
enum Stop {
    Fail(Error),
    Need(Need),
    /// A stop whose refusal, if it ends in one (now, or once the call it
    /// needs has failed), still carries these response headers: a
    /// session's renewed cookie, whose refresh spent the token in the
    /// cookie the browser holds (sent again once the refresh's outcome is
    /// gone, an IdP that detects reuse would end the whole grant).
    Keeping(Box<Stop>, Vec<(String, String)>),
}

impl Stop {
    /// This stop, keeping `headers` for the refusal it may end in. (A
    /// request re-run after its call finds the refresh's outcome again.)
    fn keeping(self, headers: Vec<(String, String)>) -> Stop {
        match self {
            // Kept once: the headers are the same renewed cookie.
            kept @ Stop::Keeping(..) => kept,
            stop if headers.is_empty() => stop,
            stop => Stop::Keeping(Box::new(stop), headers),
        }
    }

    /// The stop itself, and the headers it keeps.
    fn kept(self) -> (Stop, Vec<(String, String)>) {
        match self {
            Stop::Keeping(stop, headers) => (*stop, headers),
            other => (other, Vec::new()),
        }
    }

    /// Fetch a document of the configured `issuer`.
    fn fetch(doc: Document) -> Stop {
        Stop::fetch_from(IssuerId::CONFIGURED, doc)
    }

    fn fetch_from(issuer: IssuerId, doc: Document) -> Stop {
        Stop::Need(Need::Fetch { issuer, doc })
    }

    fn call(key: IdpCall, request: IdpRequest) -> Stop {
        Stop::Need(Need::Call {
            key,
            request: Box::new(request),
        })
    }

    fn wait(key: IdpCall) -> Stop {
        Stop::Need(Need::Wait(key))
    }

    fn adopt(issuer: IssuerId, doc: Document) -> Stop {
        Stop::Need(Need::Adopt { issuer, doc })
    }
}

impl From<Error> for Stop {
    fn from(e: Error) -> Self {
        Stop::Fail(e)
    }
}

impl From<TokenError> for Stop {
    fn from(e: TokenError) -> Self {
        Stop::Fail(e.into())
    }
}

/// An authenticated request: the access token and its claims.
struct Allowed {
    /// Shared with the verified-token cache: not copied per request.
    token: Rc<str>,
    claims: Rc<Claims>,
    /// The client's own `Authorization` never goes upstream: Basic
    /// credentials, or whatever it sent beside a session that won.
    hide_authorization: bool,
    /// Headers for the response (a renewed session cookie).
    response: Vec<(String, String)>,
    /// The session was refreshed for this request: its new cookie must
    /// reach the browser whatever the answer (see `Stop::Keeping`).
    refreshed: bool,
    /// The counter of the way in.
    metric: &'static str,
    /// The scopes the token endpoint granted, when `claims` are not the
    /// access token's (see `bearer::is_ours`): `scopes_required` reads
    /// these instead.
    granted: Option<Rc<str>>,
    /// What else is known of the request, for the `*_header` keys.
    session: Option<Rc<crate::session::Session>>,
    userinfo: Option<Rc<answers::Answer>>,
    introspection: Option<Rc<answers::Answer>>,
    /// The request's one `Authorization` header is `Bearer <token>` to the
    /// byte: `upstream::allow` need not compare the token again to know
    /// that the default token header is already as it would set it.
    as_sent: bool,
}

impl Allowed {
    fn new(token: Rc<str>, claims: Rc<Claims>) -> Allowed {
        Allowed {
            token,
            claims,
            hide_authorization: false,
            response: Vec::new(),
            refreshed: false,
            metric: "allowed_bearer",
            granted: None,
            session: None,
            userinfo: None,
            introspection: None,
            as_sent: false,
        }
    }

    /// An access token trusted for where it came from (our own exchange
    /// at the token endpoint), not verified: `claims` say who it is for.
    fn obtained(token: Rc<str>, claims: Rc<Claims>, granted: Option<Rc<str>>) -> Allowed {
        Allowed {
            granted,
            ..Allowed::new(token, claims)
        }
    }
}

/// The configuration a request is decided under (`Config::rule_for`), or
/// why the rules refuse it.
pub type Chosen = Result<RuleId, &'static str>;

/// How a request enters: through `enter`, then `handle_request`.
pub enum Entry {
    /// It passes with no authentication (a `bypass` rule, a `bypass_paths`
    /// entry, an unchecked CORS preflight).
    Pass(Decision),
    /// `handle_request` decides it, with what `rule_for` chose, which the
    /// engine keeps for the request's resumes.
    Decide(Chosen),
}

/// Chooses a request's rule and lets through what needs no
/// authentication; the rest goes to `handle_request` (a path the rules
/// refuse included).
///
/// The engine asks this before anything else, and it is a function of its
/// own on purpose: while the bypass check sat at the top of
/// `handle_request` (a large function: `decide` and the flows are inlined
/// into it), a bypassed request cost ~1–2 µs more in Envoy (side by side
/// with that build, this way: 1.077×, 1.053–1.087×, in 36 pairs; 1.033×,
/// 1.020–1.045×, in 24 more, the cached paths unchanged), though the whole
/// decision takes 0.3 µs in the probe's warm loop. Why entering the large
/// function costs that much per request was not measured; that it does
/// was. (Moving the first `handle_request` out of the engine's run loop
/// instead, still large, gained nothing: 0.91–0.97× on the bypass path.
/// Nor did running the cached paths through small functions too: 0.97–1.00×,
/// BENCHMARKS.md, "Our request, step by step".) `#[inline(never)]` binds
/// LLVM only: `wasm-opt` inlines a function with one caller, so this ends
/// up in the shell's request callback, which is still outside the run
/// loop (one 41 KB function after `wasm-opt`), where the check was dearer.
#[inline(never)]
pub fn enter(cfg: &Config, req: &RequestView, core: &mut Core) -> Entry {
    let (id, bypass) = match cfg.rule_for(req) {
        Ok(chosen) => chosen,
        Err(why) => return Entry::Decide(Err(why)),
    };
    // (A rule it lacks cannot come from its own `rule_for`; if it did,
    // `handle_request` refuses the request.)
    let Some(cfg) = cfg.rule(id) else {
        return Entry::Decide(Ok(id));
    };
    if !(bypass || paths::passes_unauthenticated(cfg, req)) {
        return Entry::Decide(Ok(id));
    }
    core.stats.add("bypassed");
    Entry::Pass(Decision {
        action: upstream::unauthenticated(cfg, req),
        log: None,
    })
}

/// Decides what to do with a request that `enter` did not let through,
/// under the configuration it chose, given what the engine already did
/// for it (`attempt`).
pub fn handle_request(
    cfg: &Config,
    chosen: Chosen,
    req: &RequestView,
    now: u64,
    core: &mut Core,
    store: &mut dyn SharedStore,
    attempt: &Attempt,
) -> Step {
    let chosen = match chosen {
        Ok(id) => cfg
            .rule(id)
            .ok_or(Error::Internal("a rule the configuration lacks")),
        Err(why) => Err(Error::BadRequest(why)),
    };
    let cfg = match chosen {
        Ok(chosen) => chosen,
        Err(e) => return Step::Done(deny(cfg, req, e, core)),
    };
    core.adopted.clone_from(&attempt.adopted);
    core.answered.clone_from(&attempt.answered);
    let step = decide(cfg, req, now, core, store, attempt);
    if let Step::Done(Decision {
        action: Action::Respond(r),
        ..
    }) = &step
        && r.status == 302
    {
        core.stats.add("redirects");
    }
    step
}

fn decide(
    cfg: &Config,
    req: &RequestView,
    now: u64,
    core: &mut Core,
    store: &mut dyn SharedStore,
    attempt: &Attempt,
) -> Step {
    let failed = attempt.failed.as_ref();
    let (stop, kept) = match route(cfg, req, now, core, store) {
        Ok(decision) => return Step::Done(decision),
        Err(stop) => stop.kept(),
    };
    let denial = match stop {
        // A look at shared data (once per request), never an IdP call: made
        // even after a call failed. (An unknown `kid` still fails with the
        // failed refetch, below, once it has looked.)
        Stop::Need(need @ Need::Adopt { .. }) => return Step::Need(need),
        // A request that still needs the call that just failed fails with it;
        // so does one whose unknown-kid refetch failed (the IdP's fault).
        Stop::Need(Need::Call { key, .. }) if failed.is_some() => {
            // The flow took the call's lease again: nobody will make it now.
            abandon_call(&key, core, store);
            failed.cloned().unwrap_or(Error::Unauthenticated)
        }
        Stop::Need(_) | Stop::Fail(Error::Token(TokenError::UnknownKey)) if failed.is_some() => {
            failed.cloned().unwrap_or(Error::Unauthenticated)
        }
        Stop::Need(need) => return Step::Need(need),
        Stop::Fail(e) => e,
        // `kept` took it apart.
        Stop::Keeping(..) => Error::Internal("a stop kept twice"),
    };
    core.stats.add(denial.metric());
    let mut refused =
        failure_action(cfg, req, &denial).unwrap_or_else(|| deny(cfg, req, denial, core));
    refused.action.add_response_headers(kept);
    Step::Done(refused)
}

/// What Kong's failure keys make of a denial: `anonymous` lets what would
/// be a 401 through without identity; browsers navigating are sent to
/// `unauthorized_redirect_uri` (401) or `forbidden_redirect_uri` (403).
/// A browser without credentials still goes to the login page first,
/// when the code flow is on (that is not a denial).
fn failure_action(cfg: &Config, req: &RequestView, denial: &Error) -> Option<Decision> {
    let status = match denial {
        Error::Unauthenticated | Error::Token(_) => 401,
        Error::Forbidden(_) => 403,
        _ => return None,
    };
    if status == 401
        && let Some(consumer) = &cfg.anonymous
    {
        return Some(Decision {
            action: upstream::anonymous(cfg, req, consumer),
            log: Some(format!("anonymous: {denial}")),
        });
    }
    let to = match status {
        401 => cfg.unauthorized_redirect_uri.as_ref(),
        _ => cfg.forbidden_redirect_uri.as_ref(),
    }?;
    is_browser_navigation(req).then(|| {
        let mut d = authorization_code::redirect(
            vec![("location".to_string(), to.to_string())],
            "redirect on failure",
        );
        d.log = Some(format!("{status} as a redirect: {denial}"));
        d
    })
}

/// Takes the reply to an IdP call (not a discovery or JWKS fetch). Returns
/// the call's error, if any; waiting requests find the outcome in caches.
pub fn handle_call_reply(
    cfg: &Config,
    key: &IdpCall,
    reply: &IdpReply,
    now: u64,
    core: &mut Core,
    store: &mut dyn SharedStore,
) -> Option<Error> {
    match key {
        IdpCall::Fetch(issuer, doc) => {
            documents::handle_reply(cfg, *issuer, *doc, reply, now, core, store)
        }
        IdpCall::Credentials(k) => {
            client_credentials::handle_reply(cfg, k, reply, now, core, store)
        }
        IdpCall::Code(k) => authorization_code::handle_reply(k, reply, now, core, store),
        IdpCall::Refresh(k) => session::handle_reply(cfg, k, reply, now, core, store),
        IdpCall::Revoke(k) => logout::handle_reply(k, reply, now, core),
        IdpCall::Introspect(k) => introspection::handle_reply(cfg, k, reply, now, core),
        IdpCall::Userinfo(k) => userinfo::handle_reply(k, reply, now, core),
    }
}

/// The shared-data kind of the leases on discovery and JWKS fetches.
const FETCH_KIND: &str = documents::LEASE_KIND;

/// A call about to go out some time after its flow took its lease (a
/// detached call, on the next tick): true if the lease is still this
/// worker's, renewed from `now`; false if its lease lapsed and was taken
/// since (by another worker making the call, or by another key sharing the
/// lease), or a one-time exchange's outcome is there already.
pub fn renew_call(
    cfg: &Config,
    key: &IdpCall,
    now: u64,
    core: &mut Core,
    store: &mut dyn SharedStore,
) -> bool {
    let Some((kind, k)) = leased(key) else {
        return true;
    };
    // A one-time exchange another worker made meanwhile (its lease lapsed
    // here first): its value is spent, not to be sent again; the lease, if
    // still ours, goes back.
    let leases = core.leases_for(kind);
    if matches!(key, IdpCall::Code(_) | IdpCall::Refresh(_))
        && outcomes::read(store, leases.prefix(), kind, &k, now).is_some()
    {
        leases.release(store, kind, &k);
        return false;
    }
    leases.renew(store, kind, &k, now, cfg.idp_timeout_ms)
}

/// Takes `call` out of its purpose's budget before it is made: the slot it
/// holds in flight comes back with `release_budget`. `Ok(None)`: not a
/// budgeted call.
pub fn admit_call(
    cfg: &Config,
    call: &IdpCall,
    now: u64,
    core: &Core,
    store: &mut dyn SharedStore,
) -> Result<Option<Ticket>, Error> {
    let Some(purpose) = call.budget() else {
        return Ok(None);
    };
    // A lost reply gives its slot back when the call would have timed out.
    let lapse = now + u64::from(cfg.idp_timeout_ms).div_ceil(1000) + 1;
    budget::admit(
        &cfg.idp_call_budget,
        purpose,
        &core.budget,
        core.leases.holder(),
        store,
        now,
        lapse,
    )
    .map(Some)
    .ok_or(Error::Idp(IdpError::OverBudget {
        purpose: purpose.name(),
    }))
}

pub fn release_budget(ticket: &Ticket, core: &Core, store: &mut dyn SharedStore) {
    budget::release(ticket, &core.budget, store);
}

/// A call whose reply will never come (its request went away first): give
/// back its lease, so that a waiting request can make the call itself at
/// once instead of waiting for the lease to lapse.
pub fn abandon_call(key: &IdpCall, core: &mut Core, store: &mut dyn SharedStore) {
    if let Some((kind, k)) = leased(key) {
        core.leases_for(kind).release(store, kind, &k);
    }
}

/// The budget refused `key`'s call (`admit_call`): what the flow keeps of
/// that, beside the lease given back (`abandon_call`).
pub fn call_refused(
    key: &IdpCall,
    e: &Error,
    now: u64,
    core: &mut Core,
    store: &mut dyn SharedStore,
) {
    match key {
        IdpCall::Refresh(k) => session::refused(k, e, now, core),
        IdpCall::Credentials(k) => client_credentials::refused(k, now, core, store),
        _ => {}
    }
}

/// The lease kind and key of a call made under a lease across workers.
fn leased(key: &IdpCall) -> Option<(&'static str, Key)> {
    match key {
        IdpCall::Fetch(issuer, doc) => Some((FETCH_KIND, documents::lease_key(*issuer, *doc))),
        IdpCall::Credentials(k) => Some((client_credentials::KIND, *k)),
        IdpCall::Refresh(k) => Some((session::KIND, *k)),
        IdpCall::Code(k) => Some((authorization_code::KIND, *k)),
        IdpCall::Revoke(_) | IdpCall::Introspect(_) | IdpCall::Userinfo(_) => None,
    }
}

/// Picks the way in, in Kong's order: logout, login callback, session
/// cookie, Authorization header (bearer, introspection, userinfo, client
/// credentials), else a login redirect (browsers) or 401.
fn route(
    cfg: &Config,
    req: &RequestView,
    now: u64,
    core: &mut Core,
    store: &mut dyn SharedStore,
) -> Result<Decision, Stop> {
    let browser = session::Browser::new(cfg, req);
    if logout::is_logout(cfg, req) {
        return logout::handle(cfg, &browser, now, core, store);
    }
    if cfg.auth_methods.contains(AuthMethod::AuthorizationCode)
        && let Some(cb) = authorization_code::callback_params(cfg, req, &browser)
    {
        return authorization_code::callback(cfg, req, &cb, &browser, now, core, store);
    }
    // Kong's order: a session first; one that does not open (none, expired,
    // tampered) falls through to the Authorization header.
    let session = if cfg.auth_methods.contains(AuthMethod::Session) {
        session::authenticate(cfg, &browser, now, core, store)?
    } else {
        None
    };
    let allowed = match session {
        Some(mut a) => {
            a.metric = "allowed_session";
            a.hide_authorization = true;
            Some(a)
        }
        None if req.all("authorization").next().is_some() => {
            Some(authenticate_header(cfg, req, now, core, store)?)
        }
        // Kong's `*_param_type` beyond the header: query or cookie.
        None => match sources::find(cfg, req, &browser) {
            Some(Found::Bearer(token)) => {
                if !token::is_token_text(&token) {
                    return Err(
                        TokenError::Malformed("token has characters a token cannot have").into(),
                    );
                }
                Some(authenticate_bearer(cfg, &token, now, core)?)
            }
            Some(Found::Client(client)) => {
                if !client.is_well_formed() {
                    return Err(TokenError::Malformed("malformed client credentials").into());
                }
                if !cfg.auth_methods.contains(AuthMethod::ClientCredentials) {
                    return Err(
                        TokenError::MethodDisabled("client credentials are not accepted").into(),
                    );
                }
                Some(client_credentials::authenticate(
                    cfg, req, &client, now, core, store,
                )?)
            }
            None => None,
        },
    };
    if let Some(mut allowed) = allowed {
        // A refreshed session's cookie goes out with a refusal too (not
        // one that only notes its use: a refused request need not keep
        // the session alive).
        let renewed = if allowed.refreshed {
            allowed.response.clone()
        } else {
            Vec::new()
        };
        // A token valid by its userinfo has its claims already.
        if cfg.search_user_info && allowed.metric != "allowed_userinfo" {
            allowed = userinfo::enrich(cfg, allowed, now, core)
                .map_err(|s| s.keeping(renewed.clone()))?;
        }
        // The policy runs on every request, on all the claims we know.
        check_policy(cfg, &allowed.claims, allowed.granted.as_deref())
            .map_err(|e| Stop::Fail(e).keeping(renewed))?;
        core.stats.add(allowed.metric);
        return Ok(upstream::allow(cfg, req, &allowed, &browser));
    }
    if cfg.auth_methods.contains(AuthMethod::AuthorizationCode) && is_browser_navigation(req) {
        return authorization_code::start(cfg, req, &browser, now, core);
    }
    Err(Error::Unauthenticated.into())
}

/// A browser navigating (not a script's fetch): worth a login redirect.
/// API clients get the 401 instead.
fn is_browser_navigation(req: &RequestView) -> bool {
    matches!(req.method(), "GET" | "HEAD")
        && req.get("accept").is_some_and(|a| a.contains("text/html"))
        && req.get("sec-fetch-mode").is_none_or(|m| m == "navigate")
        && req.get("x-requested-with").is_none()
}

fn authenticate_header(
    cfg: &Config,
    req: &RequestView,
    now: u64,
    core: &mut Core,
    store: &mut dyn SharedStore,
) -> Result<Allowed, Stop> {
    let mut values = req.all("authorization");
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(TokenError::MultipleAuthorization.into());
    };
    if let Some(decided) = canonical_bearer(cfg, value, now, core) {
        return decided;
    }
    let value = std::str::from_utf8(value)
        .map_err(|_| TokenError::Malformed("authorization header is not UTF-8"))?;
    let (scheme, credentials) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
    let credentials = credentials.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        if !cfg.bearer_from_header {
            return Err(TokenError::MethodDisabled("bearer tokens are not accepted").into());
        }
        let mut allowed = authenticate_bearer(cfg, credentials, now, core)?;
        // `credentials` is the end of `value`: as long as it and the prefix,
        // it is all of `value` after `Bearer `.
        allowed.as_sent = value.len() == credentials.len() + 7 && value.starts_with("Bearer ");
        Ok(allowed)
    } else if scheme.eq_ignore_ascii_case("basic") {
        if !cfg.auth_methods.contains(AuthMethod::ClientCredentials)
            || !cfg.client_credentials_from_header
        {
            return Err(TokenError::MethodDisabled("client credentials are not accepted").into());
        }
        let client = crate::oidc::token::ClientCredentials::from_basic(credentials)?;
        client_credentials::authenticate(cfg, req, &client, now, core, store)
    } else {
        Err(TokenError::UnsupportedScheme.into())
    }
}

/// The usual shape of the header, `Bearer <token>` to the byte, read as
/// bytes: the token caches are asked before any UTF-8 check (~800 bytes, on
/// every request), since a token they know is one that was UTF-8, with no
/// blanks to trim. One they do not know is verified here under the key
/// they were asked with, once its bytes are text with nothing to trim: then
/// `authenticate_header`'s whole way would read the same token and take it
/// the same way. `None`: that way it goes (another shape, or opaque tokens
/// may go elsewhere, which is decided before any cache).
fn canonical_bearer(
    cfg: &Config,
    value: &[u8],
    now: u64,
    core: &mut Core,
) -> Option<Result<Allowed, Stop>> {
    let token = value.strip_prefix(b"Bearer ")?;
    if !cfg.bearer_from_header
        || !cfg.auth_methods.contains(AuthMethod::Bearer)
        || opaque_goes_elsewhere(cfg)
    {
        return None;
    }
    let verified = match bearer::known(core, token, now) {
        bearer::Known::Verified(verified) => Ok(verified),
        bearer::Known::Refused(e) => Err(e.into()),
        bearer::Known::Unknown(key) => {
            let token = std::str::from_utf8(token).ok().filter(|t| *t == t.trim())?;
            bearer::first_seen(cfg, token, key, now, core)
        }
    };
    Some(verified.map(|(token, claims, _)| Allowed {
        as_sent: true,
        ..Allowed::new(token, claims)
    }))
}

/// A bearer token from wherever it came: a JWT verified here, an opaque
/// one (or, without `bearer`, any) introspected, or else (when listed)
/// checked at userinfo.
fn authenticate_bearer(
    cfg: &Config,
    token: &str,
    now: u64,
    core: &mut Core,
) -> Result<Allowed, Stop> {
    // The configuration first: `is_opaque` walks the whole token. Without
    // `bearer`, a JWT goes to the IdP too, as Kong's does: Okta's org
    // authorization server issues JWTs that are not for others to verify,
    // and Entra ID's for Microsoft Graph only Graph's userinfo can check.
    let local = cfg.auth_methods.contains(AuthMethod::Bearer);
    if opaque_goes_elsewhere(cfg) && (!local || introspection::is_opaque(token)) {
        if cfg.auth_methods.contains(AuthMethod::Introspection) {
            return introspection::authenticate(cfg, token, now, core);
        }
        if cfg.auth_methods.contains(AuthMethod::Userinfo) {
            return userinfo::authenticate(cfg, token, now, core);
        }
    }
    if !local {
        return Err(TokenError::MethodDisabled("bearer tokens are not accepted").into());
    }
    bearer::authenticate(cfg, token, now, core)
}

/// Whether an opaque bearer token goes to the IdP (introspection, else
/// userinfo) rather than being refused as no JWT.
fn opaque_goes_elsewhere(cfg: &Config) -> bool {
    cfg.auth_methods.contains(AuthMethod::Introspection)
        || cfg.auth_methods.contains(AuthMethod::Userinfo)
}

fn deny(cfg: &Config, req: &RequestView, e: Error, core: &mut Core) -> Decision {
    let response = core.responses.response(&e, cfg.issuer.realm());
    Decision {
        log: core.log_denials.then(|| {
            let path = req.path().split('?').next().unwrap_or_default();
            format!("{} {} {path}: {e}", response.status, req.method())
        }),
        action: Action::Respond(response),
    }
}
