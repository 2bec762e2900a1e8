// Interop: `mandate gateway` puts OAuth in front of an MCP server nobody here wrote or changed,
// the "everything" server (npm @modelcontextprotocol/server-everything, Streamable HTTP with
// sessions and SSE), which wants an API key of its own (a key check in front of it). The MCP
// TypeScript SDK (@modelcontextprotocol/sdk) is the client, as an MCP host would use it:
//
//   1. its first request gets 401 from the gateway, it reads the gateway's RFC 9728 metadata,
//      finds mandate, registers (RFC 7591 dynamic registration), and hands over the
//      authorization URL; Chromium signs alice in on mandate's pages and allows;
//   2. with the token it lists the tools through the gateway (tools:read);
//   3. a tools/call needs tools:call (`--method-scope`): 403 insufficient_scope, the SDK steps
//      up, alice allows again, and `echo` answers through the gateway;
//   4. a long-running tool's progress notifications arrive one by one over SSE, before the
//      result, through the gateway;
//   5. what the upstream saw: the gateway's API key on every request, never a token; the MCP
//      session id both ways; and the gateway's log has neither the token nor the key.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { UnauthorizedError, discoverAuthorizationServerMetadata } from '@modelcontextprotocol/sdk/client/auth.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { startMandate } from '../lib/mandate.mjs';
import { launchChromium, startCallbackServer } from '../lib/chromium.mjs';
import { HostProvider, recordingFetch } from '../lib/mcp.mjs';
import { gatewayResource, startEverything, startGateway, startKeyCheck } from '../lib/gateway.mjs';

// DEVELOPMENT FIXTURES for throwaway servers: not secrets.
const ALICE = { username: 'alice', password: 'interop-alice-password-0123', email: 'alice@example.com' };
const API_KEY = `everything-key-${randomBytes(12).toString('hex')}`;
const SCOPES = ['tools:read', 'tools:call'];

/** An MCP host's OAuthClientProvider, in memory; the authorization URLs it must open are kept. */
describe('mandate gateway in front of server-everything, with the MCP TypeScript SDK', () => {
  let server;
  let everything;
  let keyCheck;
  let gateway;
  let browser;
  let context;
  let cb;
  let as;
  let provider;
  let transport;
  let client;
  let rec;
  // recordingFetch reads whole response bodies (to record them): off for the streaming test.
  let recording = true;
  const hostFetch = (input, init) => (recording ? rec.fetchFn(input, init) : fetch(input, init));

  before(async () => {
    everything = await startEverything();
    keyCheck = await startKeyCheck({ upstream: everything.url, header: 'x-api-key', key: API_KEY });
    const { port, resource } = await gatewayResource();
    server = await startMandate({
      resources: [{ uri: resource, name: 'Everything (through the gateway)', scopes: SCOPES }],
      users: [ALICE],
      clients: [],
      registration: { dynamic: true },
    });
    gateway = await startGateway({
      port,
      resource,
      issuer: server.issuer,
      upstream: `${keyCheck.base}/mcp`,
      scopes: ['tools:read'],
      methodScopes: [['tools/call', 'tools:call']],
      headerEnv: { name: 'X-Api-Key', variable: 'EVERYTHING_API_KEY', value: API_KEY },
    });
    as = await discoverAuthorizationServerMetadata(server.issuer);
    cb = await startCallbackServer();
    browser = await launchChromium();
    context = await browser.newContext();
  });
  after(async () => {
    await client?.close().catch(() => {});
    await context?.close();
    await browser?.close();
    await cb?.close();
    await gateway?.stop();
    await keyCheck?.close();
    await everything?.stop();
    await server?.stop();
  });
  const it = (name, fn) =>
    test(name, { timeout: 120_000 }, async (t) => {
      try {
        await fn(t);
      } catch (e) {
        server?.dumpLogs(`mandate server output for failed test "${t.name}"`);
        gateway?.dumpLogs(`mandate gateway output for failed test "${t.name}"`);
        process.stderr.write(`\n----- server-everything -----\n${everything?.proc.output}\n`);
        throw e;
      }
    });

  /**
   * Alice, in Chromium, at the authorization URL the SDK produced: signs in if asked, allows,
   * and the browser lands on the loopback callback. Returns the code (state and iss checked).
   */
  async function approve(url) {
    const page = await context.newPage();
    try {
      await page.goto(url.href);
      if (await page.locator('input[name="password"]').count()) {
        await page.locator('input[name="username"]').fill(ALICE.username);
        await page.locator('input[name="password"]').fill(ALICE.password);
        await Promise.all([page.waitForURL((u) => u.pathname.endsWith('/consent')), page.getByRole('button', { name: 'Sign in' }).click()]);
      }
      await Promise.all([page.waitForURL((u) => u.href.startsWith(cb.redirectUri)), page.getByRole('button', { name: 'Allow' }).click()]);
      const callback = new URL(page.url());
      assert.equal(callback.searchParams.get('state'), provider.lastState);
      assert.equal(callback.searchParams.get('iss'), server.issuer);
      const code = callback.searchParams.get('code');
      assert.ok(code, callback.href);
      return code;
    } finally {
      await page.close();
    }
  }

  const claimsOf = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString('utf8'));

  it('401 from the gateway → its RFC 9728 metadata → mandate → dynamic registration → alice signs in (Chromium) → tools listed through the gateway', async () => {
    provider = new HostProvider({
      redirectUrl: cb.redirectUri,
      clientMetadata: {
        client_name: 'Interop MCP host (gateway)',
        redirect_uris: [cb.redirectUri],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'none',
        application_type: 'native',
      },
    });
    rec = recordingFetch();
    transport = new StreamableHTTPClientTransport(new URL(gateway.resource), { authProvider: provider, fetch: hostFetch });
    client = new Client({ name: 'mandate-interop-gateway-host', version: '1.0.0' });
    await assert.rejects(client.connect(transport), UnauthorizedError);

    const prm = gateway.resource.replace('/mcp', '/.well-known/oauth-protected-resource/mcp');
    assert.deepEqual(
      rec.calls.map((c) => `${c.method} ${c.url} ${c.status}`),
      [
        `POST ${gateway.resource} 401`,
        `GET ${prm} 200`,
        `GET ${server.issuer}/.well-known/oauth-authorization-server 200`,
        `POST ${as.registration_endpoint} 201`,
      ],
    );
    assert.equal(keyCheck.requests.length, 0, 'nothing reached the upstream without a token');
    const [authorization] = provider.authorizationUrls;
    assert.equal(authorization.searchParams.get('resource'), gateway.resource, 'RFC 8707: the gateway is the resource');
    assert.equal(authorization.searchParams.get('scope'), 'tools:read', 'the scope the challenge named');

    await transport.finishAuth(await approve(authorization));
    await client.close();
    const claims = claimsOf(provider.tokens().access_token);
    assert.equal(claims.aud, gateway.resource);
    assert.equal(claims.scope, 'tools:read');

    // A new connection with the token: initialize, a session, the tool list.
    transport = new StreamableHTTPClientTransport(new URL(gateway.resource), { authProvider: provider, fetch: hostFetch });
    client = new Client({ name: 'mandate-interop-gateway-host', version: '1.0.0' });
    await client.connect(transport);
    assert.ok(transport.sessionId, 'the upstream session id came back through the gateway');
    assert.equal(client.getServerVersion()?.name, 'mcp-servers/everything');
    const { tools } = await client.listTools();
    const names = tools.map((t) => t.name);
    assert.ok(names.includes('echo') && names.includes('trigger-long-running-operation'), names.join(', '));
  });

  it('tools/call needs tools:call: 403 insufficient_scope, the SDK steps up, alice allows, echo answers through the gateway', async () => {
    const call = { name: 'echo', arguments: { message: 'hello through mandate gateway' } };
    await assert.rejects(client.callTool(call), UnauthorizedError);
    const stepUp = rec.calls.filter((c) => c.status === 403);
    assert.equal(stepUp.length, 1);
    assert.equal(provider.authorizationUrls.length, 2);
    const url = provider.authorizationUrls[1];
    assert.deepEqual(url.searchParams.get('scope').split(' ').sort(), SCOPES.toSorted(), 'every scope the challenge named');

    await transport.finishAuth(await approve(url));
    assert.deepEqual(claimsOf(provider.tokens().access_token).scope.split(' ').sort(), SCOPES.toSorted());
    const result = await client.callTool(call);
    assert.deepEqual(result.content, [{ type: 'text', text: 'Echo: hello through mandate gateway' }]);
  });

  it('progress notifications stream through the gateway one by one, before the result', async () => {
    recording = false;
    const started = Date.now();
    const progress = [];
    const result = await client.callTool(
      { name: 'trigger-long-running-operation', arguments: { duration: 2, steps: 4 } },
      undefined,
      { onprogress: (p) => progress.push({ ...p, at: Date.now() - started }), timeout: 30_000 },
    );
    const done = Date.now() - started;
    assert.match(result.content[0].text, /Long running operation completed/);
    assert.deepEqual(progress.map((p) => p.progress), [1, 2, 3, 4]);
    // Buffered, every notification would arrive with the result, two seconds in.
    assert.ok(done - progress[0].at >= 1000, `first progress at ${progress[0].at} ms, result at ${done} ms`);
  });

  it('the upstream got the gateway key on every request, never a token; the gateway log has neither', async () => {
    const token = provider.tokens().access_token;
    assert.ok(keyCheck.requests.length >= 4, `${keyCheck.requests.length} requests reached the upstream`);
    for (const r of keyCheck.requests) {
      assert.equal(r.headers['x-api-key'], API_KEY, `${r.method} ${r.url}`);
      assert.equal(r.headers.authorization, undefined, `no token passthrough: ${r.method} ${r.url}`);
      assert.ok(!JSON.stringify(r.headers).includes(token.split('.')[2]));
      assert.equal(r.headers.host, new URL(keyCheck.base).host, 'Host is the upstream\'s');
    }
    const withSession = keyCheck.requests.filter((r) => r.headers['mcp-session-id'] === transport.sessionId);
    assert.ok(withSession.length >= 3, 'the session id reached the upstream on later requests');
    assert.ok(keyCheck.requests.some((r) => r.headers['mcp-protocol-version']), 'MCP-Protocol-Version passed on');

    const logs = gateway.logs;
    assert.ok(!logs.includes(API_KEY), 'the upstream key is not logged');
    assert.ok(!logs.includes(token.split('.')[2]), 'no token is logged');
    const client_id = provider.clientInformation().client_id;
    assert.match(logs, new RegExp(`status=200 client_id="?${client_id}"?`), 'requests are logged with the client');
    assert.match(logs, /status=401/);
    assert.match(logs, /status=403/);
  });
});
