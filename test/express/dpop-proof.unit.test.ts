/**
 * The DPoP proof verifier (RFC 9449 §4.3) on hand-made proofs: accepted ES256, EdDSA, RS256 and
 * PS256 proofs give the key's thumbprint; every check refuses its own violation with an
 * `InvalidDpopProofError` (or `UseDpopNonceError`) that names it; junk of any shape is refused
 * the same way, never with another error.
 */
import fc from 'fast-check';
import { SignJWT } from 'jose';
import { createDPoPVerifier, type DPoPVerifierOptions } from '../../src/adapters/express';
import { MemoryDPoPReplayCache } from '../../src/adapters/memory';
import type { DPoPReplayCache } from '../../src/domain/dpop-replay-cache';
import {
  InvalidDpopProofError,
  OptionsError,
  StoreUnavailableError,
  UseDpopNonceError,
} from '../../src/domain/errors';
import { ath, makeProof, proofKey, unsignedProof, type ProofKey } from '../support/dpop-proofs';
import { FakeClock } from '../support/fake-clock';

const URL = 'https://api.example.com/auth/token';
const NONCE_SECRET = 'n'.repeat(32);

function setup(options: Partial<DPoPVerifierOptions> = {}) {
  const clock = new FakeClock();
  const verifier = createDPoPVerifier({
    replayCache: new MemoryDPoPReplayCache({ clock }),
    clock,
    ...options,
  });
  const seconds = () => Math.floor(clock.now().getTime() / 1000);
  const check = (
    proof: string,
    extra: { method?: string; url?: string; accessToken?: string } = {},
  ) => verifier.verify({ proof, method: 'POST', url: URL, ...extra });
  return { clock, verifier, seconds, check };
}

/** The refusal `promise` rejects with: an InvalidDpopProofError whose message matches `why`. */
async function refused(promise: Promise<unknown>, why: RegExp): Promise<void> {
  const error = await promise.then(
    () => null,
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(InvalidDpopProofError);
  expect((error as Error).message).toMatch(why);
}

let es256: ProofKey;
let other: ProofKey;
beforeAll(async () => {
  [es256, other] = await Promise.all([proofKey('ES256'), proofKey('ES256')]);
});

describe('an accepted DPoP proof', () => {
  it.each(['ES256', 'EdDSA', 'RS256', 'PS256'] as const)(
    'by a %s key gives that key’s RFC 7638 thumbprint',
    async (alg) => {
      const { check, seconds } = setup();
      const key = alg === 'ES256' ? es256 : await proofKey(alg);
      expect(await check(await makeProof(key, URL, { now: seconds() }))).toEqual({ jkt: key.jkt });
    },
  );

  it('matches htu without its query or fragment, and with scheme and host case normalised', async () => {
    const { check, seconds } = setup();
    const proof = await makeProof(es256, URL, {
      now: seconds(),
      claims: { htu: 'HTTPS://API.example.com:443/auth/token?x=1#frag' },
    });
    expect((await check(proof)).jkt).toBe(es256.jkt);
  });

  it('is accepted at the edges of the iat window', async () => {
    const { check, seconds } = setup();
    await check(await makeProof(es256, URL, { now: seconds() - 60 }));
    await check(await makeProof(es256, URL, { now: seconds() + 60 }));
  });

  it('with ath of the access token is accepted at a resource', async () => {
    const { check, seconds } = setup();
    const proof = await makeProof(es256, URL, {
      now: seconds(),
      claims: { htm: 'GET', ath: ath('the.access.token') },
    });
    expect(await check(proof, { method: 'GET', accessToken: 'the.access.token' })).toEqual({
      jkt: es256.jkt,
    });
  });
});

describe('a refused DPoP proof', () => {
  it('for another URL (htu)', async () => {
    const { check, seconds } = setup();
    const proof = await makeProof(es256, 'https://api.example.com/auth/other', { now: seconds() });
    await refused(check(proof), /htu must be https:\/\/api\.example\.com\/auth\/token/);
    const otherHost = await makeProof(es256, 'https://evil.example.com/auth/token', {
      now: seconds(),
    });
    await refused(check(otherHost), /htu/);
    await refused(
      check(await makeProof(es256, URL, { now: seconds(), claims: { htu: 42 } })),
      /htu/,
    );
  });

  it('for another method (htm)', async () => {
    const { check, seconds } = setup();
    await refused(
      check(await makeProof(es256, URL, { now: seconds(), claims: { htm: 'GET' } })),
      /htm must be POST/,
    );
    await refused(
      check(await makeProof(es256, URL, { now: seconds(), claims: { htm: 'post' } })),
      /htm/,
    );
  });

  it('issued too long ago (stale iat)', async () => {
    const { check, seconds } = setup();
    await refused(check(await makeProof(es256, URL, { now: seconds() - 61 })), /too old/);
  });

  it('issued in the future (iat ahead of the window)', async () => {
    const { check, seconds } = setup();
    await refused(check(await makeProof(es256, URL, { now: seconds() + 61 })), /future/);
  });

  it('without iat, or with an iat that is not a number', async () => {
    const { check, seconds } = setup();
    await refused(
      check(await makeProof(es256, URL, { now: seconds(), claims: { iat: undefined } })),
      /iat/,
    );
    await refused(
      check(await makeProof(es256, URL, { now: seconds(), claims: { iat: 'now' } })),
      /iat/,
    );
  });

  it('with another typ', async () => {
    const { check, seconds } = setup();
    for (const typ of ['JWT', 'application/dpop+jwt', undefined]) {
      await refused(
        check(await makeProof(es256, URL, { now: seconds(), header: { typ } })),
        /typ must be dpop\+jwt/,
      );
    }
  });

  it('with alg none', async () => {
    const { check, seconds } = setup();
    const claims = { htm: 'POST', htu: URL, iat: seconds(), jti: 'j1' };
    const header = { alg: 'none', typ: 'dpop+jwt', jwk: es256.publicJwk };
    await refused(check(unsignedProof(header, claims)), /alg must be one of/);
    // The unsecured form has an empty signature: not even a compact JWS to this verifier.
    await refused(check(unsignedProof(header, claims, '')), /compact/);
  });

  it('with HS256 (a symmetric key is no proof of possession)', async () => {
    const { check, seconds } = setup();
    const secret = new Uint8Array(32).fill(7);
    const proof = await new SignJWT({ htm: 'POST', htu: URL, iat: seconds(), jti: 'j1' })
      .setProtectedHeader({
        alg: 'HS256',
        typ: 'dpop+jwt',
        jwk: { kty: 'oct', k: 'BwcH' } as never,
      })
      .sign(secret);
    await refused(check(proof), /alg must be one of/);
  });

  it('with an algorithm outside a configured subset', async () => {
    const { check, seconds } = setup({ algorithms: ['EdDSA'] });
    await refused(
      check(await makeProof(es256, URL, { now: seconds() })),
      /alg must be one of EdDSA/,
    );
  });

  it('with a private key in its jwk header', async () => {
    const { check, seconds } = setup();
    const proof = await makeProof(es256, URL, {
      now: seconds(),
      header: { jwk: es256.privateJwk },
    });
    // Our own check, with its own description (jose would refuse it too, less clearly).
    await refused(check(proof), /must be a public key \(no private members\)/);
  });

  it('without a jwk, or with a jwk that is no public key', async () => {
    const { check, seconds } = setup();
    for (const jwk of [
      undefined,
      'key',
      [],
      { kty: 'oct', x: 'AAAA' },
      { kty: 'EC', crv: 'P-256' },
    ]) {
      await refused(check(await makeProof(es256, URL, { now: seconds(), header: { jwk } })), /jwk/);
    }
  });

  it('signed by another key than its jwk (bad signature)', async () => {
    const { check, seconds } = setup();
    const proof = await makeProof(es256, URL, {
      now: seconds(),
      header: { jwk: other.publicJwk },
    });
    await refused(check(proof), /signature does not verify/);
  });

  it('with its payload changed after signing', async () => {
    const { check, seconds } = setup();
    const [header, , signature] = (await makeProof(es256, URL, { now: seconds() })).split('.');
    const body = Buffer.from(
      JSON.stringify({ htm: 'POST', htu: URL, iat: seconds(), jti: 'forged' }),
    ).toString('base64url');
    await refused(check(`${header}.${body}.${signature}`), /signature does not verify/);
  });

  it('without jti, or with a jti too long to be one', async () => {
    const { check, seconds } = setup();
    await refused(
      check(await makeProof(es256, URL, { now: seconds(), claims: { jti: undefined } })),
      /must carry a jti/,
    );
    await refused(
      check(await makeProof(es256, URL, { now: seconds(), claims: { jti: 'j'.repeat(257) } })),
      /jti must be at most 256/,
    );
  });

  it('replayed (its jti claimed once already), even by another key for another client', async () => {
    const { check, seconds } = setup();
    const proof = await makeProof(es256, URL, { now: seconds() });
    await check(proof);
    await refused(check(proof), /already used/);
    // The same jti from another key is another proof: the replay key is (jkt, jti).
    const sameJti = await makeProof(other, URL, { now: seconds(), claims: { jti: 'shared' } });
    const mine = await makeProof(es256, URL, { now: seconds(), claims: { jti: 'shared' } });
    await check(sameJti);
    await check(mine);
  });

  it('replayed until its iat leaves every instance’s window (the jti outlives the window)', async () => {
    const replayCache = new MemoryDPoPReplayCache();
    const claims: Array<[string, number]> = [];
    const spy: DPoPReplayCache = {
      claim: (key, ttlMs) => (claims.push([key, ttlMs]), replayCache.claim(key, ttlMs)),
    };
    const { check, seconds } = setup({ replayCache: spy });
    await check(await makeProof(es256, URL, { now: seconds() }));
    expect(claims).toHaveLength(1);
    const [key, ttlMs] = claims[0]!;
    expect(ttlMs).toBeGreaterThanOrEqual(120_000);
    // A hash, not the client's jti or key.
    expect(key).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('does not use up its jti when another check refuses it', async () => {
    const { check, seconds } = setup();
    const jti = 'kept';
    await refused(
      check(await makeProof(es256, URL, { now: seconds(), claims: { jti, htm: 'GET' } })),
      /htm/,
    );
    expect(await check(await makeProof(es256, URL, { now: seconds(), claims: { jti } }))).toEqual({
      jkt: es256.jkt,
    });
  });

  it('at a resource without ath, or with the ath of another access token', async () => {
    const { check, seconds } = setup();
    const proof = (claims: Record<string, unknown>) =>
      makeProof(es256, URL, { now: seconds(), claims: { htm: 'GET', ...claims } });
    await refused(check(await proof({}), { method: 'GET', accessToken: 'a.b.c' }), /ath/);
    await refused(
      check(await proof({ ath: ath('other.token') }), { method: 'GET', accessToken: 'a.b.c' }),
      /ath/,
    );
  });

  it('with an exp in the past', async () => {
    const { check, seconds } = setup();
    await refused(
      check(await makeProof(es256, URL, { now: seconds(), claims: { exp: seconds() - 1 } })),
      /expired/,
    );
  });
});

describe('server nonces', () => {
  it('a proof without the nonce gets use_dpop_nonce with the nonce to use; with it, it passes', async () => {
    const { check, seconds, verifier } = setup({ nonce: { secret: NONCE_SECRET } });
    const error = await check(await makeProof(es256, URL, { now: seconds() })).catch(
      (reason: unknown) => reason,
    );
    expect(error).toBeInstanceOf(UseDpopNonceError);
    const { nonce } = error as UseDpopNonceError;
    expect(nonce).toBe(verifier.currentNonce());
    expect(await check(await makeProof(es256, URL, { now: seconds(), claims: { nonce } }))).toEqual(
      { jkt: es256.jkt },
    );
  });

  it('a nonce of the previous time step passes; one from an older step gets use_dpop_nonce', async () => {
    const { check, seconds, verifier, clock } = setup({
      nonce: { secret: NONCE_SECRET, step: '5m' },
      iatWindow: '60s',
    });
    const old = verifier.currentNonce()!;
    clock.advance('5m');
    expect(verifier.currentNonce()).not.toBe(old);
    await check(await makeProof(es256, URL, { now: seconds(), claims: { nonce: old } }));
    clock.advance('5m');
    const stale = await check(
      await makeProof(es256, URL, { now: seconds(), claims: { nonce: old } }),
    ).catch((reason: unknown) => reason);
    expect(stale).toBeInstanceOf(UseDpopNonceError);
    expect((stale as UseDpopNonceError).nonce).toBe(verifier.currentNonce());
  });

  it('a nonce made with another secret, or of another shape, is not accepted', async () => {
    const a = setup({ nonce: { secret: NONCE_SECRET } });
    const b = setup({ nonce: { secret: 'm'.repeat(32) } });
    const foreign = b.verifier.currentNonce();
    for (const nonce of [foreign, 'x', 42, `${a.verifier.currentNonce()}x`]) {
      await expect(
        a.check(await makeProof(es256, URL, { now: a.seconds(), claims: { nonce } })),
      ).rejects.toBeInstanceOf(UseDpopNonceError);
    }
  });

  it('instances with one secret accept each other’s nonces (stateless)', async () => {
    const a = setup({ nonce: { secret: NONCE_SECRET } });
    const b = setup({ nonce: { secret: NONCE_SECRET } });
    const nonce = a.verifier.currentNonce();
    await b.check(await makeProof(es256, URL, { now: b.seconds(), claims: { nonce } }));
  });

  it('are off unless configured', () => {
    expect(setup().verifier.currentNonce()).toBeUndefined();
  });
});

describe('whatever the DPoP header holds', () => {
  it('junk is refused with InvalidDpopProofError, never another error', async () => {
    const { check } = setup();
    const b64 = (text: string) => Buffer.from(text).toString('base64url');
    const samples = [
      '',
      ' ',
      'a',
      'a.b',
      'a.b.c',
      '...',
      'x'.repeat(100_000),
      `${b64('null')}.${b64('{}')}.AAAA`,
      `${b64('[]')}.${b64('{}')}.AAAA`,
      `${b64('"dpop"')}.${b64('{}')}.AAAA`,
      `${b64('{"alg":"ES256","typ":"dpop+jwt","jwk":{"kty":"EC"}}')}.${b64('{}')}.AAAA`,
      `${b64('{"alg":"ES256","typ":"dpop+jwt","jwk":{"kty":"RSA","n":"AQAB","e":"AQAB"}}')}.${b64('[]')}.AAAA`,
      `${b64('{"alg":"ES256","typ":"dpop+jwt","jwk":{"kty":"EC","crv":"P-256","x":1,"y":{}}}')}.${b64('1')}.AAAA`,
      `${b64('{"alg":"ES256","typ":"dpop+jwt","crit":["zz"],"zz":1,"jwk":{}}')}.${b64('{}')}.AAAA`,
      `${b64('{"__proto__":{"typ":"dpop+jwt"}}')}.${b64('{}')}.AAAA`,
      'eyJ.eyJ.=',
    ];
    for (const sample of samples) await refused(check(sample), /DPoP/);
  });

  it('random strings and random JSON headers are refused with InvalidDpopProofError', async () => {
    const { check } = setup();
    const part = (value: unknown) =>
      Buffer.from(JSON.stringify(value) ?? 'x').toString('base64url');
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string({ maxLength: 300 }),
          fc
            .tuple(fc.jsonValue(), fc.jsonValue(), fc.base64String({ maxLength: 90 }))
            .map(
              ([h, p, s]) =>
                `${part(h)}.${part(p)}.${s.replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_')}`,
            ),
          fc
            .record({
              alg: fc.constantFrom('ES256', 'EdDSA', 'RS256', 'PS256', 'none', 'HS256'),
              typ: fc.constantFrom('dpop+jwt', 'JWT'),
              jwk: fc.oneof(fc.jsonValue(), fc.constant(es256.publicJwk)),
            })
            .map((header) => `${part(header)}.${part({ htm: 'POST', htu: URL })}.AAAA`),
        ),
        async (sample) => {
          const error = await check(sample).then(
            () => null,
            (reason: unknown) => reason,
          );
          expect(error).toBeInstanceOf(InvalidDpopProofError);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('createDPoPVerifier options', () => {
  const replayCache = new MemoryDPoPReplayCache();

  it.each([
    ['no replay cache', { replayCache: undefined }, /replayCache is required/],
    ['an empty algorithm list', { replayCache, algorithms: [] }, /algorithms/],
    [
      'HS256 among the algorithms',
      { replayCache, algorithms: ['ES256', 'HS256'] },
      /never none or HS/,
    ],
    ['none among the algorithms', { replayCache, algorithms: ['none'] }, /algorithms/],
    ['an iat window under a second', { replayCache, iatWindow: 500 }, /iatWindow must be between/],
    ['an iat window that is no duration', { replayCache, iatWindow: 'soon' }, /iatWindow/],
    ['a short nonce secret', { replayCache, nonce: { secret: 'short' } }, /at least 32 bytes/],
    ['a nonce without a secret', { replayCache, nonce: {} }, /nonce.secret/],
    [
      'a nonce step under a second',
      { replayCache, nonce: { secret: NONCE_SECRET, step: 10 } },
      /step/,
    ],
  ])('refuses %s with an OptionsError that says what to do', (_label, options, message) => {
    expect(() => createDPoPVerifier(options as never)).toThrow(OptionsError);
    expect(() => createDPoPVerifier(options as never)).toThrow(message);
  });

  it('keeps the configured algorithms, in the standard order', () => {
    const verifier = createDPoPVerifier({ replayCache, algorithms: ['PS256', 'ES256'] });
    expect(verifier.algorithms).toEqual(['ES256', 'PS256']);
  });

  it('refuses the proof with StoreUnavailableError when the replay cache fails', async () => {
    const failing: DPoPReplayCache = { claim: () => Promise.reject(new Error('down')) };
    const { check, seconds } = setup({ replayCache: failing });
    await expect(check(await makeProof(es256, URL, { now: seconds() }))).rejects.toBeInstanceOf(
      StoreUnavailableError,
    );
  });
});
