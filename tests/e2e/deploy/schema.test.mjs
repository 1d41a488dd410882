// config.schema.json with a full JSON Schema validator (ajv, draft 2020-12):
//   - the schema itself is valid and strict;
//   - every filter configuration in the repository validates (provider
//     examples, envoy.yaml, the remote-fetch example, the Istio and Envoy
//     Gateway manifests, kong2wasm's golden outputs);
//   - every invalid example is refused naming the field its file name
//     starts with — the same field the filter names (tests/config_schema.rs
//     checks the filter side on the same files).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import Ajv2020 from 'ajv/dist/2020.js';

import { ROOT, filesIn, rel, allFilterConfigs } from './configs.mjs';

const schema = JSON.parse(readFileSync(path.join(ROOT, 'config.schema.json'), 'utf8'));

function compile() {
  const ajv = new Ajv2020({ allErrors: true, strict: true, strictRequired: false, strictTypes: false, allowUnionTypes: true });
  return ajv.compile(schema);
}

/** The top-level config keys an ajv error list names. */
function fieldsNamed(errors) {
  const fields = new Set();
  for (const e of errors) {
    const seg = e.instancePath.split('/')[1];
    if (seg) fields.add(seg);
    else if (e.params?.missingProperty) fields.add(e.params.missingProperty);
    else if (e.params?.additionalProperty) fields.add(e.params.additionalProperty);
  }
  return fields;
}

test('config.schema.json compiles in strict mode', () => {
  const validate = compile();
  assert.equal(typeof validate, 'function');
  assert.equal(schema.additionalProperties, false);
});

test('every filter configuration in the repository validates against config.schema.json', () => {
  const validate = compile();
  const configs = allFilterConfigs();
  const where = configs.map((c) => c.where);
  // The collection is not silently empty: each source contributes.
  for (const must of ['deploy/examples/cognito.json', 'deploy/examples/entra.json', 'envoy.yaml',
    'deploy/envoy/remote-fetch.yaml', 'deploy/istio/wasmplugin.yaml WasmPlugin/envoy-oidc',
    'deploy/envoy-gateway/extension-policy.yaml envoy-oidc']) {
    assert.ok(where.includes(must), `${must} among ${where.join(', ')}`);
  }
  for (const { where: w, config } of configs) {
    assert.ok(validate(config), `${w}: ${JSON.stringify(validate.errors, null, 1)}`);
  }
});

test('invalid examples are refused by the schema naming the field the filter names', () => {
  const validate = compile();
  const files = filesIn('deploy/examples/invalid', '.json');
  assert.ok(files.length >= 5);
  for (const f of files) {
    const expected = path.basename(f).split('.')[0];
    const config = JSON.parse(readFileSync(f, 'utf8'));
    assert.equal(validate(config), false, `${rel(f)} is accepted by the schema`);
    const named = fieldsNamed(validate.errors);
    assert.ok(named.has(expected), `${rel(f)}: schema names ${[...named]} not ${expected}: ${JSON.stringify(validate.errors)}`);
    // One defect per file: nothing else is named (the idp_cluster/idp_clusters
    // alternative is one rule).
    const others = [...named].filter((n) => n !== expected && !(expected === 'idp_cluster' && n === 'idp_clusters'));
    assert.deepEqual(others, [], `${rel(f)} names other fields too`);
  }
});

test('the schema refuses what the filter refuses, key by key (spot checks)', () => {
  const validate = compile();
  const base = { issuer: 'https://idp.example.com', idp_cluster: 'idp' };
  const cases = [
    [{ leeway: 3601 }, false], [{ leeway: 3600 }, true], [{ leeway: -1 }, false],
    [{ idp_timeout_ms: 300000 }, true], [{ idp_timeout_ms: 300001 }, false],
    [{ session_cookie_same_site: 'STRICT' }, true], [{ session_cookie_same_site: 'lax ' }, false],
    [{ upstream_access_token_header: 'x-token' }, true], [{ upstream_access_token_header: 'authorization:' }, false],
    [{ upstream_headers_names: ['X-Sub'] }, true], [{ upstream_headers_names: ['content-length'] }, false],
    [{ bypass_paths: ['/health$', '/public'] }, true], [{ bypass_paths: ['/h?x=1'] }, false],
    [{ client_id: 'one' }, true], [{ client_id: ['one', 'two'] }, true], [{ client_id: [''] }, false],
    [{ redirect_uri: 'https://gw/cb' }, true], [{ redirect_uri: '/cb' }, false],
    [{ issuer: 'https://cognito-idp.us-west-1.amazonaws.com/p/.well-known/openid-configuration' }, true],
    [{ issuer: 'https://idp.example.com/?x=1' }, false],
    [{ scopes: ['openid', 'res/scope1'] }, true], [{ scopes: 'openid' }, false],
    [{ auth_methods: ['bearer'] }, true], [{ auth_methods: [] }, false],
  ];
  for (const [extra, ok] of cases) {
    assert.equal(validate({ ...base, ...extra }), ok, `${JSON.stringify(extra)} should be ${ok ? 'valid' : 'invalid'}`);
  }
});
