// The reference peer for bench/compare.sh: oidc-provider 9 issuing ES256 JWT access tokens for one
// resource (RFC 8707) by client credentials with client_secret_basic, from its default in-memory
// adapter. One process, one event loop, as oidc-provider runs by default.
//
//   node server.mjs PORT [RESOURCE] [CLIENT_ID] [CLIENT_SECRET]
//
// The issuer is http://127.0.0.1:PORT; discovery says where the token endpoint is.
import { generateKeyPairSync } from 'node:crypto';

import Provider, { errors } from 'oidc-provider';

const [port, resource = 'http://127.0.0.1:9090/mcp', clientId = 'bench-agent',
  clientSecret = 'bench-agent-secret-0123456789abcdefghijklmnop'] = process.argv.slice(2);
if (!/^\d+$/.test(port ?? '')) {
  console.error('usage: node server.mjs PORT [RESOURCE] [CLIENT_ID] [CLIENT_SECRET]');
  process.exit(2);
}
const SCOPE = 'tools:read tools:call';

// A fresh P-256 signing key per start, as mandate generates its own on first start.
const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'bench-es256', alg: 'ES256', use: 'sig' };

const provider = new Provider(`http://127.0.0.1:${port}`, {
  jwks: { keys: [signingKey] },
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: 'ES256', // the only key is ES256 (the default, RS256, has none)
    scope: SCOPE,
  }],
  scopes: SCOPE.split(' '),
  features: {
    clientCredentials: { enabled: true },
    // RFC 7662 is on, but oidc-provider refuses to introspect its own JWT access tokens
    // ("Structured JWT Tokens cannot be introspected"), so compare.sh does not measure it here.
    introspection: { enabled: true },
    devInteractions: { enabled: false },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => resource,
      useGrantedResource: () => true,
      getResourceServerInfo(ctx, indicator) {
        if (indicator !== resource) throw new errors.InvalidTarget();
        return {
          scope: SCOPE,
          audience: resource,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'ES256' } },
        };
      },
    },
  },
});

const server = provider.listen(Number(port), '127.0.0.1', () => {
  console.log(`oidc-provider listening on http://127.0.0.1:${port} (node ${process.version})`);
});
// compare.sh stops every server with SIGTERM and expects a clean exit (Node's default is 143).
process.on('SIGTERM', () => server.close(() => process.exit(0)));
