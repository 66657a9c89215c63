/** The fixed secrets every test service signs with (HS256 access tokens, refresh-token HMAC). */
export const ACCESS_SECRET = 'test-access-secret-0123456789abcdef0123456789';
export const REFRESH_SECRET = 'test-refresh-secret-0123456789abcdef012345678';
