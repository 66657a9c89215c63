import type { NextFunction, Request, RequestHandler, Response } from 'express';

/**
 * Wrap an async handler so a rejection reaches `next(error)`. Express 5 does this itself;
 * Express 4 does not, and an unhandled rejection there would leave the request hanging.
 */
export function asyncHandler(
  handler: (req: Request, res: Response, next: NextFunction) => Promise<void>,
): RequestHandler {
  return function handle(req, res, next) {
    handler(req, res, next).catch(next);
  };
}
