// Mints the benchmark's tokens and IdP documents with the test fixture keys
// (tests/fixtures/*.pem), using only node:crypto, so the benchmark needs no
// npm install. Usage: node bench/mint.mjs <out-dir> <issuer> <n-distinct>
//
// Writes into <out-dir>:
//   discovery.json, jwks.json     what the IdP Envoy serves (RSA kid test-rsa, P-256 kid test-ec)
//   one.txt                       "Bearer <RS256 token>" (the repeated token)
//   rs256.txt, es256.txt          n distinct valid tokens, one header value a line
//   badsig.txt                    "Bearer <RS256 token signed by a key nobody publishes>", kid test-rsa
//   basic.txt                     "Basic <id:secret>" for the client-credentials scenario
//   token-reply.json              the token endpoint's fixed answer (a pre-minted RS256 token)
//   probe.json                    the timing probe's plugin configuration (with an
//                                 ES384 token and its key, made at random here)
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const [out, issuer, nArg] = process.argv.slice(2);
if (!out || !issuer) throw new Error('usage: mint.mjs <out-dir> <issuer> <n-distinct>');
const n = Number(nArg ?? 8192);
const fixtures = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'tests', 'fixtures');
const pem = (f) => createPrivateKey(readFileSync(path.join(fixtures, f)));
const rsa = pem('rsa-test-key.pem');
const ec = pem('ec-test-key.pem');
const other = pem('rsa-other-key.pem');
// ES384 is only timed by the probe: a key made here will do.
const ec384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey;

const b64u = (b) => Buffer.from(b).toString('base64url');
const now = Math.floor(Date.now() / 1000);

// Claims shaped like a Cognito access token (~1 KB token), valid for 2 h.
function claims(i) {
  return {
    sub: 'bench-client',
    token_use: 'access',
    scope: 'kongresource/scope1 kongresource/scope2',
    auth_time: now,
    iss: issuer,
    exp: now + 7200,
    iat: now,
    version: 2,
    jti: `${i}-${b64u(randomBytes(12))}`,
    client_id: 'bench-client',
    username: 'bench-user@example.com',
  };
}

function jwt(alg, kid, key, body) {
  const input = `${b64u(JSON.stringify({ alg, kid, typ: 'JWT' }))}.${b64u(JSON.stringify(body))}`;
  const hash = alg.endsWith('384') ? 'sha384' : 'sha256';
  const sig = alg.startsWith('ES')
    ? sign(hash, Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' })
    : sign(hash, Buffer.from(input), key);
  return `${input}.${b64u(sig)}`;
}

mkdirSync(out, { recursive: true });
const w = (f, s) => writeFileSync(path.join(out, f), s);

const rsaJwk = createPublicKey(rsa).export({ format: 'jwk' });
const ecJwk = createPublicKey(ec).export({ format: 'jwk' });
const jwks = {
  keys: [
    { ...rsaJwk, kid: 'test-rsa', alg: 'RS256', use: 'sig' },
    { ...ecJwk, kid: 'test-ec', alg: 'ES256', use: 'sig' },
  ],
};
const discovery = {
  issuer,
  jwks_uri: `${issuer}/jwks`,
  token_endpoint: `${issuer}/token`,
  response_types_supported: ['code'],
  subject_types_supported: ['public'],
  id_token_signing_alg_values_supported: ['RS256', 'ES256'],
  token_endpoint_auth_methods_supported: ['client_secret_basic'],
};
w('jwks.json', JSON.stringify(jwks));
w('discovery.json', JSON.stringify(discovery));

const one = jwt('RS256', 'test-rsa', rsa, claims('one'));
w('one.txt', `Bearer ${one}\n`);
w('badsig.txt', `Bearer ${jwt('RS256', 'test-rsa', other, claims('bad'))}\n`);
const ccToken = jwt('RS256', 'test-rsa', rsa, claims('cc'));
const tokenReply = { access_token: ccToken, token_type: 'Bearer', expires_in: 3600 };
w('token-reply.json', JSON.stringify(tokenReply));
w('basic.txt', `Basic ${Buffer.from('bench-client:bench-secret').toString('base64')}\n`);

const rs = [];
const es = [];
for (let i = 0; i < n; i++) {
  rs.push(`Bearer ${jwt('RS256', 'test-rsa', rsa, claims(`rs${i}`))}`);
  es.push(`Bearer ${jwt('ES256', 'test-ec', ec, claims(`es${i}`))}`);
}
w('rs256.txt', `${rs.join('\n')}\n`);
w('es256.txt', `${es.join('\n')}\n`);

w('probe.json', JSON.stringify({
  filter: { issuer, idp_cluster: 'idp', auth_methods: ['bearer', 'client_credentials'], bypass_paths: ['/public'] },
  discovery,
  jwks,
  rs256: one,
  rs256_many: rs.slice(0, 256).map((t) => t.slice('Bearer '.length)),
  es256: es[0].slice('Bearer '.length),
  es384: jwt('ES384', 'test-ec384', ec384, claims('es384')),
  es384_jwks: { keys: [{ ...createPublicKey(ec384).export({ format: 'jwk' }), kid: 'test-ec384', alg: 'ES384' }] },
  cc_reply: tokenReply,
}));
console.log(`minted ${n} RS256 + ${n} ES256 tokens (${one.length} bytes each) in ${out}`);
