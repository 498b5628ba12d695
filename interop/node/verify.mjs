#!/usr/bin/env node
// Verifies a Latchkey access token the way the Express tutorials' Node
// verifiers do, so interop/interop_test.go can prove that our tokens are
// accepted (and bad ones refused) by the real libraries.
//
//   node verify.mjs hs256 <secret> <token>
//       jsonwebtoken, shared-secret mode: jwt.verify(token, secret, {algorithms: ['HS256']})
//       and, as the tutorials write it, plain jwt.verify(token, secret). Both must accept.
//
//   node verify.mjs jwks <jwksURL> <issuer> <audience> <token>
//       jose: jwtVerify(token, createRemoteJWKSet(jwksURL), {issuer, audience}).
//
// Exit 0: the verified payload is printed as JSON on stdout.
// Exit 1: the token was rejected; the error is printed on stderr.
// Exit 2: wrong usage.

import jwt from 'jsonwebtoken';
import { createRemoteJWKSet, jwtVerify } from 'jose';

const usage = `usage:
  node verify.mjs hs256 <secret> <token>
  node verify.mjs jwks <jwksURL> <issuer> <audience> <token>`;

function fail(err) {
  const name = err && err.name ? err.name : 'Error';
  const code = err && err.code ? ` (${err.code})` : '';
  const msg = err && err.message ? err.message : String(err);
  process.stderr.write(`rejected: ${name}${code}: ${msg}\n`);
  process.exit(1);
}

function usageError(msg) {
  process.stderr.write(`${msg}\n${usage}\n`);
  process.exit(2);
}

async function hs256(secret, token) {
  // Pinned algorithm: what a careful verifier writes.
  const pinned = jwt.verify(token, secret, { algorithms: ['HS256'] });
  // Unpinned: what the tutorials write (`jwt.verify(token, process.env.ACCESS_TOKEN_SECRET)`).
  const plain = jwt.verify(token, secret);
  if (JSON.stringify(pinned) !== JSON.stringify(plain)) {
    throw new Error('pinned and plain jwt.verify returned different payloads');
  }
  if (typeof pinned !== 'object' || pinned === null) {
    throw new Error('payload is not a JSON object');
  }
  return pinned;
}

async function jwks(url, issuer, audience, token) {
  let jwksURL;
  try {
    jwksURL = new URL(url);
  } catch {
    usageError(`not a URL: ${url}`);
  }
  const JWKS = createRemoteJWKSet(jwksURL);
  const { payload } = await jwtVerify(token, JWKS, { issuer, audience });
  return payload;
}

async function main(argv) {
  const [mode, ...args] = argv;
  let payload;
  switch (mode) {
    case 'hs256':
      if (args.length !== 2) usageError('hs256 takes <secret> <token>');
      payload = await hs256(args[0], args[1]);
      break;
    case 'jwks':
      if (args.length !== 4) usageError('jwks takes <jwksURL> <issuer> <audience> <token>');
      payload = await jwks(args[0], args[1], args[2], args[3]);
      break;
    default:
      usageError(mode ? `unknown mode: ${mode}` : 'no mode given');
  }
  process.stdout.write(JSON.stringify(payload) + '\n');
}

main(process.argv.slice(2)).catch(fail);
