/**
 * The floor: a bare Express route doing only the unavoidable work of one refresh on the same
 * database as the full stack: parse, one indexed read by sessionId, one HMAC check, one
 * compare-and-set findOneAndUpdate on the generation, the next token (one HMAC + its SHA-256) and
 * one JWT signature with a KeyObject. No helmet, no logging, no rate limit, no version checks, no
 * error mapping. Env: MONGODB_URI, PORT.
 */
import { createSecretKey, randomUUID } from 'node:crypto';
import express from 'express';
import jwt from 'jsonwebtoken';
import mongoose from 'mongoose';
import { hashToken } from '../src/domain/token-codec';
import { ACCESS_SECRET, codec, serveUntilSignal } from './lib';

const DAY = 86_400_000;

async function main(): Promise<void> {
  const connection = await mongoose.createConnection(process.env.MONGODB_URI!).asPromise();
  const records = connection.db!.collection('refresh_tokens');
  const key = createSecretKey(Buffer.from(ACCESS_SECRET));
  const app = express();
  app.get('/healthz', (_req, res) => void res.json({ ok: true }));
  app.post('/token', express.json(), (req, res) => {
    void (async () => {
      let parsed;
      try {
        parsed = codec.parse((req.body as { refresh_token?: unknown }).refresh_token);
      } catch {
        return void res.status(400).json({ error: 'invalid_grant' });
      }
      const record = await records.findOne({ sessionId: parsed.sessionId });
      if (
        !record ||
        !codec.verify(parsed, record.salt as string) ||
        record.generation !== parsed.generation
      )
        return void res.status(400).json({ error: 'invalid_grant' });
      const now = new Date();
      const next = codec.encode({
        sessionId: parsed.sessionId,
        generation: parsed.generation + 1,
        salt: record.salt as string,
      });
      const updated = await records.findOneAndUpdate(
        { _id: record._id, generation: parsed.generation, revokedAt: null },
        {
          $set: {
            generation: parsed.generation + 1,
            tokenHash: hashToken(next),
            rotatedAt: now,
            lastUsedAt: now,
            expiresAt: new Date(
              Math.min(now.getTime() + 30 * DAY, (record.absoluteExpiresAt as Date).getTime()),
            ),
          },
        },
        { returnDocument: 'after' },
      );
      if (!updated) return void res.status(400).json({ error: 'invalid_grant' });
      const iat = Math.floor(now.getTime() / 1000);
      const accessToken = jwt.sign(
        {
          sub: record.userId,
          sid: parsed.sessionId,
          ver: 0,
          jti: randomUUID(),
          iat,
          exp: iat + 900,
        },
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
