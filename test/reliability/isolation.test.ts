/**
 * Cross-user isolation over HTTP: a user cannot list, revoke or refresh another user's session by
 * guessing or swapping ids, and cannot tell another user's session from a session that does not
 * exist (404 either way, never 403).
 */
import { createHmac } from 'node:crypto';
import { mongoUri, redisUrl } from '../support/services';
import { logIn, report, signUp } from './support/load';
import { REFRESH_SECRET, startApp, useApp } from '../support/app-harness';

jest.setTimeout(60_000);

function sessionIdOf(refreshToken: string): string {
  return Buffer.from(refreshToken.slice(3), 'base64url').subarray(2, 18).toString('hex');
}

/** `token` with its session id replaced by `sessionId` (the MAC left as it was). */
function withSession(token: string, sessionId: string): string {
  const raw = Buffer.from(token.slice(3), 'base64url');
  Buffer.from(sessionId, 'hex').copy(raw, 2);
  return `rt_${raw.toString('base64url')}`;
}

describe('cross-user isolation', () => {
  const stack = useApp(() =>
    startApp({
      mongoUrl: mongoUri(),
      redisUrl: redisUrl(),
      env: { COOKIE_TRANSPORT: 'false' },
    }),
  );

  it('another user cannot list, revoke or refresh your sessions, and their ids answer like unknown ones', async () => {
    const { http } = stack;
    const alice = await signUp(http);
    const aliceMore = await logIn(http, alice.email);
    const aliceSessions = [sessionIdOf(alice.refreshToken), sessionIdOf(aliceMore.refreshToken)];
    const mallory = await signUp(http);
    const mallorySession = sessionIdOf(mallory.refreshToken);

    const listed = await http.bearer('GET', '/auth/sessions', mallory.accessToken);
    expect(listed.status).toBe(200);
    const listedIds = (listed.body?.sessions as Array<{ id: string }>).map((s) => s.id);
    expect(listedIds).toEqual([mallorySession]);

    const attempts: Array<{ what: string; status: number; body: unknown }> = [];
    const remember = async (what: string, answer: Promise<{ status: number; body: unknown }>) => {
      const { status, body } = await answer;
      attempts.push({ what, status, body });
    };
    for (const id of aliceSessions) {
      await remember(
        'delete alice session',
        http.bearer('DELETE', `/auth/sessions/${id}`, mallory.accessToken),
      );
      await remember(
        'delete alice session, upper case',
        http.bearer('DELETE', `/auth/sessions/${id.toUpperCase()}`, mallory.accessToken),
      );
    }
    await remember(
      'delete unknown session',
      http.bearer('DELETE', `/auth/sessions/${'0'.repeat(32)}`, mallory.accessToken),
    );
    const deletes = attempts.filter((a) => a.what.startsWith('delete'));
    expect(new Set(deletes.map((a) => JSON.stringify([a.status, a.body])))).toEqual(
      new Set([
        JSON.stringify([404, { error: 'not_found', error_description: 'No such session.' }]),
      ]),
    );

    // Refresh with alice's session id in mallory's token (mallory's MAC), or a MAC mallory computed
    // with a guessed key: refused, and nothing happens to alice's session.
    const swapped = withSession(mallory.refreshToken, aliceSessions[0]!);
    const guessedMac = (() => {
      const raw = Buffer.from(swapped.slice(3), 'base64url');
      createHmac('sha256', 'not-the-secret-' + REFRESH_SECRET)
        .update(raw.subarray(0, 22))
        .digest()
        .copy(raw, 22);
      return `rt_${raw.toString('base64url')}`;
    })();
    for (const token of [swapped, guessedMac]) {
      const refreshed = await http.refresh(token);
      attempts.push({
        what: 'refresh swapped token',
        status: refreshed.status,
        body: refreshed.body,
      });
      expect({ status: refreshed.status, error: refreshed.body?.error }).toEqual({
        status: 400,
        error: 'invalid_grant',
      });
      const logout = await http.json('POST', '/auth/logout', { refresh_token: token });
      attempts.push({ what: 'logout swapped token', status: logout.status, body: logout.body });
    }

    // An access token whose claims were edited to alice's (signature kept) is refused.
    const [header, payload, signature] = mallory.accessToken.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
    const edited = `${header}.${Buffer.from(JSON.stringify({ ...claims, sub: alice.id, sid: aliceSessions[0] })).toString('base64url')}.${signature}`;
    for (const [method, path] of [
      ['GET', '/auth/sessions'],
      ['DELETE', `/auth/sessions/${aliceSessions[0]}`],
      ['POST', '/auth/logout-all'],
      ['GET', '/me'],
    ] as const) {
      const answer = await http.bearer(method, path, edited);
      attempts.push({
        what: `edited access token ${method} ${path}`,
        status: answer.status,
        body: answer.body,
      });
      expect(answer.status).toBe(401);
    }

    // Mallory's own actions stay within mallory's account.
    expect((await http.bearer('POST', '/auth/logout-all', mallory.accessToken)).status).toBe(204);

    const aliceRecords = await Promise.all(
      aliceSessions.map((id) => stack.repository.findBySessionId(id)),
    );
    for (const record of aliceRecords)
      expect(record).toMatchObject({ userId: alice.id, revokedAt: null, generation: 0 });
    expect((await http.refresh(alice.refreshToken)).status).toBe(200);
    expect((await http.refresh(aliceMore.refreshToken)).status).toBe(200);
    const aliceList = await http.bearer('GET', '/auth/sessions', alice.accessToken);
    expect((aliceList.body?.sessions as Array<{ id: string }>).map((s) => s.id).sort()).toEqual(
      [...aliceSessions].sort(),
    );
    report('isolation', {
      attempts: attempts.length,
      byStatus: attempts.reduce<Record<number, number>>(
        (acc, a) => ({ ...acc, [a.status]: (acc[a.status] ?? 0) + 1 }),
        {},
      ),
      aliceSessionsIntact: aliceRecords.filter((r) => r?.revokedAt === null).length,
    });
    expect(
      stack.audit.filter((e) => e.type === 'session.revoked' && e.userId === alice.id),
    ).toEqual([]);
  });
});
