// The IdP as a resource an attacker can spend through the filter: with a
// small `idp_call_budget`, a flood of forged callbacks, random opaque
// tokens and random Basic pairs (ten times the budget and more) reaches the
// real provider only as far as the budget allows; a cached bearer token
// keeps passing during the flood; after it, a real client-credentials call
// and a real browser login (Chromium) succeed.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';

import { request, mintToken, withEnvoyLog, sleep, CLIENTS } from './lib.mjs';
import { startBrowserStack, launchBrowser, base } from './browser/stack.mjs';

const BUDGET = { per_second: 1, burst: 2, concurrent: 2 };
const FLOOD = 25;
const basic = (id, secret) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;
const random = () => crypto.randomBytes(12).toString('hex');

describe('the IdP call budget under a flood', { timeout: 90_000 }, () => {
  let s;
  let b;
  let url;
  before(async () => {
    s = await startBrowserStack({
      name: 'budget',
      envoys: [{
        concurrency: 2,
        filter: () => ({ idp_call_budget: { code: BUDGET, client_credentials: BUDGET, introspection: BUDGET } }),
      }],
    });
    url = (p) => `${base(s.ports[0])}${p}`;
    b = await launchBrowser();
  });
  after(async () => {
    await b?.close();
    await s?.stop();
  });

  test('forged callbacks, random opaque tokens and random Basic pairs: the IdP sees at most the budget', async () => {
    await withEnvoyLog(s.envoys, async () => {
      const cached = await mintToken({ issuer: s.idp.issuer });
      const bearer = { authorization: `Bearer ${cached}` };
      assert.equal((await request(url('/oidcroute/get'), { headers: bearer })).status, 200, 'warm');

      // Login cookies and states, minted the way any browser gets them.
      const logins = [];
      for (let i = 0; i < FLOOD; i++) {
        const r = await request(url('/oidcroute/get'), { headers: { accept: 'text/html' } });
        assert.equal(r.status, 302);
        const state = new URL(r.headers.location).searchParams.get('state');
        const cookie = [].concat(r.headers['set-cookie']).map((c) => c.split(';')[0]).join('; ');
        logins.push({ state, cookie });
      }
      s.idp.resetCounts();
      const started = Date.now();
      const statuses = { code: {}, client_credentials: {}, introspection: {} };
      const count = (kind, status) => { statuses[kind][status] = (statuses[kind][status] ?? 0) + 1; };
      const flood = [];
      for (let i = 0; i < FLOOD; i++) {
        const { state, cookie } = logins[i];
        // With `iss`, as the provider sends it (RFC 9207): one without is
        // refused before any exchange.
        const iss = encodeURIComponent(s.idp.issuer);
        flood.push(request(url(`/oidcroute/get?code=garbage-${random()}&state=${state}&iss=${iss}`), { headers: { cookie, accept: 'text/html' } })
          .then((r) => count('code', r.status)));
        flood.push(request(url('/oidcroute/get'), { headers: { authorization: `Bearer opaque-${random()}` } })
          .then((r) => count('introspection', r.status)));
        flood.push(request(url('/oidcroute/get'), { headers: { authorization: basic(`random-${random()}`, random()) } })
          .then((r) => count('client_credentials', r.status)));
        // The cached token passes all along.
        flood.push(request(url('/oidcroute/get'), { headers: bearer }).then((r) => assert.equal(r.status, 200)));
      }
      await Promise.all(flood);
      const seconds = Math.ceil((Date.now() - started) / 1000);
      const allowed = BUDGET.burst + BUDGET.per_second * seconds;
      const tokenCalls = s.idp.tokenRequests();
      const codeCalls = tokenCalls.filter((c) => c.params?.grant_type === 'authorization_code').length;
      const ccCalls = tokenCalls.filter((c) => c.params?.grant_type === 'client_credentials').length;
      const introspections = s.idp.clientRequests('introspection').length;
      const seen = JSON.stringify({ codeCalls, ccCalls, introspections, allowed, seconds, statuses });
      assert.ok(codeCalls <= allowed, `code exchanges within the budget: ${seen}`);
      assert.ok(ccCalls <= allowed, `client-credentials calls within the budget: ${seen}`);
      assert.ok(introspections <= allowed, `introspections within the budget: ${seen}`);
      for (const kind of Object.keys(statuses)) {
        assert.ok((statuses[kind][503] ?? 0) >= FLOOD - allowed, `most ${kind} requests answered 503 at once: ${seen}`);
        assert.equal(statuses[kind][200], undefined, `nothing forged passed: ${seen}`);
      }
    });
  });

  test('after the flood, a real client-credentials call and a real browser login succeed', { timeout: 60_000 }, async () => {
    await withEnvoyLog(s.envoys, async () => {
      await sleep(2500); // the rate refills
      const cc = { authorization: basic(CLIENTS.demo.id, CLIENTS.demo.secret) };
      let r = await request(url('/oidcroute/get'), { headers: cc });
      if (r.status === 503) r = await request(url('/oidcroute/get'), { headers: cc }); // one retry
      assert.equal(r.status, 200, `${r.text} ${JSON.stringify(r.headers)}`);

      const { page } = b;
      const target = url('/oidcroute/get?after=flood');
      const landed = page.waitForResponse((resp) => resp.url() === target && resp.status() !== 302, { timeout: 30_000 });
      await page.goto(target);
      for (let i = 0; i < 20 && page.url() !== target; i++) {
        if (await page.locator('input[name=login]').count()) {
          await page.fill('input[name=login]', 'alice');
          await page.fill('input[name=password]', 'any');
          await Promise.all([page.waitForNavigation({ waitUntil: 'commit' }), page.click('button[type=submit]')]);
        } else if (await page.locator('input[name=prompt][value=consent]').count()) {
          await Promise.all([page.waitForNavigation({ waitUntil: 'commit' }), page.click('button[type=submit]')]);
        } else {
          await sleep(100);
        }
      }
      const resp = await landed;
      assert.equal(resp.status(), 200, `${resp.url()}: ${await resp.text()}`);
      assert.ok((await resp.json()).headers.authorization?.startsWith('Bearer '), 'logged in: a token upstream');
    });
  });
});
