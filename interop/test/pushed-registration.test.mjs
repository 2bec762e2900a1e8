// Interop: pushed client registration (draft-richer-oauth-pushed-client-registration-00, behind
// `registration.pushed = true`) on SQLite and PostgreSQL. oauth4webapi pushes the request to /par
// with the static client id and a `client_registration` parameter, Chromium (playwright-core)
// signs alice in through the real pages and allows, and oauth4webapi redeems the code (RFC 9207
// `iss`, PKCE, ID token nonce and audience) with the static client id.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startMandate, withLogs } from '../lib/mandate.mjs';
import { launchChromium, startCallbackServer } from '../lib/chromium.mjs';
import { discoverOidc, insecure, oauth, verifyAccessToken, verifyIdToken } from '../lib/oidc.mjs';

const STATIC_ID = 'urn:ietf:oauth:parameters:dynamic';
// DEVELOPMENT FIXTURES for a throwaway server: not secrets.
const RESOURCE = 'http://127.0.0.1:9090/mcp';
const ALICE = { username: 'alice', password: 'interop-alice-password-0123', email: 'alice@example.com' };
const NAME = 'Interop Ephemeral Agent';

for (const backend of ['sqlite', 'postgres']) {
  describe(`pushed client registration (${backend})`, () => {
    let server;
    let as;
    let browser;
    let cb;
    const client = { client_id: STATIC_ID, token_endpoint_auth_method: 'none' };

    before(async () => {
      cb = await startCallbackServer();
      server = await startMandate({
        database: backend,
        resources: [{ uri: RESOURCE, name: 'Example MCP server', scopes: ['tools:read', 'tools:call'] }],
        users: [ALICE],
        clients: [],
        registration: { pushed: true },
      });
      as = await discoverOidc(server.issuer);
      browser = await launchChromium();
    });
    after(async () => {
      await browser?.close();
      await server?.stop();
      await cb?.close();
    });
    const it = (name, fn) => test(name, { timeout: 120_000 }, withLogs(() => server, fn));

    /** PAR through oauth4webapi with the static id and the client's own metadata. */
    async function push({ scope = 'openid tools:read offline_access', registration } = {}) {
      const code_verifier = oauth.generateRandomCodeVerifier();
      const state = oauth.generateRandomState();
      const nonce = oauth.generateRandomNonce();
      const params = {
        response_type: 'code',
        redirect_uri: cb.redirectUri,
        scope,
        resource: RESOURCE,
        code_challenge: await oauth.calculatePKCECodeChallenge(code_verifier),
        code_challenge_method: 'S256',
        state,
        nonce,
        client_registration: JSON.stringify(
          registration ?? { client_name: NAME, redirect_uris: [cb.redirectUri], application_type: 'native', logo_uri: 'https://agent.example/logo.png' },
        ),
      };
      const response = await oauth.pushedAuthorizationRequest(as, client, oauth.None(), params, insecure);
      const { request_uri, expires_in } = await oauth.processPushedAuthorizationResponse(as, client, response);
      assert.match(request_uri, /^urn:ietf:params:oauth:request_uri:/);
      assert.ok(expires_in > 0);
      const url = new URL(as.authorization_endpoint);
      url.searchParams.set('client_id', STATIC_ID);
      url.searchParams.set('request_uri', request_uri);
      return { url, code_verifier, state, nonce };
    }

    async function signIn(page) {
      await page.locator('input[name="username"]').fill(ALICE.username);
      await page.locator('input[name="password"]').fill(ALICE.password);
      await Promise.all([page.waitForURL((u) => u.pathname.endsWith('/consent')), page.getByRole('button', { name: 'Sign in' }).click()]);
    }

    async function allow(page) {
      await Promise.all([page.waitForURL((u) => u.href.startsWith(cb.redirectUri)), page.getByRole('button', { name: 'Allow' }).click()]);
      return new URL(page.url());
    }

    async function redeem(pushed, callback) {
      const params = oauth.validateAuthResponse(as, client, callback, pushed.state);
      const response = await oauth.authorizationCodeGrantRequest(as, client, oauth.None(), params, cb.redirectUri, pushed.code_verifier, insecure);
      return oauth.processAuthorizationCodeResponse(as, client, response, { expectedNonce: pushed.nonce, requireIdToken: true });
    }

    it('discovery advertises pushed_client_registration_supported', async () => {
      assert.equal(as.pushed_client_registration_supported, true);
      assert.equal(as.pushed_authorization_request_endpoint, `${server.issuer}/par`);
    });

    it('PAR with client_registration, sign-in and consent in Chromium (unverified name, never remembered), code redeemed without a refresh token', async () => {
      const context = await browser.newContext();
      try {
        const page = await context.newPage();
        const first = await push();
        await page.goto(first.url.href);
        assert.match(await page.locator('body').innerText(), new RegExp(`${NAME} \\(unverified name\\)`), 'sign-in page names the client as unverified');
        await signIn(page);
        const text = await page.locator('body').innerText();
        assert.match(text, new RegExp(`${NAME} \\(unverified name\\)`));
        assert.match(text, /has not verified who made it/);
        assert.match(text, /127\.0\.0\.1/, 'redirect host');
        assert.match(text, /only to this computer/, 'loopback warning');
        assert.doesNotMatch(text, /offline_access/, 'offline_access is dropped for pushed clients');
        assert.equal(await page.locator('input[name="remember"]').count(), 0, 'no "Remember this decision" for the shared client id');
        const callback = await allow(page);
        assert.equal(callback.searchParams.get('iss'), server.issuer);

        const tokens = await redeem(first, callback);
        assert.equal(tokens.refresh_token, undefined, 'no refresh token for a pushed client');
        const claims = oauth.getValidatedIdTokenClaims(tokens);
        const id = await verifyIdToken(as, tokens.id_token, { client_id: STATIC_ID, nonce: first.nonce, accessToken: tokens.access_token, username: ALICE.username });
        assert.equal(id.sub, claims.sub);
        const at = await verifyAccessToken(as, tokens.access_token, { resource: RESOURCE, client_id: STATIC_ID, sub: claims.sub, scope: 'openid tools:read' });
        assert.equal(at.client_id, STATIC_ID);

        // Signed in, the next pushed request goes straight to consent again: nothing remembered.
        const second = await push({ registration: { client_name: 'Another Agent', redirect_uris: [cb.redirectUri], application_type: 'native' } });
        await page.goto(second.url.href);
        assert.match(new URL(page.url()).pathname, /\/consent$/, `expected the consent page, at ${page.url()}`);
        assert.match(await page.locator('body').innerText(), /Another Agent \(unverified name\)/);
        const tokens2 = await redeem(second, await allow(page));
        assert.equal(typeof tokens2.access_token, 'string');

        await page.goto(`${server.issuer}/account`);
        assert.equal(await page.locator('#no-consents').count(), 1, 'the account page lists no remembered consent');
      } finally {
        await context.close();
      }
    });

    it('the static id without PAR gets an error page, never a redirect; a secret at /par is invalid_client', async () => {
      const context = await browser.newContext();
      try {
        const page = await context.newPage();
        const url = new URL(as.authorization_endpoint);
        for (const [k, v] of Object.entries({ response_type: 'code', client_id: STATIC_ID, redirect_uri: cb.redirectUri, code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256', state: 'x', resource: RESOURCE })) {
          url.searchParams.set(k, v);
        }
        const hits = cb.hits.length;
        const response = await page.goto(url.href);
        assert.equal(response.status(), 400);
        assert.equal(response.request().redirectedFrom(), null);
        assert.equal(await page.locator('#error-code').innerText(), 'invalid_request');
        assert.equal(cb.hits.length, hits, 'the redirect URI was never visited');
      } finally {
        await context.close();
      }
      const response = await oauth.pushedAuthorizationRequest(
        as,
        client,
        oauth.ClientSecretPost('not-a-secret-it-has-none'),
        { response_type: 'code', redirect_uri: cb.redirectUri, state: 'x', resource: RESOURCE, code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256' },
        insecure,
      );
      assert.equal(response.status, 401);
      assert.equal((await response.json()).error, 'invalid_client');
    });
  });
}
