/**
 * A throwaway TLS certificate for https://localhost, made with openssl: Chromium speaks DBSC over
 * HTTPS only, and only with a certificate it trusts, which the browser tests arrange with
 * `--ignore-certificate-errors-spki-list=<spki>` rather than a CA.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface ThrowawayCertificate {
  key: Buffer;
  cert: Buffer;
  /** The PEM files, in `dir`. */
  keyFile: string;
  certFile: string;
  /** The base64 SHA-256 of the certificate's SubjectPublicKeyInfo. */
  spki: string;
}

/** A self-signed P-256 certificate for localhost (one day), written to `dir`. */
export function throwawayCertificate(dir: string): ThrowawayCertificate {
  const keyFile = join(dir, 'key.pem');
  const certFile = join(dir, 'cert.pem');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', keyFile, '-out', certFile, '-days', '1', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost',
  ], { stdio: 'ignore' }); // prettier-ignore
  const publicKey = execFileSync('openssl', ['x509', '-in', certFile, '-pubkey', '-noout']);
  const der = execFileSync('openssl', ['pkey', '-pubin', '-outform', 'der'], { input: publicKey });
  const spki = execFileSync('openssl', ['dgst', '-sha256', '-binary'], { input: der });
  return {
    key: readFileSync(keyFile),
    cert: readFileSync(certFile),
    keyFile,
    certFile,
    spki: spki.toString('base64'),
  };
}
