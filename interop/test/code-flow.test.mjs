// Interop: the authorization code flow (OAuth 2.1 with PKCE, OpenID Connect) against a real
// `mandate serve`, on SQLite and on a fresh PostgreSQL database. The relying parties are
// oauth4webapi (strict, v3) for a public native client and openid-client (v6) for a confidential
// web client; the front channel (sign-in and consent pages) is walked by a cookie-keeping fetch
// agent (lib/agent.mjs); the browser test does the same in Chromium.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import * as client from 'openid-client';
import { startMandate, withLogs } from '../lib/mandate.mjs';
import { UserAgent, parseForms, textById } from '../lib/agent.mjs';
import {
  discoverOidc,
  expectOAuthError,
  newAuthorization,
  oauth,
  redeemCode,
  refresh,
  scopeSet,
  userInfo,
  verifyAccessToken,
  verifyIdToken,
  insecure,
} from '../lib/oidc.mjs';

// DEVELOPMENT FIXTURES for a throwaway server: not secrets.
const RESOURCE = 'http://127.0.0.1:9090/mcp';
const ALICE = { username: 'alice', password: 'interop-alice-password-0123', email: 'alice@example.com' };
const OIDC_SCOPES = ['openid', 'profile', 'email', 'offline_access'];
const NATIVE = {
  client_id: 'interop-cli',
  client_name: 'Interop CLI',
  application_type: 'native',
  token_endpoint_auth_method: 'none',
  grant_types: ['authorization_code', 'refresh_token'],
  redirect_uris: ['http://127.0.0.1/callback'],
  scopes: [...OIDC_SCOPES, 'tools:read', 'tools:call'],
};
const WEB = {
  client_id: 'interop-web',
  client_name: 'Interop Web App',
  client_secret: 'interop-web-app-secret-0123456789abcdef0123',
  token_endpoint_auth_method: 'client_secret_basic',
  application_type: 'web',
  grant_types: ['authorization_code', 'refresh_token'],
  redirect_uris: ['https://app.example.com/callback'],
  post_logout_redirect_uris: ['https://app.example.com/'],
  scopes: [...OIDC_SCOPES, 'tools:read', 'tools:call'],
};
const PAR = {
  client_id: 'interop-par',
  client_name: 'Interop PAR App',
  client_secret: 'interop-par-app-secret-0123456789abcdef01234',
  token_endpoint_auth_method: 'client_secret_basic',
  grant_types: ['authorization_code', 'refresh_token'],
  redirect_uris: ['https://par.example.com/callback'],
  require_pushed_authorization_requests: true,
  scopes: ['openid', 'email', 'tools:read'],
};
const GRACE_SECONDS = 2;

const resources = [{ uri: RESOURCE, name: 'Example MCP server', scopes: ['tools:read', 'tools:call'] }];
const users = [ALICE];
const clients = [NATIVE, WEB, PAR];

const publicClient = { client_id: NATIVE.client_id, token_endpoint_auth_method: 'none' };
const webClient = { client_id: WEB.client_id };

for (const backend of ['sqlite', 'postgres']) {
  describe(`authorization code flow (${backend})`, () => {
    let server;
    let as;
    before(async () => {
      server = await startMandate({
        database: backend,
        resources,
        users,
        clients,
        tokens: { refresh_reuse_grace: `${GRACE_SECONDS}s` },
      });
      as = await discoverOidc(server.issuer);
    });
    after(async () => {
      await server?.stop();
    });
    const it = (name, fn) => test(name, { timeout: 120_000 }, withLogs(() => server, fn));

    /** Signs alice in and approves in a fresh agent; returns the authorization and the callback. */
    async function frontChannel(authz, opts = {}) {
      const agent = new UserAgent(server.issuer);
      const { callback, pages } = await agent.authorize(authz.url, { ...ALICE, ...opts });
      return { callback, pages, agent };
    }

    /** openid-client's view of the confidential web client, and a fresh code + PKCE authorization URL. */
    async function webAuthorization(parameters) {
      const config = await client.discovery(new URL(server.issuer), WEB.client_id, WEB.client_secret, client.ClientSecretBasic(WEB.client_secret), {
        execute: [client.allowInsecureRequests],
        algorithm: 'oidc',
      });
      const code_verifier = client.randomPKCECodeVerifier();
      const code_challenge = await client.calculatePKCECodeChallenge(code_verifier);
      const state = client.randomState();
      const nonce = client.randomNonce();
      const url = client.buildAuthorizationUrl(config, {
        redirect_uri: WEB.redirect_uris[0],
        code_challenge,
        code_challenge_method: 'S256',
        state,
        nonce,
        ...parameters,
      });
      return { config, code_verifier, state, nonce, url };
    }

    /** The native client's whole code flow through oauth4webapi. */
    async function nativeFlow({ scope = 'openid email offline_access tools:read', redirect_uri = NATIVE.redirect_uris[0] } = {}) {
      const authz = await newAuthorization(as, { client_id: NATIVE.client_id, redirect_uri, scope, resource: RESOURCE });
      const { callback, pages } = await frontChannel(authz);
      const tokens = await redeemCode(as, publicClient, oauth.None(), authz, callback, {
        requireIdToken: scope.split(' ').includes('openid'),
      });
      return { authz, callback, pages, tokens };
    }

    it('discovery advertises the code flow endpoints and RFC 9207 / PKCE support', async () => {
      const base = server.issuer;
      assert.equal(as.issuer, base);
      assert.equal(as.authorization_endpoint, `${base}/authorize`);
      assert.equal(as.pushed_authorization_request_endpoint, `${base}/par`);
      assert.equal(as.token_endpoint, `${base}/token`);
      assert.equal(as.userinfo_endpoint, `${base}/userinfo`);
      assert.equal(as.end_session_endpoint, `${base}/logout`);
      assert.equal(typeof as.jwks_uri, 'string');
      assert.equal(as.authorization_response_iss_parameter_supported, true);
      assert.deepEqual(as.code_challenge_methods_supported, ['S256']);
      assert.ok(Array.isArray(as.id_token_signing_alg_values_supported) && as.id_token_signing_alg_values_supported.length > 0);
      assert.ok(!as.id_token_signing_alg_values_supported.includes('none'));
      assert.ok(as.response_types_supported?.includes('code'), `response_types_supported: ${as.response_types_supported}`);
      for (const g of ['authorization_code', 'refresh_token']) assert.ok(as.grant_types_supported?.includes(g), `grant_types_supported lacks ${g}`);
      assert.ok(as.token_endpoint_auth_methods_supported?.includes('none'), 'public clients: auth method none');
      assert.ok(as.scopes_supported === undefined || as.scopes_supported.includes('openid'));
    });

    it('public native client (oauth4webapi): code + PKCE, ID token with nonce, access token for the resource, userinfo', async () => {
      const { authz, callback, pages, tokens } = await nativeFlow();
      assert.deepEqual(pages, ['login', 'consent']);
      assert.equal(callback.searchParams.get('iss'), server.issuer);
      assert.equal(callback.searchParams.get('state'), authz.state);
      assert.equal(tokens.token_type, 'bearer');
      assert.equal(typeof tokens.expires_in, 'number');
      assert.equal(typeof tokens.refresh_token, 'string', 'offline_access was granted: a refresh token');

      const idClaims = oauth.getValidatedIdTokenClaims(tokens);
      assert.equal(idClaims.nonce, authz.nonce);
      const id = await verifyIdToken(as, tokens.id_token, {
        client_id: NATIVE.client_id,
        nonce: authz.nonce,
        accessToken: tokens.access_token,
        username: ALICE.username,
        email: ALICE.email,
      });
      assert.equal(id.sub, idClaims.sub);

      const at = await verifyAccessToken(as, tokens.access_token, {
        resource: RESOURCE,
        client_id: NATIVE.client_id,
        sub: id.sub,
      });
      assert.ok(scopeSet(at.scope).includes('tools:read'), `access token scope: ${at.scope}`);
      // RFC 6749 §5.1: `scope` in the response is the access token's scope. offline_access concerns
      // the refresh token, so an access token may leave it out; everything else asked for is there.
      assert.deepEqual(scopeSet(tokens.scope ?? authz.scope), scopeSet(at.scope));
      assert.deepEqual(scopeSet(at.scope).filter((x) => x !== 'offline_access'), scopeSet(authz.scope).filter((x) => x !== 'offline_access'));
      assert.ok(!scopeSet(at.scope).includes('tools:call'), 'only what was asked for');

      const info = await userInfo(as, publicClient, tokens.access_token, id.sub);
      assert.equal(info.sub, id.sub);
      assert.equal(info.email, ALICE.email);
    });

    it('the code is single-use, bound to the PKCE verifier and to the redirect URI', async () => {
      // A second redemption of the same code.
      {
        const authz = await newAuthorization(as, { client_id: NATIVE.client_id, redirect_uri: NATIVE.redirect_uris[0], scope: 'openid tools:read', resource: RESOURCE });
        const { callback } = await frontChannel(authz);
        await redeemCode(as, publicClient, oauth.None(), authz, callback);
        await expectOAuthError(redeemCode(as, publicClient, oauth.None(), authz, callback), { error: 'invalid_grant', status: 400 });
      }
      // The wrong verifier.
      {
        const authz = await newAuthorization(as, { client_id: NATIVE.client_id, redirect_uri: NATIVE.redirect_uris[0], scope: 'openid tools:read', resource: RESOURCE });
        const { callback } = await frontChannel(authz);
        const wrong = { ...authz, code_verifier: oauth.generateRandomCodeVerifier() };
        await expectOAuthError(redeemCode(as, publicClient, oauth.None(), wrong, callback), { error: 'invalid_grant', status: 400 });
      }
      // Another redirect URI at the token endpoint than at /authorize.
      {
        const authz = await newAuthorization(as, { client_id: NATIVE.client_id, redirect_uri: NATIVE.redirect_uris[0], scope: 'openid tools:read', resource: RESOURCE });
        const { callback } = await frontChannel(authz);
        const moved = { ...authz, redirect_uri: 'http://127.0.0.1/elsewhere' };
        await expectOAuthError(redeemCode(as, publicClient, oauth.None(), moved, callback), { error: 'invalid_grant', status: 400 });
      }
    });

    it('native client: a loopback redirect URI matches on any port (RFC 8252 §7.3)', async () => {
      const { callback, tokens } = await nativeFlow({ redirect_uri: 'http://127.0.0.1:49152/callback', scope: 'openid tools:read' });
      assert.equal(callback.origin, 'http://127.0.0.1:49152');
      assert.equal(callback.pathname, '/callback');
      assert.equal(typeof tokens.access_token, 'string');
    });

    it('refresh rotates the refresh token; the new access token is valid', async () => {
      const { tokens } = await nativeFlow();
      const sub = oauth.getValidatedIdTokenClaims(tokens).sub;
      const r1 = await refresh(as, publicClient, oauth.None(), tokens.refresh_token);
      assert.equal(typeof r1.refresh_token, 'string');
      assert.notEqual(r1.refresh_token, tokens.refresh_token, 'rotation: a new refresh token');
      assert.notEqual(r1.access_token, tokens.access_token);
      await verifyAccessToken(as, r1.access_token, { resource: RESOURCE, client_id: NATIVE.client_id, sub });
      if (r1.id_token) await verifyIdToken(as, r1.id_token, { client_id: NATIVE.client_id, accessToken: r1.access_token });

      const r2 = await refresh(as, publicClient, oauth.None(), r1.refresh_token);
      assert.notEqual(r2.refresh_token, r1.refresh_token);
      await verifyAccessToken(as, r2.access_token, { resource: RESOURCE, client_id: NATIVE.client_id, sub });
    });

    it(`a rotated refresh token presented within refresh_reuse_grace (${GRACE_SECONDS}s) still gets a successor`, async () => {
      const { tokens } = await nativeFlow();
      const r1 = await refresh(as, publicClient, oauth.None(), tokens.refresh_token);
      const again = await refresh(as, publicClient, oauth.None(), tokens.refresh_token);
      assert.equal(typeof again.access_token, 'string');
      assert.equal(typeof again.refresh_token, 'string');
      assert.equal(typeof r1.refresh_token, 'string');
    });

    it('reuse of a rotated refresh token after the grace window revokes the whole family', async () => {
      const { tokens } = await nativeFlow();
      const r1 = await refresh(as, publicClient, oauth.None(), tokens.refresh_token);
      // Well past the window (whole-second clocks included).
      await sleep(GRACE_SECONDS * 1000 + 1500);
      await expectOAuthError(refresh(as, publicClient, oauth.None(), tokens.refresh_token), { error: 'invalid_grant', status: 400 });
      // The thief may hold r1: the family is gone, so the newest token is refused as well.
      await expectOAuthError(refresh(as, publicClient, oauth.None(), r1.refresh_token), { error: 'invalid_grant', status: 400 });
    });

    it(`the grace window is no longer than configured: reuse ${GRACE_SECONDS}.5 s after rotation is refused`, async () => {
      const { tokens } = await nativeFlow();
      // Rotate just after a second boundary, then present the old token 0.5 s after the window
      // ends. A server that compares whole-second timestamps with <= would still see it as
      // "within" the window here (2 <= 2); that makes the window up to a second longer than set.
      await sleep(1050 - (Date.now() % 1000));
      const rotatedAt = Date.now();
      await refresh(as, publicClient, oauth.None(), tokens.refresh_token);
      await sleep(rotatedAt + GRACE_SECONDS * 1000 + 500 - Date.now());
      await expectOAuthError(refresh(as, publicClient, oauth.None(), tokens.refresh_token), { error: 'invalid_grant', status: 400 });
    });

    it('without offline_access there is no refresh token; without openid no ID token and no userinfo', async () => {
      const a = await nativeFlow({ scope: 'openid email tools:read' });
      assert.equal(a.tokens.refresh_token, undefined, 'no offline_access: no refresh token');
      assert.equal(typeof a.tokens.id_token, 'string');

      const b = await nativeFlow({ scope: 'tools:read' });
      assert.equal(b.tokens.id_token, undefined, 'no openid: no ID token');
      assert.equal(typeof b.tokens.access_token, 'string');
      const response = await oauth.userInfoRequest(as, publicClient, b.tokens.access_token, insecure);
      assert.notEqual(response.status, 200, 'userinfo must refuse a token without openid');
      assert.ok([401, 403].includes(response.status), `userinfo status ${response.status}`);
    });

    it('confidential web client (openid-client v6, client_secret_basic): code + PKCE, ID token, userinfo, refresh', async () => {
      const { config, code_verifier, state, nonce, url } = await webAuthorization({
        scope: 'openid profile email offline_access tools:read tools:call',
        resource: RESOURCE,
      });
      const { callback, pages } = await frontChannel({ url });
      assert.deepEqual(pages, ['login', 'consent']);
      assert.equal(callback.origin + callback.pathname, WEB.redirect_uris[0]);

      const tokens = await client.authorizationCodeGrant(
        config,
        callback,
        { pkceCodeVerifier: code_verifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true },
        { resource: RESOURCE }, // RFC 8707 §2.2: the resource again at the token endpoint
      );
      const claims = tokens.claims();
      assert.equal(claims.iss, server.issuer);
      assert.equal(claims.nonce, nonce);
      await verifyIdToken(as, tokens.id_token, { client_id: WEB.client_id, nonce, accessToken: tokens.access_token, email: ALICE.email });
      const at = await verifyAccessToken(as, tokens.access_token, { resource: RESOURCE, client_id: WEB.client_id, sub: claims.sub });
      assert.deepEqual(scopeSet(at.scope).filter((s) => s.startsWith('tools:')), ['tools:call', 'tools:read']);
      assert.equal(typeof tokens.refresh_token, 'string');

      const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
      assert.equal(info.sub, claims.sub);
      assert.equal(info.email, ALICE.email);

      const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
      assert.notEqual(refreshed.refresh_token, tokens.refresh_token);
      await verifyAccessToken(as, refreshed.access_token, { resource: RESOURCE, client_id: WEB.client_id, sub: claims.sub });

      // The code flow's refresh token belongs to this client: another client cannot use it.
      await expectOAuthError(refresh(as, publicClient, oauth.None(), refreshed.refresh_token), { error: 'invalid_grant', status: 400 });
    });

    it('a plain OpenID Connect sign-in (openid-client v6) names no resource: ID token, and an access token for userinfo only', async () => {
      const { config, code_verifier, state, nonce, url } = await webAuthorization({ scope: 'openid email' });
      const { callback, pages } = await frontChannel({ url });
      assert.deepEqual(pages, ['login', 'consent']);
      const tokens = await client.authorizationCodeGrant(config, callback, {
        pkceCodeVerifier: code_verifier,
        expectedState: state,
        expectedNonce: nonce,
        idTokenExpected: true,
      });
      const claims = tokens.claims();
      assert.equal(claims.sub, ALICE.username);
      await verifyIdToken(as, tokens.id_token, { client_id: WEB.client_id, nonce, accessToken: tokens.access_token, email: ALICE.email });
      const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
      assert.equal(info.email, ALICE.email);
      const payload = JSON.parse(Buffer.from(tokens.access_token.split('.')[1], 'base64url').toString());
      assert.equal(payload.aud, `${server.issuer}/userinfo`, 'never a resource server\'s audience');
    });

    it('confidential client with the wrong secret cannot redeem its code', async () => {
      const authz = await newAuthorization(as, { client_id: WEB.client_id, redirect_uri: WEB.redirect_uris[0], scope: 'openid tools:read', resource: RESOURCE });
      const { callback } = await frontChannel(authz);
      let caught;
      try {
        await redeemCode(as, webClient, oauth.ClientSecretBasic('not-the-secret-not-the-secret-not-the-se'), authz, callback);
      } catch (e) {
        caught = e;
      }
      assert.ok(caught, 'a wrong secret must not redeem the code');
      assert.equal(caught.status, 401, `${caught}`);
    });

    it('a client that requires PAR: works through /par (openid-client), refused without it', async () => {
      const config = await client.discovery(new URL(server.issuer), PAR.client_id, PAR.client_secret, client.ClientSecretBasic(PAR.client_secret), {
        execute: [client.allowInsecureRequests],
        algorithm: 'oidc',
      });
      const params = async () => {
        const code_verifier = client.randomPKCECodeVerifier();
        return {
          code_verifier,
          state: client.randomState(),
          nonce: client.randomNonce(),
          code_challenge: await client.calculatePKCECodeChallenge(code_verifier),
        };
      };
      const p = await params();
      const request = {
        redirect_uri: PAR.redirect_uris[0],
        scope: 'openid email tools:read',
        code_challenge: p.code_challenge,
        code_challenge_method: 'S256',
        state: p.state,
        nonce: p.nonce,
        resource: RESOURCE,
      };
      const url = await client.buildAuthorizationUrlWithPAR(config, request);
      assert.ok(url.searchParams.get('request_uri')?.startsWith('urn:ietf:params:oauth:request_uri:'), `${url}`);
      const { callback } = await frontChannel({ url });
      const tokens = await client.authorizationCodeGrant(config, callback, {
        pkceCodeVerifier: p.code_verifier,
        expectedState: p.state,
        expectedNonce: p.nonce,
        idTokenExpected: true,
      });
      assert.equal(tokens.claims().nonce, p.nonce);

      // The same request sent straight to /authorize must not yield a code.
      const q = await params();
      const plain = client.buildAuthorizationUrl(config, { ...request, code_challenge: q.code_challenge, state: q.state, nonce: q.nonce });
      let outcome;
      try {
        outcome = await frontChannel({ url: plain });
      } catch (e) {
        assert.equal(e.response?.status, 400, `${e}`);
        assert.ok(textById(e.response.text, 'error-code'), 'error page names the error');
        return;
      }
      assert.equal(outcome.callback.searchParams.get('code'), null, `got a code without PAR: ${outcome.callback}`);
      assert.equal(outcome.callback.searchParams.get('error'), 'invalid_request');
    });

    it('authorization errors that can go back to the client are redirected with iss and state (no PKCE, plain PKCE)', async () => {
      for (const extra of [{ code_challenge: null, code_challenge_method: null }, { code_challenge_method: 'plain' }]) {
        const authz = await newAuthorization(as, { client_id: NATIVE.client_id, redirect_uri: NATIVE.redirect_uris[0], scope: 'openid tools:read', resource: RESOURCE, extra });
        if (extra.code_challenge_method === 'plain') authz.url.searchParams.set('code_challenge', authz.code_verifier);
        const { callback } = await frontChannel(authz);
        assert.equal(callback.searchParams.get('code'), null, `a code despite ${JSON.stringify(extra)}: ${callback}`);
        // oauth4webapi checks iss (RFC 9207) and state before it reports the error.
        const err = await expectOAuthError(Promise.resolve().then(() => oauth.validateAuthResponse(as, publicClient, callback, authz.state)), {
          error: 'invalid_request',
        });
        assert.ok(err);
      }
    });

    it('unknown client and unregistered redirect URI: an HTML error page (400), never a redirect', async () => {
      const agent = new UserAgent(server.issuer);
      const cases = [
        { client_id: 'no-such-client', redirect_uri: 'https://attacker.example/callback' },
        { client_id: WEB.client_id, redirect_uri: 'https://attacker.example/callback' },
        { client_id: WEB.client_id, redirect_uri: 'https://app.example.com/callback/../other' },
      ];
      for (const c of cases) {
        const authz = await newAuthorization(as, { ...c, scope: 'openid tools:read', resource: RESOURCE });
        const res = await agent.request(authz.url);
        assert.equal(res.status, 400, `${JSON.stringify(c)}: status ${res.status}, location ${res.location}`);
        assert.equal(res.location, undefined);
        assert.match(res.headers.get('content-type') ?? '', /^text\/html/);
        const code = textById(res.text, 'error-code');
        assert.match(code ?? '', /^[a-z_]+$/, `#error-code in:\n${res.text.slice(0, 800)}`);
        assert.match(res.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/);
      }
    });

    it('sign-in without the CSRF cookie/field pair is refused', async () => {
      const authz = await newAuthorization(as, { client_id: NATIVE.client_id, redirect_uri: NATIVE.redirect_uris[0], scope: 'openid tools:read', resource: RESOURCE });
      const agent = new UserAgent(server.issuer);
      let page = await agent.request(authz.url);
      assert.equal(page.status, 303, `GET /authorize without a session: ${page.status}`);
      assert.match(new URL(page.location).pathname, /\/login$/);
      assert.ok(new URL(page.location).searchParams.get('request'), 'login?request=<handle>');
      page = await agent.request(page.location);
      assert.equal(page.kind, 'login');
      const hidden = Object.fromEntries(
        parseForms(page.text)[0].inputs.filter((i) => i.type === 'hidden').map((i) => [i.name, i.value]),
      );
      assert.ok(hidden.csrf && hidden.request, `hidden fields: ${JSON.stringify(hidden)}`);
      const csrfCookie = [...agent.cookies.values()].includes(hidden.csrf);
      assert.ok(csrfCookie, `a cookie carries the csrf value (cookies: ${[...agent.cookies.keys()]})`);

      // A forged field: the cookie does not match.
      const forged = await agent.submit(page, 'password', { ...ALICE, csrf: 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' });
      assert.ok(forged.status >= 400 && forged.status < 500, `forged csrf: status ${forged.status} location ${forged.location}`);
      assert.ok(!forged.location?.includes('/consent'));

      // No cookies at all (another site's form): refused too.
      const stranger = new UserAgent(server.issuer);
      const res = await stranger.request(new URL(parseForms(page.text)[0].action || page.url, page.url), {
        form: { ...hidden, ...ALICE },
      });
      assert.ok(res.status >= 400 && res.status < 500, `no cookies: status ${res.status} location ${res.location}`);
      assert.ok(!res.location?.includes('/consent'));
    });
  });
}
