// Interop: RFC 8693 token exchange through oauth4webapi's generic token endpoint request (a client nobody
// here wrote), across three hops: agent A's client-credentials token, exchanged by MCP server B
// for internal API C, then by C for third party D. The last token is verified by jose as an
// independent resource server would: signature against the published JWKS, typ at+jwt, issuer,
// audience, and the nested act chain (RFC 8693 §4.1), oldest actor innermost.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as oauth from 'oauth4webapi';
import * as jose from 'jose';
import { startMandate, withLogs } from '../lib/mandate.mjs';

// DEVELOPMENT FIXTURES for a throwaway server: not secrets.
const SECRET = 'interop-exchange-secret-0123456789abcdefghij';
const B = 'https://b.example/mcp';
const C = 'https://c.example/api';
const D = 'https://d.example/api';
const TE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const AT = 'urn:ietf:params:oauth:token-type:access_token';

const resources = [
  { uri: B, name: 'MCP server B', scopes: ['data:read'], client_id: 'mcp-b' },
  { uri: C, name: 'Internal API C', scopes: ['data:read'], client_id: 'api-c' },
  { uri: D, name: 'Third party D', scopes: ['data:read'] },
];
const clients = [
  { client_id: 'agent-a', client_secret: SECRET, grant_types: ['client_credentials'], scopes: ['data:read'] },
  { client_id: 'mcp-b', client_secret: SECRET, grant_types: [TE], scopes: ['data:read'] },
  { client_id: 'api-c', client_secret: SECRET, grant_types: [TE], scopes: ['data:read'] },
];
const insecure = { [oauth.allowInsecureRequests]: true }; // plain http, loopback only

let server;
let as;
before(async () => {
  server = await startMandate({ resources, clients });
  const issuer = new URL(server.issuer);
  as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, insecure));
});
after(async () => {
  await server?.stop();
});

async function exchange(client_id, subject, target) {
  const client = { client_id };
  const parameters = { subject_token: subject, subject_token_type: AT, resource: target };
  const response = await oauth.genericTokenEndpointRequest(as, client, oauth.ClientSecretBasic(SECRET), TE, parameters, insecure);
  const body = await oauth.processGenericTokenEndpointResponse(as, client, response);
  assert.equal(body.issued_token_type, AT);
  return body.access_token;
}

test('a three-hop exchange chain, verified by jose with the nested act', withLogs(() => server, async () => {
  assert.ok(as.grant_types_supported.includes(TE), 'token exchange is advertised');
  const client = { client_id: 'agent-a' };
  const cc = await oauth.clientCredentialsGrantRequest(as, client, oauth.ClientSecretBasic(SECRET), { resource: B }, insecure);
  const t0 = (await oauth.processClientCredentialsResponse(as, client, cc)).access_token;
  const t1 = await exchange('mcp-b', t0, C);
  const t2 = await exchange('api-c', t1, D);

  const jwks = jose.createRemoteJWKSet(new URL(as.jwks_uri));
  const { payload, protectedHeader } = await jose.jwtVerify(t2, jwks, {
    typ: 'at+jwt',
    issuer: as.issuer,
    audience: D,
    algorithms: ['ES256'],
    requiredClaims: ['sub', 'client_id', 'jti', 'iat', 'exp', 'act'],
  });
  assert.equal(protectedHeader.alg, 'ES256');
  assert.equal(payload.sub, 'agent-a', 'delegation keeps the subject');
  assert.equal(payload.client_id, 'api-c');
  assert.deepEqual(payload.act, { sub: 'api-c', act: { sub: 'mcp-b' } });

  // A token from the middle of the chain, exchanged by a client that neither holds it nor serves
  // its audience, is refused with RFC 8693's error.
  const response = await oauth.genericTokenEndpointRequest(as, { client_id: 'mcp-b' }, oauth.ClientSecretBasic(SECRET), TE,
    { subject_token: t2, subject_token_type: AT, resource: C }, insecure);
  await assert.rejects(oauth.processGenericTokenEndpointResponse(as, { client_id: 'mcp-b' }, response), (e) => {
    assert.equal(e.error, 'invalid_request');
    return true;
  });
}));
