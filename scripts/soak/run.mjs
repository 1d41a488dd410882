// The soak itself (scripts/soak.sh prepares and calls it):
//   node scripts/soak/run.mjs REQUESTS TOKENS
// One Envoy, loopback only, with three listeners: `main` runs the filter
// (bearer only) and routes /valid/* and /invalid/* to two upstream
// clusters, so Envoy's own counters say what reached the upstream for
// each; `idp` serves discovery and the JWKS as direct responses; `upstream`
// answers 200. Two wrk processes run side by side: valid tokens (80% of
// the requests, each of TOKENS distinct tokens used in a row) and invalid
// ones (20%). Envoy's memory (admin /memory, and the process RSS, which
// also holds V8's heaps) is sampled throughout. Writes
// scripts/soak/REPORT.md. Stops by itself: wrk stops at its quota, and a
// deadline kills everything after MAX_MINUTES.

import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { freePort, request, sleep, startEnvoy, wasmFilter } from '../../tests/e2e/lib.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..', '..');
const RUN = path.join(ROOT, '.run', 'soak');
const REQUESTS = Number(process.argv[2] ?? 1_000_000);
const TOKENS = Number(process.argv[3] ?? 100_000);
const VALID_SHARE = 0.8;
const CONCURRENCY = Number(process.env.SOAK_ENVOY_CONCURRENCY ?? 2);
const CONNECTIONS = Number(process.env.SOAK_CONNECTIONS ?? 8);
const MAX_MINUTES = Number(process.env.SOAK_MAX_MINUTES ?? 30);
const WASM = process.env.OIDC_WASM;

if (!WASM || !(REQUESTS > 0) || !(TOKENS > 0)) {
  console.error('usage: OIDC_WASM=… node scripts/soak/run.mjs REQUESTS TOKENS');
  process.exit(2);
}

const deadline = setTimeout(() => {
  console.error(`soak: still running after ${MAX_MINUTES} min, giving up`);
  process.exit(1); // lib.mjs kills Envoy on exit; wrk children get SIGTERM below
}, MAX_MINUTES * 60_000);
deadline.unref();
const children = new Set();
process.on('exit', () => { for (const c of children) { try { c.kill('SIGKILL'); } catch { /* gone */ } } });

const say = (m) => console.error(`soak: ${m}`);
const socket = (port) => ({ socket_address: { address: '127.0.0.1', port_value: port } });
const cluster = (name, port) => ({
  name, type: 'STATIC', connect_timeout: '1s',
  load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address: socket(port) } }] }] },
  circuit_breakers: { thresholds: [{ max_connections: 10000, max_pending_requests: 10000, max_requests: 10000 }] },
});
const router = {
  name: 'envoy.filters.http.router',
  typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' },
};
const listener = (name, port, routes, filters = []) => ({
  name,
  address: socket(port),
  filter_chains: [{
    filters: [{
      name: 'envoy.filters.network.http_connection_manager',
      typed_config: {
        '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
        stat_prefix: name,
        route_config: { name, virtual_hosts: [{ name, domains: ['*'], routes }] },
        http_filters: [...filters, router],
      },
    }],
  }],
});
const json = (path, body) => ({
  match: { path },
  direct_response: { status: 200, body: { inline_string: body } },
  response_headers_to_add: [{ header: { key: 'content-type', value: 'application/json' } }],
});

/** Runs a command to its end; with `doneFile`, SIGINTs it once that file exists. */
function run(cmd, args, logFile, doneFile) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    const poll = doneFile && setInterval(() => {
      if (existsSync(doneFile)) { clearInterval(poll); child.kill('SIGINT'); }
    }, 200);
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (poll) clearInterval(poll);
      children.delete(child);
      if (logFile) writeFileSync(logFile, out);
      code === 0 ? resolve(out) : reject(new Error(`${cmd} exited ${code}:\n${out}`));
    });
  });
}

function envoyPid(configFile) {
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(configFile)) return pid;
    } catch { /* gone */ }
  }
  return null;
}

const mb = (bytes) => (bytes / 1048576).toFixed(1);

async function main() {
  mkdirSync(RUN, { recursive: true });
  const [port, adminPort, idpPort, upPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const issuer = `http://127.0.0.1:${idpPort}`;

  say(`minting ${TOKENS} valid RS256 tokens (+ invalid ones)`);
  const minted = JSON.parse(await run('node', [path.join(HERE, 'mint.mjs'), RUN, issuer, String(TOKENS)]));
  say(`minted in ${minted.seconds} s on ${minted.workers} workers`);
  const jwks = readFileSync(path.join(RUN, 'jwks.json'), 'utf8');
  const discovery = JSON.stringify({ issuer, jwks_uri: `${issuer}/jwks.json`, token_endpoint: `${issuer}/token` });

  const filter = { issuer, idp_cluster: 'idp', auth_methods: ['bearer'], scopes_required: ['soak/read'] };
  const config = {
    admin: { address: socket(adminPort) },
    static_resources: {
      listeners: [
        listener('main', port, [
          { match: { prefix: '/valid/' }, route: { cluster: 'upstream_valid' } },
          { match: { prefix: '/invalid/' }, route: { cluster: 'upstream_invalid' } },
        ], [wasmFilter(WASM, filter)]),
        listener('idp', idpPort, [
          json('/.well-known/openid-configuration', discovery),
          json('/jwks.json', jwks),
        ]),
        listener('upstream', upPort, [
          { match: { prefix: '/' }, direct_response: { status: 200, body: { inline_string: 'ok' } } },
        ]),
      ],
      clusters: [cluster('idp', idpPort), cluster('upstream_valid', upPort), cluster('upstream_invalid', upPort)],
    },
  };
  const envoy = await startEnvoy({ config, concurrency: CONCURRENCY, name: 'soak', logLevel: 'warning' });
  const pid = envoyPid(envoy.configFile);
  const admin = (p) => request(`http://127.0.0.1:${adminPort}${p}`, { timeoutMs: 5000 });
  const counters = async () => {
    const text = (await admin('/stats?format=json')).json;
    const out = {};
    for (const s of text.stats) if (s.name && typeof s.value === 'number') out[s.name] = s.value;
    return out;
  };
  const sample = async (label) => {
    const m = (await admin('/memory')).json;
    const status = pid ? readFileSync(`/proc/${pid}/status`, 'utf8') : '';
    const rss = Number(status.match(/VmRSS:\s+(\d+) kB/)?.[1] ?? 0) * 1024;
    const c = await counters();
    return {
      label, t: Date.now(), requests: c['http.main.downstream_rq_total'] ?? 0,
      allocated: Number(m.allocated), heap: Number(m.heap_size), rss,
    };
  };

  const samples = [await sample('started')];
  // Let discovery and JWKS be fetched once before the load starts.
  const first = await request(`${envoy.url}/valid/0`, { headers: { authorization: `Bearer ${readFileSync(path.join(RUN, 'valid.txt'), 'utf8').split('\n')[0]}` } });
  if (first.status !== 200) throw new Error(`a valid token is refused before the soak: ${first.status} ${first.text}\n${envoy.tail(20)}`);
  samples.push(await sample('before load'));

  const validQuota = Math.round(REQUESTS * VALID_SHARE);
  const invalidQuota = REQUESTS - validQuota;
  const repeats = Math.max(1, Math.floor(validQuota / TOKENS));
  say(`sending ${REQUESTS} requests: ${validQuota} valid (${TOKENS} tokens × ${repeats}), ${invalidQuota} invalid; Envoy pid ${pid}, ${CONCURRENCY} workers`);
  const started = Date.now();
  let running = true;
  const sampler = (async () => {
    while (running) {
      await sleep(2000);
      if (running) samples.push(await sample('load'));
    }
  })();
  const wrk = (script, args, name) => {
    const done = path.join(RUN, `${name}.done`);
    rmSync(done, { force: true });
    return run('wrk', ['-t1', `-c${CONNECTIONS}`, `-d${MAX_MINUTES * 60}s`, '--timeout', '10s',
      '-s', path.join(HERE, script), `${envoy.url}/`, '--', ...args, done], path.join(RUN, `${name}.log`), done);
  };
  const [validOut, invalidOut] = await Promise.all([
    wrk('valid.lua', [path.join(RUN, 'valid.txt'), String(validQuota), String(repeats)], 'wrk-valid'),
    wrk('invalid.lua', [path.join(RUN, 'invalid.txt'), String(invalidQuota)], 'wrk-invalid'),
  ]);
  const seconds = (Date.now() - started) / 1000;
  running = false;
  await sampler;
  await sleep(6000); // the filter hands its counters to Envoy on its tick
  samples.push(await sample('end'));
  const c = await counters();
  await envoy.stop();

  const field = (out, name) => Number(out.match(new RegExp(`${name}=(\\d+)`))?.[1] ?? NaN);
  const v = { got: field(validOut, 'responses'), ok: field(validOut, 'ok'), refused: field(validOut, 'refused') };
  const inv = {
    got: field(invalidOut, 'responses'), passed: field(invalidOut, 'passed'),
    denied: field(invalidOut, 'denied'), other: field(invalidOut, 'other'),
  };
  const upValid = c['cluster.upstream_valid.upstream_rq_total'] ?? 0;
  const upInvalid = c['cluster.upstream_invalid.upstream_rq_total'] ?? 0;
  const total = c['http.main.downstream_rq_total'] ?? 0;
  const wrong = v.refused + inv.passed + upInvalid;
  const warm = samples.find((s) => s.label === 'load' && s.requests >= REQUESTS * 0.1) ?? samples[2] ?? samples.at(-1);
  const afterWarm = samples.filter((s) => s.t >= warm.t);
  const max = (k) => Math.max(...afterWarm.map((s) => s[k]));
  const end = samples.at(-1);
  const oidc = Object.entries(c).filter(([k]) => k.includes('oidc_')).sort();

  const row = (s) => `| ${s.label} | ${s.requests.toLocaleString('en')} | ${mb(s.allocated)} | ${mb(s.heap)} | ${mb(s.rss)} |`;
  const report = `# Soak report

Generated by \`scripts/soak.sh ${REQUESTS} ${TOKENS}\` on ${new Date().toISOString().slice(0, 10)}:
one Envoy (${CONCURRENCY} workers, \`${path.basename(WASM)}\`), loopback only, two wrk
processes side by side (${CONNECTIONS} connections each). Filter config:
\`${JSON.stringify({ ...filter, issuer: 'http://127.0.0.1:<idp>' })}\`.

## Requests and decisions

| | count |
|---|---:|
| requests seen by Envoy (\`http.main.downstream_rq_total\`, incl. the first check) | ${total.toLocaleString('en')} |
| valid requests answered (${TOKENS.toLocaleString('en')} distinct RS256 tokens, ${repeats}× each) | ${v.got.toLocaleString('en')} |
| … of which reached the upstream (200) | ${v.ok.toLocaleString('en')} |
| … refused (**wrong**) | ${v.refused.toLocaleString('en')} |
| invalid requests answered (expired, wrong issuer, unpublished key, bad signature, unknown kid, alg none, garbage, swapped claims, no credentials, Basic) | ${inv.got.toLocaleString('en')} |
| … denied with 401 | ${inv.denied.toLocaleString('en')} |
| … other status | ${inv.other.toLocaleString('en')} |
| … answered 200 (**wrong**) | ${inv.passed.toLocaleString('en')} |
| Envoy: \`cluster.upstream_valid.upstream_rq_total\` | ${upValid.toLocaleString('en')} |
| Envoy: \`cluster.upstream_invalid.upstream_rq_total\` (must be 0) | ${upInvalid.toLocaleString('en')} |
| **wrong decisions** | **${wrong}** |

Duration ${seconds.toFixed(0)} s (${Math.round((v.got + inv.got) / seconds).toLocaleString('en')} req/s); minting ${minted.valid.toLocaleString('en')} + ${minted.invalid.toLocaleString('en')} tokens took ${minted.seconds} s.
The upstream counters also hold the few requests wrk had in flight when it
stopped at its quota; the decisions are counted on the responses wrk received.

## Envoy memory (MB)

\`allocated\` and \`heap_size\` from admin \`/memory\` (Envoy's allocator);
RSS from \`/proc/<pid>/status\` (includes V8's wasm heaps, which the
allocator does not see).

| when | requests | allocated | heap_size | RSS |
|---|---:|---:|---:|---:|
${row(samples[0])}
${row(samples[1])}
${row({ ...warm, label: 'after warm-up (≥10% of requests)' })}
| max after warm-up | | ${mb(max('allocated'))} | ${mb(max('heap'))} | ${mb(max('rss'))} |
${row({ ...end, label: 'end' })}

Growth from warm-up to end: allocated ${mb(end.allocated - warm.allocated)} MB, RSS ${mb(end.rss - warm.rss)} MB
(${samples.length} samples every 2 s).

## Filter counters at the end

${oidc.map(([k, val]) => `- \`${k}\`: ${val.toLocaleString('en')}`).join('\n')}
`;
  writeFileSync(path.join(HERE, 'REPORT.md'), report);
  writeFileSync(path.join(RUN, 'samples.json'), JSON.stringify(samples, null, 1));
  console.log(report);
  if (wrong !== 0) {
    say(`${wrong} wrong decisions`);
    process.exitCode = 1;
  }
}

main().then(() => process.exit(process.exitCode ?? 0), (e) => {
  console.error(e);
  process.exit(1);
});
