// Envoy loading the filter through `vm_config.code.remote` (http_uri +
// sha256), as deploy/envoy/remote-fetch.yaml shows: the example's wasm filter
// entry, pointed at a local HTTP server, in front of the test provider and
// the echo upstream.
//   - the pinned module loads and serves the bearer flow (200 with a token
//     from the provider, 401 without);
//   - a sha256 that does not match the served bytes is refused: the filter
//     fails closed, every request gets 503 and nothing reaches the upstream.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import YAML from 'yaml';

import {
  ROOT, ENVOY_BIN, wasmPath, startProvider, startEcho, envoyConfig, startEnvoy, freePort,
  filterConfig, get, request, clientCredentialsToken, withEnvoyLog,
} from '../lib.mjs';

const EXAMPLE = path.join(ROOT, 'deploy', 'envoy', 'remote-fetch.yaml');
const sha256 = (buf) => createHash('sha256').update(buf).digest('hex');

let moduleServer;
let moduleHits = 0;
let idp;
let echo;

before(async () => {
  const wasm = readFileSync(wasmPath());
  moduleServer = http.createServer((req, res) => {
    moduleHits++;
    if (req.url !== '/envoy-oidc/envoy_oidc.wasm') { res.writeHead(404).end(); return; }
    res.writeHead(200, { 'content-type': 'application/wasm', 'content-length': wasm.length });
    res.end(wasm);
  });
  await new Promise((r) => moduleServer.listen(0, '127.0.0.1', r));
  idp = await startProvider({ port: 0 });
  echo = await startEcho({ port: 0 });
});

after(async () => {
  await Promise.allSettled([
    new Promise((r) => moduleServer?.close(r)),
    idp?.close(),
    echo?.close(),
  ]);
});

/** The example's wasm filter entry, with its `configuration` kept aside. */
function exampleWasmFilter() {
  const doc = YAML.parse(readFileSync(EXAMPLE, 'utf8'));
  const hcm = doc.static_resources.listeners[0].filter_chains[0].filters[0].typed_config;
  const entry = hcm.http_filters.find((f) => f.name === 'envoy.filters.http.wasm');
  assert.ok(entry, 'the example has a wasm filter');
  return { entry, clusters: doc.static_resources.clusters };
}

/** An Envoy bootstrap for the test stack whose wasm filter is the example's, fetching from us. */
async function remoteConfig(pinnedSha) {
  const { entry } = exampleWasmFilter();
  const remote = entry.typed_config.config.vm_config.code.remote;
  const moduleCluster = remote.http_uri.cluster;
  remote.http_uri.uri = `http://127.0.0.1:${moduleServer.address().port}/envoy-oidc/envoy_oidc.wasm`;
  remote.sha256 = pinnedSha;
  entry.typed_config.config.configuration.value = JSON.stringify(filterConfig(idp.issuer));

  const config = envoyConfig({
    port: await freePort(),
    adminPort: await freePort(),
    idpPort: idp.port,
    echoPort: echo.port,
    filter: filterConfig(idp.issuer),
    clusters: { [moduleCluster]: moduleServer.address().port },
  });
  const filters = config.static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters;
  const i = filters.findIndex((f) => f.name === 'envoy.filters.http.wasm');
  filters[i] = entry;
  return config;
}

async function upstreamSeen() {
  const r = await request(`${echo.url}/__received`);
  return r.json;
}

test('the remote-fetch example passes envoy --mode validate', { timeout: 30_000 }, () => {
  const out = execFileSync(ENVOY_BIN, ['--mode', 'validate', '-c', EXAMPLE, '-l', 'error'], { encoding: 'utf8' });
  assert.match(out, /OK/);
  const { entry, clusters } = exampleWasmFilter();
  const { code } = entry.typed_config.config.vm_config;
  assert.match(code.remote.sha256, /^[0-9a-f]{64}$/, 'the example pins a sha256');
  assert.equal(entry.typed_config.config.fail_open, false, 'the example fails closed');
  const names = clusters.map((c) => c.name);
  assert.ok(names.includes(code.remote.http_uri.cluster), 'the module cluster exists');
  const filter = JSON.parse(entry.typed_config.config.configuration.value);
  for (const cluster of Object.values(filter.idp_clusters)) assert.ok(names.includes(cluster), `cluster ${cluster} exists`);
});

test('Envoy fetches the module by URL with a pinned sha256 and serves the bearer flow', { timeout: 60_000 }, async () => {
  const hitsBefore = moduleHits;
  const envoy = await startEnvoy({ config: await remoteConfig(sha256(readFileSync(wasmPath()))), name: 'remote-ok' });
  try {
    await withEnvoyLog(envoy, async () => {
      assert.ok(moduleHits > hitsBefore, 'Envoy downloaded the module from the HTTP server');
      await request(`${echo.url}/__received`, { method: 'DELETE' });
      const token = await clientCredentialsToken(idp);
      const ok = await get(`${envoy.url}/oidcroute/get`, token);
      assert.equal(ok.status, 200, `with a token: ${ok.text}`);
      const seen = await upstreamSeen();
      assert.equal(seen.length, 1);
      assert.equal(seen[0].headers.authorization, `Bearer ${token}`);
      const none = await get(`${envoy.url}/oidcroute/get`);
      assert.equal(none.status, 401, `without a token: ${none.text}`);
      assert.equal((await upstreamSeen()).length, 1, 'nothing more upstream');
    });
  } finally {
    await envoy.stop();
  }
});

test('Envoy refuses a module whose sha256 does not match the pin: fail closed, 503, nothing upstream', { timeout: 60_000 }, async () => {
  const hitsBefore = moduleHits;
  const wrong = sha256(Buffer.from('some other module'));
  const envoy = await startEnvoy({ config: await remoteConfig(wrong), name: 'remote-bad-sha' });
  try {
    await withEnvoyLog(envoy, async () => {
      assert.ok(moduleHits > hitsBefore, 'Envoy did download the module');
      await request(`${echo.url}/__received`, { method: 'DELETE' });
      const token = await clientCredentialsToken(idp);
      for (const r of [await get(`${envoy.url}/oidcroute/get`, token), await get(`${envoy.url}/oidcroute/get`)]) {
        assert.equal(r.status, 503, `status: ${r.text}`);
      }
      assert.deepEqual(await upstreamSeen(), [], 'nothing may reach the upstream');
      assert.match(envoy.log(), /Plugin configured to fail closed failed to load/);
      assert.doesNotMatch(envoy.log(), /wasm log oidc: configured for issuer/, 'the module never ran');
    });
  } finally {
    await envoy.stop();
  }
});
