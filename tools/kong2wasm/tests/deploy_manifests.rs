//! The filter accepts the configurations embedded in the repository's
//! Kubernetes manifests, in the form the control plane hands them over:
//! - Istio turns a WasmPlugin's `pluginConfig` (a protobuf Struct, where
//!   every number is a double) into JSON with protojson; we do the same
//!   here, numbers included, and run the filter's parser on the result;
//! - Envoy Gateway passes an EnvoyExtensionPolicy's `config` as its JSON.
//!
//! (This lives in kong2wasm's tests because that crate has a YAML parser;
//! the root crate has none.)

use std::path::PathBuf;

use envoy_oidc::config::Config;
use serde::Deserialize;
use serde_json::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn yaml_docs(dir: &str) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(repo().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for d in serde_norway::Deserializer::from_str(&text) {
            let v = Value::deserialize(d).unwrap();
            if !v.is_null() {
                out.push((f.file_name().unwrap().to_string_lossy().into_owned(), v));
            }
        }
    }
    out
}

/// A JSON number as Go's protojson writes a Struct's double: integral
/// values below 1e21 without a fraction ("30"), others in shortest form.
fn protojson_number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e21 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

/// The JSON text protojson makes of a Struct built from `v`.
fn as_protojson_struct(v: &Value) -> String {
    match v {
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => protojson_number(n.as_f64().unwrap()),
        Value::String(s) => serde_json::to_string(s).unwrap(),
        Value::Array(items) => format!(
            "[{}]",
            items
                .iter()
                .map(as_protojson_struct)
                .collect::<Vec<_>>()
                .join(",")
        ),
        Value::Object(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!(
                    "{}:{}",
                    serde_json::to_string(k).unwrap(),
                    as_protojson_struct(v)
                ))
                .collect::<Vec<_>>()
                .join(",")
        ),
    }
}

#[test]
fn protojson_numbers_are_what_the_filter_expects() {
    assert_eq!(protojson_number(5000.0), "5000");
    assert_eq!(protojson_number(0.0), "0");
    assert_eq!(protojson_number(1.5), "1.5");
    // A fractional number where the filter wants an integer is refused, so
    // the emulation above is what decides.
    assert!(Config::parse(br#"{"issuer":"https://i","idp_cluster":"c","leeway":1.5}"#).is_err());
}

#[test]
fn istio_plugin_configs_load_in_the_filter() {
    let mut checked = 0;
    for dir in ["deploy/istio", "tools/kong2wasm/tests/golden"] {
        for (file, doc) in yaml_docs(dir) {
            if doc["kind"] != "WasmPlugin" {
                continue;
            }
            let json = as_protojson_struct(&doc["spec"]["pluginConfig"]);
            Config::parse(json.as_bytes()).unwrap_or_else(|e| {
                panic!("{dir}/{file}: the filter refuses what Istio sends: {e}\n{json}")
            });
            checked += 1;
        }
    }
    assert!(
        checked >= 3,
        "deploy/istio/wasmplugin.yaml and the two goldens"
    );
}

#[test]
fn envoy_gateway_configs_load_in_the_filter() {
    let mut checked = 0;
    for (file, doc) in yaml_docs("deploy/envoy-gateway") {
        if doc["kind"] != "EnvoyExtensionPolicy" {
            continue;
        }
        for w in doc["spec"]["wasm"].as_array().unwrap() {
            let json = serde_json::to_vec(&w["config"]).unwrap();
            Config::parse(&json).unwrap_or_else(|e| panic!("{file}: {e}"));
            checked += 1;
        }
    }
    assert!(checked >= 1);
}
