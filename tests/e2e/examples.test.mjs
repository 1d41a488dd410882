// The Envoy configurations we ship as examples load in real Envoy, the
// filter's on_configure included (`envoy --mode validate` runs it).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';

import { ROOT, RUN_DIR, ENVOY_BIN, wasmPath } from './lib.mjs';

/** Runs `envoy --mode validate` on `text`; returns {ok, log}. */
function validateText(name, text) {
  const wasm = wasmPath();
  mkdirSync(RUN_DIR, { recursive: true });
  const out = path.join(RUN_DIR, `validate-${name}`);
  writeFileSync(out, text.replace(/(\/etc\/envoy\/|(?<![\w/])target\/wasm\/)envoy_oidc\.wasm/g, wasm));
  const r = spawnSync(ENVOY_BIN, ['--mode', 'validate', '-c', out, '-l', 'info'], { encoding: 'utf8' });
  return { ok: r.status === 0, log: `${r.stdout}${r.stderr}` };
}

function validate(file) {
  const r = validateText(path.basename(file), readFileSync(path.join(ROOT, file), 'utf8'));
  assert.ok(r.ok, r.log);
  return r.log;
}

for (const file of ['envoy.yaml', 'deploy/envoy/cognito.yaml']) {
  test(`${file} loads in Envoy and configures the filter`, { timeout: 30_000 }, () => {
    const out = validate(file);
    assert.match(out, /configured for issuer/);
    assert.match(out, /OK/);
  });
}

test('a configuration the filter refuses makes Envoy refuse the file, naming the field', { timeout: 30_000 }, () => {
  const good = readFileSync(path.join(ROOT, 'envoy.yaml'), 'utf8');
  const bad = good.replace('"idp_cluster": "idp",', '"idp_cluster": "idp", "leeway": "soon",');
  assert.notEqual(bad, good, 'the example was rewritten');
  const r = validateText('bad.yaml', bad);
  assert.ok(!r.ok, 'Envoy must refuse the configuration');
  assert.match(r.log, /invalid configuration: field `leeway`/);
});
