//! Prints a `Cookie` header value carrying a session sealed for a filter
//! configuration: the benchmark's session-cookie scenario rides it.
//!
//! Usage: `cargo run --example mint_session -- '<filter config JSON>' <access token>`
//! The session lasts as long as the token (`exp`) and the configuration's
//! timeouts allow; it has no refresh token, so it is never refreshed.

use envoy_oidc::config::Config;
use envoy_oidc::session::Session;
use envoy_oidc::session::cookie;

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [config, token] = args.as_slice() else {
        return Err("usage: mint_session '<filter config JSON>' <access token>".into());
    };
    let config = Config::parse(config.as_bytes())
        .map_err(|e| e.to_string())?
        .config;
    let exp = envoy_oidc::oidc::token::unverified_exp(token).ok_or("the token has no exp")?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs();
    let session = Session {
        sid: "bench-session".into(),
        access_token: token.as_str().into(),
        refresh_token: None,
        id_token: None,
        identity: None,
        scope: None,
        expires_at: exp,
        obtained_at: now,
        created_at: now,
        renewed_at: now,
        seen_at: now,
    };
    let name = &config.session.cookie_name;
    let json = serde_json::to_vec(&session).map_err(|e| e.to_string())?;
    let sealed = config
        .sealer(&config.session.secrets)
        .seal(name, &json)
        .ok_or("could not seal")?;
    let chunks = cookie::split(name, &sealed).ok_or("session too large")?;
    let pairs: Vec<String> = chunks.iter().map(|(n, v)| format!("{n}={v}")).collect();
    println!("{}", pairs.join("; "));
    Ok(())
}
