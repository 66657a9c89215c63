/**
 * The start-up errors of the worker bin and the example app say what to do, and never show the
 * credentials of a connection string.
 */
import { unreachable } from '../../startup/failures';

describe('unreachable()', () => {
  it('tells an operator to start the server when it cannot be reached', () => {
    const error = unreachable('redis', 'redis://:pw@127.0.0.1:6390', 'connect ECONNREFUSED');
    expect(error.message).toBe(
      'Redis is unreachable at REDIS_URL=redis://***@127.0.0.1:6390 (connect ECONNREFUSED): start Redis or correct REDIS_URL.',
    );
    expect(error.code).toBe('service_unreachable');
  });

  it.each([
    ['mongodb', 'Authentication failed.'],
    ['mongodb', 'Unsupported authentication mechanism "SCRAM-SHA-1"'],
    ['redis', 'WRONGPASS invalid username-password pair or user is disabled.'],
    ['redis', 'NOAUTH Authentication required.'],
  ] as const)(
    'on %s refusing the credentials (%s), says to correct them, not to start it',
    (service, reason) => {
      const uri =
        service === 'mongodb' ? 'mongodb://user:s3cret@db:27017/x' : 'redis://:s3cret@r:6379';
      const error = unreachable(service, uri, reason);
      expect(error.message).toMatch(/ refused the credentials in (MONGODB_URI|REDIS_URL)=/);
      expect(error.message).toMatch(/: correct the user, password or authentication options in /);
      expect(error.message).not.toMatch(/start (MongoDB|Redis)/);
      expect(error.message).not.toContain('s3cret');
    },
  );
});
