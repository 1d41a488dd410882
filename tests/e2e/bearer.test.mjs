// Bearer-token authentication in real Envoy with the filter, against the
// Cognito-like test provider. Expected answers are the README's ("Failures answer like Kong"):
//   401 WWW-Authenticate: Bearer realm="<issuer authority>"[, error="invalid_token", ...]
//       {"message":"Unauthorized"}
//   403 ... error="insufficient_scope"          {"message":"Forbidden"}
//   503 IdP unreachable                          {"message":"Service Unavailable"}
// and nothing unauthenticated reaches the upstream echo.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import {
  startStack, get, request, clientCredentialsToken, mintToken, tamperSignature,
  withEnvoyLog, CLIENTS,
} from './lib.mjs';

// ---------------------------------------------------------------- checks

async function upstreamRequests(stack) {
  const r = await request(`${stack.echo.url}/__received`);
  assert.equal(r.status, 200);
  return r.json;
}

async function clearUpstream(stack) {
  await request(`${stack.echo.url}/__received`, { method: 'DELETE' });
}

async function assertNothingUpstream(stack) {
  const seen = await upstreamRequests(stack);
  assert.deepEqual(seen.map((e) => `${e.method} ${e.path}`), [], 'nothing may reach the upstream');
}

function realm(stack) {
  return `Bearer realm="127.0.0.1:${stack.idpPort}"`;
}

function assertJsonBody(r, message) {
  assert.match(String(r.headers['content-type']), /^application\/json/, 'content-type');
  assert.deepEqual(r.json, { message }, `body was: ${r.text}`);
}

/** 401 for a token that was sent but is not acceptable. */
function assertInvalidToken(stack, r) {
  assert.equal(r.status, 401, `status; body: ${r.text}`);
  const h = r.headers['www-authenticate'];
  assert.ok(h, 'WWW-Authenticate header');
  assert.ok(h.startsWith(`${realm(stack)}, `), `WWW-Authenticate: ${h}`);
  assert.match(h, /(^|, )error="invalid_token"(,|$)/, `WWW-Authenticate: ${h}`);
  assertJsonBody(r, 'Unauthorized');
}

function assertUnavailable(r) {
  assert.equal(r.status, 503, `status; body: ${r.text}`);
  assertJsonBody(r, 'Service Unavailable');
}

async function assertPassedUpstream(stack, r, token) {
  assert.equal(r.status, 200, `status; body: ${r.text}`);
  const seen = await upstreamRequests(stack);
  assert.equal(seen.length, 1, 'one request upstream');
  assert.equal(seen[0].path, '/get');
  assert.equal(seen[0].headers.authorization, `Bearer ${token}`);
}

// ---------------------------------------------------------------- IdP up

describe('bearer tokens, provider up', () => {
  let s;
  before(async () => { s = await startStack({ name: 'bearer' }); });
  after(async () => { await s?.stop(); });

  const run = (fn) => () => withEnvoyLog(s.envoy, async () => { await clearUpstream(s); await fn(); });

  test('accepts a client-credentials token from the provider and forwards it', { timeout: 30_000 }, run(async () => {
    const token = await clientCredentialsToken(s.idp, { scope: 'kongresource/scope1' });
    const r = await get(s.url('/oidcroute/get'), token);
    await assertPassedUpstream(s, r, token);
  }));

  test('answers 401 without error when no token is sent', { timeout: 30_000 }, run(async () => {
    const r = await get(s.url('/oidcroute/get'));
    assert.equal(r.status, 401, `status; body: ${r.text}`);
    assert.equal(r.headers['www-authenticate'], realm(s));
    assertJsonBody(r, 'Unauthorized');
    await assertNothingUpstream(s);
  }));

  test('rejects a token whose signature was tampered with', { timeout: 30_000 }, run(async () => {
    const token = await clientCredentialsToken(s.idp);
    const r = await get(s.url('/oidcroute/get'), tamperSignature(token));
    assertInvalidToken(s, r);
    await assertNothingUpstream(s);
  }));

  test('rejects an expired token', { timeout: 30_000 }, run(async () => {
    const token = await mintToken({ issuer: s.idp.issuer, iatIn: -7200, expIn: -60 });
    const r = await get(s.url('/oidcroute/get'), token);
    assertInvalidToken(s, r);
    await assertNothingUpstream(s);
  }));

  test('answers 403 insufficient_scope for a token without the required scope', { timeout: 30_000 }, run(async () => {
    const token = await clientCredentialsToken(s.idp, { scope: 'kongresource/scope2' });
    const r = await get(s.url('/oidcroute/get'), token);
    assert.equal(r.status, 403, `status; body: ${r.text}`);
    const h = r.headers['www-authenticate'];
    assert.ok(h?.startsWith(`${realm(s)}, `), `WWW-Authenticate: ${h}`);
    assert.match(h, /(^|, )error="insufficient_scope"(,|$)/, `WWW-Authenticate: ${h}`);
    assertJsonBody(r, 'Forbidden');
    await assertNothingUpstream(s);
  }));

  test('accepts an ES256 token signed with the published test-ec key', { timeout: 30_000 }, run(async () => {
    const token = await mintToken({ issuer: s.idp.issuer, key: 'ec-test-key.pem', kid: 'test-ec', alg: 'ES256' });
    const r = await get(s.url('/oidcroute/get'), token);
    await assertPassedUpstream(s, r, token);
  }));

  test('rejects a token signed by another key under the published kid', { timeout: 30_000 }, run(async () => {
    const token = await mintToken({ issuer: s.idp.issuer, key: 'rsa-other-key.pem', kid: 'test-rsa' });
    const r = await get(s.url('/oidcroute/get'), token);
    assertInvalidToken(s, r);
    await assertNothingUpstream(s);
  }));

  test('rejects a token whose kid the provider does not publish', { timeout: 30_000 }, run(async () => {
    const token = await mintToken({ issuer: s.idp.issuer, key: 'rsa-other-key.pem', kid: 'rotated-key' });
    const r = await get(s.url('/oidcroute/get'), token);
    assertInvalidToken(s, r);
    await assertNothingUpstream(s);
  }));

  test('rejects a token from another issuer', { timeout: 30_000 }, run(async () => {
    const token = await mintToken({ issuer: 'http://127.0.0.1:1/other-issuer' });
    const r = await get(s.url('/oidcroute/get'), token);
    assertInvalidToken(s, r);
    await assertNothingUpstream(s);
  }));
});

// ---------------------------------------------------------------- IdP down

test('answers 503 when the provider is down before the first request', { timeout: 30_000 }, async () => {
  const s = await startStack({ name: 'idp-down' });
  try {
    await withEnvoyLog(s.envoy, async () => {
      const token = await mintToken({ issuer: s.idp.issuer });
      await s.stopIdp();
      const r = await get(s.url('/oidcroute/get'), token);
      assertUnavailable(r);
      await assertNothingUpstream(s);
    });
  } finally {
    await s.stop();
  }
});

test('keeps verifying with cached keys when the provider goes down, 503 for an unknown kid', { timeout: 30_000 }, async () => {
  const s = await startStack({ name: 'idp-gone' });
  try {
    await withEnvoyLog(s.envoy, async () => {
      const warm = await clientCredentialsToken(s.idp);
      const later = await clientCredentialsToken(s.idp, { clientId: CLIENTS.other.id, secret: CLIENTS.other.secret });
      assert.notEqual(warm, later);

      // Warm-up: the filter fetches discovery and JWKS.
      const r0 = await get(s.url('/oidcroute/get'), warm);
      await assertPassedUpstream(s, r0, warm);
      await s.stopIdp();
      await clearUpstream(s);

      // A token it has not seen, signed by the cached key: still fine.
      const r1 = await get(s.url('/oidcroute/get'), later);
      await assertPassedUpstream(s, r1, later);
      await clearUpstream(s);

      // An unknown kid makes the filter refetch the JWKS: the IdP is down.
      const rotated = await mintToken({ issuer: s.idp.issuer, key: 'rsa-other-key.pem', kid: 'rotated-key' });
      const r2 = await get(s.url('/oidcroute/get'), rotated);
      assertUnavailable(r2);
      await assertNothingUpstream(s);
    });
  } finally {
    await s.stop();
  }
});

// ---------------------------------------------------------------- caching

test('fetches discovery and JWKS once for repeated requests (one worker)', { timeout: 30_000 }, async () => {
  const s = await startStack({ name: 'counts', concurrency: 1 });
  try {
    await withEnvoyLog(s.envoy, async () => {
      const token = await clientCredentialsToken(s.idp);
      s.idp.resetCounts();
      for (let i = 0; i < 5; i++) {
        const r = await get(s.url('/oidcroute/get'), token);
        assert.equal(r.status, 200, `request ${i}: ${r.text}`);
      }
      assert.equal((await upstreamRequests(s)).length, 5);
      assert.deepEqual(s.idp.counts(), { discovery: 1, jwks: 1 });
    });
  } finally {
    await s.stop();
  }
});

test('workers share discovery and JWKS (two workers, separate connections)', { timeout: 30_000 }, async () => {
  const s = await startStack({ name: 'counts2', concurrency: 2 });
  try {
    await withEnvoyLog(s.envoy, async () => {
      const token = await clientCredentialsToken(s.idp);
      s.idp.resetCounts();
      // Sequential requests, each on its own connection: Envoy spreads
      // connections over its workers; the first one fills the shared cache.
      for (let i = 0; i < 16; i++) {
        const r = await get(s.url('/oidcroute/get'), token);
        assert.equal(r.status, 200, `request ${i}: ${r.text}`);
      }
      // Both workers must have served some of them, or this proves nothing.
      const stats = (await request(`http://127.0.0.1:${s.envoy.adminPort}/stats?filter=downstream_cx_total`)).text;
      const perWorker = [...stats.matchAll(/^listener\.127\.0\.0\.1_\d+\.worker_(\d)\.downstream_cx_total: (\d+)$/gm)]
        .map((m) => Number(m[2]));
      assert.equal(perWorker.length, 2, `per-worker stats:\n${stats}`);
      assert.ok(perWorker.every((n) => n > 0), `connections per worker: ${perWorker}`);
      assert.deepEqual(s.idp.counts(), { discovery: 1, jwks: 1 });
    });
  } finally {
    await s.stop();
  }
});

// ---------------------------------------------------------------- IdP faults

/** A fresh stack (cold filter caches) whose provider misbehaves. */
async function withFaultyIdp(name, filter, fault, fn) {
  const s = await startStack({ name, filter });
  try {
    await withEnvoyLog(s.envoy, async () => {
      for (const [endpoint, f] of Object.entries(fault)) s.idp.setFault(endpoint, f);
      await fn(s);
    });
  } finally {
    await s.stop();
  }
}

test('answers 503 when the provider does not answer within idp_timeout_ms', { timeout: 30_000 }, () =>
  withFaultyIdp('idp-hang', { idp_timeout_ms: 1000 }, { discovery: { hang: true } }, async (s) => {
    const token = await mintToken({ issuer: s.idp.issuer });
    const t0 = Date.now();
    const r = await get(s.url('/oidcroute/get'), token);
    const elapsed = Date.now() - t0;
    assertUnavailable(r);
    assert.ok(elapsed >= 900 && elapsed < 5000, `answered after ${elapsed} ms; idp_timeout_ms is 1000`);
    await assertNothingUpstream(s);
  }));

test('answers 502 when the provider fails discovery with a 500', { timeout: 30_000 }, () =>
  withFaultyIdp('idp-500', {}, { discovery: { status: 500, body: 'internal error' } }, async (s) => {
    const token = await mintToken({ issuer: s.idp.issuer });
    const r = await get(s.url('/oidcroute/get'), token);
    assert.equal(r.status, 502, `status; body: ${r.text}`);
    assertJsonBody(r, 'Bad Gateway');
    await assertNothingUpstream(s);
  }));

test('answers 502 when the provider serves a JWKS that is not JSON', { timeout: 30_000 }, () =>
  withFaultyIdp('idp-badjwks', {}, { jwks: { status: 200, type: 'text/html', body: '<html>maintenance</html>' } }, async (s) => {
    const token = await mintToken({ issuer: s.idp.issuer });
    const r = await get(s.url('/oidcroute/get'), token);
    assert.equal(r.status, 502, `status; body: ${r.text}`);
    assertJsonBody(r, 'Bad Gateway');
    await assertNothingUpstream(s);
  }));
