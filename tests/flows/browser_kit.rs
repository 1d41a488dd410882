//! What the browser-flow tests share: a web client's configuration, the
//! IdP's discovery document, a scripted IdP that issues tokens for the nonce
//! it saw at /authorize, and a tiny cookie jar that plays the browser
//! before one or more Envoy workers.

use std::cell::{RefCell, RefMut};
use std::collections::BTreeMap;
use std::rc::Rc;

use envoy_oidc::action::{Action, Decision, IdpReply, IdpRequest};
use envoy_oidc::oidc::provider::Document;
use envoy_oidc::request::RequestView;
use envoy_oidc_testkit::World;
use envoy_oidc_testkit::tokens::{self, ISSUER};
use envoy_oidc_testkit::world::{self, Call, Outcome};
use serde_json::{Value, json};

use crate::{NOW, document, header, response};

pub const SECRET: &str = "a-session-secret-of-32-bytes-or-more";
pub const BYE: &str = "https://gw.example.com/bye";

/// `base` with every key of `extra` set over it (`null`: taken out).
pub fn merged(mut base: Value, extra: Value) -> Value {
    let base_keys = base.as_object_mut().unwrap();
    for (key, value) in extra.as_object().unwrap().clone() {
        // `null` leaves the base's key out (the filter refuses a `null`).
        if value.is_null() {
            base_keys.remove(&key);
        } else {
            base_keys.insert(key, value);
        }
    }
    base
}

/// A web client's configuration (code flow, sessions, logout on
/// `/logout`), with `extra` on top.
pub fn config(extra: Value) -> Value {
    let base = json!({
        "issuer": ISSUER, "idp_cluster": "idp", "leeway": 0,
        "client_id": "web", "client_secret": "web-secret",
        "redirect_uri": "https://gw.example.com/oidcroute/get",
        "session_secret": SECRET, "logout_path": "/logout",
        "post_logout_redirect_uri": BYE,
    });
    merged(base, extra)
}

/// The IdP's discovery document: every endpoint the browser flows use.
pub fn discovery() -> Vec<u8> {
    let d = json!({
        "issuer": ISSUER, "jwks_uri": format!("{ISSUER}/jwks"),
        "authorization_endpoint": "https://login.example.com/authorize",
        "token_endpoint": "https://login.example.com/token",
        "revocation_endpoint": "https://login.example.com/revoke",
        "end_session_endpoint": "https://login.example.com/logout",
    });
    serde_json::to_vec(&d).unwrap()
}

/// The IdP call is a token revocation.
pub fn is_revocation(r: &IdpRequest) -> bool {
    world::path(r).ends_with("/revoke")
}

/// What the scripted IdP answers, changed by the tests as they go.
pub struct Script {
    pub discovery: Vec<u8>,
    /// The issuer of the tokens it issues (the configuration's).
    pub issuer: String,
    /// The nonce the IdP saw at /authorize, put in the ID tokens it issues.
    pub nonce: String,
    /// How many seconds access tokens live.
    pub token_life: u64,
    /// The answer to a refresh grant instead of new tokens.
    pub refresh_reply: Option<IdpReply>,
    /// Bytes of padding in each token issued (a large session).
    pub pad: usize,
    /// Down: every call answered 503, as Envoy answers for a dead cluster.
    pub down: bool,
    /// Tokens issued: (access, id, refresh).
    pub issued: Vec<(String, String, String)>,
    /// What access tokens look like (provider shapes).
    pub access: Access,
    /// The `scope` of token responses, when set.
    pub scope: Option<String>,
    /// Claims added to every ID token.
    pub id_claims: Value,
    /// The answer to a code exchange instead of new tokens.
    pub code_reply: Option<IdpReply>,
    /// The userinfo endpoint's answer (at `/userinfo`), when it has one.
    pub userinfo: Option<Value>,
    /// The IdP has a new signing key: it signs ID tokens with it, naming no
    /// `kid`, and publishes it beside the old keys.
    pub new_key: bool,
}

/// The shape of the access tokens the scripted IdP issues.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// A JWT of the configured issuer (Cognito, Keycloak, our provider).
    Ours,
    /// Opaque, as Google's `ya29…` tokens.
    Opaque,
    /// A JWT for another API, signed by a key we do not have and from an
    /// issuer we do not accept (Entra ID's for Microsoft Graph).
    OtherApi,
    /// A JWT of the configured issuer under a key it does not publish yet
    /// (a rotation whose JWKS lags).
    NewKey,
}

impl Script {
    fn new(issuer: String, discovery: Vec<u8>) -> Script {
        Script {
            discovery,
            issuer,
            nonce: String::new(),
            token_life: 300,
            refresh_reply: None,
            pad: 0,
            down: false,
            issued: Vec::new(),
            access: Access::Ours,
            scope: None,
            id_claims: json!({}),
            code_reply: None,
            userinfo: None,
            new_key: false,
        }
    }

    fn answer(&mut self, request: &IdpRequest, now: u64) -> IdpReply {
        let ok = |body: Vec<u8>| IdpReply {
            status: Some(200),
            body,
            retry_after: None,
        };
        if self.down {
            return IdpReply {
                status: Some(503),
                body: b"no healthy upstream".to_vec(),
                retry_after: None,
            };
        }
        match document(request) {
            Some(Document::Discovery) => return ok(self.discovery.clone()),
            Some(Document::Jwks) if self.new_key => {
                let mut jwks: Value = serde_json::from_slice(&tokens::jwks()).unwrap();
                let keys = jwks["keys"].as_array_mut().unwrap();
                keys.push(tokens::jwk(tokens::Key::OtherRsa, "new"));
                return ok(jwks.to_string().into_bytes());
            }
            Some(Document::Jwks) => return ok(tokens::jwks()),
            None => {}
        }
        if is_revocation(request) {
            return ok(vec![]);
        }
        if let Some(userinfo) = &self.userinfo
            && world::path(request).ends_with("/userinfo")
        {
            return ok(userinfo.to_string().into_bytes());
        }
        let grant = world::form(request).get("grant_type").cloned();
        match (grant.as_deref(), &self.refresh_reply, &self.code_reply) {
            (Some("refresh_token"), Some(reply), _)
            | (Some("authorization_code"), _, Some(reply)) => {
                return reply.clone();
            }
            _ => {}
        }
        let mut at = tokens::access_claims(now);
        at["iss"] = json!(self.issuer);
        at["exp"] = json!(now + self.token_life);
        at["client_id"] = json!("web");
        let mut id = json!({"iss": self.issuer, "sub": "alice", "aud": "web", "azp": "web",
                            "iat": now, "exp": now + 300, "nonce": self.nonce});
        id.as_object_mut()
            .unwrap()
            .extend(self.id_claims.as_object().unwrap().clone());
        if self.pad > 0 {
            let pad = "p".repeat(self.pad);
            at["pad"] = json!(pad);
            id["pad"] = json!(pad);
        }
        // Unique per token issued; as long as the padding asks.
        let refresh = format!("rt-{now}-{}{}", self.issued.len(), "r".repeat(self.pad));
        let access = match self.access {
            Access::Ours => tokens::rs256(&at),
            Access::Opaque => format!("ya29.opaque-{now}-{}", self.issued.len()),
            Access::NewKey => tokens::sign(&json!({"alg": "RS256", "kid": "rotated"}), &at),
            Access::OtherApi => {
                at["iss"] = json!("https://sts.windows.net/other-tenant/");
                at["aud"] = json!("00000003-0000-0000-c000-000000000000");
                let jwt = tokens::rs256(&at);
                // Signed with a key nobody here has: a different signature.
                format!("{}x", &jwt[..jwt.len() - 1])
            }
        };
        let id = if self.new_key {
            let header = json!({"alg": "RS256", "typ": "JWT"});
            tokens::sign_with(tokens::Key::OtherRsa, &header, &id)
        } else {
            tokens::rs256(&id)
        };
        self.issued
            .push((access.clone(), id.clone(), refresh.clone()));
        let mut body = json!({"access_token": access, "id_token": id,
                          "refresh_token": refresh, "token_type": "Bearer",
                          "expires_in": self.token_life});
        if let Some(scope) = &self.scope {
            body["scope"] = json!(scope);
        }
        ok(body.to_string().into_bytes())
    }
}

/// A browser (a cookie jar) and the Envoy workers it talks to, with their
/// IdP.
pub struct Browser {
    pub world: World,
    pub jar: BTreeMap<String, String>,
    pub script: Rc<RefCell<Script>>,
    /// The worker the next request reaches.
    pub worker: usize,
}

impl Browser {
    /// One worker of `cfg`, its IdP serving `discovery()`.
    pub fn new(cfg: Value) -> Browser {
        Browser::on(cfg, discovery(), 1)
    }

    pub fn on(cfg: Value, discovery: Vec<u8>, workers: usize) -> Browser {
        let issuer = cfg["issuer"].as_str().unwrap().to_string();
        let script = Rc::new(RefCell::new(Script::new(issuer, discovery)));
        let idp = Rc::clone(&script);
        Browser {
            world: World::new(&cfg, workers, NOW, move |r, now| {
                idp.borrow_mut().answer(r, now)
            }),
            jar: BTreeMap::new(),
            script,
            worker: 0,
        }
    }

    pub fn idp(&self) -> RefMut<'_, Script> {
        self.script.borrow_mut()
    }

    /// The IdP calls other than discovery and JWKS fetches.
    pub fn calls(&self) -> Vec<&Call> {
        self.world
            .calls
            .iter()
            .filter(|c| document(&c.request).is_none())
            .collect()
    }

    /// A request carrying the jar's cookies; `accept_html` as a page
    /// navigation asks, not as an API client.
    pub fn request(&self, method: &str, path: &str, accept_html: bool) -> RequestView {
        let mut h = vec![
            (":method".to_string(), method.as_bytes().to_vec()),
            (":path".to_string(), path.as_bytes().to_vec()),
            (":scheme".to_string(), b"https".to_vec()),
        ];
        if accept_html {
            h.push(("accept".into(), b"text/html,application/xhtml+xml".to_vec()));
        }
        if !self.jar.is_empty() {
            let c: Vec<String> = self.jar.iter().map(|(n, v)| format!("{n}={v}")).collect();
            h.push(("cookie".into(), c.join("; ").into_bytes()));
        }
        RequestView::new(h)
    }

    /// One request to `self.worker` at `now`: its decision, and whether it
    /// was decided at once (without waiting for any IdP call). The browser
    /// keeps the cookies of the response (the filter's own, or the
    /// upstream's with the filter's added).
    pub fn exchange(&mut self, req: RequestView, now: u64) -> (Decision, bool) {
        let w = self.worker;
        self.world.now = now;
        let id = self.world.send(w, req);
        let at_once = matches!(self.world.outcome(w, id), Outcome::Decided(_));
        self.world.settle();
        let d = self.world.decision(w, id).clone();
        let headers = match &d.action {
            Action::Respond(r) => r.headers.clone(),
            Action::Continue { .. } => self.world.respond(w, id),
        };
        self.world.drop_request(w, id);
        self.absorb(&headers);
        (d, at_once)
    }

    fn absorb(&mut self, headers: &[(String, String)]) {
        for (n, v) in headers {
            if n != "set-cookie" {
                continue;
            }
            let (pair, attrs) = v.split_once(';').unwrap_or((v, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if attrs.contains("Max-Age=0") {
                self.jar.remove(name);
            } else {
                self.jar.insert(name.to_string(), value.to_string());
            }
        }
    }

    /// `exchange`, for its decision only.
    pub fn send(&mut self, req: RequestView, now: u64) -> Decision {
        self.exchange(req, now).0
    }

    /// A GET of `path` at `now`: its decision.
    pub fn get(&mut self, path: &str, accept_html: bool, now: u64) -> Decision {
        self.send(self.request("GET", path, accept_html), now)
    }

    /// A page navigation with `method` to `path` at `now`: its decision.
    pub fn visit(&mut self, method: &str, path: &str, now: u64) -> Decision {
        self.send(self.request(method, path, true), now)
    }

    /// Starts a login at `path` (the redirect to the IdP, which notes the
    /// nonce): the callback URL the IdP sends the browser back to.
    pub fn start_login(&mut self, path: &str, now: u64) -> String {
        let d = self.get(path, true, now);
        let q = query(header(response(&d), "location"));
        self.idp().nonce = q["nonce"].clone();
        let issuer = enc(&self.idp().issuer);
        format!(
            "/oidcroute/get?code=the-code&state={}&iss={issuer}",
            q["state"]
        )
    }

    /// Logs in at `path` through the redirect and the callback, which must
    /// answer 302 with a session cookie: the callback's decision.
    pub fn login(&mut self, path: &str, now: u64) -> Decision {
        let cb = self.start_login(path, now);
        let d = self.get(&cb, true, now);
        assert_eq!(response(&d).status, 302, "logged in: {d:?}");
        assert!(self.jar.contains_key("session"), "{:?}", self.jar);
        d
    }
}

pub fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The query parameters of `url`.
pub fn query(url: &str) -> BTreeMap<String, String> {
    let q = url.split_once('?').map(|(_, q)| q).unwrap_or_default();
    form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

/// The refresh grants the IdP has seen.
pub fn refreshes(w: &Browser) -> usize {
    w.calls()
        .iter()
        .filter(|c| c.form().get("grant_type").map(String::as_str) == Some("refresh_token"))
        .count()
}
