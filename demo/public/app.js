/* global document, location, history, localStorage, fetch, navigator, BroadcastChannel, window, setTimeout, clearTimeout */
// The demo page, a small browser client of the token router. The access token lives only in this
// page's memory (and is handed to sibling tabs over a same-origin BroadcastChannel); the refresh
// token is an HttpOnly cookie the page never sees. Requests that use the cookie send the CSRF
// header. On load the page restores its session with one cookie refresh; tabs refresh one at a
// time (Web Locks) and the others take the result; the token is refreshed before it expires.
'use strict';

const CSRF_HEADER = 'X-Refresh-CSRF';
const LOCK = 'refresh-rotation:refresh';
/**
 * Set while this browser holds a session. The cookie is HttpOnly, so the page cannot see whether
 * there is one; without this hint a first visit would send a refresh bound to fail with a 400.
 * It is a hint only (no token, nothing secret): a stale one costs one failed refresh.
 */
const SIGNED_IN_HINT = 'refresh-rotation:signed-in';
/** How long a tab waits for the lock holder's result before refreshing itself. */
const WAIT_FOR_OTHER_TAB_MS = 5_000;

const channel = typeof BroadcastChannel === 'function' ? new BroadcastChannel(LOCK) : null;
let accessToken = null;
let expiresAt = 0;
let refreshes = 0;
let timer = null;
const waiting = new Set();

const $ = (id) => document.getElementById(id);

function log(text, ok = true) {
  const item = document.createElement('li');
  item.textContent = `${new Date().toLocaleTimeString()}  ${text}`;
  item.className = ok ? 'ok' : 'err';
  $('log').prepend(item);
  while ($('log').children.length > 50) $('log').lastChild.remove();
}

function render(state) {
  document.body.dataset.state = state;
  $('signed-in').hidden = state !== 'signed-in';
  $('signed-out').hidden = state !== 'signed-out';
  $('restoring').hidden = state !== 'restoring';
  $('token').textContent = accessToken
    ? `${accessToken.slice(0, 24)}… (${accessToken.length} chars)`
    : 'none';
  $('expires').textContent = accessToken ? new Date(expiresAt).toLocaleTimeString() : '–';
  $('refreshes').textContent = String(refreshes);
}

async function call(method, path, { body, bearer = false, cookie = false } = {}) {
  const headers = { Accept: 'application/json' };
  if (body) headers['Content-Type'] = 'application/json';
  if (bearer && accessToken) headers.Authorization = `Bearer ${accessToken}`;
  if (cookie) {
    headers['X-Token-Transport'] = 'cookie';
    headers[CSRF_HEADER] = '1';
  }
  const response = await fetch(path, {
    method,
    headers,
    body: body ? JSON.stringify(body) : undefined,
    credentials: 'same-origin',
  });
  const text = await response.text();
  const json = text ? JSON.parse(text) : null;
  log(
    `${method} ${path} → ${response.status}${json && json.error ? ` ${json.error}` : ''}`,
    response.ok,
  );
  return { ok: response.ok, status: response.status, json };
}

/* ----- Tokens: adopt, share, refresh (one tab at a time), schedule ----- */

function schedule() {
  clearTimeout(timer);
  if (!accessToken) return;
  const lifetime = expiresAt - Date.now();
  // Refresh a little before expiry: a fifth of the lifetime, at most 30 s early.
  const early = Math.min(30_000, lifetime / 5);
  timer = setTimeout(() => void refresh().catch(() => undefined), Math.max(0, lifetime - early));
}

function remember(signedIn) {
  try {
    if (signedIn) localStorage.setItem(SIGNED_IN_HINT, '1');
    else localStorage.removeItem(SIGNED_IN_HINT);
  } catch {
    // Storage disabled: every load then tries the one refresh.
  }
}

function mayHaveSession() {
  try {
    return localStorage.getItem(SIGNED_IN_HINT) !== null;
  } catch {
    return true;
  }
}

function adopt(body, receivedAt = Date.now()) {
  remember(true);
  accessToken = body.access_token;
  expiresAt = receivedAt + body.expires_in * 1000;
  schedule();
  render('signed-in');
}

function signedOut(broadcast) {
  remember(false);
  accessToken = null;
  expiresAt = 0;
  clearTimeout(timer);
  $('who').textContent = 'nobody';
  $('sessions').replaceChildren();
  render('signed-out');
  if (broadcast && channel) channel.postMessage({ type: 'signed-out' });
}

if (channel) {
  channel.onmessage = (event) => {
    const message = event.data;
    if (message.type === 'token') {
      const wasSignedOut = !accessToken;
      adopt(message.body);
      for (const resolve of waiting) resolve(message.body);
      waiting.clear();
      if (wasSignedOut) void me();
    } else if (message.type === 'signed-out') {
      for (const resolve of waiting) resolve(null);
      waiting.clear();
      signedOut(false);
    }
  };
}

function withLock(options, action) {
  if (!navigator.locks) return action(true);
  return navigator.locks.request(LOCK, options, (lock) => action(lock !== null));
}

/** One cookie refresh; shares the answer with the other tabs. Resolves to whether we are signed in. */
async function refreshNow() {
  const { ok, status, json } = await call('POST', '/auth/token', { cookie: true });
  if (status === 400) {
    // invalid_grant (revoked, reused, expired) or no cookie: the session is gone for every tab.
    signedOut(true);
    return false;
  }
  if (!ok) return false; // 429, 503: keep the token we have and try again later
  refreshes += 1;
  adopt(json);
  if (channel) channel.postMessage({ type: 'token', body: json });
  return true;
}

function nextSharedToken(timeoutMs) {
  return new Promise((resolve) => {
    const done = (body) => {
      clearTimeout(timeout);
      waiting.delete(done);
      resolve(body);
    };
    const timeout = setTimeout(() => done(undefined), timeoutMs);
    waiting.add(done);
  });
}

/**
 * Refresh the access token. If another tab is refreshing (the lock is taken), wait for its result
 * instead of sending a second refresh with the same cookie; refresh ourselves only if none comes.
 */
async function refresh() {
  const mine = await withLock({ ifAvailable: true }, (held) => (held ? refreshNow() : null));
  if (mine !== null) return mine;
  const shared = await nextSharedToken(WAIT_FOR_OTHER_TAB_MS);
  if (shared === null) return false; // the other tab found the session dead
  if (shared) return true; // adopted by the channel listener
  return withLock({}, () => refreshNow());
}

/* ----- Account actions ----- */

function credentials() {
  return { email: $('email').value, password: $('password').value };
}

async function register() {
  await call('POST', '/auth/register', { body: credentials() });
}

async function login() {
  const { ok, json } = await call('POST', '/auth/login', { body: credentials(), cookie: true });
  if (!ok) return signedOut(false);
  if ('refresh_token' in json) log('unexpected: refresh_token in the body', false);
  adopt(json);
  if (channel) channel.postMessage({ type: 'token', body: json });
  await me();
  await sessions();
}

async function me() {
  const { ok, json } = await call('GET', '/me', { bearer: true });
  $('who').textContent = ok ? json.email : 'nobody';
  return ok;
}

/** "Chrome 156 on X11" from a user agent; the raw start of it when it is not recognised. */
function describeClient(client) {
  const agent = client.user_agent || '';
  const browser = /(Edg|Firefox|HeadlessChrome|Chrome|Safari)\/(\d+)/.exec(agent);
  const platform = /\(([^;)]+)/.exec(agent);
  if (browser) return `${browser[1]} ${browser[2]}${platform ? ` on ${platform[1]}` : ''}`;
  return agent.slice(0, 40) || client.ip || 'unknown client';
}

function sessionRow(session) {
  const row = document.createElement('tr');
  if (session.current) row.className = 'current';
  const client = describeClient(session.client);
  const cells = [
    session.current ? `${client} (this browser)` : client,
    new Date(session.created_at).toLocaleString(),
    session.last_used_at ? new Date(session.last_used_at).toLocaleString() : '–',
  ];
  for (const text of cells) {
    const cell = document.createElement('td');
    cell.textContent = text;
    row.append(cell);
  }
  const action = document.createElement('td');
  const revoke = document.createElement('button');
  revoke.type = 'button';
  revoke.className = 'revoke';
  revoke.textContent = 'Revoke';
  revoke.dataset.session = session.id;
  revoke.addEventListener(
    'click',
    guard(() => revokeSession(session.id, session.current)),
  );
  action.append(revoke);
  row.append(action);
  return row;
}

async function sessions() {
  const { ok, json } = await call('GET', '/auth/sessions', { bearer: true });
  if (ok) $('sessions').replaceChildren(...json.sessions.map(sessionRow));
}

async function revokeSession(id, current) {
  const { ok } = await call('DELETE', `/auth/sessions/${encodeURIComponent(id)}`, {
    bearer: true,
  });
  if (ok && current) return signedOut(true);
  await sessions();
}

async function logout() {
  await call('POST', '/auth/logout', { cookie: true });
  signedOut(true);
}

async function logoutEverywhere() {
  await call('POST', '/auth/logout-all', { bearer: true });
  signedOut(true);
}

async function changePassword(event) {
  event.preventDefault();
  const { ok } = await call('POST', '/auth/password', {
    bearer: true,
    body: { currentPassword: $('current-password').value, newPassword: $('new-password').value },
  });
  $('password-form').reset();
  if (ok) {
    log('password changed: every session is signed out; log in with the new password');
    signedOut(true);
  }
}

async function tour() {
  // A reload of the page after the tour restores the session instead of registering again.
  if (location.hash === '#tour') history.replaceState(null, '', location.pathname);
  $('email').value = `demo-${Math.random().toString(36).slice(2, 8)}@example.com`;
  $('password').value = 'correct horse battery staple';
  await register();
  await login();
  await refresh();
  await me();
  await sessions();
}

/** On load: one cookie refresh restores the session, so a reload needs no login. */
async function restore() {
  if (!mayHaveSession()) return render('signed-out');
  render('restoring');
  if (await refresh()) {
    await me();
    await sessions();
  }
}

function guard(action) {
  return (event) => action(event).catch((error) => log(String(error), false));
}

$('credentials').addEventListener(
  'submit',
  guard(async (event) => {
    event.preventDefault();
    await login();
  }),
);
$('register').addEventListener('click', guard(register));
$('refresh').addEventListener('click', guard(refresh));
$('reload-sessions').addEventListener('click', guard(sessions));
$('logout').addEventListener('click', guard(logout));
$('logout-all').addEventListener('click', guard(logoutEverywhere));
$('password-form').addEventListener('submit', guard(changePassword));
$('tour').addEventListener('click', guard(tour));

// For the browser tests and the curious: the same functions the buttons use.
window.refreshDemo = { refresh, logout, me, state: () => ({ signedIn: !!accessToken, refreshes }) };

// The tour also starts when the address of an open page changes to #tour.
window.addEventListener('hashchange', () => {
  if (location.hash === '#tour') guard(tour)();
});
if (location.hash === '#tour') guard(tour)();
else guard(restore)();
