// Interop: the official MCP TypeScript SDK (@modelcontextprotocol/sdk) as an interactive MCP host
// getting a token from a real `mandate serve` for a person (alice, who signs in and approves on
// mandate's own pages): the SDK's `auth()` with an OAuthClientProvider, PKCE S256, `resource` =
// the MCP server (RFC 8707), through its two ways of becoming a client of an authorization server
// it has never met:
//
//   (a) dynamic client registration (RFC 7591): `[registration] dynamic = true` puts
//       registration_endpoint in mandate's metadata and the SDK POSTs its client metadata there
//       (a public native app with a loopback redirect URI); the same public metadata registered
//       again gets the same client_id (mandate deduplicates identical public registrations);
//   (b) client ID metadata documents: mandate advertises client_id_metadata_document_supported
//       and the provider has a `clientMetadataUrl`, so the SDK uses that URL as its client_id and
//       mandate fetches the document from it. The SDK only takes an https URL with a path, so the
//       document is served by node:https on 127.0.0.1 with a certificate from a throwaway CA
//       (lib/tls.mjs) that mandate trusts through SSL_CERT_FILE; loopback fetches need
//       `[registration] allow_private_networks = true`.
//
// The front channel: the SDK hands the authorization URL to `provider.redirectToAuthorization`;
// the cookie-keeping agent (lib/agent.mjs) follows it, signs in, approves, and the test takes the
// code from the redirect to the provider's redirect URI, checking `state` and the RFC 9207 `iss`
// there itself (the SDK's auth() takes only the code: it checks neither). The SDK then redeems
// the code (`transport.finishAuth(code)` or `auth(provider, { serverUrl, authorizationCode })`),
// the SDK Client calls the MCP server's tool with the token, and jose verifies the token.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer as createHttpsServer } from 'node:https';
import * as jose from 'jose';
import { UnauthorizedError, auth, discoverAuthorizationServerMetadata } from '@modelcontextprotocol/sdk/client/auth.js';
import { InvalidClientMetadataError } from '@modelcontextprotocol/sdk/server/auth/errors.js';
import { freePort, startMandate, withLogs } from '../lib/mandate.mjs';
import { UserAgent, textById } from '../lib/agent.mjs';
import { HostProvider, MCP_SCOPES, connect, mcpClient, mcpTransport, recordingFetch, startMcpServer, whoami } from '../lib/mcp.mjs';
import { testCertificates } from '../lib/tls.mjs';

// DEVELOPMENT FIXTURES for a throwaway server: not secrets.
const ALICE = { username: 'alice', password: 'interop-alice-password-0123', email: 'alice@example.com' };
const TTL = 300;
const CIMD_NAME = 'Interop MCP host (metadata document)';
const DCR_NAME = 'Interop MCP host (registered)';

const sorted = (s) => (s ?? '').split(' ').filter(Boolean).sort();

/**
 * An OAuthClientProvider as an interactive MCP host keeps one, in memory: what the SDK saves it
 * reads back unchanged; the authorization URLs it is told to open are collected for the test.
 */
/**
 * A web site publishing client ID metadata documents over https on 127.0.0.1, counting every
 * request. `documents` maps a path to a function of the document's own URL returning the body.
 */
async function startDocumentSite(tls, documents) {
  const requests = [];
  const srv = createHttpsServer({ key: tls.key, cert: tls.cert }, (req, res) => {
    const url = `${base}${req.url}`;
    requests.push({ method: req.method, url, accept: req.headers.accept, userAgent: req.headers['user-agent'] });
    const doc = documents[new URL(url).pathname];
    if (!doc || req.method !== 'GET') {
      res.writeHead(404, { 'content-type': 'application/json' });
      return res.end('{"error":"not_found"}');
    }
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=300' });
    res.end(JSON.stringify(doc(url)));
  });
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const base = `https://127.0.0.1:${srv.address().port}`;
  return {
    base,
    requests,
    hits: (path) => requests.filter((r) => new URL(r.url).pathname === path).length,
    close: () =>
      new Promise((r) => {
        srv.close(r);
        srv.closeAllConnections(); // mandate's fetcher keeps its connection alive
      }),
  };
}

describe('MCP TypeScript SDK (authorization code for a person) against mandate', () => {
  let server;
  let mcp;
  let site;
  let tls;
  let as; // mandate's RFC 8414 metadata, as the SDK reads it
  let aliceSub; // the subject of alice's first token, to compare with later ones

  const CIMD_PATH = '/clients/mcp-host.json';
  /** The document: a native public client; its loopback redirect URI has no port (RFC 8252 §7.3). */
  const cimdDocument = (url) => ({
    client_id: url,
    client_name: CIMD_NAME,
    redirect_uris: ['http://127.0.0.1/callback'],
    token_endpoint_auth_method: 'none',
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    application_type: 'native',
  });

  before(async () => {
    tls = testCertificates();
    mcp = await startMcpServer();
    site = await startDocumentSite(tls, { [CIMD_PATH]: cimdDocument });
    server = await startMandate({
      resources: [{ uri: mcp.resource, name: 'Interop MCP server (SDK)', scopes: MCP_SCOPES }],
      users: [ALICE],
      clients: [],
      // Dynamic registration on; metadata documents are on by default; the document site is on
      // loopback, and mandate trusts its CA.
      registration: { dynamic: true, allow_private_networks: true },
      env: { SSL_CERT_FILE: tls.caFile },
    });
    mcp.state.issuer = server.issuer;
    as = await discoverAuthorizationServerMetadata(server.issuer);
  });
  after(async () => {
    await server?.stop();
    await mcp?.close();
    await site?.close();
    tls?.remove();
  });
  const it = (name, fn) => test(name, withLogs(() => server, fn));

  /** Checks an access token as a resource server would, with jose and mandate's /jwks.json. */
  async function verifyToken(token, { client_id, scope }) {
    const jwks = jose.createRemoteJWKSet(new URL(as.jwks_uri));
    const { payload } = await jose.jwtVerify(token, jwks, {
      typ: 'at+jwt',
      issuer: server.issuer,
      audience: mcp.resource,
      requiredClaims: ['iss', 'sub', 'aud', 'client_id', 'jti', 'iat', 'exp'],
    });
    assert.deepEqual([payload.aud].flat(), [mcp.resource]);
    assert.equal(payload.client_id, client_id);
    assert.equal(typeof payload.sub, 'string');
    assert.notEqual(payload.sub, client_id, 'the token is for the person, not the client');
    aliceSub ??= payload.sub;
    assert.equal(payload.sub, aliceSub, 'the same person every time');
    assert.equal(payload.exp - payload.iat, TTL);
    assert.deepEqual(sorted(payload.scope), sorted(scope));
    return payload;
  }

  /**
   * The authorization request the SDK built: code + PKCE S256 for `client_id`, the provider's
   * state and redirect URI, `resource` = the MCP server verbatim, `scope`.
   */
  function assertAuthorizationUrl(url, provider, { client_id, scope }) {
    const p = url.searchParams;
    assert.equal(`${url.origin}${url.pathname}`, as.authorization_endpoint);
    assert.equal(p.get('response_type'), 'code');
    assert.equal(p.get('client_id'), client_id);
    assert.equal(p.get('code_challenge_method'), 'S256');
    assert.match(p.get('code_challenge'), /^[A-Za-z0-9_-]{43}$/);
    assert.equal(p.get('redirect_uri'), provider.redirectUrl);
    assert.equal(p.get('state'), provider.lastState);
    assert.equal(p.get('resource'), mcp.resource, 'RFC 8707 resource = the PRM resource, verbatim');
    assert.deepEqual(sorted(p.get('scope')), sorted(scope));
  }

  /**
   * Alice signs in and approves on mandate's pages; returns the code from the redirect to the
   * provider's redirect URI (after checking state and iss there) and the consent page.
   */
  async function frontChannel(url, provider) {
    const agent = new UserAgent(server.issuer);
    const { callback, pages, shown } = await agent.authorize(url, ALICE);
    assert.deepEqual(pages, ['login', 'consent']);
    assert.equal(`${callback.origin}${callback.pathname}`, provider.redirectUrl, 'redirected to the provider\'s redirect URI');
    const params = callback.searchParams;
    assert.equal(params.get('error'), null, callback.href);
    assert.equal(params.get('state'), provider.lastState, 'state comes back');
    // RFC 9207: mandate says it sends iss; the SDK's auth() takes only the code, so this test checks it.
    assert.equal(as.authorization_response_iss_parameter_supported, true);
    assert.equal(params.get('iss'), server.issuer);
    const code = params.get('code');
    assert.ok(code, callback.href);
    return { code, consent: shown.find((p) => p.kind === 'consent') };
  }

  /** The code redemption the SDK sent: a public client (client_id, no secret), PKCE verifier, resource. */
  function assertCodeRequest(rec, provider, { client_id }) {
    const [req, ...more] = rec.tokenRequests(as.token_endpoint);
    assert.equal(more.length, 0, 'one token request');
    assert.equal(req.status, 200, req.body);
    assert.equal(req.form.get('grant_type'), 'authorization_code');
    assert.equal(req.form.get('client_id'), client_id);
    const verifier = req.form.get('code_verifier');
    assert.equal(verifier, provider.codeVerifier());
    const challenge = createHash('sha256').update(verifier).digest('base64url');
    assert.equal(challenge, provider.authorizationUrls.at(-1).searchParams.get('code_challenge'), 'S256 of the verifier');
    assert.equal(req.form.get('redirect_uri'), provider.redirectUrl);
    assert.equal(req.form.get('resource'), mcp.resource);
    assert.equal(req.form.get('client_secret'), null);
    assert.equal(req.headers.get('authorization'), null, 'token_endpoint_auth_method none');
    return req;
  }

  it('the SDK discovers mandate: registration_endpoint and client_id_metadata_document_supported are listed', async () => {
    assert.ok(as, 'discoverAuthorizationServerMetadata found nothing');
    assert.equal(as.issuer, server.issuer);
    assert.equal(as.registration_endpoint, `${server.issuer}/register`);
    assert.equal(as.client_id_metadata_document_supported, true);
    assert.ok(as.response_types_supported.includes('code'));
    assert.ok(as.code_challenge_methods_supported.includes('S256'));
    assert.ok(as.token_endpoint_auth_methods_supported.includes('none'), 'public clients');
  });

  it('(a) dynamic registration: 401 → RFC 9728 → SDK registers (RFC 7591) → alice approves → finishAuth → tool call', async () => {
    const redirectUrl = `http://127.0.0.1:${await freePort()}/callback`;
    const clientMetadata = {
      client_name: DCR_NAME,
      redirect_uris: [redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
      application_type: 'native',
    };
    const provider = new HostProvider({ redirectUrl, clientMetadata });
    const rec = recordingFetch();

    // The MCP request without a token: 401, discovery, registration, then the SDK wants a person.
    const transport = mcpTransport(mcp, provider, rec.fetchFn);
    const first = mcpClient();
    await assert.rejects(first.connect(transport), UnauthorizedError);
    await first.close();
    const urls = rec.calls.map((c) => `${c.method} ${c.url} ${c.status}`);
    assert.deepEqual(urls, [
      `POST ${mcp.resource} 401`,
      `GET ${mcp.metadataUrl} 200`,
      `GET ${server.issuer}/.well-known/oauth-authorization-server 200`,
      `POST ${as.registration_endpoint} 201`,
    ]);

    // What the SDK registered: the provider's metadata plus the scope it will ask for (the PRM's
    // scopes_supported, SEP-835).
    const [registration] = rec.requestsTo(as.registration_endpoint);
    assert.equal(registration.headers.get('content-type'), 'application/json');
    assert.deepEqual(registration.json, { ...clientMetadata, scope: MCP_SCOPES.join(' ') });
    const registered = JSON.parse(registration.body);
    assert.match(registered.client_id, /^dcr_/);
    assert.equal(registered.client_secret, undefined, 'a public client gets no secret');
    assert.equal(registered.token_endpoint_auth_method, 'none');
    assert.equal(registered.application_type, 'native');
    assert.deepEqual(registered.redirect_uris, [redirectUrl]);
    const client_id = registered.client_id;
    // The SDK keeps the answer, stamped with the authorization server it came from.
    assert.equal(provider.clientInformation().client_id, client_id);
    assert.equal(provider.clientInformation().issuer, server.issuer);

    assert.equal(provider.authorizationUrls.length, 1);
    const url = provider.authorizationUrls[0];
    assertAuthorizationUrl(url, provider, { client_id, scope: MCP_SCOPES.join(' ') });

    const { code, consent } = await frontChannel(url, provider);
    assert.equal(textById(consent.text, 'client-name'), DCR_NAME);
    assert.equal(textById(consent.text, 'verified-host'), undefined, 'a registered client has no verified web address');

    await transport.finishAuth(code);
    const redeem = assertCodeRequest(rec, provider, { client_id });
    const tokens = provider.tokens();
    assert.equal(tokens.token_type.toLowerCase(), 'bearer');
    assert.equal(tokens.expires_in, TTL);
    assert.equal(tokens.refresh_token, undefined, 'no offline_access asked for');
    assert.equal(JSON.parse(redeem.body).access_token, tokens.access_token);
    const claims = await verifyToken(tokens.access_token, { client_id, scope: MCP_SCOPES.join(' ') });

    // A new connection with the token: no 401, the tool sees alice's token.
    const rec2 = recordingFetch();
    const client = await connect(mcp, provider, rec2.fetchFn);
    try {
      const me = await whoami(client);
      assert.deepEqual({ ...me, scopes: [...me.scopes].sort() }, { sub: claims.sub, client_id, scopes: sorted(claims.scope) });
    } finally {
      await client.close();
    }
    assert.equal(rec2.calls.filter((c) => c.status === 401).length, 0);
    assert.equal(mcp.state.accepted.at(-1).jti, claims.jti, 'the MCP server got this token');
    assert.deepEqual(provider.invalidated, []);
  });

  it('(a) the same public metadata registered again gets the same client_id; other metadata a new one', async () => {
    const redirectUrl = `http://127.0.0.1:${await freePort()}/callback`;
    const clientMetadata = {
      client_name: `${DCR_NAME} again`,
      redirect_uris: [redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
      application_type: 'native',
    };
    // An MCP host that registers on every start: two fresh providers, the same metadata.
    const register = async (metadata) => {
      const provider = new HostProvider({ redirectUrl, clientMetadata: metadata });
      const rec = recordingFetch();
      assert.equal(await auth(provider, { serverUrl: new URL(mcp.resource), fetchFn: rec.fetchFn }), 'REDIRECT');
      const [registration, ...more] = rec.requestsTo(as.registration_endpoint);
      assert.equal(more.length, 0);
      assert.equal(registration.status, 201, registration.body);
      const url = provider.authorizationUrls[0];
      assert.equal(url.searchParams.get('client_id'), provider.clientInformation().client_id);
      return { provider, registration, client_id: provider.clientInformation().client_id };
    };
    const one = await register(clientMetadata);
    const two = await register({ ...clientMetadata });
    assert.deepEqual(two.registration.json, one.registration.json, 'the SDK sent the same body');
    assert.equal(two.client_id, one.client_id, 'identical public registrations share one client');
    const other = await register({ ...clientMetadata, client_name: `${DCR_NAME} (other)` });
    assert.notEqual(other.client_id, one.client_id);

    // The shared client works for the second registrant: alice approves, the SDK redeems the code.
    const { code } = await frontChannel(two.provider.authorizationUrls[0], two.provider);
    assert.equal(await auth(two.provider, { serverUrl: new URL(mcp.resource), authorizationCode: code }), 'AUTHORIZED');
    await verifyToken(two.provider.tokens().access_token, { client_id: one.client_id, scope: MCP_SCOPES.join(' ') });
  });

  it('(b) client ID metadata document: the SDK uses its https URL as client_id; mandate fetches it; consent shows the verified host', async () => {
    const client_id = `${site.base}${CIMD_PATH}`;
    // The document lists http://127.0.0.1/callback; the host listens on an ephemeral port, and
    // mandate matches a native client's loopback redirect URI on any port (RFC 8252 §7.3).
    const redirectUrl = `http://127.0.0.1:${await freePort()}/callback`;
    assert.notEqual(redirectUrl, cimdDocument(client_id).redirect_uris[0]);
    const provider = new HostProvider({
      redirectUrl,
      clientMetadataUrl: client_id,
      clientMetadata: { client_name: CIMD_NAME, redirect_uris: [redirectUrl], token_endpoint_auth_method: 'none' },
    });
    const rec = recordingFetch();
    const hitsBefore = site.hits(CIMD_PATH);

    assert.equal(await auth(provider, { serverUrl: new URL(mcp.resource), fetchFn: rec.fetchFn }), 'REDIRECT');
    // No registration: the URL is the client_id.
    assert.equal(rec.requestsTo(as.registration_endpoint).length, 0);
    assert.deepEqual(provider.clientInformation(), { client_id, issuer: server.issuer });
    assert.equal(site.hits(CIMD_PATH), hitsBefore, 'the SDK itself does not fetch its document');

    assert.equal(provider.authorizationUrls.length, 1);
    const url = provider.authorizationUrls[0];
    assertAuthorizationUrl(url, provider, { client_id, scope: MCP_SCOPES.join(' ') });

    const { code, consent } = await frontChannel(url, provider);
    assert.equal(textById(consent.text, 'client-name'), CIMD_NAME, 'the name from the document');
    const verified = textById(consent.text, 'verified-host');
    assert.ok(verified, 'the consent page shows the verified host');
    assert.match(verified, /\b127\.0\.0\.1\b/);
    assert.equal(textById(consent.text, 'redirect-host'), '127.0.0.1');

    // mandate fetched the document (and no more than once: it is cached), over https.
    assert.equal(site.hits(CIMD_PATH), hitsBefore + 1, JSON.stringify(site.requests));
    const fetched = site.requests.at(-1);
    assert.equal(fetched.method, 'GET');
    assert.match(fetched.userAgent ?? '', /^mandate\//);
    assert.match(fetched.accept ?? '', /application\/json/);

    const rec2 = recordingFetch();
    assert.equal(await auth(provider, { serverUrl: new URL(mcp.resource), authorizationCode: code, fetchFn: rec2.fetchFn }), 'AUTHORIZED');
    assertCodeRequest(rec2, provider, { client_id });
    const tokens = provider.tokens();
    assert.equal(tokens.token_type.toLowerCase(), 'bearer');
    assert.equal(tokens.refresh_token, undefined, 'no offline_access asked for');
    const claims = await verifyToken(tokens.access_token, { client_id, scope: MCP_SCOPES.join(' ') });
    assert.ok(site.hits(CIMD_PATH) <= hitsBefore + 1, 'the token request used the cached document');

    const client = await connect(mcp, provider);
    try {
      const me = await whoami(client);
      assert.deepEqual({ ...me, scopes: [...me.scopes].sort() }, { sub: claims.sub, client_id, scopes: sorted(claims.scope) });
    } finally {
      await client.close();
    }
    assert.equal(mcp.state.accepted.at(-1).jti, claims.jti, 'the MCP server got this token');
    assert.deepEqual(provider.invalidated, []);
  });

  it('(b) offline_access: the SDK adds prompt=consent, gets a refresh token, and refreshes with client_id and resource', async () => {
    const client_id = `${site.base}${CIMD_PATH}`;
    const redirectUrl = `http://127.0.0.1:${await freePort()}/callback`;
    const provider = new HostProvider({
      redirectUrl,
      clientMetadataUrl: client_id,
      clientMetadata: { client_name: CIMD_NAME, redirect_uris: [redirectUrl], token_endpoint_auth_method: 'none' },
    });
    const scope = 'tools:read offline_access';
    assert.equal(await auth(provider, { serverUrl: new URL(mcp.resource), scope }), 'REDIRECT');
    const url = provider.authorizationUrls[0];
    assertAuthorizationUrl(url, provider, { client_id, scope });
    assert.equal(url.searchParams.get('prompt'), 'consent');
    const { code } = await frontChannel(url, provider);
    assert.equal(await auth(provider, { serverUrl: new URL(mcp.resource), authorizationCode: code }), 'AUTHORIZED');
    const first = provider.tokens();
    assert.ok(first.refresh_token, 'offline_access granted: a refresh token');
    // offline_access concerns mandate (the refresh token); the access token for the MCP server,
    // and the response's `scope` (RFC 6749 §5.1: the access token's), carry the resource's scopes.
    assert.equal(first.scope, 'tools:read');
    await verifyToken(first.access_token, { client_id, scope: 'tools:read' });

    // auth() with a stored refresh token refreshes instead of sending alice to mandate again.
    const rec = recordingFetch();
    assert.equal(await auth(provider, { serverUrl: new URL(mcp.resource), fetchFn: rec.fetchFn }), 'AUTHORIZED');
    assert.equal(provider.authorizationUrls.length, 1, 'no new front channel');
    const [refresh, ...more] = rec.tokenRequests(as.token_endpoint);
    assert.equal(more.length, 0);
    assert.equal(refresh.status, 200, refresh.body);
    assert.equal(refresh.form.get('grant_type'), 'refresh_token');
    assert.equal(refresh.form.get('refresh_token'), first.refresh_token);
    assert.equal(refresh.form.get('client_id'), client_id);
    assert.equal(refresh.form.get('resource'), mcp.resource);
    const second = provider.tokens();
    assert.notEqual(second.access_token, first.access_token);
    assert.ok(second.refresh_token && second.refresh_token !== first.refresh_token, 'mandate rotates refresh tokens');
    await verifyToken(second.access_token, { client_id, scope: 'tools:read' });
    const client = await connect(mcp, provider);
    try {
      assert.equal((await whoami(client)).client_id, client_id);
    } finally {
      await client.close();
    }
  });

  it('(b) the SDK refuses a clientMetadataUrl that is not https before asking mandate anything', async () => {
    const rec = recordingFetch();
    const provider = new HostProvider({
      redirectUrl: 'http://127.0.0.1:8765/callback',
      clientMetadataUrl: `${site.base.replace('https:', 'http:')}${CIMD_PATH}`,
      clientMetadata: { client_name: CIMD_NAME, redirect_uris: ['http://127.0.0.1:8765/callback'], token_endpoint_auth_method: 'none' },
    });
    await assert.rejects(auth(provider, { serverUrl: new URL(mcp.resource), fetchFn: rec.fetchFn }), InvalidClientMetadataError);
    assert.equal(rec.requestsTo(as.registration_endpoint).length, 0);
    assert.equal(provider.authorizationUrls.length, 0);
    assert.equal(provider.clientInformation(), undefined);
  });
});

describe('MCP TypeScript SDK against mandate without client ID metadata documents', () => {
  let server;
  let mcp;
  let as;
  before(async () => {
    mcp = await startMcpServer();
    server = await startMandate({
      resources: [{ uri: mcp.resource, name: 'Interop MCP server (SDK)', scopes: MCP_SCOPES }],
      users: [ALICE],
      clients: [],
      registration: { dynamic: true, client_id_metadata_documents: false },
    });
    mcp.state.issuer = server.issuer;
    as = await discoverAuthorizationServerMetadata(server.issuer);
  });
  after(async () => {
    await server?.stop();
    await mcp?.close();
  });

  test('a provider with a clientMetadataUrl falls back to dynamic registration', withLogs(() => server, async () => {
    assert.equal(as.client_id_metadata_document_supported, false);
    const redirectUrl = `http://127.0.0.1:${await freePort()}/callback`;
    const clientMetadata = {
      client_name: CIMD_NAME,
      redirect_uris: [redirectUrl],
      grant_types: ['authorization_code'],
      token_endpoint_auth_method: 'none',
      application_type: 'native',
    };
    const provider = new HostProvider({ redirectUrl, clientMetadata, clientMetadataUrl: 'https://127.0.0.1:1/clients/never-fetched.json' });
    const rec = recordingFetch();
    assert.equal(await auth(provider, { serverUrl: new URL(mcp.resource), fetchFn: rec.fetchFn }), 'REDIRECT');
    const [registration] = rec.requestsTo(as.registration_endpoint);
    assert.ok(registration, 'the SDK registered');
    assert.equal(registration.status, 201, registration.body);
    const client_id = provider.clientInformation().client_id;
    assert.match(client_id, /^dcr_/);
    assert.equal(provider.authorizationUrls[0].searchParams.get('client_id'), client_id);
  }));
});
