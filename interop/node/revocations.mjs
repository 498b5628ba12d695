// Follow a Latchkey revocation feed from a Node service (Express + jose),
// so that logged-out, disabled and demoted users' access tokens are refused
// within the poll interval plus one second, with no call per request.
// README.md ("Verify Latchkey tokens from Node/Express") shows it in use;
// interop/interop_test.go runs it against a real Latchkey auth server.
//
//   const revocations = followRevocations({ url: feedURL, issuer });
//   ...after jwtVerify succeeds:
//   if (revocations.isRevoked(payload)) -> 401 invalid_token
//
// The rules are the Go follower's (token/revocation): refuse a token whose
// sid is listed, or whose sub is listed with a gen above the token's (no
// gen counts as 0). A failed, oversized, foreign or malformed answer never
// replaces the list; before the first list isRevoked throws, so the service
// answers 503 rather than accepting a token it cannot judge.

import { jwtVerify } from 'jose';

export function followRevocations({ url, issuer, pollMs = 2000, timeoutMs = 5000, maxBytes = 8 << 20, maxBackoffMs = 30000 }) {
  let list = null; // { sessions: Set, users: Map, etag, generatedAt }
  let lastOk = 0;
  let failures = 0;
  let timer;
  let stopped = false;

  async function fetchOnce() {
    const headers = { accept: 'application/json' };
    if (list?.etag) headers['if-none-match'] = list.etag;
    const res = await fetch(url, { headers, signal: AbortSignal.timeout(timeoutMs) });
    if (res.status === 304 && list) {
      lastOk = Date.now();
      return;
    }
    if (res.status !== 200) throw new Error(`revocation feed: status ${res.status}`);
    const doc = JSON.parse(await readCapped(res, maxBytes));
    const generatedAt = Date.parse(doc?.generatedAt);
    if (doc?.issuer !== issuer) throw new Error(`revocation feed: issuer ${doc?.issuer}`);
    if (!Array.isArray(doc.sessions) || !Array.isArray(doc.users) || Number.isNaN(generatedAt)) {
      throw new Error('revocation feed: not a feed document');
    }
    // A replica behind a load balancer that has not rebuilt yet: keep ours.
    if (list && generatedAt < list.generatedAt) {
      lastOk = Date.now();
      return;
    }
    const sessions = new Set();
    for (const s of doc.sessions) {
      if (typeof s?.sid !== 'string' || s.sid === '') throw new Error('revocation feed: a session without sid');
      sessions.add(s.sid);
    }
    const users = new Map();
    for (const u of doc.users) {
      if (typeof u?.sub !== 'string' || u.sub === '' || !Number.isSafeInteger(u.gen) || u.gen < 0) {
        throw new Error('revocation feed: a user without sub or gen');
      }
      users.set(u.sub, Math.max(users.get(u.sub) ?? 0, u.gen));
    }
    list = { sessions, users, etag: res.headers.get('etag'), generatedAt };
    lastOk = Date.now();
  }

  async function loop() {
    if (stopped) return;
    const started = Date.now();
    let wait = pollMs;
    try {
      await fetchOnce();
      failures = 0;
    } catch (err) {
      failures++;
      wait = Math.min(pollMs * 2 ** (failures - 1), maxBackoffMs);
      console.warn(`${err.message}; the last list stays in force (retry in ${wait} ms)`);
    }
    // Shorter by up to a fifth, never longer: the poll stays a bound.
    const next = wait - Math.random() * (wait / 5) - (Date.now() - started);
    if (!stopped) timer = setTimeout(loop, Math.max(0, next));
  }
  loop();

  return {
    // isRevoked(payload) after jwtVerify: true when the token must be refused.
    isRevoked(payload) {
      if (!list) throw new Error('revocation list not fetched yet');
      if (typeof payload.sid === 'string' && list.sessions.has(payload.sid)) return true;
      const gen = list.users.get(payload.sub);
      return gen !== undefined && (Number.isSafeInteger(payload.gen) ? payload.gen : 0) < gen;
    },
    // ageMs() is the time since the feed last answered, for /readyz.
    ageMs: () => (list ? Date.now() - lastOk : Infinity),
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}

async function readCapped(res, maxBytes) {
  const chunks = [];
  let n = 0;
  for await (const chunk of res.body) {
    n += chunk.length;
    if (n > maxBytes) throw new Error(`revocation feed: over ${maxBytes} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

// requireToken is Express middleware (it also runs under node:http):
// jose's jwtVerify, then the revocation list. req.user is the payload.
export function requireToken({ jwks, issuer, audience, revocations }) {
  return async (req, res, next) => {
    const m = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/.exec(req.headers.authorization ?? '');
    if (!m) return deny(res, 401, 'Bearer realm="latchkey"');
    let payload;
    try {
      ({ payload } = await jwtVerify(m[1], jwks, { issuer, audience, algorithms: ['ES256', 'EdDSA', 'RS256'] }));
    } catch {
      return deny(res, 401, 'Bearer realm="latchkey", error="invalid_token"');
    }
    let revoked;
    try {
      revoked = revocations.isRevoked(payload);
    } catch {
      return deny(res, 503); // no list yet: cannot tell, so the client retries
    }
    if (revoked) return deny(res, 401, 'Bearer realm="latchkey", error="invalid_token"');
    req.user = payload;
    next();
  };
}

function deny(res, status, challenge) {
  res.statusCode = status;
  if (challenge) res.setHeader('WWW-Authenticate', challenge);
  res.setHeader('Content-Type', 'application/json');
  res.end(JSON.stringify({ error: status === 503 ? 'server_error' : 'invalid_token' }));
}
