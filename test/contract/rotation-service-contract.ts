/**
 * The behaviour of `RotationService` (docs/architecture.md, "A refresh" to "A revoke-all"), run
 * against every adapter:
 *
 * ```ts
 * describeRotationServiceContract('mongoose', async () => ({ repository, versions, atomicAdvance: false, close }));
 * ```
 *
 * `factory` has the same shape as the port contracts' (a fresh, empty store per test;
 * `close()` after it). Time comes from a fake clock; the job port is the inline one unless a test
 * says otherwise.
 */
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import {
  InvalidGrantError,
  InvalidRequestError,
  StoreUnavailableError,
  type InvalidGrantReason,
} from '../../src/domain/errors';
import { SUPERSEDED_KEPT, type RefreshTokenRecord } from '../../src/domain/refresh-token';
import { BOUND_LEEWAY_MS } from '../../src/domain/session-binding';
import type { RefreshTokenRepository } from '../../src/domain/refresh-token-repository';
import type { RevokeAllJob, TokenJobs } from '../../src/domain/token-jobs';
import { TokenCodec } from '../../src/domain/token-codec';
import type { AuditEvent, RefreshRotationOptions } from '../../src/options';
import { RotationService, type TokenResponse } from '../../src/rotation-service';
import { aNewRecord, aSecret, randomHex, tamperToken } from '../support/builders';
import { FakeClock } from '../support/fake-clock';
import { interceptCalls } from '../support/intercept';
import type { ContractFactory, ContractSubject } from './contract-subject';

const WRITE_METHODS: ReadonlySet<string> = new Set([
  'save',
  'updateLastUsed',
  'delete',
  'revokeBySession',
  'revokeAllForUser',
  'rotate',
  'touchMany',
  'deleteExpired',
]);

/** The real repository, with every write call recorded by method name (a rotate when it matched). */
function recordingWrites(repository: RefreshTokenRepository): {
  repository: RefreshTokenRepository;
  writes: string[];
} {
  const writes: string[] = [];
  const proxy = interceptCalls(repository, (method, call) => {
    const result = call();
    // A rotate that matched nothing changed nothing: the hot path's miss is not a write.
    if (method === 'rotate')
      return (result as Promise<unknown>).then((rotated) => {
        if (rotated !== null) writes.push('rotate');
        return rotated;
      });
    if (WRITE_METHODS.has(method)) writes.push(method);
    return result;
  });
  return { repository: proxy, writes };
}

/** Jobs that are accepted and never run (a worker that is down): only the version bump can cut sessions. */
class ParkedJobs implements TokenJobs {
  readonly revokeAlls: RevokeAllJob[] = [];
  async revokeAll(job: RevokeAllJob): Promise<void> {
    this.revokeAlls.push(job);
  }
  async touch(): Promise<void> {}
}

/** Jobs whose queue is unreachable. */
class UnreachableJobs implements TokenJobs {
  async revokeAll(): Promise<void> {
    throw new Error('connect ECONNREFUSED 127.0.0.1:6379');
  }
  async touch(): Promise<void> {
    throw new Error('connect ECONNREFUSED 127.0.0.1:6379');
  }
}

/** The generation a refresh token carries (bytes [18..22) of its body, big-endian). */
function generationOf(token: string): number {
  return Buffer.from(token.slice(3), 'base64url').readUInt32BE(18);
}

function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

export function describeRotationServiceContract(name: string, factory: ContractFactory): void {
  describe(`RotationService on ${name}`, () => {
    let subject: ContractSubject;
    let clock: FakeClock;
    let events: AuditEvent[];
    let writes: string[];
    let repository: RefreshTokenRepository;
    let refreshSecret: string;
    let accessSecret: string;

    beforeEach(async () => {
      subject = await factory();
      clock = new FakeClock();
      events = [];
      ({ repository, writes } = recordingWrites(subject.repository));
      refreshSecret = aSecret();
      accessSecret = aSecret();
    });

    afterEach(async () => {
      await subject.close();
    });

    function service(
      overrides: Partial<Omit<RefreshRotationOptions, 'refreshToken'>> & {
        refreshToken?: Partial<RefreshRotationOptions['refreshToken']>;
      } = {},
    ): RotationService {
      const { refreshToken, ...rest } = overrides;
      return new RotationService({
        repository,
        versions: subject.versions,
        accessToken: { secret: accessSecret },
        clock,
        onAuditEvent: (event) => events.push(event),
        ...rest,
        refreshToken: { secrets: [refreshSecret], ...refreshToken },
      });
    }

    async function record(sessionId: string): Promise<RefreshTokenRecord> {
      const found = await subject.repository.findBySessionId(sessionId);
      if (!found) throw new Error(`no record for session ${sessionId}`);
      return found;
    }

    async function expectGrantRejected(
      promise: Promise<unknown>,
      reason: InvalidGrantReason,
    ): Promise<void> {
      const error: unknown = await promise.then(
        () => new Error('expected the refresh to be rejected'),
        (rejection: unknown) => rejection,
      );
      expect(error).toBeInstanceOf(InvalidGrantError);
      expect(error).toMatchObject({ code: 'invalid_grant', reason });
    }

    function tokensIn(responses: TokenResponse[]): string[] {
      return responses.flatMap((response) => [response.refreshToken, response.accessToken]);
    }

    describe('issue and refresh', () => {
      it('a refresh returns a new refresh token and a valid access token; the old one then fails', async () => {
        const rotation = service({ refreshToken: { reuseGrace: 0 } });
        const login = await rotation.issue({ userId: 'alice', client: { userAgent: 'jest' } });
        clock.advance('1m');
        const refreshed = await rotation.refresh(login.refreshToken);

        expect(refreshed.refreshToken).toMatch(/^rt_[A-Za-z0-9_-]{94}$/);
        expect(refreshed.refreshToken).not.toBe(login.refreshToken);
        expect(refreshed).toMatchObject({
          tokenType: 'Bearer',
          expiresIn: 900,
          userId: 'alice',
          sessionId: login.sessionId,
        });
        const claims = rotation.verifyAccessToken(refreshed.accessToken);
        expect(claims).toMatchObject({ sub: 'alice', sid: login.sessionId, ver: 0 });
        expect(claims.exp - claims.iat).toBe(900);
        expect(claims.iat).toBe(Math.floor(clock.now().getTime() / 1000));

        await expectGrantRejected(rotation.refresh(login.refreshToken), 'reused');
      });

      it('at login stores only the SHA-256 of the issued token, and findByTokenHash finds the session by it at once', async () => {
        const rotation = service();
        const login = await rotation.issue({ userId: 'alice' });
        const stored = await record(login.sessionId);
        expect(stored).toMatchObject({
          generation: 0,
          tokenHash: sha256Hex(login.refreshToken),
          userId: 'alice',
        });
        expect(JSON.stringify(stored)).not.toContain(login.refreshToken.slice(3));
        expect(await subject.repository.findByTokenHash(sha256Hex(login.refreshToken))).toEqual(
          stored,
        );
        const other = await rotation.issue({ userId: 'alice' });
        expect(
          (await subject.repository.findByTokenHash(sha256Hex(other.refreshToken)))?.sessionId,
        ).toBe(other.sessionId);
        expect(writes).toEqual(['save', 'save']);
      });

      it('stores only the hash of the current token, one record per session', async () => {
        const rotation = service();
        const login = await rotation.issue({ userId: 'alice' });
        clock.advance('1m');
        const refreshed = await rotation.refresh(login.refreshToken);
        const stored = await record(login.sessionId);
        expect(stored).toMatchObject({
          generation: 1,
          tokenHash: sha256Hex(refreshed.refreshToken),
          userId: 'alice',
        });
        expect(JSON.stringify(stored)).not.toContain(refreshed.refreshToken.slice(3));
        expect(JSON.stringify(stored)).not.toContain(login.refreshToken.slice(3));
        expect(
          await subject.repository.findByTokenHash(sha256Hex(refreshed.refreshToken)),
        ).toMatchObject({
          sessionId: login.sessionId,
        });
        expect(writes.filter((write) => write === 'save')).toHaveLength(1);
      });

      it('a refresh slides the idle expiry, never past the absolute expiry, and sets lastUsedAt and rotatedAt', async () => {
        const rotation = service({ refreshToken: { idleTtl: '30d', absoluteTtl: '40d' } });
        const login = await rotation.issue({ userId: 'alice' });
        expect(login.refreshExpiresAt).toEqual(new Date(clock.now().getTime() + 30 * 86_400_000));
        const issuedAt = clock.now();
        const at = clock.advance('20d');
        const refreshed = await rotation.refresh(login.refreshToken);
        const absolute = new Date(issuedAt.getTime() + 40 * 86_400_000);
        expect(refreshed.refreshExpiresAt).toEqual(absolute);
        expect(await record(login.sessionId)).toMatchObject({
          expiresAt: absolute,
          absoluteExpiresAt: absolute,
          rotatedAt: at,
          lastUsedAt: at,
        });
      });

      it('issues new sessions with the client info and at the current user and global versions', async () => {
        const rotation = service();
        await rotation.revokeAllForUser('alice');
        await rotation.rotateGlobal({ reason: 'drill' });
        const login = await rotation.issue({
          userId: 'alice',
          client: { userAgent: 'ua', ip: '10.0.0.1', label: 'phone' },
        });
        expect(await record(login.sessionId)).toMatchObject({
          tokenVersion: 1,
          globalVersionAtIssuance: 1,
          generation: 0,
          client: { userAgent: 'ua', ip: '10.0.0.1', label: 'phone' },
        });
        expect(rotation.verifyAccessToken(login.accessToken).ver).toBe(1);
        await expect(rotation.refresh(login.refreshToken)).resolves.toMatchObject({
          sessionId: login.sessionId,
        });
      });

      it('a missing or non-string refresh token is an invalid request, not an invalid grant', async () => {
        const rotation = service();
        for (const value of [undefined, null, '', 42, { token: 'x' }]) {
          await expect(rotation.refresh(value)).rejects.toBeInstanceOf(InvalidRequestError);
        }
      });

      it('a token signed with an older secret still refreshes after the secret list is rotated, and is re-signed with the new one', async () => {
        const login = await service().issue({ userId: 'alice' });
        const newSecret = aSecret(refreshSecret);
        const rotated = service({ refreshToken: { secrets: [newSecret, refreshSecret] } });
        clock.advance('1m');
        const refreshed = await rotated.refresh(login.refreshToken);
        const newKeyId = new TokenCodec([newSecret]).currentKeyId;
        expect(await record(login.sessionId)).toMatchObject({ generation: 1, keyId: newKeyId });
        expect(Buffer.from(refreshed.refreshToken.slice(3), 'base64url')[1]).toBe(newKeyId);
        clock.advance('1s');
        expect((await rotated.refresh(login.refreshToken)).refreshToken).toBe(
          refreshed.refreshToken,
        );
      });
    });

    describe('reuse grace and reuse detection', () => {
      it('a token inside the grace whose current token was signed by a since-removed secret is refused with invalid_grant, not a server error', async () => {
        const login = await service().issue({ userId: 'alice' });
        const newSecret = aSecret(refreshSecret);
        clock.advance('1m');
        // Rotated under the new secret, which the next deployment drops again (a rolled-back change).
        await service({ refreshToken: { secrets: [newSecret, refreshSecret] } }).refresh(
          login.refreshToken,
        );
        const rolledBack = service({
          refreshToken: { secrets: [refreshSecret], reuseGrace: '10s' },
        });
        clock.advance('1s');
        await expectGrantRejected(rolledBack.refresh(login.refreshToken), 'expired');
      });

      it('the same old token within the grace window returns the identical new token and writes nothing', async () => {
        const rotation = service({ refreshToken: { reuseGrace: '10s' } });
        const login = await rotation.issue({ userId: 'alice' });
        clock.advance('1m');
        const first = await rotation.refresh(login.refreshToken);
        const before = await record(login.sessionId);
        const writesBefore = writes.length;

        clock.advance('10s');
        const again = await rotation.refresh(login.refreshToken);

        expect(again.refreshToken).toBe(first.refreshToken);
        expect(again.refreshExpiresAt).toEqual(first.refreshExpiresAt);
        expect(rotation.verifyAccessToken(again.accessToken)).toMatchObject({
          sub: 'alice',
          sid: login.sessionId,
        });
        expect(writes.length).toBe(writesBefore);
        expect(await record(login.sessionId)).toEqual(before);
        await expect(rotation.refresh(first.refreshToken)).resolves.toMatchObject({
          sessionId: login.sessionId,
        });
      });

      it('a rotated token replayed after the grace window revokes the session, and the newest token is dead too', async () => {
        const rotation = service({ refreshToken: { reuseGrace: '10s' } });
        const login = await rotation.issue({ userId: 'alice' });
        clock.advance('1m');
        const newest = await rotation.refresh(login.refreshToken);
        clock.advance('10001ms');

        await expectGrantRejected(rotation.refresh(login.refreshToken), 'reused');
        expect(await record(login.sessionId)).toMatchObject({
          revokedReason: 'reuse_detected',
          revokedAt: clock.now(),
        });
        await expectGrantRejected(rotation.refresh(newest.refreshToken), 'revoked');
        expect(events).toContainEqual({
          type: 'token.reuse_detected',
          at: clock.now(),
          userId: 'alice',
          sessionId: login.sessionId,
          presentedGeneration: 0,
          currentGeneration: 1,
        });
        expect(events).toContainEqual(
          expect.objectContaining({
            type: 'session.revoked',
            sessionId: login.sessionId,
            reason: 'reuse_detected',
          }),
        );
      });

      it('a straggler two generations behind inside the grace window gets the current token, and nothing is revoked', async () => {
        const rotation = service({ refreshToken: { reuseGrace: '10s' } });
        const login = await rotation.issue({ userId: 'alice' });
        clock.advance('1m');
        const second = await rotation.refresh(login.refreshToken);
        clock.advance('9ms');
        const third = await rotation.refresh(second.refreshToken);
        clock.advance('9ms');
        const writesBefore = writes.length;

        const straggler = await rotation.refresh(login.refreshToken);

        expect(straggler.refreshToken).toBe(third.refreshToken);
        expect(writes.length).toBe(writesBefore);
        expect(await record(login.sessionId)).toMatchObject({ generation: 2, revokedAt: null });
        expect(events.map((event) => event.type)).not.toContain('token.reuse_detected');
      });

      it('a generation superseded before the window is reuse even when a newer one is inside it', async () => {
        const rotation = service({ refreshToken: { reuseGrace: '10s' } });
        const login = await rotation.issue({ userId: 'alice' });
        const second = await rotation.refresh(login.refreshToken);
        clock.advance('10001ms');
        await rotation.refresh(second.refreshToken);
        await expectGrantRejected(rotation.refresh(login.refreshToken), 'reused');
        expect((await record(login.sessionId)).revokedReason).toBe('reuse_detected');
      });

      it(`a generation more than ${SUPERSEDED_KEPT} rotations behind is reuse even inside the window (the record keeps ${SUPERSEDED_KEPT} supersede times)`, async () => {
        const rotation = service({ refreshToken: { reuseGrace: '10s' } });
        const login = await rotation.issue({ userId: 'alice' });
        let current = login.refreshToken;
        for (let step = 0; step <= SUPERSEDED_KEPT; step += 1) {
          current = (await rotation.refresh(current)).refreshToken;
        }
        const kept = await record(login.sessionId);
        expect(kept.superseded).toHaveLength(SUPERSEDED_KEPT);
        expect(kept.superseded[0]?.generation).toBe(1);
        await expectGrantRejected(rotation.refresh(login.refreshToken), 'reused');
      });

      it('any interleaving of tabs sharing one cookie inside the window revokes nothing, and every answer is a current token', async () => {
        const grace = 10_000;
        const rotation = (repo: RefreshTokenRepository) =>
          service({ repository: repo, refreshToken: { reuseGrace: grace } });
        await fc.assert(
          fc.asyncProperty(
            fc.scheduler(),
            fc.integer({ min: 2, max: 4 }),
            fc.integer({ min: 1, max: 3 }),
            fc.array(fc.integer({ min: 0, max: 80 }), { minLength: 1, maxLength: 20 }),
            async (scheduler, tabs, rounds, delays) => {
              const start = clock.now();
              let step = 0;
              const currentHashes = new Set<string>();
              // Every read and write waits for the scheduler before it runs and before it answers,
              // and moves the clock a little: the scheduler picks the interleaving of the calls.
              // Each call runs alone, as one command does on MongoDB: this property is about the
              // grace rule, not about FerretDB's read-then-write find-and-modify (test/reliability).
              let exclusive: Promise<unknown> = Promise.resolve();
              const scheduled = new Proxy(repository, {
                get(target, property, receiver) {
                  const value: unknown = Reflect.get(target, property, receiver);
                  if (typeof value !== 'function') return value;
                  return async (...args: unknown[]) => {
                    await scheduler.schedule(Promise.resolve(), `${String(property)} starts`);
                    const run = exclusive.then(() => {
                      clock.advance(delays[step++ % delays.length]!);
                      return (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
                    });
                    exclusive = run.catch(() => undefined);
                    const result = await run;
                    if (property === 'rotate' && result !== null)
                      currentHashes.add((result as RefreshTokenRecord).tokenHash);
                    return scheduler.schedule(Promise.resolve(result), `${String(property)} ends`);
                  };
                },
              });
              const tokens = rotation(scheduled);
              const login = await rotation(repository).issue({ userId: 'tabs' });
              currentHashes.add(sha256Hex(login.refreshToken));
              let cookie = login.refreshToken;
              const answers: { presented: string; answer: string }[] = [];
              const tab = async () => {
                for (let round = 0; round < rounds; round += 1) {
                  const presented = cookie;
                  const answer = (await tokens.refresh(presented)).refreshToken;
                  answers.push({ presented, answer });
                  cookie = answer; // Set-Cookie: the last answer to arrive wins, as in a browser.
                }
              };
              await scheduler.waitFor(Promise.all(Array.from({ length: tabs }, tab)));

              expect(clock.now().getTime() - start.getTime()).toBeLessThanOrEqual(grace);
              expect(answers).toHaveLength(tabs * rounds);
              for (const { presented, answer } of answers) {
                expect(currentHashes.has(sha256Hex(answer))).toBe(true);
                expect(generationOf(answer)).toBeGreaterThan(generationOf(presented));
              }
              const final = await record(login.sessionId);
              expect(final.revokedAt).toBeNull();
              await expect(rotation(repository).refresh(cookie)).resolves.toMatchObject({
                sessionId: login.sessionId,
              });
            },
          ),
          { numRuns: subject.atomicAdvance === false ? 15 : 60 },
        );
        expect(events.map((event) => event.type)).not.toContain('token.reuse_detected');
      });

      it('outside the window, any older generation presented revokes the session', async () => {
        await fc.assert(
          fc.asyncProperty(
            fc.integer({ min: 1, max: SUPERSEDED_KEPT + 3 }),
            fc.nat(),
            fc.integer({ min: 1, max: 60_000 }),
            async (rotations, pick, late) => {
              const rotation = service({ refreshToken: { reuseGrace: '10s' } });
              const login = await rotation.issue({ userId: 'late' });
              const issued = [login.refreshToken];
              for (let step = 0; step < rotations; step += 1) {
                clock.advance('1s');
                issued.push((await rotation.refresh(issued.at(-1)!)).refreshToken);
              }
              const old = issued[pick % rotations]!;
              // Superseded at most (rotations - 1) s before the last rotation; now past the window.
              clock.advance(10_000 + late);
              await expectGrantRejected(rotation.refresh(old), 'reused');
              expect((await record(login.sessionId)).revokedReason).toBe('reuse_detected');
            },
          ),
          { numRuns: subject.atomicAdvance === false ? 10 : 50 },
        );
      });

      it('100 concurrent refreshes of the same token all return the same new token, and the generation advances once', async () => {
        const rotation = service();
        const login = await rotation.issue({ userId: 'alice' });
        clock.advance('1m');
        const responses = await Promise.all(
          Array.from({ length: 100 }, () => rotation.refresh(login.refreshToken)),
        );
        const refreshTokens = new Set(responses.map((response) => response.refreshToken));
        expect(refreshTokens.size).toBe(1);
        expect(await record(login.sessionId)).toMatchObject({ generation: 1, revokedAt: null });
        if (subject.atomicAdvance ?? true) {
          expect(events.filter((event) => event.type === 'token.rotated')).toHaveLength(1);
        }
        const [token] = [...refreshTokens];
        await expect(rotation.refresh(token)).resolves.toMatchObject({
          sessionId: login.sessionId,
        });
      });
    });

    describe('rejections change nothing', () => {
      let rotation: RotationService;
      let login: TokenResponse;
      let before: RefreshTokenRecord;
      let writesBefore: number;

      beforeEach(async () => {
        rotation = service({ refreshToken: { idleTtl: '1d', absoluteTtl: '3d' } });
        login = await rotation.issue({ userId: 'alice' });
        before = await record(login.sessionId);
        writesBefore = writes.length;
      });

      async function expectUnchanged(): Promise<void> {
        expect(writes.length).toBe(writesBefore);
        expect(await record(login.sessionId)).toEqual(before);
      }

      it('a token with a forged MAC is rejected as forged', async () => {
        const forged = tamperToken(login.refreshToken, (body) => {
          body[40] = (body[40] as number) ^ 0x01;
        });
        await expectGrantRejected(rotation.refresh(forged), 'forged');
        await expectUnchanged();
        expect(events).toContainEqual(
          expect.objectContaining({
            type: 'token.rejected',
            reason: 'forged',
            sessionId: login.sessionId,
          }),
        );
      });

      it('a token for a later generation that was never issued is rejected as forged', async () => {
        const ahead = tamperToken(login.refreshToken, (body) => body.writeUInt32BE(1, 18));
        await expectGrantRejected(rotation.refresh(ahead), 'forged');
        await expectUnchanged();
      });

      it('a token with an unknown key id is rejected as malformed, before any I/O', async () => {
        const ownKeyId = new TokenCodec([refreshSecret]).currentKeyId;
        const wrongKey = tamperToken(login.refreshToken, (body) => {
          body[1] = (ownKeyId + 1) % 256;
        });
        await expectGrantRejected(rotation.refresh(wrongKey), 'malformed');
        await expectUnchanged();
      });

      it('a token whose key id names another configured secret is rejected as forged', async () => {
        const other = aSecret(refreshSecret);
        const twoKeys = service({
          refreshToken: { secrets: [refreshSecret, other], idleTtl: '1d', absoluteTtl: '3d' },
        });
        const otherKeyId = new TokenCodec([other]).currentKeyId;
        const swapped = tamperToken(login.refreshToken, (body) => {
          body[1] = otherKeyId;
        });
        await expectGrantRejected(twoKeys.refresh(swapped), 'forged');
        await expectUnchanged();
      });

      it('a well-formed token for an unknown session is rejected', async () => {
        const codec = new TokenCodec([refreshSecret]);
        const stranger = codec.mint(randomHex(16), 0).token;
        await expectGrantRejected(rotation.refresh(stranger), 'unknown_session');
        await expectUnchanged();
      });

      it('garbage is rejected as malformed', async () => {
        for (const garbage of [
          'rt_',
          'not-a-token',
          `rt_${'A'.repeat(94)}`,
          login.refreshToken.slice(0, -1),
        ]) {
          await expectGrantRejected(rotation.refresh(garbage), 'malformed');
        }
        await expectUnchanged();
      });

      it('a token past its idle lifetime is rejected as expired', async () => {
        clock.advance('1d');
        await expectGrantRejected(rotation.refresh(login.refreshToken), 'expired');
        await expectUnchanged();
      });

      it('a session past its absolute lifetime is rejected as expired even when used every day', async () => {
        let token = login.refreshToken;
        for (let day = 0; day < 2; day += 1) {
          clock.advance('23h');
          token = (await rotation.refresh(token)).refreshToken;
        }
        clock.advance('23h');
        token = (await rotation.refresh(token)).refreshToken;
        before = await record(login.sessionId);
        writesBefore = writes.length;
        clock.advance('3h');
        await expectGrantRejected(rotation.refresh(token), 'expired');
        await expectUnchanged();
      });

      it('a revoked session is rejected as revoked', async () => {
        expect(await rotation.revokeSession(login.sessionId)).toBe(true);
        before = await record(login.sessionId);
        writesBefore = writes.length;
        await expectGrantRejected(rotation.refresh(login.refreshToken), 'revoked');
        await expectUnchanged();
      });
    });

    describe('the absolute expiry', () => {
      const HOUR = 3_600_000;

      it('the last refresh before it stops the new idle expiry there; at it the new token is refused as expired and does not rotate', async () => {
        const rotation = service({ refreshToken: { idleTtl: '1d', absoluteTtl: '2d' } });
        const login = await rotation.issue({ userId: 'alice' });
        const absolute = new Date(clock.now().getTime() + 48 * HOUR);
        clock.advance('23h');
        const first = await rotation.refresh(login.refreshToken);
        clock.advance('1410m');
        const last = await rotation.refresh(first.refreshToken);
        expect(last.refreshExpiresAt).toEqual(absolute);
        expect(await record(login.sessionId)).toMatchObject({
          generation: 2,
          expiresAt: absolute,
          absoluteExpiresAt: absolute,
        });
        const before = await record(login.sessionId);
        const writesBefore = writes.length;

        clock.advance('90m'); // exactly the absolute expiry
        await expectGrantRejected(rotation.refresh(last.refreshToken), 'expired');
        expect(writes.length).toBe(writesBefore);
        expect(await record(login.sessionId)).toEqual(before);
      });

      it('a session whose stored idle expiry outlives its absolute one (written by an older version or a migration) is refused at the absolute expiry and does not rotate', async () => {
        const rotation = service();
        const codec = new TokenCodec([refreshSecret]);
        const now = clock.now();
        const input = aNewRecord({
          userId: 'alice',
          keyId: codec.currentKeyId,
          createdAt: new Date(now.getTime() - 90 * 24 * HOUR),
          absoluteExpiresAt: new Date(now.getTime() - HOUR),
          expiresAt: new Date(now.getTime() + 20 * 24 * HOUR),
        });
        const minted = codec.mint(input.sessionId, 0);
        const token = minted.token;
        await subject.repository.save({
          ...input,
          tokenHash: minted.tokenHash,
          sealed: minted.sealed,
        });
        const before = await record(input.sessionId);

        await expectGrantRejected(rotation.refresh(token), 'expired');
        expect(writes).toEqual([]);
        expect(await record(input.sessionId)).toEqual(before);
        expect(await rotation.listSessions('alice')).toEqual([]);
      });
    });

    describe('revokeAllForUser', () => {
      it('every session of the user fails at once even though the job never ran; one issued afterwards works', async () => {
        const jobs = new ParkedJobs();
        const rotation = service({ jobs });
        const sessions = [
          await rotation.issue({ userId: 'alice' }),
          await rotation.issue({ userId: 'alice' }),
        ];
        const bob = await rotation.issue({ userId: 'bob' });
        clock.advance('1m');

        await rotation.revokeAllForUser('alice', 'password_changed');

        expect(jobs.revokeAlls).toEqual([
          { userId: 'alice', reason: 'password_changed', requestedAt: clock.now() },
        ]);
        for (const session of sessions) {
          expect((await record(session.sessionId)).revokedAt).toBeNull();
          await expectGrantRejected(rotation.refresh(session.refreshToken), 'version');
          expect(
            await rotation.isAccessTokenCurrent(rotation.verifyAccessToken(session.accessToken)),
          ).toBe(false);
        }
        await expect(rotation.refresh(bob.refreshToken)).resolves.toMatchObject({ userId: 'bob' });
        expect(await rotation.listSessions('alice')).toEqual([]);

        const after = await rotation.issue({ userId: 'alice' });
        clock.advance('1m');
        const refreshed = await rotation.refresh(after.refreshToken);
        expect(
          await rotation.isAccessTokenCurrent(rotation.verifyAccessToken(refreshed.accessToken)),
        ).toBe(true);
        expect(events).toContainEqual(
          expect.objectContaining({
            type: 'user.revoked_all',
            userId: 'alice',
            minTokenVersion: 1,
            inline: false,
          }),
        );
      });

      it('if enqueueing throws, the records are revoked inline', async () => {
        const rotation = service({ jobs: new UnreachableJobs() });
        const sessions = [
          await rotation.issue({ userId: 'alice' }),
          await rotation.issue({ userId: 'alice' }),
        ];
        const bob = await rotation.issue({ userId: 'bob' });
        clock.advance('1m');
        await rotation.revokeAllForUser('alice', 'password_changed');
        for (const session of sessions) {
          expect(await record(session.sessionId)).toMatchObject({
            revokedAt: clock.now(),
            revokedReason: 'password_changed',
          });
        }
        expect((await record(bob.sessionId)).revokedAt).toBeNull();
        expect(events).toContainEqual(
          expect.objectContaining({ type: 'user.revoked_all', inline: true }),
        );
      });

      it('with the default inline jobs, the records are revoked in the request and a later login survives', async () => {
        const rotation = service();
        const before = await rotation.issue({ userId: 'alice' });
        clock.advance('1m');
        await rotation.revokeAllForUser('alice');
        expect(await record(before.sessionId)).toMatchObject({ revokedReason: 'user_requested' });
        const after = await rotation.issue({ userId: 'alice' });
        expect((await record(after.sessionId)).revokedAt).toBeNull();
        await expect(rotation.refresh(after.refreshToken)).resolves.toMatchObject({
          sessionId: after.sessionId,
        });
      });
    });

    describe('global rotation', () => {
      it('without grace, sessions issued under the old global version fail at once; new ones work', async () => {
        const rotation = service();
        const old = await rotation.issue({ userId: 'alice' });
        const global = await rotation.rotateGlobal({ reason: 'breach' });
        expect(global).toEqual({
          minVersion: 1,
          rotatedAt: clock.now(),
          reason: 'breach',
          gracePeriodMs: 0,
        });
        await expectGrantRejected(rotation.refresh(old.refreshToken), 'version');
        const fresh = await rotation.issue({ userId: 'alice' });
        await expect(rotation.refresh(fresh.refreshToken)).resolves.toMatchObject({
          sessionId: fresh.sessionId,
        });
      });

      it('inside grace, sessions one version behind still refresh and keep their version; outside grace they fail', async () => {
        const rotation = service();
        const old = await rotation.issue({ userId: 'alice' });
        await rotation.rotateGlobal({ reason: 'breach', gracePeriod: '1h' });
        expect(events).toContainEqual(
          expect.objectContaining({
            type: 'global.rotated',
            minVersion: 1,
            reason: 'breach',
            gracePeriodMs: 3_600_000,
          }),
        );

        clock.advance('30m');
        const refreshed = await rotation.refresh(old.refreshToken);
        expect(await record(old.sessionId)).toMatchObject({
          generation: 1,
          globalVersionAtIssuance: 0,
          tokenVersion: 0,
        });

        clock.advance('30m');
        await expectGrantRejected(rotation.refresh(refreshed.refreshToken), 'version');
      });

      it('inside grace, sessions two versions behind fail', async () => {
        const rotation = service();
        const twoBehind = await rotation.issue({ userId: 'alice' });
        await rotation.rotateGlobal({ reason: 'first', gracePeriod: '1h' });
        const oneBehind = await rotation.issue({ userId: 'alice' });
        await rotation.rotateGlobal({ reason: 'second', gracePeriod: '1h' });
        clock.advance('1m');
        await expectGrantRejected(rotation.refresh(twoBehind.refreshToken), 'version');
        await expect(rotation.refresh(oneBehind.refreshToken)).resolves.toMatchObject({
          sessionId: oneBehind.sessionId,
        });
      });
    });

    describe('revocation and sessions', () => {
      it("revokeSession with a userId revokes only that user's own session", async () => {
        const rotation = service();
        const login = await rotation.issue({ userId: 'alice' });
        expect(await rotation.revokeSession(login.sessionId, { userId: 'mallory' })).toBe(false);
        expect((await record(login.sessionId)).revokedAt).toBeNull();
        expect(await rotation.revokeSession(randomHex(16), { userId: 'alice' })).toBe(false);
        expect(await rotation.revokeSession('not-a-session')).toBe(false);
        expect(await rotation.revokeSession(login.sessionId, { userId: 'alice' })).toBe(true);
        expect(await rotation.revokeSession(login.sessionId, { userId: 'alice' })).toBe(false);
        expect(await record(login.sessionId)).toMatchObject({
          revokedReason: 'logout',
          revokedAt: clock.now(),
        });
        expect(events.filter((event) => event.type === 'session.revoked')).toHaveLength(1);
      });

      it('revokeByRefreshToken revokes the session of a genuine token and ignores garbage or forgeries', async () => {
        const rotation = service();
        const login = await rotation.issue({ userId: 'alice' });
        const forged = tamperToken(login.refreshToken, (body) => {
          body[30] = (body[30] as number) ^ 0x80;
        });
        expect(await rotation.revokeByRefreshToken('garbage')).toBe(false);
        expect(await rotation.revokeByRefreshToken(forged)).toBe(false);
        expect((await record(login.sessionId)).revokedAt).toBeNull();
        expect(await rotation.revokeByRefreshToken(login.refreshToken)).toBe(true);
        await expectGrantRejected(rotation.refresh(login.refreshToken), 'revoked');
      });

      it('revokeByRefreshToken refuses a token whose tag we never minted without reading the store', async () => {
        const login = await service().issue({ userId: 'alice' });
        const forged = tamperToken(login.refreshToken, (body) => {
          body[30] = (body[30] as number) ^ 0x80; // inside the tag
        });
        // A store that fails every read: a read would surface as StoreUnavailableError.
        const unreadable = new Proxy(repository, {
          get: (target, property, receiver) =>
            property === 'findBySessionId'
              ? () => Promise.reject(new Error('read'))
              : Reflect.get(target, property, receiver),
        });
        expect(await service({ repository: unreadable }).revokeByRefreshToken(forged)).toBe(false);
      });

      it("listSessions shows the user's live sessions, newest first, without revoked or expired ones", async () => {
        const rotation = service({ refreshToken: { idleTtl: '1d' } });
        const stale = await rotation.issue({ userId: 'alice', client: { label: 'stale' } });
        clock.advance('12h');
        const older = await rotation.issue({ userId: 'alice', client: { label: 'laptop' } });
        clock.advance('1h');
        const revoked = await rotation.issue({ userId: 'alice' });
        await rotation.revokeSession(revoked.sessionId);
        clock.advance('1h');
        const newer = await rotation.issue({
          userId: 'alice',
          client: { label: 'phone', userAgent: 'ua' },
        });
        await rotation.issue({ userId: 'bob' });
        clock.advance('11h');

        const sessions = await rotation.listSessions('alice');
        expect(sessions.map((session) => session.id)).toEqual([newer.sessionId, older.sessionId]);
        expect(sessions[0]).toEqual({
          id: newer.sessionId,
          createdAt: new Date(clock.now().getTime() - 11 * 3_600_000),
          lastUsedAt: null,
          rotatedAt: null,
          expiresAt: newer.refreshExpiresAt,
          absoluteExpiresAt: expect.any(Date),
          client: { label: 'phone', userAgent: 'ua' },
        });
        expect(sessions.map((session) => session.id)).not.toContain(stale.sessionId);
      });

      it('touch records activity through the job port, and a failing port is counted, never thrown', async () => {
        const rotation = service();
        const login = await rotation.issue({ userId: 'alice' });
        const at = clock.advance('5m');
        await rotation.touch(login.sessionId);
        expect((await record(login.sessionId)).lastUsedAt).toEqual(at);

        const failing = service({ jobs: new UnreachableJobs() });
        await expect(failing.touch(login.sessionId)).resolves.toBeUndefined();
        expect(failing.droppedTouches).toBe(1);
      });
    });

    describe('bound sessions (DPoP)', () => {
      const keyA = { jkt: 'A'.repeat(43) };
      const keyB = { jkt: 'B'.repeat(43) };

      it('the first proof binds the session; from then on only a proof by that key refreshes, and nothing else changes it', async () => {
        const rotation = service();
        const login = await rotation.issue({ userId: 'alice' });
        expect(login.tokenType).toBe('Bearer');
        clock.advance('1m');
        const bound = await rotation.refresh(login.refreshToken, keyA);
        expect(bound.tokenType).toBe('DPoP');
        expect(rotation.verifyAccessToken(bound.accessToken).cnf).toEqual({ jkt: keyA.jkt });
        expect((await record(login.sessionId)).binding).toEqual({ method: 'dpop', jkt: keyA.jkt });
        const before = await record(login.sessionId);
        clock.advance('1m');
        await expect(rotation.refresh(bound.refreshToken)).rejects.toMatchObject({
          code: 'invalid_dpop_proof',
        });
        await expect(rotation.refresh(bound.refreshToken, keyB)).rejects.toMatchObject({
          code: 'invalid_dpop_proof',
        });
        expect(await record(login.sessionId)).toEqual(before);
        const next = await rotation.refresh(bound.refreshToken, keyA);
        expect(next.tokenType).toBe('DPoP');
      });

      it('a straggler inside the grace window gets the current token only with a proof by the key', async () => {
        const rotation = service({ refreshToken: { reuseGrace: '10s' } });
        const login = await rotation.issue({ userId: 'alice', dpop: keyA });
        const first = await rotation.refresh(login.refreshToken, keyA);
        const before = await record(login.sessionId);
        for (const proven of [undefined, keyB]) {
          await expect(rotation.refresh(login.refreshToken, proven)).rejects.toMatchObject({
            code: 'invalid_dpop_proof',
          });
        }
        expect(await record(login.sessionId)).toEqual(before);
        const straggler = await rotation.refresh(login.refreshToken, keyA);
        expect(straggler.refreshToken).toBe(first.refreshToken);
      });

      it('concurrent proofs by the same key for one bound token get one and the same new token', async () => {
        const rotation = service();
        const login = await rotation.issue({ userId: 'alice', dpop: keyA });
        expect(login.tokenType).toBe('DPoP');
        clock.advance('1m');
        const answers = await Promise.all(
          [1, 2, 3].map(() => rotation.refresh(login.refreshToken, keyA)),
        );
        expect(new Set(answers.map((answer) => answer.refreshToken)).size).toBe(1);
      });

      it('reuse beats binding: a thief who binds a stolen token first is caught when the victim refreshes after the window', async () => {
        const rotation = service({ refreshToken: { reuseGrace: '10s' } });
        const login = await rotation.issue({ userId: 'alice' });
        const thief = await rotation.refresh(login.refreshToken, keyB);
        expect(thief.tokenType).toBe('DPoP');
        clock.advance('11s');
        await expectGrantRejected(rotation.refresh(login.refreshToken), 'reused');
        expect((await record(login.sessionId)).revokedReason).toBe('reuse_detected');
        await expectGrantRejected(rotation.refresh(thief.refreshToken, keyB), 'revoked');
      });

      it('logout by refresh token of a bound session needs a proof by its key', async () => {
        const rotation = service();
        const login = await rotation.issue({ userId: 'alice', dpop: keyA });
        for (const proven of [undefined, keyB]) {
          await expect(
            rotation.revokeByRefreshToken(login.refreshToken, 'logout', proven),
          ).rejects.toMatchObject({ code: 'invalid_dpop_proof' });
        }
        expect((await record(login.sessionId)).revokedAt).toBeNull();
        await expect(
          rotation.revokeByRefreshToken(login.refreshToken, 'logout', keyA),
        ).resolves.toBe(true);
      });

      it("a proven key that is not a thumbprint is the caller's bug: refused, nothing stored", async () => {
        const rotation = service();
        await expect(
          rotation.issue({ userId: 'alice', dpop: { jkt: 'not a thumbprint' } }),
        ).rejects.toMatchObject({ code: 'invalid_request' });
        const login = await rotation.issue({ userId: 'alice' });
        const before = await record(login.sessionId);
        await expect(rotation.refresh(login.refreshToken, { jkt: '' })).rejects.toMatchObject({
          code: 'invalid_request',
        });
        expect(await record(login.sessionId)).toEqual(before);
      });
    });

    describe('device-bound sessions (DBSC)', () => {
      const BOUND_TTL = 10 * 60_000;
      const device = {
        jkt: 'D'.repeat(43),
        jwk: { kty: 'EC', crv: 'P-256', x: 'xx', y: 'yy' },
      };
      const acceptAny = async (): Promise<void> => undefined;

      async function boundLogin(rotation: RotationService): Promise<TokenResponse> {
        const login = await rotation.issue({ userId: 'alice' });
        await rotation.bindDevice(login.refreshToken, async () => device, BOUND_TTL);
        return login;
      }

      it('registration binds the unbound session in one write, keeps the key, and shortens the cookie to the bound lifetime', async () => {
        const rotation = service();
        const login = await rotation.issue({ userId: 'alice' });
        const seen: string[] = [];
        const bound = await rotation.bindDevice(
          login.refreshToken,
          async (sessionId) => {
            seen.push(sessionId);
            return device;
          },
          BOUND_TTL,
        );
        // The server's bound lifetime outlasts the cookie by the leeway (a request sent just before
        // the cookie's end still lands); the cookie's lifetime is relative (Max-Age).
        const cookieEnd = new Date(clock.now().getTime() + BOUND_TTL);
        const boundUntil = new Date(cookieEnd.getTime() + BOUND_LEEWAY_MS);
        expect(seen).toEqual([login.sessionId]);
        expect(bound).toEqual({
          sessionId: login.sessionId,
          refreshExpiresAt: cookieEnd,
          refreshExpiresIn: BOUND_TTL / 1000,
        });
        expect((await record(login.sessionId)).binding).toEqual({
          method: 'dbsc',
          ...device,
          boundUntil,
        });
      });

      it('a replayed registration, or one for a bound, revoked or superseded session, binds nothing', async () => {
        const rotation = service();
        const login = await boundLogin(rotation);
        const before = await record(login.sessionId);
        const other = { jkt: 'E'.repeat(43), jwk: { kty: 'EC', crv: 'P-256', x: 'a', y: 'b' } };
        await expectGrantRejected(
          rotation.bindDevice(login.refreshToken, async () => other, BOUND_TTL),
          'revoked',
        );
        expect(await record(login.sessionId)).toEqual(before);

        const second = await rotation.issue({ userId: 'alice' });
        const rotated = await rotation.refresh(second.refreshToken);
        await expectGrantRejected(
          rotation.bindDevice(second.refreshToken, async () => device, BOUND_TTL),
          'revoked',
        );
        await rotation.revokeSession(second.sessionId);
        await expectGrantRejected(
          rotation.bindDevice(rotated.refreshToken, async () => device, BOUND_TTL),
          'revoked',
        );
        expect((await record(second.sessionId)).binding).toBeNull();
      });

      it('a refused proof at registration changes nothing, and a forged token never reaches the proof or the store', async () => {
        const rotation = service();
        const login = await rotation.issue({ userId: 'alice' });
        const before = await record(login.sessionId);
        await expect(
          rotation.bindDevice(
            login.refreshToken,
            async () => {
              throw new Error('bad proof');
            },
            BOUND_TTL,
          ),
        ).rejects.toThrow('bad proof');
        expect(await record(login.sessionId)).toEqual(before);
        let asked = false;
        await expectGrantRejected(
          rotation.bindDevice(
            tamperToken(login.refreshToken, (body) => {
              body[40] = (body[40] as number) ^ 0x01;
            }),
            async () => {
              asked = true;
              return device;
            },
            BOUND_TTL,
          ),
          'forged',
        );
        expect(asked).toBe(false);
      });

      it('the cookie rotates without a proof inside the bound lifetime but never extends it, and is refused after it without any change', async () => {
        const rotation = service();
        const login = await boundLogin(rotation);
        const cookieEnd = new Date(clock.now().getTime() + BOUND_TTL);
        const boundUntil = new Date(cookieEnd.getTime() + BOUND_LEEWAY_MS);
        clock.advance('9m');
        const rotated = await rotation.refresh(login.refreshToken);
        expect(rotated.tokenType).toBe('Bearer');
        expect(rotated).toMatchObject({ refreshExpiresAt: cookieEnd, refreshExpiresIn: 60 });
        expect((await record(login.sessionId)).binding).toMatchObject({ boundUntil });
        // At the cookie's end a request sent just before it still lands, and its cookie lives 0 s.
        clock.advance('1m');
        const late = await rotation.refresh(rotated.refreshToken);
        expect(late).toMatchObject({ refreshExpiresAt: cookieEnd, refreshExpiresIn: 0 });
        clock.advance(BOUND_LEEWAY_MS);
        const before = await record(login.sessionId);
        await expectGrantRejected(rotation.refresh(late.refreshToken), 'expired');
        expect(await record(login.sessionId)).toEqual(before);
        // Nor can the copy log its owner out.
        await expect(rotation.revokeByRefreshToken(late.refreshToken)).resolves.toBe(false);
        expect((await record(login.sessionId)).revokedAt).toBeNull();
        // A DPoP proof never stands in for the device key.
        await expect(
          rotation.refresh(late.refreshToken, { jkt: device.jkt }),
        ).rejects.toMatchObject({ code: 'invalid_dpop_proof' });
      });

      it('a refresh by proof rotates with the stored key, extends the bound lifetime, and the old cookie is then reuse', async () => {
        const rotation = service({ refreshToken: { reuseGrace: '10s' } });
        const login = await boundLogin(rotation);
        clock.advance('11m');
        const seen: [unknown, number][] = [];
        const refreshed = await rotation.refreshByDeviceProof(
          login.sessionId,
          async (key, generation) => {
            seen.push([key, generation]);
          },
          BOUND_TTL,
        );
        const cookieEnd = new Date(clock.now().getTime() + BOUND_TTL);
        expect(seen).toEqual([[device, 0]]);
        expect(refreshed.refreshExpiresAt).toEqual(cookieEnd);
        expect((await record(login.sessionId)).binding).toEqual({
          method: 'dbsc',
          ...device,
          boundUntil: new Date(cookieEnd.getTime() + BOUND_LEEWAY_MS),
        });
        const next = await rotation.refresh(refreshed.refreshToken);
        expect(next.refreshExpiresAt).toEqual(cookieEnd);
        clock.advance('11s');
        await expectGrantRejected(rotation.refresh(login.refreshToken), 'reused');
        await expectGrantRejected(
          rotation.refreshByDeviceProof(login.sessionId, acceptAny, BOUND_TTL),
          'revoked',
        );
      });

      it('a refused proof at refresh changes nothing', async () => {
        const rotation = service();
        const login = await boundLogin(rotation);
        const before = await record(login.sessionId);
        await expect(
          rotation.refreshByDeviceProof(
            login.sessionId,
            async () => {
              throw new Error('another key');
            },
            BOUND_TTL,
          ),
        ).rejects.toThrow('another key');
        expect(await record(login.sessionId)).toEqual(before);
      });

      it('a revoked, outdated, expired, unknown or unbound session is refused at the refresh by proof', async () => {
        const rotation = service({ refreshToken: { idleTtl: '1d', absoluteTtl: '2d' } });
        const revoked = await boundLogin(rotation);
        await rotation.revokeSession(revoked.sessionId);
        await expectGrantRejected(
          rotation.refreshByDeviceProof(revoked.sessionId, acceptAny, BOUND_TTL),
          'revoked',
        );
        const unbound = await rotation.issue({ userId: 'bob' });
        await expectGrantRejected(
          rotation.refreshByDeviceProof(unbound.sessionId, acceptAny, BOUND_TTL),
          'unknown_session',
        );
        await expectGrantRejected(
          rotation.refreshByDeviceProof(randomHex(16), acceptAny, BOUND_TTL),
          'unknown_session',
        );
        await expectGrantRejected(
          rotation.refreshByDeviceProof('not a session', acceptAny, BOUND_TTL),
          'malformed',
        );
        const outdated = await boundLogin(rotation);
        await rotation.revokeAllForUser('alice');
        await expectGrantRejected(
          rotation.refreshByDeviceProof(outdated.sessionId, acceptAny, BOUND_TTL),
          'version',
        );
        const expired = await rotation.issue({ userId: 'carol' });
        await rotation.bindDevice(expired.refreshToken, async () => device, BOUND_TTL);
        clock.advance('25h');
        await expectGrantRejected(
          rotation.refreshByDeviceProof(expired.sessionId, acceptAny, BOUND_TTL),
          'expired',
        );
      });

      it('a proof replayed after its rotation is checked against the new generation', async () => {
        const rotation = service();
        const login = await boundLogin(rotation);
        const generations: number[] = [];
        const prove = async (_key: unknown, generation: number): Promise<void> => {
          generations.push(generation);
          if (generation !== 0) throw new Error('challenge of another generation');
        };
        await rotation.refreshByDeviceProof(login.sessionId, prove, BOUND_TTL);
        await expect(
          rotation.refreshByDeviceProof(login.sessionId, prove, BOUND_TTL),
        ).rejects.toThrow('challenge of another generation');
        expect(generations).toEqual([0, 1]);
      });
    });

    describe('what a leaked database or secret is worth (format 3)', () => {
      /** Every byte string a record holds, decoded every way a reader of the dump could try. */
      function byteSourcesOf(dump: unknown): Buffer[] {
        const sources: Buffer[] = [];
        const visit = (value: unknown): void => {
          if (typeof value === 'string') {
            if (/^(?:[0-9a-f]{2})+$/i.test(value)) sources.push(Buffer.from(value, 'hex'));
            else if (/^[A-Za-z0-9_-]+$/.test(value)) sources.push(Buffer.from(value, 'base64url'));
            else if (value.startsWith('rt_'))
              sources.push(Buffer.from(value.slice(3), 'base64url'));
            else sources.push(Buffer.from(value, 'utf8'));
          } else if (Array.isArray(value)) {
            value.forEach(visit);
          } else if (value !== null && typeof value === 'object' && !(value instanceof Date)) {
            Object.values(value).forEach(visit);
          }
        };
        visit(dump);
        return [...sources, Buffer.concat(sources)];
      }

      /**
       * Every token string a dump and the session id can spell: each stored string that looks
       * like a token, and every 48-byte window of every decoded field of a record (and of all its
       * fields end to end) as nonce ‖ tag, at every generation the record knows, under its key id.
       */
      function candidateTokens(records: RefreshTokenRecord[]): string[] {
        const candidates = new Set<string>();
        for (const text of JSON.stringify(records).match(/rt_[A-Za-z0-9_-]{94}/g) ?? [])
          candidates.add(text);
        for (const record of records) {
          const sources = byteSourcesOf(record);
          const generations = new Set([
            record.generation,
            record.generation + 1,
            ...record.superseded.map((entry) => entry.generation),
          ]);
          for (const bytes of sources) {
            for (let offset = 0; offset + 48 <= bytes.length; offset += 1) {
              const nonceAndTag = bytes.subarray(offset, offset + 48);
              for (const generation of generations) {
                const head = Buffer.alloc(22);
                head.writeUInt8(3, 0);
                head.writeUInt8(record.keyId, 1);
                head.write(record.sessionId, 2, 16, 'hex');
                head.writeUInt32BE(generation, 18);
                candidates.add(`rt_${Buffer.concat([head, nonceAndTag]).toString('base64url')}`);
              }
            }
          }
        }
        return [...candidates];
      }

      it('a database dump (every field of every record) plus the session ids yields no token that refreshes', async () => {
        const rotation = service({ refreshToken: { reuseGrace: '10s' } });
        const sessions: TokenResponse[] = [];
        for (let index = 0; index < 3; index += 1) {
          let current = await rotation.issue({ userId: `dumped-${index}` });
          for (let step = 0; step < 2 + index; step += 1) {
            clock.advance('1s');
            current = await rotation.refresh(current.refreshToken);
          }
          sessions.push(current);
        }
        const dump = await Promise.all(sessions.map((session) => record(session.sessionId)));
        const before = JSON.stringify(dump);
        const candidates = candidateTokens(dump);
        expect(candidates.length).toBeGreaterThan(1_000);

        let refreshed = 0;
        for (const candidate of candidates) {
          await rotation.refresh(candidate).then(
            () => (refreshed += 1),
            (error: unknown) => expect(error).toBeInstanceOf(InvalidGrantError),
          );
        }
        expect(refreshed).toBe(0);
        const after = await Promise.all(sessions.map((session) => record(session.sessionId)));
        expect(JSON.stringify(after)).toBe(before);
        // The honest holders are untouched.
        for (const session of sessions)
          await expect(rotation.refresh(session.refreshToken)).resolves.toMatchObject({
            sessionId: session.sessionId,
          });
      });

      function alarms(): Extract<AuditEvent, { type: 'secret.compromise_suspected' }>[] {
        return events.filter(
          (event): event is Extract<AuditEvent, { type: 'secret.compromise_suspected' }> =>
            event.type === 'secret.compromise_suspected',
        );
      }

      it('a token minted with our secret that its session never had is refused, changes nothing, and raises the alarm exactly once per token', async () => {
        const rotation = service({ refreshToken: { reuseGrace: '10s' } });
        const login = await rotation.issue({ userId: 'alice' });
        let current = login;
        for (let step = 0; step < 3; step += 1) {
          clock.advance('1s');
          current = await rotation.refresh(current.refreshToken);
        }
        const before = await record(login.sessionId);
        const writesBefore = writes.length;
        // What a holder of the secret can make: a valid tag on a fresh nonce, for the current
        // generation, superseded ones inside the window, and one ahead of the record.
        const codec = new TokenCodec([refreshSecret]);
        const minted = [3, 2, 1, 0, 4].map((generation) => ({
          generation,
          token: codec.mint(login.sessionId, generation).token,
        }));

        for (const { token } of minted) {
          await expectGrantRejected(rotation.refresh(token), 'forged');
        }
        expect(writes.length).toBe(writesBefore);
        expect(await record(login.sessionId)).toEqual(before);
        expect(alarms()).toEqual(
          minted.map(({ generation }) => ({
            type: 'secret.compromise_suspected',
            at: clock.now(),
            keyId: codec.currentKeyId,
            userId: 'alice',
            sessionId: login.sessionId,
            presentedGeneration: generation,
            currentGeneration: 3,
          })),
        );
        const serialized = JSON.stringify(events);
        for (const { token } of minted) expect(serialized).not.toContain(token.slice(3, 40));
        // Once per presentation: the same token again is one more alarm, still nothing changed.
        await expectGrantRejected(rotation.refresh(minted[0]!.token), 'forged');
        expect(alarms()).toHaveLength(minted.length + 1);
        expect(events.filter((event) => event.type === 'token.reuse_detected')).toEqual([]);
        await expect(rotation.refresh(current.refreshToken)).resolves.toMatchObject({
          sessionId: login.sessionId,
        });
      });

      it('the alarm never fires for an honest straggler, a reuse, a removed key or a forgery without our secret', async () => {
        const rotation = service({ refreshToken: { reuseGrace: '10s' } });
        // A straggler inside the window: the same current token.
        const login = await rotation.issue({ userId: 'alice' });
        clock.advance('1s');
        const first = await rotation.refresh(login.refreshToken);
        expect((await rotation.refresh(login.refreshToken)).refreshToken).toBe(first.refreshToken);
        // Concurrent tabs.
        clock.advance('1s');
        const tabs = await Promise.all(
          Array.from({ length: 5 }, () => rotation.refresh(first.refreshToken)),
        );
        expect(new Set(tabs.map((tab) => tab.refreshToken)).size).toBe(1);
        // A reuse after the window: the session is revoked, and it is reuse, not compromise.
        clock.advance('11s');
        await expectGrantRejected(rotation.refresh(login.refreshToken), 'reused');
        await expectGrantRejected(rotation.refresh(tabs[0]!.refreshToken), 'revoked');
        // A straggler whose current token was signed by a secret since removed.
        const other = await service().issue({ userId: 'bob' });
        const newSecret = aSecret(refreshSecret);
        clock.advance('1s');
        await service({ refreshToken: { secrets: [newSecret, refreshSecret] } }).refresh(
          other.refreshToken,
        );
        await expectGrantRejected(rotation.refresh(other.refreshToken), 'expired');
        // A token of the removed secret, and a forgery without any of our secrets.
        const removedOnly = service({ refreshToken: { secrets: [refreshSecret] } });
        const underNew = new TokenCodec([newSecret]).mint(other.sessionId, 1).token;
        await expectGrantRejected(removedOnly.refresh(underNew), 'malformed');
        const forged = tamperToken(other.refreshToken, (body) => {
          body[60] = (body[60] as number) ^ 0x01;
        });
        await expectGrantRejected(rotation.refresh(forged), 'forged');
        expect(alarms()).toEqual([]);
      });

      it('revokeByRefreshToken accepts the current token or a superseded one by its hash, and refuses a token the session never had with the alarm', async () => {
        const rotation = service({ refreshToken: { reuseGrace: 0 } });
        const codec = new TokenCodec([refreshSecret]);
        const login = await rotation.issue({ userId: 'alice' });
        clock.advance('1s');
        const current = await rotation.refresh(login.refreshToken);
        for (const generation of [0, 1, 2]) {
          const never = codec.mint(login.sessionId, generation).token;
          expect(await rotation.revokeByRefreshToken(never)).toBe(false);
        }
        expect((await record(login.sessionId)).revokedAt).toBeNull();
        expect(alarms().map((alarm) => alarm.presentedGeneration)).toEqual([0, 1, 2]);
        expect(await rotation.revokeByRefreshToken(login.refreshToken)).toBe(true);
        await expectGrantRejected(rotation.refresh(current.refreshToken), 'revoked');

        const second = await rotation.issue({ userId: 'alice' });
        expect(await rotation.revokeByRefreshToken(second.refreshToken)).toBe(true);
        expect(alarms()).toHaveLength(3);
      });
    });

    describe('audit and failures', () => {
      it('audit events never carry a token', async () => {
        const rotation = service({ refreshToken: { reuseGrace: 0 } });
        const login = await rotation.issue({ userId: 'alice' });
        const refreshed = await rotation.refresh(login.refreshToken);
        await rotation.refresh(login.refreshToken).catch(() => undefined);
        await rotation.refresh('rt_garbage').catch(() => undefined);
        const other = await rotation.issue({ userId: 'alice' });
        await rotation.revokeAllForUser('alice');
        await rotation.rotateGlobal({ reason: 'breach' });

        expect(new Set(events.map((event) => event.type))).toEqual(
          new Set([
            'token.issued',
            'token.rotated',
            'token.reuse_detected',
            'session.revoked',
            'token.rejected',
            'user.revoked_all',
            'global.rotated',
            'refresh.completed',
          ]),
        );
        // One per refresh() call, whatever its result, with its duration (for metrics).
        const completed = events.filter((event) => event.type === 'refresh.completed');
        expect(completed.map((event) => event.outcome)).toEqual(['rotated', 'reused', 'malformed']);
        for (const event of completed) expect(event.durationMs).toBeGreaterThanOrEqual(0);
        const serialized = JSON.stringify(events);
        for (const token of tokensIn([login, refreshed, other])) {
          expect(serialized).not.toContain(token.slice(3, 40));
        }
      });

      it('a throwing audit hook does not break a refresh', async () => {
        const rotation = service({
          onAuditEvent: () => {
            throw new Error('audit sink down');
          },
        });
        const login = await rotation.issue({ userId: 'alice' });
        await expect(rotation.refresh(login.refreshToken)).resolves.toMatchObject({
          sessionId: login.sessionId,
        });
      });

      it('a failing store surfaces as StoreUnavailableError', async () => {
        const login = await service().issue({ userId: 'alice' });
        const broken = new Proxy(subject.repository, {
          get(target, property, receiver) {
            if (property === 'findBySessionId' || property === 'rotate')
              return async () => Promise.reject(new Error('socket closed'));
            return Reflect.get(target, property, receiver);
          },
        });
        const rotation = service({ repository: broken });
        await expect(rotation.refresh(login.refreshToken)).rejects.toBeInstanceOf(
          StoreUnavailableError,
        );
        await expect(rotation.refresh(login.refreshToken)).rejects.toMatchObject({
          code: 'store_unavailable',
        });
      });
    });
  });
}
