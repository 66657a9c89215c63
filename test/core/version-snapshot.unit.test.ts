/**
 * `versionSnapshot` + `issue({ at })` (docs/architecture.md, "Revocation and versions"): a login
 * issues at the user's version as it was before the password check, so a revoke-all that lands
 * during the check kills it, on the service with the in-memory adapters.
 */
import {
  InlineTokenJobs,
  MemoryRefreshTokenRepository,
  MemoryVersionStore,
} from '../../src/adapters/memory';
import { InvalidGrantError, InvalidRequestError } from '../../src/domain/errors';
import type { AuditEvent } from '../../src/options';
import { RotationService } from '../../src/rotation-service';
import { aSecret } from '../support/builders';
import { FakeClock } from '../support/fake-clock';

function aService() {
  const repository = new MemoryRefreshTokenRepository();
  const events: AuditEvent[] = [];
  const service = new RotationService({
    repository,
    versions: new MemoryVersionStore(),
    jobs: new InlineTokenJobs(repository),
    accessToken: { secret: aSecret() },
    refreshToken: { secrets: [aSecret()] },
    clock: new FakeClock(),
    onAuditEvent: (event) => events.push(event),
  });
  return { service, repository, events };
}

describe('issuing at a version snapshot', () => {
  it('a login whose snapshot predates a revoke-all gets no session, and says why to the audit hook', async () => {
    const { service, repository, events } = aService();
    const snapshot = await service.versionSnapshot('alice');
    // The password check runs here; a password change lands meanwhile.
    await service.revokeAllForUser('alice', 'password_changed');

    const refused = await service.issue({ userId: 'alice', at: snapshot }).catch((e) => e);
    expect(refused).toBeInstanceOf(InvalidGrantError);
    expect(refused).toMatchObject({ reason: 'version' });
    expect(await repository.listActiveForUser('alice', new Date(0))).toHaveLength(0);
    expect(events).toContainEqual(
      expect.objectContaining({ type: 'token.rejected', reason: 'version', userId: 'alice' }),
    );
  });

  it('without a snapshot the same login is born at the new version and survives (what the snapshot prevents)', async () => {
    const { service } = aService();
    await service.versionSnapshot('alice');
    await service.revokeAllForUser('alice', 'password_changed');
    const late = await service.issue({ userId: 'alice' });
    await expect(service.refresh(late.refreshToken)).resolves.toMatchObject({ userId: 'alice' });
  });

  it('a snapshot taken after the revoke-all issues a session that refreshes, at the snapshot version', async () => {
    const { service } = aService();
    await service.revokeAllForUser('alice', 'password_changed');
    const snapshot = await service.versionSnapshot('alice');
    expect(snapshot).toEqual({ userId: 'alice', userMinVersion: 1 });
    expect(Object.isFrozen(snapshot)).toBe(true);
    const login = await service.issue({ userId: 'alice', at: snapshot });
    expect(service.verifyAccessToken(login.accessToken)).toMatchObject({ sub: 'alice', ver: 1 });
    await expect(service.refresh(login.refreshToken)).resolves.toMatchObject({ userId: 'alice' });
  });

  it('a session issued at a snapshot dies at the next revoke-all like any other', async () => {
    const { service } = aService();
    const login = await service.issue({
      userId: 'alice',
      at: await service.versionSnapshot('alice'),
    });
    await service.revokeAllForUser('alice');
    await expect(service.refresh(login.refreshToken)).rejects.toBeInstanceOf(InvalidGrantError);
  });

  it('refuses a snapshot of another user or one that is not a snapshot', async () => {
    const { service } = aService();
    const bobs = await service.versionSnapshot('bob');
    for (const at of [
      bobs,
      { userId: 'alice', userMinVersion: -1 },
      { userId: 'alice', userMinVersion: 1.5 },
      { userId: 'alice' },
      null,
    ]) {
      await expect(service.issue({ userId: 'alice', at: at as never })).rejects.toBeInstanceOf(
        InvalidRequestError,
      );
    }
    await expect(service.versionSnapshot('')).rejects.toBeInstanceOf(InvalidRequestError);
  });
});
