// Interop: the official MCP Python SDK (PyPI `mcp`) as a real MCP host against `mandate gateway`
// in front of @modelcontextprotocol/server-everything (Streamable HTTP), an MCP server that knows
// nothing of OAuth and demands its own API key. The host meets the gateway's 401, discovers (the
// gateway's RFC 9728 metadata, then mandate's), registers, and alice signs in and allows in
// Chromium; it lists the tools and calls `echo`, which the gateway lets through only with
// tools:call: a 403, a step-up, alice allows again, and `echo` answers. The upstream sees the
// gateway's key on every request and never a token.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { approveInChromium, launchChromium } from '../lib/chromium.mjs';
import { gatewayResource, startEverything, startGateway, startKeyCheck } from '../lib/gateway.mjs';
import { startMandate } from '../lib/mandate.mjs';
import { runPythonHost } from '../lib/python-host.mjs';

// DEVELOPMENT FIXTURES for a throwaway server: not secrets.
const ALICE = { username: 'alice', password: 'interop-alice-password-0123', email: 'alice@example.com' };
const API_KEY = `everything-key-${randomBytes(12).toString('hex')}`;
const HOST_NAME = 'Interop MCP host (Python SDK, through the gateway)';
const MESSAGE = 'hello through mandate gateway from the Python SDK';

describe('MCP Python SDK → mandate gateway → server-everything', () => {
  let everything;
  let keyCheck;
  let server;
  let gateway;
  let browser;

  before(async () => {
    everything = await startEverything();
    keyCheck = await startKeyCheck({ upstream: everything.url, header: 'x-api-key', key: API_KEY });
    const { port, resource } = await gatewayResource();
    server = await startMandate({
      resources: [{ uri: resource, name: 'Everything (through the gateway)', scopes: ['tools:read', 'tools:call'] }],
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
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await gateway?.stop();
    await keyCheck?.close();
    await everything?.stop();
    await server?.stop();
  });

  test('401 → discovery → registration → alice allows → tools; echo → 403 → step-up → echo; the key upstream, no token', { timeout: 120_000 }, async () => {
    const context = await browser.newContext();
    const approvals = [];
    let report;
    try {
      report = await runPythonHost(
        gateway.resource,
        HOST_NAME,
        async (url) => {
          const redirectUri = url.searchParams.get('redirect_uri');
          approvals.push({ url, ...(await approveInChromium(context, url, { user: ALICE, redirectUri })) });
        },
        { args: ['--no-whoami', '--echo-argument', 'message', '--echo', MESSAGE] },
      );
    } catch (e) {
      process.stderr.write(`--- gateway log ---\n${gateway.logs}\n`);
      throw e;
    } finally {
      await context.close();
    }

    const traffic = report.traffic.map((r) => `${r.method} ${r.url} ${r.status}`);
    assert.equal(traffic[0], `POST ${gateway.resource} 401`, traffic.join('\n'));
    assert.ok(
      traffic.includes(`GET ${gateway.resource.replace('/mcp', '/.well-known/oauth-protected-resource/mcp')} 200`),
      `the gateway's RFC 9728 metadata:\n${traffic.join('\n')}`,
    );
    assert.ok(traffic.includes(`POST ${server.issuer}/register 201`), traffic.join('\n'));
    assert.match(report.client_id, /^dcr_/);

    // The first authorization asks for what the 401 challenged, the second adds tools:call.
    assert.equal(approvals.length, 2, JSON.stringify(report.authorize_urls));
    const scopes = (a) => (a.url.searchParams.get('scope') ?? '').split(' ');
    assert.ok(scopes(approvals[0]).includes('tools:read') && !scopes(approvals[0]).includes('tools:call'));
    assert.ok(scopes(approvals[1]).includes('tools:call'));
    for (const { url } of approvals) {
      assert.equal(url.searchParams.get('resource'), gateway.resource, 'RFC 8707: the gateway is the resource');
    }
    assert.ok(approvals[0].consent.includes(`${HOST_NAME} wants to act for you`), approvals[0].consent);

    assert.ok(report.tools.includes('echo'), report.tools.join(' '));
    assert.equal(report.echo.is_error, false, JSON.stringify(report.echo));
    assert.ok(report.echo.text.join(' ').includes(MESSAGE), JSON.stringify(report.echo));
    assert.equal(report.traffic.filter((r) => r.url === gateway.resource && r.status === 403).length, 1, traffic.join('\n'));

    // The upstream got the gateway's key on every request and never the agent's token.
    assert.ok(keyCheck.requests.length >= 3, `${keyCheck.requests.length} requests reached the upstream`);
    for (const r of keyCheck.requests) {
      assert.equal(r.headers['x-api-key'], API_KEY, `${r.method} ${r.url}`);
      assert.equal(r.headers.authorization, undefined, `no token passthrough: ${r.method} ${r.url}`);
    }
    assert.ok(!gateway.logs.includes(API_KEY), 'the upstream key is not logged');
  });
});
