/* global document, location, fetch */
// The demo page: the access token stays in this variable only; the refresh token is an HttpOnly
// cookie the page never sees. Requests that use the cookie send the CSRF header.
'use strict';

const CSRF_HEADER = 'X-Refresh-CSRF';
let accessToken = null;
let refreshes = 0;

const $ = (id) => document.getElementById(id);

function log(text, ok = true) {
  const item = document.createElement('li');
  item.textContent = `${new Date().toLocaleTimeString()}  ${text}`;
  item.className = ok ? 'ok' : 'err';
  $('log').prepend(item);
}

function show(body) {
  accessToken = body ? body.access_token : null;
  $('token').textContent = accessToken
    ? `${accessToken.slice(0, 24)}… (${accessToken.length} chars)`
    : 'none';
  $('expires').textContent = body ? `${body.expires_in} s` : '–';
  $('refreshes').textContent = String(refreshes);
  for (const id of ['me', 'refresh', 'sessions', 'logout']) $(id).disabled = !accessToken;
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
  const ok = response.ok;
  log(`${method} ${path} → ${response.status}${json && json.error ? ` ${json.error}` : ''}`, ok);
  return { ok, status: response.status, json };
}

function credentials() {
  return { email: $('email').value, password: $('password').value };
}

async function register() {
  await call('POST', '/auth/register', { body: credentials() });
}

async function login() {
  const { ok, json } = await call('POST', '/auth/login', { body: credentials(), cookie: true });
  if (!ok) return show(null);
  if ('refresh_token' in json) log('unexpected: refresh_token in the body', false);
  show(json);
  await me();
}

async function me() {
  const { ok, json } = await call('GET', '/me', { bearer: true });
  $('who').textContent = ok ? `${json.email} (${json.id})` : 'nobody';
}

async function refresh() {
  const { ok, json } = await call('POST', '/auth/token', { cookie: true });
  if (!ok) return show(null);
  refreshes += 1;
  show(json);
}

async function sessions() {
  const { ok, json } = await call('GET', '/auth/sessions', { bearer: true });
  if (ok)
    log(
      `${json.sessions.length} live session(s); current: ${json.sessions.some((s) => s.current)}`,
    );
}

async function logout() {
  await call('POST', '/auth/logout', { cookie: true });
  show(null);
  $('who').textContent = 'nobody';
}

async function tour() {
  $('email').value = `demo-${Math.random().toString(36).slice(2, 8)}@example.com`;
  $('password').value = 'correct horse battery staple';
  await register();
  await login();
  await refresh();
  await me();
  await sessions();
}

function guard(action) {
  return () => action().catch((error) => log(String(error), false));
}

$('credentials').addEventListener('submit', (event) => {
  event.preventDefault();
  guard(login)();
});
$('register').addEventListener('click', guard(register));
$('me').addEventListener('click', guard(me));
$('refresh').addEventListener('click', guard(refresh));
$('sessions').addEventListener('click', guard(sessions));
$('logout').addEventListener('click', guard(logout));
$('tour').addEventListener('click', guard(tour));
if (location.hash === '#tour') guard(tour)();
