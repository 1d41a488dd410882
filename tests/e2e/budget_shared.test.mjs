// The IdP call budget is the IdP's, not each filter configuration's: two
// listeners of one Envoy, each with its own configuration of the filter
// (one VM, `vm_id` "oidc", so one shared data), both for the same issuer.
// A flood of random Basic pairs sent to both reaches the real provider only
// as far as one budget allows; were each configuration's its own, twice that.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';

import {
  startProvider, startEcho, startEnvoy, envoyConfig, filterConfig, wasmFilter, wasmPath, freePort,
  request, mintToken, withEnvoyLog,
} from './lib.mjs';

const BUDGET = { per_second: 1, burst: 2, concurrent: 2 };
const FLOOD = 20; // per listener
const basic = (id, secret) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;
const random = () => crypto.randomBytes(12).toString('hex');

describe('one IdP call budget for two configurations of the filter', { timeout: 60_000 }, () => {
  let idp;
  let echo;
  let envoy;
  const urls = [];
  before(async () => {
    idp = await startProvider({ port: 0 });
    echo = await startEcho({ port: 0 });
    const budget = { idp_call_budget: { client_credentials: BUDGET } };
    for (let attempt = 1; ; attempt++) {
      const ports = [await freePort(), await freePort()];
      const config = envoyConfig({
        port: ports[0],
        adminPort: await freePort(),
        idpPort: idp.port,
        echoPort: echo.port,
        filter: filterConfig(idp.issuer, budget),
      });
      // The second listener: the same routes, another configuration (a
      // bypass path more: another text, so other shared-data names but for
      // the budget's).
      const [first] = config.static_resources.listeners;
      const second = structuredClone(first);
      second.name = 'second';
      second.address.socket_address.port_value = ports[1];
      const hcm = second.filter_chains[0].filters[0].typed_config;
      const other = filterConfig(idp.issuer, { ...budget, bypass_paths: ['/health'] });
      hcm.http_filters[0] = wasmFilter(wasmPath(), other);
      config.static_resources.listeners.push(second);
      try {
        envoy = await startEnvoy({ config, concurrency: 2, name: 'budget-shared' });
        urls.push(...ports.map((p) => (path) => `http://127.0.0.1:${p}${path}`));
        break;
      } catch (e) {
        if (attempt >= 3 || !/Address already in use/.test(e.message)) throw e;
      }
    }
  });
  after(async () => {
    await Promise.allSettled([envoy?.stop(), idp?.close(), echo?.close()]);
  });

  test('random Basic pairs sent to both: the IdP sees at most one budget', async () => {
    await withEnvoyLog([envoy], async () => {
      const cached = await mintToken({ issuer: idp.issuer });
      for (const url of urls) {
        const r = await request(url('/oidcroute/get'), { headers: { authorization: `Bearer ${cached}` } });
        assert.equal(r.status, 200, 'warm: documents fetched');
      }
      idp.resetCounts();
      const started = Date.now();
      const statuses = {};
      const flood = [];
      for (let i = 0; i < FLOOD; i++) {
        for (const url of urls) {
          flood.push(request(url('/oidcroute/get'), { headers: { authorization: basic(`random-${random()}`, random()) } })
            .then((r) => { statuses[r.status] = (statuses[r.status] ?? 0) + 1; }));
        }
      }
      await Promise.all(flood);
      const seconds = Math.ceil((Date.now() - started) / 1000);
      const allowed = BUDGET.burst + BUDGET.per_second * seconds;
      const ccCalls = idp.tokenRequests().filter((c) => c.params?.grant_type === 'client_credentials').length;
      const seen = JSON.stringify({ ccCalls, allowed, seconds, statuses });
      assert.ok(ccCalls <= allowed, `client-credentials calls within one budget: ${seen}`);
      assert.ok((statuses[503] ?? 0) >= 2 * FLOOD - allowed, `the rest answered 503 at once: ${seen}`);
      assert.equal(statuses[200], undefined, `nothing forged passed: ${seen}`);
    });
  });
});
