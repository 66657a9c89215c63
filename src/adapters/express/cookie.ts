import type { CookieOptions, Request, Response } from 'express';
import { InvalidRequestError, OptionsError } from '../../domain/errors';
import type { DbscOptions } from './dbsc';

/** Options of the refresh-cookie transport for browser apps. */
export interface CookieTransportOptions {
  /**
   * Cookie name. Default `__Secure-refresh_token` (`refresh_token` when `secure` is false, since
   * browsers refuse a `__Secure-` cookie without `Secure`). Not `__Host-`: that prefix forces
   * `Path=/`, and this cookie is scoped to the router.
   */
  name?: string | undefined;
  /** `Secure` attribute. Default true; turn it off only for plain-http development. */
  secure?: boolean | undefined;
  /**
   * `Path` attribute. Default: the router's mount path (`req.baseUrl`, e.g. `/auth`). Set it when
   * you call `issue()` from a route that is not under that mount path.
   */
  path?: string | undefined;
  /** `Domain` attribute. Default none (host-only cookie), which is what you want. */
  domain?: string | undefined;
  /**
   * Header a cookie refresh must carry (any non-empty value). A cross-site page cannot send a
   * custom header without a CORS preflight, so this blocks CSRF. Default `X-Refresh-CSRF`.
   */
  csrfHeader?: string | undefined;
  /**
   * Header by which a browser asks for the cookie transport (value `cookie`) at login and refresh,
   * so one deployment serves body clients and cookie clients. Default `X-Token-Transport`.
   */
  transportHeader?: string | undefined;
  /**
   * Origins other than the API's own allowed to refresh with the cookie (e.g. an SPA on another
   * subdomain, `https://app.example.com`). Default none.
   */
  allowedOrigins?: readonly string[] | undefined;
  /** Set on a developer machine to silence the start-up warning about `secure: false`. */
  development?: boolean | undefined;
  /**
   * Device Bound Session Credentials (Chrome's DBSC): a cookie login offers the browser to bind
   * the session to a key it keeps (in the TPM), and the bound refresh cookie then lives
   * `boundTtl`, extended only by a proof with that key (docs/express.md, "Device-bound
   * sessions"). Needs HTTPS and `secure`. Default off.
   */
  dbsc?: DbscOptions | undefined;
}

/** The cookie transport, resolved once. */
export interface CookieTransport {
  readonly name: string;
  readonly csrfHeader: string;
  /** Whether the request asked for the cookie transport. */
  wanted(req: Request): boolean;
  /**
   * The refresh token from the cookie, or undefined. Throws `InvalidRequestError` when the request
   * carries more than one cookie of this name (cookie tossing: never pick one).
   */
  read(req: Request): string | undefined;
  /** Throws `InvalidRequestError` unless the request passes the CSRF checks (header, origin). */
  assertSameOrigin(req: Request): void;
  /**
   * Throws `OptionsError` when no cookie path is known for this request (`issue()` outside the
   * router's mount path without `cookie.path`): checked before a session is created.
   */
  assertCanSet(req: Request): void;
  /** Sets the cookie to `token` for `lifetime.refreshExpiresIn` seconds (`Max-Age`). */
  set(req: Request, res: Response, token: string, lifetime: { refreshExpiresIn: number }): void;
  /** The cookie's `Path` for this request (throws `OptionsError` like `assertCanSet`). */
  pathFor(req: Request): string;
  /** The cookie's attributes as DBSC's `credentials` list names them (no expiry). */
  attributeText(req: Request): string;
  clear(req: Request, res: Response): void;
}

const COOKIE_NAME_PATTERN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const HEADER_NAME_PATTERN = COOKIE_NAME_PATTERN;

function headerName(value: string | undefined, fallback: string, option: string): string {
  const name = value ?? fallback;
  if (!HEADER_NAME_PATTERN.test(name)) {
    throw new OptionsError(
      `cookie.${option} must be an HTTP header name; got ${JSON.stringify(name)}`,
    );
  }
  return name.toLowerCase();
}

function cookieName(options: CookieTransportOptions, secure: boolean): string {
  const name = options.name ?? (secure ? '__Secure-refresh_token' : 'refresh_token');
  if (!COOKIE_NAME_PATTERN.test(name)) {
    throw new OptionsError(`cookie.name must be a valid cookie name; got ${JSON.stringify(name)}`);
  }
  if (/^__(Secure|Host)-/i.test(name) && !secure) {
    throw new OptionsError(
      `cookie.name ${JSON.stringify(name)} has a __Secure-/__Host- prefix, which browsers accept only ` +
        'with Secure: set cookie.secure to true or choose a name without the prefix',
    );
  }
  if (/^__Host-/i.test(name)) {
    throw new OptionsError(
      'cookie.name must not use the __Host- prefix: it requires Path=/, and the refresh cookie is ' +
        'scoped to the router path; use the __Secure- prefix',
    );
  }
  return name;
}

function cookiePath(options: CookieTransportOptions): string | undefined {
  if (options.path === undefined) return undefined;
  if (!options.path.startsWith('/') || /[;\s]/.test(options.path)) {
    throw new OptionsError(
      `cookie.path must start with "/" and contain no ";" or spaces; got ${JSON.stringify(options.path)}`,
    );
  }
  return options.path;
}

function normaliseOrigin(origin: string): string {
  try {
    return new URL(origin).origin;
  } catch {
    throw new OptionsError(
      `cookie.allowedOrigins must hold origins like https://app.example.com; got ${JSON.stringify(origin)}`,
    );
  }
}

/** Minimal `Cookie` header parsing: every cookie named `name`, in order, percent-decoded. */
export function readCookies(header: string | undefined, name: string): string[] {
  if (!header) return [];
  const values: string[] = [];
  for (const pair of header.split(';')) {
    const index = pair.indexOf('=');
    if (index < 0 || pair.slice(0, index).trim() !== name) continue;
    let value = pair.slice(index + 1).trim();
    if (value.startsWith('"') && value.endsWith('"') && value.length >= 2)
      value = value.slice(1, -1);
    try {
      values.push(decodeURIComponent(value));
    } catch {
      values.push(value);
    }
  }
  return values;
}

/** The first cookie named `name`, percent-decoded, or undefined. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  return readCookies(header, name)[0];
}

function hostOf(origin: string): string | null {
  try {
    return new URL(origin).host;
  } catch {
    return null;
  }
}

/**
 * Resolve the cookie options once. Warns (through `warn`) when `Secure` is off outside
 * development: the refresh token would then travel over plain HTTP.
 */
export function createCookieTransport(
  options: CookieTransportOptions,
  warn: (message: string) => void,
): CookieTransport {
  const secure = options.secure ?? true;
  const name = cookieName(options, secure);
  const fixedPath = cookiePath(options);
  const csrfHeader = headerName(options.csrfHeader, 'X-Refresh-CSRF', 'csrfHeader');
  const transportHeader = headerName(
    options.transportHeader,
    'X-Token-Transport',
    'transportHeader',
  );
  const allowedOrigins = new Set((options.allowedOrigins ?? []).map(normaliseOrigin));
  if (!secure && !options.development) {
    warn(
      'refresh-rotation: the refresh cookie is sent without Secure, so the refresh token can travel ' +
        'over plain HTTP. Set cookie.secure to true (or cookie.development to true on a developer machine).',
    );
  }

  function attributes(req: Request): CookieOptions {
    const path = fixedPath ?? req.baseUrl;
    if (!path) {
      throw new OptionsError(
        'cookie.path is required when issue() runs outside the router mount path: set cookie.path ' +
          'to the path the router is mounted at (e.g. "/auth")',
      );
    }
    return {
      httpOnly: true,
      secure,
      sameSite: 'strict',
      path,
      domain: options.domain,
    };
  }

  function originAllowed(req: Request, origin: string): boolean {
    if (allowedOrigins.has(normaliseOrigin(origin))) return true;
    // Compare hosts, not schemes: behind a TLS-terminating proxy req.protocol may read "http".
    return hostOf(origin) !== null && hostOf(origin) === req.get('host');
  }

  return {
    name,
    csrfHeader,
    wanted: (req) => req.get(transportHeader)?.trim().toLowerCase() === 'cookie',
    read(req) {
      const values = readCookies(req.get('cookie'), name);
      // Why: a sibling subdomain (or a page on a longer path) can plant a second cookie of this
      // name, and the browser sends both in an order the attacker can influence. Taking either one
      // could run the victim's browser on the attacker's session, so refuse the request.
      if (values.length > 1) {
        throw new InvalidRequestError(
          `The request carries ${values.length} ${name} cookies; exactly one is accepted. ` +
            'Remove the cookie set by another site or path.',
        );
      }
      return values[0] || undefined;
    },
    assertSameOrigin(req) {
      // Why: SameSite=Strict already keeps the cookie off cross-site requests in current browsers;
      // the custom header and the Origin / Sec-Fetch-Site checks cover older browsers and
      // same-site (sibling subdomain) attackers.
      if (!req.get(csrfHeader)?.trim()) {
        throw new InvalidRequestError(
          `A request that uses the refresh cookie must send the ${options.csrfHeader ?? 'X-Refresh-CSRF'} header.`,
        );
      }
      const origin = req.get('origin');
      const site = req.get('sec-fetch-site')?.toLowerCase();
      let allowedOrigin: boolean;
      try {
        allowedOrigin = origin !== undefined && origin !== 'null' && originAllowed(req, origin);
      } catch {
        allowedOrigin = false;
      }
      if (origin !== undefined && !allowedOrigin) {
        throw new InvalidRequestError('Cross-origin cookie requests are refused.');
      }
      if (site !== undefined && site !== 'same-origin' && site !== 'none' && !allowedOrigin) {
        throw new InvalidRequestError('Cross-site cookie requests are refused.');
      }
    },
    assertCanSet(req) {
      attributes(req);
    },
    pathFor(req) {
      return attributes(req).path!;
    },
    attributeText(req) {
      const { path, domain } = attributes(req);
      return [
        `Path=${path}`,
        ...(domain ? [`Domain=${domain}`] : []),
        ...(secure ? ['Secure'] : []),
        'HttpOnly',
        'SameSite=Strict',
      ].join('; ');
    },
    set(req, res, token, { refreshExpiresIn }) {
      // Express sends Max-Age and, from it, Expires; browsers go by Max-Age.
      res.cookie(name, token, { ...attributes(req), maxAge: refreshExpiresIn * 1000 });
    },
    clear(req, res) {
      // Same attributes as when set, or the browser keeps the cookie. No maxAge/expires here:
      // Express 4 would let them override the clearing date.
      res.clearCookie(name, attributes(req));
    },
  };
}
