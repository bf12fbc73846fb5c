// A real relying party for unilogin-gateway's OIDC interop tests: the npm package `openid-client`
// (certified), doing exactly a web application's part of the code flow. The Rust test
// (tests/oidc_rp_support) plays the browser and the person; this script and the test talk in JSON
// lines, the script on stdout, the test on stdin:
//
//   RP  → {"authorize": URL}           the test follows it to the redirect URI, then answers
//   RP  ← {"callback": URL}            the URL the OP redirected the browser to, or
//   RP  ← {"stopped": {"status": N, "url": URL}}   the browser ended on a page that did not redirect
//   RP  → {"logout": URL}              RP-initiated logout; answered the same way
//   RP  → {"result": {...}} | {"error": {"code": "...", "description": "...", "step": "..."}}
//
// The output never carries tokens, codes or state values: claims, userinfo and the checks passed.
//
// Usage: node rp-openid-client.mjs <node_modules dir> --issuer URL --client-id ID
//          --redirect-uri URL --post-logout-redirect-uri URL [--scope "openid profile email"]
//          [--auth-method client_secret_basic|client_secret_post|none] [--mode MODE]
//   The client secret comes from the environment (RP_CLIENT_SECRET), never from argv.
//   MODE: happy (default) | wrong_redirect_uri | reused_code | wrong_secret | missing_pkce
import path from 'node:path';
import readline from 'node:readline';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

const [modules, ...rest] = process.argv.slice(2);
const resolve = createRequire(path.join(modules ?? '.', '..', 'package.json')).resolve;
const client = await import(pathToFileURL(resolve('openid-client')).href);

const say = (message) => process.stdout.write(`${JSON.stringify(message)}\n`);

const args = {};
for (let i = 0; i < rest.length; i += 2) {
  if (!rest[i].startsWith('--') || rest[i + 1] === undefined) {
    say({ error: { code: 'usage', description: `bad argument ${rest[i]}`, step: 'config' } });
    process.exit(0);
  }
  args[rest[i].slice(2)] = rest[i + 1];
}
const mode = args.mode ?? 'happy';
const MODES = ['happy', 'wrong_redirect_uri', 'reused_code', 'wrong_secret', 'missing_pkce'];
const authMethod = args['auth-method'] ?? 'client_secret_basic';
for (const required of ['issuer', 'client-id', 'redirect-uri', 'post-logout-redirect-uri']) {
  if (!args[required]) {
    say({ error: { code: 'usage', description: `--${required} is required`, step: 'config' } });
    process.exit(0);
  }
}
if (!MODES.includes(mode)) {
  say({ error: { code: 'usage', description: `unknown mode ${mode}`, step: 'config' } });
  process.exit(0);
}

/** Reads the test's answers, one JSON object a line. */
const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
async function ask(message) {
  say(message);
  const { value, done } = await lines.next();
  if (done) throw Object.assign(new Error('the test closed stdin'), { code: 'test_gone' });
  return JSON.parse(value);
}

/**
 * The RFC error code a library error carries, else its own code; the description with the
 * message of the library's inner error (never its cause objects, which hold the expected state).
 */
function describe(err, step) {
  let code = err.error;
  if (!code && Array.isArray(err.cause)) code = err.cause.find((c) => c.parameters?.error)?.parameters.error;
  const inner = err.cause instanceof Error && err.cause.message !== err.message ? `: ${err.cause.message}` : '';
  return {
    code: code ?? err.code ?? err.name ?? 'error',
    description: err.error_description ?? `${err.message ?? String(err)}${inner}`,
    step,
  };
}

/**
 * Whether an error from authorizationCodeGrant concerns the authorization response (an error
 * response, or the library's state / iss checks, whose inner error carries the response
 * parameters) rather than the token exchange.
 */
const aboutAuthorizationResponse = (err) =>
  err instanceof client.AuthorizationResponseError || err?.cause?.cause?.parameters instanceof URLSearchParams;

class Step extends Error {
  constructor(step, cause) {
    super(cause?.message ?? String(cause));
    this.step = step;
    this.inner = cause;
  }
}
async function step(name, f) {
  try {
    return await f();
  } catch (err) {
    throw err instanceof Step ? err : new Step(name, err);
  }
}

/** The browser came back somewhere: the callback URL, or a `Step` error when it did not. */
function landed(answer, expectedPrefix, stepName) {
  if (answer.callback) {
    const url = new URL(answer.callback);
    if (!answer.callback.startsWith(expectedPrefix)) {
      throw new Step(stepName, { code: 'unexpected_redirect', message: `redirected to ${url.origin}${url.pathname}` });
    }
    return url;
  }
  const status = answer.stopped?.status;
  throw new Step(stepName, { code: 'no_redirect', message: `the browser stopped on a page (HTTP ${status})` });
}

async function run() {
  const secret = process.env.RP_CLIENT_SECRET ?? '';
  const usedSecret = mode === 'wrong_secret' ? `${secret}-wrong` : secret;
  const auth = {
    client_secret_basic: () => client.ClientSecretBasic(usedSecret),
    client_secret_post: () => client.ClientSecretPost(usedSecret),
    none: () => client.None(),
  }[authMethod];
  if (!auth) throw new Step('config', { code: 'usage', message: `unknown auth method ${authMethod}` });
  const checks = [];

  const config = await step('discovery', () =>
    client.discovery(new URL(args.issuer), args['client-id'], { token_endpoint_auth_method: authMethod }, auth(), {
      // Loopback tests speak plain HTTP; everything else stays at the library's strict defaults.
      execute: [client.allowInsecureRequests],
    }));
  // id_token signatures checked against the OP's JWKS even though they come over the back channel.
  client.enableNonRepudiationChecks(config);
  const metadata = config.serverMetadata();
  checks.push('discovery');

  const redirectUri = mode === 'wrong_redirect_uri' ? `${args['redirect-uri']}/unregistered` : args['redirect-uri'];
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const params = { redirect_uri: redirectUri, scope: args.scope ?? 'openid profile email', state, nonce };
  if (mode !== 'missing_pkce') {
    params.code_challenge = await client.calculatePKCECodeChallenge(verifier);
    params.code_challenge_method = 'S256';
  }
  const authorizeUrl = client.buildAuthorizationUrl(config, params);

  const answer = await ask({ authorize: authorizeUrl.href });
  const callback = landed(answer, args['redirect-uri'], 'authorize');
  const issParam = callback.searchParams.has('iss');
  const codeChecks = {
    expectedState: state,
    expectedNonce: nonce,
    idTokenExpected: true,
    ...(mode === 'missing_pkce' ? {} : { pkceCodeVerifier: verifier }),
  };
  // The library checks the callback (error, state, `iss` per RFC 9207), then the token response
  // and the id_token (signature, iss, aud, exp, iat, nonce, azp).
  const tokens = await step('token', () => client.authorizationCodeGrant(config, callback, codeChecks).catch((err) => {
    // An error in the authorization response itself (RFC 6749 §4.1.2.1) belongs to the authorize step.
    throw aboutAuthorizationResponse(err) ? new Step('authorize', err) : err;
  }));
  checks.push('state', 'code_exchange', 'id_token');
  if (metadata.authorization_response_iss_parameter_supported) {
    if (!issParam) throw new Step('authorize', { code: 'missing_iss', message: 'the OP advertises iss but sent none' });
    checks.push('iss');
  }
  if (mode !== 'missing_pkce') checks.push('pkce');
  // The nonce was checked by the library; it is not reported.
  const { nonce: _checked, ...claims } = tokens.claims();

  if (mode === 'reused_code') {
    const reuse = await step('token_reuse', async () => {
      try {
        await client.authorizationCodeGrant(config, callback, codeChecks);
      } catch (err) {
        return describe(err, 'token_reuse');
      }
      return null;
    });
    if (!reuse) throw new Step('token_reuse', { code: 'reuse_accepted', message: 'the second exchange of the code succeeded' });
    // RFC 6749 §4.1.2: the OP SHOULD revoke what the code issued.
    let revoked = false;
    try {
      await client.fetchUserInfo(config, tokens.access_token, claims.sub);
    } catch (err) {
      revoked = describe(err, 'userinfo').code === 'invalid_token';
    }
    return { error: { ...reuse, first_access_token_revoked: revoked } };
  }

  const userinfo = await step('userinfo', () => client.fetchUserInfo(config, tokens.access_token, claims.sub));
  checks.push('userinfo');

  const refresh = {};
  if (tokens.refresh_token) {
    const refreshed = await step('refresh', () => client.refreshTokenGrant(config, tokens.refresh_token));
    refresh.rotated = Boolean(refreshed.refresh_token) && refreshed.refresh_token !== tokens.refresh_token;
    refresh.id_token = Boolean(refreshed.id_token);
    if (refreshed.id_token && refreshed.claims().sub !== claims.sub) {
      throw new Step('refresh', { code: 'sub_changed', message: 'the refreshed id_token names another subject' });
    }
    await step('refresh_userinfo', () => client.fetchUserInfo(config, refreshed.access_token, claims.sub));
    checks.push('refresh');
    if (refresh.rotated) {
      checks.push('rotation');
      const oldRefused = await (async () => {
        try {
          await client.refreshTokenGrant(config, tokens.refresh_token);
          return null;
        } catch (err) {
          return describe(err, 'refresh_reuse').code;
        }
      })();
      refresh.old_refused_with = oldRefused;
      if (oldRefused === 'invalid_grant') checks.push('old_refresh_refused');
      // Reuse detection: the whole family goes, the new token too.
      try {
        await client.refreshTokenGrant(config, refreshed.refresh_token);
        refresh.family_revoked = false;
      } catch (err) {
        refresh.family_revoked = describe(err, 'refresh_family').code === 'invalid_grant';
      }
    }
  }

  const logoutState = client.randomState();
  const logoutUrl = client.buildEndSessionUrl(config, {
    id_token_hint: tokens.id_token,
    post_logout_redirect_uri: args['post-logout-redirect-uri'],
    state: logoutState,
  });
  const back = landed(await ask({ logout: logoutUrl.href }), args['post-logout-redirect-uri'], 'logout');
  if (back.searchParams.get('state') !== logoutState) {
    throw new Step('logout', { code: 'state_mismatch', message: 'the logout redirect carries another state' });
  }
  checks.push('logout_state');

  return {
    result: {
      rp: 'openid-client',
      mode,
      claims,
      userinfo,
      iss_parameter: issParam,
      refresh,
      checks,
    },
  };
}

try {
  say(await run());
} catch (err) {
  if (err instanceof Step) say({ error: describe(err.inner ?? err, err.step) });
  else say({ error: describe(err, 'internal') });
}
process.exit(0);
