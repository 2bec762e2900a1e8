// The MCP Python SDK host (interop/python/mcp_host.py, in interop/.venv made by
// scripts/install-test-deps.sh) run as a child process: each authorization URL it prints is
// handed to the test, which plays the person; its report comes back at the end.
// $MCP_PYTHON overrides the interpreter (default interop/.venv/bin/python).

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { repoRoot } from './mandate.mjs';

const PYTHON = process.env.MCP_PYTHON || join(repoRoot, 'interop', '.venv', 'bin', 'python');
const HOST = join(repoRoot, 'interop', 'python', 'mcp_host.py');

/**
 * Runs the Python host against `server`; `onAuthorize(url)` plays the person for each
 * authorization URL it prints (one at a time). Resolves with its report.
 */
export function runPythonHost(server, clientName, onAuthorize, { args = [], timeoutMs = 90_000 } = {}) {
  if (!existsSync(PYTHON)) {
    throw new Error(`${PYTHON} is missing: bash scripts/install-test-deps.sh makes interop/.venv with the MCP Python SDK`);
  }
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, [HOST, server, '--client-name', clientName, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let report;
    let failure;
    let person = Promise.resolve();
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      failure ??= new Error(`the Python host did not finish in ${timeoutMs} ms`);
      child.kill('SIGKILL');
    }, timeoutMs);
    createInterface({ input: child.stdout }).on('line', (line) => {
      let message;
      try {
        message = JSON.parse(line);
      } catch {
        stderr += `(stdout) ${line}\n`;
        return;
      }
      if (message.event === 'authorize') {
        person = person.then(() => onAuthorize(new URL(message.url))).catch((e) => {
          failure ??= e;
          child.kill('SIGKILL');
        });
      } else if (message.event === 'report') {
        report = message;
      }
    });
    child.on('exit', async (code, signal) => {
      clearTimeout(timer);
      await person;
      if (failure) return reject(Object.assign(failure, { message: `${failure.message}\n--- Python host stderr ---\n${stderr}` }));
      if (code !== 0 || !report) return reject(new Error(`the Python host exited with ${code ?? signal}\n--- stderr ---\n${stderr}`));
      resolve({ ...report, stderr });
    });
  });
}
