//! What Kong users have when a plugin is attached per route: a deck
//! declarative file (services, routes, plugins per route, service or
//! globally) or Kubernetes resources (Ingress / HTTPRoute naming
//! KongPlugins in `konghq.com/plugins`, Services naming them for every
//! route to them, KongClusterPlugins labelled `global: "true"`). Read into
//! routes, each with the openid-connect plugin that runs on it after Kong's
//! precedence (route, then service, then global).

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::convert::KongPlugin;

/// One Kong route, its conditions in the filter's `rules.match` syntax.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Route {
    /// For notes: `route orders`, `ingress shop#0`, `httproute web#1.0`.
    pub name: String,
    pub hosts: Vec<String>,
    pub paths: Vec<String>,
    pub methods: Vec<String>,
    /// Envoy route names, when a path cannot be a rule path (a regex):
    /// the rule follows the Envoy route of that name instead.
    pub route_names: Vec<String>,
    /// The openid-connect plugin that runs on this route, if any.
    pub plugin: Option<String>,
}

impl Route {
    /// Kong's router tries routes with more kinds of conditions first,
    /// exact hosts before wildcards, then longer paths; the filter's rules
    /// are tried in order, so they are written in that order.
    fn priority(&self) -> (usize, bool, usize, bool) {
        let kinds = [
            !self.hosts.is_empty(),
            !self.paths.is_empty() || !self.route_names.is_empty(),
            !self.methods.is_empty(),
        ];
        (
            usize::MAX - kinds.iter().filter(|k| **k).count(),
            self.hosts.iter().any(|h| h.starts_with("*.")),
            usize::MAX - self.paths.iter().map(|p| kong_len(p)).max().unwrap_or(0),
            !self.paths.iter().any(|p| p.ends_with('$')),
        )
    }
}

/// A rule path's length as Kong's router compares it: a Kong prefix
/// (`/api*`) without the `*`; a whole-segment prefix (a Kubernetes
/// `Prefix`, `/apis`) as the Ingress controller writes it, `/apis/`.
fn kong_len(path: &str) -> usize {
    match path.strip_suffix('*') {
        Some(kong) => kong.len(),
        None if path == "/" || path.ends_with('$') => path.len(),
        None => path.len() + 1,
    }
}

/// The routes of the input, in the order the rules are tried, and every
/// openid-connect plugin by name.
#[derive(Debug, Clone, Default)]
pub struct Routed {
    pub routes: Vec<Route>,
    pub plugins: Vec<KongPlugin>,
    pub notes: Vec<String>,
}

impl Routed {
    pub fn plugin(&self, name: &str) -> Option<&KongPlugin> {
        self.plugins.iter().find(|p| p.name == name)
    }
}

/// Reads routes from a deck file or Kubernetes resources; `None` when the
/// input has none (a lone KongPlugin: converted on its own).
pub fn read(text: &str) -> Result<Option<Routed>, String> {
    let mut docs = Vec::new();
    for (i, de) in serde_norway::Deserializer::from_str(text).enumerate() {
        let v = Value::deserialize(de).map_err(|e| format!("YAML document {}: {e}", i + 1))?;
        if !v.is_null() {
            docs.push(v);
        }
    }
    let deck = docs
        .iter()
        .find(|d| d.get("_format_version").is_some() || d.get("services").is_some());
    let mut routed = match deck {
        Some(deck) => read_deck(deck)?,
        None => read_kubernetes(&docs)?,
    };
    if routed.routes.is_empty() {
        return Ok(None);
    }
    // Stable: among equals, the input's order.
    routed.routes.sort_by_key(Route::priority);
    Ok(Some(routed))
}

// ------------------------------------------------------------------ deck

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// What a deck entity answers to in references, or what a reference
/// names: decK writes a reference as a string, the entity's name or its id,
/// and Kong's Admin API as an object with either; an entity has both keys.
fn handles(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Object(o) => ["name", "id"]
            .into_iter()
            .filter_map(|k| o.get(k)?.as_str())
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

/// The index among `entities` (their handles) of the one a plugin's or a
/// route's reference (`route`, `service`) names, or an error naming the
/// reference. Kong runs the plugin where the reference points, so one
/// pointing nowhere cannot be left out: its route would become a bypass
/// rule.
fn resolve(
    what: &str,
    reference: &Value,
    entities: &[Vec<String>],
    referrer: &str,
) -> Result<usize, String> {
    let names = handles(reference);
    if names.is_empty() {
        return Err(format!(
            "{referrer}: its `{what}` reference {reference} is neither a name nor an id"
        ));
    }
    entities
        .iter()
        .position(|e| names.iter().any(|n| e.contains(n)))
        .ok_or_else(|| {
            format!(
                "{referrer}: no {what} in the file has the name or id `{}` (a deck split in \
                 several files: convert them as one)",
                names.join("` / `")
            )
        })
}

/// An enabled openid-connect plugin entry of a deck file.
fn oidc_config(plugin: &Value) -> Option<Map<String, Value>> {
    (plugin.get("name").and_then(Value::as_str) == Some("openid-connect")
        && plugin.get("enabled") != Some(&Value::Bool(false)))
    .then(|| {
        plugin
            .get("config")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    })
}

/// Kong's route paths are prefixes, or regexes when they start with `~`.
fn kong_paths(route: &mut Route, paths: Vec<String>, routed: &mut Routed, envoy_name: &str) {
    if paths.iter().any(|p| p.starts_with('~')) {
        routed.notes.push(format!(
            "{}: regex paths cannot be rule paths; its rule follows the Envoy route named \
             `{envoy_name}` (route_names): give the Envoy route that name",
            route.name
        ));
        route.route_names.push(envoy_name.to_string());
        return;
    }
    // Kong's prefixes match inside a segment too (`/api` matches `/apis`,
    // `/api/` not `/api`): a rule path ending in `*` matches so. Written as
    // segment prefixes, `/admin`'s stricter rule would leave `/administration`
    // to a laxer one.
    route.paths = paths
        .into_iter()
        .map(|p| if p == "/" { p } else { format!("{p}*") })
        .collect();
}

fn read_deck(deck: &Value) -> Result<Routed, String> {
    let mut routed = Routed::default();
    let add_plugin = |name: String, config: Map<String, Value>, plugins: &mut Vec<KongPlugin>| {
        plugins.push(KongPlugin {
            name: name.clone(),
            config,
        });
        name
    };
    let services: Vec<&Value> = deck
        .get("services")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .collect();
    let service_handles: Vec<Vec<String>> = services.iter().map(|s| handles(s)).collect();
    // How notes and errors name a service or a route: its name, else its id
    // (services) or its place (routes).
    let service_label = |k: usize| {
        service_handles[k]
            .first()
            .map_or_else(|| format!("#{k}"), String::clone)
    };
    let route_label = |i: usize, r: &Value| {
        r.get("name")
            .and_then(Value::as_str)
            .map_or_else(|| format!("#{i}"), str::to_string)
    };
    // (route entry, index of its service in `services`, or why it is not
    // known: an error only for a route that would fall back to it)
    let mut entries: Vec<(&Value, Result<Option<usize>, String>)> = Vec::new();
    for (k, s) in services.iter().enumerate() {
        for r in s
            .get("routes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            entries.push((r, Ok(Some(k))));
        }
    }
    for (i, r) in deck
        .get("routes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        // A service the file does not hold may carry a plugin we cannot
        // see: an error when the route has no plugin of its own.
        let service = r
            .get("service")
            .filter(|v| !v.is_null())
            .map(|s| resolve("service", s, &service_handles, &format!("routes[{i}]")))
            .transpose();
        entries.push((r, service));
    }
    let route_handles: Vec<Vec<String>> = entries.iter().map(|(r, _)| handles(r)).collect();

    let mut global = None;
    // (index into `services` / `entries`, plugin name)
    let mut per_service: Vec<(usize, String)> = Vec::new();
    let mut per_route: Vec<(usize, String)> = Vec::new();
    for (i, p) in deck
        .get("plugins")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let Some(config) = oidc_config(p) else {
            continue;
        };
        let referrer = format!("plugins[{i}] (openid-connect)");
        let reference = |key: &str| p.get(key).filter(|v| !v.is_null());
        // Read as global, a consumer's plugin would run for everyone.
        if let Some(key) = ["consumer", "consumer_group"]
            .into_iter()
            .find(|k| reference(k).is_some())
        {
            return Err(format!(
                "{referrer}: scoped to a `{key}`; Envoy has no consumers, so kong2wasm cannot \
                 scope a plugin to one"
            ));
        }
        if let Some(r) = reference("route") {
            let at = resolve("route", r, &route_handles, &referrer)?;
            let label = route_label(at, entries[at].0);
            let n = add_plugin(format!("route {label}"), config, &mut routed.plugins);
            per_route.push((at, n));
        } else if let Some(s) = reference("service") {
            let at = resolve("service", s, &service_handles, &referrer)?;
            let n = add_plugin(
                format!("service {}", service_label(at)),
                config,
                &mut routed.plugins,
            );
            per_service.push((at, n));
        } else {
            global = Some(add_plugin("global".into(), config, &mut routed.plugins));
        }
    }
    for (k, s) in services.iter().enumerate() {
        let label = service_label(k);
        for p in s
            .get("plugins")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(config) = oidc_config(p) {
                let pn = add_plugin(format!("service {label}"), config, &mut routed.plugins);
                per_service.push((k, pn));
            }
        }
    }
    for (i, (r, service)) in entries.into_iter().enumerate() {
        let id = route_label(i, r);
        // A condition a rule cannot hold: dropping it would let this route's
        // plugin decide for requests Kong sends elsewhere.
        if let Some(c) = ["headers", "snis", "sources", "destinations", "expression"]
            .into_iter()
            .find(|c| {
                r.get(*c).is_some_and(|v| {
                    !v.is_null()
                        && v != &Value::Array(Vec::new())
                        && v != &Value::Object(Map::new())
                })
            })
        {
            return Err(format!(
                "route {id}: its `{c}` condition cannot be a rule condition; name its Envoy route \
                 and write the rule with `route_names` by hand"
            ));
        }
        let mut route = Route {
            name: format!("route {id}"),
            hosts: strings(r.get("hosts")),
            methods: strings(r.get("methods")),
            ..Route::default()
        };
        let paths = strings(r.get("paths"));
        kong_paths(&mut route, paths, &mut routed, &id);
        let own = r
            .get("plugins")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find_map(oidc_config)
            .map(|config| add_plugin(format!("route {id}"), config, &mut routed.plugins));
        let attached = |to: &[(usize, String)], at: Option<usize>| {
            to.iter()
                .find(|(k, _)| Some(*k) == at)
                .map(|(_, p)| p.clone())
        };
        route.plugin = match own.or_else(|| attached(&per_route, Some(i))) {
            Some(plugin) => Some(plugin),
            None => attached(&per_service, service?).or_else(|| global.clone()),
        };
        routed.routes.push(route);
    }
    Ok(routed)
}

// ------------------------------------------------------------ Kubernetes

fn annotation(doc: &Value, key: &str) -> Option<String> {
    doc.pointer("/metadata/annotations")?
        .get(key)?
        .as_str()
        .map(str::to_string)
}

fn listed(value: Option<String>) -> Vec<String> {
    value
        .map(|v| {
            v.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

fn kind(doc: &Value) -> &str {
    doc.get("kind").and_then(Value::as_str).unwrap_or_default()
}

/// The namespace a resource is in (`default` when it names none).
fn namespace(doc: &Value) -> String {
    doc.pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("default")
        .to_string()
}

fn metadata_name(doc: &Value) -> String {
    doc.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("unnamed")
        .to_string()
}

/// A Kubernetes path as a rule path: `Exact` → `path$`; `Prefix` (or Gateway
/// API `PathPrefix`) matches whole segments as the rules do; Kong's own
/// (`ImplementationSpecific`) as a deck path.
fn k8s_path(route: &mut Route, path: &str, kind: &str, routed: &mut Routed) {
    match kind {
        "Exact" => route.paths.push(format!("{path}$")),
        "RegularExpression" => {
            let envoy = route.name.clone();
            kong_paths(route, vec![format!("~{path}")], routed, &envoy);
        }
        "ImplementationSpecific" if path.starts_with("/~") => {
            let envoy = route.name.clone();
            kong_paths(route, vec![path.to_string()], routed, &envoy);
        }
        "ImplementationSpecific" => {
            let mut paths = std::mem::take(&mut route.paths);
            let mut one = Route {
                name: route.name.clone(),
                ..Route::default()
            };
            kong_paths(&mut one, vec![path.to_string()], routed, "");
            paths.extend(one.paths);
            route.paths = paths;
        }
        _ => {
            let trimmed = path.trim_end_matches('/');
            route
                .paths
                .push(if trimmed.is_empty() { "/" } else { trimmed }.to_string());
        }
    }
}

fn read_kubernetes(docs: &[Value]) -> Result<Routed, String> {
    let mut routed = Routed::default();
    let mut global = None;
    // Every plugin and Service the input holds, of any kind: a name that is
    // not among them is one whose plugin cannot be seen here (in Kong it
    // may be an openid-connect one, and the route would be left a bypass
    // rule). Names only, as this reader resolves them: one name in two
    // namespaces could give a route another namespace's plugin.
    let mut plugins_held: Vec<(String, String)> = Vec::new();
    let mut services_held: Vec<(String, String)> = Vec::new();
    for d in docs {
        let held = match kind(d) {
            "KongPlugin" | "KongClusterPlugin" => &mut plugins_held,
            "Service" => &mut services_held,
            _ => continue,
        };
        let (name, namespace) = (metadata_name(d), namespace(d));
        if let Some((_, other)) = held.iter().find(|(n, ns)| *n == name && *ns != namespace) {
            return Err(format!(
                "{} {name} is in two namespaces ({other}, {namespace}): plugins and Services are \
                 resolved by name here, so a route could get the other namespace's; convert \
                 one namespace at a time",
                kind(d)
            ));
        }
        held.push((name, namespace));
    }
    for d in docs {
        if !matches!(kind(d), "KongPlugin" | "KongClusterPlugin")
            || d.get("plugin").and_then(Value::as_str) != Some("openid-connect")
            || d.get("disabled") == Some(&Value::Bool(true))
        {
            continue;
        }
        let name = metadata_name(d);
        if d.get("configFrom").is_some() {
            return Err(format!(
                "KongPlugin {name}: configFrom (a Secret) cannot be read here; inline its config"
            ));
        }
        if kind(d) == "KongClusterPlugin"
            && d.pointer("/metadata/labels/global").and_then(Value::as_str) == Some("true")
        {
            global = Some(name.clone());
        }
        routed.plugins.push(KongPlugin {
            name,
            config: d
                .get("config")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
        });
    }
    let known: Vec<String> = routed.plugins.iter().map(|p| p.name.clone()).collect();
    let is_oidc =
        |names: &[String]| -> Option<String> { names.iter().find(|n| known.contains(n)).cloned() };
    // (Beside an openid-connect plugin the input holds, an unseen one is
    // another kind: Kong runs one plugin of a kind per resource.)
    let unseen = |what: &str, names: &[String]| -> Result<(), String> {
        if is_oidc(names).is_some() {
            return Ok(());
        }
        match names
            .iter()
            .find(|n| !plugins_held.iter().any(|(p, _)| p == *n))
        {
            Some(n) => Err(format!(
                "{what} names the plugin `{n}`, which the input does not hold: Kong runs it \
                 (an openid-connect one would leave the route a bypass rule here); give the \
                 file that holds it too"
            )),
            None => Ok(()),
        }
    };
    // Plugins named on a Service run on every route to it.
    let service_plugin = |service: Option<&str>| -> Option<String> {
        let service = service?;
        docs.iter()
            .filter(|d| kind(d) == "Service" && metadata_name(d) == service)
            .find_map(|d| is_oidc(&listed(annotation(d, "konghq.com/plugins"))))
    };
    for d in docs.iter().filter(|d| kind(d) == "Service") {
        let what = format!("Service {}", metadata_name(d));
        unseen(&what, &listed(annotation(d, "konghq.com/plugins")))?;
    }
    // A route with no openid-connect plugin of its own takes its Service's:
    // one the input does not hold may have one.
    let service_seen = |route: &str, service: Option<&str>| -> Result<(), String> {
        match service {
            Some(s) if !services_held.iter().any(|(n, _)| n == s) => Err(format!(
                "{route}: its Service `{s}` is not in the input, so whether a plugin of \
                 the Service's protects it cannot be seen; give the file that holds it too"
            )),
            _ => Ok(()),
        }
    };
    let mut routes = Vec::new();
    for d in docs {
        let own = is_oidc(&listed(annotation(d, "konghq.com/plugins")));
        let name = metadata_name(d);
        if matches!(kind(d), "Ingress" | "HTTPRoute") {
            let what = format!("{} {name}", kind(d).to_lowercase());
            unseen(&what, &listed(annotation(d, "konghq.com/plugins")))?;
        }
        match kind(d) {
            "Ingress" => {
                // Kong's header conditions (`konghq.com/headers.<name>`): a
                // rule cannot hold them, as the deck reader says of `headers`.
                if let Some(key) = d
                    .pointer("/metadata/annotations")
                    .and_then(Value::as_object)
                    .and_then(|a| a.keys().find(|k| k.starts_with("konghq.com/headers.")))
                {
                    return Err(format!(
                        "ingress {name}: its `{key}` condition cannot be a rule condition; name \
                         its Envoy route and write the rule with `route_names` by hand"
                    ));
                }
                let methods: Vec<String> = listed(annotation(d, "konghq.com/methods"));
                let rules = d.pointer("/spec/rules").and_then(Value::as_array);
                for (i, rule) in rules.into_iter().flatten().enumerate() {
                    let paths = rule.pointer("/http/paths").and_then(Value::as_array);
                    for (j, p) in paths.into_iter().flatten().enumerate() {
                        let mut route = Route {
                            name: format!("ingress {name}#{i}.{j}"),
                            hosts: rule
                                .get("host")
                                .and_then(Value::as_str)
                                .map(|h| vec![h.to_string()])
                                .unwrap_or_default(),
                            methods: methods.clone(),
                            ..Route::default()
                        };
                        let path = p.get("path").and_then(Value::as_str).unwrap_or("/");
                        let path_type = p
                            .get("pathType")
                            .and_then(Value::as_str)
                            .unwrap_or("ImplementationSpecific");
                        k8s_path(&mut route, path, path_type, &mut routed);
                        let service = p.pointer("/backend/service/name").and_then(Value::as_str);
                        if own.is_none() {
                            service_seen(&route.name, service)?;
                        }
                        route.plugin = own
                            .clone()
                            .or_else(|| service_plugin(service))
                            .or_else(|| global.clone());
                        routes.push(route);
                    }
                }
            }
            "HTTPRoute" => {
                let hosts = strings(d.pointer("/spec/hostnames"));
                let rules = d.pointer("/spec/rules").and_then(Value::as_array);
                for (i, rule) in rules.into_iter().flatten().enumerate() {
                    // A KongPlugin as an ExtensionRef filter of this rule.
                    let filter = rule
                        .get("filters")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter(|f| {
                            f.pointer("/extensionRef/kind").and_then(Value::as_str)
                                == Some("KongPlugin")
                        })
                        .filter_map(|f| f.pointer("/extensionRef/name")?.as_str())
                        .map(str::to_string)
                        .collect::<Vec<_>>();
                    unseen(&format!("httproute {name}#{i}"), &filter)?;
                    let service = rule.pointer("/backendRefs/0/name").and_then(Value::as_str);
                    if is_oidc(&filter).is_none() && own.is_none() {
                        service_seen(&format!("httproute {name}#{i}"), service)?;
                    }
                    let plugin = is_oidc(&filter)
                        .or_else(|| own.clone())
                        .or_else(|| service_plugin(service))
                        .or_else(|| global.clone());
                    let default = [Value::Object(Map::new())];
                    let matches = rule
                        .get("matches")
                        .and_then(Value::as_array)
                        .map_or(&default[..], Vec::as_slice);
                    for (j, m) in matches.iter().enumerate() {
                        // As for the deck reader's `headers`: dropping the
                        // condition would let this route decide for requests
                        // Kong sends elsewhere.
                        if let Some(c) = ["headers", "queryParams"].into_iter().find(|c| {
                            m.get(*c)
                                .and_then(Value::as_array)
                                .is_some_and(|v| !v.is_empty())
                        }) {
                            return Err(format!(
                                "httproute {name}#{i}.{j}: its `{c}` condition cannot be a rule \
                                 condition; name its Envoy route and write the rule with \
                                 `route_names` by hand"
                            ));
                        }
                        let mut route = Route {
                            name: format!("httproute {name}#{i}.{j}"),
                            hosts: hosts.clone(),
                            methods: m
                                .get("method")
                                .and_then(Value::as_str)
                                .map(|s| vec![s.to_string()])
                                .unwrap_or_default(),
                            plugin: plugin.clone(),
                            ..Route::default()
                        };
                        let path = m
                            .pointer("/path/value")
                            .and_then(Value::as_str)
                            .unwrap_or("/");
                        let path_type = m
                            .pointer("/path/type")
                            .and_then(Value::as_str)
                            .unwrap_or("PathPrefix");
                        k8s_path(&mut route, path, path_type, &mut routed);
                        routes.push(route);
                    }
                }
            }
            _ => {}
        }
    }
    routed.routes = routes;
    Ok(routed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn deck_plugins_follow_kongs_precedence_route_service_global() {
        let deck = r#"
_format_version: "3.0"
plugins:
  - name: openid-connect
    config: {issuer: "https://idp.example.com", scopes_required: [global]}
services:
  - name: shop
    plugins:
      - name: openid-connect
        config: {issuer: "https://idp.example.com", scopes_required: [shop]}
    routes:
      - name: orders
        paths: [/orders]
        methods: [POST]
        plugins:
          - name: openid-connect
            config: {issuer: "https://idp.example.com", scopes_required: [orders]}
      - name: catalog
        hosts: [shop.example.com]
        paths: [/catalog/]
  - name: other
    routes:
      - name: health
        paths: [/health]
        plugins:
          - name: openid-connect
            enabled: false
            config: {}
"#;
        let r = read(deck).unwrap().unwrap();
        let by = |n: &str| r.routes.iter().find(|x| x.name == n).unwrap();
        assert_eq!(by("route orders").plugin.as_deref(), Some("route orders"));
        assert_eq!(by("route catalog").plugin.as_deref(), Some("service shop"));
        assert_eq!(by("route health").plugin.as_deref(), Some("global"));
        assert_eq!(by("route orders").methods, ["POST"]);
        // More kinds of conditions first.
        assert_eq!(r.routes[0].name, "route catalog");
    }

    /// decK references a route or service by name or id (objects as the
    /// Admin API writes them too); a plugin on one the file does not hold,
    /// or on a consumer, is refused by its reference instead of dropped.
    #[test]
    fn deck_references_match_by_name_or_id_and_unknown_ones_are_refused() {
        let deck = r#"
_format_version: "3.0"
services:
  - id: 11111111-0000-4000-8000-000000000001
    routes:
      - {name: orders, paths: [/orders]}
  - name: web
    id: 11111111-0000-4000-8000-000000000002
routes:
  - {name: pages, paths: [/pages], service: {id: 11111111-0000-4000-8000-000000000002}}
  - {id: 22222222-0000-4000-8000-000000000003, paths: [/admin], service: web}
plugins:
  - name: openid-connect
    service: 11111111-0000-4000-8000-000000000001
    config: {issuer: "https://idp.example.com", scopes_required: [orders]}
  - name: openid-connect
    service: {name: web}
    config: {issuer: "https://idp.example.com", scopes_required: [web]}
  - name: openid-connect
    route: {id: 22222222-0000-4000-8000-000000000003}
    config: {issuer: "https://idp.example.com", groups_required: [admins]}
"#;
        let r = read(deck).unwrap().unwrap();
        // Kong's prefixes, `*`: inside a segment too.
        let by = |path: &str| {
            let kong = format!("{path}*");
            r.routes
                .iter()
                .find(|x| x.paths == [kong.as_str()])
                .unwrap()
        };
        let plugin = |path: &str| r.plugin(by(path).plugin.as_deref().unwrap()).unwrap();
        assert_eq!(
            plugin("/orders").config["scopes_required"],
            json!(["orders"])
        );
        assert_eq!(plugin("/pages").config["scopes_required"], json!(["web"]));
        assert_eq!(
            plugin("/admin").config["groups_required"],
            json!(["admins"])
        );

        for (from, to, named) in [
            (
                "route: {id: 22222222",
                "route: {id: 33333333",
                "33333333-0000",
            ),
            ("service: {name: web}", "service: {name: shop}", "`shop`"),
            (
                "service: {id: 11111111-0000-4000-8000-000000000002}}",
                "service: shop}",
                "routes[0]: no service",
            ),
            ("service: {name: web}", "consumer: alice", "`consumer`"),
        ] {
            let e = read(&deck.replacen(from, to, 1)).unwrap_err();
            assert!(e.contains(named), "{to}: {e}");
        }
        // A route with a plugin of its own needs no service from the file
        // (a deck split in several): Kong runs the route's plugin there.
        let split = deck.replacen("service: web}", "service: billing}", 1);
        let r = read(&split).unwrap().unwrap();
        let admin = r.routes.iter().find(|x| x.paths == ["/admin*"]).unwrap();
        let config = &r.plugin(admin.plugin.as_deref().unwrap()).unwrap().config;
        assert_eq!(config["groups_required"], json!(["admins"]));
    }

    #[test]
    fn regex_paths_follow_the_envoy_route_by_name() {
        let deck =
            "_format_version: '3.0'\nroutes:\n  - name: items\n    paths: ['~/items/\\d+$']\n";
        let r = read(deck).unwrap().unwrap();
        assert_eq!(r.routes[0].route_names, ["items"]);
        assert!(r.routes[0].paths.is_empty());
        assert!(
            r.notes.iter().any(|n| n.contains("route_names")),
            "{:?}",
            r.notes
        );
    }

    #[test]
    fn ingress_and_httproute_with_kongplugins() {
        let k8s = r#"
apiVersion: configuration.konghq.com/v1
kind: KongPlugin
metadata: {name: oidc-api}
plugin: openid-connect
config: {issuer: "https://idp.example.com"}
---
apiVersion: v1
kind: Service
metadata:
  name: admin
  annotations: {konghq.com/plugins: "rate, oidc-api"}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: shop
  annotations: {konghq.com/plugins: oidc-api, konghq.com/methods: "GET,POST"}
spec:
  rules:
    - host: shop.example.com
      http:
        paths:
          - {path: /api/, pathType: Prefix, backend: {service: {name: api, port: {number: 80}}}}
          - {path: /exact, pathType: Exact, backend: {service: {name: api, port: {number: 80}}}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  hostnames: [web.example.com]
  rules:
    - matches: [{path: {type: PathPrefix, value: /admin}}]
      backendRefs: [{name: admin, port: 80}]
    - matches: [{path: {type: PathPrefix, value: /}}]
      backendRefs: [{name: web, port: 80}]
"#;
        let with_web =
            format!("{k8s}---\napiVersion: v1\nkind: Service\nmetadata: {{name: web}}\n");
        // The Service of `/` is needed: it could carry a plugin.
        let e = read(k8s).unwrap_err();
        assert!(e.contains("Service `web` is not in the input"), "{e}");
        let r = read(&with_web).unwrap().unwrap();
        let by = |n: &str| r.routes.iter().find(|x| x.name == n).unwrap();
        assert_eq!(by("ingress shop#0.0").paths, ["/api"]);
        assert_eq!(by("ingress shop#0.1").paths, ["/exact$"]);
        assert_eq!(by("ingress shop#0.1").methods, ["GET", "POST"]);
        assert_eq!(by("ingress shop#0.0").plugin.as_deref(), Some("oidc-api"));
        assert_eq!(
            by("httproute web#0.0").plugin.as_deref(),
            Some("oidc-api"),
            "via its Service"
        );
        assert_eq!(by("httproute web#1.0").plugin, None);
        assert_eq!(by("httproute web#1.0").hosts, ["web.example.com"]);
        // Exact before prefix of the same kinds; longer paths first.
        let order: Vec<&str> = r.routes.iter().map(|x| x.name.as_str()).collect();
        assert_eq!(
            order,
            [
                "ingress shop#0.1",
                "ingress shop#0.0",
                "httproute web#0.0",
                "httproute web#1.0"
            ]
        );
    }

    #[test]
    fn a_route_condition_rules_cannot_hold_is_refused() {
        let deck = "_format_version: '3.0'\nroutes:\n  - name: v2\n    paths: [/api]\n    headers: {x-version: ['2']}\n";
        let e = read(deck).unwrap_err();
        assert!(e.contains("route v2") && e.contains("`headers`"), "{e}");
    }

    #[test]
    fn a_plugin_or_namespace_the_input_cannot_show_is_refused() {
        let ingress = |plugins: &str| {
            format!(
                "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: shop\n  \
                 annotations: {{konghq.com/plugins: \"{plugins}\"}}\nspec:\n  rules:\n    - http:\n        \
                 paths:\n          - {{path: /api, pathType: Prefix, backend: {{service: {{name: api}}}}}}\n"
            )
        };
        let plugin = |name: &str, namespace: &str| {
            format!(
                "kind: KongPlugin\nmetadata: {{name: {name}, namespace: {namespace}}}\n\
                 plugin: openid-connect\nconfig: {{issuer: \"https://idp.example.com\"}}\n"
            )
        };
        // In Kong the route runs `oidc-strict`, from another file: here it
        // would have been a bypass rule.
        let e = read(&ingress("oidc-strict")).unwrap_err();
        assert!(
            e.contains("`oidc-strict`") && e.contains("does not hold"),
            "{e}"
        );
        // One name in two namespaces.
        let two = format!(
            "{}---\n{}---\n{}",
            plugin("oidc", "a"),
            plugin("oidc", "b"),
            ingress("oidc")
        );
        let e = read(&two).unwrap_err();
        assert!(e.contains("two namespaces"), "{e}");
        // Held: converted.
        let one = format!("{}---\n{}", plugin("oidc", "a"), ingress("oidc"));
        let r = read(&one).unwrap().unwrap();
        assert_eq!(r.routes[0].plugin.as_deref(), Some("oidc"));
    }

    #[test]
    fn kongs_prefixes_are_ranked_by_the_length_kong_compares() {
        // An ImplementationSpecific /api (Kong's prefix, /api*) and a Prefix
        // /apis (the controller's /apis/): /apis/x is the longer's in Kong.
        let k8s = r#"
kind: KongPlugin
metadata: {name: oidc}
plugin: openid-connect
config: {issuer: "https://idp.example.com"}
---
kind: Service
metadata: {name: api}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: public}
spec:
  rules:
    - http:
        paths:
          - {path: /api, pathType: ImplementationSpecific, backend: {service: {name: api}}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: admin
  annotations: {konghq.com/plugins: oidc}
spec:
  rules:
    - http:
        paths:
          - {path: /apis, pathType: Prefix, backend: {service: {name: api}}}
"#;
        let r = read(k8s).unwrap().unwrap();
        let order: Vec<&str> = r.routes.iter().map(|x| x.name.as_str()).collect();
        assert_eq!(order, ["ingress admin#0.0", "ingress public#0.0"]);
    }

    #[test]
    fn a_lone_kongplugin_has_no_routes() {
        let text = "kind: KongPlugin\nmetadata: {name: p}\nplugin: openid-connect\nconfig: {}\n";
        assert!(read(text).unwrap().is_none());
    }
}
