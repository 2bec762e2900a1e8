// Interop: the official MCP Python SDK (PyPI `mcp`, pinned in interop/python/requirements.txt and
// installed into interop/.venv by scripts/install-test-deps.sh) as a real MCP host against the
// example MCP server (examples/mcp-server) and a real `mandate serve`.
//
// interop/python/mcp_host.py is the host: its OAuthClientProvider meets the example's 401 (the
// SDK probes `server/discover` first), reads the RFC 9728 metadata and mandate's metadata,
// registers (RFC 7591), and hands the authorization URL to "the browser": it prints it, and this
// test has Chromium (playwright-core) sign alice in and allow, which sends the browser to the
// host's own loopback listener with the code. The host lists the tools, calls `whoami`, then
// `echo`, which needs tools:call: the example answers 403 insufficient_scope, the SDK steps up,
// alice allows again (still signed in), and `echo` answers. The host reports what it saw.
// $MCP_PYTHON overrides the interpreter (default interop/.venv/bin/python).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { approveInChromium, launchChromium } from '../lib/chromium.mjs';
import { EXAMPLE_NAME, startMandateWithExample } from '../lib/example-mcp.mjs';
import { runPythonHost } from '../lib/python-host.mjs';

// DEVELOPMENT FIXTURES for a throwaway server: not secrets.
const ALICE = { username: 'alice', password: 'interop-alice-password-0123', email: 'alice@example.com' };
const HOST_NAME = 'Interop MCP host (Python SDK)';
const sorted = (s) => (s ?? '').split(' ').filter(Boolean).sort();

describe('MCP Python SDK → the example MCP server → mandate', () => {
  let env;
  let browser;

  before(async () => {
    env = await startMandateWithExample({ users: [ALICE], registration: { dynamic: true } });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await env?.stop();
  });

  test('401 → discovery → registration → alice allows in Chromium → tools and whoami; echo → 403 → step-up → echo', { timeout: 120_000 }, async (t) => {
    const { mcp, server } = env;
    const context = await browser.newContext();
    const approvals = [];
    let report;
    try {
      report = await runPythonHost(mcp.resource, HOST_NAME, async (url) => {
        // The host's own loopback redirect URI, as it registered it.
        const redirectUri = url.searchParams.get('redirect_uri');
        assert.match(redirectUri, /^http:\/\/127\.0\.0\.1:\d+\/callback$/);
        approvals.push({ url, ...(await approveInChromium(context, url, { user: ALICE, redirectUri })) });
      });
    } catch (e) {
      env.dumpLogs(t.name);
      throw e;
    } finally {
      await context.close();
    }

    // Discovery as MCP 2026-07-28 asks: the challenge's resource_metadata, then mandate's
    // RFC 8414 metadata; then registration and the code redemption.
    const traffic = report.traffic.map((r) => `${r.method} ${r.url} ${r.status}`);
    assert.deepEqual(traffic.slice(0, 5), [
      `POST ${mcp.resource} 401`,
      `GET ${mcp.metadataUrl} 200`,
      `GET ${server.issuer}/.well-known/oauth-authorization-server 200`,
      `POST ${server.issuer}/register 201`,
      `POST ${server.issuer}/token 200`,
    ]);
    assert.match(report.client_id, /^dcr_/);

    // Two authorizations: the challenged tools:read first, then the step-up.
    assert.equal(report.authorize_urls.length, 2, JSON.stringify(report.authorize_urls));
    const [first, second] = approvals;
    for (const { url } of approvals) {
      assert.equal(`${url.origin}${url.pathname}`, `${server.issuer}/authorize`);
      assert.equal(url.searchParams.get('client_id'), report.client_id);
      assert.equal(url.searchParams.get('resource'), mcp.resource, 'RFC 8707');
      assert.equal(url.searchParams.get('code_challenge_method'), 'S256');
      assert.equal(url.searchParams.get('redirect_uri'), report.redirect_uri);
    }
    const firstScopes = sorted(first.url.searchParams.get('scope'));
    assert.ok(firstScopes.includes('tools:read') && !firstScopes.includes('tools:call'), firstScopes.join(' '));
    const secondScopes = sorted(second.url.searchParams.get('scope'));
    assert.ok(secondScopes.includes('tools:read') && secondScopes.includes('tools:call'), secondScopes.join(' '));
    assert.equal(first.signedIn, true);
    assert.equal(second.signedIn, false, 'alice is still signed in at mandate');
    assert.ok(first.consent.includes(`${HOST_NAME} wants to act for you`), first.consent);
    assert.ok(first.consent.includes(EXAMPLE_NAME), 'the consent page names the MCP server');
    assert.equal(first.callback.searchParams.get('iss'), server.issuer, 'RFC 9207 (the SDK checks it)');

    // The SDK's first request is the 2026-07-28 `server/discover` probe; the example (rmcp)
    // answers it once authorized, so the session speaks 2026-07-28 (no initialize handshake).
    assert.equal(report.protocol_version, '2026-07-28');
    // The SDK adds offline_access when mandate offers it (SEP-2207) and gets a refresh token;
    // the access token carries only the MCP server's scopes.
    assert.ok(firstScopes.includes('offline_access'), firstScopes.join(' '));
    assert.equal(report.has_refresh_token, true);

    // What the tools said.
    assert.deepEqual(report.tools, ['whoami', 'echo']);
    const me = report.whoami.structured;
    assert.equal(report.whoami.is_error, false);
    assert.equal(me.client_id, report.client_id);
    assert.notEqual(me.subject, report.client_id, 'the token is for alice, not the host');
    assert.deepEqual(me.scopes, ['tools:read']);
    assert.deepEqual(me.delegation_chain, []);
    assert.deepEqual(report.echo, { is_error: false, text: ['hello from the Python SDK'], structured: null });
    const after = report.whoami_after_echo.structured;
    assert.equal(after.subject, me.subject, 'the same person after the step-up');
    assert.deepEqual(after.scopes, ['tools:call', 'tools:read']);
    assert.notEqual(after.jti, me.jti, 'a new token');

    // The example said 403 once (echo with tools:read), and nothing failed after the step-up.
    const forbidden = report.traffic.filter((r) => r.url === mcp.resource && r.status === 403);
    assert.equal(forbidden.length, 1, traffic.join('\n'));
    const unauthorized = report.traffic.filter((r) => r.url === mcp.resource && r.status === 401);
    assert.equal(unauthorized.length, 1, traffic.join('\n'));
  });
});
