// A real browser (Debian's Chromium, driven by playwright-core) through mandate's sign-in and
// consent pages, with the relying party's half done by oauth4webapi (strict: RFC 9207 `iss`,
// PKCE, ID token nonce). UPDATE_SCREENSHOTS=1 refreshes the screenshots in docs/screenshots/.
//
// The native client's redirect target is a tiny HTTP server on 127.0.0.1 (as a CLI's loopback
// listener would be); the web client's https redirect never leaves the browser (its request is
// observed, and no name resolves outside loopback).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launchChromium, startCallbackServer } from '../lib/chromium.mjs';
import { repoRoot, startMandate, withLogs } from '../lib/mandate.mjs';
import { discoverOidc, newAuthorization, oauth, redeemCode, verifyAccessToken, verifyIdToken, expectOAuthError } from '../lib/oidc.mjs';

// The committed screenshots are refreshed only on request (UPDATE_SCREENSHOTS=1), so a test run
// never changes tracked files; otherwise they go to a temporary directory.
const SCREENSHOTS = process.env.UPDATE_SCREENSHOTS
  ? join(repoRoot, 'docs', 'screenshots')
  : mkdtempSync(join(tmpdir(), 'mandate-screenshots-'));
const VIEWPORT = { width: 900, height: 700 };

// DEVELOPMENT FIXTURES for a throwaway server: not secrets.
const RESOURCE = 'http://127.0.0.1:9090/mcp';
const RESOURCE_NAME = 'Example MCP server';
const ALICE = { username: 'alice', password: 'interop-alice-password-0123', email: 'alice@example.com' };
const BOB = { username: 'bob', password: 'interop-bob-password-0123456', email: 'bob@example.com' };
const WEB_REDIRECT = 'https://app.example.com/callback';
const NATIVE_SCOPE = 'openid profile email offline_access tools:read tools:call';

function cspOf(response) {
  return response.headers()['content-security-policy'] ?? '';
}

describe('authorization code flow in Chromium', () => {
  let server;
  let as;
  let browser;
  let cb;
  let NATIVE;
  let WEB;
  let aliceContext; // signed in once, used by the tests that follow each other
  const nativeClient = () => ({ client_id: NATIVE.client_id, token_endpoint_auth_method: 'none' });

  before(async () => {
    cb = await startCallbackServer();
    NATIVE = {
      client_id: 'interop-cli',
      client_name: 'Interop CLI',
      application_type: 'native',
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'],
      redirect_uris: [cb.redirectUri],
      scopes: ['openid', 'profile', 'email', 'offline_access', 'tools:read', 'tools:call'],
    };
    WEB = {
      client_id: 'interop-web',
      client_name: 'Interop Web App',
      client_secret: 'interop-web-app-secret-0123456789abcdef0123',
      token_endpoint_auth_method: 'client_secret_basic',
      application_type: 'web',
      grant_types: ['authorization_code', 'refresh_token'],
      redirect_uris: [WEB_REDIRECT],
      scopes: ['openid', 'email', 'tools:read'],
    };
    server = await startMandate({
      resources: [{ uri: RESOURCE, name: RESOURCE_NAME, scopes: ['tools:read', 'tools:call'] }],
      users: [ALICE, BOB],
      clients: [NATIVE, WEB],
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

  async function newContext() {
    const context = await browser.newContext({ viewport: VIEWPORT });
    // The web client's redirect target: answered here if the browser lets the route see it.
    await context.route('https://app.example.com/**', (route) => route.fulfill({ status: 200, contentType: 'text/html', body: '<p>web app</p>' }));
    return context;
  }

  const nativeAuthorization = (scope = NATIVE_SCOPE) =>
    newAuthorization(as, { client_id: NATIVE.client_id, redirect_uri: cb.redirectUri, scope, resource: RESOURCE });

  async function signIn(page, { username, password }) {
    await page.locator('input[name="username"]').fill(username);
    await page.locator('input[name="password"]').fill(password);
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST' && r.request().isNavigationRequest()),
      page.getByRole('button', { name: 'Sign in' }).click(),
    ]);
    return response;
  }

  /** Clicks Allow and waits for the browser to land on the loopback callback; returns its URL. */
  async function allow(page, { remember = false } = {}) {
    if (remember) await page.getByLabel('Remember this decision').check();
    await Promise.all([page.waitForURL((u) => u.href.startsWith(cb.redirectUri)), page.getByRole('button', { name: 'Allow' }).click()]);
    return new URL(page.url());
  }

  /** The relying party's half: oauth4webapi checks iss/state, redeems with PKCE, checks the ID token. */
  async function redeem(authz, callbackUrl) {
    const tokens = await redeemCode(as, nativeClient(), oauth.None(), authz, callbackUrl);
    const claims = oauth.getValidatedIdTokenClaims(tokens);
    assert.equal(claims.nonce, authz.nonce, 'ID token nonce');
    await verifyIdToken(as, tokens.id_token, { client_id: NATIVE.client_id, nonce: authz.nonce, accessToken: tokens.access_token });
    await verifyAccessToken(as, tokens.access_token, { resource: RESOURCE, client_id: NATIVE.client_id, sub: claims.sub });
    return { tokens, claims };
  }

  it('login page: 303 from /authorize, the form, CSP frame-ancestors none; screenshot', async () => {
    const context = await newContext();
    try {
      const page = await context.newPage();
      const authz = await nativeAuthorization();
      const response = await page.goto(authz.url.href);
      assert.equal(response.status(), 200);
      const redirect = await response.request().redirectedFrom()?.response();
      assert.equal(redirect?.status(), 303, 'GET /authorize without a session answers 303');
      const url = new URL(page.url());
      assert.equal(url.origin + url.pathname, `${server.issuer}/login`);
      assert.ok(url.searchParams.get('request'), '/login?request=<handle>');
      assert.match(cspOf(response), /frame-ancestors 'none'/, `CSP: ${cspOf(response)}`);
      assert.match(cspOf(redirect), /frame-ancestors 'none'/, `CSP of the 303: ${cspOf(redirect)}`);

      assert.equal(await page.locator('form[method="post"]').count(), 1);
      assert.equal(await page.locator('input[name="username"]').count(), 1);
      assert.equal(await page.locator('input[name="password"][type="password"]').count(), 1);
      assert.ok(await page.locator('input[type="hidden"][name="csrf"]').getAttribute('value'));
      assert.ok(await page.locator('input[type="hidden"][name="request"]').getAttribute('value'));
      assert.equal(await page.getByRole('button', { name: 'Sign in' }).count(), 1);

      mkdirSync(SCREENSHOTS, { recursive: true });
      await page.screenshot({ path: join(SCREENSHOTS, 'login.png'), fullPage: true });
    } finally {
      await context.close();
    }
  });

  it('wrong password: 401 and "Incorrect username or password"; then the right one gets through', async () => {
    const context = await newContext();
    try {
      const page = await context.newPage();
      await page.goto((await nativeAuthorization()).url.href);
      const wrong = await signIn(page, { username: BOB.username, password: 'not-bobs-password' });
      assert.equal(wrong.status(), 401);
      assert.match(await page.locator('body').innerText(), /Incorrect username or password/);
      assert.equal(await page.locator('input[name="password"]').count(), 1, 'the login form again');

      const right = await signIn(page, BOB);
      assert.ok(right.status() === 303 || right.status() === 200, `status ${right.status()}`);
      await page.waitForURL((u) => u.pathname.endsWith('/consent'));
    } finally {
      await context.close();
    }
  });

  it('sign in and Allow (native, loopback): consent page content, code redeemed by oauth4webapi, nonce checked; screenshot', async () => {
    aliceContext = await newContext();
    const page = await aliceContext.newPage();
    const authz = await nativeAuthorization();
    await page.goto(authz.url.href);
    const consentResponse = page.waitForResponse((r) => new URL(r.url()).pathname.endsWith('/consent') && r.request().method() === 'GET');
    const posted = await signIn(page, ALICE);
    assert.equal(posted.status(), 303, 'sign-in answers 303 to the consent page');
    const consent = await consentResponse;
    assert.equal(consent.status(), 200);
    const url = new URL(page.url());
    assert.equal(url.origin + url.pathname, `${server.issuer}/consent`);
    assert.ok(url.searchParams.get('request'), '/consent?request=<handle>');
    assert.match(cspOf(consent), /frame-ancestors 'none'/, `CSP: ${cspOf(consent)}`);

    const text = await page.locator('body').innerText();
    assert.match(text, /Interop CLI/, 'client name');
    assert.match(text, /127\.0\.0\.1/, 'redirect host');
    assert.match(text, /only to this computer/, 'loopback warning');
    assert.match(text, new RegExp(RESOURCE_NAME), 'resource name');
    for (const scope of NATIVE_SCOPE.split(' ')) assert.ok(text.includes(scope), `scope ${scope} shown`);
    assert.equal(await page.getByLabel('Remember this decision').count(), 1);
    assert.equal(await page.locator('input[type="checkbox"][name="remember"]').count(), 1);
    assert.equal(await page.locator('button[name="decision"][value="approve"]').innerText(), 'Allow');
    assert.equal(await page.locator('button[name="decision"][value="deny"]').innerText(), 'Deny');
    await page.screenshot({ path: join(SCREENSHOTS, 'consent.png'), fullPage: true });

    const callback = await allow(page);
    assert.equal(callback.searchParams.get('iss'), server.issuer);
    assert.equal(callback.searchParams.get('state'), authz.state);
    assert.ok(callback.searchParams.get('code'));
    assert.ok(cb.hits.some((h) => h.startsWith('/callback?')), 'the loopback listener got the redirect');
    const { tokens } = await redeem(authz, callback);
    assert.equal(typeof tokens.refresh_token, 'string', 'offline_access granted');
  });

  it('signed in, not remembered: the next authorization asks again (no login); with "Remember this decision" the one after skips consent', async () => {
    assert.ok(aliceContext, 'needs the previous test');
    const page = await aliceContext.newPage();
    const authz1 = await nativeAuthorization();
    await page.goto(authz1.url.href);
    assert.match(new URL(page.url()).pathname, /\/consent$/, `expected consent without login, at ${page.url()}`);
    const cb1 = await allow(page, { remember: true });
    await redeem(authz1, cb1);

    const navigations = [];
    page.on('request', (r) => r.isNavigationRequest() && navigations.push(r.url()));
    const authz2 = await nativeAuthorization();
    await Promise.all([page.waitForURL((u) => u.href.startsWith(cb.redirectUri)), page.goto(authz2.url.href)]);
    assert.ok(!navigations.some((u) => /\/(consent|login)\b/.test(new URL(u).pathname)), `pages on the way: ${navigations.join(' -> ')}`);
    const cb2 = new URL(page.url());
    assert.equal(cb2.searchParams.get('state'), authz2.state);
    await redeem(authz2, cb2);
  });

  it('/account lists the remembered consent with a Revoke button; revoking brings the consent page back', async () => {
    assert.ok(aliceContext, 'needs the previous tests');
    const page = await aliceContext.newPage();
    const response = await page.goto(`${server.issuer}/account`);
    assert.equal(response.status(), 200);
    assert.match(cspOf(response), /frame-ancestors 'none'/);
    const rows = () =>
      page
        .locator('tr, li, section, div')
        .filter({ hasText: 'Interop CLI' })
        .filter({ has: page.getByRole('button', { name: 'Revoke' }) });
    assert.ok((await rows().count()) >= 1, `no row for Interop CLI with a Revoke button:\n${await page.locator('body').innerText()}`);
    const [revoked] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST' && r.request().isNavigationRequest()),
      rows().last().getByRole('button', { name: 'Revoke' }).click(),
    ]);
    assert.ok(revoked.status() < 400, `Revoke answered ${revoked.status()}`);
    await page.goto(`${server.issuer}/account`);
    assert.equal(await rows().count(), 0, `still listed after Revoke:\n${await page.locator('body').innerText()}`);

    const authz = await nativeAuthorization();
    await page.goto(authz.url.href);
    assert.match(new URL(page.url()).pathname, /\/consent$/, `after Revoke the consent page is back; at ${page.url()}`);
  });

  it('Deny (web client, https redirect): access_denied with state and iss; no loopback warning', async () => {
    const context = await newContext();
    try {
      const page = await context.newPage();
      const authz = await newAuthorization(as, { client_id: WEB.client_id, redirect_uri: WEB_REDIRECT, scope: 'openid email tools:read', resource: RESOURCE });
      await page.goto(authz.url.href);
      await signIn(page, ALICE);
      await page.waitForURL((u) => u.pathname.endsWith('/consent'));
      const text = await page.locator('body').innerText();
      assert.match(text, /Interop Web App/);
      assert.match(text, /app\.example\.com/, 'redirect host');
      assert.doesNotMatch(text, /only to this computer/, 'no loopback warning for an https redirect');

      const [request] = await Promise.all([
        page.waitForRequest((r) => r.url().startsWith(WEB_REDIRECT)),
        page.getByRole('button', { name: 'Deny' }).click(),
      ]);
      const callback = new URL(request.url());
      assert.equal(callback.searchParams.get('error'), 'access_denied');
      assert.equal(callback.searchParams.get('state'), authz.state);
      assert.equal(callback.searchParams.get('iss'), server.issuer);
      assert.equal(callback.searchParams.get('code'), null);
      await expectOAuthError(
        Promise.resolve().then(() => oauth.validateAuthResponse(as, { client_id: WEB.client_id }, callback, authz.state)),
        { error: 'access_denied' },
      );
    } finally {
      await context.close();
    }
  });

  it('unknown client / unregistered redirect URI: a 400 error page with #error-code, no redirect', async () => {
    const context = await newContext();
    try {
      const page = await context.newPage();
      const left = [];
      page.on('request', (r) => new URL(r.url()).origin !== new URL(server.issuer).origin && left.push(r.url()));
      for (const c of [
        { client_id: 'no-such-client', redirect_uri: 'https://app.example.com/callback' },
        { client_id: WEB.client_id, redirect_uri: 'https://app.example.com/elsewhere' },
      ]) {
        const authz = await newAuthorization(as, { ...c, scope: 'openid tools:read', resource: RESOURCE });
        const response = await page.goto(authz.url.href);
        assert.equal(response.status(), 400, JSON.stringify(c));
        assert.equal(response.request().redirectedFrom(), null, 'no redirect');
        assert.match(await page.locator('#error-code').innerText(), /^[a-z_]+$/);
        assert.match(cspOf(response), /frame-ancestors 'none'/);
      }
      assert.deepEqual(left, [], 'the browser never left the server');
    } finally {
      await context.close();
    }
  });
});

describe('sign-in throttling in Chromium', () => {
  let server;
  let browser;
  before(async () => {
    server = await startMandate({
      resources: [{ uri: RESOURCE, name: RESOURCE_NAME, scopes: ['tools:read'] }],
      users: [ALICE],
      clients: [
        {
          client_id: 'interop-cli',
          client_name: 'Interop CLI',
          application_type: 'native',
          token_endpoint_auth_method: 'none',
          grant_types: ['authorization_code', 'refresh_token'],
          redirect_uris: ['http://127.0.0.1/callback'],
          scopes: ['openid', 'tools:read'],
        },
      ],
    });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  test(
    'repeated wrong passwords end in 429 "Too many failed sign-ins"',
    { timeout: 180_000 },
    withLogs(() => server, async () => {
      const context = await browser.newContext({ viewport: VIEWPORT });
      try {
        const page = await context.newPage();
        const as = await discoverOidc(server.issuer);
        const authz = await newAuthorization(as, { client_id: 'interop-cli', redirect_uri: 'http://127.0.0.1/callback', scope: 'openid tools:read', resource: RESOURCE });
        await page.goto(authz.url.href);
        const statuses = [];
        for (let i = 0; i < 25; i++) {
          await page.locator('input[name="username"]').fill(ALICE.username);
          await page.locator('input[name="password"]').fill(`wrong-password-${i}`);
          const [response] = await Promise.all([
            page.waitForResponse((r) => r.request().method() === 'POST' && r.request().isNavigationRequest()),
            page.getByRole('button', { name: 'Sign in' }).click(),
          ]);
          statuses.push(response.status());
          if (response.status() === 429) break;
          assert.equal(response.status(), 401, `attempt ${i + 1}: ${statuses}`);
          if (!(await page.locator('input[name="password"]').count())) break;
        }
        assert.equal(statuses.at(-1), 429, `statuses: ${statuses}`);
        assert.match(await page.locator('body').innerText(), /Too many failed sign-ins/);
      } finally {
        await context.close();
      }
    }),
  );
});
