// Debian's Chromium driven by playwright-core, and a loopback listener to be a native client's
// redirect target (as a CLI's would be). Nothing but loopback resolves in the browser.

import { existsSync } from 'node:fs';
import { createServer } from 'node:http';
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

export function launchChromium() {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (scripts/install-test-deps.sh does)`);
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost',
    ],
  });
}

/** A redirect target on 127.0.0.1: records each request and answers a plain page. */
export async function startCallbackServer() {
  const hits = [];
  const srv = createServer((req, res) => {
    hits.push(req.url);
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><title>Callback</title><p>You can close this window.</p>');
  });
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${srv.address().port}`;
  return { hits, base, redirectUri: `${base}/callback`, close: () => new Promise((r) => srv.close(r)) };
}

/**
 * A person answering an authorization request in Chromium, as an MCP host's "open this URL in
 * the browser" leads to: opens `url` in a new page of `context` (a browser context, so a session
 * from an earlier sign-in is kept), signs in as `user` if the sign-in page shows, clicks Allow on
 * the consent page, and waits until the browser reaches `redirectUri` (the host's loopback
 * listener). Returns { callback: the URL it reached, signedIn: whether it had to sign in,
 * consent: the consent page's text }.
 */
export async function approveInChromium(context, url, { user, redirectUri, timeout = 30_000 }) {
  const page = await context.newPage();
  try {
    await page.goto(String(url));
    let signedIn = false;
    if (await page.locator('input[name="password"]').count()) {
      await page.locator('input[name="username"]').fill(user.username);
      await page.locator('input[name="password"]').fill(user.password);
      await Promise.all([page.waitForURL((u) => u.pathname.endsWith('/consent'), { timeout }), page.getByRole('button', { name: 'Sign in' }).click()]);
      signedIn = true;
    }
    const consent = await page.locator('body').innerText();
    await Promise.all([page.waitForURL((u) => u.href.startsWith(redirectUri), { timeout }), page.getByRole('button', { name: 'Allow' }).click()]);
    return { callback: new URL(page.url()), signedIn, consent };
  } finally {
    await page.close();
  }
}
