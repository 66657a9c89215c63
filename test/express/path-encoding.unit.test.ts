/**
 * Issue 14, item 3, at the router: a path parameter that is not valid percent-encoding is the
 * client's malformed URL, so every method on `/auth/sessions/<bad>` answers 400 with a clear body
 * and nothing is logged. Over a real socket (a client library would re-encode the path). The
 * example app's fuzz of every route is test/demo/malformed-requests.unit.test.ts.
 */
import type { HttpClient } from '../support/http-client';
import { routerHarness, useRouter } from '../support/router-harness';

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;

describe('a path parameter that is not valid percent-encoding', () => {
  const backend = useRouter(() => routerHarness());
  let http: HttpClient;
  let accessToken: string;

  beforeAll(async () => {
    http = await backend.listen();
    accessToken = (await backend.tokens()).access_token;
  });

  it.each(['%', '%E0%A4%A', '%E0%A4', '%ZZ', 'abc%'])(
    'answers 400 invalid_request to every method on /auth/sessions/%s, with or without an access token, and logs nothing',
    async (id) => {
      const before = backend.logged.length;
      for (const method of METHODS) {
        for (const headers of [{}, { authorization: `Bearer ${accessToken}` }]) {
          const answer = await http.send({ method, path: `/auth/sessions/${id}`, headers });
          expect({ method, status: answer.status }).toEqual({ method, status: 400 });
          if (method !== 'HEAD') {
            expect(answer.body).toEqual({
              error: 'invalid_request',
              error_description: 'The request path is not valid percent-encoding.',
            });
          }
        }
      }
      expect(backend.logged.slice(before)).toEqual([]);
    },
  );
});
