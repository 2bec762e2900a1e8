// The MCP conformance suite (npm @modelcontextprotocol/conformance, pinned in package.json) runs
// every one of its client auth scenarios against examples/conformance-client, which is
// mandate-agent + rmcp. The suite starts its own MCP and authorization servers per scenario,
// hands the driver the server URL (and, for some scenarios, credentials in
// MCP_CONFORMANCE_CONTEXT), and grades what the driver did. No expected-failures list: any check
// that fails or warns fails this test.
//
// The driver is $CONFORMANCE_CLIENT_BIN, else ../target/debug/conformance-client. It is configured
// with the client ID metadata document URL the suite's basic-cimd scenario accepts.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from '../lib/mandate.mjs';

const run = promisify(execFile);
const interop = join(repoRoot, 'interop');
const suite = join(interop, 'node_modules', '@modelcontextprotocol', 'conformance', 'dist', 'index.js');
const CIMD_URL = 'https://conformance-test.local/client-metadata.json';

function driver() {
  const bin = process.env.CONFORMANCE_CLIENT_BIN || join(repoRoot, 'target', 'debug', 'conformance-client');
  if (!existsSync(bin)) {
    throw new Error(`conformance client not found at ${bin}: run \`cargo build -p conformance-client\` or set CONFORMANCE_CLIENT_BIN`);
  }
  return bin;
}

async function conformance(args, cwd) {
  try {
    const { stdout, stderr } = await run(process.execPath, [suite, ...args], { cwd, timeout: 120_000, maxBuffer: 16 << 20 });
    return { code: 0, output: stdout + stderr };
  } catch (e) {
    return { code: e.code ?? 1, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

test('every auth scenario of the MCP conformance suite passes with mandate-agent', async (t) => {
  const cwd = mkdtempSync(join(tmpdir(), 'mandate-conformance-'));
  t.after(() => rmSync(cwd, { recursive: true, force: true }));
  const listed = await conformance(['list'], cwd);
  assert.equal(listed.code, 0, listed.output);
  const scenarios = [...new Set(listed.output.match(/auth\/[a-z0-9-]+/g))];
  // 0.1.16 has 22; a suite that suddenly lists fewer must not pass silently.
  assert.ok(scenarios.length >= 22, `expected at least 22 auth scenarios, the suite lists ${scenarios.length}: ${scenarios}`);

  const command = `${driver()} --client-metadata-url ${CIMD_URL}`;
  const failures = [];
  for (const scenario of scenarios) {
    await t.test(scenario, async () => {
      const { code, output } = await conformance(['client', '--command', command, '--scenario', scenario], cwd);
      const passed = code === 0 && /OVERALL: PASSED/.test(output) && /0 failed, 0 warnings/.test(output);
      if (!passed) failures.push(scenario);
      assert.ok(passed, `${scenario} (exit ${code}):\n${output.slice(-4000)}`);
    });
  }
  assert.deepEqual(failures, [], 'scenarios that did not pass');
});
