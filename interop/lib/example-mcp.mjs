// Starts the example MCP server (examples/mcp-server: rmcp behind mandate-resource) as a child
// process next to a real `mandate serve`, and stops it again. The tests then point real MCP
// clients at it.

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort, repoRoot, startMandate } from './mandate.mjs';

/** The scopes the example server publishes: tools:read for everything, tools:call for `echo`. */
export const EXAMPLE_SCOPES = ['tools:read', 'tools:call'];
export const EXAMPLE_NAME = 'Example MCP server';

/** The example's binary: $EXAMPLE_MCP_BIN, else the debug build of this checkout. */
export function exampleMcpBin() {
  const bin = process.env.EXAMPLE_MCP_BIN || join(repoRoot, 'target', 'debug', 'example-mcp-server');
  if (!existsSync(bin)) {
    throw new Error(`example MCP server not found at ${bin}: run \`cargo build -p example-mcp-server\` or set EXAMPLE_MCP_BIN`);
  }
  return bin;
}

/**
 * Starts `example-mcp-server` on 127.0.0.1:`port` for the MCP endpoint `resource`, trusting
 * `issuer`, and waits until /readyz says it has loaded the issuer's keys.
 */
export async function startExampleMcpServer({ port, resource, issuer }) {
  const base = `http://127.0.0.1:${port}`;
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('EXAMPLE_MCP_')));
  env.RUST_LOG ??= 'info';
  env.NO_COLOR = '1';
  const args = ['--listen', `127.0.0.1:${port}`, '--issuer', issuer, '--resource', resource];
  const child = spawn(exampleMcpBin(), args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (d) => (output += d));
  child.stderr.setEncoding('utf8').on('data', (d) => (output += d));
  let exited = null;
  const exitPromise = new Promise((res) => child.on('exit', (code, signal) => res((exited = { code, signal }))));

  const server = {
    base,
    resource,
    metadataUrl: `${base}/.well-known/oauth-protected-resource${new URL(resource).pathname}`,
    get logs() {
      return output;
    },
    dumpLogs(label = 'example MCP server output') {
      process.stderr.write(`\n----- ${label} (${args.join(' ')}) -----\n${output}\n----- end -----\n`);
    },
    async stop() {
      if (exited === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exitPromise;
        clearTimeout(timer);
      }
    },
  };

  const deadline = Date.now() + 20_000;
  let last;
  for (;;) {
    if (exited !== null) {
      server.dumpLogs('the example MCP server exited early');
      throw new Error(`example-mcp-server exited early (${JSON.stringify(exited)})`);
    }
    try {
      const res = await fetch(`${base}/readyz`, { signal: AbortSignal.timeout(1000) });
      if (res.ok) break;
      last = `/readyz answered ${res.status}`;
    } catch (e) {
      last = String(e);
    }
    if (Date.now() > deadline) {
      server.dumpLogs('the example MCP server was not ready in 20 s');
      await server.stop();
      throw new Error(`example-mcp-server was not ready: ${last}`);
    }
    await sleep(100);
  }
  return server;
}

/**
 * mandate with the example server registered as a resource (as examples/quickstart.toml does,
 * on free ports), and the example server trusting it. `mandate` holds extra startMandate options.
 * Returns { server, mcp, stop }.
 */
export async function startMandateWithExample(mandate = {}) {
  const port = await freePort();
  const resource = `http://127.0.0.1:${port}/mcp`;
  const server = await startMandate({
    clients: [],
    ...mandate,
    resources: [{ uri: resource, name: EXAMPLE_NAME, scopes: EXAMPLE_SCOPES }, ...(mandate.resources ?? [])],
  });
  let mcp;
  try {
    mcp = await startExampleMcpServer({ port, resource, issuer: server.issuer });
  } catch (e) {
    await server.stop();
    throw e;
  }
  return {
    server,
    mcp,
    dumpLogs(label) {
      server.dumpLogs(`mandate output${label ? ` for ${label}` : ''}`);
      mcp.dumpLogs(`example MCP server output${label ? ` for ${label}` : ''}`);
    },
    async stop() {
      await mcp.stop();
      await server.stop();
    },
  };
}
