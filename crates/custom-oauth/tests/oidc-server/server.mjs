// A real OAuth2 / OIDC server for unilogin-custom-oauth's tests: the `oauth2-mock-server`
// package (installed by the tests' harness or `cargo xtask ci`), wrapped so tests can steer it.
//
// Usage: node server.mjs <node_modules dir>
// Prints one line `{"issuer": "http://127.0.0.1:PORT"}` once listening on a free loopback port.
//
// Besides the provider's own endpoints, `/__control/*` (test only) lets a test:
//   POST /__control/next-id-token  {"payload": {...}, "header": {...}, "tamper": true, "at_hash": true}
//        overrides claims / header fields of the next id_token, or corrupts its signature;
//        `at_hash: true` gives it the correct `at_hash` of the access token it comes with;
//   POST /__control/next-token-response {"status": 400, "body": {...}}  replaces the next token response;
//   POST /__control/userinfo {...claims}   sets the userinfo response (sub defaults to the id_token's);
//   POST /__control/rotate                 signs from now on with a new key (the old one stays published);
//   POST /__control/iss {"advertise": true, "send": true | "https://other.example" | null}
//        RFC 9207: sets `authorization_response_iss_parameter_supported` in the discovery
//        document, and puts `iss` (the issuer, or the given value) on authorization responses;
//   GET  /__control/stats                  request counts per path and the last token request.
import crypto from 'node:crypto';
import http from 'node:http';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const modules = process.argv[2];
if (!modules) {
  console.error('usage: node server.mjs <node_modules dir>');
  process.exit(2);
}
const lib = await import(pathToFileURL(path.join(modules, 'oauth2-mock-server', 'dist', 'index.mjs')).href);
const { OAuth2Issuer, OAuth2Service } = lib;

let signingKid = 'key-1';
// The last token signed: while the id_token is built, the access token of the same response.
let lastSigned = null;
class SteerableIssuer extends OAuth2Issuer {
  async buildToken(opts) {
    lastSigned = await super.buildToken({ ...opts, kid: signingKid });
    return lastSigned;
  }
}

const issuer = new SteerableIssuer();
await issuer.keys.generate('RS256', { kid: signingKid });
const service = new OAuth2Service(issuer);

let nextIdToken = null;
let nextTokenResponse = null;
let userinfo = { name: 'Zhang San', email: 'User001@Example.com', phone_number: '+8613800000000', preferred_username: 'zhangsan' };
let lastToken = null;
let iss = { advertise: undefined, send: null };
const counts = {};

// The id_token is the token built with an `aud` and without `amr` (the access token has `amr`).
service.on('beforeTokenSigning', (token) => {
  const isIdToken = token.payload.aud !== undefined && token.payload.amr === undefined;
  if (!isIdToken || !nextIdToken) return;
  Object.assign(token.payload, nextIdToken.payload || {});
  Object.assign(token.header, nextIdToken.header || {});
  if (nextIdToken.at_hash === true && lastSigned) {
    // OIDC Core 3.1.3.8: the left half of the SHA-256 (RS256) of the access token, base64url.
    const digest = crypto.createHash('sha256').update(lastSigned).digest();
    token.payload.at_hash = digest.subarray(0, digest.length / 2).toString('base64url');
  }
});

service.on('beforeResponse', (response, req) => {
  lastToken = {
    authorization: req.headers['authorization'] || null,
    body: { ...req.body },
  };
  if (nextIdToken && nextIdToken.tamper && response.body.id_token) {
    const [h, p, s] = response.body.id_token.split('.');
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString());
    claims.sub = 'someone-else';
    response.body.id_token = [h, Buffer.from(JSON.stringify(claims)).toString('base64url'), s].join('.');
  }
  nextIdToken = null;
  if (nextTokenResponse) {
    response.statusCode = nextTokenResponse.status || 400;
    response.body = nextTokenResponse.body || {};
    nextTokenResponse = null;
  }
});

service.on('beforeAuthorizeRedirect', ({ url }) => {
  if (iss.send) url.searchParams.set('iss', iss.send === true ? issuer.url : iss.send);
});

service.on('beforeUserinfo', (response, req) => {
  const auth = req.headers['authorization'] || '';
  if (!auth.startsWith('Bearer ') || auth.length <= 'Bearer '.length) {
    response.statusCode = 401;
    response.body = { error: 'invalid_token' };
    return;
  }
  response.body = { sub: 'johndoe', ...userinfo };
});

function readJson(req) {
  return new Promise((resolve) => {
    let data = '';
    req.on('data', (c) => { data += c; });
    req.on('end', () => {
      try { resolve(data ? JSON.parse(data) : {}); } catch { resolve({}); }
    });
  });
}

async function control(req, res) {
  const send = (status, body) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const route = req.url.replace(/\?.*$/, '');
  if (req.method === 'GET' && route === '/__control/stats') return send(200, { counts, lastToken });
  const body = await readJson(req);
  switch (route) {
    case '/__control/next-id-token': nextIdToken = body; return send(200, {});
    case '/__control/next-token-response': nextTokenResponse = body; return send(200, {});
    case '/__control/userinfo': userinfo = body; return send(200, {});
    case '/__control/iss': iss = { advertise: body.advertise, send: body.send ?? null }; return send(200, {});
    case '/__control/rotate': {
      signingKid = `key-${Date.now()}-${Math.floor(Math.random() * 1e6)}`;
      await issuer.keys.generate('RS256', { kid: signingKid });
      return send(200, { kid: signingKid });
    }
    default: return send(404, { error: 'unknown control route' });
  }
}

const server = http.createServer((req, res) => {
  if (req.url.startsWith('/__control/')) {
    control(req, res).catch((e) => { res.writeHead(500); res.end(String(e)); });
    return;
  }
  const route = req.url.replace(/\?.*$/, '');
  counts[route] = (counts[route] || 0) + 1;
  if (route === '/.well-known/openid-configuration' && iss.advertise !== undefined) {
    // Adds the RFC 9207 flag to the library's document as it is sent.
    const end = res.end.bind(res);
    res.end = (chunk, ...rest) => {
      if (!chunk) return end(chunk, ...rest);
      const doc = JSON.parse(chunk.toString());
      doc.authorization_response_iss_parameter_supported = iss.advertise;
      const body = JSON.stringify(doc);
      res.setHeader('content-length', Buffer.byteLength(body));
      return end(body);
    };
  }
  service.requestHandler(req, res);
});

// Longer than any pause between a test's requests, so a pooled connection is never closed by
// the server while the client reuses it (Node's 5 s default races with slow CI machines).
server.keepAliveTimeout = 120_000;
server.headersTimeout = 121_000;

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  issuer.url = `http://127.0.0.1:${port}`;
  process.stdout.write(JSON.stringify({ issuer: issuer.url }) + '\n');
});

// Exit with the test process: stdin closes when the parent goes away.
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
