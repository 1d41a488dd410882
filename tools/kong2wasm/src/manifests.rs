//! The Istio resources for a converted configuration: a WasmPlugin with the
//! configuration as a structured `pluginConfig`, and per IdP host a
//! ServiceEntry plus a DestinationRule that originates TLS, whose cluster
//! (`outbound|443||<host>`) is the one named in `idp_clusters`.
//! The same shape as deploy/istio/.

use serde_json::{Value, json};

use crate::convert::Converted;

#[derive(Debug, Clone)]
pub struct Istio {
    pub image: String,
    pub sha256: Option<String>,
    pub namespace: String,
    pub selector: Vec<(String, String)>,
}

impl Default for Istio {
    fn default() -> Self {
        Istio {
            image: "oci://ghcr.io/your-org/envoy-oidc:0.1.0".to_string(),
            sha256: None,
            namespace: "istio-system".to_string(),
            selector: vec![("istio".to_string(), "ingressgateway".to_string())],
        }
    }
}

fn wasm_plugin(o: &Istio, name: &str, c: &Converted) -> Value {
    let labels: serde_json::Map<String, Value> = o
        .selector
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let mut spec = json!({
        "selector": {"matchLabels": labels},
        "url": o.image,
        "phase": "AUTHN",
        "failStrategy": "FAIL_CLOSE",
        "imagePullPolicy": "IfNotPresent",
        "pluginConfig": c.config,
    });
    if let Some(sha) = &o.sha256 {
        spec["sha256"] = Value::String(sha.clone());
    }
    json!({
        "apiVersion": "extensions.istio.io/v1alpha1",
        "kind": "WasmPlugin",
        "metadata": {"name": name, "namespace": o.namespace},
        "spec": spec,
    })
}

fn host_resources(o: &Istio, name: &str, authority: &str) -> Vec<Value> {
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => {
            (h, p.parse::<u16>().unwrap_or(443))
        }
        _ => (authority, 443),
    };
    let resource = format!("{name}-{host}");
    vec![
        json!({
            "apiVersion": "networking.istio.io/v1",
            "kind": "ServiceEntry",
            "metadata": {"name": resource, "namespace": o.namespace},
            "spec": {
                "hosts": [host],
                "exportTo": ["."],
                "location": "MESH_EXTERNAL",
                "resolution": "DNS",
                "ports": [{"number": port, "name": "http-tls-origination", "protocol": "HTTP"}],
            },
        }),
        json!({
            "apiVersion": "networking.istio.io/v1",
            "kind": "DestinationRule",
            "metadata": {"name": resource, "namespace": o.namespace},
            "spec": {
                "host": host,
                "exportTo": ["."],
                "trafficPolicy": {"tls": {"mode": "SIMPLE", "sni": host}},
            },
        }),
    ]
}

/// The WasmPlugin, then a ServiceEntry and DestinationRule per IdP host
/// (only when clusters follow Istio's naming), as one YAML stream.
pub fn istio_yaml(o: &Istio, name: &str, c: &Converted) -> String {
    let mut docs = vec![wasm_plugin(o, name, c)];
    for (authority, cluster) in &c.clusters {
        if cluster.starts_with("outbound|") {
            docs.extend(host_resources(o, name, authority));
        }
    }
    docs.iter()
        .map(|d| serde_norway::to_string(d).expect("YAML"))
        .collect::<Vec<_>>()
        .join("---\n")
}
