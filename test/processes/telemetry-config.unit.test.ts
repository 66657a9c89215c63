/**
 * startup/telemetry.ts without a collector: nothing starts without an OTLP endpoint, and what the
 * http instrumentation is told to record of a request's URL keeps no id or token.
 */
import { redactPath, redactQuery, startTelemetry } from '../../startup/telemetry';

describe('telemetry start-up', () => {
  it('starts nothing without OTEL_EXPORTER_OTLP_ENDPOINT', () => {
    const saved = [
      process.env.OTEL_EXPORTER_OTLP_ENDPOINT,
      process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
    ];
    delete process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
    delete process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
    try {
      expect(startTelemetry('test')).toBeNull();
    } finally {
      if (saved[0] !== undefined) process.env.OTEL_EXPORTER_OTLP_ENDPOINT = saved[0];
      if (saved[1] !== undefined) process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT = saved[1];
    }
  });

  it.each([
    ['/auth/sessions/0123456789abcdef0123456789abcdef', '/auth/sessions/:redacted'],
    ['/auth/token', '/auth/token'],
    ['/reset/rt_AwEAAAAAAAAAAAAAAAAAAAAAAAA', '/reset/:redacted'],
    ['/links/eyJhbGciOiJIUzI1NiJ9abcdefghijkl', '/links/:redacted'],
    ['/me', '/me'],
  ])('the path %s is recorded as %s', (path, recorded) => {
    expect(redactPath(path)).toBe(recorded);
  });

  it('a query keeps its names only', () => {
    expect(redactQuery('?refresh_token=rt_abc&next=/home')).toBe(
      'refresh_token=REDACTED&next=REDACTED',
    );
  });
});
