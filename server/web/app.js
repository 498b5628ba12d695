// Latchkey's sign-in page.
//
// Where the tokens live, and why:
//   - The refresh token is in the latchkey_refresh cookie, HttpOnly,
//     SameSite=Strict, Path=/session. No script can read it, this one
//     included, so a script injected into the page cannot steal the session.
//   - The access token is in the variable `token` below and nowhere else:
//     not in web storage, not in a cookie a script can read. A reload loses
//     it, and the page gets a new one from the cookie.
//
// Every /session/* call sends X-Latchkey-CSRF: 1, which the server requires
// together with an Origin it knows: a page of another origin cannot send it.
//
// Two-step sign-in: for a user with TOTP on, /session/login answers 401
// mfa_required with an mfaToken. It lives in the variable `mfa` below, and
// only until the second step (/session/login/mfa) succeeds, is abandoned or
// is refused as expired: like the access token, it is never stored.
//
// Tabs of one browser share the cookie. Refreshes (and sign-in and sign-out,
// which change the cookie too) run one at a time under a Web Lock, so two
// tabs never present the same refresh token at once; a tab that refreshed
// tells the others its new access token over a BroadcastChannel. The
// server's grace window is only the fallback, for browsers without Web
// Locks and for a response lost on the way.

const AUTH = document.body.dataset.authUrl; // the issuer: base of the auth server's URLs
const AUTH_ORIGIN = document.body.dataset.authOrigin;
const BOOKS = document.body.dataset.booksUrl; // "" when the server knows no books server

const $ = (id) => document.getElementById(id);

// ---- state ---------------------------------------------------------------

let token = null; // {raw, header, claims, expiresAt, lifetime}; times in ms on this machine's clock
let me = null; // the user from GET /me
let refreshTimer = 0;
let retryDelay = 0; // ms before retrying a refresh that could not reach the server
let refreshes = 0;
let inflight = null; // the refresh this tab is running, shared by its callers
let editing = null; // the book being edited, or null when the form adds one
let mfa = null; // {username, token}: the sign-in's second step, while it is asked for
let totp = null; // {enabled, recoveryCodesLeft} from GET /me/totp
let totpStep = null; // null, 'password', 'enrol' or 'codes': where the enrolment is

// ---- talking to the servers ---------------------------------------------

class Unreachable extends Error {
  constructor(service, base, cause) {
    super(`cannot reach the ${service}`);
    this.service = service;
    this.base = base;
    this.cause = cause;
  }
}

class ApiError extends Error {
  constructor(service, status, code, description, retryAfter, data) {
    super(description);
    this.service = service;
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter; // seconds, or 0
    this.data = data; // the parsed body, for the mfaToken of mfa_required
  }
}

const services = { auth: ['auth server', AUTH], books: ['books server', BOOKS] };

// request sends one request and returns the parsed JSON body (null for
// none). It throws Unreachable when no answer came and ApiError for an
// answer that is not 2xx, with the server's own description.
async function request(which, path, { method = 'GET', body, bearer, session = false } = {}) {
  const [service, base] = services[which];
  const headers = {};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (bearer) headers.Authorization = 'Bearer ' + bearer;
  if (session) headers['X-Latchkey-CSRF'] = '1';
  let res, text;
  try {
    res = await fetch(base + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      // The cookie goes only to /session/*, where it is the credential.
      credentials: session ? 'include' : 'omit',
      cache: 'no-store',
      signal: AbortSignal.timeout(15000),
    });
    text = await res.text();
  } catch (err) {
    throw new Unreachable(service, base, err);
  }
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!res.ok) {
    throw new ApiError(service, res.status, data?.error ?? `http_${res.status}`,
      data?.error_description ?? `The ${service} answered ${res.status}.`,
      retryAfterSeconds(res.headers.get('Retry-After')), data);
  }
  return data;
}

function retryAfterSeconds(v) {
  if (!v) return 0;
  if (/^\d+$/.test(v)) return Number(v);
  const at = Date.parse(v);
  return Number.isNaN(at) ? 0 : Math.max(0, Math.ceil((at - Date.now()) / 1000));
}

// authed is request with the access token. A 401 means the token is no
// longer good (expired while the tab slept, say): it refreshes once and
// tries again, which is safe because a refused request did nothing. A 401
// about what was sent (a wrong current password or code) is the answer
// itself: trying again would only spend another attempt of the throttle.
async function authed(which, path, opts = {}) {
  if (!token) throw new ApiError('auth server', 401, 'signed_out', 'You are signed out.', 0);
  const used = token.raw;
  try {
    return await request(which, path, { ...opts, bearer: used });
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 401 || credentialCodes.has(err.code)) throw err;
    const r = await refresh('401', used);
    if (!token || (r !== 'ok' && r !== 'fresh')) throw err;
    return await request(which, path, { ...opts, bearer: token.raw });
  }
}

const credentialCodes = new Set(['invalid_credentials', 'invalid_grant', 'mfa_required']);

// describe turns a failure into a sentence for the person at the keyboard.
// doing says what failed, as in "Could not <doing>".
function describe(err, doing) {
  if (err instanceof Unreachable) {
    return `Could not ${doing}: the ${err.service} at ${err.base} does not answer. Is it running? Try again in a moment.`;
  }
  if (!(err instanceof ApiError)) return `Could not ${doing}: ${err.message}`;
  switch (err.code) {
    case 'invalid_credentials':
      return 'Wrong username or password.';
    case 'insufficient_role': {
      const who = me ?? token?.claims ?? {};
      return `Only admins can ${doing}. You are signed in as ${who.username} (role: ${who.role}), and the ${err.service} refused the request (403 ${err.code}).`;
    }
    case 'rate_limited':
      return err.retryAfter > 0
        ? `${err.message} Wait ${duration(err.retryAfter)}.`
        : err.message;
    case 'server_error':
      return `Could not ${doing}: the ${err.service} had a problem (${err.status}). Try again in a moment.`;
    default:
      return err.message || `Could not ${doing} (${err.status}).`;
  }
}

// ---- messages ------------------------------------------------------------

const countdowns = new Map(); // element → interval of its "try again in" countdown

function clearMessage(el) {
  clearInterval(countdowns.get(el));
  countdowns.delete(el);
  el.textContent = '';
  el.hidden = true;
}

function showMessage(el, text) {
  clearMessage(el);
  el.textContent = text;
  el.hidden = false;
}

// showError shows err in el. After a 429 it counts the wait down and keeps
// button disabled until it is over, so the person sees when to try again.
function showError(el, err, doing, button) {
  clearMessage(el);
  el.hidden = false;
  if (err instanceof ApiError && err.code === 'rate_limited' && err.retryAfter > 0) {
    const until = Date.now() + err.retryAfter * 1000;
    const tick = () => {
      const left = Math.ceil((until - Date.now()) / 1000);
      if (left <= 0) {
        clearInterval(countdowns.get(el));
        countdowns.delete(el);
        el.textContent = `${err.message} You can try again now.`;
        if (button) button.disabled = false;
        return;
      }
      el.textContent = `${err.message} Try again in ${duration(left)}.`;
      if (button) button.disabled = true;
    };
    tick();
    countdowns.set(el, setInterval(tick, 1000));
    return;
  }
  el.textContent = describe(err, doing);
}

function notice(text) {
  showMessage($('notice'), text);
}

function duration(secs) {
  secs = Math.max(0, Math.round(secs));
  if (secs < 120) return `${secs} s`;
  const m = Math.floor(secs / 60);
  if (m < 120) return `${m} min ${secs % 60} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

// ---- tabs ----------------------------------------------------------------

const channel = 'BroadcastChannel' in window ? new BroadcastChannel('latchkey') : null;

function tell(message) {
  channel?.postMessage(message);
}

// coordinated runs fn while no other tab of this origin changes the
// cookie. Without Web Locks (an old browser, or a page not served over
// https or from localhost) it runs at once and the grace window covers.
function coordinated(fn) {
  if (navigator.locks?.request) return navigator.locks.request('latchkey-session', fn);
  return fn();
}

if (channel) {
  channel.onmessage = (ev) => {
    const m = ev.data;
    if (m?.type === 'token' && typeof m.accessToken === 'string') {
      const before = token?.claims?.sub;
      adopt(m.accessToken, m.expiresAt, m.lifetime);
      if (!token) return;
      if (before !== token.claims.sub) showSignedIn();
    } else if (m?.type === 'signout') {
      signedOut(m.everywhere ? 'You signed out everywhere, in another tab.' : 'You signed out in another tab.');
    } else if (m?.type === 'ended') {
      signedOut('Your session has ended. Sign in again.');
    }
  };
}

// ---- the access token ----------------------------------------------------

function decodePart(part) {
  const b64 = part.replace(/-/g, '+').replace(/_/g, '/');
  const bin = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
  return JSON.parse(new TextDecoder().decode(Uint8Array.from(bin, (c) => c.charCodeAt(0))));
}

// adopt makes raw the page's access token. expiresAt is on this machine's
// clock, from the response's expiresIn rather than the exp claim, so that a
// machine whose clock is off still refreshes on time.
function adopt(raw, expiresAt, lifetime) {
  let header, claims;
  try {
    const parts = raw.split('.');
    header = decodePart(parts[0]);
    claims = decodePart(parts[1]);
  } catch {
    showMessage($('alert'), 'The auth server sent an access token this page cannot read.');
    return;
  }
  token = { raw, header, claims, expiresAt, lifetime };
  schedule();
  renderToken();
}

// refreshLead is how long before expiry the page refreshes: a third of the
// lifetime, at most a minute, so a 15-minute token is renewed at 14 minutes
// and a 3-second one at 2 seconds.
function refreshLead(t) {
  return Math.min(60000, t.lifetime / 3);
}

function fresh(t) {
  return t && t.expiresAt - Date.now() > refreshLead(t) + 250;
}

function schedule() {
  clearTimeout(refreshTimer);
  if (!token) return;
  const delay = retryDelay || Math.max(250, token.expiresAt - refreshLead(token) - Date.now());
  refreshTimer = setTimeout(() => refresh('timer'), delay);
}

// refresh gets a new access token from the cookie. It returns 'ok',
// 'fresh' (another tab had just refreshed and sent its token, so there was
// nothing to do), 'ended' (the session is over: signed out) or 'failed'
// (no answer; the current token, if any, is kept and a retry scheduled).
// reason is 'load', 'retry', 'timer', 'manual' or '401'; for '401', stale
// is the token that was refused.
function refresh(reason, stale) {
  if (!inflight) {
    inflight = coordinated(() => refreshNow(reason, stale)).finally(() => {
      inflight = null;
    });
  }
  return inflight;
}

async function refreshNow(reason, stale) {
  if (token && reason !== 'manual' && reason !== 'load' && (reason !== '401' || token.raw !== stale) && fresh(token)) {
    return 'fresh';
  }
  let data;
  try {
    data = await request('auth', '/session/refresh', { method: 'POST', session: true });
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      retryDelay = 0;
      clearMessage($('alert'));
      if (token) {
        signedOut('Your session has ended. Sign in again.');
        tell({ type: 'ended' });
      }
      return 'ended';
    }
    // No answer, or a server error: keep what we have and try again, a
    // little later each time.
    retryDelay = Math.min(60000, retryDelay ? retryDelay * 2 : 2000);
    showError($('alert'), err, 'renew the session');
    $('alert').textContent += ` Retrying in ${duration(retryDelay / 1000)}.`;
    if (token) schedule();
    else setTimeout(() => refresh('retry'), retryDelay);
    return 'failed';
  }
  retryDelay = 0;
  clearMessage($('alert'));
  const wasIn = token !== null;
  const expiresAt = Date.now() + data.expiresIn * 1000;
  adopt(data.accessToken, expiresAt, data.expiresIn * 1000);
  refreshes++;
  $('token-refreshes').textContent = String(refreshes);
  tell({ type: 'token', accessToken: data.accessToken, expiresAt, lifetime: data.expiresIn * 1000 });
  // The server came back while the sign-in form was showing, and the
  // cookie was still good.
  if (!wasIn && reason === 'retry') showSignedIn();
  return 'ok';
}

// ---- rendering the token -------------------------------------------------

function renderToken() {
  if (!token) return;
  const [h, p, s] = token.raw.split('.');
  const enc = $('token-encoded');
  enc.replaceChildren(span(h, 'tok-header'), '.', span(p, 'tok-payload'), '.', span(s, 'tok-sig'));
  $('token-header').textContent = JSON.stringify(token.header, null, 2);
  $('token-payload').textContent = JSON.stringify(token.claims, null, 2);
  const rows = [];
  for (const [claim, what] of [['iat', 'issued at'], ['nbf', 'not before'], ['exp', 'expires']]) {
    const v = token.claims[claim];
    if (typeof v !== 'number') continue;
    const tr = document.createElement('tr');
    tr.append(cell('th', claim), cell('td', what), cell('td', String(v), 'mono'), cell('td', new Date(v * 1000).toLocaleString()));
    rows.push(tr);
  }
  $('token-times').replaceChildren(...rows);
  tick();
}

function span(text, cls) {
  const el = document.createElement('span');
  el.className = cls;
  el.textContent = text;
  return el;
}

function cell(tag, text, cls) {
  const el = document.createElement(tag);
  if (tag === 'th') el.scope = 'row';
  if (cls) el.className = cls;
  el.textContent = text;
  return el;
}

// tick redraws the countdown; it runs four times a second while signed in.
function tick() {
  if (!token) return;
  const left = (token.expiresAt - Date.now()) / 1000;
  $('token-countdown').textContent = left > 0 ? `Expires in ${duration(Math.ceil(left))}` : `Expired ${duration(-left)} ago`;
  const next = (token.expiresAt - refreshLead(token) - Date.now()) / 1000;
  $('token-refresh-in').textContent = inflight ? 'refreshing…' : next > 0 ? `· silent refresh in ${duration(Math.ceil(next))}` : '· refreshing…';
}
setInterval(tick, 250);

// A tab in the background gets its timers slowed down; when it comes back,
// a token that has run out in the meantime is renewed before it is used.
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible' && token && !fresh(token)) refresh('timer');
});

// ---- signed in, signed out -----------------------------------------------

function isAdmin() {
  return (me?.role ?? token?.claims?.role) === 'admin';
}

async function showSignedIn() {
  clearMessage($('notice'));
  leaveCodeStep();
  resetAccount();
  $('loading').hidden = true;
  $('signed-out').hidden = true;
  $('signed-in').hidden = false;
  $('account').hidden = false;
  $('account-name').textContent = `${token.claims.username} (${token.claims.role})`;
  applyRole();
  await Promise.all([loadMe(), loadBooks(), loadArticles(), loadDevices(), loadTOTP()]);
}

function applyRole() {
  const admin = isAdmin();
  for (const el of document.querySelectorAll('.admin-only')) el.hidden = !admin;
  $('book-form').hidden = !admin;
  $('books-member-note').hidden = admin;
  if (!admin) resetBookForm();
}

// signedOut forgets the access token and shows the sign-in form, with
// message (or none) saying why.
function signedOut(message) {
  token = null;
  me = null;
  clearTimeout(refreshTimer);
  $('loading').hidden = true;
  $('signed-in').hidden = true;
  $('account').hidden = true;
  $('signed-out').hidden = false;
  $('token-encoded').replaceChildren();
  $('token-header').textContent = '';
  $('token-payload').textContent = '';
  $('books-body').replaceChildren();
  $('articles-list').replaceChildren();
  resetBookForm();
  resetAccount();
  leaveCodeStep();
  for (const id of ['books-error', 'books-notice', 'articles-error', 'whoami-error', 'token-error']) clearMessage($(id));
  if (message) notice(message);
  else clearMessage($('notice'));
  $('signin-username').focus();
}

async function loadMe() {
  try {
    me = await authed('auth', '/me');
  } catch (err) {
    showError($('whoami-error'), err, 'load your account');
    return;
  }
  clearMessage($('whoami-error'));
  $('whoami-username').textContent = me.username;
  $('whoami-role').textContent = me.role;
  $('whoami-id').textContent = me.id;
  $('whoami-created').textContent = new Date(me.createdAt).toLocaleString();
  $('account-name').textContent = `${me.username} (${me.role})`;
  $('password-username').value = me.username;
  applyRole();
}

// ---- sign in, register, sign out -----------------------------------------

function busy(button, text) {
  const label = button.textContent;
  button.disabled = true;
  button.textContent = text;
  return () => {
    button.textContent = label;
    if (!countdowns.has(button.closest('form')?.querySelector('.form-error'))) button.disabled = false;
  };
}

// signIn is the password step. It returns true when signed in, and false
// when the server asks for the second step, which the code form then shows.
async function signIn(username, password) {
  let data;
  try {
    data = await coordinated(() =>
      request('auth', '/session/login', { method: 'POST', body: { username, password }, session: true }));
  } catch (err) {
    if (err instanceof ApiError && err.code === 'mfa_required' && typeof err.data?.mfaToken === 'string') {
      askForCode(username, err.data.mfaToken);
      return false;
    }
    throw err;
  }
  await sessionStarted(data);
  return true;
}

// sessionStarted takes the answer of a sign-in that set the cookie.
async function sessionStarted(data) {
  retryDelay = 0;
  clearMessage($('alert'));
  clearMessage($('notice'));
  const expiresAt = Date.now() + data.expiresIn * 1000;
  adopt(data.accessToken, expiresAt, data.expiresIn * 1000);
  tell({ type: 'token', accessToken: data.accessToken, expiresAt, lifetime: data.expiresIn * 1000 });
  await showSignedIn();
  $('main').focus();
}

$('signin-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const err = $('signin-error');
  clearMessage(err);
  const username = $('signin-username').value.trim();
  const password = $('signin-password').value;
  if (!username || !password) {
    showMessage(err, 'Enter your username and your password.');
    (username ? $('signin-password') : $('signin-username')).focus();
    return;
  }
  const done = busy($('signin-submit'), 'Signing in…');
  try {
    await signIn(username, password);
    $('signin-password').value = ''; // the code step does not need it either
  } catch (e) {
    showError(err, e, 'sign you in', $('signin-submit'));
    $('signin-password').select();
  } finally {
    done();
  }
});

// ---- the second step of sign-in ------------------------------------------

function askForCode(username, mfaToken) {
  mfa = { username, token: mfaToken };
  clearMessage($('notice'));
  clearMessage($('signin-error'));
  clearMessage($('mfa-error'));
  $('mfa-for').textContent = `The password for ${username} is right. One more step: your account has two-step sign-in on.`;
  $('mfa-code').value = '';
  $('signin-form').hidden = true;
  $('mfa-form').hidden = false;
  $('mfa-code').focus();
}

// leaveCodeStep forgets the mfaToken and shows the password form again.
function leaveCodeStep() {
  mfa = null;
  $('mfa-code').value = '';
  clearMessage($('mfa-error'));
  $('mfa-submit').disabled = false; // a countdown of a throttled code is over with the step
  $('mfa-form').hidden = true;
  $('signin-form').hidden = false;
}

$('mfa-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const err = $('mfa-error');
  clearMessage(err);
  if (!mfa) {
    leaveCodeStep();
    return;
  }
  const code = $('mfa-code').value.trim();
  if (!code) {
    showMessage(err, 'Enter the 6-digit code from your authenticator app, or one of your recovery codes.');
    $('mfa-code').focus();
    return;
  }
  const step = mfa;
  const done = busy($('mfa-submit'), 'Checking…');
  try {
    const data = await coordinated(() =>
      request('auth', '/session/login/mfa', { method: 'POST', body: { mfaToken: step.token, code }, session: true }));
    leaveCodeStep();
    await sessionStarted(data);
  } catch (e) {
    if (e instanceof ApiError && e.code === 'invalid_grant') {
      // The step expired (it lasts minutes) or is otherwise over: the
      // password is asked again, for a new mfaToken.
      leaveCodeStep();
      $('signin-username').value = step.username;
      showMessage($('signin-error'), 'The two-step sign-in expired or was already used. Enter your password again.');
      $('signin-password').focus();
      return;
    }
    if (e instanceof ApiError && e.code === 'invalid_credentials') {
      showMessage(err, 'That code is wrong, expired or already used. Enter the code your app shows now, or an unused recovery code.');
    } else {
      showError(err, e, 'check the code', $('mfa-submit'));
    }
    $('mfa-code').select();
  } finally {
    done();
  }
});

$('mfa-cancel').addEventListener('click', () => {
  const username = mfa?.username;
  leaveCodeStep();
  if (username) $('signin-username').value = username;
  $('signin-password').focus();
});

$('register-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const err = $('register-error');
  clearMessage(err);
  const username = $('register-username').value.trim();
  const password = $('register-password').value;
  if (!/^[A-Za-z0-9._@-]{3,64}$/.test(username)) {
    showMessage(err, 'Choose a username of 3 to 64 characters: letters, digits and . _ - @');
    $('register-username').focus();
    return;
  }
  if ([...password].length < 8 || [...password].length > 128) {
    showMessage(err, 'Choose a password of 8 to 128 characters.');
    $('register-password').focus();
    return;
  }
  const done = busy($('register-submit'), 'Creating your account…');
  try {
    await request('auth', '/register', { method: 'POST', body: { username, password } });
  } catch (e) {
    showError(err, e, 'create the account', $('register-submit'));
    done();
    return;
  }
  try {
    const signedIn = await signIn(username, password);
    $('register-form').reset();
    if (signedIn) notice(`Welcome, ${username}. Your account is created and you are signed in.`);
  } catch (e) {
    showError(err, e, 'sign you in to the new account', $('register-submit'));
  } finally {
    done();
  }
});

async function signOut(everywhere) {
  const buttons = [$('signout'), $('signout-all')];
  for (const b of buttons) b.disabled = true;
  try {
    if (everywhere) {
      // Every session of the user, this one included, ends here; the
      // cookie is then dead, and clearing it below is tidying up.
      await authed('auth', '/logout/all', { method: 'POST' });
      try {
        await coordinated(() => request('auth', '/session/logout', { method: 'POST', session: true }));
      } catch {
        // The session is revoked already; a cookie left behind is refused.
      }
    } else {
      await coordinated(() => request('auth', '/session/logout', { method: 'POST', session: true }));
    }
  } catch (err) {
    showMessage($('alert'), `${describe(err, everywhere ? 'sign you out everywhere' : 'sign you out')} You are still signed in.`);
    return;
  } finally {
    for (const b of buttons) b.disabled = false;
  }
  tell({ type: 'signout', everywhere });
  signedOut(everywhere ? 'You are signed out on every device.' : 'You are signed out.');
}

$('signout').addEventListener('click', () => signOut(false));
$('signout-all').addEventListener('click', () => signOut(true));
$('token-refresh').addEventListener('click', async () => {
  clearMessage($('token-error'));
  const r = await refresh('manual');
  if (r === 'failed') showMessage($('token-error'), 'The token could not be renewed now; see the message above.');
});

// ---- books -----------------------------------------------------------------

async function loadBooks() {
  const errEl = $('books-error');
  if (!BOOKS) {
    showMessage(errEl, 'This auth server knows no books server (set LATCHKEY_BOOKS_URL).');
    return;
  }
  let list;
  try {
    list = await authed('books', '/books');
  } catch (err) {
    showError(errEl, err, 'load the books');
    return;
  }
  clearMessage(errEl);
  renderBooks(Array.isArray(list) ? list : []);
}

function renderBooks(list) {
  const admin = isAdmin();
  const rows = list.map((b) => {
    const tr = document.createElement('tr');
    tr.dataset.id = String(b.id);
    tr.append(cell('td', b.title), cell('td', b.author), cell('td', b.country), cell('td', b.language),
      cell('td', String(b.pages), 'num'), cell('td', String(b.year), 'num'));
    if (admin) tr.append(bookActions(b));
    return tr;
  });
  $('books-body').replaceChildren(...rows);
  $('books-empty').hidden = list.length > 0;
}

function button(text, cls, label, onclick) {
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = text;
  if (cls) b.className = cls;
  if (label) b.setAttribute('aria-label', label);
  b.addEventListener('click', onclick);
  return b;
}

function bookActions(book) {
  const td = document.createElement('td');
  td.className = 'row-actions';
  const edit = button('Edit', 'secondary small-btn', `Edit ${book.title}`, () => startEdit(book));
  const del = button('Delete', 'danger small-btn', `Delete ${book.title}`, () => {
    // A second, explicit step instead of confirm(), which some browsers
    // suppress and which screen readers announce poorly.
    const q = document.createElement('span');
    q.className = 'confirm';
    q.textContent = 'Delete it? ';
    const yes = button('Yes, delete', 'danger small-btn', `Yes, delete ${book.title}`, () => deleteBook(book, yes));
    const no = button('Cancel', 'secondary small-btn', null, () => {
      td.replaceChildren(edit, del);
      del.focus();
    });
    q.append(yes, no);
    td.replaceChildren(q);
    yes.focus();
  });
  td.append(edit, del);
  return td;
}

async function deleteBook(book, yes) {
  yes.disabled = true;
  try {
    await authed('books', `/books/${encodeURIComponent(book.id)}`, { method: 'DELETE' });
  } catch (err) {
    yes.disabled = false;
    showError($('books-error'), err, 'delete books');
    return;
  }
  if (editing?.id === book.id) resetBookForm();
  showMessage($('books-notice'), `Deleted “${book.title}”.`);
  await loadBooks();
  $('books-title').focus();
}

function startEdit(book) {
  editing = book;
  $('book-form-title').textContent = `Edit “${book.title}”`;
  $('book-submit').textContent = 'Save changes';
  $('book-cancel').hidden = false;
  for (const f of ['title', 'author', 'country', 'language', 'pages', 'year']) $(`book-${f}`).value = String(book[f] ?? '');
  clearMessage($('book-form-error'));
  $('book-title').focus();
}

function resetBookForm() {
  editing = null;
  $('book-form').reset();
  $('book-form-title').textContent = 'Add a book';
  $('book-submit').textContent = 'Add book';
  $('book-cancel').hidden = true;
  clearMessage($('book-form-error'));
}

$('book-cancel').addEventListener('click', resetBookForm);
$('books-reload').addEventListener('click', () => {
  clearMessage($('books-notice'));
  loadBooks();
});

// bookFromForm reads the form, or returns a sentence saying what to fix
// (the books server checks again, and its answer is shown as it is).
function bookFromForm() {
  const v = (f) => $(`book-${f}`).value.trim();
  const book = { title: v('title'), author: v('author'), country: v('country'), language: v('language') };
  if (!book.title || !book.author) return ['Title and author are required.', !book.title ? 'book-title' : 'book-author'];
  if (!/^\d+$/.test(v('pages')) || Number(v('pages')) < 1 || Number(v('pages')) > 100000) {
    return ['Pages must be a whole number from 1 to 100000.', 'book-pages'];
  }
  if (!/^-?\d+$/.test(v('year'))) return ['Year must be a whole number (negative for years BC).', 'book-year'];
  book.pages = Number(v('pages'));
  book.year = Number(v('year'));
  return [book];
}

$('book-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const err = $('book-form-error');
  clearMessage(err);
  clearMessage($('books-notice'));
  const [book, focus] = bookFromForm();
  if (typeof book === 'string') {
    showMessage(err, book);
    $(focus).focus();
    return;
  }
  const wasEditing = editing;
  const done = busy($('book-submit'), wasEditing ? 'Saving…' : 'Adding…');
  try {
    if (wasEditing) {
      await authed('books', `/books/${encodeURIComponent(wasEditing.id)}`, { method: 'PUT', body: book });
    } else {
      await authed('books', '/books', { method: 'POST', body: book });
    }
  } catch (e) {
    showError(err, e, 'add, edit or delete books');
    return;
  } finally {
    done();
  }
  resetBookForm();
  showMessage($('books-notice'), wasEditing ? `Saved “${book.title}”.` : `Added “${book.title}”.`);
  await loadBooks();
});

// ---- articles --------------------------------------------------------------

async function loadArticles() {
  if (!BOOKS) return;
  let list;
  try {
    list = await authed('books', '/articles');
  } catch (err) {
    showError($('articles-error'), err, 'load your articles');
    return;
  }
  clearMessage($('articles-error'));
  list = Array.isArray(list) ? list : [];
  $('articles-list').replaceChildren(...list.map((a) => {
    const li = document.createElement('li');
    const h = document.createElement('h3');
    h.textContent = a.title;
    const meta = document.createElement('p');
    meta.className = 'muted small';
    meta.textContent = `${a.author} · ${new Date(a.createdAt).toLocaleString()}`;
    const body = document.createElement('p');
    body.className = 'article-body';
    body.textContent = a.body;
    li.append(h, meta, body);
    return li;
  }));
  $('articles-empty').hidden = list.length > 0;
}

$('article-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const err = $('article-form-error');
  clearMessage(err);
  const title = $('article-title').value.trim();
  const body = $('article-body').value;
  if (!title || !body.trim()) {
    showMessage(err, 'Give the article a title and some text.');
    $(title ? 'article-body' : 'article-title').focus();
    return;
  }
  const done = busy($('article-submit'), 'Publishing…');
  try {
    await authed('books', '/articles', { method: 'POST', body: { title, body } });
  } catch (e) {
    showError(err, e, 'publish the article');
    return;
  } finally {
    done();
  }
  $('article-form').reset();
  await loadArticles();
});

// ---- account: password, devices, two-step sign-in ---------------------------

// serverSays is the server's description of a refused field as a
// sentence: "newPassword: must differ …" becomes "Must differ ….".
function serverSays(err) {
  const text = String(err.message ?? '').replace(/^[A-Za-z]+: /, '').trim();
  if (!text) return `The ${err.service} refused it (${err.status}).`;
  const sentence = text[0].toUpperCase() + text.slice(1);
  return /[.!?]$/.test(sentence) ? sentence : sentence + '.';
}

// resetAccount empties the account area: nothing of one user's (a secret,
// recovery codes, the devices) stays in the page for the next.
function resetAccount() {
  totp = null;
  totpStep = null;
  forgetEnrolment();
  $('recovery-codes').replaceChildren();
  $('devices-list').replaceChildren();
  $('devices-empty').hidden = true;
  $('totp-status').textContent = '';
  for (const f of ['password-form', 'totp-start-form', 'totp-confirm-form', 'totp-disable-form']) $(f).reset();
  for (const id of ['password-error', 'password-notice', 'devices-error', 'devices-notice', 'totp-error', 'totp-notice',
    'totp-start-error', 'totp-confirm-error', 'totp-disable-error', 'recovery-error', 'recovery-notice']) clearMessage($(id));
  for (const id of ['password-submit', 'totp-start-submit', 'totp-confirm-submit', 'totp-disable-submit']) $(id).disabled = false;
  renderTOTP();
}

// Password.

$('password-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const err = $('password-error');
  clearMessage(err);
  clearMessage($('password-notice'));
  const currentPassword = $('password-current').value;
  const newPassword = $('password-new').value;
  if (!currentPassword) {
    showMessage(err, 'Enter your current password.');
    $('password-current').focus();
    return;
  }
  if ([...newPassword].length < 8 || [...newPassword].length > 128) {
    showMessage(err, 'Choose a new password of 8 to 128 characters.');
    $('password-new').focus();
    return;
  }
  if (newPassword === currentPassword) {
    showMessage(err, 'The new password is the same as the current one. Choose another.');
    $('password-new').focus();
    return;
  }
  const done = busy($('password-submit'), 'Changing…');
  try {
    await authed('auth', '/me/password', { method: 'POST', body: { currentPassword, newPassword } });
  } catch (e) {
    if (e instanceof ApiError && e.code === 'invalid_credentials') {
      showMessage(err, 'The current password is wrong.');
      $('password-current').select();
    } else if (e instanceof ApiError && e.code === 'invalid_request') {
      showMessage(err, `The new password was refused: ${serverSays(e)}`);
      $('password-new').select();
    } else {
      showError(err, e, 'change the password', $('password-submit'));
    }
    return;
  } finally {
    done();
  }
  $('password-current').value = '';
  $('password-new').value = '';
  showMessage($('password-notice'), 'Your password is changed. Every other device signed in to your account was signed out; this one stays signed in.');
  await loadDevices();
});

// My devices.

async function loadDevices() {
  let data;
  try {
    data = await authed('auth', '/me/sessions');
  } catch (err) {
    showError($('devices-error'), err, 'list your devices');
    return;
  }
  if (!token) return; // signed out meanwhile
  clearMessage($('devices-error'));
  const list = Array.isArray(data?.sessions) ? data.sessions.slice() : [];
  list.sort((a, b) => Number(b.current === true) - Number(a.current === true)); // this device first
  $('devices-list').replaceChildren(...list.map(deviceItem));
  $('devices-empty').hidden = list.length > 0;
}

// agentName makes a user agent string readable: "Chrome on Linux".
function agentName(ua) {
  if (!ua) return 'Unknown device';
  const browsers = [[/Edg\//, 'Edge'], [/OPR\//, 'Opera'], [/Firefox\//, 'Firefox'], [/HeadlessChrome\//, 'Headless Chrome'],
    [/Chrome\//, 'Chrome'], [/Safari\//, 'Safari'], [/^curl\//, 'curl'], [/^Go-http-client\//, 'A Go program']];
  const systems = [[/Android/, 'Android'], [/iPhone|iPad/, 'iOS'], [/Windows/, 'Windows'], [/CrOS/, 'ChromeOS'],
    [/Mac OS X|Macintosh/, 'macOS'], [/Linux/, 'Linux']];
  const browser = browsers.find(([re]) => re.test(ua))?.[1];
  const system = systems.find(([re]) => re.test(ua))?.[1];
  if (browser && system) return `${browser} on ${system}`;
  return browser ?? system ?? (ua.length > 60 ? ua.slice(0, 57) + '…' : ua);
}

function when(t) {
  const d = new Date(t);
  return t && !Number.isNaN(d.getTime()) ? d.toLocaleString() : 'unknown';
}

function deviceItem(s) {
  const li = document.createElement('li');
  li.dataset.id = String(s.id);
  const name = agentName(s.userAgent);
  const info = document.createElement('div');
  info.className = 'device-info';
  const title = document.createElement('p');
  title.className = 'device-name';
  const strong = document.createElement('strong');
  strong.textContent = name;
  title.append(strong);
  if (s.current === true) {
    li.classList.add('current');
    title.append(' ', span('This device', 'badge'));
  }
  const meta = document.createElement('p');
  meta.className = 'muted small';
  meta.textContent = `Address ${s.ip || 'unknown'} · last used ${when(s.lastUsedAt)} · signed in ${when(s.createdAt)}`;
  const ua = document.createElement('p');
  ua.className = 'muted small mono device-ua';
  ua.textContent = s.userAgent || '(no user agent)';
  info.append(title, meta, ua);
  // Ending this device's own session is signing out, cookie and all.
  const b = s.current === true
    ? button('Sign out', 'secondary small-btn', 'Sign out this device, the one you are using', () => signOut(false))
    : button('Sign out this device', 'danger small-btn', `Sign out ${name} at ${s.ip || 'an unknown address'}, last used ${when(s.lastUsedAt)}`,
      () => endSession(s, b));
  li.append(info, b);
  return li;
}

async function endSession(s, b) {
  b.disabled = true;
  clearMessage($('devices-notice'));
  clearMessage($('devices-error'));
  try {
    await authed('auth', `/me/sessions/${encodeURIComponent(s.id)}`, { method: 'DELETE' });
  } catch (err) {
    b.disabled = false;
    if (err instanceof ApiError && err.code === 'not_found') {
      showMessage($('devices-notice'), 'That device was signed out already.');
      await loadDevices();
    } else {
      showError($('devices-error'), err, 'sign that device out');
    }
    return;
  }
  showMessage($('devices-notice'), `Signed out ${agentName(s.userAgent)} at ${s.ip || 'an unknown address'}. It has to sign in again.`);
  await loadDevices();
  $('devices-title').focus();
}

$('devices-reload').addEventListener('click', () => {
  clearMessage($('devices-notice'));
  loadDevices();
});

// Two-step sign-in.

async function loadTOTP() {
  let data;
  try {
    data = await authed('auth', '/me/totp');
  } catch (err) {
    showError($('totp-error'), err, 'read your two-step sign-in setting');
    return;
  }
  if (!token) return;
  clearMessage($('totp-error'));
  totp = { enabled: data?.enabled === true, recoveryCodesLeft: Number(data?.recoveryCodesLeft) || 0 };
  renderTOTP();
}

function renderTOTP() {
  const on = totp?.enabled === true;
  const status = $('totp-status');
  if (!totp) status.textContent = '';
  else if (!on) status.textContent = 'Off: your password alone signs you in.';
  else {
    const left = totp.recoveryCodesLeft;
    status.textContent = `On: after your password, you enter a code from your authenticator app. ${left} recovery ${left === 1 ? 'code' : 'codes'} left.` +
      (left <= 3 ? ' Running low: turn two-step sign-in off and on again for ten new ones.' : '');
  }
  $('totp-start').hidden = !totp || on || totpStep !== null;
  $('totp-start-form').hidden = totpStep !== 'password';
  $('totp-enrol').hidden = totpStep !== 'enrol';
  $('totp-recovery').hidden = totpStep !== 'codes';
  $('totp-disable-form').hidden = !on || totpStep !== null;
}

// forgetEnrolment takes the secret out of the page.
function forgetEnrolment() {
  $('totp-qr').removeAttribute('src');
  $('totp-secret').textContent = '';
  $('totp-link').removeAttribute('href');
  $('totp-link').hidden = true;
  $('totp-confirm-code').value = '';
}

$('totp-start').addEventListener('click', () => {
  clearMessage($('totp-notice'));
  totpStep = 'password';
  renderTOTP();
  $('totp-start-password').focus();
});

$('totp-start-cancel').addEventListener('click', () => {
  totpStep = null;
  $('totp-start-form').reset();
  clearMessage($('totp-start-error'));
  renderTOTP();
  $('totp-start').focus();
});

$('totp-start-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const err = $('totp-start-error');
  clearMessage(err);
  const password = $('totp-start-password').value;
  if (!password) {
    showMessage(err, 'Enter your password.');
    $('totp-start-password').focus();
    return;
  }
  const done = busy($('totp-start-submit'), 'Checking…');
  let data;
  try {
    data = await authed('auth', '/me/totp', { method: 'POST', body: { password } });
  } catch (e) {
    if (e instanceof ApiError && e.code === 'invalid_credentials') {
      showMessage(err, 'Wrong password.');
      $('totp-start-password').select();
    } else if (e instanceof ApiError && e.code === 'conflict') {
      totpStep = null;
      $('totp-start-form').reset();
      showMessage($('totp-notice'), 'Two-step sign-in is on already.');
      await loadTOTP();
    } else {
      showError(err, e, 'start two-step sign-in', $('totp-start-submit'));
    }
    return;
  } finally {
    done();
  }
  $('totp-start-form').reset();
  const qr = typeof data?.qrCode === 'string' && data.qrCode.startsWith('data:image/png;base64,') ? data.qrCode : '';
  if (qr) $('totp-qr').src = qr;
  else $('totp-qr').removeAttribute('src');
  const secret = String(data?.secret ?? '');
  $('totp-secret').textContent = secret.replace(/(.{4})(?=.)/g, '$1 '); // in fours, as apps accept it
  const link = typeof data?.otpauthUrl === 'string' && data.otpauthUrl.startsWith('otpauth://') ? data.otpauthUrl : '';
  if (link) $('totp-link').href = link;
  $('totp-link').hidden = !link;
  totpStep = 'enrol';
  renderTOTP();
  $('totp-enrol-title').focus();
});

$('totp-enrol-cancel').addEventListener('click', () => {
  // The enrolment stays pending on the server and does nothing: sign-in
  // asks for a code only once one is confirmed.
  totpStep = null;
  forgetEnrolment();
  clearMessage($('totp-confirm-error'));
  renderTOTP();
  $('totp-start').focus();
});

$('totp-confirm-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const err = $('totp-confirm-error');
  clearMessage(err);
  const code = $('totp-confirm-code').value.replace(/\s+/g, '');
  if (!/^\d{6}$/.test(code)) {
    showMessage(err, 'Enter the 6 digits your authenticator app shows.');
    $('totp-confirm-code').focus();
    return;
  }
  const done = busy($('totp-confirm-submit'), 'Checking…');
  let data;
  try {
    data = await authed('auth', '/me/totp/confirm', { method: 'POST', body: { code } });
  } catch (e) {
    if (e instanceof ApiError && e.code === 'invalid_request') {
      showMessage(err, /pending/.test(e.message)
        ? 'This enrolment is over (it was replaced or cancelled). Cancel, and start again.'
        : 'That is not the code the app shows now. Check that the time on your phone is right, and enter the current code.');
      $('totp-confirm-code').select();
    } else if (e instanceof ApiError && e.code === 'conflict') {
      totpStep = null;
      forgetEnrolment();
      showMessage($('totp-notice'), 'Two-step sign-in is on already.');
      await loadTOTP();
    } else {
      showError(err, e, 'turn on two-step sign-in', $('totp-confirm-submit'));
    }
    return;
  } finally {
    done();
  }
  const codes = Array.isArray(data?.recoveryCodes) ? data.recoveryCodes.map(String) : [];
  forgetEnrolment();
  $('recovery-codes').replaceChildren(...codes.map((c) => {
    const li = document.createElement('li');
    li.textContent = c;
    return li;
  }));
  totp = { enabled: true, recoveryCodesLeft: codes.length };
  totpStep = 'codes';
  renderTOTP();
  showMessage($('totp-notice'), 'Two-step sign-in is on. From now on you sign in with your password and a code.');
  $('recovery-title').focus();
});

$('recovery-copy').addEventListener('click', async () => {
  clearMessage($('recovery-error'));
  clearMessage($('recovery-notice'));
  const text = [...$('recovery-codes').children].map((li) => li.textContent).join('\n');
  try {
    await navigator.clipboard.writeText(text + '\n');
  } catch {
    showMessage($('recovery-error'), 'This browser would not copy them. Select the codes and copy them by hand.');
    return;
  }
  showMessage($('recovery-notice'), 'Copied. Paste them into your password manager now.');
});

$('recovery-ack').addEventListener('click', async () => {
  // The codes leave the page: only their hashes are on the server.
  $('recovery-codes').replaceChildren();
  clearMessage($('recovery-error'));
  clearMessage($('recovery-notice'));
  totpStep = null;
  renderTOTP();
  $('totp-title').focus();
  await loadTOTP();
});

// Leaving the page while the codes are shown loses them: the browser asks
// first.
window.addEventListener('beforeunload', (ev) => {
  if (totpStep === 'codes') ev.preventDefault();
});

$('totp-disable-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const err = $('totp-disable-error');
  clearMessage(err);
  clearMessage($('totp-notice'));
  const password = $('totp-disable-password').value;
  const code = $('totp-disable-code').value.trim();
  if (!password || !code) {
    showMessage(err, 'Enter your password and a code from your authenticator app (or a recovery code).');
    $(password ? 'totp-disable-code' : 'totp-disable-password').focus();
    return;
  }
  const done = busy($('totp-disable-submit'), 'Turning off…');
  try {
    await authed('auth', '/me/totp', { method: 'DELETE', body: { password, code } });
  } catch (e) {
    if (e instanceof ApiError && e.code === 'invalid_credentials') {
      // The password is checked first, then the code; the server's
      // description says which was wrong.
      const codeWrong = /code/i.test(e.message);
      showMessage(err, codeWrong ? 'That code is wrong, expired or already used.' : 'Wrong password.');
      $(codeWrong ? 'totp-disable-code' : 'totp-disable-password').select();
    } else if (e instanceof ApiError && e.code === 'not_found') {
      $('totp-disable-form').reset();
      showMessage($('totp-notice'), 'Two-step sign-in is off already.');
      await loadTOTP();
    } else {
      showError(err, e, 'turn off two-step sign-in', $('totp-disable-submit'));
    }
    return;
  } finally {
    done();
  }
  $('totp-disable-form').reset();
  showMessage($('totp-notice'), 'Two-step sign-in is off: your password alone signs you in.');
  await loadTOTP();
  $('totp-title').focus();
});

// ---- start -----------------------------------------------------------------

async function start() {
  $('jwks-link').href = AUTH + '/.well-known/jwks.json';
  $('books-url').textContent = BOOKS || 'none configured';
  if (location.origin !== AUTH_ORIGIN) {
    // The cookie and the CSRF check belong to the issuer's origin; from
    // any other address every sign-in would be refused.
    const p = $('wrong-origin');
    p.append(`This page is open at ${location.origin}, but this server's address is ${AUTH_ORIGIN}. Signing in works only there: `);
    const a = document.createElement('a');
    a.href = AUTH + '/';
    a.textContent = `open ${AUTH}/`;
    p.append(a, '.');
    p.hidden = false;
    $('loading').hidden = true;
    return;
  }
  // A reload, or a new tab: the cookie, if there is one, signs us back in.
  await refresh('load');
  if (token) await showSignedIn();
  else signedOut(null);
}

start();
