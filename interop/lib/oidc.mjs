// The client side of the authorization code flow, through oauth4webapi (strict) and jose: what a
// relying party written by someone else does with mandate's answers. Shared by the code-flow and
// browser tests.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as oauth from 'oauth4webapi';
import * as jose from 'jose';

export const insecure = { [oauth.allowInsecureRequests]: true }; // plain http, loopback only

/** OpenID Connect discovery (/.well-known/openid-configuration) through oauth4webapi. */
export async function discoverOidc(issuer) {
  const issuerUrl = new URL(issuer);
  const response = await oauth.discoveryRequest(issuerUrl, { ...insecure, algorithm: 'oidc' });
  return oauth.processDiscoveryResponse(issuerUrl, response);
}

/** A scope string as the sorted set it is (RFC 6749 §3.3). */
export const scopeSet = (s) => (s ?? '').split(' ').filter(Boolean).sort();

/**
 * A fresh authorization request: PKCE (S256), state and nonce, as a relying party makes one.
 * Returns the URL and what the client keeps to check the answer.
 */
export async function newAuthorization(as, { client_id, redirect_uri, scope, resource, extra = {} }) {
  const code_verifier = oauth.generateRandomCodeVerifier();
  const code_challenge = await oauth.calculatePKCECodeChallenge(code_verifier);
  const state = oauth.generateRandomState();
  const nonce = oauth.generateRandomNonce();
  const url = new URL(as.authorization_endpoint);
  const params = { response_type: 'code', client_id, redirect_uri, scope, code_challenge, code_challenge_method: 'S256', state, nonce };
  if (resource) params.resource = resource;
  for (const [k, v] of Object.entries({ ...params, ...extra })) {
    if (v === undefined || v === null) url.searchParams.delete(k);
    else url.searchParams.set(k, v);
  }
  return { url, client_id, redirect_uri, code_verifier, code_challenge, state, nonce, scope, resource };
}

/**
 * The client's half after the redirect: oauth4webapi checks the authorization response (state,
 * and `iss` per RFC 9207 since discovery says the server sends it), then redeems the code with
 * the PKCE verifier and checks the token response and its ID token (nonce, iss, aud, exp, iat,
 * azp, auth_time when asked). Returns the token endpoint response.
 */
export async function redeemCode(as, client, clientAuth, authz, callbackUrl, { additionalParameters, requireIdToken = true } = {}) {
  const params = oauth.validateAuthResponse(as, client, new URL(callbackUrl), authz.state);
  const response = await oauth.authorizationCodeGrantRequest(
    as,
    client,
    clientAuth,
    params,
    authz.redirect_uri,
    authz.code_verifier,
    { ...insecure, additionalParameters },
  );
  return oauth.processAuthorizationCodeResponse(as, client, response, {
    expectedNonce: requireIdToken ? authz.nonce : oauth.expectNoNonce,
    requireIdToken,
  });
}

/** OIDC Core §3.1.3.6 at_hash for the JWS algorithm of the ID token. */
export function atHash(alg, accessToken) {
  const hash = alg === 'EdDSA' || alg === 'Ed25519' || alg.endsWith('512') ? 'sha512' : alg.endsWith('384') ? 'sha384' : 'sha256';
  const digest = createHash(hash).update(accessToken).digest();
  return digest.subarray(0, digest.length / 2).toString('base64url');
}

/**
 * Checks the ID token's signature against the published keys with jose (oauth4webapi trusts the
 * TLS channel to the token endpoint and checks claims only), and the claims a relying party
 * relies on. Returns the payload.
 */
export async function verifyIdToken(as, idToken, { client_id, nonce, accessToken, username, email }) {
  const jwks = jose.createRemoteJWKSet(new URL(as.jwks_uri));
  const { payload, protectedHeader } = await jose.jwtVerify(idToken, jwks, {
    issuer: as.issuer,
    audience: client_id,
    algorithms: as.id_token_signing_alg_values_supported,
    requiredClaims: ['iss', 'sub', 'aud', 'exp', 'iat'],
  });
  assert.ok(as.id_token_signing_alg_values_supported.includes(protectedHeader.alg));
  assert.equal(typeof protectedHeader.kid, 'string', 'ID token header has a kid');
  assert.notEqual(protectedHeader.typ?.toLowerCase(), 'at+jwt', 'an ID token must not be typed as an access token');
  if (nonce !== undefined) assert.equal(payload.nonce, nonce);
  // Core §2: azp when present is the client; aud holds the client.
  if (payload.azp !== undefined) assert.equal(payload.azp, client_id);
  assert.ok([payload.aud].flat().includes(client_id));
  assert.ok(payload.exp > payload.iat);
  if (payload.auth_time !== undefined) assert.ok(payload.auth_time <= payload.iat + 5);
  if (accessToken && payload.at_hash !== undefined) assert.equal(payload.at_hash, atHash(protectedHeader.alg, accessToken), 'at_hash');
  if (username !== undefined && payload.preferred_username !== undefined) assert.equal(payload.preferred_username, username);
  if (email !== undefined && payload.email !== undefined) assert.equal(payload.email, email);
  return payload;
}

function bearerRequest(resource, token) {
  return new Request(resource, { headers: { authorization: `Bearer ${token}` } });
}

/**
 * Checks an access token as the resource server would (oauth4webapi's RFC 9068 validation and
 * jose): typ at+jwt, issuer, audience = the resource, the client and the user. Returns the claims.
 */
export async function verifyAccessToken(as, token, { resource, client_id, sub, scope }) {
  const claims = await oauth.validateJwtAccessToken(as, bearerRequest(resource, token), resource, insecure);
  assert.equal(claims.iss, as.issuer);
  assert.equal(claims.client_id, client_id);
  if (sub !== undefined) assert.equal(claims.sub, sub);
  assert.notEqual(claims.sub, client_id, 'a token issued for a user has the user as sub, not the client');
  assert.deepEqual([claims.aud].flat(), [resource]);
  if (scope !== undefined) assert.deepEqual(scopeSet(claims.scope), scopeSet(scope));

  const jwks = jose.createRemoteJWKSet(new URL(as.jwks_uri));
  const { payload } = await jose.jwtVerify(token, jwks, {
    typ: 'at+jwt',
    issuer: as.issuer,
    audience: resource,
    requiredClaims: ['iss', 'sub', 'aud', 'client_id', 'jti', 'iat', 'exp'],
  });
  assert.equal(payload.jti, claims.jti);
  return claims;
}

/** /userinfo through oauth4webapi, which checks that `sub` is the ID token's. */
export async function userInfo(as, client, accessToken, expectedSub) {
  const response = await oauth.userInfoRequest(as, client, accessToken, insecure);
  return oauth.processUserInfoResponse(as, client, expectedSub, response);
}

/** A refresh through oauth4webapi. */
export async function refresh(as, client, clientAuth, refreshToken, additionalParameters) {
  const response = await oauth.refreshTokenGrantRequest(as, client, clientAuth, refreshToken, { ...insecure, additionalParameters });
  return oauth.processRefreshTokenResponse(as, client, response);
}

/** Awaits a promise that must reject with an OAuth error response; returns the error. */
export async function expectOAuthError(promise, { error, status }) {
  let caught;
  try {
    await promise;
  } catch (e) {
    caught = e;
  }
  assert.ok(caught, `expected an OAuth error ${error}, but the request succeeded`);
  assert.ok(
    caught instanceof oauth.ResponseBodyError || caught instanceof oauth.AuthorizationResponseError,
    `expected an OAuth error ${error}, got: ${caught?.stack ?? caught}`,
  );
  assert.equal(caught.error, error, `error code (description: ${caught.error_description})`);
  if (status !== undefined) assert.equal(caught.status, status);
  return caught;
}

export { oauth, jose };
