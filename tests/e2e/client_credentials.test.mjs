// Client credentials in real Envoy with the filter, against the test
// provider shaped like Amazon Cognito: the token endpoint is served on a
// second port (Cognito: the hosted-UI domain, another host than the issuer),
// so the filter needs `idp_clusters` for both authorities and Envoy has one
// cluster per port (`idp`, `idp_token`).
//
// A machine client sends `Authorization: Basic base64(id:secret)`; the filter
// exchanges it at the token endpoint (grant_type=client_credentials), checks
// the token as a bearer token and forwards `Authorization: Bearer <token>`.
// Token calls are counted at the provider, never by the filter's own word.
// Expected answers are the README's ("Failures answer like Kong"); nothing
// unauthenticated and no Basic credentials reach the upstream echo.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { createRemoteJWKSet, jwtVerify } from 'jose';

import { startStack, request, decodeJwt, withEnvoyLog, sleep, CLIENTS } from './lib.mjs';

const DEMO = CLIENTS.demo;
const OTHER = CLIENTS.other;
// A client whose id and secret need RFC 6749 form-encoding inside the
// Basic header the filter sends to the IdP (2.3.1), and a colon in the secret.
const ODD = { id: 'odd client', secret: 'p+s%20:w/rd&x=y' };
const SCOPE = 'kongresource/scope1';
const CC_REJECTED = 'rejected by the identity provider';

// ---------------------------------------------------------------- setup

const b64 = (s) => Buffer.from(s, 'utf8').toString('base64');
const basic = (id, secret) => `Basic ${b64(`${id}:${secret}`)}`;

/** The Cognito-shaped filter config of the issue (plus `extra`). */
function cognitoFilter(extra = {}) {
  return (idp) => ({
    idp_cluster: undefined, // dropped: every IdP URL must go through idp_clusters
    idp_clusters: {
      [`127.0.0.1:${idp.port}`]: 'idp',
      [`127.0.0.1:${idp.tokenPort}`]: 'idp_token',
    },
    scopes: [SCOPE],
    scopes_required: [SCOPE],
    audience_claim: ['client_id'],
    leeway: 0,
    idp_timeout_ms: 2000,
    ...extra,
  });
}

/** A stack whose provider serves the token endpoint on its own port. */
function cognitoStack({ name, concurrency = 1, filter = {}, idpOptions = {} }) {
  return startStack({
    name,
    concurrency,
    filter: typeof filter === 'function' ? filter : cognitoFilter(filter),
    idpOptions: { tokenPort: 0, ...idpOptions },
  });
}

/** One stack for the duration of `fn`, with Envoy's log on failure. */
async function withStack(opts, fn) {
  const s = await cognitoStack(opts);
  try {
    await withEnvoyLog(s.envoy, () => fn(s));
  } finally {
    await s.stop();
  }
}

// ---------------------------------------------------------------- http

/** GET through Envoy with the given Authorization value, on a fresh connection. */
function getWith(s, authorization, path = '/oidcroute/get') {
  return request(s.url(path), { headers: authorization === undefined ? {} : { authorization } });
}

/** GET on a kept-alive connection of `agent` (one Envoy worker per connection). */
function getOn(agent, url, authorization) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent, headers: { authorization }, timeout: 10_000 }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`timeout: GET ${url}`)));
    req.on('error', reject);
  });
}

// ---------------------------------------------------------------- checks

async function upstreamRequests(s) {
  const r = await request(`${s.echo.url}/__received`);
  assert.equal(r.status, 200);
  return r.json;
}

async function clearUpstream(s) {
  await request(`${s.echo.url}/__received`, { method: 'DELETE' });
}

async function assertNothingUpstream(s) {
  const seen = await upstreamRequests(s);
  assert.deepEqual(seen.map((e) => `${e.method} ${e.path}`), [], 'nothing may reach the upstream');
}

const realm = (s) => `Bearer realm="127.0.0.1:${s.idpPort}"`;

function assertJsonBody(r, message) {
  assert.match(String(r.headers['content-type']), /^application\/json/, 'content-type');
  assert.deepEqual(r.json, { message }, `body was: ${r.text}`);
}

/** 401 for credentials that were sent but are not acceptable. */
function assertInvalidToken(s, r, what) {
  assert.equal(r.status, 401, `${what}: status; body: ${r.text}`);
  const h = r.headers['www-authenticate'];
  assert.ok(h, `${what}: WWW-Authenticate header`);
  assert.ok(h.startsWith(`${realm(s)}, `), `${what}: WWW-Authenticate: ${h}`);
  assert.match(h, /(^|, )error="invalid_token"(,|$)/, `${what}: WWW-Authenticate: ${h}`);
  assertJsonBody(r, 'Unauthorized');
}

function assertStatusBody(r, status, message) {
  assert.equal(r.status, status, `status; body: ${r.text}`);
  assertJsonBody(r, message);
}

/**
 * What the echo saw for one request: a Bearer JWT from the provider (not
 * the Basic credentials, in any header). Returns the token and its payload.
 */
async function assertBearerUpstream(s, entry, client) {
  const auth = entry.headers.authorization;
  assert.match(String(auth), /^Bearer [\w-]+\.[\w-]+\.[\w-]+$/, `upstream authorization: ${auth}`);
  const token = auth.slice('Bearer '.length);
  const { header, payload } = decodeJwt(token);
  assert.equal(header.kid, 'test-rsa', 'signed by the provider');
  assert.equal(payload.iss, s.idp.issuer);
  assert.equal(payload.client_id, client.id);
  assert.equal(payload.token_use, 'access');
  assert.ok(String(payload.scope).split(' ').includes(SCOPE), `scope claim: ${payload.scope}`);
  assert.equal(payload.aud, undefined, 'Cognito access tokens have no aud');
  // A real token of the provider, not something the filter made up.
  const jwks = createRemoteJWKSet(new URL(`${s.idp.issuer}/jwks`));
  await jwtVerify(token, jwks, { issuer: s.idp.issuer });

  const creds = b64(`${client.id}:${client.secret}`);
  for (const [name, value] of Object.entries(entry.headers)) {
    const v = String(value);
    assert.ok(!/basic/i.test(v), `upstream header ${name}: ${v}`);
    assert.ok(!v.includes(creds) && !v.includes(client.secret), `credentials leaked upstream in ${name}: ${v}`);
  }
  return { token, payload };
}

/** Connections served per Envoy worker, from the admin stats. */
async function connectionsPerWorker(s) {
  const stats = (await request(`http://127.0.0.1:${s.envoy.adminPort}/stats?filter=downstream_cx_total`)).text;
  const perWorker = [...stats.matchAll(/^listener\.127\.0\.0\.1_\d+\.worker_(\d)\.downstream_cx_total: (\d+)$/gm)]
    .map((m) => Number(m[2]));
  return { perWorker, stats };
}

async function assertBothWorkersServed(s) {
  const { perWorker, stats } = await connectionsPerWorker(s);
  assert.equal(perWorker.length, 2, `per-worker stats:\n${stats}`);
  assert.ok(perWorker.every((n) => n > 0), `connections per worker: ${perWorker}`);
  return perWorker;
}

async function clusterRequests(s, cluster) {
  const stats = (await request(`http://127.0.0.1:${s.envoy.adminPort}/stats?filter=^cluster\\.${cluster}\\.upstream_rq_total$`)).text;
  const m = /: (\d+)$/m.exec(stats);
  return m ? Number(m[1]) : 0;
}

const tokenCalls = (s) => s.idp.counts().token ?? 0;

// ---------------------------------------------------------------- provider up

describe('client credentials, Cognito-shaped provider (token endpoint on its own port)', () => {
  let s;
  before(async () => { s = await cognitoStack({ name: 'cc', idpOptions: { extraClients: [ODD] } }); });
  after(async () => { await s?.stop(); });

  const run = (fn) => () => withEnvoyLog(s.envoy, async () => { await clearUpstream(s); await fn(); });

  test('good credentials: 200, upstream sees a Bearer JWT for the client and no Basic header', { timeout: 30_000 }, run(async () => {
    s.idp.resetCounts();
    const r = await getWith(s, basic(DEMO.id, DEMO.secret));
    assert.equal(r.status, 200, `status; body: ${r.text}`);

    const seen = await upstreamRequests(s);
    assert.equal(seen.length, 1, 'one request upstream');
    assert.equal(seen[0].path, '/get');
    await assertBearerUpstream(s, seen[0], DEMO);

    // One exchange, at the token endpoint's own port (cluster idp_token),
    // client_secret_basic, with the configured scope.
    const calls = s.idp.tokenRequests();
    assert.equal(calls.length, 1, `token calls: ${JSON.stringify(calls)}`);
    assert.deepEqual(calls[0], {
      port: s.idp.tokenPort,
      method: 'POST',
      auth: 'basic',
      client_id: DEMO.id,
      params: { grant_type: 'client_credentials', scope: SCOPE },
      status: 200,
    });
    assert.equal(await clusterRequests(s, 'idp_token'), 1, 'token call through cluster idp_token');
  }));

  test('wrong secret: 401 invalid_token as Kong answers, nothing upstream, failure remembered', { timeout: 30_000 }, run(async () => {
    s.idp.resetCounts();
    const r = await getWith(s, basic(DEMO.id, 'not-the-secret'));
    assertInvalidToken(s, r, 'wrong secret');
    assert.equal(r.headers['www-authenticate'],
      `${realm(s)}, error="invalid_token", error_description="${CC_REJECTED}"`);
    await assertNothingUpstream(s);
    const calls = s.idp.tokenRequests();
    assert.deepEqual(calls.map((c) => [c.client_id, c.status]), [[DEMO.id, 401]], 'the provider refused it');

    // A client retrying in a loop does not reach the IdP again (negative
    // cache, 5 s per worker; one worker here).
    for (let i = 0; i < 3; i++) {
      assertInvalidToken(s, await getWith(s, basic(DEMO.id, 'not-the-secret')), `retry ${i}`);
    }
    assert.equal(tokenCalls(s), 1, 'token calls after 3 retries');
    await assertNothingUpstream(s);
  }));

  test('malformed Basic credentials: 401 invalid_token without calling the IdP', { timeout: 30_000 }, run(async () => {
    s.idp.resetCounts();
    const cases = {
      'bad base64': 'Basic !!!not*base64!!!',
      'no colon': `Basic ${b64('demo-client')}`,
      'empty id': `Basic ${b64(`:${DEMO.secret}`)}`,
    };
    for (const [what, value] of Object.entries(cases)) {
      assertInvalidToken(s, await getWith(s, value), what);
    }
    assert.equal(tokenCalls(s), 0, `token calls: ${JSON.stringify(s.idp.tokenRequests())}`);
    await assertNothingUpstream(s);
  }));

  test('two clients get two different tokens, each with its own client_id', { timeout: 30_000 }, run(async () => {
    const r1 = await getWith(s, basic(DEMO.id, DEMO.secret));
    const r2 = await getWith(s, basic(OTHER.id, OTHER.secret));
    assert.equal(r1.status, 200, `demo-client: ${r1.text}`);
    assert.equal(r2.status, 200, `other-client: ${r2.text}`);
    const seen = await upstreamRequests(s);
    assert.equal(seen.length, 2);
    const a = await assertBearerUpstream(s, seen[0], DEMO);
    const b = await assertBearerUpstream(s, seen[1], OTHER);
    assert.notEqual(a.token, b.token, 'different clients, different tokens');
  }));

  test('id and secret with reserved characters reach the IdP intact', { timeout: 30_000 }, run(async () => {
    s.idp.resetCounts();
    const r = await getWith(s, basic(ODD.id, ODD.secret));
    assert.equal(r.status, 200, `status; body: ${r.text}; token calls: ${JSON.stringify(s.idp.tokenRequests())}`);
    const [entry] = await upstreamRequests(s);
    await assertBearerUpstream(s, entry, ODD);
    assert.deepEqual(s.idp.tokenRequests().map((c) => [c.auth, c.client_id, c.status]), [['basic', ODD.id, 200]]);
  }));
});

// ---------------------------------------------------------------- caching

test('50 requests with the same credentials, one worker: one token call', { timeout: 30_000 }, () =>
  withStack({ name: 'cc-50', concurrency: 1 }, async (s) => {
    const auth = basic(DEMO.id, DEMO.secret);
    for (let i = 0; i < 50; i++) {
      const r = await getWith(s, auth);
      assert.equal(r.status, 200, `request ${i}: ${r.text}`);
    }
    const seen = await upstreamRequests(s);
    assert.equal(seen.length, 50);
    assert.equal(new Set(seen.map((e) => e.headers.authorization)).size, 1, 'one token for all');
    await assertBearerUpstream(s, seen[49], DEMO);
    assert.equal(tokenCalls(s), 1, `provider counts: ${JSON.stringify(s.idp.counts())}`);
  }));

test('50 requests with the same credentials, two workers, cold and concurrent: one token call', { timeout: 30_000 }, () =>
  withStack({ name: 'cc-50x2', concurrency: 2 }, async (s) => {
    const auth = basic(DEMO.id, DEMO.secret);
    // Each request on its own connection; Envoy spreads connections over
    // its workers. The first wave arrives cold and all at once: every
    // worker finds no token, one of them takes the lease, the rest wait.
    // (16 connections: all on one worker by chance is 2 in 65,536.)
    const waves = [16, 12, 12, 10];
    let n = 0;
    for (const size of waves) {
      const rs = await Promise.all(Array.from({ length: size }, () => getWith(s, auth)));
      for (const r of rs) assert.equal(r.status, 200, `request ${n++}: ${r.text}`);
      if (n === waves[0]) await assertBothWorkersServed(s); // the cold wave itself hit both
    }
    await assertBothWorkersServed(s);
    const seen = await upstreamRequests(s);
    assert.equal(seen.length, 50);
    assert.equal(new Set(seen.map((e) => e.headers.authorization)).size, 1, 'both workers forward the same token');
    await assertBearerUpstream(s, seen[0], DEMO);
    assert.equal(tokenCalls(s), 1, `provider counts: ${JSON.stringify(s.idp.counts())}`);
  }));

test('measure: token calls per 1,000 requests with one credential pair (two workers)', { timeout: 40_000 }, (t) =>
  withStack({ name: 'cc-1000', concurrency: 2 }, async (s) => {
    const auth = basic(DEMO.id, DEMO.secret);
    const url = s.url('/oidcroute/get');
    // 20 kept-alive connections (spread over both workers), each sending
    // its 50 back to back; all start cold at the same moment.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 20 });
    const statuses = {};
    const t0 = Date.now();
    try {
      await Promise.all(Array.from({ length: 20 }, async () => {
        for (let i = 0; i < 50; i++) {
          const r = await getOn(agent, url, auth);
          statuses[r.status] = (statuses[r.status] ?? 0) + 1;
        }
      }));
    } finally {
      agent.destroy();
    }
    const ms = Date.now() - t0;
    const calls = tokenCalls(s);
    const perWorker = await assertBothWorkersServed(s);
    t.diagnostic(`token endpoint calls for 1000 requests (one credential pair, 2 workers, 20 connections): ${calls}; `
      + `statuses ${JSON.stringify(statuses)}; connections per worker ${perWorker}; ${ms} ms`);
    assert.deepEqual(statuses, { 200: 1000 });
    assert.equal((await upstreamRequests(s)).length, 1000);
    assert.equal(calls, 1, `provider counts: ${JSON.stringify(s.idp.counts())}`);
  }));

test('a cached token is refreshed before it expires (4 s tokens, requests for 7 s)', { timeout: 30_000 }, () =>
  withStack({ name: 'cc-refresh', idpOptions: { accessTokenTTL: 4 } }, async (s) => {
    const auth = basic(DEMO.id, DEMO.secret);
    const tokens = new Set();
    for (let i = 0; i < 28; i++) {
      const r = await getWith(s, auth);
      const nowS = Date.now() / 1000;
      assert.equal(r.status, 200, `request ${i} at +${i * 250} ms: ${r.text}`);
      const token = r.json.headers.authorization.slice('Bearer '.length);
      const { exp } = decodeJwt(token).payload;
      assert.ok(exp > nowS - 1, `request ${i}: forwarded a token that expired at ${exp}, now ${nowS}`);
      tokens.add(token);
      await sleep(250);
    }
    // Life 4 s, renewed a quarter (1 s) before expiry. Times are whole
    // seconds (the token's iat/exp and the filter's clock), so a renewal
    // comes 2 to 3 s after the previous exchange: 3 or 4 calls in the ~7.5 s
    // of requests, never one per request.
    const calls = tokenCalls(s);
    assert.ok(calls >= 2 && calls <= 4, `token calls in 7 s: ${calls}`);
    assert.equal(tokens.size, calls, 'each exchanged token was used');
  }));

// ---------------------------------------------------------------- IdP down, faults

test('provider down before the first request: 503, nothing upstream', { timeout: 30_000 }, () =>
  withStack({ name: 'cc-down' }, async (s) => {
    await s.stopIdp();
    for (let i = 0; i < 2; i++) {
      const r = await getWith(s, basic(DEMO.id, DEMO.secret));
      assertStatusBody(r, 503, 'Service Unavailable');
    }
    await assertNothingUpstream(s);
  }));

test('token endpoint failures: 503 for 503/504/timeout, 502 for other answers; recovers', { timeout: 30_000 }, () =>
  withStack({ name: 'cc-faults' }, async (s) => {
    // Discovery and JWKS first, so only the token endpoint is at fault.
    assert.equal((await getWith(s, basic(OTHER.id, OTHER.secret))).status, 200, 'warm-up');
    await clearUpstream(s);
    const cases = [
      ['503', { status: 503, body: 'unavailable' }, 503, 'Service Unavailable'],
      ['504', { status: 504, body: 'gateway timeout' }, 503, 'Service Unavailable'],
      ['500', { status: 500, body: 'internal error' }, 502, 'Bad Gateway'],
      ['HTML 200', { status: 200, type: 'text/html', body: '<html>maintenance</html>' }, 502, 'Bad Gateway'],
      ['JSON without access_token', { status: 200, type: 'application/json', body: '{"token_type":"Bearer"}' }, 502, 'Bad Gateway'],
    ];
    // Each case with credentials of its own: failures are remembered per credentials.
    let i = 0;
    for (const [what, fault, status, message] of cases) {
      s.idp.setFault('token', fault);
      const before = tokenCalls(s);
      const r = await getWith(s, basic(DEMO.id, `fault-${i++}`));
      assert.equal(r.status, status, `${what}: status; body: ${r.text}`);
      assertJsonBody(r, message);
      assert.equal(tokenCalls(s), before + 1, `${what}: one token call`);
    }

    s.idp.setFault('token', { hang: true });
    const t0 = Date.now();
    const r = await getWith(s, basic(DEMO.id, 'fault-hang'));
    const elapsed = Date.now() - t0;
    assertStatusBody(r, 503, 'Service Unavailable');
    assert.ok(elapsed >= 1800 && elapsed < 6000, `answered after ${elapsed} ms; idp_timeout_ms is 2000`);
    await assertNothingUpstream(s);

    s.idp.setFault('token', null);
    const ok = await getWith(s, basic(DEMO.id, DEMO.secret));
    assert.equal(ok.status, 200, `after the faults: ${ok.text}`);
    await assertBearerUpstream(s, (await upstreamRequests(s))[0], DEMO);
  }));

// ---------------------------------------------------------------- request shape

test('without explicit scopes no scope parameter is sent', { timeout: 30_000 }, () =>
  withStack({ name: 'cc-noscope', filter: cognitoFilter({ scopes: undefined, scopes_required: undefined }) }, async (s) => {
    const r = await getWith(s, basic(DEMO.id, DEMO.secret));
    assert.equal(r.status, 200, `status; body: ${r.text}`);
    const calls = s.idp.tokenRequests();
    assert.equal(calls.length, 1, `token calls: ${JSON.stringify(calls)}`);
    assert.deepEqual(calls[0].params, { grant_type: 'client_credentials' }, 'no scope parameter (never the default openid)');
    // The provider grants no scope when none is asked for.
    const [entry] = await upstreamRequests(s);
    const { payload } = decodeJwt(entry.headers.authorization.slice('Bearer '.length));
    assert.equal(payload.client_id, DEMO.id);
    assert.equal(payload.scope, undefined, `scope claim: ${payload.scope}`);
  }));

test('client_secret_post when the token endpoint advertises only that', { timeout: 30_000 }, () =>
  withStack({ name: 'cc-post', idpOptions: { tokenAuthMethods: ['client_secret_post'] } }, async (s) => {
    const disco = await request(`${s.idp.issuer}/.well-known/openid-configuration`);
    assert.deepEqual(disco.json.token_endpoint_auth_methods_supported, ['client_secret_post']);
    s.idp.resetCounts();
    const r = await getWith(s, basic(DEMO.id, DEMO.secret));
    assert.equal(r.status, 200, `status; body: ${r.text}`);
    const calls = s.idp.tokenRequests();
    assert.equal(calls.length, 1, `token calls: ${JSON.stringify(calls)}`);
    assert.equal(calls[0].auth, 'post', `token call: ${JSON.stringify(calls[0])}`);
    assert.equal(calls[0].client_id, DEMO.id);
    assert.equal(calls[0].status, 200);
    await assertBearerUpstream(s, (await upstreamRequests(s))[0], DEMO);
  }));
