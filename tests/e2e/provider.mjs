// A test OpenID provider shaped like Amazon Cognito, built on npm
// `oidc-provider`. Plain http on 127.0.0.1, for tests and the demo only.
//
//   node provider.mjs --port 3000 [--host 127.0.0.1] [--token-port 3001]
//
// or, from a test:
//
//   const idp = await startProvider({ port });
//   idp.issuer; idp.counts(); await idp.close();
//
// What makes it Cognito-like:
// - access tokens are RS256 JWTs (kid `test-rsa`) with `client_id`,
//   `token_use: "access"`, `scope` ("kongresource/scope1 ..."), `sub`,
//   `iss`, `exp`, `iat`, `jti`, `version: 2`, and no `aud`;
// - client_credentials needs no `resource` parameter (the resource server
//   `kongresource` is the default);
// - optionally (`tokenPort`) the token endpoint is served and advertised on a
//   second port, as Cognito's is on its hosted-UI domain, not the issuer host.
//
// Every request is counted per endpoint (discovery, jwks, token, ...):
// `counts()` from the import API, `GET /__counts` as JSON over http on the
// same port(s), `DELETE /__counts` to reset.

import http from 'node:http';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { importPKCS8, exportJWK } from 'jose';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const FIXTURES = path.resolve(HERE, '..', 'fixtures');

// The clients the provider knows. Secrets are test values.
export const CLIENTS = {
  demo: { id: 'demo-client', secret: 'demo-secret' },
  other: { id: 'other-client', secret: 'other-secret' },
};
// Resource indicators must be absolute URIs; the scopes keep Cognito's
// "<resource server>/<scope>" names.
export const RESOURCE = 'urn:kongresource';
// A second resource server whose access tokens are opaque (the default
// resource's are JWTs): `resource=urn:kongresource:opaque` in a token
// request gives a token only introspection can check.
export const RESOURCE_OPAQUE = 'urn:kongresource:opaque';
export const SCOPES = ['kongresource/scope1', 'kongresource/scope2'];
export const DEFAULT_REDIRECT_URI = 'http://127.0.0.1:10000/oidcroute/get';

// oidc-provider prints notices at import and first use ("use Node 22",
// "you SHOULD change ..."). They are noise in test output; keep them only
// when OIDC_PROVIDER_VERBOSE is set.
async function loadProviderClass() {
  if (process.env.OIDC_PROVIDER_VERBOSE) return (await import('oidc-provider')).default;
  for (const level of ['warn', 'info']) {
    const orig = console[level].bind(console);
    if (orig.__quiet) continue;
    const quiet = (...args) => {
      if (typeof args[0] === 'string' && args[0].startsWith('oidc-provider ')) return;
      orig(...args);
    };
    quiet.__quiet = true;
    console[level] = quiet;
  }
  return (await import('oidc-provider')).default;
}

// PEM (PKCS#8) → private JWK with kid/alg/use, as oidc-provider wants.
export async function jwkFromPem(file, alg, kid) {
  const pem = readFileSync(path.join(FIXTURES, file), 'utf8');
  const key = await importPKCS8(pem, alg, { extractable: true });
  return { ...(await exportJWK(key)), kid, alg, use: 'sig' };
}

// Which endpoint a request path is, for the counters.
function endpointName(p) {
  if (p === '/.well-known/openid-configuration') return 'discovery';
  if (p === '/jwks') return 'jwks';
  if (p === '/token') return 'token';
  if (p === '/auth' || p.startsWith('/auth/')) return 'authorization';
  if (p.startsWith('/interaction/')) return 'interaction';
  if (p === '/me') return 'userinfo';
  if (p === '/token/revocation') return 'revocation';
  if (p === '/token/introspection') return 'introspection';
  if (p.startsWith('/session/end')) return 'end_session';
  return 'other';
}

// The client authentication and parameters of a token request, without
// any secret: the Basic header gives the client id only (RFC 6749 2.3.1
// form-encodes id and secret inside it).
function describeTokenRequest(ctx) {
  const record = { port: ctx.req.socket.localPort, method: ctx.method, auth: 'none' };
  const m = /^Basic\s+(\S*)$/i.exec(ctx.get('authorization') ?? '');
  if (m) {
    record.auth = 'basic';
    const decoded = Buffer.from(m[1], 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    try {
      record.client_id = decodeURIComponent((colon >= 0 ? decoded.slice(0, colon) : decoded).replace(/\+/g, ' '));
    } catch {
      record.client_id = '(undecodable)';
    }
  }
  return record;
}

function describeTokenBody(body, record) {
  if (!body || typeof body !== 'object') return {};
  const params = {};
  for (const [k, v] of Object.entries(body)) if (k !== 'client_secret') params[k] = v;
  const out = { params };
  if ('client_secret' in body) {
    out.auth = record.auth === 'basic' ? 'basic+post' : 'post';
    out.client_id = record.client_id ?? body.client_id;
  }
  return out;
}

function listen(server, port, host) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server.address().port);
    });
  });
}

function closeServer(server) {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
    // Drop keep-alive connections (Envoy keeps its upstream ones open),
    // so the port is free at once and a restart on it works.
    server.closeAllConnections();
  });
}

/**
 * Start the provider.
 * @param {object} opts
 * @param {number} opts.port          issuer port (0: pick a free one)
 * @param {string} [opts.host]        bind address, default 127.0.0.1
 * @param {number} [opts.tokenPort]   also serve on this port and advertise
 *                                    the token endpoint there (0: free port)
 * @param {string[]} [opts.redirectUris] extra redirect URIs for demo-client
 *                                    (also from env OIDC_EXTRA_REDIRECT_URIS,
 *                                    space or comma separated)
 * @param {number} [opts.accessTokenTTL] seconds, default 3600 (Cognito's)
 * @param {string[]} [opts.postLogoutRedirectUris] post_logout_redirect_uris
 *                                    of demo-client (RP-initiated logout)
 * @param {boolean} [opts.pkceRequired] PKCE required of every client in
 *                                    the code flow (default true, as the
 *                                    filter always sends it)
 * @param {boolean} [opts.rotateRefreshToken] a refresh grant returns a new
 *                                    refresh token and retires the old one;
 *                                    reusing a retired one revokes the grant
 *                                    (default: the library's, no rotation
 *                                    for confidential clients)
 * @param {{id: string, secret: string}[]} [opts.extraClients] more
 *                                    client_credentials clients
 * @param {{file: string, kid: string}} [opts.rsaKey] the RS256 signing key
 *                                    (PKCS#8 file under tests/fixtures) and
 *                                    its kid; default rsa-test-key.pem,
 *                                    `test-rsa`. Another key makes a second
 *                                    provider a really different issuer.
 * @param {string[]} [opts.tokenAuthMethods] client authentication methods
 *                                    at the token endpoint, advertised in
 *                                    discovery; the clients use the first.
 *                                    Default ['client_secret_basic',
 *                                    'client_secret_post', ...] (the library's)
 * Provider shapes (issue 15's profiles):
 * @param {'jwt'|'opaque'} [opts.accessTokenFormat] the default resource's
 *                                    access tokens: 'opaque' as Google's
 *                                    (default 'jwt', as Cognito's)
 * @param {string} [opts.audienceDependent] Auth0-like: JWT access tokens
 *                                    (with this `aud`) only when the
 *                                    authorize or client-credentials request
 *                                    carries `audience` = this; opaque ones
 *                                    otherwise
 * @param {string[]} [opts.resourceScopes] the resource server's scopes
 *                                    (default SCOPES)
 * @param {string} [opts.oktaAudience] Okta custom authorization server:
 *                                    JWT access tokens with this `aud`,
 *                                    scopes in `scp` (an array), the client
 *                                    in `cid`, no `scope`
 * @param {{method: string, jwks?: object[]}} [opts.demoAuth] how
 *                                    demo-client authenticates at the token
 *                                    endpoint (`private_key_jwt` with its
 *                                    public `jwks`, `none`: a public client
 *                                    without secret, ...); the library
 *                                    checks assertions' signature, `aud`
 *                                    and `jti` (single use)
 * @param {{tenant: string, audience: string}} [opts.entra] Entra ID
 *                                    multi-tenant: the issuer is
 *                                    `<origin>/<tenant>/v2.0`, tokens carry
 *                                    `tid`, access tokens `aud` = audience
 *                                    and `scp` (a string); and
 *                                    `<origin>/organizations/v2.0` publishes
 *                                    discovery with the literal issuer
 *                                    `<origin>/{tenantid}/v2.0`
 * @param {string} [opts.accessTokenAudience] JWT access tokens' `aud`
 *                                    (Keycloak with an Audience mapper)
 * @param {object} [opts.idTokenClaims] claims every user has, put in the
 *                                    ID token (e.g. Google's `hd`)
 * @returns {Promise<{issuer, port, tokenPort, tokenEndpoint, counts, resetCounts, tokenRequests, clientRequests, close}>}
 */
export async function startProvider(opts = {}) {
  const host = opts.host ?? '127.0.0.1';
  const Provider = await loadProviderClass();

  // Bind first, so port 0 works and the issuer names the real port.
  const server = http.createServer();
  const port = await listen(server, opts.port ?? 0, host);
  let tokenServer;
  let tokenPort;
  if (opts.tokenPort !== undefined && opts.tokenPort !== null) {
    tokenServer = http.createServer();
    tokenPort = await listen(tokenServer, opts.tokenPort, host);
  }
  const origin = `http://${host}:${port}`;
  // Entra: the provider lives under the tenant's path.
  const issuerPath = opts.entra ? `/${opts.entra.tenant}/v2.0` : '';
  const issuer = `${origin}${issuerPath}`;
  const idTokenClaims = { ...(opts.idTokenClaims ?? {}), ...(opts.entra ? { tid: opts.entra.tenant } : {}) };
  const hasIdTokenClaims = Object.keys(idTokenClaims).length > 0;
  const tokenEndpoint = tokenPort !== undefined ? `http://${host}:${tokenPort}/token` : `${issuer}/token`;

  const extraRedirects = [
    ...(opts.redirectUris ?? []),
    ...(process.env.OIDC_EXTRA_REDIRECT_URIS ?? '').split(/[\s,]+/).filter(Boolean),
  ];
  const ttl = opts.accessTokenTTL ?? 3600;
  const authMethod = opts.tokenAuthMethods?.[0] ?? 'client_secret_basic';

  // Claims a test adds to every JWT access token (setAccessTokenClaims).
  let extraAccessTokenClaims = {};

  const rsaKey = opts.rsaKey ?? { file: 'rsa-test-key.pem', kid: 'test-rsa' };
  const keys = [
    // First key of an alg is the one it signs with: RS256 → test-rsa.
    await jwkFromPem(rsaKey.file, 'RS256', rsaKey.kid),
    await jwkFromPem('ec-test-key.pem', 'ES256', 'test-ec'),
  ];

  const provider = new Provider(issuer, {
    jwks: { keys },
    clients: [
      {
        client_id: CLIENTS.demo.id,
        ...(opts.demoAuth?.method === 'none' ? {} : { client_secret: CLIENTS.demo.secret }),
        grant_types: opts.demoAuth?.method === 'none'
          ? ['authorization_code', 'refresh_token']
          : ['client_credentials', 'authorization_code', 'refresh_token'],
        response_types: ['code'],
        redirect_uris: [DEFAULT_REDIRECT_URI, ...extraRedirects],
        post_logout_redirect_uris: opts.postLogoutRedirectUris ?? [],
        // Resource-server scopes must NOT be listed in `scope` here.
        token_endpoint_auth_method: opts.demoAuth?.method ?? authMethod,
        ...(opts.demoAuth?.jwks ? { jwks: { keys: opts.demoAuth.jwks } } : {}),
      },
      {
        client_id: CLIENTS.other.id,
        client_secret: CLIENTS.other.secret,
        grant_types: ['client_credentials', 'authorization_code', 'refresh_token'],
        response_types: ['code'],
        redirect_uris: [DEFAULT_REDIRECT_URI, ...extraRedirects],
        token_endpoint_auth_method: authMethod,
      },
      // More confidential clients a test needs, e.g. with odd secrets.
      ...(opts.extraClients ?? []).map(({ id, secret }) => ({
        client_id: id,
        client_secret: secret,
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: authMethod,
      })),
    ],
    features: {
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      devInteractions: { enabled: true },
      resourceIndicators: {
        enabled: true,
        // client_credentials and the code flow get the resource server
        // without a `resource` parameter, as with Cognito.
        defaultResource: (ctx) => {
          if (!opts.audienceDependent) return RESOURCE;
          const audience = ctx.oidc.params?.audience ?? ctx.oidc.body?.audience;
          return audience === opts.audienceDependent ? RESOURCE : RESOURCE_OPAQUE;
        },
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, indicator) => {
          const scope = (opts.resourceScopes ?? SCOPES).join(' ');
          if (indicator === RESOURCE_OPAQUE) {
            return { scope, audience: RESOURCE_OPAQUE, accessTokenTTL: ttl, accessTokenFormat: 'opaque' };
          }
          if (indicator !== RESOURCE) throw new Provider.errors.InvalidTarget();
          if (opts.accessTokenFormat === 'opaque') {
            return { scope, audience: RESOURCE, accessTokenTTL: ttl, accessTokenFormat: 'opaque' };
          }
          return {
            scope,
            audience: RESOURCE, // oidc-provider needs one; dropped below
            accessTokenTTL: ttl,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'RS256', kid: rsaKey.kid } },
          };
        },
      },
    },
    pkce: { required: () => opts.pkceRequired ?? true },
    ...(opts.rotateRefreshToken !== undefined ? { rotateRefreshToken: () => opts.rotateRefreshToken } : {}),
    // Refresh tokens for clients allowed the grant, without offline_access.
    issueRefreshToken: (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    formats: {
      customizers: {
        // Make the JWT access token look like Cognito's.
        jwt: (_ctx, _token, jwt) => {
          const p = jwt.payload;
          p.token_use = 'access';
          p.version = 2;
          Object.assign(p, extraAccessTokenClaims);
          if (opts.entra) {
            p.aud = opts.entra.audience;
            // `api://orders-api/Orders.Read` is granted as `Orders.Read`.
            p.scp = String(p.scope ?? '').split(' ').filter(Boolean).map((v) => v.replace(/^.*\//, '')).join(' ');
            p.tid = opts.entra.tenant;
            delete p.scope;
            delete p.token_use;
            return;
          }
          if (opts.accessTokenAudience) {
            p.aud = opts.accessTokenAudience;
            return;
          }
          if (opts.oktaAudience) {
            p.aud = opts.oktaAudience;
            p.scp = String(p.scope ?? '').split(' ').filter(Boolean);
            p.cid = p.client_id;
            delete p.scope;
            delete p.token_use;
            return;
          }
          // Auth0: the API's identifier is the token's audience.
          if (opts.audienceDependent) {
            p.aud = opts.audienceDependent;
            return;
          }
          // oidc-provider refuses to sign an access token whose payload has
          // no `aud`, and reads `payload.aud` for that check after this
          // customizer. A non-enumerable `aud` passes the check and is left
          // out by JSON.stringify, so the signed token has no `aud`.
          const aud = p.aud;
          delete p.aud;
          Object.defineProperty(p, 'aud', { value: aud, enumerable: false, writable: true, configurable: true });
        },
      },
    },
    ...(opts.tokenAuthMethods ? { clientAuthMethods: opts.tokenAuthMethods } : {}),
    ttl: { ClientCredentials: ttl, AccessToken: ttl },
    findAccount: (_ctx, id) => ({
      accountId: id,
      claims: () => ({ sub: id, email: `${id}@example.test`, email_verified: true, ...idTokenClaims }),
    }),
    claims: { openid: ['sub', ...Object.keys(idTokenClaims)], email: ['email', 'email_verified'] },
    // Google and Entra put the profile in the ID token of the code flow too.
    ...(hasIdTokenClaims ? { conformIdTokenClaims: false } : {}),
    ...(opts.audienceDependent ? { extraParams: ['audience'] } : {}),
  });
  provider.proxy = false;

  const counts = {};
  // What each call of the token endpoint asked for, without secrets.
  const tokenRequests = [];
  // The same for the introspection and revocation endpoints.
  const clientCalls = { token: tokenRequests, introspection: [], revocation: [] };
  // Faults a test injects per endpoint: {status, body} answers that instead
  // of the real thing; {hang: true} never answers (until close());
  // {delayMs} answers for real after that long.
  const faults = {};
  const hung = new Set();
  provider.use(async (ctx, next) => {
    if (ctx.path === '/__counts') {
      if (ctx.method === 'DELETE') for (const k of Object.keys(counts)) delete counts[k];
      ctx.type = 'application/json';
      ctx.body = JSON.stringify(counts);
      return;
    }
    const name = endpointName(ctx.path);
    counts[name] = (counts[name] ?? 0) + 1;
    let record;
    if (clientCalls[name]) {
      record = describeTokenRequest(ctx);
      clientCalls[name].push(record);
    }
    const fault = faults[name];
    if (fault?.hang) {
      await new Promise((resolve) => { hung.add(resolve); });
      return;
    }
    if (fault?.delayMs) {
      // Answer for real, only later.
      await new Promise((resolve) => { setTimeout(resolve, fault.delayMs); });
    } else if (fault) {
      ctx.status = fault.status ?? 500;
      for (const [k, v] of Object.entries(fault.headers ?? {})) ctx.set(k, v);
      ctx.type = fault.type ?? 'text/plain';
      ctx.body = fault.body ?? 'injected fault';
      if (record) record.status = ctx.status;
      return;
    }
    try {
      await next();
    } finally {
      // The library parses the form body on its way; read it afterwards.
      if (record) Object.assign(record, describeTokenBody(ctx.oidc?.body, record), { status: ctx.status });
    }
    // Cognito-like split: the token endpoint on another host (here: port).
    if (tokenServer && name === 'discovery' && ctx.body && typeof ctx.body === 'object') {
      ctx.body.token_endpoint = tokenEndpoint;
    }
  });

  const callback = provider.callback();
  // Authorization requests' prompts the wrapper below took out.
  const prompts = [];
  // Under a path issuer the provider is mounted at that path: it reads
  // its mount path from `originalUrl`, as under express.
  const handler = !issuerPath ? callback : (req, res) => {
    if (req.url === issuerPath || req.url.startsWith(`${issuerPath}/`) || req.url.startsWith(`${issuerPath}?`)) {
      if (opts.entra && req.url.startsWith(`${issuerPath}/auth?`)) {
        // Entra's `prompt=select_account` (the account picker) is not
        // one of the library's prompts: taken out, and remembered.
        const u = new URL(req.url, origin);
        if (u.searchParams.get('prompt') === 'select_account') {
          prompts.push('select_account');
          u.searchParams.delete('prompt');
          req.url = `${u.pathname}${u.search}`;
        }
      }
      req.originalUrl = req.url;
      req.url = req.url.slice(issuerPath.length) || '/';
      return callback(req, res);
    }
    if (opts.entra && req.url === '/organizations/v2.0/.well-known/openid-configuration') {
      counts.discovery = (counts.discovery ?? 0) + 1;
      // Entra's multi-tenant discovery: the tenant's, with a placeholder.
      http.get(`${issuer}/.well-known/openid-configuration`, (r) => {
        const chunks = [];
        r.on('data', (c) => chunks.push(c));
        r.on('end', () => {
          const doc = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          doc.issuer = `${origin}/{tenantid}/v2.0`;
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify(doc));
        });
      }).on('error', () => { res.writeHead(502); res.end(); });
      return undefined;
    }
    res.writeHead(404);
    res.end();
    return undefined;
  };
  server.on('request', handler);
  tokenServer?.on('request', handler);

  return {
    issuer,
    port,
    tokenPort,
    tokenEndpoint,
    provider,
    counts: () => ({ ...counts }),
    /** Prompts the Entra wrapper took out of authorization requests. */
    prompts: () => [...prompts],
    resetCounts: () => {
      for (const k of Object.keys(counts)) delete counts[k];
      for (const list of Object.values(clientCalls)) list.length = 0;
    },
    /** Each token endpoint call, oldest first: `{port, method, auth,
     *  client_id, params, status}`; `auth` is 'basic', 'post' or 'none',
     *  `params` the form parameters minus `client_secret`. No secrets. */
    tokenRequests: () => tokenRequests.map((r) => ({ ...r, params: r.params && { ...r.params } })),
    /** The same records for 'token', 'introspection' or 'revocation'. */
    clientRequests: (endpoint) => (clientCalls[endpoint] ?? []).map((r) => ({ ...r, params: r.params && { ...r.params } })),
    /** Make `endpoint` ('discovery', 'jwks', 'token', ...) misbehave:
     *  `{status, body, type, headers}`, `{hang: true}` or `{delayMs}` (slow but
     *  real); `null` restores it. */
    setFault: (endpoint, fault) => {
      if (fault) faults[endpoint] = fault; else delete faults[endpoint];
    },
    /** Add these claims to every JWT access token issued from now on
     *  (e.g. Cognito-like `cognito:groups` to make tokens large); `{}`
     *  restores the normal tokens. */
    setAccessTokenClaims: (claims) => { extraAccessTokenClaims = { ...(claims ?? {}) }; },
    close: async () => {
      for (const resolve of hung) resolve();
      hung.clear();
      await Promise.all([closeServer(server), tokenServer && closeServer(tokenServer)]);
    },
  };
}

// `node provider.mjs --port N [--host H] [--token-port M]`
function argValue(args, name) {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const port = Number(argValue(args, '--port') ?? 3000);
  const host = argValue(args, '--host') ?? '127.0.0.1';
  const tp = argValue(args, '--token-port');
  const idp = await startProvider({ port, host, tokenPort: tp === undefined ? undefined : Number(tp) });
  console.log(`provider: issuer ${idp.issuer}, token endpoint ${idp.tokenEndpoint}`);
  const stop = async () => { await idp.close(); process.exit(0); };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
