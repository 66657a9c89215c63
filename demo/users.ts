/**
 * The demo app's users: an in-memory store for the demo and a MongoDB `users` collection when
 * MONGODB_URI is set. Passwords are stored only as bcrypt hashes.
 */
import type { Connection } from 'mongoose';
import { v7 as uuidv7 } from 'uuid';
import { isDuplicateKeyError, toStoreError } from 'refresh-rotation/mongoose';

export interface User {
  id: string;
  /** Trimmed and lower-cased. */
  email: string;
  passwordHash: string;
  createdAt: Date;
}

/** Registering an email that already has an account. */
export class EmailTakenError extends Error {
  constructor() {
    super('an account with this email already exists');
    this.name = 'EmailTakenError';
  }
}

export interface UserStore {
  /** Rejects with `EmailTakenError` when the email is taken. */
  create(input: { email: string; passwordHash: string }): Promise<User>;
  findByEmail(email: string): Promise<User | null>;
  findById(id: string): Promise<User | null>;
  setPasswordHash(id: string, passwordHash: string): Promise<void>;
}

export function normaliseEmail(email: string): string {
  return email.trim().toLowerCase();
}

export class MemoryUserStore implements UserStore {
  private readonly byId = new Map<string, User>();
  private readonly idByEmail = new Map<string, string>();

  async create(input: { email: string; passwordHash: string }): Promise<User> {
    const email = normaliseEmail(input.email);
    if (this.idByEmail.has(email)) throw new EmailTakenError();
    const user: User = {
      id: uuidv7(),
      email,
      passwordHash: input.passwordHash,
      createdAt: new Date(),
    };
    this.byId.set(user.id, user);
    this.idByEmail.set(email, user.id);
    return { ...user };
  }

  async findByEmail(email: string): Promise<User | null> {
    const id = this.idByEmail.get(normaliseEmail(email));
    return id === undefined ? null : this.findById(id);
  }

  async findById(id: string): Promise<User | null> {
    const user = this.byId.get(id);
    return user ? { ...user } : null;
  }

  async setPasswordHash(id: string, passwordHash: string): Promise<void> {
    const user = this.byId.get(id);
    if (user) user.passwordHash = passwordHash;
  }
}

interface UserDocument {
  _id: string;
  email: string;
  passwordHash: string;
  createdAt: Date;
}

function toUser(doc: UserDocument): User {
  return {
    id: doc._id,
    email: doc.email,
    passwordHash: doc.passwordHash,
    createdAt: doc.createdAt,
  };
}

/** Run a driver call; an outage becomes `StoreUnavailableError`, so the app answers 503 like the router. */
async function guarded<T>(operation: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    throw toStoreError(error, operation);
  }
}

/** Users in the `users` collection of the caller's connection (unique index on `email`). */
export class MongoUserStore implements UserStore {
  constructor(private readonly connection: Connection) {}

  private get users() {
    return this.connection.collection<UserDocument>('users');
  }

  /** Create the unique email index; idempotent. */
  async ensureIndexes(): Promise<void> {
    await guarded('users.ensureIndexes', () =>
      this.users.createIndex({ email: 1 }, { unique: true, name: 'email_unique' }),
    );
  }

  async create(input: { email: string; passwordHash: string }): Promise<User> {
    const doc: UserDocument = {
      _id: uuidv7(),
      email: normaliseEmail(input.email),
      passwordHash: input.passwordHash,
      createdAt: new Date(),
    };
    try {
      await this.users.insertOne(doc);
    } catch (error) {
      if (isDuplicateKeyError(error)) throw new EmailTakenError();
      throw toStoreError(error, 'users.create');
    }
    return toUser(doc);
  }

  async findByEmail(email: string): Promise<User | null> {
    const doc = await guarded('users.findByEmail', () =>
      this.users.findOne({ email: normaliseEmail(email) }),
    );
    return doc ? toUser(doc) : null;
  }

  async findById(id: string): Promise<User | null> {
    const doc = await guarded('users.findById', () => this.users.findOne({ _id: id }));
    return doc ? toUser(doc) : null;
  }

  async setPasswordHash(id: string, passwordHash: string): Promise<void> {
    await guarded('users.setPasswordHash', () =>
      this.users.updateOne({ _id: id }, { $set: { passwordHash } }),
    );
  }
}
