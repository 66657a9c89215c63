/**
 * The rotation most Express tutorials write, as the peer to compare with: a Mongoose model of
 * refresh tokens (a unique SHA-256 of a random token, the user, an expiry) and a route that finds
 * the presented token's document, deletes it and inserts a new one: three commands per refresh,
 * through Mongoose's query layer as such code does. Same server and collection size as the
 * library's targets; seeded by `seedTutorialTokens` (bench/lib.ts). Env: MONGODB_URI, PORT.
 */
import { createHash, createSecretKey, randomBytes, randomUUID } from 'node:crypto';
import express from 'express';
import jwt from 'jsonwebtoken';
import mongoose, { Schema } from 'mongoose';
import { ACCESS_SECRET, TUTORIAL_COLLECTION, serveUntilSignal } from './lib';

const DAY = 86_400_000;

interface TutorialToken {
  tokenHash: string;
  userId: string;
  expiresAt: Date;
}

const sha256 = (token: string) => createHash('sha256').update(token).digest('hex');

async function main(): Promise<void> {
  const connection = await mongoose.createConnection(process.env.MONGODB_URI!).asPromise();
  const RefreshToken = connection.model<TutorialToken>(
    'RefreshToken',
    new Schema<TutorialToken>({
      tokenHash: { type: String, required: true, unique: true },
      userId: { type: String, required: true },
      expiresAt: { type: Date, required: true },
    }),
    TUTORIAL_COLLECTION,
  );
  const key = createSecretKey(Buffer.from(ACCESS_SECRET));
  const app = express();
  app.get('/healthz', (_req, res) => void res.json({ ok: true }));
  app.post('/token', express.json(), (req, res) => {
    void (async () => {
      const presented = (req.body as { refresh_token?: unknown }).refresh_token;
      if (typeof presented !== 'string')
        return void res.status(400).json({ error: 'invalid_grant' });
      const stored = await RefreshToken.findOne({ tokenHash: sha256(presented) });
      if (!stored || stored.expiresAt.getTime() <= Date.now())
        return void res.status(400).json({ error: 'invalid_grant' });
      await RefreshToken.deleteOne({ _id: stored._id });
      const next = randomBytes(32).toString('base64url');
      await RefreshToken.create({
        tokenHash: sha256(next),
        userId: stored.userId,
        expiresAt: new Date(Date.now() + 30 * DAY),
      });
      const iat = Math.floor(Date.now() / 1000);
      const accessToken = jwt.sign(
        { sub: stored.userId, jti: randomUUID(), iat, exp: iat + 900 },
        key,
        { algorithm: 'HS256' },
      );
      res.json({
        access_token: accessToken,
        token_type: 'Bearer',
        expires_in: 900,
        refresh_token: next,
      });
    })().catch((error: unknown) => res.status(500).json({ error: String(error) }));
  });
  serveUntilSignal(app, () => connection.close());
}

void main();
