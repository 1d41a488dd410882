// Client authentication at the IdP, end to end: the test provider
// requires one method of demo-client at a time, and a browser logs in
// (Chromium) and has its session refreshed through real Envoy. The
// provider (oidc-provider, with jose) checks each client assertion's
// signature, `aud` and `jti` (single use): a verifier independent of the
// filter's signing code. A wrong key is refused there, and the filter then
// ends the login as for any refused client.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { sleep } from './lib.mjs';
import { jwkFromPem } from './provider.mjs';
import { startBrowserStack, launchBrowser, sessionCookies, base, logIn } from './browser/stack.mjs';

/** The public half of a private JWK (what the IdP registers). */
const publicJwk = ({ d, p, q, dp, dq, qi, ...pub }) => pub;

/** Per method: the provider's registration of demo-client, the filter's
 *  keys, and what the token requests must carry. */
async function cases() {
  const ec = await jwkFromPem('ec-test-key.pem', 'ES256', 'client-ec');
  const rsa = await jwkFromPem('rsa-test-key.pem', 'RS256', 'client-rsa');
  const other = await jwkFromPem('rsa-other-key.pem', 'RS256', 'client-rsa');
  return [
    { name: 'client_secret_post', demoAuth: { method: 'client_secret_post' }, filter: { client_auth: ['client_secret_post'] }, sends: 'post' },
    { name: 'client_secret_jwt', demoAuth: { method: 'client_secret_jwt' }, filter: { client_auth: ['client_secret_jwt'] }, sends: 'assertion' },
    {
      name: 'private_key_jwt (EC, ES256)',
      demoAuth: { method: 'private_key_jwt', jwks: [publicJwk(ec)] },
      filter: { client_auth: ['private_key_jwt'], client_jwk: [ec], client_secret: undefined },
      sends: 'assertion',
      // The same, with the issuer as the assertions' `aud` (RFC 7523bis).
      byIssuer: { client_auth: ['private_key_jwt'], client_jwk: [ec], client_secret: undefined, client_assertion_audience: 'issuer' },
    },
    {
      name: 'private_key_jwt (RSA, PS256)',
      demoAuth: { method: 'private_key_jwt', jwks: [{ ...publicJwk(rsa), alg: undefined }] },
      filter: { client_auth: ['private_key_jwt'], client_jwk: [{ ...rsa, alg: undefined }], client_alg: ['PS256'], client_secret: undefined },
      sends: 'assertion',
      // The same registration; the filter signs with a key the IdP does not know.
      wrong: { client_auth: ['private_key_jwt'], client_jwk: [{ ...other, alg: undefined }], client_alg: ['PS256'], client_secret: undefined },
    },
    { name: 'none (a public client)', demoAuth: { method: 'none' }, filter: { client_auth: ['none'], client_secret: undefined }, sends: 'none' },
  ];
}

/** The `aud` of a recorded request's client assertion. */
function assertionAudience(record) {
  const claims = record.params.client_assertion.split('.')[1];
  return JSON.parse(Buffer.from(claims, 'base64url').toString('utf8')).aud;
}

/** What a token request recorded by the provider carried. */
function carried(record) {
  if (record.params?.client_assertion_type) return 'assertion';
  return record.auth;
}

for (const c of await cases()) {
  describe(`client authentication: ${c.name}`, () => {
    let stack;
    let browser;
    before(async () => {
      stack = await startBrowserStack({
        name: `client-auth-${c.demoAuth.method}`,
        // 4 s tokens: refreshed 3 s after the exchange (a quarter of the
        // life before expiry).
        idpOptions: { demoAuth: c.demoAuth, accessTokenTTL: 4 },
        envoys: [c.filter, c.wrong, c.byIssuer].filter(Boolean).map((f) => ({ filter: () => f })),
      });
      browser = await launchBrowser();
    });
    after(async () => {
      await browser?.close();
      await stack?.stop();
    });

    test('a browser logs in and its session is refreshed', { timeout: 60_000 }, async () => {
      const origin = base(stack.ports[0]);
      await logIn(browser.page, origin);
      const first = await browser.page.goto(`${origin}/oidcroute/get`);
      assert.equal(first.status(), 200);
      const before = (await first.json()).headers.authorization;
      await sleep(3_500);
      const later = await browser.page.goto(`${origin}/oidcroute/get`);
      assert.equal(later.status(), 200, await later.text());
      assert.notEqual((await later.json()).headers.authorization, before, 'refreshed');
      const requests = stack.idp.tokenRequests();
      assert.deepEqual(requests.map((r) => r.params?.grant_type), ['authorization_code', 'refresh_token']);
      for (const r of requests) {
        assert.equal(r.status, 200, JSON.stringify(r));
        assert.equal(carried(r), c.sends, JSON.stringify(r));
        // client_id goes with an assertion too (RFC 7521 §4.2; Spring and
        // Entra ID require it).
        assert.equal(r.client_id ?? r.params?.client_id, 'demo-client');
        // By default an assertion names the endpoint it goes to.
        if (c.sends === 'assertion') assert.equal(assertionAudience(r), stack.idp.tokenEndpoint);
      }
    });

    if (c.byIssuer) {
      test('client_assertion_audience "issuer": the assertions name the issuer, and the IdP takes them', { timeout: 60_000 }, async () => {
        await browser.context.clearCookies();
        const origin = base(stack.ports[1]);
        const seen = stack.idp.tokenRequests().length;
        await logIn(browser.page, origin);
        const page = await browser.page.goto(`${origin}/oidcroute/get`);
        assert.equal(page.status(), 200);
        const requests = stack.idp.tokenRequests().slice(seen);
        assert.deepEqual(requests.map((r) => [r.params?.grant_type, r.status]), [['authorization_code', 200]]);
        assert.notEqual(stack.idp.issuer, stack.idp.tokenEndpoint);
        assert.equal(assertionAudience(requests[0]), stack.idp.issuer);
      });
    }

    if (c.wrong) {
      test('a key the IdP does not know: the IdP refuses it and the login ends with 400', { timeout: 60_000 }, async () => {
        await browser.context.clearCookies();
        const origin = base(stack.ports[1]);
        const statuses = [];
        const seen = (r) => { if (r.url().startsWith(`${origin}/oidcroute/get?`)) statuses.push(r.status()); };
        browser.page.on('response', seen);
        try {
          await assert.rejects(logIn(browser.page, origin), /logged in and back/);
        } finally {
          browser.page.off('response', seen);
        }
        assert.deepEqual(statuses, [400]);
        assert.equal(stack.idp.tokenRequests().at(-1).status, 401, 'invalid_client at the IdP');
        assert.deepEqual(await sessionCookies(browser.context), []);
      });
    }
  });
}
