// Helpers for the deploy tests: the manifests and example configs in the
// repository, and every filter configuration embedded in them.

import { readFileSync, readdirSync, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(HERE, '..', '..', '..');

export const rel = (p) => path.relative(ROOT, p);

export function filesIn(dir, ext) {
  const abs = path.join(ROOT, dir);
  if (!existsSync(abs)) return [];
  return readdirSync(abs).filter((f) => f.endsWith(ext)).sort().map((f) => path.join(abs, f));
}

/** Every YAML document of a file (comments and `---` separators allowed). */
export function yamlDocs(file) {
  return YAML.parseAllDocuments(readFileSync(file, 'utf8')).map((d) => {
    if (d.errors.length) throw new Error(`${rel(file)}: ${d.errors[0].message}`);
    return d.toJS();
  }).filter((d) => d != null);
}

/** The wasm filter configurations of an Envoy bootstrap (JSON strings). */
function envoyWasmConfigs(doc) {
  const out = [];
  const walk = (v) => {
    if (Array.isArray(v)) { v.forEach(walk); return; }
    if (v && typeof v === 'object') {
      if (v['@type'] === 'type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm') {
        out.push(v.config.configuration.value);
        return;
      }
      Object.values(v).forEach(walk);
    }
  };
  walk(doc);
  return out;
}

/**
 * Every filter configuration in the repository, as `{ where, config }`
 * (config parsed from JSON, the way the filter receives it):
 * - deploy/examples/*.json
 * - the wasm filter `configuration` of envoy.yaml and deploy/envoy/*.yaml
 * - Istio WasmPlugin `pluginConfig` in deploy/istio/ and the kong2wasm goldens
 * - Envoy Gateway EnvoyExtensionPolicy `wasm[].config`
 */
export function allFilterConfigs() {
  const out = [];
  for (const f of filesIn('deploy/examples', '.json')) {
    out.push({ where: rel(f), config: JSON.parse(readFileSync(f, 'utf8')) });
  }
  for (const f of [path.join(ROOT, 'envoy.yaml'), ...filesIn('deploy/envoy', '.yaml')]) {
    for (const doc of yamlDocs(f)) {
      for (const s of envoyWasmConfigs(doc)) out.push({ where: rel(f), config: JSON.parse(s) });
    }
  }
  for (const f of [...filesIn('deploy/istio', '.yaml'), ...filesIn('tools/kong2wasm/tests/golden', '.yaml')]) {
    for (const doc of yamlDocs(f)) {
      // What Istio hands the filter is this object as JSON.
      if (doc.kind === 'WasmPlugin') out.push({ where: `${rel(f)} WasmPlugin/${doc.metadata.name}`, config: doc.spec.pluginConfig });
    }
  }
  for (const f of filesIn('tools/kong2wasm/tests/golden', '.json')) {
    out.push({ where: rel(f), config: JSON.parse(readFileSync(f, 'utf8')) });
  }
  for (const f of filesIn('deploy/envoy-gateway', '.yaml')) {
    for (const doc of yamlDocs(f)) {
      if (doc.kind !== 'EnvoyExtensionPolicy') continue;
      for (const w of doc.spec.wasm) out.push({ where: `${rel(f)} ${w.name}`, config: w.config });
    }
  }
  return out;
}
