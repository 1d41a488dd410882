//! `config.schema.json` against the filter's own configuration parser, so the
//! two cannot drift apart:
//! - the schema lists exactly the keys the filter accepts (both ways);
//! - the schema's defaults and numeric bounds are the filter's;
//! - every example config in `deploy/examples/` loads in the filter, and
//!   every invalid example in `deploy/examples/invalid/` is refused naming
//!   the field its file name starts with (`<field>.<case>.json`).
//!
//! The other half, that the schema accepts the examples and refuses the
//! invalid ones naming the same field, is `tests/e2e/deploy/schema.test.mjs`
//! (ajv, a full JSON Schema validator).

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use envoy_oidc::config::{Config, ConfigError};
use serde_json::{Value, json};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn schema() -> Value {
    let text = fs::read_to_string(root().join("config.schema.json")).expect("config.schema.json");
    serde_json::from_str(&text).expect("config.schema.json is JSON")
}

fn schema_keys() -> BTreeSet<String> {
    schema()["properties"]
        .as_object()
        .expect("schema has properties")
        .keys()
        .cloned()
        .collect()
}

/// The smallest config the filter accepts, plus `extra`.
fn base(extra: Value) -> Value {
    let mut c = json!({"issuer": "https://idp.example.com", "idp_cluster": "idp"});
    c.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    c
}

fn parse(v: &Value) -> Result<envoy_oidc::config::Loaded, ConfigError> {
    Config::parse(&serde_json::to_vec(v).unwrap())
}

/// True when the filter refuses `key` as an unknown key. Every key is
/// optional, so `null` is accepted for any key the filter knows.
fn refused_as_unknown(key: &str) -> bool {
    match parse(&base(json!({ key: null }))) {
        Ok(_) => false,
        Err(e) => e.field == key && e.reason == "unknown key",
    }
}

/// The field names of `struct RawConfig`, read from the filter's source:
/// the serde-visible keys, as long as the struct has no serde attributes
/// on its fields (checked). If RawConfig ever changes shape (flatten,
/// rename, split), this fails loudly rather than silently passing.
fn filter_keys() -> BTreeSet<String> {
    let src = fs::read_to_string(root().join("src/config.rs")).expect("src/config.rs");
    let start = src
        .find("struct RawConfig {")
        .expect("src/config.rs still declares `struct RawConfig {`");
    let body = &src[start + "struct RawConfig {".len()..];
    let body = &body[..body.find("\n}").expect("end of RawConfig")];
    assert!(
        !body.contains("#[serde("),
        "RawConfig has field-level serde attributes now; teach tests/config_schema.rs about them \
         (or expose the key list from src/config.rs)"
    );
    let keys: BTreeSet<String> = body
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("//"))
        .map(|l| {
            let name = l.split(':').next().unwrap().trim();
            name.strip_prefix("pub ").unwrap_or(name).trim().to_string()
        })
        .collect();
    assert!(
        keys.len() > 10,
        "read too few keys from RawConfig: {keys:?}"
    );
    keys
}

#[test]
fn the_probe_tells_known_keys_from_unknown_ones() {
    assert!(!refused_as_unknown("issuer"));
    assert!(!refused_as_unknown("leeway"));
    assert!(refused_as_unknown("__no_such_key"));
    assert!(refused_as_unknown("issuer_url"));
}

#[test]
fn schema_lists_exactly_the_keys_the_filter_accepts() {
    let schema = schema_keys();
    let filter = filter_keys();

    // Schema → filter: nothing in the schema is refused as unknown.
    let unknown_to_filter: Vec<_> = schema.iter().filter(|k| refused_as_unknown(k)).collect();
    assert!(
        unknown_to_filter.is_empty(),
        "config.schema.json lists keys the filter refuses as unknown: {unknown_to_filter:?}"
    );
    // The source scan is right: every key read from RawConfig is accepted.
    let misread: Vec<_> = filter.iter().filter(|k| refused_as_unknown(k)).collect();
    assert!(misread.is_empty(), "misread RawConfig keys: {misread:?}");

    // Filter → schema: every accepted key is documented in the schema.
    let missing: Vec<_> = filter.difference(&schema).collect();
    assert!(
        missing.is_empty(),
        "the filter accepts keys config.schema.json does not list: {missing:?}"
    );
    assert_eq!(schema, filter);
}

#[test]
fn schema_is_closed_and_requires_the_issuer() {
    let s = schema();
    assert_eq!(
        s["additionalProperties"],
        json!(false),
        "unknown keys are refused, as the filter does"
    );
    assert_eq!(s["required"], json!(["issuer"]));
    assert_eq!(
        s["anyOf"],
        json!([{"required": ["idp_cluster"]}, {"required": ["idp_clusters"]}])
    );
    // The filter agrees: issuer alone is refused for lack of a cluster.
    let e = parse(&json!({"issuer": "https://idp.example.com"})).unwrap_err();
    assert_eq!(e.field, "idp_cluster");
    let e = parse(&json!({"idp_cluster": "c"})).unwrap_err();
    assert_eq!(e.field, "issuer");
}

#[test]
fn schema_defaults_are_the_filters() {
    let s = schema();
    let p = &s["properties"];
    let c = parse(&base(json!({}))).unwrap().config;
    assert_eq!(p["idp_timeout_ms"]["default"], json!(c.idp_timeout_ms));
    assert_eq!(p["leeway"]["default"], json!(c.leeway));
    assert_eq!(p["token_cache_size"]["default"], json!(c.token_cache_size));
    assert_eq!(p["run_on_preflight"]["default"], json!(c.run_on_preflight));
    assert_eq!(p["hide_credentials"]["default"], json!(c.hide_credentials));
    assert_eq!(p["scopes"]["default"], json!(c.scopes));
    assert_eq!(
        p["session_cookie_name"]["default"],
        json!(c.session.cookie_name)
    );
    assert_eq!(
        p["session_cookie_path"]["default"],
        json!(c.session.cookie_path)
    );
    assert_eq!(
        p["session_idling_timeout"]["default"],
        json!(c.session.idling_timeout)
    );
    assert_eq!(
        p["session_rolling_timeout"]["default"],
        json!(c.session.rolling_timeout)
    );
    assert_eq!(
        p["session_absolute_timeout"]["default"],
        json!(c.session.absolute_timeout)
    );
    assert_eq!(
        p["upstream_access_token_header"]["default"],
        json!("authorization:bearer")
    );
    assert_eq!(c.upstream_access_token_header.value("t"), "Bearer t");
    // A default the schema states must be a value the filter accepts too.
    for (key, prop) in p.as_object().unwrap() {
        if let Some(d) = prop.get("default") {
            assert!(
                parse(&base(json!({ key: d }))).is_ok(),
                "default of {key} ({d}) is refused by the filter"
            );
        }
    }
}

#[test]
fn schema_numeric_bounds_are_the_filters() {
    let s = schema();
    for (key, prop) in s["properties"].as_object().unwrap() {
        if prop["type"] != json!("integer") {
            continue;
        }
        let min = prop["minimum"]
            .as_u64()
            .unwrap_or_else(|| panic!("{key} has a minimum"));
        assert!(
            parse(&base(json!({ key: min }))).is_ok(),
            "{key} = {min} (schema minimum)"
        );
        if min > 0 {
            let e = parse(&base(json!({ key: min - 1 }))).unwrap_err();
            assert_eq!(
                e.field,
                *key,
                "{key} = {} is below the schema minimum",
                min - 1
            );
        }
        if let Some(max) = prop["maximum"].as_u64() {
            assert!(
                parse(&base(json!({ key: max }))).is_ok(),
                "{key} = {max} (schema maximum)"
            );
            let e = parse(&base(json!({ key: max + 1 }))).unwrap_err();
            assert_eq!(
                e.field,
                *key,
                "{key} = {} is above the schema maximum",
                max + 1
            );
        }
    }
}

#[test]
fn schema_enum_of_auth_methods_is_the_filters() {
    let s = schema();
    let names: Vec<String> = s["properties"]["auth_methods"]["items"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let filter: Vec<String> = envoy_oidc::config::AuthMethod::ALL
        .iter()
        .map(|m| m.name().to_string())
        .collect();
    assert_eq!(names, filter);
}

fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
}

fn read_json(p: &Path) -> Value {
    serde_json::from_str(&fs::read_to_string(p).unwrap())
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", p.display()))
}

#[test]
fn provider_examples_load_in_the_filter() {
    let files = json_files(&root().join("deploy/examples"));
    let names: BTreeSet<String> = files
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    for provider in ["cognito", "keycloak", "okta", "auth0", "entra"] {
        assert!(
            names.contains(provider),
            "deploy/examples/{provider}.json is missing"
        );
    }
    for p in files {
        let loaded = Config::parse(fs::read(&p).unwrap().as_slice())
            .unwrap_or_else(|e| panic!("{} is refused: {e}", p.display()));
        // Each example covers its issuer's host with a cluster.
        let c = loaded.config;
        assert!(
            c.cluster_for(&c.issuer.discovery_url.authority).is_some(),
            "{}",
            p.display()
        );
    }
}

/// `scopes_required[0]` → `scopes_required`.
fn top_level(field: &str) -> &str {
    field.split(['[', '.']).next().unwrap()
}

#[test]
fn invalid_examples_are_refused_naming_their_field() {
    let files = json_files(&root().join("deploy/examples/invalid"));
    assert!(files.len() >= 5, "too few invalid examples");
    for p in files {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let expected = name.split('.').next().unwrap();
        let v = read_json(&p);
        match parse(&v) {
            Ok(_) => panic!("{name} is accepted by the filter"),
            Err(e) => {
                assert_eq!(top_level(&e.field), expected, "{name}: {e}");
                assert!(
                    e.to_string()
                        .starts_with(&format!("invalid configuration: field `{}`", e.field)),
                    "{e}"
                );
            }
        }
    }
}

/// A rule may set exactly the keys the filter lets a rule override, and
/// the schema says so (`rules.items.properties`, besides `match` and
/// `bypass`).
#[test]
fn schema_rule_keys_are_the_filters() {
    let s = schema();
    let listed: BTreeSet<String> = s["properties"]["rules"]["items"]["properties"]
        .as_object()
        .expect("rules.items.properties")
        .keys()
        .filter(|k| *k != "match" && *k != "bypass")
        .cloned()
        .collect();
    let ours: BTreeSet<String> = envoy_oidc::config::RULE_KEYS
        .iter()
        .map(|k| k.to_string())
        .collect();
    assert_eq!(listed, ours);
    for key in &ours {
        assert!(
            s["properties"].get(key).is_some(),
            "rule key {key} is not a top-level key of the schema"
        );
    }
}
