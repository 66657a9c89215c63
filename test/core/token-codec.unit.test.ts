import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { MalformedTokenError, OptionsError } from '../../src/domain/errors';
import { hashToken, keyIdOf, MAX_GENERATION, TokenCodec } from '../../src/domain/token-codec';
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
  salt: hex(32),
});

/** Rejected = the codec refuses to parse it, or its tag or anchor does not verify for the session's salt. */
function isAccepted(token: string, salt: string): boolean {
  try {
    return codec.verify(codec.parse(token), salt);
  } catch (error) {
    if (error instanceof MalformedTokenError) return false;
    throw error;
  }
}

describe('TokenCodec', () => {
  it('encodes rt_ followed by 94 base64url characters', () => {
    const token = codec.encode({ sessionId: randomHex(16), generation: 3, salt: randomHex(32) });
    expect(token).toMatch(/^rt_[A-Za-z0-9_-]{94}$/);
  });

  it('encode → parse round-trips session id, generation and key id, and tag and anchor verify', () => {
    fc.assert(
      fc.property(subjects, (subject) => {
        const parsed = codec.parse(codec.encode(subject));
        expect(parsed).toMatchObject({
          format: 2,
          keyId: codec.currentKeyId,
          sessionId: subject.sessionId,
          generation: subject.generation,
        });
        expect(codec.verify(parsed, subject.salt)).toBe(true);
      }),
    );
  });

  it('is deterministic for a (session, generation, salt, key) and differs when any of them changes', () => {
    fc.assert(
      fc.property(subjects, hex(32), (subject, otherSalt) => {
        const token = codec.encode(subject);
        expect(codec.encode({ ...subject })).toBe(token);
        fc.pre(otherSalt !== subject.salt);
        expect(codec.encode({ ...subject, salt: otherSalt })).not.toBe(token);
        expect(isAccepted(token, otherSalt)).toBe(false);
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
        expect(isAccepted(changed, subject.salt)).toBe(false);
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
        expect(isAccepted(changed, subject.salt)).toBe(false);
      }),
      { numRuns: 1000 },
    );
  });

  it('rejects any truncation or extension of a valid token', () => {
    fc.assert(
      fc.property(subjects, fc.nat(), fc.string({ minLength: 1 }), (subject, cut, suffix) => {
        const token = codec.encode(subject);
        expect(isAccepted(token.slice(0, cut % token.length), subject.salt)).toBe(false);
        expect(isAccepted(token + suffix, subject.salt)).toBe(false);
        expect(isAccepted(suffix + token, subject.salt)).toBe(false);
      }),
    );
  });

  it('throws nothing but MalformedTokenError for random input', () => {
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
        expect(codec.verify(parsed, randomHex(32))).toBe(false);
      }),
      { numRuns: 3000 },
    );
  });

  it('rejects a non-canonical encoding of a valid body', () => {
    const token = codec.encode({ sessionId: randomHex(16), generation: 1, salt: randomHex(32) });
    expect(() => codec.parse(`${token}=`)).toThrow(MalformedTokenError);
    expect(() => codec.parse(token.replace(/^rt_/, 'RT_'))).toThrow(MalformedTokenError);
  });

  it('rejects an unknown format byte and an unknown key id', () => {
    const token = codec.encode({ sessionId: randomHex(16), generation: 1, salt: randomHex(32) });
    const format1 = tamperToken(token, (body) => {
      body[0] = 1;
    });
    const otherKey = tamperToken(token, (body) => {
      body[1] = (codec.currentKeyId + 1) % 256;
    });
    expect(() => codec.parse(format1)).toThrow('unknown refresh token format');
    expect(() => codec.parse(otherKey)).toThrow('unknown key');
  });

  describe('tag and anchor', () => {
    it('encodeNext computes, from a presented token alone, the token encode gives for the next generation', () => {
      fc.assert(
        fc.property(subjects, (subject) => {
          fc.pre(subject.generation < MAX_GENERATION);
          const next = codec.encodeNext(codec.parse(codec.encode(subject)));
          expect(next).toBe(codec.encode({ ...subject, generation: subject.generation + 1 }));
        }),
      );
    });

    it('the tag needs no salt: any change of session, generation, tag or anchor fails it', () => {
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

    it("a valid tag over another session's anchor does not verify against this session's salt", () => {
      const subject = { sessionId: randomHex(16), generation: 2, salt: randomHex(32) };
      const otherSalt = randomHex(32);
      const foreign = codec.parse(codec.encode({ ...subject, salt: otherSalt }));
      expect(codec.hasValidTag(foreign)).toBe(true);
      expect(codec.verify(foreign, subject.salt)).toBe(false);
      expect(codec.verify(foreign, otherSalt)).toBe(true);
    });

    it('encodeNext refuses to go past the largest generation', () => {
      const last = codec.parse(
        codec.encode({ sessionId: randomHex(16), generation: MAX_GENERATION, salt: randomHex(32) }),
      );
      expect(() => codec.encodeNext(last)).toThrow(RangeError);
    });
  });

  describe('several secrets', () => {
    const older = aSecret();
    const newer = aSecret(older);
    const subject = { sessionId: randomHex(16), generation: 5, salt: randomHex(32) };

    it('the first secret signs; tokens of every listed secret verify, whatever the order', () => {
      const oldToken = new TokenCodec([older]).encode(subject);
      const rotated = new TokenCodec([newer, older]);
      expect(rotated.currentKeyId).toBe(keyIdOf(Buffer.from(newer)));
      expect(rotated.verify(rotated.parse(oldToken), subject.salt)).toBe(true);
      const reordered = new TokenCodec([older, newer]);
      expect(reordered.verify(reordered.parse(oldToken), subject.salt)).toBe(true);
      expect(rotated.encode(subject)).not.toBe(oldToken);
      expect(rotated.encode(subject, keyIdOf(Buffer.from(older)))).toBe(oldToken);
    });

    it('a token of a retired secret no longer parses', () => {
      const oldToken = new TokenCodec([older]).encode(subject);
      expect(() => new TokenCodec([newer]).parse(oldToken)).toThrow(MalformedTokenError);
    });

    it('a token relabelled with another configured key id does not verify', () => {
      const both = new TokenCodec([newer, older]);
      const relabelled = tamperToken(new TokenCodec([older]).encode(subject), (body) => {
        body[1] = both.currentKeyId;
      });
      expect(both.verify(both.parse(relabelled), subject.salt)).toBe(false);
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

  it('hashToken is the hex SHA-256 of the token string', () => {
    const token = codec.encode({ sessionId: randomHex(16), generation: 0, salt: randomHex(32) });
    expect(hashToken(token)).toBe(createHash('sha256').update(token).digest('hex'));
    expect(hashToken(token)).toMatch(/^[0-9a-f]{64}$/);
  });
});
