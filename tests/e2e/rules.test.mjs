// `rules` (issue 17, part): one configuration serving two hosts and several
// paths with different requirements, first match wins, in real Envoy.
// 127.0.0.1 and localhost are the two hosts (the Host header).

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startStack, request, clientCredentialsToken } from './lib.mjs';

describe('rules: per host and path requirements', () => {
  let stack;
  before(async () => {
    stack = await startStack({
      name: 'rules',
      filter: {
        scopes_required: ['kongresource/scope1'],
        rules: [
          { match: { paths: ['/oidcroute/public'] }, bypass: true },
          { match: { hosts: ['localhost'], paths: ['/oidcroute/admin'] }, groups_required: ['admins'] },
          { match: { paths: ['/oidcroute/api'], methods: ['POST'] }, scopes_required: ['kongresource/scope2'] },
        ],
      },
    });
  });
  after(async () => { await stack?.stop(); });

  test('each route gets its rule; a path matching none gets the top level', { timeout: 30_000 }, async () => {
    const scope1 = await clientCredentialsToken(stack.idp, { scope: 'kongresource/scope1' });
    const both = await clientCredentialsToken(stack.idp, { scope: 'kongresource/scope1 kongresource/scope2' });
    const port = new URL(stack.url('/')).port;
    const status = async (host, path, token, method = 'GET') => (await request(stack.url(path), {
      method,
      headers: { host: `${host}:${port}`, ...(token ? { authorization: `Bearer ${token}` } : {}) },
    })).status;
    assert.equal(await status('127.0.0.1', '/oidcroute/public/page'), 200, 'bypass rule');
    assert.equal(await status('localhost', '/oidcroute/admin', scope1), 403, 'admin on localhost needs the group');
    assert.equal(await status('127.0.0.1', '/oidcroute/admin', scope1), 200, 'on the other host: top level');
    assert.equal(await status('127.0.0.1', '/oidcroute/api/orders', scope1, 'POST'), 403, 'POST needs scope2');
    assert.equal(await status('127.0.0.1', '/oidcroute/api/orders', both, 'POST'), 200);
    assert.equal(await status('127.0.0.1', '/oidcroute/api/orders', scope1), 200, 'GET: top level');
    assert.equal(await status('127.0.0.1', '/oidcroute/get'), 401, 'no rule, no credential');
  });
});
