// One filter for several hosts (issue 17, part): `redirect_uri` lists one
// URI per host and a login started on a host comes back to that host; with
// no `redirect_uri` it is derived from the request, as Kong does. Chromium
// reaches each Envoy as 127.0.0.1 and as localhost: two hosts, two cookie
// jars.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startBrowserStack, launchBrowser, logIn, callbackUrl } from './browser/stack.mjs';

describe('several hosts and a derived redirect_uri', () => {
  let stack;
  let browser;
  before(async () => {
    stack = await startBrowserStack({
      name: 'hosts',
      envoys: [
        { filter: ({ ports, index }) => ({ redirect_uri: [callbackUrl(ports[index]), callbackUrl(ports[index]).replace('127.0.0.1', 'localhost')] }) },
        { filter: () => ({ redirect_uri: undefined }) },
      ],
    });
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await stack?.stop();
  });

  test('a login completes on each host, through that host\'s redirect_uri', { timeout: 60_000 }, async () => {
    for (const host of ['127.0.0.1', 'localhost']) {
      const origin = `http://${host}:${stack.ports[0]}`;
      await logIn(browser.page, origin);
      const auths = stack.idp.tokenRequests().filter((r) => r.params?.grant_type === 'authorization_code');
      assert.equal(auths.at(-1).params.redirect_uri, `${origin}/oidcroute/get`, host);
    }
  });

  test('without redirect_uri it is derived from the request and the login completes', { timeout: 60_000 }, async () => {
    await browser.context.clearCookies();
    const origin = `http://127.0.0.1:${stack.ports[1]}`;
    await logIn(browser.page, origin);
    const auths = stack.idp.tokenRequests().filter((r) => r.params?.grant_type === 'authorization_code');
    assert.equal(auths.at(-1).params.redirect_uri, `${origin}/oidcroute/get`);
  });
});
