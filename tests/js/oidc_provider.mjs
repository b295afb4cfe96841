// An external OpenID Connect provider for the director's sign-in test: npm `oidc-provider`
// with its development login and consent pages. Any login is accepted; the claims follow it:
// `<login>@example.com` (verified), and the group `mcp-users` for logins starting with "ok-".
// Usage: node oidc_provider.mjs PORT DIRECTOR_CALLBACK_URL   (prints "listening" when ready)
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const [port, redirectUri] = process.argv.slice(2);
const modules = process.env.NODE_MODULES;
const { default: Provider } = await import(
  pathToFileURL(path.join(modules, 'oidc-provider/lib/index.js')).href
);

const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [{
    client_id: 'mcp-director',
    client_secret: 'director-secret-at-the-idp',
    redirect_uris: [redirectUri],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return {
          sub: id,
          email: `${id}@example.com`,
          email_verified: true,
          groups: id.startsWith('ok-') ? ['mcp-users'] : ['others'],
        };
      },
    };
  },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['groups'] },
  // The claims go into the ID token itself (the director reads no userinfo).
  conformIdTokenClaims: false,
  features: { devInteractions: { enabled: true } },
});
provider.listen(Number(port), '127.0.0.1', () => console.log('listening'));
