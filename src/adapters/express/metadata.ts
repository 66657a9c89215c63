/**
 * Authorization-server metadata per RFC 8414, so an OAuth client library finds the token and
 * revocation endpoints from the issuer alone (discovery) instead of from custom configuration.
 */
import type { RequestHandler } from 'express';
import { OptionsError } from '../../domain/errors';
import { DPOP_ALGORITHMS, type DPoPAlgorithm } from './dpop';

/** Options of {@link authorizationServerMetadata}. */
export interface AuthorizationServerMetadataOptions {
  /**
   * The issuer identifier (RFC 8414 §2): an `https` URL without query or fragment, e.g.
   * `https://api.example.com` or `https://example.com/tenant`. `http` is accepted for `localhost`,
   * `127.0.0.1` and `[::1]` only (development). Required.
   */
  issuer: string;
  /** The token router's `POST /token`: an absolute URL, or a path on the issuer's origin (`/auth/token`). Required. */
  tokenEndpoint: string;
  /** The token router's `POST /revoke`: an absolute URL, or a path on the issuer's origin. Required. */
  revocationEndpoint: string;
  /**
   * The DPoP proof algorithms the token endpoint accepts, published as
   * `dpop_signing_alg_values_supported` (RFC 9449 §5.1) so a client knows DPoP is on and which
   * key to make. Pass the router's `router.dpopAlgorithms`. Default none (the field is absent).
   */
  dpopSigningAlgorithms?: readonly DPoPAlgorithm[] | undefined;
  /** Further metadata fields to publish (e.g. `service_documentation`); cannot replace the ones above. */
  extra?: Readonly<Record<string, unknown>> | undefined;
}

/** The metadata document this library publishes. */
export interface AuthorizationServerMetadataDocument {
  issuer: string;
  token_endpoint: string;
  revocation_endpoint: string;
  response_types_supported: [];
  grant_types_supported: ['refresh_token'];
  token_endpoint_auth_methods_supported: ['none'];
  revocation_endpoint_auth_methods_supported: ['none'];
  /** With DPoP on: the proof algorithms the token endpoint accepts. */
  dpop_signing_alg_values_supported?: DPoPAlgorithm[];
  [field: string]: unknown;
}

/** What {@link authorizationServerMetadata} returns: where to mount it, what it says, the handler. */
export interface AuthorizationServerMetadata {
  /**
   * The path to mount `handler` on, at the host's root (RFC 8414 §3):
   * `/.well-known/oauth-authorization-server` followed by the issuer's path, if any.
   */
  path: string;
  document: Readonly<AuthorizationServerMetadataDocument>;
  /** Answers `GET` with the document as JSON. */
  handler: RequestHandler;
}

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

function parseIssuer(issuer: unknown): URL {
  let url: URL;
  try {
    url = new URL(String(issuer));
  } catch {
    throw new OptionsError(`issuer must be an absolute https URL; got ${JSON.stringify(issuer)}`);
  }
  const secure =
    url.protocol === 'https:' || (url.protocol === 'http:' && LOOPBACK.has(url.hostname));
  if (!secure || url.search !== '' || url.hash !== '' || String(issuer).includes('#')) {
    throw new OptionsError(
      `issuer must be an https URL without query or fragment (http only for localhost); got ${JSON.stringify(issuer)}`,
    );
  }
  return url;
}

function endpoint(value: unknown, name: string, issuer: URL): string {
  if (typeof value !== 'string' || value === '')
    throw new OptionsError(`${name} must be an absolute URL or a path such as '/auth/token'`);
  if (value.startsWith('/') && !value.startsWith('//')) return new URL(value, issuer.origin).href;
  const url = (() => {
    try {
      return new URL(value);
    } catch {
      throw new OptionsError(
        `${name} must be an absolute URL or a path such as '/auth/token'; got ${JSON.stringify(value)}`,
      );
    }
  })();
  if (url.protocol !== issuer.protocol)
    throw new OptionsError(`${name} must use ${issuer.protocol} like the issuer; got ${value}`);
  return url.href;
}

function dpopAlgorithms(value: unknown): DPoPAlgorithm[] | undefined {
  if (value === undefined) return undefined;
  if (
    !Array.isArray(value) ||
    value.length === 0 ||
    !value.every((alg) => DPOP_ALGORITHMS.includes(alg as DPoPAlgorithm))
  ) {
    throw new OptionsError(
      `dpopSigningAlgorithms must be a non-empty list drawn from ${DPOP_ALGORITHMS.join(', ')} (the router's router.dpopAlgorithms); got ${JSON.stringify(value)}`,
    );
  }
  return [...(value as DPoPAlgorithm[])];
}

/**
 * Build the RFC 8414 metadata of the token router: issuer, `token_endpoint`, `revocation_endpoint`,
 * `grant_types_supported: ["refresh_token"]`, `"none"` as the only client authentication (public
 * clients: the refresh token is the credential) and an empty `response_types_supported` (there is
 * no authorization endpoint), and `dpop_signing_alg_values_supported` when DPoP is on. Mount the
 * handler at `path` on the app itself,
 * not under the router: RFC 8414 puts the document at the host's root. Throws `OptionsError` for
 * an issuer or endpoint that is not a valid URL.
 *
 * @example
 * const metadata = authorizationServerMetadata({
 *   issuer: 'https://api.example.com',
 *   tokenEndpoint: '/auth/token',
 *   revocationEndpoint: '/auth/revoke',
 * });
 * app.get(metadata.path, metadata.handler);
 */
export function authorizationServerMetadata(
  options: AuthorizationServerMetadataOptions,
): AuthorizationServerMetadata {
  const url = parseIssuer(options?.issuer);
  const issuer = options.issuer;
  const fields: AuthorizationServerMetadataDocument = {
    ...options.extra,
    issuer,
    token_endpoint: endpoint(options.tokenEndpoint, 'tokenEndpoint', url),
    revocation_endpoint: endpoint(options.revocationEndpoint, 'revocationEndpoint', url),
    // REQUIRED by RFC 8414 §2; empty: no authorization endpoint, so no response types.
    response_types_supported: [],
    grant_types_supported: ['refresh_token'],
    token_endpoint_auth_methods_supported: ['none'],
    revocation_endpoint_auth_methods_supported: ['none'],
  };
  const dpop = dpopAlgorithms(options.dpopSigningAlgorithms);
  if (dpop) fields.dpop_signing_alg_values_supported = dpop;
  const document = Object.freeze(fields);
  const issuerPath = url.pathname === '/' ? '' : url.pathname.replace(/\/$/, '');
  const body = JSON.stringify(document);
  return {
    path: `/.well-known/oauth-authorization-server${issuerPath}`,
    document,
    handler: function authorizationServerMetadataHandler(_req, res) {
      // A public, static document: any origin may read it, caches may keep it a while.
      res.setHeader('Access-Control-Allow-Origin', '*');
      res.setHeader('Cache-Control', 'public, max-age=3600');
      res.type('application/json').send(body);
    },
  };
}
