// Provider profiles: the test provider shaped like a real provider in the
// respects that matter to the filter, and the filter configured from that
// provider's example in deploy/examples/ with only URLs and secrets
// swapped. Real Envoy, Chromium, the provider's own login pages.
//
// - Google: opaque access tokens, a JWT ID token carrying `hd`.
// - Auth0: JWT access tokens only for the `audience` asked for (opaque
//   otherwise), client credentials included; a token endpoint that
//   refuses a wrong secret with 403.
// - Okta (custom authorization server): scopes in `scp` (an array), the
//   client in `cid`, `aud` = the server's audience.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { ROOT, request, sleep, clientCredentialsToken, CLIENTS } from './lib.mjs';
import { startBrowserStack, launchBrowser, base, logIn } from './browser/stack.mjs';

/** `deploy/examples/<name>.json` without what names the real provider
 *  (URLs, clusters) or our registration there (client, secret): the test
 *  stack sets those. */
function fromExample(name) {
  const example = JSON.parse(readFileSync(path.join(ROOT, 'deploy', 'examples', `${name}.json`), 'utf8'));
  for (const k of [
    'issuer', 'idp_clusters', 'client_id', 'client_secret', 'redirect_uri',
    'post_logout_redirect_uri', 'end_session_endpoint', 'revocation_endpoint',
  ]) delete example[k];
  return { scopes_required: [], ...example };
}

/** What the echo saw for a page the browser loads now. */
async function upstreamSeen(page, url) {
  const resp = await page.goto(url);
  assert.equal(resp.status(), 200, `${url}: ${resp.status()} ${await resp.text()}`);
  return resp.json();
}

const basic = (id, secret) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;

describe('Google profile: opaque access tokens, the session rests on the ID token', () => {
  let stack;
  let browser;
  before(async () => {
    stack = await startBrowserStack({
      name: 'google',
      // 65 s tokens: a refresh is due 5 s in (the filter refreshes a
      // minute before expiry).
      idpOptions: { accessTokenFormat: 'opaque', idTokenClaims: { hd: 'example.com' }, accessTokenTTL: 65 },
      envoys: [{ filter: () => fromExample('google') }],
    });
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await stack?.stop();
  });

  test('logs in, forwards the opaque token untouched, refreshes it by expires_in', { timeout: 60_000 }, async () => {
    const origin = base(stack.ports[0]);
    await logIn(browser.page, origin);
    const first = await upstreamSeen(browser.page, `${origin}/oidcroute/get`);
    const auth = String(first.headers.authorization);
    assert.match(auth, /^Bearer [^.\s]+$/, `an opaque token upstream: ${auth}`);
    assert.equal(first.headers['x-user-email'], 'alice@example.test', 'identity from the ID token');
    const exchanges = stack.idp.tokenRequests().length;

    await sleep(6_000);
    const later = await upstreamSeen(browser.page, `${origin}/oidcroute/get`);
    assert.notEqual(later.headers.authorization, auth, 'a refreshed token');
    assert.match(String(later.headers.authorization), /^Bearer [^.\s]+$/);
    const grants = stack.idp.tokenRequests().slice(exchanges).map((r) => r.params?.grant_type);
    assert.deepEqual(grants, ['refresh_token']);
  });

  test('the login redirect carries the example\'s access_type and prompt', { timeout: 30_000 }, async () => {
    const r = await request(`${base(stack.ports[0])}/oidcroute/get`, { headers: { accept: 'text/html' } });
    assert.equal(r.status, 302);
    const q = new URL(r.headers.location).searchParams;
    assert.equal(q.get('access_type'), 'offline');
    assert.equal(q.get('prompt'), 'consent');
  });
});

describe('Google profile: domains refuses another hosted domain', () => {
  let stack;
  let browser;
  before(async () => {
    stack = await startBrowserStack({
      name: 'google-hd',
      idpOptions: { accessTokenFormat: 'opaque', idTokenClaims: { hd: 'gmail.com' } },
      envoys: [{ filter: () => fromExample('google') }],
    });
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await stack?.stop();
  });

  test('the callback is 403 and no session is set', { timeout: 60_000 }, async () => {
    const origin = base(stack.ports[0]);
    const statuses = [];
    browser.page.on('response', (r) => { if (r.url().startsWith(`${origin}/oidcroute/get?`)) statuses.push(r.status()); });
    await assert.rejects(logIn(browser.page, origin), /logged in and back/);
    assert.deepEqual(statuses, [403]);
    const cookies = (await browser.context.cookies()).map((c) => c.name);
    assert.ok(!cookies.includes('session'), `cookies: ${cookies}`);
  });
});

describe('Auth0 profile: audience decides the token format', () => {
  const AUDIENCE = 'https://api.example.com';
  let stack;
  let browser;
  before(async () => {
    stack = await startBrowserStack({
      name: 'auth0',
      idpOptions: { audienceDependent: AUDIENCE, resourceScopes: ['read:orders'] },
      envoys: [{ filter: () => fromExample('auth0') }],
    });
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await stack?.stop();
  });

  test('a browser login gets a JWT for the audience, verified as ours', { timeout: 60_000 }, async () => {
    const origin = base(stack.ports[0]);
    await logIn(browser.page, origin);
    const seen = await upstreamSeen(browser.page, `${origin}/oidcroute/get`);
    const token = String(seen.headers.authorization).replace(/^Bearer /, '');
    const claims = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString());
    assert.equal(claims.aud, AUDIENCE);
    assert.ok(String(claims.scope).split(' ').includes('read:orders'), claims.scope);
  });

  test('client credentials carry the audience and pass audience_required', { timeout: 30_000 }, async () => {
    const r = await request(`${base(stack.ports[0])}/oidcroute/get`, {
      headers: { authorization: basic(CLIENTS.demo.id, CLIENTS.demo.secret) },
    });
    assert.equal(r.status, 200, r.text);
    const cc = stack.idp.tokenRequests().filter((t) => t.params?.grant_type === 'client_credentials');
    assert.equal(cc.at(-1).params.audience, AUDIENCE);
  });

  test('a token endpoint refusing a wrong secret with 403 is a 401, not a 502', { timeout: 30_000 }, async () => {
    stack.idp.setFault('token', { status: 403, type: 'application/json', body: '{"error":"invalid_client"}' });
    try {
      const r = await request(`${base(stack.ports[0])}/oidcroute/get`, {
        headers: { authorization: basic(CLIENTS.other.id, 'wrong') },
      });
      assert.equal(r.status, 401, r.text);
      assert.match(String(r.headers['www-authenticate']), /error="invalid_token"/);
    } finally {
      stack.idp.setFault('token', null);
    }
  });
});

describe('Okta profile: scp and cid', () => {
  let stack;
  let browser;
  before(async () => {
    stack = await startBrowserStack({
      name: 'okta',
      idpOptions: { oktaAudience: 'api://default', resourceScopes: ['orders.read', 'orders.write'] },
      envoys: [{ filter: () => fromExample('okta') }],
    });
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await stack?.stop();
  });

  test('a bearer token passes on its scp array, and fails without the scope', { timeout: 30_000 }, async () => {
    const url = `${base(stack.ports[0])}/oidcroute/get`;
    const good = await clientCredentialsToken(stack.idp, { scope: 'orders.read' });
    const claims = JSON.parse(Buffer.from(good.split('.')[1], 'base64url').toString());
    assert.deepEqual(claims.scp, ['orders.read']);
    assert.equal(claims.cid, CLIENTS.demo.id);
    const ok = await request(url, { headers: { authorization: `Bearer ${good}` } });
    assert.equal(ok.status, 200, ok.text);
    const other = await clientCredentialsToken(stack.idp, { scope: 'orders.write' });
    const refused = await request(url, { headers: { authorization: `Bearer ${other}` } });
    assert.equal(refused.status, 403, refused.text);
  });

  test('a browser logs in with the example as is', { timeout: 60_000 }, async () => {
    const origin = base(stack.ports[0]);
    await logIn(browser.page, origin);
    const seen = await upstreamSeen(browser.page, `${origin}/oidcroute/get`);
    const token = String(seen.headers.authorization).replace(/^Bearer /, '');
    const claims = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString());
    assert.equal(claims.aud, 'api://default');
    assert.ok(claims.scp.includes('orders.read'), claims.scp);
  });
});

describe('Entra ID profile: multi-tenant discovery, tid, group overage', () => {
  const example = fromExample('entra-multitenant');
  const AUDIENCE = example.audience_required[0];
  const SCOPE = 'api://orders-api/Orders.Read';
  let stack;
  let browser;
  before(async () => {
    // The tenant's issuer is the provider's; the configured one is the
    // multi-tenant endpoint publishing `{tenantid}`.
    const entra = ({ idp }) => ({
      ...example,
      issuer: idp.issuer.replace(/\/tenant-a\/v2\.0$/, '/organizations/v2.0'),
      issuers_allowed: [idp.issuer],
    });
    stack = await startBrowserStack({
      name: 'entra',
      idpOptions: { entra: { tenant: 'tenant-a', audience: AUDIENCE }, resourceScopes: [SCOPE] },
      envoys: [
        { filter: entra },
        { filter: (ctx) => ({ ...entra(ctx), groups_required: ['staff'] }) },
      ],
    });
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await stack?.stop();
  });

  test('a user of a listed tenant logs in; the token names the tenant in iss and tid', { timeout: 60_000 }, async () => {
    const origin = base(stack.ports[0]);
    await logIn(browser.page, origin);
    const seen = await upstreamSeen(browser.page, `${origin}/oidcroute/get`);
    const token = String(seen.headers.authorization).replace(/^Bearer /, '');
    const claims = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString());
    assert.equal(claims.tid, 'tenant-a');
    assert.equal(claims.iss, stack.idp.issuer);
    assert.equal(claims.scp, 'Orders.Read');
    assert.deepEqual(stack.idp.prompts(), ['select_account'], 'the example\'s prompt was sent');
  });

  test('bearer tokens of the tenant pass; an overage token is 403 saying what to do', { timeout: 30_000 }, async () => {
    const token = await clientCredentialsToken(stack.idp, { scope: SCOPE });
    const ok = await request(`${base(stack.ports[0])}/oidcroute/get`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(ok.status, 200, ok.text);
    stack.idp.setAccessTokenClaims({ _claim_names: { groups: 'src1' } });
    try {
      const overage = await clientCredentialsToken(stack.idp, { scope: SCOPE });
      const r = await request(`${base(stack.ports[1])}/oidcroute/get`, { headers: { authorization: `Bearer ${overage}` } });
      assert.equal(r.status, 403, r.text);
      assert.match(String(r.headers['www-authenticate']), /group overage/);
    } finally {
      stack.idp.setAccessTokenClaims({});
    }
  });
});
