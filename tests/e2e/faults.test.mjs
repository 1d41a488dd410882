// The IdP fault matrix (issue "fail closed, never crash"): each way the
// IdP can misbehave gives the documented status, nothing reaches the
// upstream, and the filter recovers without a restart once the IdP is
// healthy again. Also: a token endpoint that hands out a token signed by a
// key nobody publishes.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { startStack, get, request, mintToken, withEnvoyLog, sleep, CLIENTS } from './lib.mjs';

async function received(s) {
  return (await request(`${s.echo.url}/__received`)).json;
}

const json = (body) => ({ status: 200, type: 'application/json', body: JSON.stringify(body) });

// [name, fault per provider endpoint, expected status]
const MATRIX = [
  ['discovery answers 500', { discovery: { status: 500 } }, 502],
  ['discovery answers an HTML page', { discovery: { status: 200, type: 'text/html', body: '<html>login</html>' } }, 502],
  ['discovery answers truncated JSON', { discovery: { status: 200, type: 'application/json', body: '{"issuer":"http' } }, 502],
  ['discovery names another issuer (mix-up)', { discovery: json({ issuer: 'https://evil.example.com', jwks_uri: 'https://evil.example.com/jwks' }) }, 502],
  ['discovery answers 503', { discovery: { status: 503 } }, 503],
  ['JWKS answers 500', { jwks: { status: 500 } }, 502],
  ['JWKS has no keys', { jwks: json({ keys: [] }) }, 502],
  ['JWKS has only unusable keys', { jwks: json({ keys: [
    { kty: 'RSA', use: 'enc', kid: 'e', n: 'AQAB', e: 'AQAB' },
    { kty: 'oct', kid: 'h', k: 'c2VjcmV0' },
    { kty: 'RSA', kid: 'small', alg: 'RS256', n: 'AQAB', e: 'AQAB' },
  ] }) }, 502],
  ['JWKS hangs past idp_timeout_ms', { jwks: { hang: true } }, 503],
];

for (const [name, fault, status] of MATRIX) {
  test(`${name}: ${status}, nothing upstream, recovers when the IdP is healthy`, { timeout: 30_000 }, async () => {
    const s = await startStack({ name: 'fault', filter: { idp_timeout_ms: 1000 } });
    try {
      await withEnvoyLog(s.envoy, async () => {
        for (const [endpoint, f] of Object.entries(fault)) s.idp.setFault(endpoint, f);
        const token = await mintToken({ issuer: s.idp.issuer });
        const r = await get(s.url('/oidcroute/get'), token);
        assert.equal(r.status, status, `status; body ${r.text}`);
        assert.equal(r.json?.message, status === 503 ? 'Service Unavailable' : 'Bad Gateway');
        assert.deepEqual(await received(s), [], 'nothing upstream');
        for (const endpoint of Object.keys(fault)) s.idp.setFault(endpoint, null);
        // A failed first fetch is not retried for the rest of its second
        // (as jwt_authn's failed_refetch_duration, 1 s; the harness and
        // engine tests check that on a clock of their own).
        await sleep(1100);
        const ok = await get(s.url('/oidcroute/get'), token);
        assert.equal(ok.status, 200, `after recovery; body ${ok.text}`);
      });
    } finally {
      await s.stop();
    }
  });
}

test('provider refusing connections: 503, then 200 once it is back', { timeout: 30_000 }, async () => {
  const s = await startStack({ name: 'fault-down' });
  try {
    await withEnvoyLog(s.envoy, async () => {
      await s.stopIdp();
      const token = await mintToken({ issuer: s.idp.issuer });
      assert.equal((await get(s.url('/oidcroute/get'), token)).status, 503);
      assert.deepEqual(await received(s), []);
      await s.restartIdp();
      await sleep(1100); // a failed first fetch is retried the next second
      assert.equal((await get(s.url('/oidcroute/get'), token)).status, 200);
    });
  } finally {
    await s.stop();
  }
});

test('a token endpoint handing out a token signed by an unpublished key: 401, nothing upstream', { timeout: 30_000 }, async () => {
  const s = await startStack({ name: 'fault-forged' });
  try {
    await withEnvoyLog(s.envoy, async () => {
      const forged = await mintToken({ issuer: s.idp.issuer, key: 'rsa-other-key.pem', kid: 'rotated-away' });
      s.idp.setFault('token', json({ access_token: forged, token_type: 'Bearer', expires_in: 3600 }));
      const basic = Buffer.from(`${CLIENTS.demo.id}:${CLIENTS.demo.secret}`).toString('base64');
      const r = await request(s.url('/oidcroute/get'), { headers: { authorization: `Basic ${basic}` } });
      assert.equal(r.status, 401, r.text);
      assert.match(String(r.headers['www-authenticate']), /error="invalid_token"/);
      assert.deepEqual(await received(s), []);
    });
  } finally {
    await s.stop();
  }
});
