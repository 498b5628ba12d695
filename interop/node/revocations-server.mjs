#!/usr/bin/env node
// A resource server as an Express + jose service would be written, on
// node:http so the interop suite needs no Express install: the middleware
// is Express's (req, res, next) shape. It finds the JWKS and the
// revocation feed by discovery, and prints "listening PORT" once it serves.
//
//   node revocations-server.mjs <authURL> <audience> <pollMs>
//
//   GET /readyz   200 once the first revocation list is in, else 503
//   GET /me       any valid, unrevoked token: {"sub","role"}
//   GET /admin    the same, role admin only (403 otherwise)

import http from 'node:http';
import { createRemoteJWKSet } from 'jose';
import { followRevocations, requireToken } from './revocations.mjs';

const [authURL, audience, pollMs] = process.argv.slice(2);
if (!authURL || !audience || !pollMs) {
  process.stderr.write('usage: node revocations-server.mjs <authURL> <audience> <pollMs>\n');
  process.exit(2);
}

const disco = await (await fetch(`${authURL}/.well-known/openid-configuration`)).json();
const jwks = createRemoteJWKSet(new URL(disco.jwks_uri));
const revocations = followRevocations({ url: disco.revocation_feed_uri, issuer: disco.issuer, pollMs: Number(pollMs) });
const authenticate = requireToken({ jwks, issuer: disco.issuer, audience, revocations });

const server = http.createServer((req, res) => {
  const json = (status, body) => {
    res.statusCode = status;
    res.setHeader('Content-Type', 'application/json');
    res.end(JSON.stringify(body));
  };
  if (req.url === '/readyz') {
    const age = revocations.ageMs();
    return json(Number.isFinite(age) ? 200 : 503, { revocationsAgeMs: Number.isFinite(age) ? age : null });
  }
  authenticate(req, res, () => {
    if (req.url === '/me') return json(200, { sub: req.user.sub, role: req.user.role });
    if (req.url === '/admin') return req.user.role === 'admin' ? json(200, { ok: true }) : json(403, { error: 'insufficient_role' });
    json(404, { error: 'not_found' });
  });
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    revocations.stop();
    server.close(() => process.exit(0));
  });
}
