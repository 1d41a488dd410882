// `rules` (issue 17): one configuration serving two hosts and several paths
// with different requirements, first match wins, in real Envoy: an API path
// bearer-only with a scope, a public path, an admin path needing a group on
// one host, an Envoy route followed by name, and paths matching no rule that
// get the top level — the browser login, which completes on both hosts.
// 127.0.0.1 and localhost are the two hosts.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { request, clientCredentialsToken, oidcRoutes } from './lib.mjs';
import { startBrowserStack, launchBrowser, logIn, callbackUrl } from './browser/stack.mjs';

// An Envoy route with a name, ahead of the catch-all: a rule follows it by
// `route_names` (Envoy's `xds.route_name`), whatever its path.
const routes = [
  {
    name: 'reports-route',
    match: { path_separated_prefix: '/oidcroute/reports' },
    route: { cluster: 'echo', regex_rewrite: { pattern: { regex: '^/oidcroute/?' }, substitution: '/' } },
  },
  ...oidcRoutes(),
];

describe('rules: per host, path and route requirements', () => {
  let stack;
  let browser;
  before(async () => {
    stack = await startBrowserStack({
      name: 'rules',
      envoys: [{
        routes,
        filter: ({ ports }) => ({
          redirect_uri: [callbackUrl(ports[0]), callbackUrl(ports[0]).replace('127.0.0.1', 'localhost')],
          scopes_required: ['kongresource/scope1'],
          rules: [
            { match: { paths: ['/oidcroute/public'] }, bypass: true },
            { match: { hosts: ['localhost'], paths: ['/oidcroute/admin'] }, groups_required: ['admins'] },
            { match: { paths: ['/oidcroute/api'] }, auth_methods: ['bearer'], scopes_required: ['kongresource/scope2'] },
            { match: { route_names: ['reports-route'] }, auth_methods: ['bearer'], roles_required: ['auditor'] },
          ],
        }),
      }],
    });
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await stack?.stop();
  });

  const origin = (host) => `http://${host}:${stack.ports[0]}`;
  const call = (host, path, { token, accept } = {}) => request(`${origin('127.0.0.1')}${path}`, {
    headers: {
      host: `${host}:${stack.ports[0]}`,
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(accept ? { accept } : {}),
    },
  });

  test('each route gets its rule, first match wins; no rule: the top level', { timeout: 30_000 }, async () => {
    const scope1 = await clientCredentialsToken(stack.idp, { scope: 'kongresource/scope1' });
    const both = await clientCredentialsToken(stack.idp, { scope: 'kongresource/scope1 kongresource/scope2' });
    const html = 'text/html';
    assert.equal((await call('127.0.0.1', '/oidcroute/public/page')).status, 200, 'public: bypass');
    assert.equal((await call('localhost', '/oidcroute/admin', { token: scope1 })).status, 403, 'admin on localhost needs the group');
    assert.equal((await call('127.0.0.1', '/oidcroute/admin', { token: scope1 })).status, 200, 'admin on the other host: top level');
    assert.equal((await call('127.0.0.1', '/oidcroute/api/orders', { token: scope1 })).status, 403, 'api needs scope2');
    assert.equal((await call('127.0.0.1', '/oidcroute/api/orders', { token: both })).status, 200);
    const api = await call('127.0.0.1', '/oidcroute/api/orders', { accept: html });
    assert.equal(api.status, 401, 'api is bearer-only: a browser is not sent to login');
    const reports = await call('127.0.0.1', '/oidcroute/reports/q1', { token: both });
    assert.equal(reports.status, 403, 'the named Envoy route needs the auditor role');
    assert.match(reports.headers['www-authenticate'], /insufficient_scope/);
    const top = await call('127.0.0.1', '/oidcroute/get', { accept: html });
    assert.equal(top.status, 302, 'no rule: the top level logs browsers in');
    assert.equal((await call('127.0.0.1', '/oidcroute/get', { token: scope1 })).status, 200, 'top level: scope1 is enough');
  });

  test('the browser login under rules completes on both hosts', { timeout: 60_000 }, async () => {
    for (const host of ['127.0.0.1', 'localhost']) {
      await logIn(browser.page, origin(host));
      const auths = stack.idp.tokenRequests().filter((r) => r.params?.grant_type === 'authorization_code');
      assert.equal(auths.at(-1).params.redirect_uri, `${origin(host)}/oidcroute/get`, host);
      // The session is the top level's way in: the bearer-only API refuses it.
      const api = await browser.page.goto(`${origin(host)}/oidcroute/api/orders`);
      assert.equal(api.status(), 401, `${host}: a session does not open the bearer-only API`);
    }
  });
});
