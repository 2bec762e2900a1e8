// The pieces of the gateway interop test: the MCP "everything" server (npm
// @modelcontextprotocol/server-everything, Streamable HTTP) as an upstream nobody can change, a
// key check in front of it standing for an upstream that wants its own API key, and a real
// `mandate gateway` process in front of that.

import { spawn } from 'node:child_process';
import { createServer, request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort, mandateBin, repoRoot } from './mandate.mjs';

/** A child process whose output is kept, and a stop() that ends it (SIGTERM, then SIGKILL). */
function child(command, args, env) {
  const proc = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  proc.stdout.setEncoding('utf8').on('data', (d) => (output += d));
  proc.stderr.setEncoding('utf8').on('data', (d) => (output += d));
  let exited = null;
  const exit = new Promise((res) => proc.on('exit', (code, signal) => res((exited = { code, signal }))));
  return {
    get output() {
      return output;
    },
    get exited() {
      return exited;
    },
    exit,
    async stop() {
      if (exited === null) {
        proc.kill('SIGTERM');
        const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
        await exit;
        clearTimeout(timer);
      }
      return exited;
    },
  };
}

/** Polls `probe` (true when ready) every 100 ms for up to 20 s; fails with the process's output. */
async function waitFor(what, proc, probe) {
  const deadline = Date.now() + 20_000;
  let last;
  for (;;) {
    if (proc.exited !== null) throw new Error(`${what} exited early (${JSON.stringify(proc.exited)}):\n${proc.output}`);
    try {
      if (await probe()) return;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      // A process that never got ready is stopped here: nobody else holds it, and a live child
      // would keep the test run from ever ending.
      await proc.stop();
      throw new Error(`${what} did not become ready: ${last}\n${proc.output}`);
    }
    await sleep(100);
  }
}

/**
 * The "everything" MCP server in Streamable HTTP mode on a free port (`PORT`), with sessions
 * and SSE, at `${base}/mcp`. It has no authorization of its own.
 */
export async function startEverything() {
  const port = await freePort();
  const script = join(repoRoot, 'interop', 'node_modules', '@modelcontextprotocol', 'server-everything', 'dist', 'index.js');
  const proc = child(process.execPath, [script, 'streamableHttp'], { ...process.env, PORT: String(port) });
  const base = `http://127.0.0.1:${port}`;
  // Up when it answers: a GET without a session is a 400.
  await waitFor('server-everything', proc, async () => (await fetch(`${base}/mcp`, { signal: AbortSignal.timeout(1000) })).status === 400);
  return { base, url: `${base}/mcp`, proc, stop: () => proc.stop() };
}

/**
 * An upstream that wants an API key: requests without `header: key` get 401; the others are
 * piped, both ways and chunk by chunk, to `upstream`. Every request's method, path and headers
 * are recorded.
 */
export async function startKeyCheck({ upstream, header, key }) {
  const target = new URL(upstream);
  const requests = [];
  const srv = createServer((req, res) => {
    requests.push({ method: req.method, url: req.url, headers: { ...req.headers } });
    if (req.headers[header] !== key) {
      res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'ApiKey realm="everything"' });
      return res.end('{"error":"a valid API key is required"}');
    }
    const forwarded = httpRequest(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: { ...req.headers, host: target.host } },
      (up) => {
        res.writeHead(up.statusCode, up.headers);
        res.flushHeaders();
        up.pipe(res);
      },
    );
    forwarded.on('error', (e) => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end(String(e));
    });
    req.pipe(forwarded);
  });
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${srv.address().port}`;
  return {
    base,
    requests,
    close: () =>
      new Promise((r) => {
        srv.close(r);
        srv.closeAllConnections();
      }),
  };
}

/**
 * `mandate gateway` on a free port: `resource` is `http://127.0.0.1:<port>/mcp` (so mandate's
 * [[resources]] can name it before the gateway starts, call `gatewayResource()` first), the
 * upstream credential comes from the environment variable `headerEnv.variable`.
 */
export async function gatewayResource() {
  const port = await freePort();
  return { port, resource: `http://127.0.0.1:${port}/mcp` };
}

export async function startGateway({ port, resource, issuer, upstream, scopes = [], methodScopes = [], headerEnv, extraArgs = [] }) {
  const args = ['gateway', '--listen', `127.0.0.1:${port}`, '--upstream', upstream, '--issuer', issuer, '--resource', resource];
  for (const s of scopes) args.push('--scope', s);
  for (const [method, scope] of methodScopes) args.push('--method-scope', `${method}=${scope}`);
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('MANDATE_')));
  env.RUST_LOG ??= 'info';
  env.NO_COLOR = '1';
  if (headerEnv) {
    args.push('--upstream-header-env', `${headerEnv.name}=${headerEnv.variable}`);
    env[headerEnv.variable] = headerEnv.value;
  }
  args.push(...extraArgs);
  const proc = child(mandateBin(), args, env);
  // Ready when the issuer's keys are loaded: a bad token gets 401, no longer 503.
  await waitFor('mandate gateway', proc, async () => {
    const res = await fetch(resource, { method: 'POST', headers: { authorization: 'Bearer not-a-token' }, signal: AbortSignal.timeout(1000) });
    return res.status === 401;
  });
  return {
    resource,
    proc,
    get logs() {
      return proc.output;
    },
    dumpLogs(label = 'mandate gateway output') {
      process.stderr.write(`\n----- ${label} (${args.join(' ')}) -----\n${proc.output}\n----- end -----\n`);
    },
    stop: () => proc.stop(),
  };
}
