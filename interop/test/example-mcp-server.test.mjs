// Interop: the MCP TypeScript SDK (@modelcontextprotocol/sdk) as a real MCP host against the
// example MCP server (examples/mcp-server: rmcp behind mandate-resource, run as its own binary)
// and a real `mandate serve`. Nothing here is the SDK's own server: the 401 and 403 challenges,
// the RFC 9728 metadata and the tools are the example's.
//
//   * a person's agent: the SDK gets 401 with `resource_metadata` and `scope="tools:read"`, reads
//     the metadata, then mandate's RFC 8414 metadata, registers (RFC 7591), and sends alice to
//     mandate; Chromium (playwright-core) signs her in and allows; the SDK redeems the code, lists
//     the tools and calls `whoami`. `echo` needs tools:call: the example answers 403
//     insufficient_scope naming both scopes, the SDK re-authorizes for them, alice allows again
//     (already signed in), and `echo` answers.
//   * an agent acting for itself: the SDK's ClientCredentialsProvider (client_secret_basic) with
//     both scopes calls both tools; one with tools:read only gets 403 for `echo`, and the SDK stops
//     after one more try.
//
// The Python SDK meets the same server in example-mcp-server-python.test.mjs.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as jose from 'jose';
import { UnauthorizedError, discoverAuthorizationServerMetadata } from '@modelcontextprotocol/sdk/client/auth.js';
import { ClientCredentialsProvider } from '@modelcontextprotocol/sdk/client/auth-extensions.js';
import { StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { approveInChromium, launchChromium, startCallbackServer } from '../lib/chromium.mjs';
import { EXAMPLE_NAME, startMandateWithExample } from '../lib/example-mcp.mjs';
import { HostProvider, mcpClient, mcpTransport, recordingFetch } from '../lib/mcp.mjs';

// DEVELOPMENT FIXTURES for a throwaway server: not secrets.
const ALICE = { username: 'alice', password: 'interop-alice-password-0123', email: 'alice@example.com' };
const CALLER = { client_id: 'interop-caller', client_secret: 'interop-caller-secret-0123456789abcdefghij' };
const READER = { client_id: 'interop-reader', client_secret: 'interop-reader-secret-0123456789abcdefghij' };
const HOST_NAME = 'Interop MCP host (TypeScript SDK)';

/** An OAuthClientProvider as an interactive host keeps one, in memory; authorization URLs are collected. */
const sorted = (s) => (s ?? '').split(' ').filter(Boolean).sort();

describe('MCP TypeScript SDK → the example MCP server → mandate', () => {
  let env;
  let as;
  let browser;
  let cb;

  before(async () => {
    cb = await startCallbackServer();
    env = await startMandateWithExample({
      users: [ALICE],
      registration: { dynamic: true },
      clients: [
        { ...CALLER, grant_types: ['client_credentials'], token_endpoint_auth_method: 'client_secret_basic', scopes: ['tools:read', 'tools:call'] },
        { ...READER, grant_types: ['client_credentials'], token_endpoint_auth_method: 'client_secret_basic', scopes: ['tools:read'] },
      ],
    });
    as = await discoverAuthorizationServerMetadata(env.server.issuer);
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await env?.stop();
    await cb?.close();
  });
  const it = (name, fn) =>
    test(name, { timeout: 120_000 }, async (t) => {
      try {
        await fn(t);
      } catch (e) {
        env?.dumpLogs(t.name);
        throw e;
      }
    });

  /** What the example's `whoami` says about the token the SDK presented. */
  async function whoami(client) {
    const result = await client.callTool({ name: 'whoami', arguments: {} });
    assert.equal(result.isError, false);
    assert.deepEqual(JSON.parse(result.content[0].text), result.structuredContent, 'text and structured content agree');
    return result.structuredContent;
  }

  /** The example never logs a token it was given. */
  function assertNotLogged(...tokens) {
    for (const t of tokens) assert.ok(!env.mcp.logs.includes(t), 'an access token appears in the example server log');
  }

  it('a person: 401 → RFC 9728 → registration → alice allows in Chromium → tools; echo → 403 → step-up → echo', async () => {
    const { mcp, server } = env;
    const provider = new HostProvider({
      redirectUrl: cb.redirectUri,
      clientMetadata: {
        client_name: HOST_NAME,
        redirect_uris: [cb.redirectUri],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'none',
        application_type: 'native',
      },
    });
    const rec = recordingFetch();
    const transport = mcpTransport(mcp, provider, rec.fetchFn);
    const refused = mcpClient();
    const client = mcpClient();
    const context = await browser.newContext();
    try {
      // No token: the example's challenge starts discovery, and the SDK wants a person.
      await assert.rejects(refused.connect(transport), UnauthorizedError);
      assert.deepEqual(
        rec.calls.map((c) => `${c.method} ${c.url} ${c.status}`),
        [
          `POST ${mcp.resource} 401`,
          `GET ${mcp.metadataUrl} 200`,
          `GET ${server.issuer}/.well-known/oauth-authorization-server 200`,
          `POST ${as.registration_endpoint} 201`,
        ],
      );
      const client_id = provider.clientInformation().client_id;
      assert.match(client_id, /^dcr_/);

      // The challenge's scope (tools:read), not every scope the metadata lists (SEP-835).
      const [first] = provider.authorizationUrls;
      assert.equal(`${first.origin}${first.pathname}`, as.authorization_endpoint);
      assert.equal(first.searchParams.get('scope'), 'tools:read');
      assert.equal(first.searchParams.get('resource'), mcp.resource, 'RFC 8707: the metadata resource');
      assert.equal(first.searchParams.get('code_challenge_method'), 'S256');

      const approved = await approveInChromium(context, first, { user: ALICE, redirectUri: cb.redirectUri });
      assert.equal(approved.signedIn, true);
      assert.ok(approved.consent.includes(`${HOST_NAME} wants to act for you`), approved.consent);
      assert.match(approved.consent, new RegExp(EXAMPLE_NAME), 'the consent page names the MCP server');
      assert.match(approved.consent, /tools:read/);
      assert.doesNotMatch(approved.consent, /tools:call/);
      assert.equal(approved.callback.searchParams.get('state'), provider.lastState);
      assert.equal(approved.callback.searchParams.get('iss'), server.issuer, 'RFC 9207');
      await transport.finishAuth(approved.callback.searchParams.get('code'));
      const firstToken = provider.tokens().access_token;
      const claims = jose.decodeJwt(firstToken);
      assert.equal(claims.aud, mcp.resource);
      assert.deepEqual(sorted(claims.scope), ['tools:read']);

      // Connected again with the token: initialize, the tool list, whoami.
      const connected = mcpTransport(mcp, provider, rec.fetchFn);
      await client.connect(connected);
      const { tools } = await client.listTools();
      assert.deepEqual(tools.map((t) => t.name), ['whoami', 'echo']);
      assert.ok(tools.find((t) => t.name === 'whoami').outputSchema, 'whoami declares its output');
      const me = await whoami(client);
      assert.deepEqual(me, {
        subject: claims.sub,
        client_id,
        scopes: ['tools:read'],
        delegation_chain: [],
        expires_at: claims.exp,
        jti: claims.jti,
      });

      // echo needs tools:call: the example's 403 names both scopes; the SDK re-authorizes for
      // them and asks for a person again.
      const before = rec.calls.length;
      await assert.rejects(client.callTool({ name: 'echo', arguments: { text: 'hello' } }), UnauthorizedError);
      assert.ok(rec.calls.slice(before).some((c) => c.status === 403), 'the example answered 403');
      assert.equal(provider.authorizationUrls.length, 2);
      const second = provider.authorizationUrls[1];
      assert.deepEqual(sorted(second.searchParams.get('scope')), ['tools:call', 'tools:read']);
      assert.equal(second.searchParams.get('client_id'), client_id, 'the same registration');

      const again = await approveInChromium(context, second, { user: ALICE, redirectUri: cb.redirectUri });
      assert.equal(again.signedIn, false, 'alice is still signed in at mandate');
      assert.match(again.consent, /tools:call/);
      await connected.finishAuth(again.callback.searchParams.get('code'));
      const stepped = jose.decodeJwt(provider.tokens().access_token);
      assert.deepEqual(sorted(stepped.scope), ['tools:call', 'tools:read']);
      assert.equal(stepped.sub, claims.sub);

      const echoed = await client.callTool({ name: 'echo', arguments: { text: 'hello' } });
      assert.deepEqual(echoed.content, [{ type: 'text', text: 'hello' }]);
      assert.equal((await whoami(client)).jti, stepped.jti, 'the stepped-up token is the one in use');
      assertNotLogged(firstToken, provider.tokens().access_token);
    } finally {
      await refused.close();
      await client.close();
      await context.close();
    }
  });

  it('an agent (client credentials, the SDK\'s ClientCredentialsProvider): whoami and echo with both scopes', async () => {
    const { mcp, server } = env;
    const rec = recordingFetch();
    const provider = new ClientCredentialsProvider({
      clientId: CALLER.client_id,
      clientSecret: CALLER.client_secret,
      expectedIssuer: server.issuer,
      scope: 'tools:read tools:call',
    });
    const client = mcpClient();
    try {
      await client.connect(mcpTransport(mcp, provider, rec.fetchFn));
      const me = await whoami(client);
      assert.equal(me.subject, CALLER.client_id, 'an agent acting for itself is its own subject');
      assert.equal(me.client_id, CALLER.client_id);
      assert.deepEqual(me.scopes, ['tools:call', 'tools:read']);
      const echoed = await client.callTool({ name: 'echo', arguments: { text: 'from an agent' } });
      assert.deepEqual(echoed.content, [{ type: 'text', text: 'from an agent' }]);
      const [tokenRequest, ...more] = rec.tokenRequests(as.token_endpoint);
      assert.equal(more.length, 0, 'one token for everything');
      assert.equal(tokenRequest.form.get('resource'), mcp.resource);
      assertNotLogged(provider.tokens().access_token);
    } finally {
      await client.close();
    }
  });

  it('an agent with tools:read only: echo is refused with 403 insufficient_scope, and the SDK does not loop', async () => {
    const { mcp, server } = env;
    const rec = recordingFetch();
    const provider = new ClientCredentialsProvider({
      clientId: READER.client_id,
      clientSecret: READER.client_secret,
      expectedIssuer: server.issuer,
      scope: 'tools:read',
    });
    const client = mcpClient();
    try {
      await client.connect(mcpTransport(mcp, provider, rec.fetchFn));
      assert.deepEqual((await whoami(client)).scopes, ['tools:read']);
      // The SDK's client-credentials provider asks for its configured scope again (it does not
      // take the challenge's), gets the same token's worth, and stops at the second 403.
      const refusal = await client.callTool({ name: 'echo', arguments: { text: 'no' } }).then(
        () => assert.fail('echo must be refused'),
        (e) => e,
      );
      assert.ok(refusal instanceof StreamableHTTPError, String(refusal));
      assert.equal(refusal.code, 403);
      assert.equal(rec.calls.filter((c) => c.url === mcp.resource && c.status === 403).length, 2);
      // Asked by hand, the example says what is missing, in one challenge.
      const res = await fetch(mcp.resource, {
        method: 'POST',
        headers: { authorization: `Bearer ${provider.tokens().access_token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { text: 'no' } } }),
      });
      assert.equal(res.status, 403);
      const challenge = res.headers.get('www-authenticate');
      assert.match(challenge, /error="insufficient_scope"/);
      assert.match(challenge, /scope="tools:call tools:read"/);
      assert.match(challenge, new RegExp(`resource_metadata="${mcp.metadataUrl}"`));
    } finally {
      await client.close();
    }
  });
});
