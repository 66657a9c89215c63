/**
 * Token revocation per RFC 7009 (`POST /revoke` on the token router), so an OAuth client library's
 * `tokenRevocation` logs a session out without custom code.
 */
import type { Request, Response } from 'express';
import {
  InvalidAccessTokenError,
  InvalidDpopProofError,
  InvalidRequestError,
} from '../../domain/errors';
import type { ProvenKey } from '../../domain/session-binding';
import { TOKEN_PREFIX } from '../../domain/token-codec';
import type { RotationService } from '../../rotation-service';

function formField(req: Request, name: string): string | undefined {
  const body: unknown = req.body;
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return undefined;
  if (!Object.prototype.hasOwnProperty.call(body, name)) return undefined;
  const value = (body as Record<string, unknown>)[name];
  if (typeof value !== 'string') throw new InvalidRequestError(`${name} must be a single string.`);
  return value;
}

/**
 * Revoke the session a token belongs to. A refresh token (any generation whose MAC verifies)
 * revokes its session; so does a valid access token, whose session then can neither refresh nor
 * pass `checkRevocation: { sessions: true }`. The token's own format says which it is, so
 * `token_type_hint` is accepted and not needed (RFC 7009 §2.1 lets the server search every type).
 * An unknown, forged, expired or already revoked token answers 200 all the same (§2.2): the answer
 * tells a caller nothing about the token. Only a missing `token` is a 400; a store outage a 503.
 * Never reads the refresh cookie, so a cross-site form cannot revoke a browser's session with it.
 *
 * A token of a session bound to a key (DPoP) revokes it only with a proof by that key
 * (`proofOf`, the request's verified `DPoP` header): 400 `invalid_dpop_proof` otherwise, nothing
 * changed, so a copied token cannot log its owner out.
 */
export function createRevocationHandler(
  service: RotationService,
  proofOf: (req: Request) => Promise<ProvenKey | undefined>,
) {
  return async function revokeToken(req: Request, res: Response): Promise<void> {
    const token = formField(req, 'token');
    formField(req, 'token_type_hint');
    if (token === undefined || token === '') throw new InvalidRequestError('token is required.');
    const proof = await proofOf(req);
    if (token.startsWith(TOKEN_PREFIX)) {
      await service.revokeByRefreshToken(token, 'token_revoked', proof);
      res.status(200).end();
      return;
    }
    let claims;
    try {
      claims = service.verifyAccessToken(token);
    } catch (error) {
      if (!(error instanceof InvalidAccessTokenError)) throw error;
    }
    if (claims) {
      const bound = claims.cnf?.jkt;
      if (bound !== undefined && proof?.jkt !== bound)
        throw new InvalidDpopProofError(
          proof === undefined
            ? 'this access token is bound to a key: send a DPoP proof signed with it'
            : 'the DPoP proof is signed with another key than the one this access token is bound to',
        );
      await service.revokeSession(claims.sid, { userId: claims.sub, reason: 'token_revoked' });
    }
    res.status(200).end();
  };
}
