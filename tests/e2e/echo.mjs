// Upstream echo for the end-to-end tests and the demo.
//
//   node echo.mjs --port 8080 [--host 127.0.0.1]
//
// or `const echo = await startEcho({ port: 0 }); echo.port; echo.received();`
//
// Every request gets 200 with JSON `{method, path, headers, body}` and is
// recorded, so a test can assert what reached upstream, and that nothing
// did. Ask the echo directly (not through Envoy):
//   GET    /__received  → the recorded requests, oldest first
//   DELETE /__received  → clear the record
//
// One page for browsers: a GET of /logout asking for HTML (the filter
// passes a GET on its logout path on: only POST and DELETE log out by
// default) gets a "Log out" button whose form POSTs to the same URL, as an
// application behind the filter would serve it. It is recorded too.

import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export async function startEcho(opts = {}) {
  const host = opts.host ?? '127.0.0.1';
  const received = [];

  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const reply = (status, obj) => {
        const body = JSON.stringify(obj);
        res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      };
      if (req.url === '/__received' || req.url.startsWith('/__received?')) {
        if (req.method === 'DELETE') received.length = 0;
        return reply(200, received);
      }
      const entry = {
        method: req.method,
        path: req.url,
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      received.push(entry);
      const [pathOnly] = req.url.split('?');
      if (req.method === 'GET' && pathOnly === '/logout' && /text\/html/.test(req.headers.accept ?? '')) {
        const page = '<!doctype html><title>Log out</title>'
          + '<form method="post"><button type="submit" name="logout" value="1">Log out</button></form>';
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(page) });
        return res.end(page);
      }
      reply(200, entry);
    });
  });

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, resolve);
  });
  const { port } = server.address();

  return {
    port,
    url: `http://${host}:${port}`,
    received: () => received.slice(),
    clear: () => { received.length = 0; },
    close: () => new Promise((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

function argValue(args, name) {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const echo = await startEcho({
    port: Number(argValue(args, '--port') ?? 8080),
    host: argValue(args, '--host') ?? '127.0.0.1',
  });
  console.log(`echo: listening on ${echo.url}`);
  const stop = async () => { await echo.close(); process.exit(0); };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
