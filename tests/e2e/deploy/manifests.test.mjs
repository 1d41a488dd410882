// The Kubernetes manifests of deploy/istio/ and deploy/envoy-gateway/ (and
// kong2wasm's golden Istio output):
//   - Istio resources validate against Istio's own resource models (npm
//     @kubernetes-models/istio, generated from Istio's CRDs), and use no spec
//     field those models do not know (the API server would prune it);
//   - the WasmPlugin is what issue 8 asks: phase AUTHN, oci:// URL, a
//     sha256, fail closed, a structured pluginConfig;
//   - every idp_clusters entry names `outbound|443||<host>` for a host that
//     has a ServiceEntry and a TLS DestinationRule beside it;
//   - Envoy Gateway: the clusters the EnvoyPatchPolicy adds are valid Envoy
//     clusters (`envoy --mode validate`), and the EnvoyExtensionPolicy's
//     config names only those clusters.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import os from 'node:os';
import path from 'node:path';

import { WasmPlugin } from '@kubernetes-models/istio/extensions.istio.io/v1alpha1/WasmPlugin';
import { ServiceEntry } from '@kubernetes-models/istio/networking.istio.io/v1/ServiceEntry';
import { DestinationRule } from '@kubernetes-models/istio/networking.istio.io/v1/DestinationRule';

import { ROOT, filesIn, rel, yamlDocs } from './configs.mjs';

const ENVOY_BIN = process.env.ENVOY_BIN ?? path.join(ROOT, '.venv', 'bin', 'envoy');
// The package's root directory (its exports map lists no .d.ts files).
const ISTIO_MODELS = path.dirname(fileURLToPath(import.meta.resolve('@kubernetes-models/istio')));

const MODELS = {
  'extensions.istio.io/v1alpha1 WasmPlugin': WasmPlugin,
  'networking.istio.io/v1 ServiceEntry': ServiceEntry,
  'networking.istio.io/v1 DestinationRule': DestinationRule,
};

/**
 * The `spec` property names a model's TypeScript declaration lists (the
 * package generates it from the CRD's schema).
 */
function specKeys(group, version, kind) {
  const dts = readFileSync(path.join(ISTIO_MODELS, group, version, `${kind}.d.ts`), 'utf8');
  const start = dts.indexOf('    "spec"');
  assert.ok(start >= 0, `spec in ${kind}.d.ts`);
  const keys = new Set();
  for (const line of dts.slice(start).split('\n').slice(1)) {
    if (/^ {4}\S/.test(line)) break; // back at the level of "spec"
    const m = line.match(/^ {8}"([A-Za-z0-9_]+)"\??:/);
    if (m) keys.add(m[1]);
  }
  assert.ok(keys.size > 3, `read spec keys of ${kind}: ${[...keys]}`);
  return keys;
}

function istioDocs() {
  const docs = [];
  for (const f of [...filesIn('deploy/istio', '.yaml'), ...filesIn('tools/kong2wasm/tests/golden', '.yaml')]) {
    for (const doc of yamlDocs(f)) docs.push({ file: rel(f), doc });
  }
  return docs;
}

test('Istio manifests validate against @kubernetes-models/istio and use only known spec fields', () => {
  const docs = istioDocs();
  assert.ok(docs.some((d) => d.doc.kind === 'WasmPlugin'), 'a WasmPlugin');
  assert.ok(docs.some((d) => d.doc.kind === 'ServiceEntry'), 'a ServiceEntry');
  assert.ok(docs.some((d) => d.doc.kind === 'DestinationRule'), 'a DestinationRule');
  for (const { file, doc } of docs) {
    const key = `${doc.apiVersion} ${doc.kind}`;
    const Model = MODELS[key];
    assert.ok(Model, `${file}: unexpected resource ${key}`);
    assert.doesNotThrow(() => new Model(doc).validate(), `${file} ${doc.kind}/${doc.metadata?.name}`);
    const [group, version] = doc.apiVersion.split('/');
    const known = specKeys(group, version, doc.kind);
    const unknown = Object.keys(doc.spec).filter((k) => !known.has(k));
    assert.deepEqual(unknown, [], `${file} ${doc.kind}: spec fields the CRD does not have`);
  }
});

test('the models really validate: a broken WasmPlugin is refused', () => {
  const { doc } = istioDocs().find((d) => d.doc.kind === 'WasmPlugin');
  for (const [field, value] of [['phase', 'AUTHENTICATE'], ['sha256', 'not-a-digest'], ['failStrategy', 'CLOSE']]) {
    const broken = structuredClone(doc);
    broken.spec[field] = value;
    assert.throws(() => new WasmPlugin(broken).validate(), new RegExp(field), field);
  }
});

test('the WasmPlugins load the filter from OCI, pinned, in the AUTHN phase, fail closed, with a structured config', () => {
  for (const { file, doc } of istioDocs().filter((d) => d.doc.kind === 'WasmPlugin')) {
    const s = doc.spec;
    assert.equal(s.phase, 'AUTHN', file);
    assert.match(s.url, /^oci:\/\/[^/]+\/.+/, `${file} url`);
    assert.match(s.sha256, /^[0-9a-f]{64}$/, `${file} sha256`);
    assert.notEqual(s.failStrategy, 'FAIL_OPEN', `${file} must fail closed`);
    assert.equal(typeof s.pluginConfig, 'object', `${file} pluginConfig is a structured object`);
    assert.ok(s.pluginConfig.issuer, file);
  }
});

test('Istio idp_clusters name outbound|443||<host> clusters with a ServiceEntry and a TLS DestinationRule', () => {
  const byFile = new Map();
  for (const { file, doc } of istioDocs()) {
    if (!byFile.has(file)) byFile.set(file, []);
    byFile.get(file).push(doc);
  }
  // Resources of deploy/istio/ go together; each golden file stands alone.
  const groups = new Map();
  for (const [file, docs] of byFile) {
    const key = file.startsWith('deploy/istio/') ? 'deploy/istio' : file;
    groups.set(key, [...(groups.get(key) ?? []), ...docs]);
  }
  let checked = 0;
  for (const [where, docs] of groups) {
    const entries = new Map();
    for (const se of docs.filter((d) => d.kind === 'ServiceEntry')) {
      for (const h of se.spec.hosts) entries.set(h, se);
    }
    const rules = new Map(docs.filter((d) => d.kind === 'DestinationRule').map((d) => [d.spec.host, d]));
    for (const wp of docs.filter((d) => d.kind === 'WasmPlugin')) {
      const clusters = wp.spec.pluginConfig.idp_clusters ?? {};
      assert.ok(Object.keys(clusters).length > 0, `${where}: idp_clusters`);
      const issuerHost = new URL(wp.spec.pluginConfig.issuer.replace(/\/\.well-known\/openid-configuration$/, '')).host;
      assert.ok(issuerHost in clusters, `${where}: the issuer host ${issuerHost} has a cluster`);
      for (const [authority, cluster] of Object.entries(clusters)) {
        const [host, port = '443'] = authority.split(':');
        assert.equal(cluster, `outbound|${port}||${host}`, `${where}: cluster name for ${authority}`);
        const se = entries.get(host);
        assert.ok(se, `${where}: ServiceEntry for ${host}`);
        assert.ok(se.spec.ports.some((p) => String(p.number) === port), `${where}: ServiceEntry ${host} port ${port}`);
        assert.equal(se.spec.location, 'MESH_EXTERNAL');
        const dr = rules.get(host);
        assert.ok(dr, `${where}: DestinationRule for ${host}`);
        assert.equal(dr.spec.trafficPolicy.tls.mode, 'SIMPLE', `${where}: TLS origination to ${host}`);
        assert.equal(dr.spec.trafficPolicy.tls.sni, host);
        checked++;
      }
    }
  }
  assert.ok(checked >= 2, 'Cognito: issuer host and hosted-UI domain');
});

test('Envoy Gateway: the patched-in IdP clusters are valid Envoy clusters and the policy names only them', () => {
  const docs = filesIn('deploy/envoy-gateway', '.yaml').flatMap((f) => yamlDocs(f));
  const patch = docs.find((d) => d.kind === 'EnvoyPatchPolicy');
  const policy = docs.find((d) => d.kind === 'EnvoyExtensionPolicy');
  assert.ok(patch && policy, 'an EnvoyPatchPolicy and an EnvoyExtensionPolicy');
  assert.equal(patch.spec.type, 'JSONPatch');
  assert.equal(patch.spec.targetRef.kind, 'Gateway');

  const clusters = patch.spec.jsonPatches.map((p) => {
    assert.equal(p.type, 'type.googleapis.com/envoy.config.cluster.v3.Cluster');
    assert.equal(p.operation.op, 'add');
    assert.equal(p.operation.path, '', 'a whole new resource');
    assert.equal(p.operation.value.name, p.name);
    return p.operation.value;
  });

  // Envoy itself checks the clusters (what Envoy Gateway would send it).
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'oidc-eg-'));
  try {
    const bootstrap = path.join(tmp, 'bootstrap.json');
    writeFileSync(bootstrap, JSON.stringify({ static_resources: { clusters } }));
    const out = execFileSync(ENVOY_BIN, ['--mode', 'validate', '-c', bootstrap, '-l', 'error'], { encoding: 'utf8' });
    assert.match(out, /OK/);
    // And refuses a broken one, so the check means something.
    const broken = structuredClone(clusters);
    broken[0].type = 'NOT_A_TYPE';
    writeFileSync(bootstrap, JSON.stringify({ static_resources: { clusters: broken } }));
    assert.throws(() => execFileSync(ENVOY_BIN, ['--mode', 'validate', '-c', bootstrap, '-l', 'critical'], { stdio: 'pipe' }));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }

  const names = new Set(clusters.map((c) => c.name));
  for (const w of policy.spec.wasm) {
    assert.equal(w.failOpen, false, 'fail closed');
    assert.ok(['Image', 'HTTP'].includes(w.code.type));
    if (w.code.type === 'Image') {
      assert.doesNotMatch(w.code.image.url, /^oci:\/\//, 'Envoy Gateway image URLs have no scheme');
      assert.match(w.code.image.sha256, /^[0-9a-f]{64}$/);
    }
    const used = [...Object.values(w.config.idp_clusters ?? {}), ...(w.config.idp_cluster ? [w.config.idp_cluster] : [])];
    assert.ok(used.length > 0);
    for (const c of used) assert.ok(names.has(c), `cluster ${c} is added by the EnvoyPatchPolicy`);
    // Each cluster reaches the host it is keyed by, with TLS SNI of that host.
    for (const [authority, c] of Object.entries(w.config.idp_clusters ?? {})) {
      const cl = clusters.find((x) => x.name === c);
      const addr = cl.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address;
      assert.equal(addr.address, authority.split(':')[0]);
      assert.equal(cl.transport_socket.typed_config.sni, authority.split(':')[0]);
    }
  }
});
