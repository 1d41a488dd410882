// Mints the soak's tokens with Node's crypto (OpenSSL), on every core:
//   node scripts/soak/mint.mjs OUT_DIR ISSUER COUNT
// writes OUT_DIR/valid.txt (COUNT distinct RS256 access tokens, kid
// `test-rsa`, valid for two hours), OUT_DIR/invalid.txt (`kind token`
// lines: expired, wrong issuer, signed by an unpublished key, bad
// signature, unknown kid, alg none, garbage) and OUT_DIR/jwks.json.

import { createPrivateKey, createPublicKey, sign } from 'node:crypto';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const FIXTURES = path.resolve(HERE, '..', '..', 'tests', 'fixtures');
const b64 = (x) => Buffer.from(typeof x === 'string' ? x : JSON.stringify(x)).toString('base64url');

function mint({ from, to, issuer, now, keyFile, kid, claims = {} }) {
  const key = createPrivateKey(readFileSync(path.join(FIXTURES, keyFile)));
  const header = b64({ alg: 'RS256', typ: 'JWT', kid });
  const out = [];
  for (let i = from; i < to; i++) {
    const body = b64({
      iss: issuer, sub: `user-${i}`, client_id: 'soak', token_use: 'access',
      scope: 'soak/read', iat: now - 60, exp: now + 7200, jti: `soak-${i}`, ...claims,
    });
    const input = `${header}.${body}`;
    out.push(`${input}.${sign('sha256', Buffer.from(input), key).toString('base64url')}`);
  }
  return out;
}

if (!isMainThread) {
  parentPort.postMessage(mint(workerData));
} else {
  const [outDir, issuer, countArg] = process.argv.slice(2);
  const count = Number(countArg);
  if (!outDir || !issuer || !(count > 0)) {
    console.error('usage: mint.mjs OUT_DIR ISSUER COUNT');
    process.exit(2);
  }
  mkdirSync(outDir, { recursive: true });
  const now = Math.floor(Date.now() / 1000);
  const started = Date.now();
  const workers = Math.max(1, availableParallelism());
  const run = (job) => new Promise((resolve, reject) => {
    const w = new Worker(fileURLToPath(import.meta.url), { workerData: job });
    w.once('message', resolve);
    w.once('error', reject);
  });
  const batch = async (n, job) => {
    const size = Math.ceil(n / workers);
    const parts = await Promise.all(Array.from({ length: workers }, (_, i) =>
      run({ ...job, from: i * size, to: Math.min(n, (i + 1) * size), issuer, now })));
    return parts.flat();
  };
  const rsa = { keyFile: 'rsa-test-key.pem', kid: 'test-rsa' };
  const valid = await batch(count, rsa);
  const few = Math.min(1000, count);
  const expired = await batch(few, { ...rsa, claims: { iat: now - 7200, exp: now - 3600 } });
  const wrongIssuer = await batch(few, { ...rsa, claims: { iss: 'http://evil.example.com' } });
  const otherKey = await batch(few, { keyFile: 'rsa-other-key.pem', kid: 'test-rsa' });
  const invalid = [];
  for (let i = 0; i < few; i++) {
    const v = valid[i * Math.floor(count / few)];
    // A different last signature character: a full RSA check that fails.
    const flipped = v.slice(0, -2) + (v.at(-2) === 'A' ? 'B' : 'A') + v.at(-1);
    const [h, c] = v.split('.');
    invalid.push(
      `expired ${expired[i]}`,
      `wrong_issuer ${wrongIssuer[i]}`,
      `other_key ${otherKey[i]}`,
      `bad_signature ${flipped}`,
      `unknown_kid ${b64({ alg: 'RS256', kid: `gone-${i}` })}.${c}.${v.split('.')[2]}`,
      `alg_none ${b64({ alg: 'none' })}.${c}.`,
      `garbage not-a-jwt-${i}`,
      `swapped_claims ${h}.${b64({ iss: issuer, exp: now + 7200, sub: 'admin' })}.${v.split('.')[2]}`,
    );
  }
  writeFileSync(path.join(outDir, 'valid.txt'), `${valid.join('\n')}\n`);
  writeFileSync(path.join(outDir, 'invalid.txt'), `${invalid.join('\n')}\n`);
  const jwk = createPublicKey(readFileSync(path.join(FIXTURES, 'rsa-test-key.pem'))).export({ format: 'jwk' });
  writeFileSync(path.join(outDir, 'jwks.json'),
    JSON.stringify({ keys: [{ ...jwk, kid: 'test-rsa', use: 'sig', alg: 'RS256' }] }));
  const seconds = (Date.now() - started) / 1000;
  console.log(JSON.stringify({ valid: valid.length, invalid: invalid.length, seconds, workers }));
}
