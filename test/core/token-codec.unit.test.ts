import { createHash, createHmac, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { MalformedTokenError, OptionsError } from '../../src/domain/errors';
import {
  hashToken,
  keyIdOf,
  MAX_GENERATION,
  TokenCodec,
  type MintedToken,
} from '../../src/domain/token-codec';
import { aSecret, randomHex, tamperToken } from '../support/builders';

const secret = aSecret();
const codec = new TokenCodec([secret]);

const hex = (bytes: number) =>
  fc
    .uint8Array({ minLength: bytes, maxLength: bytes })
    .map((array) => Buffer.from(array).toString('hex'));
const subjects = fc.record({
  sessionId: hex(16),
  generation: fc.integer({ min: 0, max: MAX_GENERATION }),
  nonce: fc.uint8Array({ minLength: 32, maxLength: 32 }).map((array) => Buffer.from(array)),
});

/** Accepted = the codec parses it and its tag verifies (all that is checked before any I/O). */
function isAccepted(token: string, tokens: TokenCodec = codec): boolean {
  try {
    return tokens.hasValidTag(tokens.parse(token));
  } catch (error) {
    if (error instanceof MalformedTokenError) return false;
    throw error;
  }
}

/** The record fields a minted token leaves behind, as the grace path reads them. */
function stored(sessionId: string, generation: number, minted: MintedToken) {
  return { sessionId, generation, keyId: minted.keyId, sealed: minted.sealed };
}

/** How many byte positions of two decoded token bodies differ. */
function bytesDiffering(a: string, b: string): number {
  const x = Buffer.from(a.slice(3), 'base64url');
  const y = Buffer.from(b.slice(3), 'base64url');
  return x.reduce((count, byte, index) => count + (byte === y[index] ? 0 : 1), 0);
}

describe('TokenCodec, format 3', () => {
  it('mints rt_ followed by 94 base64url characters', () => {
    expect(codec.mint(randomHex(16), 3).token).toMatch(/^rt_[A-Za-z0-9_-]{94}$/);
  });

  it('mint → parse round-trips format, key id, session id and generation, and the tag verifies', () => {
    fc.assert(
      fc.property(hex(16), fc.integer({ min: 0, max: MAX_GENERATION }), (sessionId, generation) => {
        const minted = codec.mint(sessionId, generation);
        const parsed = codec.parse(minted.token);
        expect(parsed).toMatchObject({
          format: 3,
          keyId: codec.currentKeyId,
          sessionId,
          generation,
        });
        expect(codec.hasValidTag(parsed)).toBe(true);
        expect(minted).toMatchObject({
          keyId: codec.currentKeyId,
          tokenHash: hashToken(minted.token),
        });
      }),
    );
  });

  it('draws a fresh nonce on every mint: the same session and generation never give the same token twice', () => {
    const sessionId = randomHex(16);
    const tokens = new Set(Array.from({ length: 200 }, () => codec.mint(sessionId, 7).token));
    expect(tokens.size).toBe(200);
  });

  it('consecutive tokens of a session differ in at least 32 byte positions', () => {
    const sessionId = randomHex(16);
    let previous = codec.mint(sessionId, 0).token;
    for (let generation = 1; generation <= 500; generation += 1) {
      const next = codec.mint(sessionId, generation).token;
      expect(bytesDiffering(previous, next)).toBeGreaterThanOrEqual(32);
      previous = next;
    }
  });

  it('encode is deterministic in (session, generation, nonce, key) and differs when any of them changes', () => {
    fc.assert(
      fc.property(subjects, (subject) => {
        const token = codec.encode(subject);
        expect(codec.encode({ ...subject, nonce: Buffer.from(subject.nonce) })).toBe(token);
        const otherNonce = Buffer.from(subject.nonce);
        otherNonce[0] = (otherNonce[0] as number) ^ 1;
        expect(codec.encode({ ...subject, nonce: otherNonce })).not.toBe(token);
        const nextGeneration = (subject.generation + 1) % (MAX_GENERATION + 1);
        expect(codec.encode({ ...subject, generation: nextGeneration })).not.toBe(token);
      }),
    );
  });

  it('rejects any single-bit change of a valid token', () => {
    fc.assert(
      fc.property(subjects, fc.nat(), fc.integer({ min: 0, max: 15 }), (subject, position, bit) => {
        const token = codec.encode(subject);
        const index = position % token.length;
        const flipped = String.fromCharCode(token.charCodeAt(index) ^ (1 << bit));
        const changed = token.slice(0, index) + flipped + token.slice(index + 1);
        expect(isAccepted(changed)).toBe(false);
      }),
      { numRuns: 1000 },
    );
  });

  it('rejects any single-bit change of the decoded body, re-encoded canonically', () => {
    fc.assert(
      fc.property(subjects, fc.integer({ min: 0, max: 70 * 8 - 1 }), (subject, bit) => {
        const changed = tamperToken(codec.encode(subject), (body) => {
          body[bit >> 3] = (body[bit >> 3] as number) ^ (1 << (bit & 7));
        });
        expect(isAccepted(changed)).toBe(false);
      }),
      { numRuns: 1000 },
    );
  });

  it('rejects any truncation or extension of a valid token', () => {
    fc.assert(
      fc.property(subjects, fc.nat(), fc.string({ minLength: 1 }), (subject, cut, suffix) => {
        const token = codec.encode(subject);
        expect(isAccepted(token.slice(0, cut % token.length))).toBe(false);
        expect(isAccepted(token + suffix)).toBe(false);
        expect(isAccepted(suffix + token)).toBe(false);
      }),
    );
  });

  it('throws nothing but MalformedTokenError for random input, and random bodies never carry a valid tag', () => {
    const base64url = fc.string({
      unit: fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_='),
      minLength: 84,
      maxLength: 104,
    });
    const inputs = fc.oneof(
      fc.anything(),
      fc.string(),
      fc.string({ unit: 'grapheme' }),
      base64url.map((body) => `rt_${body}`),
      fc
        .uint8Array({ minLength: 70, maxLength: 70 })
        .map((bytes) => `rt_${Buffer.from(bytes).toString('base64url')}`),
    );
    fc.assert(
      fc.property(inputs, (input) => {
        let parsed: ReturnType<TokenCodec['parse']> | undefined;
        try {
          parsed = codec.parse(input);
        } catch (error) {
          expect(error).toBeInstanceOf(MalformedTokenError);
          return;
        }
        expect(codec.hasValidTag(parsed)).toBe(false);
      }),
      { numRuns: 3000 },
    );
  });

  it('rejects a non-canonical encoding of a valid body', () => {
    const { token } = codec.mint(randomHex(16), 1);
    expect(() => codec.parse(`${token}=`)).toThrow(MalformedTokenError);
    expect(() => codec.parse(token.replace(/^rt_/, 'RT_'))).toThrow(MalformedTokenError);
  });

  it('refuses formats 1 and 2 and an unknown key id as malformed', () => {
    const { token } = codec.mint(randomHex(16), 1);
    for (const format of [0, 1, 2, 4, 255]) {
      const other = tamperToken(token, (body) => {
        body[0] = format;
      });
      expect(() => codec.parse(other)).toThrow('unknown refresh token format');
    }
    const otherKey = tamperToken(token, (body) => {
      body[1] = (codec.currentKeyId + 1) % 256;
    });
    expect(() => codec.parse(otherKey)).toThrow('unknown key');
  });

  it('refuses a genuine format-2 token, minted the old way with our own secret, as malformed', () => {
    // Format 2: [2][key id][session id][generation][tag 16B][anchor 32B], anchor = SHA-256(label ‖ salt).
    const sessionId = randomHex(16);
    const anchor = createHash('sha256')
      .update('refresh-rotation/session-anchor/v2\0')
      .update(randomBytes(32))
      .digest();
    const counter = Buffer.alloc(4);
    counter.writeUInt32BE(3);
    const tag = createHmac('sha256', secret)
      .update('refresh-rotation/refresh-token-tag/v2\0')
      .update(Buffer.from(sessionId, 'hex'))
      .update(counter)
      .update(anchor)
      .digest()
      .subarray(0, 16);
    const body = Buffer.concat([
      Buffer.from([2, codec.currentKeyId]),
      Buffer.from(sessionId, 'hex'),
      counter,
      tag,
      anchor,
    ]);
    const format2 = `rt_${body.toString('base64url')}`;
    expect(format2).toMatch(/^rt_[A-Za-z0-9_-]{94}$/);
    expect(() => codec.parse(format2)).toThrow(MalformedTokenError);
    expect(isAccepted(format2)).toBe(false);
  });

  describe('the tag', () => {
    it('needs no record: any change of session, generation, nonce or tag fails it', () => {
      fc.assert(
        fc.property(subjects, fc.integer({ min: 2 * 8, max: 70 * 8 - 1 }), (subject, bit) => {
          const token = codec.encode(subject);
          expect(codec.hasValidTag(codec.parse(token))).toBe(true);
          const changed = tamperToken(token, (body) => {
            body[bit >> 3] = (body[bit >> 3] as number) ^ (1 << (bit & 7));
          });
          expect(codec.hasValidTag(codec.parse(changed))).toBe(false);
        }),
        { numRuns: 500 },
      );
    });

    it('is made with the secret: another secret of the same key id tags no token of ours', () => {
      const other = new TokenCodec([aSecret(secret)]);
      const { token } = other.mint(randomHex(16), 0);
      const relabelled = tamperToken(token, (body) => {
        body[1] = codec.currentKeyId;
      });
      expect(isAccepted(relabelled)).toBe(false);
    });
  });

  describe('the seal', () => {
    it('unsealCurrent rebuilds exactly the minted token from what the record stores', () => {
      fc.assert(
        fc.property(
          hex(16),
          fc.integer({ min: 0, max: MAX_GENERATION }),
          (sessionId, generation) => {
            const minted = codec.mint(sessionId, generation);
            expect(codec.unsealCurrent(stored(sessionId, generation, minted))).toBe(minted.token);
          },
        ),
        { numRuns: 200 },
      );
    });

    it('stores neither the token nor its nonce: the sealed value shares no 8-byte run with the token body', () => {
      for (let round = 0; round < 100; round += 1) {
        const minted = codec.mint(randomHex(16), round);
        const body = Buffer.from(minted.token.slice(3), 'base64url');
        const sealed = Buffer.from(minted.sealed, 'base64url');
        for (let start = 0; start + 8 <= body.length; start += 1) {
          expect(sealed.includes(body.subarray(start, start + 8))).toBe(false);
        }
        expect(minted.sealed).not.toContain(minted.token.slice(3, 20));
      }
    });

    it('does not open for another session, generation or key id, nor after any changed byte', () => {
      const sessionId = randomHex(16);
      const minted = codec.mint(sessionId, 4);
      const record = stored(sessionId, 4, minted);
      expect(codec.unsealCurrent({ ...record, sessionId: randomHex(16) })).toBeNull();
      expect(codec.unsealCurrent({ ...record, generation: 5 })).toBeNull();
      const sealed = Buffer.from(minted.sealed, 'base64url');
      for (let index = 0; index < sealed.length; index += 1) {
        const changed = Buffer.from(sealed);
        changed[index] = (changed[index] as number) ^ 0x01;
        expect(
          codec.unsealCurrent({ ...record, sealed: changed.toString('base64url') }),
        ).toBeNull();
      }
      expect(codec.unsealCurrent({ ...record, sealed: 'not-base64url!' })).toBeNull();
      expect(codec.unsealCurrent({ ...record, sealed: '' })).toBeNull();
      const twoKeys = new TokenCodec([secret, aSecret(secret)]);
      const otherKeyId = [...Array(256).keys()].find(
        (id) => id !== codec.currentKeyId && twoKeys.hasKey(id),
      )!;
      expect(twoKeys.unsealCurrent({ ...record, keyId: otherKeyId })).toBeNull();
    });

    it('does not open under another secret, and not at all once its secret is removed', () => {
      const sessionId = randomHex(16);
      const minted = codec.mint(sessionId, 0);
      const other = new TokenCodec([aSecret(secret)]);
      expect(other.unsealCurrent(stored(sessionId, 0, minted))).toBeNull();
    });
  });

  describe('several secrets', () => {
    const older = aSecret();
    const newer = aSecret(older);
    const sessionId = randomHex(16);

    it('the first secret mints; tokens and seals of every listed secret verify and open, whatever the order', () => {
      const minted = new TokenCodec([older]).mint(sessionId, 5);
      const rotated = new TokenCodec([newer, older]);
      expect(rotated.currentKeyId).toBe(keyIdOf(Buffer.from(newer)));
      expect(isAccepted(minted.token, rotated)).toBe(true);
      expect(rotated.unsealCurrent(stored(sessionId, 5, minted))).toBe(minted.token);
      const reordered = new TokenCodec([older, newer]);
      expect(isAccepted(minted.token, reordered)).toBe(true);
      expect(reordered.unsealCurrent(stored(sessionId, 5, minted))).toBe(minted.token);
      expect(rotated.mint(sessionId, 5).keyId).toBe(rotated.currentKeyId);
    });

    it('a token of a retired secret no longer parses, and its seal no longer opens', () => {
      const minted = new TokenCodec([older]).mint(sessionId, 5);
      const retired = new TokenCodec([newer]);
      expect(() => retired.parse(minted.token)).toThrow(MalformedTokenError);
      expect(retired.unsealCurrent(stored(sessionId, 5, minted))).toBeNull();
    });

    it('a token relabelled with another configured key id does not verify', () => {
      const both = new TokenCodec([newer, older]);
      const relabelled = tamperToken(new TokenCodec([older]).mint(sessionId, 5).token, (body) => {
        body[1] = both.currentKeyId;
      });
      expect(isAccepted(relabelled, both)).toBe(false);
    });
  });

  describe('construction', () => {
    it('rejects an empty secret list', () => {
      expect(() => new TokenCodec([])).toThrow(OptionsError);
      expect(() => new TokenCodec([])).toThrow(
        'refreshToken.secrets must contain at least one 32-byte secret; got 0',
      );
    });

    it('rejects a secret shorter than 32 bytes, naming its position', () => {
      expect(() => new TokenCodec([aSecret(), 'x'.repeat(31)])).toThrow(
        /refreshToken\.secrets\[1\] must be at least 32 bytes; got 31/,
      );
      expect(() => new TokenCodec([Buffer.alloc(32, 1)])).not.toThrow();
    });

    it('rejects a repeated secret', () => {
      expect(() => new TokenCodec([secret, secret])).toThrow(/repeats an earlier secret/);
    });

    it('rejects two secrets that derive the same key id', () => {
      const seen = new Map<number, string>();
      let pair: [string, string] | undefined;
      while (!pair) {
        const candidate = aSecret();
        const id = keyIdOf(Buffer.from(candidate));
        const earlier = seen.get(id);
        if (earlier) pair = [earlier, candidate];
        seen.set(id, candidate);
      }
      expect(() => new TokenCodec(pair)).toThrow(/derives the same key id/);
    });
  });

  it('encode and mint refuse a generation past the largest, an invalid session id or nonce', () => {
    expect(() => codec.mint(randomHex(16), MAX_GENERATION + 1)).toThrow(RangeError);
    expect(() => codec.mint('not-hex', 0)).toThrow(RangeError);
    expect(() =>
      codec.encode({ sessionId: randomHex(16), generation: 0, nonce: randomBytes(31) }),
    ).toThrow(RangeError);
  });

  it('hashToken is the hex SHA-256 of the token string', () => {
    const { token } = codec.mint(randomHex(16), 0);
    expect(hashToken(token)).toBe(createHash('sha256').update(token).digest('hex'));
    expect(hashToken(token)).toMatch(/^[0-9a-f]{64}$/);
  });
});
