// Provider profiles (each: login in Chromium, a bearer or client-credentials
// call, refresh and logout where the provider has them): the test provider shaped like a real provider in the
// respects that matter to the filter, and the filter configured from that
// provider's example in deploy/examples/ with only URLs and secrets
// swapped. Real Envoy, Chromium, the provider's own login pages.
//
// - Google: opaque access tokens, a JWT ID token carrying `hd`.
// - Auth0: JWT access tokens only for the `audience` asked for (opaque
//   otherwise), client credentials included; a token endpoint that
//   refuses a wrong secret with 403.
// - Okta (custom authorization server): scopes in `scp` (an array), the
//   client in `cid`, `aud` = the server's audience; Okta's org server:
//   opaque access tokens only introspection can check.
// - Entra ID multi-tenant: `{tenantid}` discovery, `tid`, group overage.
// - Keycloak: `aud` from an Audience mapper, roles nested in
//   `realm_access.roles`; RP-initiated logout.
// - Cognito as the seed uses it: `client_id` for audience,
//   `cognito:groups`, refresh-token revocation at logout.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { ROOT, request, sleep, clientCredentialsToken, CLIENTS } from './lib.mjs';
import { startBrowserStack, launchBrowser, sessionCookies, base, logIn } from './browser/stack.mjs';

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

/** Access tokens live 4 s in the profiles: a refresh is due 3 s after the
 *  exchange (the filter refreshes a quarter of the life before expiry). */
const TTL = 4;

/** The session's access token is refreshed (refresh grant) and the new
 *  one goes upstream. */
async function refreshes(stack, page, url) {
  const before = await upstreamSeen(page, url);
  const n = stack.idp.tokenRequests().length;
  await sleep(3_500);
  const after = await upstreamSeen(page, url);
  assert.notEqual(after.headers.authorization, before.headers.authorization, 'a refreshed token upstream');
  const grants = stack.idp.tokenRequests().slice(n).map((r) => r.params?.grant_type);
  assert.deepEqual(grants, ['refresh_token']);
  return after;
}

/** Logging out at `path` clears the session: the redirect's URL. */
async function logsOut(context, origin, path) {
  const out = await context.request.post(`${origin}${path}`, { maxRedirects: 0 });
  assert.equal(out.status(), 302, await out.text());
  assert.deepEqual(await sessionCookies(context), [], 'session cookies cleared');
  return new URL(out.headers().location);
}

const basic = (id, secret) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;

/** A provider stack and a browser for the tests of the enclosing
 *  `describe`, started before them and stopped after: `p.stack`,
 *  `p.browser`. `setup` runs once the stack is up. */
function withStack(spec, setup) {
  const p = {};
  before(async () => {
    p.stack = await startBrowserStack(spec);
    await setup?.();
    p.browser = await launchBrowser();
  });
  after(async () => {
    await p.browser?.close();
    await p.stack?.stop();
  });
  return p;
}

describe('Google profile: opaque access tokens, the session rests on the ID token', () => {
  const p = withStack({
    name: 'google',
    idpOptions: { accessTokenFormat: 'opaque', idTokenClaims: { hd: 'example.com' }, accessTokenTTL: TTL },
    envoys: [{ filter: () => fromExample('google') }],
  });

  test('logs in, forwards the opaque token untouched, refreshes it by expires_in, logs out', { timeout: 60_000 }, async () => {
    const origin = base(p.stack.ports[0]);
    await logIn(p.browser.page, origin);
    const first = await upstreamSeen(p.browser.page, `${origin}/oidcroute/get`);
    const auth = String(first.headers.authorization);
    assert.match(auth, /^Bearer [^.\s]+$/, `an opaque token upstream: ${auth}`);
    assert.equal(first.headers['x-user-email'], 'alice@example.test', 'identity from the ID token');
    const later = await refreshes(p.stack, p.browser.page, `${origin}/oidcroute/get`);
    assert.match(String(later.headers.authorization), /^Bearer [^.\s]+$/);
    await logsOut(p.browser.context, origin, '/oidc/logout');
  });

  test('a code the token endpoint refuses with 403 ends that login with 400', { timeout: 60_000 }, async () => {
    const origin = base(p.stack.ports[0]);
    await p.browser.context.clearCookies();
    const statuses = [];
    const seen = (r) => { if (r.url().startsWith(`${origin}/oidcroute/get?`)) statuses.push(r.status()); };
    p.browser.page.on('response', seen);
    p.stack.idp.setFault('token', { status: 403, type: 'application/json', body: '{"error":"invalid_grant"}' });
    try {
      await assert.rejects(logIn(p.browser.page, origin), /logged in and back/);
    } finally {
      p.stack.idp.setFault('token', null);
      p.browser.page.off('response', seen);
    }
    assert.deepEqual(statuses, [400]);
    assert.deepEqual(await sessionCookies(p.browser.context), []);
  });

  test('the login redirect carries the example\'s access_type and prompt', { timeout: 30_000 }, async () => {
    const r = await request(`${base(p.stack.ports[0])}/oidcroute/get`, { headers: { accept: 'text/html' } });
    assert.equal(r.status, 302);
    const q = new URL(r.headers.location).searchParams;
    assert.equal(q.get('access_type'), 'offline');
    assert.equal(q.get('prompt'), 'consent');
  });
});

describe('Google profile: domains refuses another hosted domain', () => {
  const p = withStack({
    name: 'google-hd',
    idpOptions: { accessTokenFormat: 'opaque', idTokenClaims: { hd: 'gmail.com' } },
    envoys: [{ filter: () => fromExample('google') }],
  });

  test('the callback is 403 and no session is set', { timeout: 60_000 }, async () => {
    const origin = base(p.stack.ports[0]);
    const statuses = [];
    p.browser.page.on('response', (r) => { if (r.url().startsWith(`${origin}/oidcroute/get?`)) statuses.push(r.status()); });
    await assert.rejects(logIn(p.browser.page, origin), /logged in and back/);
    assert.deepEqual(statuses, [403]);
    const cookies = (await p.browser.context.cookies()).map((c) => c.name);
    assert.ok(!cookies.includes('session'), `cookies: ${cookies}`);
  });
});

describe('Auth0 profile: audience decides the token format', () => {
  const AUDIENCE = 'https://api.example.com';
  const p = withStack({
    name: 'auth0',
    idpOptions: { audienceDependent: AUDIENCE, resourceScopes: ['read:orders'], accessTokenTTL: TTL },
    envoys: [{ filter: () => fromExample('auth0') }],
  });

  test('a browser login gets a JWT for the audience, verified as ours; refresh; logout', { timeout: 60_000 }, async () => {
    const origin = base(p.stack.ports[0]);
    await logIn(p.browser.page, origin);
    const seen = await upstreamSeen(p.browser.page, `${origin}/oidcroute/get`);
    const token = String(seen.headers.authorization).replace(/^Bearer /, '');
    const claims = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString());
    assert.equal(claims.aud, AUDIENCE);
    assert.ok(String(claims.scope).split(' ').includes('read:orders'), claims.scope);
    await refreshes(p.stack, p.browser.page, `${origin}/oidcroute/get`);
    const to = await logsOut(p.browser.context, origin, '/app/logout');
    assert.equal(`${to.origin}${to.pathname}`, `${p.stack.idp.issuer}/session/end`);
  });

  test('client credentials carry the audience and pass audience_required', { timeout: 30_000 }, async () => {
    const r = await request(`${base(p.stack.ports[0])}/oidcroute/get`, {
      headers: { authorization: basic(CLIENTS.demo.id, CLIENTS.demo.secret) },
    });
    assert.equal(r.status, 200, r.text);
    const cc = p.stack.idp.tokenRequests().filter((t) => t.params?.grant_type === 'client_credentials');
    assert.equal(cc.at(-1).params.audience, AUDIENCE);
  });

  test('a throttling token endpoint: 503 with its Retry-After, and not asked again meanwhile', { timeout: 30_000 }, async () => {
    p.stack.idp.setFault('token', { status: 429, headers: { 'retry-after': '7' }, body: 'slow down' });
    try {
      const ask = () => request(`${base(p.stack.ports[0])}/oidcroute/get`, {
        headers: { authorization: basic(CLIENTS.other.id, CLIENTS.other.secret) },
      });
      const first = await ask();
      assert.equal(first.status, 503, first.text);
      assert.equal(first.headers['retry-after'], '7');
      const calls = p.stack.idp.counts().token;
      const again = await ask();
      assert.equal(again.status, 503);
      assert.equal(p.stack.idp.counts().token, calls, 'the IdP is not asked again before then');
    } finally {
      p.stack.idp.setFault('token', null);
    }
  });

  test('a token endpoint refusing a wrong secret with 403 is a 401, not a 502', { timeout: 30_000 }, async () => {
    p.stack.idp.setFault('token', { status: 403, type: 'application/json', body: '{"error":"invalid_client"}' });
    try {
      const r = await request(`${base(p.stack.ports[0])}/oidcroute/get`, {
        headers: { authorization: basic(CLIENTS.other.id, 'wrong') },
      });
      assert.equal(r.status, 401, r.text);
      assert.match(String(r.headers['www-authenticate']), /error="invalid_token"/);
    } finally {
      p.stack.idp.setFault('token', null);
    }
  });
});

describe('Okta profile: scp and cid', () => {
  const p = withStack({
    name: 'okta',
    idpOptions: { oktaAudience: 'api://default', resourceScopes: ['orders.read', 'orders.write'], accessTokenTTL: TTL },
    envoys: [{ filter: () => fromExample('okta') }],
  });

  test('a bearer token passes on its scp array, and fails without the scope', { timeout: 30_000 }, async () => {
    const url = `${base(p.stack.ports[0])}/oidcroute/get`;
    const good = await clientCredentialsToken(p.stack.idp, { scope: 'orders.read' });
    const claims = JSON.parse(Buffer.from(good.split('.')[1], 'base64url').toString());
    assert.deepEqual(claims.scp, ['orders.read']);
    assert.equal(claims.cid, CLIENTS.demo.id);
    const ok = await request(url, { headers: { authorization: `Bearer ${good}` } });
    assert.equal(ok.status, 200, ok.text);
    const other = await clientCredentialsToken(p.stack.idp, { scope: 'orders.write' });
    const refused = await request(url, { headers: { authorization: `Bearer ${other}` } });
    assert.equal(refused.status, 403, refused.text);
  });

  test('a browser logs in with the example as is; refresh; logout', { timeout: 60_000 }, async () => {
    const origin = base(p.stack.ports[0]);
    await logIn(p.browser.page, origin);
    const seen = await upstreamSeen(p.browser.page, `${origin}/oidcroute/get`);
    const token = String(seen.headers.authorization).replace(/^Bearer /, '');
    const claims = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString());
    assert.equal(claims.aud, 'api://default');
    assert.ok(claims.scp.includes('orders.read'), claims.scp);
    await refreshes(p.stack, p.browser.page, `${origin}/oidcroute/get`);
    await logsOut(p.browser.context, origin, '/app/logout');
  });
});

describe('Entra ID profile: multi-tenant discovery, tid, group overage', () => {
  const example = fromExample('entra-multitenant');
  const AUDIENCE = example.audience_required[0];
  const SCOPE = 'api://orders-api/Orders.Read';
  // The tenant's issuer is the provider's; the configured one is the
  // multi-tenant endpoint publishing `{tenantid}`.
  const entra = ({ idp }) => ({
    ...example,
    issuer: idp.issuer.replace(/\/tenant-a\/v2\.0$/, '/organizations/v2.0'),
    issuers_allowed: [idp.issuer],
  });
  const p = withStack({
    name: 'entra',
    idpOptions: { entra: { tenant: 'tenant-a', audience: AUDIENCE }, resourceScopes: [SCOPE], accessTokenTTL: TTL },
    envoys: [
      { filter: entra },
      { filter: (ctx) => ({ ...entra(ctx), groups_required: ['staff'] }) },
    ],
  });

  test('a user of a listed tenant logs in; the token names the tenant in iss and tid', { timeout: 60_000 }, async () => {
    const origin = base(p.stack.ports[0]);
    await logIn(p.browser.page, origin);
    const seen = await upstreamSeen(p.browser.page, `${origin}/oidcroute/get`);
    const token = String(seen.headers.authorization).replace(/^Bearer /, '');
    const claims = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString());
    assert.equal(claims.tid, 'tenant-a');
    assert.equal(claims.iss, p.stack.idp.issuer);
    assert.equal(claims.scp, 'Orders.Read');
    assert.deepEqual(p.stack.idp.prompts(), ['select_account'], 'the example\'s prompt was sent');
    await refreshes(p.stack, p.browser.page, `${origin}/oidcroute/get`);
    await logsOut(p.browser.context, origin, '/app/logout');
  });

  test('bearer tokens of the tenant pass; an overage token is 403 saying what to do', { timeout: 30_000 }, async () => {
    const token = await clientCredentialsToken(p.stack.idp, { scope: SCOPE });
    const ok = await request(`${base(p.stack.ports[0])}/oidcroute/get`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(ok.status, 200, ok.text);
    p.stack.idp.setAccessTokenClaims({ _claim_names: { groups: 'src1' } });
    try {
      const overage = await clientCredentialsToken(p.stack.idp, { scope: SCOPE });
      const r = await request(`${base(p.stack.ports[1])}/oidcroute/get`, { headers: { authorization: `Bearer ${overage}` } });
      assert.equal(r.status, 403, r.text);
      assert.match(String(r.headers['www-authenticate']), /group overage/);
    } finally {
      p.stack.idp.setAccessTokenClaims({});
    }
  });
});

describe('Okta org authorization server profile: opaque tokens', () => {
  const p = withStack({
    name: 'okta-org',
    idpOptions: { accessTokenFormat: 'opaque', accessTokenTTL: TTL },
    envoys: [{ filter: () => fromExample('okta-org') }],
  });

  test('a browser session rests on the ID token; a bearer token is introspected', { timeout: 60_000 }, async () => {
    const origin = base(p.stack.ports[0]);
    await logIn(p.browser.page, origin);
    const seen = await upstreamSeen(p.browser.page, `${origin}/oidcroute/get`);
    assert.match(String(seen.headers.authorization), /^Bearer [^.\s]+$/);
    assert.equal(seen.headers['x-user-email'], 'alice@example.test');
    await refreshes(p.stack, p.browser.page, `${origin}/oidcroute/get`);
    await logsOut(p.browser.context, origin, '/app/logout');

    const opaque = await clientCredentialsToken(p.stack.idp);
    assert.equal(opaque.split('.').length, 1, 'an opaque token');
    const ok = await request(`${origin}/oidcroute/get`, { headers: { authorization: `Bearer ${opaque}` } });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(p.stack.idp.counts().introspection, 1);
    const bad = await request(`${origin}/oidcroute/get`, { headers: { authorization: 'Bearer not-a-token-it-issued' } });
    assert.equal(bad.status, 401, bad.text);
  });
});

describe('Keycloak profile: audience mapper, nested realm roles, logout', () => {
  const p = withStack({
    name: 'keycloak',
    idpOptions: { accessTokenAudience: 'my-api', resourceScopes: ['orders:read'], accessTokenTTL: TTL },
    envoys: [{ filter: () => fromExample('keycloak') }],
  }, async () => {
    p.stack.idp.setAccessTokenClaims({ realm_access: { roles: ['orders-reader'] }, preferred_username: 'alice' });
  });

  test('logs in with the role, refreshes, and logs out at the provider', { timeout: 60_000 }, async () => {
    const origin = base(p.stack.ports[0]);
    await logIn(p.browser.page, origin);
    const seen = await upstreamSeen(p.browser.page, `${origin}/oidcroute/get`);
    assert.equal(seen.headers['x-user'], 'alice');
    await refreshes(p.stack, p.browser.page, `${origin}/oidcroute/get`);
    const to = await logsOut(p.browser.context, origin, '/app/logout');
    assert.equal(`${to.origin}${to.pathname}`, `${p.stack.idp.issuer}/session/end`);
    assert.ok(to.searchParams.get('id_token_hint'), 'id_token_hint sent');
  });

  test('a bearer token without the realm role is 403', { timeout: 30_000 }, async () => {
    const url = `${base(p.stack.ports[0])}/oidcroute/get`;
    const withRole = await clientCredentialsToken(p.stack.idp, { scope: 'orders:read' });
    assert.equal((await request(url, { headers: { authorization: `Bearer ${withRole}` } })).status, 200);
    p.stack.idp.setAccessTokenClaims({ realm_access: { roles: ['someone-else'] } });
    try {
      const without = await clientCredentialsToken(p.stack.idp, { scope: 'orders:read' });
      const r = await request(url, { headers: { authorization: `Bearer ${without}` } });
      assert.equal(r.status, 403, r.text);
    } finally {
      p.stack.idp.setAccessTokenClaims({ realm_access: { roles: ['orders-reader'] }, preferred_username: 'alice' });
    }
  });
});

describe('Cognito profile: the seed\'s provider from its example', () => {
  const p = withStack({
    name: 'cognito',
    idpOptions: { accessTokenTTL: TTL },
    envoys: [{ filter: () => ({ ...fromExample('cognito'), audience_required: [CLIENTS.demo.id] }) }],
  });

  test('login, refresh, client credentials, and logout revoking the refresh token', { timeout: 60_000 }, async () => {
    const origin = base(p.stack.ports[0]);
    await logIn(p.browser.page, origin);
    await refreshes(p.stack, p.browser.page, `${origin}/oidcroute/get`);
    const cc = await request(`${origin}/oidcroute/get`, {
      headers: { authorization: basic(CLIENTS.demo.id, CLIENTS.demo.secret) },
    });
    assert.equal(cc.status, 200, cc.text);
    await logsOut(p.browser.context, origin, '/oidcroute/logout');
    for (let i = 0; i < 50 && p.stack.idp.clientRequests('revocation').length === 0; i++) await sleep(100);
    const revoked = p.stack.idp.clientRequests('revocation');
    assert.equal(revoked.length, 1, 'the refresh token only (logout_revoke_access_token: false)');
    assert.equal(revoked[0].params.token_type_hint, 'refresh_token');
  });
});
