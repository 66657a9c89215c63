/**
 * The demo page's `refresh-rotation/client` in a fresh clone (no dist/ yet, `npm run demo` before
 * any build): the app serves the module built from src/client, so the page still runs the
 * shipped code and the README's first command works as it says.
 */
import request from 'supertest';
import { withApp } from '../support/app-harness';

it('without a built dist/client, the page gets the module built from src/client', async () => {
  await withApp(
    { overrides: { clientModule: '/nonexistent/refresh-rotation-client.mjs' } },
    async ({ app }) => {
      const response = await request(app).get('/refresh-rotation-client.mjs');
      expect(response.status).toBe(200);
      expect(response.headers['content-type']).toMatch(/^text\/javascript/);
      expect(response.text).toMatch(/export\s*\{[^}]*createSessionClient/);
    },
  );
});
