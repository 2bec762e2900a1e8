// Interop: the official MCP TypeScript SDK (@modelcontextprotocol/sdk) as a machine-to-machine MCP
// client getting its access token from a real `mandate serve`, the way it does against any MCP
// server: a request without a token gets 401 with an RFC 9728 `resource_metadata` challenge, the
// SDK reads the protected resource metadata, discovers mandate (RFC 8414), asks its token
// endpoint for a client_credentials token with `resource` = the MCP server (RFC 8707), and
// retries with the token. Client authentication: client_secret_basic (ClientCredentialsProvider)
// and private_key_jwt (PrivateKeyJwtProvider / createPrivateKeyJwtAuth, RFC 7523).
//
// The MCP server is the SDK's own (lib/mcp.mjs: McpServer + StreamableHTTPServerTransport, stateless, behind
// node:http) on loopback; it checks each bearer token with jose against mandate's /jwks.json.
// Every HTTP request the SDK makes goes through a recording fetch, so the tests can check the
// discovery path and the exact token requests (the client assertion's `aud` above all).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as jose from 'jose';
import { auth, discoverAuthorizationServerMetadata } from '@modelcontextprotocol/sdk/client/auth.js';
import {
  ClientCredentialsProvider,
  PrivateKeyJwtProvider,
  StaticPrivateKeyJwtProvider,
  createPrivateKeyJwtAuth,
} from '@modelcontextprotocol/sdk/client/auth-extensions.js';
import { InvalidClientError } from '@modelcontextprotocol/sdk/server/auth/errors.js';
import { startMandate, withLogs } from '../lib/mandate.mjs';
import { MCP_SCOPES, connect, mcpClient, mcpTransport, recordingFetch, startMcpServer, whoami } from '../lib/mcp.mjs';

// DEVELOPMENT FIXTURES for a throwaway server: not secrets.
const SECRET_CLIENT = { client_id: 'mcp-sdk-secret', client_secret: 'interop-mcp-sdk-secret-0123456789abcdef0123' };
const JWT_CLIENT = 'mcp-sdk-jwt'; // private_key_jwt, ES256 key inline in the config (jwks)
const URI_CLIENT = 'mcp-sdk-jwks-uri'; // private_key_jwt, EdDSA key fetched from jwks_uri
const SCOPES = MCP_SCOPES;
const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const TTL = 300;

/** A fresh extractable key pair: the private JWK for the SDK, the public JWK for mandate's config. */
async function keyPair(alg, kid) {
  const { publicKey, privateKey } = await jose.generateKeyPair(alg, { extractable: true });
  const publicJwk = { ...(await jose.exportJWK(publicKey)), kid, alg, use: 'sig' };
  const privateJwk = { ...(await jose.exportJWK(privateKey)), kid, alg };
  return { publicJwk, privateJwk };
}

/** Awaits a promise that must reject with the SDK's InvalidClientError (OAuth error invalid_client). */
async function expectInvalidClient(promise) {
  let caught;
  try {
    await promise;
  } catch (e) {
    caught = e;
  }
  assert.ok(caught, 'expected the SDK to fail with invalid_client');
  assert.ok(caught instanceof InvalidClientError, `expected InvalidClientError, got: ${caught?.stack ?? caught}`);
  assert.equal(caught.errorCode, 'invalid_client');
  assert.equal(caught.toResponseObject().error, 'invalid_client');
  return caught;
}

const sorted = (s) => (s ?? '').split(' ').filter(Boolean).sort();

describe('MCP TypeScript SDK (client_credentials) against mandate', () => {
  let server;
  let mcp;
  let as; // mandate's RFC 8414 metadata
  let es256; // JWT_CLIENT's key, registered inline
  let eddsa; // URI_CLIENT's key, served at jwks_uri
  let wrong; // a key mandate has never seen, with JWT_CLIENT's kid

  before(async () => {
    es256 = await keyPair('ES256', 'interop-es256');
    eddsa = await keyPair('EdDSA', 'interop-eddsa');
    wrong = await keyPair('ES256', 'interop-es256');
    mcp = await startMcpServer();
    mcp.state.clientJwks = { keys: [eddsa.publicJwk] };
    server = await startMandate({
      resources: [{ uri: mcp.resource, name: 'Interop MCP server (SDK)', scopes: SCOPES }],
      // jwks_uri on loopback plain http.
      registration: { allow_private_networks: true },
      clients: [
        { ...SECRET_CLIENT, token_endpoint_auth_method: 'client_secret_basic', grant_types: ['client_credentials'], scopes: SCOPES },
        {
          client_id: JWT_CLIENT,
          token_endpoint_auth_method: 'private_key_jwt',
          jwks: { keys: [es256.publicJwk] },
          grant_types: ['client_credentials'],
          scopes: SCOPES,
        },
        {
          client_id: URI_CLIENT,
          token_endpoint_auth_method: 'private_key_jwt',
          jwks_uri: `${mcp.base}/client-jwks.json`,
          grant_types: ['client_credentials'],
          scopes: SCOPES,
        },
      ],
    });
    mcp.state.issuer = server.issuer;
    as = await discoverAuthorizationServerMetadata(server.issuer);
  });
  after(async () => {
    await server?.stop();
    await mcp?.close();
  });
  const it = (name, fn) => test(name, withLogs(() => server, fn));

  /** Checks an access token as a resource server would, with jose and mandate's /jwks.json. */
  async function verifyToken(token, { client_id, scope }) {
    const jwks = jose.createRemoteJWKSet(new URL(as.jwks_uri));
    const { payload, protectedHeader } = await jose.jwtVerify(token, jwks, {
      typ: 'at+jwt',
      issuer: server.issuer,
      audience: mcp.resource,
      requiredClaims: ['iss', 'sub', 'aud', 'client_id', 'jti', 'iat', 'exp'],
    });
    assert.equal(typeof protectedHeader.kid, 'string');
    assert.deepEqual([payload.aud].flat(), [mcp.resource]);
    assert.equal(payload.client_id, client_id);
    assert.equal(payload.sub, client_id); // client credentials: the client acts for itself
    assert.equal(payload.exp - payload.iat, TTL);
    if (scope !== undefined) assert.deepEqual(sorted(payload.scope), sorted(scope));
    return payload;
  }

  /**
   * The SDK's discovery path for a fresh provider: the MCP request without a token (401 with the
   * challenge), the protected resource metadata named by the challenge, mandate's RFC 8414
   * metadata at the issuer's root well-known URL, the token request, and the MCP request again.
   */
  function assertDiscoveryPath(calls) {
    const urls = calls.map((c) => `${c.method} ${c.url} ${c.status}`);
    const at = (i) => urls[i] ?? '(nothing)';
    assert.equal(at(0), `POST ${mcp.resource} 401`, urls.join('\n'));
    assert.equal(at(1), `GET ${mcp.metadataUrl} 200`, urls.join('\n'));
    assert.equal(at(2), `GET ${server.issuer}/.well-known/oauth-authorization-server 200`, urls.join('\n'));
    assert.equal(at(3), `POST ${as.token_endpoint} 200`, urls.join('\n'));
    assert.equal(at(4), `POST ${mcp.resource} 200`, urls.join('\n'));
  }

  it('the SDK discovers mandate (RFC 8414): private_key_jwt and its signing algorithms are listed', async () => {
    assert.ok(as, 'discoverAuthorizationServerMetadata found nothing');
    assert.equal(as.issuer, server.issuer);
    assert.equal(as.token_endpoint, `${server.issuer}/token`);
    assert.equal(as.jwks_uri, `${server.issuer}/jwks.json`);
    assert.ok(as.grant_types_supported?.includes('client_credentials'));
    for (const m of ['client_secret_basic', 'client_secret_post', 'private_key_jwt']) {
      assert.ok(as.token_endpoint_auth_methods_supported?.includes(m), `token_endpoint_auth_methods_supported lacks ${m}`);
    }
    const algs = as.token_endpoint_auth_signing_alg_values_supported;
    assert.ok(Array.isArray(algs), 'token_endpoint_auth_signing_alg_values_supported');
    for (const alg of ['ES256', 'EdDSA', 'RS256', 'PS256']) assert.ok(algs.includes(alg), `signing algs lack ${alg}: ${algs}`);
    assert.ok(!algs.includes('none') && !algs.some((a) => a.startsWith('HS')), `no none/HMAC: ${algs}`);
  });

  it('(a) ClientCredentialsProvider (client_secret_basic): 401 → RFC 9728 → token from mandate → tool call', async () => {
    const rec = recordingFetch();
    const provider = new ClientCredentialsProvider({
      clientId: SECRET_CLIENT.client_id,
      clientSecret: SECRET_CLIENT.client_secret,
      expectedIssuer: server.issuer,
      scope: 'tools:read',
    });
    const client = await connect(mcp, provider, rec.fetchFn);
    try {
      assert.deepEqual(await whoami(client), { sub: SECRET_CLIENT.client_id, client_id: SECRET_CLIENT.client_id, scopes: ['tools:read'] });
    } finally {
      await client.close();
    }
    assertDiscoveryPath(rec.calls);

    const [tokenRequest, ...more] = rec.tokenRequests(as.token_endpoint);
    assert.equal(more.length, 0);
    const basic = `Basic ${Buffer.from(`${SECRET_CLIENT.client_id}:${SECRET_CLIENT.client_secret}`).toString('base64')}`;
    assert.equal(tokenRequest.headers.get('authorization'), basic, 'the SDK picked client_secret_basic');
    assert.equal(tokenRequest.form.get('grant_type'), 'client_credentials');
    assert.equal(tokenRequest.form.get('resource'), mcp.resource, 'RFC 8707 resource = the PRM resource, verbatim');
    assert.equal(tokenRequest.form.get('scope'), 'tools:read');
    assert.equal(tokenRequest.form.get('client_secret'), null);

    const tokens = provider.tokens();
    assert.equal(tokens.token_type.toLowerCase(), 'bearer');
    assert.equal(tokens.expires_in, TTL);
    assert.equal(tokens.refresh_token, undefined);
    const claims = await verifyToken(tokens.access_token, { client_id: SECRET_CLIENT.client_id, scope: 'tools:read' });
    assert.equal(mcp.state.accepted.at(-1).jti, claims.jti, 'the MCP server got this token');
  });

  it('(b) PrivateKeyJwtProvider (ES256, jwks inline): the assertion aud is the issuer; token → tool call', async () => {
    const rec = recordingFetch();
    const provider = new PrivateKeyJwtProvider({
      clientId: JWT_CLIENT,
      privateKey: es256.privateJwk,
      algorithm: 'ES256',
      expectedIssuer: server.issuer,
      scope: 'tools:read tools:call',
    });
    const client = await connect(mcp, provider, rec.fetchFn);
    try {
      const me = await whoami(client);
      assert.equal(me.client_id, JWT_CLIENT);
      assert.deepEqual(me.scopes.sort(), ['tools:call', 'tools:read']);
    } finally {
      await client.close();
    }
    assertDiscoveryPath(rec.calls);

    const [tokenRequest, ...more] = rec.tokenRequests(as.token_endpoint);
    assert.equal(more.length, 0);
    assert.equal(tokenRequest.headers.get('authorization'), null);
    assert.equal(tokenRequest.form.get('grant_type'), 'client_credentials');
    assert.equal(tokenRequest.form.get('resource'), mcp.resource);
    assert.equal(tokenRequest.form.get('client_assertion_type'), JWT_BEARER);
    // What the SDK signs (createPrivateKeyJwtAuth with no `audience`: the discovered metadata's
    // issuer, which RFC 10070 requires; the token endpoint URL only when there is no metadata).
    const assertion = tokenRequest.form.get('client_assertion');
    const header = jose.decodeProtectedHeader(assertion);
    const claims = jose.decodeJwt(assertion);
    assert.equal(header.alg, 'ES256');
    assert.equal(claims.iss, JWT_CLIENT);
    assert.equal(claims.sub, JWT_CLIENT);
    assert.equal(claims.aud, server.issuer, `assertion aud ${JSON.stringify(claims.aud)}`);
    assert.notEqual(claims.aud, as.token_endpoint);
    assert.equal(typeof claims.jti, 'string');
    assert.equal(claims.exp - claims.iat, 300);
    // It is the registered key that signed it.
    await jose.jwtVerify(assertion, await jose.importJWK(es256.publicJwk, 'ES256'), { issuer: JWT_CLIENT, audience: server.issuer });

    const tokens = provider.tokens();
    assert.equal(tokens.token_type.toLowerCase(), 'bearer');
    const payload = await verifyToken(tokens.access_token, { client_id: JWT_CLIENT, scope: 'tools:read tools:call' });
    assert.equal(mcp.state.accepted.at(-1).jti, payload.jti, 'the MCP server got this token');
  });

  it('auth() with PrivateKeyJwtProvider (EdDSA, key fetched from jwks_uri), then the token is used', async () => {
    const rec = recordingFetch();
    const provider = new PrivateKeyJwtProvider({
      clientId: URI_CLIENT,
      privateKey: eddsa.privateJwk,
      algorithm: 'EdDSA',
      expectedIssuer: server.issuer,
    });
    // No scope: mandate grants the client's registered scopes.
    assert.equal(await auth(provider, { serverUrl: new URL(mcp.resource), fetchFn: rec.fetchFn }), 'AUTHORIZED');
    const [tokenRequest, ...more] = rec.tokenRequests(as.token_endpoint);
    assert.equal(more.length, 0);
    const assertion = tokenRequest.form.get('client_assertion');
    assert.equal(jose.decodeProtectedHeader(assertion).alg, 'EdDSA');
    assert.equal(jose.decodeJwt(assertion).aud, server.issuer);
    assert.equal(tokenRequest.form.get('scope'), null);

    const { access_token } = provider.tokens();
    await verifyToken(access_token, { client_id: URI_CLIENT, scope: SCOPES.join(' ') });
    // The stored token goes straight to the MCP server: no 401 this time.
    const rec2 = recordingFetch();
    const client = await connect(mcp, provider, rec2.fetchFn);
    try {
      assert.equal((await whoami(client)).client_id, URI_CLIENT);
    } finally {
      await client.close();
    }
    assert.equal(rec2.calls.filter((c) => c.status === 401).length, 0);
  });

  it('wrong private key: the SDK fails with InvalidClientError (invalid_client); the MCP server sees no token', async () => {
    const rec = recordingFetch();
    const provider = new PrivateKeyJwtProvider({
      clientId: JWT_CLIENT,
      privateKey: wrong.privateJwk,
      algorithm: 'ES256',
      expectedIssuer: server.issuer,
    });
    const accepted = mcp.state.accepted.length;
    const transport = mcpTransport(mcp, provider, rec.fetchFn);
    const client = mcpClient();
    try {
      await expectInvalidClient(client.connect(transport));
    } finally {
      await client.close();
    }
    assert.equal(provider.tokens(), undefined);
    assert.equal(mcp.state.accepted.length, accepted);

    // auth() retries once on invalid_client; each answer is mandate's 401 invalid_client.
    const tokenRequests = rec.tokenRequests(as.token_endpoint);
    assert.ok(tokenRequests.length >= 1);
    for (const r of tokenRequests) {
      assert.equal(r.status, 401, r.body);
      assert.equal(JSON.parse(r.body).error, 'invalid_client', r.body);
      assert.equal(jose.decodeJwt(r.form.get('client_assertion')).aud, server.issuer);
    }
  });

  it('an assertion addressed to the token endpoint (createPrivateKeyJwtAuth audience option) is refused: invalid_client', async () => {
    const rec = recordingFetch();
    const provider = new PrivateKeyJwtProvider({
      clientId: JWT_CLIENT,
      privateKey: es256.privateJwk,
      algorithm: 'ES256',
      expectedIssuer: server.issuer,
    });
    provider.addClientAuthentication = createPrivateKeyJwtAuth({
      issuer: JWT_CLIENT,
      subject: JWT_CLIENT,
      privateKey: es256.privateJwk,
      alg: 'ES256',
      audience: as.token_endpoint,
    });
    await expectInvalidClient(auth(provider, { serverUrl: new URL(mcp.resource), fetchFn: rec.fetchFn }));
    const tokenRequests = rec.tokenRequests(as.token_endpoint);
    assert.ok(tokenRequests.length >= 1);
    for (const r of tokenRequests) {
      assert.equal(jose.decodeJwt(r.form.get('client_assertion')).aud, as.token_endpoint);
      assert.equal(r.status, 401, r.body);
      assert.equal(JSON.parse(r.body).error, 'invalid_client', r.body);
    }
    // The same key with the audience set to the issuer is accepted.
    provider.addClientAuthentication = createPrivateKeyJwtAuth({
      issuer: JWT_CLIENT,
      subject: JWT_CLIENT,
      privateKey: es256.privateJwk,
      alg: 'ES256',
      audience: server.issuer,
    });
    assert.equal(await auth(provider, { serverUrl: new URL(mcp.resource) }), 'AUTHORIZED');
    await verifyToken(provider.tokens().access_token, { client_id: JWT_CLIENT });
  });

  it('StaticPrivateKeyJwtProvider: a replayed assertion (same jti) is refused: invalid_client', async () => {
    const now = Math.floor(Date.now() / 1000);
    const jwtBearerAssertion = await new jose.SignJWT({})
      .setProtectedHeader({ alg: 'ES256', kid: es256.publicJwk.kid, typ: 'JWT' })
      .setIssuer(JWT_CLIENT)
      .setSubject(JWT_CLIENT)
      .setAudience(server.issuer)
      .setIssuedAt(now)
      .setExpirationTime(now + 120)
      .setJti(`interop-replay-${now}-${Math.random().toString(36).slice(2)}`)
      .sign(await jose.importJWK(es256.privateJwk, 'ES256'));
    const provider = () =>
      new StaticPrivateKeyJwtProvider({ clientId: JWT_CLIENT, jwtBearerAssertion, expectedIssuer: server.issuer });

    const first = provider();
    assert.equal(await auth(first, { serverUrl: new URL(mcp.resource) }), 'AUTHORIZED');
    await verifyToken(first.tokens().access_token, { client_id: JWT_CLIENT });

    const rec = recordingFetch();
    await expectInvalidClient(auth(provider(), { serverUrl: new URL(mcp.resource), fetchFn: rec.fetchFn }));
    for (const r of rec.tokenRequests(as.token_endpoint)) {
      assert.equal(r.status, 401, r.body);
      assert.equal(JSON.parse(r.body).error, 'invalid_client', r.body);
    }
  });
});
