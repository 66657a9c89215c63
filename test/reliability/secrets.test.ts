/**
 * Secrets at rest and in transit: after a full journey through the running app (logins by body
 * and by cookie, refreshes, reuse, session revocation, logout, password change through the worker,
 * logout-all, activity tracking), no refresh or access token appears in any MongoDB document, any
 * Redis key or job, the captured logs or the audit events; every answer that carries a token says
 * `Cache-Control: no-store`.
 */
import { Redis } from 'ioredis';
import mongoose from 'mongoose';
import { mongoUri, redisUrl } from '../support/services';
import { waitFor } from '../support/wait-for';
import { report } from './support/load';
import { PASSWORD, startApp, useApp, type TestApp } from '../support/app-harness';
import { type HttpAnswer } from '../support/http-client';

jest.setTimeout(120_000);

const { BSON } = mongoose.mongo;
const CSRF = { 'x-refresh-csrf': '1', 'sec-fetch-site': 'same-origin' };

interface Needle {
  what: string;
  text: string[];
  bytes: Buffer[];
}

/** The strings and byte runs that would betray a token: the token itself and its secret parts, in the encodings a store might use. */
function needlesOf(token: string): Needle {
  if (token.startsWith('rt_')) {
    const body = token.slice(3);
    const raw = Buffer.from(body, 'base64url');
    const mac = raw.subarray(raw.length - 32);
    return {
      what: `refresh token ${token.slice(0, 12)}…`,
      text: [
        token,
        body,
        raw.toString('hex'),
        raw.toString('base64'),
        mac.toString('hex'),
        mac.toString('base64'),
        mac.toString('base64url'),
      ],
      bytes: [Buffer.from(token), raw, mac],
    };
  }
  const [, payload = '', signature = ''] = token.split('.');
  const sig = Buffer.from(signature, 'base64url');
  return {
    what: `access token ${token.slice(0, 12)}…`,
    text: [token, signature, payload, sig.toString('hex'), sig.toString('base64')],
    bytes: [Buffer.from(token), sig],
  };
}

function cookieToken(answer: HttpAnswer): string | undefined {
  const cookies = answer.headers['set-cookie'] ?? [];
  for (const cookie of cookies) {
    const value = /^[^=]+=([^;]*)/.exec(cookie)?.[1];
    if (value && value.startsWith('rt_')) return decodeURIComponent(value);
  }
  return undefined;
}

async function redisDump(redis: Redis): Promise<{ keys: number; text: string; bytes: Buffer }> {
  const parts: Buffer[] = [];
  let keys = 0;
  let cursor = '0';
  do {
    const [next, batch] = await redis.scanBuffer(cursor, 'COUNT', '500');
    cursor = next.toString();
    for (const key of batch) {
      keys += 1;
      parts.push(key);
      const type = await redis.type(key);
      if (type === 'string') parts.push((await redis.getBuffer(key)) ?? Buffer.alloc(0));
      else if (type === 'hash') {
        for (const [field, value] of Object.entries(await redis.hgetallBuffer(key)))
          parts.push(Buffer.from(field), value);
      } else if (type === 'list') parts.push(...(await redis.lrangeBuffer(key, 0, -1)));
      else if (type === 'set') parts.push(...(await redis.smembersBuffer(key)));
      else if (type === 'zset') parts.push(...(await redis.zrangeBuffer(key, '0', '-1')));
      else if (type === 'stream') {
        for (const [id, fields] of await redis.xrangeBuffer(key, '-', '+'))
          parts.push(id, ...fields);
      }
    }
  } while (cursor !== '0');
  const bytes = Buffer.concat(parts.map((p) => Buffer.concat([p, Buffer.from('\n')])));
  return { keys, text: bytes.toString('utf8'), bytes };
}

async function mongoDump(
  stack: TestApp,
): Promise<{ documents: number; collections: string[]; text: string; bytes: Buffer }> {
  const db = stack.db.db!;
  const collections = (await db.listCollections().toArray()).map((c) => c.name).sort();
  const texts: string[] = [];
  const buffers: Buffer[] = [];
  let documents = 0;
  for (const name of collections) {
    for (const doc of await db.collection(name).find({}).toArray()) {
      documents += 1;
      texts.push(BSON.EJSON.stringify(doc, { relaxed: false }));
      buffers.push(Buffer.from(BSON.serialize(doc)));
    }
  }
  return { documents, collections, text: texts.join('\n'), bytes: Buffer.concat(buffers) };
}

function leaks(needles: Needle[], where: string, text: string, bytes: Buffer): string[] {
  const found: string[] = [];
  for (const needle of needles) {
    if (needle.text.some((t) => text.includes(t)) || needle.bytes.some((b) => bytes.includes(b)))
      found.push(`${needle.what} in ${where}`);
  }
  return found;
}

describe('secrets at rest and in transit', () => {
  const stack = useApp(() =>
    startApp({
      mongoUrl: mongoUri(),
      redisUrl: redisUrl(),
      env: { COOKIE_TRANSPORT: 'true' },
      logLevel: 'trace',
    }),
  );

  it('after a full journey no token is in MongoDB, Redis, the logs or the audit events, and token answers are no-store', async () => {
    const { http } = stack;
    const tokens = new Set<string>();
    const tokenAnswers: HttpAnswer[] = [];
    const seen = (answer: HttpAnswer): HttpAnswer => {
      const carried = [
        answer.body?.access_token,
        answer.body?.refresh_token,
        cookieToken(answer),
      ].filter((t): t is string => typeof t === 'string');
      if (carried.length > 0) tokenAnswers.push(answer);
      carried.forEach((t) => tokens.add(t));
      return answer;
    };
    const email = 'journey@example.com';
    expect((await http.json('POST', '/auth/register', { email, password: PASSWORD })).status).toBe(
      202,
    );
    const login = () => http.json('POST', '/auth/login', { email, password: PASSWORD }).then(seen);

    // Body client: login, refreshes, /me (touch jobs), sessions page.
    const phone = await login();
    let current = String(phone.body?.refresh_token);
    let access = String(phone.body?.access_token);
    for (let i = 0; i < 3; i += 1) {
      const next = seen(await http.refresh(current));
      expect(next.status).toBe(200);
      current = String(next.body?.refresh_token);
      access = String(next.body?.access_token);
    }
    expect((await http.bearer('GET', '/me', access)).status).toBe(200);
    const sessionsPage = await http.bearer('GET', '/auth/sessions', access);
    expect(sessionsPage.status).toBe(200);

    // Browser client: cookie login and cookie refresh.
    const browser = seen(
      await http.send({
        method: 'POST',
        path: '/auth/login',
        headers: { 'content-type': 'application/json', 'x-token-transport': 'cookie' },
        body: JSON.stringify({ email, password: PASSWORD }),
      }),
    );
    const cookie = cookieToken(browser);
    expect(cookie).toBeDefined();
    const cookieRefresh = seen(
      await http.send({
        method: 'POST',
        path: '/auth/token',
        headers: { cookie: `__Secure-refresh_token=${cookie}`, ...CSRF },
      }),
    );
    expect(cookieRefresh.status).toBe(200);
    expect(cookieToken(cookieRefresh)).toBeDefined();

    // A stolen token replayed after the grace window; a refused garbage token.
    const laptop = await login();
    const stolen = String(laptop.body?.refresh_token);
    expect(seen(await http.refresh(stolen)).status).toBe(200);
    stack.clock.advance(11_000);
    expect((await http.refresh(stolen)).status).toBe(400);
    expect((await http.refresh(`${current.slice(0, -4)}AAAA`)).status).toBe(400);

    // Revoke one session from the sessions page, log out another by token.
    const tablet = await login();
    const tabletId = Buffer.from(String(tablet.body?.refresh_token).slice(3), 'base64url')
      .subarray(2, 18)
      .toString('hex');
    expect((await http.bearer('DELETE', `/auth/sessions/${tabletId}`, access)).status).toBe(204);
    const kiosk = await login();
    expect(
      (await http.json('POST', '/auth/logout', { refresh_token: kiosk.body?.refresh_token }))
        .status,
    ).toBe(204);

    // Password change: revoke-all through the worker; then logout-all on a fresh session.
    const changed = await http.json(
      'POST',
      '/auth/password',
      { currentPassword: PASSWORD, newPassword: 'a new password for the journey' },
      { authorization: `Bearer ${access}` },
    );
    expect(changed.status).toBe(204);
    const userId = String(
      phone.body && JSON.parse(Buffer.from(access.split('.')[1]!, 'base64url').toString()).sub,
    );
    await waitFor(() => stack.repository.listActiveForUser(userId, stack.clock.now()), {
      what: 'the worker to revoke every session of the password change',
      until: (active) => active.length === 0,
    });
    const after = seen(
      await http.json('POST', '/auth/login', { email, password: 'a new password for the journey' }),
    );
    expect(after.status).toBe(200);
    expect((await http.bearer('GET', '/me', String(after.body?.access_token))).status).toBe(200);
    expect(
      (await http.bearer('POST', '/auth/logout-all', String(after.body?.access_token))).status,
    ).toBe(204);
    await waitFor(
      async () =>
        (
          await stack.repository.findBySessionId(
            JSON.parse(Buffer.from(access.split('.')[1]!, 'base64url').toString()).sid,
          )
        )?.lastUsedAt ?? null,
      { what: 'the touch jobs to record last use', until: (lastUsedAt) => lastUsedAt !== null },
    );

    // Scan everything.
    const needles = [...tokens].map(needlesOf);
    const mongo = await mongoDump(stack);
    const redis = new Redis(redisUrl(), { maxRetriesPerRequest: null });
    let redisState: Awaited<ReturnType<typeof redisDump>>;
    try {
      redisState = await redisDump(redis);
    } finally {
      redis.disconnect();
    }
    const logs = stack.logs.text();
    const audit = JSON.stringify(stack.audit);
    const found = [
      ...leaks(needles, 'MongoDB', mongo.text, mongo.bytes),
      ...leaks(needles, 'Redis', redisState.text, redisState.bytes),
      ...leaks(needles, 'logs', logs, Buffer.from(logs)),
      ...leaks(needles, 'audit events', audit, Buffer.from(audit)),
    ];
    const noStore = tokenAnswers.filter((a) => a.headers['cache-control'] === 'no-store').length;
    report('secrets.journey', {
      tokensIssued: tokens.size,
      mongoCollections: mongo.collections,
      mongoDocuments: mongo.documents,
      redisKeys: redisState.keys,
      logLines: stack.logs.lines.length,
      auditEvents: stack.audit.length,
      leaks: found.length,
      tokenAnswers: tokenAnswers.length,
      tokenAnswersNoStore: noStore,
    });

    expect(found).toEqual([]);
    expect(noStore).toBe(tokenAnswers.length);
    // The scans do see the data: the session records, the jobs and the request lines are there.
    expect(mongo.text).toContain(userId);
    expect(redisState.text).toContain(userId);
    expect(logs).toContain('/auth/token');
    expect(tokens.size).toBeGreaterThanOrEqual(14);
  });
});
