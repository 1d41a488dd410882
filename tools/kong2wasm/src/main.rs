//! kong2wasm: reads a Kong `KongPlugin` manifest of the `openid-connect`
//! plugin, or what attaches such plugins per route (a deck file, Ingress /
//! HTTPRoute resources), and prints the envoy-oidc filter configuration
//! (JSON; per-route plugins as `rules`) and an Istio `WasmPlugin` with a
//! `ServiceEntry` + `DestinationRule` per IdP host.
//!
//! Every configuration it prints has passed the filter's own parser
//! (`envoy_oidc::config::Config::parse`). Kong parameters without an
//! equivalent are refused by name (or dropped with `--ignore-unsupported`);
//! notes about semantic differences go to stderr.

mod convert;
mod manifests;
mod merge;
mod routes;

use std::io::Read;
use std::process::ExitCode;

use convert::{ClusterNaming, Conversion};

const USAGE: &str = "\
usage: kong2wasm [options] <kongplugin.yaml | deck.yaml | ->

Reads a KongPlugin manifest (plugin: openid-connect; a bare `config:` +
`plugin:` document works too) and prints the envoy-oidc configuration and
Istio manifests for it.

With routes in the input (a deck file with services/routes/plugins, or
Ingress / HTTPRoute resources naming KongPlugins in konghq.com/plugins),
every route's openid-connect plugin goes into one configuration: the keys
the plugins share at the top level, one rule per route with its own, a
bypass rule for a route without the plugin.

options:
  --output both|config|istio   what to print (default: both)
                               config: the filter's JSON configuration only
                               istio:  WasmPlugin + ServiceEntry and
                                       DestinationRule per IdP host (YAML)
  --idp-host HOST[:PORT]       another host the filter calls, besides the
                               issuer's (repeatable). Cognito: the hosted-UI
                               domain <domain>.auth.<region>.amazoncognito.com
  --idp-cluster NAME           one Envoy cluster for every IdP call (plain
                               Envoy) instead of Istio's outbound|443||<host>
  --image URL                  WasmPlugin url
                               (default: oci://ghcr.io/your-org/envoy-oidc:0.1.0)
  --sha256 HEX                 WasmPlugin sha256: the image's manifest digest
                               (scripts/oci-package.sh prints it)
  --namespace NS               namespace of the Istio resources (default: istio-system)
  --selector KEY=VALUE         WasmPlugin workload selector (repeatable;
                               default: istio=ingressgateway)
  --name NAME                  convert only this KongPlugin (when the file has
                               several, or to ignore the routes)
  --ignore-unsupported         drop Kong parameters envoy-oidc does not
                               support (listed on stderr) instead of failing
";

struct Options {
    input: String,
    output: String,
    conversion: Conversion,
    istio: manifests::Istio,
    name: Option<String>,
}

fn parse_args(args: Vec<String>) -> Result<Options, String> {
    let mut input = None;
    let mut output = "both".to_string();
    let mut conversion = Conversion::default();
    let mut istio = manifests::Istio::default();
    let mut selector = Vec::new();
    let mut name = None;
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        let mut value = |flag: &str| it.next().ok_or_else(|| format!("{flag} needs a value"));
        match a.as_str() {
            "-h" | "--help" => return Err(String::new()),
            "--output" => {
                output = value("--output")?;
                if !["both", "config", "istio"].contains(&output.as_str()) {
                    return Err(format!(
                        "--output must be both, config or istio, not {output}"
                    ));
                }
            }
            "--idp-host" => conversion.extra_hosts.push(value("--idp-host")?),
            "--idp-cluster" => conversion.naming = ClusterNaming::Single(value("--idp-cluster")?),
            "--image" => istio.image = value("--image")?,
            "--sha256" => {
                let v = value("--sha256")?;
                let v = v.strip_prefix("sha256:").unwrap_or(&v).to_string();
                if v.len() != 64
                    || !v
                        .bytes()
                        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
                {
                    return Err(format!("--sha256 must be 64 lowercase hex digits, not {v}"));
                }
                istio.sha256 = Some(v);
            }
            "--namespace" => istio.namespace = value("--namespace")?,
            "--selector" => {
                let v = value("--selector")?;
                let (k, v) = v
                    .split_once('=')
                    .ok_or_else(|| format!("--selector takes KEY=VALUE, not {v}"))?;
                selector.push((k.to_string(), v.to_string()));
            }
            "--name" => name = Some(value("--name")?),
            "--ignore-unsupported" => conversion.ignore_unsupported = true,
            s if s.starts_with("--") => return Err(format!("unknown option {s}")),
            _ if input.is_none() => input = Some(a),
            _ => return Err(format!("unexpected argument {a}")),
        }
    }
    if !selector.is_empty() {
        istio.selector = selector;
    }
    Ok(Options {
        input: input.ok_or("no input file (use - for stdin)")?,
        output,
        conversion,
        istio,
        name,
    })
}

fn run(o: Options) -> Result<String, String> {
    let text = if o.input == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| format!("stdin: {e}"))?;
        s
    } else {
        std::fs::read_to_string(&o.input).map_err(|e| format!("{}: {e}", o.input))?
    };
    let routed = match o.name {
        Some(_) => None,
        None => routes::read(&text)?,
    };
    let (name, converted) = match routed {
        Some(routed) => merge::merge(&routed, &o.conversion)?,
        None => {
            let plugin = convert::find_plugin(&text, o.name.as_deref())?;
            let converted = convert::convert(&plugin, &o.conversion)?;
            (plugin.name, converted)
        }
    };
    for note in &converted.notes {
        eprintln!("kong2wasm: note: {note}");
    }
    let json = serde_json::to_string_pretty(&converted.config).expect("JSON");
    let istio = || manifests::istio_yaml(&o.istio, &name, &converted);
    Ok(match o.output.as_str() {
        "config" => format!("{json}\n"),
        "istio" => istio(),
        _ => format!(
            "# envoy-oidc configuration: Envoy `configuration` value, Envoy Gateway `config`\n{json}\n---\n# Istio (kong2wasm --output istio | kubectl apply -f -)\n{}",
            istio()
        ),
    })
}

fn main() -> ExitCode {
    let o = match parse_args(std::env::args().skip(1).collect()) {
        Ok(o) => o,
        Err(e) if e.is_empty() => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("kong2wasm: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(o) {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("kong2wasm: {e}");
            ExitCode::from(1)
        }
    }
}
