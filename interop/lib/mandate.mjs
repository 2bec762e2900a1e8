// Starts a real `mandate serve` on a free loopback port with a throwaway config and database,
// and stops it again. Nothing here talks OAuth: the tests do that through third-party clients.

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

const here = dirname(fileURLToPath(import.meta.url));
export const repoRoot = resolve(here, '..', '..');

/** The server binary: $MANDATE_BIN, else the debug build of this checkout. */
export function mandateBin() {
  const bin = process.env.MANDATE_BIN || join(repoRoot, 'target', 'debug', 'mandate');
  if (!existsSync(bin)) {
    throw new Error(`mandate binary not found at ${bin}: run \`cargo build -p mandate-cli\` or set MANDATE_BIN`);
  }
  return bin;
}

/** A port the kernel just handed out on 127.0.0.1 (closed again before we return it). */
export function freePort() {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolvePort(port));
    });
  });
}

/** TOML basic string. */
const q = (s) => JSON.stringify(s);
const list = (xs) => `[${xs.map(q).join(', ')}]`;

/**
 * Starts the server. `issuerPath` is '' or e.g. '/tenant1'; `clients` and `resources` are
 * plain objects rendered into [[clients]] / [[resources]] tables.
 */
export async function startMandate({ issuerPath = '', resources, clients, accessTokenTtl = '5m' }) {
  const bin = mandateBin();
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'mandate-interop-'));
  const issuer = `http://127.0.0.1:${port}${issuerPath}`;

  const lines = [
    `issuer = ${q(issuer)}`,
    `listen = ${q(`127.0.0.1:${port}`)}`,
    `database = ${q(`sqlite://${join(dir, 'mandate.db')}`)}`,
    '',
    '[tokens]',
    `access_token_ttl = ${q(accessTokenTtl)}`,
  ];
  for (const r of resources) {
    lines.push('', '[[resources]]', `uri = ${q(r.uri)}`, `name = ${q(r.name)}`, `scopes = ${list(r.scopes)}`);
  }
  for (const c of clients) {
    lines.push('', '[[clients]]', `client_id = ${q(c.client_id)}`, `client_secret = ${q(c.client_secret)}`);
    if (c.token_endpoint_auth_method) lines.push(`token_endpoint_auth_method = ${q(c.token_endpoint_auth_method)}`);
    if (c.grant_types) lines.push(`grant_types = ${list(c.grant_types)}`);
    if (c.scopes) lines.push(`scopes = ${list(c.scopes)}`);
  }
  const configFile = join(dir, 'mandate.toml');
  writeFileSync(configFile, lines.join('\n') + '\n');

  // MANDATE_* variables override the file: keep the caller's environment out of it.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('MANDATE_')));
  env.RUST_LOG ??= 'info';
  env.NO_COLOR = '1';
  const child = spawn(bin, ['serve', '--config', configFile], { env, stdio: ['ignore', 'pipe', 'pipe'] });

  let output = '';
  child.stdout.setEncoding('utf8').on('data', (d) => (output += d));
  child.stderr.setEncoding('utf8').on('data', (d) => (output += d));
  let exited = null;
  const exitPromise = new Promise((res) => child.on('exit', (code, signal) => res((exited = { code, signal }))));

  const server = {
    issuer,
    port,
    dir,
    configFile,
    get logs() {
      return output;
    },
    dumpLogs(label = 'mandate server output') {
      process.stderr.write(`\n----- ${label} (${configFile}) -----\n${config()}\n----- log -----\n${output}\n----- end -----\n`);
    },
    async stop() {
      if (exited === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exitPromise;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  const config = () => lines.join('\n');

  const deadline = Date.now() + 20_000;
  let lastError;
  for (;;) {
    if (exited !== null) {
      server.dumpLogs('mandate exited before becoming healthy');
      await server.stop();
      throw new Error(`mandate exited early (${JSON.stringify(exited)})`);
    }
    try {
      const res = await fetch(`${issuer}/healthz`, { signal: AbortSignal.timeout(1000) });
      if (res.ok) break;
      lastError = new Error(`/healthz answered ${res.status}`);
    } catch (e) {
      lastError = e;
    }
    if (Date.now() > deadline) {
      server.dumpLogs('mandate did not become healthy in 20 s');
      await server.stop();
      throw new Error(`mandate did not become healthy: ${lastError}`);
    }
    await sleep(100);
  }
  return server;
}

/** Wraps a test body so a failure prints the server's log next to the assertion. */
export function withLogs(getServer, fn) {
  return async (t) => {
    try {
      await fn(t);
    } catch (e) {
      getServer()?.dumpLogs(`mandate server output for failed test "${t.name}"`);
      throw e;
    }
  };
}
