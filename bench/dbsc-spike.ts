/**
 * DBSC in a real Chromium, a spike (issue 23), not a test: serves the token router with
 * `cookie.dbsc` over HTTPS on localhost with a throwaway certificate, logs in from a page in
 * Debian's chromium with the DBSC flags, and prints every request to the DBSC endpoints and every
 * `Network.deviceBoundSessionEventOccurred` CDP event. Then deletes the bound cookie and calls an
 * in-scope route, to see the browser refresh by proof.
 *
 *   npx tsx bench/dbsc-spike.ts   (needs chromium and openssl on PATH)
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express from 'express';
import { chromium } from 'playwright-core';
import { createRefreshRouter } from 'refresh-rotation/express';
import {
  InlineTokenJobs,
  MemoryRefreshTokenRepository,
  MemoryVersionStore,
} from 'refresh-rotation/memory';
import { RotationService } from 'refresh-rotation';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const FEATURES =
  'DeviceBoundSessions,EnableBoundSessionCredentialsSoftwareKeysForManualTesting,DeviceBoundSessionsDevTools';

function throwawayCertificate(dir: string): { key: Buffer; cert: Buffer; spki: string } {
  const key = join(dir, 'key.pem');
  const cert = join(dir, 'cert.pem');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost',
  ], { stdio: 'ignore' }); // prettier-ignore
  const publicKey = execFileSync('openssl', ['x509', '-in', cert, '-pubkey', '-noout']);
  const der = execFileSync('openssl', ['pkey', '-pubin', '-outform', 'der'], { input: publicKey });
  const spki = execFileSync('openssl', ['dgst', '-sha256', '-binary'], { input: der }).toString(
    'base64',
  );
  return { key: readFileSync(key), cert: readFileSync(cert), spki };
}

const PAGE = `<!doctype html><title>dbsc spike</title><p id="out">…</p>
<script>
async function login() {
  const r = await fetch('/auth/login', { method: 'POST', headers: { 'X-Token-Transport': 'cookie' } });
  return r.status;
}
async function refresh() {
  const r = await fetch('/auth/token', { method: 'POST', headers: { 'X-Refresh-CSRF': '1' } });
  return r.status + ' ' + (await r.text()).slice(0, 80);
}
</script>`;

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'dbsc-spike-'));
  const { key, cert, spki } = throwawayCertificate(dir);
  const repository = new MemoryRefreshTokenRepository();
  // Moved forward to see a copied cookie outlive boundTtl without waiting ten minutes.
  let offsetMs = 0;
  const clock = { now: () => new Date(Date.now() + offsetMs) };
  const service = new RotationService({
    clock,
    repository,
    versions: new MemoryVersionStore(),
    jobs: new InlineTokenJobs(repository),
    accessToken: { secret: 'spike-access-secret-0123456789abcdef0123456789' },
    refreshToken: { secrets: ['spike-refresh-secret-0123456789abcdef01234567'] },
  });
  const router = createRefreshRouter({
    service,
    cookie: {
      path: '/auth',
      dbsc: { secret: 'spike-dbsc-secret-0123456789abcdef0123456789', boundTtl: '10m', clock },
    },
  });
  const app = express();
  app.use((req, res, next) => {
    if (req.path.startsWith('/auth/')) {
      const dbsc = Object.entries(req.headers)
        .filter(([name]) => /secure-session|sec-fetch-site|^origin$/.test(name))
        .map(([name, value]) => `${name}=${String(value).slice(0, 60)}`);
      res.on('finish', () =>
        console.log(
          `[server] ${req.method} ${req.originalUrl} -> ${res.statusCode} ${dbsc.join(' ')}`,
        ),
      );
    }
    next();
  });
  app.get('/', (_req, res) => void res.type('html').send(PAGE));
  app.post('/auth/login', (_req, res, next) => {
    router.issue(res, { userId: 'spike-user' }).then((body) => res.json(body), next);
  });
  app.use('/auth', router);
  const server = createServer({ key, cert }, app).listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const origin = `https://localhost:${(server.address() as AddressInfo).port}`;

  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [`--enable-features=${FEATURES}`, `--ignore-certificate-errors-spki-list=${spki}`],
  });
  try {
    console.log(`[browser] ${browser.version()}`);
    const context = await browser.newContext();
    const page = await context.newPage();
    const cdp = await context.newCDPSession(page);
    cdp.on('Network.deviceBoundSessionEventOccurred' as never, (event: unknown) =>
      console.log(`[cdp] ${JSON.stringify(event)}`),
    );
    await cdp.send('Network.enable');
    await cdp.send('Network.enableDeviceBoundSessions' as never, { enable: true } as never);
    await page.goto(`${origin}/`);
    console.log(`[page] login ${await page.evaluate('login()')}`);
    const bindings = async () =>
      Promise.all(
        (await service.listSessions('spike-user')).map(async (session) => ({
          id: session.id,
          binding: (await repository.findBySessionId(session.id))?.binding ?? null,
        })),
      );
    const until = Date.now() + 10_000;
    while (Date.now() < until && !(await bindings()).some((entry) => entry.binding)) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    for (const entry of await bindings())
      console.log(`[record] ${entry.id} binding=${JSON.stringify(entry.binding)}`);
    console.log(`[cookies] ${JSON.stringify(await context.cookies())}`);
    await context.clearCookies();
    console.log('[page] cookie deleted; refreshing');
    console.log(`[page] refresh ${await page.evaluate('refresh()')}`);
    const [stolen] = await context.cookies();
    console.log(`[cookies] ${JSON.stringify(stolen)}`);

    // A second profile without the key, with a copy of the cookie, after boundTtl.
    offsetMs = 11 * 60_000;
    const thief = await browser.newContext();
    await thief.addCookies([stolen!]);
    const thiefPage = await thief.newPage();
    await thiefPage.goto(`${origin}/`);
    console.log(`[thief] refresh after boundTtl ${await thiefPage.evaluate('refresh()')}`);
    await thief.close();

    // The owner's browser, past boundTtl: the refresh by proof extends it.
    await context.clearCookies();
    console.log(`[page] refresh after boundTtl ${await page.evaluate('refresh()')}`);

    // Revoked: the refresh endpoint answers {"continue": false}.
    const [session] = await service.listSessions('spike-user');
    await service.revokeSession(session!.id);
    await context.clearCookies();
    console.log(`[page] refresh after revocation ${await page.evaluate('refresh()')}`);
    await new Promise((resolve) => setTimeout(resolve, 500));
    console.log(`[page] refresh once more ${await page.evaluate('refresh()')}`);
    await context.close();
  } finally {
    await browser.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
