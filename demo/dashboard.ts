/**
 * The BullMQ queue dashboard (`@bull-board/express`) of the demo app, and the admin list that
 * guards it (`ADMIN_USER_IDS`, read by demo/env.ts). `demo/app.ts` mounts it behind
 * `authenticate` and the list.
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
