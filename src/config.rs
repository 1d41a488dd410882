//! Typed configuration: the JSON of the README's configuration reference
//! (and `config.schema.json`), with Kong's names and
//! semantics, parsed and validated once in `on_configure`.
//!
//! `RawConfig` mirrors the JSON (unknown keys refused); `Config::parse`
//! turns it into a `Config` whose fields are ready to use on the hot path.
//! Every refusal is a `ConfigError` that names the field.

use std::collections::BTreeMap;
use std::fmt;

use crate::cache::same_bytes;
use crate::oidc::token::has_control;
use serde::Deserialize;

use crate::policy::{ClaimPath, Requirement};
use crate::request::RequestView;
use crate::url::Url;

const DISCOVERY_SUFFIX: &str = "/.well-known/openid-configuration";

/// A configuration refused at load, with the field it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub field: String,
    pub reason: String,
}

impl ConfigError {
    pub(crate) fn new(field: &str, reason: impl Into<String>) -> Self {
        ConfigError {
            field: field.to_string(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "invalid configuration: {}", self.reason)
        } else {
            write!(
                f,
                "invalid configuration: field `{}`: {}",
                self.field, self.reason
            )
        }
    }
}

/// A string or a list of strings, as Kong accepts for client settings.
#[derive(Deserialize, Debug, Clone)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn first(&self) -> Option<&str> {
        match self {
            OneOrMany::One(s) => Some(s),
            OneOrMany::Many(v) => v.first().map(String::as_str),
        }
    }

    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    issuer: Option<String>,
    issuers_allowed: Option<Vec<String>>,
    client_id: Option<OneOrMany>,
    client_secret: Option<OneOrMany>,
    redirect_uri: Option<OneOrMany>,
    scopes: Option<Vec<String>>,
    scopes_required: Option<Vec<String>>,
    scopes_claim: Option<Vec<String>>,
    audience_required: Option<Vec<String>>,
    audience_claim: Option<Vec<String>>,
    groups_required: Option<Vec<String>>,
    groups_claim: Option<Vec<String>>,
    roles_required: Option<Vec<String>>,
    roles_claim: Option<Vec<String>>,
    claims_forbidden: Option<Vec<String>>,
    auth_methods: Option<Vec<String>>,
    idp_cluster: Option<String>,
    idp_clusters: Option<BTreeMap<String, String>>,
    idp_timeout_ms: Option<u64>,
    idp_call_budget: Option<BTreeMap<String, serde_json::Value>>,
    leeway: Option<u64>,
    session_secret: Option<OneOrMany>,
    session_cookie_name: Option<String>,
    session_cookie_secure: Option<bool>,
    session_cookie_same_site: Option<String>,
    session_cookie_domain: Option<String>,
    session_cookie_path: Option<String>,
    session_idling_timeout: Option<u64>,
    session_rolling_timeout: Option<u64>,
    session_absolute_timeout: Option<u64>,
    logout_path: Option<String>,
    post_logout_redirect_uri: Option<String>,
    logout_methods: Option<Vec<String>>,
    logout_query_arg: Option<String>,
    logout_post_arg: Option<String>,
    logout_uri_suffix: Option<String>,
    logout_revoke: Option<bool>,
    logout_revoke_access_token: Option<bool>,
    logout_revoke_refresh_token: Option<bool>,
    revocation_endpoint: Option<String>,
    end_session_endpoint: Option<String>,
    bypass_paths: Option<Vec<String>>,
    introspection_endpoint: Option<String>,
    introspection_hint: Option<String>,
    introspection_cache_ttl: Option<u64>,
    token_cache_size: Option<u64>,
    search_user_info: Option<bool>,
    run_on_preflight: Option<bool>,
    upstream_access_token_header: Option<String>,
    upstream_headers_claims: Option<Vec<String>>,
    upstream_headers_names: Option<Vec<String>>,
    hide_credentials: Option<bool>,
    audience: Option<OneOrMany>,
    authorization_query_args_names: Option<Vec<String>>,
    authorization_query_args_values: Option<Vec<String>>,
    authorization_query_args_client: Option<Vec<String>>,
    token_post_args_names: Option<Vec<String>>,
    token_post_args_values: Option<Vec<String>>,
    token_post_args_client: Option<Vec<String>>,
    domains: Option<Vec<String>>,
    client_auth: Option<OneOrMany>,
    client_jwk: Option<serde_json::Value>,
    client_alg: Option<OneOrMany>,
    token_endpoint_auth_method: Option<String>,
    introspection_endpoint_auth_method: Option<String>,
    revocation_endpoint_auth_method: Option<String>,
    client_assertion_audience: Option<String>,
    identity_filter_state: Option<bool>,
    anonymous: Option<String>,
    unauthorized_redirect_uri: Option<OneOrMany>,
    forbidden_redirect_uri: Option<OneOrMany>,
    upstream_id_token_header: Option<String>,
    upstream_user_info_header: Option<String>,
    upstream_introspection_header: Option<String>,
    upstream_refresh_token_header: Option<String>,
    upstream_session_id_header: Option<String>,
    downstream_access_token_header: Option<String>,
    downstream_id_token_header: Option<String>,
    downstream_user_info_header: Option<String>,
    downstream_introspection_header: Option<String>,
    downstream_refresh_token_header: Option<String>,
    downstream_session_id_header: Option<String>,
    upstream_headers: Option<Vec<RawClaimHeader>>,
    downstream_headers_claims: Option<Vec<String>>,
    downstream_headers_names: Option<Vec<String>>,
    bearer_token_param_type: Option<Vec<String>>,
    bearer_token_cookie_name: Option<String>,
    client_credentials_param_type: Option<Vec<String>>,
    rules: Option<Vec<serde_json::Value>>,
}

/// `upstream_headers`: a claim at a nested path into a header.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
struct RawClaimHeader {
    header: String,
    path: Vec<String>,
}

/// The ways a request can authenticate (`auth_methods`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    ClientCredentials,
    Bearer,
    AuthorizationCode,
    Session,
    RefreshToken,
    Introspection,
    Userinfo,
}

impl AuthMethod {
    pub const ALL: [AuthMethod; 7] = [
        AuthMethod::ClientCredentials,
        AuthMethod::Bearer,
        AuthMethod::AuthorizationCode,
        AuthMethod::Session,
        AuthMethod::RefreshToken,
        AuthMethod::Introspection,
        AuthMethod::Userinfo,
    ];

    pub fn name(self) -> &'static str {
        match self {
            AuthMethod::ClientCredentials => "client_credentials",
            AuthMethod::Bearer => "bearer",
            AuthMethod::AuthorizationCode => "authorization_code",
            AuthMethod::Session => "session",
            AuthMethod::RefreshToken => "refresh_token",
            AuthMethod::Introspection => "introspection",
            AuthMethod::Userinfo => "userinfo",
        }
    }

    fn from_name(s: &str) -> Option<AuthMethod> {
        AuthMethod::ALL.into_iter().find(|m| m.name() == s)
    }

    /// The configuration keys this method cannot work without.
    fn missing_keys(self, raw: &RawConfig) -> Vec<&'static str> {
        let mut missing = Vec::new();
        let needs_client = matches!(
            self,
            AuthMethod::AuthorizationCode | AuthMethod::RefreshToken | AuthMethod::Introspection
        );
        if needs_client && raw.client_id.is_none() {
            missing.push("client_id");
        }
        // No redirect_uri: derived from each request, as Kong does.
        // Introspection authenticates the gateway: a secret, unless a key
        // or the cluster's certificate does.
        let keyed = raw
            .introspection_endpoint_auth_method
            .as_deref()
            .or(raw.client_auth.as_ref().and_then(|m| m.first()))
            .is_some_and(|m| matches!(m, "private_key_jwt" | "tls_client_auth"));
        if matches!(self, AuthMethod::Introspection) && raw.client_secret.is_none() && !keyed {
            missing.push("client_secret");
        }
        missing
    }
}

/// The set of enabled methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AuthMethods(u8);

impl AuthMethods {
    pub fn contains(self, m: AuthMethod) -> bool {
        self.0 & (1 << m as u8) != 0
    }
    fn insert(&mut self, m: AuthMethod) {
        self.0 |= 1 << m as u8;
    }
    pub fn names(self) -> Vec<&'static str> {
        AuthMethod::ALL
            .into_iter()
            .filter(|m| self.contains(*m))
            .map(AuthMethod::name)
            .collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameSite {
    Strict,
    Lax,
    None,
}

/// The configured issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issuer {
    /// The issuer identifier: what `iss` and discovery's `issuer` must equal.
    pub id: String,
    pub discovery_url: Url,
    /// Given as its discovery URL (Kong's usual form), which does not say
    /// whether the identifier ends in `/`: Auth0's and Entra v1's do, most
    /// do not. Either is then taken (`is`).
    pub slash_optional: bool,
}

/// Google's issuer, which also signs ID tokens as `accounts.google.com`.
const GOOGLE: &str = "https://accounts.google.com";

impl Issuer {
    /// An issuer as the `issuer` key takes it: its identifier or its
    /// discovery URL.
    pub fn parse(s: &str) -> Result<Issuer, ConfigError> {
        parse_issuer("issuer", Some(s))
    }

    /// Whether `iss` (a token's, a discovery document's, a callback's)
    /// names this issuer.
    pub fn is(&self, iss: &str) -> bool {
        fn base(s: &str) -> &str {
            s.strip_suffix('/').unwrap_or(s)
        }
        iss == self.id
            || (self.slash_optional && base(iss) == base(&self.id))
            // Google documents both for its ID tokens' `iss`; its discovery
            // says the https one.
            || (self.id == GOOGLE && iss == "accounts.google.com")
    }
    /// The realm of `WWW-Authenticate`: the issuer's authority, as Kong does.
    pub fn realm(&self) -> &str {
        &self.discovery_url.authority
    }
}

/// Where the access token goes upstream (`upstream_access_token_header`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenHeader {
    pub name: String,
    /// `Some("Bearer")` for `authorization:bearer`.
    pub scheme: Option<String>,
}

impl TokenHeader {
    /// `Authorization: Bearer <token>`, the default.
    pub fn is_default(&self) -> bool {
        self.name == "authorization" && self.scheme.as_deref() == Some("Bearer")
    }

    /// Whether `value` is already what `value(token)` would make.
    pub fn carries(&self, value: &[u8], token: &str) -> bool {
        match &self.scheme {
            Some(s) => value
                .strip_prefix(s.as_bytes())
                .and_then(|rest| rest.strip_prefix(b" "))
                .is_some_and(|rest| same_bytes(rest, token.as_bytes())),
            None => same_bytes(value, token.as_bytes()),
        }
    }

    pub fn value(&self, token: &str) -> String {
        match &self.scheme {
            // Not `format!`: its machinery is a visible share of a cached
            // client-credentials request, which makes this on every request.
            Some(s) => [s.as_str(), " ", token].concat(),
            None => token.to_string(),
        }
    }
}

/// One `upstream_headers_claims` → `upstream_headers_names` pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimHeader {
    pub claim: ClaimPath,
    pub header: String,
}

#[derive(Debug, Clone)]
pub struct Session {
    pub secrets: Vec<Vec<u8>>,
    pub cookie_name: String,
    pub cookie_secure: Option<bool>,
    pub same_site: SameSite,
    pub cookie_domain: Option<String>,
    pub cookie_path: String,
    /// Kong's three session limits, in seconds; `u64::MAX` when set to 0
    /// (disabled). Inactivity: no request for this long ends the session.
    pub idling_timeout: u64,
    /// Renewal period: a session not renewed for this long ends; a session
    /// in use is renewed once half of it has passed.
    pub rolling_timeout: u64,
    /// From login, whatever the activity.
    pub absolute_timeout: u64,
}

/// The longest `idp_timeout_ms` taken.
pub const MAX_IDP_TIMEOUT_MS: u64 = 300_000;

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// How the gateway's client authenticates at the IdP.
    pub client_auth: crate::client_auth::ClientAuth,
    /// `audience`, space-separated: sent to the authorization endpoint and
    /// with the client credentials grant (Auth0 issues JWTs only then).
    pub audience: Option<String>,
    /// Parameters added to the login redirect (`authorization_query_args_*`).
    pub authorization_args: ExtraArgs,
    /// Parameters added to token endpoint requests (`token_post_args_*`).
    pub token_args: ExtraArgs,
    /// The fixed parameters of a client credentials grant, made once at
    /// load: the `audience`, then `token_args.fixed` (the grant's cache key
    /// hashes them on every Basic request).
    pub client_credentials_args: Vec<(String, String)>,
    /// `domains`: the allowed values of the `hd` claim (Google Workspace).
    pub domains: Vec<String>,
    pub issuer: Issuer,
    /// `issuers_allowed`: more issuers whose tokens are accepted.
    pub other_issuers: Vec<Issuer>,
    pub client_ids: Vec<String>,
    pub client_secrets: Vec<String>,
    pub redirect_uris: Vec<Url>,
    pub scopes: Vec<String>,
    /// `scopes` space-joined, as the token endpoint takes them (and as the
    /// client-credentials cache key hashes them on every Basic request).
    pub scope: String,
    /// True when `scopes` was set explicitly (client credentials sends it then only).
    pub scopes_explicit: bool,
    pub scopes_required: Requirement,
    pub scopes_claim: ClaimPath,
    pub audience_required: Requirement,
    pub audience_claim: ClaimPath,
    pub groups_required: Requirement,
    pub groups_claim: ClaimPath,
    pub roles_required: Requirement,
    pub roles_claim: ClaimPath,
    /// Claims whose presence refuses the token.
    pub claims_forbidden: Vec<String>,
    pub auth_methods: AuthMethods,
    pub idp_cluster: Option<String>,
    pub idp_clusters: BTreeMap<String, String>,
    pub idp_timeout_ms: u32,
    /// Calls of each purpose the whole Envoy may make (`idp_call_budget`).
    pub idp_call_budget: crate::budget::Budgets,
    pub leeway: u64,
    pub session: Session,
    pub logout_path: Option<String>,
    pub post_logout_redirect_uri: Option<Url>,
    /// The methods a logout is made with (`logout_methods`): any other
    /// method on a logout path is an ordinary request.
    pub logout_methods: Vec<String>,
    /// A logout on any path whose query has this argument.
    pub logout_query_arg: Option<String>,
    /// A logout on any path ending with this.
    pub logout_uri_suffix: Option<String>,
    /// Revoke the session's tokens at logout (Kong's default: no).
    pub logout_revoke: bool,
    pub logout_revoke_access_token: bool,
    pub logout_revoke_refresh_token: bool,
    /// Overrides discovery's `revocation_endpoint`.
    pub revocation_endpoint: Option<Url>,
    pub end_session_endpoint: Option<Url>,
    pub bypass_paths: Vec<String>,
    /// Overrides discovery's `introspection_endpoint`.
    pub introspection_endpoint: Option<Url>,
    /// `token_type_hint` sent with introspection.
    pub introspection_hint: String,
    /// Longest time an introspection result is trusted, in seconds.
    pub introspection_cache_ttl: u64,
    /// Verified tokens (and introspection answers) each worker keeps
    /// (`token_cache_size`).
    pub token_cache_size: usize,
    /// Fetch userinfo after authentication and add its claims.
    pub search_user_info: bool,
    pub run_on_preflight: bool,
    pub upstream_access_token_header: TokenHeader,
    pub upstream_headers: Vec<ClaimHeader>,
    /// Every header name the filter sets upstream, under the top level or
    /// any rule: claim headers, `upstream_*_header`, and the token header
    /// where it is not `authorization`. A client's copies of each are
    /// removed whichever rule a request meets: one route's upstream may
    /// trust a name another rule sets (one service behind several routes),
    /// and a rule's names replace the top level's. Derived at load
    /// (`share_upstream_names`).
    pub upstream_names: Vec<String>,
    /// Whether a client header could pass for one of `upstream_names` or
    /// the token header with `_` and `-` read alike (only when one of their
    /// names has either; not the default `authorization`): see
    /// `flow::upstream`. Derived at load.
    pub lookalikes_possible: bool,
    /// One of those names has a `_`: then a client's name with `-` in its
    /// place could pass for it too, and every name the client sent is
    /// looked at, not only those with a `_`.
    pub lookalikes_of_underscores: bool,
    /// Kong's consumers are in use (`anonymous`, at the top level or in
    /// any rule): then a client's copies of their headers are removed
    /// under every rule, as `upstream_names` are. Derived at load.
    pub consumers_in_use: bool,
    pub hide_credentials: bool,
    /// Set the subject, client id and way in as filter state (access logs).
    pub identity_filter_state: bool,
    /// Kong's `anonymous`: what would be a 401 passes, marked with this.
    pub anonymous: Option<String>,
    /// Where browsers go instead of a 401 or 403 (the first of Kong's list).
    pub unauthorized_redirect_uri: Option<Url>,
    pub forbidden_redirect_uri: Option<Url>,
    /// Kong's `upstream_*_header`: what else goes upstream, and under what name.
    pub upstream_extra: Forwarded,
    /// Kong's `downstream_*_header` and `downstream_headers_*`: what goes
    /// back to the client on the response.
    pub downstream: Forwarded,
    /// Where bearer tokens may come from besides `Authorization`
    /// (`bearer_token_param_type`): the `access_token` query argument, or
    /// the cookie `bearer_token_cookie_name`.
    pub bearer_from_header: bool,
    pub bearer_from_query: bool,
    pub bearer_cookie: Option<String>,
    pub client_credentials_from_header: bool,
    /// Client credentials from the `client_id` and `client_secret` query
    /// arguments (`client_credentials_param_type: ["query"]`).
    pub client_credentials_from_query: bool,
    /// `rules`, in order: what each matches, its configuration (the
    /// top-level keys with its overrides), and whether it lets requests
    /// pass without authentication (`"bypass": true`).
    pub rules: Vec<(crate::rules::Match, Box<Config>, bool)>,
    /// The filter (its top level or a rule) logs browsers in or takes
    /// sessions: the session cookie's name is ours on every route, so our
    /// cookies never go upstream (`upstream::strip_our_cookies`). Without,
    /// a cookie of the same name is the application's.
    pub sessions_on: bool,
    /// Some rule matches on `route_names`: the engine reads the route's
    /// name from the host for each request (a host call otherwise saved).
    pub rules_read_route_name: bool,
    /// Which rule this configuration is (`rules[i]`); `None`: the top level.
    pub rule_index: Option<usize>,
    /// Some rule matches on `paths`: an ambiguous path is then refused.
    pub rules_match_paths: bool,
    /// A rule's configuration that sets its own `audience_required` or
    /// `audience_claim`: a client-credentials token, judged ours or not
    /// against the top level's when obtained, is judged again against it.
    pub audience_overridden: bool,
}

/// Headers that carry a request's tokens and identity, by name (`None`:
/// not sent). Tokens go as they are, JSON (userinfo, introspection) in
/// standard base64, as Kong sends them.
#[derive(Debug, Clone, Default)]
pub struct Forwarded {
    pub access_token: Option<String>,
    pub id_token: Option<String>,
    pub user_info: Option<String>,
    pub introspection: Option<String>,
    pub refresh_token: Option<String>,
    pub session_id: Option<String>,
    pub claims: Vec<ClaimHeader>,
}

impl Forwarded {
    pub fn is_empty(&self) -> bool {
        self.names().next().is_none() && self.claims.is_empty()
    }

    /// The configured names of the token and identity headers.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        [
            &self.access_token,
            &self.id_token,
            &self.user_info,
            &self.introspection,
            &self.refresh_token,
            &self.session_id,
        ]
        .into_iter()
        .filter_map(|n| n.as_deref())
    }
}

/// Parameters a configuration adds to what the filter sends the IdP: fixed
/// ones, and ones copied from the user's request by name.
#[derive(Debug, Clone, Default)]
pub struct ExtraArgs {
    pub fixed: Vec<(String, String)>,
    /// Names of the user's query arguments (or else headers) to copy.
    pub client: Vec<String>,
}

/// Parameters the protocol sets: no configuration or client may set or
/// override them.
pub const PROTOCOL_PARAMS: [&str; 16] = [
    "grant_type",
    "code",
    "redirect_uri",
    "code_verifier",
    "client_id",
    "client_secret",
    "client_assertion",
    "client_assertion_type",
    "state",
    "nonce",
    "response_type",
    "code_challenge",
    "code_challenge_method",
    "scope",
    "refresh_token",
    "response_mode",
];

impl ExtraArgs {
    /// `<prefix>_names`, `_values` (as many) and `_client`.
    fn parse(
        prefix: &str,
        names: Option<&[String]>,
        values: Option<&[String]>,
        client: Option<&[String]>,
        audience_set: bool,
    ) -> Result<ExtraArgs, ConfigError> {
        let (names, values) = (names.unwrap_or_default(), values.unwrap_or_default());
        if names.len() != values.len() {
            return Err(ConfigError::new(
                &format!("{prefix}_values"),
                format!(
                    "has {} entries but {prefix}_names has {}",
                    values.len(),
                    names.len()
                ),
            ));
        }
        let check = |field: &str, name: &str| {
            if name.is_empty() {
                Err(ConfigError::new(field, "entries must not be empty"))
            } else if PROTOCOL_PARAMS.contains(&name) {
                Err(ConfigError::new(
                    field,
                    format!("`{name}` is set by the protocol and cannot be configured"),
                ))
            } else if audience_set && name == "audience" {
                Err(ConfigError::new(
                    field,
                    "`audience` is configured by the `audience` key already",
                ))
            } else {
                Ok(())
            }
        };
        let names_field = format!("{prefix}_names");
        for n in names {
            check(&names_field, n)?;
        }
        let client_field = format!("{prefix}_client");
        let client = client.unwrap_or_default().to_vec();
        for n in &client {
            check(&client_field, n)?;
        }
        Ok(ExtraArgs {
            fixed: names.iter().cloned().zip(values.iter().cloned()).collect(),
            client,
        })
    }
}

/// A parsed configuration and the info lines worth logging about it.
#[derive(Debug)]
pub struct Loaded {
    pub config: Config,
    pub notes: Vec<String>,
}

/// Which accepted issuer: the configured `issuer`, or one of
/// `issuers_allowed` (in order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IssuerId(usize);

impl IssuerId {
    /// The configured `issuer`.
    pub const CONFIGURED: IssuerId = IssuerId(0);

    /// Distinguishes the issuer in shared-data keys.
    pub fn index(self) -> usize {
        self.0
    }
}

/// Which configuration `Config::rule_for` chose for a request: the top
/// level's or a rule's. A paused request keeps it (not a borrow of the
/// configuration), so its rules are matched once, not on every resume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleId(Option<usize>);

impl Config {
    /// What seals and opens this filter's cookies with `secrets`: bound to
    /// its issuer and (first) client, so that another configuration sharing
    /// the secret opens none of them (`session::seal`).
    pub fn sealer<S: AsRef<[u8]>>(&self, secrets: &[S]) -> crate::session::seal::Sealer {
        let client = self.client_ids.first().map_or("", String::as_str);
        crate::session::seal::Sealer::bound(secrets, &self.issuer.id, client)
    }

    /// Parses and validates the plugin configuration.
    pub fn parse(json: &[u8]) -> Result<Loaded, ConfigError> {
        let value: serde_json::Value = serde_json::from_slice(json)
            .map_err(|e| ConfigError::new("", strip_position(&e.to_string())))?;
        let Some(map) = value.as_object() else {
            return Err(ConfigError::new(
                "",
                "the configuration must be a JSON object",
            ));
        };
        let duplicate = std::str::from_utf8(json)
            .ok()
            .and_then(crate::json_object::first_duplicate);
        if let Some(path) = duplicate {
            return Err(ConfigError::new(
                &path,
                "is given twice (only one value can count)",
            ));
        }
        let raw = match raw_config(&value) {
            Ok(raw) => raw,
            Err(e) => return Err(name_the_field(map, &e)),
        };
        if let Some(key) = map.iter().find(|(k, v)| null_refused(k, v)).map(|(k, _)| k) {
            return Err(ConfigError::new(
                key,
                "must not be null (leave the key out for its default)",
            ));
        }
        let rules = raw.rules.clone().unwrap_or_default();
        let mut loaded = Config::validate(raw)?;
        for (i, rule) in rules.iter().enumerate() {
            loaded.config.rules.push(rule_config(&value, i, rule)?);
        }
        let rules = &loaded.config.rules;
        loaded.config.rules_read_route_name =
            rules.iter().any(|(m, _, _)| !m.route_names.is_empty());
        loaded.config.rules_match_paths = rules.iter().any(|(m, _, _)| !m.paths.is_empty());
        let sessions = |c: &Config| {
            c.auth_methods.contains(AuthMethod::Session)
                || c.auth_methods.contains(AuthMethod::AuthorizationCode)
        };
        let sessions_on = sessions(&loaded.config) || rules.iter().any(|(_, c, _)| sessions(c));
        loaded.config.sessions_on = sessions_on;
        for (_, rule, _) in &mut loaded.config.rules {
            rule.sessions_on = sessions_on;
        }
        loaded.config.share_upstream_names();
        loaded.config.callbacks_not_bypassed()?;
        let notes = loaded.config.logins_can_complete()?;
        loaded.notes.extend(notes);
        Ok(loaded)
    }

    /// The login callback (a configured `redirect_uri`'s path) and
    /// `logout_path` must reach the filter's authentication: a bypass would
    /// send the code upstream (into its logs, the login never ending) and
    /// leave the session alive after a logout. A bypass rule is refused
    /// when it could take one of them before a rule that surely does: one
    /// whose paths cover it, whose hosts cover a callback's host, and whose
    /// methods hold the callback's GET (a logout's methods). A rule on
    /// Envoy route names cannot be judged at load, and is passed over.
    fn callbacks_not_bypassed(&self) -> Result<(), ConfigError> {
        let hosts: Vec<&str> = self
            .redirect_uris
            .iter()
            .map(|u| crate::request::without_port(&u.authority))
            .collect();
        let get = ["GET".to_string()];
        let callbacks = self
            .redirect_uris
            .iter()
            .zip(&hosts)
            .map(|(u, h)| ("redirect_uri", u.path(), vec![*h], &get[..]));
        let logout = self
            .logout_path
            .as_deref()
            .map(|p| ("logout_path", p, hosts.clone(), &self.logout_methods[..]));
        for (field, path, on_hosts, methods) in callbacks.chain(logout) {
            if crate::flow::matches_entries(&self.bypass_paths, path) {
                return Err(ConfigError::new(
                    "bypass_paths",
                    format!("covers {field} `{path}`, which must reach the filter"),
                ));
            }
            let (taking, _, _) = self.rules_taking(path, (&on_hosts, methods), false);
            if let Some((i, _)) = taking.iter().find(|(_, rule)| rule.2) {
                return Err(ConfigError::new(
                    &format!("rules[{i}].match"),
                    format!("can bypass {field} `{path}`, which must reach the filter"),
                ));
            }
        }
        Ok(())
    }

    /// The rules that may take a request for `path` on one of `hosts` with
    /// one of `methods`, in order, up to the first that surely does: one
    /// whose paths cover it and, if `only_these`, whose hosts cover every
    /// one of `hosts` and whose methods hold every one of `methods`; else
    /// (the request may come on another host or with another method: a
    /// logout wherever the cookie reaches, a hand-made callback) one with
    /// no hosts and no methods. Then whether one surely does (else the top
    /// level takes what none of them took), and whether a rule on Envoy
    /// route names, which cannot be judged at load, was passed over.
    #[allow(clippy::type_complexity)]
    fn rules_taking(
        &self,
        path: &str,
        (hosts, methods): (&[&str], &[String]),
        only_these: bool,
    ) -> (
        Vec<(usize, &(crate::rules::Match, Box<Config>, bool))>,
        bool,
        bool,
    ) {
        let mut taking = Vec::new();
        let mut unjudged = false;
        for (i, rule) in self.rules.iter().enumerate() {
            let m = &rule.0;
            let paths = m.paths.is_empty() || crate::flow::matches_entries(&m.paths, path);
            if paths && !m.route_names.is_empty() {
                unjudged = true;
                continue;
            }
            let may_take = paths
                && (m.hosts.is_empty() || hosts.iter().any(|h| m.covers_host(h)))
                && (m.methods.is_empty() || m.methods.iter().any(|x| methods.contains(x)));
            if !may_take {
                continue;
            }
            taking.push((i, rule));
            let surely = if only_these {
                (m.hosts.is_empty() || hosts.iter().all(|h| m.covers_host(h)))
                    && (m.methods.is_empty() || methods.iter().all(|x| m.methods.contains(x)))
            } else {
                m.hosts.is_empty() && m.methods.is_empty()
            };
            if surely {
                return (taking, true, unjudged);
            }
        }
        (taking, false, unjudged)
    }

    /// A login must be able to end in a session that is read: a rule (or
    /// the top level) with `authorization_code` needs `session` beside it,
    /// or each request after a login starts another (a loop through the
    /// IdP): refused. And whatever takes a configured `redirect_uri` needs
    /// `authorization_code`, or a login ending there 401s at the callback:
    /// a note, not a refusal, since a callback no login uses (kong2wasm
    /// joins every route's `redirect_uri`) harms nothing.
    fn logins_can_complete(&self) -> Result<Vec<String>, ConfigError> {
        let code = |c: &Config| c.auth_methods.contains(AuthMethod::AuthorizationCode);
        let configs = std::iter::once(("auth_methods".to_string(), self)).chain(
            self.rules
                .iter()
                .enumerate()
                .map(|(i, (_, c, _))| (format!("rules[{i}].auth_methods"), &**c)),
        );
        let mut logins = false;
        for (field, c) in configs {
            if code(c) && !c.auth_methods.contains(AuthMethod::Session) {
                return Err(ConfigError::new(
                    &field,
                    "has authorization_code without session: the session a login makes \
                     would not be read, and each request would log in again",
                ));
            }
            logins |= code(c);
        }
        let mut notes = Vec::new();
        if !logins {
            return Ok(notes);
        }
        let get = ["GET".to_string()];
        for u in &self.redirect_uris {
            let path = u.path();
            let host = crate::request::without_port(&u.authority);
            let (taking, surely, unjudged) = self.rules_taking(path, (&[host], &get), true);
            let lacking = taking.iter().find(|(_, rule)| !rule.2 && !code(&rule.1));
            let field = match lacking {
                Some((i, _)) => format!("rules[{i}].auth_methods"),
                None if !surely && !unjudged && !code(self) => "auth_methods".to_string(),
                None => continue,
            };
            notes.push(format!(
                "{field} lacks authorization_code, yet takes redirect_uri `{path}`: a login \
                 ending there would be refused at its callback"
            ));
        }
        Ok(notes)
    }

    /// `upstream_names`, the lookalike flags and `consumers_in_use`, for
    /// the top level and each rule alike: of all of them together.
    fn share_upstream_names(&mut self) {
        let mut names: Vec<String> = Vec::new();
        let mut consumers = false;
        let rules = self.rules.iter().map(|(_, c, _)| &**c);
        for c in std::iter::once(&*self).chain(rules) {
            consumers |= c.anonymous.is_some();
            let token = c.upstream_access_token_header.name.as_str();
            let own = c
                .upstream_headers
                .iter()
                .map(|ch| ch.header.as_str())
                .chain(c.upstream_extra.names())
                .chain((token != "authorization").then_some(token));
            for name in own {
                if !names.iter().any(|n| n == name) {
                    names.push(name.to_string());
                }
            }
        }
        let has = |c: char| names.iter().any(|n| n.contains(c));
        let (underscores, dashes) = (has('_'), has('-'));
        let share = |c: &mut Config| {
            c.upstream_names.clone_from(&names);
            c.lookalikes_of_underscores = underscores;
            c.lookalikes_possible = underscores || dashes;
            c.consumers_in_use = consumers;
        };
        share(self);
        for (_, c, _) in &mut self.rules {
            share(c);
        }
    }

    /// This request's configuration (see `rule`) and whether its rule
    /// bypasses; a path that could be read differently upstream is refused
    /// when rules match on paths (it must not slip past a stricter rule).
    pub fn rule_for(&self, req: &RequestView) -> Result<(RuleId, bool), &'static str> {
        // Raw bytes above 0x7F, which HTTP/2 lets through Envoy: such a
        // path reads as empty here, so it would meet no rule on paths (nor
        // lose the credentials in its query) while the upstream serves it.
        let Some(path) = req.utf8_path() else {
            return Err("a path that is not UTF-8 (raw bytes, not percent-encoded)");
        };
        if self.rules.is_empty() {
            return Ok((RuleId(None), false));
        }
        let ambiguous = self.rules_match_paths && crate::flow::is_ambiguous_path(path);
        let path = (!ambiguous).then_some(path);
        let chosen = self.first_rule(req, path);
        // Read otherwise upstream, the path could have met a rule on paths
        // before the one chosen without it (a catch-all, a rule on hosts or
        // methods only), or instead of none: refused, never a laxer rule.
        // Not for rules whose other conditions this request does not meet,
        // nor bypass rules (no rule is laxer).
        let before_chosen = chosen.map_or(self.rules.len(), |(i, _)| i);
        if ambiguous
            && self
                .rules
                .iter()
                .take(before_chosen)
                .any(|(m, _, bypass)| !m.paths.is_empty() && !bypass && m.matches_but_paths(req))
        {
            return Err("a path that could be read differently upstream");
        }
        // Path parameters (`/admin;x/users`): Java servers take them out
        // before routing, and Envoy's prefix routes match either way; the
        // rule must be the one the path without them gets too.
        let plain = path
            .filter(|_| self.rules_match_paths)
            .and_then(crate::flow::without_parameters);
        if let Some(plain) = &plain {
            // What is left may hold dot segments (`/..;/admin`).
            if crate::flow::is_ambiguous_path(plain) {
                return Err("a path that could be read differently upstream");
            }
            if self.first_rule(req, Some(plain)) != chosen {
                return Err("a path whose parameters (`;`) would choose another rule");
            }
        }
        // Merged slashes, `.` segments, escaped letters (`//admin`,
        // `/./admin`, `/%61dmin`): read so by the servers behind Envoy, the
        // path must choose the rule it chose as sent.
        if let Some(path) = path.filter(|_| self.rules_match_paths)
            && [Some(path), plain.as_deref()]
                .into_iter()
                .flatten()
                .filter_map(crate::flow::normalized)
                .any(|read| self.first_rule(req, Some(&read)) != chosen)
        {
            return Err("a path that an upstream reads as one choosing another rule");
        }
        Ok(chosen.map_or((RuleId(None), false), |(i, bypass)| {
            (RuleId(Some(i)), bypass)
        }))
    }

    /// The first rule matching `req` with `path` (see `Match::matches`),
    /// and whether it bypasses.
    fn first_rule(&self, req: &RequestView, path: Option<&str>) -> Option<(usize, bool)> {
        self.rules
            .iter()
            .enumerate()
            .find(|(_, (m, _, _))| m.matches(req, path))
            .map(|(i, (_, _, bypass))| (i, *bypass))
    }

    /// The configuration `rule_for` chose; `None` for a rule this
    /// configuration lacks (a `RuleId` of another one), which callers
    /// refuse: never the top level's instead, which a rule may tighten.
    pub fn rule(&self, id: RuleId) -> Option<&Config> {
        match id.0 {
            None => Some(self),
            Some(i) => self.rules.get(i).map(|(_, cfg, _)| &**cfg),
        }
    }

    /// The issuer at `index`: 0 is `issuer`, then `issuers_allowed`.
    pub fn issuer_at(&self, id: IssuerId) -> Option<&Issuer> {
        match id.0.checked_sub(1) {
            None => Some(&self.issuer),
            Some(i) => self.other_issuers.get(i),
        }
    }

    /// The issuer whose identifier is `id`.
    pub fn issuer_id(&self, id: &str) -> Option<IssuerId> {
        std::iter::once(&self.issuer)
            .chain(&self.other_issuers)
            .position(|i| i.is(id))
            .map(IssuerId)
    }

    /// Picks the Envoy cluster for an IdP URL's authority.
    pub fn cluster_for(&self, authority: &str) -> Option<&str> {
        self.idp_clusters
            .get(authority)
            .or(self.idp_cluster.as_ref())
            .map(String::as_str)
    }

    fn validate(mut raw: RawConfig) -> Result<Loaded, ConfigError> {
        let mut notes = Vec::new();

        let issuer = parse_issuer("issuer", raw.issuer.as_deref())?;
        let mut other_issuers: Vec<Issuer> = Vec::new();
        for i in raw.issuers_allowed.clone().unwrap_or_default() {
            let other = parse_issuer("issuers_allowed", Some(&i))?;
            if other.id != issuer.id && !other_issuers.iter().any(|o| o.id == other.id) {
                other_issuers.push(other);
            }
        }

        let client_ids = non_empty_list("client_id", raw.client_id.clone())?;
        let client_secrets = non_empty_list("client_secret", raw.client_secret.clone())?;
        let redirect_uris = non_empty_list("redirect_uri", raw.redirect_uri.clone())?
            .iter()
            .map(|u| {
                Url::parse(u).map_err(|e| ConfigError::new("redirect_uri", format!("`{u}` {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;

        // `scopes: []`: no scope sent, as when left out (a `scope=` with
        // nothing in it is refused by IdPs as an invalid scope).
        let scopes_explicit = raw.scopes.as_ref().is_some_and(|s| !s.is_empty());
        let scopes = match raw.scopes.clone() {
            Some(s) => {
                for v in &s {
                    check_token_list("scopes", v)?;
                }
                s
            }
            None => vec!["openid".to_string()],
        };

        let scopes_required =
            Requirement::parse(raw.scopes_required.as_deref().unwrap_or_default())
                .map_err(|e| ConfigError::new("scopes_required", e))?;
        let audience_required =
            Requirement::parse(raw.audience_required.as_deref().unwrap_or_default())
                .map_err(|e| ConfigError::new("audience_required", e))?;
        let scopes_claim = claim_path("scopes_claim", raw.scopes_claim.clone(), "scope")?;
        let audience_claim = claim_path("audience_claim", raw.audience_claim.clone(), "aud")?;
        let groups_required =
            Requirement::parse(raw.groups_required.as_deref().unwrap_or_default())
                .map_err(|e| ConfigError::new("groups_required", e))?;
        let roles_required = Requirement::parse(raw.roles_required.as_deref().unwrap_or_default())
            .map_err(|e| ConfigError::new("roles_required", e))?;
        // Kong's defaults: `groups` and `roles`.
        let groups_claim = claim_path("groups_claim", raw.groups_claim.clone(), "groups")?;
        let roles_claim = claim_path("roles_claim", raw.roles_claim.clone(), "roles")?;
        let claims_forbidden = raw.claims_forbidden.clone().unwrap_or_default();
        if claims_forbidden.iter().any(|c| c.is_empty()) {
            return Err(ConfigError::new(
                "claims_forbidden",
                "entries must not be empty",
            ));
        }

        let auth_methods = auth_methods(&raw, &mut notes)?;
        if auth_methods.contains(AuthMethod::Bearer) && audience_required.is_empty() {
            notes.push(
                "bearer tokens are accepted whatever their audience (a token the issuer made \
                 for any of its clients or APIs): set audience_required (with audience_claim) \
                 to this API's"
                    .to_string(),
            );
        }
        if auth_methods.contains(AuthMethod::Userinfo)
            && !auth_methods.contains(AuthMethod::Introspection)
        {
            // A userinfo answer says who the user is, not which client the
            // token was issued to: Google's and Auth0's opaque tokens of
            // any app the user signed in to pass.
            notes.push(
                "userinfo accepts any access token the IdP's userinfo endpoint answers for \
                 (opaque ones, and JWTs when bearer is not listed), whichever client it was issued to (another app of the user's, replaying \
                 it): narrow who passes with domains or groups_required, or prefer \
                 introspection, which says the token's client"
                    .to_string(),
            );
        }
        // The audience a login's ID token has (the client id), for
        // providers whose access tokens are not ours to verify
        // (docs/providers.md): any ID token of this client, as leaked in
        // `id_token_hint` or held by a single-page app, then meets it.
        if let Some(id) = client_ids
            .iter()
            .find(|id| audience_required.is_met_by(&[id.as_str()]))
            .filter(|_| auth_methods.contains(AuthMethod::Bearer) && scopes_required.is_empty())
        {
            notes.push(format!(
                "audience_required is met by client_id `{id}`, the audience of this client's ID \
                 tokens: they pass as bearer tokens unless the provider marks them (Cognito's \
                 token_use, Keycloak's typ); set scopes_required (ID tokens carry no scope) or \
                 audience_required to the API's own audience"
            ));
        }

        if let Some(c) = &raw.idp_cluster {
            check_cluster("idp_cluster", c)?;
        }
        let mut idp_clusters = BTreeMap::new();
        for (authority, cluster) in raw.idp_clusters.clone().unwrap_or_default() {
            if authority.is_empty()
                || authority.contains(['/', ' ', '@'])
                || has_control(&authority)
            {
                return Err(ConfigError::new(
                    "idp_clusters",
                    format!("`{authority}` is not a host or host:port"),
                ));
            }
            check_cluster("idp_clusters", &cluster)?;
            // Host names are compared without case: two keys that differ
            // only in it would leave one cluster silently unused.
            if idp_clusters
                .insert(authority.to_ascii_lowercase(), cluster)
                .is_some()
            {
                return Err(ConfigError::new(
                    "idp_clusters",
                    format!("`{authority}` is named twice (host names have no case)"),
                ));
            }
        }
        for (field, i) in std::iter::once(("idp_cluster", &issuer))
            .chain(other_issuers.iter().map(|i| ("issuers_allowed", i)))
        {
            let authority = &i.discovery_url.authority;
            if !idp_clusters.contains_key(authority) && raw.idp_cluster.is_none() {
                return Err(ConfigError::new(
                    field,
                    format!(
                        "the issuer's authority `{authority}` is covered by neither `idp_clusters` nor `idp_cluster`"
                    ),
                ));
            }
        }

        let idp_timeout_ms = match raw.idp_timeout_ms.unwrap_or(5000) {
            t @ 1..=MAX_IDP_TIMEOUT_MS => t as u32,
            t => {
                return Err(ConfigError::new(
                    "idp_timeout_ms",
                    format!("{t} is out of range (1 to {MAX_IDP_TIMEOUT_MS})"),
                ));
            }
        };
        let idp_call_budget = crate::budget::Budgets::parse(raw.idp_call_budget.take())?;
        let leeway = match raw.leeway.unwrap_or(30) {
            l @ 0..=3600 => l,
            l => {
                return Err(ConfigError::new(
                    "leeway",
                    format!("{l} is out of range (0 to 3600 seconds)"),
                ));
            }
        };

        let session = session(&raw, &mut notes)?;

        let logout_path = match raw.logout_path.clone() {
            Some(p) if !p.starts_with('/') => {
                return Err(ConfigError::new(
                    "logout_path",
                    "must be a path starting with `/`",
                ));
            }
            Some(p) if p.contains(['?', '#']) => {
                return Err(ConfigError::new(
                    "logout_path",
                    format!("`{p}` must be a path without query (a logout matches the path alone)"),
                ));
            }
            p => p,
        };
        within_cookie_path(&session.cookie_path, &redirect_uris, logout_path.as_deref())?;
        let post_logout_redirect_uri =
            optional_url("post_logout_redirect_uri", &raw.post_logout_redirect_uri)?;
        let logout_methods = logout_methods(raw.logout_methods.as_deref())?;
        let logout_query_arg = logout_query_arg(raw.logout_query_arg.as_deref())?;
        let logout_uri_suffix = logout_uri_suffix(raw.logout_uri_suffix.as_deref())?;
        logout_apart_from_callbacks(
            &redirect_uris,
            &logout_methods,
            (logout_path.as_deref(), logout_uri_suffix.as_deref()),
            logout_query_arg.as_deref(),
        )?;
        if raw.logout_post_arg.is_some() {
            return Err(ConfigError::new(
                "logout_post_arg",
                "is not supported: Envoy's wasm host cannot hold a request's headers \
                 while its body is read (a paused request pauses its body too), so a \
                 form field cannot decide a logout before the request goes upstream; \
                 log out with logout_path, logout_uri_suffix or logout_query_arg",
            ));
        }
        let logout_revoke = raw.logout_revoke.unwrap_or(false);
        let revocation_endpoint = optional_url("revocation_endpoint", &raw.revocation_endpoint)?;
        if revocation_endpoint.is_some() && !logout_revoke {
            notes.push(
                "revocation_endpoint is used only with logout_revoke: true (logout revokes nothing now)"
                    .to_string(),
            );
        }
        let end_session_endpoint = optional_url("end_session_endpoint", &raw.end_session_endpoint)?;

        let bypass_paths = raw.bypass_paths.clone().unwrap_or_default();
        for p in &bypass_paths {
            if !p.starts_with('/') || p.contains(['?', '#']) {
                return Err(ConfigError::new(
                    "bypass_paths",
                    format!("`{p}` must be a path starting with `/`, without query"),
                ));
            }
            // As a prefix `/` (or `/*`) is every path (a template's
            // `{{base}}/` with an empty base renders it): authentication off
            // everywhere.
            if p.trim_end_matches(['/', '*']).is_empty() {
                return Err(ConfigError::new(
                    "bypass_paths",
                    format!(
                        "`{p}` would let every path pass unauthenticated: `/$` is the root alone; \
                         to leave a whole route open, disable the filter on it in Envoy"
                    ),
                ));
            }
        }

        let introspection_endpoint =
            optional_url("introspection_endpoint", &raw.introspection_endpoint)?;
        let introspection_hint = raw
            .introspection_hint
            .clone()
            .unwrap_or_else(|| "access_token".to_string());
        if introspection_hint.is_empty() || !introspection_hint.bytes().all(is_token_char) {
            return Err(ConfigError::new(
                "introspection_hint",
                "must be a token type such as access_token",
            ));
        }
        let introspection_cache_ttl = match raw.introspection_cache_ttl.unwrap_or(300) {
            t @ 0..=86_400 => t,
            t => {
                return Err(ConfigError::new(
                    "introspection_cache_ttl",
                    format!("{t} is out of range (0 to 86400 seconds)"),
                ));
            }
        };
        let token_cache_size = token_cache_size(raw.token_cache_size)?;
        let upstream_access_token_header = token_header(
            raw.upstream_access_token_header
                .as_deref()
                .unwrap_or("authorization:bearer"),
        )?;
        let upstream_headers = claim_headers(
            raw.upstream_headers_claims.clone(),
            raw.upstream_headers_names.clone(),
            ("upstream_headers_claims", "upstream_headers_names"),
        )?;

        let audience = match raw.audience.clone().map(OneOrMany::into_vec) {
            Some(a) if a.is_empty() || a.iter().any(|v| v.is_empty() || v.contains(' ')) => {
                return Err(ConfigError::new(
                    "audience",
                    "must be one or more non-empty values without spaces",
                ));
            }
            a => a.map(|a| a.join(" ")),
        };
        let authorization_args = ExtraArgs::parse(
            "authorization_query_args",
            raw.authorization_query_args_names.as_deref(),
            raw.authorization_query_args_values.as_deref(),
            raw.authorization_query_args_client.as_deref(),
            audience.is_some(),
        )?;
        let token_args = ExtraArgs::parse(
            "token_post_args",
            raw.token_post_args_names.as_deref(),
            raw.token_post_args_values.as_deref(),
            raw.token_post_args_client.as_deref(),
            audience.is_some(),
        )?;
        let client_credentials_args = audience
            .iter()
            .map(|audience| ("audience".to_string(), audience.clone()))
            .chain(token_args.fixed.iter().cloned())
            .collect();
        let domains = raw.domains.clone().unwrap_or_default();
        if domains.iter().any(String::is_empty) {
            return Err(ConfigError::new("domains", "entries must not be empty"));
        }

        let client_auth = crate::client_auth::ClientAuth::parse(&crate::client_auth::Raw {
            client_auth: &raw
                .client_auth
                .clone()
                .map(OneOrMany::into_vec)
                .unwrap_or_default(),
            client_jwk: raw.client_jwk.as_ref(),
            client_alg: &raw
                .client_alg
                .clone()
                .map(OneOrMany::into_vec)
                .unwrap_or_default(),
            token: raw.token_endpoint_auth_method.as_deref(),
            introspection: raw.introspection_endpoint_auth_method.as_deref(),
            revocation: raw.revocation_endpoint_auth_method.as_deref(),
            assertion_audience: raw.client_assertion_audience.as_deref(),
            has_secret: raw.client_secret.is_some(),
        })?;

        let anonymous = raw.anonymous.clone();
        if anonymous
            .as_deref()
            .is_some_and(|a| a.is_empty() || a.contains(['\r', '\n', '\0']))
        {
            return Err(ConfigError::new(
                "anonymous",
                "must be a non-empty consumer name or id (sent as x-consumer-id)",
            ));
        }
        let redirect = |field: &str, v: &Option<OneOrMany>| {
            optional_url(
                field,
                &v.as_ref().and_then(|v| v.first()).map(str::to_string),
            )
        };
        let unauthorized_redirect_uri =
            redirect("unauthorized_redirect_uri", &raw.unauthorized_redirect_uri)?;
        let forbidden_redirect_uri =
            redirect("forbidden_redirect_uri", &raw.forbidden_redirect_uri)?;

        let one =
            |field: &str, v: &Option<String>| v.as_deref().map(|n| carrier(field, n)).transpose();
        let mut upstream_headers = upstream_headers;
        for h in raw.upstream_headers.clone().unwrap_or_default() {
            let header = carrier("upstream_headers", &h.header)?;
            let claim = ClaimPath::new(h.path).ok_or_else(|| {
                ConfigError::new("upstream_headers", "each `path` must be non-empty segments")
            })?;
            upstream_headers.push(ClaimHeader { claim, header });
        }
        let upstream_extra = Forwarded {
            access_token: None,
            id_token: one("upstream_id_token_header", &raw.upstream_id_token_header)?,
            user_info: one("upstream_user_info_header", &raw.upstream_user_info_header)?,
            introspection: one(
                "upstream_introspection_header",
                &raw.upstream_introspection_header,
            )?,
            refresh_token: one(
                "upstream_refresh_token_header",
                &raw.upstream_refresh_token_header,
            )?,
            session_id: one(
                "upstream_session_id_header",
                &raw.upstream_session_id_header,
            )?,
            claims: Vec::new(),
        };
        distinct_upstream_names(
            &upstream_access_token_header,
            &upstream_headers,
            raw.upstream_headers_names.as_ref().map_or(0, Vec::len),
            &upstream_extra,
        )?;
        let downstream = Forwarded {
            access_token: one(
                "downstream_access_token_header",
                &raw.downstream_access_token_header,
            )?,
            id_token: one(
                "downstream_id_token_header",
                &raw.downstream_id_token_header,
            )?,
            user_info: one(
                "downstream_user_info_header",
                &raw.downstream_user_info_header,
            )?,
            introspection: one(
                "downstream_introspection_header",
                &raw.downstream_introspection_header,
            )?,
            refresh_token: one(
                "downstream_refresh_token_header",
                &raw.downstream_refresh_token_header,
            )?,
            session_id: one(
                "downstream_session_id_header",
                &raw.downstream_session_id_header,
            )?,
            claims: claim_headers(
                raw.downstream_headers_claims.clone(),
                raw.downstream_headers_names.clone(),
                ("downstream_headers_claims", "downstream_headers_names"),
            )?,
        };

        let (bearer_header, bearer_from_query, bearer_cookie_listed) = sources(
            "bearer_token_param_type",
            raw.bearer_token_param_type.as_deref(),
            true,
        )?;
        let bearer_cookie = match (bearer_cookie_listed, &raw.bearer_token_cookie_name) {
            (true, Some(name)) if !name.is_empty() && name.bytes().all(is_token_char) => {
                Some(name.clone())
            }
            (true, _) => {
                return Err(ConfigError::new(
                    "bearer_token_cookie_name",
                    "must name the cookie when bearer_token_param_type lists `cookie`",
                ));
            }
            (false, _) => None,
        };
        if let Some(name) = &bearer_cookie
            && crate::session::cookie::is_ours(&session.cookie_name, name)
        {
            // An idle session's sealed cookie would be read as a bearer
            // token: a 401 instead of a login, until the cookie expires.
            return Err(ConfigError::new(
                "bearer_token_cookie_name",
                format!("`{name}` is one of the session's cookies (session_cookie_name)"),
            ));
        }
        let (cc_header, client_credentials_from_query, _) = sources(
            "client_credentials_param_type",
            raw.client_credentials_param_type.as_deref(),
            false,
        )?;

        let config = Config {
            rules: Vec::new(),
            rules_read_route_name: false,
            sessions_on: false,
            rule_index: None,
            rules_match_paths: false,
            audience_overridden: false,
            bearer_from_header: bearer_header,
            client_credentials_from_header: cc_header,
            bearer_from_query,
            bearer_cookie,
            client_credentials_from_query,
            upstream_extra,
            downstream,
            anonymous,
            unauthorized_redirect_uri,
            forbidden_redirect_uri,
            client_auth,
            audience,
            authorization_args,
            token_args,
            client_credentials_args,
            domains,
            issuer,
            other_issuers,
            client_ids,
            client_secrets,
            redirect_uris,
            scope: scopes.join(" "),
            scopes,
            scopes_explicit,
            scopes_required,
            scopes_claim,
            audience_required,
            audience_claim,
            groups_required,
            groups_claim,
            roles_required,
            roles_claim,
            claims_forbidden,
            auth_methods,
            idp_cluster: raw.idp_cluster,
            idp_clusters,
            idp_timeout_ms,
            idp_call_budget,
            leeway,
            session,
            logout_path,
            post_logout_redirect_uri,
            logout_methods,
            logout_query_arg,
            logout_uri_suffix,
            logout_revoke,
            logout_revoke_access_token: raw.logout_revoke_access_token.unwrap_or(true),
            logout_revoke_refresh_token: raw.logout_revoke_refresh_token.unwrap_or(true),
            revocation_endpoint,
            end_session_endpoint,
            bypass_paths,
            introspection_endpoint,
            introspection_hint,
            introspection_cache_ttl,
            token_cache_size,
            search_user_info: raw.search_user_info.unwrap_or(false),
            run_on_preflight: raw.run_on_preflight.unwrap_or(true),
            upstream_access_token_header,
            upstream_headers,
            // Set by `share_upstream_names`, once the rules are read.
            upstream_names: Vec::new(),
            lookalikes_possible: false,
            lookalikes_of_underscores: false,
            consumers_in_use: false,
            hide_credentials: raw.hide_credentials.unwrap_or(true),
            identity_filter_state: raw.identity_filter_state.unwrap_or(false),
        };
        Ok(Loaded { config, notes })
    }
}

/// serde's errors do not say which key a wrong type was under; find it by
/// reading each key alone (only on the error path). Written by hand instead
/// of using serde_path_to_error, which cost ~25 KB of wasm.
fn name_the_field(
    map: &serde_json::Map<String, serde_json::Value>,
    whole: &serde_json::Error,
) -> ConfigError {
    let msg = whole.to_string();
    if let Some(name) = unknown_field(&msg) {
        // Kong's keys with no counterpart here say why.
        let why = if name.starts_with("session_remember") {
            "is not supported: the session lives in its cookie, whose lifetime \
             session_absolute_timeout sets (persistent across browser restarts); a \
             separate remember-me cookie would outlive a logout here"
        } else {
            "unknown key"
        };
        return ConfigError::new(&name, why);
    }
    for (key, v) in map {
        let mut alone = serde_json::Map::new();
        alone.insert(key.clone(), v.clone());
        if let Err(e) = raw_config(&serde_json::Value::Object(alone)) {
            return ConfigError::new(key, strip_position(&e.to_string()));
        }
    }
    ConfigError::new("", strip_position(&msg))
}

/// Reads `RawConfig` as a map only (`json::object`): serde's derive would
/// also read it from a JSON array, by position, a second reader of ~100
/// fields (17.8 KB of wasm) that a configuration never needs (it must be
/// an object).
fn raw_config(value: &serde_json::Value) -> Result<RawConfig, serde_json::Error> {
    crate::json::object(value)
}

/// serde's message for an unknown key is "unknown field `x`, expected …".
fn unknown_field(msg: &str) -> Option<String> {
    let rest = msg.strip_prefix("unknown field `")?;
    Some(rest.split('`').next()?.to_string())
}

/// The longest `session_cookie_name`: a session chunk (`session::cookie::
/// CHUNK`, 3,800 bytes of value) and its name, `_N` and `=` stay within
/// the 4,096 bytes browsers keep of a cookie, and so does a login cookie
/// (`<name>_login_<12 hex>`, its value at most ~3.8 KB).
const MAX_COOKIE_NAME: usize = 128;

/// The callback (`redirect_uri`) and `logout_path` must be paths the
/// session's cookies are sent to (RFC 6265 §5.1.4, path-match): outside
/// `session_cookie_path`, the login cookie never reaches the callback
/// (every login a 400) and logout can neither see nor clear the session.
fn within_cookie_path(
    cookie_path: &str,
    redirect_uris: &[Url],
    logout_path: Option<&str>,
) -> Result<(), ConfigError> {
    let callbacks = redirect_uris.iter().map(|u| {
        (
            "redirect_uri",
            u.path_and_query.split('?').next().unwrap_or("/"),
        )
    });
    for (field, path) in callbacks.chain(logout_path.map(|p| ("logout_path", p))) {
        if !crate::session::cookie::path_matches(cookie_path, path) {
            return Err(ConfigError::new(
                field,
                format!(
                    "`{path}` is outside session_cookie_path `{cookie_path}`: the browser \
                     would not send the session's cookies there"
                ),
            ));
        }
    }
    Ok(())
}

/// Drops serde_json's " at line 1 column 7": the field is named already.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

fn parse_issuer(field: &str, raw: Option<&str>) -> Result<Issuer, ConfigError> {
    let s = raw.map(str::trim).unwrap_or_default();
    if s.is_empty() {
        return Err(ConfigError::new(field, "is required and must not be empty"));
    }
    // Kong accepts the issuer or its discovery URL; the seed uses the latter.
    let stripped = s.strip_suffix(DISCOVERY_SUFFIX);
    let slash_optional = stripped.is_some();
    let id = stripped.unwrap_or(s).to_string();
    let url = Url::parse(&id).map_err(|e| ConfigError::new(field, e.to_string()))?;
    if url.path_and_query.contains('?') {
        return Err(ConfigError::new(field, "must not have a query"));
    }
    let base = id.trim_end_matches('/');
    let discovery_url = Url::parse(&format!("{base}{DISCOVERY_SUFFIX}"))
        .map_err(|e| ConfigError::new(field, e.to_string()))?;
    Ok(Issuer {
        id,
        discovery_url,
        slash_optional,
    })
}

fn non_empty_list(field: &str, v: Option<OneOrMany>) -> Result<Vec<String>, ConfigError> {
    let given = v.is_some();
    let v = v.map(OneOrMany::into_vec).unwrap_or_default();
    if v.iter().any(|s| s.trim().is_empty()) {
        return Err(ConfigError::new(field, "entries must not be empty"));
    }
    // Given as `[]`, it would count as given (a method that needs it
    // loads) and send nothing.
    if given && v.is_empty() {
        return Err(ConfigError::new(field, "must not be an empty list"));
    }
    Ok(v)
}

fn check_token_list(field: &str, v: &str) -> Result<(), ConfigError> {
    if v.trim().is_empty() || v.chars().any(|c| c.is_control() || c == '"') {
        return Err(ConfigError::new(
            field,
            format!("`{v}` is not a valid value"),
        ));
    }
    Ok(())
}

fn claim_path(
    field: &str,
    v: Option<Vec<String>>,
    default: &str,
) -> Result<ClaimPath, ConfigError> {
    let v = v.unwrap_or_else(|| vec![default.to_string()]);
    ClaimPath::new(v)
        .ok_or_else(|| ConfigError::new(field, "must be a non-empty list of claim names"))
}

fn check_cluster(field: &str, c: &str) -> Result<(), ConfigError> {
    if c.trim().is_empty() {
        return Err(ConfigError::new(field, "cluster name must not be empty"));
    }
    if has_control(c) {
        return Err(ConfigError::new(
            field,
            "cluster name must not hold control characters",
        ));
    }
    Ok(())
}

fn optional_url(field: &str, v: &Option<String>) -> Result<Option<Url>, ConfigError> {
    v.as_deref()
        .map(|s| Url::parse(s).map_err(|e| ConfigError::new(field, e.to_string())))
        .transpose()
}

/// `logout_methods`: Kong's `POST`, `GET`, `DELETE`; by default `POST` and
/// `DELETE`, so that a link or an image from another site (a GET) cannot
/// log anyone out.
/// A logout trigger must not take a login callback for a logout: every
/// login would end there (a loop). A callback is a GET carrying `state`
/// and `code` (or `error`, `iss`) at a configured `redirect_uri`.
fn logout_apart_from_callbacks(
    redirect_uris: &[Url],
    methods: &[String],
    (path, suffix): (Option<&str>, Option<&str>),
    query_arg: Option<&str>,
) -> Result<(), ConfigError> {
    if let Some(arg) = query_arg.filter(|a| ["state", "code", "error", "iss"].contains(a)) {
        return Err(ConfigError::new(
            "logout_query_arg",
            format!("`{arg}` is a login callback's parameter: every login would log out"),
        ));
    }
    if !methods.iter().any(|m| m == "GET") {
        return Ok(());
    }
    for callback in redirect_uris.iter().map(Url::path) {
        if path == Some(callback) {
            return Err(ConfigError::new(
                "logout_path",
                format!("`{callback}` is the login callback (redirect_uri), and GET logs out"),
            ));
        }
        if let Some(s) = suffix.filter(|s| callback.ends_with(s)) {
            return Err(ConfigError::new(
                "logout_uri_suffix",
                format!("`{s}` ends the login callback `{callback}`, and GET logs out"),
            ));
        }
    }
    Ok(())
}

/// Each header the filter sets upstream is set by one key: two claims
/// under one name would give the upstream whichever the token happens to
/// carry, and a claim named like the token header would replace it.
fn distinct_upstream_names(
    token: &TokenHeader,
    claims: &[ClaimHeader],
    paired: usize,
    extra: &Forwarded,
) -> Result<(), ConfigError> {
    let claim_fields = claims.iter().enumerate().map(|(i, h)| {
        let field = if i < paired {
            "upstream_headers_names"
        } else {
            "upstream_headers"
        };
        (field, h.header.as_str())
    });
    let extra_fields = [
        ("upstream_id_token_header", &extra.id_token),
        ("upstream_user_info_header", &extra.user_info),
        ("upstream_introspection_header", &extra.introspection),
        ("upstream_refresh_token_header", &extra.refresh_token),
        ("upstream_session_id_header", &extra.session_id),
    ]
    .into_iter()
    .filter_map(|(field, name)| Some((field, name.as_deref()?)));
    let all: Vec<(&str, &str)> =
        std::iter::once(("upstream_access_token_header", token.name.as_str()))
            .chain(claim_fields)
            .chain(extra_fields)
            .collect();
    for (i, (field, name)) in all.iter().enumerate() {
        if all.iter().take(i).any(|(_, earlier)| earlier == name) {
            return Err(ConfigError::new(
                field,
                format!("`{name}` is set upstream by another key already"),
            ));
        }
    }
    Ok(())
}

fn logout_methods(v: Option<&[String]>) -> Result<Vec<String>, ConfigError> {
    const FIELD: &str = "logout_methods";
    let Some(v) = v else {
        return Ok(vec!["POST".to_string(), "DELETE".to_string()]);
    };
    if v.is_empty() {
        return Err(ConfigError::new(
            FIELD,
            "must name at least one method (leave logout_path, logout_uri_suffix and \
             logout_query_arg out to have no logout)",
        ));
    }
    for m in v {
        if !matches!(m.as_str(), "POST" | "GET" | "DELETE") {
            return Err(ConfigError::new(
                FIELD,
                format!("`{m}` is not one of POST, GET, DELETE"),
            ));
        }
    }
    Ok(v.to_vec())
}

/// `logout_query_arg`: an argument name, as it appears decoded in a query.
fn logout_query_arg(v: Option<&str>) -> Result<Option<String>, ConfigError> {
    match v {
        Some(a) if a.is_empty() || a.contains(['&', '=', '#']) || has_control(a) => {
            Err(ConfigError::new(
                "logout_query_arg",
                format!("`{a}` is not a query argument name"),
            ))
        }
        a => Ok(a.map(str::to_string)),
    }
}

/// `logout_uri_suffix`: the end of a path (the query is not part of it).
fn logout_uri_suffix(v: Option<&str>) -> Result<Option<String>, ConfigError> {
    const FIELD: &str = "logout_uri_suffix";
    match v {
        // Paths come percent-encoded: visible ASCII only.
        Some(s)
            if s.is_empty()
                || !s
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && b != b'?' && b != b'#') =>
        {
            Err(ConfigError::new(
                FIELD,
                format!("`{s}` must be the end of a path (visible ASCII, without query)"),
            ))
        }
        Some("/") => Err(ConfigError::new(
            FIELD,
            "`/` would make every path ending in `/` a logout",
        )),
        s => Ok(s.map(str::to_string)),
    }
}

fn auth_methods(raw: &RawConfig, notes: &mut Vec<String>) -> Result<AuthMethods, ConfigError> {
    let mut methods = AuthMethods::default();
    match &raw.auth_methods {
        Some(names) => {
            if names.is_empty() {
                return Err(ConfigError::new(
                    "auth_methods",
                    "must name at least one method",
                ));
            }
            for name in names {
                let m = AuthMethod::from_name(name).ok_or_else(|| {
                    ConfigError::new("auth_methods", format!("unknown method `{name}`"))
                })?;
                let missing = m.missing_keys(raw);
                if !missing.is_empty() {
                    return Err(ConfigError::new(
                        "auth_methods",
                        format!("`{name}` needs {}", missing.join(", ")),
                    ));
                }
                methods.insert(m);
            }
        }
        None => {
            let mut off = Vec::new();
            // Userinfo validates tokens by calling the IdP for each new
            // one: only when asked for by name.
            for m in AuthMethod::ALL
                .into_iter()
                .filter(|m| *m != AuthMethod::Userinfo)
            {
                let missing = m.missing_keys(raw);
                if missing.is_empty() {
                    methods.insert(m);
                } else {
                    off.push(format!("{} (needs {})", m.name(), missing.join(", ")));
                }
            }
            if !off.is_empty() {
                notes.push(format!(
                    "auth methods off for lack of keys: {}",
                    off.join("; ")
                ));
            }
        }
    }
    Ok(methods)
}

fn session(raw: &RawConfig, notes: &mut Vec<String>) -> Result<Session, ConfigError> {
    let secrets = non_empty_list("session_secret", raw.session_secret.clone())?;
    if secrets.iter().any(|s| s.len() < 32) {
        return Err(ConfigError::new(
            "session_secret",
            "each secret must be at least 32 bytes",
        ));
    }
    if secrets.is_empty() {
        notes.push(
            "no session_secret: sessions use a key made at start and do not survive a restart or span replicas"
                .to_string(),
        );
    }
    let same_site = match raw.session_cookie_same_site.as_deref().unwrap_or("Lax") {
        s if s.eq_ignore_ascii_case("lax") => SameSite::Lax,
        s if s.eq_ignore_ascii_case("strict") => SameSite::Strict,
        s if s.eq_ignore_ascii_case("none") => SameSite::None,
        s => {
            return Err(ConfigError::new(
                "session_cookie_same_site",
                format!("`{s}` is not one of Strict, Lax, None"),
            ));
        }
    };
    let cookie_name = raw
        .session_cookie_name
        .clone()
        .unwrap_or_else(|| "session".to_string());
    if cookie_name.is_empty() || !cookie_name.bytes().all(is_token_char) {
        return Err(ConfigError::new(
            "session_cookie_name",
            "must be a cookie name token",
        ));
    }
    if cookie_name.len() > MAX_COOKIE_NAME {
        return Err(ConfigError::new(
            "session_cookie_name",
            format!(
                "is {} bytes, over {MAX_COOKIE_NAME}: with a full chunk of the session the \
                 cookie would pass the 4 KB a browser keeps, and be dropped",
                cookie_name.len()
            ),
        ));
    }
    let cookie_path = raw
        .session_cookie_path
        .clone()
        .unwrap_or_else(|| "/".to_string());
    if !cookie_path.starts_with('/')
        || cookie_path.contains([';', ' '])
        || has_control(&cookie_path)
    {
        return Err(ConfigError::new(
            "session_cookie_path",
            "must be a path starting with `/`",
        ));
    }
    if let Some(d) = &raw.session_cookie_domain
        && (d.is_empty() || d.contains([';', ' ', '/']) || has_control(d))
    {
        return Err(ConfigError::new(
            "session_cookie_domain",
            "must be a domain name",
        ));
    }
    let cookie_secure = cookie_prefix_rules(&cookie_name, raw, &cookie_path)?;
    // Kong: 0 disables a limit.
    let limit = |v: Option<u64>, default: u64| match v.unwrap_or(default) {
        0 => u64::MAX,
        v => v,
    };
    let idling_timeout = limit(raw.session_idling_timeout, 900);
    let rolling_timeout = limit(raw.session_rolling_timeout, 3600);
    let absolute_timeout = limit(raw.session_absolute_timeout, 86400);
    Ok(Session {
        secrets: secrets.into_iter().map(String::into_bytes).collect(),
        cookie_name,
        cookie_secure,
        same_site,
        cookie_domain: raw.session_cookie_domain.clone(),
        cookie_path,
        idling_timeout,
        rolling_timeout,
        absolute_timeout,
    })
}

/// RFC 9110 token characters, for header and cookie names.
/// The cookie name prefixes browsers enforce (RFC 6265bis §4.1.3): a
/// `__Secure-` cookie is kept only with `Secure`, a `__Host-` one only with
/// `Secure`, `Path=/` and no `Domain`, so that no sibling subdomain can set
/// one (a session cookie of its own planted before the user's). Their
/// settings are refused unless they meet that; `Secure` is then always set
/// (`session_cookie_secure`: true).
fn cookie_prefix_rules(
    name: &str,
    raw: &RawConfig,
    path: &str,
) -> Result<Option<bool>, ConfigError> {
    let prefixed = |p: &str| {
        name.get(..p.len())
            .is_some_and(|n| n.eq_ignore_ascii_case(p))
    };
    let host = prefixed("__Host-");
    if !(host || prefixed("__Secure-")) {
        return Ok(raw.session_cookie_secure);
    }
    if raw.session_cookie_secure == Some(false) {
        return Err(ConfigError::new(
            "session_cookie_secure",
            format!("must not be false: browsers keep a `{name}` cookie only with Secure"),
        ));
    }
    if host && path != "/" {
        return Err(ConfigError::new(
            "session_cookie_path",
            format!("must be `/`: browsers keep a `{name}` cookie only with Path=/"),
        ));
    }
    if host && raw.session_cookie_domain.is_some() {
        return Err(ConfigError::new(
            "session_cookie_domain",
            format!("must be left out: browsers keep a `{name}` cookie only without Domain"),
        ));
    }
    Ok(Some(true))
}

pub fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn header_name(field: &str, name: &str) -> Result<String, ConfigError> {
    if name.is_empty() || !name.bytes().all(is_token_char) {
        return Err(ConfigError::new(
            field,
            format!("`{name}` is not a valid header name"),
        ));
    }
    Ok(name.to_ascii_lowercase())
}

/// `token_cache_size` when not set: what each worker kept before the key.
pub const DEFAULT_TOKEN_CACHE_SIZE: usize = 4096;
/// Above this a value is a typo, not a working set: an entry holds its
/// whole token and its claims, about 1.7 KB of Envoy's memory for an
/// 800-byte access token (`bench/working-set.sh`; `tests/cache_memory.rs`
/// natively), so a million is already ~1.7 GB per worker.
const MAX_TOKEN_CACHE_SIZE: u64 = 1_000_000;

/// `token_cache_size`: how many verified tokens each worker keeps.
fn token_cache_size(raw: Option<u64>) -> Result<usize, ConfigError> {
    let Some(n) = raw else {
        return Ok(DEFAULT_TOKEN_CACHE_SIZE);
    };
    match usize::try_from(n) {
        Ok(size) if (1..=MAX_TOKEN_CACHE_SIZE).contains(&n) => Ok(size),
        _ => Err(ConfigError::new(
            "token_cache_size",
            format!("{n} is out of range (1 to {MAX_TOKEN_CACHE_SIZE} tokens)"),
        )),
    }
}

fn token_header(v: &str) -> Result<TokenHeader, ConfigError> {
    const FIELD: &str = "upstream_access_token_header";
    let (name, scheme) = match v.split_once(':') {
        Some((n, s)) => (n, Some(s)),
        None => (v, None),
    };
    // `authorization` is the default; any other name may not be one that
    // Envoy or the filter gives another meaning (`cookie`, `host`).
    let name = match header_name(FIELD, name)? {
        n if n == "authorization" => n,
        _ => carrier(FIELD, name)?,
    };
    let scheme = match scheme {
        None => None,
        Some(s) if s.eq_ignore_ascii_case("bearer") => Some("Bearer".to_string()),
        Some(s) if !s.is_empty() && s.bytes().all(is_token_char) => Some(s.to_string()),
        Some(s) => {
            return Err(ConfigError::new(
                FIELD,
                format!("`{s}` is not a valid scheme"),
            ));
        }
    };
    Ok(TokenHeader { name, scheme })
}

/// Keys a rule may override: what is decided per request. The issuer,
/// client and session keys are the whole filter's.
pub const RULE_KEYS: [&str; 23] = [
    "auth_methods",
    // The scopes a route asks for (client credentials exchange, login): the
    // credentials cache is keyed by them, and a session keeps what it got.
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
    "domains",
    "upstream_access_token_header",
    "upstream_headers_claims",
    "upstream_headers_names",
    "upstream_headers",
    "anonymous",
    "unauthorized_redirect_uri",
    "forbidden_redirect_uri",
    "search_user_info",
    "hide_credentials",
    "bearer_token_param_type",
    "client_credentials_param_type",
];

/// Rule keys whose `null` (none) is stricter than any value: a rule may
/// switch the top level's off with it.
const NULL_IS_STRICTER: [&str; 3] = [
    "anonymous",
    "unauthorized_redirect_uri",
    "forbidden_redirect_uri",
];

/// A key set to `null`: read as unset by serde, which is often laxer than
/// the value meant (no audience, every auth method), as a template's
/// missing value renders; refused but where none is the stricter value.
fn null_refused(key: &str, v: &serde_json::Value) -> bool {
    v.is_null() && !NULL_IS_STRICTER.contains(&key)
}

/// Rule `i`: its match, and the top-level configuration with its
/// overrides, checked as any configuration is (errors name `rules[i].…`).
fn rule_config(
    top: &serde_json::Value,
    i: usize,
    rule: &serde_json::Value,
) -> Result<(crate::rules::Match, Box<Config>, bool), ConfigError> {
    let at = |field: &str| format!("rules[{i}].{field}");
    let serde_json::Value::Object(rule) = rule else {
        return Err(ConfigError::new(
            &format!("rules[{i}]"),
            "must be an object",
        ));
    };
    let mut merged = top.as_object().cloned().unwrap_or_default();
    merged.remove("rules");
    let mut matcher = crate::rules::Match::default();
    let mut bypass = false;
    for (key, v) in rule {
        match key.as_str() {
            "match" => matcher = rule_match(&at("match"), v)?,
            "bypass" => {
                bypass = v
                    .as_bool()
                    .ok_or_else(|| ConfigError::new(&at("bypass"), "must be a boolean"))?;
            }
            // `null` would unset the top level's value (its default, often
            // laxer: no audience, every auth method), as a template's
            // missing value renders: refused, not read as "inherit". Only
            // where none is the stricter value (no anonymous pass, no
            // redirect) does it switch the top level's off for the rule.
            k if RULE_KEYS.contains(&k) && null_refused(k, v) => {
                return Err(ConfigError::new(
                    &at(key),
                    "must not be null (leave the key out to keep the top level's value)",
                ));
            }
            k if RULE_KEYS.contains(&k) => {
                merged.insert(key.clone(), v.clone());
            }
            _ => {
                return Err(ConfigError::new(
                    &at(key),
                    "cannot be set per rule (the issuer, client and session keys are the whole filter's)",
                ));
            }
        }
    }
    if !rule.contains_key("match") {
        return Err(ConfigError::new(&at("match"), "is required"));
    }
    let bytes = serde_json::to_vec(&merged).unwrap_or_default();
    let mut config = Config::parse(&bytes)
        .map_err(|e| ConfigError::new(&at(&e.field), e.reason))?
        .config;
    config.audience_overridden =
        rule.contains_key("audience_required") || rule.contains_key("audience_claim");
    config.rule_index = Some(i);
    Ok((matcher, Box::new(config), bypass))
}

fn rule_match(field: &str, v: &serde_json::Value) -> Result<crate::rules::Match, ConfigError> {
    let serde_json::Value::Object(m) = v else {
        return Err(ConfigError::new(field, "must be an object"));
    };
    let list = |k: &str| -> Result<Vec<String>, ConfigError> {
        match m.get(k) {
            None => Ok(Vec::new()),
            // An absent condition matches every request: an empty list
            // (a templated list that came out empty) must not.
            Some(serde_json::Value::Array(items)) if items.is_empty() => Err(ConfigError::new(
                &format!("{field}.{k}"),
                "must not be empty (leave the condition out to match every request)",
            )),
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .map(|i| {
                    i.as_str()
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .ok_or_else(|| {
                            ConfigError::new(
                                &format!("{field}.{k}"),
                                "entries must be non-empty strings",
                            )
                        })
                })
                .collect(),
            Some(_) => Err(ConfigError::new(&format!("{field}.{k}"), "must be a list")),
        }
    };
    if let Some(k) = m
        .keys()
        .find(|k| !matches!(k.as_str(), "hosts" | "paths" | "methods" | "route_names"))
    {
        return Err(ConfigError::new(
            &format!("{field}.{k}"),
            "is not a condition (hosts, paths, methods, route_names)",
        ));
    }
    // `example.com.` is `example.com`, as a request's host is read.
    let hosts: Vec<(String, String)> = list("hosts")?
        .into_iter()
        .map(|h| {
            let read = crate::request::without_final_dot(&h).to_ascii_lowercase();
            (h, read)
        })
        .collect();
    // `*.example.com` or an exact name (an IPv6 literal in brackets):
    // Kong's other wildcard (`example.*`) or a port would silently never
    // match here.
    if let Some((h, _)) = hosts.iter().find(|(_, read)| {
        let name = read.strip_prefix("*.").unwrap_or(read);
        name.is_empty()
            || name.starts_with('.')
            || name.contains(['*', '/'])
            || (name.contains(':') && !name.starts_with('['))
    }) {
        return Err(ConfigError::new(
            &format!("{field}.hosts"),
            format!("`{h}` must be a host name, or `*.` and a domain (no port)"),
        ));
    }
    let paths = list("paths")?;
    if let Some(p) = paths
        .iter()
        .find(|p| !p.starts_with('/') || p.contains(['?', '#']))
    {
        return Err(ConfigError::new(
            &format!("{field}.paths"),
            format!("`{p}` must be a path starting with `/`, without query"),
        ));
    }
    let methods = list("methods")?;
    if let Some(m) = methods.iter().find(|m| !m.bytes().all(is_token_char)) {
        return Err(ConfigError::new(
            &format!("{field}.methods"),
            format!("`{m}` is not an HTTP method"),
        ));
    }
    Ok(crate::rules::Match {
        hosts: hosts.into_iter().map(|(_, read)| read).collect(),
        paths,
        methods: methods.iter().map(|m| m.to_ascii_uppercase()).collect(),
        route_names: list("route_names")?,
    })
}

/// `*_param_type`: (header, query, cookie) listed. `body` is refused: the
/// form cannot be read while the request's headers are held.
fn sources(
    field: &str,
    v: Option<&[String]>,
    cookie_allowed: bool,
) -> Result<(bool, bool, bool), ConfigError> {
    let Some(list) = v else {
        return Ok((true, false, false));
    };
    if list.is_empty() {
        return Err(ConfigError::new(field, "must list at least one place"));
    }
    let mut found = (false, false, false);
    for s in list {
        match s.as_str() {
            "header" => found.0 = true,
            "query" => found.1 = true,
            "cookie" if cookie_allowed => found.2 = true,
            "body" => {
                return Err(ConfigError::new(
                    field,
                    "`body` is not supported: Envoy's wasm host cannot hold a request's \
                     headers while its body is read (a paused request pauses its body too); \
                     send the credential in a header or, where listed, the query or a cookie",
                ));
            }
            other => {
                return Err(ConfigError::new(
                    field,
                    format!("`{other}` is not a place a credential comes from here"),
                ));
            }
        }
    }
    Ok(found)
}

/// A header name that may carry a token or a claim: never one Envoy or
/// the filter gives another meaning.
fn carrier(field: &str, name: &str) -> Result<String, ConfigError> {
    let header = header_name(field, name)?;
    if matches!(
        header.as_str(),
        "host" | "authorization" | "cookie" | "set-cookie" | "content-length" | "transfer-encoding"
    ) {
        return Err(ConfigError::new(
            field,
            format!("`{name}` may not carry a token or claim"),
        ));
    }
    Ok(header)
}

/// `<x>_headers_claims` and `<x>_headers_names`, pair by pair.
fn claim_headers(
    claims: Option<Vec<String>>,
    names: Option<Vec<String>>,
    (claims_field, names_field): (&str, &str),
) -> Result<Vec<ClaimHeader>, ConfigError> {
    let (claims, names) = (claims.unwrap_or_default(), names.unwrap_or_default());
    if claims.len() != names.len() {
        return Err(ConfigError::new(
            names_field,
            format!(
                "has {} entries but {claims_field} has {}",
                names.len(),
                claims.len()
            ),
        ));
    }
    claims
        .into_iter()
        .zip(names)
        .map(|(claim, name)| {
            let header = carrier(names_field, &name)?;
            // A top-level claim name as is: Auth0-style claim names contain dots.
            let claim = ClaimPath::new(vec![claim])
                .ok_or_else(|| ConfigError::new(claims_field, "entries must not be empty"))?;
            Ok(ClaimHeader { claim, header })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn parse(v: Value) -> Result<Loaded, ConfigError> {
        Config::parse(&serde_json::to_vec(&v).unwrap())
    }

    fn refused(v: Value) -> ConfigError {
        parse(v).expect_err("config must be refused")
    }

    fn base(extra: Value) -> Value {
        let mut c = json!({"issuer": "https://idp.example.com", "idp_cluster": "idp"});
        c.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        c
    }

    #[test]
    fn seeds_kong_examples_load_after_rename_to_json() {
        let issuer = "https://cognito-idp.us-west-1.amazonaws.com/us-west-1_AbC/.well-known/openid-configuration";
        let cc = parse(
            json!({"issuer": issuer, "scopes": ["kongresource/scope1"], "idp_cluster": "cognito"}),
        )
        .unwrap();
        assert_eq!(
            cc.config.issuer.id,
            "https://cognito-idp.us-west-1.amazonaws.com/us-west-1_AbC"
        );
        assert_eq!(
            cc.config.issuer.realm(),
            "cognito-idp.us-west-1.amazonaws.com"
        );
        assert_eq!(
            cc.config.issuer.discovery_url.path_and_query,
            "/us-west-1_AbC/.well-known/openid-configuration"
        );
        assert!(cc.config.scopes_explicit);
        let code = parse(json!({
            "client_id": ["abc123"], "client_secret": ["s3cret"], "issuer": issuer,
            "redirect_uri": ["https://203.0.113.7/oidcroute/get"], "idp_cluster": "cognito"
        }))
        .unwrap();
        assert_eq!(code.config.client_ids, vec!["abc123"]);
        assert!(
            code.config
                .auth_methods
                .contains(AuthMethod::AuthorizationCode)
        );
        assert_eq!(code.config.scopes, vec!["openid"]);
        assert!(!code.config.scopes_explicit);
    }

    #[test]
    fn defaults_follow_the_design_table() {
        let loaded = parse(base(json!({}))).unwrap();
        let c = loaded.config;
        assert_eq!((c.idp_timeout_ms, c.leeway), (5000, 30));
        assert_eq!(c.token_cache_size, 4096);
        assert!(c.run_on_preflight && c.hide_credentials);
        assert_eq!(c.upstream_access_token_header.value("t"), "Bearer t");
        assert_eq!(c.session.cookie_name, "session");
        assert_eq!(
            (c.session.rolling_timeout, c.session.absolute_timeout),
            (3600, 86400)
        );
        assert_eq!(c.session.same_site, SameSite::Lax);
        // Default auth_methods: those missing keys are off, with one info line.
        assert!(c.auth_methods.contains(AuthMethod::Bearer));
        assert!(!c.auth_methods.contains(AuthMethod::AuthorizationCode));
        assert_eq!(
            loaded
                .notes
                .iter()
                .filter(|n| n.starts_with("auth methods off"))
                .count(),
            1
        );
        assert!(loaded.notes[0].contains("authorization_code (needs client_id)"));
    }

    #[test]
    fn bearer_tokens_of_any_audience_are_noted() {
        let noted = |v, text: &str| parse(v).unwrap().notes.iter().any(|n| n.contains(text));
        let any = |v| noted(v, "whatever their audience");
        assert!(any(base(json!({}))));
        assert!(!any(base(json!({"audience_required": ["api"]}))));
        let id_tokens = |v| noted(v, "audience of this client's ID tokens");
        assert!(id_tokens(base(
            json!({"client_id": "web", "audience_required": ["web"]})
        )));
        assert!(!id_tokens(base(
            json!({"client_id": "web", "audience_required": ["web"],
            "scopes_required": ["read"]})
        )));
        assert!(!id_tokens(base(
            json!({"client_id": "web", "audience_required": ["api"]})
        )));
        assert!(!any(base(json!({"auth_methods": ["introspection"],
                                 "introspection_endpoint": "https://idp.example.com/i",
                                 "client_id": "c", "client_secret": "s"}))));
        // Userinfo cannot tell which client a token was issued to.
        let any_client = |v| noted(v, "whichever client it was issued to");
        assert!(any_client(base(json!({"auth_methods": ["userinfo"]}))));
        assert!(!any_client(base(json!({}))));
        // With introspection listed, opaque tokens go there instead.
        assert!(!any_client(base(
            json!({"auth_methods": ["userinfo", "introspection"],
                                        "introspection_endpoint": "https://idp.example.com/i",
                                        "client_id": "c", "client_secret": "s"})
        )));
    }

    #[test]
    fn googles_issuer_is_also_its_bare_host() {
        let google = Issuer::parse("https://accounts.google.com").unwrap();
        assert!(google.is("https://accounts.google.com"));
        assert!(google.is("accounts.google.com"));
        assert!(!google.is("accounts.google.com/"));
        assert!(!google.is("http://accounts.google.com"));
        let other = Issuer::parse("https://idp.example.com").unwrap();
        assert!(!other.is("idp.example.com"));
        assert!(!other.is("accounts.google.com"));
    }

    #[test]
    fn token_cache_size_takes_its_whole_range() {
        for n in [1, 131_072, 1_000_000] {
            let c = parse(base(json!({"token_cache_size": n}))).unwrap().config;
            assert_eq!(c.token_cache_size, n);
        }
    }

    #[test]
    fn client_settings_accept_a_string_or_a_list() {
        let c = parse(base(json!({"client_id": "one", "client_secret": ["a", "b"], "redirect_uri": "https://gw/cb"}))).unwrap();
        assert_eq!(c.config.client_ids, vec!["one"]);
        assert_eq!(c.config.client_secrets, vec!["a", "b"]);
        assert_eq!(c.config.redirect_uris[0].authority, "gw");
    }

    #[test]
    fn clusters_are_picked_by_authority() {
        let c = parse(json!({
            "issuer": "https://cognito-idp.eu-west-1.amazonaws.com/pool",
            "idp_clusters": {"cognito-idp.eu-west-1.amazonaws.com": "issuer", "Demo.auth.eu-west-1.amazoncognito.com": "hosted"}
        }))
        .unwrap()
        .config;
        assert_eq!(
            c.cluster_for("cognito-idp.eu-west-1.amazonaws.com"),
            Some("issuer")
        );
        assert_eq!(
            c.cluster_for("demo.auth.eu-west-1.amazoncognito.com"),
            Some("hosted")
        );
        assert_eq!(c.cluster_for("elsewhere"), None);
    }

    #[test]
    fn each_refusal_names_its_field() {
        let cases = [
            (base(json!({"issuer_url": "x"})), "issuer_url"),
            (base(json!({"issuer": ""})), "issuer"),
            (base(json!({"issuer": "   "})), "issuer"),
            (base(json!({"issuer": "idp.example.com"})), "issuer"),
            (base(json!({"issuer": 5})), "issuer"),
            (json!({"idp_cluster": "idp"}), "issuer"),
            (json!({"issuer": "https://idp.example.com"}), "idp_cluster"),
            (
                json!({"issuer": "https://idp.example.com", "idp_clusters": {"other.example.com": "c"}}),
                "idp_cluster",
            ),
            (base(json!({"idp_clusters": {"a/b": "c"}})), "idp_clusters"),
            (base(json!({"idp_clusters": {"h": ""}})), "idp_clusters"),
            (base(json!({"idp_cluster": ""})), "idp_cluster"),
            (base(json!({"scopes": "openid"})), "scopes"),
            (base(json!({"scopes": [""]})), "scopes"),
            (base(json!({"scopes_required": [" "]})), "scopes_required"),
            (base(json!({"scopes_required": [1]})), "scopes_required"),
            (
                base(json!({"audience_required": [""]})),
                "audience_required",
            ),
            (base(json!({"scopes_claim": []})), "scopes_claim"),
            (base(json!({"audience_claim": [""]})), "audience_claim"),
            (base(json!({"auth_methods": []})), "auth_methods"),
            (base(json!({"auth_methods": ["password"]})), "auth_methods"),
            (
                base(json!({"auth_methods": ["authorization_code"]})),
                "auth_methods",
            ),
            (
                base(json!({"auth_methods": ["introspection"], "client_id": "c"})),
                "auth_methods",
            ),
            (base(json!({"idp_timeout_ms": 0})), "idp_timeout_ms"),
            (
                base(json!({"idp_timeout_ms": 10_000_000})),
                "idp_timeout_ms",
            ),
            (base(json!({"idp_timeout_ms": -1})), "idp_timeout_ms"),
            (base(json!({"leeway": 100_000})), "leeway"),
            (base(json!({"leeway": "30"})), "leeway"),
            (base(json!({"token_cache_size": 0})), "token_cache_size"),
            (
                base(json!({"token_cache_size": 1_000_001})),
                "token_cache_size",
            ),
            (base(json!({"token_cache_size": -1})), "token_cache_size"),
            (base(json!({"token_cache_size": 1.5})), "token_cache_size"),
            (
                base(json!({"token_cache_size": "4096"})),
                "token_cache_size",
            ),
            (base(json!({"session_secret": "short"})), "session_secret"),
            (
                base(json!({"session_secret": ["x".repeat(32), "short"]})),
                "session_secret",
            ),
            (
                base(json!({"session_cookie_same_site": "sometimes"})),
                "session_cookie_same_site",
            ),
            (
                base(json!({"session_cookie_name": "a b"})),
                "session_cookie_name",
            ),
            (
                base(json!({"session_cookie_name": "n".repeat(129)})),
                "session_cookie_name",
            ),
            (
                base(json!({"session_cookie_path": "/app", "logout_path": "/logout"})),
                "logout_path",
            ),
            (
                base(json!({"session_cookie_path": "/app",
                    "redirect_uri": ["https://gw/app/cb", "https://gw/application/cb"]})),
                "redirect_uri",
            ),
            (
                base(json!({"session_cookie_path": "x"})),
                "session_cookie_path",
            ),
            (
                base(json!({"session_cookie_domain": "a;b"})),
                "session_cookie_domain",
            ),
            (base(json!({"session_remember": true})), "session_remember"),
            (
                base(json!({"session_remember_rolling_timeout": 60})),
                "session_remember_rolling_timeout",
            ),
            (
                base(json!({"session_idling_timeout": -1})),
                "session_idling_timeout",
            ),
            (base(json!({"logout_path": "logout"})), "logout_path"),
            (
                base(json!({"post_logout_redirect_uri": "javascript:alert(1)"})),
                "post_logout_redirect_uri",
            ),
            (
                base(json!({"end_session_endpoint": "nope"})),
                "end_session_endpoint",
            ),
            (base(json!({"redirect_uri": ["/relative"]})), "redirect_uri"),
            (base(json!({"client_id": ""})), "client_id"),
            (base(json!({"bypass_paths": ["health"]})), "bypass_paths"),
            (base(json!({"bypass_paths": ["/*"]})), "bypass_paths"),
            (base(json!({"bypass_paths": ["/h?x=1"]})), "bypass_paths"),
            (
                base(json!({"bypass_paths": ["/health", "/"]})),
                "bypass_paths",
            ),
            (base(json!({"bypass_paths": ["//"]})), "bypass_paths"),
            (base(json!({"run_on_preflight": "no"})), "run_on_preflight"),
            (
                base(json!({"upstream_access_token_header": "bad header:bearer"})),
                "upstream_access_token_header",
            ),
            (
                base(json!({"upstream_access_token_header": "authorization:"})),
                "upstream_access_token_header",
            ),
            (
                base(json!({"upstream_headers_claims": ["sub"]})),
                "upstream_headers_names",
            ),
            (
                base(
                    json!({"upstream_headers_claims": ["sub"], "upstream_headers_names": ["x y"]}),
                ),
                "upstream_headers_names",
            ),
            (
                base(
                    json!({"upstream_headers_claims": ["sub"], "upstream_headers_names": ["Cookie"]}),
                ),
                "upstream_headers_names",
            ),
            (
                base(json!({"upstream_headers_claims": [""], "upstream_headers_names": ["x-sub"]})),
                "upstream_headers_claims",
            ),
            (base(json!({"hide_credentials": 1})), "hide_credentials"),
            // Found by an independent review (session 22): each loaded.
            (
                base(json!({"client_id": [], "client_secret": "s",
                            "auth_methods": ["bearer", "introspection"]})),
                "client_id",
            ),
            (
                base(json!({"client_id": "c", "client_secret": [],
                            "auth_methods": ["bearer", "introspection"]})),
                "client_secret",
            ),
            (base(json!({"redirect_uri": []})), "redirect_uri"),
            (base(json!({"session_secret": []})), "session_secret"),
            (
                base(json!({"session_cookie_domain": "a\rb"})),
                "session_cookie_domain",
            ),
            (
                base(json!({"session_cookie_path": "/a\r\nSet-Cookie: x"})),
                "session_cookie_path",
            ),
            (base(json!({"idp_cluster": "a\nb"})), "idp_cluster"),
            (
                base(json!({"idp_clusters": {"IDP.example.com": "a", "idp.example.com": "b"}})),
                "idp_clusters",
            ),
            (
                base(json!({"rules": [{"match": {"paths": []}, "bypass": true}]})),
                "rules[0].match.paths",
            ),
            (
                base(json!({"rules": [{"match": {"methods": ["get "]}}]})),
                "rules[0].match.methods",
            ),
        ];
        for (config, field) in cases {
            let e = refused(config.clone());
            assert_eq!(e.field, field, "{config} → {e}");
            assert!(e.to_string().contains(&format!("`{field}`")), "{e}");
        }
    }

    #[test]
    fn configurations_that_would_fail_open_or_loop_are_refused_naming_the_field() {
        let client = |extra: Value| {
            let mut c = base(json!({"client_id": "c", "client_secret": "s",
                "redirect_uri": "https://gw/cb"}));
            c.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            c
        };
        let claims =
            |names: Value| json!(["sub", "email", "name"][..names.as_array().unwrap().len()]);
        let pairs = |names: Value| {
            json!({"upstream_headers_claims": claims(names.clone()),
            "upstream_headers_names": names})
        };
        let cases = [
            // `null` reads as unset: any audience, every auth method.
            (
                base(json!({"audience_required": null})),
                "audience_required",
            ),
            (base(json!({"auth_methods": null})), "auth_methods"),
            (base(json!({"scopes_required": null})), "scopes_required"),
            // The callback or logout must reach the filter.
            (
                client(
                    json!({"redirect_uri": "https://gw/public/cb", "bypass_paths": ["/public"]}),
                ),
                "bypass_paths",
            ),
            (
                base(json!({"logout_path": "/public/logout", "bypass_paths": ["/public*"]})),
                "bypass_paths",
            ),
            (
                client(json!({"rules": [{"match": {"paths": ["/cb"]}, "bypass": true}]})),
                "rules[0].match",
            ),
            (
                client(json!({"rules": [
                    {"match": {"paths": ["/"], "methods": ["POST"]}},
                    {"match": {"hosts": ["gw"]}, "bypass": true}]})),
                "rules[1].match",
            ),
            // A rule on the callback's host does not take a logout sent
            // to another host the session cookie reaches.
            (
                client(json!({"logout_path": "/logout", "rules": [
                    {"match": {"hosts": ["gw"]}},
                    {"match": {"paths": ["/logout"]}, "bypass": true}]})),
                "rules[1].match",
            ),
            // Headers that Envoy or the filter give another meaning.
            (
                base(json!({"upstream_access_token_header": "cookie"})),
                "upstream_access_token_header",
            ),
            (
                base(json!({"upstream_access_token_header": "Host:Bearer"})),
                "upstream_access_token_header",
            ),
            // One header, two keys.
            (
                base(pairs(json!(["x-user", "X-User"]))),
                "upstream_headers_names",
            ),
            (
                base(json!({"upstream_id_token_header": "x-user",
                    "upstream_headers_claims": ["sub"], "upstream_headers_names": ["x-user"]})),
                "upstream_id_token_header",
            ),
            (
                base(json!({"upstream_access_token_header": "x-token",
                    "upstream_headers_claims": ["sub"], "upstream_headers_names": ["x-token"]})),
                "upstream_headers_names",
            ),
            // The session's own cookies are no bearer cookie.
            (
                base(
                    json!({"bearer_token_param_type": ["cookie"], "bearer_token_cookie_name": "session"}),
                ),
                "bearer_token_cookie_name",
            ),
            (
                base(
                    json!({"bearer_token_param_type": ["cookie"], "bearer_token_cookie_name": "s.2",
                    "session_cookie_name": "s"}),
                ),
                "bearer_token_cookie_name",
            ),
            (
                base(json!({"bearer_token_param_type": ["cookie"],
                    "bearer_token_cookie_name": "session_login_0a1b2c3d4e5f"})),
                "bearer_token_cookie_name",
            ),
            // A logout that would take every login callback.
            (base(json!({"logout_path": "/logout?x=1"})), "logout_path"),
            (
                base(json!({"logout_query_arg": "state"})),
                "logout_query_arg",
            ),
            (
                client(json!({"logout_methods": ["GET"], "logout_path": "/cb"})),
                "logout_path",
            ),
            (
                client(json!({"logout_methods": ["GET", "POST"], "logout_uri_suffix": "cb"})),
                "logout_uri_suffix",
            ),
            // A login that cannot end in a session that is read: a loop
            // through the IdP, or a 401 at every callback.
            (
                client(json!({"auth_methods": ["authorization_code"]})),
                "auth_methods",
            ),
            (
                client(json!({"rules": [{"match": {"paths": ["/app"]},
                    "auth_methods": ["bearer", "authorization_code"]}]})),
                "rules[0].auth_methods",
            ),
        ];
        for (config, field) in cases {
            assert_eq!(refused(config.clone()).field, field, "{config}");
        }
        // Their near misses load.
        for config in [
            base(json!({"anonymous": null})),
            client(json!({"bypass_paths": ["/cbx"], "logout_path": "/logout"})),
            client(json!({"rules": [
                {"match": {"paths": ["/"]}},
                {"match": {"paths": ["/"]}, "bypass": true}]})),
            // kong2wasm's shapes: an open route on another host, a CORS
            // preflight route, a regex route (by Envoy route name).
            client(json!({"logout_path": "/logout", "rules": [
                {"match": {"hosts": ["gw"]}},
                {"match": {"hosts": ["status.example.com"]}, "bypass": true},
                {"match": {"methods": ["OPTIONS"]}, "bypass": true},
                {"match": {"route_names": ["regex-route"]}, "bypass": true}]})),
            base(json!({"upstream_access_token_header": "x-token"})),
            base(json!({"upstream_access_token_header": "Authorization:Bearer"})),
            base(pairs(json!(["x-user", "x-mail"]))),
            base(
                json!({"bearer_token_param_type": ["cookie"], "bearer_token_cookie_name": "sessions"}),
            ),
            client(json!({"logout_path": "/cb"})),
            client(json!({"logout_methods": ["GET"], "logout_path": "/logout"})),
        ] {
            assert!(
                parse(config.clone()).is_ok(),
                "{config}: {:?}",
                parse(config.clone()).err()
            );
        }
        // A callback taken by what does not log in: noted, not refused (a
        // callback no login uses harms nothing).
        let note = |c: Value| {
            let notes = parse(c.clone()).unwrap().notes;
            notes
                .into_iter()
                .find(|n| n.contains("lacks authorization_code"))
        };
        for (config, field) in [
            (
                client(
                    json!({"auth_methods": ["bearer"], "rules": [{"match": {"paths": ["/app"]},
                    "auth_methods": ["authorization_code", "session"]}]}),
                ),
                "auth_methods",
            ),
            (
                client(json!({"rules": [{"match": {"hosts": ["gw"]},
                    "auth_methods": ["bearer"]}]})),
                "rules[0].auth_methods",
            ),
        ] {
            let noted = note(config.clone()).unwrap_or_default();
            assert!(noted.starts_with(field), "{config}: {noted}");
        }
        // The callback under the rule that logs in, by path, by host and
        // method, or by route name (unjudged); or no logins at all.
        for config in [
            client(
                json!({"auth_methods": ["bearer"], "rules": [{"match": {"paths": ["/cb"]},
                "auth_methods": ["authorization_code", "session"]}]}),
            ),
            client(
                json!({"auth_methods": ["bearer"], "rules": [{"match": {"hosts": ["gw"],
                "methods": ["GET", "HEAD"]}, "auth_methods": ["authorization_code", "session"]}]}),
            ),
            client(
                json!({"auth_methods": ["bearer"], "rules": [{"match": {"route_names": ["web"]},
                "auth_methods": ["authorization_code", "session"]}]}),
            ),
            client(json!({"auth_methods": ["bearer"]})),
            client(json!({"rules": [{"match": {"hosts": ["other.example.com"]},
                "auth_methods": ["bearer"]}]})),
        ] {
            assert_eq!(note(config.clone()), None, "{config}");
        }
    }

    #[test]
    fn cookie_name_prefixes_get_what_browsers_require_of_them() {
        for (config, field) in [
            (
                base(
                    json!({"session_cookie_name": "__Host-s", "session_cookie_path": "/app",
                    "redirect_uri": "https://gw/app/cb"}),
                ),
                "session_cookie_path",
            ),
            (
                base(
                    json!({"session_cookie_name": "__Host-s", "session_cookie_domain": "example.com"}),
                ),
                "session_cookie_domain",
            ),
            (
                base(json!({"session_cookie_name": "__secure-s", "session_cookie_secure": false})),
                "session_cookie_secure",
            ),
        ] {
            assert_eq!(refused(config.clone()).field, field, "{config}");
        }
        for name in ["__Host-session", "__Secure-session"] {
            let c = parse(base(json!({"session_cookie_name": name})))
                .unwrap()
                .config;
            assert_eq!(c.session.cookie_secure, Some(true), "{name}");
        }
        let plain = parse(base(json!({}))).unwrap().config;
        assert_eq!(plain.session.cookie_secure, None);
    }

    #[test]
    fn a_callback_and_logout_path_under_the_cookie_path_are_taken() {
        for (cookie_path, callback, logout) in [
            ("/app", "https://gw/app/cb?x=1", "/app"),
            ("/app/", "https://gw/app/cb", "/app/logout"),
            ("/", "https://gw/cb", "/logout"),
        ] {
            let c = base(json!({"session_cookie_path": cookie_path,
                "redirect_uri": [callback], "logout_path": logout}));
            assert!(parse(c).is_ok(), "{cookie_path} {callback} {logout}");
        }
        let long = base(json!({"session_cookie_name": "n".repeat(MAX_COOKIE_NAME)}));
        assert!(parse(long).is_ok());
    }

    #[test]
    fn malformed_json_is_refused_with_a_message() {
        for bad in [&b""[..], b"{", b"[]", b"null", b"\xff", b"{\"issuer\":"] {
            let e = Config::parse(bad).expect_err("refused");
            assert!(e.to_string().starts_with("invalid configuration"), "{e}");
        }
    }

    #[test]
    fn a_key_given_twice_is_refused_naming_it() {
        let base = r#""issuer": "https://idp.example.com", "idp_cluster": "idp""#;
        for (text, field) in [
            (
                format!(r#"{{{base}, "leeway": 0, "leeway": 3600}}"#),
                "leeway",
            ),
            (
                format!(r#"{{"issuer": "https://evil.example.com", {base}}}"#),
                "issuer",
            ),
            (
                format!(
                    r#"{{{base}, "idp_call_budget": {{"code": {{"per_second": 1, "per_second": 9}}}}}}"#
                ),
                "idp_call_budget.code.per_second",
            ),
            (
                format!(
                    r#"{{{base}, "rules": [{{"match": {{"paths": ["/a"]}},
                        "hide_credentials": true, "hide_credentials": false}}]}}"#
                ),
                "rules[0].hide_credentials",
            ),
        ] {
            let e = Config::parse(text.as_bytes()).expect_err(&text);
            assert_eq!(e.field, field, "{text} → {e}");
            assert!(e.to_string().contains("is given twice"), "{e}");
        }
        // The same names in different objects are no duplicates.
        let text = format!(
            r#"{{{base}, "rules": [{{"match": {{"paths": ["/a"]}}, "hide_credentials": true}},
                {{"match": {{"paths": ["/b"]}}, "hide_credentials": false}}],
                "hide_credentials": true}}"#
        );
        if let Err(e) = Config::parse(text.as_bytes()) {
            panic!("{e}");
        }
    }

    #[test]
    fn idp_parameters_are_refused_naming_the_field() {
        for (extra, field, says) in [
            (
                json!({"token_post_args_names": ["a"], "token_post_args_values": []}),
                "token_post_args_values",
                "has 0 entries",
            ),
            (
                json!({"authorization_query_args_names": ["state"],
                       "authorization_query_args_values": ["x"]}),
                "authorization_query_args_names",
                "set by the protocol",
            ),
            (
                json!({"token_post_args_client": ["client_secret"]}),
                "token_post_args_client",
                "set by the protocol",
            ),
            (
                json!({"audience": "a", "token_post_args_names": ["audience"],
                       "token_post_args_values": ["b"]}),
                "token_post_args_names",
                "`audience` key",
            ),
            (json!({"audience": "a b"}), "audience", "without spaces"),
            (json!({"domains": [""]}), "domains", "not be empty"),
        ] {
            let e = refused(base(extra.clone()));
            assert_eq!(e.field, field, "{extra}");
            assert!(e.reason.contains(says), "{extra}: {e}");
        }
        let ok = parse(base(
            json!({"audience": ["a", "b"], "domains": ["example.com"],
                                   "token_post_args_names": ["resource"],
                                   "token_post_args_values": ["urn:x"]}),
        ))
        .unwrap()
        .config;
        assert_eq!(ok.audience.as_deref(), Some("a b"));
        assert_eq!(ok.token_args.fixed, [("resource".into(), "urn:x".into())]);
        assert_eq!(
            ok.client_credentials_args,
            [
                ("audience".into(), "a b".into()),
                ("resource".into(), "urn:x".into())
            ]
        );
    }
}
