// kong2wasm's merging (issue 17) in real Envoy: a deck file and the same
// routes as Ingresses + KongPlugins — the seed's two Kong configurations on
// their own routes, an admin API needing a group, a route without the
// plugin — each become one configuration with a rule per route. Each is
// converted by the tool itself (placeholders swapped for the test
// provider), loaded into Envoy, and checked route by route.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { ROOT, CLIENTS, request, clientCredentialsToken } from './lib.mjs';
import { startBrowserStack, launchBrowser, logIn, callbackUrl } from './browser/stack.mjs';

const FIXTURES = path.join(ROOT, 'tools', 'kong2wasm', 'tests', 'fixtures');

/** kong2wasm on `fixture`, with the seed's placeholders filled in for the
 *  test provider and this Envoy. */
function convert(fixture, { idp, port }) {
  const text = readFileSync(path.join(FIXTURES, fixture), 'utf8')
    .replaceAll('https://cognito-idp.<aws-region>.amazonaws.com/<user-pool-id>', idp.issuer)
    .replaceAll('<your client id>', CLIENTS.demo.id)
    .replaceAll('<your client secret>', CLIENTS.demo.secret)
    .replaceAll('https://<_DataPlane_PublicIP_>/oidcroute/get', callbackUrl(port));
  assert.doesNotMatch(text, /<[a-z_ -]+>/i, 'every placeholder filled');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kong2wasm-e2e-'));
  try {
    const file = path.join(dir, fixture);
    writeFileSync(file, text);
    const out = execFileSync('cargo', ['run', '-q', '-p', 'kong2wasm', '--', '--output', 'config', '--idp-cluster', 'idp', file], {
      cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'],
    });
    return JSON.parse(out);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const basic = (id, secret) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;

for (const fixture of ['deck-routes.yaml', 'ingress-routes.yaml']) {
  describe(`kong2wasm ${fixture}: one filter, Kong's behaviour route by route`, () => {
    let stack;
    let browser;
    let config;
    before(async () => {
      stack = await startBrowserStack({
        name: `kong-routes-${fixture.split('-')[0]}`,
        envoys: [{
          raw: ({ idp, ports }) => {
            config = convert(fixture, { idp, port: ports[0] });
            return config;
          },
        }],
      });
      browser = await launchBrowser();
    });
    after(async () => {
      await browser?.close();
      await stack?.stop();
    });

    const url = (p) => `http://127.0.0.1:${stack.ports[0]}${p}`;

    test('the configuration has a rule per route', () => {
      assert.equal(config.rules.length, 4);
      // Kong's route paths are prefixes inside a segment too: `*`.
      assert.deepEqual(config.rules.at(-1).match, { paths: ['/oidcroute*'] });
    });

    test('public route: no plugin, no authentication', { timeout: 20_000 }, async () => {
      assert.equal((await request(url('/oidcroute/public/x'))).status, 200);
    });

    test('the seed\'s client-credentials route: Basic exchanged with its scope; no login', { timeout: 20_000 }, async () => {
      const r = await request(url('/oidcroute/cc/anything'), {
        headers: { authorization: basic(CLIENTS.demo.id, CLIENTS.demo.secret) },
      });
      assert.equal(r.status, 200);
      assert.match(r.json.headers.authorization, /^Bearer /, 'the upstream gets the access token');
      const grant = stack.idp.tokenRequests().filter((q) => q.params?.grant_type === 'client_credentials').at(-1);
      assert.equal(grant.params.scope, 'kongresource/scope1', 'that plugin\'s scopes');
      const browserish = await request(url('/oidcroute/cc/anything'), { headers: { accept: 'text/html' } });
      assert.equal(browserish.status, 401, 'its plugin has no client: no login there');
    });

    test('admin route: bearer only, needs the admins group, for GET and POST only', { timeout: 20_000 }, async () => {
      const token = await clientCredentialsToken(stack.idp, { scope: 'kongresource/scope1' });
      const call = (method, headers) => request(url('/oidcroute/admin/users'), { method, headers });
      const denied = await call('GET', { authorization: `Bearer ${token}` });
      assert.equal(denied.status, 403);
      assert.match(denied.headers['www-authenticate'], /insufficient_scope/);
      assert.equal((await call('GET', { accept: 'text/html' })).status, 401, 'no login on a bearer-only route');
      // DELETE is not the admin route's: the /oidcroute route (the seed's
      // authorization-code plugin, no group required) takes it.
      assert.equal((await call('DELETE', { authorization: `Bearer ${token}` })).status, 200);
      // Kong's prefix /oidcroute/admin matches inside its last segment too:
      // /oidcroute/administration is the admin route's, as in Kong.
      const inside = await request(url('/oidcroute/administration'), { headers: { authorization: `Bearer ${token}` } });
      assert.equal(inside.status, 403);
    });

    test('the seed\'s authorization-code route: the browser logs in', { timeout: 60_000 }, async () => {
      await logIn(browser.page, `http://127.0.0.1:${stack.ports[0]}`);
      const auths = stack.idp.tokenRequests().filter((r) => r.params?.grant_type === 'authorization_code');
      assert.equal(auths.at(-1).params.redirect_uri, callbackUrl(stack.ports[0]));
    });
  });
}
