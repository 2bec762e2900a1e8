// The chain of custody page in a real browser (Debian's Chromium, playwright-core): alice signs
// in and authorizes an agent (oauth4webapi as the agent), an MCP server exchanges her token
// (RFC 8693), and alice, on her account page, follows the link to the chain, sees it drawn (SVG),
// and pulls the kill switch; introspection then reports the exchanged token inactive and the
// original one still active.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { launchChromium, startCallbackServer, approveInChromium } from '../lib/chromium.mjs';
import { startMandate, withLogs } from '../lib/mandate.mjs';
import { discoverOidc, newAuthorization, oauth, redeemCode, insecure } from '../lib/oidc.mjs';

// DEVELOPMENT FIXTURES for a throwaway server: not secrets.
const ALICE = { username: 'alice', password: 'interop-lineage-alice-0123' };
const SECRET = 'interop-lineage-secret-0123456789abcdefghij';
const B = 'https://b.example/mcp';
const C = 'https://c.example/api';
const TE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const AT = 'urn:ietf:params:oauth:token-type:access_token';

let server;
let browser;
let cb;
let as;
before(async () => {
  cb = await startCallbackServer();
  server = await startMandate({
    users: [ALICE],
    resources: [
      { uri: B, name: 'MCP server B', scopes: ['data:read'], client_id: 'mcp-b' },
      { uri: C, name: 'Internal API C', scopes: ['data:read'] },
    ],
    clients: [
      { client_id: 'agent', token_endpoint_auth_method: 'none', application_type: 'native', redirect_uris: [cb.redirectUri], scopes: ['data:read'] },
      { client_id: 'mcp-b', client_secret: SECRET, grant_types: [TE], scopes: ['data:read'] },
      { client_id: 'rs', client_secret: SECRET, grant_types: [] },
    ],
  });
  as = await discoverOidc(server.issuer);
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
  await server?.stop();
  await cb?.close();
});

async function introspect(token) {
  const client = { client_id: 'rs' };
  const response = await oauth.introspectionRequest(as, client, oauth.ClientSecretBasic(SECRET), token, insecure);
  return oauth.processIntrospectionResponse(as, client, response);
}

test('alice sees the chain an agent and an MCP server built for her, and revokes it', withLogs(() => server, async () => {
  const context = await browser.newContext();
  const authz = await newAuthorization(as, { client_id: 'agent', redirect_uri: cb.redirectUri, scope: 'data:read', resource: B });
  const { callback } = await approveInChromium(context, authz.url, { user: ALICE, redirectUri: cb.redirectUri });
  const agent = { client_id: 'agent', token_endpoint_auth_method: 'none' };
  const t0 = (await redeemCode(as, agent, oauth.None(), authz, callback, { requireIdToken: false })).access_token;

  const response = await oauth.genericTokenEndpointRequest(as, { client_id: 'mcp-b' }, oauth.ClientSecretBasic(SECRET), TE,
    { subject_token: t0, subject_token_type: AT, resource: C }, insecure);
  const t1 = (await oauth.processGenericTokenEndpointResponse(as, { client_id: 'mcp-b' }, response)).access_token;

  const page = await context.newPage();
  await page.goto(`${server.issuer}/account`);
  assert.match(await page.locator('#activity').innerText(), /acting: mcp-b ← agent/);
  const graphResponse = await Promise.all([page.waitForNavigation(), page.locator('#activity a', { hasText: 'mcp-b' }).click()]);
  assert.match(graphResponse[0].headers()['content-security-policy'], /frame-ancestors 'none'/);
  assert.equal(await page.locator('svg.lineage rect').count(), 2, 'two tokens: the agent\'s and the exchanged one');
  assert.match(await page.locator('svg.lineage').textContent(), /acting: mcp-b ← agent/);
  const box = await page.locator('svg.lineage').boundingBox();
  assert.ok(box && box.width > 200 && box.height > 100, `the graph is drawn: ${JSON.stringify(box)}`);

  await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: /Revoke it and everything derived from it/ }).click()]);
  assert.equal(await page.locator('svg.lineage rect.revoked').count(), 1);
  assert.equal(await page.getByRole('button', { name: /Revoke it/ }).count(), 0, 'nothing left to revoke');
  assert.equal((await introspect(t1)).active, false, 'the exchanged token is dead');
  assert.equal((await introspect(t0)).active, true, 'alice\'s token to the agent lives on');
  await context.close();
}));
