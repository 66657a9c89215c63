# syntax=docker/dockerfile:1
# The example app (`npm start`) and the worker (`npm run worker`) in one image.
#   docker build -t refresh-rotation .
#   docker run --rm -p 3000:3000 -e MONGODB_URI=… -e REDIS_URL=… -e ACCESS_TOKEN_SECRET=… \
#     -e REFRESH_TOKEN_SECRETS=… refresh-rotation                 # the app
#   docker run --rm … refresh-rotation node --import tsx workers/main.ts   # the worker

# Stage 1: dependencies, with the toolchain a native module (bcrypt) needs if no prebuilt binary fits.
FROM node:20-bookworm-slim AS deps
WORKDIR /app
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 make g++ \
  && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
# Full install: the example app's express, mongoose, bullmq, pino… are the library's peer/dev
# dependencies, and tsx runs the TypeScript sources.
RUN npm ci --no-audit --no-fund && npm cache clean --force

# Stage 2: type-check the sources once at build time, so a broken tree never becomes an image.
FROM deps AS check
COPY tsconfig.json ./
COPY src ./src
COPY workers ./workers
COPY examples ./examples
RUN npx tsc --noEmit --skipLibCheck --strict --esModuleInterop --module commonjs --target ES2022 \
  --moduleResolution node10 --types node examples/server.ts examples/demo.ts workers/main.ts

# Stage 3: runtime, no compiler toolchain, read-only sources, non-root user.
FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production \
  PORT=3000
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=check /app/package.json /app/tsconfig.json ./
COPY --from=check /app/src ./src
COPY --from=check /app/workers ./workers
COPY --from=check /app/examples ./examples
# The image's built-in unprivileged user (uid 1000); it owns nothing under /app.
USER node
EXPOSE 3000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
CMD ["node", "--import", "tsx", "examples/server.ts"]
