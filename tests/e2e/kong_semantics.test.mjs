// Kong's semantics where we share its keys (issue 18), in real Envoy:
// - a logged-in browser whose script sends its own Authorization is served
//   by the session (Kong tries the session first), and the script's
//   header never reaches the upstream;
// - who came in, and how, is in Envoy's own access log (the route strips
//   /oidcroute before the upstream: the log prints the rewritten path)
//   with `identity_filter_state`.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';

import { RUN_DIR, startStack, request, clientCredentialsToken, sleep, CLIENTS } from './lib.mjs';
import { startBrowserStack, launchBrowser, base, logIn } from './browser/stack.mjs';

describe('a session comes before the Authorization header', () => {
  let stack;
  let browser;
  before(async () => {
    stack = await startBrowserStack({
      name: 'precedence',
      envoys: [{ filter: () => ({ upstream_access_token_header: 'x-access-token' }) }],
    });
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await stack?.stop();
  });

  test('a script\'s own Basic credentials do not turn the session into a client-credentials call', { timeout: 60_000 }, async () => {
    const origin = base(stack.ports[0]);
    await logIn(browser.page, origin);
    const exchanges = stack.idp.tokenRequests().length;
    const seen = await browser.page.evaluate(async (url) => {
      const r = await fetch(url, { headers: { authorization: `Basic ${btoa('script:its-own-secret')}` } });
      return { status: r.status, body: await r.json() };
    }, `${origin}/oidcroute/get`);
    assert.equal(seen.status, 200, JSON.stringify(seen));
    assert.ok(seen.body.headers['x-access-token'], 'the session\'s token upstream');
    assert.equal(seen.body.headers.authorization, undefined, 'the script\'s header is not forwarded');
    assert.equal(stack.idp.tokenRequests().length, exchanges, 'no client-credentials exchange');
  });
});

describe('identity in Envoy\'s access log', () => {
  const logPath = path.join(RUN_DIR, `access-${process.pid}.log`);
  let stack;
  before(async () => {
    stack = await startStack({
      name: 'access-log',
      filter: { identity_filter_state: true },
      accessLog: {
        path: logPath,
        format: '%REQ(:PATH)% sub=%FILTER_STATE(wasm.envoy_oidc.subject:PLAIN)% '
          + 'client=%FILTER_STATE(wasm.envoy_oidc.client_id:PLAIN)% via=%FILTER_STATE(wasm.envoy_oidc.method:PLAIN)%\n',
      },
    });
  });
  after(async () => { await stack?.stop(); });

  test('the access log line prints the subject, client and way in', { timeout: 30_000 }, async () => {
    const denied = await request(stack.url('/oidcroute/get?nobody'));
    assert.equal(denied.status, 401);
    const token = await clientCredentialsToken(stack.idp);
    const ok = await request(stack.url('/oidcroute/get?who'), { headers: { authorization: `Bearer ${token}` } });
    assert.equal(ok.status, 200, ok.text);
    // Envoy writes its access log in the background: wait for both lines.
    let lines = [];
    for (let i = 0; i < 100 && lines.length < 2; i++) {
      lines = existsSync(logPath) ? readFileSync(logPath, 'utf8').trim().split('\n').filter(Boolean) : [];
      if (lines.length < 2) await sleep(100);
    }
    assert.ok(lines.includes('/get?who sub=demo-client client=demo-client via=bearer'), JSON.stringify(lines));
    assert.ok(lines.includes('/oidcroute/get?nobody sub=- client=- via=-'), JSON.stringify(lines));
  });
});

describe('session timeouts: idle expiry and rolling renewal, as Kong\'s', () => {
  let stack;
  let browser;
  before(async () => {
    stack = await startBrowserStack({
      name: 'timeouts',
      envoys: [
        // Idle 4 s: in use it lasts, left alone it ends.
        { filter: () => ({ session_idling_timeout: 4, session_rolling_timeout: 0 }) },
        // Renewal every 4 s, no idling limit: renewed in use (past half the
        // period), ended when not renewed for a period.
        { filter: () => ({ session_idling_timeout: 0, session_rolling_timeout: 4 }) },
      ],
    });
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await stack?.stop();
  });

  /** Status of a script's request (no login redirect) at `origin`. */
  const status = (origin) => browser.page.evaluate(async (url) => (await fetch(url)).status, `${origin}/oidcroute/get`);

  for (const [index, what] of [[0, 'idling'], [1, 'rolling']]) {
    test(`${what}: kept while in use, over when left alone`, { timeout: 60_000 }, async () => {
      await browser.context.clearCookies();
      const origin = base(stack.ports[index]);
      await logIn(browser.page, origin);
      for (let i = 0; i < 4; i++) {
        await sleep(2_500);
        assert.equal(await status(origin), 200, `in use, ${(i + 1) * 2.5} s after login`);
      }
      await sleep(5_000);
      assert.equal(await status(origin), 401, 'left alone past the timeout');
    });
  }
});

describe('anonymous and the failure redirects', () => {
  let anon;
  let redirects;
  before(async () => {
    anon = await startStack({ name: 'anonymous', filter: { anonymous: 'guest', auth_methods: ['bearer'] } });
    redirects = await startStack({
      name: 'failure-redirects',
      filter: {
        auth_methods: ['bearer'],
        scopes_required: ['kongresource/scope2'],
        unauthorized_redirect_uri: ['https://app.example.com/please-log-in'],
        forbidden_redirect_uri: ['https://app.example.com/not-for-you'],
      },
    });
  });
  after(async () => { await Promise.allSettled([anon?.stop(), redirects?.stop()]); });

  test('anonymous: no credential, or an invalid one, passes as the anonymous consumer', { timeout: 30_000 }, async () => {
    for (const auth of [undefined, 'Bearer not.a.token']) {
      const headers = { 'x-anonymous-consumer': 'false', ...(auth ? { authorization: auth } : {}) };
      const r = await request(anon.url('/oidcroute/get'), { headers });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.headers['x-anonymous-consumer'], 'true', JSON.stringify(r.json.headers));
      assert.equal(r.json.headers['x-consumer-id'], 'guest');
      assert.equal(r.json.headers.authorization, undefined, 'the failing credential is not forwarded');
    }
    const token = await clientCredentialsToken(anon.idp);
    const r = await request(anon.url('/oidcroute/get'), {
      headers: { authorization: `Bearer ${token}`, 'x-anonymous-consumer': 'true' },
    });
    assert.equal(r.status, 200);
    assert.equal(r.json.headers['x-anonymous-consumer'], undefined, 'an authenticated request never carries it');
  });

  test('browsers are redirected on 401 and 403; API clients get the JSON', { timeout: 30_000 }, async () => {
    const nav = { accept: 'text/html', 'sec-fetch-mode': 'navigate' };
    const url = redirects.url('/oidcroute/get');
    const unauth = await request(url, { headers: nav });
    assert.equal(unauth.status, 302);
    assert.equal(unauth.headers.location, 'https://app.example.com/please-log-in');
    assert.equal((await request(url)).status, 401);
    const token = await clientCredentialsToken(redirects.idp); // scope1 only
    const forbidden = await request(url, { headers: { ...nav, authorization: `Bearer ${token}` } });
    assert.equal(forbidden.status, 302);
    assert.equal(forbidden.headers.location, 'https://app.example.com/not-for-you');
    assert.equal((await request(url, { headers: { authorization: `Bearer ${token}` } })).status, 403);
  });
});

describe('tokens and identity to the upstream and the client', () => {
  let stack;
  let browser;
  before(async () => {
    stack = await startBrowserStack({
      name: 'headers',
      envoys: [{
        filter: () => ({
          upstream_id_token_header: 'x-id-token',
          upstream_session_id_header: 'x-session-id',
          upstream_refresh_token_header: 'x-refresh-token',
          downstream_id_token_header: 'x-id-token-back',
          downstream_session_id_header: 'x-session-id-back',
          downstream_refresh_token_header: 'x-refresh-token-back',
          upstream_headers: [{ header: 'x-client', path: ['client_id'] }],
          downstream_access_token_header: 'x-access-token',
          downstream_headers_claims: ['sub'],
          downstream_headers_names: ['x-user'],
        }),
      }],
    });
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await stack?.stop();
  });

  test('each header carries its value; client-sent copies never pass', { timeout: 60_000 }, async () => {
    const origin = base(stack.ports[0]);
    await logIn(browser.page, origin);
    const seen = await browser.page.evaluate(async (url) => {
      const r = await fetch(url, { headers: { 'x-id-token': 'forged', 'x-client': 'forged' } });
      return {
        status: r.status,
        upstream: (await r.json()).headers,
        accessToken: r.headers.get('x-access-token'),
        user: r.headers.get('x-user'),
        back: {
          id: r.headers.get('x-id-token-back'),
          sid: r.headers.get('x-session-id-back'),
          refresh: r.headers.get('x-refresh-token-back'),
        },
      };
    }, `${origin}/oidcroute/get`);
    assert.equal(seen.status, 200);
    const idToken = String(seen.upstream['x-id-token']);
    assert.equal(idToken.split('.').length, 3, `the ID token: ${idToken}`);
    assert.equal(JSON.parse(Buffer.from(idToken.split('.')[1], 'base64url')).sub, 'alice');
    assert.ok(String(seen.upstream['x-session-id']).length >= 32);
    assert.equal(seen.upstream['x-client'], 'demo-client');
    assert.equal(seen.accessToken, String(seen.upstream.authorization).replace(/^Bearer /, ''));
    assert.equal(seen.user, 'alice');
    assert.ok(String(seen.upstream['x-refresh-token']).length > 10, 'the refresh token upstream');
    assert.deepEqual(seen.back, {
      id: idToken,
      sid: seen.upstream['x-session-id'],
      refresh: seen.upstream['x-refresh-token'],
    });
  });
});

describe('the introspection answer to the upstream and the client', () => {
  let stack;
  before(async () => {
    stack = await startStack({
      name: 'introspection-headers',
      idpOptions: { accessTokenFormat: 'opaque' },
      filter: {
        client_id: [CLIENTS.demo.id],
        client_secret: [CLIENTS.demo.secret],
        upstream_introspection_header: 'x-introspection',
        downstream_introspection_header: 'x-introspected',
      },
    });
  });
  after(async () => { await stack?.stop(); });

  test('JSON in standard base64, as Kong sends it', { timeout: 30_000 }, async () => {
    const token = await clientCredentialsToken(stack.idp);
    assert.equal(token.split('.').length, 1, 'an opaque token');
    const r = await request(stack.url('/oidcroute/get'), {
      headers: { authorization: `Bearer ${token}`, 'x-introspection': 'forged' },
    });
    assert.equal(r.status, 200, r.text);
    // Kong's headers.lua: ngx.encode_base64 (the standard alphabet, padded).
    const decode = (v) => {
      assert.match(String(v), /^[A-Za-z0-9+/]+={0,2}$/);
      assert.equal(String(v).length % 4, 0, 'padded');
      return JSON.parse(Buffer.from(String(v), 'base64').toString());
    };
    const up = decode(r.json.headers['x-introspection']);
    assert.equal(up.active, true);
    assert.equal(up.client_id, CLIENTS.demo.id);
    assert.deepEqual(decode(r.headers['x-introspected']), up);
  });
});

describe('where credentials come from', () => {
  let listed;
  let byDefault;
  before(async () => {
    listed = await startStack({
      name: 'param-types',
      filter: {
        bearer_token_param_type: ['header', 'query', 'cookie'],
        bearer_token_cookie_name: 'at',
        client_credentials_param_type: ['header', 'query'],
        // The exchange asks for the scope the filter requires.
        scopes: ['kongresource/scope1'],
      },
    });
    byDefault = await startStack({ name: 'param-types-default' });
  });
  after(async () => { await Promise.allSettled([listed?.stop(), byDefault?.stop()]); });

  test('query and cookie tokens pass and leave from where they came', { timeout: 30_000 }, async () => {
    const token = await clientCredentialsToken(listed.idp);
    const q = await request(listed.url(`/oidcroute/get?x=1&access_token=${token}`));
    assert.equal(q.status, 200, q.text);
    assert.equal(q.json.path, '/get?x=1', 'the token taken out of the query');
    assert.equal(q.json.headers.authorization, `Bearer ${token}`);
    const c = await request(listed.url('/oidcroute/get'), { headers: { cookie: `theme=dark; at=${token}` } });
    assert.equal(c.status, 200, c.text);
    assert.equal(c.json.headers.cookie, 'theme=dark', 'the token cookie taken out');
    const cc = await request(listed.url(`/oidcroute/get?client_id=${CLIENTS.demo.id}&client_secret=${CLIENTS.demo.secret}`));
    assert.equal(cc.status, 200, cc.text);
    assert.equal(cc.json.path, '/get', 'client credentials taken out of the query');
  });

  test('under the default a query token is no credential', { timeout: 30_000 }, async () => {
    const token = await clientCredentialsToken(byDefault.idp);
    const r = await request(byDefault.url(`/oidcroute/get?access_token=${token}`));
    assert.equal(r.status, 401, r.text);
  });
});
