//! Times, inside Envoy's V8, what a request costs the filter. Loaded by
//! bench/run.sh into its own Envoy; its plugin configuration carries the
//! filter configuration, the discovery and JWKS documents and sample
//! tokens (bench/mint.mjs makes them).
//!
//! - `GET /probe/verify?n=N`: µs per signature verification, the
//!   candidates interleaved in rounds so that a noisy machine hits all
//!   alike: RS256 with the `rsa` crate as the filter used to call it,
//!   RS256 through `envoy_oidc::oidc::jwt::verify_signature` (our fast
//!   path), ES256 with the `p256` crate as the filter used to call it
//!   and through `verify_signature` (bignum/src/ecdsa.rs), the same for
//!   ES384 with the `p384` crate, EdDSA (ed25519-compact); plus JWKS and JWT
//!   parsing.
//! - `GET /probe/request?n=N`: µs per piece of a cached-token request: the
//!   host calls the shell makes, SHA-256 of the token, the cache lookup,
//!   the whole decision of the shipped engine (`Engine::handle_request`,
//!   over a `Host` of the probe's own) for a cached bearer token, cached
//!   client credentials, a session cookie (brought by the request: bench.py
//!   mints it just before) and the same cookie a minute later (sealed anew),
//!   a first-seen token and a bypassed path.
//!
//! Answers are JSON: `{"name": µs, ...}` (medians of the rounds).

use std::cell::Cell;
use std::hint::black_box;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use envoy_oidc::action::{Decision, IdpReply, IdpRequest};
use envoy_oidc::config::Config;
use envoy_oidc::engine::{ContextId, Engine, Host, HostFailure, Level};
use envoy_oidc::json_object::JsonObject;
use envoy_oidc::oidc::jwks::{KeySet, PublicKey};
use envoy_oidc::oidc::jwt::{Alg, Jwt, verify_signature};
use envoy_oidc::request::RequestView;
use envoy_oidc::store::SharedStore;
use envoy_oidc_testkit::EnvoyStore;
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, MapType};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| Box::new(Root::default()));
}}

#[derive(Default, Clone)]
struct Setup {
    filter: Vec<u8>,
    discovery: Vec<u8>,
    jwks: Vec<u8>,
    rs256: String,
    /// 256 other RS256 tokens of the same key.
    rs256_many: Vec<String>,
    es256: String,
    /// An ES384 token and a JWKS with its key (made by bench/mint.mjs).
    es384: String,
    es384_jwks: Vec<u8>,
    cc_reply: Vec<u8>,
    /// The userinfo endpoint's answer (`USERINFO`), at the discovery
    /// document's `userinfo_endpoint` (added here).
    userinfo: Vec<u8>,
}

/// An Okta-like userinfo answer: profile, email and groups.
const USERINFO: &str = r#"{"sub":"00u1a2b3c4d5e6f7g8h9","name":"Ada Lovelace","given_name":"Ada","family_name":"Lovelace","preferred_username":"ada@example.com","email":"ada@example.com","email_verified":true,"locale":"en-GB","zoneinfo":"Europe/London","updated_at":1700000000,"groups":["engineering","admins","everyone"]}"#;

#[derive(Default)]
struct Root {
    setup: Option<std::rc::Rc<Setup>>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _: usize) -> bool {
        let Ok(Some(cfg)) = hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX)
        else {
            return false;
        };
        let Ok(v) = serde_json::from_slice::<Value>(&cfg) else {
            return false;
        };
        let text = |k: &str| v[k].as_str().unwrap_or_default().to_string();
        let json = |k: &str| serde_json::to_vec(&v[k]).unwrap_or_default();
        self.setup = Some(std::rc::Rc::new(Setup {
            filter: json("filter"),
            discovery: {
                let mut d = v["discovery"].clone();
                let userinfo = format!("{}/userinfo", d["issuer"].as_str().unwrap_or_default());
                d["userinfo_endpoint"] = json!(userinfo);
                serde_json::to_vec(&d).unwrap_or_default()
            },
            jwks: json("jwks"),
            rs256: text("rs256"),
            rs256_many: v["rs256_many"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|t| t.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default(),
            es256: text("es256"),
            es384: text("es384"),
            es384_jwks: json("es384_jwks"),
            cc_reply: json("cc_reply"),
            userinfo: USERINFO.as_bytes().to_vec(),
        }));
        true
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Probe {
            setup: self.setup.clone().unwrap_or_default(),
        }))
    }
}

struct Probe {
    setup: std::rc::Rc<Setup>,
}

impl Context for Probe {}

impl HttpContext for Probe {
    fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action {
        let path = hostcalls::get_map_value(MapType::HttpRequestHeaders, ":path")
            .ok()
            .flatten()
            .unwrap_or_default();
        let n = path
            .split_once("n=")
            .and_then(|(_, n)| n.parse::<u32>().ok())
            .unwrap_or(200)
            .clamp(5, 100_000);
        let body = if path.starts_with("/probe/verify") {
            verify_timings(&self.setup, n)
        } else if path.starts_with("/probe/request") {
            // A session cookie comes with the request (bench.py mints it
            // just before: one older than a minute would be sealed anew on
            // each request).
            let cookie = hostcalls::get_map_value(MapType::HttpRequestHeaders, "cookie")
                .ok()
                .flatten()
                .unwrap_or_default();
            request_timings(&self.setup, n, &cookie)
        } else if path.starts_with("/probe/sign") {
            sign_timings(&self.setup, n)
        } else {
            json!({"error": "GET /probe/verify?n=N, /probe/request?n=N or /probe/sign?n=N"})
        };
        let _ = hostcalls::send_http_response(
            200,
            vec![("content-type", "application/json")],
            Some(body.to_string().as_bytes()),
        );
        Action::Pause
    }
}

/// µs per token request authenticated by a client assertion (the
/// assertion's claims, its signature, the form): `private_key_jwt` with
/// the fixture EC and RSA-2048 keys, `client_secret_jwt`; and by Basic, for
/// comparison.
fn sign_timings(s: &Setup, n: u32) -> Value {
    use envoy_oidc::oidc::discovery::Discovery;
    use envoy_oidc::oidc::token;
    use envoy_oidc_testkit::tokens::{Key, private_jwk};
    let config = |extra: Value| -> Option<Config> {
        let mut c: Value = serde_json::from_slice(&s.filter).ok()?;
        let o = c.as_object_mut()?;
        o.insert("client_id".into(), json!("gw"));
        o.insert("client_secret".into(), json!("a-client-secret"));
        o.extend(extra.as_object()?.clone());
        Config::parse(c.to_string().as_bytes())
            .ok()
            .map(|l| l.config)
    };
    let rsa = || json!([private_jwk(Key::Rsa, "k")]);
    let configs = [
        ("basic", json!({})),
        ("hs256", json!({"client_auth": "client_secret_jwt"})),
        (
            "es256",
            json!({"client_auth": "private_key_jwt", "client_jwk": [private_jwk(Key::Ec, "k")]}),
        ),
        (
            "rs256",
            json!({"client_auth": "private_key_jwt", "client_jwk": rsa(), "client_alg": "RS256"}),
        ),
        (
            "ps256",
            json!({"client_auth": "private_key_jwt", "client_jwk": rsa(), "client_alg": "PS256"}),
        ),
    ];
    let mut built = Vec::new();
    for (name, extra) in configs {
        let Some(cfg) = config(extra) else {
            return json!({"error": format!("{name}: the configuration does not load")});
        };
        let Ok(discovery) = Discovery::parse(&s.discovery, &cfg.issuer) else {
            return json!({"error": "discovery"});
        };
        built.push((name, cfg, discovery));
    }
    let now = now_s();
    let mut closures: Vec<Box<dyn FnMut()>> = built
        .iter()
        .map(|(_, cfg, discovery)| {
            let client = token::configured_client(cfg);
            Box::new(move || {
                // Built, then signed as the engine sends it (the assertion
                // is signed only once the call is admitted).
                let r = token::request(
                    cfg,
                    discovery,
                    &client,
                    &[("grant_type", "refresh_token"), ("refresh_token", "r")],
                )
                .and_then(|mut r| cfg.client_auth.sign_into(&mut r, now).map(|()| r));
                black_box(r.is_ok());
            }) as Box<dyn FnMut()>
        })
        .collect();
    let mut cases: Vec<(&str, &mut dyn FnMut())> = built
        .iter()
        .map(|(name, _, _)| *name)
        .zip(closures.iter_mut())
        .map(|(name, f)| (name, f.as_mut() as &mut dyn FnMut()))
        .collect();
    Value::Object(interleaved(n, &mut cases))
}

/// Microseconds since the epoch, from the host (µs resolution in Envoy).
fn now_us() -> u64 {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_micros() as u64)
}

fn now_s() -> u64 {
    hostcalls::get_current_time()
        .unwrap_or(SystemTime::UNIX_EPOCH)
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Runs each named case `n` times in total, in `ROUNDS` interleaved rounds,
/// and returns the median per-round µs per call of each.
const ROUNDS: u32 = 5;

fn interleaved(n: u32, cases: &mut [(&str, &mut dyn FnMut())]) -> Map<String, Value> {
    let per_round = (n / ROUNDS).max(1);
    for (_, f) in cases.iter_mut() {
        f(); // warm-up: tier-up and first-use allocations
    }
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); cases.len()];
    for _ in 0..ROUNDS {
        for (i, (_, f)) in cases.iter_mut().enumerate() {
            let t0 = now_us();
            for _ in 0..per_round {
                f();
            }
            samples[i].push((now_us() - t0) as f64 / per_round as f64);
        }
    }
    let mut out = Map::new();
    for ((name, _), mut s) in cases.iter().zip(samples) {
        s.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        let median = s[s.len() / 2];
        out.insert(
            (*name).to_string(),
            json!((median * 1000.0).round() / 1000.0),
        );
    }
    out
}

fn split(token: &str) -> (&str, Vec<u8>) {
    let (input, sig) = token.rsplit_once('.').unwrap_or_default();
    (input, URL_SAFE_NO_PAD.decode(sig).unwrap_or_default())
}

fn key<'a>(set: &'a KeySet, kid: &str) -> Option<&'a PublicKey> {
    set.keys
        .iter()
        .find(|k| k.kid.as_deref() == Some(kid))
        .map(|k| &k.key)
}

fn verify_timings(s: &Setup, n: u32) -> Value {
    let Ok(parsed) = KeySet::parse(&s.jwks) else {
        return json!({"error": "jwks"});
    };
    let set = parsed.set;
    let (Some(rsa_key), Some(ec_key)) = (key(&set, "test-rsa"), key(&set, "test-ec")) else {
        return json!({"error": "keys test-rsa and test-ec wanted"});
    };
    let PublicKey::Rsa(fast) = rsa_key else {
        return json!({"error": "test-rsa is not RSA"});
    };
    // The `rsa` crate's key for the same JWK: the filter's RS256 path
    // before bench/ (the crate is no longer in the filter's module).
    let Some(reference) = rsa_crate_key(&s.jwks, "test-rsa") else {
        return json!({"error": "test-rsa: no n/e for the rsa crate"});
    };
    let (rs_input, rs_sig) = split(&s.rs256);
    let (es_input, es_sig) = split(&s.es256);
    // The `p256` crate's key for the same JWK: the filter's ES256 path
    // before bignum/src/p256.rs (the crate now only signs, in the filter).
    let Some(p256_reference) = p256_crate_key(&s.jwks, "test-ec") else {
        return json!({"error": "test-ec: no x/y for the p256 crate"});
    };
    // ES384: our path (bignum/src/ecdsa.rs) and the `p384` crate's, as the
    // filter called it before.
    let es384_set = KeySet::parse(&s.es384_jwks).map(|p| p.set);
    let Some(ec384_key) = es384_set
        .as_ref()
        .ok()
        .and_then(|set| key(set, "test-ec384"))
    else {
        return json!({"error": "es384_jwks: no key test-ec384"});
    };
    let Some(p384_reference) = p384_crate_key(&s.es384_jwks, "test-ec384") else {
        return json!({"error": "test-ec384: no x/y for the p384 crate"});
    };
    let (es384_input, es384_sig) = split(&s.es384);
    let ok = [(); 7].map(|()| Cell::new(true));
    let mut before = || {
        // The filter's RS256 arm before bench/ (rsa 0.10, crypto-bigint BoxedUint).
        use rsa::Pkcs1v15Sign;
        let v = reference
            .verify(
                Pkcs1v15Sign::new::<Sha256>(),
                &Sha256::digest(rs_input.as_bytes()),
                black_box(&rs_sig),
            )
            .is_ok();
        ok[0].set(ok[0].get() && v);
    };
    let mut after = || {
        let v = verify_signature(Alg::RS256, rsa_key, rs_input.as_bytes(), black_box(&rs_sig));
        ok[1].set(ok[1].get() && v);
    };
    let mut es = || {
        let v = verify_signature(Alg::ES256, ec_key, es_input.as_bytes(), black_box(&es_sig));
        ok[2].set(ok[2].get() && v);
    };
    let mut es_before = || {
        use p256::ecdsa::signature::Verifier;
        let v = p256::ecdsa::Signature::from_slice(black_box(&es_sig))
            .is_ok_and(|sig| p256_reference.verify(es_input.as_bytes(), &sig).is_ok());
        ok[4].set(ok[4].get() && v);
    };
    let mut es384 = || {
        let v = verify_signature(
            Alg::ES384,
            ec384_key,
            es384_input.as_bytes(),
            black_box(&es384_sig),
        );
        ok[5].set(ok[5].get() && v);
    };
    let mut es384_before = || {
        use p384::ecdsa::signature::Verifier;
        let v = p384::ecdsa::Signature::from_slice(black_box(&es384_sig))
            .is_ok_and(|sig| p384_reference.verify(es384_input.as_bytes(), &sig).is_ok());
        ok[6].set(ok[6].get() && v);
    };
    // EdDSA: bench/mint.mjs makes no Ed25519 token, so a key and a
    // signature over the RS256 token's signing input are made here.
    let ed = ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new([7; 32]));
    let ed_key = PublicKey::Ed25519(ed.pk);
    let ed_sig = ed.sk.sign(rs_input.as_bytes(), None).to_vec();
    let mut eddsa = || {
        let v = verify_signature(Alg::EdDSA, &ed_key, rs_input.as_bytes(), black_box(&ed_sig));
        ok[3].set(ok[3].get() && v);
    };
    let mut out = interleaved(
        n,
        &mut [
            ("rs256_rsa_crate_us", &mut before),
            ("rs256_fast_path_us", &mut after),
            ("es256_p256_crate_us", &mut es_before),
            ("es256_us", &mut es),
            ("es384_p384_crate_us", &mut es384_before),
            ("es384_us", &mut es384),
            ("eddsa_ed25519_us", &mut eddsa),
        ],
    );
    let mut jwks = || {
        black_box(
            KeySet::parse(black_box(&s.jwks))
                .map(|p| p.set.keys.len())
                .ok(),
        );
    };
    let mut jwt = || {
        black_box(
            Jwt::parse(black_box(&s.rs256))
                .map(|j| j.claims.contains_key("iss"))
                .ok(),
        );
    };
    out.extend(interleaved(
        (n / 4).max(ROUNDS),
        &mut [
            ("jwks_parse_rsa_and_ec_key_us", &mut jwks),
            ("jwt_parse_us", &mut jwt),
        ],
    ));
    out.insert("rsa_key_bits".into(), json!(fast.bits()));
    out.insert("all_verified".into(), json!(ok.iter().all(Cell::get)));
    out.insert("iterations".into(), json!(n));
    Value::Object(out)
}

/// The `rsa` crate's public key for the JWK named `kid`.
/// The base64url members of the JWK named `kid`, decoded.
fn jwk_members<const K: usize>(jwks: &[u8], kid: &str, names: [&str; K]) -> Option<[Vec<u8>; K]> {
    let set: Value = serde_json::from_slice(jwks).ok()?;
    let jwk = set["keys"].as_array()?.iter().find(|k| k["kid"] == kid)?;
    let members: Option<Vec<Vec<u8>>> = names
        .iter()
        .map(|name| URL_SAFE_NO_PAD.decode(jwk[*name].as_str()?).ok())
        .collect();
    members?.try_into().ok()
}

fn rsa_crate_key(jwks: &[u8], kid: &str) -> Option<rsa::PublicKey> {
    let [n, e] = jwk_members(jwks, kid, ["n", "e"])?;
    let num = |bytes: &[u8]| rsa::BoxedUint::from_be_slice_vartime(bytes);
    rsa::PublicKey::new(num(&n), num(&e)).ok()
}

fn p256_crate_key(jwks: &[u8], kid: &str) -> Option<p256::ecdsa::VerifyingKey> {
    p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1_point(jwks, kid)?).ok()
}

fn p384_crate_key(jwks: &[u8], kid: &str) -> Option<p384::ecdsa::VerifyingKey> {
    p384::ecdsa::VerifyingKey::from_sec1_bytes(&sec1_point(jwks, kid)?).ok()
}

/// The uncompressed SEC1 point of the EC JWK named `kid`.
fn sec1_point(jwks: &[u8], kid: &str) -> Option<Vec<u8>> {
    let [x, y] = jwk_members(jwks, kid, ["x", "y"])?;
    Some([&[0x04][..], &x, &y].concat())
}

/// The engine's host inside the probe: a fixed clock, its own store, IdP
/// calls recorded (the probe answers them from the setup), decisions
/// recorded instead of applied to the probe's own request.
#[derive(Default)]
struct ProbeHost {
    now: u64,
    store: EnvoyStore,
    /// Calls dispatched and not answered yet, with their tokens.
    calls: Vec<(u32, IdpRequest)>,
    dispatched: u32,
    /// What the last decision applied did with its request (`None`: none
    /// applied since it was last reset).
    applied: Option<Applied>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Applied {
    Forwarded,
    Answered(u32),
}

impl Host for ProbeHost {
    fn now(&self) -> u64 {
        self.now
    }

    fn store(&mut self) -> &mut dyn SharedStore {
        &mut self.store
    }

    fn dispatch(&mut self, request: &IdpRequest) -> Result<u32, String> {
        self.dispatched += 1;
        self.calls.push((self.dispatched, request.clone()));
        Ok(self.dispatched)
    }

    fn apply(&mut self, _: ContextId, decision: &Decision, _: bool) -> bool {
        let applied = match &decision.action {
            envoy_oidc::action::Action::Respond(r) => Applied::Answered(r.status),
            envoy_oidc::action::Action::Continue { .. } => Applied::Forwarded,
        };
        self.applied = Some(applied);
        applied == Applied::Forwarded
    }

    fn add_response_header(&mut self, _: ContextId, _: &str, _: &str) {}

    fn set_tick_period(&mut self, _: u64) {}

    fn log(&mut self, _: Level, _: &str) {}

    fn logs(&self, _: Level) -> bool {
        false
    }

    fn define_counter(&mut self, _: &str) -> Option<u32> {
        None
    }

    fn increment_counter(&mut self, _: u32, _: u64) {}

    fn request_body(&mut self, _: ContextId, _: usize) -> Option<Vec<u8>> {
        None
    }

    fn property(&mut self, _: ContextId, _: &[&str]) -> Result<Option<Vec<u8>>, HostFailure> {
        Ok(None)
    }

    fn set_filter_state(&mut self, _: ContextId, _: &str, _: &[u8]) {}
}

/// The IdP's answer to a call, from the setup: the discovery document,
/// the token endpoint's reply (a POST), else the JWKS.
fn idp_reply(s: &Setup, request: &IdpRequest) -> IdpReply {
    let header = |name: &str| {
        request
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_default()
    };
    let path = header(":path");
    let body = if path.ends_with("/openid-configuration") {
        &s.discovery
    } else if path.ends_with("/userinfo") {
        &s.userinfo
    } else if header(":method") == "POST" {
        &s.cc_reply
    } else {
        &s.jwks
    };
    IdpReply {
        status: Some(200),
        body: body.clone(),
        retry_after: None,
    }
}

/// The context of the probe's requests to the engine.
const REQUEST: ContextId = 1;

/// Hands `req` to the engine as a new request, answers the IdP calls it
/// makes (as the host delivers replies, to the context that made them)
/// until it is decided, and lets it go: whether it was forwarded.
fn decide(engine: &mut Engine, host: &mut ProbeHost, s: &Setup, req: RequestView) -> bool {
    host.applied = None;
    engine.handle_request(host, REQUEST, req);
    // Discovery, JWKS, a token exchange: a handful at most.
    for _ in 0..8 {
        let Some((token, call)) = host.calls.pop() else {
            break;
        };
        engine.handle_reply(host, REQUEST, token, &idp_reply(s, &call));
    }
    engine.handle_done(host, REQUEST);
    host.applied == Some(Applied::Forwarded)
}

/// `token` with one character of its signature changed: the same length
/// and header, a signature that no longer verifies. The eighth character
/// from the end: inside the last 64 bytes, so that `cache::tail_key` gives
/// it a key of its own (a change further in would share the valid token's
/// key and time a whole-token comparison more), and not the last, whose
/// low bits are base64url padding.
fn forge(token: &str) -> String {
    let mut bytes = token.as_bytes().to_vec();
    let at = bytes.len().saturating_sub(8);
    if let Some(c) = bytes.get_mut(at) {
        *c = if *c == b'A' { b'B' } else { b'A' };
    }
    String::from_utf8(bytes).unwrap_or_default()
}

fn request_of(auth: &str) -> RequestView {
    request_with("authorization", auth)
}

/// wrk's request with one more header.
fn request_with(name: &str, value: &str) -> RequestView {
    RequestView::new(vec![
        (":method".into(), b"GET".to_vec()),
        (":path".into(), b"/api/resource".to_vec()),
        (":authority".into(), b"127.0.0.1:10000".to_vec()),
        (":scheme".into(), b"http".to_vec()),
        ("user-agent".into(), b"wrk".to_vec()),
        (name.into(), value.as_bytes().to_vec()),
    ])
}

/// An engine for the filter configuration `filter` (JSON), over a probe
/// host whose clock reads now.
fn engine_for(filter: &[u8]) -> Option<(Engine, ProbeHost)> {
    let loaded = Config::parse(filter).ok()?;
    let mut host = ProbeHost {
        now: now_s(),
        ..ProbeHost::default()
    };
    let engine = Engine::new(loaded.config, "probe/", [7; 72], 1, &mut host);
    Some((engine, host))
}

/// One request to a warm engine, decided at once (cloned in: the engine
/// takes it, as from the shell); `all_ok` is kept false once one is not
/// forwarded.
fn forward(engine: &mut Engine, host: &mut ProbeHost, req: &RequestView, all_ok: &Cell<bool>) {
    let forwarded = engine.handle_request(host, REQUEST, black_box(req.clone()));
    all_ok.set(all_ok.get() && forwarded);
}

/// A case that hands `decide` the requests of `reqs` in turn.
fn in_turn<'a>(reqs: &'a [RequestView], decide: impl Fn(&RequestView) + 'a) -> impl FnMut() + 'a {
    let mut next = 0;
    move || {
        if let Some(req) = reqs.get(next) {
            decide(req);
        }
        next = (next + 1) % reqs.len().max(1);
    }
}

/// A first-seen RS256 token's whole decision (JWS parse, claims checks,
/// the signature, the cache insert and an eviction), beside the signature
/// alone: an engine whose token cache holds one token, given two tokens
/// in turn, so that each request misses; and given 256 tokens in turn.
fn first_seen_timings(s: &Setup, n: u32, all_ok: &Cell<bool>) -> Map<String, Value> {
    let mut filter = serde_json::from_slice::<Value>(&s.filter).unwrap_or_default();
    filter["token_cache_size"] = json!(1);
    let Some((mut engine, mut host)) = engine_for(filter.to_string().as_bytes()) else {
        all_ok.set(false);
        return Map::new();
    };
    let bearer = |t: &String| request_of(&format!("Bearer {t}"));
    let many: Vec<RequestView> = s.rs256_many.iter().map(bearer).collect();
    let two = [bearer(&s.rs256), many.first().cloned().unwrap_or_default()];
    // Discovery and JWKS fetched once.
    all_ok.set(all_ok.get() && decide(&mut engine, &mut host, s, two[0].clone()));
    let keys = KeySet::parse(&s.jwks).map(|p| p.set).ok();
    let (input, sig) = split(&s.rs256);
    let key = keys.as_ref().and_then(|k| key(k, "test-rsa"));
    // The cases drive the one engine: shared through a RefCell.
    let state = std::cell::RefCell::new((engine, host));
    let decide_one = |req: &RequestView| {
        let (engine, host) = &mut *state.borrow_mut();
        forward(engine, host, req, all_ok);
    };
    let mut core = in_turn(&two, decide_one);
    // The same with 256 tokens in turn: each token's bytes, and the
    // entry it evicts, last touched 255 decisions earlier (closer to what
    // Envoy hands the filter: a new token in a new buffer every request).
    let mut core_many = in_turn(&many, decide_one);
    let mut signature = || {
        let ok = key.is_some_and(|k| verify_signature(Alg::RS256, k, input.as_bytes(), &sig));
        all_ok.set(all_ok.get() && black_box(ok));
    };
    interleaved(
        n,
        &mut [
            ("core_first_seen_rs256_us", &mut core),
            ("core_first_seen_rs256_256_tokens_us", &mut core_many),
            ("rs256_signature_alone_us", &mut signature),
        ],
    )
}

/// The cached bearer token's decision under configurations that make it
/// do more than the benchmark's (`filter`): each one key or a few on top,
/// its own engine warmed with the token first. `search_user_info` brings
/// its userinfo answer (`USERINFO`, cached) into the claims.
const FEATURES: &[(&str, &str)] = &[
    (
        "core_cached_bearer_userinfo_us",
        r#"{"search_user_info": true, "upstream_user_info_header": "x-userinfo"}"#,
    ),
    (
        "core_cached_bearer_claim_headers_us",
        r#"{"upstream_headers_claims": ["sub", "client_id", "scope"],
            "upstream_headers_names": ["x-sub", "x-client-id", "x-scope"]}"#,
    ),
    (
        "core_cached_bearer_policy_us",
        r#"{"scopes_required": ["kongresource/scope1"], "audience_claim": ["client_id"],
            "audience_required": ["bench-client"]}"#,
    ),
    (
        "core_cached_bearer_token_header_us",
        r#"{"upstream_access_token_header": "x-access-token"}"#,
    ),
    (
        "core_cached_bearer_filter_state_us",
        r#"{"identity_filter_state": true}"#,
    ),
    (
        "core_cached_bearer_rules_us",
        r#"{"rules": [{"match": {"paths": ["/admin"]}, "scopes_required": ["admin"]},
                      {"match": {"paths": ["/api"]}, "scopes_required": ["kongresource/scope2"]}]}"#,
    ),
];

/// A case of `interleaved`, boxed to sit in a list of cases.
type Case<'a> = Box<dyn FnMut() + 'a>;

fn feature_timings(s: &Setup, n: u32, all_ok: &Cell<bool>) -> Map<String, Value> {
    let bearer = request_of(&format!("Bearer {}", s.rs256));
    let mut engines = Vec::new();
    for (name, extra) in FEATURES {
        let mut filter = serde_json::from_slice::<Value>(&s.filter).unwrap_or_default();
        let extra = serde_json::from_str::<Map<String, Value>>(extra).unwrap_or_default();
        if let Some(f) = filter.as_object_mut() {
            f.extend(extra);
        }
        let Some((mut engine, mut host)) = engine_for(filter.to_string().as_bytes()) else {
            all_ok.set(false);
            continue;
        };
        // Discovery, JWKS (and userinfo) fetched once.
        all_ok.set(all_ok.get() && decide(&mut engine, &mut host, s, bearer.clone()));
        engines.push((*name, std::cell::RefCell::new((engine, host))));
    }
    let mut cases: Vec<(&str, Case)> = engines
        .iter()
        .map(|(name, state)| {
            let bearer = &bearer;
            let case = move || {
                let (engine, host) = &mut *state.borrow_mut();
                forward(engine, host, bearer, all_ok);
            };
            (*name, Box::new(case) as Case)
        })
        .collect();
    let mut refs: Vec<(&str, &mut dyn FnMut())> = cases
        .iter_mut()
        .map(|(name, case)| (*name, &mut **case as &mut dyn FnMut()))
        .collect();
    interleaved(n, &mut refs)
}

fn request_timings(s: &Setup, n: u32, session_cookie: &str) -> Value {
    let Some((mut engine, mut host)) = engine_for(&s.filter) else {
        return json!({"error": "filter config refused"});
    };
    let bearer = request_of(&format!("Bearer {}", s.rs256));
    // First sight: fetch discovery and JWKS, verify and cache.
    if !decide(&mut engine, &mut host, s, bearer.clone()) {
        return json!({"error": "bearer token refused (or discovery, jwks)"});
    }
    // Client credentials: exchanged once (the reply as the token endpoint's).
    let basic = request_of(&format!(
        "Basic {}",
        STANDARD.encode("bench-client:bench-secret")
    ));
    let calls = host.dispatched;
    let cc_ok = decide(&mut engine, &mut host, s, basic.clone()) && host.dispatched == calls + 1;
    let all_ok = Cell::new(cc_ok);

    let mut headers = || {
        black_box(
            hostcalls::get_map_bytes(MapType::HttpRequestHeaders)
                .map(|h| h.len())
                .ok(),
        );
    };
    let mut set_header = || {
        let _ = hostcalls::set_map_value(
            MapType::HttpRequestHeaders,
            "x-probe",
            Some(black_box(s.rs256.as_str())),
        );
    };
    let mut remove_header = || {
        let _ = hostcalls::remove_map_value(MapType::HttpRequestHeaders, black_box("x-absent"));
    };
    let mut time = || {
        black_box(hostcalls::get_current_time().ok());
    };
    let mut sha = || {
        black_box(Sha256::digest(black_box(s.rs256.as_bytes())));
    };
    let mut view = || {
        let v = RequestView::new(black_box(vec![
            (":path".into(), b"/api/resource".to_vec()),
            ("authorization".into(), s.rs256.as_bytes().to_vec()),
        ]));
        black_box(v.get("authorization").map(str::len));
    };
    // Cached: decided at once, no call, nothing left for `handle_done`.
    let mut core_bearer = || forward(&mut engine, &mut host, &bearer, &all_ok);
    let mut out = interleaved(
        n,
        &mut [
            ("host_get_request_headers_us", &mut headers),
            ("host_set_request_header_us", &mut set_header),
            ("host_remove_request_header_us", &mut remove_header),
            ("host_get_current_time_us", &mut time),
            ("sha256_of_token_us", &mut sha),
            ("request_view_build_and_lookup_us", &mut view),
            ("core_cached_bearer_us", &mut core_bearer),
        ],
    );
    let mut core_cc = || forward(&mut engine, &mut host, &basic, &all_ok);
    let mut claims_json = || {
        let part = s.rs256.split('.').nth(1).unwrap_or_default();
        let bytes = URL_SAFE_NO_PAD.decode(part).unwrap_or_default();
        // As the filter holds them: indexed, `iss` read.
        black_box(JsonObject::from_vec(bytes).map(|o| o.get("iss").is_some()));
    };
    out.extend(interleaved(
        n,
        &mut [
            ("core_cached_client_credentials_us", &mut core_cc),
            ("claims_base64_and_json_parse_us", &mut claims_json),
        ],
    ));
    // A session cookie: opened once, then from the worker's session cache.
    let session = request_with("cookie", session_cookie);
    let mut core_session = || forward(&mut engine, &mut host, &session, &all_ok);
    out.extend(interleaved(
        n,
        &mut [("core_cached_session_us", &mut core_session)],
    ));
    // The same cookie a minute later: the session's use is noted (`seen_at`)
    // in a new sealed cookie, once a minute for a browser, which keeps it;
    // on every request for a client that keeps no cookies.
    host.now += 61;
    let mut core_resealed = || forward(&mut engine, &mut host, &session, &all_ok);
    out.extend(interleaved(
        n,
        &mut [("core_session_sealed_anew_us", &mut core_resealed)],
    ));
    host.now -= 61;
    // A bypass path, no credential: the decision the Envoy ladder prices at
    // ~1.5 µs (BENCHMARKS.md, "Our request, step by step"), warm.
    let public = RequestView::new(vec![
        (":method".into(), b"GET".to_vec()),
        (":path".into(), b"/public/x".to_vec()),
        (":authority".into(), b"127.0.0.1:10000".to_vec()),
        (":scheme".into(), b"http".to_vec()),
        ("user-agent".into(), b"wrk".to_vec()),
    ]);
    let mut core_bypass = || forward(&mut engine, &mut host, &public, &all_ok);
    out.extend(interleaved(n, &mut [("core_bypass_us", &mut core_bypass)]));
    // A forged token replayed: the token with one signature character
    // changed, refused once (signature checked), then from the worker's
    // refused-token cache: the 401 decided, not sent (the probe's host
    // applies nothing).
    const REFUSED: Applied = Applied::Answered(401);
    let forged = request_of(&format!("Bearer {}", forge(&s.rs256)));
    let refused_once =
        !decide(&mut engine, &mut host, s, forged.clone()) && host.applied == Some(REFUSED);
    all_ok.set(all_ok.get() && refused_once);
    let mut core_forged = || {
        host.applied = None;
        engine.handle_request(&mut host, REQUEST, black_box(forged.clone()));
        // Answered 401 at once: not parked on an IdP call.
        all_ok.set(all_ok.get() && host.applied == Some(REFUSED) && host.calls.is_empty());
    };
    out.extend(interleaved(
        n,
        &mut [("core_refused_forged_us", &mut core_forged)],
    ));
    out.extend(feature_timings(s, n, &all_ok));
    out.extend(first_seen_timings(s, n, &all_ok));
    out.insert("token_bytes".into(), json!(s.rs256.len()));
    out.insert("all_as_expected".into(), json!(all_ok.get()));
    out.insert("iterations".into(), json!(n));
    Value::Object(out)
}
