// Logout end to end, as Kong does it (issue 14): Chromium, real Envoy with
// the filter, the real provider.
//
// - Only POST and DELETE log out by default: a GET on the logout path (a
//   link or an image from another site) is authenticated and passed on
//   like any request; GET logs out only when `logout_methods` lists it.
// - Logout always logs out: with the IdP down, or on an Envoy that never
//   fetched discovery, the cookies are cleared in the response at once.
// - Revocation (`logout_revoke`, off by default) is made after the
//   response; Cognito-style, at a configured `revocation_endpoint` when
//   discovery lists none.
//
// Cookies are per host, not per port: the Envoys of a test, all on
// 127.0.0.1, see the same session cookies, as replicas behind one name do.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import {
  request, withEnvoyLog, sleep, freePort, envoyConfig, startEnvoy, CLIENTS,
} from './lib.mjs';
import {
  startBrowserStack, launchBrowser, sessionCookies, browserFilter, base, loggedOutUrl, logIn,
} from './browser/stack.mjs';

/** Waits until `check()` is true (a call made after the response). */
async function eventually(check, what, ms = 5000) {
  const until = Date.now() + ms;
  while (!check()) {
    if (Date.now() > until) assert.fail(`not within ${ms} ms: ${what}`);
    await sleep(25);
  }
}

/** The response clears cookie `name` (a page's response or an API one). */
const clears = async (resp, name) => (await resp.headersArray())
  .some((h) => h.name.toLowerCase() === 'set-cookie' && h.value.startsWith(`${name}=;`) && /Max-Age=0/i.test(h.value));

// ---------------------------------------------------------------- methods

describe('logout methods', () => {
  let s;
  let b;
  before(async () => {
    s = await startBrowserStack({
      name: 'logout-methods',
      envoys: [{}, { filter: () => ({ logout_methods: ['GET'] }) }],
    });
    b = await launchBrowser();
  });
  after(async () => {
    await b?.close();
    await s?.stop();
  });
  const run = (fn) => (t) => withEnvoyLog(s.envoys, () => fn(t));

  test('a GET on the logout path is no logout by default: passed on with the session, which stays', { timeout: 30_000 }, run(async () => {
    const { page, context } = b;
    const origin = base(s.ports[0]);
    await logIn(page, origin);
    s.echo.clear();
    s.idp.resetCounts();
    // What a link (or an <img>) from another site does.
    const r = await context.request.get(`${origin}/oidcroute/logout`, { maxRedirects: 0 });
    assert.equal(r.status(), 200, await r.text());
    const seen = await r.json();
    assert.equal(seen.path, '/logout');
    assert.match(String(seen.headers.authorization), /^Bearer /, 'authenticated like any request');
    assert.ok(!(await clears(r, 'session')), 'no cookie cleared');
    assert.ok((await sessionCookies(context)).length >= 1, 'still logged in');
    // In the browser: the application's page there, with its "Log out" button.
    await page.goto(`${origin}/oidcroute/logout`);
    assert.equal(await page.locator('button[name=logout]').count(), 1);
    const again = await context.request.get(`${origin}/oidcroute/get`, { maxRedirects: 0 });
    assert.equal(again.status(), 200, 'the session still serves');
    assert.deepEqual(s.idp.counts(), {}, 'no provider call');
  }));

  test('POST (the page\'s form) and DELETE log out; a PUT does not', { timeout: 30_000 }, run(async () => {
    const { page, context } = b;
    const origin = base(s.ports[0]);
    if ((await sessionCookies(context)).length === 0) await logIn(page, origin);
    const put = await context.request.fetch(`${origin}/oidcroute/logout`, { method: 'PUT', maxRedirects: 0 });
    assert.equal(put.status(), 200, 'passed on');
    assert.ok((await sessionCookies(context)).length >= 1, 'still logged in');

    // The application's "Log out" button POSTs: 302 to the provider's logout.
    await page.goto(`${origin}/oidcroute/logout`);
    const posted = page.waitForResponse((r) => r.url() === `${origin}/oidcroute/logout` && r.request().method() === 'POST');
    await page.click('button[name=logout]');
    const resp = await posted;
    assert.equal(resp.status(), 302);
    assert.ok(resp.headers().location.startsWith(`${s.idp.issuer}/session/end?`), resp.headers().location);
    assert.ok(await clears(resp, 'session'));
    assert.deepEqual(await sessionCookies(context), [], 'session cookies cleared');

    await logIn(page, origin);
    const del = await context.request.delete(`${origin}/oidcroute/logout`, { maxRedirects: 0 });
    assert.equal(del.status(), 302);
    assert.deepEqual(await sessionCookies(context), []);
  }));

  test('GET logs out where logout_methods lists it (and POST then does not)', { timeout: 30_000 }, run(async () => {
    const { page, context } = b;
    const listed = base(s.ports[1]);
    await logIn(page, base(s.ports[0]));
    const post = await context.request.post(`${listed}/oidcroute/logout`, { maxRedirects: 0 });
    assert.equal(post.status(), 200, 'POST passed on there');
    assert.ok((await sessionCookies(context)).length >= 1);
    const get = await context.request.get(`${listed}/oidcroute/logout`, { maxRedirects: 0 });
    assert.equal(get.status(), 302);
    assert.ok(get.headers().location.startsWith(`${s.idp.issuer}/session/end?`), get.headers().location);
    assert.deepEqual(await sessionCookies(context), [], 'logged out by a GET');
  }));
});

// ---------------------------------------------------------------- the IdP down

describe('logout with the IdP down', () => {
  let s;
  let b;
  let dead;
  before(async () => {
    s = await startBrowserStack({
      name: 'logout-down',
      envoys: [{ filter: () => ({ logout_revoke: true }) }],
    });
    // A second Envoy of the same configuration whose IdP cluster is a port
    // nobody listens on: it never gets discovery.
    const port = await freePort();
    const config = envoyConfig({
      port,
      adminPort: await freePort(),
      idpPort: await freePort(),
      echoPort: s.echo.port,
      filter: browserFilter(s.idp, port, { logout_revoke: true }),
    });
    dead = await startEnvoy({ config, name: 'logout-dead-idp' });
    b = await launchBrowser();
  });
  after(async () => {
    await b?.close();
    await dead?.stop();
    await s?.stop();
  });
  const run = (fn) => (t) => withEnvoyLog([...s.envoys, dead], () => fn(t));

  test('an Envoy that never reached the IdP logs out at once, to post_logout_redirect_uri', { timeout: 30_000 }, run(async () => {
    const { page, context } = b;
    await logIn(page, base(s.ports[0]));
    s.echo.clear();
    const started = Date.now();
    const r = await context.request.post(`${dead.url}/oidcroute/logout`, { maxRedirects: 0 });
    const took = Date.now() - started;
    assert.equal(r.status(), 302, await r.text());
    assert.equal(r.headers().location, loggedOutUrl(dead.port), 'no end-session endpoint known: straight back');
    assert.ok(await clears(r, 'session'));
    assert.deepEqual(await sessionCookies(context), [], 'session cookies cleared');
    assert.ok(took < 1500, `answered in ${took} ms, not after an IdP timeout`);
    assert.deepEqual(s.echo.received(), [], 'logout does not go upstream');
    // No session any more: an API call there is 401.
    const api = await context.request.get(`${dead.url}/oidcroute/get`, { headers: { accept: 'application/json' }, maxRedirects: 0 });
    assert.equal(api.status(), 401);
  }));

  test('with the provider stopped, logout still clears the cookies at once; revocation fails quietly', { timeout: 30_000 }, run(async () => {
    const { page, context } = b;
    const origin = base(s.ports[0]);
    await logIn(page, origin);
    await s.idp.close();
    const started = Date.now();
    const r = await context.request.post(`${origin}/oidcroute/logout`, { maxRedirects: 0 });
    const took = Date.now() - started;
    assert.equal(r.status(), 302, await r.text());
    // Discovery was fetched at login: the provider's end-session URL.
    assert.ok(r.headers().location.startsWith(`${s.idp.issuer}/session/end?`), r.headers().location);
    assert.deepEqual(await sessionCookies(context), [], 'session cookies cleared');
    assert.ok(took < 1500, `answered in ${took} ms`);
    // The revocations went out after the response, and failed.
    await eventually(() => /identity provider call failed: .*revocation/.test(s.envoys[0].log()), 'revocation failure logged');
  }));
});

// ---------------------------------------------------------------- Cognito-style revocation

describe('revocation at a configured revocation_endpoint (Cognito-style)', () => {
  let s;
  let b;
  let discovery;
  before(async () => {
    s = await startBrowserStack({
      name: 'logout-revoke',
      envoys: [
        // Kong's default: no revocation.
        {},
        // Cognito-style: discovery lists no revocation endpoint; the
        // configuration names it, and revokes the refresh token only.
        {
          filter: ({ idp }) => ({
            logout_revoke: true,
            logout_revoke_access_token: false,
            revocation_endpoint: `${idp.issuer}/token/revocation`,
          }),
        },
        // logout_revoke with nowhere to revoke at.
        { filter: () => ({ logout_revoke: true }) },
      ],
    });
    // Discovery as Cognito has it: no revocation_endpoint.
    discovery = (await request(`${s.idp.issuer}/.well-known/openid-configuration`)).json;
    assert.ok(discovery.revocation_endpoint, 'the provider has one');
    const cognitoLike = { ...discovery };
    delete cognitoLike.revocation_endpoint;
    s.idp.setFault('discovery', { status: 200, type: 'application/json', body: JSON.stringify(cognitoLike) });
    b = await launchBrowser();
  });
  after(async () => {
    await b?.close();
    await s?.stop();
  });
  const run = (fn) => (t) => withEnvoyLog(s.envoys, () => fn(t));

  async function logInAndOut(index) {
    const { page, context } = b;
    await logIn(page, base(s.ports[index]));
    s.idp.resetCounts();
    const r = await context.request.post(`${base(s.ports[index])}/oidcroute/logout`, { maxRedirects: 0 });
    assert.equal(r.status(), 302, await r.text());
    assert.deepEqual(await sessionCookies(context), []);
  }

  test('by default nothing is revoked', { timeout: 30_000 }, run(async () => {
    await logInAndOut(0);
    await sleep(300);
    assert.equal(s.idp.counts().revocation, undefined, JSON.stringify(s.idp.counts()));
  }));

  test('with revocation_endpoint and logout_revoke: the refresh token is revoked there, and is dead', { timeout: 30_000 }, run(async () => {
    await logInAndOut(1);
    await eventually(() => s.idp.clientRequests('revocation').some((c) => c.status !== undefined), 'a revocation call answered');
    await sleep(200);
    assert.equal(s.idp.counts().revocation, 1, JSON.stringify(s.idp.counts()));
    const [call] = s.idp.clientRequests('revocation');
    assert.equal(call.status, 200);
    assert.equal(call.auth, 'basic');
    assert.equal(call.client_id, CLIENTS.demo.id);
    assert.equal(call.params.token_type_hint, 'refresh_token');
    // The provider no longer takes that refresh token.
    const basic = Buffer.from(`${CLIENTS.demo.id}:${CLIENTS.demo.secret}`).toString('base64');
    const refresh = await request(discovery.token_endpoint, {
      method: 'POST',
      headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: call.params.token }).toString(),
    });
    assert.equal(refresh.status, 400, refresh.text);
    assert.equal(refresh.json?.error, 'invalid_grant');
  }));

  test('with logout_revoke and no endpoint known, nothing is revoked', { timeout: 30_000 }, run(async () => {
    await logInAndOut(2);
    await sleep(300);
    assert.equal(s.idp.counts().revocation, undefined, JSON.stringify(s.idp.counts()));
  }));
});
