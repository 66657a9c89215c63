/**
 * The BullMQ queue dashboard (`@bull-board/express`) of the example app, and the admin list that
 * guards it (`ADMIN_USER_IDS`). `examples/app.ts` mounts it behind `authenticate` and the list.
 */
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import type { Queue } from 'bullmq';
import type { Router } from 'express';

/** A queue the dashboard shows. */
export type DashboardQueue = Queue;

/** The dashboard's router, to mount at `basePath`. */
export function queueDashboard(basePath: string, queues: readonly DashboardQueue[]): Router {
  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath(basePath);
  createBullBoard({
    queues: queues.map((queue) => new BullMQAdapter(queue)),
    serverAdapter,
    options: { uiConfig: { boardTitle: 'refresh-rotation' } },
  });
  return serverAdapter.getRouter() as Router;
}

const USER_ID = /^[A-Za-z0-9._:@-]{1,128}$/;

/**
 * `ADMIN_USER_IDS`: user ids separated by commas (spaces ignored). Unset or empty: no admin, no
 * dashboard. Throws naming the variable for an id that is not a plain identifier.
 */
export function parseAdminUserIds(value: string | undefined): string[] {
  const ids = (value ?? '')
    .split(',')
    .map((id) => id.trim())
    .filter((id) => id.length > 0);
  for (const id of ids) {
    if (!USER_ID.test(id)) {
      throw new Error(
        `ADMIN_USER_IDS must be user ids separated by commas; ${JSON.stringify(id)} is not one`,
      );
    }
  }
  return ids;
}
