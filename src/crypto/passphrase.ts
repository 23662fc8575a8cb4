// Passphrase-derived wrapping keys (scrypt). Parameters are stored beside each wrapped key so
// they can be raised later without breaking old keys.
import { randomBytes, scrypt } from 'node:crypto';

export interface ScryptParams {
  logN: number;
  r: number;
  p: number;
  salt: string; // base64
}

/**
 * N = 2^15, r = 8, p = 1: 32 MiB and about 0.1 s per attempt, the widely used interactive setting
 * (restic calibrates to the same order). 2^17 cost every command 128 MiB of peak memory and 0.5 s.
 */
export const DEFAULT_SCRYPT_LOG_N = 15;

export function newScryptParams(logN = DEFAULT_SCRYPT_LOG_N): ScryptParams {
  return { logN, r: 8, p: 1, salt: randomBytes(32).toString('base64') };
}

export function deriveWrappingKey(passphrase: string, params: ScryptParams): Promise<Buffer> {
  const N = 2 ** params.logN;
  return new Promise((resolve, reject) => {
    scrypt(
      passphrase.normalize('NFC'),
      Buffer.from(params.salt, 'base64'),
      32,
      { N, r: params.r, p: params.p, maxmem: 256 * N * params.r + 16 * 1024 * 1024 },
      (error, key) => (error ? reject(error) : resolve(key)),
    );
  });
}
