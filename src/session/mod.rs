//! Browser sessions: what a session holds, how it is sealed into cookies,
//! and the cookie headers themselves.

pub mod cookie;
pub mod seal;

use std::rc::Rc;

use serde::{Deserialize, Serialize};

use crate::oidc::claims::Claims;

/// What a session cookie holds: all a later request needs, so that any
/// Envoy replica with the same `session_secret` can serve it.
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq)]
pub struct Session {
    /// Random id: names the session's refresh lease across workers.
    pub sid: String,
    /// Shared with the requests it is handed to (an `Rc`, not copied per
    /// request).
    pub access_token: Rc<str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// Kept for RP-initiated logout (`id_token_hint`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    /// Who the session is, when the access token is not ours to verify
    /// (opaque, or for another API such as Microsoft Graph): the claims of
    /// the ID token verified at login. `None`: the access token is ours,
    /// verified on every request, and its claims are the identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<Rc<Claims>>,
    /// The scopes the token endpoint granted (its `scope`, else those
    /// asked for), for `scopes_required` when `identity` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Rc<str>>,
    /// When the access token expires.
    pub expires_at: u64,
    /// When the access token was obtained (login or refresh), for its
    /// refresh margin: not `renewed_at`, which a rolling renewal moves.
    /// 0 in cookies from before it: `renewed_at` then.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub obtained_at: u64,
    /// When the session began (absolute timeout).
    pub created_at: u64,
    /// When the session was last renewed (rolling timeout).
    pub renewed_at: u64,
    /// When the session was last seen in use (idling timeout), to the
    /// minute; 0 in cookies from before the idling timeout: `renewed_at`.
    #[serde(default)]
    pub seen_at: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Session {
    /// How long the access token lives, from when it was obtained.
    pub fn token_life(&self) -> u64 {
        let obtained = match self.obtained_at {
            0 => self.renewed_at,
            at => at,
        };
        self.expires_at.saturating_sub(obtained)
    }

    /// Whether `cfg`'s timeouts let the session serve at `now`.
    pub fn is_live(&self, cfg: &crate::config::Session, now: u64) -> bool {
        now < self.ends_at(cfg)
    }

    /// When the first of the timeouts ends the session (`u64::MAX`: never).
    pub fn ends_at(&self, cfg: &crate::config::Session) -> u64 {
        let seen = self.seen_at.max(self.renewed_at);
        self.created_at
            .saturating_add(cfg.absolute_timeout)
            .min(self.renewed_at.saturating_add(cfg.rolling_timeout))
            .min(seen.saturating_add(cfg.idling_timeout))
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Session({}, expires_at {})", self.sid, self.expires_at)
    }
}

/// What a login in progress carries from the redirect to the callback.
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq)]
pub struct Login {
    pub state: String,
    pub nonce: String,
    pub verifier: String,
    /// Path and query to return to: always a local path.
    pub return_to: String,
    pub redirect_uri: String,
    pub expires_at: u64,
    /// The `scope` it asked the IdP for: the session's, when the token
    /// response names none (RFC 6749 §5.1: then it is the one asked for).
    /// Absent in a login cookie of a build before: the callback's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The rule it started under (`Config::rule_index`; `None`: the top
    /// level), which may not be the callback's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<usize>,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Login(return_to {})", self.return_to)
    }
}
