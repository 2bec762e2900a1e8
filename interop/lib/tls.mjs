// A throwaway certificate authority and a server certificate for 127.0.0.1, made with the
// openssl command line, for loopback https servers the tests stand up (an https client ID
// metadata document, which the MCP SDK insists on). mandate trusts the CA when started with
// `env: { SSL_CERT_FILE: tls.caFile }` (its fetcher reads the platform's roots through
// rustls-native-certs, which honours SSL_CERT_FILE); Node's fetch is not affected.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Makes the CA (ECDSA P-256, 1 day) and a leaf for IP 127.0.0.1 and DNS localhost signed by it.
 * Returns { caFile, ca, key, cert, remove() }: PEM strings, and the CA's path on disk.
 */
export function testCertificates() {
  const dir = mkdtempSync(join(tmpdir(), 'mandate-interop-tls-'));
  const f = (name) => join(dir, name);
  const openssl = (...args) => {
    try {
      execFileSync('openssl', args, { stdio: 'pipe' });
    } catch (e) {
      throw new Error(`openssl ${args[0]} failed: ${e.stderr || e.message}`);
    }
  };
  const ecKey = (file) => openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', file);

  ecKey(f('ca.key'));
  writeFileSync(
    f('ca.cnf'),
    [
      '[req]',
      'distinguished_name = dn',
      'prompt = no',
      'x509_extensions = ext',
      '[dn]',
      'CN = mandate interop test CA',
      '[ext]',
      'basicConstraints = critical, CA:TRUE',
      'keyUsage = critical, keyCertSign, cRLSign',
      'subjectKeyIdentifier = hash',
    ].join('\n') + '\n',
  );
  openssl('req', '-new', '-x509', '-key', f('ca.key'), '-days', '1', '-config', f('ca.cnf'), '-out', f('ca.pem'));

  ecKey(f('leaf.key'));
  writeFileSync(
    f('leaf.cnf'),
    [
      '[req]',
      'distinguished_name = dn',
      'prompt = no',
      '[dn]',
      'CN = 127.0.0.1',
      '[ext]',
      'basicConstraints = critical, CA:FALSE',
      'keyUsage = critical, digitalSignature',
      'extendedKeyUsage = serverAuth',
      'subjectAltName = IP:127.0.0.1, DNS:localhost',
      'authorityKeyIdentifier = keyid',
      'subjectKeyIdentifier = hash',
    ].join('\n') + '\n',
  );
  openssl('req', '-new', '-key', f('leaf.key'), '-config', f('leaf.cnf'), '-out', f('leaf.csr'));
  openssl(
    'x509', '-req', '-in', f('leaf.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial',
    '-days', '1', '-extfile', f('leaf.cnf'), '-extensions', 'ext', '-out', f('leaf.pem'),
  );

  return {
    caFile: f('ca.pem'),
    ca: readFileSync(f('ca.pem'), 'utf8'),
    key: readFileSync(f('leaf.key'), 'utf8'),
    cert: readFileSync(f('leaf.pem'), 'utf8'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
