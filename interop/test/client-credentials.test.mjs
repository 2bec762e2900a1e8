// Interop: a client nobody here wrote — oauth4webapi (strict, v3) and jose — against a real
// `mandate serve`. Client credentials with both secret methods, JWT access token validation as a
// resource server, introspection, revocation, and an issuer with a path.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as oauth from 'oauth4webapi';
import * as jose from 'jose';
import { startMandate, withLogs } from '../lib/mandate.mjs';

// DEVELOPMENT FIXTURES for a throwaway server: not secrets.
const RESOURCE = 'http://127.0.0.1:9090/mcp';
const BASIC = { client_id: 'build-agent', client_secret: 'interop-build-agent-secret-0123456789abcdef' };
const POST = { client_id: 'post-agent', client_secret: 'interop-post-agent-secret-0123456789abcdef' };
const RS = { client_id: 'rs', client_secret: 'interop-resource-server-secret-0123456789ab' };

const resources = [{ uri: RESOURCE, name: 'Example MCP server', scopes: ['tools:read', 'tools:call'] }];
const clients = [
  { ...BASIC, token_endpoint_auth_method: 'client_secret_basic', scopes: ['tools:read', 'tools:call'] },
  { ...POST, token_endpoint_auth_method: 'client_secret_post', scopes: ['tools:read', 'tools:call'] },
  { ...RS, grant_types: [] },
];

const insecure = { [oauth.allowInsecureRequests]: true }; // plain http, loopback only
const TTL = 300;

async function discover(issuer, algorithm) {
  const issuerUrl = new URL(issuer);
  const response = await oauth.discoveryRequest(issuerUrl, { ...insecure, algorithm });
  return oauth.processDiscoveryResponse(issuerUrl, response);
}

async function clientCredentials(as, { client_id, client_secret }, auth, parameters) {
  const client = { client_id };
  const response = await oauth.clientCredentialsGrantRequest(as, client, auth(client_secret), parameters, insecure);
  return oauth.processClientCredentialsResponse(as, client, response);
}

async function introspect(as, token) {
  const client = { client_id: RS.client_id };
  const response = await oauth.introspectionRequest(as, client, oauth.ClientSecretBasic(RS.client_secret), token, insecure);
  return oauth.processIntrospectionResponse(as, client, response);
}

/** A scope string as the set it is (RFC 6749 §3.3: order does not matter), sorted. */
const scopes = (s) => s.split(' ').sort();

function bearerRequest(token) {
  return new Request('http://127.0.0.1:9090/mcp', { headers: { authorization: `Bearer ${token}` } });
}

/** Checks the token as a resource server would, with both libraries; returns the claims. */
async function validateAsResourceServer(as, token, { client_id, scope }) {
  const claims = await oauth.validateJwtAccessToken(as, bearerRequest(token), RESOURCE, insecure);
  assert.equal(claims.iss, as.issuer);
  assert.equal(claims.client_id, client_id);
  assert.equal(claims.sub, client_id); // client credentials: the client acts for itself
  assert.deepEqual(scopes(claims.scope), scopes(scope));
  assert.deepEqual([claims.aud].flat(), [RESOURCE]);

  const jwks = jose.createRemoteJWKSet(new URL(as.jwks_uri));
  const { payload, protectedHeader } = await jose.jwtVerify(token, jwks, {
    typ: 'at+jwt',
    issuer: as.issuer,
    audience: RESOURCE,
    algorithms: ['ES256'],
    requiredClaims: ['iss', 'sub', 'aud', 'client_id', 'jti', 'iat', 'exp'],
  });
  assert.equal(protectedHeader.alg, 'ES256');
  assert.equal(typeof protectedHeader.kid, 'string');
  assert.equal(payload.jti, claims.jti);
  assert.equal(payload.exp - payload.iat, TTL);
  return claims;
}

describe('mandate at the root of its origin', () => {
  let server;
  let as;
  before(async () => {
    server = await startMandate({ resources, clients });
  });
  after(async () => {
    await server?.stop();
  });
  const it = (name, fn) => test(name, withLogs(() => server, fn));

  it('oauth4webapi discovers the server (RFC 8414 and OIDC well-known)', async () => {
    as = await discover(server.issuer, 'oauth2');
    assert.equal(as.issuer, server.issuer);
    assert.equal(as.token_endpoint, `${server.issuer}/token`);
    assert.equal(as.jwks_uri, `${server.issuer}/jwks.json`);
    assert.equal(as.introspection_endpoint, `${server.issuer}/introspect`);
    assert.equal(as.revocation_endpoint, `${server.issuer}/revoke`);
    assert.ok(as.grant_types_supported?.includes('client_credentials'));
    assert.ok(as.token_endpoint_auth_methods_supported?.includes('client_secret_basic'));
    assert.ok(as.token_endpoint_auth_methods_supported?.includes('client_secret_post'));

    const oidc = await discover(server.issuer, 'oidc');
    assert.equal(oidc.issuer, server.issuer);
  });

  it('client_secret_basic: token from oauth4webapi, validated by oauth4webapi and jose', async () => {
    as ??= await discover(server.issuer, 'oauth2');
    const token = await clientCredentials(as, BASIC, oauth.ClientSecretBasic, { resource: RESOURCE, scope: 'tools:read' });
    assert.equal(token.token_type, 'bearer');
    assert.equal(token.scope, 'tools:read');
    assert.equal(token.expires_in, TTL);
    assert.equal(token.refresh_token, undefined);
    await validateAsResourceServer(as, token.access_token, { client_id: BASIC.client_id, scope: 'tools:read' });
  });

  it('client_secret_basic without scope: the client gets its registered scopes', async () => {
    as ??= await discover(server.issuer, 'oauth2');
    const token = await clientCredentials(as, BASIC, oauth.ClientSecretBasic, { resource: RESOURCE });
    assert.equal(token.token_type, 'bearer');
    assert.deepEqual(scopes(token.scope), ['tools:call', 'tools:read']);
    await validateAsResourceServer(as, token.access_token, { client_id: BASIC.client_id, scope: token.scope });
  });

  it('client_secret_post: token from oauth4webapi, validated by oauth4webapi and jose', async () => {
    as ??= await discover(server.issuer, 'oauth2');
    const token = await clientCredentials(as, POST, oauth.ClientSecretPost, {
      resource: RESOURCE,
      scope: 'tools:read tools:call',
    });
    assert.equal(token.token_type, 'bearer');
    assert.deepEqual(scopes(token.scope), ['tools:call', 'tools:read']);
    assert.equal(token.expires_in, TTL);
    await validateAsResourceServer(as, token.access_token, { client_id: POST.client_id, scope: token.scope });
  });

  it('wrong secret (client_secret_basic): 401 invalid_client with a Basic challenge', async () => {
    as ??= await discover(server.issuer, 'oauth2');
    const client = { client_id: BASIC.client_id };
    const response = await oauth.clientCredentialsGrantRequest(
      as,
      client,
      oauth.ClientSecretBasic('not-the-secret-not-the-secret-not-the-secret'),
      { resource: RESOURCE },
      insecure,
    );
    await assertInvalidClient(oauth.processClientCredentialsResponse(as, client, response), { challengeRequired: true });
  });

  it('wrong secret (client_secret_post): 401 invalid_client', async () => {
    as ??= await discover(server.issuer, 'oauth2');
    const client = { client_id: POST.client_id };
    const response = await oauth.clientCredentialsGrantRequest(
      as,
      client,
      oauth.ClientSecretPost('not-the-secret-not-the-secret-not-the-secret'),
      { resource: RESOURCE },
      insecure,
    );
    await assertInvalidClient(oauth.processClientCredentialsResponse(as, client, response), { challengeRequired: false });
  });

  it('introspection (as rs) and revocation (by the owning client) through oauth4webapi', async () => {
    as ??= await discover(server.issuer, 'oauth2');
    const token = await clientCredentials(as, BASIC, oauth.ClientSecretBasic, { resource: RESOURCE, scope: 'tools:call' });

    const active = await introspect(as, token.access_token);
    assert.equal(active.active, true);
    assert.equal(active.client_id, BASIC.client_id);
    assert.equal(active.scope, 'tools:call');
    assert.equal(active.iss, as.issuer);
    assert.deepEqual([active.aud].flat(), [RESOURCE]);
    assert.equal(active.token_type?.toLowerCase(), 'bearer');

    const client = { client_id: BASIC.client_id };
    const revoked = await oauth.revocationRequest(as, client, oauth.ClientSecretBasic(BASIC.client_secret), token.access_token, insecure);
    assert.equal(await oauth.processRevocationResponse(revoked), undefined);

    const inactive = await introspect(as, token.access_token);
    assert.deepEqual(inactive, { active: false });
  });
});

describe('mandate with an issuer that has a path (/tenant1)', () => {
  let server;
  before(async () => {
    server = await startMandate({ issuerPath: '/tenant1', resources, clients });
  });
  after(async () => {
    await server?.stop();
  });
  const it = (name, fn) => test(name, withLogs(() => server, fn));

  it('oauth4webapi discovery: path-inserted RFC 8414 and path-appended OIDC well-known, then a token', async () => {
    assert.ok(server.issuer.endsWith('/tenant1'));
    const oauth2 = await discover(server.issuer, 'oauth2');
    assert.equal(oauth2.issuer, server.issuer);
    assert.equal(oauth2.token_endpoint, `${server.issuer}/token`);

    const oidc = await discover(server.issuer, 'oidc');
    assert.equal(oidc.issuer, server.issuer);
    assert.deepEqual(oidc, oauth2);

    const token = await clientCredentials(oauth2, BASIC, oauth.ClientSecretBasic, { resource: RESOURCE, scope: 'tools:read' });
    assert.equal(token.token_type, 'bearer');
    assert.equal(token.scope, 'tools:read');
    const claims = await validateAsResourceServer(oauth2, token.access_token, { client_id: BASIC.client_id, scope: 'tools:read' });
    assert.equal(claims.iss, server.issuer);

    const active = await introspect(oauth2, token.access_token);
    assert.equal(active.active, true);
  });
});

/**
 * RFC 6749 §5.2: bad client authentication is invalid_client; when the client authenticated with
 * the Authorization header the answer MUST be 401 with a WWW-Authenticate challenge. oauth4webapi v3 checks for challenges before it reads the body, so
 * it surfaces this as WWWAuthenticateChallengeError (body left unread) rather than as
 * ResponseBodyError; both the challenge and the JSON body are checked here. (Only when the client
 * authenticated in the body may a server answer without a challenge: then it is ResponseBodyError.)
 */
async function assertInvalidClient(promise, { challengeRequired }) {
  let caught;
  try {
    await promise;
  } catch (e) {
    caught = e;
  }
  assert.ok(caught, 'expected the token request to fail');
  if (caught instanceof oauth.WWWAuthenticateChallengeError) {
    assert.equal(caught.status, 401);
    const [challenge, ...rest] = caught.cause;
    assert.equal(rest.length, 0);
    assert.equal(challenge.scheme, 'basic');
    assert.equal(challenge.parameters.realm, 'mandate');
    const body = await caught.response.json();
    assert.equal(body.error, 'invalid_client');
  } else {
    // Without a challenge (allowed only when the client did not use the Authorization header).
    assert.ok(!challengeRequired, `expected a WWW-Authenticate challenge, got: ${caught?.stack ?? caught}`);
    assert.ok(caught instanceof oauth.ResponseBodyError, `unexpected error: ${caught?.stack ?? caught}`);
    assert.equal(caught.status, 401);
    assert.equal(caught.error, 'invalid_client');
  }
}
