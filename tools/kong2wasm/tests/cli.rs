//! kong2wasm on the seed's two Kong configurations (FACTS: client
//! credentials and authorization code against Cognito), verbatim and as
//! KongPlugin manifests: exact outputs (tests/golden/), accepted by the
//! filter's parser, and the refusal of Kong parameters we do not support.
//!
//! `UPDATE_GOLDEN=1 cargo test -p kong2wasm` rewrites tests/golden/ after an
//! intended change (then review the diff). tests/e2e/deploy/ validates the
//! golden Istio manifests against Istio's resource models and the golden
//! configs against config.schema.json.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use envoy_oidc::config::Config;
use serde_json::{Value, json};

const SHA: &str = "c7da25f73edd1985d62c6f2e99dc43a266dd55a4f210573f1f28cde520166a9c";
const HOSTED_UI: &str = "my-domain.auth.us-west-1.amazoncognito.com";

fn here() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests")
}

fn kong2wasm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kong2wasm"))
        .args(args)
        .current_dir(here())
        .output()
        .expect("run kong2wasm")
}

fn ok(args: &[&str]) -> String {
    let out = kong2wasm(args);
    assert!(
        out.status.success(),
        "kong2wasm {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn golden(name: &str, actual: &str) {
    let path = here().join("golden").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 writes it)", path.display()));
    assert_eq!(actual, expected, "output differs from {}", path.display());
}

fn parses(config: &Value) {
    Config::parse(&serde_json::to_vec(config).unwrap())
        .unwrap_or_else(|e| panic!("the filter refuses {config}: {e}"));
}

fn yaml_docs(text: &str) -> Vec<Value> {
    use serde::Deserialize;
    serde_norway::Deserializer::from_str(text)
        .map(|d| Value::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

#[test]
fn seed_client_credentials_config_verbatim() {
    let out = ok(&[
        "--output",
        "config",
        "fixtures/seed-client-credentials.yaml",
    ]);
    golden("seed-client-credentials.json", &out);
    let c: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        c,
        json!({
            "issuer": "https://cognito-idp.<aws-region>.amazonaws.com/<user-pool-id>/.well-known/openid-configuration",
            "scopes": ["kongresource/scope1"],
            // Kong's default places, made explicit (without the body).
            "bearer_token_param_type": ["header", "query"],
            "client_credentials_param_type": ["header", "query"],
            // Kong's defaults where ours differ: no leeway, 10 s calls.
            "leeway": 0,
            "idp_timeout_ms": 10000,
            "idp_clusters": {
                "cognito-idp.<aws-region>.amazonaws.com": "outbound|443||cognito-idp.<aws-region>.amazonaws.com"
            }
        })
    );
    parses(&c);
}

#[test]
fn seed_authorization_code_config_verbatim() {
    let out = ok(&[
        "--output",
        "config",
        "fixtures/seed-authorization-code.yaml",
    ]);
    golden("seed-authorization-code.json", &out);
    let c: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(c["client_id"], json!(["<your client id>"]));
    assert_eq!(c["client_secret"], json!(["<your client secret>"]));
    assert_eq!(
        c["redirect_uri"],
        json!(["https://<_DataPlane_PublicIP_>/oidcroute/get"])
    );
    parses(&c);
    let loaded = Config::parse(out.as_bytes()).unwrap();
    assert!(
        loaded
            .config
            .auth_methods
            .contains(envoy_oidc::config::AuthMethod::AuthorizationCode),
        "client_id + redirect_uri turn the browser flow on"
    );
}

fn istio_for(fixture: &str, golden_name: &str) -> Vec<Value> {
    let path = format!("fixtures/{fixture}");
    let out = ok(&[
        "--output",
        "istio",
        "--idp-host",
        HOSTED_UI,
        "--sha256",
        SHA,
        &path,
    ]);
    golden(golden_name, &out);
    // The WasmPlugin carries exactly the config `--output config` prints.
    let config: Value =
        serde_json::from_str(&ok(&["--output", "config", "--idp-host", HOSTED_UI, &path])).unwrap();
    let docs = yaml_docs(&out);
    assert_eq!(docs[0]["kind"], "WasmPlugin");
    assert_eq!(docs[0]["spec"]["pluginConfig"], config);
    assert_eq!(docs[0]["spec"]["phase"], "AUTHN");
    assert_eq!(docs[0]["spec"]["sha256"], SHA);
    assert!(
        docs[0]["spec"]["url"]
            .as_str()
            .unwrap()
            .starts_with("oci://")
    );
    parses(&config);
    // One ServiceEntry and DestinationRule per IdP host, named as the config's clusters.
    let clusters = config["idp_clusters"].as_object().unwrap();
    assert_eq!(clusters.len(), 2, "issuer host and hosted-UI domain");
    for (host, cluster) in clusters {
        assert_eq!(cluster, &json!(format!("outbound|443||{host}")));
        assert!(
            docs.iter()
                .any(|d| d["kind"] == "ServiceEntry" && d["spec"]["hosts"] == json!([host]))
        );
        assert!(docs.iter().any(|d| d["kind"] == "DestinationRule"
            && d["spec"]["host"] == json!(host)
            && d["spec"]["trafficPolicy"]["tls"]["mode"] == "SIMPLE"));
    }
    assert_eq!(docs.len(), 5);
    docs
}

#[test]
fn seed_client_credentials_kongplugin_to_istio() {
    let docs = istio_for(
        "kongplugin-client-credentials.yaml",
        "kongplugin-client-credentials.yaml",
    );
    assert_eq!(docs[0]["metadata"]["name"], "oidc-client-credentials");
    assert_eq!(
        docs[0]["spec"]["pluginConfig"]["scopes"],
        json!(["kongresource/scope1"])
    );
}

#[test]
fn seed_authorization_code_kongplugin_to_istio() {
    // The file also holds the Ingress: only the KongPlugin is read.
    let docs = istio_for(
        "kongplugin-authorization-code.yaml",
        "kongplugin-authorization-code.yaml",
    );
    assert_eq!(docs[0]["metadata"]["name"], "oidc-authorization-code");
    assert_eq!(
        docs[0]["spec"]["pluginConfig"]["redirect_uri"],
        json!(["https://203.0.113.7/oidcroute/get"])
    );
}

/// Per-route plugins, as a deck file and as Ingresses naming KongPlugins
/// (the seed's two configurations among them): one configuration, the
/// same from both, with a rule per route (tests/e2e/kong_routes.test.mjs
/// runs it in Envoy, route by route).
#[test]
fn per_route_plugins_from_deck_and_ingress_become_one_configuration_with_rules() {
    let deck = ok(&["--output", "config", "fixtures/deck-routes.yaml"]);
    golden("deck-routes.json", &deck);
    let ingress = ok(&["--output", "config", "fixtures/ingress-routes.yaml"]);
    let deck: Value = serde_json::from_str(&deck).unwrap();
    let ingress: Value = serde_json::from_str(&ingress).unwrap();
    assert_eq!(deck, ingress, "the same routes, the same configuration");
    parses(&deck);
    let rules = deck["rules"].as_array().unwrap();
    // Kong's route paths are prefixes inside a segment too: `*`.
    let rule = |path: &str| {
        rules
            .iter()
            .find(|r| r["match"]["paths"] == json!([format!("{path}*")]))
            .unwrap_or_else(|| panic!("a rule for {path}: {rules:?}"))
    };
    assert_eq!(rule("/oidcroute/public")["bypass"], json!(true));
    assert_eq!(
        rule("/oidcroute/admin")["groups_required"],
        json!(["admins"])
    );
    assert_eq!(
        rule("/oidcroute/admin")["match"]["methods"],
        json!(["GET", "POST"])
    );
    assert_eq!(
        rule("/oidcroute/cc")["scopes"],
        json!(["kongresource/scope1"])
    );
    // As in Kong, the admin route's plugin has /oidcroute/administration
    // too (its prefix ends inside a segment), not the laxer /oidcroute's.
    let loaded = Config::parse(&serde_json::to_vec(&deck).unwrap()).unwrap();
    let rule_of = |path: &str| {
        let req = envoy_oidc::request::RequestView::new(vec![
            (":method".to_string(), b"GET".to_vec()),
            (":path".to_string(), path.as_bytes().to_vec()),
        ]);
        let (id, _) = loaded.config.rule_for(&req).unwrap();
        loaded.config.rule(id).unwrap().groups_required.clone()
    };
    assert_eq!(
        rule_of("/oidcroute/administration"),
        rule_of("/oidcroute/admin/users")
    );
    assert_ne!(
        rule_of("/oidcroute/administration"),
        rule_of("/oidcroute/get")
    );
    // More specific routes first: /oidcroute last.
    assert_eq!(
        rules.last().unwrap()["match"]["paths"],
        json!(["/oidcroute*"])
    );
    // The seed's client-credentials plugin has no client: no login there.
    assert!(
        !rule("/oidcroute/cc")["auth_methods"]
            .as_array()
            .unwrap()
            .contains(&json!("authorization_code"))
    );
    // Plugins that differ in a whole-filter key are reported by name.
    let text = std::fs::read_to_string(here().join("fixtures/deck-routes.yaml"))
        .unwrap()
        .replacen(
            "scopes: [kongresource/scope1]",
            "scopes: [kongresource/scope1]\n              leeway: 5",
            1,
        );
    let dir = std::env::temp_dir().join(format!("kong2wasm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("deck.yaml");
    std::fs::write(&file, text).unwrap();
    let out = kong2wasm(&["--output", "config", file.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("`leeway`") && err.contains("route oidcroute-cc"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn default_output_is_the_config_then_the_istio_manifests() {
    let out = ok(&["fixtures/kongplugin-client-credentials.yaml"]);
    let (config, istio) = out.split_once("\n---\n").expect("two parts");
    let json_text: String = config
        .lines()
        .filter(|l| !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    let c: Value = serde_json::from_str(&json_text).unwrap();
    parses(&c);
    assert_eq!(yaml_docs(istio)[0]["spec"]["pluginConfig"], c);
}

#[test]
fn cognito_without_the_hosted_ui_domain_gets_a_note() {
    let out = kong2wasm(&[
        "--output",
        "config",
        "fixtures/kongplugin-client-credentials.yaml",
    ]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--idp-host"), "{err}");
    let out = kong2wasm(&[
        "--output",
        "config",
        "--idp-host",
        HOSTED_UI,
        "fixtures/kongplugin-client-credentials.yaml",
    ]);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("--idp-host"));
}

#[test]
fn unsupported_kong_parameters_are_refused_by_name() {
    let out = kong2wasm(&["fixtures/kongplugin-unsupported.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "nothing printed on refusal");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("does not support: consumer_claim, max_age"),
        "{err}"
    );

    let out = ok(&[
        "--output",
        "config",
        "--ignore-unsupported",
        "fixtures/kongplugin-unsupported.yaml",
    ]);
    let c: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        c["idp_timeout_ms"],
        json!(3000),
        "Kong `timeout` → idp_timeout_ms"
    );
    assert_eq!(c["auth_methods"], json!(["bearer"]));
    assert_eq!(
        c["groups_required"],
        json!(["admins"]),
        "Kong's group rule carries over"
    );
    for dropped in ["ssl_verify", "timeout", "max_age", "consumer_claim"] {
        assert!(c.get(dropped).is_none(), "{dropped}");
    }
    parses(&c);
}

#[test]
fn plain_envoy_gets_one_named_cluster() {
    let out = ok(&[
        "--output",
        "config",
        "--idp-cluster",
        "cognito",
        "fixtures/seed-client-credentials.yaml",
    ]);
    let c: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(c["idp_cluster"], "cognito");
    assert!(c.get("idp_clusters").is_none());
    parses(&c);
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(kong2wasm(&[]).status.code(), Some(2));
    assert_eq!(kong2wasm(&["--output", "xml", "x"]).status.code(), Some(2));
    assert_eq!(kong2wasm(&["--sha256", "abc", "x"]).status.code(), Some(2));
    assert_eq!(kong2wasm(&["--help"]).status.code(), Some(0));
    let missing = kong2wasm(&["no-such-file.yaml"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(Path::new(&here()).exists());
}

#[test]
fn open_routes_on_other_hosts_or_methods_beside_a_login_convert() {
    // The filter refuses a bypass that could take the login callback or
    // the logout; one on another host or on OPTIONS alone cannot take the
    // callback.
    let out = ok(&[
        "--output",
        "config",
        "--idp-cluster",
        "idp",
        "fixtures/deck-hosts.yaml",
    ]);
    let config: Value = serde_json::from_str(&out).unwrap();
    parses(&config);
    let bypassed: Vec<&Value> = config["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["bypass"] == true)
        .collect();
    assert_eq!(bypassed.len(), 2, "{config}");
}

#[test]
fn conditions_rules_cannot_hold_are_refused_not_dropped() {
    // A route for requests with one header, with no plugin, beside the
    // protected route on the same host and path: dropped, its condition
    // would have made a bypass of the whole host.
    for (fixture, condition) in [
        ("fixtures/httproute-headers.yaml", "`headers`"),
        (
            "fixtures/ingress-headers.yaml",
            "`konghq.com/headers.x-internal-probe`",
        ),
        (
            "fixtures/deck-expression.yaml",
            "route b: its `expression` condition",
        ),
    ] {
        let out = kong2wasm(&["--output", "config", "--idp-cluster", "idp", fixture]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{fixture} accepted");
        assert!(stderr.contains(condition), "{fixture}: {stderr}");
    }
}

#[test]
fn issuers_allowed_gets_a_note_on_its_meaning() {
    let out = kong2wasm(&[
        "--output",
        "config",
        "--idp-cluster",
        "idp",
        "fixtures/kongplugin-issuers-allowed.yaml",
    ]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("issuers_allowed: differs from Kong: each entry is an issuer of its own"),
        "{stderr}"
    );
}

/// decK lets a top-level plugin name its route (or service) by id: the
/// plugin runs there, and one naming nothing is refused by its reference,
/// never dropped (its route would have become a bypass rule).
#[test]
fn plugins_referencing_their_route_by_id_run_there_or_fail_naming_it() {
    let out = ok(&[
        "--output",
        "config",
        "--idp-cluster",
        "idp",
        "fixtures/deck-plugin-by-id.yaml",
    ]);
    let config: Value = serde_json::from_str(&out).unwrap();
    parses(&config);
    let rules = config["rules"].as_array().unwrap();
    let admin = rules
        .iter()
        .find(|r| r["match"]["paths"] == json!(["/admin*"]))
        .unwrap_or_else(|| panic!("a rule for /admin: {rules:?}"));
    assert_eq!(admin["groups_required"], json!(["admins"]), "{admin}");
    assert!(admin.get("bypass").is_none(), "{admin}");

    let text = std::fs::read_to_string(here().join("fixtures/deck-plugin-by-id.yaml"))
        .unwrap()
        .replacen(
            "route: 9a1f3c2e-5b7d-4e8f-a0b1-c2d3e4f5a6b7",
            "route: 0000dead-5b7d-4e8f-a0b1-c2d3e4f5a6b7",
            1,
        );
    let dir = std::env::temp_dir().join(format!("kong2wasm-by-id-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("deck.yaml");
    std::fs::write(&file, text).unwrap();
    let out = kong2wasm(&[
        "--output",
        "config",
        "--idp-cluster",
        "idp",
        file.to_str().unwrap(),
    ]);
    std::fs::remove_dir_all(&dir).ok();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "accepted: {err}");
    assert!(
        err.contains("0000dead-5b7d-4e8f-a0b1-c2d3e4f5a6b7"),
        "{err}"
    );
}
