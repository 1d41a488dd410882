// Stacks and a browser for the browser-login tests (browser.test.mjs).
//
// The provider must know the redirect URIs (Envoy's ports) when it starts,
// so the ports are picked first: a provider, an echo and N Envoys that all
// share them. A port taken between the pick and Envoy's bind → start over.

import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

import {
  freePort, envoyConfig, startEnvoy, filterConfig, startProvider, startEcho, sleep, CLIENTS,
} from '../lib.mjs';

export const SESSION_SECRET = 'browser-e2e-session-secret-0123456789abcdef';
export const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';

export const base = (port) => `http://127.0.0.1:${port}`;
export const callbackUrl = (port) => `${base(port)}/oidcroute/get`;
export const loggedOutUrl = (port) => `${base(port)}/oidcroute/logged-out`;

/**
 * The filter configuration of the browser flow for an Envoy on `port`,
 * as the seed's Kong config: client id/secret, redirect_uri = the protected
 * URL itself; plus a session secret, logout, and a public landing page.
 */
export function browserFilter(idp, port, overrides = {}) {
  return filterConfig(idp.issuer, {
    client_id: [CLIENTS.demo.id],
    client_secret: [CLIENTS.demo.secret],
    redirect_uri: [callbackUrl(port)],
    scopes: ['openid', 'kongresource/scope1'],
    session_secret: SESSION_SECRET,
    logout_path: '/oidcroute/logout',
    post_logout_redirect_uri: loggedOutUrl(port),
    bypass_paths: ['/oidcroute/logged-out$'],
    ...overrides,
  });
}

/**
 * Provider + echo + `envoys.length` Envoys. `envoys[i]`: `{concurrency,
 * filter(ctx) → overrides, raw(ctx) → the whole filter JSON instead, routes}`
 * where ctx = `{idp, ports, index}`.
 * @returns {Promise<{idp, echo, envoys, ports, stop()}>}
 */
export async function startBrowserStack({ envoys = [{}], idpOptions = {}, name = 'browser' } = {}) {
  const echo = await startEcho({ port: 0 });
  for (let attempt = 1; ; attempt++) {
    const ports = [];
    const admins = [];
    while (ports.length < envoys.length) {
      const p = await freePort();
      const a = await freePort();
      if (p !== a && !ports.includes(p) && !ports.includes(a) && !admins.includes(p) && !admins.includes(a)) {
        ports.push(p);
        admins.push(a);
      }
    }
    const idp = await startProvider({
      port: 0,
      // Each Envoy is reachable as 127.0.0.1 and as localhost: two hosts.
      redirectUris: [...ports.map(callbackUrl), ...ports.map((p) => callbackUrl(p).replace('127.0.0.1', 'localhost'))],
      postLogoutRedirectUris: ports.map(loggedOutUrl),
      ...idpOptions,
    });
    const started = [];
    try {
      for (const [index, spec] of envoys.entries()) {
        const overrides = spec.filter ? spec.filter({ idp, ports, index }) : {};
        const config = envoyConfig({
          port: ports[index],
          adminPort: admins[index],
          idpPort: idp.port,
          echoPort: echo.port,
          filter: spec.raw ? spec.raw({ idp, ports, index }) : browserFilter(idp, ports[index], overrides),
          ...(spec.routes ? { routes: spec.routes } : {}),
        });
        started.push(await startEnvoy({ config, concurrency: spec.concurrency ?? 1, name: `${name}-${index}` }));
      }
    } catch (e) {
      await Promise.allSettled([...started.map((s) => s.stop()), idp.close()]);
      if (attempt < 3 && /Address already in use/.test(e.message)) continue;
      await echo.close();
      throw e;
    }
    return {
      idp,
      echo,
      envoys: started,
      ports,
      async stop() {
        await Promise.allSettled([...started.map((s) => s.stop()), idp.close(), echo.close()]);
      },
    };
  }
}

/**
 * Chromium (Debian package) with a throwaway profile. Only loopback
 * requests leave it: anything else (the provider's pages import Google
 * fonts) is aborted.
 */
export async function launchBrowser() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'oidc-e2e-chromium-'));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1',
    ],
  });
  const blocked = [];
  await context.route(
    (url) => url.hostname !== '127.0.0.1' && url.hostname !== 'localhost',
    (route) => { blocked.push(route.request().url()); return route.abort(); },
  );
  const page = context.pages()[0] ?? await context.newPage();
  return {
    context,
    page,
    blocked,
    async close() {
      await context.close().catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Our session cookies (`session`, `session.1`, ...) in the browser. */
export async function sessionCookies(context) {
  return (await context.cookies()).filter((c) => /^session(\.\d+)?$/.test(c.name))
    .sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }));
}

/** Login cookies in the browser. */
export async function loginCookies(context) {
  return (await context.cookies()).filter((c) => c.name.startsWith('session_login_'));
}

const isLoginForm = async (page) => (await page.locator('input[name=login]').count()) > 0;
const isConsentForm = async (page) => (await page.locator('input[name=prompt][value=consent]').count()) > 0;

/** Logs the browser in through Envoy at `origin` (on `path`): the provider's login
 *  form and consent (when it asks), until back on the protected URL. */
export async function logIn(page, origin, path = '/oidcroute/get') {
  const target = `${origin}${path}`;
  await page.goto(target);
  for (let i = 0; i < 50 && page.url() !== target; i++) {
    try {
      if (await isLoginForm(page)) {
        await page.fill('input[name=login]', 'alice');
        await page.fill('input[name=password]', 'any-password');
        await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click('button[type=submit]')]);
      } else if (await isConsentForm(page)) {
        await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.click('button[type=submit]')]);
      } else {
        await sleep(100);
      }
    } catch (e) {
      if (!/context was destroyed|navigat/i.test(e.message)) throw e;
    }
  }
  assert.equal(page.url(), target, 'logged in and back');
  assert.ok((await sessionCookies(page.context())).length >= 1, 'a session cookie');
}
