// Helpers for the end-to-end tests: free ports, the filter module, Envoy
// started per test with a generated config, HTTP requests, tokens.
//
// Envoy comes from `<repo>/.venv/bin/envoy` (scripts/setup.sh installs it).
// The PyPI Envoy gets SIGTERM when its parent exits, so this node process
// stays its parent; `stop()` it in an `after()` hook, and `cleanupAll()`
// kills whatever is left.

import { spawn, execFileSync } from 'node:child_process';
import { mkdirSync, openSync, closeSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { importPKCS8, SignJWT } from 'jose';

import { startProvider, FIXTURES, CLIENTS } from './provider.mjs';
import { startEcho } from './echo.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(HERE, '..', '..');
export const RUN_DIR = path.join(ROOT, '.run', 'e2e');
export const ENVOY_BIN = process.env.ENVOY_BIN ?? path.join(ROOT, '.venv', 'bin', 'envoy');

export { startProvider, startEcho, CLIENTS };

// ---------------------------------------------------------------- ports

function canBind(port) {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.unref();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/**
 * A port that was free a moment ago, for a process that binds it later
 * (Envoy). Picked below the kernel's ephemeral range (32768+), so outgoing
 * connections cannot take it in the meantime; startStack() still retries
 * if Envoy finds it taken.
 */
export async function freePort() {
  for (let i = 0; i < 100; i++) {
    const port = 20000 + Math.floor(Math.random() * 12000);
    if (await canBind(port)) return port;
  }
  throw new Error('no free port found in 20000-31999');
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- module

let wasmCache;
/**
 * Path of the filter module: env OIDC_WASM, else the last line `./build.sh`
 * prints (built once per test process).
 */
export function wasmPath() {
  if (wasmCache) return wasmCache;
  let p = process.env.OIDC_WASM;
  if (!p) {
    const out = execFileSync('./build.sh', { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    p = out.trim().split('\n').pop().trim();
  }
  p = path.resolve(ROOT, p);
  if (!existsSync(p)) throw new Error(`filter module not found: ${p}`);
  wasmCache = p;
  return p;
}

// ---------------------------------------------------------------- config

/** The filter's JSON configuration used in the e2e tests. */
export function filterConfig(issuer, overrides = {}) {
  return {
    issuer,
    idp_cluster: 'idp',
    scopes_required: ['kongresource/scope1'],
    leeway: 0,
    idp_timeout_ms: 2000,
    ...overrides,
  };
}

const socket = (port, address = '127.0.0.1') => ({ socket_address: { address, port_value: port } });

function staticCluster(name, port) {
  return {
    name,
    type: 'STATIC',
    connect_timeout: '1s',
    load_assignment: {
      cluster_name: name,
      endpoints: [{ lb_endpoints: [{ endpoint: { address: socket(port) } }] }],
    },
  };
}

/**
 * The wasm HTTP filter entry: fail closed, V8, config as a StringValue.
 */
export function wasmFilter(wasm, filterJson) {
  return {
    name: 'envoy.filters.http.wasm',
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm',
      config: {
        name: 'oidc',
        fail_open: false,
        vm_config: {
          vm_id: 'oidc',
          runtime: 'envoy.wasm.runtime.v8',
          code: { local: { filename: wasm } },
        },
        configuration: {
          '@type': 'type.googleapis.com/google.protobuf.StringValue',
          value: JSON.stringify(filterJson),
        },
      },
    },
  };
}

/**
 * The routes: `/oidcroute` and `/oidcroute/...` go to the echo with the
 * prefix stripped (`/oidcroute/get` → `/get`, `/oidcroute` → `/`), as the
 * seed's Kong Ingress does. A plain `prefix_rewrite: "/"` on prefix
 * `/oidcroute` would give `//get`, hence the regex rewrite.
 */
export function oidcRoutes(cluster = 'echo') {
  return [
    {
      match: { path_separated_prefix: '/oidcroute' },
      route: {
        cluster,
        regex_rewrite: { pattern: { regex: '^/oidcroute/?' }, substitution: '/' },
      },
    },
  ];
}

/**
 * A whole Envoy bootstrap. `filter` is the filter JSON, or null for no wasm
 * filter (to test the plumbing alone). `clusters` adds extra clusters,
 * e.g. `{ idp_token: port }`; `routes` replaces the virtual host's routes.
 */
export function envoyConfig({ port, adminPort, idpPort, echoPort, wasm, filter, clusters = {}, accessLog, routes = oidcRoutes() }) {
  const httpFilters = [];
  if (filter) httpFilters.push(wasmFilter(wasm ?? wasmPath(), filter));
  httpFilters.push({
    name: 'envoy.filters.http.router',
    typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' },
  });
  return {
    admin: { address: socket(adminPort) },
    static_resources: {
      listeners: [{
        name: 'main',
        address: socket(port),
        filter_chains: [{
          filters: [{
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: {
              '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
              stat_prefix: 'ingress',
              // `accessLog`: {path, format}: Envoy's file access log.
              ...(accessLog ? {
                access_log: [{
                  name: 'envoy.access_loggers.file',
                  typed_config: {
                    '@type': 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog',
                    path: accessLog.path,
                    log_format: { text_format_source: { inline_string: accessLog.format } },
                  },
                }],
              } : {}),
              normalize_path: true,
              merge_slashes: true,
              route_config: {
                name: 'local',
                virtual_hosts: [{ name: 'all', domains: ['*'], routes }],
              },
              http_filters: httpFilters,
            },
          }],
        }],
      }],
      clusters: [
        staticCluster('idp', idpPort),
        staticCluster('echo', echoPort),
        ...Object.entries(clusters).map(([name, p]) => staticCluster(name, p)),
      ],
    },
  };
}

// ---------------------------------------------------------------- envoy

const live = new Set();
let instanceCounter = 0;

// Safety net: never leave an Envoy behind, whatever happened.
process.on('exit', () => {
  for (const child of live) {
    try { child.kill('SIGKILL'); } catch { /* gone */ }
  }
});

/**
 * Start Envoy with `config` (an object; written as JSON). Resolves when the
 * admin `/ready` says LIVE and the listener accepts connections.
 * @returns {Promise<{port, adminPort, url, logFile, tail(n), log(), stop()}>}
 */
export async function startEnvoy({ config, concurrency = 1, name = 'envoy', logLevel = 'info', timeoutMs = 20000 }) {
  mkdirSync(RUN_DIR, { recursive: true });
  const id = `${name}-${process.pid}-${++instanceCounter}`;
  const configFile = path.join(RUN_DIR, `${id}.json`);
  const logFile = path.join(RUN_DIR, `${id}.log`);
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  const port = config.static_resources.listeners[0].address.socket_address.port_value;
  const adminPort = config.admin.address.socket_address.port_value;

  const fd = openSync(logFile, 'w');
  // base-id unique per instance: several Envoys can run at once.
  const baseId = ((process.pid % 50000) * 64 + instanceCounter) % 2 ** 31;
  const child = spawn(ENVOY_BIN, [
    '-c', configFile,
    '--concurrency', String(concurrency),
    '-l', logLevel,
    '--base-id', String(baseId),
    '--disable-hot-restart',
  ], { cwd: ROOT, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  live.add(child);

  let exited = null;
  const exitPromise = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      exited = { code, signal };
      live.delete(child);
      resolve(exited);
    });
  });

  // The last `n` lines logged after startup (startup lines are long and
  // say nothing about a request), each cut to 500 characters.
  const tail = (n = 30) => {
    let text;
    try { text = readFileSync(logFile, 'utf8'); } catch { return '(no log)'; }
    const start = text.indexOf('starting main dispatch loop');
    const lines = text.slice(start >= 0 ? text.lastIndexOf('\n', start) + 1 : 0).trimEnd().split('\n')
      .filter((l) => !/server\.cc:\d+\]   /.test(l)); // the startup list of extensions
    return lines.slice(-n).map((l) => (l.length > 500 ? `${l.slice(0, 500)}…` : l)).join('\n');
  };
  const log = () => { try { return readFileSync(logFile, 'utf8'); } catch { return ''; } };

  const handle = {
    id,
    port,
    adminPort,
    url: `http://127.0.0.1:${port}`,
    logFile,
    configFile,
    tail,
    log,
    exited: () => exited,
    async stop() {
      if (exited) return exited;
      child.kill('SIGTERM');
      const t = setTimeout(() => { try { child.kill('SIGKILL'); } catch { /* gone */ } }, 3000);
      const r = await exitPromise;
      clearTimeout(t);
      return r;
    },
  };

  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (exited) {
      throw new Error(`envoy exited during startup (${JSON.stringify(exited)}); log ${logFile}:\n${tail(60)}`);
    }
    if (Date.now() > deadline) {
      await handle.stop();
      throw new Error(`envoy not ready after ${timeoutMs} ms; log ${logFile}:\n${tail(60)}`);
    }
    try {
      const r = await request(`http://127.0.0.1:${adminPort}/ready`, { timeoutMs: 1000 });
      if (r.status === 200 && (await canConnect(port))) break;
    } catch { /* not yet */ }
    await sleep(50);
  }
  return handle;
}

function canConnect(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

// ---------------------------------------------------------------- http

/**
 * One HTTP request on a fresh connection. Resolves with
 * `{status, headers, text, json}` (json undefined when not JSON).
 */
export function request(url, { method = 'GET', headers = {}, body, timeoutMs = 10000 } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent: false, timeout: timeoutMs }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json;
        try { json = JSON.parse(text); } catch { json = undefined; }
        resolve({ status: res.statusCode, headers: res.headers, text, json });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`timeout after ${timeoutMs} ms: ${method} ${url}`)));
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

/** GET an Envoy URL with an optional bearer token. */
export function get(url, token, headers = {}) {
  return request(url, { headers: token ? { authorization: `Bearer ${token}`, ...headers } : headers });
}

// ---------------------------------------------------------------- tokens

/**
 * Client-credentials access token straight from the provider's token
 * endpoint (HTTP Basic, as Cognito clients do).
 */
export async function clientCredentialsToken(idp, { clientId = CLIENTS.demo.id, secret = CLIENTS.demo.secret, scope = 'kongresource/scope1' } = {}) {
  const form = new URLSearchParams({ grant_type: 'client_credentials' });
  if (scope) form.set('scope', scope);
  const r = await request(idp.tokenEndpoint, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${clientId}:${secret}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: form.toString(),
  });
  if (r.status !== 200 || !r.json?.access_token) {
    throw new Error(`token endpoint: ${r.status} ${r.text}`);
  }
  return r.json.access_token;
}

const keyCache = new Map();
async function privateKey(file, alg) {
  const k = `${file}/${alg}`;
  if (!keyCache.has(k)) keyCache.set(k, await importPKCS8(readFileSync(path.join(FIXTURES, file), 'utf8'), alg));
  return keyCache.get(k);
}

/**
 * Sign a Cognito-shaped access token ourselves. `expIn` seconds from now
 * (negative: already expired). `claims` override or add claims; a claim
 * set to undefined is removed.
 */
export async function mintToken({ issuer, key = 'rsa-test-key.pem', kid = 'test-rsa', alg = 'RS256', expIn = 3600, iatIn = 0, claims = {} }) {
  const now = Math.floor(Date.now() / 1000);
  const payload = {
    sub: CLIENTS.demo.id,
    token_use: 'access',
    scope: 'kongresource/scope1',
    client_id: CLIENTS.demo.id,
    iss: issuer,
    iat: now + iatIn,
    exp: now + expIn,
    jti: `jti-${now}-${Math.random().toString(36).slice(2)}`,
    version: 2,
    ...claims,
  };
  for (const [k, v] of Object.entries(payload)) if (v === undefined) delete payload[k];
  return new SignJWT(payload)
    .setProtectedHeader({ alg, kid, typ: 'at+jwt' })
    .sign(await privateKey(key, alg));
}

/** Flip one character in the signature part of a JWT. */
export function tamperSignature(jwt) {
  const [h, p, s] = jwt.split('.');
  const i = Math.floor(s.length / 2);
  const c = s[i] === 'A' ? 'B' : 'A';
  return `${h}.${p}.${s.slice(0, i)}${c}${s.slice(i + 1)}`;
}

export function decodeJwt(jwt) {
  const [h, p] = jwt.split('.');
  const dec = (x) => JSON.parse(Buffer.from(x, 'base64url').toString('utf8'));
  return { header: dec(h), payload: dec(p) };
}

// ---------------------------------------------------------------- stack

/**
 * Provider + echo + Envoy on free ports. `filter`: overrides of the filter
 * JSON (an object, or a function of the started provider returning one, for
 * overrides that name its ports), or `false` for an Envoy without the wasm
 * filter. When the provider serves its token endpoint on a second port
 * (`idpOptions.tokenPort`), Envoy gets a cluster `idp_token` for it.
 * @returns {Promise<{idp, echo, envoy, idpPort, url(path), restartIdp(), stop()}>}
 */
export async function startStack({ filter = {}, concurrency = 1, idpOptions = {}, name = 'stack', accessLog } = {}) {
  const parts = {};
  try {
    parts.idp = await startProvider({ port: 0, ...idpOptions });
    parts.echo = await startEcho({ port: 0 });
    const idpPort = parts.idp.port;
    const overrides = typeof filter === 'function' ? filter(parts.idp) : filter;
    const clusters = parts.idp.tokenPort !== undefined ? { idp_token: parts.idp.tokenPort } : {};
    for (let attempt = 1; ; attempt++) {
      const config = envoyConfig({
        port: await freePort(),
        adminPort: await freePort(),
        idpPort,
        echoPort: parts.echo.port,
        filter: overrides === false ? null : filterConfig(parts.idp.issuer, overrides),
        clusters,
        accessLog,
      });
      try {
        parts.envoy = await startEnvoy({ config, concurrency, name });
        break;
      } catch (e) {
        // Another process took a port between freePort() and Envoy's bind.
        if (attempt >= 3 || !/Address already in use/.test(e.message)) throw e;
      }
    }
  } catch (e) {
    await Promise.allSettled([parts.idp?.close(), parts.echo?.close(), parts.envoy?.stop()]);
    throw e;
  }
  const stack = {
    ...parts,
    idpPort: parts.idp.port,
    url: (p) => `${parts.envoy.url}${p}`,
    /** Stop the IdP (port stays reserved by nobody: tests restart on it). */
    async stopIdp() { await stack.idp.close(); },
    /** Start a fresh IdP on the same port(s) (fresh counts). */
    async restartIdp() {
      await stack.idp.close();
      const tokenPort = stack.idp.tokenPort;
      stack.idp = await startProvider({ ...idpOptions, port: stack.idpPort, ...(tokenPort !== undefined ? { tokenPort } : {}) });
      return stack.idp;
    },
    async stop() {
      await Promise.allSettled([stack.envoy.stop(), stack.idp.close(), stack.echo.close()]);
    },
  };
  return stack;
}

/**
 * Run `fn`; if it throws, add the tail of each Envoy's log to the error, so
 * a failing test shows what Envoy (and the filter) said.
 */
export async function withEnvoyLog(envoys, fn) {
  try {
    return await fn();
  } catch (e) {
    const list = (Array.isArray(envoys) ? envoys : [envoys]).filter(Boolean);
    const tails = list.map((env) => `--- ${env.logFile} (tail) ---\n${env.tail(40)}`).join('\n');
    if (e && typeof e === 'object' && 'message' in e) {
      try { e.message += `\n${tails}`; } catch { /* frozen */ }
    }
    throw e;
  }
}
