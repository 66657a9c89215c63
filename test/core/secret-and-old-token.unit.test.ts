/**
 * The attack of issue 22, replayed against format 3 on the in-memory adapters: someone who holds a
 * refresh secret and an old token of a session (a leaked `.env` and a token from a log or a
 * backup) tries to compute the session's current token the way format 2 allowed. Format 2 carried
 * a per-session anchor in every token and computed the next token from it and the secret alone;
 * format 3 draws a fresh nonce every generation, so the same derivation yields only tokens the
 * session never had: refused, nothing changed, and the compromise alarm raised.
 */
import { createHash, createHmac } from 'node:crypto';
import { InvalidGrantError } from '../../src/domain/errors';
import {
  InlineTokenJobs,
  MemoryRefreshTokenRepository,
  MemoryVersionStore,
} from '../../src/adapters/memory';
import type { AuditEvent } from '../../src/options';
import { RotationService, type TokenResponse } from '../../src/rotation-service';
import { aSecret } from '../support/builders';
import { FakeClock } from '../support/fake-clock';

const FORMAT_3_TAG_LABEL = 'refresh-rotation/refresh-token-tag/v3\0';
const FORMAT_2_TAG_LABEL = 'refresh-rotation/refresh-token-tag/v2\0';

function bodyOf(token: string): Buffer {
  return Buffer.from(token.slice(3), 'base64url');
}

function tagOf(secret: string, label: string, body: Buffer, random: Buffer): Buffer {
  return createHmac('sha256', secret)
    .update(label)
    .update(body.subarray(2, 18))
    .update(body.subarray(18, 22))
    .update(random)
    .digest()
    .subarray(0, 16);
}

/**
 * The format-2 derivation (its `encodeNext`), applied to a format-3 token by an attacker who
 * knows the code and the secret: keep the token's per-token random part, as format 2 kept its
 * anchor, put in the wanted generation, and tag it with the secret.
 */
function deriveTheFormat2Way(secret: string, oldToken: string, generation: number): string {
  const body = Buffer.from(bodyOf(oldToken));
  const nonce = body.subarray(22, 54);
  body.writeUInt32BE(generation, 18);
  tagOf(secret, FORMAT_3_TAG_LABEL, body, nonce).copy(body, 54);
  return `rt_${body.toString('base64url')}`;
}

/** A genuine format-2 token for that generation, built from the old token's session the old way. */
function format2Token(secret: string, oldToken: string, generation: number): string {
  const old = bodyOf(oldToken);
  const anchor = createHash('sha256')
    .update('refresh-rotation/session-anchor/v2\0')
    .update(old.subarray(22, 54))
    .digest();
  const body = Buffer.alloc(70);
  body.writeUInt8(2, 0);
  old.copy(body, 1, 1, 18);
  body.writeUInt32BE(generation, 18);
  tagOf(secret, FORMAT_2_TAG_LABEL, body, anchor).copy(body, 22);
  anchor.copy(body, 38);
  return `rt_${body.toString('base64url')}`;
}

/** How many byte positions of two decoded token bodies differ. */
function bytesDiffering(a: string, b: string): number {
  const x = bodyOf(a);
  const y = bodyOf(b);
  return x.reduce((count, byte, index) => count + (byte === y[index] ? 0 : 1), 0);
}

describe('a leaked refresh secret plus an old token (issue 22)', () => {
  const secret = aSecret();
  let clock: FakeClock;
  let events: AuditEvent[];
  let service: RotationService;
  let repository: MemoryRefreshTokenRepository;

  beforeEach(() => {
    clock = new FakeClock();
    events = [];
    repository = new MemoryRefreshTokenRepository({ clock });
    service = new RotationService({
      repository,
      versions: new MemoryVersionStore(),
      jobs: new InlineTokenJobs(repository),
      clock,
      accessToken: { secret: aSecret() },
      refreshToken: { secrets: [secret], reuseGrace: '10s' },
      onAuditEvent: (event) => events.push(event),
    });
  });

  async function refused(token: string): Promise<boolean> {
    return service.refresh(token).then(
      () => false,
      (error: unknown) => error instanceof InvalidGrantError,
    );
  }

  /** A session whose first token was rotated three times, each rotation one second apart. */
  async function rotatedThreeTimes(): Promise<{ issued: TokenResponse[]; current: string }> {
    const issued = [await service.issue({ userId: 'victim' })];
    for (let step = 0; step < 3; step += 1) {
      clock.advance('1s');
      issued.push(await service.refresh(issued.at(-1)!.refreshToken));
    }
    return { issued, current: issued.at(-1)!.refreshToken };
  }

  it('every token derived the format-2 way, from the first token or any rotated one, for any generation, is refused while the holder keeps refreshing', async () => {
    const { issued, current } = await rotatedThreeTimes();
    let holder = current;
    for (const old of issued.map((response) => response.refreshToken)) {
      for (let generation = 0; generation <= 8; generation += 1) {
        for (const derived of [
          deriveTheFormat2Way(secret, old, generation),
          format2Token(secret, old, generation),
        ]) {
          if (derived === old || derived === holder) continue;
          expect(await refused(derived)).toBe(true);
        }
      }
      // The legitimate holder keeps refreshing in between, as in the report.
      clock.advance('1s');
      holder = (await service.refresh(holder)).refreshToken;
    }
    const record = await repository.findBySessionId(issued[0]!.sessionId);
    expect(record).toMatchObject({ revokedAt: null, generation: 3 + issued.length });
    expect(events.map((event) => event.type)).not.toContain('token.reuse_detected');
  });

  it('the derived current token raises the compromise alarm, naming the key and the session, and changes nothing', async () => {
    const { issued, current } = await rotatedThreeTimes();
    const before = await repository.findBySessionId(issued[0]!.sessionId);
    const derived = deriveTheFormat2Way(secret, issued[0]!.refreshToken, 3);
    expect(await refused(derived)).toBe(true);
    expect(events.filter((event) => event.type === 'secret.compromise_suspected')).toEqual([
      expect.objectContaining({
        keyId: bodyOf(current)[1],
        sessionId: issued[0]!.sessionId,
        presentedGeneration: 3,
        currentGeneration: 3,
      }),
    ]);
    expect(await repository.findBySessionId(issued[0]!.sessionId)).toEqual(before);
    await expect(service.refresh(current)).resolves.toMatchObject({
      sessionId: issued[0]!.sessionId,
    });
  });

  it('consecutive tokens of a session differ in at least 32 of their 70 byte positions', async () => {
    let previous = (await service.issue({ userId: 'victim' })).refreshToken;
    for (let step = 0; step < 200; step += 1) {
      clock.advance('1s');
      const next = (await service.refresh(previous)).refreshToken;
      expect(bytesDiffering(previous, next)).toBeGreaterThanOrEqual(32);
      previous = next;
    }
  });
});
