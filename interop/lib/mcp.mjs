// The MCP side shared by the MCP TypeScript SDK tests: a tiny MCP server built from the SDK's own
// pieces acting as the OAuth protected resource in front of mandate, a fetch that records what the
// SDK asks for, and the SDK client calls the tests make.

import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import * as jose from 'jose';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';

/** The scopes the MCP server lists in its RFC 9728 metadata (and mandate offers for it). */
export const MCP_SCOPES = ['tools:read', 'tools:call'];

/**
 * A tiny MCP server (the SDK's own pieces) acting as the OAuth protected resource. `/mcp` answers
 * 401 with `WWW-Authenticate: Bearer resource_metadata=...` until it gets a bearer token that
 * jose accepts (typ at+jwt, iss = mandate, aud = this resource, signature from mandate's
 * /jwks.json); the tool `whoami` then echoes the token's subject, client and scopes. It also
 * serves the RFC 9728 metadata and, at /client-jwks.json, a client's JWK Set for mandate to fetch
 * (jwks_uri). Set `state.issuer` once mandate runs.
 */
export async function startMcpServer({ scopes = MCP_SCOPES } = {}) {
  const state = { issuer: undefined, clientJwks: { keys: [] }, accepted: [], rejected: 0 };
  let jwks; // mandate's keys, once the issuer is known
  const srv = createServer((req, res) => {
    handle(req, res).catch((e) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(String(e?.stack ?? e));
    });
  });
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${srv.address().port}`;
  const resource = `${base}/mcp`;
  const metadataUrl = `${base}/.well-known/oauth-protected-resource/mcp`;

  const json = (res, status, body, headers = {}) => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(JSON.stringify(body));
  };
  const challenge = (res, error) => {
    const params = [`resource_metadata="${metadataUrl}"`];
    if (error) params.push(`error="${error}"`);
    json(res, 401, { error: error ?? 'unauthorized' }, { 'www-authenticate': `Bearer ${params.join(', ')}` });
  };

  async function handle(req, res) {
    const { pathname } = new URL(req.url, base);
    if (pathname === '/.well-known/oauth-protected-resource/mcp' || pathname === '/.well-known/oauth-protected-resource') {
      return json(res, 200, {
        resource,
        authorization_servers: [state.issuer],
        scopes_supported: scopes,
        bearer_methods_supported: ['header'],
      });
    }
    if (pathname === '/client-jwks.json') return json(res, 200, state.clientJwks);
    if (pathname !== '/mcp') return json(res, 404, { error: 'not_found' });

    const match = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '');
    if (!match) return challenge(res);
    let payload;
    try {
      jwks ??= jose.createRemoteJWKSet(new URL(`${state.issuer}/jwks.json`));
      ({ payload } = await jose.jwtVerify(match[1], jwks, {
        typ: 'at+jwt',
        issuer: state.issuer,
        audience: resource,
        requiredClaims: ['sub', 'client_id', 'exp', 'jti'],
      }));
    } catch {
      state.rejected += 1;
      return challenge(res, 'invalid_token');
    }
    state.accepted.push(payload);
    req.auth = {
      token: match[1],
      clientId: payload.client_id,
      scopes: (payload.scope ?? '').split(' ').filter(Boolean),
      expiresAt: payload.exp,
      resource: new URL(resource),
      extra: { sub: payload.sub },
    };

    let body;
    if (req.method === 'POST') {
      const chunks = [];
      for await (const c of req) chunks.push(c);
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    }
    // Stateless: one McpServer and transport per request.
    const mcp = new McpServer({ name: 'mandate-interop-mcp', version: '1.0.0' });
    mcp.registerTool('whoami', { description: 'The subject, client and scopes of the bearer token' }, async (extra) => ({
      content: [
        {
          type: 'text',
          text: JSON.stringify({ sub: extra.authInfo?.extra?.sub, client_id: extra.authInfo?.clientId, scopes: extra.authInfo?.scopes }),
        },
      ],
    }));
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on('close', () => {
      transport.close();
      mcp.close();
    });
    await mcp.connect(transport);
    await transport.handleRequest(req, res, body);
  }

  const close = () =>
    new Promise((r) => {
      srv.close(r);
      srv.closeAllConnections(); // kept-alive client connections would hold close() for seconds
    });
  return { state, base, resource, metadataUrl, close };
}

/**
 * A fetch that records what the SDK asks for (method, URL, headers, form or JSON body) and gets
 * back (status; the body too for form and JSON requests).
 */
export function recordingFetch() {
  const calls = [];
  const fetchFn = async (input, init = {}) => {
    const url = String(input instanceof Request ? input.url : input);
    const headers = new Headers(init.headers);
    const entry = { method: (init.method ?? 'GET').toUpperCase(), url, headers, form: undefined, json: undefined, status: undefined, body: undefined };
    if (init.body instanceof URLSearchParams) entry.form = new URLSearchParams(init.body);
    if (typeof init.body === 'string' && /^application\/json\b/i.test(headers.get('content-type') ?? '')) entry.json = JSON.parse(init.body);
    calls.push(entry);
    const response = await fetch(input, init);
    entry.status = response.status;
    if (entry.form || entry.json) entry.body = await response.clone().text();
    return response;
  };
  return {
    calls,
    fetchFn,
    tokenRequests: (tokenEndpoint) => calls.filter((c) => c.method === 'POST' && c.url === tokenEndpoint),
    requestsTo: (endpoint) => calls.filter((c) => c.url === endpoint),
  };
}

/** A transport to the MCP server with `authProvider`. */
export function mcpTransport(mcp, authProvider, fetchFn) {
  return new StreamableHTTPClientTransport(new URL(mcp.resource), { authProvider, fetch: fetchFn });
}

/** A fresh SDK Client. */
export function mcpClient() {
  return new Client({ name: 'mandate-interop-sdk-client', version: '1.0.0' });
}

/** Connects the SDK's Client through the Streamable HTTP transport with `authProvider`. */
export async function connect(mcp, authProvider, fetchFn) {
  const client = mcpClient();
  await client.connect(mcpTransport(mcp, authProvider, fetchFn));
  return client;
}

/** Calls the MCP server's `whoami` tool: { sub, client_id, scopes } of the token it got. */
export async function whoami(client) {
  const result = await client.callTool({ name: 'whoami', arguments: {} });
  return JSON.parse(result.content[0].text);
}

/**
 * An MCP host's OAuth state for the TypeScript SDK's OAuthClientProvider, in memory: what the SDK
 * saves it reads back; the authorization URLs it is sent to are kept for the test to play the
 * person; `clientMetadataUrl` makes the SDK use a client ID metadata document.
 */
export class HostProvider {
  constructor({ redirectUrl, clientMetadata, clientMetadataUrl }) {
    this._redirectUrl = redirectUrl;
    this._clientMetadata = clientMetadata;
    if (clientMetadataUrl) this.clientMetadataUrl = clientMetadataUrl;
    this._clientInformation = undefined;
    this._tokens = undefined;
    this._codeVerifier = undefined;
    this.lastState = undefined;
    this.authorizationUrls = [];
    this.invalidated = [];
  }
  get redirectUrl() {
    return this._redirectUrl;
  }
  get clientMetadata() {
    return this._clientMetadata;
  }
  state() {
    this.lastState = randomBytes(16).toString('base64url');
    return this.lastState;
  }
  clientInformation() {
    return this._clientInformation;
  }
  saveClientInformation(info) {
    this._clientInformation = info;
  }
  tokens() {
    return this._tokens;
  }
  saveTokens(tokens) {
    this._tokens = tokens;
  }
  redirectToAuthorization(url) {
    this.authorizationUrls.push(new URL(url));
  }
  saveCodeVerifier(v) {
    this._codeVerifier = v;
  }
  codeVerifier() {
    if (!this._codeVerifier) throw new Error('no code verifier saved');
    return this._codeVerifier;
  }
  invalidateCredentials(scope) {
    this.invalidated.push(scope);
    if (scope === 'all' || scope === 'client') this._clientInformation = undefined;
    if (scope === 'all' || scope === 'tokens') this._tokens = undefined;
    if (scope === 'all' || scope === 'verifier') this._codeVerifier = undefined;
  }
}
