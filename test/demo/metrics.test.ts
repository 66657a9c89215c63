/**
 * Issue 16, item 1: `/metrics` of the example app after a scripted journey over real HTTP (login,
 * rotation, grace, forgery, reuse, a refused revoked session, logout-all, an outdated and an
 * expired session), on the MongoDB-wire server with BullMQ on Redis. No worker runs, so the
 * revoke-all job stays queued and the logged-out session is refused as `outdated` (its version),
 * not `revoked` (its record).
 */
import { mongoUri, redisUrl, uniqueName } from '../support/services';
import { PASSWORD, startApp, useApp } from '../support/app-harness';

interface Tokens {
  access_token: string;
  refresh_token: string;
}

/** One sample of the exposition text, e.g. `refresh_rotation_refreshes_total{outcome="grace"}`. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** The same token with its MAC's last byte flipped: the tag still verifies, the MAC does not. */
function forge(token: string): string {
  const bytes = Buffer.from(token.slice('rt_'.length), 'base64url');
  bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 0xff;
  return `rt_${bytes.toString('base64url')}`;
}

describe('/metrics after a scripted journey over HTTP', () => {
  const app = useApp(() => startApp({ mongoUrl: mongoUri(), redisUrl: redisUrl(), worker: false }));

  async function post(path: string, body: object, bearer?: string): Promise<Response> {
    return fetch(`${app.base}${path}`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(bearer === undefined ? {} : { authorization: `Bearer ${bearer}` }),
      },
      body: JSON.stringify(body),
    });
  }

  async function logIn(email: string): Promise<Tokens> {
    const response = await post('/auth/login', { email, password: PASSWORD });
    expect(response.status).toBe(200);
    return (await response.json()) as Tokens;
  }

  async function refresh(token: string): Promise<{ status: number; body: Partial<Tokens> }> {
    const response = await post('/auth/token', { refresh_token: token });
    return { status: response.status, body: (await response.json()) as Partial<Tokens> };
  }

  it('counts each refresh by outcome, the latency of each, logins, revocations and revoke-alls', async () => {
    const email = `${uniqueName('metrics')}@example.com`;
    expect((await post('/auth/register', { email, password: PASSWORD })).status).toBe(202);

    const first = await logIn(email);
    const rotated = await refresh(first.refresh_token);
    expect(rotated.status).toBe(200);
    const grace = await refresh(first.refresh_token);
    expect(grace).toEqual({
      status: 200,
      body: expect.objectContaining({ refresh_token: rotated.body.refresh_token }),
    });
    expect((await refresh(forge(rotated.body.refresh_token!))).status).toBe(400);
    app.clock.advance(11_000); // past the 10 s reuse grace
    expect((await refresh(first.refresh_token)).status).toBe(400); // reused: session revoked
    expect((await refresh(rotated.body.refresh_token!)).status).toBe(400); // revoked
    expect((await refresh('rt_not-a-token')).status).toBe(400); // malformed

    const second = await logIn(email);
    expect((await post('/auth/logout-all', {}, second.access_token)).status).toBe(204);
    expect((await refresh(second.refresh_token)).status).toBe(400); // outdated: job still queued

    const third = await logIn(email);
    app.clock.advance(31 * 86_400_000); // past the 30-day idle lifetime
    expect((await refresh(third.refresh_token)).status).toBe(400); // expired

    const scraped = await fetch(`${app.base}/metrics`);
    expect(scraped.status).toBe(200);
    expect(scraped.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await scraped.text();

    const refreshes = (outcome: string) =>
      sample(text, `refresh_rotation_refreshes_total{outcome="${outcome}"}`);
    expect(
      Object.fromEntries(
        [
          'rotated',
          'grace',
          'forged',
          'reused',
          'revoked',
          'malformed',
          'outdated',
          'expired',
          'unknown_session',
          'error',
        ].map((outcome) => [outcome, refreshes(outcome)]),
      ),
    ).toEqual({
      rotated: 1,
      grace: 1,
      forged: 1,
      reused: 1,
      revoked: 1,
      malformed: 1,
      outdated: 1,
      expired: 1,
      unknown_session: 0,
      error: 0,
    });
    expect(sample(text, 'refresh_rotation_refresh_duration_seconds_count{outcome="rotated"}')).toBe(
      1,
    );
    expect(sample(text, 'refresh_rotation_refresh_duration_seconds_count{outcome="reused"}')).toBe(
      1,
    );
    expect(
      sample(text, 'refresh_rotation_refresh_duration_seconds_bucket{le="+Inf",outcome="grace"}'),
    ).toBe(1);
    expect(sample(text, 'refresh_rotation_sessions_issued_total')).toBe(3);
    expect(sample(text, 'refresh_rotation_sessions_revoked_total{reason="reuse_detected"}')).toBe(
      1,
    );
    expect(sample(text, 'refresh_rotation_revoke_alls_total{mode="queued"}')).toBe(1);
    expect(sample(text, 'refresh_rotation_revoke_alls_total{mode="inline"}')).toBe(0);
    expect(sample(text, 'refresh_rotation_touches_dropped_total')).toBe(0);
  });
});
