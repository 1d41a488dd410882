// The OCI packaging (scripts/oci-package.sh), for real: a loopback
// `docker-registry` (Debian), a push with `skopeo`, a pull back, and the
// checks Istio's and Envoy Gateway's image fetchers make:
//   - "oci" variant: exactly two layers, one of them
//     application/vnd.module.wasm.content.layer.v1+wasm holding the module
//     byte for byte (so its digest is the module's sha256);
//   - "compat" variant: last layer application/vnd.oci.image.layer.v1.tar+gzip
//     with plugin.wasm inside;
//   - the manifest digest the script prints is what the registry serves
//     (what a WasmPlugin's `sha256` pins).
// scripts/setup-deploy.sh installs skopeo and docker-registry.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync, rmSync, openSync, closeSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import os from 'node:os';
import path from 'node:path';

import { ROOT, wasmPath, freePort, request, sleep } from './lib.mjs';

const WASM_LAYER = 'application/vnd.module.wasm.content.layer.v1+wasm';
const WASM_CONFIG = 'application/vnd.module.wasm.config.v1+json';
const TAR_GZ_LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

const sha256 = (buf) => createHash('sha256').update(buf).digest('hex');

function need(cmd) {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
  } catch {
    throw new Error(`${cmd} is not installed: run scripts/setup-deploy.sh`);
  }
}

let tmp;
let registry;
let registryPort;
let registryLog;

before(async () => {
  need('skopeo');
  need('docker-registry');
  tmp = mkdtempSync(path.join(os.tmpdir(), 'oidc-oci-'));
  for (let attempt = 1; ; attempt++) {
    registryPort = await freePort();
    const config = path.join(tmp, `registry-${attempt}.yml`);
    // Loopback only, no auth, storage in the temp dir.
    writeFileSync(config, [
      'version: 0.1',
      'log: { level: warn }',
      `storage: { filesystem: { rootdirectory: ${path.join(tmp, 'registry')} } }`,
      `http: { addr: "127.0.0.1:${registryPort}" }`,
      '',
    ].join('\n'));
    registryLog = path.join(tmp, `registry-${attempt}.log`);
    const fd = openSync(registryLog, 'w');
    registry = spawn('docker-registry', ['serve', config], { stdio: ['ignore', fd, fd] });
    closeSync(fd);
    let exited = false;
    registry.once('exit', () => { exited = true; });
    const deadline = Date.now() + 10_000;
    let up = false;
    while (!exited && Date.now() < deadline) {
      try {
        const r = await request(`http://127.0.0.1:${registryPort}/v2/`, { timeoutMs: 1000 });
        if (r.status === 200) { up = true; break; }
      } catch { /* not yet */ }
      await sleep(50);
    }
    if (up) break;
    registry.kill('SIGKILL');
    if (attempt >= 3) throw new Error(`registry did not start:\n${readFileSync(registryLog, 'utf8')}`);
  }
});

after(async () => {
  if (registry && registry.exitCode === null) {
    const gone = new Promise((r) => registry.once('exit', r));
    registry.kill('SIGTERM');
    await Promise.race([gone, sleep(3000)]);
    if (registry.exitCode === null) registry.kill('SIGKILL');
  }
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

function runPackage(args) {
  const out = execFileSync(path.join(ROOT, 'scripts', 'oci-package.sh'), args, {
    cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'],
  });
  const digests = {};
  for (const line of out.trim().split('\n')) {
    const m = line.match(/^(\S+) (sha256:[0-9a-f]{64})$/);
    if (m) digests[m[1]] = m[2];
  }
  return digests;
}

/** The OCI layout's blob for a digest. */
const blob = (layout, digest) => readFileSync(path.join(layout, 'blobs', 'sha256', digest.replace(/^sha256:/, '')));

/** Minimal tar reader: the named regular file's bytes, or undefined. */
function tarFile(tar, name) {
  let off = 0;
  let paxPath;
  while (off + 512 <= tar.length) {
    const header = tar.subarray(off, off + 512);
    if (header.every((b) => b === 0)) break;
    const field = (a, b) => header.subarray(a, b).toString('utf8').replace(/\0.*$/s, '');
    const size = parseInt(field(124, 136).trim() || '0', 8);
    const type = field(156, 157) || '0';
    const data = tar.subarray(off + 512, off + 512 + size);
    const entry = paxPath ?? field(0, 100);
    paxPath = undefined;
    if (type === 'x') {
      const m = data.toString('utf8').match(/\d+ path=([^\n]*)\n/);
      if (m) paxPath = m[1];
    } else if ((type === '0') && entry.replace(/^\.?\//, '') === name) {
      return Buffer.from(data);
    }
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return undefined;
}

test('oci-package.sh images survive a push to and pull from a registry with the same digests', { timeout: 120_000 }, async () => {
  const wasm = readFileSync(wasmPath());
  const moduleDigest = `sha256:${sha256(wasm)}`;
  const layout = path.join(tmp, 'layout');
  const repo = `127.0.0.1:${registryPort}/envoy-oidc`;
  const printed = runPackage(['--wasm', wasmPath(), '--out', layout, '--tag', 'test', '--push', repo, '--insecure']);
  assert.equal(printed.module, moduleDigest, 'the script names the module digest');
  assert.ok(printed.test && printed['test-compat'], `script output: ${JSON.stringify(printed)}`);

  // The registry serves the manifests under the digests the script printed.
  for (const tag of ['test', 'test-compat']) {
    const r = await request(`http://127.0.0.1:${registryPort}/v2/envoy-oidc/manifests/${tag}`, {
      headers: { accept: OCI_MANIFEST },
    });
    assert.equal(r.status, 200, `GET manifest ${tag}: ${r.text}`);
    assert.equal(r.headers['docker-content-digest'], printed[tag], `registry digest of ${tag}`);
    assert.equal(`sha256:${sha256(Buffer.from(r.text, 'utf8'))}`, printed[tag]);
  }

  // Pull both back into a fresh layout.
  const pulled = path.join(tmp, 'pulled');
  for (const tag of ['test', 'test-compat']) {
    execFileSync('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `docker://${repo}:${tag}`, `oci:${pulled}:${tag}`],
      { stdio: ['ignore', 'ignore', 'pipe'] });
  }
  const index = JSON.parse(readFileSync(path.join(pulled, 'index.json'), 'utf8'));
  const byTag = Object.fromEntries(index.manifests.map((m) => [m.annotations['org.opencontainers.image.ref.name'], m]));
  assert.equal(byTag.test.digest, printed.test, 'pulled manifest digest, oci variant');
  assert.equal(byTag['test-compat'].digest, printed['test-compat'], 'pulled manifest digest, compat variant');

  // "oci" variant: as Istio's extractOCIArtifactImage wants it.
  const m = JSON.parse(blob(pulled, byTag.test.digest));
  assert.equal(m.mediaType, OCI_MANIFEST);
  assert.equal(m.config.mediaType, WASM_CONFIG);
  assert.equal(m.layers.length, 2, 'Istio and Envoy Gateway accept the oci variant with exactly two layers');
  const wasmLayers = m.layers.filter((l) => l.mediaType === WASM_LAYER);
  assert.equal(wasmLayers.length, 1, `one ${WASM_LAYER} layer`);
  assert.equal(wasmLayers[0].digest, moduleDigest, 'the wasm layer digest is the module sha256');
  const pulledModule = blob(pulled, wasmLayers[0].digest);
  assert.ok(pulledModule.equals(wasm), 'pulled module is byte-identical to the built one');

  // "compat" variant: plugin.wasm in the last tar+gzip layer.
  const c = JSON.parse(blob(pulled, byTag['test-compat'].digest));
  const last = c.layers[c.layers.length - 1];
  assert.equal(last.mediaType, TAR_GZ_LAYER);
  const plugin = tarFile(gunzipSync(blob(pulled, last.digest)), 'plugin.wasm');
  assert.ok(plugin, 'plugin.wasm in the compat layer');
  assert.equal(sha256(plugin), sha256(wasm), 'compat plugin.wasm is the module');
});

test('oci-package.sh output is reproducible and changes with the module', { timeout: 60_000 }, () => {
  const a = runPackage(['--wasm', wasmPath(), '--out', path.join(tmp, 'a'), '--tag', 'x']);
  const b = runPackage(['--wasm', wasmPath(), '--out', path.join(tmp, 'b'), '--tag', 'x']);
  assert.deepEqual(a, b, 'same module, same digests');
  // A different module (one byte appended: still starts with the wasm magic).
  const other = path.join(tmp, 'other.wasm');
  writeFileSync(other, Buffer.concat([readFileSync(wasmPath()), Buffer.from([0])]));
  const c = runPackage(['--wasm', other, '--out', path.join(tmp, 'c'), '--tag', 'x']);
  assert.notEqual(c.x, a.x);
  assert.notEqual(c.module, a.module);
  // Not a wasm module: refused.
  const junk = path.join(tmp, 'junk.wasm');
  writeFileSync(junk, 'not wasm');
  assert.throws(() => runPackage(['--wasm', junk, '--out', path.join(tmp, 'd')]), /not a WebAssembly module/);
});
