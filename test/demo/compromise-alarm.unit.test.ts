/**
 * The compromise alarm as an operator of the example app meets it: a refresh with a token made
 * with the app's own refresh secret that its session never had is refused with 400
 * `invalid_grant`, counted in `/metrics`, and logged at warn with the key id and the session,
 * never the token (docs/operations.md, "When `secret.compromise_suspected` fires").
 */
import request from 'supertest';
import { TokenCodec } from '../../src/domain/token-codec';
import { PASSWORD, REFRESH_SECRET, withApp } from '../support/app-harness';

function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('the compromise alarm in the example app', () => {
  it('refuses a token minted with the leaked secret, counts it, and logs one warn line without the token', async () => {
    await withApp({ logLevel: 'warn' }, async ({ runtime, logs }) => {
      const { app } = runtime;
      const email = 'alarm@example.com';
      await request(app).post('/auth/register').send({ email, password: PASSWORD }).expect(202);
      const login = await request(app)
        .post('/auth/login')
        .send({ email, password: PASSWORD })
        .expect(200);
      const codec = new TokenCodec([REFRESH_SECRET]);
      const sessionId = codec.parse(login.body.refresh_token).sessionId;
      const minted = codec.mint(sessionId, 0).token;

      const refused = await request(app).post('/auth/token').send({ refresh_token: minted });
      expect(refused.status).toBe(400);
      expect(refused.body).toMatchObject({ error: 'invalid_grant' });
      await request(app)
        .post('/auth/token')
        .send({ refresh_token: login.body.refresh_token })
        .expect(200);

      const metrics = await request(app).get('/metrics').expect(200);
      expect(sample(metrics.text, 'refresh_rotation_secret_compromise_suspected_total')).toBe(1);
      const alarms = logs.lines
        .map((line) => JSON.parse(line) as Record<string, unknown>)
        .filter((line) => String(line.msg).includes('refresh secret may be compromised'));
      expect(alarms).toEqual([
        expect.objectContaining({ level: 40, keyId: codec.currentKeyId, sessionId }),
      ]);
      expect(logs.text()).not.toContain(minted.slice(3, 40));
    });
  });
});
