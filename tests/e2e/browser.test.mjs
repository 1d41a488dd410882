// Browser login end to end: Chromium (Debian `chromium`, driven by npm
// `playwright-core`) → real Envoy with the filter → the Cognito-shaped
// oidc-provider's login and consent pages → back through Envoy to the
// upstream echo, which shows what it received.
//
// The seed's Kong config for this flow is client id + secret + issuer +
// redirect_uri, the redirect_uri being the protected URL itself
// (`/oidcroute/get`); browserFilter() in browser/stack.mjs adds a session
// secret, a logout path and a public page to land on after logout.
//
// Note: browser cookies are per host, not per port (RFC 6265 §8.5), so the
// Envoys of one test, all on 127.0.0.1, see each other's cookies — as the
// replicas behind one hostname do.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { request, decodeJwt, withEnvoyLog, sleep, CLIENTS } from './lib.mjs';
import {
  startBrowserStack, launchBrowser, sessionCookies, loginCookies,
  base, callbackUrl, loggedOutUrl,
} from './browser/stack.mjs';

const T0 = Date.now();
const OUR_COOKIE = /^session(\.\d+|_login_[0-9a-f]+)?$/;

// ---------------------------------------------------------------- helpers

/** Every navigation hop of the page (redirects included), in order. */
function trackNavigation(page) {
  const hops = [];
  page.on('request', (r) => { if (r.isNavigationRequest() && r.frame() === page.mainFrame()) hops.push(r.url()); });
  return hops;
}

const isLoginForm = async (page) => (await page.locator('input[name=login]').count()) > 0;
const isConsentForm = async (page) => (await page.locator('input[name=prompt][value=consent]').count()) > 0;

/**
 * From wherever the page is, do what the provider asks (login form,
 * consent) until the browser lands on `target` (a URL, or a predicate of
 * one) with a status other than 302; checks that status (`status`, 200
 * by default) and returns the response, its JSON when 200 (what the echo
 * saw) and the steps taken. `action` starts it (a goto or a click).
 */
async function loginUntil(page, target, action, { user = 'alice', timeoutMs = 15_000, status = 200 } = {}) {
  const steps = [];
  const isTarget = typeof target === 'function' ? target : (u) => u === target;
  // Landed: on the target, or anywhere on an error page (fail fast).
  const landed = (r) => r.request().isNavigationRequest() && r.frame() === page.mainFrame()
    && ((isTarget(r.url()) && r.status() !== 302) || r.status() >= 400);
  const final = page.waitForResponse(landed, { timeout: timeoutMs });
  let done = false;
  final.then(() => { done = true; }, () => { done = true; });
  await action();
  const submit = async () => {
    await Promise.all([page.waitForNavigation({ waitUntil: 'commit' }), page.click('button[type=submit]')]);
  };
  while (!done) {
    await page.waitForLoadState('domcontentloaded').catch(() => {});
    if (done) break;
    try {
      if (isTarget(page.url())) { await sleep(50); continue; }
      if (await isLoginForm(page)) {
        steps.push('login');
        await page.fill('input[name=login]', user);
        await page.fill('input[name=password]', 'any-password');
        await submit();
      } else if (await isConsentForm(page)) {
        steps.push('consent');
        await submit();
      } else {
        await sleep(50);
      }
    } catch (e) {
      // The page navigated under us: look again.
      if (!/context was destroyed|navigat/i.test(e.message)) throw e;
    }
  }
  const resp = await final;
  assert.equal(resp.status(), status, `landed on ${resp.url()} with ${resp.status()}: ${await resp.text()}`);
  return { resp, echo: status === 200 ? await resp.json() : undefined, steps };
}

function cookieNames(header) {
  return String(header ?? '').split(';').map((p) => p.split('=')[0].trim()).filter(Boolean);
}

/** What the echo saw carries a Bearer JWT access token and none of our cookies. */
function assertUpstreamBearer(seen, { path = '/get' } = {}) {
  assert.equal(seen.path, path, 'upstream path');
  const auth = seen.headers.authorization;
  assert.match(String(auth), /^Bearer [\w-]+\.[\w-]+\.[\w-]+$/, `upstream Authorization: ${auth}`);
  const ours = cookieNames(seen.headers.cookie).filter((n) => OUR_COOKIE.test(n));
  assert.deepEqual(ours, [], `our cookies reached the upstream: ${seen.headers.cookie}`);
  const token = auth.slice('Bearer '.length);
  return { token, claims: decodeJwt(token).payload };
}

function assertCognitoShapedAccessToken(claims, idp, user) {
  assert.equal(claims.iss, idp.issuer);
  assert.equal(claims.token_use, 'access');
  assert.equal(claims.client_id, CLIENTS.demo.id);
  assert.equal(claims.sub, user);
  assert.equal(claims.aud, undefined, 'no aud, as Cognito');
  assert.ok(String(claims.scope).split(' ').includes('kongresource/scope1'), `scope: ${claims.scope}`);
}

const byteLength = (cookies) => cookies.reduce((n, c) => n + c.name.length + 1 + c.value.length, 0);

function tamper(value) {
  // Flip one character in the middle of the sealed value (after a chunk
  // count prefix `N~`, if any).
  const start = value.indexOf('~') + 1;
  const i = start + Math.floor((value.length - start) / 2);
  return value.slice(0, i) + (value[i] === 'A' ? 'B' : 'A') + value.slice(i + 1);
}

function setCookieHeaders(resp) {
  return resp.headersArray().filter((h) => h.name.toLowerCase() === 'set-cookie').map((h) => h.value);
}

// ---------------------------------------------------------------- one Envoy

describe('browser login through one Envoy', () => {
  let s;
  let b;
  let url;
  before(async () => {
    s = await startBrowserStack({ name: 'browser' });
    url = (p) => `${base(s.ports[0])}${p}`;
    b = await launchBrowser();
  });
  after(async () => {
    await b?.close();
    await s?.stop();
  });
  const run = (fn) => (t) => withEnvoyLog(s.envoys, () => fn(t));

  let firstToken;
  // The first login's callback URL and the cookies the browser held before
  // it: what a replay of the callback would carry.
  let replay;

  test('login form, consent, back on the original URL with the Bearer token upstream', { timeout: 30_000 }, run(async (t) => {
    const { page, context } = b;
    s.idp.resetCounts();
    s.echo.clear();
    const hops = trackNavigation(page);
    const target = url('/oidcroute/get?x=1&y=two');
    const started = Date.now();

    // 1. The browser is sent to the provider's login page.
    await page.goto(target);
    assert.ok(await isLoginForm(page), `expected the provider's login form, at ${page.url()}`);
    assert.equal(hops[0], target);
    const authorize = new URL(hops[1]);
    assert.equal(`${authorize.origin}${authorize.pathname}`, `${s.idp.issuer}/auth`, `second hop: ${hops[1]}`);
    const q = Object.fromEntries(authorize.searchParams);
    assert.equal(q.response_type, 'code');
    assert.equal(q.client_id, CLIENTS.demo.id);
    assert.equal(q.redirect_uri, callbackUrl(s.ports[0]));
    assert.deepEqual(q.scope.split(' ').sort(), ['kongresource/scope1', 'openid']);
    assert.equal(q.code_challenge_method, 'S256');
    assert.match(q.code_challenge, /^[\w-]{43}$/);
    assert.ok(q.state?.length >= 16 && q.nonce?.length >= 16, `state ${q.state}, nonce ${q.nonce}`);
    const login = await loginCookies(context);
    assert.equal(login.length, 1, 'one login cookie');
    replay = { cookie: login.map((c) => `${c.name}=${c.value}`).join('; ') };
    assert.equal(login[0].httpOnly, true);
    assert.equal(login[0].sameSite, 'Lax');
    assert.equal(login[0].secure, false, 'no Secure over http');
    assert.ok(Math.abs(login[0].expires - (Date.now() / 1000 + 600)) < 30, `login cookie expires ${login[0].expires}`);
    assert.deepEqual(s.echo.received(), [], 'nothing upstream before login');

    // 2. Login and consent; the provider sends the browser to the callback.
    const { echo, steps } = await loginUntil(page, target, async () => {});
    const took = Date.now() - started;
    assert.deepEqual(steps, ['login', 'consent']);
    assert.equal(page.url(), target, 'back on the original URL, query included');
    const callback = hops.find((h) => h.startsWith(`${callbackUrl(s.ports[0])}?`) && /[?&]code=/.test(h));
    assert.ok(callback, `a callback hop: ${hops.join(' → ')}`);
    const cq = new URL(callback).searchParams;
    assert.equal(cq.get('state'), q.state);
    assert.equal(cq.get('iss'), s.idp.issuer, 'RFC 9207 iss');
    replay.url = callback;

    // 3. The upstream saw the access token and none of our cookies.
    assert.equal(echo.path, '/get?x=1&y=two');
    const { token, claims } = assertUpstreamBearer(echo, { path: '/get?x=1&y=two' });
    assertCognitoShapedAccessToken(claims, s.idp, 'alice');
    const upstream = s.echo.received();
    assert.equal(upstream.length, 1, `one request upstream: ${upstream.map((e) => e.path)}`);
    firstToken = token;

    // 4. One code exchange: PKCE verifier, the redirect_uri, client_secret_basic.
    const calls = s.idp.tokenRequests();
    assert.equal(calls.length, 1, JSON.stringify(calls));
    assert.equal(calls[0].status, 200);
    assert.equal(calls[0].auth, 'basic');
    assert.equal(calls[0].client_id, CLIENTS.demo.id);
    assert.equal(calls[0].params.grant_type, 'authorization_code');
    assert.equal(calls[0].params.redirect_uri, callbackUrl(s.ports[0]));
    assert.match(calls[0].params.code_verifier ?? '', /^[\w.~-]{43,128}$/);

    // 5. Cookies: the session (HttpOnly, Lax, Path=/, absolute timeout), login cookie gone.
    assert.deepEqual(await loginCookies(context), [], 'login cookie cleared');
    const session = await sessionCookies(context);
    assert.ok(session.length >= 1, 'session cookie set');
    for (const c of session) {
      assert.equal(c.httpOnly, true);
      assert.equal(c.sameSite, 'Lax');
      assert.equal(c.secure, false);
      assert.equal(c.path, '/');
      assert.ok(Math.abs(c.expires - (Date.now() / 1000 + 86400)) < 60, `session cookie expires ${c.expires}`);
      assert.ok(c.name.length + c.value.length < 4096, `${c.name}: ${c.value.length} bytes`);
    }
    t.diagnostic(`login with form + consent: ${took} ms; access token ${token.length} B; `
      + `session cookie ${byteLength(session)} B in ${session.length} cookie(s)`);
  }));

  /** Sends the first login's callback again, with the cookies from before it. */
  async function replayCallback() {
    s.idp.resetCounts();
    s.echo.clear();
    const r = await request(replay.url, { headers: { cookie: replay.cookie, accept: 'text/html' } });
    assert.equal(r.status, 400, `replayed callback: ${r.status} ${r.text}`);
    assert.ok(![].concat(r.headers['set-cookie'] ?? []).some((c) => /^session(\.\d+)?=[^;]/.test(c)), 'no session set');
    assert.deepEqual(s.echo.received(), [], 'nothing upstream');
    assert.equal(s.idp.tokenRequests().length, 0, 'the code is not exchanged again');
  }

  test('a replayed callback (cookies from before the login) is 400: no session, nothing upstream, no exchange', { timeout: 20_000 }, run(async () => {
    assert.ok(replay?.url && replay.cookie, 'needs the first login');
    await replayCallback();
  }));

  test('reload: 200 from the session, no provider call', { timeout: 20_000 }, run(async () => {
    assert.ok(firstToken, 'needs the login test');
    s.idp.resetCounts();
    s.echo.clear();
    const r = await b.page.reload();
    assert.equal(r.status(), 200);
    const { token } = assertUpstreamBearer(await r.json(), { path: '/get?x=1&y=two' });
    assert.equal(token, firstToken);
    assert.deepEqual(s.idp.counts(), {}, 'no provider call');
    // The same session from an API client (XHR-like): 200, not a redirect.
    const api = await b.context.request.get(url('/oidcroute/get'), {
      headers: { accept: 'application/json', 'sec-fetch-mode': 'cors' }, maxRedirects: 0,
    });
    assert.equal(api.status(), 200, await api.text());
    assert.equal(assertUpstreamBearer(await api.json()).token, firstToken);
    assert.deepEqual(s.idp.counts(), {}, 'no provider call');
  }));

  test('without a session: browsers are redirected, API clients get 401', { timeout: 20_000 }, run(async () => {
    s.echo.clear();
    const html = await request(url('/oidcroute/get'), { headers: { accept: 'text/html,application/xhtml+xml' } });
    assert.equal(html.status, 302, html.text);
    assert.ok(html.headers.location.startsWith(`${s.idp.issuer}/auth?`), html.headers.location);
    assert.ok([].concat(html.headers['set-cookie']).some((c) => /^session_login_[0-9a-f]+=/.test(c)));
    const api = await request(url('/oidcroute/get'), { headers: { accept: 'application/json' } });
    assert.equal(api.status, 401, api.text);
    assert.deepEqual(api.json, { message: 'Unauthorized' });
    const xhr = await request(url('/oidcroute/get'), { headers: { accept: 'text/html', 'sec-fetch-mode': 'cors' } });
    assert.equal(xhr.status, 401, 'fetch/XHR from a page: 401, not a redirect');
    // A callback without its login cookie: 400, nothing upstream.
    const forged = await request(url('/oidcroute/get?code=abc&state=def'), { headers: { accept: 'text/html' } });
    assert.equal(forged.status, 400, forged.text);
    assert.deepEqual(forged.json, { message: 'Bad Request' });
    assert.deepEqual(s.echo.received(), [], 'nothing upstream');
  }));

  test('a tampered session cookie is no session: login again', { timeout: 30_000 }, run(async () => {
    const { page, context } = b;
    const [first] = await sessionCookies(context);
    assert.ok(first, 'needs a session');
    await context.addCookies([{ ...first, value: tamper(first.value) }]);
    s.echo.clear();
    const html = await context.request.get(url('/oidcroute/get'), { headers: { accept: 'text/html' }, maxRedirects: 0 });
    assert.equal(html.status(), 302, await html.text());
    assert.ok(html.headers().location.startsWith(`${s.idp.issuer}/auth?`), html.headers().location);
    const api = await context.request.get(url('/oidcroute/get'), { headers: { accept: 'application/json' }, maxRedirects: 0 });
    assert.equal(api.status(), 401, await api.text());
    assert.deepEqual(s.echo.received(), [], 'nothing upstream');

    // In the browser: through the provider (its own session still stands,
    // so no form) and back with a new session.
    s.idp.resetCounts();
    const hops = trackNavigation(page);
    const target = url('/oidcroute/get');
    const { echo } = await loginUntil(page, target, () => page.goto(target));
    assert.ok(hops.some((h) => h.startsWith(`${s.idp.issuer}/auth?`)), `went to the provider: ${hops.join(' → ')}`);
    const { token } = assertUpstreamBearer(echo);
    assert.notEqual(token, firstToken, 'a new login');
    assert.equal(s.idp.tokenRequests().length, 1);
  }));

  test('large tokens (~8 KB access token): chunked session cookie', { timeout: 30_000 }, run(async (t) => {
    const { page, context } = b;
    // Cognito access tokens grow with the user's groups.
    const groups = Array.from({ length: 177 }, (_, i) => `kongresource-group-${String(i).padStart(3, '0')}-users`);
    s.idp.setAccessTokenClaims({ 'cognito:groups': groups });
    try {
      await context.clearCookies({ name: /^session/ });
      s.echo.clear();
      const target = url('/oidcroute/get');
      const { echo } = await loginUntil(page, target, () => page.goto(target));
      const { token, claims } = assertUpstreamBearer(echo);
      assert.deepEqual(claims['cognito:groups'], groups, 'the whole token reached the upstream');
      const session = await sessionCookies(context);
      assert.ok(session.length >= 2, `chunked: ${session.map((c) => `${c.name}=${c.value.length}B`)}`);
      assert.deepEqual(session.map((c) => c.name), ['session', ...session.slice(1).map((_, i) => `session.${i + 1}`)]);
      for (const c of session) assert.ok(c.name.length + c.value.length <= 4096, `${c.name}: ${c.value.length} B`);
      assert.ok(echo.headers.cookie === undefined || !cookieNames(echo.headers.cookie).some((n) => OUR_COOKIE.test(n)));

      // Reassembled on the next request, without a provider call.
      s.idp.resetCounts();
      const r = await page.reload();
      assert.equal(r.status(), 200);
      assert.equal(assertUpstreamBearer(await r.json()).token, token);
      assert.deepEqual(s.idp.counts(), {}, 'no provider call');
      t.diagnostic(`access token ${token.length} B → session cookie ${byteLength(session)} B in ${session.length} chunks `
        + `(${session.map((c) => c.value.length).join(' + ')} B values)`);
    } finally {
      s.idp.setAccessTokenClaims({});
    }
  }));

  test('logout: a GET is passed on, the page\'s form POSTs: cookies cleared, provider logout, then login again', { timeout: 30_000 }, run(async () => {
    const { page, context } = b;
    assert.ok((await sessionCookies(context)).length >= 1, 'needs a session');
    s.idp.resetCounts();
    s.echo.clear();
    // A GET of the logout path is no logout (a link or an image from another
    // site must not log anyone out): the application behind gets it, with
    // the session, and shows its "Log out" button.
    const page1 = await page.goto(url('/oidcroute/logout'));
    assert.equal(page1.status(), 200);
    const seen1 = s.echo.received();
    assert.equal(seen1.length, 1, 'the GET went upstream');
    assertUpstreamBearer(seen1[0], { path: '/logout' });
    assert.ok((await sessionCookies(context)).length >= 1, 'still logged in');
    s.echo.clear();

    // The button POSTs to the logout path.
    const hops = trackNavigation(page);
    const posted = page.waitForResponse((r) => r.url() === url('/oidcroute/logout') && r.request().method() === 'POST');
    await page.click('button[name=logout]');
    const logout = await posted;
    assert.equal(logout.status(), 302);
    await page.locator('button[name=logout][value=yes]').waitFor();

    // 302 to the provider's end_session_endpoint with the RP-initiated logout parameters.
    const end = hops.find((h) => h.startsWith(`${s.idp.issuer}/session/end?`));
    assert.ok(end, `went to end_session: ${hops.join(' → ')}`);
    const q = new URL(end).searchParams;
    assert.equal(q.get('client_id'), CLIENTS.demo.id);
    assert.equal(q.get('post_logout_redirect_uri'), loggedOutUrl(s.ports[0]));
    const hint = decodeJwt(q.get('id_token_hint') ?? '').payload;
    assert.equal(hint.aud, CLIENTS.demo.id, 'id_token_hint is our ID token');
    assert.equal(s.idp.counts().revocation, undefined, `no revocation without logout_revoke (Kong's default): ${JSON.stringify(s.idp.counts())}`);
    assert.deepEqual(await sessionCookies(context), [], 'session cookies cleared');
    assert.deepEqual(s.echo.received(), [], 'logout does not go upstream');

    // The provider asks; yes → back to the public page behind Envoy.
    const landed = page.waitForResponse((r) => r.url() === loggedOutUrl(s.ports[0]));
    await page.click('button[name=logout][value=yes]');
    const r = await landed;
    assert.equal(r.status(), 200);
    const seen = await r.json();
    assert.equal(seen.path, '/logged-out');
    assert.equal(seen.headers.authorization, undefined);

    // The protected URL again: the provider's login form.
    await page.goto(url('/oidcroute/get'));
    assert.ok(await isLoginForm(page), `expected the login form, at ${page.url()}`);
    const upstream = s.echo.received().map((e) => e.path);
    assert.deepEqual(upstream, ['/logged-out'], 'nothing else upstream');
  }));

  test('the first login\'s callback replayed after logout is still 400', { timeout: 20_000 }, run(async () => {
    await replayCallback();
  }));
  test('two tabs logging in at once both land where they started', { timeout: 30_000 }, run(async () => {
    const { context } = b;
    await context.clearCookies();
    const tabs = [await context.newPage(), await context.newPage()];
    try {
      for (const [i, tab] of tabs.entries()) {
        await tab.goto(url(`/oidcroute/get?tab=${i}`));
        assert.ok(await isLoginForm(tab), `tab ${i} at the login form`);
      }
      assert.equal((await loginCookies(context)).length, 2, 'one login cookie per tab');
      for (const i of [1, 0]) { // the second tab finishes first
        const { echo } = await loginUntil(tabs[i], url(`/oidcroute/get?tab=${i}`), async () => {});
        assertUpstreamBearer(echo, { path: `/get?tab=${i}` });
      }
      assert.deepEqual(await loginCookies(context), [], 'both login cookies cleared');
    } finally {
      await Promise.all(tabs.map((tab) => tab.close()));
    }
  }));

  test('four tabs: the three most recent logins finish, the oldest is dropped', {
    timeout: 30_000,
  }, run(async () => {
    const { context } = b;
    await context.clearCookies();
    const tabs = [];
    try {
      for (let i = 0; i < 4; i++) {
        tabs.push(await context.newPage());
        await tabs[i].goto(url(`/oidcroute/get?tab=${i}`));
      }
      assert.equal((await loginCookies(context)).length, 3, 'at most three logins kept');
      for (const i of [3, 2, 1]) {
        try {
          const { echo } = await loginUntil(tabs[i], url(`/oidcroute/get?tab=${i}`), async () => {});
          assertUpstreamBearer(echo, { path: `/get?tab=${i}` });
        } catch (e) {
          e.message = `tab ${i}: ${e.message}`;
          e.stack = `tab ${i}: ${e.stack}`;
          throw e;
        }
      }
      const isCallback = (u) => u.startsWith(`${callbackUrl(s.ports[0])}?`) && /[?&]code=/.test(u);
      const { resp } = await loginUntil(tabs[0], isCallback, async () => {}, { status: 400 });
      assert.deepEqual(await resp.json(), { message: 'Bad Request' }, 'the oldest login is gone');
    } finally {
      await Promise.all(tabs.map((tab) => tab.close()));
    }
  }));
});

// ---------------------------------------------------------------- refresh

describe('refresh at expiry, with refresh-token rotation', () => {
  // The filter refreshes a quarter of the token's life before expiry (at
  // most a minute): 3 s here, whether the session counts 12 or 13 s of life
  // (the exchange may fall a second after the token's iat).
  const TTL = 13;
  const MARGIN = 3;
  let s;
  let b;
  let url;
  before(async () => {
    s = await startBrowserStack({
      name: 'browser-refresh',
      envoys: [{ concurrency: 2 }],
      idpOptions: { accessTokenTTL: TTL, rotateRefreshToken: true },
    });
    url = (p) => `${base(s.ports[0])}${p}`;
    b = await launchBrowser();
  });
  after(async () => {
    await b?.close();
    await s?.stop();
  });

  test('10 parallel requests of one session at refresh time: all 200, one refresh', { timeout: 45_000 }, (t) => withEnvoyLog(s.envoys, async () => {
    const { page, context } = b;
    const target = url('/oidcroute/get');
    const { echo } = await loginUntil(page, target, () => page.goto(target));
    const { token: old, claims } = assertUpstreamBearer(echo);
    assert.ok(claims.exp - claims.iat <= TTL, `short-lived token: ${claims.exp - claims.iat} s`);

    // Before the refresh window: the session rides on the old token.
    s.idp.resetCounts();
    const early = await context.request.get(target, { headers: { accept: 'application/json' } });
    assert.equal(assertUpstreamBearer(await early.json()).token, old);
    assert.equal(s.idp.tokenRequests().length, 0);

    // Into the window (the session's expiry is at most the token's exp).
    const wait = (claims.exp - MARGIN) * 1000 + 300 - Date.now();
    assert.ok(wait > 0, `login took too long to see the window open (${wait} ms)`);
    await sleep(wait);
    s.idp.resetCounts();
    s.echo.clear();
    // A slow token endpoint: the ten are all in the filter while the one
    // refresh is in flight.
    const DELAY = 500;
    s.idp.setFault('token', { delayMs: DELAY });
    const sent = Date.now();
    const took = [];
    const replies = await Promise.all(Array.from({ length: 10 }, async () => {
      const r = await context.request.get(target, { headers: { accept: 'application/json' }, maxRedirects: 0 });
      took.push(Date.now() - sent);
      return r;
    })).finally(() => s.idp.setFault('token', null));
    const statuses = replies.map((r) => r.status());
    assert.deepEqual(statuses, Array(10).fill(200), `statuses ${statuses}; bodies ${await Promise.all(replies.map((r) => r.text()))}`);

    const refreshes = s.idp.tokenRequests();
    assert.deepEqual(refreshes.map((r) => `${r.params?.grant_type} ${r.status}`), ['refresh_token 200'],
      'exactly one refresh at the provider');
    const upstream = s.echo.received().map((e) => assertUpstreamBearer(e));
    const tokens = new Set(upstream.map((u) => u.token));
    // Seen once (session 22) and not reproduced since: each token named, so
    // that a recurrence says which (the old one, or a third).
    const named = upstream.map((u) => `${u.token === old ? 'old' : 'other'} iat ${u.claims.iat} exp ${u.claims.exp} jti ${u.claims.jti}`);
    assert.equal(tokens.size, 1, `all ten went upstream with the one new token; seen: ${named.join('; ')}`);
    const [fresh] = tokens;
    assert.notEqual(fresh, old, 'refreshed');
    assert.ok(decodeJwt(fresh).payload.exp > claims.exp);
    const resealed = replies.filter((r) => setCookieHeaders(r).some((c) => /^session(\.\d+)?=[^;]/.test(c)));
    assert.ok(resealed.length >= 1, 'the session cookie is re-sealed with the new tokens');
    assert.ok(Math.min(...took) >= DELAY - 20, `every request waited for the refresh: ${took.sort((x, y) => x - y)} ms`);

    // The browser's cookie now holds the new tokens: no further refresh.
    s.echo.clear();
    const r = await page.reload();
    assert.equal(r.status(), 200);
    assert.equal(assertUpstreamBearer(await r.json()).token, fresh);
    assert.equal(s.idp.tokenRequests().length, 1, 'no second refresh');
    t.diagnostic(`refresh ${wait} ms after login; answers after ${took.sort((x, y) => x - y).join(', ')} ms `
      + `(token endpoint delayed ${DELAY} ms); ${resealed.length}/10 responses re-set the cookie`);
  }));

  test('a refresh the provider refuses ends the session: API 401, browser back to login', { timeout: 30_000 }, () => withEnvoyLog(s.envoys, async () => {
    const { page, context } = b;
    // A new session (the provider still knows the user: no form).
    await context.clearCookies({ name: /^session/ });
    const target = url('/oidcroute/get?second');
    const { echo } = await loginUntil(page, target, () => page.goto(target));
    const { claims } = assertUpstreamBearer(echo, { path: '/get?second' });
    await sleep(Math.max(0, (claims.exp - MARGIN) * 1000 + 300 - Date.now()));
    s.idp.resetCounts();
    s.echo.clear();
    s.idp.setFault('token', { status: 400, type: 'application/json', body: '{"error":"invalid_grant"}' });
    try {
      const api = await context.request.get(target, { headers: { accept: 'application/json' }, maxRedirects: 0 });
      assert.equal(api.status(), 401, await api.text());
      const html = await context.request.get(target, { headers: { accept: 'text/html' }, maxRedirects: 0 });
      assert.equal(html.status(), 302, await html.text());
      assert.ok(html.headers().location.startsWith(`${s.idp.issuer}/auth?`), html.headers().location);
      assert.deepEqual(s.idp.tokenRequests().map((r) => r.status), [400], 'one refresh attempt; its refusal is shared');
    } finally {
      s.idp.setFault('token', null);
    }
    assert.deepEqual(s.echo.received(), [], 'nothing upstream');
  }));
});

// ---------------------------------------------------------------- SameSite=Strict

describe('SameSite=Strict sessions, the provider on another site', () => {
  // The app is reached as localhost, the provider as 127.0.0.1: two sites,
  // so the provider's redirect back is a cross-site navigation, on which
  // Chromium sends no Strict cookie.
  let s;
  let b;
  before(async () => {
    s = await startBrowserStack({
      name: 'browser-strict',
      envoys: [{
        filter: ({ ports }) => ({
          session_cookie_same_site: 'Strict',
          redirect_uri: [callbackUrl(ports[0]).replace('127.0.0.1', 'localhost')],
        }),
      }],
    });
    b = await launchBrowser();
  });
  after(async () => {
    await b?.close();
    await s?.stop();
  });

  test('a login completes and lands on its page with the session (no loop back to the provider)', { timeout: 30_000 }, () => withEnvoyLog(s.envoys, async () => {
    const { page } = b;
    s.idp.resetCounts();
    const target = `http://localhost:${s.ports[0]}/oidcroute/get?strict=1`;
    const { echo } = await loginUntil(page, target, () => page.goto(target));
    assertUpstreamBearer(echo, { path: '/get?strict=1' });
    const exchanges = s.idp.tokenRequests().filter((r) => r.params?.grant_type === 'authorization_code');
    assert.equal(exchanges.length, 1, 'one login, one code exchange');
    const session = (await b.context.cookies()).filter((c) => /^session(\.\d+)?$/.test(c.name));
    assert.ok(session.length >= 1 && session.every((c) => c.sameSite === 'Strict'), JSON.stringify(session));
  }));
});

// ---------------------------------------------------------------- scale-out

describe('scale-out: Envoys sharing session_secret', () => {
  // A's logins come back to B, B's to A; C has another secret.
  let s;
  let b;
  const at = (i, p) => `${base(s.ports[i])}${p}`;
  before(async () => {
    s = await startBrowserStack({
      name: 'browser-scale',
      envoys: [
        { filter: ({ ports }) => ({ redirect_uri: [callbackUrl(ports[1])] }) },
        { filter: ({ ports }) => ({ redirect_uri: [callbackUrl(ports[0])] }) },
        { filter: () => ({ session_secret: 'another-replica-set-secret-0123456789abcdef' }) },
      ],
    });
    b = await launchBrowser();
  });
  after(async () => {
    await b?.close();
    await s?.stop();
  });
  const run = (fn) => (t) => withEnvoyLog(s.envoys, () => fn(t));

  for (const [from, to] of [[0, 1], [1, 0]]) {
    const [A, B] = ['ABC'[from], 'ABC'[to]];
    test(`login started on ${A} finished by ${B}; ${B}'s session accepted by ${A}`, { timeout: 30_000 }, run(async () => {
      const { page, context } = b;
      await context.clearCookies({ name: /^session/ });
      s.idp.resetCounts();
      const hops = trackNavigation(page);
      const start = at(from, '/oidcroute/get?on=' + A);
      const back = at(to, '/oidcroute/get?on=' + A);
      const { echo } = await loginUntil(page, back, () => page.goto(start));
      assert.ok(hops.some((h) => h.startsWith(`${callbackUrl(s.ports[to])}?`) && /[?&]code=/.test(h)), `callback on ${B}: ${hops.join(' → ')}`);
      assert.equal(page.url(), back);
      const { token } = assertUpstreamBearer(echo, { path: `/get?on=${A}` });
      assert.equal(s.idp.tokenRequests().length, 1);

      s.idp.resetCounts();
      const r = await page.goto(at(from, '/oidcroute/get'));
      assert.equal(r.status(), 200, `${A} with ${B}'s session`);
      assert.equal(assertUpstreamBearer(await r.json()).token, token);
      // (${A} may fetch the JWKS: it has not verified a token yet.)
      const calls = Object.keys(s.idp.counts()).filter((k) => k !== 'jwks');
      assert.deepEqual(calls, [], `no provider call but the JWKS: ${JSON.stringify(s.idp.counts())}`);
    }));
  }

  test('an Envoy with another session_secret does not accept the session', { timeout: 20_000 }, run(async () => {
    const { context } = b;
    assert.ok((await sessionCookies(context)).length >= 1, 'needs a session');
    s.echo.clear();
    const api = await context.request.get(at(2, '/oidcroute/get'), { headers: { accept: 'application/json' }, maxRedirects: 0 });
    assert.equal(api.status(), 401, await api.text());
    const html = await context.request.get(at(2, '/oidcroute/get'), { headers: { accept: 'text/html' }, maxRedirects: 0 });
    assert.equal(html.status(), 302);
    assert.ok(html.headers().location.startsWith(`${s.idp.issuer}/auth?`));
    assert.deepEqual(s.echo.received(), [], 'nothing upstream');
  }));
});

after(() => {
  // eslint-disable-next-line no-console
  console.log(`# browser.test.mjs: ${((Date.now() - T0) / 1000).toFixed(1)} s`);
});

describe('a callback sent again over new connections during a slow exchange (HTTP/1.1 reloads)', () => {
  let s;
  let b;
  before(async () => {
    // Two workers: new connections land on either.
    s = await startBrowserStack({ name: 'browser-reload', envoys: [{ concurrency: 2 }] });
    b = await launchBrowser();
  });
  after(async () => {
    await b?.close();
    await s?.stop();
  });

  test('the code is exchanged once, and every copy of the callback logs in', { timeout: 60_000 }, () => withEnvoyLog(s.envoys, async () => {
    const origin = base(s.ports[0]);
    const target = `${origin}/oidcroute/get`;
    // Six copies of the browser's callback, each over a new connection
    // (reloads over HTTP/1.1), sent as the browser sends it: with two
    // workers, some reach the one not making the exchange (all seven on
    // one worker: 1 time in 64).
    let copies;
    b.page.on('request', (r) => {
      const u = new URL(r.url());
      if (copies || !r.url().startsWith(`${target}?`) || !u.searchParams.has('code')) return;
      copies = loginCookies(b.context).then((login) => {
        const cookie = login.map((c) => `${c.name}=${c.value}`).join('; ');
        return Promise.all(Array.from({ length: 6 }, () => request(r.url(), { headers: { cookie, accept: 'text/html' } })));
      });
    });
    // A slow token endpoint: the browser's callback is still exchanging
    // its code when the copies arrive.
    s.idp.resetCounts();
    s.idp.setFault('token', { delayMs: 1200 }); // under idp_timeout_ms (2 s)
    try {
      await b.page.goto(target);
      for (let i = 0; i < 100 && !copies; i++) {
        try {
          if (await isLoginForm(b.page)) {
            await b.page.fill('input[name=login]', 'alice');
            await b.page.fill('input[name=password]', 'any-password');
            await b.page.click('button[type=submit]', { noWaitAfter: true });
          } else if (await isConsentForm(b.page)) {
            await b.page.click('button[type=submit]', { noWaitAfter: true });
          }
        } catch (e) {
          if (!/context was destroyed|navigat|detached/i.test(e.message)) throw e;
        }
        await sleep(50);
      }
      assert.ok(copies, 'the provider sent the browser back');
      const replies = await copies;
      assert.deepEqual(replies.map((r) => r.status), Array(6).fill(302), replies.map((r) => r.text).join(' | '));
      for (const r of replies) {
        assert.equal(r.headers.location, '/oidcroute/get');
        assert.ok([].concat(r.headers['set-cookie'] ?? []).some((c) => /^session=[^;]/.test(c)), 'a session');
      }
      await b.page.waitForURL(target, { timeout: 10_000 });
    } finally {
      s.idp.setFault('token', null);
    }
    assert.deepEqual(s.idp.tokenRequests().map((r) => `${r.params?.grant_type} ${r.status}`), ['authorization_code 200'],
      'one exchange at the provider');
  }));
});
