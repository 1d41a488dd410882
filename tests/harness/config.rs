//! Configuration through `proxy_on_configure`: accepted, and refused per
//! field (Envoy then rejects the whole configuration), never a trap.

use crate::common::*;
use serde_json::{Value, json};
use wasm_test_harness::{Harness, HarnessError};

fn configure(config: &str) -> Result<Harness, HarnessError> {
    Harness::load(wasm_path()).and_then(|b| b.cluster(CLUSTER).configure(config))
}

/// Asserts `config` is refused (not trapped on) and the log names `field`.
fn refused(config: &str, field: &str) {
    match configure(config) {
        Ok(_) => panic!("configuration accepted, expected a refusal naming {field:?}: {config}"),
        Err(HarnessError::Refused { logs, .. }) => assert!(
            logs.contains(field),
            "the refusal of {config} should name {field:?}; logs:\n{logs}"
        ),
        Err(other) => panic!("expected a refusal naming {field:?} for {config}, got: {other}"),
    }
}

fn changed(changes: Value) -> String {
    let mut config = config();
    if let (Some(map), Some(changes)) = (config.as_object_mut(), changes.as_object()) {
        for (k, v) in changes {
            if v.is_null() {
                map.remove(k);
            } else {
                map.insert(k.clone(), v.clone());
            }
        }
    }
    config.to_string()
}

#[test]
fn accepts_the_contract_example() {
    configure(&config().to_string()).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn accepts_a_minimal_config() {
    configure(&json!({"issuer": ISSUER, "idp_cluster": CLUSTER}).to_string())
        .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn accepts_idp_clusters_keyed_by_authority() {
    configure(&json!({"issuer": ISSUER, "idp_clusters": {REALM: CLUSTER}}).to_string())
        .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn accepts_every_documented_optional_key() {
    let config = changed(json!({
        "scopes": ["openid"],
        "scopes_claim": ["scope"],
        "audience_required": ["client-1"],
        "idp_timeout_ms": 2000,
        "leeway": 0,
        "bypass_paths": ["/health$", "/public"],
        "run_on_preflight": false,
        "hide_credentials": true,
    }));
    configure(&config).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn refuses_a_missing_issuer() {
    refused(&changed(json!({"issuer": null})), "issuer");
}

#[test]
fn refuses_an_issuer_that_is_not_a_url() {
    refused(&changed(json!({"issuer": "idp.example.com"})), "issuer");
}

#[test]
fn refuses_an_unknown_key() {
    refused(&changed(json!({"isuer": ISSUER})), "isuer");
}

#[test]
fn refuses_an_issuer_no_cluster_covers() {
    refused(&changed(json!({"idp_cluster": null})), "idp_cluster");
}

#[test]
fn refuses_a_zero_timeout() {
    refused(&changed(json!({"idp_timeout_ms": 0})), "idp_timeout_ms");
}

#[test]
fn refuses_a_huge_leeway() {
    refused(&changed(json!({"leeway": 1_000_000})), "leeway");
}

#[test]
fn refuses_a_negative_leeway() {
    refused(&changed(json!({"leeway": -5})), "leeway");
}

#[test]
fn refuses_an_empty_required_scope() {
    refused(
        &changed(json!({"scopes_required": [""]})),
        "scopes_required",
    );
}

#[test]
fn refuses_a_wrongly_typed_scope_list() {
    refused(
        &changed(json!({"scopes_required": "kongresource/scope1"})),
        "scopes_required",
    );
}

#[test]
fn refuses_a_bypass_path_without_slash() {
    refused(
        &changed(json!({"bypass_paths": ["health"]})),
        "bypass_paths",
    );
}

#[test]
fn refuses_an_unknown_auth_method() {
    refused(
        &changed(json!({"auth_methods": ["telepathy"]})),
        "auth_methods",
    );
}

#[test]
fn refuses_text_that_is_not_json() {
    for config in ["", "not json", "{", "[]", "null", "42", "\"issuer\""] {
        match configure(config) {
            Err(HarnessError::Refused { .. }) => {}
            Ok(_) => panic!("configuration {config:?} accepted"),
            Err(other) => panic!("configuration {config:?}: {other}"),
        }
    }
}
