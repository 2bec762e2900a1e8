// Interop: attestation-based client authentication (draft-ietf-oauth-attestation-based-client-auth)
// with a Client Attestation and PoP JWTs signed by `jose`, an agent runtime's attester in the
// server's config, and `oauth4webapi` making the client_credentials request (its `None` client
// authentication sends the client_id; the two attestation headers ride along). The access token's
// `attestation` claim, naming the attester and the attested model, is checked with
// `jose.jwtVerify` against /jwks.json, and at introspection.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import * as oauth from 'oauth4webapi';
import * as jose from 'jose';
import { startMandate, withLogs } from '../lib/mandate.mjs';

// DEVELOPMENT FIXTURES for a throwaway server: not secrets.
const RESOURCE = 'http://127.0.0.1:9090/mcp';
const CLIENT_ID = 'attested-agent';
const RS = { client_id: 'rs', client_secret: 'interop-resource-server-secret-0123456789ab' };
const ATTESTER = { name: 'Acme agent runtime', issuer: 'https://attester.acme.example' };
const LLM = { provider: 'acme', model: 'acme-large-2', region: 'eu-west-1' };
const RUNTIME = { name: 'agentd', version: '1.4.2' };

const insecure = { [oauth.allowInsecureRequests]: true }; // plain http, loopback only
const now = () => Math.floor(Date.now() / 1000);

describe('attestation-based client authentication, challenges required', () => {
  let server;
  let as;
  let attesterKey;
  let instance;
  before(async () => {
    // The attester (the agent runtime's backend) and one agent instance, each with its own key.
    const attester = await jose.generateKeyPair('ES256', { extractable: true });
    attesterKey = attester.privateKey;
    const attesterJwk = { ...(await jose.exportJWK(attester.publicKey)), kid: 'attester-1', alg: 'ES256', use: 'sig' };
    const pair = await jose.generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
    instance = { privateKey: pair.privateKey, publicJwk: await jose.exportJWK(pair.publicKey) };
    server = await startMandate({
      resources: [{ uri: RESOURCE, name: 'Example MCP server', scopes: ['tools:read', 'tools:call'] }],
      clients: [
        { client_id: CLIENT_ID, token_endpoint_auth_method: 'attest_jwt_client_auth', grant_types: ['client_credentials'], scopes: ['tools:read'] },
        { ...RS, grant_types: [] },
      ],
      attesters: [{ ...ATTESTER, jwks: { keys: [attesterJwk] } }],
      attestation: { require_challenge: true },
    });
  });
  after(async () => {
    await server?.stop();
  });
  const it = (name, fn) => test(name, withLogs(() => server, fn));

  /** The runtime's Client Attestation JWT for this instance. */
  const attestation = () =>
    new jose.SignJWT({ cnf: { jwk: instance.publicJwk }, llm: LLM, runtime: RUNTIME })
      .setProtectedHeader({ alg: 'ES256', kid: 'attester-1', typ: 'oauth-client-attestation+jwt' })
      .setIssuer(ATTESTER.issuer)
      .setSubject(CLIENT_ID)
      .setIssuedAt()
      .setExpirationTime('1h')
      .sign(attesterKey);

  /** The instance's PoP for this server, with the server's challenge. */
  const pop = (challenge, jti = randomUUID()) =>
    new jose.SignJWT({ challenge })
      .setProtectedHeader({ alg: 'EdDSA', typ: 'oauth-client-attestation-pop+jwt' })
      .setAudience(server.issuer)
      .setJti(jti)
      .setIssuedAt()
      .sign(instance.privateKey);

  const tokenRequest = async (headers) =>
    oauth.clientCredentialsGrantRequest(as, { client_id: CLIENT_ID }, oauth.None(), { resource: RESOURCE, scope: 'tools:read' }, {
      ...insecure,
      headers,
    });

  it('discovery advertises attest_jwt_client_auth, the challenge endpoint and the algorithms', async () => {
    const issuer = new URL(server.issuer);
    as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { ...insecure, algorithm: 'oauth2' }));
    assert.ok(as.token_endpoint_auth_methods_supported.includes('attest_jwt_client_auth'));
    assert.equal(as.challenge_endpoint, `${server.issuer}/challenge`);
    assert.ok(as.client_attestation_signing_alg_values_supported.includes('ES256'));
    assert.ok(as.client_attestation_pop_signing_alg_values_supported.includes('EdDSA'));
    assert.deepEqual(as.client_attestation_pop_methods_supported, ['attestation_pop_jwt', 'none']);
  });

  it('a jose-signed attestation gets a token whose attestation claim jose verifies', async () => {
    const res = await fetch(as.challenge_endpoint, { method: 'POST' });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const { attestation_challenge: challenge } = await res.json();
    assert.equal(typeof challenge, 'string');

    const response = await tokenRequest({
      'OAuth-Client-Attestation': await attestation(),
      'OAuth-Client-Attestation-PoP': await pop(challenge),
    });
    const next = response.headers.get('oauth-client-attestation-challenge');
    const token = await oauth.processClientCredentialsResponse(as, { client_id: CLIENT_ID }, response);
    assert.equal(token.token_type, 'bearer');

    const { payload } = await jose.jwtVerify(token.access_token, jose.createRemoteJWKSet(new URL(as.jwks_uri)), {
      typ: 'at+jwt',
      issuer: as.issuer,
      audience: RESOURCE,
      algorithms: ['ES256'],
    });
    assert.equal(payload.sub, CLIENT_ID);
    assert.deepEqual(payload.attestation, { attester: ATTESTER.name, llm: LLM, runtime: RUNTIME });

    const introspected = await oauth.processIntrospectionResponse(
      as,
      { client_id: RS.client_id },
      await oauth.introspectionRequest(as, { client_id: RS.client_id }, oauth.ClientSecretBasic(RS.client_secret), token.access_token, insecure),
    );
    assert.equal(introspected.active, true);
    assert.deepEqual(introspected.attestation, payload.attestation);

    // The response carried the challenge for the next PoP: no round trip to /challenge.
    assert.ok(next && next !== challenge);
    const again = await tokenRequest({
      'OAuth-Client-Attestation': await attestation(),
      'OAuth-Client-Attestation-PoP': await pop(next),
    });
    assert.equal(again.status, 200);
  });

  it('a PoP without a challenge, or a replayed one, is refused with the draft error codes', async () => {
    const missing = await tokenRequest({
      'OAuth-Client-Attestation': await attestation(),
      'OAuth-Client-Attestation-PoP': await pop(undefined),
    });
    assert.equal(missing.status, 400);
    assert.equal((await missing.json()).error, 'use_attestation_challenge');
    const challenge = missing.headers.get('oauth-client-attestation-challenge');
    assert.ok(challenge);

    const proof = await pop(challenge);
    const first = await tokenRequest({ 'OAuth-Client-Attestation': await attestation(), 'OAuth-Client-Attestation-PoP': proof });
    assert.equal(first.status, 200);
    const replay = await tokenRequest({ 'OAuth-Client-Attestation': await attestation(), 'OAuth-Client-Attestation-PoP': proof });
    assert.equal(replay.status, 401);
    assert.equal((await replay.json()).error, 'invalid_client_attestation');
  });
});
