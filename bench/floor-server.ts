/**
 * The floor: a bare Express route doing only the unavoidable work of one refresh on the same
 * database as the full stack: parse and check the tag (no I/O), the next token (a fresh nonce,
 * its tag and its seal) and the two SHA-256s, ONE conditional findOneAndUpdate on `_id = sessionId` (the library's hot-path filter
 * and update), and one JWT signature with a KeyObject. No helmet, no logging, no rate limit, no
 * version checks, no slow path, no error mapping. Env: MONGODB_URI, PORT.
 */
import { createSecretKey, randomUUID } from 'node:crypto';
import express from 'express';
import jwt from 'jsonwebtoken';
import mongoose from 'mongoose';
import { hashToken } from 'refresh-rotation';
import { ACCESS_SECRET, codec, serveUntilSignal } from './lib';

const DAY = 86_400_000;

async function main(): Promise<void> {
  const connection = await mongoose.createConnection(process.env.MONGODB_URI!).asPromise();
  const records = connection.db!.collection<{ _id: string }>('refresh_tokens');
  const key = createSecretKey(Buffer.from(ACCESS_SECRET));
  const app = express();
  app.get('/healthz', (_req, res) => void res.json({ ok: true }));
  app.post('/token', express.json(), (req, res) => {
    void (async () => {
      const presented = (req.body as { refresh_token?: unknown }).refresh_token;
      let parsed;
      try {
        parsed = codec.parse(presented);
      } catch {
        return void res.status(400).json({ error: 'invalid_grant' });
      }
      if (!codec.hasValidTag(parsed)) return void res.status(400).json({ error: 'invalid_grant' });
      const now = new Date();
      const next = codec.mint(parsed.sessionId, parsed.generation + 1);
      const g = parsed.generation;
      const presentedHash = hashToken(presented as string);
      const updated = await records.findOneAndUpdate(
        {
          _id: parsed.sessionId,
          generation: g,
          tokenHash: presentedHash,
          revokedAt: null,
          expiresAt: { $gt: now },
          absoluteExpiresAt: { $gt: now },
        },
        {
          $set: {
            generation: g + 1,
            keyId: next.keyId,
            tokenHash: next.tokenHash,
            sealed: next.sealed,
            rotatedAt: now,
            [`superseded.${g % 16}`]: { generation: g, at: now, tokenHash: presentedHash },
            expiresAt: new Date(now.getTime() + 30 * DAY),
          },
          $max: { lastUsedAt: now },
        },
        { returnDocument: 'after' },
      );
      if (!updated) return void res.status(400).json({ error: 'invalid_grant' });
      const iat = Math.floor(now.getTime() / 1000);
      const accessToken = jwt.sign(
        {
          sub: (updated as { userId?: string }).userId,
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
        refresh_token: next.token,
      });
    })().catch((error: unknown) => res.status(500).json({ error: String(error) }));
  });
  serveUntilSignal(app, () => connection.close());
}

void main();
