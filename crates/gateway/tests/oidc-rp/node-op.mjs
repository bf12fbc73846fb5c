// The reference OpenID Provider of unilogin-gateway's OIDC interop tests: the npm package
// `oidc-provider` (a certified OP), configured as it would be in production, with one test
// convenience: interactions finish at once (auto-login as a fixed account, consent to what was
// asked), so a browser that only follows redirects reaches the client's callback.
//
// It proves the relying parties (rp-openid-client.mjs, rp_authlib.py) before they test the
// gateway, and is the baseline of the `oidc_provider.token_ratio_vs_node_oidc_provider` benchmark,
// so keep it production-shaped: no devInteractions, quiet, memory adapter.
//
// Usage: node node-op.mjs <node_modules dir> <port, 0 = any free one> '<clients JSON array>'
//   Each client is oidc-provider client metadata (client_id, client_secret or
//   token_endpoint_auth_method "none", redirect_uris, post_logout_redirect_uris, ...).
// Prints one line `{"listening": PORT, "issuer": "http://127.0.0.1:PORT"}` once it serves.
// The account: sub `zhangsan` with profile, email and phone claims (ACCOUNT below).
import crypto from 'node:crypto';
import http from 'node:http';
import path from 'node:path';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

const [modules, portArg, clientsArg] = process.argv.slice(2);
if (!modules || portArg === undefined || !clientsArg) {
  console.error("usage: node node-op.mjs <node_modules dir> <port> '<clients JSON>'");
  process.exit(2);
}
const resolve = createRequire(path.join(modules, '..', 'package.json')).resolve;
const { Provider, errors } = await import(pathToFileURL(resolve('oidc-provider')).href);

let clients;
try {
  clients = JSON.parse(clientsArg);
  if (!Array.isArray(clients)) throw new Error('not an array');
} catch (e) {
  console.error(`node-op: the clients argument must be a JSON array (${e.message})`);
  process.exit(2);
}

/** The one person who signs in. */
const ACCOUNT = {
  sub: 'zhangsan',
  name: '张三',
  preferred_username: 'zhangsan',
  picture: 'https://static.example.com/avatar/zhangsan.png',
  email: 'zhangsan@example.com',
  email_verified: true,
  phone_number: '+86 138 0000 0000',
  phone_number_verified: false,
};

const escapeHtml = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const page = (title, body) => `<!DOCTYPE html><html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head><body>${body}</body></html>`;

const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: crypto.randomUUID(), alg: 'RS256', use: 'sig' };

const configuration = {
  clients,
  jwks: { keys: [signingKey] },
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
  claims: {
    openid: ['sub'],
    profile: ['name', 'preferred_username', 'picture'],
    email: ['email', 'email_verified'],
    phone: ['phone_number', 'phone_number_verified'],
  },
  scopes: ['openid', 'offline_access', 'profile', 'email', 'phone'],
  async findAccount(ctx, sub) {
    if (sub !== ACCOUNT.sub) return undefined;
    return { accountId: sub, claims: async () => ({ ...ACCOUNT }) };
  },
  interactions: { url: async (ctx, interaction) => `/interaction/${interaction.uid}` },
  features: {
    devInteractions: { enabled: false },
    revocation: { enabled: true },
    backchannelLogout: { enabled: true },
    rpInitiatedLogout: {
      enabled: true,
      // The stock page asks with two buttons outside the form; this one is a plain form that
      // signs out (a browser runs the script, the tests' browser submits the form).
      async logoutSource(ctx, form) {
        const yes = '<input type="hidden" name="logout" value="yes"/><button type="submit">Sign out</button></form>';
        ctx.body = page('Sign out', `${form.replace('</form>', yes)}<script>document.forms[0].submit()</script>`);
      },
      async postLogoutSuccessSource(ctx) {
        ctx.body = page('Signed out', '<h1>Signed out</h1>');
      },
    },
  },
  // RS256 only, what every relying party supports; PKCE S256 for every client.
  enabledJWA: { idTokenSigningAlgValues: ['RS256'] },
  responseTypes: ['code'],
  pkce: { required: () => true },
  // Every client allowed the refresh_token grant gets one (no `offline_access` + consent dance),
  // rotated on each use; a rotated-out token is refused and revokes the grant.
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  rotateRefreshToken: true,
  clientBasedCORS: () => false,
  ttl: {
    AccessToken: 3600,
    AuthorizationCode: 60,
    BackchannelAuthenticationRequest: 600,
    ClientCredentials: 600,
    DeviceCode: 600,
    Grant: 14 * 24 * 3600,
    IdToken: 3600,
    Interaction: 600,
    RefreshToken: 14 * 24 * 3600,
    Session: 14 * 24 * 3600,
  },
  // The error and its description only (not the request's state).
  async renderError(ctx, { error, error_description: description }) {
    ctx.type = 'html';
    ctx.body = page('Error', `<p><b>error</b>: ${escapeHtml(error)}</p><p>${escapeHtml(description ?? '')}</p>`);
  },
};

const server = http.createServer();
await new Promise((ok, fail) => {
  server.once('error', fail);
  server.listen(Number(portArg), '127.0.0.1', ok);
});
const { port } = server.address();
const issuer = `http://127.0.0.1:${port}`;
const provider = new Provider(issuer, configuration);
provider.on('server_error', (ctx, err) => console.error(`node-op: server_error: ${err.stack}`));

// Auto-login: the interaction page signs ACCOUNT in, then grants what the client asked for.
const interaction = /^\/interaction\/([A-Za-z0-9_-]+)$/;
const opCallback = provider.callback();
server.on('request', async (req, res) => {
  if (req.method !== 'GET' || !interaction.test(req.url)) return opCallback(req, res);
  try {
    const details = await provider.interactionDetails(req, res);
    const { prompt, params, session } = details;
    if (prompt.name === 'login') {
      await provider.interactionFinished(req, res, { login: { accountId: ACCOUNT.sub } }, { mergeWithLastSubmission: false });
      return;
    }
    if (prompt.name === 'consent') {
      const grant = details.grantId
        ? await provider.Grant.find(details.grantId)
        : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
      const missing = prompt.details;
      if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
      if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
      for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
        grant.addResourceScope(indicator, scopes.join(' '));
      }
      const grantId = await grant.save();
      await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
      return;
    }
    res.statusCode = 400;
    res.setHeader('content-type', 'text/html; charset=utf-8');
    res.end(page('Error', `<p>unsupported prompt ${escapeHtml(prompt.name)}</p>`));
  } catch (err) {
    const known = err instanceof errors.OIDCProviderError;
    res.statusCode = known ? err.statusCode : 500;
    res.setHeader('content-type', 'text/html; charset=utf-8');
    res.end(page('Error', `<p><b>error</b>: ${escapeHtml(known ? err.error : 'server_error')}</p>`));
    if (!known) console.error(`node-op: interaction failed: ${err.stack}`);
  }
});

process.stdout.write(`${JSON.stringify({ listening: port, issuer })}\n`);
// The test owns this process: it ends when the test closes stdin or kills it.
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
