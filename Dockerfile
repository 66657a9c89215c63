# syntax=docker/dockerfile:1
# The demo app and the worker in one image, both compiled JavaScript run by node (no tsx, no
# npm at run time), production dependencies only, as the unprivileged `node` user.
#   docker build -t refresh-rotation .
#   docker run --rm -p 3000:3000 -e MONGODB_URI=… -e REDIS_URL=… -e ACCESS_TOKEN_SECRET=… \
#     -e REFRESH_TOKEN_SECRETS=… refresh-rotation                                   # the app
#   docker run --rm -e MONGODB_URI=… -e REDIS_URL=… -e WORKER_HEALTH_PORT=8080 \
#     refresh-rotation node dist/bin/refresh-rotation-worker.js                     # the worker
#
# Node 26 is the active LTS line (Active LTS from 2026-10-28, maintained to 2029-04-30); 24 is in
# maintenance until 2028-04-30 and 22 until 2027-04-30. The library itself supports Node >= 20.19
# (package.json engines): `--build-arg NODE_VERSION=24` builds the same image on Node 24.
ARG NODE_VERSION=26

# Stage 1: the full development install, the type check and the build (dist/ and build/demo/).
FROM node:${NODE_VERSION}-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsup.config.ts ./
COPY src ./src
COPY workers ./workers
COPY startup ./startup
COPY demo ./demo
COPY docker ./docker
# A broken tree never becomes an image: type-check what the image runs (docker/tsconfig.json: the
# repository's settings, `refresh-rotation` mapped to src/), then build it.
RUN npx tsc -p docker/tsconfig.json \
  && npm run build \
  && node docker/runtime-package.mjs

# Stage 2: production dependencies only: what the compiled app and worker require (55 MB measured
# against 271 MB for the development install). bcrypt ships prebuilt binaries for linux-x64/arm64.
# typescript (23 MB) comes in only as valibot's optional peer (valibot: @bull-board/api's
# validator); the lock marks it a dev package, so --omit=peer cannot drop it: nothing requires it at
# run time.
FROM node:${NODE_VERSION}-slim AS deps
WORKDIR /app
COPY --from=build /app/package.json ./package.json
COPY package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund \
  && rm -rf node_modules/typescript node_modules/.bin/tsc node_modules/.bin/tsserver \
  && npm cache clean --force

# Stage 3: runtime. Files owned by root and read-only to the `node` user (uid 1000) it runs as.
FROM node:${NODE_VERSION}-slim AS runtime
ENV NODE_ENV=production \
  PORT=3000
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/dist ./dist
COPY --from=build /app/build ./build
USER node
EXPOSE 3000
# The app's health check; the worker's is its own (docker-compose.yml, WORKER_HEALTH_PORT).
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# node as PID 1 gets SIGTERM itself (docker-compose.yml adds an init for zombie reaping).
CMD ["node", "build/demo/server.js"]
