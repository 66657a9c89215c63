/* global document, location, history, fetch, window */
// The demo page: its UI only. Sessions are refresh-rotation/client, the module the package ships
// (served from its build at /refresh-rotation-client.mjs): restore on load, one refresh at a time
// across tabs, refresh ahead of expiry and once on a 401, keep the session through offline spells
// and 5xx, sign out only when the server refuses the cookie or another tab signs out. The access
// token lives in the module's memory; the refresh token is an HttpOnly cookie the page never sees.
import { createSessionClient } from '/refresh-rotation-client.mjs';

const $ = (id) => document.getElementById(id);

function log(text, ok = true) {
  const item = document.createElement('li');
  item.textContent = `${new Date().toLocaleTimeString()}  ${text}`;
  item.className = ok ? 'ok' : 'err';
  $('log').prepend(item);
  while ($('log').children.length > 50) $('log').lastChild.remove();
}

/** Every request the page and the module send, in the page's log. */
async function loggedFetch(input, init = {}) {
  const what = `${init.method ?? 'GET'} ${String(input)}`;
  try {
    const response = await fetch(input, init);
    const error = response.ok
      ? ''
      : await response
          .clone()
          .json()
          .then(
            (json) => json.error,
            () => '',
          );
    log(`${what} → ${response.status}${error ? ` ${error}` : ''}`, response.ok);
    return response;
  } catch (error) {
    log(`${what} → ${error.name}`, false);
    throw error;
  }
}

/** What the browser tests read: each change the module reported in this tab, the refreshes it sent, and how often a signed-in tab was signed out. */
const seen = { changes: [], refreshes: 0, signOuts: 0 };

/** The state the page shows, to tell a sign-in (show who and their sessions) from a refresh. */
let shown = 'restoring';

const session = createSessionClient({
  environment: { fetch: loggedFetch },
  onChange(change) {
    seen.changes.push(change.reason);
    if (change.reason === 'refreshed' || change.reason === 'restored') seen.refreshes += 1;
    const signingIn = change.state === 'signed-in' && shown !== 'signed-in';
    if (change.state === 'signed-out' && shown === 'signed-in') seen.signOuts += 1;
    render();
    if (signingIn) guard(show)();
    if (change.state === 'signed-out') {
      $('who').textContent = 'nobody';
      $('sessions').replaceChildren();
    }
  },
});

function render() {
  const state = session.state;
  shown = state;
  document.body.dataset.state = state;
  $('signed-in').hidden = state !== 'signed-in';
  $('signed-out').hidden = state !== 'signed-out';
  $('restoring').hidden = state !== 'restoring';
  $('token').textContent = state === 'signed-in' ? "in this page's memory only" : 'none';
  $('expires').textContent = session.expiresAt
    ? new Date(session.expiresAt).toLocaleTimeString()
    : '–';
  $('refreshes').textContent = String(seen.refreshes);
}

/** The API with the access token (the module adds it, and refreshes once on a 401). */
async function api(method, path, body) {
  const response = await session.fetch(path, {
    method,
    headers: body
      ? { 'Content-Type': 'application/json', Accept: 'application/json' }
      : { Accept: 'application/json' },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await response.text();
  return { ok: response.ok, status: response.status, json: text ? JSON.parse(text) : null };
}

/* ----- Account actions ----- */

function credentials() {
  return { email: $('email').value, password: $('password').value };
}

async function register() {
  await loggedFetch('/auth/register', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(credentials()),
  });
}

async function login() {
  const response = await session.signIn('/auth/login', {
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(credentials()),
  });
  if (response.ok && 'refresh_token' in (await response.json()))
    log('unexpected: refresh_token in the body', false);
}

async function me() {
  const { ok, json } = await api('GET', '/me');
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

function sessionRow(entry) {
  const row = document.createElement('tr');
  if (entry.current) row.className = 'current';
  const client = describeClient(entry.client);
  const cells = [
    entry.current ? `${client} (this browser)` : client,
    new Date(entry.created_at).toLocaleString(),
    entry.last_used_at ? new Date(entry.last_used_at).toLocaleString() : '–',
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
  revoke.dataset.session = entry.id;
  revoke.addEventListener(
    'click',
    guard(() => revokeSession(entry.id, entry.current)),
  );
  action.append(revoke);
  row.append(action);
  return row;
}

async function sessions() {
  const { ok, json } = await api('GET', '/auth/sessions');
  if (ok) $('sessions').replaceChildren(...json.sessions.map(sessionRow));
}

/** Who is signed in and their sessions, after a sign-in, a restore or another tab's sign-in. */
async function show() {
  if (await me()) await sessions();
}

async function revokeSession(id, current) {
  const { ok } = await api('DELETE', `/auth/sessions/${encodeURIComponent(id)}`);
  // The cookie now names a revoked session: the next refresh would sign every tab out anyway.
  if (ok && current) return session.signOut();
  await sessions();
}

async function changePassword(event) {
  event.preventDefault();
  const { ok } = await api('POST', '/auth/password', {
    currentPassword: $('current-password').value,
    newPassword: $('new-password').value,
  });
  $('password-form').reset();
  if (ok) {
    log('password changed: every session is signed out; log in with the new password');
    await session.signOut();
  }
}

async function tour() {
  // A reload of the page after the tour restores the session instead of registering again.
  if (location.hash === '#tour') history.replaceState(null, '', location.pathname);
  $('email').value = `demo-${Math.random().toString(36).slice(2, 8)}@example.com`;
  $('password').value = 'correct horse battery staple';
  await register();
  await login();
  await session.refresh();
  await show();
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
$('refresh').addEventListener(
  'click',
  guard(() => session.refresh()),
);
$('reload-sessions').addEventListener('click', guard(sessions));
$('logout').addEventListener(
  'click',
  guard(() => session.signOut()),
);
$('logout-all').addEventListener(
  'click',
  guard(() => session.signOutEverywhere()),
);
$('password-form').addEventListener('submit', guard(changePassword));
$('tour').addEventListener('click', guard(tour));

// For the browser tests and the curious: the same functions the buttons use.
window.refreshDemo = {
  refresh: () => session.refresh(),
  logout: () => session.signOut(),
  me,
  /** The status of a GET through the module's fetch (the access token added, a 401 retried once). */
  status: async (path) => (await session.fetch(path)).status,
  state: () => ({ state: session.state, ...seen, changes: [...seen.changes] }),
};

// The tour also starts when the address of an open page changes to #tour.
window.addEventListener('hashchange', () => {
  if (location.hash === '#tour') guard(tour)();
});
render();
if (location.hash === '#tour') guard(tour)();
