// The filter's counters reach Envoy's /stats and /stats/prometheus, and
// its denial log lines never carry a token.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { startStack, get, request, clientCredentialsToken, tamperSignature, withEnvoyLog, sleep } from './lib.mjs';

async function counters(stack) {
  const r = await request(`http://127.0.0.1:${stack.envoy.adminPort}/stats?filter=oidc_`);
  const out = {};
  for (const m of r.text.matchAll(/^(?:wasmcustom\.)?oidc_(\w+): (\d+)$/gm)) out[m[1]] = Number(m[2]);
  return out;
}

test('allowed and denied requests and IdP calls are counted; logs carry no token', { timeout: 30_000 }, async () => {
  const s = await startStack({ name: 'metrics', filter: { scopes_required: ['kongresource/scope1'] } });
  try {
    await withEnvoyLog(s.envoy, async () => {
      const token = await clientCredentialsToken(s.idp);
      for (let i = 0; i < 3; i++) assert.equal((await get(s.url('/oidcroute/get'), token)).status, 200);
      assert.equal((await get(s.url('/oidcroute/get'))).status, 401);
      assert.equal((await get(s.url('/oidcroute/get'), tamperSignature(token))).status, 401);
      await sleep(1300); // counters are handed to Envoy on the filter's 1 s tick
      const c = await counters(s);
      assert.equal(c.allowed_bearer, 3, JSON.stringify(c));
      assert.equal(c.denied_no_credentials, 1, JSON.stringify(c));
      assert.equal(c.denied_invalid_token, 1, JSON.stringify(c));
      assert.equal(c.idp_discovery_ok, 1, JSON.stringify(c));
      assert.equal(c.idp_jwks_ok, 1, JSON.stringify(c));
      assert.equal(c.token_cache_hit, 2, JSON.stringify(c));
      const prom = await request(`http://127.0.0.1:${s.envoy.adminPort}/stats/prometheus`);
      assert.match(prom.text, /oidc_allowed_bearer\S* 3/);
      const log = readFileSync(s.envoy.logFile, 'utf8');
      assert.match(log, /401 GET \/oidcroute\/get: invalid token: invalid signature/);
      assert.ok(!log.includes(token.split('.')[2]), 'no token in the log');
    });
  } finally {
    await s.stop();
  }
});
