// The end-to-end parts without the filter: the test provider issues
// Cognito-shaped tokens, Envoy routes `/oidcroute/...` to the echo with the
// prefix stripped, and the provider can stop and restart on its port.
// If these fail, the bearer tests' failures say nothing about the filter.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRemoteJWKSet, jwtVerify } from 'jose';

import {
  startStack, get, request, clientCredentialsToken, decodeJwt, withEnvoyLog, CLIENTS,
} from './lib.mjs';

let s;
before(async () => { s = await startStack({ filter: false, name: 'plumbing' }); });
after(async () => { await s?.stop(); });

test('provider issues Cognito-shaped RS256 access tokens without aud', { timeout: 30_000 }, async () => {
  const token = await clientCredentialsToken(s.idp, { scope: 'kongresource/scope1' });
  const { header, payload } = decodeJwt(token);
  assert.equal(header.alg, 'RS256');
  assert.equal(header.kid, 'test-rsa');
  assert.equal(payload.iss, s.idp.issuer);
  assert.equal(payload.client_id, CLIENTS.demo.id);
  assert.equal(payload.sub, CLIENTS.demo.id);
  assert.equal(payload.token_use, 'access');
  assert.equal(payload.scope, 'kongresource/scope1');
  assert.equal(payload.aud, undefined, 'Cognito access tokens have no aud');
  for (const claim of ['exp', 'iat', 'jti']) assert.ok(payload[claim], `claim ${claim}`);
  assert.ok(payload.exp > payload.iat);

  // The token verifies against the provider's own JWKS.
  const jwks = createRemoteJWKSet(new URL(`${s.idp.issuer}/jwks`));
  const { payload: verified } = await jwtVerify(token, jwks, { issuer: s.idp.issuer });
  assert.equal(verified.client_id, CLIENTS.demo.id);
});

test('provider publishes test-rsa and test-ec, and refuses wrong client secrets', { timeout: 30_000 }, async () => {
  const disco = await request(`${s.idp.issuer}/.well-known/openid-configuration`);
  assert.equal(disco.status, 200);
  assert.equal(disco.json.issuer, s.idp.issuer);
  assert.equal(disco.json.token_endpoint, `${s.idp.issuer}/token`);
  const jwks = await request(disco.json.jwks_uri);
  assert.deepEqual(jwks.json.keys.map((k) => [k.kid, k.alg, k.kty]),
    [['test-rsa', 'RS256', 'RSA'], ['test-ec', 'ES256', 'EC']]);
  assert.ok(jwks.json.keys.every((k) => !('d' in k)), 'no private parts published');

  await assert.rejects(clientCredentialsToken(s.idp, { secret: 'wrong' }), /401.*invalid_client/);
  const two = await clientCredentialsToken(s.idp, { clientId: CLIENTS.other.id, secret: CLIENTS.other.secret, scope: 'kongresource/scope2' });
  assert.equal(decodeJwt(two).payload.scope, 'kongresource/scope2');
  assert.equal(decodeJwt(two).payload.client_id, CLIENTS.other.id);
});

test('provider counts requests per endpoint, also over http', { timeout: 30_000 }, async () => {
  s.idp.resetCounts();
  await request(`${s.idp.issuer}/.well-known/openid-configuration`);
  await request(`${s.idp.issuer}/jwks`);
  await request(`${s.idp.issuer}/jwks`);
  await clientCredentialsToken(s.idp);
  assert.deepEqual(s.idp.counts(), { discovery: 1, jwks: 2, token: 1 });
  const r = await request(`${s.idp.issuer}/__counts`);
  assert.deepEqual(r.json, { discovery: 1, jwks: 2, token: 1 });
});

test('envoy strips /oidcroute and normalizes the path before the echo', { timeout: 30_000 }, () => withEnvoyLog(s.envoy, async () => {
  const cases = [
    ['/oidcroute/get', '/get'],
    ['/oidcroute', '/'],
    ['/oidcroute/', '/'],
    ['//oidcroute//get?x=1', '/get?x=1'],
    ['/oidcroute/a/../get', '/get'],
  ];
  s.echo.clear();
  for (const [sent, seen] of cases) {
    const r = await get(s.url(sent), 'abc');
    assert.equal(r.status, 200, sent);
    assert.equal(r.json.path, seen, sent);
  }
  const received = await request(`${s.echo.url}/__received`);
  assert.deepEqual(received.json.map((e) => e.path), cases.map(([, seen]) => seen));
  assert.equal(received.json[0].headers.authorization, 'Bearer abc');
  // Outside the route: Envoy's own 404, nothing upstream.
  assert.equal((await get(s.url('/oidcroutefoo'))).status, 404);
  assert.equal((await get(s.url('/other'))).status, 404);
  assert.equal((await request(`${s.echo.url}/__received`, { method: 'DELETE' })).json.length, 0);
}));

test('provider stops and restarts on the same port', { timeout: 30_000 }, async () => {
  const issuer = s.idp.issuer;
  await s.stopIdp();
  await assert.rejects(request(`${issuer}/jwks`), /ECONNREFUSED/);
  await s.restartIdp();
  assert.equal(s.idp.issuer, issuer);
  const r = await request(`${issuer}/jwks`);
  assert.equal(r.status, 200);
  assert.deepEqual(s.idp.counts(), { jwks: 1 }, 'a restarted provider counts from zero');
});

test('provider can serve its token endpoint on a second port', { timeout: 30_000 }, async () => {
  const { startProvider } = await import('./provider.mjs');
  const idp = await startProvider({ port: 0, tokenPort: 0 });
  try {
    assert.notEqual(idp.tokenPort, idp.port);
    const disco = await request(`${idp.issuer}/.well-known/openid-configuration`);
    assert.equal(disco.json.token_endpoint, `http://127.0.0.1:${idp.tokenPort}/token`);
    assert.equal(disco.json.issuer, idp.issuer);
    const token = await clientCredentialsToken(idp);
    assert.equal(decodeJwt(token).payload.iss, idp.issuer);
  } finally {
    await idp.close();
  }
});

test('provider endpoints can be made to fail or hang, and recover', { timeout: 30_000 }, async () => {
  s.idp.setFault('jwks', { status: 500, body: 'boom' });
  const r = await request(`${s.idp.issuer}/jwks`);
  assert.equal(r.status, 500);
  assert.equal(r.text, 'boom');
  s.idp.setFault('jwks', { hang: true });
  await assert.rejects(request(`${s.idp.issuer}/jwks`, { timeoutMs: 300 }), /timeout/);
  s.idp.setFault('jwks', null);
  assert.equal((await request(`${s.idp.issuer}/jwks`)).status, 200);
});
