// Starts a real `mandate serve` on a free loopback port with a throwaway config and database,
// and stops it again. Nothing here talks OAuth: the tests do that through third-party clients.

import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
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
const table = (obj) => `{ ${Object.entries(obj).map(([k, v]) => `${q(k)} = ${q(v)}`).join(', ')} }`;
/** Any JSON-like value as a TOML value: objects become inline tables (e.g. a client's `jwks`). */
const tomlValue = (v) => {
  if (Array.isArray(v)) return `[${v.map(tomlValue).join(', ')}]`;
  if (v !== null && typeof v === 'object') return `{ ${Object.entries(v).map(([k, x]) => `${q(k)} = ${tomlValue(x)}`).join(', ')} }`;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return q(v);
};

/** Where tests find PostgreSQL: $PG_TEST_URL (as the Rust tests), else the local trust-auth server. */
export const pgAdminUrl = () => process.env.PG_TEST_URL || 'postgres://postgres@127.0.0.1:5432/postgres';

/**
 * Creates an empty PostgreSQL database `mandate_t_<16 hex>` (the prefix the Rust tests use and the
 * test script sweeps) with psql, and returns its URL and a function that drops it. PostgreSQL is
 * required, not optional: an unreachable server fails the test with psql's message.
 */
export function createPostgresDatabase() {
  const admin = pgAdminUrl();
  const name = `mandate_t_${randomBytes(8).toString('hex')}`;
  const psql = (sql) => execFileSync('psql', [admin, '-v', 'ON_ERROR_STOP=1', '-qAtc', sql], { encoding: 'utf8', stdio: 'pipe' });
  try {
    psql(`CREATE DATABASE ${name}`);
  } catch (e) {
    throw new Error(`PostgreSQL is required (${admin}): CREATE DATABASE failed: ${e.stderr || e.message}`);
  }
  const base = admin.slice(0, admin.lastIndexOf('/'));
  return {
    name,
    url: `${base}/${name}`,
    drop() {
      psql(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
  };
}

/**
 * Starts the server. `issuerPath` is '' or e.g. '/tenant1'; `clients`, `resources` and `users`
 * are plain objects rendered into [[clients]] / [[resources]] / [[users]] tables (keys as in the
 * config file). `database` is 'sqlite' (a file in a fresh temporary folder, the default),
 * 'postgres' (a fresh database, dropped again by stop()), or a database URL used as it is.
 * `tokens`, `login` and `registration` hold extra keys of the [tokens], [login] and
 * [registration] tables. `attesters` are [[attesters]] tables (`name`, `issuer`, `jwks` or
 * `jwks_uri`) and `attestation` the keys of [attestation]. A client's `jwks` (a JWK Set object) is written as an inline table,
 * its `jwks_uri` as a string. `env` adds variables to the server's environment (e.g.
 * SSL_CERT_FILE, so its outbound fetches trust a test CA).
 */
export async function startMandate({
  issuerPath = '',
  resources,
  clients,
  users = [],
  database = 'sqlite',
  accessTokenTtl = '5m',
  tokens = {},
  login = {},
  registration = {},
  attesters = [],
  attestation = {},
  env: extraEnv = {},
}) {
  const bin = mandateBin();
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'mandate-interop-'));
  const issuer = `http://127.0.0.1:${port}${issuerPath}`;
  let pg = null;
  let databaseUrl = database;
  if (database === 'sqlite') databaseUrl = `sqlite://${join(dir, 'mandate.db')}`;
  if (database === 'postgres') {
    pg = createPostgresDatabase();
    databaseUrl = pg.url;
  }

  const lines = [
    `issuer = ${q(issuer)}`,
    `listen = ${q(`127.0.0.1:${port}`)}`,
    `database = ${q(databaseUrl)}`,
    '',
    '[tokens]',
    `access_token_ttl = ${q(accessTokenTtl)}`,
  ];
  for (const [k, v] of Object.entries(tokens)) lines.push(`${k} = ${q(v)}`);
  if (Object.keys(login).length) {
    lines.push('', '[login]');
    for (const [k, v] of Object.entries(login)) lines.push(`${k} = ${typeof v === 'number' ? v : q(v)}`);
  }
  if (Object.keys(registration).length) {
    lines.push('', '[registration]');
    for (const [k, v] of Object.entries(registration)) lines.push(`${k} = ${tomlValue(v)}`);
  }
  if (Object.keys(attestation).length) {
    lines.push('', '[attestation]');
    for (const [k, v] of Object.entries(attestation)) lines.push(`${k} = ${tomlValue(v)}`);
  }
  for (const a of attesters) {
    lines.push('', '[[attesters]]', `name = ${q(a.name)}`);
    if (a.issuer) lines.push(`issuer = ${q(a.issuer)}`);
    if (a.jwks) lines.push(`jwks = ${tomlValue(a.jwks)}`);
    if (a.jwks_uri) lines.push(`jwks_uri = ${q(a.jwks_uri)}`);
  }
  for (const r of resources) {
    lines.push('', '[[resources]]', `uri = ${q(r.uri)}`, `name = ${q(r.name)}`, `scopes = ${list(r.scopes)}`);
    if (r.scope_descriptions) lines.push(`scope_descriptions = ${table(r.scope_descriptions)}`);
    if (r.client_id) lines.push(`client_id = ${q(r.client_id)}`);
  }
  for (const u of users) {
    lines.push('', '[[users]]', `username = ${q(u.username)}`, `password = ${q(u.password)}`);
    if (u.email) lines.push(`email = ${q(u.email)}`);
  }
  for (const c of clients) {
    lines.push('', '[[clients]]', `client_id = ${q(c.client_id)}`);
    if (c.client_name) lines.push(`client_name = ${q(c.client_name)}`);
    if (c.client_secret) lines.push(`client_secret = ${q(c.client_secret)}`);
    if (c.token_endpoint_auth_method) lines.push(`token_endpoint_auth_method = ${q(c.token_endpoint_auth_method)}`);
    if (c.jwks) lines.push(`jwks = ${tomlValue(c.jwks)}`);
    if (c.jwks_uri) lines.push(`jwks_uri = ${q(c.jwks_uri)}`);
    if (c.grant_types) lines.push(`grant_types = ${list(c.grant_types)}`);
    if (c.scopes) lines.push(`scopes = ${list(c.scopes)}`);
    if (c.resources) lines.push(`resources = ${list(c.resources)}`);
    if (c.redirect_uris) lines.push(`redirect_uris = ${list(c.redirect_uris)}`);
    if (c.post_logout_redirect_uris) lines.push(`post_logout_redirect_uris = ${list(c.post_logout_redirect_uris)}`);
    if (c.application_type) lines.push(`application_type = ${q(c.application_type)}`);
    if (c.require_pushed_authorization_requests !== undefined) {
      lines.push(`require_pushed_authorization_requests = ${Boolean(c.require_pushed_authorization_requests)}`);
    }
  }
  const configFile = join(dir, 'mandate.toml');
  writeFileSync(configFile, lines.join('\n') + '\n');

  // MANDATE_* variables override the file: keep the caller's environment out of it.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('MANDATE_')));
  env.RUST_LOG ??= 'info';
  env.NO_COLOR = '1';
  Object.assign(env, extraEnv);
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
    database: databaseUrl,
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
      if (pg) {
        const db = pg;
        pg = null;
        db.drop();
      }
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
